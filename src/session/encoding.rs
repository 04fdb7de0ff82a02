//! The binary encoding of exported state, version 2.
//!
//! Written with the codec's own primitives (big-endian integers, fields with a two-byte
//! length prefix). The grammar, every integer big-endian:
//!
//! ```text
//! export   = "MQSX" version:u8(=2) kind:u8 body
//!            kind 1: body = session                     (a ClientExport)
//!            kind 2: body = n:u32 record{n} n:u32 message{n} n:u32 shared{n}
//!                           (a BrokerExport: sessions ascending by client id,
//!                           retained messages ascending by topic, shared-group
//!                           queues ascending by group)
//! shared   = group:str n:u32 message{n}                 (n > 0, oldest first)
//! record   = client_id:str expires subscriptions session queue
//! expires  = 0x00 | 0x01 at:u64                         (milliseconds, caller's clock)
//! subscriptions = n:u32 (filter:str qos:u8){n}          (ascending by filter)
//! queue    = n:u32 message{n}                           (oldest first)
//! session  = cursor:u16 n:u32 entry{n} n:u32 inbound_id:u16{n}
//! entry    = id:u16 flags:u8 [first_sent:u64] message   (flags: bit 0 released,
//!                                                         bit 1 sent, bit 2 first_sent
//!                                                         follows (only with bit 1):
//!                                                         milliseconds, caller's clock;
//!                                                         resend order)
//! message  = flags:u8 topic:str payload_len:u32 payload (flags: bits 0-1 QoS,
//!                                                         bit 2 RETAIN)
//! str      = len:u16 bytes{len}                         (as MQTT strings)
//! ```
//!
//! Version 1, which this crate still reads, differs in two places: an entry has no
//! first-send time (flag bit 2 is unknown there), so every entry read from it has
//! [`Outgoing::first_sent`] `None` (a retry limit never drops it); and the shared-group
//! section of a broker export, added to version 1 without a new number, may be absent
//! (the export ends after the retained messages: no shared queue). Writing always
//! gives version 2; another version is refused with
//! [`StateError::UnsupportedVersion`].
//!
//! Reading treats the bytes as untrusted: every field is validated as the codec
//! validates a packet (topic names, filters, UTF-8 client ids, non-zero packet ids),
//! unknown flag bits, kinds and versions are refused, nothing follows the export, and
//! no count is trusted for an allocation: elements are read one at a time, each from
//! bytes that are there.

use alloc::vec::Vec;

use bytes::{BufMut, Bytes};

use super::StateError;
use super::{
    BrokerExport, ClientExport, Message, Outgoing, SessionExport, SessionRecord, SharedQueue, Stage,
};
use crate::codec::prim::{packet_id, prefixed, put_prefixed, u8_, u16_};
use crate::error::DecodeError;
use crate::time::Instant;
use crate::types::{MqttString, PacketId, QoS, TopicFilter, TopicName};

/// The first four bytes of every export.
pub const MAGIC: [u8; 4] = *b"MQSX";
/// The version this crate writes. It also reads [`VERSION_1`].
pub const VERSION: u8 = 2;
/// The previous version, still read: no first-send time per outgoing entry, and an
/// optional shared-group section (see the [module documentation](self)).
pub const VERSION_1: u8 = 1;

const CLIENT: u8 = 1;
const BROKER: u8 = 2;

// ----- writing -----

fn put_header(out: &mut Vec<u8>, kind: u8) {
    out.put_slice(&MAGIC);
    out.put_u8(VERSION);
    out.put_u8(kind);
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    // Counts are bounded by memory far below u32::MAX entries of at least 2 bytes.
    out.put_u32(u32::try_from(n).unwrap_or(u32::MAX));
}

fn put_message(out: &mut Vec<u8>, m: &Message) {
    out.put_u8(m.qos as u8 | u8::from(m.retain) << 2);
    put_prefixed(out, m.topic.as_bytes());
    // A payload fits a Remaining Length, which is below u32::MAX.
    put_count(out, m.payload.len());
    out.put_slice(&m.payload);
}

fn put_session(out: &mut Vec<u8>, s: &SessionExport) {
    out.put_u16(s.cursor);
    put_count(out, s.outgoing.len());
    for o in &s.outgoing {
        out.put_u16(o.id.get());
        let flags = u8::from(o.stage == Stage::Released)
            | u8::from(o.sent) << 1
            | u8::from(o.first_sent.is_some()) << 2;
        out.put_u8(flags);
        if let Some(at) = o.first_sent {
            out.put_u64(at.as_millis());
        }
        put_message(out, &o.message);
    }
    put_count(out, s.inbound_qos2.len());
    for id in &s.inbound_qos2 {
        out.put_u16(id.get());
    }
}

fn put_record(out: &mut Vec<u8>, r: &SessionRecord) {
    put_prefixed(out, r.client_id.as_bytes());
    match r.expires {
        None => out.put_u8(0),
        Some(at) => {
            out.put_u8(1);
            out.put_u64(at.as_millis());
        }
    }
    put_count(out, r.subscriptions.len());
    for (f, q) in &r.subscriptions {
        put_prefixed(out, f.as_bytes());
        out.put_u8(*q as u8);
    }
    put_session(out, &r.session);
    put_count(out, r.queue.len());
    for m in &r.queue {
        put_message(out, m);
    }
}

impl ClientExport {
    /// The export in the binary encoding described in [`encoding`](super::encoding).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, CLIENT);
        put_session(&mut out, &self.session);
        out
    }

    /// Reads an export written by [`to_bytes`](Self::to_bytes). Untrusted input gives
    /// a [`StateError`], never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<ClientExport, StateError> {
        let mut r = Reader::new(bytes, CLIENT)?;
        let session = r.session()?;
        r.finish()?;
        Ok(ClientExport { session })
    }
}

impl BrokerExport {
    /// The export in the binary encoding described in [`encoding`](super::encoding).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_header(&mut out, BROKER);
        put_count(&mut out, self.sessions.len());
        for r in &self.sessions {
            put_record(&mut out, r);
        }
        put_count(&mut out, self.retained.len());
        for m in &self.retained {
            put_message(&mut out, m);
        }
        put_count(&mut out, self.shared.len());
        for q in &self.shared {
            put_prefixed(&mut out, q.group.as_bytes());
            put_count(&mut out, q.queue.len());
            for m in &q.queue {
                put_message(&mut out, m);
            }
        }
        out
    }

    /// Reads an export written by [`to_bytes`](Self::to_bytes). Untrusted input gives
    /// a [`StateError`], never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<BrokerExport, StateError> {
        let mut r = Reader::new(bytes, BROKER)?;
        let mut export = BrokerExport::default();
        for _ in 0..r.u32()? {
            let record = r.record()?;
            if export
                .sessions
                .last()
                .is_some_and(|l| l.client_id.as_bytes() >= record.client_id.as_bytes())
            {
                return Err(StateError::Invalid("sessions not ascending by client id"));
            }
            export.sessions.push(record);
        }
        for _ in 0..r.u32()? {
            let m = r.message()?;
            if export
                .retained
                .last()
                .is_some_and(|l| l.topic.as_bytes() >= m.topic.as_bytes())
            {
                return Err(StateError::Invalid(
                    "retained messages not ascending by topic",
                ));
            }
            export.retained.push(m);
        }
        // Version 1 was first written without the shared-group section.
        let shared = if r.version == VERSION_1 && r.rest.is_empty() {
            0
        } else {
            r.u32()?
        };
        for _ in 0..shared {
            let group = TopicFilter::new(r.str()?).map_err(StateError::Field)?;
            if export
                .shared
                .last()
                .is_some_and(|l| l.group.as_bytes() >= group.as_bytes())
            {
                return Err(StateError::Invalid("shared queues not ascending by group"));
            }
            let mut queue = Vec::new();
            for _ in 0..r.u32()? {
                queue.push(r.message()?);
            }
            if queue.is_empty() {
                return Err(StateError::Invalid("an empty shared queue"));
            }
            export.shared.push(SharedQueue { group, queue });
        }
        r.finish()?;
        Ok(export)
    }
}

// ----- reading -----

fn field(e: DecodeError) -> StateError {
    match e {
        DecodeError::UnexpectedEnd => StateError::Truncated,
        other => StateError::Field(other),
    }
}

struct Reader<'a> {
    rest: &'a [u8],
    /// The version read from the header.
    version: u8,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], kind: u8) -> Result<Reader<'a>, StateError> {
        let Some((magic, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(if MAGIC.starts_with(bytes) {
                StateError::Truncated
            } else {
                StateError::NotAnExport
            });
        };
        if *magic != MAGIC {
            return Err(StateError::NotAnExport);
        }
        let mut r = Reader {
            rest,
            version: VERSION,
        };
        let version = r.u8()?;
        if version != VERSION && version != VERSION_1 {
            return Err(StateError::UnsupportedVersion(version));
        }
        r.version = version;
        if r.u8()? != kind {
            return Err(StateError::WrongKind);
        }
        Ok(r)
    }

    fn finish(&self) -> Result<(), StateError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(StateError::TrailingBytes)
        }
    }

    fn u8(&mut self) -> Result<u8, StateError> {
        let (rest, v) = u8_(self.rest).map_err(field)?;
        self.rest = rest;
        Ok(v)
    }

    fn u16(&mut self) -> Result<u16, StateError> {
        let (rest, v) = u16_(self.rest).map_err(field)?;
        self.rest = rest;
        Ok(v)
    }

    fn u32(&mut self) -> Result<u32, StateError> {
        let (v, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or(StateError::Truncated)?;
        self.rest = rest;
        Ok(u32::from_be_bytes(*v))
    }

    fn u64(&mut self) -> Result<u64, StateError> {
        let (v, rest) = self
            .rest
            .split_first_chunk::<8>()
            .ok_or(StateError::Truncated)?;
        self.rest = rest;
        Ok(u64::from_be_bytes(*v))
    }

    fn id(&mut self) -> Result<PacketId, StateError> {
        let (rest, v) = packet_id(self.rest).map_err(field)?;
        self.rest = rest;
        Ok(v)
    }

    fn str(&mut self) -> Result<Bytes, StateError> {
        let (rest, v) = prefixed(self.rest).map_err(field)?;
        self.rest = rest;
        Ok(Bytes::copy_from_slice(v))
    }

    fn qos(&mut self) -> Result<QoS, StateError> {
        QoS::from_u8(self.u8()?).ok_or(StateError::Invalid("a QoS above 2"))
    }

    fn message(&mut self) -> Result<Message, StateError> {
        let flags = self.u8()?;
        if flags & !0b111 != 0 {
            return Err(StateError::Invalid("unknown message flags"));
        }
        let qos = QoS::from_u8(flags & 0b11).ok_or(StateError::Invalid("a QoS above 2"))?;
        let topic = TopicName::new(self.str()?).map_err(StateError::Field)?;
        let len = usize::try_from(self.u32()?).map_err(|_| StateError::Truncated)?;
        let (payload, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(StateError::Truncated)?;
        self.rest = rest;
        Ok(Message {
            topic,
            payload: Bytes::copy_from_slice(payload),
            qos,
            retain: flags & 0b100 != 0,
        })
    }

    fn session(&mut self) -> Result<SessionExport, StateError> {
        let cursor = self.u16()?;
        let mut outgoing = Vec::new();
        for _ in 0..self.u32()? {
            let id = self.id()?;
            let flags = self.u8()?;
            let known = if self.version == VERSION_1 {
                0b11
            } else {
                0b111
            };
            if flags & !known != 0 {
                return Err(StateError::Invalid("unknown entry flags"));
            }
            let sent = flags & 0b10 != 0;
            let first_sent = if flags & 0b100 != 0 {
                if !sent {
                    return Err(StateError::Invalid("a first-send time on an unsent entry"));
                }
                Some(Instant::from_millis(self.u64()?))
            } else {
                None
            };
            let message = self.message()?;
            outgoing.push(Outgoing {
                id,
                message,
                stage: if flags & 1 != 0 {
                    Stage::Released
                } else {
                    Stage::Published
                },
                sent,
                first_sent,
            });
        }
        let mut inbound_qos2: Vec<PacketId> = Vec::new();
        for _ in 0..self.u32()? {
            let id = self.id()?;
            if inbound_qos2.last().is_some_and(|l| *l >= id) {
                return Err(StateError::Invalid("inbound QoS 2 ids not ascending"));
            }
            inbound_qos2.push(id);
        }
        let export = SessionExport {
            cursor,
            outgoing,
            inbound_qos2,
        };
        // The same checks as an import, so that a decoded export always imports.
        super::Session::import(export.clone())?;
        Ok(export)
    }

    fn record(&mut self) -> Result<SessionRecord, StateError> {
        let client_id = MqttString::new(self.str()?).map_err(StateError::Field)?;
        if client_id.is_empty() {
            // MQTT-3.1.3-7: a persistent session has a client id.
            return Err(StateError::Invalid(
                "a persistent session without a client id",
            ));
        }
        let expires = match self.u8()? {
            0 => None,
            1 => Some(Instant::from_millis(self.u64()?)),
            _ => return Err(StateError::Invalid("an expiry flag other than 0 or 1")),
        };
        let mut subscriptions: Vec<(TopicFilter<Bytes>, QoS)> = Vec::new();
        for _ in 0..self.u32()? {
            let filter = TopicFilter::new(self.str()?).map_err(StateError::Field)?;
            let qos = self.qos()?;
            if subscriptions
                .last()
                .is_some_and(|(l, _)| l.as_bytes() >= filter.as_bytes())
            {
                return Err(StateError::Invalid("subscriptions not ascending by filter"));
            }
            subscriptions.push((filter, qos));
        }
        let session = self.session()?;
        if session.outgoing.iter().any(|o| !o.sent) {
            return Err(StateError::Invalid("an unsent entry in a server's session"));
        }
        let mut queue = Vec::new();
        for _ in 0..self.u32()? {
            queue.push(self.message()?);
        }
        Ok(SessionRecord {
            client_id,
            expires,
            subscriptions,
            session,
            queue,
        })
    }
}
