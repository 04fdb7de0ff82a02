//! One server connection driven alone after its CONNECT: pings, disconnects, publish
//! and subscribe flows, the outgoing window, resumed sessions.

mod support;

use bytes::Bytes;
use mqtt_sansio::server::{
    Action, CloseReason, Ignored, PolicyViolation, Server, ServerConfig, ServerEvent, ServerSession,
};
use mqtt_sansio::{
    ConnAck, DecodeError, Instant, Packet, Profile, ProtocolError, QoS, SubAck, SubAckCode,
};
use support::harness::{connect, pid, publish, retained, subscribe, unsubscribe, will};

use support::server::{
    accepted, bytes, close_reason, connected, drain, events, msg, plain, sends,
    with_passwords_accepting,
};

// MQTT-3.12.4-1
#[test]
fn pingreq_is_answered_with_pingresp() {
    let mut s = plain("c1");
    s.handle_bytes(Instant::ZERO, &bytes(Packet::<Bytes>::PingReq));
    assert_eq!(sends(&drain(&mut s)), vec![Packet::PingResp]);
}

// MQTT-3.14.4-3, MQTT-3.1.2-10
#[test]
fn disconnect_closes_and_discards_the_will() {
    let mut s = connected(
        Profile::mqtt311(),
        ServerConfig::default(),
        "c1",
        Some(will("w", "x", QoS::AtMostOnce, false)),
    );
    s.handle_bytes(Instant::ZERO, &bytes(Packet::<Bytes>::Disconnect));
    assert_eq!(
        drain(&mut s),
        vec![Action::Close(CloseReason::ClientDisconnect)]
    );
    s.connection_lost(Instant::ZERO);
    assert!(drain(&mut s).is_empty());
}

// MQTT-4.8.0-1, MQTT-3.1.2-8
#[test]
fn a_protocol_violation_closes_and_publishes_the_will() {
    let mut s = connected(
        Profile::mqtt311(),
        ServerConfig::default(),
        "c1",
        Some(will("w", "x", QoS::AtMostOnce, false)),
    );
    // A PUBLISH with QoS 3.
    s.handle_bytes(Instant::ZERO, &[0x36, 0x00]);
    let a = drain(&mut s);
    assert_eq!(
        a[0],
        Action::Close(CloseReason::Malformed(DecodeError::PublishQos3))
    );
    assert!(matches!(events(&a)[..], [ServerEvent::Will(_)]));
    let mut s = connected(
        Profile::mqtt311(),
        ServerConfig::default(),
        "c2",
        Some(will("w", "x", QoS::AtMostOnce, false)),
    );
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::SubAck(
            SubAck::new(pid(1), [SubAckCode::Failure]).unwrap(),
        )),
    );
    let a = drain(&mut s);
    assert_eq!(
        a[0],
        Action::Close(CloseReason::Protocol(ProtocolError {
            rule: "MQTT-4.8.0-1",
            expected: "a packet a client sends",
            got: "SUBACK"
        }))
    );
    assert!(matches!(events(&a)[..], [ServerEvent::Will(_)]));
}

#[test]
fn a_transport_close_publishes_the_will_without_a_close_action() {
    let mut s = connected(
        Profile::mqtt311(),
        ServerConfig::default(),
        "c1",
        Some(will("w", "x", QoS::AtMostOnce, false)),
    );
    s.connection_lost(Instant::ZERO);
    let a = drain(&mut s);
    assert!(close_reason(&a).is_none());
    assert!(matches!(events(&a)[..], [ServerEvent::Will(_)]));
}

// MQTT-3.3.4-1
#[test]
fn a_qos1_publish_is_acknowledged_and_handed_over() {
    let mut s = plain("c1");
    s.handle_bytes(
        Instant::ZERO,
        &bytes(publish("a/b", QoS::AtLeastOnce, 7, "m")),
    );
    let a = drain(&mut s);
    assert_eq!(sends(&a), vec![Packet::PubAck(pid(7))]);
    assert_eq!(
        events(&a),
        vec![ServerEvent::Publish(msg("a/b", QoS::AtLeastOnce, "m"))]
    );
}

// MQTT-4.3.3-2
#[test]
fn a_qos2_publish_is_handed_over_once_even_when_repeated_before_pubrel() {
    let mut s = plain("c1");
    s.handle_bytes(
        Instant::ZERO,
        &bytes(publish("a", QoS::ExactlyOnce, 3, "m")),
    );
    let a = drain(&mut s);
    assert_eq!(sends(&a), vec![Packet::PubRec(pid(3))]);
    assert_eq!(events(&a).len(), 1);
    let mut again = publish("a", QoS::ExactlyOnce, 3, "m");
    again.dup = true;
    s.handle_bytes(Instant::ZERO, &bytes(again.clone()));
    let a = drain(&mut s);
    assert_eq!(sends(&a), vec![Packet::PubRec(pid(3))]);
    assert!(events(&a).is_empty());
    s.handle_bytes(Instant::ZERO, &bytes(Packet::<Bytes>::PubRel(pid(3))));
    assert_eq!(sends(&drain(&mut s)), vec![Packet::PubComp(pid(3))]);
    // After PUBREL the id is new again.
    s.handle_bytes(Instant::ZERO, &bytes(again));
    assert_eq!(events(&drain(&mut s)).len(), 1);
}

#[test]
fn inbound_qos2_ids_awaiting_pubrel_are_bounded() {
    let config = ServerConfig {
        max_inbound_qos2: 2,
        ..ServerConfig::default()
    };
    let mut s = connected(Profile::mqtt311(), config, "c1", None);
    for id in 1..=2 {
        s.handle_bytes(
            Instant::ZERO,
            &bytes(publish("a", QoS::ExactlyOnce, id, "m")),
        );
        assert_eq!(sends(&drain(&mut s)), vec![Packet::PubRec(pid(id))]);
    }
    s.handle_bytes(
        Instant::ZERO,
        &bytes(publish("a", QoS::ExactlyOnce, 3, "m")),
    );
    let a = drain(&mut s);
    assert!(sends(&a).is_empty());
    assert_eq!(
        close_reason(&a),
        Some(CloseReason::Policy(PolicyViolation::TooManyInboundQos2))
    );
}

#[test]
fn aws_ignores_a_qos2_publish_and_a_qos2_subscribe() {
    let mut s = connected(Profile::aws_iot_core(), ServerConfig::default(), "c1", None);
    s.handle_bytes(
        Instant::ZERO,
        &bytes(publish("a", QoS::ExactlyOnce, 3, "m")),
    );
    assert_eq!(
        drain(&mut s),
        vec![Action::Event(ServerEvent::Ignored(Ignored::Qos2Publish))]
    );
    s.handle_bytes(
        Instant::ZERO,
        &bytes(subscribe(
            4,
            &[("a", QoS::AtLeastOnce), ("b", QoS::ExactlyOnce)],
        )),
    );
    assert_eq!(
        drain(&mut s),
        vec![Action::Event(ServerEvent::Ignored(Ignored::Qos2Subscribe))]
    );
    assert_eq!(s.session().subscriptions().count(), 0);
    assert!(s.is_connected());
}

#[test]
fn aws_closes_on_retain_and_on_an_oversized_payload() {
    let mut s = connected(Profile::aws_iot_core(), ServerConfig::default(), "c1", None);
    s.handle_bytes(
        Instant::ZERO,
        &bytes(retained("a", QoS::AtMostOnce, 0, "m")),
    );
    assert_eq!(
        drain(&mut s),
        vec![Action::Close(CloseReason::Policy(PolicyViolation::Retain))]
    );
    let mut s = connected(Profile::aws_iot_core(), ServerConfig::default(), "c2", None);
    let big = "x".repeat(128 * 1024);
    s.handle_bytes(
        Instant::ZERO,
        &bytes(publish("a", QoS::AtMostOnce, 0, &big)),
    );
    assert!(
        drain(&mut s).iter().all(|a| matches!(a, Action::Event(_))),
        "exactly the limit passes"
    );
    let big = "x".repeat(128 * 1024 + 1);
    s.handle_bytes(
        Instant::ZERO,
        &bytes(publish("a", QoS::AtMostOnce, 0, &big)),
    );
    assert_eq!(
        drain(&mut s),
        vec![Action::Close(CloseReason::Policy(
            PolicyViolation::PayloadTooLarge
        ))]
    );
}

// MQTT-3.8.4-3, MQTT-3.8.4-5, MQTT-3.9.3-1, MQTT-3.8.3-2
#[test]
fn subscribe_answers_per_filter_and_an_identical_filter_replaces_the_subscription() {
    let mut s = connected(Profile::mqtt311(), with_passwords_accepting(), "c1", None);
    s.handle_bytes(
        Instant::ZERO,
        &bytes(subscribe(
            5,
            &[
                ("a", QoS::ExactlyOnce),
                ("b/+", QoS::AtMostOnce),
                ("a", QoS::AtMostOnce),
            ],
        )),
    );
    let a = drain(&mut s);
    assert_eq!(
        sends(&a),
        vec![Packet::SubAck(
            SubAck::new(
                pid(5),
                [
                    SubAckCode::Granted(QoS::AtLeastOnce),
                    SubAckCode::Failure,
                    SubAckCode::Granted(QoS::AtMostOnce)
                ]
            )
            .unwrap()
        )]
    );
    let subs: Vec<(Vec<u8>, QoS)> = s
        .session()
        .subscriptions()
        .map(|(f, q)| (f.to_vec(), q))
        .collect();
    assert_eq!(subs, vec![(b"a".to_vec(), QoS::AtMostOnce)]);
}

#[test]
fn unsubscribe_removes_only_a_literally_equal_filter() {
    let mut s = plain("c1");
    s.handle_bytes(
        Instant::ZERO,
        &bytes(subscribe(1, &[("a/+", QoS::AtMostOnce)])),
    );
    drain(&mut s);
    s.handle_bytes(Instant::ZERO, &bytes(unsubscribe(2, &["a/b"])));
    assert_eq!(drain(&mut s), vec![Action::Send(Packet::UnsubAck(pid(2)))]);
    s.handle_bytes(Instant::ZERO, &bytes(unsubscribe(3, &["a/+", "x"])));
    let a = drain(&mut s);
    assert_eq!(sends(&a), vec![Packet::UnsubAck(pid(3))]);
    let [ServerEvent::Unsubscribed(removed)] = &events(&a)[..] else {
        panic!("{a:?}")
    };
    assert_eq!(
        removed.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        vec!["a/+"]
    );
}

// MQTT-2.3.1-4
#[test]
fn outgoing_messages_beyond_the_window_are_queued_and_flow_as_acks_arrive() {
    let config = ServerConfig {
        max_inflight: 2,
        max_queued: 1,
        ..ServerConfig::default()
    };
    let mut s = connected(Profile::mqtt311(), config, "c1", None);
    for i in 0..3 {
        s.publish(Instant::ZERO, msg("t", QoS::AtLeastOnce, &i.to_string()))
            .unwrap();
    }
    let rejected = s
        .publish(Instant::ZERO, msg("t", QoS::AtLeastOnce, "3"))
        .unwrap_err();
    assert_eq!(&rejected.0.payload[..], b"3");
    let ids: Vec<u16> = sends(&drain(&mut s))
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.qos.packet_id().unwrap().get(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!((s.session().inflight(), s.session().queued()), (2, 1));
    s.handle_bytes(Instant::ZERO, &bytes(Packet::<Bytes>::PubAck(pid(1))));
    let a = sends(&drain(&mut s));
    let [Packet::Publish(p)] = &a[..] else {
        panic!("{a:?}")
    };
    assert_eq!(
        (p.qos.packet_id(), &p.payload[..]),
        (Some(pid(3)), &b"2"[..])
    );
    // A QoS 0 message is never held back by the window.
    s.publish(Instant::ZERO, msg("t", QoS::AtMostOnce, "q0"))
        .unwrap();
    assert_eq!(sends(&drain(&mut s)).len(), 1);
}

#[test]
fn an_outgoing_qos2_message_completes_with_pubrec_pubrel_pubcomp() {
    let mut s = plain("c1");
    s.publish(Instant::ZERO, msg("t", QoS::ExactlyOnce, "m"))
        .unwrap();
    drain(&mut s);
    s.handle_bytes(Instant::ZERO, &bytes(Packet::<Bytes>::PubRec(pid(1))));
    assert_eq!(sends(&drain(&mut s)), vec![Packet::PubRel(pid(1))]);
    s.handle_bytes(Instant::ZERO, &bytes(Packet::<Bytes>::PubComp(pid(1))));
    drain(&mut s);
    assert_eq!(s.session().inflight(), 0);
}

fn session_with_unacked(profile: Profile) -> ServerSession {
    let mut s = connected(profile, ServerConfig::default(), "c1", None);
    s.publish(Instant::ZERO, msg("t", QoS::AtLeastOnce, "a"))
        .unwrap();
    s.publish(Instant::ZERO, msg("t", QoS::ExactlyOnce, "b"))
        .unwrap();
    drain(&mut s);
    s.handle_bytes(Instant::ZERO, &bytes(Packet::<Bytes>::PubRec(pid(2))));
    drain(&mut s);
    s.connection_lost(Instant::ZERO);
    s.take_session().expect("closed")
}

fn resume(profile: Profile, session: ServerSession) -> Vec<Packet<Bytes>> {
    let mut s = Server::new(profile, ServerConfig::default());
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect("c1", false, 10, None))),
    );
    drain(&mut s);
    s.accept(Instant::ZERO, Some(session)).unwrap();
    sends(&drain(&mut s))
}

// MQTT-4.4.0-1, MQTT-3.2.2-2
#[test]
fn resume_resends_the_same_id_with_dup_and_the_pubrel_under_mqtt311() {
    let out = resume(Profile::mqtt311(), session_with_unacked(Profile::mqtt311()));
    assert_eq!(
        out[0],
        Packet::ConnAck(ConnAck::Accepted {
            session_present: true
        })
    );
    let Packet::Publish(p) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!((p.dup, p.qos.packet_id()), (true, Some(pid(1))));
    assert_eq!(out[2], Packet::PubRel(pid(2)));
    assert_eq!(out.len(), 3);
}

#[test]
fn resume_resends_with_a_fresh_id_and_no_dup_under_aws() {
    let mut s = connected(Profile::aws_iot_core(), ServerConfig::default(), "c1", None);
    s.publish(Instant::ZERO, msg("t", QoS::AtLeastOnce, "a"))
        .unwrap();
    drain(&mut s);
    s.connection_lost(Instant::ZERO);
    let session = s.take_session().unwrap();
    let out = resume(Profile::aws_iot_core(), session);
    let Packet::Publish(p) = &out[1] else {
        panic!("{out:?}")
    };
    assert!(!p.dup);
    assert_ne!(p.qos.packet_id(), Some(pid(1)));
}

#[test]
fn a_session_given_to_a_clean_session_connect_is_not_resumed() {
    let session = session_with_unacked(Profile::mqtt311());
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect("c1", true, 10, None))),
    );
    drain(&mut s);
    s.accept(Instant::ZERO, Some(session)).unwrap();
    assert_eq!(sends(&drain(&mut s)), vec![accepted()]);
    assert_eq!(s.session().inflight(), 0);
}
