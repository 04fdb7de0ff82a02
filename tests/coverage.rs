//! The normative table and the vectors agree: every rule a vector names exists, and every
//! checkable statement of an enforced layer has a vector.

mod support;

use std::collections::BTreeSet;

use support::coverage::{
    ENFORCED_LAYERS, LAYERS, Statement, Tagged, is_section, load_statements, load_vectors, missing,
    parse_statements, report, totals, unknown_rules,
};
use support::vectors::spec_dir;

#[test]
fn the_normative_table_lists_all_141_statements_once_with_a_known_layer() {
    let rows = load_statements(&spec_dir());
    assert_eq!(rows.len(), 141);
    let ids: BTreeSet<&str> = rows.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 141, "duplicate ids");
    for s in &rows {
        assert!(s.id.starts_with("MQTT-"), "{}", s.id);
        assert!(
            LAYERS.contains(&s.layer.as_str()),
            "{}: layer {}",
            s.id,
            s.layer
        );
        assert!(
            !s.description.is_empty() && !s.section.is_empty(),
            "{}",
            s.id
        );
        // A reason is given exactly when the statement cannot be checked without I/O.
        assert_eq!(s.checkable, s.reason.is_empty(), "{}: reason", s.id);
    }
}

#[test]
fn no_vector_names_a_rule_outside_the_normative_table() {
    let dir = spec_dir();
    let unknown = unknown_rules(&load_statements(&dir), &load_vectors(&dir));
    assert!(unknown.is_empty(), "unknown rules: {unknown:?}");
}

#[test]
fn every_checkable_statement_of_an_enforced_layer_has_a_vector() {
    let dir = spec_dir();
    let statements = load_statements(&dir);
    let vectors = load_vectors(&dir);
    let gaps: Vec<&str> = missing(&statements, &vectors, ENFORCED_LAYERS)
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert!(gaps.is_empty(), "statements without a vector: {gaps:?}");
}

#[test]
fn vector_ids_are_unique_across_all_vector_files() {
    let vectors = load_vectors(&spec_dir());
    let mut seen = BTreeSet::new();
    for v in &vectors {
        assert!(
            seen.insert(&v.id),
            "duplicate vector id {} in {}",
            v.id,
            v.file
        );
    }
}

#[test]
fn the_checks_catch_an_unknown_id_and_an_uncovered_statement() {
    let table = "id\tsection\tlayer\tchecked_sans_io\treason\tdescription\n\
                 MQTT-1.5.3-1\t1.5.3\tcodec\tyes\t\tUTF-8\n\
                 MQTT-1.5.3-2\t1.5.3\tcodec\tyes\t\tno NUL\n\
                 MQTT-7.0.0-1\t7\tother\tno\ta product statement\tboth roles\n";
    let statements = parse_statements(table).unwrap();
    let vectors = vec![Tagged {
        file: "x.json".into(),
        id: "x/1".into(),
        rules: vec![
            "MQTT-1.5.3-1".into(),
            "MQTT-9.9.9-9".into(),
            "§2.2.3".into(),
        ],
    }];
    let unknown = unknown_rules(&statements, &vectors);
    assert_eq!(
        unknown,
        vec![("x.json: x/1".to_owned(), "MQTT-9.9.9-9".to_owned())]
    );
    let gaps: Vec<&str> = missing(&statements, &vectors, &["codec", "other"])
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    // 7.0.0-1 cannot be checked without I/O, so it is not a gap.
    assert_eq!(gaps, ["MQTT-1.5.3-2"]);
    let text = report(&statements, &vectors, false);
    assert!(
        text.contains("MQTT-1.5.3-1   codec        1  x/1"),
        "{text}"
    );
    assert!(
        text.contains("codec               2          2        1         0  (enforced)"),
        "{text}"
    );
    let only_missing = report(&statements, &vectors, true);
    assert!(only_missing.starts_with("MQTT-1.5.3-2 "), "{only_missing}");
    assert!(!only_missing.contains("MQTT-1.5.3-1 "), "{only_missing}");
}

#[test]
fn a_statement_that_needs_io_counts_as_covered_with_io_when_a_transport_check_names_it() {
    let table = "id\tsection\tlayer\tchecked_sans_io\treason\tdescription\n\
                 MQTT-6.0.0-1\t6\ttransport\tno\tneeds a WebSocket\tbinary frames\n\
                 MQTT-6.0.0-3\t6\ttransport\tno\tneeds a WebSocket\tsub-protocol\n";
    let statements = parse_statements(table).unwrap();
    let vectors = vec![Tagged {
        file: "transport/websocket.json".into(),
        id: "websocket/text".into(),
        rules: vec!["MQTT-6.0.0-1".into()],
    }];
    let text = report(&statements, &vectors, false);
    assert!(text.contains("(checked with I/O) websocket/text"), "{text}");
    assert!(
        text.contains("(not checkable without I/O: needs a WebSocket)"),
        "{text}"
    );
    assert!(
        text.contains("transport           2          0        0         1  (enforced)"),
        "{text}"
    );
}

#[test]
fn every_websocket_statement_is_covered_by_a_vector_or_a_check_with_io() {
    let dir = spec_dir();
    let statements = load_statements(&dir);
    let vectors = load_vectors(&dir);
    let transport = totals(&statements, &vectors)
        .into_iter()
        .find(|t| t.layer == "transport")
        .unwrap();
    let websocket: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.id.starts_with("MQTT-6.0.0-"))
        .collect();
    assert_eq!(websocket.len(), 4);
    for s in websocket {
        assert!(
            vectors.iter().any(|v| v.rules.contains(&s.id)),
            "{} has no vector or check",
            s.id
        );
    }
    assert!(
        transport.covered + transport.covered_with_io >= 4,
        "{transport:?}"
    );
}

#[test]
fn section_references_are_a_section_sign_and_dotted_numbers() {
    assert!(is_section("§2.2.3") && is_section("§7"));
    assert!(!is_section("§") && !is_section("§2..3") && !is_section("2.2.3") && !is_section("§a"));
}
