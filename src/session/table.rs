//! The outgoing table: a session's unacknowledged QoS 1/2 messages in resend order,
//! found by packet id.
//!
//! Most tables are small (the inflight window) and short-lived: under a window of one,
//! every message enters an empty table and leaves it empty. So the entries live in one
//! ring buffer that keeps its room while messages flow (two ordered maps allocated and
//! freed a node each per message before), and an id is found by a scan from the oldest
//! entry, where acknowledgements in order find theirs at once. Only a table of more
//! than [`SCAN`] entries keeps an index by id, so that acknowledgements in any order
//! cost a lookup, not a scan, however wide the window.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use core::fmt;

use super::Outgoing;
use crate::types::PacketId;

/// Up to this many entries an id is found by a scan; above it, through the index.
const SCAN: usize = 16;

/// The outgoing entries in resend order (see the [module documentation](self)).
#[derive(Clone, Default)]
pub(super) struct Table {
    /// The entries in resend order; `None` where one left from the middle. Those at
    /// either end are dropped at once, and the gaps are closed once they outnumber the
    /// entries.
    slots: VecDeque<Option<Outgoing>>,
    /// How many entries there are (the `Some`s in `slots`).
    live: usize,
    /// The sequence number of `slots[0]`: an entry's is `base` plus its position, and
    /// stays the same while it is in the table until the gaps are closed.
    base: u64,
    /// Packet id → sequence number, while the table holds more than [`SCAN`] entries
    /// (kept down to half of that, so that a table at the bound does not build it over
    /// and over).
    /// Boxed: most tables never have one, and an idle session should be small (the
    /// table is then as large as the two maps it replaced).
    #[allow(clippy::box_collection)]
    index: Option<Box<BTreeMap<PacketId, u64>>>,
}

impl Table {
    /// How many entries the table holds.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// The entries in resend order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Outgoing> + '_ {
        self.slots.iter().flatten()
    }

    /// The position in `slots` of the entry with packet id `id`.
    fn position(&self, id: PacketId) -> Option<usize> {
        match &self.index {
            Some(index) => index
                .get(&id)
                .and_then(|seq| usize::try_from(seq.checked_sub(self.base)?).ok()),
            None => self
                .slots
                .iter()
                .position(|s| s.as_ref().is_some_and(|o| o.id == id)),
        }
    }

    /// The entry with packet id `id`.
    pub(super) fn get(&self, id: PacketId) -> Option<&Outgoing> {
        self.slots.get(self.position(id)?)?.as_ref()
    }

    /// The entry with packet id `id`, to change in place (not its id: see
    /// [`renumber`](Self::renumber)).
    pub(super) fn get_mut(&mut self, id: PacketId) -> Option<&mut Outgoing> {
        let at = self.position(id)?;
        self.slots.get_mut(at)?.as_mut()
    }

    /// Whether an entry has packet id `id`.
    pub(super) fn contains(&self, id: PacketId) -> bool {
        self.position(id).is_some()
    }

    /// Adds `entry` at the end of the resend order. The caller makes sure that no
    /// entry has its id.
    pub(super) fn push(&mut self, entry: Outgoing) {
        let id = entry.id;
        self.slots.push_back(Some(entry));
        self.live += 1;
        let seq = self.base + (self.slots.len() - 1) as u64;
        match &mut self.index {
            Some(index) => {
                index.insert(id, seq);
            }
            None if self.live > SCAN => self.build_index(),
            None => {}
        }
    }

    /// Takes the entry with packet id `id` out of the table.
    pub(super) fn remove(&mut self, id: PacketId) -> Option<Outgoing> {
        let at = self.position(id)?;
        let entry = self.slots.get_mut(at)?.take()?;
        self.live -= 1;
        if let Some(index) = &mut self.index {
            index.remove(&id);
        }
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        while matches!(self.slots.back(), Some(None)) {
            self.slots.pop_back();
        }
        if self.live <= SCAN / 2 {
            self.index = None;
        }
        if self.slots.len() > 2 * self.live + SCAN {
            self.close_gaps();
        }
        Some(entry)
    }

    /// Gives the entry with packet id `old` the id `new` (free in the table), keeping
    /// its place in the resend order. False if there is no such entry.
    pub(super) fn renumber(&mut self, old: PacketId, new: PacketId) -> bool {
        let Some(at) = self.position(old) else {
            return false;
        };
        let Some(Some(entry)) = self.slots.get_mut(at) else {
            return false;
        };
        entry.id = new;
        if let Some(index) = &mut self.index {
            if let Some(seq) = index.remove(&old) {
                index.insert(new, seq);
            }
        }
        true
    }

    /// Gives the room back once the table is empty (a connection going idle).
    pub(super) fn release_room(&mut self) {
        if self.live == 0 {
            *self = Table::default();
        }
    }

    /// Drops the gaps left by entries that left from the middle.
    fn close_gaps(&mut self) {
        self.slots.retain(Option::is_some);
        self.base = 0;
        if self.index.is_some() {
            self.build_index();
        }
    }

    fn build_index(&mut self) {
        let base = self.base;
        self.index = Some(Box::new(
            self.slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|o| (o.id, base + i as u64)))
                .collect(),
        ));
    }
}

impl PartialEq for Table {
    /// Two tables are equal when they hold equal entries in the same order.
    fn eq(&self, other: &Table) -> bool {
        self.live == other.live && self.iter().eq(other.iter())
    }
}

impl Eq for Table {}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use bytes::Bytes;

    use super::*;
    use crate::session::{Message, Stage};
    use crate::types::{QoS, TopicName};

    fn entry(id: u16) -> Outgoing {
        Outgoing {
            id: PacketId::new(id).expect("non-zero"),
            message: Message {
                topic: TopicName::from_static("t").expect("a valid topic"),
                payload: Bytes::new(),
                qos: QoS::AtLeastOnce,
                retain: false,
            },
            stage: Stage::Published,
            sent: true,
            first_sent: None,
        }
    }

    fn pid(id: u16) -> PacketId {
        PacketId::new(id).expect("non-zero")
    }

    fn ids(t: &Table) -> Vec<u16> {
        t.iter().map(|o| o.id.get()).collect()
    }

    #[test]
    fn entries_keep_their_order_and_are_found_by_id_below_and_above_the_scan_bound() {
        for n in [3u16, SCAN as u16 + 5, 200] {
            let mut t = Table::default();
            for id in 1..=n {
                t.push(entry(id));
            }
            assert_eq!(t.len(), usize::from(n));
            assert_eq!(t.index.is_some(), usize::from(n) > SCAN, "n = {n}");
            assert_eq!(ids(&t), (1..=n).collect::<Vec<_>>());
            for id in 1..=n {
                assert_eq!(t.get(pid(id)).map(|o| o.id), Some(pid(id)));
            }
            assert!(!t.contains(pid(n + 1)));
            // Acknowledged in reverse order, every other one first: the rest stay in
            // order, and each is still found.
            let order: Vec<u16> = (1..=n)
                .rev()
                .filter(|i| i % 2 == 0)
                .chain((1..=n).rev().filter(|i| i % 2 == 1))
                .collect();
            for (k, &id) in order.iter().enumerate() {
                assert_eq!(t.remove(pid(id)).map(|o| o.id), Some(pid(id)));
                assert_eq!(t.remove(pid(id)), None, "removed twice");
                let mut left: Vec<u16> = order[k + 1..].to_vec();
                left.sort_unstable();
                assert_eq!(ids(&t), left);
                assert_eq!(t.len(), left.len());
                for &l in &left {
                    assert!(t.contains(pid(l)), "n = {n}: {l} lost after removing {id}");
                }
                assert!(t.slots.len() <= 2 * t.live + SCAN + 1, "gaps are closed");
            }
            assert!(t.slots.is_empty());
        }
    }

    #[test]
    fn renumbering_keeps_the_place_and_moves_the_lookup() {
        for n in [4u16, 40] {
            let mut t = Table::default();
            for id in 1..=n {
                t.push(entry(id));
            }
            assert!(t.renumber(pid(2), pid(1000)));
            assert!(!t.renumber(pid(2), pid(1001)), "the old id is gone");
            assert!(!t.contains(pid(2)));
            assert_eq!(t.get(pid(1000)).map(|o| o.id), Some(pid(1000)));
            assert_eq!(ids(&t)[1], 1000);
            assert_eq!(t.remove(pid(1000)).map(|o| o.id), Some(pid(1000)));
            assert_eq!(t.len(), usize::from(n) - 1);
        }
    }

    #[test]
    fn a_window_of_one_reuses_the_room_and_an_empty_table_gives_it_back() {
        let mut t = Table::default();
        for round in 1..=100u16 {
            t.push(entry(round));
            assert_eq!(t.remove(pid(round)).map(|o| o.id), Some(pid(round)));
            assert!(t.slots.is_empty());
        }
        assert!(
            t.slots.capacity() > 0,
            "the room is kept while messages flow"
        );
        t.push(entry(7));
        t.release_room();
        assert_eq!(ids(&t), [7], "a table with entries keeps them");
        t.remove(pid(7));
        t.release_room();
        assert_eq!(t.slots.capacity(), 0);
    }

    #[test]
    fn tables_with_equal_entries_in_order_are_equal_whatever_their_gaps() {
        let mut a = Table::default();
        let mut b = Table::default();
        for id in 1..=5 {
            a.push(entry(id));
        }
        for id in [1, 9, 2, 3, 4, 5] {
            b.push(entry(id));
        }
        assert_ne!(a, b);
        b.remove(pid(9));
        assert_eq!(a, b);
        assert_eq!(alloc::format!("{a:?}"), alloc::format!("{b:?}"));
    }
}
