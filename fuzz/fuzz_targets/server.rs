//! Arbitrary sequences of input into the server state machine, with invariants checked
//! after every step; see `tests/support/fuzz_machines.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_sansio_fuzz::fuzz_machines::check_server(data));
