//! The canonical JSON form of packets used by the spec vectors, and hex helpers.
//!
//! Shared by the vector runner, the scenario runners and the examples (included by
//! path). The form is documented in `spec-vectors/SCHEMA.md`:
//!
//! - every packet is an object with `"type"`: the specification's name (`"PUBLISH"`);
//! - text fields are JSON strings, binary fields and payloads are lowercase hex strings
//!   in fields whose name ends in `_hex`;
//! - absent optional fields are `null`.
#![allow(dead_code)]

use bytes::Bytes;
use mqtt_sansio::{
    Binary, ConnAck, Connect, ConnectReturnCode, Login, MqttString, Packet, PacketId, Publish, QoS,
    QosPid, SubAck, SubAckCode, Subscribe, TopicFilter, TopicName, Unsubscribe, Will,
};
use serde_json::{Value, json};

/// Lowercase hex of `b`.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes of a hex string; spaces are ignored.
pub fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in {s:?}"));
    }
    digits
        .chunks(2)
        .map(|p| {
            let h = std::str::from_utf8(p).map_err(|e| e.to_string())?;
            u8::from_str_radix(h, 16).map_err(|e| format!("bad hex {h:?}: {e}"))
        })
        .collect()
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// The canonical JSON of a packet.
pub fn packet_to_json<B: AsRef<[u8]>>(p: &Packet<B>) -> Value {
    let t = p.packet_type().name();
    match p {
        Packet::Connect(c) => json!({
            "type": t,
            "client_id": text(c.client_id.as_bytes()),
            "clean_session": c.clean_session,
            "keep_alive": c.keep_alive,
            "will": c.will.as_ref().map(|w| json!({
                "topic": text(w.topic.as_bytes()),
                "message_hex": to_hex(w.message.as_bytes()),
                "qos": w.qos.as_u8(),
                "retain": w.retain,
            })),
            "username": c.login.as_ref().map(|l| text(l.username.as_bytes())),
            "password_hex": c.login.as_ref().and_then(|l| l.password.as_ref()).map(|p| to_hex(p.as_bytes())),
        }),
        Packet::ConnAck(a) => json!({
            "type": t,
            "session_present": a.session_present(),
            "return_code": a.code(),
        }),
        Packet::Publish(p) => json!({
            "type": t,
            "dup": p.dup,
            "qos": p.qos.qos().as_u8(),
            "retain": p.retain,
            "topic": text(p.topic.as_bytes()),
            "packet_id": p.qos.packet_id().map(|id| id.get()),
            "payload_hex": to_hex(p.payload.as_ref()),
        }),
        Packet::PubAck(id)
        | Packet::PubRec(id)
        | Packet::PubRel(id)
        | Packet::PubComp(id)
        | Packet::UnsubAck(id) => json!({ "type": t, "packet_id": id.get() }),
        Packet::Subscribe(s) => json!({
            "type": t,
            "packet_id": s.packet_id.get(),
            "filters": s.filters().map(|(f, q)| json!({
                "filter": text(f.as_bytes()),
                "qos": q.as_u8(),
            })).collect::<Vec<_>>(),
        }),
        Packet::SubAck(s) => json!({
            "type": t,
            "packet_id": s.packet_id.get(),
            "return_codes": s.codes().map(|c| c.as_u8()).collect::<Vec<_>>(),
        }),
        Packet::Unsubscribe(u) => json!({
            "type": t,
            "packet_id": u.packet_id.get(),
            "filters": u.filters().map(|f| text(f.as_bytes())).collect::<Vec<_>>(),
        }),
        Packet::PingReq | Packet::PingResp | Packet::Disconnect => json!({ "type": t }),
    }
}

fn field<'a>(v: &'a Value, k: &str) -> Result<&'a Value, String> {
    v.get(k)
        .ok_or_else(|| format!("missing field {k:?} in {v}"))
}

fn get_str<'a>(v: &'a Value, k: &str) -> Result<&'a str, String> {
    field(v, k)?
        .as_str()
        .ok_or_else(|| format!("{k:?} is not a string in {v}"))
}

fn get_bool(v: &Value, k: &str) -> Result<bool, String> {
    Ok(v.get(k).and_then(Value::as_bool).unwrap_or(false))
}

fn get_u64(v: &Value, k: &str) -> Result<u64, String> {
    field(v, k)?
        .as_u64()
        .ok_or_else(|| format!("{k:?} is not a number in {v}"))
}

fn get_hex(v: &Value, k: &str) -> Result<Bytes, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(Bytes::new()),
        Some(Value::String(s)) => from_hex(s).map(Bytes::from),
        Some(other) => Err(format!("{k:?} is not a hex string: {other}")),
    }
}

fn packet_id(v: &Value) -> Result<PacketId, String> {
    let n = get_u64(v, "packet_id")?;
    u16::try_from(n)
        .ok()
        .and_then(PacketId::new)
        .ok_or_else(|| format!("invalid packet_id {n}"))
}

fn qos(v: &Value, k: &str) -> Result<QoS, String> {
    let n = v.get(k).and_then(Value::as_u64).unwrap_or(0);
    u8::try_from(n)
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("invalid qos {n}"))
}

fn e<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |err| format!("{what}: {err:?}")
}

/// The packet a canonical JSON object describes.
pub fn packet_from_json(v: &Value) -> Result<Packet<Bytes>, String> {
    let t = get_str(v, "type")?;
    Ok(match t {
        "CONNECT" => {
            let will = match v.get("will") {
                None | Some(Value::Null) => None,
                Some(w) => Some(Will {
                    topic: TopicName::try_from(get_str(w, "topic")?).map_err(e("will topic"))?,
                    message: Binary::new(get_hex(w, "message_hex")?).map_err(e("will message"))?,
                    qos: qos(w, "qos")?,
                    retain: get_bool(w, "retain")?,
                }),
            };
            let login = match v.get("username") {
                None | Some(Value::Null) => None,
                Some(u) => Some(Login {
                    username: MqttString::try_from(
                        u.as_str()
                            .ok_or_else(|| format!("username not a string in {v}"))?,
                    )
                    .map_err(e("username"))?,
                    password: match v.get("password_hex") {
                        None | Some(Value::Null) => None,
                        Some(_) => {
                            Some(Binary::new(get_hex(v, "password_hex")?).map_err(e("password"))?)
                        }
                    },
                }),
            };
            Packet::Connect(Connect {
                client_id: MqttString::try_from(get_str(v, "client_id")?)
                    .map_err(e("client_id"))?,
                clean_session: get_bool(v, "clean_session")?,
                keep_alive: u16::try_from(get_u64(v, "keep_alive")?).map_err(e("keep_alive"))?,
                will,
                login,
            })
        }
        "CONNACK" => {
            let code = get_u64(v, "return_code")?;
            if code == 0 {
                Packet::ConnAck(ConnAck::Accepted {
                    session_present: get_bool(v, "session_present")?,
                })
            } else {
                let c = u8::try_from(code)
                    .ok()
                    .and_then(ConnectReturnCode::from_u8)
                    .ok_or_else(|| format!("invalid return_code {code}"))?;
                Packet::ConnAck(ConnAck::Refused(c))
            }
        }
        "PUBLISH" => {
            let q = qos(v, "qos")?;
            let qp = match q {
                QoS::AtMostOnce => QosPid::AtMostOnce,
                _ => QosPid::new(q, packet_id(v)?),
            };
            Packet::Publish(Publish {
                dup: get_bool(v, "dup")?,
                qos: qp,
                retain: get_bool(v, "retain")?,
                topic: TopicName::try_from(get_str(v, "topic")?).map_err(e("topic"))?,
                payload: get_hex(v, "payload_hex")?,
            })
        }
        "PUBACK" => Packet::PubAck(packet_id(v)?),
        "PUBREC" => Packet::PubRec(packet_id(v)?),
        "PUBREL" => Packet::PubRel(packet_id(v)?),
        "PUBCOMP" => Packet::PubComp(packet_id(v)?),
        "UNSUBACK" => Packet::UnsubAck(packet_id(v)?),
        "SUBSCRIBE" => {
            let list = field(v, "filters")?
                .as_array()
                .ok_or("filters is not an array")?;
            let mut filters = Vec::new();
            for f in list {
                filters.push((
                    TopicFilter::try_from(get_str(f, "filter")?).map_err(e("filter"))?,
                    qos(f, "qos")?,
                ));
            }
            Packet::Subscribe(Subscribe::new(packet_id(v)?, &filters).map_err(e("subscribe"))?)
        }
        "SUBACK" => {
            let list = field(v, "return_codes")?
                .as_array()
                .ok_or("return_codes is not an array")?;
            let mut codes = Vec::new();
            for c in list {
                let n = c.as_u64().ok_or("return code is not a number")?;
                codes.push(
                    u8::try_from(n)
                        .ok()
                        .and_then(SubAckCode::from_u8)
                        .ok_or_else(|| format!("invalid SUBACK code {n}"))?,
                );
            }
            Packet::SubAck(SubAck::new(packet_id(v)?, codes).map_err(e("suback"))?)
        }
        "UNSUBSCRIBE" => {
            let list = field(v, "filters")?
                .as_array()
                .ok_or("filters is not an array")?;
            let mut filters = Vec::new();
            for f in list {
                let s = f.as_str().ok_or("filter is not a string")?;
                filters.push(TopicFilter::try_from(s).map_err(e("filter"))?);
            }
            Packet::Unsubscribe(
                Unsubscribe::new(packet_id(v)?, &filters).map_err(e("unsubscribe"))?,
            )
        }
        "PINGREQ" => Packet::PingReq,
        "PINGRESP" => Packet::PingResp,
        "DISCONNECT" => Packet::Disconnect,
        other => return Err(format!("unknown packet type {other:?}")),
    })
}
