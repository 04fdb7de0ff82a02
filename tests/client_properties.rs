//! Invariants of the client connection under random commands, server packets, bytes and
//! time steps.

use std::collections::BTreeSet;

use bytes::Bytes;
use mqtt_sansio::client::{Action, Client, ClientConfig, Event, Lost};
use mqtt_sansio::{
    ConnAck, Connect, ConnectReturnCode, Instant, MqttString, Packet, PacketId, Profile, Publish,
    QoS, QosPid, SubAck, SubAckCode, TopicFilter, TopicName,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Connect {
        clean: bool,
        keep_alive: u16,
        empty_id: bool,
    },
    Publish {
        qos: u8,
        retain: bool,
    },
    Subscribe {
        filters: usize,
        qos: u8,
    },
    Unsubscribe {
        filters: usize,
    },
    Ack(u16),
    Disconnect,
    ConnectionLost,
    Advance(u64),
    Server(Server),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Server {
    ConnAck { code: u8, session_present: bool },
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    UnsubAck(u16),
    SubAck(u16, usize),
    Publish { qos: u8, id: u16, dup: bool },
    PingResp,
    PingReq,
}

fn small_id() -> impl Strategy<Value = u16> {
    1u16..8
}

fn server() -> impl Strategy<Value = Server> {
    prop_oneof![
        2 => (prop_oneof![3 => Just(0u8), 1 => 1u8..6], any::<bool>()).prop_map(|(code, session_present)| Server::ConnAck {
            code,
            session_present
        }),
        3 => small_id().prop_map(Server::PubAck),
        3 => small_id().prop_map(Server::PubRec),
        1 => small_id().prop_map(Server::PubRel),
        3 => small_id().prop_map(Server::PubComp),
        1 => small_id().prop_map(Server::UnsubAck),
        1 => (small_id(), 1usize..4).prop_map(|(i, n)| Server::SubAck(i, n)),
        3 => (0u8..3, small_id(), any::<bool>()).prop_map(|(qos, id, dup)| Server::Publish {
            qos,
            id,
            dup
        }),
        1 => Just(Server::PingResp),
        1 => Just(Server::PingReq),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (any::<bool>(), 0u16..4, any::<bool>()).prop_map(|(clean, keep_alive, empty_id)| Op::Connect { clean, keep_alive, empty_id }),
        4 => (0u8..3, any::<bool>()).prop_map(|(qos, retain)| Op::Publish { qos, retain }),
        1 => (0usize..3, 0u8..3).prop_map(|(filters, qos)| Op::Subscribe { filters, qos }),
        1 => (0usize..3).prop_map(|filters| Op::Unsubscribe { filters }),
        1 => small_id().prop_map(Op::Ack),
        1 => Just(Op::Disconnect),
        1 => Just(Op::ConnectionLost),
        3 => (0u64..5_000).prop_map(Op::Advance),
        6 => server().prop_map(Op::Server),
        1 => proptest::collection::vec(any::<u8>(), 0..6).prop_map(Op::Bytes),
    ]
}

fn qos(n: u8) -> QoS {
    QoS::from_u8(n).unwrap_or(QoS::AtMostOnce)
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap_or(PacketId::new(1).unwrap())
}

fn server_packet(s: &Server) -> Packet<Bytes> {
    match s {
        Server::ConnAck {
            code,
            session_present,
        } => Packet::ConnAck(match ConnectReturnCode::from_u8(*code) {
            Some(c) => ConnAck::Refused(c),
            None => ConnAck::Accepted {
                session_present: *session_present,
            },
        }),
        Server::PubAck(i) => Packet::PubAck(pid(*i)),
        Server::PubRec(i) => Packet::PubRec(pid(*i)),
        Server::PubRel(i) => Packet::PubRel(pid(*i)),
        Server::PubComp(i) => Packet::PubComp(pid(*i)),
        Server::UnsubAck(i) => Packet::UnsubAck(pid(*i)),
        Server::SubAck(i, n) => Packet::SubAck(
            SubAck::new(pid(*i), vec![SubAckCode::Granted(QoS::AtLeastOnce); *n]).unwrap(),
        ),
        Server::Publish { qos: q, id, dup } => {
            let mut p = Publish::new(
                TopicName::from_static("in").unwrap(),
                QosPid::new(qos(*q), pid(*id)),
                "m",
            );
            p.dup = *dup && *q > 0;
            Packet::Publish(p)
        }
        Server::PingResp => Packet::PingResp,
        Server::PingReq => Packet::PingReq,
    }
}

/// What the test knows from outside the client.
struct Model {
    /// Packet ids handed out by commands and not yet reported done or lost.
    allocated: BTreeSet<PacketId>,
    /// Whether a network connection is open (CONNECT sent, no Close since).
    open: bool,
    /// Whether the open connection has been accepted.
    accepted: bool,
    /// The current time, as the test last told the client.
    now: Instant,
    /// When the client last sent a packet on the open connection.
    last_send: Instant,
    /// The keep-alive of the open connection, in ms (0: off).
    keep_alive_ms: u64,
    /// Whether the test wakes the client at every `poll_timeout`, so that the
    /// keep-alive rule can be checked.
    wakes_on_time: bool,
    /// Whether the next send is the first after CONNACK under AWS IoT Core.
    first_after_connack: bool,
}

fn lost_id(l: &Lost) -> Option<PacketId> {
    match l {
        Lost::Publish(p) => p.qos.packet_id(),
        Lost::Release(i) => Some(*i),
        Lost::Subscribe(s) => Some(s.packet_id),
        Lost::Unsubscribe(u) => Some(u.packet_id),
    }
}

fn check_actions(client: &mut Client, m: &mut Model, max_inflight: usize) {
    while let Some(a) = client.poll_action() {
        match a {
            Action::Send(p) => {
                assert!(
                    m.open || matches!(p, Packet::Connect(_)),
                    "send while closed: {p:?}"
                );
                // Under AWS IoT Core nothing but CONNECT goes out before CONNACK, so the
                // first packet after it may come late.
                let exempt = std::mem::take(&mut m.first_after_connack)
                    || (client.profile().name == "aws-iot" && !m.accepted);
                if m.wakes_on_time && m.open && m.keep_alive_ms > 0 && !exempt {
                    // MQTT-3.1.2-23: never more than keep-alive between two sends.
                    let gap = m.now.as_millis() - m.last_send.as_millis();
                    assert!(gap <= m.keep_alive_ms, "{gap} ms without a send");
                }
                m.last_send = m.now;
                if let Packet::Connect(c) = &p {
                    m.keep_alive_ms = match (c.keep_alive, client.profile().keep_alive_clamp) {
                        (0, Some((_, max))) => u64::from(max) * 1000,
                        (k, _) => u64::from(k) * 1000,
                    };
                }
                if let Packet::Connect(_) = p {
                    assert!(!m.open, "CONNECT twice on one connection");
                    m.open = true;
                    m.accepted = false;
                } else {
                    // Only PINGREQ may precede CONNACK, and only where the profile
                    // allows sending before CONNACK.
                    let ping_allowed =
                        client.profile().send_before_connack && matches!(p, Packet::PingReq);
                    assert!(m.accepted || ping_allowed, "{p:?} before CONNACK");
                }
                if let Packet::Publish(p) = &p {
                    if let Some(i) = p.qos.packet_id() {
                        assert!(m.allocated.contains(&i), "PUBLISH with unallocated id {i}");
                    } else {
                        assert!(!p.dup, "QoS 0 with DUP");
                    }
                }
                if let Packet::Subscribe(s) = &p {
                    assert!(m.allocated.contains(&s.packet_id));
                }
                if let Packet::Unsubscribe(u) = &p {
                    assert!(m.allocated.contains(&u.packet_id));
                }
            }
            Action::Close(_) => {
                m.open = false;
                m.accepted = false;
            }
            Action::Deliver(_) => assert!(m.accepted),
            Action::Change(c) => panic!("{c:?} reported without report_changes"),
            Action::Reconnect => panic!("Reconnect asked without ClientConfig::reconnect"),
            Action::Event(e) => match e {
                Event::Connected { .. } => {
                    m.accepted = true;
                    m.first_after_connack = client.profile().name == "aws-iot";
                }
                Event::Published(i) | Event::Completed(i) | Event::Unsubscribed(i) => {
                    assert!(m.allocated.remove(&i), "ack event for unallocated {i}")
                }
                Event::Subscribed { packet_id, .. } => assert!(m.allocated.remove(&packet_id)),
                Event::Lost(l) => {
                    if let Some(i) = lost_id(&l) {
                        assert!(m.allocated.remove(&i), "lost unallocated {i}");
                    }
                }
                Event::Received(i) => assert!(m.allocated.contains(&i)),
                Event::UnexpectedAck { .. } => {}
                Event::TimedOut { packet_id, .. } => {
                    panic!("{packet_id} timed out without a time-out configured")
                }
            },
        }
    }
    assert_eq!(client.ids_in_use(), m.allocated.len());
    assert!(client.inflight() <= max_inflight);
}

fn allocated(m: &mut Model, id: PacketId) {
    assert!(m.allocated.insert(id), "id {id} handed out while in use");
}

fn run(aws: bool, manual_acks: bool, max_inflight: usize, wakes_on_time: bool, ops: &[Op]) {
    let profile = if aws {
        Profile::aws_iot_core()
    } else {
        Profile::mqtt311()
    };
    let mut config = ClientConfig::for_profile(&profile);
    config.manual_acks = manual_acks;
    config.max_inflight = max_inflight;
    let mut client = Client::with_config(profile, config);
    let mut m = Model {
        allocated: BTreeSet::new(),
        open: false,
        accepted: false,
        now: Instant::ZERO,
        last_send: Instant::ZERO,
        keep_alive_ms: 0,
        wakes_on_time,
        first_after_connack: false,
    };
    let mut now = Instant::ZERO;
    // Start connected, so that random inputs reach the flows quickly.
    let start = Connect {
        client_id: MqttString::try_from("c").unwrap(),
        clean_session: false,
        keep_alive: 2,
        will: None,
        login: None,
    };
    client.connect(now, start).unwrap();
    check_actions(&mut client, &mut m, max_inflight);
    let accept = Packet::ConnAck(ConnAck::Accepted {
        session_present: false,
    });
    client.handle_packet(now, accept).unwrap();
    check_actions(&mut client, &mut m, max_inflight);
    let topic = TopicName::from_static("t/x").unwrap();
    let filters: Vec<TopicFilter<Bytes>> = ["a", "b/+", "#"]
        .iter()
        .map(|f| TopicFilter::try_from(*f).unwrap())
        .collect();
    for op in ops {
        match op {
            Op::Connect {
                clean,
                keep_alive,
                empty_id,
            } => {
                let c = Connect {
                    client_id: MqttString::try_from(if *empty_id { "" } else { "c" }).unwrap(),
                    clean_session: *clean,
                    keep_alive: *keep_alive,
                    will: None,
                    login: None,
                };
                let _ = client.connect(now, c);
            }
            Op::Publish { qos: q, retain } => {
                if let Ok(Some(i)) = client.publish(now, topic.clone(), qos(*q), *retain, "p") {
                    allocated(&mut m, i);
                }
            }
            Op::Subscribe { filters: n, qos: q } => {
                let f: Vec<_> = filters[..*n].iter().map(|f| (f.clone(), qos(*q))).collect();
                if let Ok(i) = client.subscribe(now, &f) {
                    allocated(&mut m, i);
                }
            }
            Op::Unsubscribe { filters: n } => {
                if let Ok(i) = client.unsubscribe(now, &filters[..*n]) {
                    allocated(&mut m, i);
                }
            }
            Op::Ack(i) => {
                let _ = client.ack(now, pid(*i));
            }
            Op::Disconnect => {
                let _ = client.disconnect(now);
            }
            Op::ConnectionLost => {
                client.connection_lost(now);
                check_actions(&mut client, &mut m, max_inflight);
                m.open = false;
                m.accepted = false;
            }
            Op::Advance(ms) => {
                let to = Instant::from_millis(now.as_millis() + ms);
                let mut wakes = 0;
                // A run loop that wakes the client when it asked to be woken.
                while let Some(t) = client.poll_timeout().filter(|&t| wakes_on_time && t <= to) {
                    // A timer already due (after CONNACK) fires at once.
                    let t = t.max(now);
                    wakes += 1;
                    assert!(wakes < 10_000, "the timer does not move on from {t:?}");
                    now = t;
                    m.now = t;
                    client.handle_timeout(t);
                    check_actions(&mut client, &mut m, max_inflight);
                }
                now = to;
                m.now = to;
                if !wakes_on_time {
                    // Woken at any instant, not only when it asked.
                    client.handle_timeout(now);
                    check_actions(&mut client, &mut m, max_inflight);
                }
                if let Some(t) = client.poll_timeout() {
                    assert!(t > now, "poll_timeout {t:?} not after {now:?}");
                }
            }
            Op::Server(s) => {
                let _ = client.handle_packet(now, server_packet(s));
            }
            Op::Bytes(b) => {
                let _ = client.handle_bytes(now, b);
            }
        }
        check_actions(&mut client, &mut m, max_inflight);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ids_are_never_shared_sends_obey_the_connection_and_timers_are_never_in_the_past(
        aws in any::<bool>(),
        manual_acks in any::<bool>(),
        max_inflight in 1usize..6,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(aws, manual_acks, max_inflight, false, &ops);
    }

    #[test]
    fn a_client_woken_at_its_poll_timeout_never_stays_silent_longer_than_keep_alive(
        aws in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        // MQTT-3.1.2-23
        run(aws, false, 4, true, &ops);
    }

    #[test]
    fn the_same_random_inputs_twice_give_the_same_transcript(
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let transcript = |ops: &[Op]| {
            let mut client = Client::new(Profile::mqtt311());
            let mut now = Instant::ZERO;
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Connect { clean, keep_alive, .. } => {
                        let _ = client.connect(now, Connect {
                            client_id: MqttString::try_from("c").unwrap(),
                            clean_session: *clean,
                            keep_alive: *keep_alive,
                            will: None,
                            login: None,
                        });
                    }
                    Op::Publish { qos: q, .. } => {
                        let _ = client.publish(now, TopicName::from_static("t").unwrap(), qos(*q), false, "p");
                    }
                    Op::Advance(ms) => {
                        now = Instant::from_millis(now.as_millis() + ms);
                        client.handle_timeout(now);
                    }
                    Op::Server(s) => { let _ = client.handle_packet(now, server_packet(s)); }
                    Op::ConnectionLost => client.connection_lost(now),
                    _ => {}
                }
                let mut step = Vec::new();
                while let Some(a) = client.poll_action() {
                    step.push(a);
                }
                out.push((step, client.poll_timeout()));
            }
            out
        };
        prop_assert_eq!(transcript(&ops), transcript(&ops));
    }
}
