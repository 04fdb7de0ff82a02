//! What a [`Client`](super::Client) answers with: actions, events, close reasons, and
//! the errors of refused commands.

use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

pub use crate::connection::ProtocolError;

#[cfg(doc)]
use super::{Client, ClientConfig};
use crate::error::DecodeError;
use crate::packet::{
    ConnectReturnCode, Packet, PacketType, Publish, SubAckCode, Subscribe, Unsubscribe,
};
use crate::session::Change;
use crate::time::Instant;
use crate::types::PacketId;

/// What the caller must do, as [`Client::poll_action`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Encode this packet and write it to the connection.
    Send(Packet<Bytes>),
    /// Give this application message to the application.
    Deliver(Publish<Bytes>),
    /// Something the application may want to know.
    Event(Event),
    /// Close the network connection. The client is disconnected; it keeps its session
    /// when the connection was made with clean session 0. [`Event::Lost`] events for
    /// what the connection gives up may follow.
    Close(Reason),
    /// The session's durable state changed (only with
    /// [`ClientConfig::report_changes`]). Make it durable before carrying out the
    /// actions that follow.
    Change(Change),
    /// Open a new network connection to the server and call [`Client::connect`] on it
    /// (with clean session 0 the session resumes and what was not acknowledged is
    /// resent). Asked only with [`ClientConfig::reconnect`], by
    /// [`Client::handle_timeout`] once the backoff after a lost connection has passed.
    /// When the connection cannot be opened, call [`Client::connection_failed`]: the
    /// client asks again after the next delay.
    Reconnect,
}

/// Something that happened on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The server accepted the connection.
    Connected {
        /// Whether the server resumed the session it held for this client.
        session_present: bool,
    },
    /// PUBACK: the QoS 1 message with this id is delivered; the id is free again.
    Published(PacketId),
    /// PUBREC: the server owns the QoS 2 message with this id; PUBREL was sent.
    Received(PacketId),
    /// PUBCOMP: the QoS 2 exchange with this id is complete; the id is free again.
    Completed(PacketId),
    /// SUBACK for the SUBSCRIBE with this id, one code per filter in request order.
    Subscribed {
        /// The SUBSCRIBE's packet id, free again.
        packet_id: PacketId,
        /// The granted QoS or failure, per filter.
        codes: Vec<SubAckCode>,
    },
    /// UNSUBACK for the UNSUBSCRIBE with this id, free again.
    Unsubscribed(PacketId),
    /// An acknowledgement for an id that has nothing of that kind in flight (a late
    /// duplicate, or a server resending after a lost session). It is ignored.
    UnexpectedAck {
        /// The kind of the acknowledgement.
        packet_type: PacketType,
        /// Its packet id.
        packet_id: PacketId,
    },
    /// Something the client had not completed is given up: the session it belonged to
    /// is gone (clean session, or CONNACK without session present), or the connection
    /// was lost before it could be sent or acknowledged.
    Lost(Lost),
    /// The PUBLISH, SUBSCRIBE or UNSUBSCRIBE with this id was not acknowledged within
    /// [`ClientConfig::publish_timeout`] or [`ClientConfig::request_timeout`] of the
    /// command. Reported once. The operation is not abandoned: its id stays in use, a
    /// late acknowledgement is reported as usual ([`Event::Published`],
    /// [`Event::Subscribed`], …) and a lost connection or session reports it as
    /// [`Event::Lost`]. Giving up is the application's decision (it may disconnect).
    TimedOut {
        /// [`PacketType::Publish`], [`PacketType::Subscribe`] or
        /// [`PacketType::Unsubscribe`].
        packet_type: PacketType,
        /// The operation's packet id.
        packet_id: PacketId,
    },
}

/// What was given up, reported one item at a time by [`Event::Lost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// A message that was not (or not known to be) delivered; the application may
    /// publish it again.
    Publish(Publish<Bytes>),
    /// A QoS 2 message the server had acknowledged with PUBREC, whose PUBCOMP never
    /// came: the server owns it, but completion was not confirmed.
    Release(PacketId),
    /// A SUBSCRIBE that was not acknowledged.
    Subscribe(Subscribe<Bytes>),
    /// An UNSUBSCRIBE that was not acknowledged.
    Unsubscribe(Unsubscribe<Bytes>),
}

/// Why the connection ends, carried by [`Action::Close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The application called [`Client::disconnect`].
    Disconnected,
    /// The server refused the connection with this CONNACK return code.
    Refused(ConnectReturnCode),
    /// No CONNACK within [`ClientConfig::connack_timeout`].
    ConnAckTimeout,
    /// No PINGRESP within [`ClientConfig::pingresp_timeout`] of a PINGREQ.
    PingTimeout,
    /// The server sent bytes that are not a valid packet.
    Decode(DecodeError),
    /// The server broke the protocol (MQTT-4.8.0-1).
    Protocol(ProtocolError),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Disconnected => f.write_str("the application disconnected"),
            Reason::Refused(code) => write!(f, "the server refused the connection: {code:?}"),
            Reason::ConnAckTimeout => f.write_str("no CONNACK in time"),
            Reason::PingTimeout => f.write_str("no PINGRESP in time"),
            Reason::Decode(e) => write!(f, "the server sent an invalid packet: {e}"),
            Reason::Protocol(e) => write!(f, "the server broke the protocol: {e}"),
        }
    }
}

impl Reason {
    /// A stable snake_case name, used by the scenario vectors.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Disconnected => "disconnected",
            Reason::Refused(_) => "refused",
            Reason::ConnAckTimeout => "connack_timeout",
            Reason::PingTimeout => "ping_timeout",
            Reason::Decode(_) => "decode_error",
            Reason::Protocol(_) => "protocol_error",
        }
    }
}

/// Why a command was refused. A refused command changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// There is no connection (call [`Client::connect`] first).
    NotConnected,
    /// [`Client::connect`] while a connection is open or being opened.
    AlreadyConnected,
    /// [`Client::connect`] sooner after the last CONNECT than the backoff's
    /// [`min_connect_interval`](crate::reconnect::Backoff::min_connect_interval)
    /// allows (AWS IoT Core: one CONNECT per second for a client id).
    ConnectTooSoon {
        /// The earliest instant a CONNECT is accepted.
        earliest: Instant,
    },
    /// An empty client id with clean session 0 (MQTT-3.1.3-7).
    EmptyClientIdNeedsCleanSession,
    /// The client id is longer than the profile allows.
    ClientIdTooLong {
        /// Its length in bytes.
        len: usize,
        /// The profile's limit.
        max: usize,
    },
    /// QoS 2 (publish, subscribe or will) under a profile without QoS 2.
    Qos2NotSupported,
    /// RETAIN=1 (publish or will) under a profile whose server closes on it.
    RetainNotSupported,
    /// A topic name or filter longer than the profile allows.
    TopicTooLong {
        /// Its length in bytes.
        len: usize,
        /// The profile's limit.
        max: usize,
    },
    /// A topic name or filter with more `/` than the profile allows.
    TooManyTopicLevels {
        /// Its number of `/`.
        slashes: usize,
        /// The profile's limit.
        max: usize,
    },
    /// A payload larger than the profile allows.
    PayloadTooLarge {
        /// Its length in bytes.
        len: usize,
        /// The profile's limit.
        max: usize,
    },
    /// The packet would exceed the largest Remaining Length MQTT can encode.
    PacketTooLarge,
    /// A SUBSCRIBE or UNSUBSCRIBE with no filter.
    NoFilters,
    /// More filters in one SUBSCRIBE than the profile allows.
    TooManyFilters {
        /// The number of filters.
        count: usize,
        /// The profile's limit.
        max: usize,
    },
    /// [`ClientConfig::max_inflight`] QoS 1/2 messages are already unacknowledged.
    InflightFull {
        /// The limit.
        max: usize,
    },
    /// [`ClientConfig::max_held_qos0`] QoS 0 publishes already wait for CONNACK.
    HeldFull {
        /// The limit.
        max: usize,
    },
    /// All 65 535 packet ids are in use.
    PacketIdsExhausted,
    /// [`Client::ack`] without [`ClientConfig::manual_acks`].
    ManualAcksDisabled,
    /// [`Client::ack`] for an id that awaits no acknowledgement from the application.
    NotAwaitingAck(PacketId),
}

impl ClientError {
    /// A stable snake_case name, used by the scenario vectors.
    pub fn kind(&self) -> &'static str {
        use ClientError::*;
        match self {
            NotConnected => "not_connected",
            AlreadyConnected => "already_connected",
            ConnectTooSoon { .. } => "connect_too_soon",
            EmptyClientIdNeedsCleanSession => "empty_client_id_needs_clean_session",
            ClientIdTooLong { .. } => "client_id_too_long",
            Qos2NotSupported => "qos2_not_supported",
            RetainNotSupported => "retain_not_supported",
            TopicTooLong { .. } => "topic_too_long",
            TooManyTopicLevels { .. } => "too_many_topic_levels",
            PayloadTooLarge { .. } => "payload_too_large",
            PacketTooLarge => "packet_too_large",
            NoFilters => "no_filters",
            TooManyFilters { .. } => "too_many_filters",
            InflightFull { .. } => "inflight_full",
            HeldFull { .. } => "held_full",
            PacketIdsExhausted => "packet_ids_exhausted",
            ManualAcksDisabled => "manual_acks_disabled",
            NotAwaitingAck(_) => "not_awaiting_ack",
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind().replace('_', " "))
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ClientError {}

/// The connection's state, as [`Client::state`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// No connection: before the first [`Client::connect`], after a close or after
    /// [`Client::connection_lost`], and no reconnect is coming.
    Disconnected,
    /// No connection, and the client will ask (or has asked) to be reconnected with
    /// [`Action::Reconnect`] ([`ClientConfig::reconnect`]).
    Reconnecting,
    /// CONNECT was sent; waiting for CONNACK.
    Connecting,
    /// CONNACK accepted the connection.
    Connected,
}
