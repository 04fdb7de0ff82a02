//! CONNECT (§3.1).
//!
//! ```text
//! 10 RL
//! 00 04 'M' 'Q' 'T' 'T'   protocol name
//! 04                      protocol level (3.1.1)
//! flags                   b7 user name | b6 password | b5 will retain | b4-3 will QoS |
//!                         b2 will | b1 clean session | b0 reserved (0)
//! keep alive (u16, seconds)
//! client id (str) [will topic (str) will message (bin)] [user name (str) [password (bin)]]
//! ```

use super::EncodeBuf;
use crate::codec::prim;
use crate::error::DecodeError;
use crate::types::{Binary, MqttString, QoS, TopicName, check_text, check_topic_name};

const PROTOCOL_NAME: &[u8] = b"MQTT";
const PROTOCOL_LEVEL: u8 = 4;

/// A CONNECT packet: the first packet a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect<B> {
    /// The client identifier; may be empty (the server then assigns one, if it accepts
    /// an empty identifier at all).
    pub client_id: MqttString<B>,
    /// Clean session: discard any previous session and start a new one.
    pub clean_session: bool,
    /// Keep-alive interval in seconds; 0 turns keep-alive off.
    pub keep_alive: u16,
    /// The will message, published if the connection ends without DISCONNECT.
    pub will: Option<Will<B>>,
    /// User name and optional password. 3.1.1 allows no password without a user name
    /// (MQTT-3.1.2-22), so the password lives inside.
    pub login: Option<Login<B>>,
}

/// The will of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will<B> {
    /// Where the will is published.
    pub topic: TopicName<B>,
    /// The will's payload.
    pub message: Binary<B>,
    /// The will's QoS.
    pub qos: QoS,
    /// Whether the will is published as a retained message.
    pub retain: bool,
}

/// The credentials of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login<B> {
    /// The user name.
    pub username: MqttString<B>,
    /// The password, if any.
    pub password: Option<Binary<B>>,
}

impl<B> Connect<B> {
    #[inline]
    pub(crate) fn map<C>(self, f: &mut impl FnMut(B) -> C) -> Connect<C> {
        Connect {
            client_id: self.client_id.map(f),
            clean_session: self.clean_session,
            keep_alive: self.keep_alive,
            will: self.will.map(|w| Will {
                topic: w.topic.map(f),
                message: w.message.map(f),
                qos: w.qos,
                retain: w.retain,
            }),
            login: self.login.map(|l| Login {
                username: l.username.map(f),
                password: l.password.map(|p| p.map(f)),
            }),
        }
    }
}

impl<B: AsRef<[u8]>> Connect<B> {
    #[inline]
    pub(crate) fn remaining_length(&self) -> usize {
        let mut n = 10 + 2 + self.client_id.len();
        if let Some(w) = &self.will {
            n += 2 + w.topic.len() + 2 + w.message.len();
        }
        if let Some(l) = &self.login {
            n += 2 + l.username.len();
            if let Some(p) = &l.password {
                n += 2 + p.len();
            }
        }
        n
    }

    fn flags(&self) -> u8 {
        let mut f = 0u8;
        if self.clean_session {
            f |= 0x02;
        }
        if let Some(w) = &self.will {
            f |= 0x04 | w.qos.as_u8() << 3;
            if w.retain {
                f |= 0x20;
            }
        }
        if let Some(l) = &self.login {
            f |= 0x80;
            if l.password.is_some() {
                f |= 0x40;
            }
        }
        f
    }

    #[inline]
    pub(crate) fn encode_body<W: EncodeBuf>(&self, buf: &mut W) {
        // Protocol name, level and flags as one word, then the keep-alive: writes of a
        // fixed size from registers, which compile to plain stores.
        let head = u64::from_be_bytes([0, 4, b'M', b'Q', b'T', b'T', PROTOCOL_LEVEL, 0]);
        buf.put_u64(head | u64::from(self.flags()));
        buf.put_u16(self.keep_alive);
        prim::put_prefixed(buf, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            prim::put_prefixed(buf, w.topic.as_bytes());
            prim::put_prefixed(buf, w.message.as_bytes());
        }
        if let Some(l) = &self.login {
            prim::put_prefixed(buf, l.username.as_bytes());
            if let Some(p) = &l.password {
                prim::put_prefixed(buf, p.as_bytes());
            }
        }
    }
}

/// Reads a field that the flags say is present: a packet that ends where the field
/// should start is reported as the field missing; a field that starts but runs past the
/// end of the packet is [`DecodeError::UnexpectedEnd`].
#[inline(always)]
fn present(i: &[u8], missing: DecodeError) -> Result<(&[u8], &[u8]), DecodeError> {
    // The whole field first: the only case that needs no further look.
    if let Some((len, rest)) = i.split_first_chunk::<2>() {
        if let Some((field, rest)) = rest.split_at_checked(u16::from_be_bytes(*len).into()) {
            return Ok((rest, field));
        }
    }
    Err(if i.is_empty() {
        missing
    } else {
        DecodeError::UnexpectedEnd
    })
}

/// The Connect Flags rules (MQTT-3.1.2-3, -13, -14, -15, -22), in the order they are
/// reported.
const fn check_flags(flags: u8) -> Result<(), DecodeError> {
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    if flags & 0x01 != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    // Without a will, any non-zero will QoS (3 included) breaks MQTT-3.1.2-13;
    // MQTT-3.1.2-14 forbids 3 when the will flag is set.
    if !will_flag && will_qos != 0 {
        return Err(DecodeError::WillQosWithoutWill);
    }
    if will_qos == 3 {
        return Err(DecodeError::WillQos3);
    }
    if !will_flag && flags & 0x20 != 0 {
        return Err(DecodeError::WillRetainWithoutWill);
    }
    if flags & 0x40 != 0 && flags & 0x80 == 0 {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    Ok(())
}

/// For each Connect Flags byte, whether [`check_flags`] accepts it: one lookup on the
/// decode path instead of five tests.
static FLAGS_OK: [bool; 256] = {
    let mut t = [false; 256];
    let mut f = 0;
    while f < 256 {
        t[f] = check_flags(f as u8).is_ok();
        f += 1;
    }
    t
};

impl<'a> Connect<&'a [u8]> {
    /// Protocol name, level and flags, field by field: what names the error when the
    /// bytes are not the 3.1.1 header.
    fn decode_protocol(i: &'a [u8]) -> Result<(&'a [u8], u8), DecodeError> {
        let (i, name) = prim::prefixed(i)?;
        if name != PROTOCOL_NAME {
            return Err(DecodeError::InvalidProtocolName);
        }
        let (i, level) = prim::u8_(i)?;
        if level != PROTOCOL_LEVEL {
            return Err(DecodeError::UnsupportedProtocolLevel(level));
        }
        prim::u8_(i)
    }

    /// [`decode_body`](Self::decode_body) as a call of its own.
    #[inline(never)]
    pub(crate) fn decode_body_outlined(i: &'a [u8]) -> Result<Self, DecodeError> {
        Self::decode_body(i)
    }

    #[inline(always)]
    pub(crate) fn decode_body(i: &'a [u8]) -> Result<Self, DecodeError> {
        // The 3.1.1 header is seven constant bytes, then the flags and keep alive: take
        // all ten at once.
        let (i, flags, keep_alive) = match i.split_first_chunk::<10>() {
            Some((&[0, 4, b'M', b'Q', b'T', b'T', PROTOCOL_LEVEL, flags, hi, lo], rest)) => {
                (rest, flags, u16::from_be_bytes([hi, lo]))
            }
            _ => {
                let (i, flags) = Self::decode_protocol(i)?;
                check_flags(flags)?;
                let (i, keep_alive) = prim::u16_(i)?;
                (i, flags, keep_alive)
            }
        };
        if !FLAGS_OK[usize::from(flags)] {
            check_flags(flags)?;
        }
        let will_flag = flags & 0x04 != 0;
        let will_qos = match (flags >> 3) & 0x03 {
            1 => QoS::AtLeastOnce,
            2 => QoS::ExactlyOnce,
            // 3 is refused above.
            _ => QoS::AtMostOnce,
        };
        let will_retain = flags & 0x20 != 0;
        let has_user = flags & 0x80 != 0;
        let has_password = flags & 0x40 != 0;

        let (mut i, client_id) = present(i, DecodeError::MissingClientId)?;
        check_text(client_id)?;
        let mut will = None;
        if will_flag {
            let (rest, topic) = present(i, DecodeError::MissingWill)?;
            check_topic_name(topic)?;
            let (rest, message) = present(rest, DecodeError::MissingWill)?;
            i = rest;
            will = Some(Will {
                topic: TopicName(topic),
                message: Binary(message),
                qos: will_qos,
                retain: will_retain,
            });
        }
        let mut login = None;
        if has_user {
            let (rest, username) = present(i, DecodeError::MissingUsername)?;
            check_text(username)?;
            i = rest;
            let mut password = None;
            if has_password {
                let (rest, p) = present(i, DecodeError::MissingPassword)?;
                i = rest;
                password = Some(Binary(p));
            }
            login = Some(Login {
                username: MqttString(username),
                password,
            });
        }
        if !i.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(Connect {
            client_id: MqttString(client_id),
            clean_session: flags & 0x02 != 0,
            keep_alive,
            will,
            login,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CONNECT body: protocol name, level 4, `flags`, keep alive 60, then `payload`.
    fn body(flags: u8, payload: &[u8]) -> alloc::vec::Vec<u8> {
        let mut b = alloc::vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 60];
        b.extend_from_slice(payload);
        b
    }

    // MQTT-3.1.2-13, MQTT-3.1.2-14
    #[test]
    fn will_qos_3_without_the_will_flag_breaks_the_no_will_rule_not_the_qos_3_rule() {
        let e = Connect::decode_body(&body(0x1A, b"\x00\x01c")).unwrap_err();
        assert_eq!(e, DecodeError::WillQosWithoutWill);
        assert_eq!(e.rule(), "MQTT-3.1.2-13");
        let e = Connect::decode_body(&body(0x1E, b"\x00\x01c\x00\x01w\x00\x00")).unwrap_err();
        assert_eq!(e, DecodeError::WillQos3);
    }

    // MQTT-3.1.3-3, MQTT-3.1.2-9, MQTT-3.1.2-21, §3.1.2.1
    #[test]
    fn a_field_that_starts_and_overruns_is_unexpected_end_and_one_that_is_absent_is_missing() {
        assert_eq!(
            Connect::decode_body(&body(0x02, b"")).unwrap_err(),
            DecodeError::MissingClientId
        );
        assert_eq!(
            Connect::decode_body(&body(0x02, b"\x00\x05c")).unwrap_err(),
            DecodeError::UnexpectedEnd
        );
        assert_eq!(
            Connect::decode_body(&body(0x02, b"\x00")).unwrap_err(),
            DecodeError::UnexpectedEnd
        );
        assert_eq!(
            Connect::decode_body(&body(0x06, b"\x00\x01c")).unwrap_err(),
            DecodeError::MissingWill
        );
        assert_eq!(
            Connect::decode_body(&body(0x06, b"\x00\x01c\x00\x01w\x00\x03x")).unwrap_err(),
            DecodeError::UnexpectedEnd
        );
        assert_eq!(
            Connect::decode_body(&body(0xC2, b"\x00\x01c\x00\x01u\x00\x09pw")).unwrap_err(),
            DecodeError::UnexpectedEnd
        );
        // A protocol name cut short by the end of the packet is not a wrong name.
        assert_eq!(
            Connect::decode_body(b"\x00\x04MQ").unwrap_err(),
            DecodeError::UnexpectedEnd
        );
        assert_eq!(
            Connect::decode_body(b"").unwrap_err(),
            DecodeError::UnexpectedEnd
        );
        assert_eq!(
            Connect::decode_body(b"\x00\x04MQIs\x04\x02\x00\x3c\x00\x00").unwrap_err(),
            DecodeError::InvalidProtocolName
        );
    }
}
