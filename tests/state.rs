//! Session state as data: exports, their binary encoding read as untrusted bytes, and
//! the changes reported in order with the other actions.

mod support;

use mqtt_sansio::broker::{Action as BrokerAction, BrokerConfig};
use mqtt_sansio::client::Action as ClientAction;
use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::session::{
    BrokerChange, BrokerExport, Change, ClientExport, Stage, StateError, encoding,
};
use mqtt_sansio::{
    Broker, Client, ClientConfig, ConnAck, Connect, Instant, MqttString, Packet, Profile, QoS,
    TopicName,
};
use support::harness::{Harness, pid, publish, retained};
use support::state_checks::check_state;

fn reporting() -> BrokerConfig {
    ServerConfig {
        report_changes: true,
        ..ServerConfig::default()
    }
    .into()
}

/// A broker holding two persistent sessions (one online with a QoS 2 message released
/// and a QoS 1 in flight, one offline with a queue), a clean one, and a retained
/// message.
fn busy_broker(profile: Profile) -> Harness {
    let full = profile.supports_qos2();
    let mut h = Harness::with_config(profile, reporting());
    h.connect(1, "online", false);
    h.subscribe(1, 1, &[("t/#", QoS::AtLeastOnce), ("u", QoS::AtLeastOnce)]);
    if full {
        h.subscribe(1, 2, &[("t/#", QoS::ExactlyOnce)]);
    }
    h.connect(2, "offline", false);
    h.subscribe(2, 1, &[("t/#", QoS::AtLeastOnce)]);
    h.drop_conn(2);
    h.connect(3, "clean", true);
    if full {
        h.send(3, publish("t/a", QoS::ExactlyOnce, 1, "two"));
    }
    h.send(3, publish("t/b", QoS::AtLeastOnce, 2, "one"));
    if full {
        h.send(3, retained("t/r", QoS::AtLeastOnce, 3, "kept"));
        let to_online = support::harness::publishes(&h.take(1));
        let qos2 = to_online[0].qos.packet_id().unwrap();
        h.send(1, Packet::PubRec(qos2));
        // An inbound QoS 2 id awaiting PUBREL on the online session.
        h.send(1, publish("v", QoS::ExactlyOnce, 7, "in"));
    }
    h
}

#[test]
fn a_broker_export_holds_every_persistent_session_and_the_retained_messages() {
    let h = busy_broker(Profile::mqtt311());
    let export = h.broker.export();
    let ids: Vec<&str> = export
        .sessions
        .iter()
        .map(|r| r.client_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["offline", "online"],
        "the clean session is not durable"
    );
    let online = &export.sessions[1];
    assert_eq!(online.expires, None);
    let stages: Vec<(Stage, &[u8])> = online
        .session
        .outgoing
        .iter()
        .map(|o| (o.stage, &o.message.payload[..]))
        .collect();
    // The released QoS 2 message moved behind the QoS 1 ones (MQTT-4.6.0-4).
    assert_eq!(
        stages,
        [
            (Stage::Published, &b"one"[..]),
            (Stage::Published, &b"kept"[..]),
            (Stage::Released, &b"two"[..])
        ]
    );
    assert_eq!(online.session.inbound_qos2, [pid(7)]);
    let offline = &export.sessions[0];
    let queued: Vec<&[u8]> = offline.queue.iter().map(|m| &m.payload[..]).collect();
    assert_eq!(queued, [&b"two"[..], b"one", b"kept"]);
    assert_eq!(export.retained.len(), 1);
    assert_eq!(&export.retained[0].payload[..], b"kept");
}

#[test]
fn a_broker_export_survives_bytes_and_import_under_both_profiles() {
    for profile in [Profile::mqtt311(), Profile::aws_iot_core()] {
        let h = busy_broker(profile.clone());
        let export = h.broker.export();
        let bytes = export.to_bytes();
        assert_eq!(&bytes[..4], &encoding::MAGIC);
        assert_eq!(bytes[4], encoding::VERSION);
        let read = BrokerExport::from_bytes(&bytes).expect("reads");
        assert_eq!(read, export);
        let now = Instant::from_secs(5);
        let mut restarted = Broker::import(profile.clone(), reporting(), read, now).unwrap();
        let mut expected = export.clone();
        // The session that was online gets the profile's expiry from the restart.
        let at = profile.session_expiry.map(|d| now + d);
        expected.sessions[1].expires = at;
        assert_eq!(restarted.export(), expected);
        let announced: Vec<BrokerAction> = std::iter::from_fn(|| restarted.poll_action()).collect();
        assert_eq!(
            announced.len(),
            usize::from(at.is_some()),
            "the new expiry is reported: {announced:?}"
        );
        check_state(&bytes);
    }
}

#[test]
fn a_restarted_broker_resumes_a_session_and_resends_what_it_held() {
    let h = busy_broker(Profile::mqtt311());
    let export = BrokerExport::from_bytes(&h.broker.export().to_bytes()).unwrap();
    let mut b = Harness::with_config(Profile::mqtt311(), reporting());
    b.broker = Broker::import(Profile::mqtt311(), reporting(), export, Instant::ZERO).unwrap();
    let ack = b.connect(1, "online", false);
    assert_eq!(
        ack,
        ConnAck::Accepted {
            session_present: true
        }
    );
    let out = b.take(1);
    let resent: Vec<String> = out.iter().map(|p| format!("{p:?}")).collect();
    assert_eq!(out.len(), 3, "{resent:?}");
    let dup_of = |p: &Packet<bytes::Bytes>, payload: &[u8]| matches!(p, Packet::Publish(p) if p.dup && &p.payload[..] == payload);
    assert!(
        dup_of(&out[0], b"one") && dup_of(&out[1], b"kept"),
        "{resent:?}"
    );
    assert!(matches!(out[2], Packet::PubRel(_)), "{resent:?}");
    // The inbound QoS 2 id still awaits its PUBREL: a repeat is not routed again.
    b.send(1, publish("v", QoS::ExactlyOnce, 7, "in"));
    assert_eq!(b.take(1), [Packet::PubRec(pid(7))]);
    b.send(1, Packet::PubRel(pid(7)));
    assert_eq!(b.take(1), [Packet::PubComp(pid(7))]);
}

fn client_with_state() -> Client {
    let profile = Profile::mqtt311();
    let config = ClientConfig {
        report_changes: true,
        ..ClientConfig::for_profile(&profile)
    };
    let mut c = Client::with_config(profile, config);
    let connect = Connect {
        client_id: MqttString::try_from("c").unwrap(),
        clean_session: false,
        keep_alive: 0,
        will: None,
        login: None,
    };
    let now = Instant::ZERO;
    c.connect(now, connect.clone()).unwrap();
    c.handle_packet(
        now,
        Packet::ConnAck(ConnAck::Accepted {
            session_present: false,
        }),
    )
    .unwrap();
    let t = TopicName::try_from("t").unwrap();
    let a = c
        .publish(now, t.clone(), QoS::ExactlyOnce, false, "a")
        .unwrap()
        .unwrap();
    c.publish(now, t.clone(), QoS::AtLeastOnce, true, "b")
        .unwrap();
    c.handle_packet(now, Packet::PubRec(a)).unwrap();
    c.handle_packet(
        now,
        Packet::Publish(publish("in", QoS::ExactlyOnce, 9, "x")),
    )
    .unwrap();
    c.connection_lost(now);
    // Held until the next CONNACK.
    c.connect(now, connect).unwrap();
    c.publish(now, t, QoS::AtLeastOnce, false, "held").unwrap();
    while c.poll_action().is_some() {}
    c
}

#[test]
fn a_client_export_holds_its_flows_held_messages_inbound_ids_and_cursor() {
    let c = client_with_state();
    let export = c.export();
    let entries: Vec<(u16, Stage, bool, &[u8])> = export
        .session
        .outgoing
        .iter()
        .map(|o| (o.id.get(), o.stage, o.sent, &o.message.payload[..]))
        .collect();
    assert_eq!(
        entries,
        [
            (2, Stage::Published, true, &b"b"[..]),
            (1, Stage::Released, true, &b"a"[..]),
            (3, Stage::Published, false, &b"held"[..]),
        ]
    );
    assert_eq!(export.session.inbound_qos2, [pid(9)]);
    assert_eq!(export.session.cursor, 3);
    let read = ClientExport::from_bytes(&export.to_bytes()).unwrap();
    assert_eq!(read, export);
    let profile = Profile::mqtt311();
    let config = ClientConfig::for_profile(&profile);
    let mut imported = Client::import(profile, config, read).unwrap();
    assert_eq!(imported.export(), export);
    // Allocation resumes after the cursor.
    imported
        .connect(
            Instant::ZERO,
            Connect {
                client_id: MqttString::try_from("c").unwrap(),
                clean_session: false,
                keep_alive: 0,
                will: None,
                login: None,
            },
        )
        .unwrap();
    let t = TopicName::try_from("t").unwrap();
    let next = imported
        .publish(Instant::ZERO, t, QoS::AtLeastOnce, false, "n")
        .unwrap();
    assert_eq!(next, Some(pid(4)));
}

#[test]
fn every_prefix_of_an_export_is_truncated_and_every_flipped_byte_is_read_or_refused() {
    let client = client_with_state().export().to_bytes();
    let broker = busy_broker(Profile::mqtt311()).broker.export().to_bytes();
    for bytes in [&client, &broker] {
        for n in 0..bytes.len() {
            let prefix = &bytes[..n];
            assert_eq!(ClientExport::from_bytes(prefix).err().map(|_| ()), Some(()));
            let err = BrokerExport::from_bytes(prefix).unwrap_err();
            if n >= 6 && bytes[5] == 2 {
                assert_eq!(err, StateError::Truncated, "prefix of {n} bytes");
            }
            check_state(prefix);
        }
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut flipped = bytes.to_vec();
                flipped[i] ^= bit;
                check_state(&flipped);
            }
        }
    }
}

#[test]
fn a_header_that_is_not_version_1_or_2_of_the_right_kind_is_refused_by_name() {
    let bytes = client_with_state().export().to_bytes();
    assert_eq!(
        ClientExport::from_bytes(b"JUNKJUNK"),
        Err(StateError::NotAnExport)
    );
    for version in [0, 3, 0xFF] {
        let mut other = bytes.clone();
        other[4] = version;
        assert_eq!(
            ClientExport::from_bytes(&other),
            Err(StateError::UnsupportedVersion(version))
        );
    }
    assert_eq!(BrokerExport::from_bytes(&bytes), Err(StateError::WrongKind));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        ClientExport::from_bytes(&trailing),
        Err(StateError::TrailingBytes)
    );
}

#[test]
fn a_count_of_four_billion_with_nothing_behind_it_is_truncated_without_allocating() {
    // Broker export: u32::MAX sessions, no bytes for any of them.
    let mut bytes = encoding::MAGIC.to_vec();
    bytes.extend_from_slice(&[encoding::VERSION, 2, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(BrokerExport::from_bytes(&bytes), Err(StateError::Truncated));
    // Client export: u32::MAX outgoing entries.
    let mut bytes = encoding::MAGIC.to_vec();
    bytes.extend_from_slice(&[encoding::VERSION, 1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(ClientExport::from_bytes(&bytes), Err(StateError::Truncated));
}

#[test]
fn an_export_that_breaks_its_own_rules_is_refused_by_import() {
    let mut export = client_with_state().export();
    let dup = export.session.outgoing[0].clone();
    export.session.outgoing.push(dup);
    let profile = Profile::mqtt311();
    let config = ClientConfig::for_profile(&profile);
    assert_eq!(
        Client::import(profile, config, export.clone()).err(),
        Some(StateError::Invalid("an id twice in the outgoing table"))
    );
    // The bytes of that export do not read either.
    assert!(ClientExport::from_bytes(&export.to_bytes()).is_err());
}

// ----- changes in order with acknowledgements -----

fn position(log: &[BrokerAction], what: impl Fn(&BrokerAction) -> bool) -> usize {
    log.iter().position(what).expect("present")
}

#[test]
fn a_publishers_puback_comes_after_the_changes_that_store_its_message() {
    let mut h = Harness::with_config(Profile::mqtt311(), reporting());
    h.connect(1, "offline", false);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.drop_conn(1);
    h.connect(2, "online", false);
    h.subscribe(2, 1, &[("t", QoS::AtLeastOnce)]);
    h.connect(3, "publisher", false);
    h.subscribe(3, 1, &[("t", QoS::AtLeastOnce)]);
    let from = h.log.len();
    h.send(3, retained("t", QoS::AtLeastOnce, 5, "m"));
    let log = &h.log[from..];
    let puback = position(log, |a| {
        matches!(
            a,
            BrokerAction::Send {
                packet: Packet::PubAck(_),
                ..
            }
        )
    });
    let is = |who: &'static str, f: fn(&Change) -> bool| {
        move |a: &BrokerAction| {
            matches!(a, BrokerAction::Change(BrokerChange::Session { client_id, change })
                if client_id.as_str() == who && f(change))
        }
    };
    let queued = position(log, is("offline", |c| matches!(c, Change::Queued(_))));
    let sent = position(log, is("online", |c| matches!(c, Change::Added { .. })));
    let own = position(log, is("publisher", |c| matches!(c, Change::Added { .. })));
    let kept = position(log, |a| {
        matches!(a, BrokerAction::Change(BrokerChange::RetainedSet(_)))
    });
    for (what, at) in [
        ("queued", queued),
        ("sent", sent),
        ("own copy", own),
        ("retained", kept),
    ] {
        assert!(at < puback, "{what} at {at}, PUBACK at {puback}: {log:?}");
    }
}

#[test]
fn a_pubrec_comes_after_the_inbound_id_is_stored_on_both_roles() {
    let mut h = Harness::with_config(Profile::mqtt311(), reporting());
    h.connect(1, "publisher", false);
    let from = h.log.len();
    h.send(1, publish("t", QoS::ExactlyOnce, 4, "m"));
    let log = &h.log[from..];
    let stored = position(log, |a| {
        matches!(a, BrokerAction::Change(BrokerChange::Session {
            change: Change::InboundStored(id), ..
        }) if *id == pid(4))
    });
    let pubrec = position(log, |a| {
        matches!(
            a,
            BrokerAction::Send {
                packet: Packet::PubRec(_),
                ..
            }
        )
    });
    assert!(stored < pubrec, "{log:?}");

    let mut c = client_with_state();
    c.connection_lost(Instant::ZERO);
    while c.poll_action().is_some() {}
    c.connect(
        Instant::ZERO,
        Connect {
            client_id: MqttString::try_from("c").unwrap(),
            clean_session: false,
            keep_alive: 0,
            will: None,
            login: None,
        },
    )
    .unwrap();
    c.handle_packet(
        Instant::ZERO,
        Packet::ConnAck(ConnAck::Accepted {
            session_present: true,
        }),
    )
    .unwrap();
    while c.poll_action().is_some() {}
    c.handle_packet(
        Instant::ZERO,
        Packet::Publish(publish("t", QoS::ExactlyOnce, 11, "y")),
    )
    .unwrap();
    let actions: Vec<ClientAction> = std::iter::from_fn(|| c.poll_action()).collect();
    let stored = actions.iter().position(
        |a| matches!(a, ClientAction::Change(Change::InboundStored(id)) if *id == pid(11)),
    );
    let pubrec = actions
        .iter()
        .position(|a| matches!(a, ClientAction::Send(Packet::PubRec(_))));
    assert!(stored.unwrap() < pubrec.unwrap(), "{actions:?}");
}

#[test]
fn without_report_changes_no_change_is_reported() {
    let mut h = Harness::new(Profile::mqtt311());
    h.connect(1, "s", false);
    h.subscribe(1, 1, &[("t", QoS::AtLeastOnce)]);
    h.send(1, publish("t", QoS::AtLeastOnce, 2, "m"));
    h.drop_conn(1);
    assert!(!h.log.iter().any(|a| matches!(a, BrokerAction::Change(_))));
}

#[test]
fn an_import_beyond_max_sessions_keeps_every_session_and_refuses_only_new_ones() {
    let mut h = Harness::with_config(Profile::mqtt311(), reporting());
    for (c, name) in [(1, "a"), (2, "b"), (3, "c")] {
        h.connect(c, name, false);
        h.subscribe(c, 1, &[("t", QoS::AtLeastOnce)]);
        h.drop_conn(c);
    }
    h.connect(4, "pub", true);
    h.send(4, publish("t", QoS::AtLeastOnce, 1, "kept"));
    let export = h.broker.export();
    assert_eq!(export.sessions.len(), 3);
    let mut limited = reporting();
    limited.max_sessions = Some(2);
    let mut b = Harness::with_config(Profile::mqtt311(), limited.clone());
    b.broker = Broker::import(Profile::mqtt311(), limited, export, Instant::ZERO).unwrap();
    assert_eq!(b.broker.export().sessions.len(), 3);
    assert_eq!(
        b.connect(9, "new", false),
        ConnAck::Refused(mqtt_sansio::ConnectReturnCode::ServerUnavailable)
    );
    for (c, name) in [(1, "a"), (2, "b"), (3, "c")] {
        assert_eq!(
            b.connect(c, name, false),
            ConnAck::Accepted {
                session_present: true
            }
        );
        let got = support::harness::publishes(&b.take(c));
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!(&got[0].payload[..], b"kept");
    }
}
