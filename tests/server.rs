//! One server connection driven alone, in simulated time.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use mqtt_sansio::server::{
    Action, Authorizer, CloseReason, Ignored, Message, PolicyViolation, PublishDecision, Server,
    ServerConfig, ServerEvent, ServerSession,
};
use mqtt_sansio::{
    ConnAck, ConnectReturnCode, DecodeError, Instant, Login, MqttString, Packet, Profile,
    ProtocolError, QoS, SubAck, SubAckCode,
};
use support::canonical::from_hex;
use support::harness::{connect, pid, publish, retained, subscribe, unsubscribe, will};

fn bytes(p: impl Into<Packet<Bytes>>) -> Bytes {
    p.into().to_bytes().expect("encodable")
}

fn drain(s: &mut Server) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn sends(actions: &[Action]) -> Vec<Packet<Bytes>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn events(actions: &[Action]) -> Vec<ServerEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn close_reason(actions: &[Action]) -> Option<CloseReason> {
    actions.iter().find_map(|a| match a {
        Action::Close(r) => Some(*r),
        _ => None,
    })
}

fn accepted() -> Packet<Bytes> {
    Packet::ConnAck(ConnAck::Accepted {
        session_present: false,
    })
}

/// A server that has accepted `client` (keep-alive 10 s, the given will).
fn connected(
    profile: Profile,
    config: ServerConfig,
    client: &str,
    w: Option<mqtt_sansio::Will<Bytes>>,
) -> Server {
    let mut s = Server::open(Instant::ZERO, profile, config);
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect(client, true, 10, w))),
    );
    let a = drain(&mut s);
    assert!(matches!(events(&a)[..], [ServerEvent::Connect(_)]), "{a:?}");
    s.accept(Instant::ZERO, None).unwrap();
    assert_eq!(sends(&drain(&mut s)), vec![accepted()]);
    s
}

fn plain(client: &str) -> Server {
    connected(Profile::mqtt311(), ServerConfig::default(), client, None)
}

fn msg(topic: &str, qos: QoS, payload: &str) -> Message {
    Message {
        topic: mqtt_sansio::TopicName::try_from(topic).unwrap(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain: false,
    }
}

// MQTT-3.1.4-1, MQTT-4.8.0-1
#[test]
fn a_first_packet_other_than_connect_closes_without_any_answer() {
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    s.handle_bytes(Instant::ZERO, &bytes(Packet::<Bytes>::PingReq));
    let a = drain(&mut s);
    assert!(sends(&a).is_empty());
    assert_eq!(
        close_reason(&a),
        Some(CloseReason::Protocol(ProtocolError {
            rule: "MQTT-3.1.0-1",
            expected: "CONNECT",
            got: "PINGREQ"
        }))
    );
    assert!(s.is_closed());
}

// MQTT-3.1.0-2
#[test]
fn a_second_connect_closes_the_connection() {
    let mut s = plain("c1");
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect("c1", true, 10, None))),
    );
    let a = drain(&mut s);
    assert!(sends(&a).is_empty());
    assert_eq!(
        close_reason(&a),
        Some(CloseReason::Protocol(ProtocolError {
            rule: "MQTT-3.1.0-2",
            expected: "no second CONNECT",
            got: "CONNECT"
        }))
    );
}

// MQTT-3.1.2-2, MQTT-3.2.2-5
#[test]
fn an_unsupported_protocol_level_gets_return_code_1_and_the_close() {
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    // CONNECT "MQTT" level 3, clean session, keep-alive 60, client id "a".
    s.handle_bytes(
        Instant::ZERO,
        &from_hex("100d00044d5154540302003c000161").unwrap(),
    );
    let a = drain(&mut s);
    assert_eq!(
        sends(&a),
        vec![Packet::ConnAck(ConnAck::Refused(
            ConnectReturnCode::UnacceptableProtocolVersion
        ))]
    );
    assert_eq!(
        close_reason(&a),
        Some(CloseReason::Refused(
            ConnectReturnCode::UnacceptableProtocolVersion
        ))
    );
}

// MQTT-3.1.2-1
#[test]
fn another_protocol_name_closes_without_connack() {
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    s.handle_bytes(
        Instant::ZERO,
        &from_hex("100d00044d5154580402003c000161").unwrap(),
    );
    let a = drain(&mut s);
    assert!(sends(&a).is_empty());
    assert_eq!(
        close_reason(&a),
        Some(CloseReason::Malformed(DecodeError::InvalidProtocolName))
    );
}

// MQTT-3.1.3-8
#[test]
fn a_zero_length_client_id_without_clean_session_is_refused_with_code_2() {
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect("", false, 10, None))),
    );
    let a = drain(&mut s);
    assert_eq!(
        sends(&a),
        vec![Packet::ConnAck(ConnAck::Refused(
            ConnectReturnCode::IdentifierRejected
        ))]
    );
    assert!(s.is_closed());
}

// MQTT-3.1.3-6
#[test]
fn a_zero_length_client_id_with_clean_session_is_offered_for_an_assigned_id() {
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect("", true, 10, None))),
    );
    let a = drain(&mut s);
    let [ServerEvent::Connect(req)] = &events(&a)[..] else {
        panic!("{a:?}")
    };
    assert!(req.client_id.is_empty());
    s.accept_as(
        Instant::ZERO,
        Some(MqttString::from_static("given-1").unwrap()),
        None,
    )
    .unwrap();
    assert_eq!(sends(&drain(&mut s)), vec![accepted()]);
    assert_eq!(s.client_id().as_str(), "given-1");
}

// MQTT-3.1.3-9
#[test]
fn a_client_id_longer_than_the_aws_limit_is_refused_with_code_2() {
    let mut s = Server::new(Profile::aws_iot_core(), ServerConfig::default());
    let id = "x".repeat(129);
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect(&id, true, 10, None))),
    );
    assert_eq!(
        sends(&drain(&mut s)),
        vec![Packet::ConnAck(ConnAck::Refused(
            ConnectReturnCode::IdentifierRejected
        ))]
    );
    let mut ok = Server::new(Profile::aws_iot_core(), ServerConfig::default());
    ok.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect(&"x".repeat(128), true, 10, None))),
    );
    assert!(matches!(
        events(&drain(&mut ok))[..],
        [ServerEvent::Connect(_)]
    ));
}

struct Passwords;

impl Authorizer for Passwords {
    fn connect(
        &self,
        _: &MqttString<Bytes>,
        login: Option<&Login<Bytes>>,
    ) -> Result<(), ConnectReturnCode> {
        match login {
            None => Err(ConnectReturnCode::NotAuthorized),
            Some(l) if l.password.as_ref().map(|p| p.as_bytes()) == Some(b"pw") => Ok(()),
            Some(_) => Err(ConnectReturnCode::BadUserNameOrPassword),
        }
    }
    fn subscribe(
        &self,
        _: &MqttString<Bytes>,
        f: &mqtt_sansio::TopicFilter<Bytes>,
        q: QoS,
    ) -> Option<QoS> {
        if f.has_wildcards() {
            None
        } else {
            Some(q.min(QoS::AtLeastOnce))
        }
    }
    fn publish(&self, _: &MqttString<Bytes>, m: &Message) -> PublishDecision {
        match m.topic.as_str() {
            "closed" => PublishDecision::Close,
            "dropped" => PublishDecision::Discard,
            _ => PublishDecision::Allow,
        }
    }
}

fn with_passwords() -> ServerConfig {
    ServerConfig {
        authorizer: Arc::new(Passwords),
        ..ServerConfig::default()
    }
}

fn login(pw: &str) -> Option<Login<Bytes>> {
    Some(Login {
        username: MqttString::from_static("u").unwrap(),
        password: Some(mqtt_sansio::Binary::new(Bytes::copy_from_slice(pw.as_bytes())).unwrap()),
    })
}

// MQTT-3.2.2-5, MQTT-3.1.4-5
#[test]
fn the_authorizer_answers_with_codes_4_and_5_and_pipelined_packets_are_ignored() {
    for (l, code) in [
        (login("bad"), ConnectReturnCode::BadUserNameOrPassword),
        (None, ConnectReturnCode::NotAuthorized),
    ] {
        let mut s = Server::new(Profile::mqtt311(), with_passwords());
        let mut c = connect("c1", true, 10, None);
        c.login = l;
        let mut wire = bytes(Packet::Connect(c)).to_vec();
        wire.extend_from_slice(&bytes(Packet::<Bytes>::PingReq));
        wire.extend_from_slice(&bytes(subscribe(1, &[("a", QoS::AtMostOnce)])));
        s.handle_bytes(Instant::ZERO, &wire);
        let a = drain(&mut s);
        assert_eq!(sends(&a), vec![Packet::ConnAck(ConnAck::Refused(code))]);
        assert_eq!(close_reason(&a), Some(CloseReason::Refused(code)));
        s.handle_bytes(Instant::ZERO, &bytes(Packet::<Bytes>::PingReq));
        assert!(drain(&mut s).is_empty());
    }
}

// MQTT-3.1.4-5
#[test]
fn packets_pipelined_behind_connect_wait_for_the_answer_and_then_run() {
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    let mut wire = bytes(Packet::Connect(connect("c1", true, 10, None))).to_vec();
    wire.extend_from_slice(&bytes(Packet::<Bytes>::PingReq));
    s.handle_bytes(Instant::ZERO, &wire);
    let a = drain(&mut s);
    assert!(sends(&a).is_empty(), "nothing before the answer: {a:?}");
    s.accept(Instant::ZERO, None).unwrap();
    assert_eq!(sends(&drain(&mut s)), vec![accepted(), Packet::PingResp]);
}

// MQTT-3.1.4-5
#[test]
fn an_application_refusal_ignores_the_pipelined_packets() {
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    let mut wire = bytes(Packet::Connect(connect("c1", true, 10, None))).to_vec();
    wire.extend_from_slice(&bytes(Packet::<Bytes>::PingReq));
    s.handle_bytes(Instant::ZERO, &wire);
    drain(&mut s);
    s.refuse(Instant::ZERO, ConnectReturnCode::ServerUnavailable)
        .unwrap();
    let a = drain(&mut s);
    assert_eq!(
        sends(&a),
        vec![Packet::ConnAck(ConnAck::Refused(
            ConnectReturnCode::ServerUnavailable
        ))]
    );
    assert!(s.is_closed());
}

#[test]
fn a_connect_split_byte_by_byte_is_the_same_connect() {
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    for b in bytes(Packet::Connect(connect("split", true, 10, None))).iter() {
        assert!(events(&drain(&mut s)).is_empty());
        s.handle_bytes(Instant::ZERO, &[*b]);
    }
    let a = drain(&mut s);
    let [ServerEvent::Connect(req)] = &events(&a)[..] else {
        panic!("{a:?}")
    };
    assert_eq!(req.client_id.as_str(), "split");
}

// MQTT-3.1.2-24
#[test]
fn bytes_stamped_earlier_than_the_last_ones_do_not_move_the_keep_alive_deadline_back() {
    let mut s = connected(Profile::mqtt311(), ServerConfig::default(), "c1", None);
    let ping = bytes(Packet::<Bytes>::PingReq);
    s.handle_bytes(Instant::from_millis(10_000), &ping);
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(25_000)));
    s.handle_bytes(Instant::from_millis(4_000), &ping);
    assert_eq!(
        sends(&drain(&mut s)),
        vec![Packet::PingResp, Packet::PingResp]
    );
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(25_000)));
    s.handle_timeout(Instant::from_millis(24_999));
    assert!(drain(&mut s).is_empty(), "closed before the deadline");
}

// MQTT-3.1.2-24, MQTT-3.1.2-8
#[test]
fn silence_for_one_and_a_half_keep_alives_closes_and_publishes_the_will() {
    let w = will("status/c1", "offline", QoS::AtLeastOnce, true);
    let mut s = connected(Profile::mqtt311(), ServerConfig::default(), "c1", Some(w));
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(15_000)));
    s.handle_timeout(Instant::from_millis(14_999));
    assert!(drain(&mut s).is_empty());
    s.handle_bytes(
        Instant::from_millis(14_999),
        &bytes(Packet::<Bytes>::PingReq),
    );
    assert_eq!(sends(&drain(&mut s)), vec![Packet::PingResp]);
    assert_eq!(s.poll_timeout(), Some(Instant::from_millis(29_999)));
    s.handle_timeout(Instant::from_millis(29_999));
    let a = drain(&mut s);
    assert_eq!(a[0], Action::Close(CloseReason::KeepAliveTimeout));
    let [ServerEvent::Will(m)] = &events(&a)[..] else {
        panic!("{a:?}")
    };
    assert_eq!(
        (m.topic.as_str(), &m.payload[..], m.qos, m.retain),
        ("status/c1", &b"offline"[..], QoS::AtLeastOnce, true)
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn aws_clamps_a_short_keep_alive_to_thirty_seconds() {
    let mut s = Server::new(Profile::aws_iot_core(), ServerConfig::default());
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect("c1", true, 5, None))),
    );
    let a = drain(&mut s);
    let [ServerEvent::Connect(req)] = &events(&a)[..] else {
        panic!()
    };
    assert_eq!(req.keep_alive, 30);
    s.accept(Instant::ZERO, None).unwrap();
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(Instant::from_secs(45)));
}

#[test]
fn a_connection_that_never_sends_connect_times_out() {
    let mut s = Server::open(
        Instant::from_secs(1),
        Profile::mqtt311(),
        ServerConfig::default(),
    );
    assert_eq!(s.poll_timeout(), Some(Instant::from_secs(31)));
    s.handle_timeout(Instant::from_secs(31));
    assert_eq!(
        drain(&mut s),
        vec![Action::Close(CloseReason::ConnectTimeout)]
    );
}

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

/// Grants at most QoS 1 and refuses wildcard filters (a server without wildcards).
struct NoWildcards;

impl Authorizer for NoWildcards {
    fn subscribe(
        &self,
        c: &MqttString<Bytes>,
        f: &mqtt_sansio::TopicFilter<Bytes>,
        q: QoS,
    ) -> Option<QoS> {
        Passwords.subscribe(c, f, q)
    }
}

fn with_passwords_accepting() -> ServerConfig {
    ServerConfig {
        authorizer: Arc::new(NoWildcards),
        ..ServerConfig::default()
    }
}

// MQTT-3.3.5-2
#[test]
fn a_refused_publish_is_either_acknowledged_and_dropped_or_closes() {
    let mut s = Server::new(Profile::mqtt311(), with_passwords());
    let mut c = connect("c1", true, 10, None);
    c.login = login("pw");
    s.handle_bytes(Instant::ZERO, &bytes(Packet::Connect(c)));
    drain(&mut s);
    s.accept(Instant::ZERO, None).unwrap();
    drain(&mut s);
    s.handle_bytes(
        Instant::ZERO,
        &bytes(publish("dropped", QoS::AtLeastOnce, 1, "m")),
    );
    let a = drain(&mut s);
    assert_eq!(sends(&a), vec![Packet::PubAck(pid(1))]);
    assert!(matches!(events(&a)[..], [ServerEvent::Discarded(_)]));
    s.handle_bytes(
        Instant::ZERO,
        &bytes(publish("closed", QoS::AtLeastOnce, 2, "m")),
    );
    assert_eq!(
        drain(&mut s),
        vec![Action::Close(CloseReason::Policy(
            PolicyViolation::NotAuthorized
        ))]
    );
}

// MQTT-3.10.4-1, MQTT-3.10.4-5
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
