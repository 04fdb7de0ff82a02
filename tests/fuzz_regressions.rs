//! Replays saved fuzz inputs through the checks the fuzz targets make.
//!
//! `fuzz/regressions/<target>/` holds inputs that once made a target fail (each a few
//! bytes, kept after the fix), for the targets `decode`, `roundtrip`, `client`,
//! `server`, `broker`, `state` and `sim`. The packet bytes of the spec vectors are run through the
//! `decode` checks as well, one by one and as a single stream.

#[allow(dead_code)]
#[path = "support/fuzz_checks.rs"]
mod fuzz_checks;
#[allow(dead_code)]
#[path = "support/machine_checks/mod.rs"]
mod machine_checks;
#[allow(dead_code)]
#[path = "support/sim.rs"]
mod sim;
#[allow(dead_code)]
#[path = "support/state_checks.rs"]
mod state_checks;

use std::fs;
use std::path::{Path, PathBuf};

/// A target's checks, run on one input.
type Check = fn(&[u8]);

/// The targets whose inputs are replayed here, with their checks.
const TARGETS: &[(&str, Check)] = &[
    ("decode", fuzz_checks::check_decode),
    ("roundtrip", fuzz_checks::check_roundtrip),
    ("client", machine_checks::check_client),
    ("server", machine_checks::check_server),
    ("broker", machine_checks::check_broker),
    ("state", state_checks::check_state),
    ("sim", sim::check_sim),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The files of a directory in name order; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("readable directory entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn replay(target: &str) -> usize {
    let check = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .expect("known target");
    let inputs = files(&root().join("fuzz/regressions").join(target));
    for path in &inputs {
        let data = fs::read(path).expect("readable regression input");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{} fails the {target} checks",
            path.display()
        );
    }
    inputs.len()
}

#[test]
fn every_regression_directory_belongs_to_a_replayed_target() {
    let Ok(entries) = fs::read_dir(root().join("fuzz/regressions")) else {
        return;
    };
    for entry in entries {
        let entry = entry.expect("readable directory entry");
        let name = entry.file_name().into_string().expect("UTF-8 name");
        if entry.path().is_dir() {
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/regressions/{name} is not replayed by this test"
            );
        }
    }
}

#[test]
fn saved_decode_inputs_still_pass_the_decode_checks() {
    replay("decode");
}

#[test]
fn saved_roundtrip_inputs_still_pass_the_roundtrip_checks() {
    replay("roundtrip");
}

#[test]
fn saved_client_inputs_still_pass_the_client_checks() {
    replay("client");
}

#[test]
fn saved_server_inputs_still_pass_the_server_checks() {
    replay("server");
}

#[test]
fn saved_broker_inputs_still_pass_the_broker_checks() {
    replay("broker");
}

#[test]
fn saved_sim_inputs_still_pass_the_simulator_checks() {
    assert!(replay("sim") > 0, "fuzz/regressions/sim/ holds inputs");
}

/// Every `"hex"` string anywhere in a JSON value.
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

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ASCII hex");
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("bad hex {pair:?} in {s:?}"))
        })
        .collect()
}

#[test]
fn spec_vector_bytes_pass_the_decode_checks_alone_and_as_one_stream() {
    let dir = root().join("spec-vectors/packets");
    let paths: Vec<PathBuf> = files(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    let mut stream = Vec::new();
    let mut count = 0;
    for path in &paths {
        let text = fs::read_to_string(path).expect("readable vector file");
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut hexes = Vec::new();
        hex_fields(&json, &mut hexes);
        for h in hexes {
            let bytes = unhex(&h);
            fuzz_checks::check_decode(&bytes);
            stream.extend_from_slice(&bytes);
            count += 1;
        }
    }
    assert!(
        paths.is_empty() || count > 0,
        "vector files without any \"hex\" field in {}",
        dir.display()
    );
    fuzz_checks::check_decode(&stream);
}
