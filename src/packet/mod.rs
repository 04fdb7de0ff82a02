//! The 14 MQTT 3.1.1 control packets.
//!
//! [`Packet`] is generic over the storage `B` of its text and payload fields: `&[u8]`
//! when decoded from a borrowed slice, [`Bytes`] when decoded zero-copy or built by an
//! application. The five packets that carry only a packet identifier (PUBACK, PUBREC,
//! PUBREL, PUBCOMP, UNSUBACK) hold a [`PacketId`].

mod connack;
mod connect;
mod publish;
mod subscribe;

pub use connack::{ConnAck, ConnectReturnCode};
pub use connect::{Connect, Login, Will};
pub use publish::{Publish, QosPid};
pub use subscribe::{SubAck, SubAckCode, Subscribe, Unsubscribe};

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::prim::{self, MAX_REMAINING_LENGTH};

mod sealed {
    pub trait Sealed {}
    impl Sealed for bytes::BytesMut {}
    impl Sealed for alloc::vec::Vec<u8> {}
}

/// A buffer that packets can be encoded into: [`BytesMut`] or `Vec<u8>`.
///
/// Encoding makes room for the whole packet first (one reservation), then appends it.
/// The two give the same bytes; appending to a `Vec<u8>` costs a little less per write
/// than to a `BytesMut`, which pays for being able to split and share its memory.
pub trait EncodeBuf: BufMut + sealed::Sealed {
    /// Makes room for at least `additional` more bytes.
    fn reserve(&mut self, additional: usize);
}

impl EncodeBuf for BytesMut {
    #[inline]
    fn reserve(&mut self, additional: usize) {
        BytesMut::reserve(self, additional);
    }
}

impl EncodeBuf for alloc::vec::Vec<u8> {
    #[inline]
    fn reserve(&mut self, additional: usize) {
        alloc::vec::Vec::reserve(self, additional);
    }
}
use crate::error::{DecodeError, EncodeError};
use crate::types::PacketId;

/// An MQTT 3.1.1 control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<B> {
    /// CONNECT (client → server).
    Connect(Connect<B>),
    /// CONNACK (server → client).
    ConnAck(ConnAck),
    /// PUBLISH (both directions).
    Publish(Publish<B>),
    /// PUBACK: QoS 1 acknowledgement.
    PubAck(PacketId),
    /// PUBREC: QoS 2, part 1.
    PubRec(PacketId),
    /// PUBREL: QoS 2, part 2.
    PubRel(PacketId),
    /// PUBCOMP: QoS 2, part 3.
    PubComp(PacketId),
    /// SUBSCRIBE (client → server).
    Subscribe(Subscribe<B>),
    /// SUBACK (server → client).
    SubAck(SubAck<B>),
    /// UNSUBSCRIBE (client → server).
    Unsubscribe(Unsubscribe<B>),
    /// UNSUBACK (server → client).
    UnsubAck(PacketId),
    /// PINGREQ (client → server).
    PingReq,
    /// PINGRESP (server → client).
    PingResp,
    /// DISCONNECT (client → server).
    Disconnect,
}

/// The kind of a control packet, as the fixed header's type nibble names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PacketType {
    /// 1
    Connect = 1,
    /// 2
    ConnAck,
    /// 3
    Publish,
    /// 4
    PubAck,
    /// 5
    PubRec,
    /// 6
    PubRel,
    /// 7
    PubComp,
    /// 8
    Subscribe,
    /// 9
    SubAck,
    /// 10
    Unsubscribe,
    /// 11
    UnsubAck,
    /// 12
    PingReq,
    /// 13
    PingResp,
    /// 14
    Disconnect,
}

impl PacketType {
    /// The packet type for a type nibble; `None` for the reserved 0 and 15.
    #[inline]
    pub const fn from_u8(v: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match v {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            _ => return None,
        })
    }

    /// The specification's name: `CONNECT`, `PUBACK`, …
    pub const fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Connect => "CONNECT",
            ConnAck => "CONNACK",
            Publish => "PUBLISH",
            PubAck => "PUBACK",
            PubRec => "PUBREC",
            PubRel => "PUBREL",
            PubComp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            SubAck => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            UnsubAck => "UNSUBACK",
            PingReq => "PINGREQ",
            PingResp => "PINGRESP",
            Disconnect => "DISCONNECT",
        }
    }

    /// The flag nibble every packet of this type carries; `None` for PUBLISH, whose
    /// flags carry DUP, QoS and RETAIN.
    #[inline]
    pub(crate) const fn fixed_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }

    /// The Remaining Length every packet of this type has, if it is fixed.
    #[inline]
    pub(crate) const fn fixed_remaining_length(self) -> Option<usize> {
        use PacketType::*;
        match self {
            ConnAck | PubAck | PubRec | PubRel | PubComp | UnsubAck => Some(2),
            PingReq | PingResp | Disconnect => Some(0),
            _ => None,
        }
    }
}

impl<B> Packet<B> {
    /// The kind of this packet.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect => PacketType::Disconnect,
        }
    }

    /// The packet with every storage value converted by `f`, which must keep the bytes.
    #[inline]
    pub(crate) fn map<C>(self, f: &mut impl FnMut(B) -> C) -> Packet<C> {
        match self {
            Packet::Connect(p) => Packet::Connect(p.map(f)),
            Packet::ConnAck(p) => Packet::ConnAck(p),
            Packet::Publish(p) => Packet::Publish(p.map(f)),
            Packet::PubAck(id) => Packet::PubAck(id),
            Packet::PubRec(id) => Packet::PubRec(id),
            Packet::PubRel(id) => Packet::PubRel(id),
            Packet::PubComp(id) => Packet::PubComp(id),
            Packet::Subscribe(p) => Packet::Subscribe(p.map(f)),
            Packet::SubAck(p) => Packet::SubAck(p.map(f)),
            Packet::Unsubscribe(p) => Packet::Unsubscribe(p.map(f)),
            Packet::UnsubAck(id) => Packet::UnsubAck(id),
            Packet::PingReq => Packet::PingReq,
            Packet::PingResp => Packet::PingResp,
            Packet::Disconnect => Packet::Disconnect,
        }
    }
}

impl Packet<&[u8]> {
    /// A copy of this packet whose storage is [`Bytes`], independent of the input buffer.
    pub fn to_owned(&self) -> Packet<Bytes> {
        self.clone().map(&mut Bytes::copy_from_slice)
    }
}

impl<B: AsRef<[u8]>> Packet<B> {
    /// The Remaining Length of this packet: the bytes after the fixed header.
    fn remaining_length(&self) -> usize {
        match self {
            Packet::Connect(p) => p.remaining_length(),
            Packet::ConnAck(_) => 2,
            Packet::Publish(p) => p.remaining_length(),
            Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::UnsubAck(_) => 2,
            Packet::Subscribe(p) => p.remaining_length(),
            Packet::SubAck(p) => p.remaining_length(),
            Packet::Unsubscribe(p) => p.remaining_length(),
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => 0,
        }
    }

    /// The exact number of bytes [`encode`](Self::encode) writes, computed without
    /// encoding.
    pub fn encoded_len(&self) -> usize {
        let rl = self.remaining_length();
        1 + prim::remaining_length_len(rl) + rl
    }

    /// The first byte of the fixed header.
    fn first_byte(&self) -> u8 {
        let t = self.packet_type();
        let flags = match self {
            Packet::Publish(p) => p.flags(),
            _ => t.fixed_flags().unwrap_or(0),
        };
        (t as u8) << 4 | flags
    }

    /// Appends the packet's bytes to `buf`, in the minimal encoding. On error nothing is
    /// written.
    #[inline]
    pub fn encode<W: EncodeBuf>(&self, buf: &mut W) -> Result<(), EncodeError> {
        // The fixed-size packets are written in a single write.
        let id_only = |buf: &mut W, first: u8, id: PacketId| {
            let [hi, lo] = id.get().to_be_bytes();
            buf.put_slice(&[first, 2, hi, lo]);
        };
        match self {
            Packet::Publish(p) => return p.encode(buf),
            Packet::PubAck(id) => id_only(buf, 0x40, *id),
            Packet::PubRec(id) => id_only(buf, 0x50, *id),
            Packet::PubRel(id) => id_only(buf, 0x62, *id),
            Packet::PubComp(id) => id_only(buf, 0x70, *id),
            Packet::UnsubAck(id) => id_only(buf, 0xB0, *id),
            Packet::ConnAck(p) => buf.put_slice(&[0x20, 2, p.session_present() as u8, p.code()]),
            Packet::PingReq => buf.put_slice(&[0xC0, 0]),
            Packet::PingResp => buf.put_slice(&[0xD0, 0]),
            Packet::Disconnect => buf.put_slice(&[0xE0, 0]),
            Packet::Connect(p) => {
                // Each body's own length, computed inline (measured: the generic
                // `remaining_length` was a call that cost a CONNECT a tenth).
                let rl = p.remaining_length();
                if rl > MAX_REMAINING_LENGTH {
                    return Err(EncodeError::PacketTooLarge);
                }
                buf.reserve(1 + prim::remaining_length_len(rl) + rl);
                prim::put_fixed_header(buf, 0x10, rl);
                p.encode_body(buf);
            }
            Packet::Subscribe(_) | Packet::SubAck(_) | Packet::Unsubscribe(_) => {
                let rl = self.remaining_length();
                if rl > MAX_REMAINING_LENGTH {
                    return Err(EncodeError::PacketTooLarge);
                }
                buf.reserve(1 + prim::remaining_length_len(rl) + rl);
                let first = self.first_byte();
                match self {
                    Packet::Subscribe(p) => p.encode(buf, first, rl),
                    Packet::SubAck(p) => p.encode(buf, first, rl),
                    Packet::Unsubscribe(p) => p.encode(buf, first, rl),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Appends the packet to `buf` like [`encode`](Self::encode), except the payload of
    /// a PUBLISH of at least `min_chunk` bytes, which is not copied but returned: write
    /// it right after `buf`'s bytes, as a chunk of its own (a vectored write, or a queue
    /// of [`Bytes`] chunks). Smaller payloads, and every other packet, go into `buf`
    /// whole and give `None`. On error nothing is written.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use mqtt_sansio::{Packet, Publish, QosPid, TopicName};
    ///
    /// let payload = Bytes::from(vec![7u8; 64 * 1024]);
    /// let topic = TopicName::from_static("a/b").unwrap();
    /// let p = Packet::Publish(Publish::new(topic, QosPid::AtMostOnce, payload.clone()));
    /// let mut head = BytesMut::new();
    /// let chunk = p.encode_chunked(&mut head, 4096)?.expect("a large payload");
    /// // The payload was not copied: the chunk is the packet's own `Bytes`.
    /// assert_eq!(chunk.as_ptr(), payload.as_ptr());
    /// assert_eq!([&head[..], &chunk[..]].concat(), p.to_bytes()?.to_vec());
    /// # Ok::<(), mqtt_sansio::EncodeError>(())
    /// ```
    #[inline]
    pub fn encode_chunked<W: EncodeBuf>(
        &self,
        buf: &mut W,
        min_chunk: usize,
    ) -> Result<Option<&B>, EncodeError> {
        match self {
            Packet::Publish(p) if p.payload.as_ref().len() >= min_chunk => {
                p.encode_header(buf)?;
                Ok(Some(&p.payload))
            }
            _ => self.encode(buf).map(|()| None),
        }
    }

    /// The packet's bytes in a new buffer.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf)?;
        Ok(buf.freeze())
    }
}

impl<'a> Packet<&'a [u8]> {
    /// Parses the body of a packet whose fixed header has been checked.
    ///
    /// `INLINE_CONNECT` says whether the CONNECT parser is inlined here (the borrowed
    /// decode, where it cuts a CONNECT by a fifth) or called (the zero-copy decodes,
    /// whose PUBLISH path measured slower with it inlined: a larger function around
    /// the hot path, with the same instruction count).
    #[inline(always)]
    pub(crate) fn decode_body<const INLINE_CONNECT: bool>(
        t: PacketType,
        flags: u8,
        body: &'a [u8],
    ) -> Result<Self, DecodeError> {
        let id_only = |body: &'a [u8]| prim::packet_id(body).map(|(_, id)| id);
        Ok(match t {
            PacketType::Connect if INLINE_CONNECT => Packet::Connect(Connect::decode_body(body)?),
            PacketType::Connect => Packet::Connect(Connect::decode_body_outlined(body)?),
            PacketType::ConnAck => Packet::ConnAck(ConnAck::decode_body(body)?),
            PacketType::Publish => Packet::Publish(Publish::decode_body(flags, body)?),
            PacketType::PubAck => Packet::PubAck(id_only(body)?),
            PacketType::PubRec => Packet::PubRec(id_only(body)?),
            PacketType::PubRel => Packet::PubRel(id_only(body)?),
            PacketType::PubComp => Packet::PubComp(id_only(body)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode_body(body)?),
            PacketType::SubAck => Packet::SubAck(SubAck::decode_body(body)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode_body(body)?),
            PacketType::UnsubAck => Packet::UnsubAck(id_only(body)?),
            PacketType::PingReq => Packet::PingReq,
            PacketType::PingResp => Packet::PingResp,
            PacketType::Disconnect => Packet::Disconnect,
        })
    }
}

impl<B> From<Connect<B>> for Packet<B> {
    fn from(p: Connect<B>) -> Self {
        Packet::Connect(p)
    }
}

impl<B> From<Publish<B>> for Packet<B> {
    fn from(p: Publish<B>) -> Self {
        Packet::Publish(p)
    }
}

impl<B> From<Subscribe<B>> for Packet<B> {
    fn from(p: Subscribe<B>) -> Self {
        Packet::Subscribe(p)
    }
}

impl<B> From<Unsubscribe<B>> for Packet<B> {
    fn from(p: Unsubscribe<B>) -> Self {
        Packet::Unsubscribe(p)
    }
}

impl<B> From<SubAck<B>> for Packet<B> {
    fn from(p: SubAck<B>) -> Self {
        Packet::SubAck(p)
    }
}

impl<B> From<ConnAck> for Packet<B> {
    fn from(p: ConnAck) -> Self {
        Packet::ConnAck(p)
    }
}
