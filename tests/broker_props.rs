//! Broker properties over random workloads: routing against a model of the
//! subscriptions, and what a lossy or reordered run may and may not lose.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use mqtt_sansio::broker::{Action, BrokerEvent};
use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::{Packet, Profile, QoS};
use proptest::prelude::*;
use support::harness::{Harness, connect, pid, publish, publishes, subscribe};

fn level() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("a"), Just("b"), Just("$s")]
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..4).prop_map(|l| {
        // `$` may only lead.
        l.iter()
            .enumerate()
            .map(|(i, s)| if i > 0 && s.starts_with('$') { "a" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    })
}

fn filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just("+"), Just("$s")],
            0..3,
        ),
        any::<bool>(),
    )
        .prop_map(|(levels, hash)| {
            let mut l: Vec<&str> = levels
                .iter()
                .enumerate()
                .map(|(i, s)| if i > 0 && s.starts_with('$') { "b" } else { *s })
                .collect();
            if hash || l.is_empty() {
                l.push("#");
            }
            l.join("/")
        })
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Arbitrary bytes on two connections, with time passing, never make the broker
    /// panic, and everything it sends encodes and decodes back to itself.
    #[test]
    fn arbitrary_input_is_survived_and_every_sent_packet_is_valid(
        aws in any::<bool>(),
        chunks in prop::collection::vec((1u64..3, prop::collection::vec(any::<u8>(), 0..40), 0u64..20_000), 1..30),
    ) {
        let profile = if aws { Profile::aws_iot_core() } else { Profile::mqtt311() };
        let mut h = Harness::new(profile);
        h.open(1);
        h.open(2);
        // A valid start on connection 1, so that later garbage reaches connected state.
        h.send(1, Packet::Connect(connect("c", false, 10, None)));
        h.send(1, subscribe(1, &[("#", QoS::AtLeastOnce)]));
        for (c, bytes, ms) in chunks {
            if !h.is_closed(c) {
                h.send_bytes(c, &bytes);
            }
            h.advance(ms);
        }
        for a in &h.log {
            if let Action::Send { packet, .. } = a {
                let wire = packet.to_bytes().unwrap();
                match mqtt_sansio::decode(&wire) {
                    Ok(mqtt_sansio::Status::Complete(back, n)) => {
                        prop_assert_eq!(n, wire.len());
                        prop_assert_eq!(&back.to_owned(), packet);
                    }
                    other => prop_assert!(false, "{other:?}"),
                }
            }
        }
    }

    /// Every client gets exactly one copy of each message that matches one of its
    /// filters, and nothing else.
    #[test]
    fn messages_reach_exactly_the_matching_subscribers_once(
        aws in any::<bool>(),
        subs in prop::collection::vec(prop::collection::vec((filter(), qos()), 1..4), 1..4),
        msgs in prop::collection::vec((topic(), any::<bool>()), 1..12),
    ) {
        let profile = if aws { Profile::aws_iot_core() } else { Profile::mqtt311() };
        let hmp = profile.hash_matches_parent;
        let mut h = Harness::new(profile);
        for (i, filters) in subs.iter().enumerate() {
            let c = i as u64 + 1;
            h.connect(c, &format!("s{c}"), true);
            // QoS 1 at most, which both profiles grant.
            let fs: Vec<(&str, QoS)> = filters.iter().map(|(f, q)| (f.as_str(), (*q).min(QoS::AtLeastOnce))).collect();
            h.subscribe(c, 1, &fs);
        }
        let p = 100;
        h.connect(p, "pub", true);
        for (n, (t, q1)) in msgs.iter().enumerate() {
            let q = if *q1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
            h.send(p, publish(t, q, n as u16 + 1, &n.to_string()));
        }
        for (i, filters) in subs.iter().enumerate() {
            let c = i as u64 + 1;
            let got = publishes(&h.take(c));
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for g in &got {
                prop_assert!(
                    filters.iter().any(|(f, _)| mqtt_sansio::topic::matches(f.as_bytes(), g.topic.as_bytes(), hmp)),
                    "{} delivered to {c} with filters {filters:?}", g.topic
                );
                *seen.entry(String::from_utf8_lossy(&g.payload).into_owned()).or_default() += 1;
            }
            for (n, (t, _)) in msgs.iter().enumerate() {
                let matching = filters.iter().any(|(f, _)| mqtt_sansio::topic::matches(f.as_bytes(), t.as_bytes(), hmp));
                let copies = seen.get(&n.to_string()).copied().unwrap_or(0);
                prop_assert_eq!(copies, usize::from(matching), "message {} on {} to {}", n, t, c);
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Publish,
    Drop,
    Reconnect,
    Ack(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Publish),
        1 => Just(Op::Drop),
        1 => Just(Op::Reconnect),
        2 => (0usize..4).prop_map(Op::Ack),
    ]
}

/// A persistent QoS 1 subscriber that drops and comes back; returns the payloads the
/// publisher got PUBACK for and the payloads the subscriber received.
fn lossy_run(
    profile: Profile,
    ops: &[Op],
    bound: usize,
) -> (BTreeSet<String>, BTreeSet<String>, Harness) {
    let config = ServerConfig {
        max_queued: bound,
        max_inflight: 3,
        ..ServerConfig::default()
    };
    let mut h = Harness::with_config(profile, config);
    let pubc = 1000;
    h.connect(pubc, "pub", true);
    let mut sub = 1;
    h.connect(sub, "s", false);
    h.subscribe(sub, 1, &[("t", QoS::AtLeastOnce)]);
    let mut online = true;
    let mut acked = BTreeSet::new();
    let mut received = BTreeSet::new();
    let mut unacked: Vec<mqtt_sansio::PacketId> = Vec::new();
    let mut published = 0u16;
    let collect = |h: &mut Harness,
                   sub: u64,
                   unacked: &mut Vec<mqtt_sansio::PacketId>,
                   received: &mut BTreeSet<String>| {
        for p in publishes(&h.take(sub)) {
            received.insert(String::from_utf8_lossy(&p.payload).into_owned());
            if let Some(id) = p.qos.packet_id() {
                if !unacked.contains(&id) {
                    unacked.push(id);
                }
            }
        }
    };
    for o in ops {
        match o {
            Op::Publish if (published as usize) < bound => {
                published += 1;
                h.send(
                    pubc,
                    publish("t", QoS::AtLeastOnce, published, &published.to_string()),
                );
                if h.take(pubc) == vec![Packet::PubAck(pid(published))] {
                    acked.insert(published.to_string());
                }
            }
            Op::Publish => {}
            Op::Drop if online => {
                h.drop_conn(sub);
                online = false;
                unacked.clear();
            }
            Op::Reconnect if !online => {
                sub += 1;
                h.connect(sub, "s", false);
                online = true;
            }
            Op::Ack(n) if online => {
                let n = (*n).min(unacked.len());
                for id in unacked.drain(..n) {
                    h.send(sub, Packet::PubAck(id));
                }
            }
            _ => {}
        }
        if online {
            collect(&mut h, sub, &mut unacked, &mut received);
        }
    }
    if !online {
        sub += 1;
        h.connect(sub, "s", false);
    }
    for _ in 0..(bound + 2) {
        collect(&mut h, sub, &mut unacked, &mut received);
        for id in std::mem::take(&mut unacked) {
            h.send(sub, Packet::PubAck(id));
        }
    }
    (acked, received, h)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Up to the queue bound, no QoS 1 message the broker acknowledged is lost, however
    /// the subscriber drops, resumes and acknowledges.
    #[test]
    fn an_acknowledged_qos1_message_is_never_lost_below_the_queue_bound(
        aws in any::<bool>(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let profile = if aws { Profile::aws_iot_core() } else { Profile::mqtt311() };
        let (acked, received, h) = lossy_run(profile, &ops, 6);
        let missing: Vec<&String> = acked.difference(&received).collect();
        prop_assert!(missing.is_empty(), "lost {missing:?}");
        let dropped = h.events.iter().any(|e| matches!(e, BrokerEvent::Dropped { .. }));
        prop_assert!(!dropped, "a message was dropped below the bound");
        prop_assert_eq!(h.broker.session("s").map(|s| s.inflight() + s.queued()), Some(0));
    }

    /// A packet id is never given to a new PUBLISH while another with that id awaits its
    /// acknowledgement, across QoS 1 and 2, drops and resumes.
    #[test]
    fn an_id_in_flight_is_never_reused(
        aws in any::<bool>(),
        ops in prop::collection::vec((op(), any::<bool>()), 1..60),
    ) {
        let profile = if aws { Profile::aws_iot_core() } else { Profile::mqtt311() };
        let config = ServerConfig { max_inflight: 4, ..ServerConfig::default() };
        let mut h = Harness::with_config(profile, config);
        let pubc = 1000;
        h.connect(pubc, "pub", true);
        let mut sub = 1;
        h.connect(sub, "s", false);
        h.subscribe(sub, 1, &[("t", QoS::ExactlyOnce)]);
        let mut online = true;
        // Id → QoS 2 stage (false: PUBLISH seen, true: PUBREL seen).
        let mut inflight: BTreeMap<u16, (QoS, bool)> = BTreeMap::new();
        let mut n = 0u16;
        for (o, q2) in &ops {
            match o {
                Op::Publish => {
                    n += 1;
                    let q = if *q2 && !aws { QoS::ExactlyOnce } else { QoS::AtLeastOnce };
                    h.send(pubc, publish("t", q, n, "m"));
                    h.send(pubc, Packet::PubRel(pid(n)));
                    h.take(pubc);
                }
                Op::Drop if online => { h.drop_conn(sub); online = false; }
                Op::Reconnect if !online => {
                    sub += 1;
                    h.connect(sub, "s", false);
                    online = true;
                    // What the session resends is what is in flight now.
                    let before = std::mem::take(&mut inflight);
                    for p in h.inbox.get(&sub).cloned().unwrap_or_default() {
                        match p {
                            Packet::Publish(p) if p.dup || aws => {
                                let id = p.qos.packet_id().unwrap().get();
                                if !aws {
                                    prop_assert!(before.contains_key(&id), "resent unknown id {id}");
                                }
                                prop_assert!(inflight.insert(id, (p.qos.qos(), false)).is_none());
                            }
                            Packet::PubRel(id) => {
                                prop_assert!(inflight.insert(id.get(), (QoS::ExactlyOnce, true)).is_none());
                            }
                            _ => {}
                        }
                    }
                    if let Some(q) = h.inbox.get_mut(&sub) {
                        q.retain(|p| !matches!(p, Packet::Publish(p) if p.dup || aws) && !matches!(p, Packet::PubRel(_)));
                    }
                }
                Op::Ack(k) if online => {
                    if let Some((&id, &(q, released))) = inflight.iter().nth(*k % inflight.len().max(1)) {
                        let ack = match (q, released) {
                            (QoS::ExactlyOnce, false) => Packet::PubRec(pid(id)),
                            (QoS::ExactlyOnce, true) => Packet::PubComp(pid(id)),
                            _ => Packet::PubAck(pid(id)),
                        };
                        if !matches!(ack, Packet::PubRec(_)) {
                            inflight.remove(&id);
                        }
                        h.send(sub, ack);
                    }
                }
                _ => {}
            }
            if online {
                for p in h.take(sub) {
                    match p {
                        Packet::Publish(p) => {
                            let id = p.qos.packet_id().unwrap().get();
                            prop_assert!(!p.dup);
                            prop_assert!(!inflight.contains_key(&id), "id {id} reused while in flight");
                            inflight.insert(id, (p.qos.qos(), false));
                        }
                        Packet::PubRel(id) => {
                            let e = inflight.get_mut(&id.get());
                            prop_assert!(e.is_some(), "PUBREL for {id} not in flight");
                            if let Some(e) = e { e.1 = true; }
                        }
                        other => prop_assert!(false, "unexpected {other:?}"),
                    }
                }
            }
        }
    }
}
