//! Runs every client scenario vector in `spec-vectors/scenarios/client/` (format:
//! `spec-vectors/scenarios/CLIENT.md`).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::client::{Action, Client, ClientConfig, Event, Lost, Reason};
use mqtt_sansio::{Instant, Packet, PacketId, Profile, QoS, TopicFilter, TopicName};
use serde_json::{Value, json};
use support::canonical::{from_hex, packet_from_json, packet_to_json};

const DIR: &str = "spec-vectors/scenarios/client";

fn profile(name: &str) -> Result<Profile, String> {
    match name {
        "mqtt311" => Ok(Profile::mqtt311()),
        "aws-iot" => Ok(Profile::aws_iot_core()),
        other => Err(format!("unknown profile {other:?}")),
    }
}

fn config(profile: &Profile, v: Option<&Value>) -> Result<ClientConfig, String> {
    let mut c = ClientConfig::for_profile(profile);
    let Some(v) = v else { return Ok(c) };
    let obj = v.as_object().ok_or("config is not an object")?;
    for (k, x) in obj {
        let n = || {
            x.as_u64()
                .ok_or_else(|| format!("config {k} is not a number"))
        };
        match k.as_str() {
            "connack_timeout_ms" => c.connack_timeout = Duration::from_millis(n()?),
            "pingresp_timeout_ms" => c.pingresp_timeout = Duration::from_millis(n()?),
            "max_inflight" => c.max_inflight = n()? as usize,
            "max_packet_size" => c.max_packet_size = n()? as usize,
            "manual_acks" => c.manual_acks = x.as_bool().ok_or("manual_acks is not a bool")?,
            other => return Err(format!("unknown config field {other:?}")),
        }
    }
    Ok(c)
}

/// A packet in canonical form, normalized (absent fields filled in).
fn normal_packet(v: &Value) -> Result<Value, String> {
    Ok(packet_to_json(&packet_from_json(v)?))
}

/// The expected action with its packets normalized, so that a vector may leave out
/// fields whose value is false, null or empty.
fn normal_action(v: &Value) -> Result<Value, String> {
    let mut v = v.clone();
    if let Some(obj) = v.as_object_mut() {
        for key in ["send", "deliver", "packet"] {
            if let Some(p) = obj.get(key) {
                let p = normal_packet(p)?;
                obj.insert(key.into(), p);
            }
        }
    }
    Ok(v)
}

fn action_to_json(a: &Action) -> Value {
    match a {
        Action::Send(p) => json!({ "send": packet_to_json(p) }),
        Action::Deliver(p) => json!({ "deliver": packet_to_json(&Packet::Publish(p.clone())) }),
        Action::Event(e) => event_to_json(e),
        Action::Close(r) => reason_to_json(r),
        // The vectors do not ask for changes (`ClientConfig::report_changes`).
        Action::Change(c) => json!({ "change": format!("{c:?}") }),
        // Nor for reconnecting (`ClientConfig::reconnect`).
        Action::Reconnect => json!({ "reconnect": true }),
    }
}

fn event_to_json(e: &Event) -> Value {
    match e {
        Event::Connected { session_present } => {
            json!({ "event": "connected", "session_present": session_present })
        }
        Event::Published(i) => json!({ "event": "published", "packet_id": i.get() }),
        Event::Received(i) => json!({ "event": "received", "packet_id": i.get() }),
        Event::Completed(i) => json!({ "event": "completed", "packet_id": i.get() }),
        Event::Subscribed { packet_id, codes } => json!({
            "event": "subscribed",
            "packet_id": packet_id.get(),
            "return_codes": codes.iter().map(|c| c.as_u8()).collect::<Vec<_>>(),
        }),
        Event::Unsubscribed(i) => json!({ "event": "unsubscribed", "packet_id": i.get() }),
        Event::UnexpectedAck {
            packet_type,
            packet_id,
        } => json!({
            "event": "unexpected_ack",
            "packet_type": packet_type.name(),
            "packet_id": packet_id.get(),
        }),
        Event::TimedOut {
            packet_type,
            packet_id,
        } => json!({
            "event": "timed_out",
            "packet_type": packet_type.name(),
            "packet_id": packet_id.get(),
        }),
        Event::Lost(l) => match l {
            Lost::Publish(p) => json!({
                "event": "lost", "what": "publish",
                "packet": packet_to_json(&Packet::Publish(p.clone())),
            }),
            Lost::Release(i) => json!({ "event": "lost", "what": "release", "packet_id": i.get() }),
            Lost::Subscribe(s) => json!({
                "event": "lost", "what": "subscribe",
                "packet": packet_to_json(&Packet::Subscribe(s.clone())),
            }),
            Lost::Unsubscribe(u) => json!({
                "event": "lost", "what": "unsubscribe",
                "packet": packet_to_json(&Packet::Unsubscribe(u.clone())),
            }),
        },
    }
}

fn reason_to_json(r: &Reason) -> Value {
    match r {
        Reason::Refused(code) => json!({ "close": "refused", "return_code": *code as u8 }),
        Reason::Decode(e) => {
            json!({ "close": "decode_error", "rule": e.rule(), "error": e.kind() })
        }
        Reason::Protocol(p) => json!({
            "close": "protocol_error", "rule": p.rule, "expected": p.expected, "got": p.got,
        }),
        other => json!({ "close": other.kind() }),
    }
}

fn u16_field(v: &Value, k: &str) -> Result<u16, String> {
    v.get(k)
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| format!("{k:?} missing or not a u16 in {v}"))
}

fn qos_field(v: &Value) -> Result<QoS, String> {
    let n = v.get("qos").and_then(Value::as_u64).unwrap_or(0);
    u8::try_from(n)
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("invalid qos in {v}"))
}

fn str_field<'a>(v: &'a Value, k: &str) -> Result<&'a str, String> {
    v.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{k:?} missing or not a string in {v}"))
}

fn filter(s: &str) -> Result<TopicFilter<Bytes>, String> {
    TopicFilter::try_from(s).map_err(|e| format!("filter {s:?}: {e:?}"))
}

/// Runs one input; returns the command's result as JSON (`null` for non-commands).
fn apply(client: &mut Client, now: Instant, input: &Value) -> Result<Value, String> {
    let kind = str_field(input, "kind")?;
    fn res<T: Into<Value>>(r: Result<T, mqtt_sansio::ClientError>) -> Value {
        match r {
            Ok(v) => json!({ "ok": v.into() }),
            Err(e) => json!({ "error": e.kind() }),
        }
    }
    let id = |i: Option<PacketId>| i.map(PacketId::get);
    Ok(match kind {
        "connect" => {
            let p = packet_from_json(input.get("packet").ok_or("connect without packet")?)?;
            let Packet::Connect(c) = p else {
                return Err("connect packet is not a CONNECT".into());
            };
            res(client.connect(now, c).map(|()| Value::Null))
        }
        "publish" => {
            let topic = TopicName::try_from(str_field(input, "topic")?)
                .map_err(|e| format!("topic: {e:?}"))?;
            let payload = match input.get("payload_size").and_then(Value::as_u64) {
                Some(n) => vec![0u8; n as usize],
                None => from_hex(
                    input
                        .get("payload_hex")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                )?,
            };
            let retain = input
                .get("retain")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            res(client
                .publish(now, topic, qos_field(input)?, retain, payload)
                .map(id))
        }
        "subscribe" => {
            let list = input
                .get("filters")
                .and_then(Value::as_array)
                .ok_or("no filters")?;
            let mut filters = Vec::new();
            for f in list {
                filters.push((filter(str_field(f, "filter")?)?, qos_field(f)?));
            }
            res(client.subscribe(now, &filters).map(PacketId::get))
        }
        "unsubscribe" => {
            let list = input
                .get("filters")
                .and_then(Value::as_array)
                .ok_or("no filters")?;
            let mut filters = Vec::new();
            for f in list {
                filters.push(filter(f.as_str().ok_or("filter is not a string")?)?);
            }
            res(client.unsubscribe(now, &filters).map(PacketId::get))
        }
        "ack" => {
            let i = PacketId::new(u16_field(input, "packet_id")?).ok_or("packet_id 0")?;
            res(client.ack(now, i).map(|()| Value::Null))
        }
        "disconnect" => res(client.disconnect(now).map(|()| Value::Null)),
        "receive" => {
            let p = packet_from_json(input.get("packet").ok_or("receive without packet")?)?;
            res(client.handle_packet(now, p).map(|()| Value::Null))
        }
        "receive_hex" => {
            let b = from_hex(str_field(input, "hex")?)?;
            res(client.handle_bytes(now, &b).map(|()| Value::Null))
        }
        "timeout" => {
            client.handle_timeout(now);
            Value::Null
        }
        "connection_lost" => {
            client.connection_lost(now);
            Value::Null
        }
        other => return Err(format!("unknown input kind {other:?}")),
    })
}

fn run_vector(v: &Value) -> Result<(), String> {
    for k in ["id", "description", "profile"] {
        str_field(v, k)?;
    }
    let rules = v.get("rules").and_then(Value::as_array).ok_or("no rules")?;
    if rules.iter().any(|r| r.as_str().is_none()) {
        return Err("a rule is not a string".into());
    }
    let profile = profile(str_field(v, "profile")?)?;
    let config = config(&profile, v.get("config"))?;
    let mut client = Client::with_config(profile, config);
    let steps = v.get("steps").and_then(Value::as_array).ok_or("no steps")?;
    let mut now = Instant::ZERO;
    for (n, step) in steps.iter().enumerate() {
        let ctx = |m: String| format!("step {n}: {m}");
        if let Some(at) = step.get("at_ms") {
            let at = at
                .as_u64()
                .ok_or_else(|| ctx("at_ms is not a number".into()))?;
            if at < now.as_millis() {
                return Err(ctx("at_ms goes back in time".into()));
            }
            now = Instant::from_millis(at);
        }
        let input = step.get("input").ok_or_else(|| ctx("no input".into()))?;
        let result = apply(&mut client, now, input).map_err(ctx)?;
        let expected_result = step.get("result").cloned().unwrap_or(if result.is_null() {
            Value::Null
        } else {
            // Commands without "result" must succeed; the value is not checked.
            match result.get("ok") {
                Some(ok) => json!({ "ok": ok }),
                None => json!({ "ok": "(any)" }),
            }
        });
        if result != expected_result {
            return Err(ctx(format!("result {result}, expected {expected_result}")));
        }
        let mut actions = Vec::new();
        while let Some(a) = client.poll_action() {
            actions.push(action_to_json(&a));
        }
        let expected: Vec<Value> = step
            .get("expect")
            .and_then(Value::as_array)
            .ok_or_else(|| ctx("no expect".into()))?
            .iter()
            .map(normal_action)
            .collect::<Result<_, _>>()
            .map_err(ctx)?;
        if actions != expected {
            return Err(ctx(format!(
                "actions\n  got:      {}\n  expected: {}",
                Value::Array(actions),
                Value::Array(expected)
            )));
        }
        if let Some(t) = step.get("next_timeout_ms") {
            let got = client.poll_timeout().map(|t| t.as_millis());
            if t.as_u64() != got {
                return Err(ctx(format!("poll_timeout {got:?}, expected {t}")));
            }
        }
    }
    Ok(())
}

fn vectors() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

#[test]
fn every_client_scenario_vector_gives_the_expected_actions() {
    let all = vectors();
    assert!(!all.is_empty());
    let mut failures = Vec::new();
    let mut ids = BTreeSet::new();
    for (file, v) in &all {
        let id = v.get("id").and_then(Value::as_str).unwrap_or("?");
        assert!(ids.insert(id.to_string()), "duplicate vector id {id}");
        if let Err(e) = run_vector(v) {
            failures.push(format!("{file} ({id}): {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The normative ids whose layer is `client` in the project's list of normative ids.
const CLIENT_RULES: [&str; 23] = [
    "MQTT-2.3.1-2",
    "MQTT-2.3.1-3",
    "MQTT-2.3.1-6",
    "MQTT-3.1.0-1",
    "MQTT-3.1.2-23",
    "MQTT-3.1.3-7",
    "MQTT-3.3.1-1",
    "MQTT-3.3.4-1",
    "MQTT-3.14.4-1",
    "MQTT-3.14.4-2",
    "MQTT-4.3.1-1",
    "MQTT-4.3.2-1",
    "MQTT-4.3.2-2",
    "MQTT-4.3.3-1",
    "MQTT-4.3.3-2",
    "MQTT-4.4.0-1",
    "MQTT-4.5.0-2",
    "MQTT-4.6.0-1",
    "MQTT-4.6.0-2",
    "MQTT-4.6.0-3",
    "MQTT-4.6.0-4",
    "MQTT-4.8.0-1",
    "MQTT-4.8.0-2",
];

#[test]
fn the_client_vectors_cover_every_client_rule_and_name_only_known_rules() {
    let mut covered = BTreeSet::new();
    for (file, v) in vectors() {
        for r in v["rules"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            assert!(
                r.starts_with("MQTT-") || r.starts_with('§'),
                "{file}: rule {r}"
            );
            covered.insert(r.to_string());
        }
    }
    let missing: Vec<_> = CLIENT_RULES
        .iter()
        .filter(|r| !covered.contains(**r))
        .collect();
    assert!(
        missing.is_empty(),
        "client rules without a vector: {missing:?}"
    );
    // The ids must be the client rows of the normative list; tests/coverage.rs checks
    // that every tag of every vector is a known id.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec-vectors");
    let statements = support::coverage::load_statements(&dir);
    let client: BTreeSet<String> = statements
        .iter()
        .filter(|s| s.layer == "client")
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(client, CLIENT_RULES.iter().map(|r| r.to_string()).collect());
}

#[test]
fn action_json_names_every_packet_in_canonical_form() {
    // The runner's own encoding: a packet in an action is the canonical form.
    let p = Packet::PubRel(PacketId::new(7).unwrap());
    assert_eq!(
        action_to_json(&Action::Send(p)),
        json!({ "send": { "type": "PUBREL", "packet_id": 7 } })
    );
}
