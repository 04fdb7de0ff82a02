//! [`Frame`]: one decoded packet that owns its bytes through a single reference count.

use bytes::Bytes;

use crate::packet::{Packet, PacketType};

/// Where a field lies in its frame: a byte range, at most [`MAX_PACKET_SIZE`] long, so
/// that `u32` holds it.
///
/// [`MAX_PACKET_SIZE`]: crate::codec::MAX_PACKET_SIZE
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span of `field`, a sub-slice of the buffer that starts at address `base`.
    /// Packets are at most [`MAX_PACKET_SIZE`](crate::codec::MAX_PACKET_SIZE) bytes,
    /// so the offsets fit in `u32`; the decoder checks the size before any field is
    /// located.
    #[inline]
    pub(crate) fn locate(base: usize, field: &[u8]) -> Span {
        let start = (field.as_ptr() as usize).wrapping_sub(base);
        Span {
            start: start as u32,
            end: start.wrapping_add(field.len()) as u32,
        }
    }

    #[inline]
    fn range(self) -> core::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One whole packet that owns its bytes: the zero-copy decode that costs a single
/// reference count per packet, made by [`Decoder::decode_frame`].
///
/// The frame keeps the packet's bytes as one [`Bytes`] and where each field lies in
/// them. [`packet`](Self::packet) lends the packet out, borrowing from the frame, at
/// no cost beyond a few bounds checks; [`share`](Self::share) turns any field into a
/// [`Bytes`] of its own (one more reference count, no copy); and
/// [`into_packet`](Self::into_packet) gives the packet with every field its own
/// [`Bytes`], as [`Decoder::decode_bytes`] does.
///
/// A frame is `Send`, `Sync` and `'static`: it can be queued or moved to another task,
/// and it keeps the memory of its packet (and nothing after it) alive.
///
/// ```
/// use bytes::BytesMut;
/// use mqtt_sansio::{Decoder, Packet, Status};
///
/// // A QoS 0 PUBLISH to "a/b" with payload "hi", then the start of the next packet.
/// let mut buf = BytesMut::from(&[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i', 0xC0][..]);
/// let Status::Complete(frame, used) = Decoder::new().decode_frame(&mut buf)? else {
///     panic!("a whole packet is there");
/// };
/// assert_eq!((used, &buf[..]), (9, &[0xC0][..]));
/// let Packet::Publish(p) = frame.packet() else { panic!("a PUBLISH") };
/// assert_eq!(p.topic.as_str(), "a/b");
/// // Keep the payload past the frame without copying it.
/// let payload = frame.share(p.payload).expect("the payload lies in the frame");
/// drop(frame);
/// assert_eq!(&payload[..], b"hi");
/// # Ok::<(), mqtt_sansio::DecodeError>(())
/// ```
///
/// [`Decoder::decode_frame`]: crate::Decoder::decode_frame
/// [`Decoder::decode_bytes`]: crate::Decoder::decode_bytes
#[derive(Debug, Clone)]
pub struct Frame {
    /// The packet's bytes. `None` for the packets that have no variable-length field
    /// (acknowledgements, PINGREQ, PINGRESP, DISCONNECT, CONNACK): their values are
    /// all in `packet`, and keeping nothing saves the reference count.
    bytes: Option<Bytes>,
    packet: Packet<Span>,
    /// How many spans `packet` holds.
    fields: u32,
}

impl Frame {
    /// Builds a frame from a packet decoded out of `bytes`, its fields located as spans
    /// of `bytes`.
    #[inline]
    pub(crate) fn new(bytes: Option<Bytes>, packet: Packet<Span>, fields: u32) -> Frame {
        Frame {
            bytes,
            packet,
            fields,
        }
    }

    /// The kind of packet.
    #[inline]
    pub fn packet_type(&self) -> PacketType {
        self.packet.packet_type()
    }

    /// The packet, its fields borrowed from the frame.
    #[inline]
    pub fn packet(&self) -> Packet<&[u8]> {
        let bytes = self.bytes.as_deref().unwrap_or_default();
        // Every span was located inside `bytes` when the frame was made; `get` keeps a
        // broken invariant from panicking.
        self.packet
            .clone()
            .map(&mut |s: Span| bytes.get(s.range()).unwrap_or_default())
    }

    /// A [`Bytes`] of its own for `field`, one of the slices [`packet`](Self::packet)
    /// lent out (a topic, a payload, a client identifier, ...), sharing the frame's
    /// memory. `None` if `field` does not lie inside the frame; an empty `field` gives
    /// an empty [`Bytes`].
    #[inline]
    pub fn share(&self, field: &[u8]) -> Option<Bytes> {
        if field.is_empty() {
            return Some(Bytes::new());
        }
        let bytes = self.bytes.as_ref()?;
        let start = (field.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize)?;
        let end = start.checked_add(field.len())?;
        (end <= bytes.len()).then(|| bytes.slice(start..end))
    }

    /// The packet with every field a [`Bytes`] of its own, sharing the frame's memory:
    /// what [`Decoder::decode_bytes`](crate::Decoder::decode_bytes) returns. Costs one
    /// reference count per field but the last, which takes the frame's own.
    #[inline]
    pub fn into_packet(self) -> Packet<Bytes> {
        share(self.bytes.unwrap_or_default(), self.packet, self.fields)
    }
}

/// `packet`, whose `fields` spans lie in `bytes`, with every span made a [`Bytes`]
/// sharing `bytes`. The last field takes `bytes` itself, which saves a reference count
/// increment and decrement.
#[inline]
pub(crate) fn share(bytes: Bytes, packet: Packet<Span>, mut fields: u32) -> Packet<Bytes> {
    let mut frame = Some(bytes);
    packet.map(&mut |s: Span| {
        fields = fields.saturating_sub(1);
        let r = s.range();
        // Every span was located inside `bytes`; the guard only keeps a broken
        // invariant from panicking.
        let Some(f) = frame.as_ref() else {
            return Bytes::new();
        };
        if r.start > r.end || r.end > f.len() {
            return Bytes::new();
        }
        if fields > 0 {
            return f.slice(r);
        }
        let mut last = frame.take().unwrap_or_default();
        last.truncate(r.end);
        bytes::Buf::advance(&mut last, r.start);
        last
    })
}

impl PartialEq for Frame {
    /// Frames are equal when their packets are.
    fn eq(&self, other: &Frame) -> bool {
        self.packet() == other.packet()
    }
}

impl Eq for Frame {}
