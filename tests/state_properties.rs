//! Property tests: after every input of a random operation sequence, the changes a
//! client or a broker reported, applied in order to its first export, give its current
//! export, and that export survives its binary encoding. The operation sequences are
//! those of the state-machine fuzz targets (`tests/support/machine_checks.rs`, which
//! makes the comparison after each operation), built from random bytes.

#[allow(dead_code)]
#[path = "support/machine_checks/mod.rs"]
mod machine_checks;
#[allow(dead_code)]
#[path = "support/state_checks.rs"]
mod state_checks;

use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_clients_changes_applied_to_its_export_give_its_export_after_every_input(
        data in vec(any::<u8>(), 0..3000)
    ) {
        machine_checks::check_client(&data);
    }

    #[test]
    fn a_brokers_changes_applied_to_its_export_give_its_export_after_every_input(
        data in vec(any::<u8>(), 0..3000)
    ) {
        machine_checks::check_broker(&data);
    }

    #[test]
    fn random_bytes_read_as_an_export_are_refused_by_name_or_read_back_exactly(
        data in vec(any::<u8>(), 0..512)
    ) {
        state_checks::check_state(&data);
        // The same bytes behind a valid header reach past the magic number.
        let mut framed = mqtt_sansio::session::encoding::MAGIC.to_vec();
        framed.push(mqtt_sansio::session::encoding::VERSION);
        framed.extend_from_slice(&data);
        state_checks::check_state(&framed);
    }
}
