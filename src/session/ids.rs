//! Packet identifier allocation, shared by the client and the server side.
//!
//! One identifier space per sender and session covers PUBLISH at QoS 1/2, SUBSCRIBE and
//! UNSUBSCRIBE (MQTT-2.3.1-2). An identifier is in use from the moment it is allocated
//! until its acknowledgement is processed (MQTT-2.3.1-3, MQTT-2.3.1-4), and then it may
//! be reused.

use alloc::boxed::Box;

use crate::types::PacketId;

const WORDS: usize = 65_536 / 64;

/// How many identifiers in use a set keeps in place, without the bitmap.
const FEW: usize = 6;

/// The set of packet identifiers in use, with a cursor for the next allocation.
///
/// Allocation scans forward from the last identifier handed out, so identifiers are
/// reused as late as possible (which keeps a late duplicate ack from matching a new
/// message); it takes O(1) amortized and at most 1 024 word reads when all are taken.
///
/// Up to six identifiers in use are kept in place, in the 24 bytes the set takes; an
/// 8 KiB bitmap holds them from the seventh on, until none is in use. So an idle set
/// (a stored session with nothing in flight, say) and a busy one with a few messages
/// in flight hold no heap, and allocating and freeing an identifier in the common case
/// allocates nothing.
#[derive(Clone)]
pub struct PacketIds {
    /// The identifiers in use while there are at most [`FEW`] and no bitmap: the first
    /// `count` entries, in no order.
    few: [u16; FEW],
    /// The identifiers in use, one bit each, once more than [`FEW`] were.
    bits: Option<Box<[u64; WORDS]>>,
    /// How many identifiers are in use (at most 65 535).
    count: u16,
    last: u16,
}

impl PartialEq for PacketIds {
    /// The same identifiers in use and the same cursor, however they are held.
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count
            && self.last == other.last
            && self.iter().all(|id| other.contains_raw(id))
    }
}

impl Eq for PacketIds {}

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
            few: [0; FEW],
            bits: None,
            count: 0,
            last: 0,
        }
    }

    fn bit(id: u16) -> (usize, u64) {
        (id as usize / 64, 1u64 << (id % 64))
    }

    /// The identifiers kept in place (empty once the bitmap holds them).
    fn in_place(&self) -> &[u16] {
        match self.bits {
            Some(_) => &[],
            None => &self.few[..usize::from(self.count)],
        }
    }

    fn contains_raw(&self, id: u16) -> bool {
        match self.bits.as_deref() {
            Some(bits) => {
                let (w, b) = Self::bit(id);
                bits[w] & b != 0
            }
            None => self.in_place().contains(&id),
        }
    }

    /// Every identifier in use, in no particular order.
    fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        let bits = self.bits.as_deref().into_iter().flat_map(|bits| {
            bits.iter().enumerate().flat_map(|(w, &word)| {
                (0..64u16)
                    .filter(move |b| word & (1u64 << b) != 0)
                    .map(move |b| w as u16 * 64 + b)
            })
        });
        self.in_place().iter().copied().chain(bits)
    }

    /// Whether `id` is in use.
    pub fn contains(&self, id: PacketId) -> bool {
        self.contains_raw(id.get())
    }

    /// How many identifiers are in use.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether no identifier is in use.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether all 65 535 identifiers are in use.
    pub fn is_full(&self) -> bool {
        self.count == u16::MAX
    }

    /// Takes the next free identifier after the last one handed out; `None` when all
    /// 65 535 are in use.
    pub fn allocate(&mut self) -> Option<PacketId> {
        if self.is_full() {
            return None;
        }
        let mut id = self.last.wrapping_add(1);
        if let Some(bits) = self.bits.as_deref() {
            loop {
                let (w, b) = Self::bit(id);
                // Identifier 0 does not exist: it counts as taken.
                let word = bits[w] | u64::from(w == 0);
                if word == u64::MAX {
                    // Skip a full word at once.
                    id = ((w as u32 + 1) * 64 % 65_536) as u16;
                    continue;
                }
                if word & b == 0 {
                    break;
                }
                id = id.wrapping_add(1);
            }
        } else {
            // At most FEW are taken: at most FEW + 1 candidates (and 0) to try.
            while id == 0 || self.in_place().contains(&id) {
                id = id.wrapping_add(1);
            }
        }
        let pid = PacketId::new(id)?;
        self.insert(pid);
        self.last = id;
        Some(pid)
    }

    /// Marks `id` as in use (for identifiers restored from a session or chosen by the
    /// peer); returns false if it already was.
    pub fn insert(&mut self, id: PacketId) -> bool {
        let id = id.get();
        if self.contains_raw(id) {
            return false;
        }
        match self.bits.as_deref_mut() {
            Some(bits) => {
                let (w, b) = Self::bit(id);
                bits[w] |= b;
            }
            None if usize::from(self.count) < FEW => self.few[usize::from(self.count)] = id,
            None => {
                // One more than fits in place: every identifier moves to the bitmap.
                let mut bits = Box::new([0u64; WORDS]);
                for &old in self.few.iter().chain([&id]) {
                    let (w, b) = Self::bit(old);
                    bits[w] |= b;
                }
                self.few = [0; FEW];
                self.bits = Some(bits);
            }
        }
        self.count += 1;
        true
    }

    /// Frees `id`; returns false if it was not in use.
    pub fn release(&mut self, id: PacketId) -> bool {
        let id = id.get();
        match self.bits.as_deref_mut() {
            Some(bits) => {
                let (w, b) = Self::bit(id);
                if bits[w] & b == 0 {
                    return false;
                }
                bits[w] &= !b;
                self.count -= 1;
                if self.count == 0 {
                    self.bits = None;
                }
            }
            None => {
                let n = usize::from(self.count);
                let Some(i) = self.few[..n].iter().position(|&x| x == id) else {
                    return false;
                };
                self.few[i] = self.few[n - 1];
                self.few[n - 1] = 0;
                self.count -= 1;
            }
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
        self.few = [0; FEW];
        self.bits = None;
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
    fn a_few_ids_stay_in_place_and_the_bitmap_comes_and_goes_with_many() {
        let mut ids = PacketIds::new();
        assert_eq!(core::mem::size_of::<PacketIds>(), 24);
        let few: alloc::vec::Vec<PacketId> = (0..FEW).map(|_| ids.allocate().unwrap()).collect();
        assert!(ids.bits.is_none(), "{FEW} ids in use hold no heap");
        let seventh = ids.allocate().unwrap();
        assert!(ids.bits.is_some(), "the seventh moves them to the bitmap");
        assert!(few.iter().chain([&seventh]).all(|&id| ids.contains(id)));
        for id in few {
            assert!(ids.release(id));
        }
        assert!(ids.bits.is_some() && ids.len() == 1);
        assert!(ids.release(seventh));
        assert!(
            ids.bits.is_none(),
            "bitmap freed when the last id is released"
        );
        assert_eq!(
            ids.allocate().unwrap().get(),
            8,
            "reuse comes as late as possible"
        );
        ids.clear();
        assert!(ids.is_empty() && ids.bits.is_none());
        assert_eq!(ids.allocate().unwrap().get(), 9);
    }

    #[test]
    fn sets_with_the_same_ids_are_equal_however_they_hold_them() {
        let mut through_bitmap = PacketIds::new();
        let ids: alloc::vec::Vec<PacketId> =
            (0..8).map(|_| through_bitmap.allocate().unwrap()).collect();
        for &id in &ids[2..] {
            through_bitmap.release(id);
        }
        let mut in_place = PacketIds::new();
        in_place.insert(ids[1]);
        in_place.insert(ids[0]);
        in_place.set_cursor(through_bitmap.cursor());
        assert!(through_bitmap.bits.is_some() && in_place.bits.is_none());
        assert_eq!(through_bitmap, in_place);
        in_place.release(ids[0]);
        assert_ne!(through_bitmap, in_place);
    }

    #[test]
    fn allocation_follows_the_cursor_as_a_plain_set_would_in_both_forms() {
        // A model: the ids in a sorted set, the next one the first free after the cursor.
        let mut model = alloc::collections::BTreeSet::new();
        let mut cursor: u16 = 0;
        let mut ids = PacketIds::new();
        let mut x: u32 = 0x9E37_79B9;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Phases of few and of many ids in use.
            let busy = (step / 2_000) % 2 == 1;
            let allocate = if busy {
                x % 4 != 0
            } else {
                x % 2 == 0 || model.is_empty()
            };
            if allocate {
                let mut want = cursor.wrapping_add(1);
                while want == 0 || model.contains(&want) {
                    want = want.wrapping_add(1);
                }
                let got = ids.allocate().unwrap();
                assert_eq!(got.get(), want, "step {step}");
                model.insert(want);
                cursor = want;
            } else {
                let nth = (x as usize / 4) % model.len();
                let id = *model.iter().nth(nth).unwrap();
                model.remove(&id);
                assert!(ids.release(PacketId::new(id).unwrap()));
            }
            assert_eq!(ids.len(), model.len());
            if model.len() > FEW {
                assert!(
                    ids.bits.is_some(),
                    "step {step}: more than {FEW} need the bitmap"
                );
            }
            if model.is_empty() {
                assert!(
                    ids.bits.is_none(),
                    "step {step}: an idle set holds no bitmap"
                );
            }
        }
    }
}
