//! Writes coalesced as they are added: the last write of a key wins, a session's removal
//! takes what the batch wrote for it before, and the removal of a record the batch
//! created (the database does not hold it) takes the batch's write of it instead of being
//! written. A message queued for a session, sent and acknowledged within one batch
//! writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::record::{client_key, client_prefix, encode_message, encode_outgoing, encode_session};
use super::{StoreError, Table, Write};

/// A key of the database: its table and its bytes.
pub(super) type Key = (Table, Vec<u8>);

/// The writes of one transaction. See the [module](self) documentation.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The key prefixes of the sessions whose every record goes first.
    pub(super) gone: BTreeSet<Vec<u8>>,
    /// Then the last value of each key (`None`: removed).
    pub(super) ops: BTreeMap<Key, Option<Vec<u8>>>,
    /// The keys of `ops` that the batch created: neither the tables nor an earlier batch
    /// hold them.
    pub(super) fresh: BTreeSet<Key>,
}

/// Where a write goes.
enum Place {
    /// Every record of the session with this key prefix.
    Session(Vec<u8>),
    /// One key: its new value, or removed.
    Key(Key, Option<Vec<u8>>),
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
        match place(w)? {
            Place::Session(prefix) => self.remove_session(prefix),
            Place::Key(key, value) => self.put(key, value, false),
        }
        Ok(())
    }

    /// Adds `w`, a write that creates its record: no earlier write (committed or in this
    /// batch) put its key, or the session's removal took it.
    pub fn add_new(&mut self, w: &Write) -> Result<(), StoreError> {
        match place(w)? {
            Place::Session(prefix) => self.remove_session(prefix),
            Place::Key(key, value) => self.put(key, value, true),
        }
        Ok(())
    }

    fn remove_session(&mut self, prefix: Vec<u8>) {
        for t in Table::PER_SESSION {
            let ours: Vec<Key> = self
                .ops
                .range((t, prefix.clone())..)
                .map(|(k, _)| k)
                .take_while(|(kt, k)| *kt == t && k.starts_with(&prefix))
                .cloned()
                .collect();
            for k in ours {
                self.ops.remove(&k);
                self.fresh.remove(&k);
            }
        }
        self.gone.insert(prefix);
    }

    fn put(&mut self, key: Key, value: Option<Vec<u8>>, fresh: bool) {
        if value.is_none() && self.fresh.remove(&key) {
            // Created and removed here: nothing to write.
            self.ops.remove(&key);
            return;
        }
        if fresh {
            self.fresh.insert(key.clone());
        }
        self.ops.insert(key, value);
    }
}

/// The session prefix or the key of `w`, and its value.
fn place(w: &Write) -> Result<Place, StoreError> {
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
        Write::SessionGone { client } => return Ok(Place::Session(client_prefix(client)?)),
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
    Ok(Place::Key((t, key), value))
}
