//! The database under the store: SQLite (rusqlite's bundled build), one table of keys
//! and values per kind of record, each value followed by a CRC-32 of its table, key and
//! value (SQLite checks its structure, not the bytes of a record).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{StoreError, Table};

/// The database file inside the store's directory.
pub(super) const FILE: &str = "store.sqlite";

pub(super) struct Db {
    conn: Connection,
    path: PathBuf,
}

/// A key and its value.
pub(super) type Record = (Vec<u8>, Vec<u8>);

/// One write of a transaction: a value put, or the key removed.
pub(super) type Op = ((Table, Vec<u8>), Option<Vec<u8>>);

impl Db {
    /// Opens (or makes) the database and checks its structure.
    pub(super) fn open(path: &Path) -> Result<Db, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| error(path, e))?;
        let db = Db {
            conn,
            path: path.to_path_buf(),
        };
        // EXCLUSIVE: the lock is held from the first access on, so a second broker on
        // the same directory is refused. FULL: every commit syncs the WAL.
        db.conn
            .execute_batch(
                "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; \
                 PRAGMA synchronous=FULL;",
            )
            .map_err(|e| error(path, e))?;
        let mut schema = String::new();
        for t in Table::ALL {
            schema.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {}(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;",
                t.name()
            ));
        }
        db.conn.execute_batch(&schema).map_err(|e| error(path, e))?;
        let check: String = db
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| error(path, e))?;
        if check != "ok" {
            return Err(StoreError::Damaged {
                path: path.to_path_buf(),
                detail: format!("SQLite's check: {check}"),
            });
        }
        Ok(db)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn damaged(&self, t: Table, what: &str) -> StoreError {
        StoreError::Damaged {
            path: self.path.clone(),
            detail: format!("table {}: {what}", t.name()),
        }
    }

    /// The value of `key`, its checksum verified.
    pub(super) fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = format!("SELECT v FROM {} WHERE k = ?1", t.name());
        let v: Option<Vec<u8>> = self
            .conn
            .query_row(&sql, [key], |r| r.get(0))
            .optional()
            .map_err(|e| error(&self.path, e))?;
        v.map(|v| unseal(t, key, v).ok_or_else(|| self.damaged(t, "a record fails its checksum")))
            .transpose()
    }

    /// Every record of `t` in key order, checksums verified.
    pub(super) fn scan(&self, t: Table) -> Result<Vec<Record>, StoreError> {
        let sql = format!("SELECT k, v FROM {} ORDER BY k", t.name());
        let mut st = self.conn.prepare(&sql).map_err(|e| error(&self.path, e))?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| error(&self.path, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (k, v) = row.map_err(|e| error(&self.path, e))?;
            let v =
                unseal(t, &k, v).ok_or_else(|| self.damaged(t, "a record fails its checksum"))?;
            out.push((k, v));
        }
        Ok(out)
    }

    /// Whether `t` holds no record.
    pub(super) fn is_empty(&self, t: Table) -> Result<bool, StoreError> {
        let sql = format!("SELECT NOT EXISTS (SELECT 1 FROM {})", t.name());
        self.conn
            .query_row(&sql, [], |r| r.get(0))
            .map_err(|e| error(&self.path, e))
    }

    /// Removes every record of the sessions whose keys start with one of `gone`, then
    /// applies `ops`, as one transaction, and returns once it is durable.
    pub(super) fn write(
        &mut self,
        gone: &BTreeSet<Vec<u8>>,
        ops: impl IntoIterator<Item = Op>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| error(&path, e))?;
        for prefix in gone {
            for t in Table::PER_SESSION {
                let result = match successor(prefix) {
                    Some(end) => tx
                        .prepare_cached(&format!(
                            "DELETE FROM {} WHERE k >= ?1 AND k < ?2",
                            t.name()
                        ))
                        .and_then(|mut st| st.execute(params![prefix, end])),
                    None => tx
                        .prepare_cached(&format!("DELETE FROM {} WHERE k >= ?1", t.name()))
                        .and_then(|mut st| st.execute(params![prefix])),
                };
                result.map_err(|e| error(&path, e))?;
            }
        }
        for ((t, key), value) in ops {
            let result = match value {
                Some(v) => {
                    let sealed = seal(t, &key, v);
                    tx.prepare_cached(t.put())
                        .and_then(|mut st| st.execute(params![key, sealed]))
                }
                None => tx
                    .prepare_cached(t.delete())
                    .and_then(|mut st| st.execute(params![key])),
            };
            result.map_err(|e| error(&path, e))?;
        }
        tx.commit().map_err(|e| error(&path, e))
    }
}

/// The least key above every key that starts with `prefix`; `None` when there is none
/// (`prefix` is all `0xff`: every key from it on starts with it).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// `v` followed by the CRC-32 of the table's name, the key and `v`.
fn seal(t: Table, key: &[u8], mut v: Vec<u8>) -> Vec<u8> {
    let c = crc(t, key, &v);
    v.extend_from_slice(&c.to_be_bytes());
    v
}

/// `v` without its checksum, if the checksum holds.
fn unseal(t: Table, key: &[u8], mut v: Vec<u8>) -> Option<Vec<u8>> {
    let at = v.len().checked_sub(4)?;
    let got = u32::from_be_bytes(v[at..].try_into().ok()?);
    v.truncate(at);
    (crc(t, key, &v) == got).then_some(v)
}

fn crc(t: Table, key: &[u8], v: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(t.name().as_bytes());
    c.update(&(key.len() as u64).to_be_bytes());
    c.update(key);
    c.update(v);
    c.finish()
}

/// CRC-32 (IEEE, reflected), table-driven.
struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    fn new() -> Crc32 {
        Crc32(!0)
    }
    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xff) as usize] ^ (self.0 >> 8);
        }
    }
    fn finish(&self) -> u32 {
        !self.0
    }
}

fn error(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
            path: path.to_path_buf(),
        },
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure,
        ) => StoreError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        },
        _ => StoreError::Damaged {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::Crc32;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }
}
