//! Checks on exported state read from untrusted bytes, shared by the `state` fuzz
//! target and `cargo test`.

use core::time::Duration;

use mqtt_sansio::broker::Action;
use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::session::{BrokerExport, ClientExport, StateError, encoding};
use mqtt_sansio::{Broker, Client, ClientConfig, Instant, Profile};

/// Reads `data` as a client export and as a broker export. What reads is written back
/// byte for byte (the encoding is canonical; an export of version 1 is written as
/// version 2 and reads back the same) and imports under every preset; what does not
/// read is a typed error. Never panics.
pub fn check_state(data: &[u8]) {
    let canonical = data.get(4) != Some(&encoding::VERSION_1);
    match ClientExport::from_bytes(data) {
        Ok(export) => {
            let bytes = export.to_bytes();
            if canonical {
                assert_eq!(bytes, data, "a client export re-encodes otherwise");
            } else {
                assert_eq!(bytes[4], encoding::VERSION, "written in another version");
                assert_eq!(
                    ClientExport::from_bytes(&bytes).as_ref(),
                    Ok(&export),
                    "a version 1 client export does not survive version 2"
                );
            }
            for name in Profile::NAMES {
                let profile = Profile::by_name(name).expect("a preset");
                let config = ClientConfig::for_profile(&profile);
                let client = Client::import(profile, config, export.clone())
                    .expect("a client export that reads imports");
                assert_eq!(
                    client.export(),
                    export,
                    "import then export changes the state"
                );
            }
        }
        // A typed error is the whole contract for bytes that do not read.
        Err(e) => drop(e.to_string()),
    }
    match BrokerExport::from_bytes(data) {
        Ok(export) => {
            let bytes = export.to_bytes();
            if canonical {
                assert_eq!(bytes, data, "a broker export re-encodes otherwise");
            } else {
                assert_eq!(bytes[4], encoding::VERSION, "written in another version");
                assert_eq!(
                    BrokerExport::from_bytes(&bytes).as_ref(),
                    Ok(&export),
                    "a version 1 broker export does not survive version 2"
                );
            }
            for name in Profile::NAMES {
                check_broker_import(Profile::by_name(name).expect("a preset"), &export);
            }
        }
        Err(e) => drop(e.to_string()),
    }
}

/// Imports `export` under `profile` and checks that the changes the broker reports,
/// applied to `export`, give its export: after the import (which sets missing expiry
/// deadlines), and after time passes the last first sending by an hour (which expires
/// sessions and drops what a retry limit has reached).
fn check_broker_import(profile: Profile, export: &BrokerExport) {
    let config = ServerConfig {
        report_changes: true,
        ..ServerConfig::default()
    };
    let mut broker = match Broker::import(profile, config, export.clone(), Instant::ZERO) {
        Ok(broker) => broker,
        // A shared queue imports only where the profile has shared subscriptions and
        // an imported session is a member of its group.
        Err(StateError::Invalid(_)) if !export.shared.is_empty() => return,
        Err(e) => panic!("a broker export that reads does not import: {e}"),
    };
    let mut durable = export.clone();
    let drain = |broker: &mut Broker, durable: &mut BrokerExport| {
        while let Some(a) = broker.poll_action() {
            if let Action::Change(c) = a {
                if let Err(e) = durable.apply(&c) {
                    panic!("{c:?} does not apply to the import: {e}");
                }
            }
        }
        assert_eq!(
            *durable,
            broker.export(),
            "the changes applied to the import are not the export"
        );
    };
    drain(&mut broker, &mut durable);
    let last = export
        .sessions
        .iter()
        .flat_map(|s| s.session.outgoing.iter())
        .filter_map(|o| o.first_sent)
        .max()
        .unwrap_or(Instant::ZERO);
    broker.handle_timeout(last + Duration::from_secs(3600));
    drain(&mut broker, &mut durable);
}
