//! The checks of the state-machine fuzz targets (`client`, `server`, `broker`), shared
//! like `fuzz_checks.rs` by the targets under `fuzz/` and `tests/fuzz_regressions.rs`.
//!
//! The input is decoded into a run: a configuration and a sequence of operations
//! (bytes or packets from the peer, application commands, time steps). Each run is
//! driven twice on fresh machines, checking invariants after every step, and the two
//! traces must be equal: the same inputs give the same outputs.
//!
//! Invariants after every step, for every machine:
//! - every packet it asks to send is valid: it encodes and decodes back to itself;
//! - no packet id 0 (the type forbids it) and no id twice in flight;
//! - no action for a connection after it was closed;
//! - memory within the configured bounds (inflight window, queues);
//! - a refused command changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use mqtt_sansio::broker::{self, Broker, BrokerConfig, ConnId};
use mqtt_sansio::client::{self, Client, ClientConfig, ClientState};
use mqtt_sansio::server::{self, Message, Server, ServerConfig, Session};
use mqtt_sansio::{
    ConnAck, Connect, ConnectReturnCode, Instant, MqttString, Packet, PacketId, Profile, Publish,
    QoS, QosPid, Status, SubAck, SubAckCode, Subscribe, TopicFilter, TopicName, Unsubscribe, Will,
    decode,
};

/// Most operations in one run.
const MAX_OPS: usize = 200;

/// Client ids the runs use, so that sessions are resumed and taken over.
const CLIENT_IDS: [&str; 3] = ["c0", "c1", "c2"];

/// Topics most operations use, so that subscriptions match publications.
const TOPICS: [&str; 4] = ["a", "a/b", "$SYS/x", "t/1/2"];
const FILTERS: [&str; 6] = ["a", "a/#", "+/b", "#", "$SYS/#", "t/+/2"];

// ---- inputs -----------------------------------------------------------------------

/// A packet id given by the input: usually one the machine or its peer is using right
/// now (so that acknowledgements match), sometimes any non-zero id.
#[derive(Debug, Clone, Copy, Arbitrary)]
struct IdRef(u16);

impl IdRef {
    fn resolve(self, known: &[PacketId]) -> PacketId {
        if !known.is_empty() && self.0 % 4 != 0 {
            return known[usize::from(self.0) % known.len()];
        }
        PacketId::new(self.0).unwrap_or(PacketId::new(1).expect("non-zero"))
    }
}

/// A topic name: one of [`TOPICS`] most of the time, otherwise arbitrary.
#[derive(Debug, Clone)]
struct Topic(TopicName<Bytes>);

impl<'a> Arbitrary<'a> for Topic {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        if u.ratio(3u8, 4u8)? {
            let t = *u.choose(&TOPICS)?;
            return Ok(Topic(TopicName::from_static(t).expect("valid topic")));
        }
        Ok(Topic(u.arbitrary()?))
    }
}

/// A topic filter: one of [`FILTERS`] most of the time, otherwise arbitrary.
#[derive(Debug, Clone)]
struct Filter(TopicFilter<Bytes>);

impl<'a> Arbitrary<'a> for Filter {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        if u.ratio(3u8, 4u8)? {
            let f = *u.choose(&FILTERS)?;
            return Ok(Filter(TopicFilter::from_static(f).expect("valid filter")));
        }
        Ok(Filter(u.arbitrary()?))
    }
}

/// A client id: one of [`CLIENT_IDS`], empty, or arbitrary.
#[derive(Debug, Clone)]
struct ClientId(MqttString<Bytes>);

impl<'a> Arbitrary<'a> for ClientId {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(ClientId(match u.int_in_range(0u8..=7)? {
            0 => MqttString::from_static("").expect("valid"),
            1 => u.arbitrary()?,
            n => MqttString::from_static(CLIENT_IDS[usize::from(n) % 3]).expect("valid"),
        }))
    }
}

fn small_payload(p: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&p[..p.len().min(64)])
}

fn connect_packet(
    client: &ClientId,
    clean_session: bool,
    keep_alive: u8,
    will: &Option<Will<Bytes>>,
) -> Connect<Bytes> {
    Connect {
        client_id: client.0.clone(),
        clean_session,
        keep_alive: u16::from(keep_alive),
        will: will.clone(),
        login: None,
    }
}

fn publish_packet(
    qos: QoS,
    id: PacketId,
    dup: bool,
    retain: bool,
    topic: &Topic,
    payload: &[u8],
) -> Publish<Bytes> {
    let qos = QosPid::new(qos, id);
    Publish {
        dup: dup && qos != QosPid::AtMostOnce,
        qos,
        retain,
        topic: topic.0.clone(),
        payload: small_payload(payload),
    }
}

/// The profile a run uses.
fn profile(aws: bool) -> Profile {
    if aws {
        Profile::aws_iot_core()
    } else {
        Profile::mqtt311()
    }
}

/// Encodes `p` and splits it at `split` (modulo its length) into two chunks.
fn split(p: &Packet<Bytes>, split: u8) -> (Bytes, Bytes) {
    let b = p.to_bytes().expect("a valid packet encodes");
    let at = usize::from(split) % (b.len() + 1);
    (b.slice(..at), b.slice(at..))
}

/// A packet a machine asks to send must be valid: it encodes and decodes to itself.
fn assert_valid(p: &Packet<Bytes>) {
    let b = p
        .to_bytes()
        .unwrap_or_else(|e| panic!("asked to send {p:?}, which does not encode: {e:?}"));
    match decode(&b) {
        Ok(Status::Complete(q, n)) if n == b.len() && &q.to_owned() == p => {}
        other => panic!("asked to send {p:?}, which decodes to {other:?}"),
    }
}

/// Advances `now` by a time step of the input.
fn step_time(now: &mut Instant, ms: u16, secs: u16) {
    *now = *now + Duration::from_millis(u64::from(ms)) + Duration::from_secs(u64::from(secs));
}

/// One step of a trace: what the machine did and when it wants to be woken.
type Trace<A> = Vec<(String, Vec<A>, Option<Instant>)>;

// ---- client -----------------------------------------------------------------------

/// What the server side sends to the client.
#[derive(Debug, Clone, Arbitrary)]
enum FromServer {
    ConnAck(ConnAck),
    Publish {
        qos: QoS,
        id: IdRef,
        dup: bool,
        retain: bool,
        topic: Topic,
        payload: Vec<u8>,
    },
    PubAck(IdRef),
    PubRec(IdRef),
    PubRel(IdRef),
    PubComp(IdRef),
    SubAck(IdRef, Vec<SubAckCode>),
    UnsubAck(IdRef),
    PingResp,
    Any(Packet<Bytes>),
}

#[derive(Debug, Clone, Arbitrary)]
enum ClientOp {
    Connect {
        client: ClientId,
        clean_session: bool,
        keep_alive: u8,
        will: Option<Will<Bytes>>,
    },
    Publish {
        topic: Topic,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
    },
    Subscribe(Vec<(Filter, QoS)>),
    Unsubscribe(Vec<Filter>),
    Ack(IdRef),
    Disconnect,
    ConnectionLost,
    Receive(FromServer, u8),
    Bytes(Vec<u8>),
    Wait(u16, u16),
    Timeout,
}

#[derive(Debug, Clone, Arbitrary)]
struct ClientRun {
    aws: bool,
    max_inflight: u8,
    manual_acks: bool,
    small_packets: bool,
    ops: Vec<ClientOp>,
}

/// The driver's model of a client: which ids it holds and whether it may act.
struct ClientModel {
    client: Client,
    now: Instant,
    /// Ids of the client's own packets in flight, as its commands returned them.
    live: BTreeSet<PacketId>,
    /// Ids of QoS 1/2 messages the server sent, for acknowledgements and PUBREL.
    peer: Vec<PacketId>,
    /// Whether a connection is open or being opened: actions other than events are
    /// allowed only then.
    open: bool,
    max_inflight: usize,
}

impl ClientModel {
    fn known(&self) -> Vec<PacketId> {
        self.live
            .iter()
            .copied()
            .chain(self.peer.iter().copied())
            .collect()
    }

    fn release(&mut self, id: PacketId, what: &str) {
        assert!(
            self.live.remove(&id),
            "{what} for id {id}, which the client did not hold"
        );
    }

    fn take(&mut self, id: PacketId) {
        assert!(
            self.live.insert(id),
            "id {id} given out while still in flight"
        );
    }

    /// Drains the actions, checking each against the model.
    fn drain(&mut self) -> Vec<client::Action> {
        let mut out = Vec::new();
        while let Some(a) = self.client.poll_action() {
            match &a {
                client::Action::Send(p) => {
                    assert!(self.open, "the client sends {p:?} on a closed connection");
                    assert_valid(p);
                    let own = match p {
                        Packet::Publish(p) => p.qos.packet_id(),
                        Packet::PubRel(id) => Some(*id),
                        Packet::Subscribe(s) => Some(s.packet_id),
                        Packet::Unsubscribe(u) => Some(u.packet_id),
                        _ => None,
                    };
                    if let Some(id) = own {
                        assert!(
                            self.live.contains(&id),
                            "the client sends id {id} it does not hold"
                        );
                    }
                }
                client::Action::Deliver(p) => {
                    assert!(self.open, "the client delivers on a closed connection");
                    if let Some(id) = p.qos.packet_id() {
                        self.peer.push(id);
                    }
                }
                client::Action::Event(e) => match e {
                    client::Event::Published(id) => self.release(*id, "PUBACK event"),
                    client::Event::Completed(id) => self.release(*id, "PUBCOMP event"),
                    client::Event::Unsubscribed(id) => self.release(*id, "UNSUBACK event"),
                    client::Event::Subscribed { packet_id, codes } => {
                        assert!(!codes.is_empty(), "SUBACK event without codes");
                        self.release(*packet_id, "SUBACK event");
                    }
                    client::Event::Received(id) => {
                        assert!(self.live.contains(id), "PUBREC event for an id not held");
                    }
                    client::Event::Lost(lost) => match lost {
                        client::Lost::Publish(p) => {
                            if let Some(id) = p.qos.packet_id() {
                                self.release(id, "lost PUBLISH");
                            }
                        }
                        client::Lost::Release(id) => self.release(*id, "lost PUBREL"),
                        client::Lost::Subscribe(s) => self.release(s.packet_id, "lost SUBSCRIBE"),
                        client::Lost::Unsubscribe(u) => {
                            self.release(u.packet_id, "lost UNSUBSCRIBE")
                        }
                    },
                    client::Event::Connected { .. } => {
                        assert!(self.open, "connected while closed");
                    }
                    _ => {}
                },
                client::Action::Close(_) => {
                    assert!(self.open, "the client closes a connection that is not open");
                    self.open = false;
                }
            }
            out.push(a);
        }
        if self.peer.len() > 64 {
            self.peer.drain(..32);
        }
        out
    }

    fn check_state(&self) {
        assert_eq!(
            self.client.ids_in_use(),
            self.live.len(),
            "the client holds other ids than it gave out: {:?}",
            self.live
        );
        for id in &self.live {
            assert!(
                self.client.id_in_use(*id),
                "id {id} given out is not in use"
            );
        }
        assert!(
            self.client.inflight() <= self.max_inflight,
            "{} messages in flight, over the limit of {}",
            self.client.inflight(),
            self.max_inflight
        );
        assert_eq!(
            self.open,
            self.client.state() != ClientState::Disconnected,
            "the client's state disagrees with its actions"
        );
    }

    fn step(&mut self, op: &ClientOp) -> String {
        let before = (
            self.client.ids_in_use(),
            self.client.inflight(),
            self.client.state(),
        );
        let now = self.now;
        let outcome = match op {
            ClientOp::Connect {
                client,
                clean_session,
                keep_alive,
                will,
            } => {
                let r = self.client.connect(
                    now,
                    connect_packet(client, *clean_session, *keep_alive, will),
                );
                if r.is_ok() {
                    self.open = true;
                }
                format!("{r:?}")
            }
            ClientOp::Publish {
                topic,
                qos,
                retain,
                payload,
            } => {
                let r = self.client.publish(
                    now,
                    topic.0.clone(),
                    *qos,
                    *retain,
                    small_payload(payload),
                );
                if let Ok(Some(id)) = r {
                    self.take(id);
                }
                format!("{r:?}")
            }
            ClientOp::Subscribe(filters) => {
                let filters: Vec<(TopicFilter<Bytes>, QoS)> =
                    filters.iter().map(|(f, q)| (f.0.clone(), *q)).collect();
                let r = self.client.subscribe(now, &filters);
                if let Ok(id) = r {
                    self.take(id);
                }
                format!("{r:?}")
            }
            ClientOp::Unsubscribe(filters) => {
                let filters: Vec<TopicFilter<Bytes>> =
                    filters.iter().map(|f| f.0.clone()).collect();
                let r = self.client.unsubscribe(now, &filters);
                if let Ok(id) = r {
                    self.take(id);
                }
                format!("{r:?}")
            }
            ClientOp::Ack(id) => {
                let id = id.resolve(&self.peer);
                format!("{:?}", self.client.ack(now, id))
            }
            ClientOp::Disconnect => format!("{:?}", self.client.disconnect(now)),
            ClientOp::ConnectionLost => {
                self.client.connection_lost(now);
                self.open = false;
                String::new()
            }
            ClientOp::Receive(msg, at) => {
                let known = self.known();
                let p = match msg {
                    FromServer::ConnAck(c) => Packet::ConnAck(*c),
                    FromServer::Publish {
                        qos,
                        id,
                        dup,
                        retain,
                        topic,
                        payload,
                    } => Packet::Publish(publish_packet(
                        *qos,
                        id.resolve(&known),
                        *dup,
                        *retain,
                        topic,
                        payload,
                    )),
                    FromServer::PubAck(id) => Packet::PubAck(id.resolve(&known)),
                    FromServer::PubRec(id) => Packet::PubRec(id.resolve(&known)),
                    FromServer::PubRel(id) => Packet::PubRel(id.resolve(&known)),
                    FromServer::PubComp(id) => Packet::PubComp(id.resolve(&known)),
                    FromServer::SubAck(id, codes) => {
                        let codes = if codes.is_empty() {
                            vec![SubAckCode::Granted(QoS::AtLeastOnce)]
                        } else {
                            codes.clone()
                        };
                        Packet::SubAck(SubAck::new(id.resolve(&known), codes).expect("codes"))
                    }
                    FromServer::UnsubAck(id) => Packet::UnsubAck(id.resolve(&known)),
                    FromServer::PingResp => Packet::PingResp,
                    FromServer::Any(p) => p.clone(),
                };
                let (a, b) = split(&p, *at);
                let first = self.client.handle_bytes(now, &a);
                let out_a = self.drain();
                let second = self.client.handle_bytes(now, &b);
                // Actions of the first half are checked; keep them in the trace too.
                return format!("{first:?} {second:?} {out_a:?}");
            }
            ClientOp::Bytes(b) => format!("{:?}", self.client.handle_bytes(now, b)),
            ClientOp::Wait(ms, secs) => {
                step_time(&mut self.now, *ms, *secs);
                self.client.handle_timeout(self.now);
                String::new()
            }
            ClientOp::Timeout => {
                if let Some(t) = self.client.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.client.handle_timeout(self.now);
                String::new()
            }
        };
        let refused = outcome.starts_with("Err");
        if refused {
            let after = (
                self.client.ids_in_use(),
                self.client.inflight(),
                self.client.state(),
            );
            assert_eq!(
                before, after,
                "a refused command changed the client: {outcome}"
            );
        }
        outcome
    }
}

fn drive_client(run: &ClientRun) -> Trace<client::Action> {
    let profile = profile(run.aws);
    let mut config = ClientConfig::for_profile(&profile);
    config.max_inflight = usize::from(run.max_inflight % 16).max(1);
    config.manual_acks = run.manual_acks;
    if run.small_packets {
        config.max_packet_size = 128;
    }
    let mut m = ClientModel {
        max_inflight: config.max_inflight,
        client: Client::with_config(profile, config),
        now: Instant::ZERO,
        live: BTreeSet::new(),
        peer: Vec::new(),
        open: false,
    };
    let mut trace = Vec::new();
    for op in run.ops.iter().take(MAX_OPS) {
        let outcome = m.step(op);
        if outcome.starts_with("Err") {
            assert!(
                m.client.poll_action().is_none(),
                "a refused command acted: {outcome}"
            );
        }
        let actions = m.drain();
        m.check_state();
        trace.push((outcome, actions, m.client.poll_timeout()));
    }
    trace
}

/// The `client` target: commands, server packets, raw bytes and time steps into a
/// [`Client`].
pub fn check_client(data: &[u8]) {
    let Ok(run) = ClientRun::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let first = drive_client(&run);
    let second = drive_client(&run);
    assert!(
        first == second,
        "the same inputs gave the client different outputs"
    );
}

// ---- server -----------------------------------------------------------------------

/// What a client sends to a server.
#[derive(Debug, Clone, Arbitrary)]
enum FromClient {
    Connect {
        client: ClientId,
        clean_session: bool,
        keep_alive: u8,
        will: Option<Will<Bytes>>,
    },
    Publish {
        qos: QoS,
        id: IdRef,
        dup: bool,
        retain: bool,
        topic: Topic,
        payload: Vec<u8>,
    },
    PubAck(IdRef),
    PubRec(IdRef),
    PubRel(IdRef),
    PubComp(IdRef),
    Subscribe(IdRef, Vec<(Filter, QoS)>),
    Unsubscribe(IdRef, Vec<Filter>),
    PingReq,
    Disconnect,
    Any(Packet<Bytes>),
}

impl FromClient {
    fn packet(&self, known: &[PacketId]) -> Packet<Bytes> {
        match self {
            FromClient::Connect {
                client,
                clean_session,
                keep_alive,
                will,
            } => Packet::Connect(connect_packet(client, *clean_session, *keep_alive, will)),
            FromClient::Publish {
                qos,
                id,
                dup,
                retain,
                topic,
                payload,
            } => Packet::Publish(publish_packet(
                *qos,
                id.resolve(known),
                *dup,
                *retain,
                topic,
                payload,
            )),
            FromClient::PubAck(id) => Packet::PubAck(id.resolve(known)),
            FromClient::PubRec(id) => Packet::PubRec(id.resolve(known)),
            FromClient::PubRel(id) => Packet::PubRel(id.resolve(known)),
            FromClient::PubComp(id) => Packet::PubComp(id.resolve(known)),
            FromClient::Subscribe(id, filters) => {
                let mut f: Vec<(TopicFilter<Bytes>, QoS)> =
                    filters.iter().map(|(f, q)| (f.0.clone(), *q)).collect();
                if f.is_empty() {
                    f.push((
                        TopicFilter::from_static("#").expect("filter"),
                        QoS::AtLeastOnce,
                    ));
                }
                Packet::Subscribe(Subscribe::new(id.resolve(known), &f).expect("filters"))
            }
            FromClient::Unsubscribe(id, filters) => {
                let mut f: Vec<TopicFilter<Bytes>> = filters.iter().map(|f| f.0.clone()).collect();
                if f.is_empty() {
                    f.push(TopicFilter::from_static("#").expect("filter"));
                }
                Packet::Unsubscribe(Unsubscribe::new(id.resolve(known), &f).expect("filters"))
            }
            FromClient::PingReq => Packet::PingReq,
            FromClient::Disconnect => Packet::Disconnect,
            FromClient::Any(p) => p.clone(),
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct AppMessage {
    topic: Topic,
    qos: QoS,
    retain: bool,
    payload: Vec<u8>,
}

impl AppMessage {
    fn message(&self) -> Message {
        Message {
            topic: self.topic.0.clone(),
            payload: small_payload(&self.payload),
            qos: self.qos,
            retain: self.retain,
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
enum ServerOp {
    Receive(FromClient, u8),
    Bytes(Vec<u8>),
    Accept {
        resume: bool,
        assign: bool,
    },
    Refuse(ConnectReturnCode),
    Publish(AppMessage),
    Wait(u16, u16),
    Timeout,
    ConnectionClosed,
    CloseWith,
    DiscardWill,
    /// A new connection after this one closed, keeping its session for a resume.
    Reconnect,
}

#[derive(Debug, Clone, Arbitrary)]
struct ServerRun {
    aws: bool,
    max_queued: u8,
    max_inflight: u8,
    max_inbound_qos2: u8,
    ops: Vec<ServerOp>,
}

/// Checks the session bounds: inflight window, queue, unique ids.
fn check_session(s: &Session, window: usize, max_queued: usize, whose: &str) {
    assert!(
        s.inflight() <= window,
        "{whose}: {} in flight over a window of {window}",
        s.inflight()
    );
    assert!(
        s.queued() <= max_queued,
        "{whose}: {} queued over a bound of {max_queued}",
        s.queued()
    );
    let ids: Vec<PacketId> = s.inflight_ids().collect();
    let unique: BTreeSet<PacketId> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{whose}: an id twice in flight: {ids:?}"
    );
}

fn window(profile: &Profile, config: &ServerConfig) -> usize {
    config.max_inflight.min(profile.max_inflight).max(1)
}

struct ServerModel {
    profile: Profile,
    config: ServerConfig,
    server: Server,
    now: Instant,
    stored: Option<Session>,
    /// Ids of QoS 1/2 PUBLISH the client sent, for PUBREL.
    peer: Vec<PacketId>,
}

impl ServerModel {
    fn known(&self) -> Vec<PacketId> {
        self.server
            .session()
            .inflight_ids()
            .chain(self.peer.iter().copied())
            .collect()
    }

    /// Drains the actions: nothing after Close but the will, valid packets, new ids
    /// not already in flight.
    fn drain(&mut self, in_flight_before: &BTreeSet<PacketId>) -> Vec<server::Action> {
        let mut out = Vec::new();
        let mut closed = false;
        let mut new_ids = BTreeSet::new();
        while let Some(a) = self.server.poll_action() {
            match &a {
                server::Action::Send(p) => {
                    assert!(!closed, "the server sends {p:?} after closing");
                    assert_valid(p);
                    if let Packet::Publish(p) = p {
                        if let (Some(id), false) = (p.qos.packet_id(), p.dup) {
                            assert!(
                                !in_flight_before.contains(&id) && new_ids.insert(id),
                                "the server sends id {id} while it is in flight"
                            );
                        }
                    }
                }
                server::Action::Close(_) => {
                    assert!(!closed, "the server closes twice");
                    closed = true;
                }
                server::Action::Event(e) => {
                    if closed {
                        assert!(
                            matches!(e, server::ServerEvent::Will(_)),
                            "event {e:?} after closing"
                        );
                    }
                }
            }
            out.push(a);
        }
        out
    }

    fn step(&mut self, op: &ServerOp) -> (String, Vec<server::Action>) {
        let now = self.now;
        let was_closed = self.server.is_closed();
        // Acknowledgements in this step may free ids; only a step that frees none
        // compares new ids against the ones in flight before it.
        let frees = matches!(
            op,
            ServerOp::Receive(
                FromClient::PubAck(_)
                    | FromClient::PubComp(_)
                    | FromClient::PubRec(_)
                    | FromClient::Any(_),
                _
            ) | ServerOp::Bytes(_)
                | ServerOp::Accept { .. }
                | ServerOp::Reconnect
        );
        let before: BTreeSet<PacketId> = if frees {
            BTreeSet::new()
        } else {
            self.server.session().inflight_ids().collect()
        };
        let mut outcome = String::new();
        match op {
            ServerOp::Receive(msg, at) => {
                let p = msg.packet(&self.known());
                if let Packet::Publish(p) = &p {
                    if let Some(id) = p.qos.packet_id() {
                        self.peer.push(id);
                    }
                }
                let (a, b) = split(&p, *at);
                self.server.handle_bytes(now, &a);
                self.server.handle_bytes(now, &b);
            }
            ServerOp::Bytes(b) => self.server.handle_bytes(now, b),
            ServerOp::Accept { resume, assign } => {
                let resumed = if *resume { self.stored.take() } else { None };
                let id = assign.then(|| MqttString::from_static("assigned").expect("valid"));
                self.server.accept_as(now, id, resumed);
            }
            ServerOp::Refuse(code) => self.server.refuse(now, *code),
            ServerOp::Publish(m) => {
                let queued = self.server.session().queued();
                let r = self.server.publish(now, m.message());
                if r.is_err() {
                    assert_eq!(
                        queued,
                        self.server.session().queued(),
                        "a refused publish queued"
                    );
                    assert!(
                        self.server.poll_action().is_none(),
                        "a refused publish acted"
                    );
                }
                outcome = format!("{r:?}");
            }
            ServerOp::Wait(ms, secs) => {
                step_time(&mut self.now, *ms, *secs);
                self.server.handle_timeout(self.now);
            }
            ServerOp::Timeout => {
                if let Some(t) = self.server.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.server.handle_timeout(self.now);
            }
            ServerOp::ConnectionClosed => self.server.connection_closed(now),
            ServerOp::CloseWith => self
                .server
                .close_with(now, server::CloseReason::Application),
            ServerOp::DiscardWill => self.server.discard_will(),
            ServerOp::Reconnect => {
                if let Some(s) = self.server.take_session() {
                    self.stored = Some(s);
                    self.server = Server::open(now, self.profile.clone(), self.config.clone());
                    self.peer.clear();
                }
            }
        }
        let actions = self.drain(&before);
        if was_closed && !matches!(op, ServerOp::Reconnect) {
            assert!(actions.is_empty(), "a closed server acted: {actions:?}");
        }
        if self.peer.len() > 64 {
            self.peer.drain(..32);
        }
        (outcome, actions)
    }
}

fn drive_server(run: &ServerRun) -> Trace<server::Action> {
    let profile = profile(run.aws);
    let config = ServerConfig {
        max_queued: usize::from(run.max_queued % 32),
        max_inflight: usize::from(run.max_inflight % 16).max(1),
        max_inbound_qos2: usize::from(run.max_inbound_qos2 % 16).max(1),
        ..ServerConfig::default()
    };
    let window = window(&profile, &config);
    let mut m = ServerModel {
        server: Server::open(Instant::ZERO, profile.clone(), config.clone()),
        profile,
        config,
        now: Instant::ZERO,
        stored: None,
        peer: Vec::new(),
    };
    let mut trace = Vec::new();
    for op in run.ops.iter().take(MAX_OPS) {
        let (outcome, actions) = m.step(op);
        check_session(m.server.session(), window, m.config.max_queued, "server");
        if let Some(s) = &m.stored {
            check_session(s, window, m.config.max_queued, "stored session");
        }
        trace.push((outcome, actions, m.server.poll_timeout()));
    }
    trace
}

/// The `server` target: client packets, raw bytes, application answers and messages,
/// and time steps into one server-side connection.
pub fn check_server(data: &[u8]) {
    let Ok(run) = ServerRun::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let first = drive_server(&run);
    let second = drive_server(&run);
    assert!(
        first == second,
        "the same inputs gave the server different outputs"
    );
}

// ---- broker -----------------------------------------------------------------------

/// Connections a broker run uses.
const CONNS: u8 = 4;

#[derive(Debug, Clone, Arbitrary)]
enum BrokerOp {
    Open(u8),
    Receive(u8, FromClient, u8),
    Bytes(u8, Vec<u8>),
    Closed(u8),
    Close(u8),
    Wait(u16, u16),
    Timeout,
}

#[derive(Debug, Clone, Arbitrary)]
struct BrokerRun {
    aws: bool,
    max_queued: u8,
    max_inflight: u8,
    max_sessions: Option<u8>,
    max_retained: Option<u8>,
    ops: Vec<BrokerOp>,
}

struct BrokerModel {
    broker: Broker,
    now: Instant,
    open: BTreeSet<ConnId>,
    clients: BTreeSet<String>,
    /// Ids of packets sent to or received from each connection, for acknowledgements.
    ids: BTreeMap<ConnId, Vec<PacketId>>,
}

impl BrokerModel {
    fn drain(&mut self) -> Vec<broker::Action> {
        let mut out = Vec::new();
        while let Some(a) = self.broker.poll_action() {
            match &a {
                broker::Action::Send { conn, packet } => {
                    assert!(
                        self.open.contains(conn),
                        "the broker sends {packet:?} to {conn:?}, which is not open"
                    );
                    assert_valid(packet);
                    if let Packet::Publish(p) = packet {
                        if let Some(id) = p.qos.packet_id() {
                            self.ids.entry(*conn).or_default().push(id);
                        }
                    }
                }
                broker::Action::Close { conn, .. } => {
                    assert!(
                        self.open.remove(conn),
                        "the broker closes {conn:?}, which is not open"
                    );
                    self.ids.remove(conn);
                }
                broker::Action::Event(broker::BrokerEvent::Connected {
                    conn, client_id, ..
                }) => {
                    assert!(
                        self.open.contains(conn),
                        "{conn:?} connected while not open"
                    );
                    self.clients.insert(client_id.as_str().to_string());
                }
                broker::Action::Event(_) => {}
            }
            out.push(a);
        }
        for ids in self.ids.values_mut() {
            if ids.len() > 64 {
                ids.drain(..32);
            }
        }
        out
    }

    fn step(&mut self, op: &BrokerOp) -> String {
        let now = self.now;
        let conn = |c: &u8| ConnId(u64::from(*c % CONNS));
        match op {
            BrokerOp::Open(c) => {
                let c = conn(c);
                let r = self.broker.open(now, c);
                assert_eq!(r.is_ok(), !self.open.contains(&c), "open({c:?}) gave {r:?}");
                self.open.insert(c);
                return format!("{r:?}");
            }
            BrokerOp::Receive(c, msg, at) => {
                let c = conn(c);
                let known = self.ids.get(&c).cloned().unwrap_or_default();
                let p = msg.packet(&known);
                if let Packet::Publish(p) = &p {
                    if let Some(id) = p.qos.packet_id() {
                        self.ids.entry(c).or_default().push(id);
                    }
                }
                let (a, b) = split(&p, *at);
                self.broker.handle_bytes(now, c, &a);
                self.broker.handle_bytes(now, c, &b);
            }
            BrokerOp::Bytes(c, b) => self.broker.handle_bytes(now, conn(c), b),
            BrokerOp::Closed(c) => {
                let c = conn(c);
                self.broker.connection_closed(now, c);
                self.open.remove(&c);
                self.ids.remove(&c);
            }
            BrokerOp::Close(c) => self.broker.close(now, conn(c)),
            BrokerOp::Wait(ms, secs) => {
                step_time(&mut self.now, *ms, *secs);
                self.broker.handle_timeout(self.now);
            }
            BrokerOp::Timeout => {
                if let Some(t) = self.broker.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.broker.handle_timeout(self.now);
            }
        }
        String::new()
    }
}

fn drive_broker(run: &BrokerRun) -> Trace<broker::Action> {
    let profile = profile(run.aws);
    let connection = ServerConfig {
        max_queued: usize::from(run.max_queued % 32),
        max_inflight: usize::from(run.max_inflight % 16).max(1),
        ..ServerConfig::default()
    };
    let window = window(&profile, &connection);
    let max_queued = connection.max_queued;
    let max_retained = run.max_retained.map(|n| usize::from(n % 8));
    let max_sessions = run.max_sessions.map(|n| usize::from(n % 4));
    let config = BrokerConfig {
        connection,
        max_sessions,
        max_retained,
    };
    let mut m = BrokerModel {
        broker: Broker::new(profile, config),
        now: Instant::ZERO,
        open: BTreeSet::new(),
        clients: CLIENT_IDS.iter().map(|s| s.to_string()).collect(),
        ids: BTreeMap::new(),
    };
    let mut trace = Vec::new();
    for op in run.ops.iter().take(MAX_OPS) {
        let outcome = m.step(op);
        let actions = m.drain();
        assert_eq!(
            m.broker.connections(),
            m.open.len(),
            "the broker counts other connections than are open"
        );
        for client in &m.clients {
            if let Some(s) = m.broker.session(client) {
                check_session(s, window, max_queued, client);
            }
        }
        if let Some(max) = max_sessions {
            let sessions = m
                .clients
                .iter()
                .filter(|c| m.broker.session(c).is_some())
                .count();
            assert!(sessions <= max, "{sessions} sessions over a bound of {max}");
        }
        if let Some(max) = max_retained {
            assert!(
                m.broker.retained_len() <= max,
                "{} retained messages over a bound of {max}",
                m.broker.retained_len()
            );
        }
        trace.push((outcome, actions, m.broker.poll_timeout()));
    }
    trace
}

/// The `broker` target: connections opened and closed, client packets and raw bytes on
/// each, and time steps into a [`Broker`].
pub fn check_broker(data: &[u8]) {
    let Ok(run) = BrokerRun::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let first = drive_broker(&run);
    let second = drive_broker(&run);
    assert!(
        first == second,
        "the same inputs gave the broker different outputs"
    );
}
