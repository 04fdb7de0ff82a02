//! The settings of a [`Server`](super::Server) and the policy hook it consults.

use alloc::sync::Arc;
use core::time::Duration;

use bytes::Bytes;

use crate::packet::{ConnectReturnCode, Login};
use crate::session::Message;
use crate::types::{MqttString, QoS, TopicFilter};

#[cfg(doc)]
use super::{Action, ServerEvent};

/// What an [`Authorizer`] decides about a client's PUBLISH. MQTT 3.1.1 has no negative
/// acknowledgement, so a refused PUBLISH is either acknowledged and dropped or the
/// connection is closed (MQTT-3.3.5-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublishDecision {
    /// Acknowledge and route.
    Allow,
    /// Acknowledge as usual but do not route (reported as [`ServerEvent::Discarded`]).
    Discard,
    /// Close the connection.
    Close,
}

/// The policy hook a server consults: who may connect, subscribe and publish.
///
/// Every method has a permissive default, so an implementation overrides only what it
/// restricts. [`AllowAll`] is the implementation that restricts nothing.
pub trait Authorizer: Send + Sync {
    /// Whether `client_id` with `login` may connect: `Err` with the CONNACK return code
    /// to refuse ([`ConnectReturnCode::BadUserNameOrPassword`] = 4,
    /// [`ConnectReturnCode::NotAuthorized`] = 5, …). The client id is empty when the
    /// client asked the server to assign one.
    fn connect(
        &self,
        client_id: &MqttString<Bytes>,
        login: Option<&Login<Bytes>>,
    ) -> Result<(), ConnectReturnCode> {
        let _ = (client_id, login);
        Ok(())
    }

    /// The maximum QoS granted to a subscription (at most `requested`), or `None` to
    /// answer the filter with the SUBACK failure code 0x80.
    fn subscribe(
        &self,
        client_id: &MqttString<Bytes>,
        filter: &TopicFilter<Bytes>,
        requested: QoS,
    ) -> Option<QoS> {
        let _ = (client_id, filter);
        Some(requested)
    }

    /// What to do with a PUBLISH from `client_id`.
    fn publish(&self, client_id: &MqttString<Bytes>, message: &Message) -> PublishDecision {
        let _ = (client_id, message);
        PublishDecision::Allow
    }
}

/// The [`Authorizer`] that allows everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowAll;

impl Authorizer for AllowAll {}

/// Settings of a server connection that are not dialect policy.
#[derive(Clone)]
pub struct ServerConfig {
    /// How long a new connection may take to send its CONNECT before it is closed.
    pub connect_timeout: Duration,
    /// Most messages a session queues beyond its inflight window (online or offline);
    /// a message over the bound is dropped and reported.
    pub max_queued: usize,
    /// Most bytes (topic and payload, [`Message::size`]) of the messages a session
    /// queues beyond its inflight window; `None`: no bound. A message over it is
    /// dropped and reported, or (a broker under
    /// [`QueueFullPolicy::Backpressure`](crate::broker::QueueFullPolicy::Backpressure))
    /// admitted while its publisher is throttled.
    pub max_queued_bytes: Option<usize>,
    /// Most outgoing QoS 1/2 PUBLISH in flight; the profile's `max_inflight` caps it.
    pub max_inflight: usize,
    /// Most inbound QoS 2 packet ids awaiting PUBREL; the profile's `max_inflight` caps
    /// it. A client that goes beyond is closed.
    pub max_inbound_qos2: usize,
    /// The policy hook.
    pub authorizer: Arc<dyn Authorizer>,
    /// When true, a persistent session (clean session 0) reports every change of its
    /// durable state as [`Action::Change`] (a [`Broker`](crate::broker::Broker): as
    /// [`broker::Action::Change`](crate::broker::Action::Change), with its own
    /// changes).
    pub report_changes: bool,
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("max_queued", &self.max_queued)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("max_inflight", &self.max_inflight)
            .field("max_inbound_qos2", &self.max_inbound_qos2)
            .field("report_changes", &self.report_changes)
            .finish_non_exhaustive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            connect_timeout: Duration::from_secs(30),
            max_queued: 1000,
            max_queued_bytes: None,
            max_inflight: 64,
            max_inbound_qos2: 64,
            authorizer: Arc::new(AllowAll),
            report_changes: false,
        }
    }
}

/// The largest packet a connection following `profile` accepts: a PUBLISH of the
/// largest payload with the longest topic, or a CONNECT with every field at its longest.
pub(super) fn max_packet_size(profile: &crate::profile::Profile) -> usize {
    let publish = profile
        .max_payload
        .saturating_add(profile.max_topic_len)
        .saturating_add(9);
    publish.clamp(5 * 65_537 + 15, crate::codec::MAX_PACKET_SIZE)
}
