//! A broker's durable state changes, as store writes; the store, as a broker export.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use mqtt_sansio::session::{
    BrokerChange, BrokerExport, Change, Message, Outgoing, SessionExport, SessionRecord,
    SharedQueue, Stage,
};
use mqtt_sansio::{Instant, MqttString, PacketId, QoS, TopicFilter, TopicName};

use std::sync::{Arc, Mutex, MutexGuard};

use super::{Batch, Store, StoreError, StoredMessage, StoredOutgoing, Write};

/// What the broker store remembers of one session to place its records: the slots of
/// its outgoing entries and queued messages.
#[derive(Default)]
struct Places {
    expires_ms: Option<u64>,
    cursor: u16,
    /// Outgoing entries in table order: (slot, entry).
    outgoing: Vec<(u64, StoredOutgoing)>,
    next_out: u64,
    queue: VecDeque<u64>,
    next_queue: u64,
    inbound: BTreeSet<u16>,
}

/// A shared-subscription group's queue: its slots, and the next one.
#[derive(Default)]
struct SharedPlaces {
    queue: VecDeque<u64>,
    next: u64,
}

/// A [`Store`] fed with a broker's [`BrokerChange`]s.
///
/// The core's instants count milliseconds from the driver's start; the store keeps
/// milliseconds since the Unix epoch, so an expiry deadline survives a restart:
/// `origin_ms` is the Unix time, in milliseconds, of the driver's instant 0. A time in
/// the past (an outgoing message's first sending, for the profile's retry limit) that
/// is before the new start reads as the start: the limit of such a message counts
/// again from the restart, so it is kept longer than its limit, never shorter.
pub struct BrokerStore {
    /// Shared with the thread that commits while the broker goes on.
    store: Arc<Mutex<Store>>,
    places: BTreeMap<Bytes, Places>,
    /// Per shared-subscription group: the slots of its queue.
    shared: BTreeMap<Bytes, SharedPlaces>,
    origin_ms: u64,
    /// The changes noted since the last commit.
    open: Batch,
    /// The first change that could not be written (a client id or topic too long): the
    /// next commit fails with it.
    failed: Option<StoreError>,
}

/// The store, whatever a panicking holder left (a commit is one transaction: a panic
/// in it rolls it back).
pub(crate) fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for BrokerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerStore")
            .field("dir", &lock(&self.store).dir())
            .field("sessions", &self.places.len())
            .finish_non_exhaustive()
    }
}

fn stored(m: &Message) -> StoredMessage {
    StoredMessage {
        topic: m.topic.clone().into_inner(),
        payload: m.payload.clone(),
        qos: m.qos as u8,
        retain: m.retain,
    }
}

impl BrokerStore {
    /// Opens the store in `dir` and reads it as a broker export for
    /// [`Broker::import`](mqtt_sansio::Broker::import). A record the core cannot hold
    /// (a bad topic, filter or packet id) is a [`StoreError::Damaged`].
    pub fn open(
        dir: impl AsRef<std::path::Path>,
        origin_ms: u64,
    ) -> Result<(BrokerStore, BrokerExport), StoreError> {
        let store = Store::open(dir)?;
        let state = store.load()?;
        let path = store.dir().join(super::db::FILE);
        let bad = |what: &str| StoreError::Damaged {
            path: path.clone(),
            detail: what.to_string(),
        };
        let message = |m: StoredMessage| -> Result<Message, StoreError> {
            Ok(Message {
                topic: TopicName::new(m.topic).map_err(|_| bad("a bad topic"))?,
                payload: m.payload,
                qos: QoS::from_u8(m.qos).ok_or_else(|| bad("a bad QoS"))?,
                retain: m.retain,
            })
        };
        let mut places = BTreeMap::new();
        let mut sessions = Vec::with_capacity(state.sessions.len());
        for s in state.sessions {
            let mut p = Places {
                expires_ms: s.expires_ms,
                cursor: s.cursor,
                next_out: s.outgoing.last().map_or(0, |(slot, _)| slot + 1),
                next_queue: s.queue.last().map_or(0, |(slot, _)| slot + 1),
                queue: s.queue.iter().map(|(slot, _)| *slot).collect(),
                inbound: s.inbound.iter().copied().collect(),
                outgoing: s.outgoing.clone(),
            };
            let mut outgoing = Vec::with_capacity(s.outgoing.len());
            for (_, o) in s.outgoing {
                if o.first_sent_ms.is_some() && o.stage == 0 {
                    return Err(bad("a first-send time on an unsent entry"));
                }
                outgoing.push(Outgoing {
                    id: PacketId::new(o.id).ok_or_else(|| bad("a bad packet id"))?,
                    stage: if o.stage == 2 {
                        Stage::Released
                    } else {
                        Stage::Published
                    },
                    sent: o.stage != 0,
                    // A time before this start (the driver's instant 0) counts as this
                    // start: the core's instants do not go back past their origin.
                    first_sent: o
                        .first_sent_ms
                        .map(|ms| Instant::from_millis(ms.saturating_sub(origin_ms))),
                    message: message(o.message)?,
                });
            }
            let mut subscriptions = Vec::with_capacity(s.subscriptions.len());
            for (f, q) in s.subscriptions {
                subscriptions.push((
                    TopicFilter::new(f).map_err(|_| bad("a bad topic filter"))?,
                    QoS::from_u8(q).ok_or_else(|| bad("a bad QoS"))?,
                ));
            }
            let mut inbound_qos2 = Vec::with_capacity(s.inbound.len());
            for id in s.inbound {
                inbound_qos2.push(PacketId::new(id).ok_or_else(|| bad("a bad packet id"))?);
            }
            let mut queue = Vec::with_capacity(s.queue.len());
            for (_, m) in s.queue {
                queue.push(message(m)?);
            }
            sessions.push(SessionRecord {
                client_id: MqttString::new(s.client.clone()).map_err(|_| bad("a bad client id"))?,
                expires: s
                    .expires_ms
                    .map(|ms| Instant::from_millis(ms.saturating_sub(origin_ms))),
                subscriptions,
                session: SessionExport {
                    cursor: s.cursor,
                    outgoing,
                    inbound_qos2,
                },
                queue,
            });
            p.outgoing.sort_by_key(|(slot, _)| *slot);
            places.insert(s.client, p);
        }
        let mut retained = Vec::with_capacity(state.retained.len());
        for m in state.retained {
            retained.push(message(m)?);
        }
        let mut shared = Vec::with_capacity(state.shared.len());
        let mut shared_places = BTreeMap::new();
        for (group, q) in state.shared {
            let next = q.last().map_or(0, |(slot, _)| slot + 1);
            let places = SharedPlaces {
                queue: q.iter().map(|(s, _)| *s).collect(),
                next,
            };
            shared_places.insert(group.clone(), places);
            let mut queue = Vec::with_capacity(q.len());
            for (_, m) in q {
                queue.push(message(m)?);
            }
            shared.push(SharedQueue {
                group: TopicFilter::new(group).map_err(|_| bad("a bad group filter"))?,
                queue,
            });
        }
        let export = BrokerExport {
            sessions,
            retained,
            shared,
        };
        Ok((
            BrokerStore {
                store: Arc::new(Mutex::new(store)),
                places,
                shared: shared_places,
                origin_ms,
                open: Batch::default(),
                failed: None,
            },
            export,
        ))
    }

    /// Notes one change, in the order the broker reported it; [`commit`](Self::commit)
    /// writes every change noted since the last commit.
    pub fn note(&mut self, change: &BrokerChange) {
        match change {
            BrokerChange::SessionCreated { client_id } => {
                let client = client_id.clone().into_inner();
                self.places.insert(client.clone(), Places::default());
                self.add(&Write::SessionGone {
                    client: client.clone(),
                });
                self.session(&client);
            }
            BrokerChange::SessionDiscarded { client_id } => {
                let client = client_id.clone().into_inner();
                self.places.remove(&client);
                self.add(&Write::SessionGone { client });
            }
            BrokerChange::SessionExpires { client_id, at } => {
                let client = client_id.clone().into_inner();
                let ms = at.map(|at| self.origin_ms.saturating_add(at.as_millis()));
                if let Some(p) = self.places.get_mut(&client) {
                    p.expires_ms = ms;
                }
                self.session(&client);
            }
            BrokerChange::Session { client_id, change } => {
                self.session_change(client_id.clone().into_inner(), change);
            }
            BrokerChange::RetainedSet(m) => {
                self.add(&Write::Retained { message: stored(m) });
            }
            BrokerChange::RetainedCleared(topic) => {
                self.add(&Write::RetainedGone {
                    topic: topic.clone().into_inner(),
                });
            }
            BrokerChange::SharedQueued { group, message } => {
                let group = group.clone().into_inner();
                let places = self.shared.entry(group.clone()).or_default();
                let slot = places.next;
                places.next += 1;
                places.queue.push_back(slot);
                self.add_new(&Write::SharedQueued {
                    group,
                    slot,
                    message: stored(message),
                });
            }
            BrokerChange::SharedDequeued(group) => {
                let group = group.clone().into_inner();
                let Some(places) = self.shared.get_mut(&group) else {
                    return;
                };
                if let Some(slot) = places.queue.pop_front() {
                    self.add(&Write::SharedQueuedGone { group, slot });
                }
            }
        }
    }

    /// Adds `w` to the open batch; the first write that cannot be encoded fails the
    /// next commit.
    fn add(&mut self, w: &Write) {
        if let Err(e) = self.open.add(w) {
            self.failed.get_or_insert(e);
        }
    }

    /// Adds `w`, which creates its record (a slot handed out now), to the open batch.
    fn add_new(&mut self, w: &Write) {
        if let Err(e) = self.open.add_new(w) {
            self.failed.get_or_insert(e);
        }
    }

    /// The session's own record (its expiry and id cursor).
    fn session(&mut self, client: &Bytes) {
        if let Some(p) = self.places.get(client) {
            let w = Write::Session {
                client: client.clone(),
                expires_ms: p.expires_ms,
                cursor: p.cursor,
            };
            self.add(&w);
        }
    }

    fn session_change(&mut self, client: Bytes, change: &Change) {
        let Some(p) = self.places.get_mut(&client) else {
            return;
        };
        let origin_ms = self.origin_ms;
        // The writes, each with whether it creates its record.
        let mut w: Vec<(Write, bool)> = Vec::with_capacity(2);
        let find = |p: &Places, id: PacketId| p.outgoing.iter().position(|(_, o)| o.id == id.get());
        let mut cursor_moved = false;
        match change {
            Change::Added { id, message, sent } => {
                let slot = p.next_out;
                p.next_out += 1;
                let entry = StoredOutgoing {
                    id: id.get(),
                    stage: u8::from(sent.is_some()),
                    first_sent_ms: sent.map(|at| origin_ms.saturating_add(at.as_millis())),
                    message: stored(message),
                };
                p.outgoing.push((slot, entry.clone()));
                p.cursor = id.get();
                cursor_moved = true;
                w.push((
                    Write::Outgoing {
                        client: client.clone(),
                        slot,
                        entry,
                    },
                    true,
                ));
            }
            Change::Sent { id, at } => {
                if let Some(i) = find(p, *id) {
                    let (slot, e) = &mut p.outgoing[i];
                    e.stage = e.stage.max(1);
                    e.first_sent_ms = Some(origin_ms.saturating_add(at.as_millis()));
                    w.push((
                        Write::Outgoing {
                            client: client.clone(),
                            slot: *slot,
                            entry: e.clone(),
                        },
                        false,
                    ));
                }
            }
            Change::Released(id) => {
                if let Some(i) = find(p, *id) {
                    let (old, mut e) = p.outgoing.remove(i);
                    e.stage = 2;
                    let slot = p.next_out;
                    p.next_out += 1;
                    p.outgoing.push((slot, e.clone()));
                    w.push((
                        Write::OutgoingGone {
                            client: client.clone(),
                            slot: old,
                        },
                        false,
                    ));
                    w.push((
                        Write::Outgoing {
                            client: client.clone(),
                            slot,
                            entry: e,
                        },
                        true,
                    ));
                }
            }
            Change::Removed(id) => {
                if let Some(i) = find(p, *id) {
                    let (slot, _) = p.outgoing.remove(i);
                    w.push((
                        Write::OutgoingGone {
                            client: client.clone(),
                            slot,
                        },
                        false,
                    ));
                }
            }
            Change::Renumbered { old, new } => {
                if let Some(i) = find(p, *old) {
                    let (slot, e) = &mut p.outgoing[i];
                    e.id = new.get();
                    w.push((
                        Write::Outgoing {
                            client: client.clone(),
                            slot: *slot,
                            entry: e.clone(),
                        },
                        false,
                    ));
                }
                p.cursor = new.get();
                cursor_moved = true;
            }
            // Client side only: a SUBSCRIBE's id is not session state.
            Change::Allocated(_) => {}
            Change::InboundStored(id) => {
                p.inbound.insert(id.get());
                w.push((
                    Write::Inbound {
                        client: client.clone(),
                        id: id.get(),
                    },
                    false,
                ));
            }
            Change::InboundReleased(id) => {
                p.inbound.remove(&id.get());
                w.push((
                    Write::InboundGone {
                        client: client.clone(),
                        id: id.get(),
                    },
                    false,
                ));
            }
            Change::InboundCleared => {
                for id in std::mem::take(&mut p.inbound) {
                    w.push((
                        Write::InboundGone {
                            client: client.clone(),
                            id,
                        },
                        false,
                    ));
                }
            }
            Change::Subscribed { filter, qos } => w.push((
                Write::Subscribed {
                    client: client.clone(),
                    filter: filter.clone().into_inner(),
                    qos: *qos as u8,
                },
                false,
            )),
            Change::Unsubscribed(filter) => w.push((
                Write::Unsubscribed {
                    client: client.clone(),
                    filter: filter.clone().into_inner(),
                },
                false,
            )),
            Change::Queued(m) => {
                let slot = p.next_queue;
                p.next_queue += 1;
                p.queue.push_back(slot);
                w.push((
                    Write::Queued {
                        client: client.clone(),
                        slot,
                        message: stored(m),
                    },
                    true,
                ));
            }
            Change::Dequeued => {
                if let Some(slot) = p.queue.pop_front() {
                    w.push((
                        Write::QueuedGone {
                            client: client.clone(),
                            slot,
                        },
                        false,
                    ));
                }
            }
        }
        for (write, new) in &w {
            if *new {
                self.add_new(write);
            } else {
                self.add(write);
            }
        }
        if cursor_moved {
            self.session(&client);
        }
    }

    /// Whether changes were noted since the last commit that write something (changes
    /// that cancel out within the batch write nothing).
    pub fn has_pending(&self) -> bool {
        !self.open.is_empty() || self.failed.is_some()
    }

    /// Writes every change noted since the last commit as one transaction, durably.
    /// After an error the store and the broker disagree: stop the broker.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        let batch = self.seal()?;
        lock(&self.store).commit_batch(batch)
    }

    /// Closes the open batch and returns it, to be committed (by
    /// [`Store::commit_batch`] on [`store`](Self::store)) before the next one is; the
    /// changes noted from now on go to the next batch.
    pub(crate) fn seal(&mut self) -> Result<Batch, StoreError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        Ok(std::mem::take(&mut self.open))
    }

    /// The store the batches are committed to.
    pub(crate) fn store(&self) -> Arc<Mutex<Store>> {
        self.store.clone()
    }
}
