//! Session state (§4.1), written once for both roles.
//!
//! A client and the server side of a connection keep the same state about the QoS 1
//! and 2 messages they exchange, so one [`Session`] holds it for both:
//!
//! - the packet identifiers in use ([`PacketIds`]);
//! - the outgoing table: every QoS 1/2 PUBLISH not yet acknowledged and every PUBREL
//!   not yet completed, in the order the protocol resends them, indexed by id;
//! - the inbound QoS 2 ids delivered and awaiting PUBREL (method B of MQTT-4.3.3-2).
//!
//! What differs between the roles stays with them: the client's SUBSCRIBE and
//! UNSUBSCRIBE awaiting their acks and its QoS 0 messages held before CONNACK; the
//! server's subscriptions and the queue behind the inflight window
//! ([`ServerSession`]).
//!
//! The places where the two roles used to differ are decided here, once:
//!
//! - an acknowledgement for an id with nothing of its kind in flight is ignored and
//!   reported ([`Ack::Unexpected`]);
//! - PUBREC moves the message to the end of the resend order, as a PUBREL;
//! - a PUBREC repeated for a message already released is answered with PUBREL again;
//! - the inflight window is [`window`]: the configured limit capped by the profile's;
//! - a resumed session resends with the same id and DUP=1 (MQTT-4.4.0-1), or with a
//!   fresh id and DUP=0 where a server's profile says so ([`ResendPolicy`]); a client
//!   always keeps the id, by which the application knows its message;
//! - each entry records when it was first sent, so that a server whose profile bounds
//!   the retries ([`Quotas::qos1_retry_limit`](crate::profile::Quotas::qos1_retry_limit))
//!   drops an unacknowledged QoS 1 message once it is that old.

mod change;
pub mod encoding;
mod export;
mod ids;
mod server;
mod table;

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

pub use change::{BrokerChange, Change};
pub use export::{
    BrokerExport, ClientExport, SessionExport, SessionRecord, SharedQueue, StateError,
};
pub use ids::PacketIds;
pub(crate) use server::Full;
pub use server::{NotQueued, ServerSession};

use crate::packet::{Packet, Publish, QosPid, Will};
use crate::profile::{Profile, ResendPolicy};
use crate::time::Instant;
use crate::types::{PacketId, QoS, TopicName};

/// An application message: what a PUBLISH carries, without the packet identifier and
/// DUP flag, which belong to one hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The topic it was published to.
    pub topic: TopicName<Bytes>,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it travels at.
    pub qos: QoS,
    /// The RETAIN flag.
    pub retain: bool,
}

impl Message {
    /// The message a PUBLISH carries.
    pub fn from_publish(p: &Publish<Bytes>) -> Message {
        Message {
            topic: p.topic.clone(),
            payload: p.payload.clone(),
            qos: p.qos.qos(),
            retain: p.retain,
        }
    }

    /// The message a will describes.
    pub fn from_will(w: &Will<Bytes>) -> Message {
        Message {
            topic: w.topic.clone(),
            payload: w.message.clone().into_inner(),
            qos: w.qos,
            retain: w.retain,
        }
    }

    /// What the message weighs in a queue's byte bounds: its topic and payload bytes.
    pub fn size(&self) -> usize {
        self.topic.as_bytes().len() + self.payload.len()
    }

    /// The PUBLISH that carries this message with packet id `id` (ignored at QoS 0) and
    /// the DUP flag `dup` (only at QoS 1 and 2, MQTT-3.3.1-2).
    pub fn to_publish(&self, id: PacketId, dup: bool) -> Publish<Bytes> {
        let qos = QosPid::new(self.qos, id);
        Publish {
            dup: dup && qos.packet_id().is_some(),
            qos,
            retain: self.retain,
            topic: self.topic.clone(),
            payload: self.payload.clone(),
        }
    }
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The PUBLISH awaits PUBACK (QoS 1) or PUBREC (QoS 2); before it is first sent, it
    /// awaits its sending.
    Published,
    /// PUBREC arrived and PUBREL was sent; it awaits PUBCOMP. The PUBLISH is never sent
    /// again (MQTT-4.3.3-1).
    Released,
}

/// One entry of the outgoing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Its packet id, in use until the flow completes.
    pub id: PacketId,
    /// The message (QoS 1 or 2).
    pub message: Message,
    /// Where the flow stands.
    pub stage: Stage,
    /// Whether the PUBLISH went out on some connection (a client holds messages before
    /// CONNACK; a server's entries are always sent).
    pub sent: bool,
    /// When the PUBLISH first went out; `None` while it is held, and for an entry whose
    /// time was not recorded (read from version 1 of the [`encoding`], or from an
    /// older store record): such an entry is never dropped by a retry limit.
    ///
    /// The retry limit counts from the first sending, not from when the broker took the
    /// message in: AWS IoT Core "retries delivery of unacknowledged quality of service 1
    /// (QoS 1) publish requests to a client for up to one hour" and drops them when no
    /// PUBACK came after that hour
    /// (<https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits>,
    /// "Maximum retry interval for delivering QoS 1 messages"): what is retried is a
    /// delivery, and a delivery starts when the PUBLISH is sent. A message still queued
    /// behind the inflight window, or for a client that is offline, has not been
    /// delivered; it lives as long as its persistent session
    /// ([`Profile::session_expiry`]). A resend with a fresh packet id keeps the time: it
    /// is the same delivery.
    pub first_sent: Option<Instant>,
}

impl Outgoing {
    /// Whether a retry limit of `limit` drops this entry at `now`: a QoS 1 PUBLISH not
    /// acknowledged `limit` after its first sending.
    pub(crate) fn retry_expired(&self, now: Instant, limit: Duration) -> bool {
        self.retry_deadline(limit).is_some_and(|at| now >= at)
    }

    /// When a retry limit of `limit` drops this entry; `None` for an entry it never
    /// drops (QoS 2, released, held, or without a recorded first sending).
    pub(crate) fn retry_deadline(&self, limit: Duration) -> Option<Instant> {
        if self.message.qos != QoS::AtLeastOnce || self.stage != Stage::Published {
            return None;
        }
        self.first_sent.map(|t| t + limit)
    }
}

/// What an acknowledgement did to the outgoing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// The flow of this message completed (PUBACK, PUBCOMP); its id is free again.
    Completed(Outgoing),
    /// PUBREC for a message awaiting it: the message is now released; send PUBREL.
    Released,
    /// PUBREC again for a message already released: send PUBREL again (MQTT-4.3.3-1:
    /// the sender answers PUBREC with PUBREL).
    Repeated,
    /// Nothing of this kind is in flight with this id.
    ///
    /// 3.1.1 does not say what to do with it (§2.3.1 binds only the sender's use of
    /// ids), and a late duplicate is legal after a resend (§4.4), so neither role
    /// closes the connection: the acknowledgement is ignored, and reported so that
    /// nothing happens unseen.
    Unexpected,
}

/// The inflight window for outgoing QoS 1/2 messages: `configured` capped by the
/// profile's `max_inflight`, and at least 1 (a window of 0 would stall QoS 1/2 for
/// good).
///
/// 3.1.1 has no receive maximum; the profile's limit is the peer's quota for
/// unacknowledged messages in each direction (AWS IoT Core: 100), so a client and a
/// server alike stay within it whatever their own configuration asks.
pub fn window(configured: usize, profile: &Profile) -> usize {
    configured.min(profile.max_inflight).max(1)
}

/// The session state both roles keep: packet ids, the ordered outgoing table and the
/// inbound QoS 2 ids awaiting PUBREL. See the [module documentation](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    ids: PacketIds,
    /// The outgoing entries in resend order.
    outgoing: table::Table,
    /// Whether changes are recorded in the journal.
    recording: bool,
    /// The inbound QoS 2 ids and the journal, boxed and only while either holds
    /// something: most sessions seldom use them, and an idle connection should not
    /// carry their room.
    rare: Option<Box<Rare>>,
}

/// The parts of a [`Session`] that are empty most of the time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rare {
    inbound_qos2: BTreeSet<PacketId>,
    /// Changes not yet taken by the role, oldest first.
    journal: Vec<Change>,
}

impl Session {
    /// An empty session.
    pub fn new() -> Session {
        Session::default()
    }

    /// The packet ids in use (by the outgoing table and, on a client, by SUBSCRIBE and
    /// UNSUBSCRIBE awaiting their acks).
    pub fn ids(&self) -> &PacketIds {
        &self.ids
    }

    /// How many outgoing QoS 1/2 messages are unacknowledged: the entries of the
    /// outgoing table, counted against the inflight [`window`].
    pub fn inflight(&self) -> usize {
        self.outgoing.len()
    }

    /// The outgoing table, in resend order.
    pub fn outgoing(&self) -> impl Iterator<Item = &Outgoing> + '_ {
        self.outgoing.iter()
    }

    /// The outgoing entry with packet id `id`.
    pub fn get(&self, id: PacketId) -> Option<&Outgoing> {
        self.outgoing.get(id)
    }

    /// Gives back the room the outgoing table keeps while messages flow, if it is
    /// empty: for a connection that has gone quiet.
    pub(crate) fn release_room(&mut self) {
        self.outgoing.release_room();
    }

    /// The inbound QoS 2 ids delivered and awaiting PUBREL, in id order.
    pub fn inbound_qos2(&self) -> impl Iterator<Item = PacketId> + '_ {
        self.rare
            .iter()
            .flat_map(|r| r.inbound_qos2.iter().copied())
    }

    /// How many inbound QoS 2 ids await PUBREL.
    pub fn inbound_qos2_len(&self) -> usize {
        self.rare.as_ref().map_or(0, |r| r.inbound_qos2.len())
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Replaces the inbound QoS 2 ids (an import), recording nothing.
    pub(crate) fn set_inbound_qos2(&mut self, ids: BTreeSet<PacketId>) {
        self.rare_mut().inbound_qos2 = ids;
        self.tidy();
    }

    /// Frees the rare parts once both are empty.
    fn tidy(&mut self) {
        if self
            .rare
            .as_ref()
            .is_some_and(|r| r.inbound_qos2.is_empty() && r.journal.is_empty())
        {
            self.rare = None;
        }
    }

    /// Starts or stops recording changes (see [`Change`]).
    pub(crate) fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Records `change` if changes are recorded.
    pub(crate) fn record(&mut self, change: impl FnOnce() -> Change) {
        if self.recording {
            self.rare_mut().journal.push(change());
        }
    }

    /// Whether changes await [`take_changes`](Self::take_changes).
    #[inline]
    pub(crate) fn has_changes(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| !r.journal.is_empty())
    }

    /// The recorded changes, oldest first, leaving none.
    pub(crate) fn take_changes(&mut self) -> Vec<Change> {
        let Some(rare) = self.rare.as_mut() else {
            return Vec::new();
        };
        let changes = core::mem::take(&mut rare.journal);
        self.tidy();
        changes
    }

    /// Takes a free packet id for a message about to be [`push`](Self::push)ed; `None`
    /// when all 65 535 are in use.
    pub(crate) fn allocate_id(&mut self) -> Option<PacketId> {
        self.ids.allocate()
    }

    /// Takes a free packet id for a packet that is not session state (a client's
    /// SUBSCRIBE or UNSUBSCRIBE), reporting [`Change::Allocated`].
    pub(crate) fn allocate_request_id(&mut self) -> Option<PacketId> {
        let id = self.ids.allocate()?;
        self.record(|| Change::Allocated(id));
        Some(id)
    }

    /// Frees an id taken with [`allocate_id`](Self::allocate_id) that no outgoing
    /// entry uses.
    pub(crate) fn release_id(&mut self, id: PacketId) {
        if !self.outgoing.contains(id) {
            self.ids.release(id);
        }
    }

    /// Adds `message` (QoS 1 or 2) to the end of the outgoing table under `id`, an id
    /// taken with [`allocate_id`](Self::allocate_id). `sent` is the instant it goes
    /// out, now; `None` for a message held. Returns false, changing nothing, for a QoS
    /// 0 message or an id already in the table.
    pub(crate) fn push(&mut self, id: PacketId, message: Message, sent: Option<Instant>) -> bool {
        if message.qos == QoS::AtMostOnce || self.outgoing.contains(id) {
            return false;
        }
        self.ids.insert(id);
        self.record(|| Change::Added {
            id,
            message: message.clone(),
            sent,
        });
        self.outgoing.push(Outgoing {
            id,
            message,
            stage: Stage::Published,
            sent: sent.is_some(),
            first_sent: sent,
        });
        true
    }

    fn remove(&mut self, id: PacketId) -> Option<Outgoing> {
        let entry = self.outgoing.remove(id)?;
        self.ids.release(id);
        self.record(|| Change::Removed(id));
        Some(entry)
    }

    /// Marks the held entry `id` as sent at `now` and gives its first PUBLISH (DUP=0);
    /// `None` if there is no such entry or it was sent already.
    pub(crate) fn send_held(&mut self, id: PacketId, now: Instant) -> Option<Publish<Bytes>> {
        let entry = self.outgoing.get_mut(id)?;
        if entry.sent {
            return None;
        }
        entry.sent = true;
        entry.first_sent = Some(now);
        let publish = entry.message.to_publish(id, false);
        self.record(|| Change::Sent { id, at: now });
        Some(publish)
    }

    /// PUBACK for `id`.
    pub(crate) fn on_puback(&mut self, id: PacketId) -> Ack {
        match self.get(id) {
            Some(o)
                if o.sent && o.stage == Stage::Published && o.message.qos == QoS::AtLeastOnce =>
            {
                self.remove(id).map_or(Ack::Unexpected, Ack::Completed)
            }
            _ => Ack::Unexpected,
        }
    }

    /// PUBREC for `id`.
    pub(crate) fn on_pubrec(&mut self, id: PacketId) -> Ack {
        match self.get(id) {
            Some(o)
                if o.sent && o.stage == Stage::Published && o.message.qos == QoS::ExactlyOnce =>
            {
                // PUBREL takes the PUBLISH's place at the end of the resend order: PUBRELs
                // go out in the order their PUBRECs arrived (MQTT-4.6.0-4, and for the
                // server MQTT-4.6.0-6). The entry leaves the table and comes back at its
                // end; its id stays in use.
                let Some(mut entry) = self.outgoing.remove(id) else {
                    return Ack::Unexpected;
                };
                entry.stage = Stage::Released;
                self.outgoing.push(entry);
                self.record(|| Change::Released(id));
                Ack::Released
            }
            Some(o) if o.stage == Stage::Released => Ack::Repeated,
            _ => Ack::Unexpected,
        }
    }

    /// PUBCOMP for `id`.
    pub(crate) fn on_pubcomp(&mut self, id: PacketId) -> Ack {
        match self.get(id) {
            Some(o) if o.stage == Stage::Released => {
                self.remove(id).map_or(Ack::Unexpected, Ack::Completed)
            }
            _ => Ack::Unexpected,
        }
    }

    /// The packets that resume the outgoing flows on a new connection, in resend order
    /// (MQTT-4.4.0-1, MQTT-4.6.0-1): PUBREL for a released message, the PUBLISH again
    /// for one sent before; entries never sent are left for the caller.
    ///
    /// A PUBLISH is resent per `policy`: the same id with DUP=1 (MQTT-3.3.1-1), or a
    /// fresh id with DUP=0 (AWS IoT Core; the entry keeps its place under its new id).
    pub(crate) fn resend(&mut self, policy: ResendPolicy) -> Vec<Packet<Bytes>> {
        let mut packets = Vec::with_capacity(self.outgoing.len());
        let fresh = policy == ResendPolicy::FreshId;
        let entries: Vec<(PacketId, bool, Stage)> = self
            .outgoing
            .iter()
            .map(|o| (o.id, o.sent, o.stage))
            .collect();
        for (old, sent, stage) in entries {
            match (sent, stage) {
                (false, _) => continue,
                (true, Stage::Released) => packets.push(Packet::PubRel(old)),
                (true, Stage::Published) => {
                    let mut id = old;
                    if fresh {
                        // Releasing first makes the allocation infallible.
                        self.ids.release(old);
                        id = match self.ids.allocate() {
                            Some(new) => new,
                            None => {
                                self.ids.insert(old);
                                old
                            }
                        };
                        self.outgoing.renumber(old, id);
                        self.record(|| Change::Renumbered { old, new: id });
                    }
                    let Some(entry) = self.outgoing.get(id) else {
                        continue;
                    };
                    packets.push(Packet::Publish(entry.message.to_publish(id, !fresh)));
                }
            }
        }
        packets
    }

    /// Removes the outgoing entries `which` selects and gives them back in order,
    /// freeing their ids.
    pub(crate) fn discard(&mut self, which: impl Fn(&Outgoing) -> bool) -> Vec<Outgoing> {
        let ids: Vec<PacketId> = self
            .outgoing
            .iter()
            .filter(|o| which(o))
            .map(|o| o.id)
            .collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    /// When a retry limit of `limit` next drops an entry (the earliest
    /// [`Outgoing::retry_deadline`]); `None` if it drops none.
    pub(crate) fn retry_deadline(&self, limit: Duration) -> Option<Instant> {
        self.outgoing
            .iter()
            .filter_map(|o| o.retry_deadline(limit))
            .min()
    }

    /// Removes, in order, the entries a retry limit of `limit` drops at `now`
    /// ([`Outgoing::retry_expired`]), freeing their ids and reporting each as
    /// [`Change::Removed`].
    pub(crate) fn expire_retries(&mut self, now: Instant, limit: Duration) -> Vec<Outgoing> {
        self.discard(|o| o.retry_expired(now, limit))
    }

    /// An inbound QoS 2 PUBLISH with `id` arrived: true if it is new (deliver it and
    /// keep the id until PUBREL), false if the id already awaits PUBREL (a repeat:
    /// answer PUBREC again, do not deliver, MQTT-4.3.3-2).
    pub(crate) fn receive_qos2(&mut self, id: PacketId) -> bool {
        let new = self.rare_mut().inbound_qos2.insert(id);
        if new {
            self.record(|| Change::InboundStored(id));
        }
        new
    }

    /// Whether the inbound QoS 2 id `id` awaits PUBREL.
    pub fn awaits_pubrel(&self, id: PacketId) -> bool {
        self.rare
            .as_ref()
            .is_some_and(|r| r.inbound_qos2.contains(&id))
    }

    /// PUBREL for `id`: the id is free for a new message (MQTT-4.3.3-2). Returns
    /// whether it was awaiting PUBREL; PUBCOMP is sent either way.
    pub(crate) fn on_pubrel(&mut self, id: PacketId) -> bool {
        let Some(rare) = self.rare.as_mut() else {
            return false;
        };
        let was = rare.inbound_qos2.remove(&id);
        if was {
            self.record(|| Change::InboundReleased(id));
        }
        self.tidy();
        was
    }

    /// Forgets the inbound QoS 2 ids (a session that is not resumed).
    pub(crate) fn clear_inbound_qos2(&mut self) {
        if let Some(rare) = self.rare.as_mut().filter(|r| !r.inbound_qos2.is_empty()) {
            rare.inbound_qos2.clear();
            self.record(|| Change::InboundCleared);
            self.tidy();
        }
    }
}

#[cfg(test)]
mod tests;
