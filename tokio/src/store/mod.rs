//! The durable state of a broker, or of a client ([`ClientStore`]), in a directory: an
//! embedded, crash-safe database (SQLite; `benches/store` and the README say why this
//! one).
//!
//! [`Store::commit`] writes one batch of [`Write`]s as one transaction and returns once
//! it is on disk (the journal `fsync`ed): whatever a caller acknowledges after it
//! returns survives `kill -9` and power loss. [`Store::load`] reads everything back.
//!
//! The directory holds a marker file (`mqtt-sansio-store`, the format and its version)
//! and the database (`store.sqlite` and its write-ahead log). A directory whose marker says the database was made but
//! whose database is missing, empty or unreadable is refused with a
//! [`StoreError`] naming the path: the broker never starts empty on top of lost state.
//!
//! A database's own recovery discards a damaged last batch of its journal, as it would
//! a batch torn by a crash before its `fsync`; but that batch was acknowledged. So every
//! commit also counts itself, in the database and, after the database's `fsync`, in the
//! file `commits` (a second `fsync`): a database that comes back with fewer commits than
//! the file recorded lost an acknowledged batch and is refused.

mod batch;
mod broker;
mod client;
mod db;
mod record;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use db::Db;

pub(crate) use batch::Batch;
pub use broker::BrokerStore;
pub(crate) use broker::lock;
pub use client::ClientStore;
pub use record::{StoredMessage, StoredOutgoing, StoredSession, StoredState, Write};
use record::{decode_message, decode_outgoing, decode_session, decode_u64, split_key};

/// The marker file's name and its only accepted content.
const MARKER: &str = "mqtt-sansio-store";
const MARKER_TEXT: &[u8] = b"mqtt-sansio store, format 1\n";
/// The key of the format record in the meta table.
const FORMAT_KEY: &[u8] = b"format";
const FORMAT: &[u8] = b"1";
/// The key of the number of commits in the meta table, and the file that repeats it.
const COMMITS_KEY: &[u8] = b"commits";
const COMMITS: &str = "commits";

/// Why a store could not be opened, read or written.
#[derive(Debug)]
pub enum StoreError {
    /// A file or directory could not be read or written.
    Io {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The store is damaged: a file is missing, unreadable, or holds what this format
    /// cannot hold. Nothing was changed.
    Damaged {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The directory holds a store of another format.
    Version {
        /// The marker file.
        path: PathBuf,
    },
    /// Another process has the store open.
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// A client id longer than 65 535 bytes (nothing was written).
    ClientIdTooLong,
    /// A topic longer than 65 535 bytes (nothing was written).
    TopicTooLong,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StoreError::Damaged { path, detail } => {
                write!(f, "{}: damaged store: {detail}", path.display())
            }
            StoreError::Version { path } => write!(
                f,
                "{}: not a store of this format (expected {:?})",
                path.display(),
                String::from_utf8_lossy(MARKER_TEXT).trim_end()
            ),
            StoreError::Locked { path } => {
                write!(
                    f,
                    "{}: the store is open in another process",
                    path.display()
                )
            }
            StoreError::ClientIdTooLong => f.write_str("a client id longer than 65535 bytes"),
            StoreError::TopicTooLong => f.write_str("a topic longer than 65535 bytes"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The tables, one per kind of record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum Table {
    Meta,
    Sessions,
    Outgoing,
    Queue,
    Inbound,
    Subscriptions,
    Retained,
    Shared,
}

impl Table {
    const ALL: [Table; 8] = [
        Table::Meta,
        Table::Sessions,
        Table::Outgoing,
        Table::Queue,
        Table::Inbound,
        Table::Subscriptions,
        Table::Retained,
        Table::Shared,
    ];
    /// The tables whose keys start with a client id.
    const PER_SESSION: [Table; 5] = [
        Table::Sessions,
        Table::Outgoing,
        Table::Queue,
        Table::Inbound,
        Table::Subscriptions,
    ];
    fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Sessions => "sessions",
            Table::Outgoing => "outgoing",
            Table::Queue => "queue",
            Table::Inbound => "inbound",
            Table::Subscriptions => "subscriptions",
            Table::Retained => "retained",
            Table::Shared => "shared",
        }
    }
    /// The statement that puts a record (`?1` key, `?2` value).
    fn put(self) -> &'static str {
        match self {
            Table::Meta => "INSERT OR REPLACE INTO meta(k, v) VALUES (?1, ?2)",
            Table::Sessions => "INSERT OR REPLACE INTO sessions(k, v) VALUES (?1, ?2)",
            Table::Outgoing => "INSERT OR REPLACE INTO outgoing(k, v) VALUES (?1, ?2)",
            Table::Queue => "INSERT OR REPLACE INTO queue(k, v) VALUES (?1, ?2)",
            Table::Inbound => "INSERT OR REPLACE INTO inbound(k, v) VALUES (?1, ?2)",
            Table::Subscriptions => "INSERT OR REPLACE INTO subscriptions(k, v) VALUES (?1, ?2)",
            Table::Retained => "INSERT OR REPLACE INTO retained(k, v) VALUES (?1, ?2)",
            Table::Shared => "INSERT OR REPLACE INTO shared(k, v) VALUES (?1, ?2)",
        }
    }
    /// The statement that removes a record (`?1` key).
    fn delete(self) -> &'static str {
        match self {
            Table::Meta => "DELETE FROM meta WHERE k = ?1",
            Table::Sessions => "DELETE FROM sessions WHERE k = ?1",
            Table::Outgoing => "DELETE FROM outgoing WHERE k = ?1",
            Table::Queue => "DELETE FROM queue WHERE k = ?1",
            Table::Inbound => "DELETE FROM inbound WHERE k = ?1",
            Table::Subscriptions => "DELETE FROM subscriptions WHERE k = ?1",
            Table::Retained => "DELETE FROM retained WHERE k = ?1",
            Table::Shared => "DELETE FROM shared WHERE k = ?1",
        }
    }
}

/// A broker's durable state in a directory. See the [module](self) documentation.
pub struct Store {
    dir: PathBuf,
    db: Db,
    /// The `commits` file and the number of commits made.
    counter: std::fs::File,
    commits: u64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir`, making the directory and an empty store if there is
    /// none. Refused, with a [`StoreError`] naming the path, when the directory holds a
    /// damaged store, one of another format, or one another process has open.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        let marker = dir.join(MARKER);
        let made = match std::fs::read(&marker) {
            Ok(text) if text == MARKER_TEXT => true,
            Ok(_) => return Err(StoreError::Version { path: marker }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(source) => {
                return Err(StoreError::Io {
                    path: marker,
                    source,
                });
            }
        };
        let db_path = dir.join(db::FILE);
        if made && !db_path.is_file() {
            return Err(StoreError::Damaged {
                path: db_path,
                detail: "the database is missing".into(),
            });
        }
        let mut db = Db::open(&db_path)?;
        match db.get(Table::Meta, FORMAT_KEY)? {
            Some(v) if v == FORMAT => {}
            Some(_) => {
                return Err(StoreError::Damaged {
                    path: db_path,
                    detail: "the format record holds an unknown format".into(),
                });
            }
            None if made => {
                return Err(StoreError::Damaged {
                    path: db_path,
                    detail: "the database is empty although the store was made".into(),
                });
            }
            None => {
                for t in Table::ALL {
                    if !db.is_empty(t)? {
                        return Err(StoreError::Damaged {
                            path: db_path,
                            detail: "records without a format record".into(),
                        });
                    }
                }
                db.write(
                    &std::collections::BTreeSet::new(),
                    [
                        ((Table::Meta, FORMAT_KEY.to_vec()), Some(FORMAT.to_vec())),
                        (
                            (Table::Meta, COMMITS_KEY.to_vec()),
                            Some(0u64.to_be_bytes().to_vec()),
                        ),
                    ],
                )?;
            }
        }
        let in_db = db
            .get(Table::Meta, COMMITS_KEY)?
            .and_then(|v| decode_u64(&v))
            .ok_or_else(|| StoreError::Damaged {
                path: db_path.clone(),
                detail: "no count of commits".into(),
            })?;
        let counter_path = dir.join(COMMITS);
        let (counter, in_file) = if made {
            open_counter(&counter_path)?
        } else {
            (write_counter_file(&dir, &counter_path, in_db)?, in_db)
        };
        // The file is written after the database: at most one commit ahead of it.
        if in_db < in_file {
            return Err(StoreError::Damaged {
                path: db_path,
                detail: format!(
                    "it holds {in_db} commits but {} recorded {in_file}: \
                     acknowledged batches were lost (its journal is damaged)",
                    counter_path.display()
                ),
            });
        }
        if in_db > in_file + 1 {
            return Err(StoreError::Damaged {
                path: counter_path,
                detail: format!("it records {in_file} commits but the database holds {in_db}"),
            });
        }
        let store = Store {
            dir,
            db,
            counter,
            commits: in_db,
        };
        if !made {
            write_marker(&store.dir, &marker)?;
        }
        Ok(store)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `writes`, in order, as one transaction, and returns once it is durable
    /// (the journal `fsync`ed). On an error nothing of the batch is applied.
    pub fn commit(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        for w in writes {
            batch.add(w)?;
        }
        self.commit_batch(batch)
    }

    /// Writes `batch` as one transaction, with the count of commits, and returns once
    /// it is durable: the database's `fsync`, then the `commits` file's. An empty batch
    /// writes nothing.
    pub(crate) fn commit_batch(&mut self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let commits = self.commits + 1;
        let count = (
            (Table::Meta, COMMITS_KEY.to_vec()),
            Some(commits.to_be_bytes().to_vec()),
        );
        let ops = batch.encoded()?;
        self.db
            .write(&batch.gone, ops.into_iter().chain(std::iter::once(count)))?;
        self.commits = commits;
        put_counter(&mut self.counter, commits).map_err(|source| StoreError::Io {
            path: self.dir.join(COMMITS),
            source,
        })
    }

    /// Reads every record back. A record this format cannot hold, or one of a session
    /// that does not exist, is a [`StoreError::Damaged`].
    pub fn load(&self) -> Result<StoredState, StoreError> {
        let path = self.db.path().to_path_buf();
        let damaged = |t: Table, what: &str| StoreError::Damaged {
            path: path.clone(),
            detail: format!("table {}: {what}", t.name()),
        };
        let mut sessions: BTreeMap<Bytes, StoredSession> = BTreeMap::new();
        for (k, v) in self.db.scan(Table::Sessions)? {
            let (client, rest) =
                split_key(&k).ok_or_else(|| damaged(Table::Sessions, "a bad key"))?;
            let (expires_ms, cursor) = decode_session(&v)
                .ok_or_else(|| damaged(Table::Sessions, "a bad session record"))?;
            if !rest.is_empty() {
                return Err(damaged(Table::Sessions, "a bad key"));
            }
            let client = Bytes::copy_from_slice(client);
            sessions.insert(
                client.clone(),
                StoredSession {
                    client,
                    expires_ms,
                    cursor,
                    ..StoredSession::default()
                },
            );
        }
        for t in [
            Table::Outgoing,
            Table::Queue,
            Table::Inbound,
            Table::Subscriptions,
        ] {
            for (k, v) in self.db.scan(t)? {
                let (client, rest) = split_key(&k).ok_or_else(|| damaged(t, "a bad key"))?;
                let session = sessions
                    .get_mut(client)
                    .ok_or_else(|| damaged(t, "a record of a session that does not exist"))?;
                match t {
                    Table::Outgoing => {
                        let slot = decode_u64(rest).ok_or_else(|| damaged(t, "a bad slot"))?;
                        let e = decode_outgoing(&v).ok_or_else(|| damaged(t, "a bad entry"))?;
                        session.outgoing.push((slot, e));
                    }
                    Table::Queue => {
                        let slot = decode_u64(rest).ok_or_else(|| damaged(t, "a bad slot"))?;
                        let m = decode_message(&v).ok_or_else(|| damaged(t, "a bad message"))?;
                        session.queue.push((slot, m));
                    }
                    Table::Inbound => {
                        let id = match rest {
                            [a, b] if v.is_empty() => u16::from_be_bytes([*a, *b]),
                            _ => return Err(damaged(t, "a bad packet id")),
                        };
                        session.inbound.push(id);
                    }
                    _ => {
                        let qos = match &v[..] {
                            [q] if *q <= 2 => *q,
                            _ => return Err(damaged(t, "a bad QoS")),
                        };
                        session
                            .subscriptions
                            .push((Bytes::copy_from_slice(rest), qos));
                    }
                }
            }
        }
        let mut retained = Vec::new();
        for (k, v) in self.db.scan(Table::Retained)? {
            let m = decode_message(&v)
                .filter(|m| m.topic[..] == k[..])
                .ok_or_else(|| damaged(Table::Retained, "a bad message"))?;
            retained.push(m);
        }
        let mut shared: Vec<(Bytes, Vec<(u64, StoredMessage)>)> = Vec::new();
        for (k, v) in self.db.scan(Table::Shared)? {
            let (group, rest) = split_key(&k).ok_or_else(|| damaged(Table::Shared, "a bad key"))?;
            let slot = decode_u64(rest).ok_or_else(|| damaged(Table::Shared, "a bad slot"))?;
            let m = decode_message(&v).ok_or_else(|| damaged(Table::Shared, "a bad message"))?;
            match shared.last_mut() {
                Some((g, q)) if &g[..] == group => q.push((slot, m)),
                _ => shared.push((Bytes::copy_from_slice(group), vec![(slot, m)])),
            }
        }
        Ok(StoredState {
            sessions: sessions.into_values().collect(),
            retained,
            shared,
        })
    }
}

use bytes::Bytes;

/// The `commits` file: the count, big-endian, then its complement.
fn counter_bytes(n: u64) -> [u8; 16] {
    let mut b = [0; 16];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[8..].copy_from_slice(&(!n).to_be_bytes());
    b
}

fn put_counter(f: &mut std::fs::File, n: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&counter_bytes(n))?;
    f.sync_data()
}

fn open_counter(path: &Path) -> Result<(std::fs::File, u64), StoreError> {
    let data = std::fs::read(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let n = match <[u8; 16]>::try_from(&data[..]) {
        Ok(b)
            if counter_bytes(u64::from_be_bytes([
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
            ])) == b =>
        {
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        }
        _ => {
            return Err(StoreError::Damaged {
                path: path.to_path_buf(),
                detail: "not a count of commits".into(),
            });
        }
    };
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((f, n))
}

fn write_counter_file(dir: &Path, path: &Path, n: u64) -> Result<std::fs::File, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    put_counter(&mut f, n).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(f)
}

/// Writes the marker file and makes it and its directory entry durable.
fn write_marker(dir: &Path, marker: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: marker.to_path_buf(),
        source,
    };
    let tmp = dir.join(format!("{MARKER}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(MARKER_TEXT).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, marker).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })
}
