//! The durable store: what a committed batch leaves on disk, read back after reopening,
//! and damaged stores refused naming the path.

mod support;

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use mqtt_sansio_tokio::store::{
    Store, StoreError, StoredMessage, StoredOutgoing, StoredSession, StoredState, Write,
};
use proptest::prelude::*;
use support::TempDir;

fn msg(topic: &str, payload: &str, qos: u8) -> StoredMessage {
    StoredMessage {
        topic: Bytes::copy_from_slice(topic.as_bytes()),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain: false,
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A model of the store: what `load` must give after the same writes.
#[derive(Default)]
struct Model {
    sessions: BTreeMap<Bytes, StoredSession>,
    retained: BTreeMap<Bytes, StoredMessage>,
    shared: BTreeMap<Bytes, BTreeMap<u64, StoredMessage>>,
}

impl Model {
    fn apply(&mut self, w: &Write) {
        let s = |m: &mut Model, c: &Bytes| -> StoredSession {
            m.sessions.remove(c).unwrap_or_else(|| StoredSession {
                client: c.clone(),
                ..StoredSession::default()
            })
        };
        match w {
            Write::Session {
                client,
                expires_ms,
                cursor,
            } => {
                let mut x = s(self, client);
                x.expires_ms = *expires_ms;
                x.cursor = *cursor;
                self.sessions.insert(client.clone(), x);
            }
            Write::SessionGone { client } => {
                self.sessions.remove(client);
            }
            Write::Outgoing {
                client,
                slot,
                entry,
            } => {
                if let Some(x) = self.sessions.get_mut(client) {
                    x.outgoing.retain(|(s, _)| s != slot);
                    x.outgoing.push((*slot, entry.clone()));
                    x.outgoing.sort_by_key(|(s, _)| *s);
                }
            }
            Write::OutgoingGone { client, slot } => {
                if let Some(x) = self.sessions.get_mut(client) {
                    x.outgoing.retain(|(s, _)| s != slot);
                }
            }
            Write::Queued {
                client,
                slot,
                message,
            } => {
                if let Some(x) = self.sessions.get_mut(client) {
                    x.queue.retain(|(s, _)| s != slot);
                    x.queue.push((*slot, message.clone()));
                    x.queue.sort_by_key(|(s, _)| *s);
                }
            }
            Write::QueuedGone { client, slot } => {
                if let Some(x) = self.sessions.get_mut(client) {
                    x.queue.retain(|(s, _)| s != slot);
                }
            }
            Write::Inbound { client, id } => {
                if let Some(x) = self.sessions.get_mut(client) {
                    if !x.inbound.contains(id) {
                        x.inbound.push(*id);
                        x.inbound.sort();
                    }
                }
            }
            Write::InboundGone { client, id } => {
                if let Some(x) = self.sessions.get_mut(client) {
                    x.inbound.retain(|i| i != id);
                }
            }
            Write::Subscribed {
                client,
                filter,
                qos,
            } => {
                if let Some(x) = self.sessions.get_mut(client) {
                    x.subscriptions.retain(|(f, _)| f != filter);
                    x.subscriptions.push((filter.clone(), *qos));
                    x.subscriptions.sort();
                }
            }
            Write::Unsubscribed { client, filter } => {
                if let Some(x) = self.sessions.get_mut(client) {
                    x.subscriptions.retain(|(f, _)| f != filter);
                }
            }
            Write::Retained { message } => {
                self.retained.insert(message.topic.clone(), message.clone());
            }
            Write::RetainedGone { topic } => {
                self.retained.remove(topic);
            }
            Write::SharedQueued {
                group,
                slot,
                message,
            } => {
                self.shared
                    .entry(group.clone())
                    .or_default()
                    .insert(*slot, message.clone());
            }
            Write::SharedQueuedGone { group, slot } => {
                if let Some(q) = self.shared.get_mut(group) {
                    q.remove(slot);
                    if q.is_empty() {
                        self.shared.remove(group);
                    }
                }
            }
        }
    }

    fn state(&self) -> StoredState {
        StoredState {
            sessions: self.sessions.values().cloned().collect(),
            retained: self.retained.values().cloned().collect(),
            shared: self
                .shared
                .iter()
                .map(|(g, q)| (g.clone(), q.iter().map(|(s, m)| (*s, m.clone())).collect()))
                .collect(),
        }
    }
}

/// Writes of one session's records, all of them kinds, for a client that exists.
fn write_for(client: Bytes, n: u8, slot: u64) -> Vec<Write> {
    let m = msg(&format!("t/{n}"), &"p".repeat(usize::from(n)), 1 + n % 2);
    vec![
        Write::Outgoing {
            client: client.clone(),
            slot,
            entry: StoredOutgoing {
                id: u16::from(n) + 1,
                stage: n % 3,
                first_sent_ms: (n % 3 != 0).then(|| 1_700_000_000_000 + u64::from(n)),
                message: m.clone(),
            },
        },
        Write::Queued {
            client: client.clone(),
            slot,
            message: m.clone(),
        },
        Write::Inbound {
            client: client.clone(),
            id: u16::from(n) * 7 + 1,
        },
        Write::Subscribed {
            client,
            filter: b(&format!("f/{n}/#")),
            qos: n % 3,
        },
        Write::SharedQueued {
            group: b("$share/g/t/#"),
            slot: u64::from(n),
            message: m.clone(),
        },
        Write::Retained {
            message: StoredMessage { retain: true, ..m },
        },
    ]
}

/// A store with 3 sessions and a few records of every kind, and what it holds.
fn filled(dir: &Path) -> StoredState {
    filled_open(dir).1
}

/// The files of a store as `kill -9` leaves them: copied while it is open (its
/// write-ahead log not folded into the database), into `to`.
fn crash_image(to: &Path) -> StoredState {
    let from = TempDir::new("store");
    let (store, state) = filled_open(&from.0);
    std::fs::create_dir_all(to).unwrap();
    for f in files(&from.0) {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
    drop(store);
    state
}

fn filled_open(dir: &Path) -> (Store, StoredState) {
    let mut store = Store::open(dir).expect("open");
    let mut model = Model::default();
    for (i, c) in ["a", "bb", "ccc"].iter().enumerate() {
        let client = b(c);
        let mut batch = vec![Write::Session {
            client: client.clone(),
            expires_ms: Some(1_000 * i as u64),
            cursor: i as u16,
        }];
        for n in 0..5u8 {
            batch.extend(write_for(client.clone(), n + 10 * i as u8, u64::from(n)));
        }
        store.commit(&batch).expect("commit");
        batch.iter().for_each(|w| model.apply(w));
    }
    let state = model.state();
    assert_eq!(store.load().expect("load"), state);
    (store, state)
}

#[test]
fn a_committed_batch_is_read_back_after_reopening() {
    let dir = TempDir::new("store");
    let state = filled(&dir.0);
    let store = Store::open(&dir.0).expect("reopen");
    assert_eq!(store.load().expect("load"), state);
    assert_eq!(state.sessions.len(), 3);
    assert_eq!(state.sessions[0].outgoing.len(), 5);
}

#[test]
fn a_session_gone_takes_every_record_it_had_including_those_of_the_same_batch() {
    let dir = TempDir::new("store");
    filled(&dir.0);
    let mut store = Store::open(&dir.0).expect("reopen");
    let mut batch = write_for(b("bb"), 99, 77);
    batch.push(Write::SessionGone { client: b("bb") });
    store.commit(&batch).expect("commit");
    drop(store);
    let state = Store::open(&dir.0).expect("reopen").load().expect("load");
    let clients: Vec<_> = state.sessions.iter().map(|s| s.client.clone()).collect();
    assert_eq!(clients, [b("a"), b("ccc")]);
    assert!(
        state.retained.iter().any(|m| &m.topic[..] == b"t/99"),
        "retained stays"
    );
}

#[test]
fn a_marker_of_another_format_is_refused_naming_it() {
    let dir = TempDir::new("store");
    filled(&dir.0);
    std::fs::write(dir.0.join("mqtt-sansio-store"), b"something else\n").unwrap();
    match Store::open(&dir.0) {
        Err(e @ StoreError::Version { .. }) => {
            assert!(e.to_string().contains("mqtt-sansio-store"), "{e}")
        }
        other => panic!("expected a version error, got {other:?}"),
    }
}

#[test]
fn a_removed_database_is_refused_rather_than_started_empty() {
    let dir = TempDir::new("store");
    filled(&dir.0);
    std::fs::remove_file(dir.0.join("store.sqlite")).unwrap();
    let e = Store::open(&dir.0).expect_err("refused");
    assert!(matches!(e, StoreError::Damaged { .. }), "{e:?}");
    let file = dir.0.join("store.sqlite").display().to_string();
    assert!(e.to_string().contains(&file), "{e}");
}

#[test]
fn a_crash_image_opens_with_everything_committed() {
    let dir = TempDir::new("store");
    let state = crash_image(&dir.0);
    assert!(
        dir.0.join("store.sqlite-wal").is_file(),
        "the image has its log"
    );
    assert_eq!(Store::open(&dir.0).unwrap().load().unwrap(), state);
}

#[test]
fn a_damaged_last_commit_in_the_log_is_refused_not_dropped() {
    let dir = TempDir::new("store");
    crash_image(&dir.0);
    let log = dir.0.join("store.sqlite-wal");
    let end = std::fs::metadata(&log).unwrap().len();
    let mut file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.seek(SeekFrom::Start(end - 100)).unwrap();
    file.write_all(&[0xA5; 8]).unwrap();
    drop(file);
    let e = Store::open(&dir.0).expect_err("refused");
    let text = e.to_string();
    assert!(matches!(e, StoreError::Damaged { .. }), "{text}");
    assert!(
        text.contains(&dir.0.join("store.sqlite").display().to_string()),
        "{text}"
    );
    assert!(text.contains("acknowledged batches were lost"), "{text}");
}

#[test]
fn a_damaged_count_of_commits_is_refused_naming_it() {
    let dir = TempDir::new("store");
    filled(&dir.0);
    std::fs::write(dir.0.join("commits"), [0u8; 16]).unwrap();
    let e = Store::open(&dir.0).expect_err("refused");
    assert!(
        e.to_string()
            .contains(&dir.0.join("commits").display().to_string()),
        "{e}"
    );
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Opening a damaged store either refuses it, naming a path inside the store, or
/// gives back exactly what was committed: never a panic, never a partial or empty state.
fn refused_or_whole(dir: &Path, state: &StoredState, what: &str) {
    let loaded = Store::open(dir).and_then(|s| s.load());
    match loaded {
        Ok(got) => assert_eq!(&got, state, "{what}: opened with other state"),
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains(&dir.display().to_string()), "{what}: {text}");
        }
    }
}

#[test]
fn a_truncated_file_is_refused_naming_the_store_or_changes_nothing() {
    for victim in 0.. {
        let dir = TempDir::new("store");
        let state = crash_image(&dir.0);
        let all = files(&dir.0);
        let Some(f) = all.get(victim) else { break };
        let len = std::fs::metadata(f).unwrap().len();
        // Cut in the middle of the written part.
        std::fs::OpenOptions::new()
            .write(true)
            .open(f)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        refused_or_whole(
            &dir.0,
            &state,
            &format!("{} cut to {}", f.display(), len / 2),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random bytes overwritten anywhere in any file of the store.
    #[test]
    fn random_bytes_over_a_file_are_refused_or_change_nothing(
        victim in 0usize..64, at in 0.0f64..1.0, junk in proptest::collection::vec(any::<u8>(), 1..32)
    ) {
        let dir = TempDir::new("store");
        let state = crash_image(&dir.0);
        let all = files(&dir.0);
        let f = &all[victim % all.len()];
        let data = std::fs::read(f).unwrap();
        let start = ((data.len() as f64) * at) as usize;
        let end = (start + junk.len()).min(data.len());
        let mut file = std::fs::OpenOptions::new().write(true).open(f).unwrap();
        file.seek(SeekFrom::Start(start as u64)).unwrap();
        file.write_all(&junk[..end - start]).unwrap();
        drop(file);
        refused_or_whole(&dir.0, &state, &format!("{} at {start}", f.display()));
    }

    /// Any sequence of batches reads back as the model says, before and after reopening.
    #[test]
    fn batches_read_back_as_written(
        batches in proptest::collection::vec(
            proptest::collection::vec((0u8..3, 0u8..14, 0u64..6, any::<u8>()), 1..12), 1..8)
    ) {
        let dir = TempDir::new("store");
        let mut model = Model::default();
        {
            let mut store = Store::open(&dir.0).unwrap();
            for batch in &batches {
                // Records only for sessions that exist (the store refuses orphans on load).
                let mut alive: Vec<Bytes> = model.sessions.keys().cloned().collect();
                let mut writes = Vec::new();
                for &(c, kind, slot, n) in batch {
                    let client = b(["x", "y", "z"][usize::from(c)]);
                    let m = msg(&format!("t/{}", n % 4), &format!("{n}"), n % 3);
                    let exists = alive.contains(&client);
                    let w = match kind {
                        0 => {
                            alive.push(client.clone());
                            Write::Session { client, expires_ms: (n % 2 == 0).then_some(u64::from(n)), cursor: u16::from(n) }
                        }
                        1 => {
                            alive.retain(|a| a != &client);
                            Write::SessionGone { client }
                        }
                        10 => Write::Retained { message: StoredMessage { retain: true, ..m } },
                        12 => Write::SharedQueued {
                            group: b(&format!("$share/g{c}/t")),
                            slot,
                            message: m,
                        },
                        13 => Write::SharedQueuedGone {
                            group: b(&format!("$share/g{c}/t")),
                            slot,
                        },
                        11 => Write::RetainedGone { topic: b(&format!("t/{}", n % 4)) },
                        _ if !exists => continue,
                        2 => Write::Outgoing { client, slot, entry: StoredOutgoing { id: u16::from(n) + 1, stage: n % 3, first_sent_ms: (n % 2 == 1).then_some(u64::from(n)), message: m } },
                        3 => Write::OutgoingGone { client, slot },
                        4 => Write::Queued { client, slot, message: m },
                        5 => Write::QueuedGone { client, slot },
                        6 => Write::Inbound { client, id: u16::from(n % 5) + 1 },
                        7 => Write::InboundGone { client, id: u16::from(n % 5) + 1 },
                        8 => Write::Subscribed { client, filter: b(&format!("f/{}", n % 3)), qos: n % 3 },
                        _ => Write::Unsubscribed { client, filter: b(&format!("f/{}", n % 3)) },
                    };
                    writes.push(w);
                }
                store.commit(&writes).unwrap();
                writes.iter().for_each(|w| model.apply(w));
                prop_assert_eq!(store.load().unwrap(), model.state());
            }
        }
        prop_assert_eq!(Store::open(&dir.0).unwrap().load().unwrap(), model.state());
    }
}
