//! What a server keeps of a client's session beyond the state both roles share.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use bytes::Bytes;

use super::{Change, Message, Session};
use crate::types::{PacketId, QoS, TopicFilter};

/// A message handed back by [`Server::publish`](crate::server::Server::publish) or
/// [`ServerSession::enqueue`]: the session's queue was full, or the connection is not
/// (or no longer) accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotQueued(pub Message);

/// Which bound of a session's queue a message would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The queue holds its most messages.
    Messages,
    /// The message would take the queue beyond its most bytes.
    Bytes,
}

/// The server's state of one client session (§4.1): its subscriptions, the [`Session`]
/// both roles keep (QoS 1/2 messages sent and not yet acknowledged, inbound QoS 2 ids
/// awaiting PUBREL), and the messages queued behind the inflight window. It outlives
/// connections when the client asked for a persistent session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSession {
    pub(crate) subscriptions: Subscriptions,
    pub(crate) session: Session,
    pub(crate) queue: VecDeque<Message>,
    /// The [`size`](Message::size) of the messages in `queue`, summed.
    pub(crate) queued_bytes: usize,
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

    /// The bytes (topic and payload) of the messages queued beyond the inflight window.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
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
        if self.fits(&message, max_queued, None).is_err() {
            return Err(NotQueued(message));
        }
        self.push_queue(message);
        Ok(())
    }

    /// Whether `message` fits in the queue: fewer than `max_queued` messages wait, and
    /// with it their bytes stay within `max_bytes` (`None`: no bound in bytes).
    pub(crate) fn fits(
        &self,
        message: &Message,
        max_queued: usize,
        max_bytes: Option<usize>,
    ) -> Result<(), Full> {
        if self.queue.len() >= max_queued {
            return Err(Full::Messages);
        }
        if max_bytes.is_some_and(|max| self.queued_bytes.saturating_add(message.size()) > max) {
            return Err(Full::Bytes);
        }
        Ok(())
    }

    /// Queues a message whatever the bounds (a broker applying back-pressure admits
    /// what it already read).
    pub(crate) fn push_queue(&mut self, message: Message) {
        self.session.record(|| Change::Queued(message.clone()));
        self.queued_bytes += message.size();
        self.queue.push_back(message);
    }

    /// Takes the message at the head of the queue.
    pub(crate) fn dequeue(&mut self) -> Option<Message> {
        let m = self.queue.pop_front()?;
        self.queued_bytes -= m.size();
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

/// A session's subscriptions by filter, in byte order of the filter.
///
/// A few are kept in a sorted vector, allocated to size (one subscription costs its
/// filter and QoS, where a B-tree allocates a node for eleven); beyond
/// [`Subscriptions::FEW`] they move to a B-tree, so a session with very many
/// subscriptions still inserts in logarithmic time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subscriptions {
    Few(Vec<(Bytes, QoS)>),
    Many(BTreeMap<Bytes, QoS>),
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions::Few(Vec::new())
    }
}

impl Subscriptions {
    /// The most subscriptions kept in the sorted vector.
    const FEW: usize = 16;

    pub(crate) fn len(&self) -> usize {
        match self {
            Subscriptions::Few(v) => v.len(),
            Subscriptions::Many(m) => m.len(),
        }
    }

    pub(crate) fn contains_key(&self, filter: &[u8]) -> bool {
        match self {
            Subscriptions::Few(v) => v.binary_search_by(|(f, _)| f[..].cmp(filter)).is_ok(),
            Subscriptions::Many(m) => m.contains_key(filter),
        }
    }

    /// Makes or replaces the subscription to `filter`; the QoS it replaced.
    pub(crate) fn insert(&mut self, filter: Bytes, qos: QoS) -> Option<QoS> {
        match self {
            Subscriptions::Few(v) => match v.binary_search_by(|(f, _)| f[..].cmp(&filter[..])) {
                Ok(i) => Some(core::mem::replace(&mut v[i].1, qos)),
                Err(_) if v.len() >= Self::FEW => {
                    let mut m: BTreeMap<Bytes, QoS> = core::mem::take(v).into_iter().collect();
                    m.insert(filter, qos);
                    *self = Subscriptions::Many(m);
                    None
                }
                Err(i) => {
                    // Grow one at a time: most sessions hold one or two.
                    v.reserve_exact(1);
                    v.insert(i, (filter, qos));
                    None
                }
            },
            Subscriptions::Many(m) => m.insert(filter, qos),
        }
    }

    /// Deletes the subscription to `filter`; the QoS it had.
    pub(crate) fn remove(&mut self, filter: &[u8]) -> Option<QoS> {
        match self {
            Subscriptions::Few(v) => {
                let i = v.binary_search_by(|(f, _)| f[..].cmp(filter)).ok()?;
                Some(v.remove(i).1)
            }
            Subscriptions::Many(m) => m.remove(filter),
        }
    }

    /// Every subscription, in byte order of the filter.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Bytes, &QoS)> + '_ {
        let (few, many) = match self {
            Subscriptions::Few(v) => (Some(v.iter().map(|(f, q)| (f, q))), None),
            Subscriptions::Many(m) => (None, Some(m.iter())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }
}
