//! Codec errors.
//!
//! Every [`DecodeError`] names the rule the input breaks: [`DecodeError::rule`] gives the
//! normative statement id of MQTT 3.1.1 (`MQTT-3.3.1-4`) or, for the few requirements the
//! specification states without an id, the section (`§2.2.3`). [`DecodeError::kind`] gives
//! the stable snake_case name used by the spec vectors.

use core::fmt;

/// Why a byte sequence can never become a valid MQTT 3.1.1 packet, or why a value cannot
/// be put on the wire.
///
/// An error is final: adding bytes to the input never turns it into a packet. Input that
/// is merely short is reported as [`Status::Incomplete`](crate::Status::Incomplete), not
/// as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet type nibble is 0 or 15, both reserved.
    ReservedPacketType,
    /// The flag nibble of the fixed header is not the value the packet type requires.
    InvalidFlags {
        /// The packet type (1–14).
        packet_type: u8,
        /// The flag nibble that was received.
        flags: u8,
    },
    /// A PUBLISH with both QoS bits set.
    PublishQos3,
    /// A QoS 0 PUBLISH with the DUP flag set.
    PublishDupWithQos0,
    /// The Remaining Length field has a continuation bit on its fourth byte.
    MalformedRemainingLength,
    /// The packet is larger than the decoder's configured maximum.
    PacketTooLarge,
    /// A CONNECT whose Remaining Length exceeds that of the largest valid CONNECT
    /// ([`MAX_CONNECT_REMAINING_LENGTH`](crate::codec::MAX_CONNECT_REMAINING_LENGTH)),
    /// refused from its fixed header alone.
    ConnectTooLarge,
    /// A packet with a fixed size (CONNACK, the acks, PINGREQ, PINGRESP, DISCONNECT) has
    /// another Remaining Length.
    InvalidRemainingLength,
    /// A field runs past the end of the packet.
    UnexpectedEnd,
    /// Bytes are left over after the last field of the packet.
    TrailingBytes,
    /// The CONNECT protocol name is not `MQTT`.
    InvalidProtocolName,
    /// The CONNECT protocol name is `MQTT` but the level is not 4 (3.1.1). A server
    /// answers it with CONNACK return code 1.
    UnsupportedProtocolLevel(u8),
    /// Bit 0 of the CONNECT flags is set.
    ConnectReservedFlag,
    /// The will QoS bits are 3.
    WillQos3,
    /// Will QoS is not 0 although the will flag is 0.
    WillQosWithoutWill,
    /// Will retain is set although the will flag is 0.
    WillRetainWithoutWill,
    /// The password flag is set without the user name flag.
    PasswordWithoutUsername,
    /// The CONNECT payload has no client identifier.
    MissingClientId,
    /// The will flag is set but the will topic or message is missing.
    MissingWill,
    /// The user name flag is set but the user name is missing.
    MissingUsername,
    /// The password flag is set but the password is missing.
    MissingPassword,
    /// A text field is not well-formed UTF-8.
    InvalidUtf8,
    /// A text field contains U+0000.
    NullCharacter,
    /// A text field or binary field is longer than 65 535 bytes (encoding only).
    StringTooLong,
    /// A topic name or topic filter is empty.
    EmptyTopic,
    /// A topic name contains `+` or `#`.
    WildcardInTopicName,
    /// A `#` that is not the whole last level of a topic filter.
    InvalidMultiLevelWildcard,
    /// A `+` that does not occupy a whole level of a topic filter.
    InvalidSingleLevelWildcard,
    /// A packet identifier of 0 where a non-zero one is required.
    ZeroPacketId,
    /// CONNACK acknowledge-flag bits 7–1 are not zero.
    ConnAckReservedFlags,
    /// CONNACK has session present set with a non-zero return code.
    SessionPresentWithRefusal,
    /// CONNACK return code above 5.
    InvalidConnectReturnCode(u8),
    /// SUBSCRIBE with no topic filter.
    EmptySubscribe,
    /// A SUBSCRIBE requested-QoS byte with reserved bits set or QoS 3.
    InvalidSubscribeQos(u8),
    /// SUBACK with no return code.
    EmptySubAck,
    /// A SUBACK return code other than 0x00, 0x01, 0x02 and 0x80.
    InvalidSubAckCode(u8),
    /// UNSUBSCRIBE with no topic filter.
    EmptyUnsubscribe,
}

impl DecodeError {
    /// The normative statement id of MQTT 3.1.1 this error breaks, or the section
    /// (`§…`) of a requirement the specification states without an id.
    pub fn rule(&self) -> &'static str {
        use DecodeError::*;
        match self {
            ReservedPacketType => "§2.2.1",
            InvalidFlags { packet_type, .. } => match packet_type {
                6 => "MQTT-3.6.1-1",
                8 => "MQTT-3.8.1-1",
                10 => "MQTT-3.10.1-1",
                14 => "MQTT-3.14.1-1",
                _ => "MQTT-2.2.2-1",
            },
            PublishQos3 => "MQTT-3.3.1-4",
            PublishDupWithQos0 => "MQTT-3.3.1-2",
            MalformedRemainingLength => "§2.2.3",
            PacketTooLarge => "§2.2.3",
            ConnectTooLarge => "§3.1",
            InvalidRemainingLength => "§2.2.3",
            UnexpectedEnd => "§2.2.3",
            TrailingBytes => "§2.2.3",
            InvalidProtocolName => "MQTT-3.1.2-1",
            UnsupportedProtocolLevel(_) => "MQTT-3.1.2-2",
            ConnectReservedFlag => "MQTT-3.1.2-3",
            WillQos3 => "MQTT-3.1.2-14",
            WillQosWithoutWill => "MQTT-3.1.2-13",
            WillRetainWithoutWill => "MQTT-3.1.2-15",
            PasswordWithoutUsername => "MQTT-3.1.2-22",
            MissingClientId => "MQTT-3.1.3-3",
            MissingWill => "MQTT-3.1.2-9",
            MissingUsername => "MQTT-3.1.2-19",
            MissingPassword => "MQTT-3.1.2-21",
            InvalidUtf8 => "MQTT-1.5.3-1",
            NullCharacter => "MQTT-1.5.3-2",
            StringTooLong => "MQTT-4.7.3-3",
            EmptyTopic => "MQTT-4.7.3-1",
            WildcardInTopicName => "MQTT-3.3.2-2",
            InvalidMultiLevelWildcard => "MQTT-4.7.1-2",
            InvalidSingleLevelWildcard => "MQTT-4.7.1-3",
            ZeroPacketId => "MQTT-2.3.1-1",
            ConnAckReservedFlags => "§3.2.2.1",
            SessionPresentWithRefusal => "MQTT-3.2.2-4",
            InvalidConnectReturnCode(_) => "§3.2.2.3",
            EmptySubscribe => "MQTT-3.8.3-3",
            InvalidSubscribeQos(_) => "MQTT-3.8.3-4",
            EmptySubAck => "§3.9.3",
            InvalidSubAckCode(_) => "MQTT-3.9.3-2",
            EmptyUnsubscribe => "MQTT-3.10.3-2",
        }
    }

    /// The stable snake_case name of this error, as used by the spec vectors.
    pub fn kind(&self) -> &'static str {
        use DecodeError::*;
        match self {
            ReservedPacketType => "reserved_packet_type",
            InvalidFlags { .. } => "invalid_flags",
            PublishQos3 => "publish_qos3",
            PublishDupWithQos0 => "publish_dup_with_qos0",
            MalformedRemainingLength => "malformed_remaining_length",
            PacketTooLarge => "packet_too_large",
            ConnectTooLarge => "connect_too_large",
            InvalidRemainingLength => "invalid_remaining_length",
            UnexpectedEnd => "unexpected_end",
            TrailingBytes => "trailing_bytes",
            InvalidProtocolName => "invalid_protocol_name",
            UnsupportedProtocolLevel(_) => "unsupported_protocol_level",
            ConnectReservedFlag => "connect_reserved_flag",
            WillQos3 => "will_qos3",
            WillQosWithoutWill => "will_qos_without_will",
            WillRetainWithoutWill => "will_retain_without_will",
            PasswordWithoutUsername => "password_without_username",
            MissingClientId => "missing_client_id",
            MissingWill => "missing_will",
            MissingUsername => "missing_username",
            MissingPassword => "missing_password",
            InvalidUtf8 => "invalid_utf8",
            NullCharacter => "null_character",
            StringTooLong => "string_too_long",
            EmptyTopic => "empty_topic",
            WildcardInTopicName => "wildcard_in_topic_name",
            InvalidMultiLevelWildcard => "invalid_multi_level_wildcard",
            InvalidSingleLevelWildcard => "invalid_single_level_wildcard",
            ZeroPacketId => "zero_packet_id",
            ConnAckReservedFlags => "connack_reserved_flags",
            SessionPresentWithRefusal => "session_present_with_refusal",
            InvalidConnectReturnCode(_) => "invalid_connect_return_code",
            EmptySubscribe => "empty_subscribe",
            InvalidSubscribeQos(_) => "invalid_subscribe_qos",
            EmptySubAck => "empty_suback",
            InvalidSubAckCode(_) => "invalid_suback_code",
            EmptyUnsubscribe => "empty_unsubscribe",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError::*;
        let what = match self {
            ReservedPacketType => "reserved packet type (0 or 15)",
            InvalidFlags { .. } => "fixed-header flags invalid for the packet type",
            PublishQos3 => "PUBLISH with QoS 3",
            PublishDupWithQos0 => "QoS 0 PUBLISH with DUP set",
            MalformedRemainingLength => "remaining length longer than 4 bytes",
            PacketTooLarge => "packet larger than the configured maximum",
            ConnectTooLarge => "CONNECT longer than the largest valid one (327695 bytes)",
            InvalidRemainingLength => "remaining length wrong for a fixed-size packet",
            UnexpectedEnd => "a field runs past the end of the packet",
            TrailingBytes => "bytes left after the last field",
            InvalidProtocolName => "protocol name is not MQTT",
            UnsupportedProtocolLevel(_) => "protocol level is not 4",
            ConnectReservedFlag => "CONNECT reserved flag set",
            WillQos3 => "will QoS 3",
            WillQosWithoutWill => "will QoS set without the will flag",
            WillRetainWithoutWill => "will retain set without the will flag",
            PasswordWithoutUsername => "password flag without user name flag",
            MissingClientId => "CONNECT without client identifier",
            MissingWill => "will flag set but will topic or message missing",
            MissingUsername => "user name flag set but user name missing",
            MissingPassword => "password flag set but password missing",
            InvalidUtf8 => "ill-formed UTF-8",
            NullCharacter => "U+0000 in a text field",
            StringTooLong => "field longer than 65535 bytes",
            EmptyTopic => "empty topic",
            WildcardInTopicName => "wildcard in a topic name",
            InvalidMultiLevelWildcard => "'#' not alone as the last level",
            InvalidSingleLevelWildcard => "'+' not alone in its level",
            ZeroPacketId => "packet identifier 0",
            ConnAckReservedFlags => "CONNACK reserved flag bits set",
            SessionPresentWithRefusal => "CONNACK session present with a refusal",
            InvalidConnectReturnCode(_) => "CONNACK return code above 5",
            EmptySubscribe => "SUBSCRIBE without topic filter",
            InvalidSubscribeQos(_) => "invalid SUBSCRIBE requested QoS byte",
            EmptySubAck => "SUBACK without return code",
            InvalidSubAckCode(_) => "invalid SUBACK return code",
            EmptyUnsubscribe => "UNSUBSCRIBE without topic filter",
        };
        write!(f, "{what} ({})", self.rule())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet's Remaining Length would exceed 268 435 455 bytes.
    PacketTooLarge,
    /// A QoS 0 PUBLISH with `dup` set (MQTT-3.3.1-2).
    DupWithQos0,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::PacketTooLarge => {
                f.write_str("remaining length would exceed 268435455 bytes (§2.2.3)")
            }
            EncodeError::DupWithQos0 => f.write_str("QoS 0 PUBLISH with DUP set (MQTT-3.3.1-2)"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}
