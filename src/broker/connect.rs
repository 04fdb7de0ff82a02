//! A client's session meeting its connection: CONNECT (an assigned client id, the
//! connect quota, the session limit, takeover, a clean or resumed session), the
//! detaching of a closed connection (its session stored or dropped), and the lookups
//! and expiry deadlines of the sessions.

use alloc::format;

use bytes::Bytes;

use super::{Action, Broker, BrokerEvent, ConnId, Stored};
use crate::server::{CloseReason, ConnectRequest, PolicyViolation, ServerSession};
use crate::session::BrokerChange;
use crate::time::Instant;
use crate::types::MqttString;

impl Broker {
    /// Forgets a closed connection: its session is stored (persistent) or dropped with
    /// its subscriptions (clean). `reason` is why the server closed it (`None`: the
    /// transport ended).
    pub(super) fn detach(&mut self, now: Instant, conn: ConnId, reason: Option<CloseReason>) {
        if let Some(slot) = self.conns.slot_of(conn) {
            self.flush_staged(slot);
        }
        let Some(mut c) = self.conns.remove(&conn) else {
            return;
        };
        self.stats.packets_received += c.server.packets_received();
        self.pending.remove(&conn);
        self.pressure.forget(conn);
        self.pressure.total -= c.seen_bytes.min(self.pressure.total);
        if let Some(m) = self.lifecycle.disconnected(now, conn, reason) {
            self.route(now, m);
        }
        if let Some(old) = c.armed.take() {
            self.timers.remove(&(old, conn));
        }
        let Some(clean) = c.accepted.take() else {
            return;
        };
        let client = c.server.client_id().0.clone();
        if self.online.get(&client) == Some(&conn) {
            self.online.remove(&client);
            self.subscribers.set_conn(&client, None);
        }
        let mut session = c.server.take_session().unwrap_or_default();
        if clean {
            // MQTT-3.1.2-6: a clean session ends with its connection.
            self.unindex(&client, &session);
        } else {
            // MQTT-3.1.2-4, MQTT-4.1.0-1: a persistent session outlives it.
            for change in session.session.take_changes() {
                self.change(BrokerChange::Session {
                    client_id: MqttString(client.clone()),
                    change,
                });
            }
            let expires = self.profile.session_expiry.map(|d| now + d);
            if let Some(at) = expires {
                self.expiries.insert((at, client.clone()));
                self.change(BrokerChange::SessionExpires {
                    client_id: MqttString(client.clone()),
                    at: Some(at),
                });
            }
            self.pressure.total += session.queued_bytes();
            self.stored
                .insert(client.clone(), Stored { session, expires });
            self.arm_retry(&client);
        }
    }

    pub(super) fn unindex(&mut self, client: &Bytes, session: &ServerSession) {
        for (filter, _) in session.subscriptions() {
            self.remove_subscription(filter, client);
        }
    }

    pub(super) fn client_of(&self, conn: ConnId) -> Option<Bytes> {
        self.conns
            .get(&conn)
            .filter(|c| c.accepted.is_some())
            .map(|c| c.server.client_id().0.clone())
    }

    fn assign_id(&mut self) -> MqttString<Bytes> {
        loop {
            self.next_assigned += 1;
            let id = Bytes::from(format!("auto-{}", self.next_assigned));
            if !self.online.contains_key(&id) && !self.stored.contains_key(&id) {
                return MqttString(id);
            }
        }
    }

    pub(super) fn on_connect(&mut self, now: Instant, conn: ConnId, req: ConnectRequest) {
        if self.conns.get(&conn).is_none_or(|c| c.server.is_closed()) {
            return;
        }
        let (client_id, assigned) = if req.client_id.is_empty() {
            // MQTT-3.1.3-6: the server assigns a unique id.
            (self.assign_id(), true)
        } else {
            (req.client_id.clone(), false)
        };
        let key = client_id.0.clone();
        if !self.connect_rate.admit(now, &self.profile.quotas, &key) {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.server
                    .close_with(now, CloseReason::Policy(PolicyViolation::Throttled));
            }
            return;
        }
        let known = self.online.contains_key(&key) || self.stored.contains_key(&key);
        let full = self
            .config
            .max_sessions
            .is_some_and(|max| self.online.len() + self.stored.len() >= max);
        if full && !known {
            if let Some(c) = self.conns.get_mut(&conn) {
                // The server awaits this answer: `on_connect` runs on its Connect event.
                let _ = c
                    .server
                    .refuse(now, crate::packet::ConnectReturnCode::ServerUnavailable);
            }
            self.actions
                .push_back(Action::Event(BrokerEvent::SessionLimit { conn }));
            return;
        }
        // MQTT-3.1.4-2: a client id in use is taken over; the older connection closes
        // first (and its will is published per the profile).
        if let Some(&old) = self.online.get(&key) {
            if old != conn {
                if let Some(c) = self.conns.get_mut(&old) {
                    if !self.profile.will_on_takeover {
                        c.server.discard_will();
                    }
                    c.server.close_with(now, CloseReason::Takeover);
                }
                self.pump(now, old);
            }
        }
        // MQTT-3.1.4-3: CleanSession handling.
        let resumed = if req.clean_session {
            if let Some(st) = self.stored.remove(&key) {
                self.forget_expiry(&key, st.expires);
                self.pressure.total -= st.session.queued_bytes().min(self.pressure.total);
                self.unindex(&key, &st.session);
                self.change(BrokerChange::SessionDiscarded {
                    client_id: client_id.clone(),
                });
            }
            None
        } else {
            match self.stored.remove(&key) {
                Some(st) => {
                    self.forget_expiry(&key, st.expires);
                    if st.expires.is_some() {
                        self.change(BrokerChange::SessionExpires {
                            client_id: client_id.clone(),
                            at: None,
                        });
                    }
                    Some(st.session)
                }
                None => {
                    self.change(BrokerChange::SessionCreated {
                        client_id: client_id.clone(),
                    });
                    None
                }
            }
        };
        let session_present = resumed.is_some();
        // A resumed session's queue moves from the stored ones to the connection's.
        let resumed_bytes = resumed.as_ref().map_or(0, |s| s.queued_bytes());
        let Some(slot) = self.conns.slot_of(conn) else {
            return;
        };
        self.subscribers.set_conn(&key, Some((conn, slot)));
        let Some(c) = self.conns.at_mut(conn, slot) else {
            return;
        };
        c.accepted = Some(req.clean_session);
        c.seen_bytes = resumed_bytes;
        self.online.insert(key.clone(), conn);
        self.stats.connects += 1;
        self.actions
            .push_back(Action::Event(BrokerEvent::Connected {
                conn,
                client_id: client_id.clone(),
                session_present,
            }));
        // The server awaits this answer: `on_connect` runs on its Connect event.
        let _ = c
            .server
            .accept_as(now, assigned.then_some(client_id), resumed);
        if self.profile.lifecycle_events {
            let principal = req.login.as_ref().map(|l| l.username.as_str());
            if let Some(m) = self.lifecycle.connected(now, conn, &key, principal) {
                self.route(now, m);
            }
        }
        self.flush_shared(now, &key);
    }

    pub(super) fn session_of(&self, client: &Bytes) -> Option<&ServerSession> {
        if let Some(conn) = self.online.get(client) {
            return self.conns.get(conn).map(|c| c.server.session());
        }
        self.stored.get(client).map(|s| &s.session)
    }

    /// Forgets the deadlines of a session leaving the stored ones.
    fn forget_expiry(&mut self, key: &Bytes, at: Option<Instant>) {
        self.retry.forget(key);
        if let Some(at) = at {
            self.expiries.remove(&(at, key.clone()));
        }
    }
}
