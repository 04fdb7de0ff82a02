//! Fixed operation sequences and pseudo-random inputs through the checks the
//! state-machine fuzz targets make (`tests/support/machine_checks.rs`). The sequences
//! drive each machine through the paths the invariants are about (resends, queues,
//! timers, takeovers), and each test also asserts that its sequence reached them.
//! Saved inputs under `fuzz/regressions/{client,server,broker}/` are replayed by
//! `tests/fuzz_regressions.rs`.

#[allow(dead_code)]
#[path = "support/machine_checks/mod.rs"]
mod machine_checks;
#[path = "support/noise.rs"]
mod noise;

use mqtt_sansio::broker::{Action as BrokerAction, BrokerEvent, ConnId};
use mqtt_sansio::client::{Action as ClientAction, Event, Reason};
use mqtt_sansio::server::{Action as ServerAction, CloseReason};
use mqtt_sansio::{ConnAck, ConnectReturnCode, Packet, QoS, SubAckCode};

use machine_checks::*;
use noise::noise;

/// A target's checks, run on one input.
type Check = fn(&[u8]);

#[test]
fn pseudo_random_inputs_keep_every_invariant_of_every_machine() {
    for seed in 0..48u64 {
        let data = noise(seed, 64 << (seed % 6));
        let targets: [(&str, Check); 3] = [
            ("client", check_client),
            ("server", check_server),
            ("broker", check_broker),
        ];
        for (name, check) in targets {
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{name} fails on noise seed {seed}");
        }
    }
}

// ----- fixed client sequences -----

fn client_setup() -> ClientSetup {
    ClientSetup {
        preset: Preset::Mqtt311,
        connack_timeout_ms: 5_000,
        pingresp_timeout_ms: 2_000,
        max_inflight: 4,
        manual_acks: false,
        max_packet_size: None,
        reconnect: None,
        request_timeout_ms: None,
        publish_timeout_ms: None,
    }
}

fn connect(client: u8, clean: bool, keep_alive: u8) -> ConnectSpec {
    ConnectSpec {
        client,
        clean,
        keep_alive,
        will: None,
        login: false,
    }
}

fn accepted(session_present: bool) -> ClientOp {
    ClientOp::Peer(
        Reply::ConnAck(ConnAck::Accepted { session_present }),
        Delivery::Whole,
    )
}

fn ack(which: u8, kind: AckKind) -> ClientOp {
    ClientOp::Peer(Reply::Ack { which, kind }, Delivery::Split(1))
}

fn actions(log: &[ClientRecord]) -> impl Iterator<Item = &ClientAction> {
    log.iter().filter_map(|r| match r {
        ClientRecord::Action(a) => Some(a),
        _ => None,
    })
}

#[test]
fn a_resumed_client_session_resends_with_dup_and_completes_under_the_checks() {
    let input = ClientInput {
        setup: client_setup(),
        ops: vec![
            ClientOp::Connect(connect(1, false, 10)),
            accepted(false),
            ClientOp::Publish {
                topic: 1,
                qos: QoS::AtLeastOnce,
                retain: false,
                payload: Payload(3),
            },
            ClientOp::Publish {
                topic: 2,
                qos: QoS::ExactlyOnce,
                retain: true,
                payload: Payload(0),
            },
            ClientOp::Subscribe(vec![(1, QoS::ExactlyOnce), (5, QoS::AtMostOnce)]),
            ClientOp::ConnectionLost,
            ClientOp::Connect(connect(1, false, 10)),
            accepted(true),
            ack(0, AckKind::PubAck),
            ack(0, AckKind::PubRec),
            ack(0, AckKind::PubComp),
            ClientOp::Advance(Step::Seconds(11), true),
            ClientOp::Peer(Reply::PingResp, Delivery::Direct),
            ClientOp::Disconnect,
        ],
    };
    check_client_input(&input);
    let log = run_client(&input);
    let resent_dup = actions(&log)
        .filter(|a| matches!(a, ClientAction::Send(Packet::Publish(p)) if p.dup))
        .count();
    assert_eq!(
        resent_dup, 2,
        "both unacknowledged messages resent with DUP=1"
    );
    assert!(actions(&log).any(|a| matches!(a, ClientAction::Event(Event::Completed(_)))));
    assert!(actions(&log).any(|a| matches!(a, ClientAction::Send(Packet::PingReq))));
    assert!(
        actions(&log).any(|a| matches!(a, ClientAction::Event(Event::Lost(_)))),
        "the SUBSCRIBE is lost with the connection"
    );
}

#[test]
fn a_client_with_manual_acks_gets_repeats_and_releases_under_the_checks() {
    let publish = |qos, id| {
        ClientOp::Peer(
            Reply::Publish {
                topic: 0,
                qos,
                id,
                dup: false,
                retain: false,
                payload: Payload(1),
            },
            Delivery::Whole,
        )
    };
    let input = ClientInput {
        setup: ClientSetup {
            manual_acks: true,
            ..client_setup()
        },
        ops: vec![
            ClientOp::Connect(connect(2, true, 0)),
            accepted(false),
            publish(QoS::ExactlyOnce, 1),
            publish(QoS::AtLeastOnce, 2),
            publish(QoS::ExactlyOnce, 1),
            ClientOp::Ack(0),
            ClientOp::Ack(0),
            ClientOp::Peer(Reply::PubRel(1), Delivery::Whole),
            publish(QoS::ExactlyOnce, 1),
            publish(QoS::ExactlyOnce, 1),
            ClientOp::Peer(Reply::PubRel(1), Delivery::Whole),
        ],
    };
    check_client_input(&input);
    let log = run_client(&input);
    let deliveries = actions(&log)
        .filter(|a| matches!(a, ClientAction::Deliver(_)))
        .count();
    assert_eq!(
        deliveries, 3,
        "the repeat before PUBREL is not delivered again"
    );
    assert!(
        actions(&log).any(|a| matches!(a, ClientAction::Close(Reason::Protocol(_)))),
        "PUBREL before the application's PUBREC closes"
    );
}

#[test]
fn a_client_with_a_small_packet_limit_closes_on_a_larger_packet_under_the_checks() {
    let input = ClientInput {
        setup: ClientSetup {
            max_packet_size: Some(16),
            ..client_setup()
        },
        ops: vec![
            ClientOp::Connect(connect(1, true, 0)),
            ClientOp::Peer(
                Reply::ConnAck(ConnAck::Accepted {
                    session_present: false,
                }),
                Delivery::Split(2),
            ),
            ClientOp::Peer(Reply::Raw(vec![0x30, 0x0A, 0x00, 0x01]), Delivery::Whole),
            ClientOp::Peer(Reply::Raw(vec![b'a'; 8]), Delivery::Whole),
            ClientOp::Peer(
                Reply::Publish {
                    topic: 1,
                    qos: QoS::AtMostOnce,
                    id: 0,
                    dup: false,
                    retain: false,
                    payload: Payload(40),
                },
                Delivery::Split(1),
            ),
        ],
    };
    check_client_input(&input);
    let log = run_client(&input);
    assert!(actions(&log).any(|a| matches!(a, ClientAction::Deliver(_))));
    assert!(
        actions(&log).any(|a| matches!(a, ClientAction::Close(Reason::Decode(_)))),
        "the 47-byte PUBLISH is refused from its header"
    );
}

#[test]
fn a_client_with_a_zero_pingresp_timeout_settles_its_timers_under_the_checks() {
    let input = ClientInput {
        setup: ClientSetup {
            pingresp_timeout_ms: 0,
            connack_timeout_ms: 0,
            ..client_setup()
        },
        ops: vec![
            ClientOp::Connect(connect(1, true, 1)),
            ClientOp::Fire,
            ClientOp::Connect(connect(1, true, 1)),
            ClientOp::Advance(Step::Millis(0), false),
            ClientOp::Connect(connect(1, true, 1)),
            accepted(false),
            ClientOp::Advance(Step::Seconds(3), true),
        ],
    };
    check_client_input(&input);
    let log = run_client(&input);
    let closes: Vec<Reason> = actions(&log)
        .filter_map(|a| match a {
            ClientAction::Close(r) => Some(*r),
            _ => None,
        })
        .collect();
    assert_eq!(
        closes,
        [
            Reason::ConnAckTimeout,
            Reason::ConnAckTimeout,
            Reason::PingTimeout
        ]
    );
}

// ----- fixed server sequences -----

fn server_setup(aws: bool) -> ServerSetup {
    ServerSetup {
        preset: if aws { Preset::AwsIot } else { Preset::Mqtt311 },
        connect_timeout_ms: 10_000,
        max_queued: 2,
        max_inflight: 1,
        max_inbound_qos2: 2,
        picky: false,
    }
}

fn peer(p: ClientPacket) -> ServerOp {
    ServerOp::Peer(p, Delivery::Whole)
}

fn app_publish(topic: u8, qos: QoS) -> ServerOp {
    ServerOp::Publish {
        topic,
        qos,
        retain: false,
        payload: Payload(2),
    }
}

fn server_actions(log: &[ServerRecord]) -> impl Iterator<Item = &ServerAction> {
    log.iter().filter_map(|r| match r {
        ServerRecord::Action(a) => Some(a),
        _ => None,
    })
}

#[test]
fn a_server_session_queues_beyond_its_window_and_resumes_under_the_checks() {
    let input = ServerInput {
        setup: server_setup(false),
        ops: vec![
            peer(ClientPacket::Connect(connect(1, false, 5))),
            ServerOp::Accept {
                resume: false,
                assign: false,
            },
            app_publish(1, QoS::AtLeastOnce),
            app_publish(2, QoS::ExactlyOnce),
            app_publish(3, QoS::AtLeastOnce),
            app_publish(4, QoS::AtLeastOnce),
            peer(ClientPacket::Ack {
                which: 0,
                kind: PeerAck::Ack,
            }),
            peer(ClientPacket::Publish {
                topic: 0,
                qos: QoS::ExactlyOnce,
                id: 3,
                dup: false,
                retain: false,
                payload: Payload(1),
            }),
            ServerOp::Reopen,
            app_publish(1, QoS::AtMostOnce),
            peer(ClientPacket::Connect(connect(1, false, 5))),
            ServerOp::Accept {
                resume: true,
                assign: false,
            },
            peer(ClientPacket::Ack {
                which: 0,
                kind: PeerAck::Rec,
            }),
            peer(ClientPacket::Ack {
                which: 0,
                kind: PeerAck::Comp,
            }),
            peer(ClientPacket::PubRel(3)),
            ServerOp::Advance(Step::Seconds(8), true),
        ],
    };
    check_server_input(&input);
    let log = run_server(&input);
    assert!(
        log.contains(&ServerRecord::Published(false)),
        "the fourth message overflows a queue of two"
    );
    assert!(
        server_actions(&log).any(|a| matches!(a, ServerAction::Send(Packet::Publish(p)) if p.dup)),
        "the resumed session resends with DUP=1"
    );
    assert!(server_actions(&log).any(|a| matches!(
        a,
        ServerAction::Send(Packet::ConnAck(ConnAck::Accepted {
            session_present: true
        }))
    )),);
    assert!(server_actions(&log).any(|a| *a == ServerAction::Close(CloseReason::KeepAliveTimeout)));
}

#[test]
fn an_aws_server_refuses_and_closes_on_its_dialect_under_the_checks() {
    let input = ServerInput {
        setup: ServerSetup {
            picky: true,
            ..server_setup(true)
        },
        ops: vec![
            peer(ClientPacket::Connect(connect(2, true, 60))),
            ServerOp::Reopen,
            peer(ClientPacket::Connect(connect(1, true, 60))),
            peer(ClientPacket::PingReq),
            ServerOp::Accept {
                resume: false,
                assign: true,
            },
            ServerOp::Reopen,
            ServerOp::Peer(
                ClientPacket::Connect(connect(0, true, 60)),
                Delivery::Split(3),
            ),
            ServerOp::Refuse(ConnectReturnCode::ServerUnavailable),
            ServerOp::Accept {
                resume: true,
                assign: false,
            },
            ServerOp::Reopen,
            ServerOp::Advance(Step::Seconds(11), false),
        ],
    };
    check_server_input(&input);
    let log = run_server(&input);
    let closes: Vec<CloseReason> = server_actions(&log)
        .filter_map(|a| match a {
            ServerAction::Close(r) => Some(*r),
            _ => None,
        })
        .collect();
    assert_eq!(
        closes,
        [
            CloseReason::Refused(ConnectReturnCode::NotAuthorized),
            CloseReason::Policy(mqtt_sansio::server::PolicyViolation::SentBeforeConnAck),
            CloseReason::Refused(ConnectReturnCode::ServerUnavailable),
            CloseReason::ConnectTimeout,
        ]
    );
}

// ----- fixed broker sequences -----

fn broker_peer(conn: u8, p: ClientPacket) -> BrokerOp {
    BrokerOp::Peer(conn, p, Delivery::Whole)
}

/// A QoS 1 PUBLISH of a 3-byte payload to topic `topic` of the pool, with id `id`.
fn qos1_publish(topic: u8, id: u8) -> ClientPacket {
    ClientPacket::Publish {
        topic,
        qos: QoS::AtLeastOnce,
        id,
        dup: false,
        retain: false,
        payload: Payload(3),
    }
}

fn broker_actions(log: &[BrokerRecord]) -> impl Iterator<Item = &BrokerAction> {
    log.iter().filter_map(|r| match r {
        BrokerRecord::Action(a) => Some(a),
        _ => None,
    })
}

#[test]
fn a_broker_routes_queues_offline_takes_over_and_times_out_under_the_checks() {
    let will = WillSpec {
        topic: 1,
        qos: QoS::AtLeastOnce,
        retain: true,
        payload: Payload(4),
    };
    let input = BrokerInput {
        setup: BrokerSetup {
            connection: server_setup(false),
            max_sessions: Some(2),
            max_retained: Some(1),
            backpressure: false,
            max_queued_bytes: None,
            max_queued_bytes_total: None,
        },
        ops: vec![
            BrokerOp::Open(0),
            broker_peer(0, ClientPacket::Connect(connect(1, false, 30))),
            broker_peer(0, ClientPacket::Subscribe(0, vec![(1, QoS::ExactlyOnce)])),
            BrokerOp::Open(1),
            broker_peer(
                1,
                ClientPacket::Connect(ConnectSpec {
                    will: Some(will),
                    ..connect(2, true, 30)
                }),
            ),
            broker_peer(
                1,
                ClientPacket::Publish {
                    topic: 1,
                    qos: QoS::ExactlyOnce,
                    id: 0,
                    dup: false,
                    retain: true,
                    payload: Payload(5),
                },
            ),
            broker_peer(1, ClientPacket::PubRel(0)),
            BrokerOp::ConnectionClosed(0),
            broker_peer(
                1,
                ClientPacket::Publish {
                    topic: 2,
                    qos: QoS::AtLeastOnce,
                    id: 1,
                    dup: false,
                    retain: true,
                    payload: Payload(1),
                },
            ),
            BrokerOp::Open(2),
            broker_peer(2, ClientPacket::Connect(connect(1, false, 30))),
            broker_peer(
                2,
                ClientPacket::Ack {
                    which: 0,
                    kind: PeerAck::Rec,
                },
            ),
            BrokerOp::Open(3),
            broker_peer(3, ClientPacket::Connect(connect(2, true, 30))),
            BrokerOp::Open(0),
            broker_peer(0, ClientPacket::Connect(connect(3, true, 30))),
            BrokerOp::Advance(Step::Seconds(50), true),
        ],
    };
    check_broker_input(&input);
    let log = run_broker(&input);
    assert!(
        broker_actions(&log).any(|a| matches!(
            a,
            BrokerAction::Event(BrokerEvent::Connected {
                session_present: true,
                ..
            })
        )),
        "the persistent session resumes"
    );
    assert!(
        broker_actions(&log).any(|a| matches!(
            a,
            BrokerAction::Event(BrokerEvent::RetainedNotStored { .. })
        )),
        "the second retained topic is over the bound of one"
    );
    assert!(
        broker_actions(&log).any(|a| matches!(
            a,
            BrokerAction::Close {
                reason: CloseReason::Takeover,
                ..
            }
        )),
        "the second connection as c2 takes over"
    );
    assert!(
        broker_actions(&log)
            .any(|a| matches!(a, BrokerAction::Event(BrokerEvent::SessionLimit { .. }))),
        "a third session is refused"
    );
    assert!(
        broker_actions(&log).any(|a| matches!(
            a,
            BrokerAction::Close {
                reason: CloseReason::KeepAliveTimeout,
                ..
            }
        )),
        "idle connections time out"
    );
    let granted = broker_actions(&log).any(|a| {
        matches!(
            a,
            BrokerAction::Send { packet: Packet::SubAck(s), .. }
                if s.codes().eq([SubAckCode::Granted(QoS::ExactlyOnce)])
        )
    });
    assert!(granted);
}

#[test]
fn the_aws_2025_retry_limit_drops_online_and_stored_messages_under_the_checks() {
    let publish = |id| qos1_publish(1, id);
    let input = BrokerInput {
        setup: BrokerSetup {
            connection: ServerSetup {
                preset: Preset::AwsIot2025,
                ..server_setup(false)
            },
            max_sessions: None,
            max_retained: None,
            backpressure: false,
            max_queued_bytes: None,
            max_queued_bytes_total: None,
        },
        ops: vec![
            BrokerOp::Open(0),
            broker_peer(0, ClientPacket::Connect(connect(1, false, 0))),
            broker_peer(0, ClientPacket::Subscribe(0, vec![(3, QoS::AtLeastOnce)])),
            BrokerOp::Open(1),
            broker_peer(1, ClientPacket::Connect(connect(2, true, 0))),
            broker_peer(1, publish(1)),
            // Both connections time out at 30 minutes; the session is stored.
            BrokerOp::Advance(Step::Seconds(3000), true),
            BrokerOp::Open(2),
            broker_peer(2, ClientPacket::Connect(connect(1, false, 0))),
            // An hour after the first sending, on the resumed connection.
            BrokerOp::Advance(Step::Seconds(700), true),
            BrokerOp::Open(3),
            broker_peer(3, ClientPacket::Connect(connect(2, true, 0))),
            broker_peer(3, publish(2)),
            BrokerOp::Advance(Step::Seconds(10), true),
            BrokerOp::ConnectionClosed(2),
            // An hour after the second sending, in the stored session.
            BrokerOp::Advance(Step::Seconds(3600), true),
        ],
    };
    check_broker_input(&input);
    let log = run_broker(&input);
    let drops = broker_actions(&log)
        .filter(|a| {
            matches!(
                a,
                BrokerAction::Event(BrokerEvent::Dropped {
                    reason: mqtt_sansio::broker::DropReason::RetryExpired { .. },
                    ..
                })
            )
        })
        .count();
    assert_eq!(drops, 2, "one drop online, one stored");
}

#[test]
fn a_server_awaiting_its_answer_closes_once_the_pipeline_outgrows_a_packet_under_the_checks() {
    let large = peer(ClientPacket::Publish {
        topic: 0,
        qos: QoS::AtMostOnce,
        id: 0,
        dup: false,
        retain: false,
        payload: Payload(255),
    });
    let input = ServerInput {
        setup: server_setup(true),
        ops: vec![
            peer(ClientPacket::Connect(connect(1, true, 60))),
            large.clone(),
            large.clone(),
            large,
            ServerOp::Accept {
                resume: false,
                assign: false,
            },
        ],
    };
    check_server_input(&input);
    let log = run_server(&input);
    let closes: Vec<&ServerAction> = server_actions(&log)
        .filter(|a| matches!(a, ServerAction::Close(_)))
        .collect();
    assert_eq!(
        closes,
        [&ServerAction::Close(CloseReason::Policy(
            mqtt_sansio::server::PolicyViolation::BufferFull
        ))]
    );
}

// ----- the checks themselves -----

/// A timer that asks to be woken at the instant it was just handled.
struct StuckTimer {
    at: mqtt_sansio::Instant,
}

#[test]
#[should_panic(expected = "asks for")]
fn the_timer_check_fails_a_machine_that_asks_for_the_instant_it_just_handled() {
    let now = mqtt_sansio::Instant::from_secs(5);
    let mut m = StuckTimer { at: now };
    check_fire(
        &mut m,
        now,
        false,
        |m| {
            m.at = now;
            1
        },
        |m| Some(m.at),
    );
}

#[test]
#[should_panic(expected = "before the timer acted")]
fn the_timer_check_fails_a_machine_that_acts_before_its_timer() {
    let mut m = StuckTimer {
        at: mqtt_sansio::Instant::from_secs(9),
    };
    check_fire(
        &mut m,
        mqtt_sansio::Instant::from_secs(5),
        false,
        |_| 1,
        |m| Some(m.at),
    );
}

#[test]
#[should_panic(expected = "does not encode")]
fn the_wire_check_fails_a_packet_that_cannot_go_on_the_wire() {
    // DUP=1 at QoS 0 is refused by the encoder (MQTT-3.3.1-2).
    let mut p = mqtt_sansio::Publish::new(
        mqtt_sansio::TopicName::from_static("t").unwrap(),
        mqtt_sansio::QosPid::AtMostOnce,
        &b"x"[..],
    );
    p.dup = true;
    assert_wire_roundtrip(&Packet::Publish(p));
}

#[test]
fn back_pressure_pauses_a_publisher_and_resumes_it_as_the_subscriber_acks_under_the_checks() {
    // To `a/b`, which the subscriber's filter `a/b` matches.
    let publish = |id| qos1_publish(1, id);
    let puback = broker_peer(
        0,
        ClientPacket::Ack {
            which: 0,
            kind: PeerAck::Ack,
        },
    );
    // Window 1, queue 2: the subscriber that does not acknowledge holds three messages.
    let mut ops = vec![
        BrokerOp::Open(0),
        broker_peer(0, ClientPacket::Connect(connect(1, true, 0))),
        broker_peer(0, ClientPacket::Subscribe(0, vec![(3, QoS::AtLeastOnce)])),
        BrokerOp::Open(1),
        broker_peer(1, ClientPacket::Connect(connect(2, true, 0))),
    ];
    ops.extend((1..=5).map(|id| broker_peer(1, publish(id))));
    ops.extend((0..5).map(|_| puback.clone()));
    let input = BrokerInput {
        setup: BrokerSetup {
            connection: server_setup(false),
            max_sessions: None,
            max_retained: None,
            backpressure: true,
            max_queued_bytes: None,
            max_queued_bytes_total: None,
        },
        ops,
    };
    check_broker_input(&input);
    let log = run_broker(&input);
    let throttles: Vec<&BrokerAction> = broker_actions(&log)
        .filter(|a| matches!(a, BrokerAction::Pause { .. } | BrokerAction::Resume { .. }))
        .collect();
    assert!(
        matches!(
            throttles[..],
            [
                BrokerAction::Pause { conn: ConnId(1) },
                BrokerAction::Resume { conn: ConnId(1) }
            ]
        ),
        "{throttles:?}"
    );
    let delivered = broker_actions(&log)
        .filter(|a| {
            matches!(
                a,
                BrokerAction::Send {
                    conn: ConnId(0),
                    packet: Packet::Publish(_)
                }
            )
        })
        .count();
    assert_eq!(delivered, 5, "nothing dropped by the bound");
    assert!(
        !broker_actions(&log)
            .any(|a| matches!(a, BrokerAction::Event(BrokerEvent::Dropped { .. }))),
        "no drop under back-pressure"
    );
}
