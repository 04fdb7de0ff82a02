//! The records of the durable state and their bytes on disk.
//!
//! Keys start with the client id, length-prefixed, so every record of one session is one
//! prefix; numbers are big-endian so that the database's byte order is their order.
//! Values carry no version of their own: the store's format marker covers them all.

use bytes::Bytes;

use super::StoreError;

/// A message as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its topic name.
    pub topic: Bytes,
    /// Its payload.
    pub payload: Bytes,
    /// Its QoS (0, 1 or 2).
    pub qos: u8,
    /// Its retain flag.
    pub retain: bool,
}

/// One QoS 1/2 message of a session's outgoing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutgoing {
    /// Its packet id.
    pub id: u16,
    /// Where its flow stands: 0 held (not sent yet), 1 sent (PUBLISH out), 2 released
    /// (PUBREL out).
    pub stage: u8,
    /// When the PUBLISH first went out, in milliseconds since the Unix epoch; `None`
    /// when not recorded (a record written before this field existed reads so).
    pub first_sent_ms: Option<u64>,
    /// The message.
    pub message: StoredMessage,
}

/// One change of the durable state. A batch of them is committed as one transaction by
/// [`Store::commit`](super::Store::commit).
///
/// Entries of a session's outgoing table and queue are placed by a `slot`, a number the
/// caller chooses, increasing in the order the entries must come back: loading returns
/// them sorted by slot. A client id is at most 65 535 bytes (as in MQTT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A persistent session exists, with this expiry (milliseconds since the Unix epoch;
    /// `None`: none set) and packet id cursor (the id handed out last).
    Session {
        /// Its client id.
        client: Bytes,
        /// When it expires.
        expires_ms: Option<u64>,
        /// The packet id handed out last.
        cursor: u16,
    },
    /// A persistent session and every record it has are gone.
    SessionGone {
        /// Its client id.
        client: Bytes,
    },
    /// An entry of the outgoing table was put (or replaced) at `slot`.
    Outgoing {
        /// Its client id.
        client: Bytes,
        /// Its place.
        slot: u64,
        /// The entry.
        entry: StoredOutgoing,
    },
    /// The outgoing entry at `slot` is gone.
    OutgoingGone {
        /// Its client id.
        client: Bytes,
        /// Its place.
        slot: u64,
    },
    /// A message was queued at `slot` behind the inflight window.
    Queued {
        /// Its client id.
        client: Bytes,
        /// Its place.
        slot: u64,
        /// The message.
        message: StoredMessage,
    },
    /// The queued message at `slot` is gone.
    QueuedGone {
        /// Its client id.
        client: Bytes,
        /// Its place.
        slot: u64,
    },
    /// An inbound QoS 2 id awaits PUBREL.
    Inbound {
        /// Its client id.
        client: Bytes,
        /// The packet id.
        id: u16,
    },
    /// An inbound QoS 2 id was released.
    InboundGone {
        /// Its client id.
        client: Bytes,
        /// The packet id.
        id: u16,
    },
    /// A subscription was made or replaced.
    Subscribed {
        /// Its client id.
        client: Bytes,
        /// The topic filter.
        filter: Bytes,
        /// The granted QoS.
        qos: u8,
    },
    /// A subscription was deleted.
    Unsubscribed {
        /// Its client id.
        client: Bytes,
        /// The topic filter.
        filter: Bytes,
    },
    /// The retained message of a topic was set.
    Retained {
        /// The message (its topic is the key).
        message: StoredMessage,
    },
    /// The retained message of a topic was cleared.
    RetainedGone {
        /// The topic.
        topic: Bytes,
    },
    /// A message joined a shared-subscription group's queue at `slot`.
    SharedQueued {
        /// The group's filter.
        group: Bytes,
        /// Its place.
        slot: u64,
        /// The message.
        message: StoredMessage,
    },
    /// The queued message of a group at `slot` is gone.
    SharedQueuedGone {
        /// The group's filter.
        group: Bytes,
        /// Its place.
        slot: u64,
    },
}

/// One persistent session as loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSession {
    /// Its client id.
    pub client: Bytes,
    /// When it expires (milliseconds since the Unix epoch).
    pub expires_ms: Option<u64>,
    /// The packet id handed out last.
    pub cursor: u16,
    /// Its subscriptions, sorted by filter.
    pub subscriptions: Vec<(Bytes, u8)>,
    /// Its outgoing table, by slot.
    pub outgoing: Vec<(u64, StoredOutgoing)>,
    /// Its queue, by slot.
    pub queue: Vec<(u64, StoredMessage)>,
    /// Its inbound QoS 2 ids awaiting PUBREL, sorted.
    pub inbound: Vec<u16>,
}

/// Everything the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// The persistent sessions, sorted by client id.
    pub sessions: Vec<StoredSession>,
    /// The retained messages, sorted by topic.
    pub retained: Vec<StoredMessage>,
    /// The shared-subscription groups' queues, sorted by group; each by slot.
    pub shared: Vec<(Bytes, Vec<(u64, StoredMessage)>)>,
}

/// The prefix of every key of one session.
pub(super) fn client_prefix(client: &[u8]) -> Result<Vec<u8>, StoreError> {
    let len = u16::try_from(client.len()).map_err(|_| StoreError::ClientIdTooLong)?;
    let mut k = Vec::with_capacity(2 + client.len() + 8);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(client);
    Ok(k)
}

/// A session key followed by `suffix`.
pub(super) fn client_key(client: &[u8], suffix: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut k = client_prefix(client)?;
    k.extend_from_slice(suffix);
    Ok(k)
}

/// Splits a key into its client id and the rest.
pub(super) fn split_key(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes([*key.first()?, *key.get(1)?]));
    let rest = key.get(2..)?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

pub(super) fn encode_message(m: &StoredMessage, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let len = u16::try_from(m.topic.len()).map_err(|_| StoreError::TopicTooLong)?;
    out.push(m.qos);
    out.push(u8::from(m.retain));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&m.topic);
    out.extend_from_slice(&m.payload);
    Ok(())
}

pub(super) fn decode_message(v: &[u8]) -> Option<StoredMessage> {
    let (&qos, v) = v.split_first()?;
    let (&retain, v) = v.split_first()?;
    if qos > 2 || retain > 1 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*v.first()?, *v.get(1)?]));
    let v = v.get(2..)?;
    if v.len() < len {
        return None;
    }
    let (topic, payload) = v.split_at(len);
    Some(StoredMessage {
        topic: Bytes::copy_from_slice(topic),
        payload: Bytes::copy_from_slice(payload),
        qos,
        retain: retain == 1,
    })
}

/// The bit of an outgoing record's stage byte that says a first-send time follows it.
/// Records written before the time was kept have it clear, and still read.
const FIRST_SENT: u8 = 0x80;

/// An outgoing record: id, stage (with [`FIRST_SENT`]), the first-send time if any,
/// then the message.
pub(super) fn encode_outgoing(e: &StoredOutgoing) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(15 + e.message.topic.len() + e.message.payload.len());
    out.extend_from_slice(&e.id.to_be_bytes());
    match e.first_sent_ms {
        Some(ms) => {
            out.push(e.stage | FIRST_SENT);
            out.extend_from_slice(&ms.to_be_bytes());
        }
        None => out.push(e.stage),
    }
    encode_message(&e.message, &mut out)?;
    Ok(out)
}

pub(super) fn decode_outgoing(v: &[u8]) -> Option<StoredOutgoing> {
    let id = u16::from_be_bytes([*v.first()?, *v.get(1)?]);
    let flags = *v.get(2)?;
    let stage = flags & !FIRST_SENT;
    if id == 0 || stage > 2 {
        return None;
    }
    let (first_sent_ms, rest) = if flags & FIRST_SENT != 0 {
        let ms = decode_u64(v.get(3..11)?)?;
        (Some(ms), v.get(11..)?)
    } else {
        (None, v.get(3..)?)
    };
    Some(StoredOutgoing {
        id,
        stage,
        first_sent_ms,
        message: decode_message(rest)?,
    })
}

/// A session's own record: its id cursor, then its expiry if it has one.
pub(super) fn encode_session(expires_ms: Option<u64>, cursor: u16) -> Vec<u8> {
    let mut v = cursor.to_be_bytes().to_vec();
    if let Some(ms) = expires_ms {
        v.extend_from_slice(&ms.to_be_bytes());
    }
    v
}

pub(super) fn decode_session(v: &[u8]) -> Option<(Option<u64>, u16)> {
    let cursor = u16::from_be_bytes([*v.first()?, *v.get(1)?]);
    match v.get(2..)? {
        [] => Some((None, cursor)),
        rest => Some((Some(u64::from_be_bytes(rest.try_into().ok()?)), cursor)),
    }
}

pub(super) fn decode_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(first_sent_ms: Option<u64>) -> StoredOutgoing {
        StoredOutgoing {
            id: 7,
            stage: 1,
            first_sent_ms,
            message: StoredMessage {
                topic: Bytes::from_static(b"t"),
                payload: Bytes::from_static(b"payload"),
                qos: 1,
                retain: false,
            },
        }
    }

    #[test]
    fn an_outgoing_record_keeps_its_first_send_time_and_an_older_record_reads_without_one() {
        for first in [None, Some(1_765_000_000_000)] {
            let bytes = encode_outgoing(&entry(first)).expect("encodes");
            assert_eq!(decode_outgoing(&bytes), Some(entry(first)));
        }
        // A record written before the time was kept: id, stage, message.
        let mut old = vec![0, 7, 1];
        encode_message(&entry(None).message, &mut old).expect("encodes");
        assert_eq!(decode_outgoing(&old), Some(entry(None)));
        // A time that is cut short is damage, not a message.
        let cut = encode_outgoing(&entry(Some(5))).expect("encodes");
        assert_eq!(decode_outgoing(&cut[..8]), None);
    }
}
