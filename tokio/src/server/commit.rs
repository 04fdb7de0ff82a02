//! Group commit, pipelined: the broker goes on while a batch of changes is committed.
//!
//! The changes the broker reports are noted in the open batch. When no commit is running,
//! the open batch is sealed and committed on a blocking thread; the changes noted
//! meanwhile form the next batch (so a batch grows with the time a commit takes, and
//! changes that cancel within it write nothing).
//!
//! An action goes out at once unless it tells a peer that state was stored, or must stay
//! behind one that does:
//! - a packet that acknowledges or moves a flow forward (CONNACK, PUBACK, PUBREC, PUBREL,
//!   PUBCOMP, SUBACK, UNSUBACK) and a QoS 2 PUBLISH wait until every change noted before
//!   them is durable. (A QoS 2 delivery that went out before the commit storing its
//!   inbound id could be delivered again after a crash, when its publisher resends it.)
//! - a QoS 0 or 1 PUBLISH and a PINGRESP need nothing stored: a delivery acknowledged
//!   before its commit is still at least once (a crash before the commit leaves its
//!   publisher unacknowledged, and it resends).
//! - whatever is for a connection that has packets held waits behind them, closing it
//!   included: a connection's packets reach its socket in the order the broker gave them.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use mqtt_sansio::Packet;
use mqtt_sansio::QosPid;
use mqtt_sansio::broker::{Action, ConnId};
use tokio::task::JoinHandle;

use crate::store::{BrokerStore, StoreError};

/// The changes of the broker, committed in batches, and the actions that wait for them.
pub(super) struct Commits {
    store: BrokerStore,
    /// The number of the open batch; batches are numbered from 1.
    open: u64,
    /// Whether a change was noted in the open batch.
    open_changed: bool,
    /// The last batch a change was noted in: what an action that waits waits for.
    last_changed: u64,
    /// Every batch up to this one is durable.
    durable: u64,
    /// The batch being committed.
    running: Option<(u64, JoinHandle<Result<(), StoreError>>)>,
    /// Actions held, in the broker's order, each with the batch it waits for.
    held: VecDeque<(u64, Action)>,
    /// Per connection with held actions: how many, and the last batch they wait for.
    held_for: BTreeMap<ConnId, (usize, u64)>,
}

impl Commits {
    pub(super) fn new(store: BrokerStore) -> Commits {
        Commits {
            store,
            open: 1,
            open_changed: false,
            last_changed: 0,
            durable: 0,
            running: None,
            held: VecDeque::new(),
            held_for: BTreeMap::new(),
        }
    }

    /// Takes one of the broker's actions: a change is noted; any other action is
    /// returned when it may be carried out now, or held until its batch is durable.
    pub(super) fn route(&mut self, action: Action) -> Option<Action> {
        let (conn, waits) = match &action {
            Action::Change(change) => {
                self.store.note(change);
                self.open_changed = true;
                self.last_changed = self.open;
                return None;
            }
            // Reading a connection or not waits for no commit.
            Action::Event(_) | Action::Pause { .. } | Action::Resume { .. } => {
                return Some(action);
            }
            Action::Send { conn, packet } => (*conn, waits_for_commit(packet)),
            Action::Close { conn, .. } => (*conn, false),
        };
        let behind = self.held_for.get(&conn).map(|&(_, batch)| batch);
        let batch = match (behind, waits && self.last_changed > self.durable) {
            (None, false) => return Some(action),
            (Some(batch), false) => batch,
            (_, true) => self.last_changed,
        };
        self.held.push_back((batch, action));
        let entry = self.held_for.entry(conn).or_insert((0, batch));
        entry.0 += 1;
        entry.1 = entry.1.max(batch);
        None
    }

    /// Starts committing the open batch, unless a commit is running or it is empty. A
    /// batch whose changes cancelled out is durable at once.
    pub(super) fn start(&mut self) -> Result<(), StoreError> {
        if self.running.is_some() || !self.open_changed {
            return Ok(());
        }
        let batch = self.open;
        let writes = self.store.seal()?;
        self.open += 1;
        self.open_changed = false;
        if writes.is_empty() {
            self.durable = batch;
            return Ok(());
        }
        let store = self.store.store();
        let handle = tokio::task::spawn_blocking(move || {
            #[cfg(test)]
            tests::gate::enter();
            let (keys, sessions) = writes.size();
            let began = std::time::Instant::now();
            let result = crate::store::lock(&store).commit_batch(writes);
            tracing::debug!(
                "batch {batch}: {keys} keys, {sessions} sessions removed, committed in {:?}",
                began.elapsed()
            );
            #[cfg(test)]
            tests::gate::leave();
            result
        });
        self.running = Some((batch, handle));
        Ok(())
    }

    /// The next held action whose batch is durable, in the broker's order.
    pub(super) fn pop_ready(&mut self) -> Option<Action> {
        let &(batch, _) = self.held.front()?;
        if batch > self.durable {
            return None;
        }
        let (_, action) = self.held.pop_front()?;
        let conn = match &action {
            Action::Send { conn, .. } | Action::Close { conn, .. } => *conn,
            Action::Event(_) | Action::Change(_) | Action::Pause { .. } | Action::Resume { .. } => {
                return Some(action);
            }
        };
        if let Some(entry) = self.held_for.get_mut(&conn) {
            entry.0 -= 1;
            if entry.0 == 0 {
                self.held_for.remove(&conn);
            }
        }
        Some(action)
    }

    /// Commits every change noted so far and waits until it is durable.
    pub(super) async fn commit_all(&mut self) -> Result<(), StoreError> {
        self.finish().await?;
        self.start()?;
        self.finish().await
    }

    /// Waits for the running commit, if any, and returns its result.
    async fn finish(&mut self) -> Result<(), StoreError> {
        match self.running.take() {
            Some((batch, handle)) => self.finished(batch, handle.await),
            None => Ok(()),
        }
    }

    fn finished(
        &mut self,
        batch: u64,
        result: Result<Result<(), StoreError>, tokio::task::JoinError>,
    ) -> Result<(), StoreError> {
        result.map_err(|e| StoreError::Io {
            path: crate::store::lock(&self.store.store()).dir().to_path_buf(),
            source: std::io::Error::other(format!("the commit did not finish: {e}")),
        })??;
        self.durable = batch;
        Ok(())
    }
}

/// Completes when the running commit does (never, when none is running or there is no
/// store), with its result; the batch is then durable. Cancel-safe: dropped before it
/// completes, the commit goes on and a later call sees it.
pub(super) async fn committed(commits: &mut Option<Commits>) -> Result<(), StoreError> {
    let Some(c) = commits else {
        return std::future::pending().await;
    };
    let Some((batch, handle)) = &mut c.running else {
        return std::future::pending().await;
    };
    let batch = *batch;
    let result = handle.await;
    c.running = None;
    c.finished(batch, result)
}

/// Whether `packet` may reach its socket only after every change noted before it is
/// durable. See the [module](self) documentation.
fn waits_for_commit(packet: &Packet<Bytes>) -> bool {
    match packet {
        Packet::Publish(p) => matches!(p.qos, QosPid::ExactlyOnce(_)),
        Packet::PingResp => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests;
