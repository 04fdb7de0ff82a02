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
///
/// The 8 KiB bitmap exists only while an identifier is in use: an idle set (a stored
/// session with nothing in flight, say) costs a few bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PacketIds {
    used: Option<Box<[u64; WORDS]>>,
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
    pub const fn new() -> Self {
        PacketIds {
            used: None,
            count: 0,
            last: 0,
        }
    }

    fn words(&self) -> Option<&[u64; WORDS]> {
        self.used.as_deref()
    }

    fn bit(id: u16) -> (usize, u64) {
        (id as usize / 64, 1u64 << (id % 64))
    }

    /// Whether `id` is in use.
    pub fn contains(&self, id: PacketId) -> bool {
        let (w, b) = Self::bit(id.get());
        self.words().is_some_and(|u| u[w] & b != 0)
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
        let mut id = self.last.wrapping_add(1);
        loop {
            let (w, b) = Self::bit(id);
            // Identifier 0 does not exist: it counts as taken.
            let word = self.words().map_or(0, |u| u[w]) | u64::from(w == 0);
            if word == u64::MAX {
                // Skip a full word at once.
                id = ((w as u32 + 1) * 64 % 65_536) as u16;
                continue;
            }
            if word & b == 0 {
                if let Some(pid) = PacketId::new(id) {
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
        let used = self.used.get_or_insert_with(|| Box::new([0u64; WORDS]));
        if used[w] & b != 0 {
            return false;
        }
        used[w] |= b;
        self.count += 1;
        true
    }

    /// Frees `id`; returns false if it was not in use.
    pub fn release(&mut self, id: PacketId) -> bool {
        let (w, b) = Self::bit(id.get());
        let Some(used) = self.used.as_deref_mut() else {
            return false;
        };
        if used[w] & b == 0 {
            return false;
        }
        used[w] &= !b;
        self.count -= 1;
        if self.count == 0 {
            self.used = None;
        }
        true
    }

    /// The identifier handed out last (0 before the first): allocation resumes after it.
    pub fn cursor(&self) -> u16 {
        self.last
    }

    /// Makes allocation resume after `last` (for a set restored from an export).
    pub(crate) fn set_cursor(&mut self, last: u16) {
        self.last = last;
    }

    /// Frees every identifier.
    pub fn clear(&mut self) {
        self.used = None;
        self.count = 0;
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

    #[test]
    fn an_idle_set_holds_no_bitmap_and_keeps_its_cursor() {
        let mut ids = PacketIds::new();
        assert!(ids.words().is_none());
        let a = ids.allocate().unwrap();
        assert!(ids.words().is_some());
        assert!(ids.release(a));
        assert!(
            ids.words().is_none(),
            "bitmap freed when the last id is released"
        );
        assert_eq!(
            ids.allocate().unwrap().get(),
            2,
            "reuse comes as late as possible"
        );
        ids.clear();
        assert!(ids.is_empty() && ids.words().is_none());
        assert_eq!(ids.allocate().unwrap().get(), 3);
    }
}
