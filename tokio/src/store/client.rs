//! A client's session in a directory: the store, records and checks of a broker's
//! ([`BrokerStore`]), holding one persistent session, the client's own, under its
//! client id.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use mqtt_sansio::session::{BrokerChange, BrokerExport, Change, ClientExport};
use mqtt_sansio::{MqttString, Profile};

use super::{BrokerStore, StoreError};

/// A client's session kept in a directory, fed with the [`Change`]s the core's
/// [`Client`](mqtt_sansio::Client) reports under
/// [`ClientConfig::report_changes`](mqtt_sansio::ClientConfig::report_changes).
///
/// The outgoing QoS 1/2 messages (id, stage, whether they went out) and the inbound
/// QoS 2 ids awaiting PUBREL are kept; so is the packet id of the last message added
/// (the ids of SUBSCRIBE and UNSUBSCRIBE are not session state). Commit the changes of
/// a batch of actions before carrying out any of them: a PUBLISH that reached the
/// socket, and a QoS 2 message delivered and answered with PUBREC, are then on disk
/// and survive `kill -9`.
pub struct ClientStore {
    inner: BrokerStore,
    client: MqttString<Bytes>,
    /// The database file, named by errors.
    path: PathBuf,
    /// Why a commit failed. The store then no longer matches the client, so every later
    /// commit is refused.
    failed: Option<String>,
}

impl std::fmt::Debug for ClientStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStore")
            .field("path", &self.path)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl ClientStore {
    /// Opens the store in `dir` for the client `client` (its client id; making it, with an empty
    /// session, if there is none) and reads the session back for
    /// [`Client::import`](mqtt_sansio::Client::import). Refused, naming the path, when
    /// the store is damaged (as [`Store::open`](super::Store::open) says) or holds
    /// anything but this client's session: another client's, or a broker's state.
    pub fn open(
        dir: impl AsRef<Path>,
        client: MqttString<Bytes>,
    ) -> Result<(ClientStore, ClientExport), StoreError> {
        let dir = dir.as_ref();
        // Expiry deadlines are a broker's: a client store holds none, so no origin.
        let (inner, export) = BrokerStore::open(dir, 0)?;
        let path = dir.join(super::db::FILE);
        let session = own_session(&path, export, client.as_str())?;
        let mut store = ClientStore {
            inner,
            client,
            path,
            failed: None,
        };
        let export = match session {
            Some(export) => export,
            None => {
                store.inner.note(&BrokerChange::SessionCreated {
                    client_id: store.client.clone(),
                });
                store.inner.commit()?;
                ClientExport::default()
            }
        };
        Ok((store, export))
    }

    /// Notes one change, in the order the client reported it; [`commit`](Self::commit)
    /// writes every change noted since the last commit.
    pub fn note(&mut self, change: &Change) {
        self.inner.note(&BrokerChange::Session {
            client_id: self.client.clone(),
            change: change.clone(),
        });
    }

    /// Writes every change noted since the last commit as one transaction, durably
    /// (nothing when none was noted). After an error the store and the client disagree: this and every later commit
    /// fail, and the client must stop.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(why) = &self.failed {
            return Err(StoreError::Damaged {
                path: self.path.clone(),
                detail: format!("an earlier commit failed ({why}); the session moved on"),
            });
        }
        self.inner.commit().inspect_err(|e| {
            self.failed = Some(e.to_string());
        })
    }

    /// Opens the store in `dir` for `client` and the core client holding its
    /// session, with `config` reporting its changes. A stored session the core refuses
    /// is a [`StoreError::Damaged`].
    pub(crate) fn resume(
        dir: &Path,
        client: MqttString<Bytes>,
        profile: Profile,
        mut config: mqtt_sansio::ClientConfig,
    ) -> Result<(ClientStore, mqtt_sansio::Client), StoreError> {
        let (store, export) = ClientStore::open(dir, client)?;
        config.report_changes = true;
        let core = mqtt_sansio::Client::import(profile, config, export).map_err(|e| {
            StoreError::Damaged {
                path: store.path.clone(),
                detail: format!("its session cannot be resumed: {e}"),
            }
        })?;
        Ok((store, core))
    }
}

/// The session of `client_id` in a broker export read from a client's store, if there
/// is one; anything a client's store cannot hold is a [`StoreError::Damaged`].
fn own_session(
    path: &Path,
    export: BrokerExport,
    client_id: &str,
) -> Result<Option<ClientExport>, StoreError> {
    let refuse = |detail: String| StoreError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    if !export.retained.is_empty() || !export.shared.is_empty() {
        return Err(refuse(
            "it holds a broker's state (retained messages or shared queues), \
             not a client's session"
                .into(),
        ));
    }
    let mut sessions = export.sessions.into_iter();
    let Some(s) = sessions.next() else {
        return Ok(None);
    };
    if sessions.next().is_some() || s.client_id.as_str() != client_id {
        return Err(refuse(format!(
            "it holds the session of another client id ({:?}), not of {client_id:?}",
            s.client_id.as_str()
        )));
    }
    if !s.subscriptions.is_empty() || !s.queue.is_empty() || s.expires.is_some() {
        return Err(refuse(
            "it holds a broker's session (subscriptions, a queue or an expiry), \
             not a client's"
                .into(),
        ));
    }
    Ok(Some(ClientExport { session: s.session }))
}
