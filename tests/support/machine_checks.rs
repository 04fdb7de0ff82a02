//! The checks of the state-machine fuzz targets (`client`, `server`, `broker`), in one
//! place: the targets under `fuzz/` include this file by path, and
//! `tests/machine_fuzz_regressions.rs` replays saved inputs and fixed operation
//! sequences through it, so a plain `cargo test` re-runs them.
//!
//! Each target reads its input as a setup (profile and configuration) and a sequence of
//! operations (`#[derive(Arbitrary)]`): bytes from the peer (arbitrary bytes, any valid
//! packet from the crate's `Arbitrary`, or packets a model of the peer builds from what
//! it has seen, such as an acknowledgement of an id in flight), application commands,
//! and time advancing by arbitrary steps. After every input the actions are drained and
//! checked against a model of what the machine promises, and the getters are compared
//! with the model. The whole run is then repeated on a fresh machine, and the two
//! transcripts must be equal (determinism).
//!
//! Each check panics, naming the property, when a machine breaks it.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use core::time::Duration;
use mqtt_sansio::broker::{Action as BrokerAction, Broker, BrokerConfig, BrokerEvent, ConnId};
use mqtt_sansio::client::{Action as ClientAction, Client, ClientConfig, ClientError, Event, Lost};
use mqtt_sansio::server::{
    Action as ServerAction, CloseReason, Message, Server, ServerConfig, ServerError, ServerEvent,
    ServerSession,
};
use mqtt_sansio::session::{BrokerExport, ClientExport};
use mqtt_sansio::{
    Binary, ConnAck, Connect, ConnectReturnCode, DecodeError, Decoder, Instant, Login,
    MAX_PACKET_SIZE, MqttString, Packet, PacketId, Profile, Publish, QoS, QosPid, Status, SubAck,
    SubAckCode, Subscribe, TopicFilter, TopicName, Unsubscribe, Will, decode_bytes,
};

/// Most operations taken from one input; the rest is ignored.
pub const MAX_OPS: usize = 256;

/// Most steps taken by one precise [`Step`] of time (each fires one timer).
const MAX_TIMER_FIRES: usize = 64;

// ----- shared pieces -----

/// Topic names to pick from: a few that filters match, a `$` topic, one over AWS IoT
/// Core's 256-byte limit and one over its 7-slash limit.
fn topic(i: u8) -> TopicName<Bytes> {
    let s: Bytes = match i % 9 {
        0 => Bytes::from_static(b"a"),
        1 => Bytes::from_static(b"a/b"),
        2 => Bytes::from_static(b"a/b/c"),
        3 => Bytes::from_static(b"s/1"),
        4 => Bytes::from_static(b"s/2"),
        5 => Bytes::from_static(b"$SYS/x"),
        6 => Bytes::from(vec![b't'; 300]),
        7 => Bytes::from_static(b"a/b/c/d/e/f/g/h/i"),
        _ => Bytes::from_static(b"/"),
    };
    TopicName::new(s).expect("a valid topic from the pool")
}

/// Topic filters to pick from, matching the names of [`topic`] in different ways.
fn filter(i: u8) -> TopicFilter<Bytes> {
    let s: Bytes = match i % 11 {
        0 => Bytes::from_static(b"#"),
        1 => Bytes::from_static(b"a/#"),
        2 => Bytes::from_static(b"a/+"),
        3 => Bytes::from_static(b"a/b"),
        4 => Bytes::from_static(b"+/+/c"),
        5 => Bytes::from_static(b"s/+"),
        6 => Bytes::from_static(b"$SYS/#"),
        7 => Bytes::from_static(b"a"),
        8 => Bytes::from(vec![b'f'; 300]),
        9 => Bytes::from_static(b"+/+/+/+/+/+/+/+/+"),
        _ => Bytes::from_static(b"s/1"),
    };
    TopicFilter::new(s).expect("a valid filter from the pool")
}

/// Client ids to pick from: empty (the server assigns one), two short ones, and one over
/// AWS IoT Core's 128-byte limit.
fn client_id(i: u8) -> MqttString<Bytes> {
    let s: Bytes = match i % 4 {
        0 => Bytes::new(),
        1 => Bytes::from_static(b"c1"),
        2 => Bytes::from_static(b"c2"),
        _ => Bytes::from(vec![b'c'; 130]),
    };
    MqttString::new(s).expect("a valid client id from the pool")
}

/// A small packet id, so that repeats and collisions happen.
fn small_id(i: u8) -> PacketId {
    PacketId::new(u16::from(i % 8) + 1).expect("non-zero")
}

/// A payload: `n` bytes, except that 255 stands for one byte over AWS IoT Core's
/// 128 KiB limit (rare, as large payloads are slow to check).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Payload(pub u8);

impl Payload {
    fn bytes(self) -> Bytes {
        match self.0 {
            255 => Bytes::from(vec![b'L'; 128 * 1024 + 1]),
            n => Bytes::from(vec![b'p'; usize::from(n)]),
        }
    }
}

/// A will, from the pools.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct WillSpec {
    /// Topic pool index.
    pub topic: u8,
    /// Its QoS.
    pub qos: QoS,
    /// Its RETAIN flag.
    pub retain: bool,
    /// Its message.
    pub payload: Payload,
}

impl WillSpec {
    fn build(self) -> Will<Bytes> {
        Will {
            topic: topic(self.topic),
            // A will message has a two-byte length: the large payload is cut to fit.
            message: Binary::new(self.payload.bytes())
                .unwrap_or_else(|_| Binary::new(Bytes::from(vec![b'W'; 65_535])).expect("fits")),
            qos: self.qos,
            retain: self.retain,
        }
    }
}

/// A CONNECT, from the pools.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ConnectSpec {
    /// Client id pool index.
    pub client: u8,
    /// The CleanSession flag.
    pub clean: bool,
    /// The keep-alive, in seconds.
    pub keep_alive: u8,
    /// The will.
    pub will: Option<WillSpec>,
    /// Whether a user name and password are sent.
    pub login: bool,
}

impl ConnectSpec {
    fn build(self) -> Connect<Bytes> {
        Connect {
            client_id: client_id(self.client),
            clean_session: self.clean,
            keep_alive: u16::from(self.keep_alive),
            will: self.will.map(WillSpec::build),
            login: self.login.then(|| Login {
                username: MqttString::from_static("user").expect("valid"),
                password: Some(Binary::new(Bytes::from_static(b"pw")).expect("valid")),
            }),
        }
    }
}

/// How bytes reach the machine: in one call, split in two calls, or (client only) as a
/// decoded packet through `handle_packet`.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Delivery {
    /// One `handle_bytes` call.
    Whole,
    /// Two `handle_bytes` calls, split at this offset (modulo the length).
    Split(u16),
    /// `handle_packet` with the packet itself (client only; others use `Whole`).
    Direct,
}

/// Time passing.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Step {
    /// Some milliseconds.
    Millis(u16),
    /// Some seconds.
    Seconds(u16),
}

impl Step {
    fn duration(self) -> Duration {
        match self {
            Step::Millis(n) => Duration::from_millis(u64::from(n)),
            Step::Seconds(n) => Duration::from_secs(u64::from(n)),
        }
    }
}

/// Splits `bytes` as `how` says.
fn chunks(bytes: &[u8], how: Delivery) -> Vec<&[u8]> {
    match how {
        Delivery::Split(at) if !bytes.is_empty() => {
            let at = usize::from(at) % (bytes.len() + 1);
            vec![&bytes[..at], &bytes[at..]]
        }
        _ => vec![bytes],
    }
}

/// A packet a machine sends must encode, with `encoded_len` exact, and decode back to
/// itself from exactly its bytes.
pub fn assert_wire_roundtrip(p: &Packet<Bytes>) {
    let enc = p
        .to_bytes()
        .unwrap_or_else(|e| panic!("a sent packet does not encode ({e:?}): {p:?}"));
    assert_eq!(
        enc.len(),
        p.encoded_len(),
        "encoded_len is not the encoded length"
    );
    let mut buf = BytesMut::from(&enc[..]);
    match decode_bytes(&mut buf) {
        Ok(Status::Complete(q, n)) => {
            assert_eq!(n, enc.len(), "a sent packet decodes from another length");
            assert_eq!(&q, p, "a sent packet decodes to another packet");
        }
        other => panic!("a sent packet {p:?} decodes to {other:?}"),
    }
}

/// The packet id of a PUBLISH at QoS 1 or 2.
fn publish_id(p: &Packet<Bytes>) -> Option<(PacketId, bool)> {
    match p {
        Packet::Publish(p) => p.qos.packet_id().map(|id| (id, p.dup)),
        _ => None,
    }
}

/// Checks the timer contract around one `handle_timeout(now)` call of any machine:
/// before its instant (or with no timer) the call does nothing; after it the next
/// instant is not earlier than `now`, and the machine settles: when it asks for `now`
/// again, a second call leaves it asking for a later instant (or none), and only when
/// `equal_allowed` (a zero timeout configured).
pub fn check_fire<T>(
    run: &mut T,
    now: Instant,
    equal_allowed: bool,
    fire: impl Fn(&mut T) -> usize,
    wake: impl Fn(&T) -> Option<Instant>,
) {
    let before = wake(run);
    let early = before.is_none_or(|t| t > now);
    let actions = fire(run);
    let after = wake(run);
    if early {
        assert_eq!(actions, 0, "handle_timeout before the timer acted");
        assert_eq!(after, before, "handle_timeout before the timer moved it");
        return;
    }
    assert!(
        after.is_none_or(|t| t >= now),
        "after handle_timeout({now:?}) the next timer is earlier: {after:?}"
    );
    if after == Some(now) {
        assert!(
            equal_allowed,
            "after handle_timeout({now:?}) the machine asks for {now:?} again"
        );
        fire(run);
        let again = wake(run);
        assert!(
            again.is_none_or(|t| t > now),
            "the timers do not settle at {now:?}: {again:?}"
        );
    }
}

/// A decoder of the peer's byte stream, mirroring what the machine decodes: `feed`
/// returns the complete packets, and an error is final.
#[derive(Default)]
struct Shadow {
    buf: BytesMut,
    err: Option<DecodeError>,
    decoder: Decoder,
}

impl Shadow {
    fn with_limit(max: usize) -> Shadow {
        Shadow {
            decoder: Decoder::new().with_max_packet_size(max),
            ..Shadow::default()
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.err = None;
    }

    fn feed(&mut self, bytes: &[u8]) -> Vec<Packet<Bytes>> {
        let mut out = Vec::new();
        if self.err.is_some() {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            match self.decoder.decode_bytes(&mut self.buf) {
                Ok(Status::Complete(p, _)) => out.push(p),
                Ok(Status::Incomplete(_)) => return out,
                Err(e) => {
                    self.err = Some(e);
                    return out;
                }
            }
        }
    }
}

/// Reads a setup and then operations until the input runs out (or stops making one),
/// at most [`MAX_OPS`]; nothing when the input does not make a setup.
fn parse<'a, S: Arbitrary<'a>, O: Arbitrary<'a>>(data: &'a [u8]) -> Option<(S, Vec<O>)> {
    let mut u = Unstructured::new(data);
    let setup = S::arbitrary(&mut u).ok()?;
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match O::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    Some((setup, ops))
}

// ----- client -----

/// The setup of a `client` run.
#[derive(Arbitrary, Debug, Clone)]
pub struct ClientSetup {
    /// AWS IoT Core instead of MQTT 3.1.1.
    pub aws: bool,
    /// CONNACK timeout, ms.
    pub connack_timeout_ms: u16,
    /// PINGRESP timeout, ms.
    pub pingresp_timeout_ms: u16,
    /// The inflight window (0 to 7).
    pub max_inflight: u8,
    /// Manual acknowledgements.
    pub manual_acks: bool,
    /// Largest accepted packet: `None` the default, else at least 2 bytes.
    pub max_packet_size: Option<u16>,
}

impl ClientSetup {
    fn build(&self) -> (Profile, ClientConfig) {
        let profile = if self.aws {
            Profile::aws_iot_core()
        } else {
            Profile::mqtt311()
        };
        let config = ClientConfig {
            connack_timeout: Duration::from_millis(u64::from(self.connack_timeout_ms)),
            pingresp_timeout: Duration::from_millis(u64::from(self.pingresp_timeout_ms)),
            max_inflight: usize::from(self.max_inflight % 8),
            manual_acks: self.manual_acks,
            max_packet_size: self
                .max_packet_size
                .map_or(MAX_PACKET_SIZE, |n| usize::from(n).max(2)),
            // Small, so that operation sequences reach the bound.
            max_held_qos0: usize::from(self.max_inflight % 4),
            // Checked against the export after every input.
            report_changes: true,
        };
        (profile, config)
    }
}

/// Which acknowledgement the scripted server sends for an id the client has in flight.
#[derive(Arbitrary, Debug, Clone)]
pub enum AckKind {
    /// PUBACK.
    PubAck,
    /// PUBREC.
    PubRec,
    /// PUBCOMP.
    PubComp,
    /// SUBACK with one code per filter of the SUBSCRIBE.
    SubAck(SubAckCode),
    /// SUBACK with these codes (often the wrong number).
    SubAckCodes(Vec<SubAckCode>),
    /// UNSUBACK.
    UnsubAck,
}

/// What the scripted server sends the client.
#[derive(Arbitrary, Debug, Clone)]
pub enum Reply {
    /// CONNACK.
    ConnAck(ConnAck),
    /// An acknowledgement for the `which`-th id in flight (an id of its own when none).
    Ack {
        /// Index into the ids in flight.
        which: u8,
        /// Which acknowledgement.
        kind: AckKind,
    },
    /// A PUBLISH with a small packet id.
    Publish {
        /// Topic pool index.
        topic: u8,
        /// QoS.
        qos: QoS,
        /// Packet id (small pool).
        id: u8,
        /// DUP (only at QoS 1 and 2).
        dup: bool,
        /// RETAIN.
        retain: bool,
        /// Payload.
        payload: Payload,
    },
    /// PUBREL with a small packet id.
    PubRel(u8),
    /// PINGRESP.
    PingResp,
    /// Any valid packet.
    Any(Packet<Bytes>),
    /// Any bytes.
    Raw(Vec<u8>),
}

/// One operation of a `client` run.
#[derive(Arbitrary, Debug, Clone)]
pub enum ClientOp {
    /// `connect`.
    Connect(ConnectSpec),
    /// `publish`.
    Publish {
        /// Topic pool index.
        topic: u8,
        /// QoS.
        qos: QoS,
        /// RETAIN.
        retain: bool,
        /// Payload.
        payload: Payload,
    },
    /// `subscribe` (pool indices; empty is refused).
    Subscribe(Vec<(u8, QoS)>),
    /// `unsubscribe` (pool indices; empty is refused).
    Unsubscribe(Vec<u8>),
    /// `ack` of the `n`-th delivery awaiting the application, or of a small id.
    Ack(u8),
    /// `disconnect`.
    Disconnect,
    /// `connection_lost`.
    ConnectionLost,
    /// Something from the server.
    Peer(Reply, Delivery),
    /// Time passes; `precise` fires every timer at its instant, otherwise the
    /// timer fires once, late.
    Advance(Step, bool),
    /// `handle_timeout` now, due or not.
    Fire,
}

/// A `client` input: setup and operations.
#[derive(Arbitrary, Debug, Clone)]
pub struct ClientInput {
    /// The setup.
    pub setup: ClientSetup,
    /// The operations.
    pub ops: Vec<ClientOp>,
}

/// What an outgoing id is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdUse {
    Publish { qos2: bool },
    Subscribe(usize),
    Unsubscribe,
}

/// One entry of a client run's transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRecord {
    /// A command's or input's result.
    Result(Result<Option<PacketId>, ClientError>),
    /// An action.
    Action(ClientAction),
    /// `poll_timeout` after an input.
    Wake(Option<Instant>),
}

/// A client, a clock and the model its actions are checked against.
struct ClientRun {
    client: Client,
    profile: Profile,
    config: ClientConfig,
    now: Instant,
    log: Vec<ClientRecord>,
    /// Between a successful `connect` and its `Close` or `connection_lost`.
    open: bool,
    /// CONNACK accepted the current connection.
    connected: bool,
    /// The CleanSession flag of the current (or last) connection.
    clean: bool,
    /// Packets sent on the current connection.
    sent: usize,
    /// DISCONNECT was sent: only `Close` may follow.
    disconnecting: bool,
    /// The ids in use, from the commands' results, freed by the events.
    ids: BTreeMap<PacketId, IdUse>,
    /// QoS 1/2 PUBLISH ids sent with DUP=0 (once per use of the id).
    fresh: BTreeSet<PacketId>,
    /// QoS 2 ids whose PUBREC arrived.
    received: BTreeSet<PacketId>,
    /// Incoming QoS 2 ids delivered, awaiting PUBREL.
    incoming_qos2: BTreeSet<PacketId>,
    /// Deliveries awaiting the application's `ack`.
    to_ack: Vec<PacketId>,
    /// The client's read buffer, mirrored.
    shadow: Shadow,
    /// The first export with every reported change applied: the export, always.
    durable: ClientExport,
}

impl ClientRun {
    fn new(setup: &ClientSetup) -> ClientRun {
        let (profile, config) = setup.build();
        ClientRun {
            client: Client::with_config(profile.clone(), config.clone()),
            shadow: Shadow::with_limit(config.max_packet_size),
            profile,
            config,
            now: Instant::ZERO,
            log: Vec::new(),
            open: false,
            connected: false,
            clean: true,
            sent: 0,
            disconnecting: false,
            ids: BTreeMap::new(),
            fresh: BTreeSet::new(),
            received: BTreeSet::new(),
            incoming_qos2: BTreeSet::new(),
            to_ack: Vec::new(),
            durable: ClientExport::default(),
        }
    }

    fn free(&mut self, id: PacketId, what: &str) -> IdUse {
        let Some(use_) = self.ids.remove(&id) else {
            panic!("{what} frees id {id}, which is not in use");
        };
        self.fresh.remove(&id);
        self.received.remove(&id);
        use_
    }

    fn connection_ended(&mut self) {
        self.open = false;
        self.connected = false;
        self.disconnecting = false;
        self.to_ack.clear();
        self.shadow.reset();
        if self.clean {
            self.incoming_qos2.clear();
        }
    }

    fn on_send(&mut self, p: &Packet<Bytes>) {
        assert!(self.open, "sent {p:?} without an open connection");
        assert!(!self.disconnecting, "sent {p:?} after DISCONNECT");
        assert_wire_roundtrip(p);
        assert!(
            matches!(
                p,
                Packet::Connect(_)
                    | Packet::Publish(_)
                    | Packet::PubAck(_)
                    | Packet::PubRec(_)
                    | Packet::PubRel(_)
                    | Packet::PubComp(_)
                    | Packet::Subscribe(_)
                    | Packet::Unsubscribe(_)
                    | Packet::PingReq
                    | Packet::Disconnect
            ),
            "a client sent a server's packet: {p:?}"
        );
        if self.sent == 0 {
            assert!(
                matches!(p, Packet::Connect(_)),
                "first packet {p:?} is not CONNECT"
            );
        } else {
            assert!(!matches!(p, Packet::Connect(_)), "a second CONNECT");
            if !self.connected {
                // MQTT-3.1.0-1; commands are held until CONNACK.
                assert!(
                    matches!(p, Packet::PingReq) && self.profile.send_before_connack,
                    "sent {p:?} before CONNACK"
                );
            }
        }
        self.sent += 1;
        match p {
            Packet::Publish(publish) => {
                if let Some(id) = publish.qos.packet_id() {
                    let qos2 = matches!(publish.qos, QosPid::ExactlyOnce(_));
                    assert_eq!(
                        self.ids.get(&id),
                        Some(&IdUse::Publish { qos2 }),
                        "PUBLISH with id {id} not in use by a message of its QoS"
                    );
                    // MQTT-4.3.3-1: after PUBREC the PUBLISH is never sent again.
                    assert!(
                        !self.received.contains(&id),
                        "PUBLISH {id} after its PUBREC"
                    );
                    if publish.dup {
                        assert!(
                            self.fresh.contains(&id),
                            "DUP=1 on PUBLISH {id}, never sent before"
                        );
                    } else {
                        assert!(self.fresh.insert(id), "PUBLISH {id} sent twice with DUP=0");
                    }
                } else {
                    assert!(!publish.dup, "DUP=1 at QoS 0");
                }
            }
            Packet::Subscribe(s) => assert_eq!(
                self.ids.get(&s.packet_id),
                Some(&IdUse::Subscribe(s.filters().count())),
                "SUBSCRIBE with an id not in use by it"
            ),
            Packet::Unsubscribe(u) => assert_eq!(
                self.ids.get(&u.packet_id),
                Some(&IdUse::Unsubscribe),
                "UNSUBSCRIBE with an id not in use by it"
            ),
            Packet::PubRel(id) => assert!(
                self.ids.get(id) == Some(&IdUse::Publish { qos2: true })
                    && self.received.contains(id),
                "PUBREL {id} without its PUBREC"
            ),
            Packet::PubComp(id) => {
                self.incoming_qos2.remove(id);
            }
            Packet::Disconnect => self.disconnecting = true,
            _ => {}
        }
    }

    fn on_event(&mut self, e: &Event) {
        match e {
            Event::Connected { session_present } => {
                assert!(self.open && !self.connected, "Connected without a CONNECT");
                // MQTT-3.2.2-1: refused by the client otherwise.
                assert!(
                    !(self.clean && *session_present),
                    "session present after clean"
                );
                self.connected = true;
                if !session_present {
                    self.incoming_qos2.clear();
                }
            }
            Event::Published(id) => {
                let u = self.free(*id, "Published");
                assert_eq!(u, IdUse::Publish { qos2: false }, "Published for {u:?}");
            }
            Event::Received(id) => {
                assert_eq!(
                    self.ids.get(id),
                    Some(&IdUse::Publish { qos2: true }),
                    "Received for an id not used by a QoS 2 message"
                );
                assert!(self.received.insert(*id), "Received twice for {id}");
            }
            Event::Completed(id) => {
                assert!(self.received.contains(id), "Completed before Received");
                self.free(*id, "Completed");
            }
            Event::Subscribed { packet_id, codes } => {
                let u = self.free(*packet_id, "Subscribed");
                assert_eq!(u, IdUse::Subscribe(codes.len()), "Subscribed for {u:?}");
            }
            Event::Unsubscribed(id) => {
                let u = self.free(*id, "Unsubscribed");
                assert_eq!(u, IdUse::Unsubscribe, "Unsubscribed for {u:?}");
            }
            Event::UnexpectedAck { .. } => {}
            Event::Lost(lost) => match lost {
                Lost::Publish(p) => {
                    if let Some(id) = p.qos.packet_id() {
                        self.free(id, "Lost(Publish)");
                    }
                }
                Lost::Release(id) => {
                    assert!(self.received.contains(id), "Lost(Release) before PUBREC");
                    self.free(*id, "Lost(Release)");
                }
                Lost::Subscribe(s) => {
                    self.free(s.packet_id, "Lost(Subscribe)");
                }
                Lost::Unsubscribe(u) => {
                    self.free(u.packet_id, "Lost(Unsubscribe)");
                }
            },
        }
    }

    /// Drains and checks the actions; returns how many there were.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(a) = self.client.poll_action() {
            n += 1;
            if self.disconnecting {
                assert!(
                    matches!(
                        a,
                        ClientAction::Close(mqtt_sansio::client::Reason::Disconnected)
                    ),
                    "{a:?} follows DISCONNECT instead of Close"
                );
            }
            match &a {
                ClientAction::Send(p) => self.on_send(p),
                ClientAction::Deliver(p) => {
                    assert!(self.connected, "delivered {p:?} before CONNACK");
                    if let QosPid::ExactlyOnce(id) = p.qos {
                        // Method B of MQTT-4.3.3-2: once until PUBREL.
                        assert!(self.incoming_qos2.insert(id), "QoS 2 {id} delivered twice");
                    }
                    if let Some(id) = p.qos.packet_id() {
                        if self.config.manual_acks {
                            self.to_ack.push(id);
                        }
                    }
                }
                ClientAction::Event(e) => self.on_event(e),
                ClientAction::Change(c) => {
                    if let Err(e) = self.durable.apply(c) {
                        panic!("{c:?} does not apply to the export: {e}");
                    }
                }
                ClientAction::Close(reason) => {
                    assert!(self.open, "Close {reason:?} without an open connection");
                    if let mqtt_sansio::client::Reason::Decode(e) = reason {
                        assert_eq!(
                            self.shadow.err,
                            Some(*e),
                            "closed for a decode error the byte stream does not have"
                        );
                    }
                    self.connection_ended();
                }
            }
            self.log.push(ClientRecord::Action(a));
        }
        n
    }

    /// The getters agree with the model.
    fn check_state(&self) {
        use mqtt_sansio::ClientState;
        let export = self.client.export();
        assert_eq!(
            self.durable, export,
            "the changes applied to the first export are not the export"
        );
        assert_eq!(
            ClientExport::from_bytes(&export.to_bytes()),
            Ok(export),
            "the export does not survive its encoding"
        );
        let expected = match (self.open, self.connected) {
            (false, _) => ClientState::Disconnected,
            (true, false) => ClientState::Connecting,
            (true, true) => ClientState::Connected,
        };
        assert_eq!(
            self.client.state(),
            expected,
            "the state is not the model's"
        );
        assert_eq!(
            self.client.ids_in_use(),
            self.ids.len(),
            "ids in use differ"
        );
        for id in self.ids.keys() {
            assert!(
                self.client.id_in_use(*id),
                "id {id} in use but not reported"
            );
        }
        let publishes = self
            .ids
            .values()
            .filter(|u| matches!(u, IdUse::Publish { .. }))
            .count();
        assert_eq!(
            self.client.inflight(),
            publishes,
            "inflight is not the model's"
        );
        let window = mqtt_sansio::session::window(self.config.max_inflight, &self.profile);
        assert!(
            self.client.inflight() <= window,
            "inflight {} over the window {window}",
            self.client.inflight(),
        );
    }

    /// Runs a command, checking that a refused one changes nothing.
    fn command(
        &mut self,
        f: impl FnOnce(&mut Client, Instant) -> Result<Option<PacketId>, ClientError>,
    ) -> Result<Option<PacketId>, ClientError> {
        let before = (
            self.client.state(),
            self.client.ids_in_use(),
            self.client.inflight(),
            self.client.poll_timeout(),
        );
        let r = f(&mut self.client, self.now);
        self.log.push(ClientRecord::Result(r));
        if r.is_err() {
            assert!(
                self.client.poll_action().is_none(),
                "a refused command acted"
            );
            let after = (
                self.client.state(),
                self.client.ids_in_use(),
                self.client.inflight(),
                self.client.poll_timeout(),
            );
            assert_eq!(before, after, "a refused command changed the client");
        }
        r
    }

    fn fresh_id(&mut self, r: Result<Option<PacketId>, ClientError>, use_: IdUse) {
        if let Ok(Some(id)) = r {
            assert!(
                self.ids.insert(id, use_).is_none(),
                "id {id} allocated while in use"
            );
            assert!(self.client.id_in_use(id), "allocated id {id} not in use");
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        let was_open = self.open;
        let r = self
            .client
            .handle_bytes(self.now, bytes)
            .map(|()| None::<PacketId>);
        self.log.push(ClientRecord::Result(r));
        assert_eq!(
            r.is_err(),
            !was_open,
            "handle_bytes refused iff not connected"
        );
        if was_open {
            self.shadow.feed(bytes);
        }
        self.drain();
        if self.open {
            // Everything complete was handled; a partial packet within the limit stays.
            assert_eq!(
                self.shadow.err, None,
                "a bad stream left the connection open"
            );
            assert!(
                self.shadow.buf.len() < self.config.max_packet_size.max(5),
                "{} bytes buffered with a {}-byte packet limit",
                self.shadow.buf.len(),
                self.config.max_packet_size
            );
        }
    }

    fn reply_packet(&self, reply: &Reply) -> Result<Packet<Bytes>, Vec<u8>> {
        Ok(match reply {
            Reply::ConnAck(a) => Packet::ConnAck(*a),
            Reply::Ack { which, kind } => {
                let ids: Vec<(PacketId, IdUse)> = self.ids.iter().map(|(i, u)| (*i, *u)).collect();
                let (id, use_) = if ids.is_empty() {
                    (small_id(*which), IdUse::Subscribe(1))
                } else {
                    ids[usize::from(*which) % ids.len()]
                };
                match kind {
                    AckKind::PubAck => Packet::PubAck(id),
                    AckKind::PubRec => Packet::PubRec(id),
                    AckKind::PubComp => Packet::PubComp(id),
                    AckKind::UnsubAck => Packet::UnsubAck(id),
                    AckKind::SubAck(code) => {
                        let n = match use_ {
                            IdUse::Subscribe(n) => n.max(1),
                            _ => 1,
                        };
                        Packet::SubAck(SubAck::new(id, vec![*code; n]).expect("non-empty"))
                    }
                    AckKind::SubAckCodes(codes) => match SubAck::new(id, codes.clone()) {
                        Ok(s) => Packet::SubAck(s),
                        Err(_) => Packet::SubAck(
                            SubAck::new(id, [SubAckCode::Failure]).expect("non-empty"),
                        ),
                    },
                }
            }
            Reply::Publish {
                topic: t,
                qos,
                id,
                dup,
                retain,
                payload,
            } => {
                let qos = match qos {
                    QoS::AtMostOnce => QosPid::AtMostOnce,
                    q => QosPid::new(*q, small_id(*id)),
                };
                Packet::Publish(Publish {
                    dup: *dup && qos != QosPid::AtMostOnce,
                    qos,
                    retain: *retain,
                    topic: topic(*t),
                    payload: payload.bytes(),
                })
            }
            Reply::PubRel(id) => Packet::PubRel(small_id(*id)),
            Reply::PingResp => Packet::PingResp,
            Reply::Any(p) => p.clone(),
            Reply::Raw(b) => return Err(b.clone()),
        })
    }

    fn fire(&mut self) {
        let now = self.now;
        let equal_allowed = self.config.pingresp_timeout.is_zero();
        check_fire(
            self,
            now,
            equal_allowed,
            |r| {
                r.client.handle_timeout(now);
                r.drain()
            },
            |r| r.client.poll_timeout(),
        );
    }

    fn advance(&mut self, step: Step, precise: bool) {
        let end = self.now + step.duration();
        if precise {
            for _ in 0..MAX_TIMER_FIRES {
                match self.client.poll_timeout() {
                    Some(t) if t <= end => {
                        self.now = self.now.max(t);
                        self.fire();
                    }
                    _ => break,
                }
            }
            self.now = end;
        } else {
            self.now = end;
            if self.client.poll_timeout().is_some_and(|t| t <= end) {
                self.fire();
            }
        }
    }

    fn apply(&mut self, op: &ClientOp) {
        match op {
            ClientOp::Connect(spec) => {
                let c = spec.build();
                let clean = c.clean_session;
                let was_open = self.open;
                let r = self.command(|cl, now| cl.connect(now, c).map(|()| None));
                if r.is_ok() {
                    assert!(!was_open, "connect accepted on an open connection");
                    self.open = true;
                    self.connected = false;
                    self.clean = clean;
                    self.sent = 0;
                    self.shadow.reset();
                    if clean {
                        self.incoming_qos2.clear();
                    }
                } else if was_open {
                    assert_eq!(r, Err(ClientError::AlreadyConnected));
                }
            }
            ClientOp::Publish {
                topic: t,
                qos,
                retain,
                payload,
            } => {
                let (t, qos, retain, payload) = (topic(*t), *qos, *retain, payload.bytes());
                let r = self.command(|cl, now| cl.publish(now, t, qos, retain, payload));
                let qos2 = qos == QoS::ExactlyOnce;
                if let Ok(id) = r {
                    assert_eq!(id.is_some(), qos != QoS::AtMostOnce, "id iff QoS 1/2");
                }
                self.fresh_id(r, IdUse::Publish { qos2 });
            }
            ClientOp::Subscribe(list) => {
                let filters: Vec<(TopicFilter<Bytes>, QoS)> = list
                    .iter()
                    .take(12)
                    .map(|(f, q)| (filter(*f), *q))
                    .collect();
                let n = filters.len();
                let r = self.command(|cl, now| cl.subscribe(now, &filters).map(Some));
                self.fresh_id(r, IdUse::Subscribe(n));
            }
            ClientOp::Unsubscribe(list) => {
                let filters: Vec<TopicFilter<Bytes>> =
                    list.iter().take(12).map(|f| filter(*f)).collect();
                let r = self.command(|cl, now| cl.unsubscribe(now, &filters).map(Some));
                self.fresh_id(r, IdUse::Unsubscribe);
            }
            ClientOp::Ack(n) => {
                let id = if self.to_ack.is_empty() {
                    small_id(*n)
                } else {
                    self.to_ack[usize::from(*n) % self.to_ack.len()]
                };
                let r = self.command(|cl, now| cl.ack(now, id).map(|()| None));
                if !self.config.manual_acks {
                    assert_eq!(r, Err(ClientError::ManualAcksDisabled));
                }
                if r.is_ok() {
                    if let Some(i) = self.to_ack.iter().position(|x| *x == id) {
                        self.to_ack.remove(i);
                    }
                }
            }
            ClientOp::Disconnect => {
                let was_open = self.open;
                let r = self.command(|cl, now| cl.disconnect(now).map(|()| None));
                assert_eq!(r.is_ok(), was_open, "disconnect refused iff not connected");
            }
            ClientOp::ConnectionLost => {
                self.client.connection_lost(self.now);
                if self.open {
                    self.connection_ended();
                }
            }
            ClientOp::Peer(reply, how) => match (self.reply_packet(reply), how) {
                (Ok(p), Delivery::Direct) => {
                    let was_open = self.open;
                    let r = self
                        .client
                        .handle_packet(self.now, p)
                        .map(|()| None::<PacketId>);
                    self.log.push(ClientRecord::Result(r));
                    assert_eq!(r.is_err(), !was_open, "handle_packet refused iff closed");
                }
                (Ok(p), how) => {
                    let bytes = p.to_bytes().expect("a valid packet encodes");
                    for chunk in chunks(&bytes, *how) {
                        self.bytes(chunk);
                    }
                }
                (Err(raw), how) => {
                    for chunk in chunks(&raw, *how) {
                        self.bytes(chunk);
                    }
                }
            },
            ClientOp::Advance(step, precise) => self.advance(*step, *precise),
            ClientOp::Fire => self.fire(),
        }
        self.drain();
        self.check_state();
        self.log
            .push(ClientRecord::Wake(self.client.poll_timeout()));
    }
}

/// Runs a `client` input, checking every step; returns the transcript.
pub fn run_client(input: &ClientInput) -> Vec<ClientRecord> {
    let mut run = ClientRun::new(&input.setup);
    for op in input.ops.iter().take(MAX_OPS) {
        run.apply(op);
    }
    run.log
}

/// The `client` target: a client driven by arbitrary operations keeps every invariant,
/// and the same operations on a fresh client give the same transcript.
pub fn check_client(data: &[u8]) {
    let Some((setup, ops)) = parse(data) else {
        return;
    };
    let input = ClientInput { setup, ops };
    check_client_input(&input);
}

/// [`check_client`] for a built input.
pub fn check_client_input(input: &ClientInput) {
    let first = run_client(input);
    let second = run_client(input);
    assert!(
        first == second,
        "the same operations gave another transcript"
    );
}

// ----- the client side of a server connection (server and broker targets) -----

/// Which acknowledgement the scripted client sends for an id the server has in flight.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PeerAck {
    /// PUBACK.
    Ack,
    /// PUBREC.
    Rec,
    /// PUBCOMP.
    Comp,
}

/// What the scripted client sends a server (or a broker connection).
#[derive(Arbitrary, Debug, Clone)]
pub enum ClientPacket {
    /// CONNECT.
    Connect(ConnectSpec),
    /// A PUBLISH with a small packet id.
    Publish {
        /// Topic pool index.
        topic: u8,
        /// QoS.
        qos: QoS,
        /// Packet id (small pool).
        id: u8,
        /// DUP (only at QoS 1 and 2).
        dup: bool,
        /// RETAIN.
        retain: bool,
        /// Payload.
        payload: Payload,
    },
    /// An acknowledgement for the `which`-th id the server sent and the client has not
    /// acknowledged (a small id when none).
    Ack {
        /// Index into those ids.
        which: u8,
        /// Which acknowledgement.
        kind: PeerAck,
    },
    /// PUBREL with a small packet id.
    PubRel(u8),
    /// SUBSCRIBE (pool indices; the first filter when empty).
    Subscribe(u8, Vec<(u8, QoS)>),
    /// UNSUBSCRIBE (pool indices; the first filter when empty).
    Unsubscribe(u8, Vec<u8>),
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect,
    /// Any valid packet.
    Any(Packet<Bytes>),
    /// Any bytes.
    Raw(Vec<u8>),
}

/// The scripted client's view of one connection: the ids of the server's QoS 1/2
/// PUBLISH it has not acknowledged, read from what it sent (a decoder of its own byte
/// stream, so that acknowledgements inside arbitrary bytes count too).
#[derive(Default)]
struct Peer {
    unacked: BTreeSet<PacketId>,
    stream: Shadow,
}

impl Peer {
    /// The bytes of `packet`, built against what the client has seen.
    fn build(&self, packet: &ClientPacket) -> Vec<u8> {
        let p = match packet {
            ClientPacket::Connect(spec) => Packet::Connect(spec.build()),
            ClientPacket::Publish {
                topic: t,
                qos,
                id,
                dup,
                retain,
                payload,
            } => {
                let qos = match qos {
                    QoS::AtMostOnce => QosPid::AtMostOnce,
                    q => QosPid::new(*q, small_id(*id)),
                };
                Packet::Publish(Publish {
                    dup: *dup && qos != QosPid::AtMostOnce,
                    qos,
                    retain: *retain,
                    topic: topic(*t),
                    payload: payload.bytes(),
                })
            }
            ClientPacket::Ack { which, kind } => {
                let ids: Vec<PacketId> = self.unacked.iter().copied().collect();
                let id = if ids.is_empty() {
                    small_id(*which)
                } else {
                    ids[usize::from(*which) % ids.len()]
                };
                match kind {
                    PeerAck::Ack => Packet::PubAck(id),
                    PeerAck::Rec => Packet::PubRec(id),
                    PeerAck::Comp => Packet::PubComp(id),
                }
            }
            ClientPacket::PubRel(id) => Packet::PubRel(small_id(*id)),
            ClientPacket::Subscribe(id, list) => {
                let mut filters: Vec<(TopicFilter<Bytes>, QoS)> = list
                    .iter()
                    .take(12)
                    .map(|(f, q)| (filter(*f), *q))
                    .collect();
                if filters.is_empty() {
                    filters.push((filter(0), QoS::AtLeastOnce));
                }
                Packet::Subscribe(Subscribe::new(small_id(*id), &filters).expect("non-empty"))
            }
            ClientPacket::Unsubscribe(id, list) => {
                let mut filters: Vec<TopicFilter<Bytes>> =
                    list.iter().take(12).map(|f| filter(*f)).collect();
                if filters.is_empty() {
                    filters.push(filter(0));
                }
                Packet::Unsubscribe(Unsubscribe::new(small_id(*id), &filters).expect("non-empty"))
            }
            ClientPacket::PingReq => Packet::PingReq,
            ClientPacket::Disconnect => Packet::Disconnect,
            ClientPacket::Any(p) => p.clone(),
            ClientPacket::Raw(b) => return b.clone(),
        };
        p.to_bytes().expect("a valid packet encodes").to_vec()
    }

    /// The client sent `bytes`: an acknowledgement in them frees its id, as far as the
    /// client knows (a server may still hold it if it never read them).
    fn sent(&mut self, bytes: &[u8]) {
        for p in self.stream.feed(bytes) {
            if let Packet::PubAck(id) | Packet::PubComp(id) = p {
                self.unacked.remove(&id);
            }
        }
    }

    /// The server sent a QoS 1/2 PUBLISH: a new one (DUP=0) must not use an id the
    /// client still holds unacknowledged.
    fn received(&mut self, id: PacketId, dup: bool) {
        if !dup {
            assert!(
                self.unacked.insert(id),
                "a new PUBLISH uses id {id}, still in flight"
            );
        }
    }
}

/// The packets a server may send.
fn assert_server_packet(p: &Packet<Bytes>) {
    assert!(
        matches!(
            p,
            Packet::ConnAck(_)
                | Packet::Publish(_)
                | Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubRel(_)
                | Packet::PubComp(_)
                | Packet::SubAck(_)
                | Packet::UnsubAck(_)
                | Packet::PingResp
        ),
        "a server sent a client's packet: {p:?}"
    );
}

/// The bounds a session keeps under `config` and `profile`: the inflight window and the
/// queue, distinct ids in flight, the subscription limit.
fn assert_session_bounds(s: &ServerSession, config: &ServerConfig, profile: &Profile) {
    let window = mqtt_sansio::session::window(config.max_inflight, profile);
    assert!(
        s.inflight() <= window,
        "{} in flight over the window {window}",
        s.inflight()
    );
    let ids: BTreeSet<PacketId> = s.inflight_ids().collect();
    assert_eq!(ids.len(), s.inflight(), "an id twice in flight");
    assert!(
        s.queued() <= config.max_queued,
        "{} queued over the bound {}",
        s.queued(),
        config.max_queued
    );
    if let Some(max) = profile.max_subscriptions {
        let n = s.subscriptions().count();
        assert!(n <= max, "{n} subscriptions over the limit {max}");
    }
}

/// An authorizer with rules the pools reach: `c2` may not connect, `$SYS/#` is refused
/// and `#` granted QoS 0 at most, a PUBLISH to `s/2` is discarded and one to `$SYS/x`
/// closes the connection.
#[derive(Debug, Clone, Copy)]
struct Picky;

impl mqtt_sansio::Authorizer for Picky {
    fn connect(
        &self,
        client_id: &MqttString<Bytes>,
        _login: Option<&Login<Bytes>>,
    ) -> Result<(), ConnectReturnCode> {
        if client_id.as_bytes() == b"c2" {
            return Err(ConnectReturnCode::NotAuthorized);
        }
        Ok(())
    }

    fn subscribe(
        &self,
        _client_id: &MqttString<Bytes>,
        filter: &TopicFilter<Bytes>,
        requested: QoS,
    ) -> Option<QoS> {
        match filter.as_bytes() {
            b"$SYS/#" => None,
            b"#" => Some(QoS::AtMostOnce),
            _ => Some(requested),
        }
    }

    fn publish(
        &self,
        _client_id: &MqttString<Bytes>,
        message: &Message,
    ) -> mqtt_sansio::server::PublishDecision {
        use mqtt_sansio::server::PublishDecision;
        match message.topic.as_bytes() {
            b"s/2" => PublishDecision::Discard,
            b"$SYS/x" => PublishDecision::Close,
            _ => PublishDecision::Allow,
        }
    }
}

/// The per-connection settings of a `server` or `broker` run.
#[derive(Arbitrary, Debug, Clone)]
pub struct ServerSetup {
    /// AWS IoT Core instead of MQTT 3.1.1.
    pub aws: bool,
    /// CONNECT timeout, ms.
    pub connect_timeout_ms: u16,
    /// Queue bound (0 to 7).
    pub max_queued: u8,
    /// Inflight window (0 to 7; 0 acts as 1).
    pub max_inflight: u8,
    /// Inbound QoS 2 bound (0 to 7; 0 acts as 1).
    pub max_inbound_qos2: u8,
    /// The [`Picky`] authorizer instead of allowing everything.
    pub picky: bool,
}

impl ServerSetup {
    fn build(&self) -> (Profile, ServerConfig) {
        let profile = if self.aws {
            Profile::aws_iot_core()
        } else {
            Profile::mqtt311()
        };
        let mut config = ServerConfig {
            connect_timeout: Duration::from_millis(u64::from(self.connect_timeout_ms)),
            max_queued: usize::from(self.max_queued % 8),
            max_inflight: usize::from(self.max_inflight % 8),
            max_inbound_qos2: usize::from(self.max_inbound_qos2 % 8),
            ..ServerConfig::default()
        };
        if self.picky {
            config.authorizer = std::sync::Arc::new(Picky);
        }
        (profile, config)
    }
}

fn inbound_bound(config: &ServerConfig, profile: &Profile) -> usize {
    config.max_inbound_qos2.min(profile.max_inflight).max(1)
}

/// The largest packet a server connection buffers: a PUBLISH of the profile's largest
/// payload with its longest topic, and at least a CONNECT with every field at its
/// longest (the bound `PolicyViolation::BufferFull` refers to).
fn server_packet_limit(profile: &Profile) -> usize {
    profile
        .max_payload
        .saturating_add(profile.max_topic_len)
        .saturating_add(9)
        .clamp(5 * 65_537 + 15, MAX_PACKET_SIZE)
}

/// What a server leaves buffered once it has handled every complete packet: part of
/// one packet within the limit, and no stream error (that closes).
fn assert_buffered_within(rx: &Shadow, limit: usize) {
    assert_eq!(rx.err, None, "a bad stream left the connection open");
    assert!(
        rx.buf.len() < limit.max(5),
        "{} bytes buffered with a {limit}-byte packet limit",
        rx.buf.len()
    );
}

// ----- server -----

/// One operation of a `server` run.
#[derive(Arbitrary, Debug, Clone)]
pub enum ServerOp {
    /// Something from the client.
    Peer(ClientPacket, Delivery),
    /// `accept` (or `accept_as` an assigned id), resuming the stored session or not.
    Accept {
        /// Resume the session kept by [`ServerOp::Reopen`].
        resume: bool,
        /// Assign a client id.
        assign: bool,
    },
    /// `refuse`.
    Refuse(ConnectReturnCode),
    /// `publish` a message to the client.
    Publish {
        /// Topic pool index.
        topic: u8,
        /// QoS.
        qos: QoS,
        /// RETAIN.
        retain: bool,
        /// Payload.
        payload: Payload,
    },
    /// `connection_lost`.
    ConnectionClosed,
    /// `close_with` an application close.
    Close,
    /// `discard_will`.
    DiscardWill,
    /// A new connection: the old one's transport closes, its session is taken.
    Reopen,
    /// Time passes; `precise` fires every timer at its instant.
    Advance(Step, bool),
    /// `handle_timeout` now, due or not.
    Fire,
}

/// A `server` input: setup and operations.
#[derive(Arbitrary, Debug, Clone)]
pub struct ServerInput {
    /// The setup.
    pub setup: ServerSetup,
    /// The operations.
    pub ops: Vec<ServerOp>,
}

/// One entry of a server run's transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRecord {
    /// The result of `publish` (`true`: taken).
    Published(bool),
    /// An action.
    Action(ServerAction),
    /// `poll_timeout` after an input.
    Wake(Option<Instant>),
}

/// A session kept between connections, with the client's view of it.
struct Kept {
    session: ServerSession,
    unacked: BTreeSet<PacketId>,
    inbound: BTreeSet<PacketId>,
}

struct ServerRun {
    server: Server,
    profile: Profile,
    config: ServerConfig,
    now: Instant,
    log: Vec<ServerRecord>,
    closed: bool,
    /// CONNACK accepted the connection.
    accepted: bool,
    sent: usize,
    /// A refusing CONNACK was sent: its `Close` comes next.
    expect_close: Option<CloseReason>,
    /// The CONNECT awaiting an answer.
    awaiting: Option<mqtt_sansio::server::ConnectRequest>,
    /// What the accepted CONNACK must say, and the client's view of the session.
    pending_accept: Option<(bool, Option<Kept>)>,
    peer: Peer,
    /// The server's read buffer, mirrored: what it has not handled yet.
    rx: Shadow,
    /// The mirrored buffer has given up the CONNECT awaiting an answer.
    connect_taken: bool,
    /// Inbound QoS 2 ids awaiting PUBREL: PUBREC sent, PUBCOMP not yet.
    inbound: BTreeSet<PacketId>,
    kept: Option<Kept>,
}

impl ServerRun {
    fn new(setup: &ServerSetup) -> ServerRun {
        let (profile, config) = setup.build();
        ServerRun {
            server: Server::open(Instant::ZERO, profile.clone(), config.clone()),
            rx: Shadow::with_limit(server_packet_limit(&profile)),
            connect_taken: false,
            profile,
            config,
            now: Instant::ZERO,
            log: Vec::new(),
            closed: false,
            accepted: false,
            sent: 0,
            expect_close: None,
            awaiting: None,
            pending_accept: None,
            peer: Peer::default(),
            inbound: BTreeSet::new(),
            kept: None,
        }
    }

    fn on_send(&mut self, p: &Packet<Bytes>) {
        assert!(!self.closed, "sent {p:?} on a closed connection");
        assert!(
            self.expect_close.is_none(),
            "sent {p:?} after a refusing CONNACK"
        );
        assert_server_packet(p);
        assert_wire_roundtrip(p);
        if self.sent == 0 {
            assert!(
                matches!(p, Packet::ConnAck(_)),
                "first packet {p:?} is not CONNACK"
            );
        } else {
            assert!(!matches!(p, Packet::ConnAck(_)), "a second CONNACK");
        }
        self.sent += 1;
        match p {
            Packet::ConnAck(ConnAck::Accepted { session_present }) => {
                let Some((expected, kept)) = self.pending_accept.take() else {
                    panic!("CONNACK accepted without accept");
                };
                assert_eq!(*session_present, expected, "session present is wrong");
                self.accepted = true;
                self.awaiting = None;
                match kept {
                    Some(k) if *session_present => {
                        self.peer.unacked =
                            if self.profile.resend == mqtt_sansio::profile::ResendPolicy::FreshId {
                                BTreeSet::new()
                            } else {
                                k.unacked
                            };
                        self.inbound = k.inbound;
                    }
                    _ => {
                        self.peer.unacked.clear();
                        self.inbound.clear();
                    }
                }
            }
            Packet::ConnAck(ConnAck::Refused(code)) => {
                self.awaiting = None;
                self.expect_close = Some(CloseReason::Refused(*code));
            }
            Packet::Publish(_) => {
                assert!(self.accepted, "PUBLISH before CONNACK");
                if let Some((id, dup)) = publish_id(p) {
                    self.peer.received(id, dup);
                }
            }
            Packet::PubRec(id) => {
                self.inbound.insert(*id);
            }
            Packet::PubComp(id) => {
                self.inbound.remove(id);
            }
            _ => {}
        }
    }

    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(a) = self.server.poll_action() {
            n += 1;
            match &a {
                ServerAction::Send(p) => self.on_send(p),
                ServerAction::Close(reason) => {
                    assert!(!self.closed, "a second Close: {reason:?}");
                    if let Some(expected) = self.expect_close.take() {
                        assert_eq!(*reason, expected, "a refusing CONNACK closes otherwise");
                    }
                    self.closed = true;
                }
                ServerAction::Change(c) => panic!("{c:?} reported without report_changes"),
                ServerAction::Event(e) => match e {
                    ServerEvent::Connect(req) => {
                        assert!(
                            self.awaiting.is_none() && !self.accepted && !self.closed,
                            "a second CONNECT reported"
                        );
                        assert_eq!(self.sent, 0, "CONNECT reported after sending");
                        self.awaiting = Some(req.clone());
                    }
                    ServerEvent::Will(_) => {
                        assert!(self.closed && self.accepted, "a will before the close");
                    }
                    _ => assert!(
                        self.accepted && !self.closed,
                        "{e:?} outside an accepted connection"
                    ),
                },
            }
            self.log.push(ServerRecord::Action(a));
        }
        n
    }

    fn check_state(&self) {
        assert_eq!(
            self.server.is_closed(),
            self.closed,
            "closed is not the model's"
        );
        assert_eq!(
            self.server.is_connected(),
            self.accepted && !self.closed,
            "connected is not the model's"
        );
        assert_eq!(
            self.expect_close, None,
            "a refusing CONNACK without its Close"
        );
        assert_session_bounds(self.server.session(), &self.config, &self.profile);
        let bound = inbound_bound(&self.config, &self.profile);
        assert!(
            self.inbound.len() <= bound,
            "{} inbound QoS 2 awaiting PUBREL over the bound {bound}",
            self.inbound.len()
        );
    }

    fn bytes(&mut self, bytes: &[u8]) {
        if !self.closed {
            self.peer.sent(bytes);
            self.rx.buf.extend_from_slice(bytes);
        }
        self.server.handle_bytes(self.now, bytes);
        self.drain();
        self.check_buffer();
    }

    /// The mirrored read buffer: while a CONNECT awaits its answer, the server holds
    /// what follows it (closing beyond the limit); otherwise it handles every complete
    /// packet and keeps part of one.
    fn check_buffer(&mut self) {
        let limit = server_packet_limit(&self.profile);
        if self.closed {
            self.rx.reset();
        } else if self.awaiting.is_some() && !self.accepted {
            if !self.connect_taken {
                // The CONNECT itself was handled, and nothing after it.
                let first = self.rx.decoder.decode_bytes(&mut self.rx.buf);
                assert!(
                    matches!(first, Ok(Status::Complete(Packet::Connect(_), _))),
                    "CONNECT reported, but the stream starts with {first:?}"
                );
                self.connect_taken = true;
            }
            assert!(
                self.rx.buf.len() <= limit,
                "{} bytes held after CONNECT over the {limit}-byte limit",
                self.rx.buf.len()
            );
        } else {
            self.rx.feed(&[]);
            assert_buffered_within(&self.rx, limit);
        }
    }

    fn fire(&mut self) {
        let now = self.now;
        check_fire(
            self,
            now,
            false,
            |r| {
                r.server.handle_timeout(now);
                r.drain()
            },
            |r| r.server.poll_timeout(),
        );
    }

    fn advance(&mut self, step: Step, precise: bool) {
        let end = self.now + step.duration();
        if precise {
            for _ in 0..MAX_TIMER_FIRES {
                match self.server.poll_timeout() {
                    Some(t) if t <= end => {
                        self.now = self.now.max(t);
                        self.fire();
                    }
                    _ => break,
                }
            }
        } else if self.server.poll_timeout().is_some_and(|t| t <= end) {
            self.now = end;
            self.fire();
        }
        self.now = end;
    }

    /// An answer to a CONNECT that is not awaiting one is refused and does nothing.
    fn answer_without_connect(
        &mut self,
        f: impl FnOnce(&mut Server, Instant) -> Result<(), ServerError>,
    ) {
        let before = (self.server.is_closed(), self.server.poll_timeout());
        assert_eq!(
            f(&mut self.server, self.now),
            Err(ServerError::NotAwaitingAnswer),
            "an answer without CONNECT was not refused"
        );
        assert!(
            self.server.poll_action().is_none(),
            "an answer without CONNECT acted"
        );
        let after = (self.server.is_closed(), self.server.poll_timeout());
        assert_eq!(
            before, after,
            "an answer without CONNECT changed the server"
        );
    }

    fn apply(&mut self, op: &ServerOp) {
        match op {
            ServerOp::Peer(packet, how) => {
                let bytes = self.peer.build(packet);
                for chunk in chunks(&bytes, *how) {
                    self.bytes(chunk);
                }
            }
            ServerOp::Accept { resume, assign } => {
                let Some(req) = self.awaiting.clone().filter(|_| !self.closed) else {
                    let kept = if *resume {
                        self.kept.as_ref().map(|k| k.session.clone())
                    } else {
                        None
                    };
                    return self.answer_without_connect(|s, now| s.accept(now, kept));
                };
                let kept = if *resume { self.kept.take() } else { None };
                let expected = kept.is_some() && !req.clean_session;
                let session = kept.as_ref().map(|k| k.session.clone());
                self.pending_accept = Some((expected, kept));
                if *assign {
                    let id = MqttString::from_static("assigned").expect("valid");
                    self.server
                        .accept_as(self.now, Some(id), session)
                        .expect("a CONNECT awaits the answer");
                } else {
                    self.server
                        .accept(self.now, session)
                        .expect("a CONNECT awaits the answer");
                }
                self.drain();
                assert!(self.pending_accept.is_none(), "accept sent no CONNACK");
                self.check_buffer();
            }
            ServerOp::Refuse(code) => {
                if self.awaiting.is_none() || self.closed {
                    return self.answer_without_connect(|s, now| s.refuse(now, *code));
                }
                self.server
                    .refuse(self.now, *code)
                    .expect("a CONNECT awaits the answer");
                self.drain();
                assert!(self.closed, "refuse did not close");
            }
            ServerOp::Publish {
                topic: t,
                qos,
                retain,
                payload,
            } => {
                let m = Message {
                    topic: topic(*t),
                    payload: payload.bytes(),
                    qos: *qos,
                    retain: *retain,
                };
                let queued = self.server.session().queued();
                let full = *qos != QoS::AtMostOnce && queued >= self.config.max_queued;
                let expected = if self.accepted { !full } else { false };
                let r = self.server.publish(self.now, m.clone());
                self.log.push(ServerRecord::Published(r.is_ok()));
                assert_eq!(r.is_ok(), expected, "publish taken or refused wrongly");
                if let Err(back) = r {
                    assert_eq!(back.0, m, "publish gave back another message");
                    assert!(
                        self.server.poll_action().is_none(),
                        "a refused publish acted"
                    );
                    assert_eq!(self.server.session().queued(), queued, "refused but queued");
                }
            }
            ServerOp::ConnectionClosed => {
                let was_closed = self.closed;
                self.server.connection_lost(self.now);
                self.closed = true;
                let n = self.log.len();
                self.drain();
                let closes = self.log[n..]
                    .iter()
                    .filter(|r| matches!(r, ServerRecord::Action(ServerAction::Close(_))))
                    .count();
                assert_eq!(closes, 0, "connection_lost produced a Close");
                if was_closed {
                    assert_eq!(self.log.len(), n, "connection_lost after close acted");
                }
            }
            ServerOp::Close => {
                let was_closed = self.closed;
                self.server.close_with(self.now, CloseReason::Application);
                let n = self.drain();
                assert!(self.closed, "close_with did not close");
                if was_closed {
                    assert_eq!(n, 0, "close_with after close acted");
                }
            }
            ServerOp::DiscardWill => self.server.discard_will(),
            ServerOp::Reopen => {
                if !self.closed {
                    self.server.connection_lost(self.now);
                    self.closed = true;
                    self.drain();
                }
                let session = self.server.take_session();
                assert!(session.is_some(), "a closed connection kept its session");
                if self.accepted {
                    if let Some(session) = session {
                        self.kept = Some(Kept {
                            session,
                            unacked: core::mem::take(&mut self.peer.unacked),
                            inbound: core::mem::take(&mut self.inbound),
                        });
                    }
                }
                self.server = Server::open(self.now, self.profile.clone(), self.config.clone());
                self.closed = false;
                self.accepted = false;
                self.sent = 0;
                self.awaiting = None;
                self.pending_accept = None;
                self.peer = Peer::default();
                self.rx.reset();
                self.connect_taken = false;
                self.inbound.clear();
            }
            ServerOp::Advance(step, precise) => self.advance(*step, *precise),
            ServerOp::Fire => self.fire(),
        }
        self.drain();
        self.check_state();
        self.log
            .push(ServerRecord::Wake(self.server.poll_timeout()));
    }
}

/// Runs a `server` input, checking every step; returns the transcript.
pub fn run_server(input: &ServerInput) -> Vec<ServerRecord> {
    let mut run = ServerRun::new(&input.setup);
    for op in input.ops.iter().take(MAX_OPS) {
        run.apply(op);
    }
    run.log
}

/// The `server` target: a server connection driven by arbitrary operations keeps every
/// invariant, and the same operations on a fresh server give the same transcript.
pub fn check_server(data: &[u8]) {
    let Some((setup, ops)) = parse(data) else {
        return;
    };
    let input = ServerInput { setup, ops };
    check_server_input(&input);
}

/// [`check_server`] for a built input.
pub fn check_server_input(input: &ServerInput) {
    let first = run_server(input);
    let second = run_server(input);
    assert!(
        first == second,
        "the same operations gave another transcript"
    );
}

// ----- broker -----

/// The setup of a `broker` run.
#[derive(Arbitrary, Debug, Clone)]
pub struct BrokerSetup {
    /// The per-connection settings.
    pub connection: ServerSetup,
    /// Session bound (0 to 5), if any.
    pub max_sessions: Option<u8>,
    /// Retained message bound (0 to 5), if any.
    pub max_retained: Option<u8>,
}

/// One operation of a `broker` run, on one of four connection ids.
#[derive(Arbitrary, Debug, Clone)]
pub enum BrokerOp {
    /// `open`.
    Open(u8),
    /// Something from the client on a connection.
    Peer(u8, ClientPacket, Delivery),
    /// `close` by the application.
    Close(u8),
    /// `connection_lost`: the transport ended.
    ConnectionClosed(u8),
    /// Time passes; `precise` fires every timer at its instant.
    Advance(Step, bool),
    /// `handle_timeout` now, due or not.
    Fire,
}

/// A `broker` input: setup and operations.
#[derive(Arbitrary, Debug, Clone)]
pub struct BrokerInput {
    /// The setup.
    pub setup: BrokerSetup,
    /// The operations.
    pub ops: Vec<BrokerOp>,
}

/// One entry of a broker run's transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerRecord {
    /// The result of `open`.
    Opened(bool),
    /// An action.
    Action(BrokerAction),
    /// `poll_timeout` after an input.
    Wake(Option<Instant>),
}

/// What the model knows of one open connection.
#[derive(Default)]
struct BrokerConn {
    sent: usize,
    accepted: bool,
    expect_close: Option<CloseReason>,
    peer: Peer,
    /// The connection's read buffer, mirrored (the broker answers CONNECT at once, so
    /// every complete packet is handled).
    rx: Shadow,
    /// Inbound QoS 2 ids: PUBREC sent on this connection, PUBCOMP not yet (a subset of
    /// the session's, which a resumed session may extend).
    inbound: BTreeSet<PacketId>,
}

struct BrokerRun {
    broker: Broker,
    profile: Profile,
    config: BrokerConfig,
    now: Instant,
    log: Vec<BrokerRecord>,
    conns: BTreeMap<ConnId, BrokerConn>,
    /// Every client id a connection was accepted for.
    clients: BTreeSet<Bytes>,
    /// The first export with every reported change applied: the export, always.
    durable: BrokerExport,
}

fn conn_id(c: u8) -> ConnId {
    ConnId(u64::from(c % 4))
}

impl BrokerRun {
    fn new(setup: &BrokerSetup) -> BrokerRun {
        let (profile, connection) = setup.connection.build();
        let config = BrokerConfig {
            // Checked against the export after every input.
            connection: ServerConfig {
                report_changes: true,
                ..connection
            },
            max_sessions: setup.max_sessions.map(|n| usize::from(n % 6)),
            max_retained: setup.max_retained.map(|n| usize::from(n % 6)),
        };
        BrokerRun {
            broker: Broker::new(profile.clone(), config.clone()),
            profile,
            config,
            now: Instant::ZERO,
            log: Vec::new(),
            conns: BTreeMap::new(),
            clients: BTreeSet::new(),
            durable: BrokerExport::default(),
        }
    }

    fn conn(&mut self, conn: ConnId, what: &dyn core::fmt::Debug) -> &mut BrokerConn {
        match self.conns.get_mut(&conn) {
            Some(c) => c,
            None => panic!("{what:?} for connection {}, which is not open", conn.0),
        }
    }

    fn on_send(&mut self, conn: ConnId, p: &Packet<Bytes>) {
        let c = self.conn(conn, p);
        assert!(
            c.expect_close.is_none(),
            "sent {p:?} after a refusing CONNACK"
        );
        assert_server_packet(p);
        assert_wire_roundtrip(p);
        if c.sent == 0 {
            assert!(
                matches!(p, Packet::ConnAck(_)),
                "first packet {p:?} is not CONNACK"
            );
        } else {
            assert!(!matches!(p, Packet::ConnAck(_)), "a second CONNACK");
        }
        c.sent += 1;
        match p {
            Packet::ConnAck(ConnAck::Accepted { .. }) => c.accepted = true,
            Packet::ConnAck(ConnAck::Refused(code)) => {
                c.expect_close = Some(CloseReason::Refused(*code));
            }
            Packet::Publish(_) => {
                assert!(c.accepted, "PUBLISH before CONNACK");
                if let Some((id, dup)) = publish_id(p) {
                    c.peer.received(id, dup);
                }
            }
            Packet::PubRec(id) => {
                c.inbound.insert(*id);
            }
            Packet::PubComp(id) => {
                c.inbound.remove(id);
            }
            _ => {}
        }
    }

    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(a) = self.broker.poll_action() {
            n += 1;
            match &a {
                BrokerAction::Send { conn, packet } => self.on_send(*conn, packet),
                BrokerAction::Close { conn, reason } => {
                    let c = self.conn(*conn, reason);
                    if let Some(expected) = c.expect_close.take() {
                        assert_eq!(*reason, expected, "a refusing CONNACK closes otherwise");
                    }
                    self.conns.remove(conn);
                }
                BrokerAction::Change(c) => {
                    if let Err(e) = self.durable.apply(c) {
                        panic!("{c:?} does not apply to the export: {e}");
                    }
                }
                BrokerAction::Event(e) => match e {
                    BrokerEvent::Connected {
                        conn, client_id, ..
                    } => {
                        let c = self.conn(*conn, e);
                        assert!(
                            !c.accepted && c.sent == 0,
                            "Connected twice on a connection"
                        );
                        self.clients.insert(client_id.as_bytes().to_vec().into());
                    }
                    BrokerEvent::Ignored { conn, .. }
                    | BrokerEvent::SessionLimit { conn }
                    | BrokerEvent::Discarded { conn, .. } => {
                        self.conn(*conn, e);
                    }
                    _ => {}
                },
            }
            self.log.push(BrokerRecord::Action(a));
        }
        n
    }

    fn check_state(&self) {
        let export = self.broker.export();
        assert_eq!(
            self.durable, export,
            "the changes applied to the first export are not the export"
        );
        assert_eq!(
            BrokerExport::from_bytes(&export.to_bytes()),
            Ok(export),
            "the export does not survive its encoding"
        );
        assert_eq!(
            self.broker.connections(),
            self.conns.len(),
            "open connections are not the model's"
        );
        let conn_config = &self.config.connection;
        let mut sessions = 0;
        for client in &self.clients {
            let key = std::str::from_utf8(client).expect("client ids are UTF-8");
            if let Some(s) = self.broker.session(key) {
                sessions += 1;
                assert_session_bounds(s, conn_config, &self.profile);
            }
        }
        if let Some(max) = self.config.max_sessions {
            assert!(sessions <= max, "{sessions} sessions over the bound {max}");
        }
        if let Some(max) = self.config.max_retained {
            let n = self.broker.retained_len();
            assert!(n <= max, "{n} retained messages over the bound {max}");
        }
        let bound = inbound_bound(conn_config, &self.profile);
        for (id, c) in &self.conns {
            assert_eq!(c.expect_close, None, "a refusing CONNACK without its Close");
            assert!(
                c.inbound.len() <= bound,
                "{} inbound QoS 2 on connection {} over the bound {bound}",
                c.inbound.len(),
                id.0
            );
        }
    }

    fn fire(&mut self) {
        let now = self.now;
        check_fire(
            self,
            now,
            false,
            |r| {
                r.broker.handle_timeout(now);
                r.drain()
            },
            |r| r.broker.poll_timeout(),
        );
    }

    fn advance(&mut self, step: Step, precise: bool) {
        let end = self.now + step.duration();
        if precise {
            for _ in 0..MAX_TIMER_FIRES {
                match self.broker.poll_timeout() {
                    Some(t) if t <= end => {
                        self.now = self.now.max(t);
                        self.fire();
                    }
                    _ => break,
                }
            }
        } else if self.broker.poll_timeout().is_some_and(|t| t <= end) {
            self.now = end;
            self.fire();
        }
        self.now = end;
    }

    fn apply(&mut self, op: &BrokerOp) {
        match op {
            BrokerOp::Open(c) => {
                let conn = conn_id(*c);
                let r = self.broker.open(self.now, conn);
                self.log.push(BrokerRecord::Opened(r.is_ok()));
                assert_eq!(
                    r.is_err(),
                    self.conns.contains_key(&conn),
                    "open refused iff the id is open"
                );
                if r.is_ok() {
                    let limit = server_packet_limit(&self.profile);
                    let c = BrokerConn {
                        rx: Shadow::with_limit(limit),
                        ..BrokerConn::default()
                    };
                    self.conns.insert(conn, c);
                }
                assert_eq!(self.drain(), 0, "open acted");
            }
            BrokerOp::Peer(c, packet, how) => {
                let conn = conn_id(*c);
                let bytes = match self.conns.get(&conn) {
                    Some(m) => m.peer.build(packet),
                    None => Peer::default().build(packet),
                };
                for chunk in chunks(&bytes, *how) {
                    let open = match self.conns.get_mut(&conn) {
                        Some(m) => {
                            m.peer.sent(chunk);
                            m.rx.buf.extend_from_slice(chunk);
                            true
                        }
                        None => false,
                    };
                    self.broker.handle_bytes(self.now, conn, chunk);
                    let n = self.drain();
                    if !open {
                        assert_eq!(n, 0, "bytes for a connection that is not open acted");
                    }
                    let limit = server_packet_limit(&self.profile);
                    if let Some(m) = self.conns.get_mut(&conn) {
                        m.rx.feed(&[]);
                        assert_buffered_within(&m.rx, limit);
                    }
                }
            }
            BrokerOp::Close(c) => {
                let conn = conn_id(*c);
                let open = self.conns.contains_key(&conn);
                self.broker.close(self.now, conn);
                let n = self.drain();
                assert!(
                    !self.conns.contains_key(&conn),
                    "close left the connection open"
                );
                if !open {
                    assert_eq!(n, 0, "close of a connection that is not open acted");
                }
            }
            BrokerOp::ConnectionClosed(c) => {
                let conn = conn_id(*c);
                let open = self.conns.remove(&conn).is_some();
                self.broker.connection_lost(self.now, conn);
                let n = self.drain();
                if !open {
                    assert_eq!(n, 0, "connection_lost of a connection not open acted");
                }
            }
            BrokerOp::Advance(step, precise) => self.advance(*step, *precise),
            BrokerOp::Fire => self.fire(),
        }
        self.drain();
        self.check_state();
        self.log
            .push(BrokerRecord::Wake(self.broker.poll_timeout()));
    }
}

/// Runs a `broker` input, checking every step; returns the transcript.
pub fn run_broker(input: &BrokerInput) -> Vec<BrokerRecord> {
    let mut run = BrokerRun::new(&input.setup);
    for op in input.ops.iter().take(MAX_OPS) {
        run.apply(op);
    }
    run.log
}

/// The `broker` target: a broker driven by arbitrary operations on four connection ids
/// keeps every invariant, and the same operations on a fresh broker give the same
/// transcript.
pub fn check_broker(data: &[u8]) {
    let Some((setup, ops)) = parse(data) else {
        return;
    };
    let input = BrokerInput { setup, ops };
    check_broker_input(&input);
}

/// [`check_broker`] for a built input.
pub fn check_broker_input(input: &BrokerInput) {
    let first = run_broker(input);
    let second = run_broker(input);
    assert!(
        first == second,
        "the same operations gave another transcript"
    );
}
