//! The clock the drivers give the core: milliseconds since the driver started, as the
//! core's [`Instant`].

use std::time::Duration;

use mqtt_sansio::Instant;

/// A driver's clock.
#[derive(Clone, Copy)]
pub(crate) struct Clock(std::time::Instant);

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock(std::time::Instant::now())
    }

    /// Now, as the core counts time.
    pub(crate) fn now(self) -> Instant {
        Instant::from_millis(u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// A core instant as tokio's.
    pub(crate) fn to_tokio(self, at: Instant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.0 + Duration::from_millis(at.as_millis()))
    }
}
