//! The broker's counters: what it holds now (connections, sessions, retained messages)
//! and what it has done since it was made (messages and bytes in and out, messages
//! dropped by reason), read at once with [`Broker::stats`].
//!
//! Counting costs an increment where the broker already does the work: an input's
//! bytes in [`Broker::handle_bytes`], a packet where a connection decodes it, an
//! application message where a connection hands it over, a packet where the broker
//! emits its `Send` action, a drop where it emits its event. What the broker holds is
//! read from its own tables when asked.

use super::{Broker, DropReason};

/// The kinds of [`DropReason`], ignoring the data a reason carries, with their names.
/// A new reason is added here: its name below and its arm in [`DropReason::kind`].
const DROP_KINDS: [&str; 5] = [
    "queue-full",
    "offline-qos0",
    "retry-expired",
    "queue-bytes-full",
    "budget-full",
];

impl DropReason {
    /// The reason's kind as a short name: `queue-full`, `offline-qos0`,
    /// `retry-expired`, `queue-bytes-full` or `budget-full` (the names
    /// [`DropCounts::iter`] gives).
    pub fn name(&self) -> &'static str {
        DROP_KINDS[self.kind()]
    }

    fn kind(&self) -> usize {
        match self {
            DropReason::QueueFull => 0,
            DropReason::OfflineQos0 => 1,
            DropReason::RetryExpired { .. } => 2,
            DropReason::QueueBytesFull => 3,
            DropReason::BudgetFull => 4,
        }
    }
}

/// Messages dropped, counted by the kind of their [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts([u64; DROP_KINDS.len()]);

impl DropCounts {
    /// How many were dropped for a reason of `reason`'s kind (a
    /// [`RetryExpired`](DropReason::RetryExpired) counts whatever its packet id).
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.kind()]
    }

    /// How many were dropped, for any reason.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Every kind of reason, by [name](DropReason::name), with its count (zero ones
    /// too), always in the same order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DROP_KINDS.iter().copied().zip(self.0.iter().copied())
    }

    /// One more for `reason`.
    #[inline]
    pub(super) fn count(&mut self, reason: DropReason) {
        self.0[reason.kind()] += 1;
    }
}

/// A broker's counters, read with [`Broker::stats`]. The counts (`u64`) run from the
/// broker's creation (an [`import`](Broker::import)ed broker starts at zero); the
/// sizes (`usize`) are what the broker holds at the time of the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Open connections, whether or not their CONNECT was accepted yet.
    pub connections: usize,
    /// Sessions whose client is connected.
    pub sessions_online: usize,
    /// Persistent sessions whose client is not connected.
    pub sessions_stored: usize,
    /// CONNECTs accepted.
    pub connects: u64,
    /// Application messages received from clients: each PUBLISH the broker took
    /// (routed, or acknowledged and dropped by the authorizer), once even if its client
    /// sends it again (a QoS 2 duplicate). Wills and the broker's own messages
    /// ([`Broker::publish`]) are not counted.
    pub messages_received: u64,
    /// PUBLISH packets sent to clients (deliveries, resends included).
    pub messages_sent: u64,
    /// Packets of any kind decoded from the clients' bytes.
    pub packets_received: u64,
    /// Packets of any kind the broker asked to send.
    pub packets_sent: u64,
    /// Bytes given to [`Broker::handle_bytes`] for an open connection. (The bytes
    /// sent are the driver's to count, as it encodes the packets: counting them here
    /// would cost every delivery an [`encoded_len`](crate::Packet::encoded_len).)
    pub bytes_received: u64,
    /// Messages for a session that it did not get, by reason
    /// ([`BrokerEvent::Dropped`](super::BrokerEvent::Dropped)).
    pub dropped: DropCounts,
    /// Messages for a shared-subscription group that no member got, by reason
    /// ([`BrokerEvent::SharedDropped`](super::BrokerEvent::SharedDropped)).
    pub shared_dropped: DropCounts,
    /// Retained messages held.
    pub retained: usize,
}

impl Broker {
    /// The broker's counters: what it holds now, and what it has done so far. It costs
    /// a pass over the open connections (each counts the packets it decoded).
    pub fn stats(&self) -> BrokerStats {
        let open: u64 = self.conns.iter().map(|c| c.server.packets_received()).sum();
        BrokerStats {
            packets_received: self.stats.packets_received + open,
            packets_sent: self.stats.packets_sent + self.stats.messages_sent,
            connections: self.conns.len(),
            sessions_online: self.online.len(),
            sessions_stored: self.stored.len(),
            retained: self.retained.len(),
            ..self.stats
        }
    }
}
