//! The `$SYS/broker/...` topics: the broker's counters, published by the broker itself
//! ([`Broker::publish`](mqtt_sansio::broker::Broker::publish)) as retained QoS 0
//! messages when the server starts and then every [`Server::set_sys_interval`], under
//! mosquitto's names where it has one (`mosquitto(8)`), and a summary of them logged
//! when the server stops.
//!
//! | topic (under `$SYS/broker/`) | value |
//! |---|---|
//! | `version` | `mqtt-sansio-tokio version X.Y.Z` |
//! | `uptime` | `N seconds` since [`Server::run`] began |
//! | `clients/connected` | sessions whose client is connected |
//! | `clients/disconnected` | persistent sessions whose client is not |
//! | `clients/total` | both |
//! | `connections/open` | open connections, CONNECT accepted or not |
//! | `connections/accepted` | TCP connections accepted |
//! | `connections/handshakes-failed` | TLS or WebSocket handshakes that failed |
//! | `connections/slow-dropped` | connections dropped because their write queue was full |
//! | `connections/connect-too-large` | connections closed for a first packet above [`Server::set_max_connect_size`] |
//! | `messages/received`, `messages/sent` | packets of any kind |
//! | `publish/messages/received`, `publish/messages/sent` | PUBLISH packets |
//! | `publish/messages/dropped` | messages dropped by a bound, for a session or a shared group |
//! | `publish/messages/dropped/REASON` | the same for one reason: `queue-full`, `offline-qos0`, `retry-expired`, `queue-bytes-full`, `budget-full` |
//! | `bytes/received`, `bytes/sent` | MQTT bytes read from the clients, and written to them |
//! | `retained messages/count` | retained messages held (these included) |
//!
//! They are not durable: the core never reports a change for a retained message under
//! `$SYS/`, so a [data directory](Server::data_dir) never holds them, and a restart
//! publishes fresh ones. Filters starting with a wildcard (`#`, `+/...`) do not match
//! them (MQTT-4.7.2-1). A profile that reserves the `$` topics for the service (AWS IoT
//! Core's, where subscribing to `$SYS/#` closes the connection) publishes none; one
//! that keeps no retained messages sends them to the subscribers of the moment only.
//!
//! [`Server::set_sys_interval`]: super::Server::set_sys_interval
//! [`Server::run`]: super::Server::run
//! [`Server::set_max_connect_size`]: super::Server::set_max_connect_size
//! [`Server::data_dir`]: super::Server::data_dir

use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::broker::BrokerStats;
use mqtt_sansio::profile::ReservedTopics;
use mqtt_sansio::server::Message;
use mqtt_sansio::{Profile, QoS, TopicName};

use super::{Core, Counters};

const PREFIX: &str = "$SYS/broker/";

/// When the `$SYS` topics are published, and since when the server runs.
pub(super) struct Sys {
    /// `None`: not published.
    interval: Option<Duration>,
    started: tokio::time::Instant,
    next: tokio::time::Instant,
}

impl Sys {
    /// Published every `interval` (none, or zero: never) from now on, unless `profile`
    /// reserves the `$` topics.
    pub(super) fn new(interval: Option<Duration>, profile: &Profile) -> Sys {
        let mut interval = interval.filter(|d| !d.is_zero());
        if interval.is_some() && profile.reserved_topics != ReservedTopics::None {
            tracing::info!(
                "no $SYS topics: the {} profile reserves the $ topics",
                profile.name
            );
            interval = None;
        }
        let now = tokio::time::Instant::now();
        Sys {
            interval,
            started: now,
            next: now,
        }
    }

    /// When the topics are due next (never, when they are not published).
    pub(super) fn due(&self) -> Option<tokio::time::Instant> {
        self.interval.map(|_| self.next)
    }

    fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// Every topic (after [`PREFIX`]) with its value.
fn figures(uptime: u64, s: &BrokerStats, c: &Counters) -> Vec<(String, String)> {
    let n = |topic: &str, v: u64| (topic.to_owned(), v.to_string());
    let mut all = vec![
        (
            "version".to_owned(),
            format!("mqtt-sansio-tokio version {}", env!("CARGO_PKG_VERSION")),
        ),
        ("uptime".to_owned(), format!("{uptime} seconds")),
        n("clients/connected", s.sessions_online as u64),
        n("clients/disconnected", s.sessions_stored as u64),
        n(
            "clients/total",
            (s.sessions_online + s.sessions_stored) as u64,
        ),
        n("connections/open", s.connections as u64),
        n("connections/accepted", c.accepted()),
        n("connections/handshakes-failed", c.handshakes_failed()),
        n("connections/slow-dropped", c.slow_dropped()),
        n("connections/connect-too-large", c.connect_too_large()),
        n("messages/received", s.packets_received),
        n("messages/sent", s.packets_sent),
        n("publish/messages/received", s.messages_received),
        n("publish/messages/sent", s.messages_sent),
        n(
            "publish/messages/dropped",
            s.dropped.total() + s.shared_dropped.total(),
        ),
    ];
    for ((reason, sessions), (_, shared)) in s.dropped.iter().zip(s.shared_dropped.iter()) {
        all.push(n(
            &format!("publish/messages/dropped/{reason}"),
            sessions + shared,
        ));
    }
    all.push(n("bytes/received", s.bytes_received));
    all.push(n("bytes/sent", c.bytes_sent()));
    all.push(n("retained messages/count", s.retained as u64));
    all
}

impl Core {
    /// Publishes the `$SYS` topics, if due, and sets when they are next.
    pub(super) fn publish_sys(&mut self) {
        let Some(interval) = self.sys.interval else {
            return;
        };
        let now = self.clock.now();
        let stats = self.broker.stats();
        for (topic, value) in figures(self.sys.uptime(), &stats, &self.counters) {
            let Ok(topic) = TopicName::new(Bytes::from(format!("{PREFIX}{topic}"))) else {
                continue;
            };
            let message = Message {
                topic,
                payload: Bytes::from(value),
                qos: QoS::AtMostOnce,
                retain: true,
            };
            self.broker.publish(now, message);
        }
        // A late tick does not make up for the ticks it missed.
        self.sys.next = tokio::time::Instant::now() + interval;
        self.drain();
    }

    /// Logs the counters, on shutdown.
    pub(super) fn log_summary(&self) {
        let s = self.broker.stats();
        let c = &self.counters;
        tracing::info!(
            "summary: up {} s; {} connection(s) open, {} accepted, {} connect(s); sessions: {} connected, {} stored; retained: {}",
            self.sys.uptime(),
            s.connections,
            c.accepted(),
            s.connects,
            s.sessions_online,
            s.sessions_stored,
            s.retained
        );
        let dropped: Vec<String> = s
            .dropped
            .iter()
            .zip(s.shared_dropped.iter())
            .map(|((reason, n), (_, shared))| format!("{reason} {}", n + shared))
            .collect();
        tracing::info!(
            "summary: publish in {}, out {}, dropped {} ({}); packets in {}, out {}; bytes in {}, out {}",
            s.messages_received,
            s.messages_sent,
            s.dropped.total() + s.shared_dropped.total(),
            dropped.join(", "),
            s.packets_received,
            s.packets_sent,
            s.bytes_received,
            c.bytes_sent()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_has_a_valid_topic_under_sys_broker() {
        let all = figures(3, &BrokerStats::default(), &Counters::default());
        for (topic, _) in &all {
            let name = format!("{PREFIX}{topic}");
            assert!(TopicName::new(Bytes::from(name.clone())).is_ok(), "{name}");
        }
        let names: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
        assert!(names.contains(&"publish/messages/dropped/queue-full"));
        assert_eq!(all[1], ("uptime".to_owned(), "3 seconds".to_owned()));
    }

    #[test]
    fn only_a_profile_that_leaves_the_dollar_topics_to_the_broker_gets_them() {
        let every = Some(Duration::from_secs(10));
        assert_eq!(Sys::new(every, &Profile::mqtt311()).interval, every);
        assert_eq!(Sys::new(every, &Profile::aws_iot_core()).interval, every);
        assert_eq!(
            Sys::new(every, &Profile::aws_iot_core_2025()).interval,
            None
        );
        let zero = Some(Duration::ZERO);
        assert_eq!(Sys::new(zero, &Profile::mqtt311()).interval, None);
    }
}
