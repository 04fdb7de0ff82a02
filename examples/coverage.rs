//! Prints, for every normative statement of MQTT 3.1.1, the spec vectors that cover it,
//! then totals per layer.
//!
//! ```text
//! cargo run --example coverage             # every statement
//! cargo run --example coverage -- --missing  # only checkable statements without a vector
//! ```

#[path = "../tests/support/coverage.rs"]
mod coverage;

use std::path::Path;

fn main() {
    let missing_only = std::env::args().skip(1).any(|a| a == "--missing");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec-vectors");
    let statements = coverage::load_statements(&dir);
    let vectors = coverage::load_vectors(&dir);
    print!("{}", coverage::report(&statements, &vectors, missing_only));
    let unknown = coverage::unknown_rules(&statements, &vectors);
    for (v, r) in &unknown {
        eprintln!("unknown rule {r} in {v}");
    }
    if !unknown.is_empty() {
        std::process::exit(1);
    }
}
