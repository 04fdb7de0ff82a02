//! One server connection driven alone, in simulated time.

mod support;

use bytes::Bytes;
use mqtt_sansio::server::{
    Action, CloseReason, PolicyViolation, Server, ServerConfig, ServerEvent,
};
use mqtt_sansio::{
    ConnAck, ConnectReturnCode, DecodeError, Instant, MqttString, Packet, Profile, ProtocolError,
    QoS,
};
use support::canonical::from_hex;
use support::harness::{connect, pid, publish, subscribe, will};

use support::server::{
    accepted, bytes, close_reason, connected, drain, events, login, plain, sends, with_passwords,
};

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
