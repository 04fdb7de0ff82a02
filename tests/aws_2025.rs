//! AWS IoT Core as documented today (`Profile::aws_iot_core_2025`), point by point, in
//! simulated time: retained messages, shared subscriptions, reserved topics, quotas and
//! lifecycle events; and the same knobs on the mqtt311 profile. The retry limit on
//! unacknowledged QoS 1 messages is in `aws_2025/retry.rs`.

#[path = "aws_2025/retry.rs"]
mod retry;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::broker::{Action, Broker, BrokerEvent, DropReason};
use mqtt_sansio::server::{CloseReason, Ignored, PolicyViolation, ServerConfig};
use mqtt_sansio::session::{BrokerChange, BrokerExport, SharedQueue, StateError};
use mqtt_sansio::{
    Client, ClientError, ConnAck, Instant, Login, MqttString, Packet, Profile, QoS, SubAckCode,
    TopicName,
};
use proptest::prelude::*;
use serde_json::Value;
use support::harness::{
    Harness, connect, payloads, publish, publishes, retained, subscribe, unsubscribe,
};

fn aws() -> Harness {
    Harness::new(Profile::aws_iot_core_2025())
}

const ACCEPTED: ConnAck = ConnAck::Accepted {
    session_present: false,
};

fn json(p: &Packet<Bytes>) -> Value {
    let Packet::Publish(p) = p else {
        panic!("not a PUBLISH: {p:?}")
    };
    serde_json::from_slice(&p.payload).expect("a JSON document")
}

// https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-retain
#[test]
fn a_retained_message_goes_only_to_a_filter_naming_its_topic_and_an_empty_payload_deletes_it() {
    let mut h = aws();
    h.connect(1, "pub", true);
    h.send(1, retained("cfg/dev1", QoS::AtLeastOnce, 1, "v1"));
    assert_eq!(h.take(1), [Packet::PubAck(support::harness::pid(1))]);
    assert_eq!(h.broker.retained_len(), 1);

    h.connect(2, "exact", true);
    let got = h.subscribe(2, 1, &[("cfg/dev1", QoS::AtLeastOnce)]);
    assert_eq!(payloads(&got), ["v1"]);
    assert!(publishes(&got)[0].retain);

    h.connect(3, "wild", true);
    let got = h.subscribe(
        3,
        1,
        &[("cfg/+", QoS::AtLeastOnce), ("cfg/#", QoS::AtLeastOnce)],
    );
    assert!(payloads(&got).is_empty(), "{got:?}");

    h.send(1, retained("cfg/dev1", QoS::AtMostOnce, 0, ""));
    assert_eq!(h.broker.retained_len(), 0);
    h.connect(4, "late", true);
    assert!(payloads(&h.subscribe(4, 1, &[("cfg/dev1", QoS::AtLeastOnce)])).is_empty());
}

#[test]
fn the_seed_preset_still_closes_on_retain_and_the_new_one_stores() {
    let mut h = Harness::new(Profile::aws_iot_core());
    h.connect(1, "pub", true);
    h.send(1, retained("cfg/dev1", QoS::AtLeastOnce, 1, "v1"));
    assert_eq!(
        h.closed.get(&1),
        Some(&CloseReason::Policy(PolicyViolation::Retain))
    );
    let mut h = aws();
    h.connect(1, "pub", true);
    h.send(1, retained("cfg/dev1", QoS::AtLeastOnce, 1, "v1"));
    assert!(!h.is_closed(1));
}

// https://docs.aws.amazon.com/iot/latest/developerguide/reserved-topics.html
#[test]
fn retain_on_a_reserved_topic_closes_the_connection() {
    let mut h = aws();
    h.connect(1, "pub", true);
    h.send(1, retained("$aws/rules/r/t", QoS::AtLeastOnce, 1, "v"));
    assert_eq!(h.take(1), []);
    assert_eq!(
        h.closed.get(&1),
        Some(&CloseReason::Policy(PolicyViolation::RetainOnReservedTopic))
    );
    assert_eq!(h.broker.retained_len(), 0);
}

#[test]
fn a_publish_or_subscribe_to_an_unimplemented_reserved_topic_closes_the_connection() {
    let mut h = aws();
    h.connect(1, "a", true);
    h.send(
        1,
        publish("$aws/things/t/shadow/update", QoS::AtLeastOnce, 1, "{}"),
    );
    assert_eq!(h.take(1), []);
    assert_eq!(
        h.closed.get(&1),
        Some(&CloseReason::Policy(PolicyViolation::ReservedTopic))
    );
    h.connect(2, "b", true);
    h.send(
        2,
        subscribe(
            1,
            &[
                ("ok/t", QoS::AtMostOnce),
                ("$aws/things/t/#", QoS::AtMostOnce),
            ],
        ),
    );
    assert_eq!(h.take(2), []);
    assert_eq!(
        h.closed.get(&2),
        Some(&CloseReason::Policy(PolicyViolation::ReservedTopic))
    );
}

// https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html
#[test]
fn basic_ingest_is_accepted_and_its_prefix_is_outside_the_topic_limits() {
    let mut h = aws();
    h.connect(1, "a", true);
    h.send(
        1,
        publish("$aws/rules/r/a/b/c/d/e/f/g/h", QoS::AtLeastOnce, 1, "x"),
    );
    assert_eq!(h.take(1), [Packet::PubAck(support::harness::pid(1))]);
    h.send(
        1,
        publish("$aws/rules/r/a/b/c/d/e/f/g/h/i", QoS::AtLeastOnce, 2, "x"),
    );
    assert_eq!(
        h.closed.get(&1),
        Some(&CloseReason::Policy(PolicyViolation::TopicTooLong))
    );
}

// https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt5-shared-subscription
#[test]
fn each_message_of_a_shared_subscription_goes_to_one_member_in_turn() {
    let mut h = aws();
    h.connect(1, "m1", true);
    h.connect(2, "m2", true);
    h.connect(3, "plain", true);
    h.subscribe(1, 1, &[("$share/g/jobs/#", QoS::AtLeastOnce)]);
    h.subscribe(2, 1, &[("$share/g/jobs/#", QoS::AtLeastOnce)]);
    h.subscribe(3, 1, &[("jobs/#", QoS::AtMostOnce)]);
    h.connect(4, "pub", true);
    for (i, p) in ["j1", "j2", "j3", "j4"].iter().enumerate() {
        h.send(4, publish("jobs/x", QoS::AtLeastOnce, i as u16 + 1, p));
    }
    assert_eq!(payloads(&h.take(1)), ["j1", "j3"]);
    assert_eq!(payloads(&h.take(2)), ["j2", "j4"]);
    assert_eq!(payloads(&h.take(3)), ["j1", "j2", "j3", "j4"]);
}

#[test]
fn shared_messages_wait_while_every_member_is_offline_and_go_to_the_first_back() {
    let mut h = aws();
    h.connect(1, "m1", false);
    h.connect(2, "m2", false);
    h.subscribe(1, 1, &[("$share/g/q", QoS::AtLeastOnce)]);
    h.subscribe(2, 1, &[("$share/g/q", QoS::AtLeastOnce)]);
    h.drop_conn(1);
    h.connect(3, "pub", true);
    h.send(3, publish("q", QoS::AtLeastOnce, 1, "to-m2"));
    assert_eq!(payloads(&h.take(2)), ["to-m2"]);
    h.drop_conn(2);
    h.send(3, publish("q", QoS::AtLeastOnce, 2, "held1"));
    h.send(3, publish("q", QoS::AtLeastOnce, 3, "held2"));
    h.send(3, publish("q", QoS::AtMostOnce, 0, "lost"));
    assert_eq!(h.broker.shared_queued("$share/g/q"), 2);
    assert!(h.events.iter().any(|e| matches!(
        e,
        BrokerEvent::SharedDropped { reason: DropReason::OfflineQos0, message, .. }
            if &message.payload[..] == b"lost"
    )));
    h.advance(1000);
    h.connect(5, "m1", false);
    assert_eq!(payloads(&h.take(5)), ["held1", "held2"]);
    assert_eq!(h.broker.shared_queued("$share/g/q"), 0);
}

#[test]
fn shared_subscriptions_are_an_mqtt311_knob_off_by_default() {
    for (on, member_gets) in [(false, 0), (true, 1)] {
        let mut profile = Profile::mqtt311();
        profile.shared_subscriptions = on;
        let mut h = Harness::new(profile);
        h.connect(1, "m1", true);
        h.connect(2, "m2", true);
        h.subscribe(1, 1, &[("$share/g/t", QoS::AtMostOnce)]);
        h.subscribe(2, 1, &[("$share/g/t", QoS::AtMostOnce)]);
        h.connect(3, "pub", true);
        h.send(3, publish("t", QoS::AtMostOnce, 0, "m"));
        let got = payloads(&h.take(1)).len() + payloads(&h.take(2)).len();
        assert_eq!(got, member_gets, "shared subscriptions {on}");
        // Off, the filter is an ordinary one matching the topic `$share/g/t`.
        h.send(3, publish("$share/g/t", QoS::AtMostOnce, 0, "m"));
        let got = payloads(&h.take(1)).len() + payloads(&h.take(2)).len();
        assert_eq!(got, if on { 0 } else { 2 });
    }
}

#[test]
fn unsubscribing_leaves_the_shared_group() {
    let mut h = aws();
    h.connect(1, "m1", true);
    h.connect(2, "m2", true);
    h.subscribe(1, 1, &[("$share/g/t", QoS::AtMostOnce)]);
    h.subscribe(2, 1, &[("$share/g/t", QoS::AtMostOnce)]);
    h.send(1, unsubscribe(2, &["$share/g/t"]));
    h.take(1);
    h.connect(3, "pub", true);
    for i in 0..3 {
        h.send(3, publish("t", QoS::AtMostOnce, 0, &format!("m{i}")));
    }
    assert!(payloads(&h.take(1)).is_empty());
    assert_eq!(payloads(&h.take(2)), ["m0", "m1", "m2"]);
}

// https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits
#[test]
fn the_hundred_and_first_publish_in_a_second_is_not_acknowledged_nor_routed() {
    let mut h = aws();
    h.connect(1, "sub", true);
    h.subscribe(1, 1, &[("r/t", QoS::AtMostOnce)]);
    h.connect(2, "pub", true);
    for i in 1..=101u16 {
        h.send(2, publish("r/t", QoS::AtLeastOnce, i, "x"));
    }
    let acks = h.take(2);
    assert_eq!(acks.len(), 100);
    assert_eq!(
        acks.last(),
        Some(&Packet::PubAck(support::harness::pid(100)))
    );
    assert_eq!(payloads(&h.take(1)).len(), 100);
    assert!(h.events.iter().any(|e| matches!(
        e,
        BrokerEvent::Ignored {
            what: Ignored::PublishOverQuota,
            ..
        }
    )));
    h.advance(1000);
    h.send(2, publish("r/t", QoS::AtLeastOnce, 101, "x"));
    assert_eq!(h.take(2), [Packet::PubAck(support::harness::pid(101))]);
    assert!(!h.is_closed(2));
}

#[test]
fn publish_bytes_over_512_kib_in_a_second_wait_for_the_next_second() {
    let mut h = aws();
    h.connect(1, "sub", true);
    h.subscribe(1, 1, &[("b/t", QoS::AtMostOnce)]);
    h.connect(2, "pub", true);
    let big = "x".repeat(128 * 1024);
    let mut burst = Vec::new();
    for i in 1..=5u16 {
        let p: Packet<Bytes> = publish("b/t", QoS::AtLeastOnce, i, &big).into();
        burst.extend_from_slice(&p.to_bytes().expect("encodable"));
    }
    h.send_bytes(2, &burst);
    let ack = |i| Packet::PubAck(support::harness::pid(i));
    assert_eq!(h.take(2), [ack(1), ack(2), ack(3)]);
    assert_eq!(payloads(&h.take(1)).len(), 3);
    h.advance(999);
    assert_eq!(h.take(2), []);
    h.advance(1);
    assert_eq!(h.take(2), [ack(4), ack(5)]);
    assert_eq!(payloads(&h.take(1)).len(), 2);
    assert!(!h.is_closed(2));
}

#[test]
fn a_peer_that_keeps_sending_while_delayed_by_the_byte_quota_is_closed() {
    let mut h = aws();
    h.connect(1, "pub", true);
    let big = "x".repeat(128 * 1024);
    for i in 1..=8u16 {
        h.send(1, publish("b/t", QoS::AtLeastOnce, i, &big));
    }
    assert_eq!(
        h.closed.get(&1),
        Some(&CloseReason::Policy(PolicyViolation::BufferFull))
    );
}

#[test]
fn a_second_connect_of_a_client_id_within_a_second_is_closed_without_connack() {
    let mut h = aws();
    h.connect(1, "dev", true);
    h.advance(500);
    h.open(2);
    h.send(2, Packet::Connect(connect("dev", true, 60, None)));
    assert_eq!(h.take(2), []);
    assert_eq!(
        h.closed.get(&2),
        Some(&CloseReason::Policy(PolicyViolation::Throttled))
    );
    assert!(!h.is_closed(1));
    h.advance(500);
    assert_eq!(h.connect(3, "dev", true), ACCEPTED);
}

#[test]
fn the_subscription_and_keep_alive_quotas_of_the_seed_hold() {
    let p = Profile::aws_iot_core_2025();
    assert_eq!(
        (p.max_filters_per_subscribe, p.max_subscriptions),
        (Some(8), Some(50))
    );
    assert_eq!(
        (p.effective_keep_alive(0), p.effective_keep_alive(10)),
        (1200, 30)
    );
    let mut h = aws();
    h.connect(1, "c", true);
    let filters: Vec<(String, QoS)> = (0..9)
        .map(|i| (format!("f/{i}"), QoS::AtLeastOnce))
        .collect();
    let refs: Vec<(&str, QoS)> = filters.iter().map(|(f, q)| (f.as_str(), *q)).collect();
    let Packet::SubAck(ack) = &h.subscribe(1, 1, &refs)[0] else {
        panic!()
    };
    let codes: Vec<SubAckCode> = ack.codes().collect();
    assert_eq!(codes.len(), 9);
    assert_eq!(codes[8], SubAckCode::Failure);
    assert!(
        codes[..8]
            .iter()
            .all(|c| *c == SubAckCode::Granted(QoS::AtLeastOnce))
    );
}

#[test]
fn a_persistent_session_lasts_an_hour_by_default_and_up_to_seven_days_when_configured() {
    let mut h = aws();
    h.connect(1, "p", false);
    h.drop_conn(1);
    h.advance(3_600_000);
    assert!(h.broker.session("p").is_none());

    let week = Duration::from_secs(7 * 24 * 3600);
    let profile = Profile::aws_iot_core_2025()
        .with_session_expiry(week)
        .expect("allowed");
    let mut h = Harness::new(profile);
    h.connect(1, "p", false);
    h.drop_conn(1);
    h.advance(2 * 3_600_000);
    assert!(h.broker.session("p").is_some());
    h.advance(week.as_millis() as u64);
    assert!(h.broker.session("p").is_none());
}

// https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html
#[test]
fn presence_events_announce_connects_and_disconnects_with_their_reason() {
    let mut h = aws();
    h.connect(1, "watcher", true);
    h.subscribe(
        1,
        1,
        &[
            ("$aws/events/presence/connected/+", QoS::AtLeastOnce),
            ("$aws/events/presence/disconnected/+", QoS::AtLeastOnce),
        ],
    );
    let mut c = connect("dev1", true, 60, None);
    c.login = Some(Login {
        username: MqttString::from_static("alice").expect("valid"),
        password: None,
    });
    h.advance(1000);
    h.connect_with(2, c);
    let got = h.take(1);
    let Packet::Publish(p) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(p.topic.as_str(), "$aws/events/presence/connected/dev1");
    let v = json(&got[0]);
    assert_eq!(v["clientId"], "dev1");
    assert_eq!(v["eventType"], "connected");
    assert_eq!(v["principalIdentifier"], "alice");
    assert_eq!(v["timestamp"], 1000);
    let session = v["sessionIdentifier"].clone();

    h.send(2, Packet::Disconnect);
    let got = h.take(1);
    let v = json(&got[0]);
    assert_eq!(v["eventType"], "disconnected");
    assert_eq!(v["disconnectReason"], "CLIENT_INITIATED_DISCONNECT");
    assert_eq!(v["clientInitiatedDisconnect"], true);
    assert_eq!(v["sessionIdentifier"], session);

    h.advance(1000);
    h.connect(3, "dev1", true);
    h.advance(1000);
    h.connect(4, "dev1", true);
    let reasons: Vec<Value> = h
        .take(1)
        .iter()
        .map(json)
        .filter(|v| v["eventType"] == "disconnected")
        .map(|v| v["disconnectReason"].clone())
        .collect();
    assert_eq!(reasons, ["DUPLICATE_CLIENTID"]);
    h.drop_conn(4);
    assert_eq!(json(&h.take(1)[0])["disconnectReason"], "CONNECTION_LOST");
}

#[test]
fn subscription_events_list_the_filters_subscribed_and_unsubscribed() {
    let mut h = aws();
    h.connect(1, "watcher", true);
    h.subscribe(1, 1, &[("$aws/events/subscriptions/#", QoS::AtMostOnce)]);
    h.connect(2, "dev", true);
    h.subscribe(2, 1, &[("a/b", QoS::AtMostOnce), ("c/#", QoS::AtLeastOnce)]);
    h.send(2, unsubscribe(2, &["a/b"]));
    let got = h.take(1);
    assert_eq!(got.len(), 2, "{got:?}");
    let (sub, unsub) = (json(&got[0]), json(&got[1]));
    assert_eq!(sub["eventType"], "subscribed");
    assert_eq!(sub["topics"], serde_json::json!(["a/b", "c/#"]));
    assert_eq!(unsub["eventType"], "unsubscribed");
    assert_eq!(unsub["topics"], serde_json::json!(["a/b"]));
    let Packet::Publish(p) = &got[1] else {
        panic!()
    };
    assert_eq!(
        p.topic.as_str(),
        "$aws/events/subscriptions/unsubscribed/dev"
    );
}

#[test]
fn the_mqtt311_profile_publishes_no_lifecycle_events_and_reserves_nothing() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "watcher", true);
    h.subscribe(
        1,
        1,
        &[("$aws/events/presence/connected/+", QoS::AtMostOnce)],
    );
    h.connect(2, "dev", true);
    assert_eq!(h.take(1), []);
    h.send(2, retained("$aws/things/t", QoS::AtMostOnce, 0, "v"));
    assert!(!h.is_closed(2));
}

#[test]
fn the_client_under_the_new_preset_may_publish_retained_messages() {
    let topic = TopicName::new(Bytes::from_static(b"cfg/t")).expect("valid");
    for (profile, ok) in [
        (Profile::aws_iot_core_2025(), true),
        (Profile::aws_iot_core(), false),
    ] {
        let mut c = Client::new(profile);
        c.connect(Instant::ZERO, connect("c", true, 60, None))
            .expect("connect");
        let r = c.publish(Instant::ZERO, topic.clone(), QoS::AtMostOnce, true, "v");
        if ok {
            assert!(r.is_ok(), "{r:?}");
        } else {
            assert_eq!(r, Err(ClientError::RetainNotSupported));
        }
    }
}

#[test]
fn a_broker_config_without_lifecycle_events_keeps_them_quiet_under_the_aws_preset() {
    let mut profile = Profile::aws_iot_core_2025();
    profile.lifecycle_events = false;
    let mut h = Harness::with_config(profile, ServerConfig::default());
    h.connect(1, "watcher", true);
    // With the events off, `$aws/events/...` is an unimplemented reserved topic.
    h.send(
        1,
        subscribe(1, &[("$aws/events/presence/connected/+", QoS::AtMostOnce)]),
    );
    assert!(h.is_closed(1));
}

#[derive(Debug, Clone)]
enum Op {
    Connect(usize),
    Drop(usize),
    Publish(bool),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..3usize).prop_map(Op::Connect),
        1 => (0..3usize).prop_map(Op::Drop),
        3 => any::<bool>().prop_map(Op::Publish),
    ]
}

/// The members of `$share/g/sh` online now: member index → connection.
struct Members {
    online: BTreeMap<usize, u64>,
    next_conn: u64,
    got: BTreeMap<String, BTreeSet<usize>>,
}

impl Members {
    fn connect(&mut self, h: &mut Harness, i: usize) {
        // One CONNECT per second per client id.
        h.advance(1100);
        let conn = self.next_conn;
        self.next_conn += 1;
        h.connect_with(conn, connect(&format!("m{i}"), false, 60, None));
        self.online.insert(i, conn);
    }

    /// Takes what each online member received, acknowledging every QoS 1 PUBLISH.
    fn drain(&mut self, h: &mut Harness) {
        for (&i, &conn) in &self.online {
            for p in publishes(&h.take(conn)) {
                let payload = String::from_utf8_lossy(&p.payload).into_owned();
                self.got.entry(payload).or_default().insert(i);
                if let Some(id) = p.qos.packet_id() {
                    h.send(conn, Packet::PubAck(id));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_shared_message_reaches_one_member_at_most_and_is_otherwise_reported(
        ops in prop::collection::vec(op_strategy(), 0..40),
    ) {
        let reporting = ServerConfig {
            report_changes: true,
            ..ServerConfig::default()
        };
        let mut h = Harness::with_config(Profile::aws_iot_core_2025(), reporting);
        let mut m = Members { online: BTreeMap::new(), next_conn: 1, got: BTreeMap::new() };
        for i in 0..3 {
            m.connect(&mut h, i);
            let conn = m.online[&i];
            h.subscribe(conn, 1, &[("$share/g/sh", QoS::AtLeastOnce)]);
        }
        h.connect(100, "pub", true);
        let mut published = Vec::new();
        for op in ops {
            match op {
                Op::Connect(i) if !m.online.contains_key(&i) => m.connect(&mut h, i),
                Op::Drop(i) => {
                    if let Some(conn) = m.online.remove(&i) {
                        h.drop_conn(conn);
                    }
                }
                Op::Publish(qos1) => {
                    let payload = format!("p{}", published.len());
                    let (qos, id) = if qos1 { (QoS::AtLeastOnce, published.len() as u16 + 1) } else { (QoS::AtMostOnce, 0) };
                    h.send(100, publish("sh", qos, id, &payload));
                    published.push(payload);
                }
                Op::Connect(_) => {}
            }
            m.drain(&mut h);
        }
        for i in 0..3 {
            if !m.online.contains_key(&i) {
                m.connect(&mut h, i);
            }
        }
        m.drain(&mut h);
        let dropped: BTreeSet<String> = h
            .events
            .iter()
            .filter_map(|e| match e {
                BrokerEvent::SharedDropped { message, .. } | BrokerEvent::Dropped { message, .. } => {
                    Some(String::from_utf8_lossy(&message.payload).into_owned())
                }
                _ => None,
            })
            .collect();
        for p in &published {
            let receivers = m.got.get(p).map_or(0, BTreeSet::len);
            prop_assert!(receivers <= 1, "{} reached {:?}", p, m.got.get(p));
            prop_assert!(
                (receivers == 1) != dropped.contains(p),
                "{} delivered to {} member(s), reported dropped: {}",
                p,
                receivers,
                dropped.contains(p)
            );
        }
        prop_assert!(!h.is_closed(100));
        // The changes reported, applied to an empty store, give the broker's export.
        let mut store = BrokerExport::default();
        for a in &h.log {
            if let Action::Change(c) = a {
                store.apply(c).map_err(|e| TestCaseError::fail(format!("{c:?}: {e}")))?;
            }
        }
        prop_assert_eq!(store, h.broker.export());
    }
}

#[test]
fn shared_messages_queued_while_every_member_is_offline_survive_export_and_import() {
    let reporting = ServerConfig {
        report_changes: true,
        ..ServerConfig::default()
    };
    let mut h = Harness::with_config(Profile::aws_iot_core_2025(), reporting.clone());
    h.connect(1, "m1", false);
    h.subscribe(1, 1, &[("$share/g/q", QoS::AtLeastOnce)]);
    h.drop_conn(1);
    h.connect(2, "pub", true);
    h.send(2, publish("q", QoS::AtLeastOnce, 1, "held1"));
    h.send(2, publish("q", QoS::AtLeastOnce, 2, "held2"));
    let changes: Vec<BrokerChange> = h
        .log
        .iter()
        .filter_map(|a| match a {
            Action::Change(c @ BrokerChange::SharedQueued { .. }) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 2);
    // Each message is stored before its PUBACK goes out.
    let queued_at = h
        .log
        .iter()
        .position(|a| matches!(a, Action::Change(BrokerChange::SharedQueued { .. })));
    let acked_at = h.log.iter().position(|a| {
        matches!(
            a,
            Action::Send {
                packet: Packet::PubAck(_),
                ..
            }
        )
    });
    assert!(queued_at < acked_at, "{:?}", h.log);

    let export = h.broker.export();
    assert_eq!(export.shared.len(), 1);
    assert_eq!(export.shared[0].group.as_str(), "$share/g/q");
    let bytes = export.to_bytes();
    let read = BrokerExport::from_bytes(&bytes).expect("reads back");
    assert_eq!(read, export);
    let broker =
        Broker::import(Profile::aws_iot_core_2025(), reporting, read, h.now).expect("imports");
    h.broker = broker;
    h.advance(1000);
    h.connect(3, "m1", false);
    assert_eq!(payloads(&h.take(3)), ["held1", "held2"]);
    assert_eq!(h.broker.shared_queued("$share/g/q"), 0);
}

#[test]
fn a_shared_queue_whose_group_has_no_member_is_refused_on_import() {
    let mut export = BrokerExport::default();
    export.shared.push(SharedQueue {
        group: mqtt_sansio::TopicFilter::new(Bytes::from_static(b"$share/g/q")).expect("valid"),
        queue: vec![mqtt_sansio::server::Message {
            topic: TopicName::new(Bytes::from_static(b"q")).expect("valid"),
            payload: Bytes::from_static(b"x"),
            qos: QoS::AtLeastOnce,
            retain: false,
        }],
    });
    let read = BrokerExport::from_bytes(&export.to_bytes()).expect("well formed");
    let r = Broker::import(
        Profile::aws_iot_core_2025(),
        ServerConfig::default(),
        read,
        Instant::ZERO,
    );
    assert!(matches!(r, Err(StateError::Invalid(_))), "{r:?}");
}
