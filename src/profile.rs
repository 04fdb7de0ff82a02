//! Dialects: the OASIS MQTT 3.1.1 standard and AWS IoT Core's departures from it.
//!
//! A [`Profile`] is a plain struct of policies. [`Profile::mqtt311`],
//! [`Profile::aws_iot_core`] (AWS's MQTT page as it read in 2019–2021) and
//! [`Profile::aws_iot_core_2025`] (the service as AWS documents it today) are the
//! presets; every field is public so that a user can start from one and change what
//! their broker does differently (AWS's behaviour has moved over the years, and its
//! published limits are quotas that can be raised).

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

/// Which `$`-prefixed topics a broker treats as reserved for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservedTopics {
    /// None: a `$` topic is an ordinary topic that wildcards in the first level do not
    /// match (MQTT-4.7.2-1).
    None,
    /// AWS IoT Core's reserved namespace: every topic starting with `$` is the
    /// service's. A client may publish only to Basic Ingest topics
    /// (`$aws/rules/{rule}/...`) and subscribe only to the lifecycle event topics
    /// (`$aws/events/...`, when [`Profile::lifecycle_events`] is on); any other PUBLISH or
    /// SUBSCRIBE to a reserved topic, and RETAIN=1 on any of them, closes the connection.
    AwsIot,
}

/// Rate and duration quotas a broker enforces (AWS IoT Core's "Message broker and
/// protocol limits"). `None` everywhere: no quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quotas {
    /// Most PUBLISH a connection may send per second; one beyond it is discarded:
    /// not acknowledged, not routed, and reported.
    pub publishes_per_second: Option<u32>,
    /// Most PUBLISH bytes (topic and payload) a connection may send per second; a
    /// PUBLISH beyond it is delayed (with everything the connection sends after it)
    /// until the next second. A peer that sends more than one packet's worth
    /// meanwhile is closed ([`BufferFull`](crate::server::PolicyViolation::BufferFull)).
    pub publish_bytes_per_second: Option<u32>,
    /// Most CONNECT per second for one client id; one beyond it is closed without
    /// CONNACK.
    pub connects_per_second_per_client: Option<u32>,
    /// The longest [`Profile::session_expiry`] a user may set with
    /// [`Profile::with_session_expiry`]; `None`: any.
    pub max_session_expiry: Option<Duration>,
    /// How long after its first sending an unacknowledged outgoing QoS 1 PUBLISH is
    /// kept and resent; once that old, the server drops it and reports the drop
    /// ([`DropReason::RetryExpired`](crate::broker::DropReason::RetryExpired)), on a
    /// timer and when its session resumes. AWS IoT Core: one hour ("Maximum retry
    /// interval for delivering QoS 1 messages"). `None`: kept until acknowledged or its
    /// session ends. QoS 2 flows are never dropped: their receiver keeps the packet id
    /// until PUBREL (MQTT-4.3.3-2), so reusing it would make a new message a repeat.
    pub qos1_retry_limit: Option<Duration>,
}

impl Quotas {
    /// No quota at all.
    pub const NONE: Quotas = Quotas {
        publishes_per_second: None,
        publish_bytes_per_second: None,
        connects_per_second_per_client: None,
        max_session_expiry: None,
        qos1_retry_limit: None,
    };
}

/// A session expiry longer than the profile's [`Quotas::max_session_expiry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExpiryTooLong {
    /// What was asked.
    pub asked: Duration,
    /// The most the profile allows.
    pub max: Duration,
}

impl core::fmt::Display for ExpiryTooLong {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "a session expiry of {} s is over the profile's maximum of {} s",
            self.asked.as_secs(),
            self.max.as_secs()
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ExpiryTooLong {}

/// The Basic Ingest prefix AWS IoT Core leaves out of its topic limits.
const BASIC_INGEST: &[u8] = b"$aws/rules/";
/// The prefix of a shared subscription's filter, `$share/{ShareName}/{filter}`.
pub(crate) const SHARE_PREFIX: &[u8] = b"$share/";

/// A dialect of MQTT 3.1.1: the policies and limits a client or server follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Profile {
    /// The profile's name, for logs, vectors and command lines: `mqtt311`, `aws-iot` or
    /// `aws-iot-2025` (see [`Profile::by_name`]).
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
    /// Whether a filter `$share/{ShareName}/{filter}` makes a shared subscription: each
    /// matching message goes to one member of the group (MQTT 5's shared subscriptions,
    /// which AWS IoT Core, mosquitto 2, EMQX and HiveMQ also offer on 3.1.1). Off: it is
    /// an ordinary filter.
    pub shared_subscriptions: bool,
    /// Which `$` topics are reserved for the broker.
    pub reserved_topics: ReservedTopics,
    /// Whether the Basic Ingest prefix `$aws/rules/{rule}/` is left out of the topic
    /// length and level limits (AWS IoT Core today).
    pub basic_ingest: bool,
    /// Whether the broker publishes AWS IoT Core's lifecycle events (presence and
    /// subscriptions, under `$aws/events/`).
    pub lifecycle_events: bool,
    /// Rate quotas.
    pub quotas: Quotas,
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
            shared_subscriptions: false,
            reserved_topics: ReservedTopics::None,
            basic_ingest: false,
            lifecycle_events: false,
            quotas: Quotas::NONE,
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
            shared_subscriptions: false,
            reserved_topics: ReservedTopics::None,
            basic_ingest: false,
            lifecycle_events: false,
            quotas: Quotas::NONE,
        }
    }

    /// AWS IoT Core's message broker as AWS documents it today: the departures of
    /// [`aws_iot_core`](Self::aws_iot_core) (QoS 0/1 only, fresh ids on resend, `a/#`
    /// does not match `a`, keep-alive 30–1200 s, 8 filters per SUBSCRIBE, 50
    /// subscriptions, 100 unacknowledged QoS 1 each way), and since then: retained
    /// messages stored and sent on SUBSCRIBE only to a filter naming the topic exactly;
    /// shared subscriptions; the reserved `$` namespace with Basic Ingest outside the
    /// topic limits; lifecycle events; 100 publishes and 512 KiB per second per
    /// connection; one CONNECT per second per client id; a persistent session kept an
    /// hour by default, up to 7 days; an unacknowledged QoS 1 message resent for up to
    /// an hour, then dropped and reported.
    pub const fn aws_iot_core_2025() -> Profile {
        let mut p = Profile::aws_iot_core();
        p.name = "aws-iot-2025";
        p.retain = RetainPolicy::Store;
        p.retained_on_wildcard = false;
        p.shared_subscriptions = true;
        p.reserved_topics = ReservedTopics::AwsIot;
        p.basic_ingest = true;
        p.lifecycle_events = true;
        p.quotas = Quotas {
            publishes_per_second: Some(100),
            publish_bytes_per_second: Some(512 * 1024),
            connects_per_second_per_client: Some(1),
            max_session_expiry: Some(Duration::from_secs(7 * 24 * 3600)),
            qos1_retry_limit: Some(Duration::from_secs(3600)),
        };
        p
    }

    /// The preset called `name` (`mqtt311`, `aws-iot`, `aws-iot-2025`), if any.
    pub fn by_name(name: &str) -> Option<Profile> {
        Some(match name {
            "mqtt311" => Profile::mqtt311(),
            "aws-iot" => Profile::aws_iot_core(),
            "aws-iot-2025" => Profile::aws_iot_core_2025(),
            _ => return None,
        })
    }

    /// The names [`by_name`](Self::by_name) knows.
    pub const NAMES: [&'static str; 3] = ["mqtt311", "aws-iot", "aws-iot-2025"];

    /// This profile with persistent sessions kept for `expiry` after their connection
    /// ends; refused (nothing changes) beyond [`Quotas::max_session_expiry`].
    pub fn with_session_expiry(mut self, expiry: Duration) -> Result<Profile, ExpiryTooLong> {
        if let Some(max) = self.quotas.max_session_expiry {
            if expiry > max {
                return Err(ExpiryTooLong { asked: expiry, max });
            }
        }
        self.session_expiry = Some(expiry);
        Ok(self)
    }

    /// This profile with unacknowledged outgoing QoS 1 messages dropped `limit` after
    /// their first sending (`None`: never; see [`Quotas::qos1_retry_limit`]).
    pub const fn with_qos1_retry_limit(mut self, limit: Option<Duration>) -> Profile {
        self.quotas.qos1_retry_limit = limit;
        self
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

    /// Whether `topic` (a name or a filter) is within the length and level limits. The
    /// `$share/{ShareName}/` prefix of a shared subscription (when the profile has
    /// them) and the Basic Ingest prefix `$aws/rules/{rule}/` (when
    /// [`basic_ingest`](Self::basic_ingest)) are not counted.
    pub fn topic_within_limits(&self, topic: &[u8]) -> bool {
        let mut topic = topic;
        if self.shared_subscriptions {
            if let Some(rest) = topic.strip_prefix(SHARE_PREFIX) {
                topic = after_level(rest);
            }
        }
        if self.basic_ingest {
            if let Some(rest) = topic.strip_prefix(BASIC_INGEST) {
                topic = after_level(rest);
            }
        }
        topic.len() <= self.max_topic_len
            && self
                .max_topic_levels
                .is_none_or(|max| topic.iter().filter(|&&c| c == b'/').count() <= max)
    }
}

/// What follows the first level of `rest` and its `/` (empty if there is none).
fn after_level(rest: &[u8]) -> &[u8] {
    match rest.iter().position(|&c| c == b'/') {
        Some(i) => &rest[i + 1..],
        None => &[],
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

    #[test]
    fn the_2025_preset_changes_only_what_aws_changed_since_the_seed() {
        let (old, new) = (Profile::aws_iot_core(), Profile::aws_iot_core_2025());
        assert_eq!(new.retain, RetainPolicy::Store);
        assert!(!new.retained_on_wildcard);
        assert!(new.shared_subscriptions && new.lifecycle_events && new.basic_ingest);
        assert_eq!(new.reserved_topics, ReservedTopics::AwsIot);
        assert_eq!(new.quotas.publishes_per_second, Some(100));
        assert_eq!(new.quotas.publish_bytes_per_second, Some(524_288));
        assert_eq!(new.quotas.connects_per_second_per_client, Some(1));
        assert_eq!(new.quotas.qos1_retry_limit, Some(Duration::from_secs(3600)));
        assert_eq!(old.quotas.qos1_retry_limit, None);
        assert_eq!(Profile::mqtt311().quotas.qos1_retry_limit, None);
        let same = Profile {
            name: old.name,
            retain: old.retain,
            shared_subscriptions: false,
            reserved_topics: ReservedTopics::None,
            basic_ingest: false,
            lifecycle_events: false,
            quotas: Quotas::NONE,
            ..new
        };
        assert_eq!(same, old);
        assert_eq!(old.retain, RetainPolicy::Close);
        assert!(!Profile::mqtt311().shared_subscriptions);
    }

    #[test]
    fn the_qos1_retry_limit_is_configurable_and_off_by_default() {
        let short = Some(Duration::from_secs(2));
        let p = Profile::aws_iot_core_2025().with_qos1_retry_limit(short);
        assert_eq!(p.quotas.qos1_retry_limit, short);
        let off = p.with_qos1_retry_limit(None);
        assert_eq!(off.quotas.qos1_retry_limit, None);
        assert_eq!(
            Profile::mqtt311()
                .with_qos1_retry_limit(short)
                .quotas
                .qos1_retry_limit,
            short
        );
    }

    #[test]
    fn every_name_finds_its_preset_and_nothing_else_does() {
        for name in Profile::NAMES {
            assert_eq!(Profile::by_name(name).map(|p| p.name), Some(name));
        }
        assert_eq!(Profile::by_name("aws"), None);
    }

    #[test]
    fn session_expiry_is_configurable_up_to_seven_days_under_the_2025_preset() {
        let p = Profile::aws_iot_core_2025();
        assert_eq!(p.session_expiry, Some(Duration::from_secs(3600)));
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(
            p.clone()
                .with_session_expiry(week)
                .map(|p| p.session_expiry),
            Ok(Some(week))
        );
        let over = week + Duration::from_secs(1);
        assert_eq!(
            p.with_session_expiry(over),
            Err(ExpiryTooLong {
                asked: over,
                max: week
            })
        );
    }

    #[test]
    fn basic_ingest_and_share_prefixes_are_left_out_of_the_topic_limits() {
        let p = Profile::aws_iot_core_2025();
        assert!(p.topic_within_limits(b"$aws/rules/r/a/b/c/d/e/f/g/h"));
        assert!(!p.topic_within_limits(b"$aws/rules/r/a/b/c/d/e/f/g/h/i"));
        assert!(p.topic_within_limits(b"$share/g/a/b/c/d/e/f/g/h"));
        let long = [b"$aws/rules/r/".as_slice(), &[b'a'; 256]].concat();
        assert!(p.topic_within_limits(&long));
        assert!(!Profile::aws_iot_core().topic_within_limits(b"$aws/rules/r/a/b/c/d/e/f"));
    }
}
