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

/// Checks the rules every MQTT text field obeys: at most 65 535 bytes, well-formed UTF-8
/// (MQTT-1.5.3-1) and no U+0000 (MQTT-1.5.3-2). A byte-order mark is an ordinary
/// character and is kept (MQTT-1.5.3-3).
pub(crate) fn check_text(b: &[u8]) -> Result<(), DecodeError> {
    if b.len() > u16::MAX as usize {
        return Err(DecodeError::StringTooLong);
    }
    // Pure ASCII is the common case: one pass finds both NUL and non-ASCII bytes.
    if b.iter().all(|&c| c != 0 && c < 0x80) {
        return Ok(());
    }
    core::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8)?;
    if b.contains(&0) {
        return Err(DecodeError::NullCharacter);
    }
    Ok(())
}

/// Checks a topic name: a non-empty text field without wildcards.
pub(crate) fn check_topic_name(b: &[u8]) -> Result<(), DecodeError> {
    check_text(b)?;
    if b.is_empty() {
        return Err(DecodeError::EmptyTopic);
    }
    if b.iter().any(|&c| c == b'+' || c == b'#') {
        return Err(DecodeError::WildcardInTopicName);
    }
    Ok(())
}

/// Checks a topic filter: a non-empty text field whose wildcards occupy whole levels,
/// with `#` only as the last level.
pub(crate) fn check_topic_filter(b: &[u8]) -> Result<(), DecodeError> {
    check_text(b)?;
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
