//! The logic of `cargo run --example decode`: bytes in, one JSON line per packet out.
//!
//! Shared by the example and by `tests/decode_tool.rs` (both include it by path, next to
//! `canonical.rs`). Each output line is the canonical JSON of a packet,
//! `{"error":{"kind":..,"rule":..}}` or `{"incomplete":{"needed":N}}`.
#![allow(dead_code)]

use bytes::BytesMut;
use mqtt_sansio::{DecodeError, Decoder, Status};
use serde_json::{Value, json};

use super::canonical::{from_hex, packet_to_json};

/// The JSON line for an error.
pub fn error_json(e: &DecodeError) -> Value {
    json!({ "error": { "kind": e.kind(), "rule": e.rule() } })
}

/// The JSON line for an incomplete input.
pub fn incomplete_json(needed: usize) -> Value {
    json!({ "incomplete": { "needed": needed } })
}

/// Decodes the packets of `input` back to back, zero-copy. Decoding stops at the first
/// error (errors are final) or at an incomplete packet at the end; an input that ends
/// exactly after a packet adds no line.
pub fn decode_stream(decoder: &Decoder, input: &[u8]) -> Vec<Value> {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    loop {
        match decoder.decode_bytes(&mut buf) {
            Ok(Status::Complete(p, _)) => {
                out.push(packet_to_json::<bytes::Bytes>(&p));
                if buf.is_empty() {
                    return out;
                }
            }
            Ok(Status::Incomplete(n)) => {
                out.push(incomplete_json(n));
                return out;
            }
            Err(e) => {
                out.push(error_json(&e));
                return out;
            }
        }
    }
}

/// The outcome of decoding one packet from the start of `input`, as a JSON line.
pub fn decode_one(decoder: &Decoder, input: &[u8]) -> Value {
    match decoder.decode(input) {
        Ok(Status::Complete(p, _)) => packet_to_json::<&[u8]>(&p),
        Ok(Status::Incomplete(n)) => incomplete_json(n),
        Err(e) => error_json(&e),
    }
}

/// Hex mode: every non-blank line of `text` that does not start with `#` is the hex of
/// a byte stream (usually one packet), decoded with [`decode_stream`]. A line that is
/// not hex gives `{"input_error": "..."}`, so output lines stay aligned with packets.
pub fn hex_lines(decoder: &Decoder, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match from_hex(line) {
            Ok(bytes) => out.extend(decode_stream(decoder, &bytes).iter().map(Value::to_string)),
            Err(e) => out.push(json!({ "input_error": e }).to_string()),
        }
    }
    out
}

/// Raw mode: `input` is one byte stream of packets back to back.
pub fn raw_lines(decoder: &Decoder, input: &[u8]) -> Vec<String> {
    if input.is_empty() {
        return Vec::new();
    }
    decode_stream(decoder, input)
        .iter()
        .map(Value::to_string)
        .collect()
}

/// Whether an output line reports a packet (not an error, incomplete input or bad hex).
pub fn is_packet_line(line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .ok()
        .is_some_and(|v| v.get("type").is_some())
}
