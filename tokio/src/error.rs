//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

use mqtt_sansio::client::{ClientError, ProtocolError, Reason};
use mqtt_sansio::{ConnectReturnCode, DecodeError};
use tokio_rustls::rustls;

/// Why a connection, a server or a command failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A URL or an option that cannot be used, with what is wrong.
    Config(String),
    /// A certificate, key or CA file that cannot be read or holds nothing usable.
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The network failed: connection refused, reset, closed by the peer, …
    Io(io::Error),
    /// The TLS handshake or the TLS session failed: unknown CA, expired certificate,
    /// host name mismatch, a missing client certificate the server required, …
    Tls(rustls::Error),
    /// The WebSocket handshake failed or the peer broke the WebSocket protocol
    /// (MQTT-6.0.0-1: a data frame that is not binary closes the connection; MQTT-6.0.0-4:
    /// the server must select the sub-protocol `mqtt`).
    WebSocket(String),
    /// The server refused the connection with this CONNACK return code.
    Refused(ConnectReturnCode),
    /// Something did not happen in time.
    Timeout(Timeout),
    /// The server broke the protocol: the rule, what was expected and what arrived.
    Protocol(ProtocolError),
    /// The server sent bytes that are not a valid packet.
    Decode(DecodeError),
    /// The core refused the command (a topic too long, QoS 2 under AWS IoT, …); nothing
    /// was sent.
    Rejected(ClientError),
    /// The request was given up: the connection was lost and the session (clean session
    /// 1) with it, so it may not have been carried out.
    Lost,
    /// The client is closed: [`Client::disconnect`](crate::Client::disconnect) was
    /// called, or the connection ended for good.
    Closed,
    /// The session's directory ([`Options::data_dir`](crate::Options::data_dir)) cannot
    /// be used: a damaged store (the error names the file), the store of another client,
    /// or a failed commit (the client then stops: nothing that follows the changes may
    /// go out before they are stored).
    Store(crate::store::StoreError),
}

/// What did not happen in time, carried by [`Error::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The TCP connection, the TLS handshake or the WebSocket handshake.
    Connect,
    /// CONNACK after CONNECT.
    ConnAck,
    /// PINGRESP after PINGREQ: the connection is considered dead.
    Ping,
    /// The acknowledgement of a SUBSCRIBE, UNSUBSCRIBE or PUBLISH
    /// ([`ClientConfig::request_timeout`](mqtt_sansio::ClientConfig::request_timeout),
    /// [`ClientConfig::publish_timeout`](mqtt_sansio::ClientConfig::publish_timeout)).
    Operation,
}

impl Error {
    /// The error for a connection the core closed with `reason`.
    pub(crate) fn from_reason(reason: Reason) -> Error {
        match reason {
            Reason::Disconnected => Error::Closed,
            Reason::Refused(code) => Error::Refused(code),
            Reason::ConnAckTimeout => Error::Timeout(Timeout::ConnAck),
            Reason::PingTimeout => Error::Timeout(Timeout::Ping),
            Reason::Decode(e) => Error::Decode(e),
            Reason::Protocol(p) => Error::Protocol(p),
        }
    }

    /// Whether a new connection may succeed where this one failed: network failures
    /// and time-outs, not configuration, TLS verification or refusals.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Error::Io(_) | Error::Timeout(_) | Error::Lost)
    }
}

impl From<io::Error> for Error {
    /// An I/O error, or the TLS error inside it (tokio-rustls reports TLS failures as
    /// I/O errors).
    fn from(e: io::Error) -> Error {
        let tls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        match tls {
            Some(t) => Error::Tls(t),
            None => Error::Io(e),
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Error {
        Error::Store(e)
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Error {
        use tokio_tungstenite::tungstenite::Error as Ws;
        match e {
            Ws::Io(io) => Error::from(io),
            Ws::Tls(t) => Error::WebSocket(t.to_string()),
            other => Error::WebSocket(other.to_string()),
        }
    }
}

/// What a CONNACK return code means, in words.
fn refusal(code: ConnectReturnCode) -> &'static str {
    match code {
        ConnectReturnCode::UnacceptableProtocolVersion => "unacceptable protocol version",
        ConnectReturnCode::IdentifierRejected => "identifier rejected",
        ConnectReturnCode::ServerUnavailable => "server unavailable",
        ConnectReturnCode::BadUserNameOrPassword => "bad user name or password",
        ConnectReturnCode::NotAuthorized => "not authorized",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => write!(f, "configuration: {why}"),
            Error::Pem { path, why } => write!(f, "{}: {why}", path.display()),
            Error::Io(e) => write!(f, "network: {e}"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::WebSocket(why) => write!(f, "WebSocket: {why}"),
            Error::Refused(code) => write!(
                f,
                "connection refused by the server: return code {} ({})",
                *code as u8,
                refusal(*code)
            ),
            Error::Timeout(what) => write!(f, "timed out waiting for {what:?}"),
            Error::Protocol(p) => write!(f, "protocol violation by the server: {p}"),
            Error::Decode(e) => write!(f, "malformed packet from the server: {e}"),
            Error::Rejected(e) => write!(f, "rejected: {e}"),
            Error::Lost => write!(f, "lost with the connection"),
            Error::Closed => write!(f, "the client is closed"),
            Error::Store(e) => write!(f, "session store: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Tls(e) => Some(e),
            Error::Rejected(e) => Some(e),
            Error::Store(e) => Some(e),
            _ => None,
        }
    }
}
