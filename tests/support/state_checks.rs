//! Checks on exported state read from untrusted bytes, shared by the `state` fuzz
//! target and `cargo test`.

use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::session::{BrokerExport, ClientExport};
use mqtt_sansio::{Broker, Client, ClientConfig, Instant, Profile};

/// Reads `data` as a client export and as a broker export. What reads is written back
/// byte for byte (the encoding is canonical) and imports; what does not read is a
/// typed error. Never panics.
pub fn check_state(data: &[u8]) {
    match ClientExport::from_bytes(data) {
        Ok(export) => {
            assert_eq!(
                export.to_bytes(),
                data,
                "a client export re-encodes otherwise"
            );
            let profile = Profile::mqtt311();
            let config = ClientConfig::for_profile(&profile);
            let client = Client::import(profile, config, export.clone())
                .expect("a client export that reads imports");
            assert_eq!(
                client.export(),
                export,
                "import then export changes the state"
            );
        }
        // A typed error is the whole contract for bytes that do not read.
        Err(e) => drop(e.to_string()),
    }
    match BrokerExport::from_bytes(data) {
        Ok(export) => {
            assert_eq!(
                export.to_bytes(),
                data,
                "a broker export re-encodes otherwise"
            );
            let broker = Broker::import(
                Profile::mqtt311(),
                ServerConfig::default(),
                export.clone(),
                Instant::ZERO,
            )
            .expect("a broker export that reads imports");
            assert_eq!(
                broker.export(),
                export,
                "import then export changes the state"
            );
        }
        Err(e) => drop(e.to_string()),
    }
}
