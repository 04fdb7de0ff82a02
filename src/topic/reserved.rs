//! Reserved topics: what a client may do with the `$` topics a profile reserves for
//! the broker ([`ReservedTopics`]).
//!
//! AWS IoT Core reserves every topic that starts with `$`
//! (<https://docs.aws.amazon.com/iot/latest/developerguide/reserved-topics.html>). This
//! broker implements two of its families: Basic Ingest (`$aws/rules/{rule}/...`, which
//! clients publish to) and the lifecycle events (`$aws/events/...`, which clients
//! subscribe to, when the profile publishes them). Any other PUBLISH or SUBSCRIBE to a
//! reserved topic closes the connection, and so does RETAIN=1 on a reserved topic
//! (<https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-retain>).

use crate::profile::{Profile, ReservedTopics, SHARE_PREFIX};

/// Why a PUBLISH or SUBSCRIBE to a reserved topic is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The topic is reserved and the broker does not implement it for this use.
    NotImplemented,
    /// RETAIN=1 on a reserved topic.
    Retain,
}

const BASIC_INGEST: &[u8] = b"$aws/rules/";
const EVENTS: &[u8] = b"$aws/events/";

/// Whether `topic` is reserved under `profile`.
pub fn is_reserved(profile: &Profile, topic: &[u8]) -> bool {
    match profile.reserved_topics {
        ReservedTopics::None => false,
        ReservedTopics::AwsIot => topic.first() == Some(&b'$'),
    }
}

/// Whether a client may publish to `topic` with `retain`.
pub fn check_publish(profile: &Profile, topic: &[u8], retain: bool) -> Result<(), Refusal> {
    if !is_reserved(profile, topic) {
        return Ok(());
    }
    if retain {
        return Err(Refusal::Retain);
    }
    // Basic Ingest: `$aws/rules/{rule}/` followed by at least one level.
    let rule = topic.strip_prefix(BASIC_INGEST).and_then(|rest| {
        let i = rest.iter().position(|&c| c == b'/')?;
        (i > 0 && i + 1 < rest.len()).then_some(())
    });
    match rule {
        Some(()) => Ok(()),
        None => Err(Refusal::NotImplemented),
    }
}

/// Whether a client may subscribe to `filter`. A shared subscription's filter is
/// judged by the filter it shares.
pub fn check_subscribe(profile: &Profile, filter: &[u8]) -> Result<(), Refusal> {
    let mut filter = filter;
    if profile.shared_subscriptions {
        if let Some(rest) = filter.strip_prefix(SHARE_PREFIX) {
            if let Some(i) = rest.iter().position(|&c| c == b'/') {
                filter = &rest[i + 1..];
            }
        }
    }
    if !is_reserved(profile, filter) {
        return Ok(());
    }
    if profile.lifecycle_events && filter.starts_with(EVENTS) {
        return Ok(());
    }
    Err(Refusal::NotImplemented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_aws_only_basic_ingest_may_be_published_and_only_events_subscribed() {
        let p = Profile::aws_iot_core_2025();
        assert_eq!(check_publish(&p, b"$aws/rules/r/a", false), Ok(()));
        assert_eq!(
            check_publish(&p, b"$aws/rules/r", false),
            Err(Refusal::NotImplemented)
        );
        assert_eq!(
            check_publish(&p, b"$aws/rules//a", false),
            Err(Refusal::NotImplemented)
        );
        assert_eq!(
            check_publish(&p, b"$aws/things/t/shadow/update", false),
            Err(Refusal::NotImplemented)
        );
        assert_eq!(
            check_publish(&p, b"$aws/rules/r/a", true),
            Err(Refusal::Retain)
        );
        assert_eq!(check_publish(&p, b"a/b", true), Ok(()));
        assert_eq!(
            check_subscribe(&p, b"$aws/events/presence/connected/+"),
            Ok(())
        );
        assert_eq!(check_subscribe(&p, b"$share/g/$aws/events/#"), Ok(()));
        assert_eq!(
            check_subscribe(&p, b"$aws/rules/r/#"),
            Err(Refusal::NotImplemented)
        );
        assert_eq!(check_subscribe(&p, b"$SYS/#"), Err(Refusal::NotImplemented));
        assert_eq!(check_subscribe(&p, b"#"), Ok(()));
    }

    #[test]
    fn without_reserved_topics_a_dollar_topic_is_ordinary() {
        let p = Profile::mqtt311();
        assert_eq!(check_publish(&p, b"$aws/things/t", true), Ok(()));
        assert_eq!(check_subscribe(&p, b"$SYS/#"), Ok(()));
    }
}
