//! Clients and a broker in virtual time driven by arbitrary schedules (links cut,
//! broker restarts from its store, client re-imports), checked after every step; see
//! `tests/support/sim.rs` for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtt_sansio_fuzz::sim::check_sim(data));
