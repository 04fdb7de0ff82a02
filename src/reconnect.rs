//! When to reconnect after a lost connection: exponential backoff with jitter drawn
//! from a seed the caller supplies (so runs are reproducible), capped, reset after a
//! connection that stayed up, and never more than one CONNECT per interval for a client
//! id (AWS IoT Core allows one per second).
//!
//! The caller reports what happens ([`connecting`](Backoff::connecting) when it sends
//! CONNECT, [`connected`](Backoff::connected) on CONNACK, [`lost`](Backoff::lost) when
//! the connection ends or an attempt fails) and `lost` answers the instant of the next
//! attempt. Time is an input, as everywhere in the crate.
//!
//! ```
//! use core::time::Duration;
//! use mqtt_sansio::reconnect::Backoff;
//! use mqtt_sansio::{Instant, Profile};
//!
//! let mut backoff = Backoff::for_profile(&Profile::mqtt311(), 7);
//! let t0 = Instant::from_secs(100);
//! backoff.connecting(t0);
//! backoff.connected(t0);
//! // Lost after 1 s: the first retry comes within the first delay.
//! let lost = t0 + Duration::from_secs(1);
//! let next = backoff.lost(lost);
//! assert!(next > lost && next <= lost + backoff.min);
//! ```

use core::time::Duration;

use crate::profile::Profile;
use crate::time::Instant;

/// Reconnect timing for one client id. See the [module](self) docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay (before jitter). Default 500 ms.
    pub min: Duration,
    /// The largest delay. Default 30 s.
    pub max: Duration,
    /// A connection that stayed up this long resets the delay to `min`. Default 60 s.
    pub stable_after: Duration,
    /// Least time between two CONNECTs: 1 s under AWS IoT Core, zero otherwise.
    pub min_connect_interval: Duration,
    /// Failed attempts since the last stable connection.
    attempts: u32,
    /// The jitter generator's state (splitmix64).
    rng: u64,
    /// When the current connection was accepted, while it is up.
    up_since: Option<Instant>,
    /// When the last CONNECT was sent.
    last_connect: Option<Instant>,
}

impl Backoff {
    /// The default timing for `profile` (one CONNECT per second under either AWS IoT
    /// Core preset, or the profile's own CONNECT quota), with jitter drawn from `seed`.
    pub fn for_profile(profile: &Profile, seed: u64) -> Backoff {
        let min_connect_interval = match profile.quotas.connects_per_second_per_client {
            Some(n) => Duration::from_secs(1) / n.max(1),
            None if profile.name == Profile::aws_iot_core().name => Duration::from_secs(1),
            None => Duration::ZERO,
        };
        Backoff {
            min: Duration::from_millis(500),
            max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            min_connect_interval,
            attempts: 0,
            rng: seed,
            up_since: None,
            last_connect: None,
        }
    }

    /// A CONNECT is sent now.
    pub fn connecting(&mut self, now: Instant) {
        self.last_connect = Some(now);
    }

    /// The earliest instant the next CONNECT may be sent:
    /// [`min_connect_interval`](Self::min_connect_interval) after the last one (`None`
    /// before the first). For a reconnect the application asks for outside the backoff.
    pub fn earliest_connect(&self) -> Option<Instant> {
        self.last_connect
            .map(|last| last.saturating_add(self.min_connect_interval))
    }

    /// The server accepted the connection (CONNACK).
    pub fn connected(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    /// The connection ended, or an attempt failed, at `now`: the instant of the next
    /// attempt. The delay doubles with every failure up to [`max`](Self::max); the
    /// attempt lands uniformly in the second half of the delay ("equal jitter"), and
    /// never sooner than [`min_connect_interval`](Self::min_connect_interval) after the
    /// last CONNECT.
    pub fn lost(&mut self, now: Instant) -> Instant {
        if let Some(up) = self.up_since.take() {
            if now.saturating_duration_since(up) >= self.stable_after {
                self.attempts = 0;
            }
        }
        let delay = self.delay();
        self.attempts = self.attempts.saturating_add(1);
        let half = delay / 2;
        let span = u64::try_from(delay.saturating_sub(half).as_millis()).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(self.next_random() % span.saturating_add(1));
        let at = now.saturating_add(half + jitter);
        match self.last_connect {
            Some(last) => at.max(last.saturating_add(self.min_connect_interval)),
            None => at,
        }
    }

    /// The delay before jitter for the current number of failures.
    fn delay(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempts.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn ms(d: Instant, from: Instant) -> u64 {
        u64::try_from(d.saturating_duration_since(from).as_millis()).unwrap()
    }

    #[test]
    fn delays_double_with_each_failure_within_their_jitter_window_up_to_the_cap() {
        let mut b = Backoff::for_profile(&Profile::mqtt311(), 1);
        let mut now = at(1_000);
        let mut expected = 500u64;
        for _ in 0..12 {
            let next = b.lost(now);
            let d = ms(next, now);
            assert!(
                d >= expected / 2 && d <= expected,
                "{d} for delay {expected}"
            );
            now = next;
            expected = (expected * 2).min(30_000);
        }
        assert_eq!(expected, 30_000);
    }

    #[test]
    fn the_same_seed_gives_the_same_delays_and_another_seed_differs() {
        let run = |seed| {
            let mut b = Backoff::for_profile(&Profile::mqtt311(), seed);
            (0..8).map(|i| b.lost(at(i * 100_000))).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn a_connection_that_stayed_up_resets_the_delay() {
        let mut b = Backoff::for_profile(&Profile::mqtt311(), 3);
        for i in 0..6 {
            b.lost(at(i * 100_000));
        }
        let up = at(1_000_000);
        b.connected(up);
        let lost = up + Duration::from_secs(61);
        assert!(ms(b.lost(lost), lost) <= 500);
    }

    #[test]
    fn a_connection_that_dropped_quickly_keeps_growing_the_delay() {
        let mut b = Backoff::for_profile(&Profile::mqtt311(), 3);
        for i in 0..4 {
            b.lost(at(i * 100_000));
        }
        let up = at(1_000_000);
        b.connected(up);
        let lost = up + Duration::from_secs(5);
        // Four failures: 500 ms × 2⁴ = 8 s, so at least 4 s.
        assert!(ms(b.lost(lost), lost) >= 4_000);
    }

    #[test]
    fn under_aws_iot_core_two_connects_are_at_least_a_second_apart() {
        let mut b = Backoff::for_profile(&Profile::aws_iot_core(), 9);
        let mut now = at(5_000);
        for _ in 0..20 {
            b.connecting(now);
            // The connection fails at once, every time.
            let next = b.lost(now);
            assert!(ms(next, now) >= 1_000, "{} ms", ms(next, now));
            now = next;
            // A stable connection resets the backoff but not the quota.
            b.connected(now);
            b.connecting(now);
            let later = now + Duration::from_secs(120);
            b.up_since = Some(now);
            let _ = b.lost(later);
            now = later;
        }
        let mut b = Backoff::for_profile(&Profile::aws_iot_core(), 9);
        b.connecting(at(10_000));
        assert!(b.lost(at(10_000)) >= at(11_000));
        let mut m = Backoff::for_profile(&Profile::mqtt311(), 9);
        m.connecting(at(10_000));
        assert!(m.lost(at(10_000)) <= at(10_500));
    }

    #[test]
    fn the_earliest_connect_is_the_interval_after_the_last_connect() {
        let mut aws = Backoff::for_profile(&Profile::aws_iot_core(), 2);
        assert_eq!(aws.earliest_connect(), None);
        aws.connecting(at(7_000));
        assert_eq!(aws.earliest_connect(), Some(at(8_000)));
        let mut std = Backoff::for_profile(&Profile::mqtt311(), 2);
        std.connecting(at(7_000));
        assert_eq!(std.earliest_connect(), Some(at(7_000)));
    }

    #[test]
    fn both_aws_presets_space_connects_a_second_apart_and_mqtt311_does_not() {
        let interval = |p: &Profile| Backoff::for_profile(p, 1).min_connect_interval;
        assert_eq!(interval(&Profile::aws_iot_core()), Duration::from_secs(1));
        assert_eq!(
            interval(&Profile::aws_iot_core_2025()),
            Duration::from_secs(1)
        );
        assert_eq!(interval(&Profile::mqtt311()), Duration::ZERO);
    }

    #[test]
    fn huge_numbers_of_failures_saturate_instead_of_overflowing() {
        let mut b = Backoff::for_profile(&Profile::mqtt311(), 5);
        b.attempts = u32::MAX;
        let now = at(u64::MAX - 10);
        assert!(b.lost(now) >= now);
        assert_eq!(b.delay(), b.max);
    }
}
