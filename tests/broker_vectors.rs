//! Plays every broker scenario vector in `spec-vectors/scenarios/broker/` against the
//! [`Broker`], as `spec-vectors/scenarios/BROKER.md` describes them. Vectors marked
//! prefixable are played twice: as written, and with every client id and topic
//! prefixed, to show that the prefixing a checker does against a shared broker keeps
//! their meaning.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use mqtt_sansio::server::{Authorizer, Message, PublishDecision, ServerConfig};
use mqtt_sansio::{ConnectReturnCode, Login, MqttString, Packet, Profile, QoS, TopicFilter};
use serde_json::Value;
use support::canonical::{from_hex, packet_from_json, packet_to_json};
use support::harness::Harness;
use support::vectors::prefix_packet;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/spec-vectors/scenarios/broker");

/// The broker-side configuration a vector's `setup` asks for.
#[derive(Default)]
struct Setup {
    credentials: Vec<(String, Vec<u8>)>,
    deny_publish: BTreeSet<String>,
    deny_subscribe: BTreeSet<String>,
    no_wildcards: bool,
}

impl Authorizer for Setup {
    fn connect(
        &self,
        _client_id: &MqttString<Bytes>,
        login: Option<&Login<Bytes>>,
    ) -> Result<(), ConnectReturnCode> {
        if self.credentials.is_empty() {
            return Ok(());
        }
        let Some(login) = login else {
            return Err(ConnectReturnCode::NotAuthorized);
        };
        let password = login.password.as_ref().map(|p| p.as_bytes().to_vec());
        let ok = self
            .credentials
            .iter()
            .any(|(u, p)| u == login.username.as_str() && Some(p) == password.as_ref());
        if ok {
            Ok(())
        } else {
            Err(ConnectReturnCode::BadUserNameOrPassword)
        }
    }

    fn subscribe(
        &self,
        _client_id: &MqttString<Bytes>,
        filter: &TopicFilter<Bytes>,
        requested: QoS,
    ) -> Option<QoS> {
        let denied = self
            .deny_subscribe
            .iter()
            .any(|d| filter.as_str().ends_with(d.as_str()));
        if denied || (self.no_wildcards && filter.has_wildcards()) {
            None
        } else {
            Some(requested)
        }
    }

    fn publish(&self, _client_id: &MqttString<Bytes>, message: &Message) -> PublishDecision {
        if self
            .deny_publish
            .iter()
            .any(|d| message.topic.as_str().ends_with(d.as_str()))
        {
            PublishDecision::Close
        } else {
            PublishDecision::Allow
        }
    }
}

fn strings(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn config(setup: Option<&Value>) -> ServerConfig {
    let mut config = ServerConfig::default();
    let Some(s) = setup else { return config };
    let mut auth = Setup::default();
    if let Some(n) = s.get("max_queued").and_then(Value::as_u64) {
        config.max_queued = n as usize;
    }
    if let Some(n) = s.get("max_inflight").and_then(Value::as_u64) {
        config.max_inflight = n as usize;
    }
    if let Some(list) = s.get("credentials").and_then(Value::as_array) {
        for c in list {
            let u = c["username"].as_str().expect("username").to_string();
            let p = c["password"]
                .as_str()
                .expect("password")
                .as_bytes()
                .to_vec();
            auth.credentials.push((u, p));
        }
    }
    auth.deny_publish = strings(s.get("deny_publish"));
    auth.deny_subscribe = strings(s.get("deny_subscribe"));
    auth.no_wildcards = s
        .get("no_wildcards")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    config.authorizer = Arc::new(auth);
    config
}

struct Player<'a> {
    id: &'a str,
    prefix: &'a str,
    h: Harness,
    vars: BTreeMap<String, Value>,
}

impl Player<'_> {
    fn conn(&self, step: &Value, key: &str) -> u64 {
        step[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: {key} needs a connection number", self.id))
    }

    /// A packet to send: variables substituted, prefix applied.
    fn outgoing(&self, p: &Value) -> Packet<Bytes> {
        let mut p = prefix_packet(p, self.prefix);
        if let Some(o) = p.as_object_mut() {
            for (_, x) in o.iter_mut() {
                if let Some(name) = x.as_str().and_then(|s| s.strip_prefix('?')) {
                    *x = self
                        .vars
                        .get(name)
                        .unwrap_or_else(|| panic!("{}: unbound ?{name}", self.id))
                        .clone();
                }
            }
        }
        packet_from_json(&p).unwrap_or_else(|e| panic!("{}: bad packet {p}: {e}", self.id))
    }

    /// Whether `got` matches `want`, binding variables into `vars`.
    fn matches(
        &self,
        want: &Value,
        got: &Packet<Bytes>,
        vars: &mut BTreeMap<String, Value>,
    ) -> bool {
        let actual = packet_to_json(got);
        let mut want = prefix_packet(want, self.prefix);
        let Some(o) = want.as_object_mut() else {
            return false;
        };
        for (k, x) in o.iter_mut() {
            if let Some(name) = x.as_str().and_then(|s| s.strip_prefix('?')) {
                let Some(a) = actual.get(k) else { return false };
                match vars.get(name) {
                    Some(bound) if bound != a => return false,
                    _ => {
                        vars.insert(name.to_string(), a.clone());
                    }
                }
                *x = a.clone();
            }
        }
        match packet_from_json(&want) {
            Ok(p) => packet_to_json(&p) == actual,
            Err(e) => panic!("{}: bad expected packet {want}: {e}", self.id),
        }
    }

    /// Whether the pending packets of `c` start with `want` (all of them when `all`).
    fn try_expect(
        &self,
        c: u64,
        want: &[Value],
        closed: Option<bool>,
    ) -> Option<BTreeMap<String, Value>> {
        let got: Vec<Packet<Bytes>> = self
            .h
            .inbox
            .get(&c)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        if got.len() < want.len() {
            return None;
        }
        let mut vars = self.vars.clone();
        for (w, g) in want.iter().zip(&got) {
            if !self.matches(w, g, &mut vars) {
                return None;
            }
        }
        if let Some(closed) = closed {
            if got.len() != want.len() || self.h.is_closed(c) != closed {
                return None;
            }
        }
        Some(vars)
    }

    fn consume(&mut self, c: u64, n: usize) {
        if let Some(q) = self.h.inbox.get_mut(&c) {
            q.drain(..n);
        }
    }

    fn pending(&self, c: u64) -> Vec<Value> {
        self.h
            .inbox
            .get(&c)
            .map(|q| q.iter().map(packet_to_json).collect())
            .unwrap_or_default()
    }

    fn step(&mut self, i: usize, s: &Value) {
        let at = format!("{} [prefix {:?}] step {i} {s}", self.id, self.prefix);
        let o = s
            .as_object()
            .unwrap_or_else(|| panic!("{at}: step is not an object"));
        if o.contains_key("open") {
            let c = self.conn(s, "open");
            self.h.open(c);
        } else if o.contains_key("send") {
            let c = self.conn(s, "send");
            let mut bytes = Vec::new();
            if let Some(h) = s.get("hex").and_then(Value::as_str) {
                bytes = from_hex(h).unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            if let Some(p) = s.get("packet") {
                bytes.extend_from_slice(&self.outgoing(p).to_bytes().expect("encodable"));
            }
            for p in s
                .get("packets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                bytes.extend_from_slice(&self.outgoing(p).to_bytes().expect("encodable"));
            }
            assert!(!self.h.is_closed(c), "{at}: sending on a closed connection");
            self.h.send_bytes(c, &bytes);
        } else if o.contains_key("expect") {
            let c = self.conn(s, "expect");
            let want = s["packets"].as_array().cloned().unwrap_or_default();
            match self.try_expect(c, &want, None) {
                Some(vars) => {
                    self.vars = vars;
                    self.consume(c, want.len());
                }
                None => panic!("{at}: connection {c} has {:?}", self.pending(c)),
            }
        } else if o.contains_key("expect_one_of") {
            let c = self.conn(s, "expect_one_of");
            let choices = s["choices"].as_array().cloned().unwrap_or_default();
            let hit = choices.iter().find_map(|ch| {
                let want = ch["packets"].as_array().cloned().unwrap_or_default();
                let closed = ch.get("closed").and_then(Value::as_bool).unwrap_or(false);
                self.try_expect(c, &want, Some(closed))
                    .map(|v| (v, want.len()))
            });
            match hit {
                Some((vars, n)) => {
                    self.vars = vars;
                    self.consume(c, n);
                }
                None => panic!(
                    "{at}: connection {c} (closed: {}) has {:?}",
                    self.h.is_closed(c),
                    self.pending(c)
                ),
            }
        } else if o.contains_key("expect_closed") {
            let c = self.conn(s, "expect_closed");
            assert!(
                self.pending(c).is_empty(),
                "{at}: unexpected {:?}",
                self.pending(c)
            );
            assert!(self.h.is_closed(c), "{at}: connection {c} is open");
        } else if o.contains_key("expect_nothing") {
            let c = self.conn(s, "expect_nothing");
            assert!(
                self.pending(c).is_empty(),
                "{at}: unexpected {:?}",
                self.pending(c)
            );
            assert!(!self.h.is_closed(c), "{at}: connection {c} was closed");
        } else if let Some(ms) = s.get("advance_ms").and_then(Value::as_u64) {
            self.h.advance(ms);
        } else if o.contains_key("close") {
            let c = self.conn(s, "close");
            self.h.drop_conn(c);
        } else if let Some(names) = s.get("distinct").and_then(Value::as_array) {
            let values: Vec<&Value> = names
                .iter()
                .map(|n| {
                    let n = n.as_str().unwrap_or_default();
                    self.vars
                        .get(n)
                        .unwrap_or_else(|| panic!("{at}: unbound {n}"))
                })
                .collect();
            let set: BTreeSet<String> = values.iter().map(|v| v.to_string()).collect();
            assert_eq!(set.len(), values.len(), "{at}: values {values:?} repeat");
        } else {
            panic!("{at}: unknown step");
        }
    }
}

fn play(v: &Value, prefix: &str) {
    let id = v["id"].as_str().expect("id");
    let name = v["profile"].as_str().unwrap_or_default();
    let mut profile =
        Profile::by_name(name).unwrap_or_else(|| panic!("{id}: unknown profile {name:?}"));
    if let Some(on) = v
        .get("setup")
        .and_then(|s| s.get("shared_subscriptions"))
        .and_then(Value::as_bool)
    {
        profile.shared_subscriptions = on;
    }
    if let Some(ms) = v
        .get("setup")
        .and_then(|s| s.get("qos1_retry_ms"))
        .and_then(Value::as_u64)
    {
        profile = profile.with_qos1_retry_limit(Some(std::time::Duration::from_millis(ms)));
    }
    let mut p = Player {
        id,
        prefix,
        h: Harness::with_config(profile, config(v.get("setup"))),
        vars: BTreeMap::new(),
    };
    for (i, s) in v["steps"].as_array().expect("steps").iter().enumerate() {
        let s = support::vectors::expand(s).unwrap_or_else(|e| panic!("{id} step {i}: {e}"));
        p.step(i, &s);
    }
}

fn vectors() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(DIR)
        .expect("vector directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("readable");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        out.push((path.display().to_string(), v));
    }
    out
}

#[test]
fn every_broker_vector_plays_as_written_and_with_prefixes() {
    let all = vectors();
    assert!(!all.is_empty());
    for (path, v) in &all {
        for key in ["id", "rules", "description", "profile", "steps"] {
            assert!(v.get(key).is_some(), "{path}: missing {key}");
        }
        play(v, "");
        if v.get("prefixable").and_then(Value::as_bool).unwrap_or(true) {
            play(v, "pfx-");
        }
    }
}

#[test]
fn vector_ids_are_unique_and_match_their_file_names() {
    let mut seen = BTreeSet::new();
    for (path, v) in vectors() {
        let id = v["id"].as_str().expect("id");
        assert!(seen.insert(id.to_string()), "{id} twice");
        assert!(path.ends_with(&format!("/{id}.json")), "{path} holds {id}");
    }
}

#[test]
fn every_server_and_broker_normative_id_is_covered_by_a_broker_vector() {
    let statements = support::coverage::load_statements(&support::vectors::spec_dir());
    let wanted: BTreeSet<&str> = statements
        .iter()
        .filter(|s| s.checkable && (s.layer == "server" || s.layer == "broker"))
        .map(|s| s.id.as_str())
        .collect();
    assert!(wanted.len() >= 60, "{} server/broker rows", wanted.len());
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for (_, v) in vectors() {
        for r in v["rules"].as_array().expect("rules") {
            covered.insert(r.as_str().expect("rule id").to_string());
        }
    }
    let missing: Vec<&&str> = wanted.iter().filter(|id| !covered.contains(**id)).collect();
    assert!(missing.is_empty(), "no broker vector covers {missing:?}");
}

#[test]
fn every_aws_departure_has_a_vector() {
    let aws: BTreeSet<String> = vectors()
        .into_iter()
        .filter(|(_, v)| v["profile"] == "aws-iot")
        .map(|(_, v)| v["id"].as_str().unwrap_or_default().to_string())
        .collect();
    for departure in [
        "aws-qos2-publish-gets-no-ack-and-is-not-routed",
        "aws-qos2-subscribe-gets-no-suback",
        "aws-retained-publish-closes-the-connection",
        "aws-hash-does-not-match-the-parent-level",
        "aws-keep-alive-is-clamped-to-thirty-seconds",
        "aws-client-id-over-128-bytes-is-rejected",
        "aws-topic-over-the-limits-closes-the-connection",
        "aws-at-most-eight-filters-per-subscribe",
        "aws-at-most-fifty-subscriptions",
        "aws-resume-resends-with-a-fresh-id-and-no-dup",
        "aws-packets-before-connack-close-the-connection",
        "aws-will-at-qos2-closes-without-connack",
        "aws-payload-over-128-kib-closes-the-connection",
        "aws-takeover-closes-the-older-connection",
    ] {
        assert!(aws.contains(departure), "missing {departure}");
    }
}

#[test]
fn every_point_of_aws_iot_core_today_has_a_vector_citing_its_aws_page() {
    let vs: BTreeMap<String, Value> = vectors()
        .into_iter()
        .filter(|(_, v)| v["profile"] == "aws-iot-2025")
        .map(|(_, v)| (v["id"].as_str().unwrap_or_default().to_string(), v))
        .collect();
    for (id, v) in &vs {
        let source = v["source"].as_str().unwrap_or_default();
        assert!(
            source.starts_with("https://docs.aws.amazon.com/"),
            "{id}: no AWS page in source: {source:?}"
        );
    }
    for point in [
        "aws2025-retained-message-goes-only-to-an-exact-filter",
        "aws2025-empty-retained-payload-deletes",
        "aws2025-retain-on-a-reserved-topic-closes-the-connection",
        "aws2025-shared-subscription-gives-each-message-to-one-member",
        "aws2025-shared-messages-wait-while-every-member-is-offline",
        "aws2025-publish-to-an-unimplemented-reserved-topic-closes",
        "aws2025-subscribe-to-an-unimplemented-reserved-topic-closes",
        "aws2025-basic-ingest-prefix-is-outside-the-topic-limits",
        "aws2025-publishes-over-100-per-second-are-discarded",
        "aws2025-publish-bytes-over-512-kib-per-second-are-delayed",
        "aws2025-one-connect-per-second-per-client-id",
        "aws2025-at-most-eight-filters-per-subscribe",
        "aws2025-at-most-fifty-subscriptions",
        "aws2025-keep-alive-is-clamped-to-thirty-seconds",
        "aws2025-persistent-session-expires-after-an-hour",
        "aws2025-presence-events-announce-connect-and-disconnect",
        "aws2025-subscription-events-announce-subscribe-and-unsubscribe",
    ] {
        assert!(vs.contains_key(point), "missing {point}");
    }
}
