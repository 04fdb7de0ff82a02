//! mqtt-sansio beside its peers, in the same run, on the same bytes
//! (`../../common/workloads.rs`): rumqttc's 3.1.1 codec (`rumqttc::mqttbytes::v4`),
//! ntex-mqtt's v3 codec, mqttrs and mqtt-protocol.
//!
//! Two ways of driving every codec, each its own criterion group:
//!
//! - `decode/W`, `encode/W`: **one packet per call**, as an application that reads or
//!   writes one packet at a time does. The headline numbers.
//! - `decode-b2b/W`, `encode-b2b/W`: **back to back**, `workloads::REPEAT` copies of
//!   the packet per iteration in one buffer (reported per packet), and the 4 MiB mixed
//!   stream: the loop of a reader or writer with a full buffer.
//!
//! Before anything is timed, every crate decodes every workload and the result is
//! compared field by field with the values it was built from (`peers/fields.rs`), and
//! every crate's encoding of it is compared with the workload bytes: each row does the
//! same work.
//!
//! Run (from `benches/peers`): `cargo bench -- --warm-up-time 1 --measurement-time 2`,
//! then `python3 ../report.py`.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use mqtt::packet::VariablePacket as MpPacket;
use mqtt::{Decodable, Encodable};
use mqttrs::Packet as RsPacket;
use ntex_codec::{Decoder as _, Encoder as _};
use ntex_mqtt::v3::codec as nx;
use rumqttc::mqttbytes::v4::Packet as RuPacket;

#[path = "../../common/workloads.rs"]
mod workloads;

#[path = "peers/fields.rs"]
mod fields;

use fields::{
    expected, frame_len, mqtt_protocol_decode, mqttrs_decode, ntex_decode, ntex_encoded,
    ntex_reader_buf, ours_decode_bytes, rumqttc_decode, verify,
};

/// The smallest PUBLISH payload our chunked encode leaves out of the buffer: ntex-mqtt's
/// rule (it copies up to 4 KiB into its page and adds larger payloads as pages).
const MIN_CHUNK: usize = 4097;

/// Zero-copy decoders get a fresh buffer per call, made outside the timing in batches
/// of this many (a batch of 64 KiB packets stays within 16 MiB).
const BATCH: BatchSize = BatchSize::NumIterations(256);

fn memcpy(g: &mut BenchmarkGroup<'_, WallTime>, src: &[u8]) {
    let mut dst = vec![0u8; src.len()];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(src));
            black_box(&mut dst);
        })
    });
}

// ---- decode, one packet per call ------------------------------------------------------

fn decode_one(c: &mut Criterion) {
    for (name, bytes) in workloads::single() {
        assert_eq!(verify(name, &bytes), vec![expected(name)], "{name}");
        let bytes = &bytes[..];
        let mut g = c.benchmark_group(format!("decode/{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        memcpy(&mut g, bytes);
        g.bench_function("mqtt-sansio", |b| {
            b.iter(|| mqtt_sansio::decode(black_box(bytes)))
        });
        g.bench_function("mqtt-sansio-bytes", |b| {
            b.iter_batched_ref(
                || workloads::reader_buf(bytes),
                mqtt_sansio::decode_bytes,
                BATCH,
            )
        });
        g.bench_function("mqtt-sansio-frame", |b| {
            b.iter_batched_ref(
                || workloads::reader_buf(bytes),
                |buf| match mqtt_sansio::decode_frame(buf) {
                    Ok(mqtt_sansio::Status::Complete(f, _)) => {
                        black_box(f.packet());
                        Some(f)
                    }
                    _ => None,
                },
                BATCH,
            )
        });
        g.bench_function("rumqttc", |b| {
            b.iter_batched_ref(
                || workloads::reader_buf(bytes),
                |buf| RuPacket::read(buf, usize::MAX),
                BATCH,
            )
        });
        let codec = nx::Codec::new();
        g.bench_function("ntex-mqtt", |b| {
            b.iter_batched_ref(|| ntex_reader_buf(bytes), |buf| codec.decode(buf), BATCH)
        });
        g.bench_function("mqttrs", |b| {
            b.iter(|| mqttrs::decode_slice(black_box(bytes)))
        });
        g.bench_function("mqtt-protocol", |b| {
            b.iter(|| MpPacket::decode(&mut black_box(bytes)))
        });
        g.finish();
    }
}

// ---- decode, back to back ---------------------------------------------------------------

fn decode_b2b(c: &mut Criterion) {
    for (name, bytes) in workloads::single() {
        let stream = workloads::repeated(&bytes);
        let mut g = c.benchmark_group(format!("decode-b2b/{name}"));
        decode_rows(&mut g, &stream, workloads::REPEAT, workloads::reader_buf);
        g.finish();
    }
    let (bytes, count) = workloads::mixed_stream();
    assert_eq!(verify("mixed stream", &bytes).len(), count);
    let mut g = c.benchmark_group("decode-b2b/mixed_4MiB");
    decode_rows(&mut g, &bytes, count, |b| BytesMut::from(b));
    g.finish();
}

/// Every crate decodes the `count` packets of `bytes` one by one, as a stream reader
/// does; the zero-copy decoders get them in the `BytesMut` that `buf` makes (outside
/// the timing).
fn decode_rows(
    g: &mut BenchmarkGroup<'_, WallTime>,
    bytes: &[u8],
    count: usize,
    buf: fn(&[u8]) -> BytesMut,
) {
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    memcpy(g, bytes);
    g.bench_function("mqtt-sansio", |b| {
        b.iter(|| {
            let mut rest = black_box(bytes);
            let mut n = 0;
            while let Ok(mqtt_sansio::Status::Complete(p, used)) = mqtt_sansio::decode(rest) {
                black_box(&p);
                rest = &rest[used..];
                n += 1;
            }
            assert_eq!(n, count);
        })
    });
    g.bench_function("mqtt-sansio-bytes", |b| {
        b.iter_batched_ref(
            || buf(bytes),
            |buf| {
                let mut n = 0;
                while let Ok(mqtt_sansio::Status::Complete(p, _)) = mqtt_sansio::decode_bytes(buf) {
                    black_box(&p);
                    n += 1;
                }
                assert_eq!(n, count);
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("mqtt-sansio-frame", |b| {
        b.iter_batched_ref(
            || buf(bytes),
            |buf| {
                let mut n = 0;
                while let Ok(mqtt_sansio::Status::Complete(f, _)) = mqtt_sansio::decode_frame(buf) {
                    black_box(f.packet());
                    n += 1;
                }
                assert_eq!(n, count);
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("rumqttc", |b| {
        b.iter_batched_ref(
            || buf(bytes),
            |buf| {
                let mut n = 0;
                while let Ok(p) = RuPacket::read(buf, usize::MAX) {
                    black_box(&p);
                    n += 1;
                }
                assert_eq!(n, count);
            },
            BatchSize::LargeInput,
        )
    });
    let codec = nx::Codec::new();
    g.bench_function("ntex-mqtt", |b| {
        b.iter_batched_ref(
            || ntex_bytes::BytesMut::copy_from_slice(bytes),
            |buf| {
                let mut n = 0;
                while let Ok(Some(p)) = codec.decode(buf) {
                    black_box(&p);
                    n += 1;
                }
                assert_eq!(n, count);
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("mqttrs", |b| {
        b.iter(|| {
            let mut rest = black_box(bytes);
            let mut n = 0;
            while let Ok(Some(p)) = mqttrs::decode_slice(rest) {
                black_box(&p);
                rest = &rest[frame_len(rest)..];
                n += 1;
            }
            assert_eq!(n, count);
        })
    });
    g.bench_function("mqtt-protocol", |b| {
        b.iter(|| {
            let mut rest = black_box(bytes);
            let mut n = 0;
            while !rest.is_empty() {
                match MpPacket::decode(&mut rest) {
                    Ok(p) => black_box(&p),
                    Err(_) => break,
                };
                n += 1;
            }
            assert_eq!(n, count);
        })
    });
}

// ---- encode -------------------------------------------------------------------------------

/// Each crate's packets for `bytes`, decoded once, for the encode benchmarks.
struct Built<'a> {
    ours: Vec<mqtt_sansio::Packet<Bytes>>,
    rumqttc: Vec<RuPacket>,
    ntex: Vec<nx::Encoded>,
    mqttrs: Vec<RsPacket<'a>>,
    mqtt_protocol: Vec<MpPacket>,
}

fn build(bytes: &[u8]) -> Built<'_> {
    let mut b = Built {
        ours: Vec::new(),
        rumqttc: Vec::new(),
        ntex: Vec::new(),
        mqttrs: Vec::new(),
        mqtt_protocol: Vec::new(),
    };
    let mut buf = BytesMut::from(bytes);
    while !buf.is_empty() {
        b.ours.push(ours_decode_bytes(&mut buf));
    }
    let mut buf = BytesMut::from(bytes);
    while !buf.is_empty() {
        b.rumqttc.push(rumqttc_decode(&mut buf));
    }
    let codec = nx::Codec::new();
    let mut buf = ntex_bytes::BytesMut::copy_from_slice(bytes);
    while !buf.is_empty() {
        b.ntex.push(ntex_encoded(ntex_decode(&codec, &mut buf)));
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        b.mqttrs.push(mqttrs_decode(rest));
        rest = &rest[frame_len(rest)..];
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        b.mqtt_protocol.push(mqtt_protocol_decode(&mut rest));
    }
    b
}

/// Every crate encodes the packets of `bytes` into an emptied buffer per iteration: one
/// packet per call when `bytes` holds one, back to back when it holds several.
///
/// - ours into a `BytesMut` (`mqtt-sansio`), a `Vec<u8>` (`-vec`), and a `BytesMut`
///   with PUBLISH payloads above 4 KiB handed back as chunks of their own, not copied
///   (`-chunked`, `Packet::encode_chunked`);
/// - rumqttc into a `BytesMut`; mqtt-protocol into a `Vec<u8>`; mqttrs into a slice;
/// - ntex-mqtt into its `BytePages`, which copies payloads up to 4 KiB and adds larger
///   ones as pages of their own; its encoder consumes the packet, so each call gets a
///   clone made outside the timing, and the pages are taken out after each call, as
///   its writer does (a page it releases goes back to its page cache).
fn encode_group(c: &mut Criterion, group: &str, bytes: &[u8]) {
    let built = build(bytes);
    let len = bytes.len();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(len as u64));
    let mut buf = BytesMut::with_capacity(len);
    g.bench_function("mqtt-sansio", |b| {
        b.iter(|| {
            buf.clear();
            for p in black_box(&built.ours) {
                p.encode(&mut buf).unwrap();
            }
            black_box(&mut buf);
        })
    });
    let mut vec = Vec::with_capacity(len);
    g.bench_function("mqtt-sansio-vec", |b| {
        b.iter(|| {
            vec.clear();
            for p in black_box(&built.ours) {
                p.encode(&mut vec).unwrap();
            }
            black_box(&mut vec);
        })
    });
    let mut chunks: Vec<Bytes> = Vec::with_capacity(built.ours.len());
    g.bench_function("mqtt-sansio-chunked", |b| {
        b.iter(|| {
            buf.clear();
            chunks.clear();
            for p in black_box(&built.ours) {
                if let Some(payload) = p.encode_chunked(&mut buf, MIN_CHUNK).unwrap() {
                    chunks.push(payload.clone());
                }
            }
            black_box((&mut buf, &mut chunks));
        })
    });
    g.bench_function("rumqttc", |b| {
        b.iter(|| {
            buf.clear();
            for p in black_box(&built.rumqttc) {
                p.write(&mut buf, usize::MAX).unwrap();
            }
            black_box(&mut buf);
        })
    });
    let codec = nx::Codec::new();
    let mut pages = ntex_bytes::BytePages::default();
    g.bench_function("ntex-mqtt", |b| {
        if let [one] = &built.ntex[..] {
            b.iter_batched(
                || one.clone(),
                |p| {
                    codec.encodev(p, &mut pages).unwrap();
                    while let Some(p) = pages.take() {
                        black_box(&p);
                    }
                },
                BatchSize::SmallInput,
            )
        } else {
            b.iter_batched(
                || built.ntex.clone(),
                |items| {
                    for p in items {
                        codec.encodev(p, &mut pages).unwrap();
                    }
                    while let Some(p) = pages.take() {
                        black_box(&p);
                    }
                },
                BatchSize::SmallInput,
            )
        }
    });
    let mut out = vec![0u8; len];
    g.bench_function("mqttrs", |b| {
        b.iter(|| {
            let mut at = 0;
            for p in black_box(&built.mqttrs) {
                at += mqttrs::encode_slice(p, &mut out[at..]).unwrap();
            }
            black_box(&mut out);
            at
        })
    });
    let mut v = Vec::with_capacity(len);
    g.bench_function("mqtt-protocol", |b| {
        b.iter(|| {
            v.clear();
            for p in black_box(&built.mqtt_protocol) {
                p.encode(&mut v).unwrap();
            }
            black_box(&mut v);
        })
    });
    g.finish();
}

fn encode_one(c: &mut Criterion) {
    for (name, bytes) in workloads::single() {
        encode_group(c, &format!("encode/{name}"), &bytes);
    }
}

fn encode_b2b(c: &mut Criterion) {
    for (name, bytes) in workloads::single() {
        encode_group(
            c,
            &format!("encode-b2b/{name}"),
            &workloads::repeated(&bytes),
        );
    }
    let (bytes, _) = workloads::mixed_stream();
    encode_group(c, "encode-b2b/mixed_4MiB", &bytes);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode_one, encode_one, decode_b2b, encode_b2b
}
criterion_main!(benches);
