//! The settings of a [`Client`](super::Client) that are not part of the dialect.

use core::time::Duration;

use crate::codec::MAX_PACKET_SIZE;
use crate::profile::Profile;
use crate::reconnect::Backoff;

#[cfg(doc)]
use super::{Action, Client, ClientError, Event, Reason};
#[cfg(doc)]
use crate::error::DecodeError;
#[cfg(doc)]
use crate::packet::ConnectReturnCode;

/// Settings of a [`Client`] that are not part of the dialect ([`Profile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// How long the client waits for CONNACK after sending CONNECT before it closes
    /// with [`Reason::ConnAckTimeout`] (§3.2: "a reasonable amount of time").
    pub connack_timeout: Duration,
    /// How long the client waits for PINGRESP after a PINGREQ before it closes with
    /// [`Reason::PingTimeout`] (§3.1.2.10: "a reasonable amount of time").
    pub pingresp_timeout: Duration,
    /// Most outgoing QoS 1 and 2 messages unacknowledged at once. A publish beyond it
    /// is refused with [`ClientError::InflightFull`]. Match it to the server's limit:
    /// some brokers accept more than they keep (mosquitto 2.0 by default answers PUBREC
    /// to a 21st unreleased QoS 2 message and then drops it), which no 3.1.1 packet
    /// tells the client.
    pub max_inflight: usize,
    /// When true, an incoming QoS 1 or 2 PUBLISH is acknowledged only when the
    /// application calls [`Client::ack`]; the acknowledgements still go out in the order
    /// the PUBLISH packets arrived (MQTT-4.6.0-2, MQTT-4.6.0-3). A repeat of an id whose
    /// acknowledgement the application still owes is not delivered again. The owed
    /// acknowledgements are forgotten when the connection ends (the server resends).
    pub manual_acks: bool,
    /// Largest packet the client accepts from the server, fixed header included. A
    /// larger one closes the connection with [`Reason::Decode`] and
    /// [`DecodeError::PacketTooLarge`] as soon as its header arrives (MQTT-4.8.0-2: the
    /// client cannot buffer it).
    pub max_packet_size: usize,
    /// Most QoS 0 publishes held while the client waits for CONNACK (they are sent
    /// once it arrives). A QoS 0 publish beyond it is refused with
    /// [`ClientError::HeldFull`]. QoS 1 and 2 publishes are bounded by
    /// [`max_inflight`](Self::max_inflight) instead, subscribes and unsubscribes by the
    /// packet ids.
    pub max_held_qos0: usize,
    /// When true, every change of the session's durable state is reported as
    /// [`Action::Change`], in order with the other actions: applied to the last
    /// [`Client::export`], they give the current one.
    pub report_changes: bool,
    /// Reconnecting after a lost connection. With a backoff, the client asks for a new
    /// connection with [`Action::Reconnect`] after the backoff's delay (exponential,
    /// with jitter from the seed the backoff was built with, capped, reset after a
    /// connection that stayed up) when the connection was lost
    /// ([`Client::connection_lost`]), could not be opened
    /// ([`Client::connection_failed`]), or was closed for a reason a retry can help:
    /// no CONNACK or PINGRESP in time, or CONNACK refusing with
    /// [`ConnectReturnCode::ServerUnavailable`]. After another refusal, a violation by
    /// the server or [`Client::disconnect`] it asks nothing. `None`: the application
    /// reconnects itself.
    ///
    /// Either way, every CONNECT keeps the backoff's
    /// [`min_connect_interval`](Backoff::min_connect_interval) after the previous one
    /// (the default backoff of the client's profile when `None`: one second under AWS
    /// IoT Core); [`Client::connect`] sooner is refused with
    /// [`ClientError::ConnectTooSoon`]. The client works on its own copy.
    pub reconnect: Option<Backoff>,
    /// A SUBSCRIBE or UNSUBSCRIBE not acknowledged this long after the command is
    /// reported as [`Event::TimedOut`]. `None`: no deadline.
    pub request_timeout: Option<Duration>,
    /// A QoS 1 or 2 PUBLISH not acknowledged (PUBACK; at QoS 2 PUBCOMP) this long after
    /// the command is reported as [`Event::TimedOut`]. `None`: no deadline.
    pub publish_timeout: Option<Duration>,
}

impl ClientConfig {
    /// The default settings for `profile`: CONNACK timeout 10 s, PINGRESP timeout 10 s,
    /// the profile's inflight limit, automatic acknowledgements, packets up to the
    /// largest MQTT allows, up to 1000 QoS 0 publishes held before CONNACK, changes
    /// not reported, no reconnect, no operation time-outs.
    pub fn for_profile(profile: &Profile) -> ClientConfig {
        ClientConfig {
            connack_timeout: Duration::from_secs(10),
            pingresp_timeout: Duration::from_secs(10),
            max_inflight: profile.max_inflight,
            manual_acks: false,
            max_packet_size: MAX_PACKET_SIZE,
            max_held_qos0: 1000,
            report_changes: false,
            reconnect: None,
            request_timeout: None,
            publish_timeout: None,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::for_profile(&Profile::mqtt311())
    }
}
