//! The open connections of a broker, each in a slot of a vector.
//!
//! The caller names connections with [`ConnId`]s of its choice, so an input is looked
//! up by id once; from there on, and for every delivery a route makes, the broker
//! reaches a connection by its slot, without a search. A slot is reused once its
//! connection is gone, so whoever keeps a slot keeps the id with it and asks for the
//! pair ([`Conns::at_mut`]): a stale pair finds nothing.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use bytes::Bytes;

use super::ConnId;
use crate::server::Server;
use crate::time::Instant;

/// One open connection.
#[derive(Debug)]
pub(super) struct Conn {
    /// The caller's id for it.
    pub(super) id: ConnId,
    pub(super) server: Server,
    /// The client id and CleanSession flag, once the CONNECT is accepted.
    pub(super) accepted: Option<(Bytes, bool)>,
    /// The deadline under which it is in the broker's timers, if any.
    pub(super) armed: Option<Instant>,
    /// Whether it got something to send and awaits a pump (and is in the broker's
    /// list of such connections).
    pub(super) dirty: bool,
}

/// The open connections, by id and by slot.
#[derive(Debug, Default)]
pub(super) struct Conns {
    /// Boxed: a free slot costs a pointer, not a connection.
    slots: Vec<Option<Box<Conn>>>,
    free: Vec<usize>,
    by_id: BTreeMap<ConnId, usize>,
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

    pub(super) fn get_mut(&mut self, id: &ConnId) -> Option<&mut Conn> {
        let slot = *self.by_id.get(id)?;
        self.slots.get_mut(slot)?.as_deref_mut()
    }

    /// The connection in `slot`, if it is still connection `id`.
    #[inline]
    pub(super) fn at_mut(&mut self, id: ConnId, slot: usize) -> Option<&mut Conn> {
        self.slots
            .get_mut(slot)?
            .as_deref_mut()
            .filter(|c| c.id == id)
    }

    /// Adds `conn` (whose id is not open) and returns its slot.
    pub(super) fn insert(&mut self, conn: Conn) -> usize {
        let id = conn.id;
        let conn = Some(Box::new(conn));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = conn;
                slot
            }
            None => {
                self.slots.push(conn);
                self.slots.len() - 1
            }
        };
        self.by_id.insert(id, slot);
        slot
    }

    /// Takes connection `id` out; its slot is free for the next one.
    pub(super) fn remove(&mut self, id: &ConnId) -> Option<Conn> {
        let slot = self.by_id.remove(id)?;
        let conn = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some(*conn)
    }
}
