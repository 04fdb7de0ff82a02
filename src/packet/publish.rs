//! PUBLISH (§3.3).
//!
//! ```text
//! 3X RL            X = DUP(b3) QoS(b2-b1) RETAIN(b0)
//! topic name (str)
//! packet id (u16)  only at QoS 1 and 2
//! payload          the rest of the packet, possibly empty
//! ```

use bytes::Bytes;

use super::EncodeBuf;
use crate::codec::prim::{self, MAX_REMAINING_LENGTH};
use crate::error::{DecodeError, EncodeError};
use crate::types::{PacketId, QoS, TopicName, check_topic_name};

/// The QoS of a PUBLISH together with its packet identifier, which exists exactly when
/// the QoS is 1 or 2 (MQTT-2.3.1-1, MQTT-2.3.1-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum QosPid {
    /// QoS 0, no packet identifier.
    AtMostOnce,
    /// QoS 1 with its packet identifier.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet identifier.
    ExactlyOnce(PacketId),
}

impl QosPid {
    /// The QoS.
    pub const fn qos(self) -> QoS {
        match self {
            QosPid::AtMostOnce => QoS::AtMostOnce,
            QosPid::AtLeastOnce(_) => QoS::AtLeastOnce,
            QosPid::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier, absent at QoS 0.
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            QosPid::AtMostOnce => None,
            QosPid::AtLeastOnce(id) | QosPid::ExactlyOnce(id) => Some(id),
        }
    }

    /// `qos` with packet identifier `id` (ignored at QoS 0).
    pub const fn new(qos: QoS, id: PacketId) -> QosPid {
        match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(id),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(id),
        }
    }
}

/// A PUBLISH packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish<B> {
    /// DUP: this may be a resend of an earlier attempt. Only meaningful at QoS 1 and 2;
    /// encoding a QoS 0 PUBLISH with `dup` set fails (MQTT-3.3.1-2).
    pub dup: bool,
    /// QoS and packet identifier.
    pub qos: QosPid,
    /// RETAIN: the server keeps this message for future subscribers.
    pub retain: bool,
    /// Where the message is published.
    pub topic: TopicName<B>,
    /// The application message.
    pub payload: B,
}

impl Publish<Bytes> {
    /// A PUBLISH with DUP and RETAIN clear.
    pub fn new(topic: TopicName<Bytes>, qos: QosPid, payload: impl Into<Bytes>) -> Self {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic,
            payload: payload.into(),
        }
    }
}

impl<B> Publish<B> {
    #[inline]
    pub(crate) fn map<C>(self, f: &mut impl FnMut(B) -> C) -> Publish<C> {
        Publish {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: self.topic.map(f),
            payload: f(self.payload),
        }
    }

    pub(crate) fn flags(&self) -> u8 {
        (self.dup as u8) << 3 | self.qos.qos().as_u8() << 1 | self.retain as u8
    }

    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.dup && self.qos == QosPid::AtMostOnce {
            return Err(EncodeError::DupWithQos0);
        }
        Ok(())
    }
}

impl<B: AsRef<[u8]>> Publish<B> {
    fn header_len(&self) -> usize {
        2 + self.topic.len() + if self.qos.packet_id().is_some() { 2 } else { 0 }
    }

    pub(crate) fn remaining_length(&self) -> usize {
        self.header_len() + self.payload.as_ref().len()
    }

    /// Fixed header and topic length in one write, then the topic and packet id.
    #[inline]
    fn put_header<W: EncodeBuf>(&self, buf: &mut W, rl: usize) {
        let first = 0x30 | self.flags();
        prim::put_fixed_header_u16(buf, first, rl, self.topic.len() as u16);
        buf.put_slice(self.topic.as_bytes());
        if let Some(id) = self.qos.packet_id() {
            buf.put_u16(id.get());
        }
    }

    /// Appends the whole packet.
    #[inline]
    pub(crate) fn encode<W: EncodeBuf>(&self, buf: &mut W) -> Result<(), EncodeError> {
        let rl = self.remaining_length();
        if rl > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge);
        }
        self.check()?;
        buf.reserve(1 + prim::remaining_length_len(rl) + rl);
        self.put_header(buf, rl);
        buf.put_slice(self.payload.as_ref());
        Ok(())
    }

    /// Appends everything but the payload (fixed header, topic, packet id), so that a
    /// large payload can be written straight from its own buffer (a vectored write).
    pub fn encode_header<W: EncodeBuf>(&self, buf: &mut W) -> Result<(), EncodeError> {
        let rl = self.remaining_length();
        if rl > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge);
        }
        self.check()?;
        self.put_header(buf, rl);
        Ok(())
    }
}

impl<'a> Publish<&'a [u8]> {
    #[inline(always)]
    pub(crate) fn decode_body(flags: u8, i: &'a [u8]) -> Result<Self, DecodeError> {
        let (i, topic) = prim::prefixed(i)?;
        check_topic_name(topic)?;
        let qos = (flags >> 1) & 0x03;
        let (payload, qos) = match qos {
            0 => (i, QosPid::AtMostOnce),
            _ => {
                let (i, id) = prim::packet_id(i)?;
                let q = if qos == 1 {
                    QosPid::AtLeastOnce(id)
                } else {
                    QosPid::ExactlyOnce(id)
                };
                (i, q)
            }
        };
        Ok(Publish {
            dup: flags & 0x08 != 0,
            qos,
            retain: flags & 0x01 != 0,
            topic: TopicName(topic),
            payload,
        })
    }
}
