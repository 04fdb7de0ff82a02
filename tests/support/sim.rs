//! A deterministic simulator: a few `Client`s and one `Broker` in virtual time, joined
//! by simulated links that delay every packet, can be cut, and a broker that restarts
//! from its durable store (the last export's bytes plus the changes reported since).
//!
//! Everything is an input: no clock, no thread, no randomness. The same operations give
//! the same transcript. With [`Sim::with_reconnect`] each client asks to be reconnected
//! after its backoff (seeded by its index) and gets a link, connecting as it last did.
//! `check_sim` runs arbitrary operations and checks, after every step, that the store describes the broker exactly and that no QoS 2 message reaches
//! a subscriber twice; at the end it reconnects everyone and checks that every message
//! a publisher saw acknowledged reached every persistent subscriber that held a
//! matching subscription when it was published.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use core::time::Duration;
use mqtt_sansio::broker::{Action as BrokerAction, Broker, BrokerConfig, ConnId};
use mqtt_sansio::client::{Action as ClientAction, Event};
use mqtt_sansio::reconnect::Backoff;
use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::session::{BrokerChange, BrokerExport, ClientExport};
use mqtt_sansio::{
    Client, ClientConfig, Connect, Instant, MqttString, PacketId, Profile, QoS, SubAckCode,
    TopicFilter, TopicName,
};

/// Topics the operations publish to, and filters they subscribe with.
const TOPICS: [&str; 3] = ["a", "b", "a/c"];
const FILTERS: [&str; 4] = ["a", "b", "#", "a/+"];

/// One step of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Node `node` connects (if it is not connected).
    Connect { node: u8, clean: bool },
    /// Node `node` publishes a fresh payload to `TOPICS[topic]`.
    Publish { node: u8, topic: u8, qos: u8 },
    /// Node `node` subscribes to `FILTERS[filter]`.
    Subscribe { node: u8, filter: u8, qos: u8 },
    /// The network cuts node `node`'s link: both ends see it lost, bytes in flight are
    /// gone.
    Cut { node: u8 },
    /// Node `node` disconnects cleanly.
    Disconnect { node: u8 },
    /// The broker stops and a new one starts from the store; every link is cut.
    RestartBroker,
    /// The store replaces its export by the broker's current one (a checkpoint).
    Checkpoint,
    /// Node `node`, disconnected, is rebuilt from its own export.
    ReimportClient { node: u8 },
    /// Virtual time passes.
    Advance { ms: u16 },
}

impl<'a> Arbitrary<'a> for Op {
    /// Weighted towards what makes messages flow: publishes, subscribes and time.
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Op> {
        let [kind, node, a, b] = <[u8; 4]>::arbitrary(u)?;
        Ok(match kind % 24 {
            0 | 1 => Op::Connect {
                node,
                clean: a % 4 == 0,
            },
            2..=7 => Op::Publish {
                node,
                topic: a,
                qos: b,
            },
            8 | 9 => Op::Subscribe {
                node,
                filter: a,
                qos: b,
            },
            10 => Op::Cut { node },
            11 => Op::Disconnect { node },
            12 => Op::RestartBroker,
            13 => Op::Checkpoint,
            14 => Op::ReimportClient { node },
            _ => Op::Advance {
                ms: u16::from_be_bytes([a, b]) % 300,
            },
        })
    }
}

/// A message a publisher issued, by its payload.
#[derive(Debug, Clone)]
struct Sent {
    topic: &'static str,
    qos: QoS,
    /// The nodes (and their session generation) with a matching acknowledged
    /// subscription when it was published, with the granted QoS.
    expected: Vec<(usize, u64, QoS)>,
    acked: bool,
}

/// One client and its end of a link.
pub struct Node {
    pub name: String,
    pub client: Client,
    /// The connection the node is on, as the broker names it.
    pub conn: Option<ConnId>,
    /// Payloads delivered to the application, with the QoS of the delivery.
    pub delivered: Vec<(Bytes, QoS)>,
    /// Subscriptions acknowledged in the current session generation: filter → QoS.
    subscriptions: BTreeMap<&'static str, QoS>,
    /// SUBSCRIBE ids awaiting SUBACK → filter and requested QoS.
    subscribing: BTreeMap<PacketId, &'static str>,
    /// Outgoing QoS 1/2 ids → payload.
    publishing: BTreeMap<PacketId, Bytes>,
    /// Incremented whenever the session may have been discarded.
    generation: u64,
    /// Whether the current (or last) connection asked for a clean session.
    clean: bool,
    published: u64,
    /// When the node last sent CONNECT, as the application remembers it (a client
    /// rebuilt from its export does not).
    last_connect: Option<Instant>,
    /// A connect waiting for the profile's CONNECT interval: when, and the clean flag.
    deferred: Option<(Instant, bool)>,
}

impl Node {
    fn session_discarded(&mut self) {
        self.generation += 1;
        self.subscriptions.clear();
    }

    /// The node's connection ended: a clean session ends with it (MQTT-3.1.2-6).
    fn link_ended(&mut self) {
        if self.clean {
            self.session_discarded();
        }
    }
}

/// Where a packet in flight goes.
#[derive(Debug, Clone)]
enum Delivery {
    ToBroker(ConnId, Bytes),
    ToClient(usize, ConnId, Bytes),
    /// The other end closed: the broker learns the connection is gone.
    LostAtBroker(ConnId),
    /// The other end closed: the client learns the connection is gone.
    LostAtClient(usize, ConnId),
}

/// The simulation.
pub struct Sim {
    pub profile: Profile,
    config: BrokerConfig,
    pub now: Instant,
    pub broker: Broker,
    /// The broker's durable store: the last export, encoded, and the changes since.
    pub store: (Vec<u8>, Vec<BrokerChange>),
    /// The store read back, kept current change by change.
    mirror: BrokerExport,
    pub nodes: Vec<Node>,
    pub latency: Duration,
    in_flight: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    next_conn: u64,
    sent: BTreeMap<Bytes, Sent>,
    /// Everything every machine did, one line each.
    pub transcript: Vec<String>,
    pub restarts: usize,
    /// Whether the clients reconnect by themselves.
    reconnecting: bool,
    /// Least time between two CONNECTs of a node (AWS IoT Core: one second).
    connect_interval: Duration,
    /// Nodes whose client asked to be reconnected, in order.
    redial: Vec<usize>,
}

/// Node `i`'s client settings; with `reconnecting`, a backoff seeded by `i`.
fn client_config(profile: &Profile, reconnecting: bool, i: usize) -> ClientConfig {
    ClientConfig {
        report_changes: true,
        reconnect: reconnecting.then(|| Backoff::for_profile(profile, i as u64)),
        ..ClientConfig::for_profile(profile)
    }
}

impl Sim {
    /// `nodes` clients named `n0`, `n1`, … and a broker, all under `profile`. The
    /// clients reconnect only when told to.
    pub fn new(profile: Profile, nodes: usize) -> Sim {
        Sim::with_reconnect(profile, nodes, false)
    }

    /// [`Sim::new`], with clients that reconnect by themselves when `reconnecting`.
    pub fn with_reconnect(profile: Profile, nodes: usize, reconnecting: bool) -> Sim {
        let connect_interval = Backoff::for_profile(&profile, 0).min_connect_interval;
        let config: BrokerConfig = ServerConfig {
            report_changes: true,
            ..ServerConfig::default()
        }
        .into();
        let broker = Broker::new(profile.clone(), config.clone());
        let store = (broker.export().to_bytes(), Vec::new());
        let mirror = broker.export();
        Sim {
            nodes: (0..nodes)
                .map(|i| Node {
                    name: format!("n{i}"),
                    client: Client::with_config(
                        profile.clone(),
                        client_config(&profile, reconnecting, i),
                    ),
                    conn: None,
                    delivered: Vec::new(),
                    subscriptions: BTreeMap::new(),
                    subscribing: BTreeMap::new(),
                    publishing: BTreeMap::new(),
                    generation: 0,
                    clean: false,
                    published: 0,
                    last_connect: None,
                    deferred: None,
                })
                .collect(),
            profile,
            config,
            now: Instant::ZERO,
            broker,
            store,
            mirror,
            latency: Duration::from_millis(10),
            in_flight: BTreeMap::new(),
            seq: 0,
            next_conn: 0,
            sent: BTreeMap::new(),
            transcript: Vec::new(),
            restarts: 0,
            reconnecting,
            redial: Vec::new(),
            connect_interval,
        }
    }

    fn schedule(&mut self, d: Delivery) {
        self.seq += 1;
        self.in_flight
            .insert((self.now + self.latency, self.seq), d);
    }

    fn node_of(&self, conn: ConnId) -> Option<usize> {
        self.nodes.iter().position(|n| n.conn == Some(conn))
    }

    /// Carries out the broker's actions.
    fn drain_broker(&mut self) {
        while let Some(a) = self.broker.poll_action() {
            self.transcript
                .push(format!("{} broker {a:?}", self.now.as_millis()));
            match a {
                BrokerAction::Send { conn, packet } => {
                    if let Some(i) = self.node_of(conn) {
                        let bytes = packet.to_bytes().expect("the broker sends valid packets");
                        self.schedule(Delivery::ToClient(i, conn, bytes));
                    }
                }
                BrokerAction::Close { conn, .. } => {
                    if let Some(i) = self.node_of(conn) {
                        self.schedule(Delivery::LostAtClient(i, conn));
                    }
                }
                BrokerAction::Change(c) => {
                    if let Err(e) = self.mirror.apply(&c) {
                        panic!("{c:?} does not apply to the store: {e}");
                    }
                    self.store.1.push(c);
                }
                // The simulated broker runs under the default `QueueFullPolicy::Drop`.
                BrokerAction::Event(_)
                | BrokerAction::Pause { .. }
                | BrokerAction::Resume { .. } => {}
            }
        }
    }

    /// Carries out node `i`'s actions.
    fn drain_client(&mut self, i: usize) {
        while let Some(a) = self.nodes[i].client.poll_action() {
            self.transcript.push(format!(
                "{} {} {a:?}",
                self.now.as_millis(),
                self.nodes[i].name
            ));
            let node = &mut self.nodes[i];
            match a {
                ClientAction::Send(p) => {
                    if let Some(conn) = node.conn {
                        let bytes = p.to_bytes().expect("the client sends valid packets");
                        self.schedule(Delivery::ToBroker(conn, bytes));
                    }
                }
                ClientAction::Deliver(p) => node.delivered.push((p.payload, p.qos.qos())),
                ClientAction::Close(_) => {
                    if let Some(conn) = node.conn.take() {
                        node.link_ended();
                        self.schedule(Delivery::LostAtBroker(conn));
                    }
                }
                ClientAction::Change(_) => {}
                ClientAction::Event(e) => self.on_event(i, e),
                ClientAction::Reconnect => self.redial.push(i),
            }
        }
    }

    fn on_event(&mut self, i: usize, e: Event) {
        let node = &mut self.nodes[i];
        match e {
            Event::Connected {
                session_present: false,
            } => node.session_discarded(),
            Event::Subscribed { packet_id, codes } => {
                if let Some(filter) = node.subscribing.remove(&packet_id) {
                    if let Some(SubAckCode::Granted(q)) = codes.first() {
                        node.subscriptions.insert(filter, *q);
                    }
                }
            }
            Event::Published(id) | Event::Completed(id) => {
                if let Some(payload) = node.publishing.remove(&id) {
                    if let Some(s) = self.sent.get_mut(&payload) {
                        s.acked = true;
                    }
                }
            }
            _ => {}
        }
    }

    /// Drains every machine until nothing is left to do at this instant.
    fn settle_now(&mut self) {
        self.drain_broker();
        for i in 0..self.nodes.len() {
            self.drain_client(i);
        }
        self.drain_broker();
    }

    /// Runs virtual time forward to `until`: deliveries and timers, in order.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_delivery = self.in_flight.keys().next().map(|(t, _)| *t);
            let next_timer = self
                .nodes
                .iter()
                .flat_map(|n| [n.client.poll_timeout(), n.deferred.map(|(t, _)| t)])
                .flatten()
                .chain(self.broker.poll_timeout())
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            while let Some(entry) = self.in_flight.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let d = entry.remove();
                self.deliver(d);
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i]
                    .client
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    self.nodes[i].client.handle_timeout(self.now);
                    self.drain_client(i);
                }
            }
            if self.broker.poll_timeout().is_some_and(|t| t <= self.now) {
                self.broker.handle_timeout(self.now);
                self.drain_broker();
            }
            // Links for the clients that asked, then the connects that waited.
            for i in std::mem::take(&mut self.redial) {
                let clean = self.nodes[i].clean;
                self.connect(i, clean);
            }
            for i in 0..self.nodes.len() {
                if let Some((at, clean)) = self.nodes[i].deferred {
                    if at <= self.now {
                        self.nodes[i].deferred = None;
                        self.connect(i, clean);
                    }
                }
            }
            self.check_store();
        }
        self.now = self.now.max(until);
    }

    fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::ToBroker(conn, bytes) => {
                self.broker.handle_bytes(self.now, conn, &bytes);
                self.drain_broker();
            }
            Delivery::ToClient(i, conn, bytes) => {
                if self.nodes[i].conn == Some(conn) {
                    // A closed client refuses bytes; the link is gone anyway.
                    let _ = self.nodes[i].client.handle_bytes(self.now, &bytes);
                    self.drain_client(i);
                }
            }
            Delivery::LostAtBroker(conn) => {
                self.broker.connection_lost(self.now, conn);
                self.drain_broker();
            }
            Delivery::LostAtClient(i, conn) => {
                if self.nodes[i].conn == Some(conn) {
                    self.nodes[i].conn = None;
                    self.nodes[i].link_ended();
                    self.nodes[i].client.connection_lost(self.now);
                    self.drain_client(i);
                }
            }
        }
    }

    /// Lets the links and timers run for `ms` of virtual time.
    pub fn advance(&mut self, ms: u64) {
        self.run_until(self.now + Duration::from_millis(ms));
    }

    /// The store read back: the last export with the changes since applied.
    pub fn recovered(&self) -> BrokerExport {
        let mut export = BrokerExport::from_bytes(&self.store.0).expect("the store reads");
        for c in &self.store.1 {
            if let Err(e) = export.apply(c) {
                panic!("{c:?} does not apply to the store: {e}");
            }
        }
        export
    }

    /// The store describes the broker exactly.
    pub fn check_store(&self) {
        assert_eq!(
            self.mirror,
            self.broker.export(),
            "the store is not the broker's state"
        );
    }

    /// Node `i` connects on a new link, at once or, sooner than the profile's CONNECT
    /// interval after its last CONNECT, once the interval has passed (the client would
    /// refuse it: AWS IoT Core allows one CONNECT per second).
    pub fn connect(&mut self, i: usize, clean: bool) {
        if self.nodes[i].conn.is_some() {
            return;
        }
        if let Some(at) = self.nodes[i]
            .last_connect
            .map(|t| t + self.connect_interval)
        {
            if at > self.now {
                self.nodes[i].deferred = Some((at, clean));
                return;
            }
        }
        self.nodes[i].deferred = None;
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let connect = Connect {
            client_id: MqttString::try_from(self.nodes[i].name.as_str()).expect("valid id"),
            clean_session: clean,
            keep_alive: 60,
            will: None,
            login: None,
        };
        if self.nodes[i].client.connect(self.now, connect).is_err() {
            return;
        }
        self.nodes[i].last_connect = Some(self.now);
        self.nodes[i].clean = clean;
        if clean {
            // The broker discards the session when it accepts this connection.
            self.nodes[i].session_discarded();
        }
        self.broker
            .open(self.now, conn)
            .expect("a fresh connection id");
        self.nodes[i].conn = Some(conn);
        self.settle_now();
    }

    pub fn publish(&mut self, i: usize, topic: &'static str, qos: QoS) {
        let node = &mut self.nodes[i];
        node.published += 1;
        let payload = Bytes::from(format!("{}:{}", node.name, node.published));
        let topic_name = TopicName::try_from(topic).expect("valid topic");
        let Ok(id) = node
            .client
            .publish(self.now, topic_name, qos, false, payload.clone())
        else {
            return;
        };
        if let Some(id) = id {
            node.publishing.insert(id, payload.clone());
        }
        let hash_matches_parent = self.profile.hash_matches_parent;
        let expected = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(j, n)| {
                n.subscriptions
                    .iter()
                    .filter(|(f, _)| {
                        mqtt_sansio::topic::matches(
                            f.as_bytes(),
                            topic.as_bytes(),
                            hash_matches_parent,
                        )
                    })
                    .map(|(_, q)| *q)
                    .max()
                    .map(|q| (j, n.generation, q.min(qos)))
            })
            .collect();
        self.sent.insert(
            payload,
            Sent {
                topic,
                qos,
                expected,
                acked: false,
            },
        );
        self.settle_now();
    }

    pub fn subscribe(&mut self, i: usize, filter: &'static str, qos: QoS) {
        let f = TopicFilter::try_from(filter).expect("valid filter");
        let node = &mut self.nodes[i];
        if let Ok(id) = node.client.subscribe(self.now, &[(f, qos)]) {
            // Until its SUBACK, the broker may or may not have replaced the
            // subscription: nothing is expected from the filter meanwhile.
            node.subscriptions.remove(filter);
            node.subscribing.insert(id, filter);
            // A publish not yet acknowledged may reach the broker after this
            // SUBSCRIBE (its PUBLISH lost and resent): it is routed by the new grant.
            let hash_matches_parent = self.profile.hash_matches_parent;
            for s in self.sent.values_mut().filter(|s| !s.acked) {
                if mqtt_sansio::topic::matches(
                    filter.as_bytes(),
                    s.topic.as_bytes(),
                    hash_matches_parent,
                ) {
                    s.expected.retain(|&(j, _, _)| j != i);
                }
            }
        }
        self.settle_now();
    }

    /// The network cuts node `i`'s link.
    pub fn cut(&mut self, i: usize) {
        let Some(conn) = self.nodes[i].conn.take() else {
            return;
        };
        self.nodes[i].link_ended();
        self.in_flight.retain(|_, d| match d {
            Delivery::ToBroker(c, _) | Delivery::LostAtBroker(c) => *c != conn,
            Delivery::ToClient(_, c, _) | Delivery::LostAtClient(_, c) => *c != conn,
        });
        self.nodes[i].client.connection_lost(self.now);
        self.broker.connection_lost(self.now, conn);
        self.settle_now();
    }

    /// The network cuts every link, including those whose last bytes are still on
    /// their way: afterwards no connection is open anywhere.
    pub fn cut_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.cut(i);
        }
        let conns: BTreeSet<ConnId> = self
            .in_flight
            .values()
            .map(|d| match d {
                Delivery::ToBroker(c, _) | Delivery::LostAtBroker(c) => *c,
                Delivery::ToClient(_, c, _) | Delivery::LostAtClient(_, c) => *c,
            })
            .collect();
        self.in_flight.clear();
        for conn in conns {
            self.broker.connection_lost(self.now, conn);
        }
        self.settle_now();
    }

    pub fn disconnect(&mut self, i: usize) {
        if self.nodes[i].client.disconnect(self.now).is_ok() {
            self.settle_now();
        }
    }

    /// The broker stops (every link is cut) and a new one starts from the store.
    pub fn restart_broker(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].conn.take().is_some() {
                self.nodes[i].link_ended();
                self.nodes[i].client.connection_lost(self.now);
                self.drain_client(i);
            }
        }
        self.in_flight.clear();
        let export = self.recovered();
        assert_eq!(export, self.mirror, "the store's bytes read back otherwise");
        self.broker = Broker::import(self.profile.clone(), self.config.clone(), export, self.now)
            .expect("the store imports");
        self.store = (self.mirror.to_bytes(), Vec::new());
        self.restarts += 1;
        self.transcript
            .push(format!("{} broker restarted", self.now.as_millis()));
        self.drain_broker();
        self.check_store();
    }

    pub fn checkpoint(&mut self) {
        self.mirror = self.broker.export();
        self.store = (self.mirror.to_bytes(), Vec::new());
    }

    /// Rebuilds disconnected node `i` from its export, through its bytes.
    pub fn reimport_client(&mut self, i: usize) {
        if self.nodes[i].conn.is_some() {
            return;
        }
        let bytes = self.nodes[i].client.export().to_bytes();
        let export = ClientExport::from_bytes(&bytes).expect("the export reads");
        let config = client_config(&self.profile, self.reconnecting, i);
        self.nodes[i].client =
            Client::import(self.profile.clone(), config, export).expect("the export imports");
    }

    /// Applies one operation, then checks the invariants that hold at every step.
    pub fn apply(&mut self, op: Op) {
        let n = self.nodes.len();
        let node = |x: u8| usize::from(x) % n;
        let qos = |x: u8| {
            let q = QoS::from_u8(x % 3).unwrap_or(QoS::AtMostOnce);
            if q == QoS::ExactlyOnce && !self.profile.supports_qos2() {
                QoS::AtLeastOnce
            } else {
                q
            }
        };
        match op {
            Op::Connect { node: i, clean } => self.connect(node(i), clean),
            Op::Publish {
                node: i,
                topic,
                qos: q,
            } => {
                let q = qos(q);
                self.publish(node(i), TOPICS[usize::from(topic) % TOPICS.len()], q)
            }
            Op::Subscribe {
                node: i,
                filter,
                qos: q,
            } => {
                let q = qos(q);
                self.subscribe(node(i), FILTERS[usize::from(filter) % FILTERS.len()], q)
            }
            Op::Cut { node: i } => self.cut(node(i)),
            Op::Disconnect { node: i } => self.disconnect(node(i)),
            Op::RestartBroker => self.restart_broker(),
            Op::Checkpoint => self.checkpoint(),
            Op::ReimportClient { node: i } => self.reimport_client(node(i)),
            Op::Advance { ms } => self.advance(u64::from(ms % 5_000)),
        }
        self.check_store();
        self.check_exactly_once();
    }

    /// No QoS 2 message reaches a subscriber twice (MQTT-4.3.3).
    pub fn check_exactly_once(&self) {
        for n in &self.nodes {
            let mut seen = BTreeSet::new();
            for (payload, qos) in &n.delivered {
                if *qos == QoS::ExactlyOnce {
                    assert!(seen.insert(payload), "{} got {payload:?} twice", n.name);
                }
            }
        }
    }

    /// Every node reconnects with clean session 0 and time runs until all is quiet.
    pub fn reconnect_all_and_settle(&mut self) {
        for i in 0..self.nodes.len() {
            self.connect(i, false);
        }
        self.advance(10_000);
    }

    /// Every message a publisher saw acknowledged reached each node that held a
    /// matching subscription (at QoS 1 or 2) when it was published, unless that node's
    /// session was discarded since. Returns how many deliveries it checked.
    pub fn check_nothing_acknowledged_is_lost(&self) -> usize {
        let mut checked = 0;
        for (payload, s) in &self.sent {
            if !s.acked {
                continue;
            }
            for &(j, generation, qos) in &s.expected {
                let n = &self.nodes[j];
                if qos == QoS::AtMostOnce || n.generation != generation {
                    continue;
                }
                assert!(
                    n.delivered.iter().any(|(p, _)| p == payload),
                    "{} never got {payload:?} ({:?} to {}), acknowledged to its publisher",
                    n.name,
                    s.qos,
                    s.topic
                );
                checked += 1;
            }
        }
        checked
    }

    /// The transcript as one text.
    pub fn transcript_text(&self) -> String {
        let mut out = String::new();
        for line in &self.transcript {
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

/// Most operations taken from one input.
pub const MAX_SIM_OPS: usize = 128;

/// Runs the operations `data` encodes (a profile bit, then the operations) after the
/// nodes connect with clean session 0, reconnects everyone, and checks every
/// invariant; returns the simulation for inspection. With `reconnecting` the clients
/// also reconnect by themselves.
pub fn run_sim(data: &[u8], reconnecting: bool) -> Sim {
    let mut u = Unstructured::new(data);
    let aws = bool::arbitrary(&mut u).unwrap_or(false);
    let profile = if aws {
        Profile::aws_iot_core()
    } else {
        Profile::mqtt311()
    };
    let mut sim = Sim::with_reconnect(profile, 3, reconnecting);
    for i in 0..3 {
        sim.connect(i, false);
    }
    // Subscriptions in place from the start, so that most publishes are expected
    // somewhere.
    sim.advance(50);
    sim.apply(Op::Subscribe {
        node: 0,
        filter: 2,
        qos: 2,
    });
    sim.apply(Op::Subscribe {
        node: 1,
        filter: 3,
        qos: 1,
    });
    sim.advance(50);
    for _ in 0..MAX_SIM_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        sim.apply(op);
    }
    sim.reconnect_all_and_settle();
    sim.check_store();
    sim.check_exactly_once();
    sim.check_nothing_acknowledged_is_lost();
    sim
}

/// [`run_sim`], for the fuzz target.
pub fn check_sim(data: &[u8]) {
    run_sim(data, false);
}
