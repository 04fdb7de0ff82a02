//! Retained delivery on SUBSCRIBE: one SUBSCRIBE of 1 000 wildcard filters against a
//! store of 10 000 and 100 000 retained messages, each filter matching 10 of them.
//! The cost should follow the 10 000 messages delivered, not the size of the store.
//!
//! ```text
//! cargo bench --bench retained
//! ```

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mqtt_sansio::broker::{Action, Broker, BrokerConfig, ConnId};
use mqtt_sansio::{
    Connect, Instant, MqttString, Packet, PacketId, Profile, Publish, QoS, QosPid, Subscribe,
    TopicFilter, TopicName,
};

const NOW: Instant = Instant::ZERO;
const FILTERS: usize = 1000;

fn connect(b: &mut Broker, conn: u64, id: &str) {
    b.open(NOW, ConnId(conn)).unwrap();
    let c = Packet::Connect(Connect {
        client_id: MqttString::new(Bytes::from(id.to_string())).unwrap(),
        clean_session: true,
        keep_alive: 0,
        will: None,
        login: None,
    });
    b.handle_bytes(NOW, ConnId(conn), &c.to_bytes().unwrap());
    while b.poll_action().is_some() {}
}

/// A broker holding `n` retained messages on `r/{i / 10}/{i % 10}`, and a subscriber
/// on connection 1.
fn broker_with(n: usize) -> Broker {
    let mut b = Broker::new(Profile::mqtt311(), BrokerConfig::default());
    connect(&mut b, 0, "publisher");
    connect(&mut b, 1, "subscriber");
    let mut wire = Vec::new();
    for i in 0..n {
        let topic = TopicName::new(Bytes::from(format!("r/{}/{}", i / 10, i % 10))).unwrap();
        let mut p = Publish::new(topic, QosPid::AtMostOnce, Bytes::from_static(b"v"));
        p.retain = true;
        wire.extend_from_slice(&Packet::Publish(p).to_bytes().unwrap());
    }
    b.handle_bytes(NOW, ConnId(0), &wire);
    while b.poll_action().is_some() {}
    assert_eq!(b.retained_len(), n);
    b
}

fn subscribe_packet() -> Vec<u8> {
    let filters: Vec<(TopicFilter<Bytes>, QoS)> = (0..FILTERS)
        .map(|k| {
            let f = TopicFilter::new(Bytes::from(format!("r/{k}/+"))).unwrap();
            (f, QoS::AtMostOnce)
        })
        .collect();
    let s = Subscribe::new(PacketId::new(1).unwrap(), &filters).unwrap();
    Packet::Subscribe(s).to_bytes().unwrap().to_vec()
}

/// One SUBSCRIBE; returns how many retained PUBLISH came back.
fn subscribe(b: &mut Broker, packet: &[u8]) -> usize {
    b.handle_bytes(NOW, ConnId(1), packet);
    let mut sent = 0;
    while let Some(a) = b.poll_action() {
        if let Action::Send {
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

fn retained(c: &mut Criterion) {
    let packet = subscribe_packet();
    let mut g = c.benchmark_group("broker/subscribe_1000_wildcards");
    for n in [10_000usize, 100_000] {
        let mut b = broker_with(n);
        assert_eq!(subscribe(&mut b, &packet), FILTERS * 10);
        g.throughput(Throughput::Elements((FILTERS * 10) as u64));
        g.bench_function(format!("{n}_retained"), |bch| {
            bch.iter(|| subscribe(&mut b, black_box(&packet)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);
    targets = retained
}
criterion_main!(benches);
