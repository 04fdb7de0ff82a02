//! Many retained messages for one new subscription: they follow the SUBACK through the
//! session's bounded queue and inflight window, as the subscriber reads, none dropped.

mod support;

use bytes::Bytes;
use mqtt_sansio::broker::BrokerEvent;
use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::{Packet, Profile, Publish, QoS, QosPid};
use support::harness::{Harness, publish, publishes, retained, subscribe};

const PUBLISHER: u64 = 1;
const SUBSCRIBER: u64 = 2;

/// A broker whose sessions queue at most `queued` messages behind `window` in flight,
/// holding `n` retained messages `r/00000`… at `qos` (payload: the index).
fn store(n: usize, qos: QoS, queued: usize, window: usize) -> Harness {
    let config = ServerConfig {
        max_queued: queued,
        max_inflight: window,
        ..ServerConfig::default()
    };
    let mut h = Harness::with_config(Profile::mqtt311(), config);
    h.connect(PUBLISHER, "publisher", true);
    for i in 0..n {
        let id = (i % 60_000 + 1) as u16;
        h.send(PUBLISHER, retained(&topic(i), qos, id, &format!("{i}")));
    }
    h.take(PUBLISHER);
    assert_eq!(h.broker.retained_len(), n);
    h
}

fn topic(i: usize) -> String {
    format!("r/{i:05}")
}

/// Acknowledges every QoS 1 PUBLISH among `packets` on `c`.
fn ack(h: &mut Harness, c: u64, packets: &[Publish<Bytes>]) {
    for p in packets {
        if let QosPid::AtLeastOnce(id) = p.qos {
            h.send(c, Packet::PubAck(id));
        }
    }
}

/// Reads `c` until nothing more comes, acknowledging `step` messages at a time;
/// returns every PUBLISH in order of arrival.
fn read_all(h: &mut Harness, c: u64, step: usize) -> Vec<Publish<Bytes>> {
    let mut all = Vec::new();
    let mut unacked: Vec<Publish<Bytes>> = Vec::new();
    loop {
        let got = publishes(&h.take(c));
        unacked.extend(got.iter().cloned());
        all.extend(got);
        if unacked.is_empty() {
            // A QoS 0 reader tells the broker its transport drained.
            h.writable(c);
            let more = publishes(&h.take(c));
            if more.is_empty() {
                return all;
            }
            unacked.extend(more.iter().cloned());
            all.extend(more);
            continue;
        }
        let n = step.min(unacked.len());
        let batch: Vec<Publish<Bytes>> = unacked.drain(..n).collect();
        ack(h, c, &batch);
    }
}

fn no_drops(h: &Harness) {
    let drops = h
        .events
        .iter()
        .filter(|e| matches!(e, BrokerEvent::Dropped { .. }))
        .count();
    assert_eq!(drops, 0, "dropped messages: {drops}");
}

// MQTT-3.8.4-1, MQTT-3.3.1-6, MQTT-3.3.1-8, MQTT-3.8.4-6
#[test]
fn ten_thousand_retained_messages_follow_the_suback_through_a_small_queue_none_dropped() {
    let n = 10_000;
    let mut h = store(n, QoS::AtLeastOnce, 4, 8);
    h.connect(SUBSCRIBER, "reader", true);
    h.send(SUBSCRIBER, subscribe(7, &[("#", QoS::AtLeastOnce)]));
    let first = h.take(SUBSCRIBER);
    assert!(
        matches!(first.first(), Some(Packet::SubAck(_))),
        "the SUBACK first: {:?}",
        first.first()
    );
    // Not all at once: at most the window, and one queued behind it.
    let sent = publishes(&first);
    assert!(!sent.is_empty() && sent.len() <= 8, "{}", sent.len());
    ack(&mut h, SUBSCRIBER, &sent);
    let mut all = sent;
    all.extend(read_all(&mut h, SUBSCRIBER, 8));
    assert_eq!(all.len(), n, "every retained message exactly once");
    for (i, p) in all.iter().enumerate() {
        assert_eq!(p.topic.as_str(), topic(i));
        assert!(p.retain, "MQTT-3.3.1-8");
        assert_eq!(p.qos.qos(), QoS::AtLeastOnce);
    }
    assert!(!h.is_closed(SUBSCRIBER));
    no_drops(&h);
}

// MQTT-3.8.4-6
#[test]
fn a_slow_reader_gets_everything_in_trie_order_at_the_lower_qos() {
    let n = 1_000;
    let mut h = store(n, QoS::AtLeastOnce, 2, 4);
    // Published in another order than the topics sort: the trie walk decides.
    h.send(PUBLISHER, retained("r/00500", QoS::AtMostOnce, 1, "again"));
    h.connect(SUBSCRIBER, "slow", true);
    h.send(SUBSCRIBER, subscribe(1, &[("r/+", QoS::AtLeastOnce)]));
    let all = read_all(&mut h, SUBSCRIBER, 1);
    assert_eq!(all.len(), n);
    for (i, p) in all.iter().enumerate() {
        assert_eq!(p.topic.as_str(), topic(i), "message {i} out of order");
    }
    // The replaced message went at its own QoS 0, the others at QoS 1.
    assert_eq!(all[500].qos, QosPid::AtMostOnce);
    assert_eq!(&all[500].payload[..], b"again");
    assert!(
        all.iter()
            .filter(|p| p.qos.qos() == QoS::AtLeastOnce)
            .count()
            == n - 1
    );
    no_drops(&h);
}

#[test]
fn qos0_retained_messages_go_in_bursts_of_the_queue_bound_as_the_transport_drains() {
    let n = 3_000;
    let mut h = store(n, QoS::AtMostOnce, 40, 4);
    h.connect(SUBSCRIBER, "fast", true);
    h.send(SUBSCRIBER, subscribe(1, &[("#", QoS::AtLeastOnce)]));
    let first = h.take(SUBSCRIBER);
    assert!(matches!(first.first(), Some(Packet::SubAck(_))));
    assert_eq!(publishes(&first).len(), 40, "one burst of the queue bound");
    // Any input from the client brings the next burst, as `writable` does.
    h.send(SUBSCRIBER, Packet::PingReq);
    let second = h.take(SUBSCRIBER);
    assert_eq!(publishes(&second).len(), 40);
    assert!(second.contains(&Packet::PingResp));
    let mut all = publishes(&first);
    all.extend(publishes(&second));
    all.extend(read_all(&mut h, SUBSCRIBER, 4));
    assert_eq!(all.len(), n);
    for (i, p) in all.iter().enumerate() {
        assert_eq!(p.topic.as_str(), topic(i));
        assert!(p.qos == QosPid::AtMostOnce && p.retain);
    }
    assert!(!h.is_closed(SUBSCRIBER));
    no_drops(&h);
}

#[test]
fn live_messages_are_not_starved_by_pending_retained_ones() {
    let n = 200;
    let mut h = store(n, QoS::AtLeastOnce, 4, 2);
    h.connect(SUBSCRIBER, "mixed", true);
    h.send(SUBSCRIBER, subscribe(1, &[("#", QoS::AtLeastOnce)]));
    let first = publishes(&h.take(SUBSCRIBER));
    assert_eq!(first.len(), 2, "the window");
    // Live messages now: they queue ahead of the retained ones still pending.
    for i in 0..3 {
        h.send(
            PUBLISHER,
            publish("r/live", QoS::AtLeastOnce, 100 + i, &format!("live{i}")),
        );
    }
    h.take(PUBLISHER);
    ack(&mut h, SUBSCRIBER, &first);
    let mut all = first;
    all.extend(read_all(&mut h, SUBSCRIBER, 2));
    let live: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.retain)
        .map(|(i, _)| i)
        .collect();
    // Behind the window (2) and the one retained message queued before them, ahead
    // of the 197 still pending.
    assert_eq!(live, [3, 4, 5], "every live message once, next in line");
    assert_eq!(all.iter().filter(|p| p.retain).count(), n);
    no_drops(&h);
}

#[test]
fn a_retained_message_cleared_after_the_subscribe_still_goes_as_it_was() {
    let mut h = store(50, QoS::AtLeastOnce, 1, 1);
    h.connect(SUBSCRIBER, "snapshot", true);
    h.send(SUBSCRIBER, subscribe(1, &[("r/#", QoS::AtLeastOnce)]));
    // Cleared (MQTT-3.3.1-10) and changed while pending: the snapshot goes.
    h.send(PUBLISHER, retained("r/00049", QoS::AtMostOnce, 1, ""));
    h.send(PUBLISHER, retained("r/00048", QoS::AtMostOnce, 1, "new"));
    let all = read_all(&mut h, SUBSCRIBER, 1);
    let retained: Vec<&Publish<Bytes>> = all.iter().filter(|p| p.retain).collect();
    assert_eq!(retained.len(), 50);
    assert_eq!(&retained[49].payload[..], b"49");
    assert_eq!(&retained[48].payload[..], b"48");
    assert!(h.broker.retained("r/00049").is_none());
}

#[test]
fn a_connection_that_ends_drops_its_pending_retained_messages() {
    let mut h = store(100, QoS::AtLeastOnce, 1, 2);
    h.connect(SUBSCRIBER, "leaver", false);
    h.send(SUBSCRIBER, subscribe(1, &[("#", QoS::AtLeastOnce)]));
    let first = publishes(&h.take(SUBSCRIBER));
    assert!(first.len() <= 3);
    h.drop_conn(SUBSCRIBER);
    // The persistent session keeps what it was handed (window and queue), not the
    // rest of the pending list, and nothing is reported as dropped.
    let session = h.broker.session("leaver").expect("stored");
    assert!(session.inflight() + session.queued() <= 3);
    no_drops(&h);
    h.connect(SUBSCRIBER, "leaver", false);
    let resumed = read_all(&mut h, SUBSCRIBER, 2);
    assert!(resumed.len() <= 3, "{}", resumed.len());
}
