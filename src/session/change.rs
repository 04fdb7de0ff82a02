//! Changes of durable session state, reported as they happen.

use bytes::Bytes;

use super::Message;
use crate::time::Instant;
use crate::types::{MqttString, PacketId, QoS, TopicFilter, TopicName};

/// One change of a session's durable state, in the order it happened.
///
/// A [`Client`](crate::Client) reports them as
/// [`client::Action::Change`](crate::client::Action::Change), a
/// [`Server`](crate::Server) as [`server::Action::Change`](crate::server::Action::Change)
/// (for a persistent session only), and a [`Broker`](crate::Broker) wraps them in
/// [`BrokerChange::Session`]. Applying them, in order, to the last export
/// ([`SessionExport::apply`](super::SessionExport::apply)) gives the current export.
///
/// A change comes before the actions that depend on it: a caller that makes each change
/// durable before it carries out the actions that follow never acknowledges what it has
/// not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A QoS 1/2 message entered the end of the outgoing table with packet id `id`;
    /// `sent` is `None` for a message a client holds until CONNACK. Allocation resumes
    /// after `id`.
    Added {
        /// Its packet id.
        id: PacketId,
        /// The message.
        message: Message,
        /// When it went out (at once); `None`: held.
        sent: Option<Instant>,
    },
    /// A held message went out.
    Sent {
        /// Its packet id.
        id: PacketId,
        /// When.
        at: Instant,
    },
    /// A packet id was taken for a SUBSCRIBE or UNSUBSCRIBE (client side). These are
    /// not session state, but allocation resumes after `id`.
    Allocated(PacketId),
    /// PUBREC arrived for `id`: the message is released (PUBREL sent) and moves to the
    /// end of the outgoing table.
    Released(PacketId),
    /// The flow of `id` ended (PUBACK, PUBCOMP) or was given up (a lost session, a retry
    /// limit); the entry is gone.
    Removed(PacketId),
    /// On resume the message with id `old` was resent under the fresh id `new` (it keeps
    /// its place). Allocation resumes after `new`.
    Renumbered {
        /// The id it had.
        old: PacketId,
        /// The id it has.
        new: PacketId,
    },
    /// An inbound QoS 2 message with `id` was delivered; the id awaits PUBREL.
    InboundStored(PacketId),
    /// PUBREL for the inbound QoS 2 id `id`: it is free.
    InboundReleased(PacketId),
    /// Every inbound QoS 2 id was forgotten (the session was not resumed).
    InboundCleared,
    /// A subscription was made or replaced (server side).
    Subscribed {
        /// The filter.
        filter: TopicFilter<Bytes>,
        /// The granted QoS.
        qos: QoS,
    },
    /// A subscription was deleted (server side).
    Unsubscribed(TopicFilter<Bytes>),
    /// A message joined the end of the queue behind the inflight window (server side).
    Queued(Message),
    /// The message at the head of the queue left it for the outgoing table (server
    /// side); the [`Added`](Change::Added) that follows gives its id.
    Dequeued,
}

/// One change of a broker's durable state, in order with the broker's other actions:
/// see [`Broker`](crate::Broker) and [`BrokerExport::apply`](super::BrokerExport::apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerChange {
    /// A persistent session (clean session 0) was created, empty.
    SessionCreated {
        /// Its client id.
        client_id: MqttString<Bytes>,
    },
    /// A persistent session was discarded (clean session 1 for its client id, or
    /// expiry).
    SessionDiscarded {
        /// Its client id.
        client_id: MqttString<Bytes>,
    },
    /// A persistent session's expiry deadline was set (its connection ended) or lifted
    /// (`None`: it is in use again).
    SessionExpires {
        /// Its client id.
        client_id: MqttString<Bytes>,
        /// When it expires.
        at: Option<Instant>,
    },
    /// A change inside a persistent session.
    Session {
        /// Its client id.
        client_id: MqttString<Bytes>,
        /// The change.
        change: Change,
    },
    /// The retained message of its topic was set.
    RetainedSet(Message),
    /// The retained message of this topic was cleared.
    RetainedCleared(TopicName<Bytes>),
    /// A message joined the end of a shared-subscription group's queue (every member
    /// was offline).
    SharedQueued {
        /// The group's filter, `$share/{ShareName}/{filter}`.
        group: TopicFilter<Bytes>,
        /// The message.
        message: Message,
    },
    /// The oldest message of a shared-subscription group's queue left it (handed to a
    /// member that came online, or dropped and reported).
    SharedDequeued(TopicFilter<Bytes>),
}
