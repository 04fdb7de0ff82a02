//! Wire primitives: big-endian integers, length-prefixed fields, the Remaining Length.
//!
//! Fields inside a packet are parsed with nom's `complete` parsers: the frame is whole
//! by the time a body is parsed, so running out of bytes inside it is malformed input,
//! never "incomplete".

#[cfg(test)]
use bytes::{BufMut, BytesMut};

use crate::packet::EncodeBuf;
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::be_u16;

use crate::error::DecodeError;
use crate::types::PacketId;

/// Largest Remaining Length that four bytes can carry (§2.2.3).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

type NomErr<'a> = nom::Err<nom::error::Error<&'a [u8]>>;

fn end(_: NomErr<'_>) -> DecodeError {
    DecodeError::UnexpectedEnd
}

/// One byte.
#[inline(always)]
pub(crate) fn u8_(i: &[u8]) -> Result<(&[u8], u8), DecodeError> {
    // Split directly: nom's parser measured as an out-of-line call per field.
    match i.split_first() {
        Some((&b, rest)) => Ok((rest, b)),
        None => Err(DecodeError::UnexpectedEnd),
    }
}

/// A big-endian u16.
#[inline(always)]
pub(crate) fn u16_(i: &[u8]) -> Result<(&[u8], u16), DecodeError> {
    match i.split_first_chunk::<2>() {
        Some((b, rest)) => Ok((rest, u16::from_be_bytes(*b))),
        None => Err(DecodeError::UnexpectedEnd),
    }
}

/// A field with a two-byte length prefix.
#[inline(always)]
pub(crate) fn prefixed(i: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    // Fast path, when the whole field is there: split it off directly (measured: about
    // a fifth of the instructions of the nom parse, which is most of a CONNECT's).
    if let Some((len, rest)) = i.split_first_chunk::<2>() {
        if let Some((field, rest)) = rest.split_at_checked(u16::from_be_bytes(*len).into()) {
            return Ok((rest, field));
        }
    }
    // Otherwise nom parses it and says what is missing. `be_u16` then `take`, rather
    // than `length_data`: the same parse without the `flat_map` machinery.
    let (i, n) = be_u16(i).map_err(end)?;
    take(n).parse(i).map_err(end)
}

/// A non-zero packet identifier.
#[inline(always)]
pub(crate) fn packet_id(i: &[u8]) -> Result<(&[u8], PacketId), DecodeError> {
    let (i, v) = u16_(i)?;
    Ok((i, PacketId::new(v).ok_or(DecodeError::ZeroPacketId)?))
}

/// The outcome of reading a Remaining Length from the start of `buf`.
pub(crate) enum Length {
    /// The value and how many bytes encoded it.
    Done(usize, usize),
    /// The field is not complete yet.
    Partial,
}

/// Reads a Remaining Length: base-128 groups, least significant first, at most four
/// bytes (§2.2.3, with the Errata 01 correction of the bound check).
#[inline]
pub(crate) fn remaining_length(buf: &[u8]) -> Result<Length, DecodeError> {
    let mut value = 0usize;
    for (i, &b) in buf.iter().take(4).enumerate() {
        value |= ((b & 0x7F) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Length::Done(value, i + 1));
        }
    }
    if buf.len() >= 4 {
        Err(DecodeError::MalformedRemainingLength)
    } else {
        Ok(Length::Partial)
    }
}

/// How many bytes the minimal encoding of Remaining Length `n` takes.
#[inline]
pub(crate) const fn remaining_length_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes the minimal encoding of Remaining Length `n` (at most 268 435 455) byte by
/// byte: the reference the one-write header is checked against.
#[cfg(test)]
#[inline]
pub(crate) fn put_remaining_length(buf: &mut BytesMut, mut n: usize) {
    loop {
        let mut b = (n & 0x7F) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        buf.put_u8(b);
        if n == 0 {
            break;
        }
    }
}

/// A fixed header packed little-endian into a word: the first byte, then the minimal
/// Remaining Length (at most 268 435 455, so 1–4 bytes), leaving room for two more.
/// Returns the word and how many bytes are used (2–5).
///
/// Built in a register and stored whole, so that the copy into the buffer reads back
/// one store rather than five single bytes (which the CPU cannot forward to a wider
/// load, and stalls on).
#[inline]
fn fixed_header(first: u8, rl: usize) -> (u64, usize) {
    let mut word = u64::from(first);
    let mut n = 1;
    let mut v = rl;
    loop {
        let mut b = (v & 0x7F) as u64;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        word |= b << (8 * n);
        n += 1;
        if v == 0 || n == 5 {
            return (word, n);
        }
    }
}

/// Writes a fixed header (Remaining Length at most 268 435 455) in one write.
#[inline]
pub(crate) fn put_fixed_header<W: EncodeBuf>(buf: &mut W, first: u8, rl: usize) {
    let (word, n) = fixed_header(first, rl);
    put_le_prefix(buf, word, n);
}

/// Appends the first `n` (2–7) bytes of `word`'s little-endian form. The sizes of the
/// packets most often written (a Remaining Length under 128, with or without a u16
/// after it) are fixed-size writes, which compile to plain stores.
#[inline]
fn put_le_prefix<W: EncodeBuf>(buf: &mut W, word: u64, n: usize) {
    match n {
        2 => buf.put_u16_le(word as u16),
        4 => buf.put_u32_le(word as u32),
        _ => {
            let a = word.to_le_bytes();
            buf.put_slice(a.get(..n).unwrap_or(&a));
        }
    }
}

/// Writes a fixed header followed by a big-endian u16 (a packet identifier or a length
/// prefix) in one write.
#[inline]
pub(crate) fn put_fixed_header_u16<W: EncodeBuf>(buf: &mut W, first: u8, rl: usize, v: u16) {
    let (word, n) = fixed_header(first, rl);
    let [hi, lo] = v.to_be_bytes();
    let word = word | u64::from(hi) << (8 * n) | u64::from(lo) << (8 * (n + 1));
    put_le_prefix(buf, word, n + 2);
}

/// Writes a field with its two-byte length prefix. Callers pass validated fields, whose
/// length fits in a u16.
#[inline]
pub(crate) fn put_prefixed<W: EncodeBuf>(buf: &mut W, b: &[u8]) {
    buf.put_u16(b.len() as u16);
    buf.put_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_boundaries_round_trip_in_minimal_form() {
        for n in [
            0,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            MAX_REMAINING_LENGTH,
        ] {
            let mut b = BytesMut::new();
            put_remaining_length(&mut b, n);
            assert_eq!(b.len(), remaining_length_len(n));
            match remaining_length(&b).unwrap() {
                Length::Done(v, used) => assert_eq!((v, used), (n, b.len())),
                Length::Partial => panic!("partial for {n}"),
            }
        }
    }

    #[test]
    fn a_fixed_header_written_in_one_go_matches_the_byte_by_byte_encoding() {
        for n in [
            0,
            2,
            127,
            128,
            16_383,
            16_384,
            2_097_152,
            MAX_REMAINING_LENGTH,
        ] {
            let mut want = BytesMut::new();
            want.put_u8(0x32);
            put_remaining_length(&mut want, n);
            let mut got = BytesMut::new();
            put_fixed_header(&mut got, 0x32, n);
            assert_eq!(got, want, "{n}");
            want.put_u16(0xBEEF);
            let mut got = BytesMut::new();
            put_fixed_header_u16(&mut got, 0x32, n, 0xBEEF);
            assert_eq!(got, want, "{n}");
        }
    }

    #[test]
    fn the_prefixed_field_fast_path_agrees_with_the_nom_parse() {
        fn by_nom(i: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
            nom::multi::length_data(be_u16).parse(i).map_err(end)
        }
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x00\x00",
            b"\x00\x00rest",
            b"\x00\x03abc",
            b"\x00\x03abcdef",
            b"\x00\x04abc",
            b"\x01\x00abc",
        ];
        for i in inputs {
            assert_eq!(prefixed(i), by_nom(i), "{i:?}");
        }
    }

    #[test]
    fn a_fifth_length_byte_is_malformed_without_waiting() {
        assert!(matches!(
            remaining_length(&[0xFF, 0xFF, 0xFF, 0xFF]),
            Err(DecodeError::MalformedRemainingLength)
        ));
        assert!(matches!(
            remaining_length(&[0xFF, 0xFF]),
            Ok(Length::Partial)
        ));
    }
}
