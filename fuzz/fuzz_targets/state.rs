//! Untrusted bytes read as an exported client or broker state: a typed error, or an
//! export that re-encodes to the same bytes and imports; see
//! `tests/support/state_checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_sansio_fuzz::state_checks::check_state(data));
