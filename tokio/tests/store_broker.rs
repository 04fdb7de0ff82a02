//! A broker's durable-state changes written to the store, one transaction per input,
//! read back as the broker's own export.

mod support;

use bytes::Bytes;
use mqtt_sansio::broker::Action;
use mqtt_sansio::packet::QosPid;
use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::{Broker, BrokerConfig, ConnId, Instant, Packet, Profile};
use mqtt_sansio_tokio::store::BrokerStore;
use proptest::prelude::*;
use support::TempDir;

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn connect(client: &str, clean: bool) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, b"MQTT");
    b.extend_from_slice(&[4, if clean { 2 } else { 0 }, 0, 60]);
    string(&mut b, client.as_bytes());
    frame(0x10, &b)
}

fn subscribe(id: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    string(&mut b, filter.as_bytes());
    b.push(qos);
    frame(0x82, &b)
}

fn publish(topic: &str, qos: u8, id: u16, retain: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, topic.as_bytes());
    if qos > 0 {
        b.extend_from_slice(&id.to_be_bytes());
    }
    b.extend_from_slice(payload);
    frame(0x30 | (qos << 1) | u8::from(retain), &b)
}

fn ack(kind: u8, id: u16) -> Vec<u8> {
    frame(kind, &id.to_be_bytes())
}

/// One input to the broker.
#[derive(Debug, Clone)]
enum Step {
    /// Subscriber `n` connects (clean session 0) and subscribes.
    Connect(u8),
    /// Subscriber `n`'s connection drops.
    Drop(u8),
    /// Subscriber `n` acknowledges what it received.
    Ack(u8),
    /// The publisher sends a message at this QoS, retained or not.
    Publish(u8, bool),
    /// The publisher releases its QoS 2 messages.
    Release,
    /// Subscriber `n` connects with clean session 1 (its stored session is discarded).
    Clean(u8),
    /// The changes noted so far are committed (in a rig that commits only then).
    Commit,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..3).prop_map(Step::Connect),
        (0u8..3).prop_map(Step::Drop),
        (0u8..3).prop_map(Step::Ack),
        (1u8..3, any::<bool>()).prop_map(|(q, r)| Step::Publish(q, r)),
        Just(Step::Release),
        (0u8..3).prop_map(Step::Clean),
    ]
}

/// The steps, with commits between some of them.
fn step_or_commit() -> impl Strategy<Value = Step> {
    prop_oneof![4 => step(), 1 => Just(Step::Commit)]
}

struct Rig {
    broker: Broker,
    store: BrokerStore,
    /// Per subscriber: its connection, if online, and what it must acknowledge.
    subs: [(Option<ConnId>, Vec<Packet<Bytes>>); 3],
    next_conn: u64,
    next_id: u16,
    now: u64,
    publisher: ConnId,
    unreleased: Vec<u16>,
    /// Commit only at [`Step::Commit`]: a batch spans many inputs, and changes that
    /// cancel within it write nothing.
    batched: bool,
}

impl Rig {
    fn conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    fn input(&mut self, conn: ConnId, bytes: &[u8]) {
        self.now += 10;
        self.broker
            .handle_bytes(Instant::from_millis(self.now), conn, bytes);
        self.drain();
    }

    /// Carries out the broker's actions: changes noted, and committed before any
    /// packet that follows them is "sent".
    fn drain(&mut self) {
        while let Some(a) = self.broker.poll_action() {
            match a {
                Action::Change(c) => self.store.note(&c),
                Action::Send { conn, packet } => {
                    if !self.batched && self.store.has_pending() {
                        self.store.commit().expect("commit");
                    }
                    if let Some(s) = self.subs.iter_mut().find(|s| s.0 == Some(conn)) {
                        s.1.push(packet);
                    }
                }
                Action::Close { conn, .. } => {
                    for s in &mut self.subs {
                        if s.0 == Some(conn) {
                            s.0 = None;
                            s.1.clear();
                        }
                    }
                }
                // No back-pressure here (the default `QueueFullPolicy::Drop`).
                Action::Event(_) | Action::Pause { .. } | Action::Resume { .. } => {}
            }
        }
        if !self.batched {
            self.store.commit().expect("commit");
        }
    }

    fn run(&mut self, step: &Step) {
        match *step {
            Step::Connect(n) | Step::Clean(n) => {
                let i = usize::from(n);
                if self.subs[i].0.is_some() {
                    return;
                }
                let conn = self.conn();
                self.broker
                    .open(Instant::from_millis(self.now), conn)
                    .unwrap();
                self.subs[i].0 = Some(conn);
                self.input(
                    conn,
                    &connect(&format!("sub-{n}"), matches!(step, Step::Clean(_))),
                );
                self.input(conn, &subscribe(1, &format!("t/{n}/#"), 2));
                self.input(conn, &subscribe(2, "all/#", 1 + n % 2));
            }
            Step::Drop(n) => {
                if let Some(conn) = self.subs[usize::from(n)].0.take() {
                    self.subs[usize::from(n)].1.clear();
                    self.now += 10;
                    self.broker
                        .connection_lost(Instant::from_millis(self.now), conn);
                    self.drain();
                }
            }
            Step::Ack(n) => {
                let i = usize::from(n);
                let Some(conn) = self.subs[i].0 else { return };
                let got = std::mem::take(&mut self.subs[i].1);
                for p in got {
                    let reply = match p {
                        Packet::Publish(p) => match p.qos {
                            QosPid::AtLeastOnce(id) => ack(0x40, id.get()),
                            QosPid::ExactlyOnce(id) => ack(0x50, id.get()),
                            QosPid::AtMostOnce => continue,
                        },
                        Packet::PubRel(id) => ack(0x70, id.get()),
                        _ => continue,
                    };
                    self.input(conn, &reply);
                }
            }
            Step::Publish(qos, retain) => {
                self.next_id = self.next_id % 1000 + 1;
                let id = self.next_id;
                let topic = format!("all/{}", id % 3);
                let p = publish(&topic, qos, id, retain, format!("m{id}").as_bytes());
                self.input(self.publisher, &p);
                if qos == 2 {
                    self.unreleased.push(id);
                }
            }
            Step::Release => {
                for id in std::mem::take(&mut self.unreleased) {
                    self.input(self.publisher, &ack(0x62, id));
                }
            }
            Step::Commit => self.store.commit().expect("commit"),
        }
    }
}

fn rig(dir: &TempDir) -> Rig {
    rig_with(dir, Profile::mqtt311())
}

fn rig_with(dir: &TempDir, profile: Profile) -> Rig {
    let mut config = BrokerConfig::from(ServerConfig {
        max_inflight: 2,
        report_changes: true,
        ..ServerConfig::default()
    });
    config.max_sessions = None;
    let (store, export) = BrokerStore::open(&dir.0, 0).unwrap();
    assert!(export.sessions.is_empty());
    let mut rig = Rig {
        broker: Broker::new(profile, config),
        store,
        subs: Default::default(),
        next_conn: 100,
        next_id: 0,
        now: 0,
        publisher: ConnId(1),
        unreleased: Vec::new(),
        batched: false,
    };
    rig.broker.open(Instant::from_millis(0), ConnId(1)).unwrap();
    rig.input(ConnId(1), &connect("publisher", false));
    rig
}

#[test]
fn every_kind_of_record_reads_back_as_the_brokers_export() {
    let dir = TempDir::new("store-broker");
    let mut rig = rig(&dir);
    use Step::*;
    for s in [
        Connect(0),
        Drop(0),
        Publish(2, true),
        Publish(1, true),
        Publish(2, false),
    ] {
        rig.run(&s);
    }
    for s in [
        Connect(1),
        Publish(1, false),
        Publish(1, false),
        Publish(2, false),
    ] {
        rig.run(&s);
    }
    let expected = rig.broker.export();
    drop(rig);
    let (_, export) = BrokerStore::open(&dir.0, 0).unwrap();
    assert_eq!(export, expected);
    let by = |c: &str| {
        export
            .sessions
            .iter()
            .find(|s| s.client_id.as_str() == c)
            .unwrap_or_else(|| panic!("{c} stored"))
    };
    let (sub0, sub1, publisher) = (by("sub-0"), by("sub-1"), by("publisher"));
    assert_eq!(sub0.session.outgoing.len() + sub0.queue.len(), 6);
    assert_eq!(sub0.subscriptions.len(), 2);
    assert_eq!(sub1.session.outgoing.len(), 2, "the inflight window");
    assert!(!sub1.queue.is_empty(), "behind the window");
    assert!(
        !publisher.session.inbound_qos2.is_empty(),
        "QoS 2 ids awaiting PUBREL"
    );
    assert!(!export.retained.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// After any inputs, the store read back is the broker's export.
    #[test]
    fn the_store_read_back_is_the_brokers_export(steps in proptest::collection::vec(step(), 1..40)) {
        let dir = TempDir::new("store-broker");
        let mut rig = rig(&dir);
        for s in &steps {
            rig.run(s);
        }
        let expected = rig.broker.export();
        drop(rig);
        let (_, export) = BrokerStore::open(&dir.0, 0).unwrap();
        prop_assert_eq!(export, expected);
    }

    /// The same when a batch spans many inputs: changes that cancel within a batch
    /// (a message queued, sent and acknowledged; a session made and discarded) leave
    /// what the broker holds.
    #[test]
    fn the_store_read_back_is_the_brokers_export_when_batches_span_many_inputs(
        steps in proptest::collection::vec(step_or_commit(), 1..60)
    ) {
        let dir = TempDir::new("store-broker");
        let mut rig = rig(&dir);
        rig.batched = true;
        for s in &steps {
            rig.run(s);
        }
        rig.store.commit().expect("commit");
        let expected = rig.broker.export();
        drop(rig);
        let (_, export) = BrokerStore::open(&dir.0, 0).unwrap();
        prop_assert_eq!(export, expected);
    }
}

#[test]
fn a_shared_groups_queue_reads_back_as_the_brokers_export() {
    let dir = TempDir::new("store-broker");
    let mut profile = Profile::mqtt311();
    profile.shared_subscriptions = true;
    let mut rig = rig_with(&dir, profile);
    let conn = rig.conn();
    rig.broker
        .open(Instant::from_millis(rig.now), conn)
        .unwrap();
    rig.input(conn, &connect("member", false));
    rig.input(conn, &subscribe(1, "$share/g/all/#", 1));
    rig.now += 10;
    rig.broker
        .connection_lost(Instant::from_millis(rig.now), conn);
    rig.drain();
    for _ in 0..3 {
        rig.run(&Step::Publish(1, false));
    }
    let expected = rig.broker.export();
    drop(rig);
    let (_, export) = BrokerStore::open(&dir.0, 0).unwrap();
    assert_eq!(export, expected);
    let queued: usize = export.shared.iter().map(|g| g.queue.len()).sum();
    let member = export
        .sessions
        .iter()
        .find(|s| s.client_id.as_str() == "member");
    let held = member.map_or(0, |s| s.queue.len() + s.session.outgoing.len());
    assert_eq!(
        queued + held,
        3,
        "every message kept, in the group or the member"
    );
}

#[test]
fn an_expiry_deadline_is_kept_in_unix_time_and_a_session_expired_meanwhile_is_gone() {
    let dir = TempDir::new("store-broker");
    let profile = Profile::mqtt311()
        .with_session_expiry(std::time::Duration::from_secs(3600))
        .expect("an hour is allowed");
    let mut rig = rig_with(&dir, profile.clone());
    rig.run(&Step::Connect(0));
    rig.run(&Step::Drop(0));
    let at = rig.now;
    drop(rig);
    // Read back by a driver whose instant 0 is the same Unix time: the same deadline.
    let (store, export) = BrokerStore::open(&dir.0, 0).unwrap();
    drop(store);
    let sub = export
        .sessions
        .iter()
        .find(|s| s.client_id.as_str() == "sub-0");
    assert_eq!(
        sub.and_then(|s| s.expires).map(|e| e.as_millis()),
        Some(at + 3_600_000)
    );
    // By a driver started two hours later: the deadline has passed; the broker drops it.
    let later = 2 * 3_600_000;
    let (_, export) = BrokerStore::open(&dir.0, later).unwrap();
    let config = BrokerConfig::from(ServerConfig::default());
    let mut broker = Broker::import(profile, config, export, Instant::from_millis(0)).unwrap();
    assert!(
        broker.session("sub-0").is_some(),
        "restored, with its deadline passed"
    );
    broker.handle_timeout(Instant::from_millis(1));
    assert!(
        broker.session("sub-0").is_none(),
        "expired while the broker was down"
    );
}
