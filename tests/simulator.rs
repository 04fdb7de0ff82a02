//! Clients and a broker together in virtual time (`support::sim`): lost connections,
//! takeover and broker restarts from the durable store, as scenarios and over random
//! schedules; and export, import, continue giving the same transcript as never
//! exporting.

mod support;

use bytes::Bytes;
use mqtt_sansio::{Profile, QoS};
use proptest::collection::vec;
use proptest::prelude::*;
use support::noise::noise;
use support::sim::{Op, Sim, check_sim, run_sim};

fn delivered(sim: &Sim, node: usize) -> Vec<Bytes> {
    sim.nodes[node]
        .delivered
        .iter()
        .map(|(p, _)| p.clone())
        .collect()
}

fn count(sim: &Sim, node: usize, payload: &str) -> usize {
    sim.nodes[node]
        .delivered
        .iter()
        .filter(|(p, _)| &p[..] == payload.as_bytes())
        .count()
}

/// A persistent subscriber `n0` on `a` at `qos` and a persistent publisher `n1`.
fn pair(profile: Profile, qos: QoS) -> Sim {
    let mut sim = Sim::new(profile, 2);
    sim.connect(0, false);
    sim.connect(1, false);
    sim.advance(100);
    sim.subscribe(0, "a", qos);
    sim.advance(100);
    sim
}

#[test]
fn a_subscriber_that_loses_its_connection_gets_the_message_on_resume_under_both_profiles() {
    for profile in [Profile::mqtt311(), Profile::aws_iot_core()] {
        let mut sim = pair(profile.clone(), QoS::AtLeastOnce);
        sim.publish(1, "a", QoS::AtLeastOnce);
        // The broker's PUBLISH is on its way when the link is cut.
        sim.advance(15);
        sim.cut(0);
        sim.advance(100);
        assert!(delivered(&sim, 0).is_empty(), "{}", sim.transcript_text());
        // Under AWS IoT Core the CONNECT waits a second after the last one.
        sim.connect(0, false);
        sim.advance(1_100);
        assert_eq!(count(&sim, 0, "n1:1"), 1, "{}", profile.name);
        let resend = sim
            .transcript
            .iter()
            .rev()
            .find(|l| l.contains("broker Send") && l.contains("Publish"))
            .expect("a resend");
        // 3.1.1 resends with DUP=1 and the same id; AWS IoT Core with a fresh id.
        let dup = resend.contains("dup: true");
        assert_eq!(dup, profile.supports_qos2(), "{resend}");
        sim.check_nothing_acknowledged_is_lost();
    }
}

#[test]
fn a_publisher_that_loses_its_connection_resends_and_is_acknowledged() {
    let mut sim = pair(Profile::mqtt311(), QoS::ExactlyOnce);
    sim.publish(1, "a", QoS::ExactlyOnce);
    // PUBLISH reached the broker, its PUBREC is lost with the link.
    sim.advance(15);
    sim.cut(1);
    sim.connect(1, false);
    sim.advance(200);
    assert_eq!(count(&sim, 0, "n1:1"), 1);
    sim.check_nothing_acknowledged_is_lost();
    // The resent PUBLISH (DUP=1) was acknowledged again and the flow completed.
    assert_eq!(sim.nodes[1].client.session().inflight(), 0);
    assert!(
        sim.transcript
            .iter()
            .any(|l| l.contains("n1 Event(Completed")),
        "{}",
        sim.transcript_text()
    );
}

#[test]
fn a_second_connection_with_the_same_client_id_takes_over_the_session() {
    let mut sim = pair(Profile::mqtt311(), QoS::AtLeastOnce);
    // `n0` connects again on a new link (its old link stays up): the broker closes the
    // old connection and resumes the session on the new one.
    let old = sim.nodes[0].conn.take().expect("connected");
    sim.nodes[0].client.connection_lost(sim.now);
    sim.connect(0, false);
    sim.advance(100);
    let closed = sim.transcript.iter().any(|l| {
        l.contains(&format!("Close {{ conn: ConnId({})", old.0)) && l.contains("Takeover")
    });
    assert!(closed, "{}", sim.transcript_text());
    sim.publish(1, "a", QoS::AtLeastOnce);
    sim.advance(100);
    assert_eq!(
        count(&sim, 0, "n1:1"),
        1,
        "the subscription moved with the session"
    );
}

#[test]
fn a_broker_restart_in_the_middle_of_qos1_flows_loses_nothing_acknowledged() {
    let mut sim = pair(Profile::mqtt311(), QoS::AtLeastOnce);
    for _ in 0..3 {
        sim.publish(1, "a", QoS::AtLeastOnce);
    }
    // Some PUBACKs are out, some PUBLISHes to the subscriber are on the wire.
    sim.advance(15);
    sim.restart_broker();
    sim.reconnect_all_and_settle();
    for m in ["n1:1", "n1:2", "n1:3"] {
        assert!(
            count(&sim, 0, m) >= 1,
            "{m} lost: {}",
            sim.transcript_text()
        );
    }
    sim.check_nothing_acknowledged_is_lost();
    assert_eq!(sim.restarts, 1);
}

#[test]
fn a_broker_restart_at_every_stage_of_qos2_flows_delivers_each_message_exactly_once() {
    // Restart after 0, 10, 15, …, 45 ms: before the PUBLISH arrives, after PUBREC to the
    // publisher, after PUBLISH to the subscriber, after its PUBREC, after PUBREL, …
    for at in (0..=45).step_by(5) {
        let mut sim = pair(Profile::mqtt311(), QoS::ExactlyOnce);
        sim.publish(1, "a", QoS::ExactlyOnce);
        sim.publish(1, "a", QoS::ExactlyOnce);
        sim.advance(at);
        sim.restart_broker();
        sim.reconnect_all_and_settle();
        for m in ["n1:1", "n1:2"] {
            assert_eq!(count(&sim, 0, m), 1, "{m}, restart at {at} ms");
        }
        sim.check_exactly_once();
        sim.check_nothing_acknowledged_is_lost();
        // The publisher's flows completed too.
        assert!(
            sim.nodes[1].client.session().inflight() == 0,
            "restart at {at} ms"
        );
    }
}

#[test]
fn a_restart_from_a_checkpoint_plus_changes_is_a_restart_from_the_current_state() {
    let mut sim = pair(Profile::mqtt311(), QoS::ExactlyOnce);
    sim.publish(1, "a", QoS::ExactlyOnce);
    sim.advance(15);
    sim.checkpoint();
    sim.publish(1, "a", QoS::AtLeastOnce);
    sim.advance(12);
    assert!(!sim.store.1.is_empty(), "changes since the checkpoint");
    sim.restart_broker();
    sim.reconnect_all_and_settle();
    // Exactly once at QoS 2, at least once at QoS 1.
    assert_eq!(count(&sim, 0, "n1:1"), 1);
    assert!(count(&sim, 0, "n1:2") >= 1);
}

#[test]
fn a_clean_connect_that_never_reaches_the_broker_keeps_qos2_ids_and_delivers_once() {
    let mut sim = pair(Profile::mqtt311(), QoS::ExactlyOnce);
    sim.publish(1, "a", QoS::ExactlyOnce);
    // The PUBLISH reaches the subscriber (delivered, PUBREC sent), then its link is cut
    // before the PUBREC arrives.
    sim.advance(20);
    assert_eq!(count(&sim, 0, "n1:1"), 1);
    sim.cut(0);
    // A clean-session CONNECT that is cut before it arrives: the broker keeps the
    // session, and so must the client.
    sim.connect(0, true);
    sim.cut(0);
    sim.connect(0, false);
    sim.advance(200);
    assert_eq!(count(&sim, 0, "n1:1"), 1, "{}", sim.transcript_text());
}

#[test]
fn a_resubscribe_at_qos0_whose_suback_is_lost_leaves_nothing_owed_at_the_old_qos() {
    let mut sim = pair(Profile::mqtt311(), QoS::AtLeastOnce);
    sim.subscribe(0, "a", QoS::AtMostOnce);
    // The SUBSCRIBE reached the broker (which now grants QoS 0); its SUBACK is lost.
    sim.advance(15);
    sim.cut(0);
    sim.publish(1, "a", QoS::AtLeastOnce);
    sim.advance(100);
    sim.connect(0, false);
    sim.advance(100);
    // Offline and subscribed at QoS 0: the broker rightly kept nothing for n0.
    assert_eq!(count(&sim, 0, "n1:1"), 0, "{}", sim.transcript_text());
    sim.check_nothing_acknowledged_is_lost();
}

#[test]
fn pseudo_random_schedules_restart_the_broker_and_check_qos1_and_qos2_deliveries() {
    let (mut restarts, mut checked, mut qos2) = (0, 0, 0);
    for seed in 0..64 {
        let sim = run_sim(&noise(seed, 1024), false);
        restarts += sim.restarts;
        checked += sim.check_nothing_acknowledged_is_lost();
        qos2 += sim
            .nodes
            .iter()
            .flat_map(|n| &n.delivered)
            .filter(|(_, q)| *q == QoS::ExactlyOnce)
            .count();
    }
    // The schedules reach what the invariants are about.
    assert!(
        restarts > 64 && checked > 64 && qos2 > 16,
        "{restarts} {checked} {qos2}"
    );
}

/// The instants (ms) at which node `name` asked to be reconnected.
fn reconnects(sim: &Sim, name: &str) -> Vec<u64> {
    let tag = format!(" {name} Reconnect");
    sim.transcript
        .iter()
        .filter(|l| l.ends_with(&tag))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_cut_subscriber_reconnects_by_itself_after_the_backoff_and_gets_what_it_missed() {
    for profile in [Profile::mqtt311(), Profile::aws_iot_core()] {
        let mut sim = Sim::with_reconnect(profile.clone(), 2, true);
        sim.connect(0, false);
        sim.connect(1, false);
        sim.advance(100);
        sim.subscribe(0, "a", QoS::AtLeastOnce);
        sim.advance(100);
        sim.publish(1, "a", QoS::AtLeastOnce);
        sim.advance(15);
        sim.cut(0);
        // Within the first delay's lower half nothing is asked yet.
        sim.advance(200);
        assert!(
            reconnects(&sim, "n0").is_empty(),
            "{}",
            sim.transcript_text()
        );
        assert_eq!(count(&sim, 0, "n1:1"), 0);
        sim.advance(2_000);
        let asked = reconnects(&sim, "n0");
        assert_eq!(asked.len(), 1, "{}", sim.transcript_text());
        // The first delay is 250 to 500 ms; AWS IoT Core also keeps a second after the
        // last CONNECT (at 0 ms).
        let cut_at = 215;
        assert!(asked[0] >= cut_at + 250 && asked[0] <= cut_at + 500 + 1_000);
        if !profile.supports_qos2() {
            assert!(asked[0] >= 1_000);
        }
        assert_eq!(count(&sim, 0, "n1:1"), 1, "{}", profile.name);
        sim.check_nothing_acknowledged_is_lost();
    }
}

#[test]
fn after_a_broker_restart_every_client_reconnects_by_itself_and_nothing_acknowledged_is_lost() {
    let mut sim = Sim::with_reconnect(Profile::mqtt311(), 2, true);
    sim.connect(0, false);
    sim.connect(1, false);
    sim.advance(100);
    sim.subscribe(0, "a", QoS::ExactlyOnce);
    sim.advance(100);
    for _ in 0..3 {
        sim.publish(1, "a", QoS::ExactlyOnce);
    }
    sim.advance(15);
    sim.restart_broker();
    sim.advance(5_000);
    assert_eq!(reconnects(&sim, "n0").len(), 1);
    assert_eq!(reconnects(&sim, "n1").len(), 1);
    for m in ["n1:1", "n1:2", "n1:3"] {
        assert_eq!(count(&sim, 0, m), 1, "{m}: {}", sim.transcript_text());
    }
    sim.check_exactly_once();
    sim.check_nothing_acknowledged_is_lost();
}

#[test]
fn pseudo_random_schedules_with_clients_that_reconnect_by_themselves_lose_nothing() {
    let mut asked = 0;
    for seed in 0..32 {
        let sim = run_sim(&noise(seed, 1024), true);
        asked += sim
            .transcript
            .iter()
            .filter(|l| l.ends_with(" Reconnect"))
            .count();
    }
    assert!(asked > 32, "{asked} reconnects asked");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random schedules: connects (clean or not), publishes and subscribes at every
    /// QoS, cut links, clean disconnects, broker restarts, checkpoints, client
    /// re-imports and waits. After every step the store describes the broker and no
    /// QoS 2 message arrived twice; at the end nothing acknowledged is lost.
    #[test]
    fn random_schedules_keep_the_store_exact_deliver_qos2_once_and_lose_nothing_acknowledged(
        data in vec(any::<u8>(), 0..1024)
    ) {
        check_sim(&data);
    }

    /// Export, import, continue: a broker rebuilt from its export (through its bytes)
    /// at a moment without connections, and clients rebuilt from theirs, go on exactly
    /// as the originals would have, action for action.
    #[test]
    fn export_import_continue_gives_the_same_transcript_as_never_exporting(
        aws in any::<bool>(),
        before in vec(op(), 0..40),
        after in vec(op(), 0..40),
    ) {
        let profile = if aws { Profile::aws_iot_core() } else { Profile::mqtt311() };
        let run = |reimport: bool| {
            let mut sim = Sim::new(profile.clone(), 3);
            for op in &before {
                sim.apply(*op);
            }
            sim.cut_all();
            if reimport {
                sim.restart_broker();
                for i in 0..3 {
                    sim.reimport_client(i);
                }
            }
            let from = sim.transcript.len();
            for op in &after {
                sim.apply(*op);
            }
            sim.reconnect_all_and_settle();
            sim.transcript[from..].to_vec()
        };
        let plain = run(false);
        let reimported = run(true);
        prop_assert_eq!(plain, reimported);
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, any::<bool>()).prop_map(|(node, clean)| Op::Connect { node, clean }),
        (0u8..3, 0u8..3, 0u8..3).prop_map(|(node, topic, qos)| Op::Publish { node, topic, qos }),
        (0u8..3, 0u8..4, 0u8..3).prop_map(|(node, filter, qos)| Op::Subscribe {
            node,
            filter,
            qos
        }),
        (0u8..3).prop_map(|node| Op::Cut { node }),
        (0u8..3).prop_map(|node| Op::Disconnect { node }),
        (0u16..200).prop_map(|ms| Op::Advance { ms }),
    ]
}
