//! Session state as plain data: what a client or a broker exports, imports, and keeps
//! current by applying [`Change`]s. `encoding` writes it down as bytes.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use super::server::Subscriptions;
use super::{BrokerChange, Change, Message, Outgoing, ServerSession, Session, Stage};
use crate::error::DecodeError;
use crate::time::Instant;
use crate::types::{MqttString, PacketId, QoS, TopicFilter};

/// The state both roles keep ([`Session`]), as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionExport {
    /// The packet id handed out last (0: none yet); allocation resumes after it.
    pub cursor: u16,
    /// The outgoing table in resend order: QoS 1/2 messages with their id and stage.
    pub outgoing: Vec<Outgoing>,
    /// The inbound QoS 2 ids awaiting PUBREL, ascending.
    pub inbound_qos2: Vec<PacketId>,
}

/// What a [`Client`](crate::Client) keeps across connections and restarts: its session,
/// with the QoS 1/2 messages it holds until CONNACK (unsent entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientExport {
    /// The session.
    pub session: SessionExport,
}

/// One persistent session a broker keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The client id.
    pub client_id: MqttString<Bytes>,
    /// When the session expires; `None` while a connection uses it, or under a profile
    /// without expiry. The instant is on the caller's clock, so a broker that restarts
    /// must keep the same origin (milliseconds since the UNIX epoch, say).
    pub expires: Option<Instant>,
    /// The subscriptions, ascending by filter bytes.
    pub subscriptions: Vec<(TopicFilter<Bytes>, QoS)>,
    /// Outgoing messages in flight and inbound QoS 2 ids.
    pub session: SessionExport,
    /// Messages queued behind the inflight window, oldest first.
    pub queue: Vec<Message>,
}

/// Everything a [`Broker`](crate::Broker) keeps that outlives a connection: every
/// persistent (clean session 0) session, and the retained messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerExport {
    /// The persistent sessions, ascending by client id.
    pub sessions: Vec<SessionRecord>,
    /// The retained messages, ascending by topic.
    pub retained: Vec<Message>,
    /// The messages queued in shared-subscription groups while every member was
    /// offline, ascending by group; no group with an empty queue.
    pub shared: Vec<SharedQueue>,
}

/// The messages waiting in one shared-subscription group for a member to come online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedQueue {
    /// The group's filter, `$share/{ShareName}/{filter}`.
    pub group: TopicFilter<Bytes>,
    /// The messages, oldest first; never empty.
    pub queue: Vec<Message>,
}

/// Why exported state could not be read, imported or changed. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateError {
    /// The bytes do not start with the export's magic number.
    NotAnExport,
    /// An encoding version this crate does not read.
    UnsupportedVersion(u8),
    /// A client export where a broker export was expected, or the reverse.
    WrongKind,
    /// The bytes end before the export does.
    Truncated,
    /// Bytes follow the end of the export.
    TrailingBytes,
    /// A field is not valid (a topic, filter, client id or packet id).
    Field(DecodeError),
    /// The state breaks a rule of its own; the text names it.
    Invalid(&'static str),
    /// A change does not apply to the state it was given; the text says why.
    ChangeDoesNotApply(&'static str),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::NotAnExport => f.write_str("not an exported session state"),
            StateError::UnsupportedVersion(v) => write!(f, "unsupported export version {v}"),
            StateError::WrongKind => f.write_str("an export of another kind"),
            StateError::Truncated => f.write_str("the export is truncated"),
            StateError::TrailingBytes => f.write_str("bytes follow the export"),
            StateError::Field(e) => write!(f, "an invalid field: {e}"),
            StateError::Invalid(what) => write!(f, "invalid state: {what}"),
            StateError::ChangeDoesNotApply(why) => write!(f, "the change does not apply: {why}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StateError {}

fn no(why: &'static str) -> StateError {
    StateError::ChangeDoesNotApply(why)
}

impl SessionExport {
    fn position(&self, id: PacketId) -> Option<usize> {
        self.outgoing.iter().position(|o| o.id == id)
    }

    /// Applies one change of the shared session state. Server-side changes
    /// (subscriptions, queue) apply to a [`SessionRecord`].
    pub fn apply(&mut self, change: &Change) -> Result<(), StateError> {
        match change {
            Change::Added { id, message, sent } => {
                if self.position(*id).is_some() {
                    return Err(no("the id is in the outgoing table"));
                }
                self.outgoing.push(Outgoing {
                    id: *id,
                    message: message.clone(),
                    stage: Stage::Published,
                    sent: sent.is_some(),
                    first_sent: *sent,
                });
                self.cursor = id.get();
            }
            Change::Sent { id, at } => {
                let i = self.position(*id).ok_or(no("no such outgoing id"))?;
                let entry = &mut self.outgoing[i];
                if entry.sent {
                    return Err(no("the entry was sent already"));
                }
                entry.sent = true;
                entry.first_sent = Some(*at);
            }
            Change::Allocated(id) => self.cursor = id.get(),
            Change::Released(id) => {
                let i = self.position(*id).ok_or(no("no such outgoing id"))?;
                let mut entry = self.outgoing.remove(i);
                entry.stage = Stage::Released;
                self.outgoing.push(entry);
            }
            Change::Removed(id) => {
                let i = self.position(*id).ok_or(no("no such outgoing id"))?;
                self.outgoing.remove(i);
            }
            Change::Renumbered { old, new } => {
                if old != new && self.position(*new).is_some() {
                    return Err(no("the new id is in the outgoing table"));
                }
                let i = self.position(*old).ok_or(no("no such outgoing id"))?;
                self.outgoing[i].id = *new;
                self.cursor = new.get();
            }
            Change::InboundStored(id) => match self.inbound_qos2.binary_search(id) {
                Ok(_) => return Err(no("the inbound id is stored already")),
                Err(i) => self.inbound_qos2.insert(i, *id),
            },
            Change::InboundReleased(id) => {
                let i = self
                    .inbound_qos2
                    .binary_search(id)
                    .map_err(|_| no("no such inbound id"))?;
                self.inbound_qos2.remove(i);
            }
            Change::InboundCleared => self.inbound_qos2.clear(),
            Change::Subscribed { .. }
            | Change::Unsubscribed(_)
            | Change::Queued(_)
            | Change::Dequeued => return Err(no("a server-side change")),
        }
        Ok(())
    }
}

impl ClientExport {
    /// Applies one change a client reported.
    pub fn apply(&mut self, change: &Change) -> Result<(), StateError> {
        self.session.apply(change)
    }
}

impl SessionRecord {
    /// Applies one change of this session.
    pub fn apply(&mut self, change: &Change) -> Result<(), StateError> {
        match change {
            Change::Subscribed { filter, qos } => {
                match self
                    .subscriptions
                    .binary_search_by(|(f, _)| f.as_bytes().cmp(filter.as_bytes()))
                {
                    Ok(i) => self.subscriptions[i].1 = *qos,
                    Err(i) => self.subscriptions.insert(i, (filter.clone(), *qos)),
                }
            }
            Change::Unsubscribed(filter) => {
                let i = self
                    .subscriptions
                    .binary_search_by(|(f, _)| f.as_bytes().cmp(filter.as_bytes()))
                    .map_err(|_| no("no such subscription"))?;
                self.subscriptions.remove(i);
            }
            Change::Queued(m) => self.queue.push(m.clone()),
            Change::Dequeued => {
                if self.queue.is_empty() {
                    return Err(no("the queue is empty"));
                }
                self.queue.remove(0);
            }
            other => self.session.apply(other)?,
        }
        Ok(())
    }
}

impl BrokerExport {
    fn find(&self, client_id: &MqttString<Bytes>) -> Result<usize, usize> {
        self.sessions
            .binary_search_by(|r| r.client_id.as_bytes().cmp(client_id.as_bytes()))
    }

    /// Applies one change a broker reported.
    pub fn apply(&mut self, change: &BrokerChange) -> Result<(), StateError> {
        match change {
            BrokerChange::SessionCreated { client_id } => {
                let i = match self.find(client_id) {
                    Ok(_) => return Err(no("the session exists")),
                    Err(i) => i,
                };
                self.sessions.insert(
                    i,
                    SessionRecord {
                        client_id: client_id.clone(),
                        expires: None,
                        subscriptions: Vec::new(),
                        session: SessionExport::default(),
                        queue: Vec::new(),
                    },
                );
            }
            BrokerChange::SessionDiscarded { client_id } => {
                let i = self.find(client_id).map_err(|_| no("no such session"))?;
                self.sessions.remove(i);
            }
            BrokerChange::SessionExpires { client_id, at } => {
                let i = self.find(client_id).map_err(|_| no("no such session"))?;
                self.sessions[i].expires = *at;
            }
            BrokerChange::Session { client_id, change } => {
                let i = self.find(client_id).map_err(|_| no("no such session"))?;
                self.sessions[i].apply(change)?;
            }
            BrokerChange::RetainedSet(m) => {
                match self
                    .retained
                    .binary_search_by(|r| r.topic.as_bytes().cmp(m.topic.as_bytes()))
                {
                    Ok(i) => self.retained[i] = m.clone(),
                    Err(i) => self.retained.insert(i, m.clone()),
                }
            }
            BrokerChange::RetainedCleared(topic) => {
                let i = self
                    .retained
                    .binary_search_by(|r| r.topic.as_bytes().cmp(topic.as_bytes()))
                    .map_err(|_| no("no such retained message"))?;
                self.retained.remove(i);
            }
            BrokerChange::SharedQueued { group, message } => {
                match self
                    .shared
                    .binary_search_by(|q| q.group.as_bytes().cmp(group.as_bytes()))
                {
                    Ok(i) => self.shared[i].queue.push(message.clone()),
                    Err(i) => self.shared.insert(
                        i,
                        SharedQueue {
                            group: group.clone(),
                            queue: alloc::vec![message.clone()],
                        },
                    ),
                }
            }
            BrokerChange::SharedDequeued(group) => {
                let i = self
                    .shared
                    .binary_search_by(|q| q.group.as_bytes().cmp(group.as_bytes()))
                    .map_err(|_| no("no such shared queue"))?;
                self.shared[i].queue.remove(0);
                if self.shared[i].queue.is_empty() {
                    self.shared.remove(i);
                }
            }
        }
        Ok(())
    }
}

impl Session {
    /// The session as plain data.
    pub fn export(&self) -> SessionExport {
        SessionExport {
            cursor: self.ids.cursor(),
            outgoing: self.outgoing.iter().cloned().collect(),
            inbound_qos2: self.inbound_qos2().collect(),
        }
    }

    /// The session `export` describes. Refused when an id appears twice in the
    /// outgoing table or among the inbound QoS 2 ids, an outgoing message is at QoS 0,
    /// or an entry not sent has a first-send time.
    pub fn import(export: SessionExport) -> Result<Session, StateError> {
        let mut session = Session::new();
        for entry in export.outgoing {
            if entry.message.qos == QoS::AtMostOnce {
                return Err(StateError::Invalid("a QoS 0 message in the outgoing table"));
            }
            if entry.first_sent.is_some() && !entry.sent {
                return Err(StateError::Invalid("a first-send time on an unsent entry"));
            }
            if session.outgoing.contains(entry.id) {
                return Err(StateError::Invalid("an id twice in the outgoing table"));
            }
            session.ids.insert(entry.id);
            session.outgoing.push(entry);
        }
        let inbound: BTreeSet<PacketId> = export.inbound_qos2.iter().copied().collect();
        if inbound.len() != export.inbound_qos2.len() {
            return Err(StateError::Invalid("an inbound QoS 2 id twice"));
        }
        session.set_inbound_qos2(inbound);
        session.ids.set_cursor(export.cursor);
        Ok(session)
    }
}

impl ServerSession {
    /// The session as plain data, under `client_id`.
    pub(crate) fn export(&self, client_id: &Bytes, expires: Option<Instant>) -> SessionRecord {
        SessionRecord {
            client_id: MqttString(client_id.clone()),
            expires,
            subscriptions: self
                .subscriptions
                .iter()
                .map(|(f, q)| (TopicFilter(f.clone()), *q))
                .collect(),
            session: self.session.export(),
            queue: self.queue.iter().cloned().collect(),
        }
    }

    /// The session a record describes. Refused when a filter appears twice, or the
    /// outgoing table holds an entry never sent (a server sends what it takes in).
    pub(crate) fn import(record: SessionRecord) -> Result<ServerSession, StateError> {
        if record.session.outgoing.iter().any(|o| !o.sent) {
            return Err(StateError::Invalid("an unsent entry in a server's session"));
        }
        let mut subscriptions = Subscriptions::default();
        for (filter, qos) in record.subscriptions {
            if subscriptions.insert(filter.0, qos).is_some() {
                return Err(StateError::Invalid("a filter twice in one session"));
            }
        }
        let queued_bytes = record.queue.iter().map(Message::size).sum();
        Ok(ServerSession {
            subscriptions,
            session: Session::import(record.session)?,
            queue: record.queue.into_iter().collect(),
            queued_bytes,
        })
    }
}
