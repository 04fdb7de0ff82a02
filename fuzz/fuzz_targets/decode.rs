//! Arbitrary bytes through both decode forms and a chunked stream; see
//! `tests/support/fuzz_checks.rs` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_sansio_fuzz::fuzz_checks::check_decode(data));
