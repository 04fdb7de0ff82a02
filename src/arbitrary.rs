//! `arbitrary::Arbitrary` for the packet types (feature `arbitrary`).
//!
//! Every value produced is valid, so it encodes without error and decodes back to
//! itself: text is well-formed UTF-8 without U+0000 and at most 65 535 bytes, topic
//! names are non-empty and wildcard-free, topic filters put each wildcard on a level of
//! its own (`#` only last), SUBSCRIBE, UNSUBSCRIBE and SUBACK lists are non-empty, DUP is
//! set only at QoS 1 and 2, and every packet stays below the 268 435 455-byte Remaining
//! Length limit.
//!
//! Now and then a field is made long from a few input bytes (a length and a fill
//! character), so that short fuzz inputs still reach the two-, three- and four-byte
//! Remaining Length encodings and the 65 535-byte field limit.

use alloc::string::String;
use alloc::vec::Vec;

use arbitrary::{Arbitrary, Error, Result, Unstructured};
use bytes::Bytes;

use crate::packet::{
    ConnAck, Connect, Login, Packet, Publish, QosPid, SubAck, SubAckCode, Subscribe, Unsubscribe,
    Will,
};
use crate::types::{Binary, MqttString, PacketId, QoS, TopicFilter, TopicName};

/// The longest text or binary field (a two-byte length prefix).
const MAX_FIELD: usize = u16::MAX as usize;

/// The longest PUBLISH payload produced: past 2 097 151 bytes of Remaining Length the
/// fixed header needs four length bytes.
const MAX_PAYLOAD: usize = 2_097_152 + 64;

/// The most entries in a SUBSCRIBE, UNSUBSCRIBE or SUBACK list.
const MAX_LIST: usize = 64;

/// The most levels in a generated topic filter.
const MAX_LEVELS: usize = 12;

/// Characters used to fill long text fields, of 1 to 4 bytes in UTF-8. None is NUL, a
/// wildcard or a level separator, so a run of them is a valid name level.
const FILL: [char; 6] = ['a', 'Z', '0', 'é', '€', '𝄞'];

/// A long run of one character, at most `max` bytes, or `None` most of the time.
fn long_text(u: &mut Unstructured<'_>, max: usize) -> Result<Option<String>> {
    if !u.ratio(1u8, 32u8)? {
        return Ok(None);
    }
    let c = *u.choose(&FILL)?;
    let n = u.int_in_range(0..=max / c.len_utf8())?;
    Ok(Some(core::iter::repeat_n(c, n).collect()))
}

/// Text of at most `max` bytes whose characters all satisfy `keep`.
fn text(u: &mut Unstructured<'_>, max: usize, keep: impl Fn(char) -> bool) -> Result<String> {
    if let Some(s) = long_text(u, max)? {
        return Ok(s);
    }
    let raw = <&str>::arbitrary(u)?;
    let mut out = String::with_capacity(raw.len().min(max));
    for c in raw.chars().filter(|&c| c != '\0' && keep(c)) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    Ok(out)
}

/// Bytes of at most `max` length: mostly taken from the input, sometimes a long run.
fn binary(u: &mut Unstructured<'_>, max: usize) -> Result<Vec<u8>> {
    if u.ratio(1u8, 32u8)? {
        let fill = u8::arbitrary(u)?;
        let n = u.int_in_range(0..=max)?;
        return Ok(alloc::vec![fill; n]);
    }
    let raw = <&[u8]>::arbitrary(u)?;
    Ok(raw[..raw.len().min(max)].to_vec())
}

/// Wraps bytes that the generator built to be valid; a failure here is a bug in this
/// module, reported to the fuzzer as unusable input rather than a panic.
fn valid<T>(r: core::result::Result<T, crate::error::DecodeError>) -> Result<T> {
    r.map_err(|_| Error::IncorrectFormat)
}

/// A topic name of at most `max` bytes.
fn topic_name(u: &mut Unstructured<'_>, max: usize) -> Result<TopicName<Bytes>> {
    let mut s = text(u, max, |c| c != '+' && c != '#')?;
    if s.is_empty() {
        s.push(*u.choose(&['a', '/', '$'])?);
    }
    valid(TopicName::new(Bytes::from(s)))
}

/// A topic filter of at most `max` bytes.
fn topic_filter(u: &mut Unstructured<'_>, max: usize) -> Result<TopicFilter<Bytes>> {
    let levels = u.int_in_range(1..=MAX_LEVELS)?;
    let mut s = String::new();
    for i in 0..levels {
        let last = i + 1 == levels;
        // Room left for this level once its separator is written.
        let room = max.saturating_sub(s.len() + usize::from(i > 0));
        if room == 0 {
            break;
        }
        if i > 0 {
            s.push('/');
        }
        match u.int_in_range(0u8..=5)? {
            0 => s.push('+'),
            1 if last => s.push('#'),
            _ => s.push_str(&text(u, room, |c| c != '+' && c != '#' && c != '/')?),
        }
    }
    if s.is_empty() {
        s.push('#');
    }
    valid(TopicFilter::new(Bytes::from(s)))
}

/// A list length of 1 to [`MAX_LIST`].
fn list_len(u: &mut Unstructured<'_>) -> Result<usize> {
    let mut n = 1;
    while n < MAX_LIST && u.arbitrary::<bool>()? {
        n += 1;
    }
    Ok(n)
}

impl<'a> Arbitrary<'a> for MqttString<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        valid(MqttString::new(Bytes::from(text(u, MAX_FIELD, |_| true)?)))
    }
}

impl<'a> Arbitrary<'a> for TopicName<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        topic_name(u, MAX_FIELD)
    }
}

impl<'a> Arbitrary<'a> for TopicFilter<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        topic_filter(u, MAX_FIELD)
    }
}

impl<'a> Arbitrary<'a> for Binary<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        valid(Binary::new(Bytes::from(binary(u, MAX_FIELD)?)))
    }
}

impl<'a> Arbitrary<'a> for Will<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Will {
            topic: u.arbitrary()?,
            message: u.arbitrary()?,
            qos: u.arbitrary()?,
            retain: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Login<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Login {
            username: u.arbitrary()?,
            password: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Connect<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Connect {
            client_id: u.arbitrary()?,
            clean_session: u.arbitrary()?,
            keep_alive: u.arbitrary()?,
            will: u.arbitrary()?,
            login: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for Publish<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let qos: QosPid = u.arbitrary()?;
        // DUP is only allowed at QoS 1 and 2 (MQTT-3.3.1-2).
        let dup = qos != QosPid::AtMostOnce && u.arbitrary()?;
        Ok(Publish {
            dup,
            qos,
            retain: u.arbitrary()?,
            topic: u.arbitrary()?,
            payload: Bytes::from(binary(u, MAX_PAYLOAD)?),
        })
    }
}

impl<'a> Arbitrary<'a> for Subscribe<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let packet_id: PacketId = u.arbitrary()?;
        let n = list_len(u)?;
        let mut filters = Vec::with_capacity(n);
        for _ in 0..n {
            filters.push((u.arbitrary::<TopicFilter<Bytes>>()?, u.arbitrary::<QoS>()?));
        }
        valid(Subscribe::new(packet_id, &filters))
    }
}

impl<'a> Arbitrary<'a> for Unsubscribe<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let packet_id: PacketId = u.arbitrary()?;
        let n = list_len(u)?;
        let mut filters = Vec::with_capacity(n);
        for _ in 0..n {
            filters.push(u.arbitrary::<TopicFilter<Bytes>>()?);
        }
        valid(Unsubscribe::new(packet_id, &filters))
    }
}

impl<'a> Arbitrary<'a> for SubAck<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let packet_id: PacketId = u.arbitrary()?;
        let n = list_len(u)?;
        let mut codes = Vec::with_capacity(n);
        for _ in 0..n {
            codes.push(u.arbitrary::<SubAckCode>()?);
        }
        valid(SubAck::new(packet_id, codes))
    }
}

impl<'a> Arbitrary<'a> for Packet<Bytes> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u.int_in_range(1u8..=14)? {
            1 => Packet::Connect(u.arbitrary()?),
            2 => Packet::ConnAck(u.arbitrary::<ConnAck>()?),
            3 => Packet::Publish(u.arbitrary()?),
            4 => Packet::PubAck(u.arbitrary()?),
            5 => Packet::PubRec(u.arbitrary()?),
            6 => Packet::PubRel(u.arbitrary()?),
            7 => Packet::PubComp(u.arbitrary()?),
            8 => Packet::Subscribe(u.arbitrary()?),
            9 => Packet::SubAck(u.arbitrary()?),
            10 => Packet::Unsubscribe(u.arbitrary()?),
            11 => Packet::UnsubAck(u.arbitrary()?),
            12 => Packet::PingReq,
            13 => Packet::PingResp,
            _ => Packet::Disconnect,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Status, decode};
    use bytes::BytesMut;

    /// A deterministic byte stream (xorshift), standing in for fuzzer input.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn arbitrary_packets_are_valid_and_cover_every_type() {
        let mut seen = [false; 15];
        for seed in 0..3000u64 {
            let data = noise(seed, 256 + (seed as usize % 512));
            let mut u = Unstructured::new(&data);
            let p = Packet::<Bytes>::arbitrary(&mut u).expect("generator refused its input");
            seen[p.packet_type() as usize] = true;
            let mut buf = BytesMut::new();
            p.encode(&mut buf).expect("an arbitrary packet encodes");
            match decode(&buf) {
                Ok(Status::Complete(q, used)) => {
                    assert_eq!(used, buf.len());
                    assert_eq!(q.to_owned(), p);
                }
                other => panic!("{p:?} decoded to {other:?}"),
            }
        }
        assert!(seen[1..].iter().all(|&s| s), "types seen: {seen:?}");
    }

    #[test]
    fn arbitrary_filters_keep_wildcards_on_whole_levels() {
        for seed in 0..2000u64 {
            let data = noise(seed, 64);
            let mut u = Unstructured::new(&data);
            let f = topic_filter(&mut u, 40).expect("filter");
            assert!(f.len() <= 40, "{f:?}");
            assert!(TopicFilter::new(f.as_bytes()).is_ok(), "{f:?}");
        }
    }
}
