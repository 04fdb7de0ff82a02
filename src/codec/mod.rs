//! Decoding: bytes in, packets out.
//!
//! ```text
//! byte 1      packet type (b7-4) | flags (b3-0)
//! byte 2..5   Remaining Length, 1-4 bytes, 7 bits each, least significant first
//! ...         variable header and payload: Remaining Length bytes
//! ```
//!
//! The first byte is checked as soon as it arrives and the size limit as soon as the
//! Remaining Length is known, so bad or oversized input is refused without waiting for
//! the rest of it.

mod frame;
pub(crate) mod prim;

use bytes::{Buf, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::packet::{Packet, PacketType};

pub use frame::Frame;
pub use prim::MAX_REMAINING_LENGTH;

use frame::Span;

/// The result of decoding input that may hold only part of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole packet, and how many bytes of the input it took.
    Complete(T, usize),
    /// The input is a valid beginning of a packet; at least this many more bytes are
    /// needed before anything can be decoded.
    Incomplete(usize),
}

/// The largest packet 3.1.1 can express: 1 + 4 + 268 435 455 bytes.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + MAX_REMAINING_LENGTH;

/// The largest Remaining Length of a valid CONNECT: 327 695 bytes (§3.1).
///
/// The variable header is always 10 bytes (protocol name `MQTT` with its length prefix,
/// level, flags, keep alive), and the payload holds at most five fields of at most
/// 65 535 bytes, each behind a two-byte length prefix (client identifier, will topic,
/// will message, user name, password): 10 + 5 × (2 + 65 535) = 327 695. Anything longer
/// breaks a rule of CONNECT whatever its bytes, so a decoder refuses it with
/// [`DecodeError::ConnectTooLarge`] from the fixed header alone, before buffering it;
/// a peer that has not authenticated yet cannot make it hold more.
pub const MAX_CONNECT_REMAINING_LENGTH: usize = 10 + 5 * (2 + 65_535);

/// A decoder with limits. [`decode`] and [`decode_bytes`] use the default one, which
/// accepts every packet size 3.1.1 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    max_packet_size: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

/// What the fixed header says about the packet at the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The packet type.
    pub packet_type: PacketType,
    /// The flag nibble (checked for the type).
    pub flags: u8,
    /// Bytes taken by the fixed header itself (2–5).
    pub header_len: usize,
    /// The Remaining Length.
    pub remaining_length: usize,
}

impl FixedHeader {
    /// The size of the whole packet.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_length
    }
}

/// Checks the first byte: the packet type is not reserved and the flags are the ones
/// the type requires (MQTT-2.2.2-1, MQTT-2.2.2-2, MQTT-3.3.1-2, MQTT-3.3.1-4).
const fn check_first_byte(b: u8) -> Result<(PacketType, u8), DecodeError> {
    let Some(t) = PacketType::from_u8(b >> 4) else {
        return Err(DecodeError::ReservedPacketType);
    };
    let flags = b & 0x0F;
    match t.fixed_flags() {
        Some(f) if f != flags => Err(DecodeError::InvalidFlags {
            packet_type: t as u8,
            flags,
        }),
        Some(_) => Ok((t, flags)),
        None => {
            let qos = (flags >> 1) & 0x03;
            if qos == 3 {
                Err(DecodeError::PublishQos3)
            } else if qos == 0 && flags & 0x08 != 0 {
                Err(DecodeError::PublishDupWithQos0)
            } else {
                Ok((t, flags))
            }
        }
    }
}

/// [`FIRST_BYTE`]: a first byte [`check_first_byte`] refuses.
const REFUSED: u8 = 0xFF;
/// [`FIRST_BYTE`]: a packet type whose Remaining Length varies.
const VARIABLE: u8 = 0xFE;

/// For each first byte: [`REFUSED`], [`VARIABLE`], or the Remaining Length its packet
/// type always has (§3.x.1 of each). Built from [`check_first_byte`], so the two agree.
static FIRST_BYTE: [u8; 256] = {
    let mut t = [REFUSED; 256];
    let mut b = 0;
    while b < 256 {
        if let Ok((packet_type, _)) = check_first_byte(b as u8) {
            t[b] = match packet_type.fixed_remaining_length() {
                Some(n) => n as u8,
                None => VARIABLE,
            };
        }
        b += 1;
    }
    t
};

/// The packet type of a first byte that [`FIRST_BYTE`] accepts.
#[inline(always)]
fn packet_type_of(first: u8) -> PacketType {
    match PacketType::from_u8(first >> 4) {
        Some(t) => t,
        // Not reached: FIRST_BYTE refuses the reserved types.
        None => PacketType::Disconnect,
    }
}

impl Decoder {
    /// A decoder that accepts packets up to [`MAX_PACKET_SIZE`].
    pub const fn new() -> Self {
        Decoder {
            max_packet_size: MAX_PACKET_SIZE,
        }
    }

    /// The same decoder refusing packets (fixed header included) larger than `max`
    /// bytes with [`DecodeError::PacketTooLarge`], as soon as the header tells the size.
    /// A CONNECT longer than any valid one is refused with
    /// [`DecodeError::ConnectTooLarge`] whatever the limit (checked first).
    pub const fn with_max_packet_size(self, max: usize) -> Self {
        Decoder {
            max_packet_size: max,
        }
    }

    /// The largest packet this decoder accepts.
    pub const fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Reads and checks the fixed header at the start of `buf`.
    #[inline(always)]
    pub fn fixed_header(&self, buf: &[u8]) -> Result<Status<FixedHeader>, DecodeError> {
        let Some((&first, rest)) = buf.split_first() else {
            return Ok(Status::Incomplete(2));
        };
        // One table lookup checks the type and the flags and gives the fixed
        // Remaining Length, if any; a refused byte takes the slow path, which names
        // the error.
        let class = FIRST_BYTE[first as usize];
        if class == REFUSED {
            return Err(check_first_byte(first)
                .err()
                .unwrap_or(DecodeError::ReservedPacketType));
        }
        let (remaining_length, used) = match prim::remaining_length(rest)? {
            prim::Length::Done(v, used) => (v, used),
            prim::Length::Partial => return Ok(Status::Incomplete(1)),
        };
        if class != VARIABLE && usize::from(class) != remaining_length {
            return Err(DecodeError::InvalidRemainingLength);
        }
        if first == 0x10 && remaining_length > MAX_CONNECT_REMAINING_LENGTH {
            return Err(DecodeError::ConnectTooLarge);
        }
        let header = FixedHeader {
            packet_type: packet_type_of(first),
            flags: first & 0x0F,
            header_len: 1 + used,
            remaining_length,
        };
        if header.packet_len() > self.max_packet_size {
            return Err(DecodeError::PacketTooLarge);
        }
        Ok(Status::Complete(header, header.header_len))
    }

    /// Decodes one packet from the start of `buf`, borrowing its fields from `buf`.
    /// Bytes after the packet are left alone; `Complete` says how many were used.
    #[inline(always)]
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Status<Packet<&'a [u8]>>, DecodeError> {
        self.decode_with::<true>(buf)
    }

    /// [`decode`](Self::decode), with the CONNECT parser inlined or called (see
    /// `Packet::decode_body`).
    #[inline(always)]
    fn decode_with<'a, const INLINE_CONNECT: bool>(
        &self,
        buf: &'a [u8],
    ) -> Result<Status<Packet<&'a [u8]>>, DecodeError> {
        let h = match self.fixed_header(buf)? {
            Status::Complete(h, _) => h,
            Status::Incomplete(n) => return Ok(Status::Incomplete(n)),
        };
        let total = h.packet_len();
        if buf.len() < total {
            return Ok(Status::Incomplete(total - buf.len()));
        }
        let body = &buf[h.header_len..total];
        let packet = Packet::decode_body::<INLINE_CONNECT>(h.packet_type, h.flags, body)?;
        Ok(Status::Complete(packet, total))
    }

    /// Decodes one packet from the front of `buf` without copying: the packet's text
    /// fields and payload are [`Bytes`] that share `buf`'s memory. On `Complete` the
    /// packet's bytes are removed from `buf`; on `Incomplete` or an error `buf` is left
    /// as it was.
    ///
    /// Each field is its own [`Bytes`], so each costs a reference count;
    /// [`decode_frame`](Self::decode_frame) costs one per packet.
    #[inline]
    pub fn decode_bytes(&self, buf: &mut BytesMut) -> Result<Status<Packet<Bytes>>, DecodeError> {
        let (located, fields, total) = match self.locate(buf)? {
            Status::Complete(found, _) => found,
            Status::Incomplete(n) => return Ok(Status::Incomplete(n)),
        };
        if fields == 0 {
            // Nothing to share: skip the bytes without splitting the buffer.
            buf.advance(total);
            return Ok(Status::Complete(located.map(&mut |_| Bytes::new()), total));
        }
        let bytes = buf.split_to(total).freeze();
        Ok(Status::Complete(
            frame::share(bytes, located, fields),
            total,
        ))
    }

    /// Decodes one packet from the front of `buf` without copying, into a [`Frame`]
    /// that owns the packet's bytes through one reference count and lends the packet
    /// out. On `Complete` the packet's bytes are removed from `buf`; on `Incomplete` or
    /// an error `buf` is left as it was.
    #[inline]
    pub fn decode_frame(&self, buf: &mut BytesMut) -> Result<Status<Frame>, DecodeError> {
        let (located, fields, total) = match self.locate(buf)? {
            Status::Complete(found, _) => found,
            Status::Incomplete(n) => return Ok(Status::Incomplete(n)),
        };
        let bytes = if fields == 0 {
            // Nothing to share: skip the bytes without splitting the buffer.
            buf.advance(total);
            None
        } else {
            Some(buf.split_to(total).freeze())
        };
        Ok(Status::Complete(Frame::new(bytes, located, fields), total))
    }

    /// Decodes the packet at the start of `buf` and says where each of its fields lies
    /// (as spans from the start of `buf`), how many fields it has, and its size.
    #[inline(always)]
    fn locate(&self, buf: &[u8]) -> Result<Status<(Packet<Span>, u32, usize)>, DecodeError> {
        let base = buf.as_ptr() as usize;
        let mut fields = 0u32;
        Ok(match self.decode_with::<false>(buf)? {
            Status::Complete(p, total) => {
                let located = p.map(&mut |s: &[u8]| {
                    fields += 1;
                    Span::locate(base, s)
                });
                Status::Complete((located, fields, total), total)
            }
            Status::Incomplete(n) => Status::Incomplete(n),
        })
    }
}

/// Decodes one packet from the start of `buf` with the default [`Decoder`].
#[inline]
pub fn decode(buf: &[u8]) -> Result<Status<Packet<&[u8]>>, DecodeError> {
    Decoder::new().decode(buf)
}

/// Decodes one packet from the front of `buf`, zero-copy, with the default [`Decoder`].
#[inline]
pub fn decode_bytes(buf: &mut BytesMut) -> Result<Status<Packet<Bytes>>, DecodeError> {
    Decoder::new().decode_bytes(buf)
}

/// Decodes one packet from the front of `buf` into a [`Frame`], zero-copy, with the
/// default [`Decoder`].
#[inline]
pub fn decode_frame(buf: &mut BytesMut) -> Result<Status<Frame>, DecodeError> {
    Decoder::new().decode_frame(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{ConnAck, Connect, Login, Publish, QosPid, SubAck, SubAckCode, Subscribe};
    use crate::packet::{Unsubscribe, Will};
    use crate::types::{Binary, MqttString, PacketId, QoS, TopicFilter, TopicName};
    use alloc::vec::Vec;

    fn id(v: u16) -> PacketId {
        PacketId::new(v).unwrap()
    }

    fn samples() -> Vec<Packet<Bytes>> {
        let topic = TopicName::from_static("a/b").unwrap();
        let filter = TopicFilter::from_static("a/+").unwrap();
        let connect = |will: bool, password: bool| {
            Packet::Connect(Connect {
                client_id: MqttString::from_static("c1").unwrap(),
                clean_session: true,
                keep_alive: 30,
                will: will.then(|| Will {
                    topic: topic.clone(),
                    message: Binary::new(Bytes::from_static(b"gone")).unwrap(),
                    qos: QoS::AtLeastOnce,
                    retain: false,
                }),
                login: Some(Login {
                    username: MqttString::from_static("u").unwrap(),
                    password: password.then(|| Binary::new(Bytes::from_static(b"pw")).unwrap()),
                }),
            })
        };
        alloc::vec![
            connect(true, true),
            connect(false, false),
            Packet::ConnAck(ConnAck::Accepted {
                session_present: true,
            }),
            Packet::Publish(Publish::new(topic.clone(), QosPid::AtMostOnce, &b"x"[..])),
            Packet::Publish(Publish::new(
                topic.clone(),
                QosPid::ExactlyOnce(id(9)),
                Bytes::new()
            )),
            Packet::PubAck(id(1)),
            Packet::PubRel(id(2)),
            Packet::Subscribe(
                Subscribe::new(id(3), &[(filter.clone(), QoS::AtLeastOnce)]).unwrap()
            ),
            Packet::SubAck(SubAck::new(id(3), [SubAckCode::Failure]).unwrap()),
            Packet::Unsubscribe(Unsubscribe::new(id(4), [&filter]).unwrap()),
            Packet::UnsubAck(id(4)),
            Packet::PingReq,
            Packet::PingResp,
            Packet::Disconnect,
        ]
    }

    #[test]
    fn the_largest_valid_connect_has_the_documented_remaining_length_and_one_more_is_refused() {
        let field = Bytes::from(alloc::vec![b'a'; 65_535]);
        let largest = Packet::Connect(Connect {
            client_id: MqttString::new(field.clone()).unwrap(),
            clean_session: true,
            keep_alive: 60,
            will: Some(Will {
                topic: TopicName::new(field.clone()).unwrap(),
                message: Binary::new(field.clone()).unwrap(),
                qos: QoS::AtMostOnce,
                retain: false,
            }),
            login: Some(Login {
                username: MqttString::new(field.clone()).unwrap(),
                password: Some(Binary::new(field).unwrap()),
            }),
        });
        let wire = largest.to_bytes().unwrap();
        let Ok(Status::Complete(h, _)) = Decoder::new().fixed_header(&wire) else {
            panic!("a valid header");
        };
        assert_eq!(h.remaining_length, MAX_CONNECT_REMAINING_LENGTH);
        assert_eq!(MAX_CONNECT_REMAINING_LENGTH, 327_695);
        assert!(matches!(decode(&wire), Ok(Status::Complete(_, n)) if n == wire.len()));
        // The header of one byte more is refused before any of the body arrives, even
        // by a decoder whose size limit would allow it; a smaller limit is not reached.
        let header = [0x10, 0x90, 0x80, 0x14];
        let generous = Decoder::new().with_max_packet_size(1 << 20);
        assert_eq!(generous.decode(&header), Err(DecodeError::ConnectTooLarge));
        let mut buf = BytesMut::from(&header[..]);
        assert_eq!(decode_frame(&mut buf), Err(DecodeError::ConnectTooLarge));
        assert_eq!(&buf[..], &header);
        // Other packet types may be that long.
        assert!(matches!(
            decode(&[0x30, 0x90, 0x80, 0x14]),
            Ok(Status::Incomplete(_))
        ));
    }

    #[test]
    fn zero_copy_decoding_gives_the_borrowed_packet_and_leaves_the_next_one_in_place() {
        for p in samples() {
            let bytes = p.to_bytes().unwrap();
            let mut wire = bytes.to_vec();
            wire.extend_from_slice(&[0xC0, 0x00]);
            let borrowed = match decode(&wire).unwrap() {
                Status::Complete(b, used) => {
                    assert_eq!(used, bytes.len());
                    b.to_owned()
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(borrowed, p);
            let mut buf = BytesMut::from(&wire[..]);
            match decode_bytes(&mut buf).unwrap() {
                Status::Complete(shared, used) => {
                    assert_eq!(used, bytes.len());
                    assert_eq!(shared, p, "{:?}", p.packet_type());
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(&buf[..], &[0xC0, 0x00], "{:?}", p.packet_type());
        }
    }

    #[test]
    fn zero_copy_decoding_of_a_prefix_leaves_the_buffer_as_it_was() {
        for p in samples() {
            let bytes = p.to_bytes().unwrap();
            let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
            assert!(matches!(decode_bytes(&mut buf), Ok(Status::Incomplete(1))));
            assert_eq!(&buf[..], &bytes[..bytes.len() - 1]);
        }
    }

    #[test]
    fn a_frame_lends_the_borrowed_packet_and_shares_its_fields() {
        for p in samples() {
            let bytes = p.to_bytes().unwrap();
            let mut wire = bytes.to_vec();
            wire.extend_from_slice(&[0xC0, 0x00]);
            let mut buf = BytesMut::from(&wire[..]);
            let frame = match decode_frame(&mut buf).unwrap() {
                Status::Complete(f, used) => {
                    assert_eq!(used, bytes.len());
                    f
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(&buf[..], &[0xC0, 0x00], "{:?}", p.packet_type());
            assert_eq!(frame.packet_type(), p.packet_type());
            let borrowed = match decode(&wire).unwrap() {
                Status::Complete(b, _) => b,
                other => panic!("{other:?}"),
            };
            let lent = frame.packet();
            assert_eq!(lent, borrowed);
            // Every field the frame lends can be shared, and shares the frame's memory.
            let mut shared = 0;
            let _ = lent.clone().map(&mut |field: &[u8]| {
                let own = frame.share(field).expect("a field of the frame");
                assert_eq!(&own[..], field);
                if !field.is_empty() {
                    assert_eq!(own.as_ptr(), field.as_ptr());
                }
                shared += 1;
            });
            // A slice from elsewhere is refused.
            if shared > 0 {
                assert_eq!(frame.share(&wire[..1]), None);
            }
            assert_eq!(frame.clone(), frame);
            assert_eq!(frame.into_packet(), p);
        }
    }

    #[test]
    fn a_frame_outlives_the_buffer_it_was_split_from() {
        let p = &samples()[3];
        let mut buf = BytesMut::from(&p.to_bytes().unwrap()[..]);
        let Status::Complete(frame, _) = decode_frame(&mut buf).unwrap() else {
            panic!("whole packet");
        };
        drop(buf);
        let payload = match frame.packet() {
            Packet::Publish(publish) => frame.share(publish.payload).unwrap(),
            other => panic!("{other:?}"),
        };
        drop(frame);
        assert_eq!(&payload[..], b"x");
    }

    #[test]
    fn frame_decoding_of_a_prefix_or_bad_input_leaves_the_buffer_as_it_was() {
        for p in samples() {
            let bytes = p.to_bytes().unwrap();
            let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
            assert!(matches!(decode_frame(&mut buf), Ok(Status::Incomplete(1))));
            assert_eq!(&buf[..], &bytes[..bytes.len() - 1]);
        }
        let mut buf = BytesMut::from(&[0x36, 0x00][..]);
        assert_eq!(decode_frame(&mut buf), Err(DecodeError::PublishQos3));
        assert_eq!(&buf[..], &[0x36, 0x00]);
    }
}
