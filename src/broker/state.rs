//! What outlives a connection, as plain data: the broker's export and import, and the
//! changes it reports between exports.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{Action, Broker, BrokerConfig, Stored};
use crate::profile::Profile;
use crate::session::{BrokerChange, BrokerExport, ServerSession, StateError};
use crate::time::Instant;
use crate::types::MqttString;

/// The topics of the broker's own figures (`$SYS/...`): their retained messages are
/// recomputed while the broker runs, so they are never durable (see
/// [`Broker::publish`]).
const VOLATILE: &[u8] = b"$SYS/";

fn is_volatile(topic: &[u8]) -> bool {
    topic.starts_with(VOLATILE)
}

/// Whether `change` is one to report: any but those of a volatile retained message.
fn durable(change: &BrokerChange) -> bool {
    match change {
        BrokerChange::RetainedSet(m) => !is_volatile(m.topic.as_bytes()),
        BrokerChange::RetainedCleared(topic) => !is_volatile(topic.as_bytes()),
        _ => true,
    }
}

impl Broker {
    pub(super) fn reporting(&self) -> bool {
        self.config.connection.report_changes
    }

    pub(super) fn change(&mut self, change: BrokerChange) {
        if self.reporting() && durable(&change) {
            self.actions.push_back(Action::Change(change));
        }
    }

    /// Everything that outlives a connection, as plain data: every persistent session
    /// (connected ones with no expiry) and the retained messages.
    pub fn export(&self) -> BrokerExport {
        let mut sessions = BTreeMap::new();
        for (client, conn) in &self.online {
            if let Some(c) = self.conns.get(conn) {
                if c.accepted == Some(false) {
                    sessions.insert(client.clone(), c.server.session().export(client, None));
                }
            }
        }
        for (client, st) in &self.stored {
            sessions.insert(client.clone(), st.session.export(client, st.expires));
        }
        BrokerExport {
            shared: self.shared.export(),
            sessions: sessions.into_values().collect(),
            retained: {
                let mut all = Vec::with_capacity(self.retained.len());
                self.retained.for_each(|topic, m| {
                    if !is_volatile(topic) {
                        all.push(m.clone())
                    }
                });
                all
            },
        }
    }

    /// A broker with no connection, holding the sessions and retained messages `export`
    /// describes (a restart). A session without an expiry gets the profile's from
    /// `now`, reported as a [`BrokerChange::SessionExpires`] action. Refused, with
    /// nothing built, when the export breaks a rule of its own (a client id or topic
    /// twice, an invalid session).
    ///
    /// Every stored session is restored, even beyond [`BrokerConfig::max_sessions`]
    /// (dropping one would lose what was acknowledged to its publishers): the bound
    /// limits the creation of sessions, so while the broker holds that many or more a
    /// CONNECT for a new client id is refused with CONNACK 3, and a restored one resumes.
    pub fn import(
        profile: Profile,
        config: impl Into<BrokerConfig>,
        export: BrokerExport,
        now: Instant,
    ) -> Result<Broker, StateError> {
        let mut broker = Broker::new(profile, config);
        for record in export.sessions {
            let client = record.client_id.0.clone();
            if client.is_empty() {
                return Err(StateError::Invalid(
                    "a persistent session without a client id",
                ));
            }
            if broker.stored.contains_key(&client) {
                return Err(StateError::Invalid("a client id twice"));
            }
            let filters = record.subscriptions.clone();
            let mut expires = record.expires;
            let session = ServerSession::import(record)?;
            for (filter, qos) in filters {
                broker.add_subscription(&filter, &client, qos);
            }
            if expires.is_none() {
                expires = broker.profile.session_expiry.map(|d| now + d);
                if let Some(at) = expires {
                    broker.change(BrokerChange::SessionExpires {
                        client_id: MqttString(client.clone()),
                        at: Some(at),
                    });
                }
            }
            if let Some(at) = expires {
                broker.expiries.insert((at, client.clone()));
            }
            broker.pressure.total += session.queued_bytes();
            broker
                .stored
                .insert(client.clone(), Stored { session, expires });
            broker.arm_retry(&client);
        }
        for m in export.retained {
            let topic = m.topic.clone().into_inner();
            if is_volatile(&topic) {
                // Stale figures (from a store written before they were left out): not
                // restored, and their removal reported so that the store forgets them.
                if broker.reporting() {
                    let gone = BrokerChange::RetainedCleared(m.topic);
                    broker.actions.push_back(Action::Change(gone));
                }
                continue;
            }
            if broker.retained.insert(&topic, m).is_some() {
                return Err(StateError::Invalid("a retained topic twice"));
            }
        }
        for queue in export.shared {
            broker.shared.restore(queue)?;
        }
        Ok(broker)
    }
}
