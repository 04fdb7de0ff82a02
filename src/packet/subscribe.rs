//! SUBSCRIBE (§3.8), SUBACK (§3.9) and UNSUBSCRIBE (§3.10).
//!
//! ```text
//! 82 RL  packet id  { filter (str)  requested QoS (u8) }+
//! 90 RL  packet id  { return code (u8) }+            00, 01, 02 or 80
//! A2 RL  packet id  { filter (str) }+
//! ```
//!
//! The lists are kept as their validated wire bytes: decoding one allocates nothing,
//! and iterating reads the entries in place.

use bytes::{BufMut, Bytes, BytesMut};

use super::EncodeBuf;
use crate::codec::prim;
use crate::error::DecodeError;
use crate::types::{PacketId, QoS, TopicFilter, check_topic_filter};

/// A SUBSCRIBE packet: one or more topic filters, each with a requested QoS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe<B> {
    /// The packet identifier, echoed by the SUBACK.
    pub packet_id: PacketId,
    filters: B,
}

/// A SUBACK packet: one return code per filter of the SUBSCRIBE, in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck<B> {
    /// The packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    codes: B,
}

/// An UNSUBSCRIBE packet: one or more topic filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe<B> {
    /// The packet identifier, echoed by the UNSUBACK.
    pub packet_id: PacketId,
    filters: B,
}

/// One SUBACK return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum SubAckCode {
    /// The subscription was accepted with this maximum QoS.
    Granted(QoS),
    /// 0x80: the subscription was refused.
    Failure,
}

impl SubAckCode {
    /// The wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            SubAckCode::Granted(q) => q as u8,
            SubAckCode::Failure => 0x80,
        }
    }

    /// The code for a wire value; `None` for reserved values.
    pub const fn from_u8(v: u8) -> Option<SubAckCode> {
        match v {
            0x80 => Some(SubAckCode::Failure),
            _ => match QoS::from_u8(v) {
                Some(q) => Some(SubAckCode::Granted(q)),
                None => None,
            },
        }
    }
}

/// Iterates over validated `(filter, QoS byte)` or `filter` entries.
#[derive(Debug, Clone)]
pub struct FilterIter<'a> {
    rest: &'a [u8],
    with_qos: bool,
}

impl<'a> Iterator for FilterIter<'a> {
    type Item = (TopicFilter<&'a [u8]>, QoS);

    fn next(&mut self) -> Option<Self::Item> {
        // The bytes were validated when the packet was built or decoded.
        let (rest, filter) = prim::prefixed(self.rest).ok()?;
        let (rest, qos) = if self.with_qos {
            let (rest, q) = prim::u8_(rest).ok()?;
            (rest, QoS::from_u8(q)?)
        } else {
            (rest, QoS::AtMostOnce)
        };
        self.rest = rest;
        Some((TopicFilter(filter), qos))
    }
}

/// Checks a filter list and returns the number of entries.
fn check_filters(mut i: &[u8], with_qos: bool) -> Result<usize, DecodeError> {
    let mut n = 0;
    while !i.is_empty() {
        let (rest, filter) = prim::prefixed(i)?;
        check_topic_filter(filter)?;
        i = rest;
        if with_qos {
            let (rest, q) = prim::u8_(i)?;
            if q > 2 {
                return Err(DecodeError::InvalidSubscribeQos(q));
            }
            i = rest;
        }
        n += 1;
    }
    Ok(n)
}

fn encode_filters<'f, F: AsRef<[u8]> + 'f>(
    filters: impl IntoIterator<Item = (&'f TopicFilter<F>, Option<QoS>)>,
) -> Bytes {
    let mut buf = BytesMut::new();
    for (f, q) in filters {
        prim::put_prefixed(&mut buf, f.as_bytes());
        if let Some(q) = q {
            buf.put_u8(q.as_u8());
        }
    }
    buf.freeze()
}

macro_rules! list_common {
    ($name:ident, $field:ident) => {
        impl<B> $name<B> {
            #[inline]
            pub(crate) fn map<C>(self, f: &mut impl FnMut(B) -> C) -> $name<C> {
                $name {
                    packet_id: self.packet_id,
                    $field: f(self.$field),
                }
            }
        }

        impl<B: AsRef<[u8]>> $name<B> {
            pub(crate) fn remaining_length(&self) -> usize {
                2 + self.$field.as_ref().len()
            }

            /// Writes the packet: fixed header and packet identifier in one write, then
            /// the list.
            #[inline]
            pub(crate) fn encode<W: EncodeBuf>(&self, buf: &mut W, first: u8, rl: usize) {
                prim::put_fixed_header_u16(buf, first, rl, self.packet_id.get());
                buf.put_slice(self.$field.as_ref());
            }
        }
    };
}

list_common!(Subscribe, filters);
list_common!(Unsubscribe, filters);
list_common!(SubAck, codes);

impl Subscribe<Bytes> {
    /// A SUBSCRIBE for `filters`; fails with [`DecodeError::EmptySubscribe`] if there is
    /// none (MQTT-3.8.3-3).
    pub fn new<'f, F: AsRef<[u8]> + 'f>(
        packet_id: PacketId,
        filters: impl IntoIterator<Item = &'f (TopicFilter<F>, QoS)>,
    ) -> Result<Self, DecodeError> {
        let filters = encode_filters(filters.into_iter().map(|(f, q)| (f, Some(*q))));
        if filters.is_empty() {
            return Err(DecodeError::EmptySubscribe);
        }
        Ok(Subscribe { packet_id, filters })
    }
}

impl Unsubscribe<Bytes> {
    /// An UNSUBSCRIBE for `filters`; fails with [`DecodeError::EmptyUnsubscribe`] if
    /// there is none (MQTT-3.10.3-2).
    pub fn new<'f, F: AsRef<[u8]> + 'f>(
        packet_id: PacketId,
        filters: impl IntoIterator<Item = &'f TopicFilter<F>>,
    ) -> Result<Self, DecodeError> {
        let filters = encode_filters(filters.into_iter().map(|f| (f, None)));
        if filters.is_empty() {
            return Err(DecodeError::EmptyUnsubscribe);
        }
        Ok(Unsubscribe { packet_id, filters })
    }
}

impl SubAck<Bytes> {
    /// A SUBACK with `codes`; fails with [`DecodeError::EmptySubAck`] if there is none.
    pub fn new(
        packet_id: PacketId,
        codes: impl IntoIterator<Item = SubAckCode>,
    ) -> Result<Self, DecodeError> {
        let codes: Bytes = codes.into_iter().map(SubAckCode::as_u8).collect();
        if codes.is_empty() {
            return Err(DecodeError::EmptySubAck);
        }
        Ok(SubAck { packet_id, codes })
    }
}

impl<B: AsRef<[u8]>> Subscribe<B> {
    /// The filters with their requested QoS, in packet order.
    pub fn filters(&self) -> FilterIter<'_> {
        FilterIter {
            rest: self.filters.as_ref(),
            with_qos: true,
        }
    }
}

impl<B: AsRef<[u8]>> Unsubscribe<B> {
    /// The filters, in packet order.
    pub fn filters(&self) -> impl Iterator<Item = TopicFilter<&[u8]>> + '_ {
        FilterIter {
            rest: self.filters.as_ref(),
            with_qos: false,
        }
        .map(|(f, _)| f)
    }
}

impl Subscribe<Bytes> {
    /// The filters with their requested QoS, each filter sharing this packet's memory.
    pub fn filters_shared(&self) -> impl Iterator<Item = (TopicFilter<Bytes>, QoS)> + '_ {
        self.filters()
            .map(|(f, q)| (TopicFilter(self.filters.slice_ref(f.0)), q))
    }
}

impl Unsubscribe<Bytes> {
    /// The filters, each sharing this packet's memory.
    pub fn filters_shared(&self) -> impl Iterator<Item = TopicFilter<Bytes>> + '_ {
        self.filters()
            .map(|f| TopicFilter(self.filters.slice_ref(f.0)))
    }
}

impl<B: AsRef<[u8]>> SubAck<B> {
    /// The return codes, in packet order.
    pub fn codes(&self) -> impl ExactSizeIterator<Item = SubAckCode> + '_ {
        self.codes
            .as_ref()
            .iter()
            .map(|&c| SubAckCode::from_u8(c).unwrap_or(SubAckCode::Failure))
    }
}

impl<'a> Subscribe<&'a [u8]> {
    pub(crate) fn decode_body(i: &'a [u8]) -> Result<Self, DecodeError> {
        let (filters, packet_id) = prim::packet_id(i)?;
        if check_filters(filters, true)? == 0 {
            return Err(DecodeError::EmptySubscribe);
        }
        Ok(Subscribe { packet_id, filters })
    }
}

impl<'a> Unsubscribe<&'a [u8]> {
    pub(crate) fn decode_body(i: &'a [u8]) -> Result<Self, DecodeError> {
        let (filters, packet_id) = prim::packet_id(i)?;
        if check_filters(filters, false)? == 0 {
            return Err(DecodeError::EmptyUnsubscribe);
        }
        Ok(Unsubscribe { packet_id, filters })
    }
}

impl<'a> SubAck<&'a [u8]> {
    pub(crate) fn decode_body(i: &'a [u8]) -> Result<Self, DecodeError> {
        let (codes, packet_id) = prim::packet_id(i)?;
        if codes.is_empty() {
            return Err(DecodeError::EmptySubAck);
        }
        if let Some(&c) = codes.iter().find(|&&c| SubAckCode::from_u8(c).is_none()) {
            return Err(DecodeError::InvalidSubAckCode(c));
        }
        Ok(SubAck { packet_id, codes })
    }
}
