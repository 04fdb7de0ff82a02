//! Words both roles use about a connection.
//!
//! A client ([`Reason`](crate::client::Reason)) and a server
//! ([`CloseReason`](crate::server::CloseReason)) close for different reasons, but a
//! peer's violation of the protocol is the same idea on both sides: a
//! [`ProtocolError`] naming the rule, what was expected and what arrived. Both roles
//! call the end of the transport that they did not ask for `connection_lost`.

use core::fmt;

/// A protocol violation by the peer: the rule, what was expected and what arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolError {
    /// The normative id (or section) of the rule that was broken.
    pub rule: &'static str,
    /// What was expected.
    pub expected: &'static str,
    /// What arrived.
    pub got: &'static str,
}

impl ProtocolError {
    pub(crate) const fn new(
        rule: &'static str,
        expected: &'static str,
        got: &'static str,
    ) -> ProtocolError {
        ProtocolError {
            rule,
            expected,
            got,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.rule, self.expected, self.got
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolError {}
