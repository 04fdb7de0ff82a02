//! The operation time-outs: when each watched PUBLISH, SUBSCRIBE or UNSUBSCRIBE is
//! reported unacknowledged ([`Event::TimedOut`](super::Event::TimedOut)).

use alloc::collections::{BTreeMap, BTreeSet};

use crate::packet::PacketType;
use crate::time::Instant;
use crate::types::PacketId;

/// The deadlines of the operations awaiting their acknowledgement, by id and in the
/// order they fall due. Ids are unique among the operations in flight, so the pair
/// (deadline, id) names one watch.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    by_id: BTreeMap<PacketId, (Instant, PacketType)>,
    due: BTreeSet<(Instant, PacketId)>,
}

impl Deadlines {
    /// Whether no operation is watched.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The operation `id` of kind `packet_type` is reported if still in flight at `at`.
    pub(super) fn watch(&mut self, id: PacketId, packet_type: PacketType, at: Instant) {
        if let Some((old, _)) = self.by_id.insert(id, (at, packet_type)) {
            self.due.remove(&(old, id));
        }
        self.due.insert((at, id));
    }

    /// The operation `id` is acknowledged or given up: no report.
    pub(super) fn settle(&mut self, id: PacketId) {
        if let Some((at, _)) = self.by_id.remove(&id) {
            self.due.remove(&(at, id));
        }
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Removes and returns an operation whose deadline is `now` or earlier, earliest
    /// first.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(PacketId, PacketType)> {
        let &(at, id) = self.due.first()?;
        if at > now {
            return None;
        }
        self.due.pop_first();
        self.by_id.remove(&id).map(|(_, kind)| (id, kind))
    }
}
