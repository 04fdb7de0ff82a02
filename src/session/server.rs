//! What a server keeps of a client's session beyond the state both roles share.

use alloc::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::{Change, Message, Session};
use crate::types::{PacketId, QoS, TopicFilter};

/// A message handed back by [`Server::publish`](crate::server::Server::publish) or
/// [`ServerSession::enqueue`]: the session's queue was full, or the connection is not
/// (or no longer) accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotQueued(pub Message);

/// The server's state of one client session (§4.1): its subscriptions, the [`Session`]
/// both roles keep (QoS 1/2 messages sent and not yet acknowledged, inbound QoS 2 ids
/// awaiting PUBREL), and the messages queued behind the inflight window. It outlives
/// connections when the client asked for a persistent session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSession {
    pub(crate) subscriptions: BTreeMap<Bytes, QoS>,
    pub(crate) session: Session,
    pub(crate) queue: VecDeque<Message>,
}

impl ServerSession {
    /// An empty session.
    pub fn new() -> ServerSession {
        ServerSession::default()
    }

    /// The subscriptions, as filter and granted QoS, in byte order of the filter.
    pub fn subscriptions(&self) -> impl Iterator<Item = (&[u8], QoS)> + '_ {
        self.subscriptions.iter().map(|(f, q)| (&f[..], *q))
    }

    /// The state both roles keep: packet ids, outgoing table, inbound QoS 2 ids.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The messages queued behind the inflight window, oldest first.
    pub fn queue(&self) -> impl Iterator<Item = &Message> + '_ {
        self.queue.iter()
    }

    /// How many messages are queued beyond the inflight window.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// How many outgoing QoS 1/2 messages await their acknowledgement.
    pub fn inflight(&self) -> usize {
        self.session.inflight()
    }

    /// The packet ids of the outgoing messages in flight, in resend order.
    pub fn inflight_ids(&self) -> impl Iterator<Item = PacketId> + '_ {
        self.session.outgoing().map(|o| o.id)
    }

    /// Queues a message for later transmission; gives it back if `max_queued` are
    /// already queued.
    pub fn enqueue(&mut self, message: Message, max_queued: usize) -> Result<(), NotQueued> {
        if self.queue.len() >= max_queued {
            return Err(NotQueued(message));
        }
        self.session.record(|| Change::Queued(message.clone()));
        self.queue.push_back(message);
        Ok(())
    }

    /// Takes the message at the head of the queue.
    pub(crate) fn dequeue(&mut self) -> Option<Message> {
        let m = self.queue.pop_front()?;
        self.session.record(|| Change::Dequeued);
        Some(m)
    }

    /// Makes or replaces the subscription to `filter`.
    pub(crate) fn subscribe(&mut self, filter: &TopicFilter<Bytes>, qos: QoS) {
        self.subscriptions.insert(filter.clone().into_inner(), qos);
        self.session.record(|| Change::Subscribed {
            filter: filter.clone(),
            qos,
        });
    }

    /// Deletes the subscription to `filter`; false if there was none.
    pub(crate) fn unsubscribe(&mut self, filter: &TopicFilter<Bytes>) -> bool {
        let removed = self.subscriptions.remove(filter.as_bytes()).is_some();
        if removed {
            self.session.record(|| Change::Unsubscribed(filter.clone()));
        }
        removed
    }
}
