//! The broker's counters ([`Broker::stats`]), each checked against what the broker did.

mod support;

use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::broker::{Action, Broker, BrokerConfig, BrokerEvent, BrokerStats, DropReason};
use mqtt_sansio::server::{Message, ServerConfig};
use mqtt_sansio::session::{BrokerChange, BrokerExport};
use mqtt_sansio::{Instant, Packet, Profile, QoS, TopicName};
use support::harness::{Harness, connect, publish, publishes, retained, will};

fn stats(h: &Harness) -> BrokerStats {
    h.broker.stats()
}

fn sent_publishes(log: &[Action]) -> u64 {
    log.iter()
        .filter(|a| {
            matches!(
                a,
                Action::Send {
                    packet: Packet::Publish(_),
                    ..
                }
            )
        })
        .count() as u64
}

/// The `Dropped` (not shared) events of `reason`'s kind.
fn dropped_events(h: &Harness, reason: DropReason) -> u64 {
    h.events
        .iter()
        .filter(|e| match e {
            BrokerEvent::Dropped { reason: r, .. } => r.name() == reason.name(),
            _ => false,
        })
        .count() as u64
}

fn status(topic: &str, payload: &str) -> Message {
    Message {
        topic: TopicName::try_from(topic).expect("valid topic"),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos: QoS::AtMostOnce,
        retain: true,
    }
}

/// Connections, sessions online and stored, and CONNECTs accepted.
fn sizes(h: &Harness) -> (usize, usize, usize, u64) {
    let s = stats(h);
    (
        s.connections,
        s.sessions_online,
        s.sessions_stored,
        s.connects,
    )
}

#[test]
fn a_new_broker_counts_nothing() {
    let b = Broker::new(Profile::mqtt311(), ServerConfig::default());
    assert_eq!(b.stats(), BrokerStats::default());
}

#[test]
fn bytes_received_are_what_handle_bytes_was_given_for_an_open_connection() {
    let mut h = Harness::new(Profile::mqtt311());
    let bytes = Packet::Connect(connect("a", true, 60, None))
        .to_bytes()
        .expect("encodable");
    h.send_bytes(9, &bytes);
    assert_eq!(stats(&h).bytes_received, 0, "connection 9 is not open");
    h.open(1);
    // In two pieces: counted as given, whatever the split.
    h.send_bytes(1, &bytes[..3]);
    h.send_bytes(1, &bytes[3..]);
    assert_eq!(stats(&h).bytes_received, bytes.len() as u64);
    h.send(1, publish("t", QoS::AtMostOnce, 0, "xyz"));
    let publish_len = Packet::from(publish("t", QoS::AtMostOnce, 0, "xyz")).encoded_len() as u64;
    assert_eq!(stats(&h).bytes_received, bytes.len() as u64 + publish_len);
}

#[test]
fn connections_and_sessions_follow_connects_and_disconnects() {
    let mut h = Harness::new(Profile::mqtt311());
    h.open(1);
    assert_eq!(sizes(&h), (1, 0, 0, 0));
    h.send(1, Packet::Connect(connect("persistent", false, 60, None)));
    h.connect(2, "clean", true);
    assert_eq!(sizes(&h), (2, 2, 0, 2));
    h.drop_conn(1);
    h.send(2, Packet::Disconnect);
    assert_eq!(
        sizes(&h),
        (0, 0, 1, 2),
        "the persistent session is stored, the clean one is gone"
    );
    h.connect(3, "persistent", false);
    assert_eq!(sizes(&h), (1, 1, 0, 3));
}

#[test]
fn messages_received_count_publishes_in_and_messages_sent_count_publishes_out() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "sub1", true);
    h.connect(2, "sub2", true);
    h.subscribe(1, 1, &[("t/#", QoS::AtLeastOnce)]);
    h.subscribe(2, 1, &[("t/+", QoS::AtMostOnce)]);
    let w = will("t/will", "gone", QoS::AtMostOnce, false);
    h.connect_with(3, connect("pub", true, 60, Some(w)));
    h.send(3, publish("t/a", QoS::AtMostOnce, 0, "1"));
    h.send(3, publish("t/b", QoS::AtLeastOnce, 1, "2"));
    h.send(3, publish("other", QoS::AtMostOnce, 0, "to nobody"));
    // A QoS 2 message sent twice before its PUBREL is one message.
    h.send(3, publish("t/c", QoS::ExactlyOnce, 2, "3"));
    let mut again = publish("t/c", QoS::ExactlyOnce, 2, "3");
    again.dup = true;
    h.send(3, again);
    assert_eq!(stats(&h).messages_received, 4);
    // The will is the broker's, not a message received.
    h.drop_conn(3);
    let s = stats(&h);
    assert_eq!(s.messages_received, 4);
    let delivered = publishes(&h.take(1)).len() + publishes(&h.take(2)).len();
    assert_eq!(delivered, 8, "three messages and the will, to both");
    assert_eq!(s.messages_sent, 8);
    assert_eq!(s.messages_sent, sent_publishes(&h.log));
}

#[test]
fn packets_of_any_kind_are_counted_in_and_out_closed_connections_included() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "sub", true);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.connect(2, "pub", true);
    h.send(2, publish("t", QoS::AtLeastOnce, 1, "m"));
    h.send(2, Packet::PingReq);
    // In: 2 CONNECT, SUBSCRIBE, PUBLISH, PINGREQ. Out: 2 CONNACK, SUBACK, PUBLISH,
    // PUBACK, PINGRESP.
    let s = stats(&h);
    assert_eq!((s.packets_received, s.packets_sent), (5, 6));
    assert_eq!(
        s.packets_sent,
        h.log
            .iter()
            .filter(|a| matches!(a, Action::Send { .. }))
            .count() as u64
    );
    h.send(1, Packet::PubAck(support::harness::pid(1)));
    h.send(1, Packet::Disconnect);
    h.drop_conn(2);
    let s = stats(&h);
    assert_eq!(s.connections, 0);
    assert_eq!((s.packets_received, s.packets_sent), (7, 6));
}

#[test]
fn drops_are_counted_by_reason_as_they_are_reported() {
    let mut profile = Profile::mqtt311();
    profile.quotas.qos1_retry_limit = Some(Duration::from_secs(10));
    let config = ServerConfig {
        max_inflight: 1,
        max_queued: 1,
        ..ServerConfig::default()
    };
    let mut h = Harness::with_config(profile, config);
    // Offline: a persistent session that is not connected gets no QoS 0 message.
    h.connect(1, "away", false);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.drop_conn(1);
    // Online and not acknowledging: one in flight, one queued, the rest dropped.
    h.connect(2, "slow", true);
    h.subscribe(2, 1, &[("t", QoS::AtLeastOnce)]);
    h.connect(3, "pub", true);
    h.send(3, publish("t", QoS::AtMostOnce, 0, "q0"));
    for id in 1..=3 {
        h.send(3, publish("t", QoS::AtLeastOnce, id, "q1"));
    }
    let s = stats(&h);
    assert_eq!(s.dropped.get(DropReason::OfflineQos0), 1);
    assert_eq!(
        s.dropped.get(DropReason::QueueFull),
        dropped_events(&h, DropReason::QueueFull)
    );
    assert!(s.dropped.get(DropReason::QueueFull) >= 2, "{s:?}");
    // The retry limit passes on the unacknowledged ones, online ("slow") and stored
    // ("away", which had them queued).
    h.advance(11_000);
    h.send(2, Packet::PingReq);
    h.advance(11_000);
    let s = stats(&h);
    let expired = DropReason::RetryExpired {
        packet_id: support::harness::pid(1),
    };
    assert!(s.dropped.get(expired) >= 1, "{s:?}");
    for reason in [DropReason::QueueFull, DropReason::OfflineQos0, expired] {
        assert_eq!(
            s.dropped.get(reason),
            dropped_events(&h, reason),
            "{reason:?}"
        );
    }
    assert_eq!(s.dropped.total(), dropped_events_total(&h));
    assert_eq!(s.shared_dropped.total(), 0);
}

fn dropped_events_total(h: &Harness) -> u64 {
    h.events
        .iter()
        .filter(|e| matches!(e, BrokerEvent::Dropped { .. }))
        .count() as u64
}

#[test]
fn shared_group_drops_are_counted_apart() {
    let mut h = Harness::new(Profile::aws_iot_core_2025());
    h.connect(1, "member", false);
    h.subscribe(1, 1, &[("$share/g/q", QoS::AtLeastOnce)]);
    h.drop_conn(1);
    h.advance(1000);
    h.connect(2, "pub", true);
    h.send(2, publish("q", QoS::AtMostOnce, 0, "lost"));
    let s = stats(&h);
    assert_eq!(s.shared_dropped.get(DropReason::OfflineQos0), 1);
    assert_eq!(s.shared_dropped.total(), 1);
    assert_eq!(s.dropped.total(), 0);
}

#[test]
fn drop_counts_name_every_reason_in_a_fixed_order() {
    let names: Vec<&str> = BrokerStats::default()
        .dropped
        .iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "queue-full",
            "offline-qos0",
            "retry-expired",
            "queue-bytes-full",
            "budget-full"
        ]
    );
    assert_eq!(DropReason::QueueFull.name(), "queue-full");
    assert_eq!(DropReason::BudgetFull.name(), "budget-full");
}

#[test]
fn the_retained_count_follows_the_retained_store() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "pub", true);
    h.send(1, retained("a", QoS::AtMostOnce, 0, "1"));
    h.send(1, retained("b", QoS::AtMostOnce, 0, "2"));
    h.send(1, retained("a", QoS::AtMostOnce, 0, "3"));
    assert_eq!(stats(&h).retained, 2);
    h.send(1, retained("a", QoS::AtMostOnce, 0, ""));
    assert_eq!(stats(&h).retained, 1);
    assert_eq!(stats(&h).retained, h.broker.retained_len());
}

#[test]
fn the_broker_s_own_retained_messages_are_kept_outside_the_clients_retained_bound() {
    let config = BrokerConfig {
        max_retained: Some(2),
        ..BrokerConfig::default()
    };
    let mut h = Harness::with_config(Profile::mqtt311(), config);
    for topic in [
        "$SYS/broker/uptime",
        "$SYS/broker/version",
        "$SYS/broker/load",
    ] {
        h.broker_publish(status(topic, "x"));
    }
    h.connect(1, "pub", true);
    h.send(1, retained("a", QoS::AtMostOnce, 0, "1"));
    h.send(1, retained("b", QoS::AtMostOnce, 0, "2"));
    // The clients' two fit beside the broker's three; a third is over the bound.
    h.send(1, retained("c", QoS::AtMostOnce, 0, "3"));
    let not_stored: Vec<&str> = h
        .events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::RetainedNotStored { message } => Some(message.topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(not_stored, ["c"]);
    assert_eq!(stats(&h).retained, 5);
    // A client that takes over one of the broker's topics stores within its bound.
    h.send(1, retained("$SYS/broker/load", QoS::AtMostOnce, 0, "mine"));
    assert_eq!(
        &h.broker.retained("$SYS/broker/load").unwrap().payload[..],
        b"x"
    );
    // The broker's own figures are replaced whatever the bound.
    h.broker_publish(status("$SYS/broker/uptime", "y"));
    assert_eq!(
        &h.broker.retained("$SYS/broker/uptime").unwrap().payload[..],
        b"y"
    );
}

// MQTT-4.7.2-1
#[test]
fn the_broker_s_own_status_reaches_sys_subscribers_only_and_is_not_a_message_received() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "sys", true);
    h.subscribe(1, 1, &[("$SYS/broker/#", QoS::AtMostOnce)]);
    h.connect(2, "all", true);
    h.subscribe(2, 1, &[("#", QoS::AtMostOnce)]);
    h.subscribe(2, 2, &[("+/broker/uptime", QoS::AtMostOnce)]);
    h.broker_publish(status("$SYS/broker/uptime", "5 seconds"));
    let got = publishes(&h.take(1));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].topic.as_str(), "$SYS/broker/uptime");
    assert!(h.take(2).is_empty(), "a filter starting with a wildcard");
    let s = stats(&h);
    assert_eq!(
        (s.messages_received, s.messages_sent, s.retained),
        (0, 1, 1)
    );
    // Kept as retained, for the next subscriber.
    h.connect(3, "late", true);
    let got = publishes(&h.subscribe(3, 1, &[("$SYS/#", QoS::AtMostOnce)]));
    assert_eq!(got.len(), 1);
    assert!(got[0].retain);
}

#[test]
fn retained_sys_messages_are_never_durable() {
    let config = ServerConfig {
        report_changes: true,
        ..ServerConfig::default()
    };
    let mut b = Broker::new(Profile::mqtt311(), config.clone());
    b.publish(Instant::ZERO, status("$SYS/broker/uptime", "1 seconds"));
    b.publish(Instant::ZERO, status("keep/me", "1"));
    let changes: Vec<BrokerChange> = std::iter::from_fn(|| b.poll_action())
        .filter_map(|a| match a {
            Action::Change(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(matches!(&changes[0], BrokerChange::RetainedSet(m) if m.topic.as_str() == "keep/me"));
    // Clearing one reports nothing either.
    b.publish(Instant::ZERO, status("$SYS/broker/uptime", ""));
    assert!(std::iter::from_fn(|| b.poll_action()).all(|a| !matches!(a, Action::Change(_))));
    b.publish(Instant::ZERO, status("$SYS/broker/uptime", "2 seconds"));
    let export = b.export();
    let topics: Vec<&str> = export.retained.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, ["keep/me"]);
    // A store written before they were left out: its stale ones are not restored.
    let stale = BrokerExport {
        retained: vec![
            status("$SYS/broker/uptime", "99 seconds"),
            status("keep/me", "1"),
        ],
        ..BrokerExport::default()
    };
    let mut b = Broker::import(Profile::mqtt311(), config, stale, Instant::ZERO).expect("valid");
    assert!(b.retained("$SYS/broker/uptime").is_none());
    assert!(b.retained("keep/me").is_some());
    // Its removal is reported, so that a store holding it forgets it.
    let changes: Vec<Action> = std::iter::from_fn(|| b.poll_action()).collect();
    assert!(
        matches!(&changes[..], [Action::Change(BrokerChange::RetainedCleared(t))] if t.as_str() == "$SYS/broker/uptime"),
        "{changes:?}"
    );
}
