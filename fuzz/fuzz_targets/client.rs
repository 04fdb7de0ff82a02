//! A client driven by arbitrary operations, checked after every step against a model;
//! see `tests/support/machine_checks.rs` for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_sansio_fuzz::machine_checks::check_client(data));
