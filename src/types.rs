//! The small types that keep invalid values out of packets.
//!
//! Text and binary fields are generic over their storage `B`: `&[u8]` for packets
//! decoded from a borrowed slice, [`Bytes`] for zero-copy decoding and for packets an
//! application builds. A value of these types has always been validated, so every packet
//! built from them encodes to valid bytes.

use bytes::Bytes;
use core::fmt;
use core::num::NonZeroU16;

use crate::error::DecodeError;

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum QoS {
    /// QoS 0: at most once, no acknowledgement.
    AtMostOnce = 0,
    /// QoS 1: at least once, acknowledged by PUBACK.
    AtLeastOnce = 1,
    /// QoS 2: exactly once, PUBREC / PUBREL / PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a wire value 0–2; `None` for anything else.
    pub const fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// The wire value, 0–2.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A packet identifier: a 16-bit number that is never 0 (MQTT-2.3.1-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The identifier `v`, or `None` for 0.
    pub const fn new(v: u16) -> Option<PacketId> {
        match NonZeroU16::new(v) {
            Some(n) => Some(PacketId(n)),
            None => None,
        }
    }

    /// The identifier as a number, 1–65 535.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The identifier after this one, wrapping from 65 535 to 1.
    pub const fn next(self) -> PacketId {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(n) => PacketId(n),
            None => PacketId(NonZeroU16::MIN),
        }
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for PacketId {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(PacketId(NonZeroU16::arbitrary(u)?))
    }
}

/// What one pass over a text field found. The field is read eight bytes at a time as
/// a `u64` ("SWAR"): each flag is a word whose byte high bits mark the bytes found.
#[derive(Clone, Copy)]
struct Scan {
    /// Non-zero when some byte is 0x00 or 0x80 and above: the field is not plain
    /// ASCII without NUL, and gets the exact checks.
    unusual: u64,
    /// Non-zero when some byte may be `+` or `#` (never zero when one is).
    wildcard: u64,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero exactly when some byte of `v` is 0 (the lowest flagged byte is a true one).
#[inline(always)]
const fn zero_byte(v: u64) -> u64 {
    v.wrapping_sub(LO) & !v & HI
}

/// Non-zero exactly when some byte of `v` is 0x00 or at least 0x80. A byte of 0x01 to
/// 0x7F turns its high bit on in `v - LO` only by a borrow from a 0x00 byte below it.
#[inline(always)]
const fn nul_or_non_ascii(v: u64) -> u64 {
    (v.wrapping_sub(LO) | v) & HI
}

/// Non-zero exactly when some byte of `v` is `+` (0x2B) or `#` (0x23): they differ in
/// bit 3 alone, so setting it maps both, and only them, to `+`.
#[inline(always)]
const fn any_wildcard(v: u64) -> u64 {
    zero_byte((v | (LO * 0x08)) ^ (LO * b'+' as u64))
}

/// The bytes of `v` equal to `+` or `#`, marked by their high bit. A byte just above a
/// marked one may be marked too (`*` or `"` after a wildcard): callers recheck the byte.
#[inline(always)]
const fn wildcard_bits(v: u64) -> u64 {
    zero_byte(v ^ (LO * b'+' as u64)) | zero_byte(v ^ (LO * b'#' as u64))
}

/// The padding byte of a short field's word: none of the bytes looked for.
const PAD: u64 = LO * b'a' as u64;

/// Calls `f(offset, word)` for the bytes of `b` read as little-endian `u64` words, in
/// order. When the length is not a multiple of eight the last word overlaps the one
/// before it (every use ORs flags or rechecks bytes, so a byte seen twice changes
/// nothing); a field shorter than eight bytes is padded with [`PAD`].
#[inline(always)]
fn for_each_word(b: &[u8], mut f: impl FnMut(usize, u64)) {
    if let Some(last) = b.last_chunk::<8>() {
        let mut rest = b;
        let mut at = 0;
        while let Some((w, r)) = rest.split_first_chunk::<8>() {
            f(at, u64::from_le_bytes(*w));
            rest = r;
            at += 8;
        }
        if !rest.is_empty() {
            f(b.len() - 8, u64::from_le_bytes(*last));
        }
    } else {
        let mut v = PAD;
        for (k, &c) in b.iter().enumerate() {
            let shift = 8 * k as u32;
            v = (v & !(0xFF << shift)) | (c as u64) << shift;
        }
        f(0, v);
    }
}

/// Scans `b` for NUL, non-ASCII bytes and (when `WILDCARDS`) wildcards in one
/// branch-free pass.
#[inline]
fn scan<const WILDCARDS: bool>(b: &[u8]) -> Scan {
    let mut s = Scan {
        unusual: 0,
        wildcard: 0,
    };
    for_each_word(b, |_, v| {
        s.unusual |= nul_or_non_ascii(v);
        if WILDCARDS {
            s.wildcard |= any_wildcard(v);
        }
    });
    s
}

/// The text rules, given the scan of `b`.
#[inline(always)]
fn check_scanned_text(b: &[u8], s: Scan) -> Result<(), DecodeError> {
    if b.len() > u16::MAX as usize {
        return Err(DecodeError::StringTooLong);
    }
    // ASCII without NUL is the common case, and is valid. Otherwise the exact checks.
    if s.unusual != 0 {
        check_unusual_text(b)?;
    }
    Ok(())
}

/// The text rules for a field that is not plain ASCII without NUL: well-formed UTF-8
/// first, then no U+0000.
#[cold]
#[inline(never)]
fn check_unusual_text(b: &[u8]) -> Result<(), DecodeError> {
    core::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8)?;
    if b.contains(&0) {
        return Err(DecodeError::NullCharacter);
    }
    Ok(())
}

/// Checks the rules every MQTT text field obeys: at most 65 535 bytes, well-formed UTF-8
/// (MQTT-1.5.3-1) and no U+0000 (MQTT-1.5.3-2). A byte-order mark is an ordinary
/// character and is kept (MQTT-1.5.3-3).
#[inline(always)]
pub(crate) fn check_text(b: &[u8]) -> Result<(), DecodeError> {
    check_scanned_text(b, scan::<false>(b))
}

/// Checks a topic name: a non-empty text field without wildcards.
#[inline(always)]
pub(crate) fn check_topic_name(b: &[u8]) -> Result<(), DecodeError> {
    let s = scan::<true>(b);
    check_scanned_text(b, s)?;
    if b.is_empty() {
        return Err(DecodeError::EmptyTopic);
    }
    if s.wildcard != 0 {
        return Err(DecodeError::WildcardInTopicName);
    }
    Ok(())
}

/// Checks a topic filter: a non-empty text field whose wildcards occupy whole levels,
/// with `#` only as the last level.
#[inline]
pub(crate) fn check_topic_filter(b: &[u8]) -> Result<(), DecodeError> {
    let s = scan::<true>(b);
    check_scanned_text(b, s)?;
    if b.is_empty() {
        return Err(DecodeError::EmptyTopic);
    }
    if s.wildcard == 0 {
        // No wildcard, nothing to place.
        return Ok(());
    }
    // Visit only the wildcards: the first misplaced one names the error.
    let mut misplaced = None;
    for_each_word(b, |at, v| {
        let mut m = wildcard_bits(v);
        while m != 0 {
            let i = at + (m.trailing_zeros() / 8) as usize;
            m &= m - 1;
            if misplaced.is_none() && !wildcard_in_place(b, i) {
                misplaced = Some(i);
            }
        }
    });
    match misplaced {
        Some(i) => Err(misplaced_wildcard(b, i)),
        None => Ok(()),
    }
}

/// Whether the byte at `i` is not a wildcard, or is one that fills its level (and, for
/// `#`, ends the filter).
#[inline]
fn wildcard_in_place(b: &[u8], i: usize) -> bool {
    let Some(&c) = b.get(i) else {
        return true;
    };
    if c != b'+' && c != b'#' {
        return true;
    }
    let alone = (i == 0 || b.get(i - 1) == Some(&b'/')) && b.get(i + 1).is_none_or(|&n| n == b'/');
    alone && (c == b'+' || i + 1 == b.len())
}

/// The error for the level of `b` around the misplaced wildcard at `at`: `#` anywhere
/// in the level makes it a multi-level wildcard error, as the levels are read in order.
#[cold]
fn misplaced_wildcard(b: &[u8], at: usize) -> DecodeError {
    let (before, after) = b.split_at(at.min(b.len()));
    let start = before.iter().rposition(|&c| c == b'/').map_or(0, |p| p + 1);
    let end = after
        .iter()
        .position(|&c| c == b'/')
        .map_or(b.len(), |p| at + p);
    let level = b.get(start..end).unwrap_or_default();
    if level.contains(&b'#') && (level != b"#" || end != b.len()) {
        DecodeError::InvalidMultiLevelWildcard
    } else {
        DecodeError::InvalidSingleLevelWildcard
    }
}

/// Storage for a validated field that can be rebased onto another storage type.
macro_rules! validated {
    ($(#[$m:meta])* $name:ident, $check:path) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name<B>(pub(crate) B);

        impl<B: AsRef<[u8]>> $name<B> {
            /// Validates `b` and wraps it.
            pub fn new(b: B) -> Result<Self, DecodeError> {
                $check(b.as_ref())?;
                Ok($name(b))
            }

            /// The encoded bytes, without the length prefix.
            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_ref()
            }

            /// The length in bytes.
            pub fn len(&self) -> usize {
                self.0.as_ref().len()
            }

            /// Whether the value is empty.
            pub fn is_empty(&self) -> bool {
                self.0.as_ref().is_empty()
            }

            /// The value with its storage borrowed.
            pub fn borrowed(&self) -> $name<&[u8]> {
                $name(self.0.as_ref())
            }
        }

        impl<B: fmt::Debug> fmt::Debug for $name<B> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl<B> $name<B> {
            /// The underlying storage.
            pub fn into_inner(self) -> B {
                self.0
            }

            /// The value with its storage converted by `f`, which must keep the bytes.
            #[allow(dead_code)]
            #[inline]
            pub(crate) fn map<C>(self, f: &mut impl FnMut(B) -> C) -> $name<C> {
                $name(f(self.0))
            }
        }

        impl $name<Bytes> {
            /// Validates a static string and wraps it without copying.
            pub fn from_static(s: &'static str) -> Result<Self, DecodeError> {
                Self::new(Bytes::from_static(s.as_bytes()))
            }
        }

        impl TryFrom<&str> for $name<Bytes> {
            type Error = DecodeError;
            fn try_from(s: &str) -> Result<Self, DecodeError> {
                $check(s.as_bytes())?;
                Ok($name(Bytes::copy_from_slice(s.as_bytes())))
            }
        }

        impl<'a> $name<&'a [u8]> {
            /// A copy whose storage is [`Bytes`].
            pub fn to_bytes(&self) -> $name<Bytes> {
                $name(Bytes::copy_from_slice(self.0))
            }
        }
    };
}

macro_rules! textual {
    ($name:ident) => {
        impl<B: AsRef<[u8]>> $name<B> {
            /// The text.
            pub fn as_str(&self) -> &str {
                // Validated at construction; the fallback is unreachable.
                core::str::from_utf8(self.0.as_ref()).unwrap_or_default()
            }
        }

        impl<B: AsRef<[u8]>> fmt::Display for $name<B> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

validated!(
    /// A UTF-8 text field: at most 65 535 bytes, well-formed, no U+0000.
    MqttString,
    check_text
);
textual!(MqttString);
validated!(
    /// A topic name, as in PUBLISH and the will: a non-empty text field without `+` or `#`.
    TopicName,
    check_topic_name
);
textual!(TopicName);
validated!(
    /// A topic filter, as in SUBSCRIBE and UNSUBSCRIBE: a non-empty text field whose `+`
    /// and `#` wildcards each fill a whole level, `#` only as the last.
    TopicFilter,
    check_topic_filter
);
textual!(TopicFilter);

fn check_binary(b: &[u8]) -> Result<(), DecodeError> {
    if b.len() > u16::MAX as usize {
        return Err(DecodeError::StringTooLong);
    }
    Ok(())
}

validated!(
    /// A length-prefixed binary field (password, will message): at most 65 535 bytes.
    Binary,
    check_binary
);

impl<B: AsRef<[u8]>> TopicName<B> {
    /// Whether the name starts with `$`: such topics are not matched by filters that
    /// start with a wildcard (MQTT-4.7.2-1).
    pub fn is_system(&self) -> bool {
        self.as_bytes().first() == Some(&b'$')
    }
}

impl<B: AsRef<[u8]>> TopicFilter<B> {
    /// Whether the filter contains a `+` or `#` wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.as_bytes().iter().any(|&c| c == b'+' || c == b'#')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules written byte by byte: the reference the word-at-a-time scan must agree
    /// with.
    fn reference_text(b: &[u8]) -> Result<(), DecodeError> {
        if b.len() > u16::MAX as usize {
            return Err(DecodeError::StringTooLong);
        }
        core::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8)?;
        if b.contains(&0) {
            return Err(DecodeError::NullCharacter);
        }
        Ok(())
    }

    fn reference_topic_name(b: &[u8]) -> Result<(), DecodeError> {
        reference_text(b)?;
        if b.is_empty() {
            return Err(DecodeError::EmptyTopic);
        }
        if b.iter().any(|&c| c == b'+' || c == b'#') {
            return Err(DecodeError::WildcardInTopicName);
        }
        Ok(())
    }

    fn reference_topic_filter(b: &[u8]) -> Result<(), DecodeError> {
        reference_text(b)?;
        if b.is_empty() {
            return Err(DecodeError::EmptyTopic);
        }
        let mut levels = b.split(|&c| c == b'/').peekable();
        while let Some(level) = levels.next() {
            let last = levels.peek().is_none();
            if level.contains(&b'#') && (level != b"#" || !last) {
                return Err(DecodeError::InvalidMultiLevelWildcard);
            }
            if level.contains(&b'+') && level != b"+" {
                return Err(DecodeError::InvalidSingleLevelWildcard);
            }
        }
        Ok(())
    }

    fn agree_with_reference(b: &[u8]) {
        assert_eq!(check_text(b), reference_text(b), "text {b:?}");
        assert_eq!(check_topic_name(b), reference_topic_name(b), "name {b:?}");
        assert_eq!(
            check_topic_filter(b),
            reference_topic_filter(b),
            "filter {b:?}"
        );
    }

    #[test]
    fn the_scan_finds_each_special_byte_at_every_position_of_a_word_and_the_tail() {
        // MQTT-1.5.3-1, MQTT-1.5.3-2
        for len in 1..=19 {
            for at in 0..len {
                for special in [
                    0x00, b'+', b'#', 0x80, 0xC3, 0xFF, 0x01, b'/', b'*', b'"', 0x0B, 0xAB,
                ] {
                    let mut b = vec![b'x'; len];
                    b[at] = special;
                    agree_with_reference(&b);
                    // A NUL next to a byte one above it: the borrow case of the scan.
                    if at + 1 < len {
                        b[at + 1] = 0x01;
                        agree_with_reference(&b);
                    }
                }
            }
        }
        agree_with_reference(b"");
        agree_with_reference("caf\u{e9}/+/#".as_bytes());
        agree_with_reference(&vec![b'a'; 65_536]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn word_at_a_time_checks_agree_with_the_byte_by_byte_rules(
            b in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(0u8),
                    proptest::strategy::Just(b'+'),
                    proptest::strategy::Just(b'#'),
                    proptest::strategy::Just(b'/'),
                    0x20u8..0x7F,
                    0x80u8..=0xFF,
                    proptest::num::u8::ANY,
                ],
                0..40,
            )
        ) {
            agree_with_reference(&b);
        }
    }

    #[test]
    fn packet_id_is_never_zero_and_wraps_to_one() {
        assert!(PacketId::new(0).is_none());
        assert_eq!(PacketId::new(u16::MAX).unwrap().next().get(), 1);
        assert_eq!(PacketId::new(7).unwrap().next().get(), 8);
    }

    #[test]
    fn text_rejects_nul_and_ill_formed_utf8_and_keeps_bom() {
        assert_eq!(check_text(b"a\0b"), Err(DecodeError::NullCharacter));
        assert_eq!(check_text(b"\xC0\x80"), Err(DecodeError::InvalidUtf8));
        assert_eq!(check_text(b"\xED\xA0\x80"), Err(DecodeError::InvalidUtf8));
        assert_eq!(
            MqttString::new(&b"\xEF\xBB\xBFx"[..]).unwrap().as_bytes(),
            b"\xEF\xBB\xBFx"
        );
    }

    #[test]
    fn topic_filters_follow_the_wildcard_rules() {
        for ok in [
            "#",
            "a/#",
            "+/#",
            "/#",
            "+",
            "+/+",
            "/+",
            "a/+/c",
            "+/tennis/#",
            "/",
        ] {
            assert!(check_topic_filter(ok.as_bytes()).is_ok(), "{ok}");
        }
        for (bad, e) in [
            ("a#", DecodeError::InvalidMultiLevelWildcard),
            ("a/#/b", DecodeError::InvalidMultiLevelWildcard),
            ("#/", DecodeError::InvalidMultiLevelWildcard),
            ("##", DecodeError::InvalidMultiLevelWildcard),
            ("a+", DecodeError::InvalidSingleLevelWildcard),
            ("+a", DecodeError::InvalidSingleLevelWildcard),
            ("++", DecodeError::InvalidSingleLevelWildcard),
            ("", DecodeError::EmptyTopic),
        ] {
            assert_eq!(check_topic_filter(bad.as_bytes()), Err(e), "{bad}");
        }
    }

    #[test]
    fn topic_names_refuse_wildcards_and_emptiness() {
        assert_eq!(
            check_topic_name(b"a/+"),
            Err(DecodeError::WildcardInTopicName)
        );
        assert_eq!(
            check_topic_name(b"#"),
            Err(DecodeError::WildcardInTopicName)
        );
        assert_eq!(check_topic_name(b""), Err(DecodeError::EmptyTopic));
        assert!(check_topic_name(b"/").is_ok());
    }
}
