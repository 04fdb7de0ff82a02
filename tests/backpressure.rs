//! Overload without silent loss: the queue-full policy (drop or back-pressure), the
//! bounds in bytes per session and over every session, and the throttling of
//! publishers (paused, or their acknowledgements held) in simulated time.

mod support;

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;
use mqtt_sansio::broker::{Action, BrokerConfig, BrokerEvent, DropReason, QueueFullPolicy};
use mqtt_sansio::server::{CloseReason, ServerConfig};
use mqtt_sansio::{Packet, Profile, QoS};
use support::harness::{Harness, connect, payloads, pid, publish, publishes};

/// An `mqtt311` broker with these bounds and policy.
fn broker(max_inflight: usize, max_queued: usize, policy: QueueFullPolicy) -> Harness {
    Harness::with_config(Profile::mqtt311(), config(max_inflight, max_queued, policy))
}

/// PUBLISHes on `conn` to `t` at `qos`, one per id, each with its id as payload.
fn publish_all(h: &mut Harness, conn: u64, qos: QoS, ids: std::ops::RangeInclusive<u16>) {
    for i in ids {
        h.send(conn, publish("t", qos, i, &i.to_string()));
    }
}

fn config(max_inflight: usize, max_queued: usize, policy: QueueFullPolicy) -> BrokerConfig {
    BrokerConfig {
        connection: ServerConfig {
            max_inflight,
            max_queued,
            ..ServerConfig::default()
        },
        queue_full: policy,
        ..BrokerConfig::default()
    }
}

/// The drops reported so far, as (client, payload, reason).
fn drops(h: &Harness) -> Vec<(String, String, DropReason)> {
    h.events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Dropped {
                client_id,
                message,
                reason,
            } => Some((
                client_id.as_str().to_string(),
                String::from_utf8_lossy(&message.payload).into_owned(),
                *reason,
            )),
            _ => None,
        })
        .collect()
}

fn pauses(h: &Harness) -> usize {
    h.log
        .iter()
        .filter(|a| matches!(a, Action::Pause { .. }))
        .count()
}

/// A subscriber on `conn` as `client` to `filter` at QoS 1, with no keep-alive.
fn subscriber(h: &mut Harness, conn: u64, client: &str, filter: &str, clean: bool) {
    h.connect_with(conn, connect(client, clean, 0, None));
    h.subscribe(conn, 1, &[(filter, QoS::AtLeastOnce)]);
}

/// The subscriber on `conn` acknowledges every QoS 1 PUBLISH it got; their payloads.
fn ack_all(h: &mut Harness, conn: u64) -> Vec<String> {
    let got = h.take(conn);
    for p in publishes(&got) {
        if let Some(id) = p.qos.packet_id() {
            h.send(conn, Packet::PubAck(id));
        }
    }
    payloads(&got)
}

#[test]
fn under_drop_a_full_queue_drops_and_reports_each_message_and_pauses_nobody() {
    let mut h = Harness::with_config(Profile::mqtt311(), config(1, 2, QueueFullPolicy::Drop));
    subscriber(&mut h, 1, "s", "t", true);
    h.connect(2, "p", true);
    publish_all(&mut h, 2, QoS::AtLeastOnce, 1..=5);
    let reasons: Vec<(String, DropReason)> = drops(&h).into_iter().map(|d| (d.1, d.2)).collect();
    assert_eq!(
        reasons,
        [
            ("4".to_string(), DropReason::QueueFull),
            ("5".to_string(), DropReason::QueueFull)
        ]
    );
    assert_eq!(pauses(&h), 0);
    // 2 queued ("2", "3"), 2 bytes each; summed when asked for (no byte bound here).
    assert_eq!(h.broker.queued_bytes(), 4);
    // Every publish is acknowledged at once.
    let acks = h
        .take(2)
        .iter()
        .filter(|p| matches!(p, Packet::PubAck(_)))
        .count();
    assert_eq!(acks, 5);
}

#[test]
fn under_backpressure_the_publisher_over_a_full_queue_is_paused_until_half_of_it_drains() {
    let mut h = broker(1, 4, QueueFullPolicy::Backpressure);
    subscriber(&mut h, 1, "s", "t", true);
    h.connect(2, "p", true);
    // 1 in flight, 2..=5 queued: the bound.
    publish_all(&mut h, 2, QoS::AtLeastOnce, 1..=5);
    assert!(h.paused.is_empty());
    // One more: admitted beyond the bound, and its publisher paused.
    h.send(2, publish("t", QoS::AtLeastOnce, 6, "6"));
    assert!(h.paused.contains(&2));
    assert_eq!(h.broker.session("s").map(|s| s.queued()), Some(5));
    assert!(h.broker.is_paused(mqtt_sansio::broker::ConnId(2)));
    // A paused publisher's acknowledgements are not held back.
    let acks = h
        .take(2)
        .iter()
        .filter(|p| matches!(p, Packet::PubAck(_)))
        .count();
    assert_eq!(acks, 6);
    // Resumed at the low-water mark, half the bound (2 queued), not at bound - 1.
    let mut got = Vec::new();
    for queued_after in [4, 3] {
        got.extend(ack_all(&mut h, 1));
        assert_eq!(
            h.broker.session("s").map(|s| s.queued()),
            Some(queued_after)
        );
        assert!(
            h.paused.contains(&2),
            "still paused at {queued_after} queued"
        );
    }
    got.extend(ack_all(&mut h, 1));
    assert_eq!(h.broker.session("s").map(|s| s.queued()), Some(2));
    assert!(h.paused.is_empty());
    while got.len() < 6 {
        got.extend(ack_all(&mut h, 1));
    }
    assert_eq!(got, ["1", "2", "3", "4", "5", "6"]);
    assert!(drops(&h).is_empty());
}

#[test]
fn a_paused_connection_is_not_closed_by_its_keep_alive_which_restarts_at_the_resume() {
    let mut h = broker(1, 2, QueueFullPolicy::Backpressure);
    subscriber(&mut h, 1, "s", "t", true);
    // Keep-alive 10 s: closed after 15 s of silence.
    h.connect_with(2, connect("p", true, 10, None));
    publish_all(&mut h, 2, QoS::AtLeastOnce, 1..=4);
    assert!(h.paused.contains(&2));
    // Its PINGREQs wait unread: a minute of silence does not close it.
    h.advance(60_000);
    assert!(!h.is_closed(2));
    // Drained: resumed, and the keep-alive runs again from now.
    while !h.paused.is_empty() {
        ack_all(&mut h, 1);
    }
    h.advance(14_999);
    assert!(!h.is_closed(2));
    h.advance(2);
    assert_eq!(h.closed.get(&2), Some(&CloseReason::KeepAliveTimeout));
}

#[test]
fn qos0_is_never_queued_so_it_neither_overflows_nor_pauses_under_either_policy() {
    for policy in [QueueFullPolicy::Drop, QueueFullPolicy::Backpressure] {
        let mut h = Harness::with_config(Profile::mqtt311(), config(1, 1, policy));
        subscriber(&mut h, 1, "s", "t", true);
        h.connect(2, "p", true);
        // Window and queue full of QoS 1.
        h.send(2, publish("t", QoS::AtLeastOnce, 1, "a"));
        h.send(2, publish("t", QoS::AtLeastOnce, 2, "b"));
        h.take(1);
        for i in 0..10 {
            h.send(2, publish("t", QoS::AtMostOnce, 0, &format!("q{i}")));
        }
        assert_eq!(payloads(&h.take(1)).len(), 10, "{policy:?}");
        assert!(drops(&h).is_empty(), "{policy:?}");
        assert_eq!(pauses(&h), 0, "{policy:?}");
    }
}

#[test]
fn offline_sessions_drop_beyond_their_bound_under_backpressure_and_pause_nobody() {
    let mut h = broker(1, 2, QueueFullPolicy::Backpressure);
    subscriber(&mut h, 1, "s", "t", false);
    h.drop_conn(1);
    h.connect(2, "p", true);
    publish_all(&mut h, 2, QoS::AtLeastOnce, 1..=4);
    assert_eq!(pauses(&h), 0);
    let dropped: Vec<(String, DropReason)> = drops(&h).into_iter().map(|d| (d.1, d.2)).collect();
    assert_eq!(
        dropped,
        [
            ("3".to_string(), DropReason::QueueFull),
            ("4".to_string(), DropReason::QueueFull)
        ]
    );
    h.connect_with(3, connect("s", false, 0, None));
    assert_eq!(payloads(&h.take(3)), ["1"]);
}

#[test]
fn a_subscriber_that_goes_offline_releases_the_publishers_waiting_for_it() {
    let mut h = broker(1, 2, QueueFullPolicy::Backpressure);
    subscriber(&mut h, 1, "s", "t", false);
    h.connect(2, "p", true);
    publish_all(&mut h, 2, QoS::AtLeastOnce, 1..=4);
    assert!(h.paused.contains(&2));
    h.drop_conn(1);
    assert!(h.paused.is_empty());
    // What was admitted beyond the bound stays in the stored session: nothing lost.
    assert_eq!(h.broker.session("s").map(|s| s.queued()), Some(3));
    h.connect_with(3, connect("s", false, 0, None));
    let mut got = Vec::new();
    while got.len() < 4 {
        got.extend(ack_all(&mut h, 3));
    }
    assert_eq!(got, ["1", "2", "3", "4"]);
    assert!(drops(&h).is_empty());
}

#[test]
fn a_publisher_with_deliveries_outstanding_is_read_on_with_its_acknowledgements_held() {
    let mut h = broker(1, 2, QueueFullPolicy::Backpressure);
    // The publisher subscribes to its own topic: its own queue is the full one.
    subscriber(&mut h, 1, "self", "t", true);
    publish_all(&mut h, 1, QoS::AtLeastOnce, 1..=3);
    let acks = |packets: &[Packet<Bytes>]| -> Vec<u16> {
        packets
            .iter()
            .filter_map(|p| match p {
                Packet::PubAck(id) => Some(id.get()),
                _ => None,
            })
            .collect()
    };
    let mut got = h.take(1);
    assert_eq!(acks(&got), [1, 2, 3]);
    // Beyond the bound of its own queue.
    h.send(1, publish("t", QoS::AtLeastOnce, 4, "4"));
    h.send(1, publish("t", QoS::AtLeastOnce, 5, "5"));
    // Not paused: it must be read for its own PUBACKs to drain its queue.
    assert!(h.paused.is_empty());
    got.extend(h.take(1));
    assert_eq!(acks(&got), [1, 2, 3], "the PUBACKs of 4 and 5 are held");
    // It acknowledges what it receives; at 1 queued (half of 2) the held PUBACKs go,
    // in order.
    let (mut seen, mut released) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        for p in publishes(&got) {
            seen.push(String::from_utf8_lossy(&p.payload).into_owned());
            if let Some(id) = p.qos.packet_id() {
                h.send(1, Packet::PubAck(id));
            }
        }
        got = h.take(1);
        released.extend(acks(&got));
    }
    assert_eq!(released, [4, 5]);
    assert_eq!(seen, ["1", "2", "3", "4", "5"]);
    assert!(drops(&h).is_empty());
}

#[test]
fn a_held_qos2_publisher_gets_its_pubrec_and_its_pubcomp_is_held() {
    let mut h = broker(1, 1, QueueFullPolicy::Backpressure);
    // Subscribed to its own topic at QoS 2: 1 in flight, 1 queued, then one beyond.
    h.connect_with(1, connect("self", true, 0, None));
    h.subscribe(1, 1, &[("t", QoS::ExactlyOnce)]);
    publish_all(&mut h, 1, QoS::ExactlyOnce, 1..=3);
    let kinds = |packets: &[Packet<Bytes>]| -> Vec<(u8, u16)> {
        packets
            .iter()
            .filter_map(|p| match p {
                Packet::PubRec(id) => Some((5, id.get())),
                Packet::PubComp(id) => Some((7, id.get())),
                _ => None,
            })
            .collect()
    };
    let got = h.take(1);
    assert_eq!(kinds(&got), [(5, 1), (5, 2), (5, 3)]);
    // The PUBREL of the message beyond the bound frees its inbound id; its PUBCOMP is
    // held while the queue is over.
    h.send(1, Packet::PubRel(pid(3)));
    assert!(kinds(&h.take(1)).is_empty());
    assert!(h.paused.is_empty());
    assert_eq!(
        h.broker
            .session("self")
            .map(|s| s.session().inbound_qos2_len()),
        Some(2)
    );
    // The deliveries complete (PUBREC, PUBCOMP from the client) one by one: once the
    // queue is down to 0 (half of 1), the held PUBCOMP goes out.
    let mut delivered = publishes(&got);
    let mut sent = Vec::new();
    for round in 0..2 {
        assert!(sent.is_empty(), "released early, at round {round}");
        let id = delivered[0].qos.packet_id().expect("QoS 2");
        h.send(1, Packet::PubRec(id));
        h.send(1, Packet::PubComp(id));
        let got = h.take(1);
        sent = kinds(&got);
        delivered = publishes(&got);
    }
    assert_eq!(sent, [(7, 3)]);
    assert_eq!(h.broker.session("self").map(|s| s.queued()), Some(0));
    assert!(drops(&h).is_empty());
}

/// A client in the closed-loop simulation: it acknowledges every delivery and keeps
/// up to `window` of its own QoS 1 messages unacknowledged; what it writes waits in
/// `outbound` while the broker does not read it.
struct Client {
    conn: u64,
    topic: &'static str,
    to_send: VecDeque<String>,
    window: usize,
    unacked: BTreeSet<u16>,
    next_id: u16,
    outbound: VecDeque<Packet<Bytes>>,
    received: Vec<String>,
}

impl Client {
    fn new(conn: u64, topic: &'static str, messages: usize, window: usize) -> Client {
        Client {
            conn,
            topic,
            to_send: (0..messages).map(|i| format!("{conn}-{i}")).collect(),
            window,
            unacked: BTreeSet::new(),
            next_id: 0,
            outbound: VecDeque::new(),
            received: Vec::new(),
        }
    }

    fn done(&self) -> bool {
        self.to_send.is_empty() && self.unacked.is_empty() && self.outbound.is_empty()
    }
}

/// Runs `clients` against the broker until every message is sent and acknowledged
/// and every delivery to `sessions` is acknowledged, handing the broker one packet at a time and none from a paused connection; fails
/// if the clients stop making progress (a deadlock). The most messages queued in any
/// session at any point.
fn run(h: &mut Harness, clients: &mut [Client], sessions: &[&str]) -> usize {
    let mut most = 0;
    let mut idle = 0;
    let outstanding = |h: &Harness| {
        sessions.iter().any(|s| {
            h.broker
                .session(s)
                .is_some_and(|s| s.inflight() + s.queued() > 0)
        })
    };
    while clients.iter().any(|c| !c.done()) || outstanding(h) {
        let mut progress = false;
        for c in clients.iter_mut() {
            for p in h.take(c.conn) {
                match p {
                    Packet::Publish(p) => {
                        c.received
                            .push(String::from_utf8_lossy(&p.payload).into_owned());
                        if let Some(id) = p.qos.packet_id() {
                            c.outbound.push_back(Packet::PubAck(id));
                        }
                    }
                    Packet::PubAck(id) => assert!(c.unacked.remove(&id.get())),
                    other => panic!("unexpected {other:?}"),
                }
                progress = true;
            }
            while c.unacked.len() < c.window {
                let Some(payload) = c.to_send.pop_front() else {
                    break;
                };
                c.next_id += 1;
                c.unacked.insert(c.next_id);
                let p = publish(c.topic, QoS::AtLeastOnce, c.next_id, &payload);
                c.outbound.push_back(p.into());
            }
            if !h.paused.contains(&c.conn) {
                if let Some(p) = c.outbound.pop_front() {
                    h.send(c.conn, p);
                    progress = true;
                }
            }
            for s in sessions {
                most = most.max(h.broker.session(s).map_or(0, |s| s.queued()));
            }
        }
        idle = if progress { 0 } else { idle + 1 };
        assert!(idle < 3, "no progress: paused {:?}", h.paused);
    }
    most
}

#[test]
fn two_connections_publishing_into_each_others_full_queues_do_not_deadlock() {
    let mut h = broker(2, 3, QueueFullPolicy::Backpressure);
    subscriber(&mut h, 1, "a", "to/a", true);
    subscriber(&mut h, 2, "b", "to/b", true);
    let mut clients = [
        Client::new(1, "to/b", 200, 8),
        Client::new(2, "to/a", 200, 8),
    ];
    let most = run(&mut h, &mut clients, &["a", "b"]);
    assert!(most > 3, "the queues went beyond their bound ({most})");
    assert_eq!(clients[0].received.len(), 200);
    assert_eq!(clients[1].received.len(), 200);
    assert_eq!(
        clients[0].received,
        (0..200).map(|i| format!("2-{i}")).collect::<Vec<_>>()
    );
    assert!(drops(&h).is_empty());
    assert!(h.paused.is_empty());
}

/// Two subscribers to `burst` (window 2, `max_queued`) and `publishers` clients, each
/// to publish 50 messages there with `window` in flight.
fn burst(
    max_queued: usize,
    publishers: u64,
    window: usize,
    policy: QueueFullPolicy,
) -> (Harness, Vec<Client>) {
    let mut h = broker(2, max_queued, policy);
    subscriber(&mut h, 1, "s1", "burst", true);
    subscriber(&mut h, 2, "s2", "burst", true);
    let mut clients = vec![Client::new(1, "none", 0, 1), Client::new(2, "none", 0, 1)];
    for p in 0..publishers {
        let conn = 10 + p;
        h.connect(conn, &format!("p{p}"), true);
        clients.push(Client::new(conn, "burst", 50, window));
    }
    (h, clients)
}

#[test]
fn a_burst_from_many_publishers_loses_nothing_and_overshoots_by_what_was_read() {
    let (max_queued, publishers, window) = (10, 6, 4);
    let (mut h, mut clients) = burst(
        max_queued,
        publishers,
        window,
        QueueFullPolicy::Backpressure,
    );
    let most = run(&mut h, &mut clients, &["s1", "s2"]);
    for s in &clients[..2] {
        assert_eq!(s.received.len(), 50 * publishers as usize);
        let distinct: BTreeSet<&String> = s.received.iter().collect();
        assert_eq!(distinct.len(), s.received.len());
    }
    assert!(drops(&h).is_empty());
    assert!(pauses(&h) > 0);
    // A paused publisher was handed one packet at a time: beyond the bound by at most
    // one message per publisher.
    assert!(most > max_queued, "the burst reached the bound ({most})");
    assert!(
        most <= max_queued + publishers as usize,
        "{most} queued, bound {max_queued}"
    );
    // The same burst under `drop` loses messages, each reported.
    let (mut h, mut clients) = burst(max_queued, publishers, window, QueueFullPolicy::Drop);
    run(&mut h, &mut clients, &["s1", "s2"]);
    let received: usize = clients[..2].iter().map(|c| c.received.len()).sum();
    let dropped = drops(&h).len();
    assert!(dropped > 0);
    assert_eq!(received + dropped, 2 * 50 * publishers as usize);
}

fn byte_config(
    per_session: Option<usize>,
    total: Option<usize>,
    policy: QueueFullPolicy,
) -> BrokerConfig {
    BrokerConfig {
        connection: ServerConfig {
            max_inflight: 1,
            max_queued_bytes: per_session,
            ..ServerConfig::default()
        },
        max_queued_bytes_total: total,
        queue_full: policy,
        ..BrokerConfig::default()
    }
}

#[test]
fn under_drop_the_byte_bounds_drop_and_report_each_with_its_own_reason() {
    // Topic "t" + 9-byte payloads: 10 bytes a message.
    let mut h = Harness::with_config(
        Profile::mqtt311(),
        byte_config(Some(30), Some(50), QueueFullPolicy::Drop),
    );
    subscriber(&mut h, 1, "s1", "t", true);
    subscriber(&mut h, 2, "s2", "t", true);
    h.connect(3, "p", true);
    for i in 1..=5 {
        h.send(
            3,
            publish("t", QoS::AtLeastOnce, i, &format!("message{i:02}")),
        );
    }
    // Each session: 1 in flight, up to 3 queued (30 bytes); the total budget of 50
    // bytes is reached first, at s1's third queued message.
    let dropped: Vec<(String, String, DropReason)> = drops(&h);
    assert_eq!(
        dropped,
        [
            ("s2".into(), "message04".into(), DropReason::BudgetFull),
            ("s1".into(), "message05".into(), DropReason::QueueBytesFull),
            ("s2".into(), "message05".into(), DropReason::BudgetFull),
        ]
    );
    assert_eq!(h.broker.queued_bytes(), 50);
    let mut h = Harness::with_config(
        Profile::mqtt311(),
        byte_config(Some(30), None, QueueFullPolicy::Drop),
    );
    subscriber(&mut h, 1, "s1", "t", true);
    h.connect(3, "p", true);
    for i in 1..=5 {
        h.send(
            3,
            publish("t", QoS::AtLeastOnce, i, &format!("message{i:02}")),
        );
    }
    let dropped: Vec<(String, DropReason)> = drops(&h).into_iter().map(|d| (d.1, d.2)).collect();
    assert_eq!(dropped, [("message05".into(), DropReason::QueueBytesFull)]);
    assert_eq!(pauses(&h), 0);
}

#[test]
fn under_backpressure_the_byte_bounds_throttle_and_release_at_half() {
    for (per_session, total) in [(Some(40), None), (None, Some(40))] {
        let mut h = Harness::with_config(
            Profile::mqtt311(),
            byte_config(per_session, total, QueueFullPolicy::Backpressure),
        );
        subscriber(&mut h, 1, "s", "t", true);
        h.connect(2, "p", true);
        // 1 in flight, 4 queued = 40 bytes; the sixth goes beyond.
        for i in 1..=6 {
            assert!(h.paused.is_empty(), "{per_session:?} {total:?}");
            h.send(
                2,
                publish("t", QoS::AtLeastOnce, i, &format!("message{i:02}")),
            );
        }
        assert!(h.paused.contains(&2));
        assert_eq!(h.broker.queued_bytes(), 50);
        let mut got = Vec::new();
        // 50 → 40 → 30 → 20 bytes (half the bound): resumed.
        for _ in 0..2 {
            got.extend(ack_all(&mut h, 1));
            assert!(h.paused.contains(&2));
        }
        got.extend(ack_all(&mut h, 1));
        assert_eq!(h.broker.queued_bytes(), 20);
        assert!(h.paused.is_empty());
        while got.len() < 6 {
            got.extend(ack_all(&mut h, 1));
        }
        assert_eq!(got.len(), 6);
        assert!(drops(&h).is_empty());
        assert_eq!(h.broker.queued_bytes(), 0);
    }
}

#[test]
fn the_total_counts_stored_sessions_and_forgets_discarded_ones() {
    let mut h = Harness::with_config(
        Profile::mqtt311(),
        byte_config(None, Some(1000), QueueFullPolicy::Drop),
    );
    subscriber(&mut h, 1, "s", "t", false);
    subscriber(&mut h, 2, "c", "t", true);
    h.connect(3, "p", true);
    for i in 1..=4 {
        h.send(
            3,
            publish("t", QoS::AtLeastOnce, i, &format!("message{i:02}")),
        );
    }
    // Two sessions, 3 queued each.
    assert_eq!(h.broker.queued_bytes(), 60);
    h.drop_conn(2);
    assert_eq!(h.broker.queued_bytes(), 30, "a clean session ends");
    h.drop_conn(1);
    assert_eq!(h.broker.queued_bytes(), 30, "a persistent one is stored");
    h.send(3, publish("t", QoS::AtLeastOnce, 5, "message05"));
    assert_eq!(h.broker.queued_bytes(), 40);
    // Resumed: the queue moves to the connection, and drains.
    h.connect_with(4, connect("s", false, 0, None));
    let mut got = Vec::new();
    while got.len() < 5 {
        got.extend(ack_all(&mut h, 4));
    }
    assert_eq!(h.broker.queued_bytes(), 0);
    // Stored again with messages, then discarded by a clean reconnect.
    h.drop_conn(4);
    for i in 6..=7 {
        h.send(
            3,
            publish("t", QoS::AtLeastOnce, i, &format!("message{i:02}")),
        );
    }
    assert_eq!(
        h.broker.queued_bytes(),
        20,
        "an offline session queues both"
    );
    h.connect_with(5, connect("s", true, 0, None));
    assert_eq!(h.broker.queued_bytes(), 0);
    assert_eq!(h.broker.session("s").map(|s| s.queued_bytes()), Some(0));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Clients that publish to one another (themselves included) under random bounds:
    /// under back-pressure every message arrives, in order per publisher, and nothing
    /// deadlocks; the bytes counted as queued come back to 0.
    #[test]
    fn under_backpressure_any_publishing_pattern_completes_without_loss(
        plan in proptest::collection::vec((0usize..4, 0usize..40, 1usize..8), 2..5),
        max_inflight in 1usize..4,
        max_queued in 1usize..6,
        per_session in proptest::option::of(10usize..60),
        total in proptest::option::of(10usize..120),
    ) {
        const TOPICS: [&str; 4] = ["to/0", "to/1", "to/2", "to/3"];
        let config = BrokerConfig {
            connection: ServerConfig {
                max_inflight,
                max_queued,
                max_queued_bytes: per_session,
                ..ServerConfig::default()
            },
            max_queued_bytes_total: total,
            queue_full: QueueFullPolicy::Backpressure,
            ..BrokerConfig::default()
        };
        let mut h = Harness::with_config(Profile::mqtt311(), config);
        let k = plan.len();
        let names: Vec<String> = (0..k).map(|i| format!("c{i}")).collect();
        for i in 0..k {
            subscriber(&mut h, i as u64 + 1, &names[i], TOPICS[i], true);
        }
        let mut clients: Vec<Client> = plan
            .iter()
            .enumerate()
            .map(|(i, &(to, messages, window))| {
                Client::new(i as u64 + 1, TOPICS[to % k], messages, window)
            })
            .collect();
        let sessions: Vec<&str> = names.iter().map(String::as_str).collect();
        run(&mut h, &mut clients, &sessions);
        for (i, c) in clients.iter().enumerate() {
            let expected: Vec<String> = plan
                .iter()
                .enumerate()
                .filter(|(_, (to, _, _))| to % k == i)
                .flat_map(|(j, &(_, messages, _))| {
                    (0..messages).map(move |m| format!("{}-{m}", j + 1))
                })
                .collect();
            let mut got = c.received.clone();
            got.sort_by_key(|p| {
                let (from, m) = p.split_once('-').unwrap_or_default();
                (from.parse::<usize>().unwrap_or(0), m.parse::<usize>().unwrap_or(0))
            });
            proptest::prop_assert_eq!(got, expected);
            // In order per publisher (MQTT-4.6.0-6).
            for j in 1..=k {
                let from: Vec<&String> = c
                    .received
                    .iter()
                    .filter(|p| p.starts_with(&format!("{j}-")))
                    .collect();
                let mut sorted = from.clone();
                sorted.sort_by_key(|p| p.split_once('-').map(|(_, m)| m.parse::<usize>().unwrap_or(0)));
                proptest::prop_assert_eq!(from, sorted);
            }
        }
        proptest::prop_assert!(drops(&h).is_empty());
        proptest::prop_assert!(h.paused.is_empty());
        proptest::prop_assert_eq!(h.broker.queued_bytes(), 0);
    }
}
