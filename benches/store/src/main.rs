//! The candidate databases for the durable broker, measured on its workload.
//!
//! Each batch of broker inputs becomes one transaction, committed with an fsync before
//! any acknowledgement leaves: message records put into per-session queues (one per
//! matching persistent session), the records that online subscribers acknowledged in the
//! batch before deleted, and some retained messages replaced. Measured per candidate,
//! on a real directory (`STORE_BENCH_DIR`, default `target/store-bench`):
//!
//! - `single`: 1 publish per batch (a lone publisher waiting for each PUBACK);
//! - `batched`: 64 publishes per batch (many publishers, one read of the sockets);
//! - the size of the directory afterwards;
//! - `restart`: 10 000 sessions holding 100 000 messages written, the database closed,
//!   then reopened and every record read back (what a broker start does).
//!
//! Run: `cargo run --release` in this directory. Prints one Markdown table.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One write of a batch.
enum Op {
    /// A message record under a session's queue.
    Put { key: [u8; 12], value: Vec<u8> },
    /// A message record acknowledged.
    Del { key: [u8; 12] },
    /// A retained message replaced.
    Retain { topic: Vec<u8>, value: Vec<u8> },
}

/// An embedded database under test: one durable transaction per batch.
trait Candidate: Sized {
    const NAME: &'static str;
    fn open(dir: &Path) -> Self;
    fn commit(&mut self, ops: &[Op]);
    /// Reads every record back: (records, bytes).
    fn load(&self) -> (usize, usize);
}

struct Redb {
    db: redb::Database,
}

const MSG: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("msg");
const RET: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("retained");

impl Candidate for Redb {
    const NAME: &'static str = "redb 5.0 (Durability::Immediate)";
    fn open(dir: &Path) -> Self {
        let db = redb::Database::create(dir.join("store.redb")).expect("redb open");
        Redb { db }
    }
    fn commit(&mut self, ops: &[Op]) {
        let tx = self.db.begin_write().expect("begin");
        {
            let mut msg = tx.open_table(MSG).expect("table");
            let mut ret = tx.open_table(RET).expect("table");
            for op in ops {
                match op {
                    Op::Put { key, value } => {
                        msg.insert(&key[..], &value[..]).expect("insert");
                    }
                    Op::Del { key } => {
                        msg.remove(&key[..]).expect("remove");
                    }
                    Op::Retain { topic, value } => {
                        ret.insert(&topic[..], &value[..]).expect("insert");
                    }
                }
            }
        }
        tx.commit().expect("commit");
    }
    fn load(&self) -> (usize, usize) {
        use redb::{ReadableDatabase, ReadableTable};
        let tx = self.db.begin_read().expect("read");
        let (mut n, mut bytes) = (0, 0);
        for def in [MSG, RET] {
            let Ok(t) = tx.open_table(def) else { continue };
            for row in t.iter().expect("iter") {
                let (k, v) = row.expect("row");
                n += 1;
                bytes += k.value().len() + v.value().len();
            }
        }
        (n, bytes)
    }
}

struct Sqlite {
    conn: rusqlite::Connection,
}

impl Candidate for Sqlite {
    const NAME: &'static str = "SQLite 3 bundled (WAL, synchronous=FULL)";
    fn open(dir: &Path) -> Self {
        let conn = rusqlite::Connection::open(dir.join("store.sqlite")).expect("sqlite open");
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS msg(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS retained(t BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;",
        )
        .expect("schema");
        Sqlite { conn }
    }
    fn commit(&mut self, ops: &[Op]) {
        let tx = self.conn.transaction().expect("begin");
        {
            let mut put = tx
                .prepare_cached("INSERT OR REPLACE INTO msg(k, v) VALUES (?1, ?2)")
                .expect("prepare");
            let mut del = tx
                .prepare_cached("DELETE FROM msg WHERE k = ?1")
                .expect("prepare");
            let mut ret = tx
                .prepare_cached("INSERT OR REPLACE INTO retained(t, v) VALUES (?1, ?2)")
                .expect("prepare");
            for op in ops {
                match op {
                    Op::Put { key, value } => put.execute((&key[..], &value[..])),
                    Op::Del { key } => del.execute([&key[..]]),
                    Op::Retain { topic, value } => ret.execute((&topic[..], &value[..])),
                }
                .expect("write");
            }
        }
        tx.commit().expect("commit");
    }
    fn load(&self) -> (usize, usize) {
        let (mut n, mut bytes) = (0, 0);
        for q in ["SELECT k, v FROM msg", "SELECT t, v FROM retained"] {
            let mut st = self.conn.prepare(q).expect("prepare");
            let mut rows = st.query([]).expect("query");
            while let Some(r) = rows.next().expect("row") {
                let k: Vec<u8> = r.get(0).expect("k");
                let v: Vec<u8> = r.get(1).expect("v");
                n += 1;
                bytes += k.len() + v.len();
            }
        }
        (n, bytes)
    }
}

struct Fjall {
    db: fjall::Database,
    msg: fjall::Keyspace,
    ret: fjall::Keyspace,
}

impl Candidate for Fjall {
    const NAME: &'static str = "fjall 3.1 (batch, PersistMode::SyncAll)";
    fn open(dir: &Path) -> Self {
        let db = fjall::Database::builder(dir.join("store.fjall"))
            .open()
            .expect("fjall open");
        let msg = db
            .keyspace("msg", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        let ret = db
            .keyspace("retained", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        Fjall { db, msg, ret }
    }
    fn commit(&mut self, ops: &[Op]) {
        let mut b = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll));
        for op in ops {
            match op {
                Op::Put { key, value } => b.insert(&self.msg, &key[..], &value[..]),
                Op::Del { key } => b.remove(&self.msg, &key[..]),
                Op::Retain { topic, value } => b.insert(&self.ret, &topic[..], &value[..]),
            }
        }
        b.commit().expect("commit");
    }
    fn load(&self) -> (usize, usize) {
        let (mut n, mut bytes) = (0, 0);
        for ks in [&self.msg, &self.ret] {
            for kv in ks.iter() {
                let (k, v) = kv.into_inner().expect("row");
                n += 1;
                bytes += k.len() + v.len();
            }
        }
        (n, bytes)
    }
}

/// A small deterministic generator (xorshift), so every candidate sees the same batches.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn key(session: u32, seq: u64) -> [u8; 12] {
    let mut k = [0; 12];
    k[..4].copy_from_slice(&session.to_be_bytes());
    k[4..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// A stored message record: id, stage, QoS, topic and a 100-byte payload (~130 bytes).
fn record(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::with_capacity(130);
    v.extend_from_slice(&(rng.next() as u16).to_be_bytes());
    v.extend_from_slice(&[1, 1, 0, 24]);
    v.extend_from_slice(format!("sensors/{:06}/temp/x", rng.next() % 1_000_000).as_bytes());
    v.resize(130, 0x5a);
    v
}

/// Batches of `per_batch` publishes, each stored for 3 of 100 sessions; sessions with an
/// even number are online and acknowledge the batch before; 1 publish in 10 is retained.
fn workload(batches: usize, per_batch: usize, seed: u64) -> Vec<Vec<Op>> {
    let mut rng = Rng(seed);
    let mut seq = 0u64;
    let mut last: Vec<[u8; 12]> = Vec::new();
    let mut out = Vec::with_capacity(batches);
    for _ in 0..batches {
        let mut ops = Vec::new();
        for k in last.drain(..) {
            ops.push(Op::Del { key: k });
        }
        for _ in 0..per_batch {
            let value = record(&mut rng);
            for _ in 0..3 {
                let s = (rng.next() % 100) as u32;
                seq += 1;
                let k = key(s, seq);
                if s.is_multiple_of(2) {
                    last.push(k);
                }
                ops.push(Op::Put {
                    key: k,
                    value: value.clone(),
                });
            }
            if rng.next().is_multiple_of(10) {
                let topic = format!("retained/{}", rng.next() % 1000).into_bytes();
                ops.push(Op::Retain { topic, value });
            }
        }
        out.push(ops);
    }
    out
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            total += if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn fresh(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn run_phase<C: Candidate>(root: &Path, label: &str, batches: &[Vec<Op>], publishes: usize) {
    let dir = fresh(root, "phase");
    let mut db = C::open(&dir);
    let mut lat = Vec::with_capacity(batches.len());
    let t0 = Instant::now();
    for ops in batches {
        let t = Instant::now();
        db.commit(ops);
        lat.push(t.elapsed());
    }
    let total = t0.elapsed();
    drop(db);
    lat.sort();
    let commits = batches.len() as f64 / total.as_secs_f64();
    let msgs = (batches.len() * publishes) as f64 / total.as_secs_f64();
    println!(
        "| {} | {label} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} |",
        C::NAME,
        commits,
        msgs,
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        dir_size(&dir) as f64 / 1024.0,
    );
}

fn restart<C: Candidate>(root: &Path) {
    let dir = fresh(root, "restart");
    let mut rng = Rng(7);
    let mut db = C::open(&dir);
    let mut seq = 0u64;
    // 10 000 sessions x 10 messages, written 1 000 records per transaction.
    for chunk in 0..100u32 {
        let mut ops = Vec::with_capacity(1000);
        for i in 0..1000u32 {
            let s = chunk * 100 + i / 10;
            seq += 1;
            ops.push(Op::Put {
                key: key(s, seq),
                value: record(&mut rng),
            });
        }
        db.commit(&ops);
    }
    drop(db);
    let size = dir_size(&dir);
    let t = Instant::now();
    let db = C::open(&dir);
    let (n, _) = db.load();
    let took = t.elapsed();
    assert_eq!(n, 100_000, "{} lost records", C::NAME);
    println!(
        "| {} | reopen + read 100 000 messages | {:.0} ms | {:.0} bytes/message on disk |",
        C::NAME,
        took.as_secs_f64() * 1e3,
        size as f64 / 100_000.0
    );
}

fn main() {
    let root = PathBuf::from(
        std::env::var("STORE_BENCH_DIR").unwrap_or_else(|_| "target/store-bench".into()),
    );
    let single = workload(1000, 1, 1);
    let batched = workload(200, 64, 2);
    println!(
        "| database | workload | commits/s | publishes/s | p50 commit ms | p99 commit ms | dir KiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    run_phase::<Redb>(&root, "1 publish/batch", &single, 1);
    run_phase::<Sqlite>(&root, "1 publish/batch", &single, 1);
    run_phase::<Fjall>(&root, "1 publish/batch", &single, 1);
    run_phase::<Redb>(&root, "64 publishes/batch", &batched, 64);
    run_phase::<Sqlite>(&root, "64 publishes/batch", &batched, 64);
    run_phase::<Fjall>(&root, "64 publishes/batch", &batched, 64);
    println!();
    println!("| database | restart | time | size |");
    println!("|---|---|---|---|");
    restart::<Redb>(&root);
    restart::<Sqlite>(&root);
    restart::<Fjall>(&root);
    let _ = std::fs::remove_dir_all(&root);
}
