//! The `client` target's input: the setup, the operations and the scripted server's
//! replies; and the transcript a run records.

use super::*;
use mqtt_sansio::reconnect::Backoff;

/// The setup of a `client` run.
#[derive(Arbitrary, Debug, Clone)]
pub struct ClientSetup {
    /// The profile.
    pub preset: Preset,
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
    /// Reconnecting: the backoff's first delay in ms (capped at 16 times it) and its
    /// jitter seed; `None`: off.
    pub reconnect: Option<(u16, u64)>,
    /// SUBSCRIBE and UNSUBSCRIBE time-out, ms.
    pub request_timeout_ms: Option<u16>,
    /// PUBLISH time-out, ms.
    pub publish_timeout_ms: Option<u16>,
}

impl ClientSetup {
    pub(super) fn build(&self) -> (Profile, ClientConfig) {
        let profile = self.preset.profile();
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
            reconnect: self.reconnect.map(|(min, seed)| {
                let mut b = Backoff::for_profile(&profile, seed);
                b.min = Duration::from_millis(u64::from(min));
                b.max = b.min * 16;
                b
            }),
            request_timeout: self.request_timeout_ms.map(ms),
            publish_timeout: self.publish_timeout_ms.map(ms),
        };
        (profile, config)
    }
}

fn ms(n: u16) -> Duration {
    Duration::from_millis(u64::from(n))
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
    /// `connection_failed`.
    ConnectionFailed,
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
