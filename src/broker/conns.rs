//! The open connections of a broker, each in a slot of a vector, and the QoS 0
//! deliveries staged for them.
//!
//! The caller names connections with [`ConnId`]s of its choice, so an input is looked
//! up by id once; from there on, and for every delivery a route makes, the broker
//! reaches a connection by its slot, without a search. A slot is reused once its
//! connection is gone, so whoever keeps a slot keeps the id with it and asks for the
//! pair ([`Conns::at_mut`]): a stale pair finds nothing.
//!
//! Beside the slots, a dense record per slot ([`Meta`]) says what a route needs to know
//! without reaching the connection itself (about a kilobyte of state, a cache miss or
//! more per subscriber when a message goes to thousands): whether the connection is
//! *quiet*, so that a QoS 0 delivery can be staged for it here instead of passing
//! through its server, and whether it awaits a pump.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use bytes::Bytes;

use super::{Action, ConnId};
use crate::packet::{Packet, Publish};
use crate::server::Server;
use crate::time::Instant;

/// One open connection.
#[derive(Debug)]
pub(super) struct Conn {
    /// The caller's id for it.
    pub(super) id: ConnId,
    pub(super) server: Server,
    /// The CleanSession flag, once the CONNECT is accepted (the client id in effect is
    /// the server's).
    pub(super) accepted: Option<bool>,
    /// The deadline under which it is in the broker's timers, if any.
    pub(super) armed: Option<Instant>,
    /// The bytes queued in its session as last counted in the broker's total.
    pub(super) seen_bytes: usize,
}

/// No staged delivery.
const NONE: u32 = u32::MAX;

/// What the broker knows of a slot without reaching its connection.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// The connection in the slot, if any.
    id: Option<ConnId>,
    /// Nothing reached the connection mutably since a pump left its server connected,
    /// with no action queued and no retained message pending: the server would only
    /// queue a QoS 0 delivery behind nothing, so the delivery is staged here instead.
    /// Any mutable access ([`Conns::at_mut`], [`Conns::get_mut`]) ends it.
    quiet: bool,
    /// Whether it got something to send (staged, or queued by its server) and awaits a
    /// pump (and is in the broker's list of such connections).
    dirty: bool,
    /// The first and last of its staged deliveries (indexes into `Staged::entries`).
    first: u32,
    last: u32,
}

impl Meta {
    const FREE: Meta = Meta {
        id: None,
        quiet: false,
        dirty: false,
        first: NONE,
        last: NONE,
    };
}

/// QoS 0 deliveries staged for quiet connections, in the order they were made: one
/// PUBLISH per route, and per delivery its index and the next delivery of the same
/// connection.
#[derive(Debug, Default)]
struct Staged {
    publishes: Vec<Publish<Bytes>>,
    entries: Vec<(u32, u32)>,
    /// Entries not yet carried out; both vectors are emptied when it reaches 0.
    live: usize,
}

/// The open connections, by id and by slot.
#[derive(Debug, Default)]
pub(super) struct Conns {
    /// Boxed: a free slot costs a pointer, not a connection.
    slots: Vec<Option<Box<Conn>>>,
    meta: Vec<Meta>,
    free: Vec<usize>,
    by_id: BTreeMap<ConnId, usize>,
    staged: Staged,
}

impl Conns {
    /// The number of open connections.
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn contains_key(&self, id: &ConnId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Every open connection, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().filter_map(|c| c.as_deref())
    }

    /// The slot of connection `id`.
    pub(super) fn slot_of(&self, id: ConnId) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    pub(super) fn get(&self, id: &ConnId) -> Option<&Conn> {
        let slot = *self.by_id.get(id)?;
        self.slots.get(slot)?.as_deref()
    }

    /// Connection `id`; it is no longer quiet.
    pub(super) fn get_mut(&mut self, id: &ConnId) -> Option<&mut Conn> {
        let slot = *self.by_id.get(id)?;
        self.meta.get_mut(slot)?.quiet = false;
        self.slots.get_mut(slot)?.as_deref_mut()
    }

    /// The connection in `slot`, if it is still connection `id`; it is no longer quiet.
    #[inline]
    pub(super) fn at_mut(&mut self, id: ConnId, slot: usize) -> Option<&mut Conn> {
        let meta = self.meta.get_mut(slot).filter(|m| m.id == Some(id))?;
        meta.quiet = false;
        self.slots.get_mut(slot)?.as_deref_mut()
    }

    /// Adds `conn` (whose id is not open) and returns its slot.
    pub(super) fn insert(&mut self, conn: Conn) -> usize {
        let id = conn.id;
        let meta = Meta {
            id: Some(id),
            ..Meta::FREE
        };
        let conn = Some(Box::new(conn));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = conn;
                self.meta[slot] = meta;
                slot
            }
            None => {
                self.slots.push(conn);
                self.meta.push(meta);
                self.slots.len() - 1
            }
        };
        self.by_id.insert(id, slot);
        slot
    }

    /// Takes connection `id` out; its slot is free for the next one. Its staged
    /// deliveries must have been carried out ([`flush_staged`](Self::flush_staged)).
    pub(super) fn remove(&mut self, id: &ConnId) -> Option<Conn> {
        let slot = self.by_id.remove(id)?;
        let conn = self.slots.get_mut(slot)?.take()?;
        if let Some(meta) = self.meta.get_mut(slot) {
            // Nothing is left when the caller flushed first; the count stays right if not.
            let mut next = meta.first;
            while let Some(&(_, after)) = self.staged.entries.get(next as usize) {
                self.staged.live = self.staged.live.saturating_sub(1);
                next = after;
            }
            *meta = Meta::FREE;
            if self.staged.live == 0 {
                self.staged.entries.clear();
                self.staged.publishes.clear();
            }
        }
        self.free.push(slot);
        Some(*conn)
    }

    /// Marks connection `id` in `slot` as awaiting a pump: true if it was not yet (the
    /// caller lists it then).
    #[inline]
    pub(super) fn mark_dirty(&mut self, id: ConnId, slot: usize) -> bool {
        match self.meta.get_mut(slot) {
            Some(m) if m.id == Some(id) && !m.dirty => {
                m.dirty = true;
                true
            }
            _ => false,
        }
    }

    /// If connection `id` in `slot` awaits a pump, it no longer does, and whether it is
    /// quiet (nothing to do but its staged deliveries).
    #[inline]
    pub(super) fn take_dirty(&mut self, id: ConnId, slot: usize) -> Option<bool> {
        let m = self
            .meta
            .get_mut(slot)
            .filter(|m| m.id == Some(id) && m.dirty)?;
        m.dirty = false;
        Some(m.quiet)
    }

    /// A pump of connection `id` in `slot` begins: it no longer awaits one. `None` if
    /// the slot holds another connection; otherwise whether it is quiet (nothing to do
    /// but its staged deliveries).
    #[inline]
    pub(super) fn begin_pump(&mut self, id: ConnId, slot: usize) -> Option<bool> {
        let m = self.meta.get_mut(slot).filter(|m| m.id == Some(id))?;
        m.dirty = false;
        Some(m.quiet)
    }

    /// Connection `id` in `slot` is quiet: a pump left its server connected, with
    /// nothing queued and no retained message pending.
    pub(super) fn set_quiet(&mut self, id: ConnId, slot: usize) {
        if let Some(m) = self.meta.get_mut(slot).filter(|m| m.id == Some(id)) {
            m.quiet = true;
        }
    }

    /// Whether connection `id` in `slot` is quiet.
    #[inline]
    pub(super) fn is_quiet(&self, id: ConnId, slot: usize) -> bool {
        self.meta
            .get(slot)
            .is_some_and(|m| m.id == Some(id) && m.quiet)
    }

    /// Keeps `publish` for deliveries to be staged ([`stage`](Self::stage)); returns
    /// its number.
    pub(super) fn keep(&mut self, publish: Publish<Bytes>) -> u32 {
        self.staged.publishes.push(publish);
        (self.staged.publishes.len() - 1) as u32
    }

    /// Stages a delivery of publish number `publish` for the quiet connection `id` in
    /// `slot`, after those already staged for it, and marks it as awaiting a pump: true
    /// if it was not yet (the caller lists it then). It goes out when the connection is
    /// next pumped, before anything its server has queued since.
    #[inline]
    pub(super) fn stage(&mut self, id: ConnId, slot: usize, publish: u32) -> bool {
        let Some(m) = self.meta.get_mut(slot).filter(|m| m.id == Some(id)) else {
            return false;
        };
        let entry = self.staged.entries.len() as u32;
        self.staged.entries.push((publish, NONE));
        self.staged.live += 1;
        if m.first == NONE {
            m.first = entry;
        } else if let Some(last) = self.staged.entries.get_mut(m.last as usize) {
            last.1 = entry;
        }
        m.last = entry;
        !core::mem::replace(&mut m.dirty, true)
    }

    /// Carries out the deliveries staged for `slot`, in order, into `out`; returns how
    /// many.
    #[inline]
    pub(super) fn flush_staged(&mut self, slot: usize, out: &mut VecDeque<Action>) -> u64 {
        let Some(m) = self.meta.get_mut(slot) else {
            return 0;
        };
        let (Some(conn), mut next) = (m.id, m.first) else {
            return 0;
        };
        if next == NONE {
            return 0;
        }
        let mut sent = 0;
        (m.first, m.last) = (NONE, NONE);
        let staged = &mut self.staged;
        while let Some(&(publish, after)) = staged.entries.get(next as usize) {
            if let Some(p) = staged.publishes.get(publish as usize) {
                out.push_back(Action::Send {
                    conn,
                    packet: Packet::Publish(p.clone()),
                });
                sent += 1;
            }
            staged.live = staged.live.saturating_sub(1);
            next = after;
        }
        if staged.live == 0 {
            staged.entries.clear();
            staged.publishes.clear();
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;
    use crate::server::ServerConfig;
    use crate::types::TopicName;

    fn conn(id: u64) -> Conn {
        Conn {
            id: ConnId(id),
            server: Server::new(Profile::mqtt311(), ServerConfig::default()),
            accepted: None,
            armed: None,
            seen_bytes: 0,
        }
    }

    fn publish(payload: &'static [u8]) -> Publish<Bytes> {
        let topic = TopicName::from_static("t").expect("valid");
        Publish::new(topic, crate::packet::QosPid::AtMostOnce, payload)
    }

    fn payloads(out: &VecDeque<Action>) -> Vec<(u64, &[u8])> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    conn,
                    packet: Packet::Publish(p),
                } => Some((conn.0, &p.payload[..])),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn staged_deliveries_go_out_per_connection_in_the_order_they_were_staged() {
        let mut conns = Conns::default();
        let (a, b) = (conns.insert(conn(1)), conns.insert(conn(2)));
        conns.set_quiet(ConnId(1), a);
        conns.set_quiet(ConnId(2), b);
        let (first, second) = (conns.keep(publish(b"1")), conns.keep(publish(b"2")));
        assert!(conns.stage(ConnId(1), a, first), "newly awaiting a pump");
        assert!(conns.stage(ConnId(2), b, first));
        assert!(!conns.stage(ConnId(1), a, second), "already awaiting one");
        let mut out = VecDeque::new();
        conns.flush_staged(b, &mut out);
        conns.flush_staged(a, &mut out);
        conns.flush_staged(a, &mut out);
        assert_eq!(payloads(&out), [(2, &b"1"[..]), (1, b"1"), (1, b"2")]);
        assert_eq!(conns.staged.live, 0);
        assert!(conns.staged.entries.is_empty() && conns.staged.publishes.is_empty());
    }

    #[test]
    fn any_mutable_access_ends_quiet_and_a_removed_connection_leaves_nothing_staged() {
        let mut conns = Conns::default();
        let (a, b) = (conns.insert(conn(1)), conns.insert(conn(2)));
        conns.set_quiet(ConnId(1), a);
        conns.set_quiet(ConnId(2), b);
        assert!(conns.get_mut(&ConnId(1)).is_some());
        assert!(conns.at_mut(ConnId(2), b).is_some());
        assert!(!conns.is_quiet(ConnId(1), a) && !conns.is_quiet(ConnId(2), b));
        conns.set_quiet(ConnId(2), b);
        let p = conns.keep(publish(b"x"));
        conns.stage(ConnId(2), b, p);
        assert!(conns.remove(&ConnId(2)).is_some());
        assert_eq!(conns.staged.live, 0);
        assert!(conns.staged.entries.is_empty() && conns.staged.publishes.is_empty());
        // The slot goes to a new connection with nothing staged and not quiet.
        let c = conns.insert(conn(3));
        assert_eq!(c, b);
        assert!(!conns.is_quiet(ConnId(3), c) && !conns.is_quiet(ConnId(2), c));
        let mut out = VecDeque::new();
        conns.flush_staged(c, &mut out);
        assert!(out.is_empty());
    }
}
