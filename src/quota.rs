//! Rate quotas: how many PUBLISH, and how many of their bytes, one connection may send
//! per second ([`Quotas`]).
//!
//! AWS IoT Core documents 100 inbound publishes and 512 KiB per second per connection
//! (<https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits>).
//! The windows are fixed: one second from the first PUBLISH counted in it.

use alloc::collections::{BTreeMap, BTreeSet};
use core::time::Duration;

use bytes::Bytes;

use crate::profile::Quotas;
use crate::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

/// What the quotas say about one more PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Within the quotas: counted.
    Yes,
    /// Over the count of PUBLISH per second: AWS discards it.
    OverCount,
    /// Over the bytes per second: AWS delays it until the window ends, at `resume`.
    OverBytes {
        /// When the next window starts.
        resume: Instant,
    },
}

/// The PUBLISH counted in the current one-second window of a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PublishWindow {
    start: Option<Instant>,
    count: u32,
    bytes: u64,
}

impl PublishWindow {
    /// Counts a PUBLISH of `bytes` at `now` if the quotas leave room for it; otherwise
    /// nothing is counted and the answer says which quota it would go over.
    pub(crate) fn admit(&mut self, now: Instant, quotas: &Quotas, bytes: usize) -> Admit {
        if quotas.publishes_per_second.is_none() && quotas.publish_bytes_per_second.is_none() {
            return Admit::Yes;
        }
        if self.start.is_none_or(|s| now >= s + SECOND) {
            *self = PublishWindow {
                start: Some(now),
                count: 0,
                bytes: 0,
            };
        }
        let count = self.count.saturating_add(1);
        let total = self.bytes.saturating_add(bytes as u64);
        if quotas.publishes_per_second.is_some_and(|max| count > max) {
            return Admit::OverCount;
        }
        // A PUBLISH larger than a whole window's bytes still goes, alone in a window.
        if quotas
            .publish_bytes_per_second
            .is_some_and(|max| total > u64::from(max) && self.bytes > 0)
        {
            let start = self.start.unwrap_or(now);
            return Admit::OverBytes {
                resume: start + SECOND,
            };
        }
        self.count = count;
        self.bytes = total;
        Admit::Yes
    }
}

/// The CONNECT of the last second, by client id, for
/// [`Quotas::connects_per_second_per_client`]. Entries older than a second are
/// forgotten at each call, so memory follows the recent CONNECT.
#[derive(Debug, Default)]
pub(crate) struct ConnectRate {
    recent: BTreeMap<Bytes, (Instant, u32)>,
    by_start: BTreeSet<(Instant, Bytes)>,
}

impl ConnectRate {
    /// Counts a CONNECT of `client` at `now` if the quota leaves room; `false`
    /// (nothing counted) if it would go over.
    pub(crate) fn admit(&mut self, now: Instant, quotas: &Quotas, client: &Bytes) -> bool {
        let Some(max) = quotas.connects_per_second_per_client else {
            return true;
        };
        while let Some((start, id)) = self.by_start.first() {
            if now < *start + SECOND {
                break;
            }
            self.recent.remove(id);
            self.by_start.pop_first();
        }
        match self.recent.get_mut(client) {
            Some((_, n)) if *n >= max => false,
            Some((_, n)) => {
                *n += 1;
                true
            }
            None => {
                self.recent.insert(client.clone(), (now, 1));
                self.by_start.insert((now, client.clone()));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hundred_and_first_publish_in_a_second_is_refused_and_the_next_second_is_fresh() {
        let q = crate::Profile::aws_iot_core_2025().quotas;
        let mut w = PublishWindow::default();
        let t0 = Instant::from_millis(500);
        for _ in 0..100 {
            assert_eq!(w.admit(t0, &q, 10), Admit::Yes);
        }
        assert_eq!(
            w.admit(Instant::from_millis(1499), &q, 10),
            Admit::OverCount
        );
        assert_eq!(w.admit(Instant::from_millis(1500), &q, 10), Admit::Yes);
    }

    #[test]
    fn bytes_over_512_kib_in_a_second_wait_for_the_next_window() {
        let q = crate::Profile::aws_iot_core_2025().quotas;
        let mut w = PublishWindow::default();
        let t0 = Instant::from_millis(200);
        let resume = Admit::OverBytes {
            resume: Instant::from_millis(1200),
        };
        assert_eq!(w.admit(t0, &q, 400 * 1024), Admit::Yes);
        assert_eq!(w.admit(t0, &q, 113 * 1024), resume);
        assert_eq!(w.admit(t0, &q, 112 * 1024), Admit::Yes);
        assert_eq!(w.admit(Instant::from_millis(1199), &q, 1), resume);
        assert_eq!(w.admit(Instant::from_millis(1200), &q, 1), Admit::Yes);
    }

    #[test]
    fn a_publish_larger_than_the_byte_quota_goes_alone_in_a_window() {
        let mut q = Quotas::NONE;
        q.publish_bytes_per_second = Some(100);
        let mut w = PublishWindow::default();
        assert_eq!(w.admit(Instant::ZERO, &q, 500), Admit::Yes);
        assert_eq!(
            w.admit(Instant::ZERO, &q, 1),
            Admit::OverBytes {
                resume: Instant::from_millis(1000)
            }
        );
    }

    #[test]
    fn without_quotas_everything_is_admitted() {
        let q = Quotas::NONE;
        let mut w = PublishWindow::default();
        for _ in 0..1000 {
            assert_eq!(w.admit(Instant::ZERO, &q, 1 << 20), Admit::Yes);
        }
    }

    #[test]
    fn a_second_connect_of_one_client_id_within_a_second_is_refused() {
        let q = crate::Profile::aws_iot_core_2025().quotas;
        let mut r = ConnectRate::default();
        let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
        assert!(r.admit(Instant::from_millis(100), &q, &a));
        assert!(r.admit(Instant::from_millis(200), &q, &b));
        assert!(!r.admit(Instant::from_millis(1099), &q, &a));
        assert!(r.admit(Instant::from_millis(1100), &q, &a));
        assert!(!r.admit(Instant::from_millis(1199), &q, &b));
        assert!(r.admit(Instant::from_millis(1200), &q, &b));
        assert_eq!((r.recent.len(), r.by_start.len()), (2, 2));
        assert!(r.admit(Instant::from_millis(5000), &q, &a));
        assert_eq!((r.recent.len(), r.by_start.len()), (1, 1));
    }
}
