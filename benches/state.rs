//! State machine benchmarks: the client's publish round trip, the server connection
//! turning bytes into events, the broker routing one publish to many subscribers
//! (`broker/fanout_10000`: one QoS 0 PUBLISH to 10 000), and the subscription index
//! matching one topic among many filters.
//!
//! Run: `cargo bench --bench state -- --warm-up-time 1 --measurement-time 3`, then
//! `python3 benches/report.py --state` for the tables (with the time per delivery and
//! the index's largest / smallest ratio). Instructions per operation, which do not
//! depend on the machine's load: `python3 benches/callgrind.py --state` (the same
//! workloads, run by `examples/state_ops.rs`).

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mqtt_sansio::broker::{Action as BrokerAction, Broker, BrokerConfig, ConnId};
use mqtt_sansio::client::{Action as ClientAction, Event};
use mqtt_sansio::server::{Action as ServerAction, ServerConfig, ServerEvent};
use mqtt_sansio::topic::SubscriptionIndex;
use mqtt_sansio::{
    Client, ConnAck, Connect, Instant, MqttString, Packet, PacketId, Profile, Publish, QoS, QosPid,
    Server, Subscribe, TopicFilter, TopicName,
};

#[path = "common/workloads.rs"]
mod workloads;

const NOW: Instant = Instant::ZERO;

fn connect_packet(client_id: &str) -> Packet<Bytes> {
    Packet::Connect(Connect {
        client_id: MqttString::try_from(client_id).unwrap(),
        clean_session: true,
        keep_alive: 0,
        will: None,
        login: None,
    })
}

fn bytes_of(p: &Packet<Bytes>) -> Bytes {
    p.to_bytes().unwrap()
}

fn topic() -> TopicName<Bytes> {
    TopicName::from_static(workloads::TOPIC).unwrap()
}

/// A connected client: CONNECT sent, CONNACK handled.
fn connected_client() -> Client {
    let mut c = Client::new(Profile::mqtt311());
    let Packet::Connect(connect) = connect_packet("bench-client") else {
        unreachable!()
    };
    c.connect(NOW, connect).unwrap();
    while c.poll_action().is_some() {}
    let connack = Packet::<Bytes>::ConnAck(ConnAck::Accepted {
        session_present: false,
    });
    c.handle_bytes(NOW, &bytes_of(&connack)).unwrap();
    let mut connected = false;
    while let Some(a) = c.poll_action() {
        connected |= matches!(a, ClientAction::Event(Event::Connected { .. }));
    }
    assert!(connected, "the client connects");
    c
}

/// One message through the client: publish, encode what it sends (the transmit), and
/// at QoS 1 feed the PUBACK back until the Published event. Returns the events seen.
fn round_trip(c: &mut Client, qos: QoS, payload: &Bytes, wire: &mut BytesMut) -> usize {
    let id = c
        .publish(NOW, topic(), qos, false, payload.clone())
        .unwrap();
    let mut done = 0;
    while let Some(a) = c.poll_action() {
        if let ClientAction::Send(p) = a {
            wire.clear();
            p.encode(wire).unwrap();
        }
    }
    if let Some(id) = id {
        let [hi, lo] = id.get().to_be_bytes();
        c.handle_bytes(NOW, &[0x40, 0x02, hi, lo]).unwrap();
        while let Some(a) = c.poll_action() {
            if matches!(a, ClientAction::Event(Event::Published(p)) if p == id) {
                done += 1;
            }
        }
    } else {
        done += 1;
    }
    done
}

fn client(c: &mut Criterion) {
    let payload = Bytes::from(workloads::payload(64));
    let mut g = c.benchmark_group("client/publish_round_trip");
    g.throughput(Throughput::Elements(1));
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let mut cl = connected_client();
        let mut wire = BytesMut::with_capacity(256);
        assert_eq!(round_trip(&mut cl, qos, &payload, &mut wire), 1);
        assert!(!wire.is_empty());
        g.bench_function(format!("qos{}", qos.as_u8()), |b| {
            b.iter(|| round_trip(&mut cl, qos, black_box(&payload), &mut wire))
        });
        assert_eq!(cl.inflight(), 0, "every QoS 1 message was acknowledged");
    }
    g.finish();
}

/// The client's side of a stream for a server connection: QoS 0 and QoS 1 PUBLISHes
/// and pings, about 64 KiB. Returns the bytes and the number of PUBLISHes.
fn server_stream() -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut publishes = 0;
    let mut id = PacketId::new(1).unwrap();
    while out.len() < 64 * 1024 {
        for (qos, n) in [(0, 16), (0, 256), (1, 1024), (0, 64)] {
            let qos = if qos == 0 {
                QosPid::AtMostOnce
            } else {
                id = id.next();
                QosPid::AtLeastOnce(id)
            };
            let p = Packet::Publish(Publish::new(topic(), qos, workloads::payload(n)));
            out.extend_from_slice(&bytes_of(&p));
            publishes += 1;
        }
        out.extend_from_slice(&workloads::pingreq());
    }
    (out, publishes)
}

fn accepted_server() -> Server {
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    s.handle_bytes(NOW, &bytes_of(&connect_packet("bench-device")));
    let mut asked = false;
    while let Some(a) = s.poll_action() {
        asked |= matches!(a, ServerAction::Event(ServerEvent::Connect(_)));
    }
    assert!(asked, "the server asks to accept the CONNECT");
    s.accept(NOW, None).unwrap();
    while s.poll_action().is_some() {}
    assert!(s.is_connected());
    s
}

/// Feeds the stream to the server and drains its actions; returns the Publish events.
fn serve(s: &mut Server, stream: &[u8], wire: &mut BytesMut) -> usize {
    s.handle_bytes(NOW, stream);
    let mut events = 0;
    while let Some(a) = s.poll_action() {
        match a {
            ServerAction::Event(ServerEvent::Publish(m)) => {
                black_box(&m);
                events += 1;
            }
            ServerAction::Send(p) => {
                wire.clear();
                p.encode(wire).unwrap();
            }
            ServerAction::Close(r) => panic!("closed: {r:?}"),
            ServerAction::Event(_) | ServerAction::Change(_) => {}
        }
    }
    events
}

fn server(c: &mut Criterion) {
    let (stream, publishes) = server_stream();
    let mut g = c.benchmark_group("server/bytes_to_events");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    let mut s = accepted_server();
    let mut wire = BytesMut::with_capacity(64);
    assert_eq!(serve(&mut s, &stream, &mut wire), publishes);
    g.bench_function("publish_mix_64KiB", |b| {
        b.iter(|| serve(&mut s, black_box(&stream), &mut wire))
    });
    assert!(s.is_connected());
    g.finish();
}

/// A broker with `n` subscribers to the benchmark topic (connections 1..=n) and one
/// publisher (connection 0), every CONNACK and SUBACK drained.
fn broker_with(n: u64) -> Broker {
    let mut b = Broker::new(Profile::mqtt311(), BrokerConfig::default());
    let filter = TopicFilter::from_static(workloads::TOPIC).unwrap();
    let subscribe = bytes_of(&Packet::Subscribe(
        Subscribe::new(PacketId::new(1).unwrap(), &[(filter, QoS::AtMostOnce)]).unwrap(),
    ));
    for conn in 0..=n {
        b.open(NOW, ConnId(conn)).unwrap();
        let id = if conn == 0 {
            "publisher".to_string()
        } else {
            format!("sub-{conn}")
        };
        b.handle_bytes(NOW, ConnId(conn), &bytes_of(&connect_packet(&id)));
        if conn > 0 {
            b.handle_bytes(NOW, ConnId(conn), &subscribe);
        }
        while b.poll_action().is_some() {}
    }
    b
}

/// One publish from connection 0; returns how many PUBLISHes the broker sent.
fn route(b: &mut Broker, publish: &[u8]) -> usize {
    b.handle_bytes(NOW, ConnId(0), publish);
    let mut sent = 0;
    while let Some(a) = b.poll_action() {
        if let BrokerAction::Send {
            packet: Packet::Publish(p),
            ..
        } = a
        {
            black_box(&p);
            sent += 1;
        }
    }
    sent
}

fn broker(c: &mut Criterion) {
    let publish = bytes_of(&Packet::Publish(Publish::new(
        topic(),
        QosPid::AtMostOnce,
        workloads::payload(64),
    )));
    let mut g = c.benchmark_group("broker/route_one_publish");
    for n in [1u64, 100] {
        let mut b = broker_with(n);
        assert_eq!(
            route(&mut b, &publish),
            n as usize,
            "every subscriber gets it"
        );
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("{n}_subscribers"), |bch| {
            bch.iter(|| route(&mut b, black_box(&publish)))
        });
    }
    g.finish();
    // The fan-out bound: one QoS 0 PUBLISH to 10 000 subscribers (per delivery in the
    // report, the time divided by the subscribers).
    let mut g = c.benchmark_group("broker/fanout_10000");
    let mut b = broker_with(10_000);
    assert_eq!(route(&mut b, &publish), 10_000, "every subscriber gets it");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("qos0_64B", |bch| {
        bch.iter(|| route(&mut b, black_box(&publish)))
    });
    g.finish();
}

/// `n` filters over a fleet: `tenant-T/device-D/sensor/S`, one in ten with a `+` for
/// the sensor, one in a hundred ending in `#` at the device, one in a thousand `+` for
/// the tenant.
fn filters(n: usize) -> Vec<TopicFilter<Bytes>> {
    (0..n)
        .map(|i| {
            let (t, d, s) = (i / 10_000, (i / 10) % 1000, i % 10);
            let f = match i % 1000 {
                0 => format!("+/device-{d}/sensor/{s}"),
                x if x % 100 == 1 => format!("tenant-{t}/device-{d}/#"),
                x if x % 10 == 2 => format!("tenant-{t}/device-{d}/sensor/+"),
                _ => format!("tenant-{t}/device-{d}/sensor/{s}"),
            };
            TopicFilter::try_from(f.as_str()).unwrap()
        })
        .collect()
}

fn index(c: &mut Criterion) {
    let topic = b"tenant-0/device-42/sensor/3";
    let mut g = c.benchmark_group("index/match_one_topic");
    g.throughput(Throughput::Elements(1));
    for n in [10_000usize, 100_000, 1_000_000] {
        let mut idx = SubscriptionIndex::new(true);
        for (k, f) in filters(n).iter().enumerate() {
            idx.insert(f, k as u32, QoS::AtMostOnce);
        }
        assert_eq!(idx.len(), n);
        let mut hits = 0;
        idx.for_each_match(topic, |_, _| hits += 1);
        assert!(hits >= 1, "the topic matches its own filter");
        g.bench_function(format!("{n}_filters"), |b| {
            b.iter(|| {
                let mut hits = 0usize;
                idx.for_each_match(black_box(topic), |k, _| hits += *k as usize);
                hits
            })
        });
    }
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
    targets = client, server, broker, index
}
criterion_main!(benches);
