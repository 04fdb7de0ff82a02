//! Runs every packet vector of `spec-vectors/packets/` (format: `spec-vectors/SCHEMA.md`).
//!
//! Each vector is checked
//! - whole, through both `decode` (borrowed) and `decode_bytes` (zero-copy, whose text
//!   fields and payload must point into the input buffer);
//! - with trailing bytes appended: the same outcome, the same consumed count, the trailing
//!   bytes left untouched;
//! - on every strict prefix: incomplete, asking for exactly the documented number of
//!   bytes, or, for an error vector, the same error once the bytes that decide it are
//!   there (see `decided_at`) and on every longer prefix;
//! - by encoding the expected packet and comparing with `encodes_to` or `hex`.

mod support;

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use mqtt_sansio::{DecodeError, Decoder, Packet, Status};
use support::canonical::{packet_from_json, packet_to_json};
use support::decode_tool::decode_one;
use support::fuzz_checks::fields;
use support::vectors::{Expect, PacketVector, load_packet_vectors, packet_files};

/// Appended after every whole vector: a PINGREQ and a stray byte.
const TRAILER: [u8; 3] = [0xC0, 0x00, 0xFF];

/// Prefixes checked through `decode_bytes` (which copies the prefix into a buffer):
/// all of them for inputs up to this size, the first and last ones beyond.
const ALL_PREFIXES_UP_TO: usize = 4096;

/// The Remaining Length field at the start of `rest` (the bytes after the first byte),
/// read independently of the crate.
enum Length {
    Done { value: usize, used: usize },
    Partial,
    Malformed,
}

fn remaining_length(rest: &[u8]) -> Length {
    let mut value = 0;
    for (i, &b) in rest.iter().enumerate() {
        if i == 4 {
            return Length::Malformed;
        }
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Length::Done { value, used: i + 1 };
        }
    }
    if rest.len() >= 4 {
        Length::Malformed
    } else {
        Length::Partial
    }
}

/// The number of further bytes the decoder must ask for when it has only `prefix`
/// (SCHEMA.md, "Incomplete input"): 2 with no byte, 1 inside the fixed header, and
/// exactly the missing bytes once the fixed header is complete.
fn documented_needed(prefix: &[u8]) -> Option<usize> {
    let Some(rest) = prefix.get(1..) else {
        return Some(2);
    };
    match remaining_length(rest) {
        Length::Partial => Some(1),
        Length::Done { value, used } => (1 + used + value).checked_sub(prefix.len()),
        Length::Malformed => None,
    }
}

/// The length of the shortest prefix that decides an error of this kind: the first byte
/// for type and flag errors, the fifth byte for an over-long Remaining Length, the whole
/// fixed header for size errors, the whole packet for everything in the body.
fn decided_at(kind: &str, input: &[u8]) -> usize {
    match kind {
        "reserved_packet_type" | "invalid_flags" | "publish_qos3" | "publish_dup_with_qos0" => 1,
        "malformed_remaining_length" => 5,
        "invalid_remaining_length" | "packet_too_large" | "connect_too_large" => {
            match remaining_length(&input[1..]) {
                Length::Done { used, .. } => 1 + used,
                _ => panic!("a size error needs a complete Remaining Length"),
            }
        }
        _ => input.len(),
    }
}

fn decoder(v: &PacketVector) -> Decoder {
    match v.max_packet_size {
        Some(n) => Decoder::new().with_max_packet_size(n),
        None => Decoder::new(),
    }
}

fn same_error(e: &DecodeError, kind: &str, rule: &str) -> bool {
    e.kind() == kind && e.rule() == rule
}

/// Asserts that the zero-copy fields of `p` lie inside `base..base + len`.
fn assert_shares(v: &PacketVector, p: &Packet<Bytes>, base: usize, len: usize) {
    // SUBSCRIBE and UNSUBSCRIBE filters included: they are read from the packet's bytes.
    let ranges: Vec<(usize, usize)> = fields(p)
        .iter()
        .filter(|f| !f.is_empty())
        .map(|f| (f.as_ptr() as usize, f.len()))
        .collect();
    for (start, n) in ranges {
        assert!(
            start >= base && start + n <= base + len,
            "{}: a field of {n} bytes does not point into the input buffer",
            v.id
        );
    }
}

fn check_valid(v: &PacketVector, json: &serde_json::Value) {
    let d = decoder(v);
    let expected: Packet<Bytes> =
        packet_from_json(json).unwrap_or_else(|e| panic!("{}: expect.packet: {e}", v.id));
    let n = v.input.len();

    // Whole input, borrowed; the canonical JSON is compared once.
    match d.decode(&v.input) {
        Ok(Status::Complete(p, used)) => {
            assert_eq!(used, n, "{}: consumed", v.id);
            assert_eq!(&packet_to_json(&p), json, "{}: decoded packet", v.id);
            assert_eq!(p.to_owned(), expected, "{}", v.id);
        }
        other => panic!("{}: expected a packet, got {other:?}", v.id),
    }

    // With trailing bytes, borrowed and zero-copy.
    let mut with_trailer = v.input.clone();
    with_trailer.extend_from_slice(&TRAILER);
    match d.decode(&with_trailer) {
        Ok(Status::Complete(p, used)) => {
            assert_eq!(used, n, "{}: consumed with trailing bytes", v.id);
            assert_eq!(p.to_owned(), expected, "{}: with trailing bytes", v.id);
        }
        other => panic!("{}: with trailing bytes: {other:?}", v.id),
    }
    for input in [&v.input, &with_trailer] {
        let mut buf = BytesMut::from(&input[..]);
        let (base, len) = (buf.as_ptr() as usize, buf.len());
        match d.decode_bytes(&mut buf) {
            Ok(Status::Complete(p, used)) => {
                assert_eq!(used, n, "{}: decode_bytes consumed", v.id);
                assert_eq!(p, expected, "{}: decode_bytes", v.id);
                assert_shares(v, &p, base, len);
            }
            other => panic!("{}: decode_bytes: {other:?}", v.id),
        }
        assert_eq!(
            &buf[..],
            &input[n..],
            "{}: bytes left after the packet",
            v.id
        );
    }

    // Every strict prefix is incomplete.
    check_prefixes_incomplete(v, &d, n);

    // Encoding the expected packet gives the minimal form.
    let want = v.encodes_to.as_ref().unwrap_or(&v.input);
    let bytes = expected
        .to_bytes()
        .unwrap_or_else(|e| panic!("{}: encode: {e}", v.id));
    assert!(bytes[..] == want[..], "{}: encoding differs", v.id);
    assert_eq!(expected.encoded_len(), want.len(), "{}: encoded_len", v.id);
    if let Some(e) = &v.encodes_to {
        assert_ne!(e, &v.input, "{}: encodes_to repeats hex", v.id);
    }
}

fn check_prefixes_incomplete(v: &PacketVector, d: &Decoder, upto: usize) {
    for k in 0..upto {
        let prefix = &v.input[..k];
        let want = documented_needed(prefix).map(Status::Incomplete);
        let got = d.decode(prefix).map(|s| match s {
            Status::Complete(..) => panic!("{}: prefix of {k} bytes decoded", v.id),
            Status::Incomplete(n) => Status::<()>::Incomplete(n),
        });
        assert_eq!(got.ok(), want, "{}: prefix of {k} bytes", v.id);
        if k <= 64 || upto <= ALL_PREFIXES_UP_TO || upto - k <= 64 {
            let mut buf = BytesMut::from(prefix);
            match d.decode_bytes(&mut buf) {
                Ok(Status::Incomplete(n)) => assert_eq!(Some(Status::Incomplete(n)), want),
                other => panic!("{}: decode_bytes of {k} bytes: {other:?}", v.id),
            }
            assert_eq!(
                &buf[..],
                prefix,
                "{}: an incomplete decode changed the buffer",
                v.id
            );
        }
    }
}

fn check_error(v: &PacketVector, kind: &str, rule: &str) {
    let d = decoder(v);
    assert!(
        v.rules.iter().any(|r| r == rule),
        "{}: rules lack {rule}",
        v.id
    );
    let at = decided_at(kind, &v.input);
    assert!(
        at <= v.input.len(),
        "{}: input shorter than the deciding bytes",
        v.id
    );

    // Prefixes: incomplete up to the deciding byte, the error from there on.
    for k in 0..=v.input.len() {
        let prefix = &v.input[..k];
        let got = d.decode(prefix);
        if k < at {
            assert_eq!(
                got.map(|s| match s {
                    Status::Incomplete(n) => Some(n),
                    Status::Complete(..) => None,
                }),
                Ok(documented_needed(prefix)),
                "{}: prefix of {k} bytes",
                v.id
            );
        } else {
            match got {
                Err(e) if same_error(&e, kind, rule) => {}
                other => panic!("{}: prefix of {k} bytes: want {kind}, got {other:?}", v.id),
            }
        }
        if v.input.len() <= ALL_PREFIXES_UP_TO {
            let mut buf = BytesMut::from(prefix);
            match (k < at, d.decode_bytes(&mut buf)) {
                (true, Ok(Status::Incomplete(n))) => {
                    assert_eq!(Some(n), documented_needed(prefix), "{}: {k} bytes", v.id)
                }
                (false, Err(e)) if same_error(&e, kind, rule) => {}
                (_, other) => panic!("{}: decode_bytes of {k} bytes: {other:?}", v.id),
            }
            assert_eq!(&buf[..], prefix, "{}: the buffer changed", v.id);
        }
    }

    // Whole, with trailing bytes, and zero-copy: the error, and the buffer untouched.
    let mut with_trailer = v.input.clone();
    with_trailer.extend_from_slice(&TRAILER);
    for input in [&v.input, &with_trailer] {
        match d.decode(input) {
            Err(e) if same_error(&e, kind, rule) => {}
            other => panic!("{}: want {kind}, got {other:?}", v.id),
        }
        let mut buf = BytesMut::from(&input[..]);
        match d.decode_bytes(&mut buf) {
            Err(e) if same_error(&e, kind, rule) => {}
            other => panic!("{}: decode_bytes: want {kind}, got {other:?}", v.id),
        }
        assert_eq!(
            &buf[..],
            &input[..],
            "{}: an error changed the buffer",
            v.id
        );
    }
}

fn check_incomplete(v: &PacketVector, needed: usize) {
    let d = decoder(v);
    assert_eq!(
        documented_needed(&v.input),
        Some(needed),
        "{}: needed contradicts the documented rule",
        v.id
    );
    match d.decode(&v.input) {
        Ok(Status::Incomplete(n)) => assert_eq!(n, needed, "{}", v.id),
        other => panic!("{}: want incomplete, got {other:?}", v.id),
    }
    let mut buf = BytesMut::from(&v.input[..]);
    match d.decode_bytes(&mut buf) {
        Ok(Status::Incomplete(n)) => assert_eq!(n, needed, "{}: decode_bytes", v.id),
        other => panic!("{}: decode_bytes: want incomplete, got {other:?}", v.id),
    }
    assert_eq!(&buf[..], &v.input[..], "{}", v.id);
    check_prefixes_incomplete(v, &d, v.input.len());
}

#[test]
fn every_packet_vector_decodes_and_encodes_as_expected() {
    let vectors = load_packet_vectors();
    assert!(vectors.len() > 500, "only {} vectors", vectors.len());
    for v in &vectors {
        match &v.expect {
            Expect::Packet(json) => check_valid(v, json),
            Expect::Error { kind, rule } => check_error(v, kind, rule),
            Expect::Incomplete(n) => check_incomplete(v, *n),
        }
    }
}

#[test]
fn the_decode_tool_prints_each_vectors_expected_outcome() {
    for v in load_packet_vectors() {
        let got = decode_one(&decoder(&v), &v.input);
        let want = match &v.expect {
            Expect::Packet(p) => p.clone(),
            Expect::Error { kind, rule } => {
                serde_json::json!({ "error": { "kind": kind, "rule": rule } })
            }
            Expect::Incomplete(n) => serde_json::json!({ "incomplete": { "needed": n } }),
        };
        assert_eq!(got, want, "{}", v.id);
    }
}

#[test]
fn vector_ids_are_unique_and_every_vector_names_a_rule_and_one_line() {
    let mut ids = BTreeSet::new();
    for v in load_packet_vectors() {
        assert!(ids.insert(v.id.clone()), "duplicate id {}", v.id);
        assert!(
            v.id.starts_with(&format!("{}/", v.file)),
            "{}: id prefix",
            v.id
        );
        assert!(!v.rules.is_empty(), "{}: no rules", v.id);
        for r in &v.rules {
            assert!(
                r.starts_with("MQTT-") || r.starts_with('§'),
                "{}: rule {r:?} is neither an id nor a section",
                v.id
            );
        }
        assert!(
            !v.description.is_empty() && !v.description.contains('\n'),
            "{}: description",
            v.id
        );
    }
}

#[test]
fn vector_files_stay_well_under_one_megabyte() {
    for f in packet_files() {
        let size = std::fs::metadata(&f).expect("metadata").len();
        assert!(size < 512 * 1024, "{} is {size} bytes", f.display());
    }
}

#[test]
fn every_first_byte_has_a_vector_valid_ones_decode_and_the_rest_are_errors() {
    let vectors = load_packet_vectors();
    let mut valid = BTreeSet::new();
    let mut invalid = BTreeSet::new();
    for v in &vectors {
        match (&v.expect, v.input.first()) {
            (Expect::Packet(_), Some(&b)) => {
                valid.insert(b);
            }
            (Expect::Error { kind, .. }, Some(&b)) if decided_at(kind, &v.input) == 1 => {
                invalid.insert(b);
            }
            _ => {}
        }
    }
    // 13 types with one legal flag nibble, and PUBLISH with 10 of its 16.
    assert_eq!(valid.len(), 23, "valid first bytes: {valid:x?}");
    assert!(valid.is_disjoint(&invalid));
    assert_eq!(
        valid.len() + invalid.len(),
        256,
        "first bytes without a vector"
    );
}

#[test]
fn every_legal_connect_flags_byte_has_a_valid_vector() {
    let mut seen = BTreeSet::new();
    for v in load_packet_vectors() {
        if let (Expect::Packet(p), Some(&0x10)) = (&v.expect, v.input.first()) {
            let Length::Done { used, .. } = remaining_length(&v.input[1..]) else {
                panic!("{}", v.id)
            };
            // Flags sit after the 6-byte protocol name and the level.
            seen.insert(v.input[1 + used + 7]);
            assert_eq!(p["type"], "CONNECT");
        }
    }
    // Reserved bit 0; will QoS and retain only with the will flag (1 + 3 * 2 choices);
    // password only with a user name (3 choices); clean session (2 choices).
    assert_eq!(seen.len(), 7 * 3 * 2, "{seen:x?}");
    assert!(seen.iter().all(|f| f & 1 == 0));
}

#[test]
fn every_packet_type_has_valid_invalid_and_incomplete_vectors() {
    let vectors = load_packet_vectors();
    for t in 1u8..=14 {
        let of_type: Vec<&PacketVector> = vectors
            .iter()
            .filter(|v| v.input.first().is_some_and(|b| b >> 4 == t))
            .collect();
        assert!(
            of_type
                .iter()
                .any(|v| matches!(v.expect, Expect::Packet(_))),
            "type {t}"
        );
        assert!(
            of_type
                .iter()
                .any(|v| matches!(&v.expect, Expect::Error { kind, .. } if decided_at(kind, &v.input) > 1)),
            "type {t}: no error beyond the first byte"
        );
        assert!(
            of_type
                .iter()
                .any(|v| matches!(v.expect, Expect::Incomplete(_))),
            "type {t}"
        );
    }
}

#[test]
fn remaining_length_boundaries_all_have_valid_vectors() {
    let mut seen = BTreeSet::new();
    for v in load_packet_vectors() {
        if let (Expect::Packet(_), Length::Done { value, .. }) = (
            &v.expect,
            remaining_length(v.input.get(1..).unwrap_or_default()),
        ) {
            seen.insert(value);
        }
    }
    for n in [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152] {
        assert!(
            seen.contains(&n),
            "no valid vector with Remaining Length {n}"
        );
    }
}

#[test]
fn every_error_kind_of_the_json_schema_has_a_vector_and_no_vector_uses_another() {
    let path = support::vectors::spec_dir().join("packet-vectors.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("JSON");
    let listed: BTreeSet<String> = schema["$defs"]["errorKind"]["enum"]
        .as_array()
        .expect("errorKind enum")
        .iter()
        .map(|k| k.as_str().expect("kind").to_owned())
        .collect();
    let used: BTreeSet<String> = load_packet_vectors()
        .into_iter()
        .filter_map(|v| match v.expect {
            Expect::Error { kind, .. } => Some(kind),
            _ => None,
        })
        .collect();
    assert_eq!(used, listed);
}

// MQTT-6.0.0-2: packets need not line up with the chunks they arrive in.
#[test]
fn the_valid_vectors_back_to_back_decode_as_one_stream_in_any_chunking() {
    let valid: Vec<(Vec<u8>, serde_json::Value)> = load_packet_vectors()
        .into_iter()
        .filter(|v| v.max_packet_size.is_none() && v.input.len() <= ALL_PREFIXES_UP_TO)
        .filter_map(|v| match v.expect {
            Expect::Packet(p) => Some((v.input, p)),
            _ => None,
        })
        .collect();
    let stream: Vec<u8> = valid.iter().flat_map(|(b, _)| b.clone()).collect();
    let lines = support::decode_tool::raw_lines(&Decoder::new(), &stream);
    assert_eq!(lines.len(), valid.len());
    for (line, (_, want)) in lines.iter().zip(&valid) {
        assert_eq!(
            &serde_json::from_str::<serde_json::Value>(line).unwrap(),
            want
        );
    }

    // Fed in chunks of 1, 7 and 1000 bytes, the same packets come out in order.
    for chunk in [1, 7, 1000] {
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Ok(Status::Complete(p, _)) = mqtt_sansio::decode_bytes(&mut buf) {
                got.push(packet_to_json(&p));
            }
        }
        assert!(
            buf.is_empty(),
            "chunks of {chunk}: {} bytes left",
            buf.len()
        );
        assert_eq!(got.len(), valid.len(), "chunks of {chunk}");
        assert!(
            got.iter().zip(&valid).all(|(g, (_, w))| g == w),
            "chunks of {chunk}"
        );
    }
}
