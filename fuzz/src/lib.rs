//! The checks behind the fuzz targets. They live in the main crate's
//! `tests/support/`, so that `cargo test` replays saved inputs through the very same
//! code (see `tests/fuzz_regressions.rs` and `tests/machine_fuzz_regressions.rs`).

#[path = "../../tests/support/fuzz_checks.rs"]
pub mod fuzz_checks;

#[path = "../../tests/support/machine_checks/mod.rs"]
pub mod machine_checks;

#[path = "../../tests/support/state_checks.rs"]
pub mod state_checks;

#[path = "../../tests/support/sim.rs"]
pub mod sim;
