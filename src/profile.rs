//! Dialects: the OASIS MQTT 3.1.1 standard and AWS IoT Core's departures from it.
//!
//! A [`Profile`] is a plain struct of policies. [`Profile::mqtt311`] and
//! [`Profile::aws_iot_core`] are the two presets; every field is public so that a user
//! can start from one and change what their broker does differently (AWS's behaviour
//! has moved over the years, and its published limits are quotas that can be raised).

use core::time::Duration;

/// What happens to a QoS 2 request under a profile that does not support QoS 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qos2Policy {
    /// QoS 2 works as 3.1.1 describes.
    Supported,
    /// The request is ignored: a QoS 2 PUBLISH gets no PUBREC and is not routed, a
    /// QoS 2 SUBSCRIBE gets no SUBACK (AWS IoT Core's documented behaviour).
    Ignore,
    /// The connection is closed (observed from AWS IoT Core in the field).
    Close,
}

/// What a server does with a PUBLISH that has RETAIN=1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetainPolicy {
    /// Store, replace or clear the retained message as 3.1.1 describes.
    Store,
    /// Close the connection (AWS IoT Core before 2021).
    Close,
}

/// How unacknowledged messages are resent when a session resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResendPolicy {
    /// The same packet identifier with DUP=1 (MQTT-4.4.0-1, MQTT-3.3.1-1).
    SameIdWithDup,
    /// A fresh packet identifier with DUP=0 (AWS IoT Core).
    FreshId,
}

/// A dialect of MQTT 3.1.1: the policies and limits a client or server follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Profile {
    /// The profile's name, for logs and vectors: `mqtt311` or `aws-iot`.
    pub name: &'static str,
    /// QoS 2 in PUBLISH, SUBSCRIBE and wills.
    pub qos2: Qos2Policy,
    /// PUBLISH with RETAIN=1.
    pub retain: RetainPolicy,
    /// Resend of unacknowledged PUBLISH after a session resumes.
    pub resend: ResendPolicy,
    /// Whether `a/#` also matches the parent topic `a` (3.1.1: yes; AWS: no).
    pub hash_matches_parent: bool,
    /// The range a server clamps the client's keep-alive to, in seconds; a requested 0
    /// becomes the maximum. `None`: the keep-alive is used as asked.
    pub keep_alive_clamp: Option<(u16, u16)>,
    /// Longest client identifier the server accepts, in bytes.
    pub max_client_id_len: usize,
    /// Longest topic name or filter, in bytes.
    pub max_topic_len: usize,
    /// Most `/` separators in a topic name or filter.
    pub max_topic_levels: Option<usize>,
    /// Largest PUBLISH payload, in bytes.
    pub max_payload: usize,
    /// Most filters in one SUBSCRIBE.
    pub max_filters_per_subscribe: Option<usize>,
    /// Most subscriptions one session may hold.
    pub max_subscriptions: Option<usize>,
    /// Most unacknowledged QoS 1/2 PUBLISH in flight in each direction.
    pub max_inflight: usize,
    /// How long a persistent session outlives its connection; `None`: for ever.
    pub session_expiry: Option<Duration>,
    /// Whether a client may send packets before it has received CONNACK.
    pub send_before_connack: bool,
    /// The factor applied to the keep-alive for the server's inactivity timeout, as a
    /// ratio of numerator to denominator (3.1.1: 3/2, MQTT-3.1.2-24).
    pub keep_alive_grace: (u32, u32),
    /// Whether the will of a connection closed by a takeover (a new connection with the
    /// same client id, MQTT-3.1.4-2) is published, as for any close without DISCONNECT.
    pub will_on_takeover: bool,
    /// Whether a subscription with a wildcard filter receives the retained messages it
    /// matches (MQTT-3.3.1-6: yes). AWS IoT Core, where it keeps retained messages,
    /// sends them only to filters naming the topic exactly.
    pub retained_on_wildcard: bool,
}

impl Profile {
    /// The OASIS MQTT 3.1.1 standard, exactly.
    pub const fn mqtt311() -> Profile {
        Profile {
            name: "mqtt311",
            qos2: Qos2Policy::Supported,
            retain: RetainPolicy::Store,
            resend: ResendPolicy::SameIdWithDup,
            hash_matches_parent: true,
            keep_alive_clamp: None,
            max_client_id_len: u16::MAX as usize,
            max_topic_len: u16::MAX as usize,
            max_topic_levels: None,
            max_payload: crate::codec::MAX_REMAINING_LENGTH,
            max_filters_per_subscribe: None,
            max_subscriptions: None,
            max_inflight: 65_535,
            session_expiry: None,
            send_before_connack: true,
            keep_alive_grace: (3, 2),
            will_on_takeover: true,
            retained_on_wildcard: true,
        }
    }

    /// The AWS IoT Core message broker's documented departures from 3.1.1: QoS 0/1 only,
    /// RETAIN=1 closes the connection, fresh packet ids on resend, `a/#` does not match
    /// `a`, keep-alive clamped to 30–1200 s, and AWS's default quotas.
    pub const fn aws_iot_core() -> Profile {
        Profile {
            name: "aws-iot",
            qos2: Qos2Policy::Ignore,
            retain: RetainPolicy::Close,
            resend: ResendPolicy::FreshId,
            hash_matches_parent: false,
            keep_alive_clamp: Some((30, 1200)),
            max_client_id_len: 128,
            max_topic_len: 256,
            max_topic_levels: Some(7),
            max_payload: 128 * 1024,
            max_filters_per_subscribe: Some(8),
            max_subscriptions: Some(50),
            max_inflight: 100,
            session_expiry: Some(Duration::from_secs(3600)),
            send_before_connack: false,
            keep_alive_grace: (3, 2),
            will_on_takeover: true,
            retained_on_wildcard: false,
        }
    }

    /// Whether QoS 2 is supported.
    pub fn supports_qos2(&self) -> bool {
        self.qos2 == Qos2Policy::Supported
    }

    /// The keep-alive a server applies to a client that asked for `requested` seconds.
    pub fn effective_keep_alive(&self, requested: u16) -> u16 {
        match self.keep_alive_clamp {
            None => requested,
            Some((_, max)) if requested == 0 => max,
            Some((min, max)) => requested.clamp(min, max),
        }
    }

    /// How long a server waits without receiving a packet before it closes, for a
    /// keep-alive of `keep_alive` seconds; `None` when keep-alive is off.
    pub fn inactivity_timeout(&self, keep_alive: u16) -> Option<Duration> {
        if keep_alive == 0 {
            return None;
        }
        let (num, den) = self.keep_alive_grace;
        let ms = u64::from(keep_alive) * 1000 * u64::from(num) / u64::from(den.max(1));
        Some(Duration::from_millis(ms))
    }

    /// Whether `topic` (a name or a filter) is within the length and level limits.
    pub fn topic_within_limits(&self, topic: &[u8]) -> bool {
        topic.len() <= self.max_topic_len
            && self
                .max_topic_levels
                .is_none_or(|max| topic.iter().filter(|&&c| c == b'/').count() <= max)
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::mqtt311()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_clamps_keep_alive_and_zero_becomes_the_maximum() {
        let aws = Profile::aws_iot_core();
        assert_eq!(aws.effective_keep_alive(0), 1200);
        assert_eq!(aws.effective_keep_alive(5), 30);
        assert_eq!(aws.effective_keep_alive(5000), 1200);
        assert_eq!(Profile::mqtt311().effective_keep_alive(0), 0);
    }

    #[test]
    fn inactivity_timeout_is_one_and_a_half_keep_alives() {
        let p = Profile::mqtt311();
        assert_eq!(
            p.inactivity_timeout(10),
            Some(Duration::from_millis(15_000))
        );
        assert_eq!(p.inactivity_timeout(0), None);
    }

    #[test]
    fn aws_topic_limits_count_bytes_and_slashes() {
        let aws = Profile::aws_iot_core();
        assert!(aws.topic_within_limits(b"a/b/c/d/e/f/g/h"));
        assert!(!aws.topic_within_limits(b"a/b/c/d/e/f/g/h/i"));
        assert!(!aws.topic_within_limits(&[b'a'; 257]));
    }
}
