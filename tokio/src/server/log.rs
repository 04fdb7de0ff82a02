//! The broker server's log of what the broker reports.

use std::time::{Duration, Instant};

use mqtt_sansio::broker::BrokerEvent;

/// Logs the broker's events, one line each, except that lines for dropped messages are
/// limited to [`DROP_LINES`] a second: a subscriber that stops reading can lose
/// thousands of messages a second, and each is counted in any case. The drops of a
/// second beyond the limit are logged as one count, once the second is over (at the
/// next event or timer after it) or at shutdown.
#[derive(Debug)]
pub(super) struct EventLog {
    /// The start of the current second, the drop lines logged in it and those not.
    second: Instant,
    lines: u32,
    suppressed: u64,
}

/// The most lines for dropped messages in one second.
pub(super) const DROP_LINES: u32 = 10;

impl EventLog {
    pub(super) fn new(now: Instant) -> EventLog {
        EventLog {
            second: now,
            lines: 0,
            suppressed: 0,
        }
    }

    /// Starts a new second at `now` if the current one is over, first logging how many
    /// drops it did not log one by one.
    pub(super) fn tick(&mut self, now: Instant) {
        if now.saturating_duration_since(self.second) >= Duration::from_secs(1) {
            self.finish();
            *self = EventLog::new(now);
        }
    }

    /// When the count of the drops not logged one by one is due: the end of the
    /// current second, if it has any.
    pub(super) fn due(&self) -> Option<Instant> {
        (self.suppressed > 0).then(|| self.second + Duration::from_secs(1))
    }

    /// Logs how many drops were not logged one by one, if any (at shutdown, say).
    pub(super) fn finish(&mut self) {
        if self.suppressed > 0 {
            tracing::warn!(
                "{} more message(s) dropped, not logged one by one",
                self.suppressed
            );
            self.suppressed = 0;
        }
    }

    /// Whether a drop line may go out at `now`; if not, it is counted.
    fn drop_line(&mut self, now: Instant) -> bool {
        self.tick(now);
        if self.lines < DROP_LINES {
            self.lines += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Logs `event`, which happened at `now`.
    pub(super) fn event(&mut self, event: &BrokerEvent, now: Instant) {
        let dropped = matches!(
            event,
            BrokerEvent::Dropped { .. } | BrokerEvent::SharedDropped { .. }
        );
        if dropped && !self.drop_line(now) {
            return;
        }
        log_event(event);
    }
}

fn log_event(event: &BrokerEvent) {
    match event {
        BrokerEvent::Connected {
            conn,
            client_id,
            session_present,
        } => tracing::info!(
            "conn {}: connected client_id={} session_present={session_present}",
            conn.0,
            client_id.as_str()
        ),
        BrokerEvent::Dropped {
            client_id,
            message,
            reason,
        } => tracing::warn!(
            "client {}: message on {} dropped: {reason:?}",
            client_id.as_str(),
            message.topic.as_str()
        ),
        BrokerEvent::SharedDropped {
            group,
            message,
            reason,
        } => tracing::warn!(
            "group {}: message on {} dropped: {reason:?}",
            group.as_str(),
            message.topic.as_str()
        ),
        BrokerEvent::SessionExpired { client_id } => {
            tracing::info!("client {}: session expired", client_id.as_str())
        }
        BrokerEvent::Ignored { conn, what } => tracing::info!("conn {}: ignored {what:?}", conn.0),
        BrokerEvent::RetainedNotStored { message } => tracing::warn!(
            "retained message on {} not stored: the retained store is full",
            message.topic.as_str()
        ),
        BrokerEvent::SessionLimit { conn } => {
            tracing::warn!("conn {}: refused: the session limit is reached", conn.0)
        }
        BrokerEvent::Discarded { conn, message } => tracing::info!(
            "conn {}: publish to {} not authorized, discarded",
            conn.0,
            message.topic.as_str()
        ),
        BrokerEvent::UnexpectedAck {
            conn,
            packet_type,
            packet_id,
        } => tracing::info!(
            "conn {}: {} {packet_id} for nothing in flight, ignored",
            conn.0,
            packet_type.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_lines_are_limited_per_second_and_the_rest_counted() {
        let start = Instant::now();
        let mut log = EventLog::new(start);
        assert_eq!(log.due(), None, "nothing to count");
        let allowed = (0..25).filter(|_| log.drop_line(start)).count();
        assert_eq!(allowed, DROP_LINES as usize);
        assert_eq!(log.suppressed, 25 - u64::from(DROP_LINES));
        // The count is due when the second ends.
        assert_eq!(log.due(), Some(start + Duration::from_secs(1)));
        // Still the same second: nothing more goes out.
        assert!(!log.drop_line(start + Duration::from_millis(999)));
        // A new second: lines go out again, and the count starts over.
        assert!(log.drop_line(start + Duration::from_secs(1)));
        assert_eq!(log.suppressed, 0);
        assert_eq!(log.lines, 1);
    }
}
