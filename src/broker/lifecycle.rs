//! Lifecycle events: the presence and subscription messages AWS IoT Core publishes
//! about its clients, in its JSON form
//! (<https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html>).
//!
//! - `$aws/events/presence/connected/{clientId}` and
//!   `$aws/events/presence/disconnected/{clientId}` (with `clientInitiatedDisconnect`
//!   and `disconnectReason`);
//! - `$aws/events/subscriptions/subscribed/{clientId}` and
//!   `.../unsubscribed/{clientId}` (with `topics`).
//!
//! `timestamp` is the broker's [`Instant`] in milliseconds (its caller's clock);
//! `sessionIdentifier` names the connection; `principalIdentifier` is the user name
//! when the client gave one; `versionNumber` grows with every accepted CONNECT. A
//! client id containing `+` or `#` gets no lifecycle events, as AWS documents.
//!
//! The broker's own messages of any kind enter with [`Broker::publish`].

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::Bytes;

use super::{Broker, ConnId};
use crate::server::{CloseReason, Message, PolicyViolation};
use crate::time::Instant;
use crate::types::{QoS, TopicName};

/// What the lifecycle events say about one accepted connection.
#[derive(Debug, Clone)]
struct Presence {
    client_id: String,
    session: u64,
    principal: Option<String>,
    version: u64,
}

/// The lifecycle state of a broker: who is connected, under which session
/// identifier.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    conns: BTreeMap<ConnId, Presence>,
    next: u64,
}

/// AWS's `disconnectReason` for a close, and whether the client initiated it. `None`:
/// the transport ended under the connection.
pub(crate) fn disconnect_reason(reason: Option<CloseReason>) -> (&'static str, bool) {
    let name = match reason {
        None => "CONNECTION_LOST",
        Some(CloseReason::ClientDisconnect) => "CLIENT_INITIATED_DISCONNECT",
        Some(CloseReason::Takeover) => "DUPLICATE_CLIENTID",
        Some(CloseReason::KeepAliveTimeout) => "MQTT_KEEP_ALIVE_TIMEOUT",
        Some(CloseReason::Application) => "SERVER_INITIATED_DISCONNECT",
        Some(CloseReason::Policy(PolicyViolation::NotAuthorized)) => "AUTH_ERROR",
        Some(CloseReason::Policy(PolicyViolation::Throttled)) => "THROTTLED",
        Some(
            CloseReason::Malformed(_)
            | CloseReason::Protocol(_)
            | CloseReason::Policy(_)
            | CloseReason::Refused(_)
            | CloseReason::ConnectTimeout,
        ) => "CLIENT_ERROR",
    };
    (name, reason == Some(CloseReason::ClientDisconnect))
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn event(topic: String, body: String) -> Option<Message> {
    Some(Message {
        topic: TopicName::new(Bytes::from(topic)).ok()?,
        payload: Bytes::from(body),
        qos: QoS::AtLeastOnce,
        retain: false,
    })
}

impl Presence {
    fn head(&self, now: Instant, event_type: &str) -> String {
        let mut head = format!(
            "{{\"clientId\":{},\"timestamp\":{},\"eventType\":\"{}\",\"sessionIdentifier\":\"{:032x}\"",
            json_string(&self.client_id),
            now.as_millis(),
            event_type,
            self.session
        );
        if let Some(p) = &self.principal {
            head.push_str(&format!(",\"principalIdentifier\":{}", json_string(p)));
        }
        head
    }
}

impl Lifecycle {
    /// A CONNECT accepted on `conn`: remembers it and returns the `connected` event
    /// (`None` for a client id with `+` or `#`).
    pub(crate) fn connected(
        &mut self,
        now: Instant,
        conn: ConnId,
        client_id: &[u8],
        principal: Option<&str>,
    ) -> Option<Message> {
        let client_id = String::from_utf8_lossy(client_id).into_owned();
        if client_id.contains(['+', '#']) {
            return None;
        }
        self.next += 1;
        let p = Presence {
            client_id,
            session: self.next,
            principal: principal.map(String::from),
            version: self.next,
        };
        let body = format!(
            "{},\"versionNumber\":{}}}",
            p.head(now, "connected"),
            p.version
        );
        let topic = format!("$aws/events/presence/connected/{}", p.client_id);
        self.conns.insert(conn, p);
        event(topic, body)
    }

    /// `conn` closed for `reason`: forgets it and returns the `disconnected` event, if
    /// a `connected` one was published.
    pub(crate) fn disconnected(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: Option<CloseReason>,
    ) -> Option<Message> {
        let p = self.conns.remove(&conn)?;
        let (why, by_client) = disconnect_reason(reason);
        let body = format!(
            "{},\"clientInitiatedDisconnect\":{},\"disconnectReason\":\"{}\",\"versionNumber\":{}}}",
            p.head(now, "disconnected"),
            by_client,
            why,
            p.version
        );
        event(
            format!("$aws/events/presence/disconnected/{}", p.client_id),
            body,
        )
    }

    /// `conn` subscribed (`subscribed`) or unsubscribed (`!subscribed`) `topics`.
    pub(crate) fn subscriptions(
        &self,
        now: Instant,
        conn: ConnId,
        subscribed: bool,
        topics: &[&str],
    ) -> Option<Message> {
        let p = self.conns.get(&conn)?;
        let kind = if subscribed {
            "subscribed"
        } else {
            "unsubscribed"
        };
        let list: Vec<String> = topics.iter().map(|t| json_string(t)).collect();
        let body = format!("{},\"topics\":[{}]}}", p.head(now, kind), list.join(","));
        event(
            format!("$aws/events/subscriptions/{kind}/{}", p.client_id),
            body,
        )
    }
}

impl Broker {
    /// Publishes `m` as the broker itself (status topics such as `$SYS/broker/...`,
    /// say): routed to every matching subscription and, with RETAIN=1, kept as the
    /// retained message where the profile keeps them, as a client's PUBLISH would be,
    /// but from no connection and past no [`Authorizer`](crate::server::Authorizer)
    /// or reserved-topic check, and outside
    /// [`BrokerConfig::max_retained`](super::BrokerConfig::max_retained), which bounds
    /// what clients store. It is not counted as received
    /// ([`BrokerStats::messages_received`](super::BrokerStats::messages_received)).
    /// Retained messages under `$SYS/` are never durable (no change is reported for
    /// them, [`export`](Broker::export) leaves them out and [`import`](Broker::import)
    /// drops them, reporting their removal): they are the broker's figures,
    /// recomputed while it runs.
    pub fn publish(&mut self, now: Instant, m: Message) {
        let m = if m.retain && self.profile.retain == crate::profile::RetainPolicy::Store {
            self.retain(&m, true);
            // Kept: routed as any message is (RETAIN=0 on routing, MQTT-3.3.1-9).
            Message { retain: false, ..m }
        } else {
            m
        };
        self.route(now, m);
        self.settle(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_and_its_disconnect_carry_the_same_session_and_version() {
        let mut l = Lifecycle::default();
        let c = l
            .connected(Instant::from_millis(5), ConnId(1), b"dev\"1", Some("alice"))
            .expect("an event");
        assert_eq!(c.topic.as_str(), "$aws/events/presence/connected/dev\"1");
        assert_eq!(
            &c.payload[..],
            br#"{"clientId":"dev\"1","timestamp":5,"eventType":"connected","sessionIdentifier":"00000000000000000000000000000001","principalIdentifier":"alice","versionNumber":1}"#
        );
        let s = l
            .subscriptions(Instant::from_millis(6), ConnId(1), true, &["a/#", "b"])
            .expect("an event");
        assert_eq!(
            s.topic.as_str(),
            "$aws/events/subscriptions/subscribed/dev\"1"
        );
        assert!(s.payload.ends_with(br#""topics":["a/#","b"]}"#));
        let d = l
            .disconnected(
                Instant::from_millis(7),
                ConnId(1),
                Some(CloseReason::ClientDisconnect),
            )
            .expect("an event");
        assert_eq!(
            &d.payload[..],
            br#"{"clientId":"dev\"1","timestamp":7,"eventType":"disconnected","sessionIdentifier":"00000000000000000000000000000001","principalIdentifier":"alice","clientInitiatedDisconnect":true,"disconnectReason":"CLIENT_INITIATED_DISCONNECT","versionNumber":1}"#
        );
        assert_eq!(
            l.disconnected(Instant::from_millis(8), ConnId(1), None),
            None
        );
    }

    #[test]
    fn a_client_id_with_a_wildcard_gets_no_lifecycle_events() {
        let mut l = Lifecycle::default();
        assert_eq!(l.connected(Instant::ZERO, ConnId(1), b"a+b", None), None);
        assert_eq!(l.disconnected(Instant::ZERO, ConnId(1), None), None);
    }

    #[test]
    fn every_close_reason_maps_to_an_aws_disconnect_reason() {
        assert_eq!(disconnect_reason(None), ("CONNECTION_LOST", false));
        assert_eq!(
            disconnect_reason(Some(CloseReason::Takeover)),
            ("DUPLICATE_CLIENTID", false)
        );
        assert_eq!(
            disconnect_reason(Some(CloseReason::KeepAliveTimeout)),
            ("MQTT_KEEP_ALIVE_TIMEOUT", false)
        );
        assert_eq!(
            disconnect_reason(Some(CloseReason::Policy(PolicyViolation::Throttled))),
            ("THROTTLED", false)
        );
    }
}
