//! Loading the packet vectors of `spec-vectors/packets/` (format: `spec-vectors/SCHEMA.md`).
//!
//! Generated strings (`{"repeat": s, "count": n}`) are expanded here, so the rest of the
//! test code sees plain hex and plain canonical JSON.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::canonical::from_hex;

/// What decoding a vector's input must give.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// A whole packet, in canonical JSON (generated strings expanded).
    Packet(Value),
    /// A decode error.
    Error { kind: String, rule: String },
    /// Not enough bytes yet: at least `needed` more.
    Incomplete(usize),
}

/// One packet vector.
#[derive(Debug, Clone)]
pub struct PacketVector {
    /// The file the vector comes from, without directory and extension.
    pub file: String,
    pub id: String,
    pub rules: Vec<String>,
    pub description: String,
    pub input: Vec<u8>,
    pub expect: Expect,
    pub encodes_to: Option<Vec<u8>>,
    pub max_packet_size: Option<usize>,
}

/// The `spec-vectors` directory.
pub fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("spec-vectors")
}

/// The packet vector files, sorted by name.
pub fn packet_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(spec_dir().join("packets"))
        .expect("spec-vectors/packets exists")
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Every packet vector, in file order.
pub fn load_packet_vectors() -> Vec<PacketVector> {
    let mut out = Vec::new();
    for path in packet_files() {
        let text = std::fs::read_to_string(&path).expect("readable vector file");
        let file = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let list: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a JSON array: {e}", path.display()));
        for v in &list {
            out.push(
                parse_vector(&file, v).unwrap_or_else(|e| panic!("{}: {e} in {v}", path.display())),
            );
        }
    }
    out
}

/// The string a generated-string object stands for, if `v` is one.
fn generated(v: &Map<String, Value>) -> Result<Option<String>, String> {
    if !v.contains_key("repeat") {
        return Ok(None);
    }
    if v.len() != 2 {
        return Err(format!(
            "a generated string has exactly repeat and count: {v:?}"
        ));
    }
    let unit = v["repeat"].as_str().ok_or("repeat is not a string")?;
    let count = v
        .get("count")
        .and_then(Value::as_u64)
        .ok_or("count is not a number")?;
    Ok(Some(unit.repeat(count as usize)))
}

/// `v` with every generated string replaced by the string it stands for.
pub fn expand(v: &Value) -> Result<Value, String> {
    Ok(match v {
        Value::Object(m) => match generated(m)? {
            Some(s) => Value::String(s),
            None => Value::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), expand(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
        },
        Value::Array(a) => Value::Array(a.iter().map(expand).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}

/// The bytes of a `hex` field: a hex string, or an array of hex strings and generated
/// strings of hex, concatenated.
pub fn hex_field(v: &Value) -> Result<Vec<u8>, String> {
    let piece = |p: &Value| -> Result<Vec<u8>, String> {
        match p {
            Value::String(s) => from_hex(s),
            Value::Object(m) => {
                let unit = m.get("repeat").and_then(Value::as_str).ok_or("bad piece")?;
                let count = m.get("count").and_then(Value::as_u64).ok_or("bad piece")?;
                if m.len() != 2 {
                    return Err("a generated string has exactly repeat and count".into());
                }
                Ok(from_hex(unit)?.repeat(count as usize))
            }
            other => Err(format!("not a hex piece: {other}")),
        }
    };
    match v {
        Value::Array(parts) => {
            let mut out = Vec::new();
            for p in parts {
                out.extend(piece(p)?);
            }
            Ok(out)
        }
        other => piece(other),
    }
}

const KEYS: [&str; 7] = [
    "id",
    "rules",
    "description",
    "hex",
    "expect",
    "encodes_to",
    "max_packet_size",
];

fn parse_vector(file: &str, v: &Value) -> Result<PacketVector, String> {
    let m = v.as_object().ok_or("a vector is an object")?;
    if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown field {k:?}"));
    }
    let s = |k: &str| -> Result<String, String> {
        m.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("{k} missing or not a string"))
    };
    let rules = m
        .get("rules")
        .and_then(Value::as_array)
        .ok_or("rules missing")?
        .iter()
        .map(|r| r.as_str().map(str::to_owned).ok_or("a rule is a string"))
        .collect::<Result<Vec<_>, _>>()?;
    let expect = m
        .get("expect")
        .and_then(Value::as_object)
        .ok_or("expect missing")?;
    if expect.len() != 1 {
        return Err("expect has exactly one of packet, error, incomplete".into());
    }
    let expect = if let Some(p) = expect.get("packet") {
        Expect::Packet(expand(p)?)
    } else if let Some(e) = expect.get("error") {
        let e = e.as_object().ok_or("error is an object")?;
        if e.len() != 2 {
            return Err("error has exactly kind and rule".into());
        }
        let f = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("error.{k} missing"))
        };
        Expect::Error {
            kind: f("kind")?,
            rule: f("rule")?,
        }
    } else if let Some(i) = expect.get("incomplete") {
        let i = i.as_object().ok_or("incomplete is an object")?;
        if i.len() != 1 {
            return Err("incomplete has exactly needed".into());
        }
        Expect::Incomplete(
            i.get("needed")
                .and_then(Value::as_u64)
                .ok_or("incomplete.needed missing")? as usize,
        )
    } else {
        return Err("expect has none of packet, error, incomplete".into());
    };
    Ok(PacketVector {
        file: file.to_owned(),
        id: s("id")?,
        rules,
        description: s("description")?,
        input: hex_field(m.get("hex").ok_or("hex missing")?)?,
        expect,
        encodes_to: m.get("encodes_to").map(hex_field).transpose()?,
        max_packet_size: m
            .get("max_packet_size")
            .map(|n| n.as_u64().map(|n| n as usize).ok_or("max_packet_size"))
            .transpose()?,
    })
}

/// Prefixes the client ids and topics of a canonical packet (`BROKER.md`, Prefixing),
/// so that scenarios played against a shared broker do not disturb each other.
pub fn prefix_packet(v: &Value, prefix: &str) -> Value {
    let mut v = v.clone();
    if prefix.is_empty() {
        return v;
    }
    let pre = |x: &mut Value| {
        if let Some(s) = x.as_str() {
            if !s.is_empty() {
                *x = Value::String(format!("{prefix}{s}"));
            }
        }
    };
    if let Some(o) = v.as_object_mut() {
        for k in ["client_id", "topic"] {
            if let Some(x) = o.get_mut(k) {
                pre(x);
            }
        }
        if let Some(w) = o.get_mut("will").and_then(Value::as_object_mut) {
            if let Some(x) = w.get_mut("topic") {
                pre(x);
            }
        }
        if let Some(fs) = o.get_mut("filters").and_then(Value::as_array_mut) {
            for f in fs {
                if f.is_string() {
                    pre(f);
                } else if let Some(x) = f.get_mut("filter") {
                    pre(x);
                }
            }
        }
    }
    v
}
