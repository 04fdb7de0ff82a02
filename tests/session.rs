//! The session rules both roles share, each checked on a client and on a server
//! connection: where the two used to differ, the one decision of `mqtt_sansio::session`.

use bytes::Bytes;
use mqtt_sansio::client::{Action as ClientAction, Event};
use mqtt_sansio::server::{
    Action as ServerAction, Message, ServerConfig, ServerEvent, ServerSession,
};
use mqtt_sansio::{
    Client, ClientConfig, ClientError, ConnAck, Connect, Instant, MqttString, Packet, PacketId,
    PacketType, Profile, QoS, Server, TopicName,
};

const NOW: Instant = Instant::ZERO;

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn connect(clean_session: bool) -> Connect<Bytes> {
    Connect {
        client_id: MqttString::try_from("c1").unwrap(),
        clean_session,
        keep_alive: 0,
        will: None,
        login: None,
    }
}

fn topic() -> TopicName<Bytes> {
    TopicName::try_from("t").unwrap()
}

fn message(qos: QoS) -> Message {
    Message {
        topic: topic(),
        payload: Bytes::from_static(b"m"),
        qos,
        retain: false,
    }
}

// ----- client side -----

fn client_drain(c: &mut Client) -> Vec<ClientAction> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

fn client_sends(c: &mut Client) -> Vec<Packet<Bytes>> {
    client_drain(c)
        .into_iter()
        .filter_map(|a| match a {
            ClientAction::Send(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn connected_client(profile: Profile, config: ClientConfig, session_present: bool) -> Client {
    let mut c = Client::with_config(profile, config);
    reconnect_client(&mut c, session_present);
    c
}

fn reconnect_client(c: &mut Client, session_present: bool) -> Vec<Packet<Bytes>> {
    // Under AWS IoT Core a CONNECT comes a second after the previous one.
    let now = c.earliest_connect().map_or(NOW, |t| t.max(NOW));
    c.connect(now, connect(false)).unwrap();
    client_drain(c);
    c.handle_packet(now, Packet::ConnAck(ConnAck::Accepted { session_present }))
        .unwrap();
    client_sends(c)
}

fn client_publish(c: &mut Client, qos: QoS) -> PacketId {
    let id = c.publish(NOW, topic(), qos, false, "m").unwrap().unwrap();
    client_drain(c);
    id
}

// ----- server side -----

fn server_drain(s: &mut Server) -> Vec<ServerAction> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn server_sends(s: &mut Server) -> Vec<Packet<Bytes>> {
    server_drain(s)
        .into_iter()
        .filter_map(|a| match a {
            ServerAction::Send(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn connected_server(
    profile: Profile,
    config: ServerConfig,
    resumed: Option<ServerSession>,
) -> (Server, Vec<Packet<Bytes>>) {
    let mut s = Server::new(profile, config);
    s.handle_bytes(NOW, &Packet::Connect(connect(false)).to_bytes().unwrap());
    server_drain(&mut s);
    s.accept(NOW, resumed).unwrap();
    let sent = server_sends(&mut s);
    (s, sent)
}

fn server_packet(s: &mut Server, p: Packet<Bytes>) -> Vec<ServerAction> {
    s.handle_bytes(NOW, &p.to_bytes().unwrap());
    server_drain(s)
}

fn republished(p: &Packet<Bytes>) -> (bool, Option<PacketId>) {
    match p {
        Packet::Publish(p) => (p.dup, p.qos.packet_id()),
        other => panic!("not a PUBLISH: {other:?}"),
    }
}

// ----- the decisions -----

#[test]
fn an_ack_for_an_id_with_nothing_of_its_kind_in_flight_is_reported_and_ignored_by_both_roles() {
    let acks = [
        (PacketType::PubAck, Packet::PubAck(pid(9))),
        (PacketType::PubRec, Packet::PubRec(pid(9))),
        (PacketType::PubComp, Packet::PubComp(pid(9))),
    ];
    let mut c = connected_client(Profile::mqtt311(), ClientConfig::default(), false);
    let (mut s, _) = connected_server(Profile::mqtt311(), ServerConfig::default(), None);
    for (kind, ack) in acks {
        c.handle_packet(NOW, ack.clone()).unwrap();
        assert_eq!(
            client_drain(&mut c),
            vec![ClientAction::Event(Event::UnexpectedAck {
                packet_type: kind,
                packet_id: pid(9)
            })]
        );
        assert_eq!(
            server_packet(&mut s, ack),
            vec![ServerAction::Event(ServerEvent::UnexpectedAck {
                packet_type: kind,
                packet_id: pid(9)
            })]
        );
    }
    // A PUBACK for a QoS 2 message is of the wrong kind, and changes nothing.
    let id = client_publish(&mut c, QoS::ExactlyOnce);
    c.handle_packet(NOW, Packet::PubAck(id)).unwrap();
    assert!(matches!(
        client_drain(&mut c)[..],
        [ClientAction::Event(Event::UnexpectedAck { .. })]
    ));
    assert_eq!(c.inflight(), 1);
    s.publish(NOW, message(QoS::ExactlyOnce)).unwrap();
    let [Packet::Publish(p)] = &server_sends(&mut s)[..] else {
        panic!("one PUBLISH")
    };
    let id = p.qos.packet_id().unwrap();
    let out = server_packet(&mut s, Packet::PubAck(id));
    assert!(matches!(
        out[..],
        [ServerAction::Event(ServerEvent::UnexpectedAck { .. })]
    ));
    assert_eq!(s.session().inflight(), 1);
}

#[test]
fn pubrel_takes_the_end_of_the_resend_order_on_both_roles() {
    // MQTT-4.6.0-4: PUBREL in the order the PUBRECs arrived; MQTT-4.6.0-6 binds the
    // server to the same order.
    let mut c = connected_client(Profile::mqtt311(), ClientConfig::default(), false);
    let a = client_publish(&mut c, QoS::ExactlyOnce);
    let b = client_publish(&mut c, QoS::AtLeastOnce);
    c.handle_packet(NOW, Packet::PubRec(a)).unwrap();
    client_drain(&mut c);
    c.connection_lost(NOW);
    let out = reconnect_client(&mut c, true);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(republished(&out[0]), (true, Some(b)));
    assert_eq!(out[1], Packet::PubRel(a));

    let (mut s, _) = connected_server(Profile::mqtt311(), ServerConfig::default(), None);
    s.publish(NOW, message(QoS::ExactlyOnce)).unwrap();
    s.publish(NOW, message(QoS::AtLeastOnce)).unwrap();
    server_drain(&mut s);
    server_packet(&mut s, Packet::PubRec(pid(1)));
    s.connection_lost(NOW);
    let session = s.take_session().unwrap();
    let (_, out) = connected_server(Profile::mqtt311(), ServerConfig::default(), Some(session));
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(republished(&out[1]), (true, Some(pid(2))));
    assert_eq!(out[2], Packet::PubRel(pid(1)));
}

#[test]
fn a_repeated_pubrec_is_answered_with_pubrel_again_by_both_roles() {
    // MQTT-4.3.3-1: the sender answers PUBREC with PUBREL.
    let mut c = connected_client(Profile::mqtt311(), ClientConfig::default(), false);
    let a = client_publish(&mut c, QoS::ExactlyOnce);
    c.handle_packet(NOW, Packet::PubRec(a)).unwrap();
    client_drain(&mut c);
    c.handle_packet(NOW, Packet::PubRec(a)).unwrap();
    assert_eq!(client_sends(&mut c), vec![Packet::PubRel(a)]);

    let (mut s, _) = connected_server(Profile::mqtt311(), ServerConfig::default(), None);
    s.publish(NOW, message(QoS::ExactlyOnce)).unwrap();
    server_drain(&mut s);
    server_packet(&mut s, Packet::PubRec(pid(1)));
    let again = server_packet(&mut s, Packet::PubRec(pid(1)));
    assert_eq!(again, vec![ServerAction::Send(Packet::PubRel(pid(1)))]);
}

#[test]
fn the_window_is_the_configured_limit_capped_by_the_profile_on_both_roles() {
    let profile = Profile::aws_iot_core();
    let cap = profile.max_inflight;
    let config = ClientConfig {
        max_inflight: cap + 50,
        ..ClientConfig::for_profile(&profile)
    };
    let mut c = connected_client(profile.clone(), config, false);
    for _ in 0..cap {
        client_publish(&mut c, QoS::AtLeastOnce);
    }
    assert_eq!(
        c.publish(NOW, topic(), QoS::AtLeastOnce, false, "m"),
        Err(ClientError::InflightFull { max: cap })
    );

    let config = ServerConfig {
        max_inflight: cap + 50,
        ..ServerConfig::default()
    };
    let (mut s, _) = connected_server(profile, config, None);
    for _ in 0..cap + 1 {
        s.publish(NOW, message(QoS::AtLeastOnce)).unwrap();
    }
    assert_eq!(server_sends(&mut s).len(), cap);
    assert_eq!((s.session().inflight(), s.session().queued()), (cap, 1));
}

#[test]
fn a_window_of_zero_counts_as_one_on_both_roles() {
    let config = ClientConfig {
        max_inflight: 0,
        ..ClientConfig::default()
    };
    let mut c = connected_client(Profile::mqtt311(), config, false);
    client_publish(&mut c, QoS::AtLeastOnce);
    assert_eq!(
        c.publish(NOW, topic(), QoS::AtLeastOnce, false, "m"),
        Err(ClientError::InflightFull { max: 1 })
    );
    let config = ServerConfig {
        max_inflight: 0,
        ..ServerConfig::default()
    };
    let (mut s, _) = connected_server(Profile::mqtt311(), config, None);
    s.publish(NOW, message(QoS::AtLeastOnce)).unwrap();
    s.publish(NOW, message(QoS::AtLeastOnce)).unwrap();
    assert_eq!((s.session().inflight(), s.session().queued()), (1, 1));
}

#[test]
fn a_server_resends_per_its_profile_and_a_client_always_keeps_the_id() {
    // Under AWS IoT Core a server resends with a fresh id and DUP=0 …
    let (mut s, _) = connected_server(Profile::aws_iot_core(), ServerConfig::default(), None);
    s.publish(NOW, message(QoS::AtLeastOnce)).unwrap();
    server_drain(&mut s);
    s.connection_lost(NOW);
    let session = s.take_session().unwrap();
    let (s, out) = connected_server(
        Profile::aws_iot_core(),
        ServerConfig::default(),
        Some(session),
    );
    assert_eq!(republished(&out[1]), (false, Some(pid(2))));
    assert!(
        !s.session().session().ids().contains(pid(1)),
        "the old id is free"
    );

    // … while a client keeps the id the application knows, with DUP=1 (MQTT-4.4.0-1).
    let aws = Profile::aws_iot_core();
    let mut c = connected_client(aws.clone(), ClientConfig::for_profile(&aws), false);
    let id = client_publish(&mut c, QoS::AtLeastOnce);
    c.connection_lost(NOW);
    let out = reconnect_client(&mut c, true);
    assert_eq!(out.len(), 1);
    assert_eq!(republished(&out[0]), (true, Some(id)));
}

// ----- first-send times, in the state and its encoding -----

#[test]
fn both_roles_record_when_an_entry_was_first_sent_and_a_client_export_keeps_it() {
    use mqtt_sansio::session::{Change, ClientExport};
    let later = Instant::from_secs(7);
    // A server sends at once.
    let (mut s, _) = connected_server(Profile::mqtt311(), ServerConfig::default(), None);
    s.publish(later, message(QoS::AtLeastOnce)).unwrap();
    let first = s
        .session()
        .session()
        .outgoing()
        .next()
        .map(|o| o.first_sent);
    assert_eq!(first, Some(Some(later)));
    // A client holds until CONNACK: no time until it is sent.
    let config = ClientConfig {
        report_changes: true,
        ..ClientConfig::default()
    };
    let mut c = Client::with_config(Profile::mqtt311(), config.clone());
    c.connect(NOW, connect(false)).unwrap();
    let id = c
        .publish(NOW, topic(), QoS::AtLeastOnce, false, "m")
        .unwrap()
        .unwrap();
    assert_eq!(c.export().session.outgoing[0].first_sent, None);
    let mut durable = c.export();
    client_drain(&mut c);
    c.handle_packet(
        later,
        Packet::ConnAck(ConnAck::Accepted {
            session_present: false,
        }),
    )
    .unwrap();
    for a in client_drain(&mut c) {
        if let ClientAction::Change(change) = a {
            assert!(!matches!(change, Change::Sent { at, .. } if at != later));
            durable.apply(&change).unwrap();
        }
    }
    let export = c.export();
    assert_eq!(durable, export, "the changes give the export");
    assert_eq!(export.session.outgoing[0].first_sent, Some(later));
    assert_eq!(export.session.outgoing[0].id, id);
    let read = ClientExport::from_bytes(&export.to_bytes()).unwrap();
    assert_eq!(read, export);
    let again = Client::import(Profile::mqtt311(), config, read).unwrap();
    assert_eq!(again.export(), export);
}

#[test]
fn an_export_of_version_1_reads_without_first_send_times_and_is_written_as_version_2() {
    use mqtt_sansio::session::{BrokerExport, ClientExport, SessionRecord, encoding};
    let (mut s, _) = connected_server(Profile::mqtt311(), ServerConfig::default(), None);
    s.publish(NOW, message(QoS::AtLeastOnce)).unwrap();
    let mut session = s.session().session().export();
    // What version 1 could hold: no time.
    session.outgoing[0].first_sent = None;
    let client = ClientExport {
        session: session.clone(),
    };
    let mut v1 = client.to_bytes();
    assert_eq!(v1[4], encoding::VERSION);
    v1[4] = encoding::VERSION_1;
    assert_eq!(ClientExport::from_bytes(&v1), Ok(client.clone()));

    let broker = BrokerExport {
        sessions: vec![SessionRecord {
            client_id: MqttString::try_from("c1").unwrap(),
            expires: None,
            subscriptions: Vec::new(),
            session,
            queue: Vec::new(),
        }],
        retained: Vec::new(),
        shared: Vec::new(),
    };
    let mut v1 = broker.to_bytes();
    v1[4] = encoding::VERSION_1;
    // Version 1 with the shared-group section, and from before it was added.
    assert_eq!(BrokerExport::from_bytes(&v1), Ok(broker.clone()));
    let without_shared = &v1[..v1.len() - 4];
    assert_eq!(BrokerExport::from_bytes(without_shared), Ok(broker.clone()));
    // Version 2 always has the section.
    let v2 = broker.to_bytes();
    assert_eq!(
        BrokerExport::from_bytes(&v2[..v2.len() - 4]),
        Err(mqtt_sansio::session::StateError::Truncated)
    );
}

#[test]
fn a_first_send_time_is_refused_in_version_1_and_on_an_unsent_entry() {
    use mqtt_sansio::session::{ClientExport, StateError, encoding};
    let (mut s, _) = connected_server(Profile::mqtt311(), ServerConfig::default(), None);
    s.publish(Instant::from_secs(3), message(QoS::AtLeastOnce))
        .unwrap();
    let client = ClientExport {
        session: s.session().session().export(),
    };
    let v2 = client.to_bytes();
    assert_eq!(ClientExport::from_bytes(&v2), Ok(client.clone()));
    // The entry's flags follow magic, version, kind, cursor (2) and count (4).
    let flags = 4 + 1 + 1 + 2 + 4 + 2;
    assert_eq!(v2[flags], 0b110, "sent, with a time");
    let mut v1 = v2.clone();
    v1[4] = encoding::VERSION_1;
    assert_eq!(
        ClientExport::from_bytes(&v1),
        Err(StateError::Invalid("unknown entry flags"))
    );
    let mut unsent = v2.clone();
    unsent[flags] = 0b100;
    assert_eq!(
        ClientExport::from_bytes(&unsent),
        Err(StateError::Invalid("a first-send time on an unsent entry"))
    );
    let mut export = client.clone();
    export.session.outgoing[0].sent = false;
    assert!(Client::import(Profile::mqtt311(), ClientConfig::default(), export).is_err());
}
