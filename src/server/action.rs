//! What a [`Server`](super::Server) answers with: actions, events, close reasons, and
//! the errors of refused commands.

use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::connection::ProtocolError;
use crate::error::DecodeError;
use crate::packet::{ConnectReturnCode, Login, Packet, PacketType, Will};
use crate::session::{Change, Message};
use crate::topic::reserved;
use crate::types::{MqttString, PacketId, QoS, TopicFilter};

#[cfg(doc)]
use super::{Authorizer, PublishDecision, Server, ServerConfig};
#[cfg(doc)]
use crate::profile::{Qos2Policy, RetainPolicy};

/// A rule of the dialect a client broke, or a limit it went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyViolation {
    /// QoS 2 under a profile whose [`Qos2Policy`] is `Close` (or a will at QoS 2 under a
    /// profile without QoS 2).
    Qos2,
    /// RETAIN=1 (PUBLISH or will) under a profile whose [`RetainPolicy`] is `Close`.
    Retain,
    /// A topic over the profile's length or level limit.
    TopicTooLong,
    /// A payload over the profile's limit.
    PayloadTooLarge,
    /// More inbound QoS 2 ids awaiting PUBREL than the bound.
    TooManyInboundQos2,
    /// Packets sent before CONNACK under a profile that forbids it.
    SentBeforeConnAck,
    /// The [`Authorizer`] refused a PUBLISH with [`PublishDecision::Close`].
    NotAuthorized,
    /// More bytes buffered while the CONNECT awaits an answer than one packet can hold.
    BufferFull,
    /// A PUBLISH or SUBSCRIBE to a reserved topic the broker does not implement
    /// ([`ReservedTopics`](crate::profile::ReservedTopics)).
    ReservedTopic,
    /// RETAIN=1 on a reserved topic.
    RetainOnReservedTopic,
    /// A rate quota: more CONNECT per second for one client id than the profile allows.
    Throttled,
}

impl From<reserved::Refusal> for PolicyViolation {
    fn from(r: reserved::Refusal) -> Self {
        match r {
            reserved::Refusal::NotImplemented => PolicyViolation::ReservedTopic,
            reserved::Refusal::Retain => PolicyViolation::RetainOnReservedTopic,
        }
    }
}

/// Why a command to a [`Server`] was refused. A refused command changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerError {
    /// [`Server::accept`], [`Server::accept_as`] or [`Server::refuse`] while no
    /// [`ServerEvent::Connect`] awaits an answer.
    NotAwaitingAnswer,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::NotAwaitingAnswer => f.write_str("no CONNECT awaits an answer"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ServerError {}

/// Why a server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The bytes are not a valid packet.
    Malformed(DecodeError),
    /// A valid packet arrived where the protocol forbids it.
    Protocol(ProtocolError),
    /// The CONNECT was refused with this CONNACK return code (MQTT-3.2.2-5).
    Refused(ConnectReturnCode),
    /// Nothing was received for 1.5 × the keep-alive (MQTT-3.1.2-24).
    KeepAliveTimeout,
    /// No CONNECT arrived in time.
    ConnectTimeout,
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// Another connection took over the client id (MQTT-3.1.4-2).
    Takeover,
    /// The client broke a rule of the profile.
    Policy(PolicyViolation),
    /// The application closed the connection.
    Application,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Malformed(e) => write!(f, "the client sent an invalid packet: {e}"),
            CloseReason::Protocol(e) => write!(f, "the client broke the protocol: {e}"),
            CloseReason::Refused(code) => write!(f, "the connection was refused: {code:?}"),
            CloseReason::KeepAliveTimeout => {
                f.write_str("nothing received for 1.5 times the keep-alive")
            }
            CloseReason::ConnectTimeout => f.write_str("no CONNECT in time"),
            CloseReason::ClientDisconnect => f.write_str("the client disconnected"),
            CloseReason::Takeover => f.write_str("another connection took over the client id"),
            CloseReason::Policy(v) => write!(f, "the client broke the profile: {v:?}"),
            CloseReason::Application => f.write_str("the application closed the connection"),
        }
    }
}

impl CloseReason {
    /// Whether the will is published when the connection closes for this reason: always
    /// except after a DISCONNECT (MQTT-3.1.2-8, MQTT-3.14.4-3).
    pub fn publishes_will(&self) -> bool {
        !matches!(self, CloseReason::ClientDisconnect)
    }
}

/// A valid CONNECT awaiting the application's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The client id; empty when the client asked the server to assign one (only with
    /// clean session 1).
    pub client_id: MqttString<Bytes>,
    /// The CleanSession flag.
    pub clean_session: bool,
    /// The keep-alive the server applies, in seconds (the profile may clamp it).
    pub keep_alive: u16,
    /// The will, if any.
    pub will: Option<Will<Bytes>>,
    /// The user name and password, if any.
    pub login: Option<Login<Bytes>>,
}

/// Why a profile made the server ignore a request without answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// A QoS 2 PUBLISH: no PUBREC, not routed.
    Qos2Publish,
    /// A SUBSCRIBE asking for QoS 2: no SUBACK, no subscription made.
    Qos2Subscribe,
    /// A PUBLISH over the connection's rate quota ([`Quotas`](crate::profile::Quotas)):
    /// not acknowledged, not routed.
    PublishOverQuota,
}

/// Something the application (or broker) must know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A valid CONNECT: answer with [`Server::accept`] or [`Server::refuse`].
    Connect(ConnectRequest),
    /// An application message from the client, to route (QoS 2: once, at PUBLISH).
    Publish(Message),
    /// Subscriptions granted (new or replacing an existing identical filter), in the
    /// order of the SUBSCRIBE.
    Subscribed(Vec<(TopicFilter<Bytes>, QoS)>),
    /// Subscriptions deleted by an UNSUBSCRIBE (only those that existed).
    Unsubscribed(Vec<TopicFilter<Bytes>>),
    /// The connection ended abnormally and the client had a will: publish it.
    Will(Message),
    /// The profile ignored a request, as its dialect says.
    Ignored(Ignored),
    /// An [`Authorizer`] made the server acknowledge and drop a PUBLISH.
    Discarded(Message),
    /// An acknowledgement for an id with nothing of its kind in flight (a late
    /// duplicate, or a client resending after a lost session). It is ignored.
    UnexpectedAck {
        /// The kind of the acknowledgement.
        packet_type: PacketType,
        /// Its packet id.
        packet_id: PacketId,
    },
    /// A QoS 1 message sent with `packet_id` was not acknowledged within the profile's
    /// [`qos1_retry_limit`](crate::profile::Quotas::qos1_retry_limit) of its first
    /// sending: it left the session (a [`Change::Removed`](crate::session::Change::Removed)
    /// before this event says so) and is not resent.
    RetryExpired {
        /// The packet id it had.
        packet_id: PacketId,
        /// The message.
        message: Message,
    },
}

/// What a server asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this packet to the connection.
    Send(Packet<Bytes>),
    /// Close the connection; nothing more is sent or processed.
    Close(CloseReason),
    /// Something happened.
    Event(ServerEvent),
    /// The durable state of a persistent session changed (only with
    /// [`ServerConfig::report_changes`]). Make it durable before carrying out the
    /// actions that follow: an acknowledgement of a client's message always comes
    /// after the changes that store it.
    Change(Change),
}
