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
//!
//! The roles live in `client` (its input in `client_input`), `server` and `broker`;
//! `peer` is the scripted client the server and broker targets share; this file holds
//! what all of them use, down to one runner ([`Machine`]) for the three targets.

mod broker;
mod client;
mod client_input;
mod peer;
mod server;

// Each test crate that includes these checks uses a part of them.
#[allow(unused_imports)]
pub use broker::{
    BrokerInput, BrokerOp, BrokerRecord, BrokerSetup, check_broker, check_broker_input, run_broker,
};
#[allow(unused_imports)]
pub use client::{check_client, check_client_input, run_client};
#[allow(unused_imports)]
pub use client_input::{AckKind, ClientInput, ClientOp, ClientRecord, ClientSetup, Reply};
#[allow(unused_imports)]
pub use peer::{ClientPacket, PeerAck, ServerSetup};
#[allow(unused_imports)]
pub use server::{
    ServerInput, ServerOp, ServerRecord, check_server, check_server_input, run_server,
};

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use core::time::Duration;
use mqtt_sansio::broker::{
    Action as BrokerAction, Broker, BrokerConfig, BrokerEvent, ConnId, QueueFullPolicy,
};
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

/// The profile a run follows: one of the crate's presets.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// [`Profile::mqtt311`].
    Mqtt311,
    /// [`Profile::aws_iot_core`].
    AwsIot,
    /// [`Profile::aws_iot_core_2025`].
    AwsIot2025,
}

impl Preset {
    /// The preset's profile.
    pub fn profile(self) -> Profile {
        match self {
            Preset::Mqtt311 => Profile::mqtt311(),
            Preset::AwsIot => Profile::aws_iot_core(),
            Preset::AwsIot2025 => Profile::aws_iot_core_2025(),
        }
    }
}

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

/// One machine under check: built from a setup, driven by operations (each checked as
/// it is applied), leaving a transcript.
trait Machine {
    type Setup;
    type Op;
    type Record: PartialEq;

    fn new(setup: &Self::Setup) -> Self;
    fn apply(&mut self, op: &Self::Op);
    fn into_log(self) -> Vec<Self::Record>;
}

/// Runs `ops` (at most [`MAX_OPS`]) on a fresh machine; returns the transcript.
fn run<M: Machine>(setup: &M::Setup, ops: &[M::Op]) -> Vec<M::Record> {
    let mut machine = M::new(setup);
    for op in ops.iter().take(MAX_OPS) {
        machine.apply(op);
    }
    machine.into_log()
}

/// Runs `ops` twice on fresh machines: every invariant holds, and the transcripts are
/// equal (determinism).
fn check_twice<M: Machine>(setup: &M::Setup, ops: &[M::Op]) {
    let first = run::<M>(setup, ops);
    let second = run::<M>(setup, ops);
    assert!(
        first == second,
        "the same operations gave another transcript"
    );
}
