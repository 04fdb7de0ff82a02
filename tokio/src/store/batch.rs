//! Writes coalesced as they are added: the last write of a record wins, a session's
//! removal takes what the batch wrote for it before, and the removal of a record the
//! batch created (the database does not hold it) takes the batch's write of it instead
//! of being written. A message queued for a session, sent and acknowledged within one
//! batch writes nothing.
//!
//! Adding is cheap (a hash map of records named by their owner and place; nothing is
//! encoded): the broker's task adds every change. The records are encoded, in key
//! order, when the batch is committed.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use super::db::Op;
use super::record::{client_key, client_prefix, encode_message, encode_outgoing, encode_session};
use super::{StoreError, Table, Write};

/// A record, named without encoding its key: its table, its owner (a client id, a
/// group's filter or, for a retained message, the topic) and its place under the owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Rec {
    table: Table,
    owner: Bytes,
    place: Under,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Under {
    /// The owner's own record.
    Own,
    Slot(u64),
    Id(u16),
    Filter(Bytes),
}

/// The writes of one transaction. See the [module](self) documentation.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The key prefixes of the sessions whose every record goes first.
    pub(super) gone: BTreeSet<Vec<u8>>,
    /// Then the last write of each record (`None`: removed), and whether the batch
    /// created it (neither the tables nor an earlier batch hold it).
    ops: HashMap<Rec, (Option<Write>, bool)>,
}

impl Batch {
    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.gone.is_empty() && self.ops.is_empty()
    }

    /// How many keys the batch writes, and how many sessions it removes.
    pub fn size(&self) -> (usize, usize) {
        (self.ops.len(), self.gone.len())
    }

    /// Adds `w` after the writes added before it.
    pub fn add(&mut self, w: &Write) -> Result<(), StoreError> {
        self.add_as(w, false)
    }

    /// Adds `w`, a write that creates its record: no earlier write (committed or in this
    /// batch) put its key, or the session's removal took it.
    pub fn add_new(&mut self, w: &Write) -> Result<(), StoreError> {
        self.add_as(w, true)
    }

    fn add_as(&mut self, w: &Write, fresh: bool) -> Result<(), StoreError> {
        let Some((rec, put)) = rec(w) else {
            if let Write::SessionGone { client } = w {
                let prefix = client_prefix(client)?;
                self.ops
                    .retain(|r, _| !(Table::PER_SESSION.contains(&r.table) && r.owner == *client));
                self.gone.insert(prefix);
            }
            return Ok(());
        };
        if !put {
            if let Some((_, true)) = self.ops.get(&rec) {
                // Created and removed here: nothing to write.
                self.ops.remove(&rec);
                return Ok(());
            }
            self.ops.insert(rec, (None, false));
            return Ok(());
        }
        let was_fresh = matches!(self.ops.get(&rec), Some((_, true)));
        self.ops.insert(rec, (Some(w.clone()), fresh || was_fresh));
        Ok(())
    }

    /// The writes in key order, encoded: the last value of each key (`None`: removed).
    pub(super) fn encoded(&self) -> Result<Vec<Op>, StoreError> {
        let mut out = Vec::with_capacity(self.ops.len());
        for (rec, (write, _)) in &self.ops {
            out.push(match write {
                Some(w) => match place(w)? {
                    Some(placed) => placed,
                    None => continue,
                },
                None => ((rec.table, key_of(rec)?), None),
            });
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// The record `w` writes, and whether it puts it (else it removes it); `None` for a
/// session's removal.
fn rec(w: &Write) -> Option<(Rec, bool)> {
    let r = |table, owner: &Bytes, place| Rec {
        table,
        owner: owner.clone(),
        place,
    };
    Some(match w {
        Write::Session { client, .. } => (r(Table::Sessions, client, Under::Own), true),
        Write::SessionGone { .. } => return None,
        Write::Outgoing { client, slot, .. } => {
            (r(Table::Outgoing, client, Under::Slot(*slot)), true)
        }
        Write::OutgoingGone { client, slot } => {
            (r(Table::Outgoing, client, Under::Slot(*slot)), false)
        }
        Write::Queued { client, slot, .. } => (r(Table::Queue, client, Under::Slot(*slot)), true),
        Write::QueuedGone { client, slot } => (r(Table::Queue, client, Under::Slot(*slot)), false),
        Write::Inbound { client, id } => (r(Table::Inbound, client, Under::Id(*id)), true),
        Write::InboundGone { client, id } => (r(Table::Inbound, client, Under::Id(*id)), false),
        Write::Subscribed { client, filter, .. } => (
            r(Table::Subscriptions, client, Under::Filter(filter.clone())),
            true,
        ),
        Write::Unsubscribed { client, filter } => (
            r(Table::Subscriptions, client, Under::Filter(filter.clone())),
            false,
        ),
        Write::Retained { message } => (r(Table::Retained, &message.topic, Under::Own), true),
        Write::RetainedGone { topic } => (r(Table::Retained, topic, Under::Own), false),
        Write::SharedQueued { group, slot, .. } => {
            (r(Table::Shared, group, Under::Slot(*slot)), true)
        }
        Write::SharedQueuedGone { group, slot } => {
            (r(Table::Shared, group, Under::Slot(*slot)), false)
        }
    })
}

/// The key of a record.
fn key_of(rec: &Rec) -> Result<Vec<u8>, StoreError> {
    match (&rec.place, rec.table) {
        (Under::Own, Table::Retained) => {
            if rec.owner.len() > usize::from(u16::MAX) {
                return Err(StoreError::TopicTooLong);
            }
            Ok(rec.owner.to_vec())
        }
        (Under::Own, _) => client_prefix(&rec.owner),
        (Under::Slot(slot), _) => client_key(&rec.owner, &slot.to_be_bytes()),
        (Under::Id(id), _) => client_key(&rec.owner, &id.to_be_bytes()),
        (Under::Filter(f), _) => client_key(&rec.owner, f),
    }
}

/// The key of `w` and its value (`None`: removed); `None` for a session's removal.
fn place(w: &Write) -> Result<Option<Op>, StoreError> {
    let (t, key, value) = match w {
        Write::Session {
            client,
            expires_ms,
            cursor,
        } => (
            Table::Sessions,
            client_prefix(client)?,
            Some(encode_session(*expires_ms, *cursor)),
        ),
        Write::SessionGone { .. } => return Ok(None),
        Write::Outgoing {
            client,
            slot,
            entry,
        } => (
            Table::Outgoing,
            client_key(client, &slot.to_be_bytes())?,
            Some(encode_outgoing(entry)?),
        ),
        Write::OutgoingGone { client, slot } => (
            Table::Outgoing,
            client_key(client, &slot.to_be_bytes())?,
            None,
        ),
        Write::Queued {
            client,
            slot,
            message,
        } => {
            let mut v = Vec::with_capacity(4 + message.topic.len() + message.payload.len());
            encode_message(message, &mut v)?;
            (
                Table::Queue,
                client_key(client, &slot.to_be_bytes())?,
                Some(v),
            )
        }
        Write::QueuedGone { client, slot } => {
            (Table::Queue, client_key(client, &slot.to_be_bytes())?, None)
        }
        Write::Inbound { client, id } => (
            Table::Inbound,
            client_key(client, &id.to_be_bytes())?,
            Some(Vec::new()),
        ),
        Write::InboundGone { client, id } => {
            (Table::Inbound, client_key(client, &id.to_be_bytes())?, None)
        }
        Write::Subscribed {
            client,
            filter,
            qos,
        } => (
            Table::Subscriptions,
            client_key(client, filter)?,
            Some(vec![*qos]),
        ),
        Write::Unsubscribed { client, filter } => {
            (Table::Subscriptions, client_key(client, filter)?, None)
        }
        Write::Retained { message } => {
            if message.topic.len() > usize::from(u16::MAX) {
                return Err(StoreError::TopicTooLong);
            }
            let mut v = Vec::with_capacity(4 + message.topic.len() + message.payload.len());
            encode_message(message, &mut v)?;
            (Table::Retained, message.topic.to_vec(), Some(v))
        }
        Write::RetainedGone { topic } => (Table::Retained, topic.to_vec(), None),
        Write::SharedQueued {
            group,
            slot,
            message,
        } => {
            let mut v = Vec::with_capacity(4 + message.topic.len() + message.payload.len());
            encode_message(message, &mut v)?;
            (
                Table::Shared,
                client_key(group, &slot.to_be_bytes())?,
                Some(v),
            )
        }
        Write::SharedQueuedGone { group, slot } => {
            (Table::Shared, client_key(group, &slot.to_be_bytes())?, None)
        }
    };
    Ok(Some(((t, key), value)))
}
