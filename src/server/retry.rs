//! The profile's retry limit on a connection: an unacknowledged QoS 1 message is
//! dropped, and reported, once
//! [`Quotas::qos1_retry_limit`](crate::profile::Quotas::qos1_retry_limit) has passed
//! since it was first sent (AWS IoT Core: an hour).

use super::{Server, ServerEvent};
use crate::time::Instant;

impl Server {
    /// When the profile's retry limit next drops an unacknowledged QoS 1 message.
    pub(super) fn retry_deadline(&self) -> Option<Instant> {
        let limit = self.profile.quotas.qos1_retry_limit?;
        if !self.is_connected() {
            return None;
        }
        self.session.session.retry_deadline(limit)
    }

    /// Drops the unacknowledged QoS 1 messages the retry limit has reached at `now`,
    /// each reported as a change and a [`ServerEvent::RetryExpired`]. The caller fills
    /// the window they leave.
    pub(super) fn expire_retries(&mut self, now: Instant) {
        let Some(limit) = self.profile.quotas.qos1_retry_limit else {
            return;
        };
        for o in self.session.session.expire_retries(now, limit) {
            self.event(ServerEvent::RetryExpired {
                packet_id: o.id,
                message: o.message,
            });
        }
    }
}
