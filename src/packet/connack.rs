//! CONNACK (§3.2): `20 02 flags code`, flags bit 0 = session present.

use crate::codec::prim;
use crate::error::DecodeError;

/// A CONNACK packet. A refusal cannot claim a session (MQTT-3.2.2-4), so the two cases
/// are separate variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ConnAck {
    /// Return code 0: the connection is accepted.
    Accepted {
        /// Whether the server resumed a session it held for this client.
        session_present: bool,
    },
    /// A non-zero return code: the server closes the connection after sending it.
    Refused(ConnectReturnCode),
}

/// A CONNACK refusal code (§3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ConnectReturnCode {
    /// 1: the server does not support the protocol level.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is not allowed.
    IdentifierRejected = 2,
    /// 3: the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4: the user name or password is malformed or wrong.
    BadUserNameOrPassword = 4,
    /// 5: the client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a wire value 1–5.
    pub const fn from_u8(v: u8) -> Option<Self> {
        use ConnectReturnCode::*;
        Some(match v {
            1 => UnacceptableProtocolVersion,
            2 => IdentifierRejected,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return None,
        })
    }
}

impl ConnAck {
    /// The return code on the wire: 0 for accepted.
    pub const fn code(&self) -> u8 {
        match self {
            ConnAck::Accepted { .. } => 0,
            ConnAck::Refused(c) => *c as u8,
        }
    }

    /// Whether the session-present flag is set.
    pub const fn session_present(&self) -> bool {
        matches!(
            self,
            ConnAck::Accepted {
                session_present: true
            }
        )
    }

    pub(crate) fn decode_body(i: &[u8]) -> Result<Self, DecodeError> {
        let (i, flags) = prim::u8_(i)?;
        let (_, code) = prim::u8_(i)?;
        if flags & 0xFE != 0 {
            return Err(DecodeError::ConnAckReservedFlags);
        }
        let session_present = flags & 1 != 0;
        if code == 0 {
            return Ok(ConnAck::Accepted { session_present });
        }
        let code =
            ConnectReturnCode::from_u8(code).ok_or(DecodeError::InvalidConnectReturnCode(code))?;
        if session_present {
            return Err(DecodeError::SessionPresentWithRefusal);
        }
        Ok(ConnAck::Refused(code))
    }
}
