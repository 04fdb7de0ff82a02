//! Scenario tests of the client across connections, in simulated time: resuming a
//! session, the reconnect the client asks for (backoff with seeded jitter, cap, reset,
//! AWS IoT Core's one CONNECT per second), operation time-outs, and export/import while
//! a reconnect is pending.

use core::time::Duration;

use mqtt_sansio::client::{Action, Client, ClientConfig, ClientError, Event, Lost, Reason};
use mqtt_sansio::reconnect::Backoff;
use mqtt_sansio::session::ClientExport;
use mqtt_sansio::{
    ClientState, ConnAck, ConnectReturnCode, Instant, Packet, PacketType, Profile, QoS, SubAck,
    SubAckCode,
};

mod support;

#[allow(dead_code)]
#[path = "support/machine_checks/mod.rs"]
mod machine_checks;

use support::client_sim::*;

// ----- resuming a session -----

#[test]
fn a_resumed_session_resends_unacked_publishes_with_dup_and_pubrels_in_original_order() {
    // MQTT-4.4.0-1, MQTT-4.6.0-1, MQTT-3.3.1-1, MQTT-2.3.1-3
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(false, 0, false);
    let a = sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    let b = sim.publish("t", QoS::ExactlyOnce, "b").unwrap();
    let c = sim.publish("t", QoS::ExactlyOnce, "c").unwrap();
    let d = sim.publish("t", QoS::AtLeastOnce, "d").unwrap();
    sim.drain();
    sim.server(Packet::PubRec(c));
    sim.server(Packet::PubAck(d));
    sim.client.connection_lost(sim.now);
    assert!(
        sim.drain().is_empty(),
        "nothing is lost with clean session 0"
    );
    let out = sent(&sim.connected(false, 0, true));
    assert_eq!(out.len(), 3);
    assert_eq!(republished(&out[0]), (true, Some(a.get())));
    assert_eq!(republished(&out[1]), (true, Some(b.get())));
    assert_eq!(out[2], Packet::PubRel(c));
}

#[test]
fn session_present_0_discards_the_session_and_reports_each_lost_message() {
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(false, 0, false);
    let a = sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    let b = sim.publish("t", QoS::ExactlyOnce, "b").unwrap();
    sim.drain();
    sim.server(Packet::PubRec(b));
    sim.client.connection_lost(sim.now);
    let out = sim.connected(false, 0, false);
    assert_eq!(out.len(), 3);
    assert!(
        matches!(&out[1], Action::Event(Event::Lost(Lost::Publish(p))) if p.qos.packet_id() == Some(a))
    );
    assert_eq!(out[2], Action::Event(Event::Lost(Lost::Release(b))));
    assert_eq!(sim.client.ids_in_use(), 0);
}

#[test]
fn a_lost_connection_with_clean_session_1_reports_everything_unfinished() {
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 0, false);
    let a = sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    let s = sim
        .client
        .subscribe(sim.now, &[(filter("x"), QoS::AtMostOnce)])
        .unwrap();
    sim.drain();
    sim.client.connection_lost(sim.now);
    let out = sim.drain();
    assert_eq!(out.len(), 2);
    assert!(
        matches!(&out[0], Action::Event(Event::Lost(Lost::Publish(p))) if p.qos.packet_id() == Some(a))
    );
    assert!(matches!(&out[1], Action::Event(Event::Lost(Lost::Subscribe(x))) if x.packet_id == s));
    assert_eq!(sim.client.ids_in_use(), 0);
}

#[test]
fn session_present_after_clean_session_1_is_a_protocol_error() {
    let mut sim = Sim::new(Profile::mqtt311());
    let out = sim.connected(true, 0, true);
    assert!(matches!(out[..], [Action::Close(Reason::Protocol(e))] if e.rule == "MQTT-3.2.2-1"));
}

#[test]
fn commands_held_before_connack_are_reported_lost_when_the_connection_drops() {
    let mut sim = Sim::new(Profile::mqtt311());
    sim.client
        .connect(sim.now, connect_packet("c", true, 0))
        .unwrap();
    sim.drain();
    let p = sim.publish("t", QoS::AtLeastOnce, "a");
    sim.publish("t", QoS::AtMostOnce, "b");
    assert!(sim.drain().is_empty());
    sim.client.connection_lost(sim.now);
    let out = sim.drain();
    assert_eq!(out.len(), 2);
    assert!(
        matches!(&out[0], Action::Event(Event::Lost(Lost::Publish(x))) if x.qos.packet_id() == p)
    );
    assert!(matches!(&out[1], Action::Event(Event::Lost(Lost::Publish(x))) if x.payload == "b"));
    assert_eq!(sim.client.ids_in_use(), 0);
}

#[test]
fn a_second_connect_while_connected_is_refused_and_changes_nothing() {
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(true, 30, false);
    let before = sim.client.poll_timeout();
    assert_eq!(
        sim.client.connect(sim.now, connect_packet("c", true, 5)),
        Err(ClientError::AlreadyConnected)
    );
    assert!(sim.drain().is_empty());
    assert_eq!(sim.client.poll_timeout(), before);
}

#[test]
fn a_refused_reconnect_keeps_the_persistent_session_for_the_next_attempt() {
    // MQTT-4.4.0-1
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(false, 0, false);
    let a = sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    sim.drain();
    sim.client.connection_lost(sim.now);
    sim.client
        .connect(sim.now, connect_packet("c1", false, 0))
        .unwrap();
    sim.drain();
    let out = sim.server(Packet::ConnAck(ConnAck::Refused(
        ConnectReturnCode::ServerUnavailable,
    )));
    assert_eq!(
        out,
        vec![Action::Close(Reason::Refused(
            ConnectReturnCode::ServerUnavailable
        ))]
    );
    let out = sent(&sim.connected(false, 0, true));
    assert_eq!(
        out.iter().map(republished).collect::<Vec<_>>(),
        vec![(true, Some(a.get()))]
    );
}

// ----- the reconnect the client asks for -----

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// A client under `profile` that reconnects with `backoff`.
fn reconnecting(profile: Profile, backoff: Backoff) -> Sim {
    let config = ClientConfig {
        reconnect: Some(backoff),
        ..ClientConfig::for_profile(&profile)
    };
    Sim::with_config(profile, config)
}

/// Runs the clock to the reconnect the client asks for; returns its instant.
fn next_reconnect(sim: &mut Sim) -> Instant {
    assert_eq!(sim.client.state(), ClientState::Reconnecting);
    let t = sim.client.poll_timeout().expect("a reconnect is coming");
    let out = sim.run_until(t);
    assert_eq!(out, vec![Action::Reconnect], "at {t:?}");
    // Asked: no second request until the attempt ends.
    assert!(sim.client.poll_timeout().is_none_or(|w| w > t));
    assert_eq!(sim.client.state(), ClientState::Reconnecting);
    t
}

/// The instants the client asks to be reconnected at, over `n` failed attempts after a
/// connection lost at 1 s that had been up since 0.
fn failed_attempts(sim: &mut Sim, n: usize) -> Vec<Instant> {
    sim.connected(false, 0, false);
    sim.now = at(1_000);
    sim.client.connection_lost(sim.now);
    let mut asks = Vec::new();
    for _ in 0..n {
        let t = next_reconnect(sim);
        asks.push(t);
        // The network connection cannot be opened.
        sim.client.connection_failed(t);
    }
    asks
}

#[test]
fn after_a_lost_connection_the_client_asks_to_reconnect_at_the_backoffs_instants() {
    let backoff = Backoff::for_profile(&Profile::mqtt311(), 42);
    let mut sim = reconnecting(Profile::mqtt311(), backoff.clone());
    let asks = failed_attempts(&mut sim, 8);
    // The same backoff driven by hand gives the same instants.
    let mut b = backoff;
    b.connecting(at(0));
    b.connected(at(0));
    let mut expected = vec![b.lost(at(1_000))];
    for _ in 1..8 {
        let last = *expected.last().unwrap();
        expected.push(b.lost(last));
    }
    assert_eq!(asks, expected);
    // Each delay doubles, the attempt landing in the second half of it.
    let mut from = at(1_000);
    for (i, t) in asks.iter().enumerate() {
        let delay = (500u64 << i).min(30_000);
        let d = t.saturating_duration_since(from);
        assert!(d >= ms(delay / 2) && d <= ms(delay), "attempt {i}: {d:?}");
        from = *t;
    }
}

#[test]
fn the_same_seed_gives_the_same_reconnects_and_another_seed_differs() {
    let run = |seed| {
        let backoff = Backoff::for_profile(&Profile::mqtt311(), seed);
        failed_attempts(&mut reconnecting(Profile::mqtt311(), backoff), 6)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn the_reconnect_delay_stops_growing_at_the_cap() {
    let mut backoff = Backoff::for_profile(&Profile::mqtt311(), 3);
    backoff.min = ms(100);
    backoff.max = ms(1_000);
    let mut sim = reconnecting(Profile::mqtt311(), backoff);
    let asks = failed_attempts(&mut sim, 12);
    let delays: Vec<Duration> = asks
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .collect();
    for d in &delays {
        assert!(*d <= ms(1_000), "{d:?} over the cap");
    }
    // From the fifth failure on (100 ms × 2⁴ > 1 s) every delay is the capped one.
    for d in &delays[4..] {
        assert!(*d >= ms(500), "{d:?} under half the cap");
    }
}

#[test]
fn a_connection_that_stayed_up_resets_the_delay_and_a_short_one_does_not() {
    for (up, reset) in [
        (Duration::from_secs(61), true),
        (Duration::from_secs(5), false),
    ] {
        let mut sim = reconnecting(
            Profile::mqtt311(),
            Backoff::for_profile(&Profile::mqtt311(), 9),
        );
        let asks = failed_attempts(&mut sim, 5);
        // The sixth attempt connects and the connection stays up for `up`.
        let t = next_reconnect(&mut sim);
        assert!(t > *asks.last().unwrap());
        sim.connected(false, 0, true);
        sim.now = t + up;
        sim.client.connection_lost(sim.now);
        let next = sim.client.poll_timeout().unwrap();
        let d = next.saturating_duration_since(sim.now);
        if reset {
            assert!(d <= ms(500), "{d:?} after a stable connection");
        } else {
            // Six failures: 500 ms × 2⁶ = 32 s, capped at 30 s, so at least 15 s.
            assert!(
                d >= Duration::from_secs(15),
                "{d:?} after a short connection"
            );
        }
    }
}

#[test]
fn under_aws_iot_core_connects_are_a_second_apart_across_lost_connections() {
    let profile = Profile::aws_iot_core();
    let mut backoff = Backoff::for_profile(&profile, 11);
    // A backoff alone would retry within 40 ms.
    backoff.min = ms(10);
    backoff.max = ms(40);
    let mut sim = reconnecting(profile, backoff);
    sim.connected(false, 30, false);
    let mut connects = vec![sim.now];
    for _ in 0..6 {
        // Every connection is lost as soon as it is accepted.
        sim.client.connection_lost(sim.now);
        let t = next_reconnect(&mut sim);
        sim.connected(false, 30, true);
        connects.push(t);
    }
    for w in connects.windows(2) {
        assert!(
            w[1] >= w[0] + Duration::from_secs(1),
            "{:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn a_connect_sooner_than_a_second_after_the_last_is_refused_under_aws_iot_core_only() {
    for reconnect in [
        None,
        Some(Backoff::for_profile(&Profile::aws_iot_core(), 1)),
    ] {
        let profile = Profile::aws_iot_core();
        let config = ClientConfig {
            reconnect,
            ..ClientConfig::for_profile(&profile)
        };
        let mut sim = Sim::with_config(profile, config);
        sim.now = at(5_000);
        sim.connected(false, 30, false);
        assert_eq!(sim.client.earliest_connect(), Some(at(6_000)));
        sim.now = at(5_400);
        sim.client.connection_lost(sim.now);
        sim.drain();
        let state = sim.client.state();
        let wake = sim.client.poll_timeout();
        sim.now = at(5_999);
        assert_eq!(
            sim.client.connect(sim.now, connect_packet("c1", false, 30)),
            Err(ClientError::ConnectTooSoon {
                earliest: at(6_000)
            })
        );
        // Refused: nothing changed.
        assert!(sim.drain().is_empty());
        assert_eq!(
            (sim.client.state(), sim.client.poll_timeout()),
            (state, wake)
        );
        sim.now = at(6_000);
        sim.connected(false, 30, true);
        assert_eq!(sim.client.state(), ClientState::Connected);
    }
    // MQTT 3.1.1 has no such quota.
    let mut sim = Sim::new(Profile::mqtt311());
    sim.connected(false, 0, false);
    sim.client.connection_lost(sim.now);
    assert!(
        sim.client
            .connect(sim.now, connect_packet("c1", false, 0))
            .is_ok()
    );
}

/// Opens a connection that CONNACK has yet to answer.
fn connecting(s: &mut Sim) {
    s.client
        .connect(s.now, connect_packet("c1", false, 5))
        .unwrap();
    s.drain();
}

#[test]
fn the_client_asks_to_reconnect_only_where_a_retry_can_help() {
    type End = fn(&mut Sim);
    let cases: [(&str, End, bool); 8] = [
        (
            "lost",
            |s| {
                s.connected(false, 0, false);
                s.client.connection_lost(s.now);
            },
            true,
        ),
        (
            "no CONNACK in time",
            |s| {
                connecting(s);
                s.run_until(s.now + Duration::from_secs(10));
            },
            true,
        ),
        (
            "no PINGRESP in time",
            |s| {
                s.connected(false, 5, false);
                s.run_until(s.now + Duration::from_secs(15));
            },
            true,
        ),
        (
            "server unavailable",
            |s| {
                connecting(s);
                s.server(Packet::ConnAck(ConnAck::Refused(
                    ConnectReturnCode::ServerUnavailable,
                )));
            },
            true,
        ),
        (
            "not authorized",
            |s| {
                connecting(s);
                s.server(Packet::ConnAck(ConnAck::Refused(
                    ConnectReturnCode::NotAuthorized,
                )));
            },
            false,
        ),
        (
            "a second CONNACK",
            |s| {
                s.connected(false, 0, false);
                s.server(Packet::ConnAck(ConnAck::Accepted {
                    session_present: false,
                }));
            },
            false,
        ),
        (
            "undecodable bytes",
            |s| {
                s.connected(false, 0, false);
                s.client.handle_bytes(s.now, &[0x36, 0x00]).unwrap();
            },
            false,
        ),
        (
            "disconnect",
            |s| {
                s.connected(false, 0, false);
                s.client.disconnect(s.now).unwrap();
            },
            false,
        ),
    ];
    for (name, end, retry) in cases {
        let backoff = Backoff::for_profile(&Profile::mqtt311(), 5);
        let mut sim = reconnecting(Profile::mqtt311(), backoff);
        end(&mut sim);
        sim.drain();
        if retry {
            assert_eq!(sim.client.state(), ClientState::Reconnecting, "{name}");
            next_reconnect(&mut sim);
        } else {
            assert_eq!(sim.client.state(), ClientState::Disconnected, "{name}");
            assert_eq!(sim.client.poll_timeout(), None, "{name}");
        }
    }
}

#[test]
fn a_failed_attempt_asks_again_later_and_disconnect_cancels_the_reconnect() {
    let mut sim = reconnecting(
        Profile::mqtt311(),
        Backoff::for_profile(&Profile::mqtt311(), 2),
    );
    sim.connected(false, 0, false);
    sim.client.connection_lost(sim.now);
    let first = next_reconnect(&mut sim);
    sim.client.connection_failed(first);
    let second = sim.client.poll_timeout().unwrap();
    assert!(
        second.saturating_duration_since(first) >= ms(500),
        "the second delay is 1 s"
    );
    // The application gives up: nothing is emitted and nothing more is asked.
    assert_eq!(sim.client.disconnect(sim.now), Ok(()));
    assert!(sim.drain().is_empty());
    assert_eq!(sim.client.state(), ClientState::Disconnected);
    assert_eq!(sim.client.poll_timeout(), None);
    assert_eq!(
        sim.client.disconnect(sim.now),
        Err(ClientError::NotConnected)
    );
    // Without reconnecting a failed attempt asks nothing.
    let mut plain = Sim::new(Profile::mqtt311());
    plain.client.connection_failed(plain.now);
    assert_eq!(plain.client.state(), ClientState::Disconnected);
    assert_eq!(plain.client.poll_timeout(), None);
}

#[test]
fn a_connect_by_the_application_while_a_reconnect_is_coming_replaces_it() {
    let mut sim = reconnecting(
        Profile::mqtt311(),
        Backoff::for_profile(&Profile::mqtt311(), 4),
    );
    sim.connected(false, 0, false);
    sim.client.connection_lost(sim.now);
    assert!(sim.client.poll_timeout().is_some());
    sim.connected(false, 0, true);
    assert_eq!(sim.client.poll_timeout(), None);
    assert!(sim.run_until(sim.now + Duration::from_secs(60)).is_empty());
}

#[test]
fn a_session_exported_while_a_reconnect_is_pending_resumes_in_the_imported_client() {
    let profile = Profile::mqtt311();
    let config = ClientConfig {
        reconnect: Some(Backoff::for_profile(&profile, 6)),
        ..ClientConfig::for_profile(&profile)
    };
    let mut sim = Sim::with_config(profile.clone(), config.clone());
    sim.connected(false, 0, false);
    let a = sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    sim.drain();
    sim.client.connection_lost(sim.now);
    let wake = sim.client.poll_timeout();
    let bytes = sim.client.export().to_bytes();
    // Exporting changes nothing: the reconnect still comes.
    assert_eq!(sim.client.poll_timeout(), wake);
    let export = ClientExport::from_bytes(&bytes).unwrap();
    let mut restored = Sim {
        client: Client::import(profile, config, export).unwrap(),
        now: sim.now,
        transcript: Vec::new(),
    };
    // Instants are not session state: the imported client waits to be connected.
    assert_eq!(restored.client.state(), ClientState::Disconnected);
    assert_eq!(restored.client.poll_timeout(), None);
    let out = sent(&restored.connected(false, 0, true));
    assert_eq!(
        out.iter().map(republished).collect::<Vec<_>>(),
        vec![(true, Some(a.get()))]
    );
    // The original goes on asking.
    next_reconnect(&mut sim);
    let out = sent(&sim.connected(false, 0, true));
    assert_eq!(
        out.iter().map(republished).collect::<Vec<_>>(),
        vec![(true, Some(a.get()))]
    );
}

// ----- operation time-outs -----

fn timeouts(request: Option<u64>, publish: Option<u64>) -> Sim {
    let profile = Profile::mqtt311();
    let config = ClientConfig {
        request_timeout: request.map(ms),
        publish_timeout: publish.map(ms),
        ..ClientConfig::for_profile(&profile)
    };
    Sim::with_config(profile, config)
}

fn timed_out(packet_type: PacketType, packet_id: mqtt_sansio::PacketId) -> Action {
    Action::Event(Event::TimedOut {
        packet_type,
        packet_id,
    })
}

#[test]
fn an_unacknowledged_subscribe_and_unsubscribe_are_reported_once_and_stay_in_flight() {
    let mut sim = timeouts(Some(2_000), None);
    sim.connected(true, 0, false);
    let s = sim
        .client
        .subscribe(sim.now, &[(filter("x"), QoS::AtLeastOnce)])
        .unwrap();
    sim.now = at(500);
    let u = sim.client.unsubscribe(sim.now, &[filter("y")]).unwrap();
    sim.drain();
    assert!(sim.run_until(at(1_999)).is_empty());
    assert_eq!(
        sim.run_until(at(2_000)),
        vec![timed_out(PacketType::Subscribe, s)]
    );
    assert_eq!(
        sim.run_until(at(2_500)),
        vec![timed_out(PacketType::Unsubscribe, u)]
    );
    assert!(sim.run_until(at(60_000)).is_empty(), "reported once");
    // Not abandoned: the ids stay in use and late acks complete them as usual.
    assert!(sim.client.id_in_use(s) && sim.client.id_in_use(u));
    let codes = vec![SubAckCode::Granted(QoS::AtLeastOnce)];
    sim.ack_subscribe_and_unsubscribe(s, codes, u);
    assert_eq!(sim.client.ids_in_use(), 0);
}

#[test]
fn a_subscribe_acknowledged_in_time_is_never_reported() {
    let mut sim = timeouts(Some(2_000), None);
    sim.connected(true, 0, false);
    let s = sim
        .client
        .subscribe(sim.now, &[(filter("x"), QoS::AtMostOnce)])
        .unwrap();
    sim.drain();
    sim.now = at(1_000);
    let codes = vec![SubAckCode::Granted(QoS::AtMostOnce)];
    sim.server(Packet::SubAck(SubAck::new(s, codes).unwrap()));
    assert_eq!(sim.client.poll_timeout(), None);
    assert!(sim.run_until(at(10_000)).is_empty());
}

#[test]
fn publishes_are_reported_only_with_a_publish_timeout_and_qos2_waits_for_pubcomp() {
    // Without a publish time-out a PUBLISH has no deadline.
    let mut sim = timeouts(Some(1_000), None);
    sim.connected(true, 0, false);
    sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    sim.drain();
    assert_eq!(sim.client.poll_timeout(), None);

    let mut sim = timeouts(None, Some(1_000));
    sim.connected(true, 0, false);
    let one = sim.publish("t", QoS::AtLeastOnce, "1").unwrap();
    let two = sim.publish("t", QoS::ExactlyOnce, "2").unwrap();
    assert_eq!(sim.publish("t", QoS::AtMostOnce, "0"), None);
    sim.drain();
    sim.now = at(500);
    sim.server(Packet::PubRec(two));
    assert_eq!(
        sim.run_until(at(1_000)),
        vec![
            timed_out(PacketType::Publish, one),
            timed_out(PacketType::Publish, two)
        ]
    );
    assert_eq!(
        sim.server(Packet::PubComp(two)),
        vec![Action::Event(Event::Completed(two))]
    );
    assert_eq!(
        sim.server(Packet::PubAck(one)),
        vec![Action::Event(Event::Published(one))]
    );
}

#[test]
fn a_deadline_runs_across_a_reconnect_and_a_session_lost_before_it_reports_nothing() {
    // Clean session 0: the message outlives the connection, so does its deadline.
    let profile = Profile::mqtt311();
    let config = ClientConfig {
        publish_timeout: Some(ms(3_000)),
        reconnect: Some(Backoff::for_profile(&profile, 8)),
        ..ClientConfig::for_profile(&profile)
    };
    let mut sim = Sim::with_config(profile, config);
    sim.connected(false, 0, false);
    let a = sim.publish("t", QoS::AtLeastOnce, "a").unwrap();
    sim.drain();
    sim.client.connection_lost(sim.now);
    let t = next_reconnect(&mut sim);
    assert!(t < at(3_000));
    assert_eq!(
        sim.run_until(at(3_000)),
        vec![timed_out(PacketType::Publish, a)]
    );
    let out = sent(&sim.connected(false, 0, true));
    assert_eq!(
        out.iter().map(republished).collect::<Vec<_>>(),
        vec![(true, Some(a.get()))]
    );
    assert_eq!(
        sim.server(Packet::PubAck(a)),
        vec![Action::Event(Event::Published(a))]
    );

    // Clean session 1: the loss reports the message lost, and no deadline follows.
    let mut sim = timeouts(Some(1_000), Some(1_000));
    sim.connected(true, 0, false);
    sim.publish("t", QoS::AtLeastOnce, "b").unwrap();
    sim.client
        .subscribe(sim.now, &[(filter("x"), QoS::AtMostOnce)])
        .unwrap();
    sim.drain();
    sim.client.connection_lost(sim.now);
    let out = sim.drain();
    assert!(
        out.iter()
            .all(|a| matches!(a, Action::Event(Event::Lost(_)))),
        "{out:?}"
    );
    assert_eq!(out.len(), 2);
    assert_eq!(sim.client.poll_timeout(), None);
}

// ----- under the machine checks -----

#[test]
fn reconnects_and_time_outs_keep_every_invariant_of_the_client_checks() {
    use machine_checks::{
        ClientInput, ClientOp, ClientRecord, ClientSetup, ConnectSpec, Delivery, Payload, Preset,
        Reply, Step, check_client_input, run_client,
    };
    let connect = |clean| ConnectSpec {
        client: 1,
        clean,
        keep_alive: 0,
        will: None,
        login: false,
    };
    let accepted = |session_present| {
        ClientOp::Peer(
            Reply::ConnAck(ConnAck::Accepted { session_present }),
            Delivery::Whole,
        )
    };
    for preset in [Preset::Mqtt311, Preset::AwsIot, Preset::AwsIot2025] {
        // Both AWS presets keep the one CONNECT per second quota.
        let aws = preset != Preset::Mqtt311;
        let mut input = ClientInput {
            setup: ClientSetup {
                preset,
                connack_timeout_ms: 5_000,
                pingresp_timeout_ms: 2_000,
                max_inflight: 4,
                manual_acks: false,
                max_packet_size: None,
                reconnect: Some((100, 5)),
                request_timeout_ms: Some(300),
                publish_timeout_ms: Some(300),
            },
            ops: vec![
                ClientOp::Connect(connect(false)),
                accepted(false),
                ClientOp::Subscribe(vec![(0, QoS::AtLeastOnce)]),
                ClientOp::Publish {
                    topic: 0,
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    payload: Payload(1),
                },
                ClientOp::Advance(Step::Millis(400), true),
                ClientOp::ConnectionLost,
                ClientOp::Advance(Step::Millis(0), true),
                ClientOp::Advance(Step::Seconds(2), true),
                ClientOp::ConnectionFailed,
                ClientOp::Advance(Step::Seconds(5), true),
                ClientOp::Connect(connect(false)),
                accepted(true),
                ClientOp::Advance(Step::Seconds(1), true),
                ClientOp::ConnectionLost,
                ClientOp::Disconnect,
                ClientOp::Advance(Step::Seconds(10), true),
            ],
        };
        if aws {
            // Sooner than a second after the first CONNECT: refused.
            input.ops[6] = ClientOp::Connect(connect(false));
        }
        check_client_input(&input);
        let log = run_client(&input);
        let count = |f: &dyn Fn(&ClientRecord) -> bool| log.iter().filter(|r| f(r)).count();
        let reconnects = count(&|r| matches!(r, ClientRecord::Action(Action::Reconnect)));
        let timeouts = count(&|r| {
            matches!(
                r,
                ClientRecord::Action(Action::Event(Event::TimedOut { .. }))
            )
        });
        let too_soon = count(&|r| {
            matches!(
                r,
                ClientRecord::Result(Err(ClientError::ConnectTooSoon { .. }))
            )
        });
        assert_eq!(reconnects, 2, "{preset:?}");
        assert_eq!(timeouts, 2, "{preset:?}");
        assert_eq!(too_soon, usize::from(aws), "{preset:?}");
    }
}
