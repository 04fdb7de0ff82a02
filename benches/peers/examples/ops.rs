//! One workload through one crate, N times, for counting instructions under callgrind
//! (`benches/callgrind.py` drives it): `ops WORKLOAD N MODE`.
//!
//! MODE: `ours`, `ours-bytes`, `ours-frame`, `rumqttc`, `ntex-mqtt`, `mqttrs`,
//! `mqtt-protocol` (decode), `enc-ours`, `enc-ours-vec`, `enc-ours-chunked`,
//! `enc-rumqttc`, `enc-ntex-mqtt`, `enc-mqttrs`, `enc-mqtt-protocol` (encode), and the
//! baselines `noop`, `bufs` (builds the N input buffers the `BytesMut` decoders
//! consume, and nothing else) and `ntex-bufs` (the same for ntex-mqtt's `BytesMut`);
//! `ntex-clones` (the clones of the packets `enc-ntex-mqtt` consumes).
//! A single-packet workload is one packet per call. Decoders loop while input is left, so that none makes
//! an extra call on an empty buffer.

use std::hint::black_box;

use bytes::BytesMut;
use mqtt::packet::VariablePacket as MpPacket;
use mqtt::{Decodable, Encodable};
use ntex_codec::{Decoder as _, Encoder as _};
use ntex_mqtt::v3::codec as nx;
use rumqttc::mqttbytes::v4::Packet as RuPacket;

#[path = "../../common/workloads.rs"]
mod workloads;

/// The size of the packet at the front of `b` (mqttrs does not report it).
fn frame_len(b: &[u8]) -> usize {
    let mut len = 0usize;
    for (i, &c) in b[1..].iter().take(4).enumerate() {
        len |= ((c & 0x7F) as usize) << (7 * i);
        if c & 0x80 == 0 {
            return 2 + i + len;
        }
    }
    panic!("bad remaining length")
}

/// Encodes the packets of `bytes` with our encoder into `out`, `n` times, emptying it
/// with `clear` before each round.
fn encode_ours<W: mqtt_sansio::EncodeBuf>(bytes: &[u8], n: usize, mut out: W, clear: fn(&mut W)) {
    let mut ps = Vec::new();
    let mut r = bytes;
    while let Ok(mqtt_sansio::Status::Complete(p, used)) = mqtt_sansio::decode(r) {
        ps.push(p.to_owned());
        r = &r[used..];
    }
    for _ in 0..n {
        clear(&mut out);
        for p in &ps {
            p.encode(black_box(&mut out)).unwrap();
        }
        black_box(&out);
    }
}

/// `bytes` in an ntex `BytesMut` whose storage is already shared, as
/// `workloads::reader_buf` makes for `bytes::BytesMut`.
fn ntex_reader_buf(bytes: &[u8]) -> ntex_bytes::BytesMut {
    let mut buf = ntex_bytes::BytesMut::with_capacity(bytes.len() + 1);
    buf.extend_from_slice(&[0]);
    buf.extend_from_slice(bytes);
    drop(buf.split_to(1));
    buf
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (which, n, mode) = (
        args[1].as_str(),
        args[2].parse::<usize>().unwrap(),
        args[3].as_str(),
    );
    let bytes = if which == "mixed_4MiB" {
        workloads::mixed_stream().0
    } else {
        workloads::single()
            .into_iter()
            .find(|(w, _)| *w == which)
            .expect("a workload name")
            .1
    };
    let bytes = &bytes[..];
    // FRESH=1: a fresh `BytesMut` per packet, whose first split allocates; otherwise
    // one as a stream reader holds it, already shared (see `workloads::reader_buf`).
    let fresh = std::env::var_os("FRESH").is_some_and(|v| v == "1");
    let mut bufs: Vec<BytesMut> = match mode {
        "ours-bytes" | "ours-frame" | "rumqttc" | "bufs" if fresh || which == "mixed_4MiB" => {
            (0..n).map(|_| BytesMut::from(bytes)).collect()
        }
        "ours-bytes" | "ours-frame" | "rumqttc" | "bufs" => {
            (0..n).map(|_| workloads::reader_buf(bytes)).collect()
        }
        _ => Vec::new(),
    };
    let mut ntex_bufs: Vec<ntex_bytes::BytesMut> = match mode {
        "ntex-mqtt" | "ntex-bufs" if fresh || which == "mixed_4MiB" => (0..n)
            .map(|_| ntex_bytes::BytesMut::copy_from_slice(bytes))
            .collect(),
        "ntex-mqtt" | "ntex-bufs" => (0..n).map(|_| ntex_reader_buf(bytes)).collect(),
        _ => Vec::new(),
    };
    match mode {
        "noop" => {}
        "bufs" => {
            black_box(&mut bufs);
        }
        "ntex-bufs" => {
            black_box(&mut ntex_bufs);
        }
        "ntex-mqtt" => {
            let codec = nx::Codec::new();
            for b in ntex_bufs.iter_mut() {
                while !b.is_empty() {
                    let p = codec.decode(black_box(b)).unwrap().unwrap();
                    black_box(&p);
                }
            }
        }
        "ours" => {
            for _ in 0..n {
                let mut r = bytes;
                while !r.is_empty() {
                    let Ok(mqtt_sansio::Status::Complete(p, used)) =
                        mqtt_sansio::decode(black_box(r))
                    else {
                        panic!("decode")
                    };
                    black_box(&p);
                    r = &r[used..];
                }
            }
        }
        "ours-bytes" => {
            for b in bufs.iter_mut() {
                while !b.is_empty() {
                    let Ok(mqtt_sansio::Status::Complete(p, _)) =
                        mqtt_sansio::decode_bytes(black_box(b))
                    else {
                        panic!("decode_bytes")
                    };
                    black_box(&p);
                }
            }
        }
        "ours-frame" => {
            for b in bufs.iter_mut() {
                while !b.is_empty() {
                    let Ok(mqtt_sansio::Status::Complete(f, _)) =
                        mqtt_sansio::decode_frame(black_box(b))
                    else {
                        panic!("decode_frame")
                    };
                    black_box(f.packet());
                }
            }
        }
        "rumqttc" => {
            for b in bufs.iter_mut() {
                while !b.is_empty() {
                    let p = RuPacket::read(black_box(b), usize::MAX).unwrap();
                    black_box(&p);
                }
            }
        }
        "mqttrs" => {
            for _ in 0..n {
                let mut r = bytes;
                while !r.is_empty() {
                    let p = mqttrs::decode_slice(black_box(r)).unwrap().unwrap();
                    black_box(&p);
                    r = &r[frame_len(r)..];
                }
            }
        }
        "mqtt-protocol" => {
            for _ in 0..n {
                let mut r = bytes;
                while !r.is_empty() {
                    let p = MpPacket::decode(black_box(&mut r)).unwrap();
                    black_box(&p);
                }
            }
        }
        "enc-ours" => encode_ours(
            bytes,
            n,
            BytesMut::with_capacity(bytes.len()),
            BytesMut::clear,
        ),
        "enc-ours-vec" => encode_ours(bytes, n, Vec::with_capacity(bytes.len()), Vec::clear),
        "enc-ours-chunked" => {
            let mut ps = Vec::new();
            let mut r = bytes;
            while let Ok(mqtt_sansio::Status::Complete(p, used)) = mqtt_sansio::decode(r) {
                ps.push(p.to_owned());
                r = &r[used..];
            }
            let mut out = BytesMut::with_capacity(bytes.len());
            let mut chunks = Vec::with_capacity(ps.len());
            for _ in 0..n {
                out.clear();
                chunks.clear();
                for p in &ps {
                    if let Some(c) = p.encode_chunked(black_box(&mut out), 4097).unwrap() {
                        chunks.push(c.clone());
                    }
                }
                black_box((&out, &chunks));
            }
        }
        "enc-ntex-mqtt" | "ntex-clones" => {
            let codec = nx::Codec::new();
            let mut b = ntex_bytes::BytesMut::copy_from_slice(bytes);
            let mut ps = Vec::new();
            while !b.is_empty() {
                ps.push(match codec.decode(&mut b).unwrap().unwrap() {
                    nx::Decoded::Packet(p, _) => nx::Encoded::Packet(p),
                    nx::Decoded::Publish(p, payload, _) => nx::Encoded::Publish(p, Some(payload)),
                    nx::Decoded::PayloadChunk(..) => panic!("whole packets"),
                });
            }
            // The encoder consumes its packets: every round gets clones, which the
            // baseline `ntex-clones` makes and drops without encoding.
            let rounds: Vec<Vec<nx::Encoded>> = (0..n).map(|_| ps.clone()).collect();
            if mode == "ntex-clones" {
                black_box(rounds);
                return;
            }
            let mut pages = ntex_bytes::BytePages::default();
            for items in rounds {
                for p in items {
                    codec.encodev(p, black_box(&mut pages)).unwrap();
                }
                while let Some(p) = pages.take() {
                    black_box(&p);
                }
            }
        }
        "enc-rumqttc" => {
            let mut b = BytesMut::from(bytes);
            let mut ps = Vec::new();
            while !b.is_empty() {
                ps.push(RuPacket::read(&mut b, usize::MAX).unwrap());
            }
            let mut out = BytesMut::with_capacity(bytes.len());
            for _ in 0..n {
                out.clear();
                for p in &ps {
                    p.write(black_box(&mut out), usize::MAX).unwrap();
                }
                black_box(&out);
            }
        }
        "enc-mqttrs" => {
            let mut ps = Vec::new();
            let mut r = bytes;
            while !r.is_empty() {
                ps.push(mqttrs::decode_slice(r).unwrap().unwrap());
                r = &r[frame_len(r)..];
            }
            let mut out = vec![0u8; bytes.len()];
            for _ in 0..n {
                let mut at = 0;
                for p in &ps {
                    at += mqttrs::encode_slice(p, black_box(&mut out[at..])).unwrap();
                }
                black_box(&out);
            }
        }
        "enc-mqtt-protocol" => {
            let mut ps = Vec::new();
            let mut r = bytes;
            while !r.is_empty() {
                ps.push(MpPacket::decode(&mut r).unwrap());
            }
            let mut out = Vec::with_capacity(bytes.len());
            for _ in 0..n {
                out.clear();
                for p in &ps {
                    p.encode(black_box(&mut out)).unwrap();
                }
                black_box(&out);
            }
        }
        other => panic!("unknown mode {other}"),
    }
}
