//! mqtt-sansio beside its peers, in the same run, on the same bytes
//! (`../../common/workloads.rs`): rumqttc's 3.1.1 codec (`rumqttc::mqttbytes::v4`),
//! mqttrs and mqtt-protocol.
//!
//! Before anything is timed, every crate decodes every workload and the result is
//! compared field by field with the values the workload was built from, and every
//! crate's encoding of it is compared with the workload bytes: each row of the report
//! does the same work.
//!
//! Run (from `benches/peers`): `cargo bench -- --warm-up-time 1 --measurement-time 3`,
//! then `python3 ../report.py`.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use mqtt::{Decodable, Encodable};

#[path = "../../common/workloads.rs"]
mod workloads;

use mqtt::packet::VariablePacket as MpPacket;
use mqttrs::Packet as RsPacket;
use rumqttc::mqttbytes::v4::Packet as RuPacket;

/// A crate-neutral view of the fields of the packets the workloads hold.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fields {
    Connect {
        client_id: String,
        keep_alive: u16,
        clean_session: bool,
        will: Option<(String, Vec<u8>, u8, bool)>,
        username: Option<String>,
        password: Option<Vec<u8>>,
    },
    Publish {
        dup: bool,
        qos: u8,
        retain: bool,
        packet_id: Option<u16>,
        topic: String,
        payload: Vec<u8>,
    },
    PubAck(u16),
    Subscribe(u16, Vec<(String, u8)>),
    SubAck(u16, Vec<u8>),
    Unsubscribe(u16, Vec<String>),
    PingReq,
}

/// What the workload `name` was built from.
fn expected(name: &str) -> Fields {
    use workloads::*;
    let publish = |qos: u8, n: usize| Fields::Publish {
        dup: false,
        qos,
        retain: false,
        packet_id: (qos > 0).then_some(PUBLISH_ID),
        topic: TOPIC.into(),
        payload: payload(n),
    };
    match name {
        "connect" => Fields::Connect {
            client_id: CLIENT_ID.into(),
            keep_alive: KEEP_ALIVE,
            clean_session: true,
            will: Some((WILL_TOPIC.into(), WILL_MESSAGE.to_vec(), WILL_QOS, true)),
            username: Some(USERNAME.into()),
            password: Some(PASSWORD.as_bytes().to_vec()),
        },
        "publish_qos0_16B" => publish(0, 16),
        "publish_qos0_1KiB" => publish(0, 1024),
        "publish_qos0_64KiB" => publish(0, 64 * 1024),
        "publish_qos1_1KiB" => publish(1, 1024),
        "puback" => Fields::PubAck(PUBLISH_ID),
        "subscribe_10" => Fields::Subscribe(
            SUBSCRIBE_ID,
            SUBSCRIBE_FILTERS
                .iter()
                .map(|&(f, q)| (f.into(), q))
                .collect(),
        ),
        "suback_10" => Fields::SubAck(SUBSCRIBE_ID, SUBACK_CODES.to_vec()),
        "unsubscribe_3" => Fields::Unsubscribe(
            UNSUBSCRIBE_ID,
            UNSUBSCRIBE_FILTERS.iter().map(|&f| f.into()).collect(),
        ),
        "pingreq" => Fields::PingReq,
        other => panic!("no expectation for {other}"),
    }
}

fn ours<B: AsRef<[u8]> + std::fmt::Debug>(p: &mqtt_sansio::Packet<B>) -> Fields {
    use mqtt_sansio::{Packet, SubAckCode};
    match p {
        Packet::Connect(c) => Fields::Connect {
            client_id: c.client_id.as_str().into(),
            keep_alive: c.keep_alive,
            clean_session: c.clean_session,
            will: c.will.as_ref().map(|w| {
                (
                    w.topic.as_str().into(),
                    w.message.as_bytes().to_vec(),
                    w.qos.as_u8(),
                    w.retain,
                )
            }),
            username: c.login.as_ref().map(|l| l.username.as_str().into()),
            password: c
                .login
                .as_ref()
                .and_then(|l| l.password.as_ref())
                .map(|p| p.as_bytes().to_vec()),
        },
        Packet::Publish(p) => Fields::Publish {
            dup: p.dup,
            qos: p.qos.qos().as_u8(),
            retain: p.retain,
            packet_id: p.qos.packet_id().map(|id| id.get()),
            topic: p.topic.as_str().into(),
            payload: p.payload.as_ref().to_vec(),
        },
        Packet::PubAck(id) => Fields::PubAck(id.get()),
        Packet::Subscribe(s) => Fields::Subscribe(
            s.packet_id.get(),
            s.filters()
                .map(|(f, q)| (f.as_str().into(), q.as_u8()))
                .collect(),
        ),
        Packet::SubAck(s) => Fields::SubAck(
            s.packet_id.get(),
            s.codes().map(SubAckCode::as_u8).collect(),
        ),
        Packet::Unsubscribe(u) => Fields::Unsubscribe(
            u.packet_id.get(),
            u.filters().map(|f| f.as_str().into()).collect(),
        ),
        Packet::PingReq => Fields::PingReq,
        other => panic!("not in the workloads: {other:?}"),
    }
}

fn rumqttc_fields(p: &RuPacket) -> Fields {
    use rumqttc::mqttbytes::v4::SubscribeReasonCode;
    match p {
        RuPacket::Connect(c) => Fields::Connect {
            client_id: c.client_id.clone(),
            keep_alive: c.keep_alive,
            clean_session: c.clean_session,
            will: c
                .last_will
                .as_ref()
                .map(|w| (w.topic.clone(), w.message.to_vec(), w.qos as u8, w.retain)),
            username: c.login.as_ref().map(|l| l.username.clone()),
            password: c.login.as_ref().map(|l| l.password.as_bytes().to_vec()),
        },
        RuPacket::Publish(p) => Fields::Publish {
            dup: p.dup,
            qos: p.qos as u8,
            retain: p.retain,
            packet_id: (p.qos as u8 > 0).then_some(p.pkid),
            topic: p.topic.clone(),
            payload: p.payload.to_vec(),
        },
        RuPacket::PubAck(a) => Fields::PubAck(a.pkid),
        RuPacket::Subscribe(s) => Fields::Subscribe(
            s.pkid,
            s.filters
                .iter()
                .map(|f| (f.path.clone(), f.qos as u8))
                .collect(),
        ),
        RuPacket::SubAck(s) => Fields::SubAck(
            s.pkid,
            s.return_codes
                .iter()
                .map(|c| match c {
                    SubscribeReasonCode::Success(q) => *q as u8,
                    SubscribeReasonCode::Failure => 0x80,
                })
                .collect(),
        ),
        RuPacket::Unsubscribe(u) => Fields::Unsubscribe(u.pkid, u.topics.clone()),
        RuPacket::PingReq => Fields::PingReq,
        other => panic!("not in the workloads: {other:?}"),
    }
}

fn mqttrs_qos(q: mqttrs::QoS) -> u8 {
    match q {
        mqttrs::QoS::AtMostOnce => 0,
        mqttrs::QoS::AtLeastOnce => 1,
        mqttrs::QoS::ExactlyOnce => 2,
    }
}

fn mqttrs_fields(p: &RsPacket<'_>) -> Fields {
    use mqttrs::{QosPid, SubscribeReturnCodes};
    match p {
        RsPacket::Connect(c) => Fields::Connect {
            client_id: c.client_id.into(),
            keep_alive: c.keep_alive,
            clean_session: c.clean_session,
            will: c.last_will.as_ref().map(|w| {
                (
                    w.topic.into(),
                    w.message.to_vec(),
                    mqttrs_qos(w.qos),
                    w.retain,
                )
            }),
            username: c.username.map(Into::into),
            password: c.password.map(<[u8]>::to_vec),
        },
        RsPacket::Publish(p) => Fields::Publish {
            dup: p.dup,
            qos: mqttrs_qos(p.qospid.qos()),
            retain: p.retain,
            packet_id: match p.qospid {
                QosPid::AtMostOnce => None,
                QosPid::AtLeastOnce(id) | QosPid::ExactlyOnce(id) => Some(id.get()),
            },
            topic: p.topic_name.into(),
            payload: p.payload.to_vec(),
        },
        RsPacket::Puback(id) => Fields::PubAck(id.get()),
        RsPacket::Subscribe(s) => Fields::Subscribe(
            s.pid.get(),
            s.topics
                .iter()
                .map(|t| (t.topic_path.clone(), mqttrs_qos(t.qos)))
                .collect(),
        ),
        RsPacket::Suback(s) => Fields::SubAck(
            s.pid.get(),
            s.return_codes
                .iter()
                .map(|c| match c {
                    SubscribeReturnCodes::Success(q) => mqttrs_qos(*q),
                    SubscribeReturnCodes::Failure => 0x80,
                })
                .collect(),
        ),
        RsPacket::Unsubscribe(u) => Fields::Unsubscribe(u.pid.get(), u.topics.clone()),
        RsPacket::Pingreq => Fields::PingReq,
        other => panic!("not in the workloads: {other:?}"),
    }
}

fn mqtt_protocol_fields(p: &MpPacket) -> Fields {
    use mqtt::packet::QoSWithPacketIdentifier as Q;
    match p {
        MpPacket::ConnectPacket(c) => Fields::Connect {
            client_id: c.client_identifier().into(),
            keep_alive: c.keep_alive(),
            clean_session: c.clean_session(),
            will: c
                .will()
                .map(|(t, m)| (t.into(), m.to_vec(), c.will_qos(), c.will_retain())),
            username: c.user_name().map(Into::into),
            password: c.password().map(|p| p.as_bytes().to_vec()),
        },
        MpPacket::PublishPacket(p) => {
            let (qos, packet_id) = match p.qos() {
                Q::Level0 => (0, None),
                Q::Level1(id) => (1, Some(id)),
                Q::Level2(id) => (2, Some(id)),
            };
            Fields::Publish {
                dup: p.dup(),
                qos,
                retain: p.retain(),
                packet_id,
                topic: p.topic_name().into(),
                payload: p.payload().to_vec(),
            }
        }
        MpPacket::PubackPacket(a) => Fields::PubAck(a.packet_identifier()),
        MpPacket::SubscribePacket(s) => Fields::Subscribe(
            s.packet_identifier(),
            s.subscribes()
                .iter()
                .map(|(f, q)| (f.to_string(), *q as u8))
                .collect(),
        ),
        MpPacket::SubackPacket(s) => Fields::SubAck(
            s.packet_identifier(),
            s.subscribes().iter().map(|&c| c as u8).collect(),
        ),
        MpPacket::UnsubscribePacket(u) => Fields::Unsubscribe(
            u.packet_identifier(),
            u.subscribes().iter().map(|f| f.to_string()).collect(),
        ),
        MpPacket::PingreqPacket(_) => Fields::PingReq,
        other => panic!("not in the workloads: {other:?}"),
    }
}

// One packet through each crate's decoder. Each returns the packet and the bytes used.

fn ours_decode(buf: &[u8]) -> (mqtt_sansio::Packet<&[u8]>, usize) {
    match mqtt_sansio::decode(buf) {
        Ok(mqtt_sansio::Status::Complete(p, n)) => (p, n),
        other => panic!("mqtt-sansio: {other:?}"),
    }
}

fn ours_decode_bytes(buf: &mut BytesMut) -> mqtt_sansio::Packet<Bytes> {
    match mqtt_sansio::decode_bytes(buf) {
        Ok(mqtt_sansio::Status::Complete(p, _)) => p,
        other => panic!("mqtt-sansio: {other:?}"),
    }
}

fn ours_decode_frame(buf: &mut BytesMut) -> mqtt_sansio::Frame {
    match mqtt_sansio::decode_frame(buf) {
        Ok(mqtt_sansio::Status::Complete(f, _)) => f,
        other => panic!("mqtt-sansio: {other:?}"),
    }
}

fn rumqttc_decode(buf: &mut BytesMut) -> RuPacket {
    RuPacket::read(buf, usize::MAX).expect("rumqttc decodes the workload")
}

fn mqttrs_decode(buf: &[u8]) -> RsPacket<'_> {
    mqttrs::decode_slice(buf)
        .expect("mqttrs decodes the workload")
        .expect("mqttrs: whole packet")
}

fn mqtt_protocol_decode(r: &mut &[u8]) -> MpPacket {
    MpPacket::decode(r).expect("mqtt-protocol decodes the workload")
}

/// The size of the packet at the front of `buf`. mqttrs's `decode_slice` does not say
/// how many bytes it used, so a stream reader on top of it has to work this out.
fn frame_len(buf: &[u8]) -> usize {
    let mut len = 0usize;
    for (i, &b) in buf[1..].iter().take(4).enumerate() {
        len |= ((b & 0x7F) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return 2 + i + len;
        }
    }
    panic!("bad remaining length")
}

/// Every crate decodes `bytes` (one or many packets) to the same fields, and encodes
/// each packet back to the same bytes. Returns the fields.
fn verify(name: &str, bytes: &[u8]) -> Vec<Fields> {
    let mut want = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (p, n) = ours_decode(rest);
        want.push(ours(&p));
        assert_eq!(
            &p.to_owned().to_bytes().unwrap()[..],
            &rest[..n],
            "mqtt-sansio re-encodes {name}"
        );
        rest = &rest[n..];
    }

    let mut buf = BytesMut::from(bytes);
    let mut got = Vec::new();
    while !buf.is_empty() {
        got.push(ours(&ours_decode_bytes(&mut buf)));
    }
    assert_eq!(got, want, "mqtt-sansio decode_bytes on {name}");

    let mut buf = BytesMut::from(bytes);
    let mut got = Vec::new();
    while !buf.is_empty() {
        got.push(ours(&ours_decode_frame(&mut buf).packet()));
    }
    assert_eq!(got, want, "mqtt-sansio decode_frame on {name}");

    let mut buf = BytesMut::from(bytes);
    let mut got = Vec::new();
    let mut out = BytesMut::new();
    while !buf.is_empty() {
        let p = rumqttc_decode(&mut buf);
        got.push(rumqttc_fields(&p));
        p.write(&mut out, usize::MAX).unwrap();
    }
    assert_eq!(got, want, "rumqttc on {name}");
    assert_eq!(&out[..], bytes, "rumqttc re-encodes {name}");

    let mut rest = bytes;
    let mut got = Vec::new();
    let mut out = vec![0u8; bytes.len()];
    let mut at = 0;
    while !rest.is_empty() {
        let p = mqttrs_decode(rest);
        got.push(mqttrs_fields(&p));
        at += mqttrs::encode_slice(&p, &mut out[at..]).unwrap();
        rest = &rest[frame_len(rest)..];
    }
    assert_eq!(got, want, "mqttrs on {name}");
    assert_eq!(&out[..at], bytes, "mqttrs re-encodes {name}");

    let mut rest = bytes;
    let mut got = Vec::new();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let p = mqtt_protocol_decode(&mut rest);
        got.push(mqtt_protocol_fields(&p));
        p.encode(&mut out).unwrap();
    }
    assert_eq!(got, want, "mqtt-protocol on {name}");
    assert_eq!(&out[..], bytes, "mqtt-protocol re-encodes {name}");
    want
}

fn memcpy(g: &mut BenchmarkGroup<'_, WallTime>, src: &[u8]) {
    let mut dst = vec![0u8; src.len()];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(src));
            black_box(&mut dst);
        })
    });
}

fn decode_single(c: &mut Criterion) {
    for (name, bytes) in workloads::single() {
        assert_eq!(verify(name, &bytes), vec![expected(name)], "{name}");
        let stream = workloads::repeated(&bytes);
        let mut g = c.benchmark_group(format!("decode/{name}"));
        decode_rows(&mut g, &stream, workloads::REPEAT, workloads::reader_buf);
        g.finish();
    }
}

fn decode_stream(c: &mut Criterion) {
    let (bytes, count) = workloads::mixed_stream();
    assert_eq!(verify("mixed stream", &bytes).len(), count);
    let mut g = c.benchmark_group("decode/mixed_4MiB");
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

/// Each crate's packets for `bytes`, decoded once, for the encode benchmarks.
struct Built<'a> {
    ours: Vec<mqtt_sansio::Packet<Bytes>>,
    rumqttc: Vec<RuPacket>,
    mqttrs: Vec<RsPacket<'a>>,
    mqtt_protocol: Vec<MpPacket>,
}

fn build(bytes: &[u8]) -> Built<'_> {
    let mut b = Built {
        ours: Vec::new(),
        rumqttc: Vec::new(),
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

fn encode_group(c: &mut Criterion, name: &str, bytes: &[u8]) {
    let built = build(bytes);
    let len = bytes.len();
    let mut g = c.benchmark_group(format!("encode/{name}"));
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
    g.bench_function("rumqttc", |b| {
        b.iter(|| {
            buf.clear();
            for p in black_box(&built.rumqttc) {
                p.write(&mut buf, usize::MAX).unwrap();
            }
            black_box(&mut buf);
        })
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

fn encode_all(c: &mut Criterion) {
    for (name, bytes) in workloads::single() {
        encode_group(c, name, &bytes);
    }
    let (bytes, _) = workloads::mixed_stream();
    encode_group(c, "mixed_4MiB", &bytes);
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
    targets = decode_single, decode_stream, encode_all
}
criterion_main!(benches);
