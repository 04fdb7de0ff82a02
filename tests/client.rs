//! Scenario tests of the client connection in simulated time, against a scripted server.

use core::time::Duration;

use bytes::Bytes;
use mqtt_sansio::client::{Action, ClientConfig, ClientError, Event, Lost, Reason};
use mqtt_sansio::{
    Binary, ConnAck, Connect, ConnectReturnCode, Instant, Login, MqttString, Packet, PacketId,
    PacketType, Profile, Publish, QoS, QosPid, SubAck, SubAckCode, Will,
};

mod support;

use support::client_sim::*;

// ----- connect -----

#[test]
fn connect_sends_every_field_and_reports_the_accepted_connack_with_session_present() {
    // MQTT-3.1.0-1
    let mut sim = Sim::new(Profile::mqtt311());
    let connect = Connect {
        client_id: MqttString::try_from("dev-7").unwrap(),
        clean_session: false,
        keep_alive: 60,
        will: Some(Will {
            topic: topic("dev/7/status"),
            message: Binary::new(Bytes::from_static(b"gone")).unwrap(),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        login: Some(Login {
            username: MqttString::try_from("user").unwrap(),
            password: Some(Binary::new(Bytes::from_static(b"pw")).unwrap()),
        }),
    };
    sim.client.connect(sim.now, connect.clone()).unwrap();
    assert_eq!(sim.drain(), vec![Action::Send(Packet::Connect(connect))]);
    assert_eq!(
        sim.server(Packet::ConnAck(ConnAck::Accepted {
            session_present: true
        })),
        vec![Action::Event(Event::Connected {
            session_present: true
        })]
    );
}

#[test]
fn a_connack_refusal_closes_with_its_return_code() {
    let mut sim = Sim::new(Profile::mqtt311());
    sim.client
        .connect(sim.now, connect_packet("c", true, 0))
        .unwrap();
    sim.drain();
    let out = sim.server(Packet::ConnAck(ConnAck::Refused(
        ConnectReturnCode::NotAuthorized,
    )));
    assert_eq!(
        out,
        vec![Action::Close(Reason::Refused(
            ConnectReturnCode::NotAuthorized
        ))]
    );
    assert_eq!(
        sim.client
            .publish(sim.now, topic("t"), QoS::AtMostOnce, false, ""),
        Err(ClientError::NotConnected)
    );
}

#[test]
fn anything_but_connack_first_closes_with_expected_and_got() {
    // MQTT-3.2.0-1, MQTT-4.8.0-1
    let mut sim = Sim::new(Profile::mqtt311());
    sim.client
        .connect(sim.now, connect_packet("c", true, 0))
        .unwrap();
    sim.drain();
    match &sim.server(Packet::PingResp)[..] {
        [Action::Close(Reason::Protocol(e))] => {
            assert_eq!(
                (e.rule, e.expected, e.got),
                ("MQTT-3.2.0-1", "CONNACK", "PINGRESP")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_client_id_with_clean_session_0_is_refused_and_changes_nothing() {
    // MQTT-3.1.3-7
    let mut sim = Sim::new(Profile::mqtt311());
    assert_eq!(
        sim.client.connect(sim.now, connect_packet("", false, 0)),
        Err(ClientError::EmptyClientIdNeedsCleanSession)
    );
    assert!(sim.drain().is_empty());
    assert_eq!(sim.client.poll_timeout(), None);
    sim.client
        .connect(sim.now, connect_packet("", true, 0))
        .unwrap();
    assert_eq!(sent(&sim.drain()).len(), 1);
}

#[test]
fn a_missing_connack_closes_when_the_timeout_expires() {
    let mut sim = Sim::new(Profile::mqtt311());
    sim.client
        .connect(sim.now, connect_packet("c", true, 0))
        .unwrap();
    sim.drain();
    let deadline = Instant::from_secs(10);
    assert_eq!(sim.client.poll_timeout(), Some(deadline));
    sim.client.handle_timeout(Instant::from_millis(9_999));
    assert!(sim.drain().is_empty());
    let out = sim.run_until(deadline);
    assert_eq!(out, vec![Action::Close(Reason::ConnAckTimeout)]);
    assert_eq!(sim.client.poll_timeout(), None);
}

// ----- keep-alive -----

#[test]
fn pingreq_goes_out_when_nothing_was_sent_for_the_keep_alive_interval() {
    // MQTT-3.1.2-23
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 30, false);
    sim.now = Instant::from_secs(20);
    sim.publish("t", QoS::AtMostOnce, "x");
    sim.drain();
    // The publish at 20 s pushes the ping to 50 s.
    assert_eq!(sim.client.poll_timeout(), Some(Instant::from_secs(50)));
    assert!(sim.run_until(Instant::from_millis(49_999)).is_empty());
    assert_eq!(
        sim.run_until(Instant::from_secs(50)),
        vec![Action::Send(Packet::PingReq)]
    );
}

#[test]
fn a_missing_pingresp_closes_after_the_configured_time() {
    let profile = Profile::mqtt311();
    let mut config = ClientConfig::for_profile(&profile);
    config.pingresp_timeout = Duration::from_secs(5);
    let mut sim = Sim::with_config(profile, config);
    sim.connected(true, 30, false);
    assert_eq!(
        sim.run_until(Instant::from_secs(30)),
        vec![Action::Send(Packet::PingReq)]
    );
    assert_eq!(sim.client.poll_timeout(), Some(Instant::from_secs(35)));
    assert_eq!(
        sim.run_until(Instant::from_secs(35)),
        vec![Action::Close(Reason::PingTimeout)]
    );
}

#[test]
fn under_3_1_1_the_keep_alive_runs_before_connack_and_under_aws_it_does_not() {
    // MQTT-3.1.2-23; AWS IoT Core: nothing but CONNECT before CONNACK.
    for (profile, pings) in [(Profile::mqtt311(), true), (Profile::aws_iot_core(), false)] {
        let mut config = ClientConfig::for_profile(&profile);
        config.connack_timeout = Duration::from_secs(90);
        let mut sim = Sim::with_config(profile, config);
        sim.client
            .connect(sim.now, connect_packet("c", true, 30))
            .unwrap();
        sim.drain();
        let out = sim.run_until(Instant::from_secs(30));
        assert_eq!(out == vec![Action::Send(Packet::PingReq)], pings, "{out:?}");
        assert_eq!(out.is_empty(), !pings);
    }
}

#[test]
fn an_hour_of_keep_alive_sends_one_pingreq_per_interval_and_stays_open() {
    // MQTT-3.1.2-23
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 60, false);
    let mut pings = 0;
    let mut last_send = Instant::ZERO;
    loop {
        let Some(t) = sim.client.poll_timeout() else {
            panic!("keep-alive timer stopped")
        };
        if t > Instant::from_secs(3600) {
            break;
        }
        assert!(t > sim.now || t == sim.now && sim.now == Instant::ZERO);
        sim.now = t;
        sim.client.handle_timeout(t);
        for a in sim.drain() {
            match a {
                Action::Send(Packet::PingReq) => {
                    assert!(t.saturating_duration_since(last_send) <= Duration::from_secs(60));
                    last_send = t;
                    pings += 1;
                    // The server answers a second later.
                    sim.now = t + Duration::from_secs(1);
                    assert!(sim.server(Packet::PingResp).is_empty());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(pings, 60);
}

// ----- publish, subscribe, ids -----

#[test]
fn qos0_publish_goes_out_once_with_dup_0_and_no_id() {
    // MQTT-4.3.1-1
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    assert_eq!(sim.publish("t", QoS::AtMostOnce, "a"), None);
    let out = sent(&sim.drain());
    assert_eq!(out, vec![incoming(QosPid::AtMostOnce, "t", "a")]);
    assert_eq!(sim.client.inflight(), 0);
}

#[test]
fn qos1_publish_keeps_its_id_until_puback() {
    // MQTT-4.3.2-1, MQTT-2.3.1-3
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    let i = sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    assert_eq!(
        sent(&sim.drain()),
        vec![incoming(QosPid::AtLeastOnce(i), "t", "a")]
    );
    assert!(sim.client.id_in_use(i));
    assert_eq!(
        sim.server(Packet::PubAck(i)),
        vec![Action::Event(Event::Published(i))]
    );
    assert!(!sim.client.id_in_use(i));
    assert_eq!(sim.client.inflight(), 0);
}

#[test]
fn qos2_publish_runs_pubrec_pubrel_pubcomp_and_never_resends_the_publish_after_pubrel() {
    // MQTT-4.3.3-1, MQTT-2.3.1-6
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(false, 0, false);
    let i = sim.publish("t", QoS::ExactlyOnce, "a").unwrap();
    sim.drain();
    assert_eq!(
        sim.server(Packet::PubRec(i)),
        vec![
            Action::Event(Event::Received(i)),
            Action::Send(Packet::PubRel(i))
        ]
    );
    // Reconnecting now resends PUBREL, not the PUBLISH.
    sim.client.connection_lost(sim.now);
    assert_eq!(
        sim.connected(false, 0, true)[1..],
        [Action::Send(Packet::PubRel(i))]
    );
    assert_eq!(
        sim.server(Packet::PubComp(i)),
        vec![Action::Event(Event::Completed(i))]
    );
    assert!(!sim.client.id_in_use(i));
}

#[test]
fn subscribe_and_unsubscribe_share_the_id_space_and_free_their_ids_on_ack() {
    // MQTT-2.3.1-2
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    let p = sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    let s = sim
        .client
        .subscribe(
            sim.now,
            &[
                (filter("a/+"), QoS::AtLeastOnce),
                (filter("b"), QoS::AtMostOnce),
            ],
        )
        .unwrap();
    let u = sim.client.unsubscribe(sim.now, &[filter("c")]).unwrap();
    assert_eq!([p.get(), s.get(), u.get()], [1, 2, 3]);
    sim.drain();
    let codes = vec![SubAckCode::Granted(QoS::AtLeastOnce), SubAckCode::Failure];
    sim.ack_subscribe_and_unsubscribe(s, codes, u);
    assert_eq!(sim.client.ids_in_use(), 1);
}

#[test]
fn a_suback_with_the_wrong_number_of_codes_closes() {
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    let s = sim
        .client
        .subscribe(
            sim.now,
            &[
                (filter("a"), QoS::AtLeastOnce),
                (filter("b"), QoS::AtMostOnce),
            ],
        )
        .unwrap();
    sim.drain();
    let out = sim.server(Packet::SubAck(
        SubAck::new(s, [SubAckCode::Granted(QoS::AtMostOnce)]).unwrap(),
    ));
    assert!(
        matches!(out[..], [Action::Close(Reason::Protocol(e)), Action::Event(Event::Lost(Lost::Subscribe(_)))] if e.rule == "MQTT-3.8.4-5"),
        "{out:?}"
    );
}

#[test]
fn exhausting_all_65535_ids_refuses_the_next_command_and_an_ack_makes_one_free_again() {
    // MQTT-2.3.1-2, MQTT-2.3.1-3
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    let mut seen = vec![false; 65_536];
    for n in 0..65_535 {
        // One id goes to a SUBSCRIBE, so the inflight window (65 535) is not what stops us.
        let i = if n == 100 {
            sim.client
                .subscribe(sim.now, &[(filter("s"), QoS::AtMostOnce)])
                .unwrap()
        } else {
            sim.publish("t", QoS::AtLeastOnce, "").unwrap()
        };
        assert!(!seen[i.get() as usize], "{i} handed out twice");
        seen[i.get() as usize] = true;
    }
    assert!(!seen[0]);
    assert_eq!(sim.drain().len(), 65_535);
    let before = sim.client.ids_in_use();
    assert_eq!(
        sim.client
            .publish(sim.now, topic("t"), QoS::AtLeastOnce, false, ""),
        Err(ClientError::PacketIdsExhausted)
    );
    assert_eq!(
        sim.client
            .subscribe(sim.now, &[(filter("a"), QoS::AtMostOnce)]),
        Err(ClientError::PacketIdsExhausted)
    );
    assert_eq!(
        sim.client.unsubscribe(sim.now, &[filter("a")]),
        Err(ClientError::PacketIdsExhausted)
    );
    assert!(sim.drain().is_empty());
    assert_eq!(sim.client.ids_in_use(), before);
    // QoS 0 needs no id and still goes out.
    assert_eq!(sim.publish("t", QoS::AtMostOnce, ""), None);
    assert_eq!(sim.drain().len(), 1);
    sim.server(Packet::PubAck(id(777)));
    assert_eq!(sim.publish("t", QoS::AtLeastOnce, ""), Some(id(777)));
}

#[test]
fn a_full_inflight_window_refuses_publish_until_an_ack_arrives() {
    let profile = Profile::mqtt311();
    let mut config = ClientConfig::for_profile(&profile);
    config.max_inflight = 3;
    let mut sim = Sim::with_config(profile, config);
    sim.connected(true, 0, false);
    let ids: Vec<PacketId> = (0..3)
        .map(|_| sim.publish("t", QoS::AtLeastOnce, "m").unwrap())
        .collect();
    sim.drain();
    assert_eq!(
        sim.client
            .publish(sim.now, topic("t"), QoS::ExactlyOnce, false, "m"),
        Err(ClientError::InflightFull { max: 3 })
    );
    assert!(sim.drain().is_empty());
    assert_eq!(sim.client.inflight(), 3);
    // Subscriptions and QoS 0 are not in the window.
    assert!(
        sim.client
            .subscribe(sim.now, &[(filter("x"), QoS::AtMostOnce)])
            .is_ok()
    );
    assert_eq!(sim.publish("t", QoS::AtMostOnce, "m"), None);
    sim.server(Packet::PubAck(ids[1]));
    assert!(sim.publish("t", QoS::AtLeastOnce, "m").is_some());
}

#[test]
fn acks_in_any_order_complete_each_message() {
    // AWS IoT Core does not guarantee the order of acks.
    let mut sim = Sim::new(Profile::aws_iot_core());
    sim.connected(true, 0, false);
    let ids: Vec<PacketId> = (0..4)
        .map(|_| sim.publish("t", QoS::AtLeastOnce, "m").unwrap())
        .collect();
    sim.drain();
    for &k in &[2usize, 0, 3, 1] {
        assert_eq!(
            sim.server(Packet::PubAck(ids[k])),
            vec![Action::Event(Event::Published(ids[k]))]
        );
    }
    assert_eq!(sim.client.inflight(), 0);
    assert_eq!(sim.client.ids_in_use(), 0);
}

#[test]
fn an_ack_for_an_id_not_in_flight_is_reported_and_ignored() {
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    let i = sim.publish("t", QoS::AtLeastOnce, "m").unwrap();
    sim.drain();
    for (p, t) in [
        (Packet::PubAck(id(9)), PacketType::PubAck),
        (Packet::PubRec(i), PacketType::PubRec),
        (Packet::PubComp(i), PacketType::PubComp),
        (Packet::UnsubAck(i), PacketType::UnsubAck),
    ] {
        let packet_id = match &p {
            Packet::PubAck(x) | Packet::PubRec(x) | Packet::PubComp(x) | Packet::UnsubAck(x) => *x,
            _ => unreachable!(),
        };
        assert_eq!(
            sim.server(p),
            vec![Action::Event(Event::UnexpectedAck {
                packet_type: t,
                packet_id
            })]
        );
    }
    assert!(sim.client.id_in_use(i));
    assert_eq!(
        sim.server(Packet::PubAck(i)),
        vec![Action::Event(Event::Published(i))]
    );
}

// ----- incoming -----

#[test]
fn incoming_qos1_is_delivered_and_acknowledged_automatically() {
    // MQTT-3.3.4-1, MQTT-4.5.0-2
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    let p = incoming(QosPid::AtLeastOnce(id(5)), "never/subscribed", "m");
    let Packet::Publish(publish) = p.clone() else {
        unreachable!()
    };
    assert_eq!(
        sim.server(p),
        vec![
            Action::Deliver(publish),
            Action::Send(Packet::PubAck(id(5)))
        ]
    );
}

#[test]
fn manual_acks_go_out_in_arrival_order() {
    // MQTT-4.6.0-2, MQTT-4.6.0-3
    let profile = Profile::mqtt311();
    let mut config = ClientConfig::for_profile(&profile);
    config.manual_acks = true;
    let mut sim = Sim::with_config(profile, config);
    sim.connected(true, 0, false);
    sim.server(incoming(QosPid::AtLeastOnce(id(1)), "t", "a"));
    sim.server(incoming(QosPid::ExactlyOnce(id(2)), "t", "b"));
    sim.server(incoming(QosPid::AtLeastOnce(id(3)), "t", "c"));
    sim.client.ack(sim.now, id(3)).unwrap();
    sim.client.ack(sim.now, id(2)).unwrap();
    assert!(sim.drain().is_empty(), "held behind the first message");
    assert_eq!(
        sim.client.ack(sim.now, id(9)),
        Err(ClientError::NotAwaitingAck(id(9)))
    );
    sim.client.ack(sim.now, id(1)).unwrap();
    assert_eq!(
        sent(&sim.drain()),
        vec![
            Packet::PubAck(id(1)),
            Packet::PubRec(id(2)),
            Packet::PubAck(id(3))
        ]
    );
}

#[test]
fn incoming_qos2_is_delivered_once_and_a_repeat_gets_pubrec_again() {
    // MQTT-4.3.3-2 (method B), MQTT-3.3.4-1
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    let out = sim.server(incoming(QosPid::ExactlyOnce(id(4)), "t", "m"));
    assert!(matches!(out[..], [Action::Deliver(_), Action::Send(Packet::PubRec(i))] if i == id(4)));
    let mut again = Publish::new(topic("t"), QosPid::ExactlyOnce(id(4)), "m");
    again.dup = true;
    assert_eq!(
        sim.server(Packet::Publish(again)),
        vec![Action::Send(Packet::PubRec(id(4)))]
    );
    assert_eq!(
        sim.server(Packet::PubRel(id(4))),
        vec![Action::Send(Packet::PubComp(id(4)))]
    );
    // After PUBCOMP the id is new again.
    let out = sim.server(incoming(QosPid::ExactlyOnce(id(4)), "t", "n"));
    assert!(matches!(out[0], Action::Deliver(_)));
}

#[test]
fn the_same_message_resent_with_another_id_is_acknowledged_and_delivered_again() {
    // AWS IoT Core may resend a message with a fresh packet id; MQTT-4.3.2-2.
    let mut sim = Sim::new(Profile::aws_iot_core());
    sim.connected(false, 0, false);
    let first = sim.server(incoming(QosPid::AtLeastOnce(id(10)), "t", "m"));
    let second = sim.server(incoming(QosPid::AtLeastOnce(id(11)), "t", "m"));
    assert_eq!(sent(&first), vec![Packet::PubAck(id(10))]);
    assert_eq!(sent(&second), vec![Packet::PubAck(id(11))]);
    assert!(matches!(second[0], Action::Deliver(_)));
}

// ----- disconnect, bytes -----

#[test]
fn disconnect_sends_disconnect_then_closes_and_nothing_follows() {
    // MQTT-3.14.4-1, MQTT-3.14.4-2
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(false, 30, false);
    sim.client.disconnect(sim.now).unwrap();
    assert_eq!(
        sim.drain(),
        vec![
            Action::Send(Packet::Disconnect),
            Action::Close(Reason::Disconnected)
        ]
    );
    assert_eq!(
        sim.client
            .publish(sim.now, topic("t"), QoS::AtMostOnce, false, ""),
        Err(ClientError::NotConnected)
    );
    sim.run_until(Instant::from_secs(3600));
    assert!(sim.drain().is_empty());
    assert_eq!(sim.client.poll_timeout(), None);
}

#[test]
fn bytes_fed_one_at_a_time_give_the_same_actions_as_whole_packets() {
    let mut whole = Sim::new(Profile::mqtt311());
    let mut split = Sim::new(Profile::mqtt311());
    let server: Vec<Packet<Bytes>> = vec![
        Packet::ConnAck(ConnAck::Accepted {
            session_present: false,
        }),
        incoming(QosPid::AtLeastOnce(id(3)), "a/b", "payload"),
        incoming(QosPid::AtMostOnce, "a", ""),
    ];
    let mut wire = Vec::new();
    for p in &server {
        wire.extend_from_slice(&p.to_bytes().unwrap());
    }
    for sim in [&mut whole, &mut split] {
        sim.client
            .connect(sim.now, connect_packet("c", true, 0))
            .unwrap();
        sim.drain();
    }
    whole.client.handle_bytes(whole.now, &wire).unwrap();
    for b in &wire {
        split.client.handle_bytes(split.now, &[*b]).unwrap();
    }
    assert_eq!(whole.drain(), split.drain());
    assert_eq!(whole.transcript.len(), 5);
}

#[test]
fn undecodable_bytes_close_with_the_rule_they_break() {
    // MQTT-4.8.0-1
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    sim.client.handle_bytes(sim.now, &[0x36, 0x00]).unwrap();
    match &sim.drain()[..] {
        [Action::Close(Reason::Decode(e))] => assert_eq!(e.rule(), "MQTT-3.3.1-4"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_packet_only_a_client_sends_closes_the_connection() {
    // MQTT-4.8.0-1
    for p in [Packet::PingReq, Packet::Disconnect] {
        let mut sim = Sim::new(Profile::mqtt311());
        sim.connected(true, 0, false);
        assert!(matches!(
            sim.server(p)[..],
            [Action::Close(Reason::Protocol(_))]
        ));
    }
}

// ----- determinism -----

fn scripted_run() -> Vec<Action> {
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(false, 10, false);
    let a = sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    let b = sim.publish("t", QoS::ExactlyOnce, "b").unwrap();
    sim.server(incoming(QosPid::ExactlyOnce(id(9)), "in", "x"));
    sim.run_until(Instant::from_secs(10));
    sim.server(Packet::PingResp);
    sim.server(Packet::PubRec(b));
    sim.client.connection_lost(sim.now);
    sim.connected(false, 10, true);
    sim.server(Packet::PubAck(a));
    sim.server(Packet::PubComp(b));
    sim.run_until(Instant::from_secs(40));
    sim.transcript
}

#[test]
fn the_same_inputs_twice_give_identical_action_transcripts() {
    let first = scripted_run();
    let second = scripted_run();
    assert!(first.len() > 10);
    assert_eq!(first, second);
    let bytes = |t: &[Action]| -> Vec<Vec<u8>> {
        sent(t)
            .iter()
            .map(|p| p.to_bytes().unwrap().to_vec())
            .collect()
    };
    assert_eq!(bytes(&first), bytes(&second));
}
