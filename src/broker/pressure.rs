//! Overload: what the broker does with a message that would take a session's queue
//! beyond one of its bounds, and how it slows down the publishers that fill it.
//!
//! # Bounds
//!
//! A session queues the QoS 1/2 messages beyond its inflight window, within three
//! bounds: [`ServerConfig::max_queued`] messages and
//! [`ServerConfig::max_queued_bytes`] bytes per session, and
//! [`BrokerConfig::max_queued_bytes_total`] bytes over every session, online or
//! stored ([`Broker::queued_bytes`]). A message's bytes are its topic and payload
//! ([`Message::size`]). Messages in flight (sent, awaiting their acknowledgement) are
//! bounded by the inflight window, not by these.
//!
//! # The policy when a queue is full ([`QueueFullPolicy`])
//!
//! - [`Drop`](QueueFullPolicy::Drop) (the default): the message is not queued, and a
//!   [`BrokerEvent::Dropped`] names the session and the bound
//!   ([`DropReason::QueueFull`], [`DropReason::QueueBytesFull`],
//!   [`DropReason::BudgetFull`]).
//! - [`Backpressure`](QueueFullPolicy::Backpressure): the message is queued all the
//!   same (nothing that was read is lost) and the connection that published it is
//!   throttled until the bound it broke is back at its low-water mark: **half** the
//!   bound (messages, bytes, or total bytes), so that it does not flap at the bound.
//!   Throttling takes one of two forms:
//!   - *paused*: [`Action::Pause`] tells the driver to stop reading the connection
//!     (it keeps writing to it); [`Action::Resume`] to read it again. While it is
//!     paused, its keep-alive does not run: the broker does not close a connection for
//!     the silence it caused, and the keep-alive restarts from the resume.
//!   - *acknowledgements held*: a connection whose own session has messages in flight
//!     or queued is never paused, since its PUBACKs (it is a subscriber too) are what
//!     drain its queue. It is read as usual, but its PUBACKs and PUBCOMPs are held,
//!     in order, until it is released; its client, with its inflight window full of
//!     unfinished messages, stops publishing. (PUBREC goes out: the client's PUBREL
//!     then frees the server's inbound QoS 2 id, so that a held client does not run
//!     into [`ServerConfig::max_inbound_qos2`].) A paused connection that gets a
//!     QoS 1/2 delivery switches to this form (an [`Action::Resume`]).
//!
//!   So no paused connection ever has to be read for a queue to drain, and two
//!   connections publishing into each other's full queues cannot deadlock: each is
//!   read, acknowledges what it receives, and both queues drain.
//!
//!   How far a bound is exceeded: by what was read from the throttled publishers
//!   before the throttle took effect. A paused publisher adds the rest of the bytes
//!   handed to [`Broker::handle_bytes`] with the message that broke the bound, plus
//!   whatever its driver hands in after the `Pause` (a driver should keep what it had
//!   read and not handed over yet until the `Resume`, as the tokio server does: there
//!   it is one read, at most 16 KiB over plain TCP and 8 KiB over TLS, or one WebSocket
//!   frame). A publisher whose
//!   acknowledgements are held adds at most its client's own inflight window. Each
//!   such message weighs at most its PUBLISH's bytes.
//!
//! Messages that no publisher sent (a will, a lifecycle event) are queued the same way
//! under `Backpressure` and slow nobody down.
//!
//! # Offline sessions
//!
//! A stored session drains only when its client comes back, which may be never.
//! Throttling publishers for it would stall every publisher on its topics until then,
//! so under both policies a message beyond an offline session's bounds is dropped and
//! reported (its queue is what it was when the client left, plus what fits). A
//! session that goes offline releases the publishers waiting for it.
//!
//! # QoS 0
//!
//! A QoS 0 message is never queued: it is written at once to a connected subscriber
//! and dropped for an offline one ([`DropReason::OfflineQos0`]), under both policies.
//! It never breaks a queue bound, and never throttles its publisher by itself; a
//! paused publisher's QoS 0 messages wait unread with the rest of its input.
//!
//! [`ServerConfig::max_queued`]: crate::server::ServerConfig::max_queued
//! [`ServerConfig::max_queued_bytes`]: crate::server::ServerConfig::max_queued_bytes
//! [`ServerConfig::max_inbound_qos2`]: crate::server::ServerConfig::max_inbound_qos2

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use bytes::Bytes;

use super::{Action, Broker, BrokerConfig, ConnId, DropReason};
use crate::packet::Packet;
use crate::server::{Message, NotQueued, ServerSession};
use crate::session::Full;
use crate::time::Instant;

#[cfg(doc)]
use super::BrokerEvent;

/// What a broker does with a QoS 1/2 message that would take a session's queue beyond
/// one of its bounds: drop and report it, or queue it and throttle its publisher
/// ([`Action::Pause`](super::Action::Pause), held acknowledgements).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum QueueFullPolicy {
    /// Drop it and report it ([`BrokerEvent::Dropped`]).
    #[default]
    Drop,
    /// Queue it, and throttle its publisher until the queue drains to half the bound.
    Backpressure,
}

/// A bound some publishers wait for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    /// The queue of one client's session (messages or bytes).
    Session(Bytes),
    /// The bytes queued over every session.
    Total,
}

/// How a connection is throttled.
#[derive(Debug)]
enum Throttle {
    /// Not read.
    Paused,
    /// Read, with these acknowledgements held, in order.
    Held(Vec<Packet<Bytes>>),
}

#[derive(Debug)]
struct Throttled {
    how: Throttle,
    /// How many bounds it waits for.
    waits: usize,
}

/// The broker's state of overload.
#[derive(Debug, Default)]
pub(super) struct Pressure {
    /// Whether deliveries are weighed against bounds beyond `max_queued` (a byte bound,
    /// or back-pressure): they then take [`Broker::deliver_bounded`].
    pub(super) bounded: bool,
    backpressure: bool,
    /// The connection whose PUBLISH is being routed.
    pub(super) source: Option<ConnId>,
    /// The bytes queued over every session, kept as the queues change while `bounded`.
    pub(super) total: usize,
    /// The bounds above their low-water mark, with the connections waiting for each.
    over: BTreeMap<Bound, BTreeSet<ConnId>>,
    throttled: BTreeMap<ConnId, Throttled>,
}

impl Pressure {
    pub(super) fn new(config: &BrokerConfig) -> Pressure {
        let backpressure = config.queue_full == QueueFullPolicy::Backpressure;
        Pressure {
            bounded: backpressure
                || config.connection.max_queued_bytes.is_some()
                || config.max_queued_bytes_total.is_some(),
            backpressure,
            ..Pressure::default()
        }
    }

    /// Where the acknowledgements the broker holds back from `conn`, a throttled
    /// publisher, go (PUBACK and PUBCOMP); `None` while it is not throttled so.
    pub(super) fn held_acks(&mut self, conn: ConnId) -> Option<&mut Vec<Packet<Bytes>>> {
        match self.throttled.get_mut(&conn) {
            Some(Throttled {
                how: Throttle::Held(acks),
                ..
            }) => Some(acks),
            _ => None,
        }
    }

    /// Connection `conn` is gone: it waits for nothing (its held acknowledgements go
    /// with it: its client resends those messages).
    pub(super) fn forget(&mut self, conn: ConnId) {
        if self.throttled.remove(&conn).is_some() {
            for waiting in self.over.values_mut() {
                waiting.remove(&conn);
            }
        }
    }

    /// Whether `conn` is paused (not read).
    pub(super) fn is_paused(&self, conn: ConnId) -> bool {
        matches!(
            self.throttled.get(&conn),
            Some(Throttled {
                how: Throttle::Paused,
                ..
            })
        )
    }
}

/// Which bound queuing `m` in `session` breaks, if any: the session's own (from the
/// connections' settings), or the total over every session, which holds `total` bytes.
pub(super) fn over_bound(
    config: &BrokerConfig,
    total: usize,
    session: &ServerSession,
    m: &Message,
) -> Option<DropReason> {
    let c = &config.connection;
    match session.fits(m, c.max_queued, c.max_queued_bytes) {
        Err(Full::Messages) => Some(DropReason::QueueFull),
        Err(Full::Bytes) => Some(DropReason::QueueBytesFull),
        Ok(()) => config
            .max_queued_bytes_total
            .is_some_and(|max| total.saturating_add(m.size()) > max)
            .then_some(DropReason::BudgetFull),
    }
}

impl Broker {
    /// The bytes (topic and payload) of the messages queued in every session, online
    /// or stored, beyond their inflight windows: what
    /// [`BrokerConfig::max_queued_bytes_total`] bounds.
    pub fn queued_bytes(&self) -> usize {
        if self.pressure.bounded {
            return self.pressure.total;
        }
        // Without a bound that needs it, the total is not kept as the queues change
        // (one step less per delivery): it is summed when asked for.
        let online = self.conns.iter().map(|c| c.server.session().queued_bytes());
        let stored = self.stored.values().map(|s| s.session.queued_bytes());
        online.chain(stored).sum()
    }

    /// Whether the broker has paused connection `conn` ([`Action::Pause`]) and not
    /// resumed it yet.
    pub fn is_paused(&self, conn: ConnId) -> bool {
        self.pressure.is_paused(conn)
    }

    /// Brings [`queued_bytes`](Self::queued_bytes) up to date with the queue of
    /// connection `conn` (in `slot`), as last seen.
    pub(super) fn account(&mut self, conn: ConnId, slot: usize) {
        if let Some(c) = self.conns.at_mut(conn, slot) {
            let bytes = c.server.session().queued_bytes();
            if bytes != c.seen_bytes {
                self.pressure.total = (self.pressure.total - c.seen_bytes.min(self.pressure.total))
                    .saturating_add(bytes);
                c.seen_bytes = bytes;
            }
        }
    }

    /// Hands `m` to the session of `client`, online on `conn` or stored, weighing it
    /// against every bound and applying the [`QueueFullPolicy`].
    pub(super) fn deliver_bounded(
        &mut self,
        now: Instant,
        client: &Bytes,
        conn: Option<(ConnId, usize)>,
        m: Message,
    ) {
        let Some((conn, slot)) = conn else {
            self.deliver_stored(client, m);
            return;
        };
        let Some(c) = self.conns.at_mut(conn, slot) else {
            return;
        };
        let over = if c.server.would_queue(&m) {
            over_bound(&self.config, self.pressure.total, c.server.session(), &m)
        } else {
            None
        };
        let admit = over.is_some() && self.pressure.backpressure;
        if let (Some(reason), false) = (over, admit) {
            self.dropped(client, m, reason);
            return;
        }
        let refused = match self.deliver_online(now, conn, slot, m) {
            Ok(()) => None,
            // Beyond the session's own bounds, under back-pressure: admitted.
            Err(NotQueued(m)) if admit => self
                .conns
                .at_mut(conn, slot)
                .and_then(|c| c.server.publish_within(now, m, false).err()),
            Err(refused) => Some(refused),
        };
        if let Some(NotQueued(m)) = refused {
            self.dropped(client, m, DropReason::QueueFull);
        }
        self.account(conn, slot);
        if let Some(reason) = over.filter(|_| admit) {
            let bound = match reason {
                DropReason::BudgetFull => Bound::Total,
                _ => Bound::Session(client.clone()),
            };
            self.throttle(now, bound);
        }
    }

    /// The publisher of the message being routed broke `bound`: it waits for it.
    fn throttle(&mut self, now: Instant, bound: Bound) {
        let Some(source) = self.pressure.source else {
            return;
        };
        let Some(slot) = self.conns.slot_of(source) else {
            return;
        };
        if !self.pressure.over.entry(bound).or_default().insert(source) {
            return;
        }
        if let Some(t) = self.pressure.throttled.get_mut(&source) {
            t.waits += 1;
            return;
        }
        let Some(c) = self.conns.at_mut(source, slot) else {
            return;
        };
        let busy = c.server.session().inflight() > 0 || c.server.session().queued() > 0;
        let how = if busy {
            Throttle::Held(Vec::new())
        } else {
            c.server.set_paused(now, true);
            self.actions.push_back(Action::Pause { conn: source });
            self.arm(source, slot);
            Throttle::Paused
        };
        self.pressure
            .throttled
            .insert(source, Throttled { how, waits: 1 });
    }

    /// After an input: paused connections that got deliveries to acknowledge are read
    /// again (their acknowledgements held instead), and the publishers waiting for
    /// bounds now at their low-water mark are released.
    pub(super) fn relieve(&mut self, now: Instant) {
        if self.pressure.over.is_empty() {
            return;
        }
        let paused: Vec<ConnId> = self
            .pressure
            .throttled
            .iter()
            .filter(|(_, t)| matches!(t.how, Throttle::Paused))
            .map(|(c, _)| *c)
            .collect();
        for conn in paused {
            let Some(slot) = self.conns.slot_of(conn) else {
                continue;
            };
            let Some(c) = self.conns.at_mut(conn, slot) else {
                continue;
            };
            if c.server.session().inflight() > 0 || c.server.session().queued() > 0 {
                c.server.set_paused(now, false);
                self.arm(conn, slot);
                self.actions.push_back(Action::Resume { conn });
                if let Some(t) = self.pressure.throttled.get_mut(&conn) {
                    t.how = Throttle::Held(Vec::new());
                }
            }
        }
        let drained: Vec<Bound> = self
            .pressure
            .over
            .keys()
            .filter(|b| self.at_low_water(b))
            .cloned()
            .collect();
        for bound in drained {
            for conn in self.pressure.over.remove(&bound).unwrap_or_default() {
                let last = self.pressure.throttled.get_mut(&conn).is_some_and(|t| {
                    t.waits -= 1;
                    t.waits == 0
                });
                if last {
                    self.release(now, conn);
                }
            }
        }
    }

    /// Whether `bound` is back at its low-water mark: half of it. A session whose
    /// client went offline throttles nobody.
    fn at_low_water(&self, bound: &Bound) -> bool {
        match bound {
            Bound::Total => self
                .config
                .max_queued_bytes_total
                .is_none_or(|max| self.pressure.total <= max / 2),
            Bound::Session(client) => {
                let Some(session) = self
                    .online
                    .get(client)
                    .and_then(|conn| self.conns.get(conn))
                    .map(|c| c.server.session())
                else {
                    return true;
                };
                let c = &self.config.connection;
                session.queued() <= c.max_queued / 2
                    && c.max_queued_bytes
                        .is_none_or(|max| session.queued_bytes() <= max / 2)
            }
        }
    }

    /// Connection `conn` waits for nothing more: it is read again, or its held
    /// acknowledgements go out, in order.
    fn release(&mut self, now: Instant, conn: ConnId) {
        let Some(t) = self.pressure.throttled.remove(&conn) else {
            return;
        };
        match t.how {
            Throttle::Paused => {
                if let Some(slot) = self.conns.slot_of(conn) {
                    if let Some(c) = self.conns.at_mut(conn, slot) {
                        c.server.set_paused(now, false);
                    }
                    self.arm(conn, slot);
                }
                self.actions.push_back(Action::Resume { conn });
            }
            Throttle::Held(acks) => {
                for packet in acks {
                    self.actions.push_back(Action::Send { conn, packet });
                }
            }
        }
    }
}
