//! The retry limit on stored sessions: an unacknowledged QoS 1 message of a session
//! whose client is offline is dropped, and reported, once the profile's
//! [`qos1_retry_limit`](crate::profile::Quotas::qos1_retry_limit) has passed since it
//! was first sent, as it is in a connected session (where the connection's
//! [`Server`](crate::server::Server) drops it).

use alloc::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{Broker, DropReason};
use crate::session::{BrokerChange, Change};
use crate::time::Instant;
use crate::types::MqttString;

/// When each stored session next has a message to drop.
#[derive(Debug, Default)]
pub(super) struct RetryDeadlines {
    by_time: BTreeSet<(Instant, Bytes)>,
    by_client: BTreeMap<Bytes, Instant>,
}

impl RetryDeadlines {
    /// The earliest deadline.
    pub(super) fn first(&self) -> Option<Instant> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// Forgets the deadline of `client` (its session left the stored ones).
    pub(super) fn forget(&mut self, client: &Bytes) {
        if let Some(at) = self.by_client.remove(client) {
            self.by_time.remove(&(at, client.clone()));
        }
    }

    fn set(&mut self, client: &Bytes, at: Option<Instant>) {
        self.forget(client);
        if let Some(at) = at {
            self.by_time.insert((at, client.clone()));
            self.by_client.insert(client.clone(), at);
        }
    }

    /// Takes the client whose deadline is due at `now`, earliest first.
    fn pop_due(&mut self, now: Instant) -> Option<Bytes> {
        let (at, _) = self.by_time.first()?;
        if *at > now {
            return None;
        }
        let (_, client) = self.by_time.pop_first()?;
        self.by_client.remove(&client);
        Some(client)
    }
}

impl Broker {
    /// Sets the retry deadline of the stored session of `client` from its outgoing
    /// table (none without a limit or a message to drop).
    pub(super) fn arm_retry(&mut self, client: &Bytes) {
        let at = match (
            self.profile.quotas.qos1_retry_limit,
            self.stored.get(client),
        ) {
            (Some(limit), Some(st)) => st.session.session.retry_deadline(limit),
            _ => None,
        };
        self.retry.set(client, at);
    }

    /// Drops what the retry limit has reached at `now` in stored sessions: each message
    /// is reported as a change of its session and a
    /// [`BrokerEvent::Dropped`](super::BrokerEvent::Dropped).
    pub(super) fn expire_stored_retries(&mut self, now: Instant) {
        let Some(limit) = self.profile.quotas.qos1_retry_limit else {
            return;
        };
        while let Some(client) = self.retry.pop_due(now) {
            let Some(st) = self.stored.get_mut(&client) else {
                continue;
            };
            // A stored session records no changes: the broker reports them.
            let dropped = st.session.session.expire_retries(now, limit);
            for o in dropped {
                self.change(BrokerChange::Session {
                    client_id: MqttString(client.clone()),
                    change: Change::Removed(o.id),
                });
                let reason = DropReason::RetryExpired { packet_id: o.id };
                self.dropped(&client, o.message, reason);
            }
            self.arm_retry(&client);
        }
    }
}
