//! The line logic of `cargo run --example decode` (tests/support/decode_tool.rs).

mod support;

use mqtt_sansio::Decoder;
use support::decode_tool::{hex_lines, is_packet_line, raw_lines};

const PUBLISH: &str = "3005000161ffff";
const PINGREQ: &str = "c000";

#[test]
fn hex_mode_prints_one_canonical_json_line_per_packet() {
    let text = format!("{PUBLISH}\n\n# a comment\n  c0 00  \n");
    let lines = hex_lines(&Decoder::new(), &text);
    assert_eq!(
        lines,
        [
            r#"{"dup":false,"packet_id":null,"payload_hex":"ffff","qos":0,"retain":false,"topic":"a","type":"PUBLISH"}"#,
            r#"{"type":"PINGREQ"}"#,
        ]
    );
    assert!(lines.iter().all(|l| is_packet_line(l)));
}

#[test]
fn hex_mode_reports_errors_incomplete_input_and_bad_hex_on_their_own_lines() {
    let lines = hex_lines(&Decoder::new(), "3600\n30050001\nzz\n");
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        r#"{"error":{"kind":"publish_qos3","rule":"MQTT-3.3.1-4"}}"#
    );
    assert_eq!(lines[1], r#"{"incomplete":{"needed":3}}"#);
    assert!(lines[2].starts_with(r#"{"input_error":"#), "{}", lines[2]);
    assert!(lines.iter().all(|l| !is_packet_line(l)));
}

#[test]
fn raw_mode_decodes_packets_back_to_back_and_stops_at_the_first_error() {
    let mut input = support::canonical::from_hex(&format!("{PUBLISH}{PINGREQ}{PUBLISH}")).unwrap();
    let lines = raw_lines(&Decoder::new(), &input);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1], r#"{"type":"PINGREQ"}"#);

    // A stream cut inside the third packet ends with an incomplete line.
    input.truncate(input.len() - 2);
    let lines = raw_lines(&Decoder::new(), &input);
    assert_eq!(lines.last().unwrap(), r#"{"incomplete":{"needed":2}}"#);

    // Nothing after a malformed packet is decoded.
    let input = support::canonical::from_hex("c0000f00c000").unwrap();
    let lines = raw_lines(&Decoder::new(), &input);
    assert_eq!(
        lines,
        [
            r#"{"type":"PINGREQ"}"#,
            r#"{"error":{"kind":"reserved_packet_type","rule":"§2.2.1"}}"#
        ]
    );
    assert!(raw_lines(&Decoder::new(), &[]).is_empty());
}

#[test]
fn the_maximum_packet_size_applies_in_both_modes() {
    let d = Decoder::new().with_max_packet_size(6);
    let too_large = r#"{"error":{"kind":"packet_too_large","rule":"§2.2.3"}}"#;
    assert_eq!(hex_lines(&d, PUBLISH), [too_large]);
    let bytes = support::canonical::from_hex(PUBLISH).unwrap();
    assert_eq!(raw_lines(&d, &bytes), [too_large]);
}
