//! Packet identifier allocation, shared by the client and the server side.
//!
//! One identifier space per sender and session covers PUBLISH at QoS 1/2, SUBSCRIBE and
//! UNSUBSCRIBE (MQTT-2.3.1-2). An identifier is in use from the moment it is allocated
//! until its acknowledgement is processed (MQTT-2.3.1-3, MQTT-2.3.1-4), and then it may
//! be reused.

use alloc::boxed::Box;

use crate::types::PacketId;

const WORDS: usize = 65_536 / 64;

/// The set of packet identifiers in use, with a cursor for the next allocation.
///
/// Allocation scans forward from the last identifier handed out, so identifiers are
/// reused as late as possible (which keeps a late duplicate ack from matching a new
/// message); it takes O(1) amortized and at most 1 024 word reads when all are taken.
#[derive(Clone, PartialEq, Eq)]
pub struct PacketIds {
    used: Box<[u64; WORDS]>,
    count: usize,
    last: u16,
}

impl core::fmt::Debug for PacketIds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketIds")
            .field("in_use", &self.count)
            .field("last", &self.last)
            .finish()
    }
}

impl Default for PacketIds {
    fn default() -> Self {
        PacketIds::new()
    }
}

impl PacketIds {
    /// An empty set; the first allocation returns 1.
    pub fn new() -> Self {
        let mut used = Box::new([0u64; WORDS]);
        // Identifier 0 does not exist: mark it taken for good.
        used[0] = 1;
        PacketIds {
            used,
            count: 0,
            last: 0,
        }
    }

    fn bit(id: u16) -> (usize, u64) {
        (id as usize / 64, 1u64 << (id % 64))
    }

    /// Whether `id` is in use.
    pub fn contains(&self, id: PacketId) -> bool {
        let (w, b) = Self::bit(id.get());
        self.used[w] & b != 0
    }

    /// How many identifiers are in use.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no identifier is in use.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether all 65 535 identifiers are in use.
    pub fn is_full(&self) -> bool {
        self.count == u16::MAX as usize
    }

    /// Takes the next free identifier after the last one handed out; `None` when all
    /// 65 535 are in use.
    pub fn allocate(&mut self) -> Option<PacketId> {
        if self.is_full() {
            return None;
        }
        let start = self.last.wrapping_add(1);
        let mut id = start;
        loop {
            let (w, _) = Self::bit(id);
            if self.used[w] == u64::MAX {
                // Skip a full word at once.
                id = ((w as u32 + 1) * 64 % 65_536) as u16;
                continue;
            }
            if let Some(pid) = PacketId::new(id) {
                if !self.contains(pid) {
                    self.insert(pid);
                    self.last = id;
                    return Some(pid);
                }
            }
            id = id.wrapping_add(1);
        }
    }

    /// Marks `id` as in use (for identifiers restored from a session or chosen by the
    /// peer); returns false if it already was.
    pub fn insert(&mut self, id: PacketId) -> bool {
        let (w, b) = Self::bit(id.get());
        if self.used[w] & b != 0 {
            return false;
        }
        self.used[w] |= b;
        self.count += 1;
        true
    }

    /// Frees `id`; returns false if it was not in use.
    pub fn release(&mut self, id: PacketId) -> bool {
        let (w, b) = Self::bit(id.get());
        if self.used[w] & b == 0 {
            return false;
        }
        self.used[w] &= !b;
        self.count -= 1;
        true
    }

    /// Frees every identifier.
    pub fn clear(&mut self) {
        *self = PacketIds {
            last: self.last,
            ..PacketIds::new()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_every_nonzero_id_once_then_refuses() {
        let mut ids = PacketIds::new();
        let mut seen = alloc::vec![false; 65_536];
        for _ in 0..65_535 {
            let id = ids.allocate().expect("free id");
            assert!(!seen[id.get() as usize], "{id} twice");
            seen[id.get() as usize] = true;
        }
        assert!(ids.is_full());
        assert_eq!(ids.allocate(), None);
        let five = PacketId::new(5).unwrap();
        assert!(ids.release(five));
        assert_eq!(ids.allocate(), Some(five));
    }

    #[test]
    fn reuses_an_id_only_after_release_and_after_the_others() {
        let mut ids = PacketIds::new();
        let a = ids.allocate().unwrap();
        let b = ids.allocate().unwrap();
        assert_eq!((a.get(), b.get()), (1, 2));
        assert!(ids.release(a));
        assert!(!ids.release(a));
        assert_eq!(ids.allocate().unwrap().get(), 3);
        assert!(ids.contains(b));
        assert_eq!(ids.len(), 2);
    }
}
