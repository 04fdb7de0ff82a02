//! A quick timing of the one-packet-per-call rows that the targets compare (our borrowed
//! decode against mqttrs, our encode against the fastest peer into the same kind of
//! buffer), for checking time after a change on a busy machine: every row runs in short
//! rounds interleaved with the others, and the fastest round counts, which is the one
//! least disturbed by other load. Not a replacement for the criterion run.
//!
//! `cargo run --release --example percall [WORKLOAD ...]`

use std::hint::black_box;
use std::time::Instant;

use bytes::BytesMut;
use mqtt::packet::VariablePacket as MpPacket;
use mqtt::{Decodable, Encodable};
use rumqttc::mqttbytes::v4::Packet as RuPacket;

#[path = "../../common/workloads.rs"]
mod workloads;

const ROUNDS: usize = 200;
const PER_ROUND: u32 = 20_000;

/// One round of `f`: ns per call. Generic, so that `f` is inlined in the loop as
/// criterion's `iter` does.
#[inline(never)]
fn round<F: FnMut()>(f: &mut F) -> f64 {
    let t = Instant::now();
    for _ in 0..PER_ROUND {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(PER_ROUND)
}

/// The fastest of `ROUNDS` rounds of each closure, rounds interleaved.
macro_rules! race {
    ($($f:ident),*) => {{
        let mut best = vec![f64::MAX; [$(stringify!($f)),*].len()];
        for _ in 0..ROUNDS {
            let mut i = 0;
            $(
                best[i] = best[i].min(round(&mut $f));
                i += 1;
            )*
            let _ = i;
        }
        best
    }};
}

fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    for (name, bytes) in workloads::single() {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let bytes = &bytes[..];
        let ours = match mqtt_sansio::decode(bytes) {
            Ok(mqtt_sansio::Status::Complete(p, _)) => p.to_owned(),
            other => panic!("{other:?}"),
        };
        let ru = RuPacket::read(&mut BytesMut::from(bytes), usize::MAX).unwrap();
        let rs = mqttrs::decode_slice(bytes).unwrap().unwrap();
        let mp = MpPacket::decode(&mut &bytes[..]).unwrap();
        let (mut v1, mut v2) = (
            Vec::with_capacity(bytes.len()),
            Vec::with_capacity(bytes.len()),
        );
        let (mut b1, mut b2) = (
            BytesMut::with_capacity(bytes.len()),
            BytesMut::with_capacity(bytes.len()),
        );
        let mut slice = vec![0u8; bytes.len()];
        let mut dec_ours = || {
            let _ = black_box(mqtt_sansio::decode(black_box(bytes)));
        };
        let mut dec_mqttrs = || {
            let _ = black_box(mqttrs::decode_slice(black_box(bytes)));
        };
        let mut enc_vec = || {
            v1.clear();
            black_box(&ours).encode(&mut v1).unwrap();
            black_box(&mut v1);
        };
        let mut enc_mp = || {
            v2.clear();
            black_box(&mp).encode(&mut v2).unwrap();
            black_box(&mut v2);
        };
        let mut enc_rs = || {
            black_box(mqttrs::encode_slice(black_box(&rs), &mut slice).unwrap());
        };
        let mut enc_bm = || {
            b1.clear();
            black_box(&ours).encode(&mut b1).unwrap();
            black_box(&mut b1);
        };
        let mut enc_ru = || {
            b2.clear();
            black_box(&ru).write(&mut b2, usize::MAX).unwrap();
            black_box(&mut b2);
        };
        let t = race!(
            dec_ours, dec_mqttrs, enc_vec, enc_mp, enc_rs, enc_bm, enc_ru
        );
        println!(
            "{name:18} decode ours {:6.2} mqttrs {:6.2} ({:.2}x) | Vec ours {:6.2} mqtt-protocol {:6.2} mqttrs {:6.2} ({:.2}x) | BytesMut ours {:6.2} rumqttc {:6.2} ({:.2}x)",
            t[0],
            t[1],
            t[1] / t[0],
            t[2],
            t[3],
            t[4],
            t[3].min(t[4]) / t[2],
            t[5],
            t[6],
            t[6] / t[5]
        );
    }
}
