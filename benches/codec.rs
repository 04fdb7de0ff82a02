//! Codec benchmarks: decode (borrowed and zero-copy) and encode of every workload in
//! `common/workloads.rs`, each beside a memcpy of the same bytes as the floor. The
//! single-packet workloads are one packet per call; the mixed stream is decoded and
//! encoded back to back. `benches/peers` runs the same beside other crates.
//!
//! Run: `cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mqtt_sansio::{Frame, Packet, Status, decode, decode_bytes, decode_frame};

#[path = "common/workloads.rs"]
mod workloads;

const STREAM: &str = "mixed_4MiB";

/// Decodes every packet of `bytes`, checking that it round-trips through encode, and
/// returns them.
fn packets(mut bytes: &[u8]) -> Vec<Packet<Bytes>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match decode(bytes) {
            Ok(Status::Complete(p, used)) => {
                let owned = p.to_owned();
                let encoded = owned.to_bytes().expect("workload packets encode");
                assert_eq!(&encoded[..], &bytes[..used], "encode(decode(x)) == x");
                out.push(owned);
                bytes = &bytes[used..];
            }
            other => panic!("workload bytes must decode: {other:?}"),
        }
    }
    out
}

fn memcpy(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, src: &[u8]) {
    let mut dst = vec![0u8; src.len()];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(src));
            black_box(&mut dst);
        })
    });
}

/// The frame form as a reader uses it: decode the frame and take its packet to read.
fn frame_and_packet(buf: &mut BytesMut) -> Option<Frame> {
    match decode_frame(buf) {
        Ok(Status::Complete(f, _)) => {
            black_box(f.packet());
            Some(f)
        }
        _ => None,
    }
}

fn decode_single(c: &mut Criterion) {
    for (name, bytes) in workloads::single() {
        assert_eq!(packets(&bytes).len(), 1);
        let mut g = c.benchmark_group(format!("decode/{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        memcpy(&mut g, &bytes);
        g.bench_function("decode", |b| b.iter(|| decode(black_box(&bytes))));
        g.bench_function("decode_bytes", |b| {
            b.iter_batched_ref(
                || workloads::reader_buf(&bytes),
                decode_bytes,
                BatchSize::SmallInput,
            )
        });
        g.bench_function("decode_frame", |b| {
            b.iter_batched_ref(
                || workloads::reader_buf(&bytes),
                frame_and_packet,
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

fn decode_stream(c: &mut Criterion) {
    let (bytes, count) = workloads::mixed_stream();
    assert_eq!(packets(&bytes).len(), count);
    let mut g = c.benchmark_group(format!("decode/{STREAM}"));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    memcpy(&mut g, &bytes);
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut rest = black_box(&bytes[..]);
            let mut n = 0usize;
            while let Ok(Status::Complete(p, used)) = decode(rest) {
                black_box(&p);
                rest = &rest[used..];
                n += 1;
            }
            assert_eq!(n, count);
        })
    });
    g.bench_function("decode_bytes", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&bytes[..]),
            |buf| {
                let mut n = 0usize;
                while let Ok(Status::Complete(p, _)) = decode_bytes(buf) {
                    black_box(&p);
                    n += 1;
                }
                assert_eq!(n, count);
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("decode_frame", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&bytes[..]),
            |buf| {
                let mut n = 0usize;
                while let Ok(Status::Complete(f, _)) = decode_frame(buf) {
                    black_box(f.packet());
                    n += 1;
                }
                assert_eq!(n, count);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn encode_single(c: &mut Criterion) {
    for (name, bytes) in workloads::single() {
        let packet = packets(&bytes).remove(0);
        let mut g = c.benchmark_group(format!("encode/{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        memcpy(&mut g, &bytes);
        let mut buf = BytesMut::with_capacity(bytes.len());
        g.bench_function("encode", |b| {
            b.iter(|| {
                buf.clear();
                black_box(&packet).encode(&mut buf).unwrap();
                black_box(&mut buf);
            })
        });
        // A PUBLISH payload above 4 KiB is handed back as a chunk of its own, not copied.
        g.bench_function("encode_chunked", |b| {
            b.iter(|| {
                buf.clear();
                let chunk = black_box(&packet).encode_chunked(&mut buf, 4097).unwrap();
                black_box((&mut buf, chunk.cloned()));
            })
        });
        g.finish();
    }
}

fn encode_stream(c: &mut Criterion) {
    let (bytes, _) = workloads::mixed_stream();
    let all = packets(&bytes);
    let mut g = c.benchmark_group(format!("encode/{STREAM}"));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    memcpy(&mut g, &bytes);
    let mut buf = BytesMut::with_capacity(bytes.len());
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            for p in black_box(&all) {
                p.encode(&mut buf).unwrap();
            }
            black_box(&mut buf);
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode_single, decode_stream, encode_single, encode_stream
}
criterion_main!(benches);
