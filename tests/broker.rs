//! Broker scenarios in simulated time.

mod support;

use std::collections::BTreeSet;

use bytes::Bytes;
use mqtt_sansio::broker::{Action, BrokerConfig, BrokerEvent, ConnId, DropReason};
use mqtt_sansio::server::{CloseReason, Ignored, PolicyViolation, ServerConfig};
use mqtt_sansio::{ConnAck, ConnectReturnCode, Instant, MqttString, Packet, Profile, QoS};
use support::harness::{
    Harness, connect, payloads, pid, publish, publishes, retained, subscribe, unsubscribe, will,
};

fn accepted(session_present: bool) -> ConnAck {
    ConnAck::Accepted { session_present }
}

// MQTT-3.1.4-2, MQTT-3.1.2-8
#[test]
fn takeover_closes_the_older_connection_then_accepts_the_new_one_then_delivers_the_will() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "watcher", true);
    h.subscribe(1, 1, &[("will/#", QoS::AtMostOnce)]);
    let w = will("will/dup", "gone", QoS::AtMostOnce, false);
    assert_eq!(
        h.connect_with(2, connect("dup", true, 60, Some(w))),
        accepted(false)
    );
    h.open(3);
    let start = h.log.len();
    h.send(3, Packet::Connect(connect("dup", true, 60, None)));
    let order: Vec<Action> = h.log[start..].to_vec();
    assert_eq!(order.len(), 4, "{order:?}");
    assert_eq!(
        order[0],
        Action::Close {
            conn: ConnId(2),
            reason: CloseReason::Takeover
        }
    );
    assert_eq!(
        order[1],
        Action::Event(BrokerEvent::Connected {
            conn: ConnId(3),
            client_id: MqttString::from_static("dup").unwrap(),
            session_present: false
        })
    );
    assert_eq!(
        order[2],
        Action::Send {
            conn: ConnId(3),
            packet: Packet::ConnAck(accepted(false))
        }
    );
    let Action::Send {
        conn: ConnId(1),
        packet: Packet::Publish(p),
    } = &order[3]
    else {
        panic!("{order:?}")
    };
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("will/dup", &b"gone"[..])
    );
}

#[test]
fn a_profile_without_will_on_takeover_closes_the_older_connection_silently() {
    let mut profile = Profile::mqtt311();
    profile.will_on_takeover = false;
    let mut h = Harness::new(profile);
    h.connect(1, "watcher", true);
    h.subscribe(1, 1, &[("will/#", QoS::AtMostOnce)]);
    let w = will("will/dup", "gone", QoS::AtMostOnce, false);
    h.connect_with(2, connect("dup", true, 60, Some(w)));
    h.connect(3, "dup", true);
    assert_eq!(h.closed.get(&2), Some(&CloseReason::Takeover));
    assert!(h.take(1).is_empty());
}

// MQTT-3.1.4-2, MQTT-3.2.2-2
#[test]
fn a_persistent_takeover_resumes_the_session_of_the_older_connection() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "p", false);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    assert_eq!(h.connect(2, "p", false), accepted(true));
    assert!(h.is_closed(1));
    h.connect(3, "pub", true);
    h.send(3, publish("t", QoS::AtLeastOnce, 1, "m"));
    assert_eq!(payloads(&h.take(2)), vec!["m"]);
}

// MQTT-3.1.2-6
#[test]
fn a_clean_session_ends_with_its_connection() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "c", true);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.drop_conn(1);
    assert!(h.broker.session("c").is_none());
    h.connect(2, "pub", true);
    h.send(2, publish("t", QoS::AtLeastOnce, 1, "m"));
    assert!(
        h.events
            .iter()
            .all(|e| !matches!(e, BrokerEvent::Dropped { .. }))
    );
    assert_eq!(h.connect(3, "c", false), accepted(false));
    assert!(h.take(3).is_empty());
}

// MQTT-3.1.2-5
#[test]
fn the_offline_queue_bound_drops_and_reports_each_message_beyond_it() {
    let config = ServerConfig {
        max_queued: 2,
        ..ServerConfig::default()
    };
    let mut h = Harness::with_config(Profile::mqtt311(), config);
    h.connect(1, "s", false);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.drop_conn(1);
    h.connect(2, "pub", true);
    for i in 1..=4 {
        h.send(2, publish("t", QoS::AtLeastOnce, i, &i.to_string()));
    }
    // QoS 0 is not kept offline; that drop is reported with its own reason.
    h.send(2, publish("t", QoS::AtMostOnce, 0, "q0"));
    let offline: Vec<String> = h
        .events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Dropped {
                message,
                reason: DropReason::OfflineQos0,
                ..
            } => Some(String::from_utf8_lossy(&message.payload).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(offline, vec!["q0"]);
    let dropped: Vec<String> = h
        .events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Dropped {
                client_id,
                message,
                reason: DropReason::QueueFull,
            } => {
                assert_eq!(client_id.as_str(), "s");
                Some(String::from_utf8_lossy(&message.payload).into_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(dropped, vec!["3", "4"]);
    assert_eq!(h.connect(3, "s", false), accepted(true));
    assert_eq!(payloads(&h.take(3)), vec!["1", "2"]);
}

#[test]
fn an_online_subscriber_past_its_window_and_queue_loses_messages_only_with_an_event() {
    let config = ServerConfig {
        max_queued: 1,
        max_inflight: 1,
        ..ServerConfig::default()
    };
    let mut h = Harness::with_config(Profile::mqtt311(), config);
    h.connect(1, "s", true);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.connect(2, "pub", true);
    for i in 1..=3 {
        h.send(2, publish("t", QoS::AtLeastOnce, i, &i.to_string()));
    }
    assert_eq!(payloads(&h.take(1)), vec!["1"]);
    let drops = h
        .events
        .iter()
        .filter(|e| matches!(e, BrokerEvent::Dropped { .. }))
        .count();
    assert_eq!(drops, 1);
    h.send(1, Packet::PubAck(pid(1)));
    assert_eq!(payloads(&h.take(1)), vec!["2"]);
}

// MQTT-4.4.0-1
#[test]
fn an_unfinished_qos2_delivery_resumes_with_pubrel_after_reconnect() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", false);
    h.subscribe(1, 1, &[("t", QoS::ExactlyOnce)]);
    h.connect(2, "pub", true);
    h.send(2, publish("t", QoS::ExactlyOnce, 1, "m"));
    let got = publishes(&h.take(1));
    let id = got[0].qos.packet_id().unwrap();
    h.send(1, Packet::PubRec(id));
    assert_eq!(h.take(1), vec![Packet::PubRel(id)]);
    h.drop_conn(1);
    assert_eq!(
        h.connect_with(3, connect("s", false, 60, None)),
        accepted(true)
    );
    assert_eq!(h.take(3), vec![Packet::PubRel(id)]);
    h.send(3, Packet::PubComp(id));
    assert_eq!(h.broker.session("s").unwrap().inflight(), 0);
}

// MQTT-4.3.3-2
#[test]
fn an_inbound_qos2_id_awaiting_pubrel_survives_a_reconnect_and_is_not_delivered_twice() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", true);
    h.subscribe(1, 1, &[("t", QoS::ExactlyOnce)]);
    h.connect(2, "pub", false);
    h.send(2, publish("t", QoS::ExactlyOnce, 5, "once"));
    assert_eq!(h.take(2), vec![Packet::PubRec(pid(5))]);
    h.drop_conn(2);
    h.connect(3, "pub", false);
    let mut again = publish("t", QoS::ExactlyOnce, 5, "once");
    again.dup = true;
    h.send(3, again);
    assert_eq!(h.take(3), vec![Packet::PubRec(pid(5))]);
    h.send(3, Packet::PubRel(pid(5)));
    assert_eq!(h.take(3), vec![Packet::PubComp(pid(5))]);
    assert_eq!(payloads(&h.take(1)), vec!["once"]);
}

// MQTT-3.3.1-5, -6, -7, -8, -9, -10, -11, -12
#[test]
fn retained_messages_are_stored_replaced_cleared_and_sent_on_subscribe() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "pub", true);
    h.send(1, retained("r/a", QoS::AtLeastOnce, 1, "one"));
    h.send(1, retained("r/a", QoS::AtMostOnce, 0, "two"));
    h.send(1, retained("r/b", QoS::AtLeastOnce, 2, "b"));
    h.send(1, publish("r/b", QoS::AtMostOnce, 0, "not kept"));
    assert_eq!(h.broker.retained_len(), 2);
    h.connect(2, "s", true);
    let got = h.subscribe(2, 1, &[("r/+", QoS::AtLeastOnce)]);
    let ps = publishes(&got);
    assert!(matches!(got[0], Packet::SubAck(_)), "SUBACK first: {got:?}");
    assert_eq!(payloads(&got), vec!["two", "b"]);
    assert!(ps.iter().all(|p| p.retain));
    assert_eq!(
        ps.iter().map(|p| p.qos.qos()).collect::<Vec<_>>(),
        vec![QoS::AtMostOnce, QoS::AtLeastOnce]
    );
    // Routed copies have RETAIN=0; an empty retained payload is routed and clears.
    h.send(1, retained("r/a", QoS::AtMostOnce, 0, ""));
    let ps = publishes(&h.take(2));
    assert_eq!(ps.len(), 1);
    assert!(!ps[0].retain && ps[0].payload.is_empty());
    assert!(h.broker.retained("r/a").is_none());
    assert_eq!(h.broker.retained_len(), 1);
}

#[test]
fn aws_with_retained_messages_sends_them_only_to_exact_filters() {
    let mut profile = Profile::aws_iot_core();
    profile.retain = mqtt_sansio::profile::RetainPolicy::Store;
    let mut h = Harness::new(profile);
    h.connect(1, "pub", true);
    h.send(1, retained("r/a", QoS::AtLeastOnce, 1, "v"));
    h.connect(2, "s", true);
    let got = h.subscribe(
        2,
        1,
        &[("r/+", QoS::AtLeastOnce), ("r/#", QoS::AtLeastOnce)],
    );
    assert!(publishes(&got).is_empty(), "{got:?}");
    let got = h.subscribe(2, 2, &[("r/a", QoS::AtLeastOnce)]);
    assert_eq!(payloads(&got), vec!["v"]);
    assert!(publishes(&got)[0].retain);
}

#[test]
fn a_subscription_made_just_before_a_violation_stays_in_the_stored_session() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", false);
    let mut wire = Packet::from(subscribe(1, &[("t", QoS::AtLeastOnce)]))
        .to_bytes()
        .unwrap()
        .to_vec();
    wire.extend_from_slice(&[0x36, 0x00]); // a PUBLISH with QoS 3
    h.send_bytes(1, &wire);
    assert!(matches!(h.take(1)[..], [Packet::SubAck(_)]));
    assert!(h.is_closed(1));
    h.connect(2, "pub", true);
    h.send(2, publish("t", QoS::AtLeastOnce, 1, "kept"));
    assert_eq!(h.connect(3, "s", false), accepted(true));
    assert_eq!(payloads(&h.take(3)), vec!["kept"]);
}

#[test]
fn a_client_whose_own_will_matches_its_persistent_session_finds_it_on_resume() {
    let mut h = Harness::new(Profile::mqtt311());
    let w = will("me/status", "offline", QoS::AtLeastOnce, false);
    h.connect_with(1, connect("me", false, 60, Some(w)));
    h.subscribe(1, 1, &[("me/#", QoS::AtLeastOnce)]);
    h.drop_conn(1);
    assert_eq!(h.connect(2, "me", false), accepted(true));
    assert_eq!(payloads(&h.take(2)), vec!["offline"]);
}

#[test]
fn an_application_close_publishes_the_will_and_forgets_the_connection() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", true);
    h.subscribe(1, 1, &[("w", QoS::AtMostOnce)]);
    h.connect_with(
        2,
        connect(
            "c",
            true,
            60,
            Some(will("w", "kicked", QoS::AtMostOnce, false)),
        ),
    );
    h.broker.close(h.now, ConnId(2));
    while let Some(a) = h.broker.poll_action() {
        h.log.push(a);
    }
    let n = h.log.len();
    assert_eq!(
        h.log[n - 2],
        Action::Close {
            conn: ConnId(2),
            reason: CloseReason::Application
        }
    );
    assert!(
        matches!(&h.log[n - 1], Action::Send { conn: ConnId(1), packet: Packet::Publish(p) } if &p.payload[..] == b"kicked")
    );
    assert_eq!(h.broker.connections(), 1);
}

fn assert_send<T: Send>() {}

#[test]
fn a_broker_can_move_between_threads() {
    assert_send::<mqtt_sansio::Broker>();
    assert_send::<mqtt_sansio::Server>();
}

// MQTT-3.1.2-16, MQTT-3.1.2-17
#[test]
fn a_will_is_published_with_its_qos_and_retain_flag() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", true);
    h.subscribe(1, 1, &[("w", QoS::ExactlyOnce)]);
    let w = will("w", "bye", QoS::AtLeastOnce, true);
    h.connect_with(2, connect("c", true, 60, Some(w)));
    h.drop_conn(2);
    let ps = publishes(&h.take(1));
    assert_eq!(ps.len(), 1);
    assert_eq!((ps[0].qos.qos(), ps[0].retain), (QoS::AtLeastOnce, false));
    let kept = h.broker.retained("w").expect("retained will");
    assert_eq!(
        (&kept.payload[..], kept.qos),
        (&b"bye"[..], QoS::AtLeastOnce)
    );
}

// MQTT-4.7.2-1
#[test]
fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", true);
    h.subscribe(1, 1, &[("#", QoS::AtMostOnce), ("+/x", QoS::AtMostOnce)]);
    h.connect(2, "d", true);
    h.subscribe(2, 1, &[("$SYS/#", QoS::AtMostOnce)]);
    h.connect(3, "pub", true);
    h.send(3, publish("$SYS/x", QoS::AtMostOnce, 0, "m"));
    assert!(h.take(1).is_empty());
    assert_eq!(payloads(&h.take(2)), vec!["m"]);
}

// MQTT-3.3.5-1, MQTT-3.8.4-6
#[test]
fn overlapping_subscriptions_give_one_copy_at_the_highest_qos() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", true);
    h.subscribe(
        1,
        1,
        &[
            ("a/#", QoS::AtMostOnce),
            ("a/+", QoS::ExactlyOnce),
            ("a/b", QoS::AtLeastOnce),
        ],
    );
    h.connect(2, "pub", true);
    h.send(2, publish("a/b", QoS::ExactlyOnce, 1, "m"));
    let ps = publishes(&h.take(1));
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].qos.qos(), QoS::ExactlyOnce);
    h.send(2, publish("a/b", QoS::AtLeastOnce, 2, "n"));
    let ps = publishes(&h.take(1));
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].qos.qos(), QoS::AtLeastOnce);
}

// MQTT-3.8.4-3
#[test]
fn subscribing_again_to_the_same_filter_keeps_one_subscription() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", true);
    h.subscribe(1, 1, &[("t", QoS::AtMostOnce)]);
    h.subscribe(1, 2, &[("t", QoS::AtLeastOnce)]);
    assert_eq!(h.broker.session("s").unwrap().subscriptions().count(), 1);
    h.connect(2, "pub", true);
    h.send(2, publish("t", QoS::AtLeastOnce, 1, "m"));
    let ps = publishes(&h.take(1));
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].qos.qos(), QoS::AtLeastOnce);
}

// MQTT-3.10.4-2
#[test]
fn after_unsubscribe_nothing_more_arrives() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", true);
    h.subscribe(1, 1, &[("t/#", QoS::AtMostOnce)]);
    h.send(1, unsubscribe(2, &["t/#"]));
    assert_eq!(h.take(1), vec![Packet::UnsubAck(pid(2))]);
    h.connect(2, "pub", true);
    h.send(2, publish("t/x", QoS::AtMostOnce, 0, "m"));
    assert!(h.take(1).is_empty());
}

#[test]
fn aws_resends_an_unacked_message_with_a_fresh_id_and_no_dup() {
    let mut h = Harness::new(Profile::aws_iot_core());
    h.connect(1, "s", false);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.connect(2, "pub", true);
    h.send(2, publish("t", QoS::AtLeastOnce, 1, "m"));
    let first = publishes(&h.take(1))[0].clone();
    h.drop_conn(1);
    assert_eq!(h.connect(3, "s", false), accepted(true));
    let again = publishes(&h.take(3))[0].clone();
    assert!(!again.dup);
    assert_ne!(again.qos.packet_id(), first.qos.packet_id());
    assert_eq!(again.payload, first.payload);
}

#[test]
fn aws_keeps_at_most_one_hundred_messages_in_flight_and_queues_the_rest() {
    let config = ServerConfig {
        max_inflight: 1000,
        max_queued: 1000,
        ..ServerConfig::default()
    };
    let mut h = Harness::with_config(Profile::aws_iot_core(), config);
    h.connect(1, "s", true);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.connect(2, "pub", true);
    for i in 1..=101 {
        h.send(2, publish("t", QoS::AtLeastOnce, i, &i.to_string()));
    }
    let ps = publishes(&h.take(1));
    assert_eq!(ps.len(), 100);
    assert_eq!(h.broker.session("s").unwrap().queued(), 1);
    h.send(1, Packet::PubAck(ps[0].qos.packet_id().unwrap()));
    assert_eq!(payloads(&h.take(1)), vec!["101"]);
}

#[test]
fn aws_ignores_qos2_requests_and_reports_them() {
    let mut h = Harness::new(Profile::aws_iot_core());
    h.connect(1, "s", true);
    assert!(h.subscribe(1, 1, &[("t", QoS::ExactlyOnce)]).is_empty());
    h.send(1, publish("t", QoS::ExactlyOnce, 2, "m"));
    assert!(h.take(1).is_empty());
    let ignored: Vec<Ignored> = h
        .events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Ignored { what, .. } => Some(*what),
            _ => None,
        })
        .collect();
    assert_eq!(ignored, vec![Ignored::Qos2Subscribe, Ignored::Qos2Publish]);
}

#[test]
fn aws_closes_a_retained_publish_and_a_topic_over_its_limits() {
    let mut h = Harness::new(Profile::aws_iot_core());
    h.connect(1, "a", true);
    h.send(1, retained("t", QoS::AtMostOnce, 0, "m"));
    assert_eq!(
        h.closed.get(&1),
        Some(&CloseReason::Policy(PolicyViolation::Retain))
    );
    h.connect(2, "b", true);
    h.send(2, publish("1/2/3/4/5/6/7/8/9", QoS::AtMostOnce, 0, "m"));
    assert_eq!(
        h.closed.get(&2),
        Some(&CloseReason::Policy(PolicyViolation::TopicTooLong))
    );
}

#[test]
fn aws_persistent_sessions_expire_an_hour_after_the_connection_ends() {
    let mut h = Harness::new(Profile::aws_iot_core());
    h.connect(1, "s", false);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.send(1, Packet::Disconnect);
    h.advance(3_599_999);
    assert!(h.broker.session("s").is_some());
    h.advance(1);
    assert!(h.broker.session("s").is_none());
    assert!(h.events.iter().any(
        |e| matches!(e, BrokerEvent::SessionExpired { client_id } if client_id.as_str() == "s")
    ));
    assert_eq!(h.connect(2, "s", false), accepted(false));
}

// MQTT-3.1.3-6
#[test]
fn assigned_client_ids_are_unique() {
    let mut h = Harness::new(Profile::mqtt311());
    let mut ids = BTreeSet::new();
    for c in 1..=3 {
        h.connect(c, "", true);
    }
    for e in &h.events {
        if let BrokerEvent::Connected { client_id, .. } = e {
            assert!(!client_id.is_empty());
            ids.insert(client_id.as_str().to_string());
        }
    }
    assert_eq!(ids.len(), 3);
}

#[test]
fn opening_an_open_connection_id_is_refused_and_unknown_ids_are_ignored() {
    let mut h = Harness::new(Profile::mqtt311());
    h.open(1);
    assert!(h.broker.open(Instant::ZERO, ConnId(1)).is_err());
    h.send_bytes(9, &[0xc0, 0x00]);
    h.drop_conn(9);
    assert!(h.log.is_empty());
    assert_eq!(h.broker.connections(), 1);
}

#[test]
fn the_keep_alive_deadline_closes_a_silent_client_through_the_broker_timer() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect_with(1, connect("c", true, 4, None));
    assert_eq!(h.broker.poll_timeout(), Some(Instant::from_millis(6000)));
    h.advance(5999);
    assert!(!h.is_closed(1));
    h.advance(1);
    assert_eq!(h.closed.get(&1), Some(&CloseReason::KeepAliveTimeout));
    assert_eq!(h.broker.poll_timeout(), None);
    assert_eq!(h.broker.connections(), 0);
}

fn workload(h: &mut Harness) {
    h.connect(1, "a", false);
    h.subscribe(
        1,
        1,
        &[("x/+", QoS::ExactlyOnce), ("x/#", QoS::AtLeastOnce)],
    );
    h.connect(2, "b", true);
    h.subscribe(2, 1, &[("#", QoS::AtLeastOnce)]);
    for i in 1..=5 {
        h.send(2, publish("x/y", QoS::ExactlyOnce, i, "m"));
        h.send(2, Packet::PubRel(pid(i)));
    }
    h.drop_conn(1);
    h.connect(3, "a", false);
}

#[test]
fn the_same_inputs_give_the_same_actions() {
    let mut one = Harness::new(Profile::mqtt311());
    let mut two = Harness::new(Profile::mqtt311());
    workload(&mut one);
    workload(&mut two);
    assert!(!one.log.is_empty());
    assert_eq!(one.log, two.log);
}

#[test]
fn the_session_bound_refuses_a_new_client_with_server_unavailable() {
    let config = BrokerConfig {
        max_sessions: Some(2),
        ..BrokerConfig::default()
    };
    let mut h = Harness::with_config(Profile::mqtt311(), config);
    h.connect(1, "a", false);
    h.drop_conn(1);
    h.connect(2, "b", true);
    assert_eq!(
        h.connect(3, "c", true),
        ConnAck::Refused(ConnectReturnCode::ServerUnavailable)
    );
    assert!(h.is_closed(3));
    assert!(
        h.events
            .iter()
            .any(|e| *e == BrokerEvent::SessionLimit { conn: ConnId(3) })
    );
    // A known session is still reachable.
    assert_eq!(h.connect(4, "a", false), accepted(true));
}

#[test]
fn the_retained_bound_keeps_existing_topics_and_reports_a_new_one() {
    let config = BrokerConfig {
        max_retained: Some(1),
        ..BrokerConfig::default()
    };
    let mut h = Harness::with_config(Profile::mqtt311(), config);
    h.connect(1, "s", true);
    h.subscribe(1, 1, &[("#", QoS::AtMostOnce)]);
    h.connect(2, "pub", true);
    h.send(2, retained("a", QoS::AtMostOnce, 0, "1"));
    h.send(2, retained("b", QoS::AtMostOnce, 0, "2"));
    h.send(2, retained("a", QoS::AtMostOnce, 0, "3"));
    assert_eq!(payloads(&h.take(1)), vec!["1", "2", "3"]);
    assert_eq!(&h.broker.retained("a").unwrap().payload[..], b"3");
    assert!(h.broker.retained("b").is_none());
    let not_stored = h
        .events
        .iter()
        .filter(|e| matches!(e, BrokerEvent::RetainedNotStored { .. }))
        .count();
    assert_eq!(not_stored, 1);
}

#[test]
fn bytes_split_anywhere_give_the_same_actions_as_whole_packets() {
    let script: Vec<(u64, Packet<Bytes>)> = vec![
        (1, Packet::Connect(connect("s", true, 60, None))),
        (1, subscribe(1, &[("t/#", QoS::ExactlyOnce)]).into()),
        (2, Packet::Connect(connect("p", true, 60, None))),
        (2, publish("t/a", QoS::ExactlyOnce, 1, "m").into()),
        (2, Packet::PubRel(pid(1))),
        (1, Packet::PingReq),
    ];
    let mut whole = Harness::new(Profile::mqtt311());
    let mut split = Harness::new(Profile::mqtt311());
    for h in [&mut whole, &mut split] {
        h.open(1);
        h.open(2);
    }
    for (c, p) in &script {
        whole.send(*c, p.clone());
        for b in p.to_bytes().unwrap().iter() {
            split.send_bytes(*c, &[*b]);
        }
    }
    assert_eq!(whole.log, split.log);
    assert!(whole.log.len() > 6);
}
