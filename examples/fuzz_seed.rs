//! Writes the seed corpus of the fuzz targets: `cargo run --example fuzz_seed -- DIR`
//! fills `DIR/<target>/` (normally `fuzz/corpus/`, which is not committed).
//!
//! - `decode`: the bytes of every spec vector (`spec-vectors/packets/*.json`, each
//!   object's `"hex"` field), one packet of each type encoded here, packets at the
//!   Remaining Length boundaries, a few streams of several packets, and headers cut
//!   short.
//! - `roundtrip`: deterministic pseudo-random inputs, kept when the packet they build is
//!   of a type not yet seeded often enough, so that all 14 types are present.
//! - `client`, `server`, `broker`, `sim`: deterministic pseudo-random inputs of 64 bytes to
//!   8 KiB, each of which the targets read as a configuration and a run of operations.
//!
//! - `state`: exports of a client and of a broker holding sessions, flows in each stage,
//!   queues and retained messages, and cut-short copies of them.
//!
//! File names are a hash of the content, so running it again adds nothing new.

#[path = "../tests/support/noise.rs"]
mod noise;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use mqtt_sansio::{
    Binary, ConnAck, Connect, ConnectReturnCode, Login, MqttString, Packet, PacketId, Publish, QoS,
    QosPid, SubAck, SubAckCode, Subscribe, TopicFilter, TopicName, Unsubscribe, Will,
};
use noise::noise;

/// Roundtrip seeds kept per packet type.
const PER_TYPE: usize = 6;

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes `data` under `dir` named by its hash; returns whether the file is new.
fn write(dir: &Path, data: &[u8]) -> bool {
    let path = dir.join(format!("seed-{:016x}", fnv(data)));
    if path.exists() {
        return false;
    }
    fs::write(&path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    true
}

fn id(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn packets() -> Vec<Packet<Bytes>> {
    let topic = |s: &'static str| TopicName::from_static(s).expect("topic");
    let filter = |s: &'static str| TopicFilter::from_static(s).expect("filter");
    let text = |s: &'static str| MqttString::from_static(s).expect("text");
    let bin = |s: &'static [u8]| Binary::new(Bytes::from_static(s)).expect("binary");
    let mut out = vec![
        Packet::Connect(Connect {
            client_id: text(""),
            clean_session: true,
            keep_alive: 0,
            will: None,
            login: None,
        }),
        Packet::Connect(Connect {
            client_id: text("sensor-7"),
            clean_session: false,
            keep_alive: 60,
            will: Some(Will {
                topic: topic("status/sensor-7"),
                message: bin(b"offline"),
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
            login: Some(Login {
                username: text("user"),
                password: Some(bin(b"pass")),
            }),
        }),
        Packet::ConnAck(ConnAck::Accepted {
            session_present: true,
        }),
        Packet::ConnAck(ConnAck::Refused(ConnectReturnCode::NotAuthorized)),
        Packet::Publish(Publish::new(topic("a/b"), QosPid::AtMostOnce, &b"hi"[..])),
        Packet::Publish(Publish {
            dup: true,
            qos: QosPid::ExactlyOnce(id(0xFFFF)),
            retain: true,
            topic: topic("$SYS/é/€"),
            payload: Bytes::new(),
        }),
        Packet::PubAck(id(1)),
        Packet::PubRec(id(2)),
        Packet::PubRel(id(3)),
        Packet::PubComp(id(4)),
        Packet::Subscribe(
            Subscribe::new(
                id(5),
                &[
                    (filter("a/+/c"), QoS::AtMostOnce),
                    (filter("#"), QoS::ExactlyOnce),
                    (filter("+/x/#"), QoS::AtLeastOnce),
                ],
            )
            .expect("subscribe"),
        ),
        Packet::SubAck(
            SubAck::new(
                id(5),
                [
                    SubAckCode::Granted(QoS::AtMostOnce),
                    SubAckCode::Failure,
                    SubAckCode::Granted(QoS::ExactlyOnce),
                ],
            )
            .expect("suback"),
        ),
        Packet::Unsubscribe(Unsubscribe::new(id(6), &[filter("a/+/c"), filter("/")]).expect("u")),
        Packet::UnsubAck(id(6)),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect,
    ];
    // Remaining Lengths of 127 and 128, 16 383 and 16 384: one- to three-byte headers.
    for rl in [127usize, 128, 16_383, 16_384] {
        let payload = Bytes::from(vec![b'x'; rl - 5]);
        out.push(Packet::Publish(Publish::new(
            topic("t"),
            QosPid::AtLeastOnce(id(9)),
            payload,
        )));
    }
    out
}

/// Every `"hex"` string in a JSON value.
fn hex_fields(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) if k == "hex" => out.push(s.clone()),
                    _ => hex_fields(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| hex_fields(v, out)),
        _ => {}
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

fn vectors(root: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = fs::read_dir(root.join("spec-vectors/packets")) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut hexes = Vec::new();
        hex_fields(&json, &mut hexes);
        out.extend(hexes.iter().filter_map(|h| unhex(h)));
    }
    out
}

fn seed_decode(dir: &Path, root: &Path) -> (usize, usize) {
    let vectors = vectors(root);
    let mut n = 0;
    for v in &vectors {
        n += usize::from(write(dir, v));
    }
    let encoded: Vec<Bytes> = packets()
        .iter()
        .map(|p| p.to_bytes().expect("seed packet encodes"))
        .collect();
    for e in &encoded {
        n += usize::from(write(dir, e));
        // Cut inside the header and inside the body.
        n += usize::from(write(dir, &e[..1]));
        n += usize::from(write(dir, &e[..e.len() / 2]));
    }
    // Streams: all small packets back to back, and a few pairs.
    let small: Vec<&Bytes> = encoded.iter().filter(|e| e.len() < 100).collect();
    let mut all = BytesMut::new();
    for e in &small {
        all.extend_from_slice(e);
    }
    n += usize::from(write(dir, &all));
    for pair in small.windows(2) {
        n += usize::from(write(dir, &[&pair[0][..], &pair[1][..]].concat()));
    }
    // Headers only: the largest announced packet, and a five-byte Remaining Length.
    n += usize::from(write(dir, &[0x30, 0xFF, 0xFF, 0xFF, 0x7F]));
    n += usize::from(write(dir, &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]));
    (n, vectors.len())
}

fn seed_roundtrip(dir: &Path) -> usize {
    let mut per_type: BTreeMap<u8, usize> = BTreeMap::new();
    let mut n = 0;
    for seed in 0..20_000u64 {
        if per_type.len() == 14 && per_type.values().all(|&c| c >= PER_TYPE) {
            break;
        }
        let data = noise(seed, 16 + (seed as usize * 7) % 240);
        let Ok(p) = Packet::<Bytes>::arbitrary(&mut Unstructured::new(&data)) else {
            continue;
        };
        let count = per_type.entry(p.packet_type() as u8).or_default();
        if *count < PER_TYPE {
            *count += 1;
            n += usize::from(write(dir, &data));
        }
    }
    assert_eq!(per_type.len(), 14, "roundtrip seeds miss a packet type");
    n
}

/// The state-machine targets, seeded with pseudo-random runs of operations.
const MACHINE_TARGETS: [&str; 4] = ["client", "server", "broker", "sim"];

fn seed_machine(dir: &Path, salt: u64) -> usize {
    (0..32u64)
        .map(|i| {
            let len = 64usize << (i % 8);
            usize::from(write(dir, &noise(salt * 1000 + i, len)))
        })
        .sum()
}

/// A client export and a broker export with something in every part, in bytes.
fn exports() -> Vec<Vec<u8>> {
    use mqtt_sansio::session::{
        BrokerExport, ClientExport, Message, Outgoing, SessionExport, SessionRecord, Stage,
    };
    let message = |topic: &'static str, qos: QoS, payload: &'static [u8]| Message {
        topic: TopicName::from_static(topic).expect("valid topic"),
        payload: Bytes::from_static(payload),
        qos,
        retain: false,
    };
    let session = SessionExport {
        cursor: 3,
        outgoing: vec![
            Outgoing {
                id: id(2),
                message: message("a/b", QoS::AtLeastOnce, b"one"),
                stage: Stage::Published,
                sent: true,
                first_sent: Some(mqtt_sansio::Instant::from_secs(12)),
            },
            Outgoing {
                id: id(1),
                message: message("a", QoS::ExactlyOnce, b"two"),
                stage: Stage::Released,
                sent: true,
                first_sent: None,
            },
        ],
        inbound_qos2: vec![id(7), id(9)],
    };
    let client = ClientExport {
        session: session.clone(),
    };
    let record = SessionRecord {
        client_id: MqttString::from_static("sensor-1").expect("valid id"),
        expires: Some(mqtt_sansio::Instant::from_secs(3600)),
        subscriptions: vec![(
            TopicFilter::from_static("a/#").expect("valid filter"),
            QoS::ExactlyOnce,
        )],
        session,
        queue: vec![message("a/c", QoS::AtLeastOnce, b"queued")],
    };
    let mut kept = message("a/r", QoS::AtLeastOnce, b"retained");
    kept.retain = true;
    let broker = BrokerExport {
        sessions: vec![record],
        retained: vec![kept],
        shared: Vec::new(),
    };
    let mut out = vec![client.to_bytes(), broker.to_bytes()];
    for whole in out.clone() {
        out.push(whole[..whole.len() / 2].to_vec());
    }
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fuzz/corpus"));
    let mut report = Vec::new();
    let decode = out.join("decode");
    fs::create_dir_all(&decode).expect("corpus directory");
    let (written, vectors) = seed_decode(&decode, root);
    report.push(format!(
        "decode: {written} new ({vectors} from spec vectors)"
    ));
    let roundtrip = out.join("roundtrip");
    fs::create_dir_all(&roundtrip).expect("corpus directory");
    report.push(format!("roundtrip: {} new", seed_roundtrip(&roundtrip)));
    for (salt, target) in (1..).zip(MACHINE_TARGETS) {
        let dir = out.join(target);
        fs::create_dir_all(&dir).expect("corpus directory");
        report.push(format!("{target}: {} new", seed_machine(&dir, salt)));
    }
    let state = out.join("state");
    fs::create_dir_all(&state).expect("corpus directory");
    let seeded: usize = exports()
        .iter()
        .map(|e| usize::from(write(&state, e)))
        .sum();
    report.push(format!("state: {seeded} new"));
    println!("seeded {}: {}", out.display(), report.join(", "));
}
