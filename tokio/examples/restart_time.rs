//! How long a durable broker takes to start on a full data directory, and what a stored
//! message costs on disk.
//!
//! ```text
//! cargo run --release --example restart_time -- [--sessions N] [--messages M]
//!     [--payload BYTES] [--dir DIR]
//! ```
//!
//! Fills a new data directory through the store API (`store::Store::commit`, 1000
//! sessions per transaction): N persistent sessions (default 10 000), each with one
//! subscription and M / N queued QoS 1 messages (M default 100 000) of `--payload` bytes
//! (default 16) on a 12-byte topic. Then it times a broker start as
//! `examples/broker --data-dir` does it: from `Server::new` and `Server::data_dir`
//! (open, read, check) through `listen` and `run` (the broker rebuilt from the store)
//! to the first CONNACK, for a client resuming one of the sessions (session present
//! 1). Prints one JSON line: the counts, the fill time, `start_to_connack_ms`, the
//! files' sizes after the fill and `bytes_per_message` (the whole directory divided by
//! M). `--dir` keeps the directory (it must not exist); by default a temporary one is
//! removed at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use mqtt_sansio::{BrokerConfig, Profile};
use mqtt_sansio_tokio::store::{Store, StoredMessage, Write};
use mqtt_sansio_tokio::{Client, Listener, Options, Server};

struct Args {
    sessions: u64,
    messages: u64,
    payload: usize,
    dir: Option<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        sessions: 10_000,
        messages: 100_000,
        payload: 16,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--sessions" => a.sessions = number()?.max(1),
            "--messages" => a.messages = number()?,
            "--payload" => a.payload = number()? as usize,
            "--dir" => a.dir = Some(PathBuf::from(&value)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn client(n: u64) -> Bytes {
    Bytes::from(format!("s-{n:05}"))
}

/// Writes the sessions and their messages; returns how many messages were written.
fn fill(dir: &Path, a: &Args) -> Result<u64, Box<dyn std::error::Error>> {
    let mut store = Store::open(dir)?;
    let per = a.messages / a.sessions;
    let extra = a.messages % a.sessions;
    let payload = Bytes::from(vec![b'x'; a.payload]);
    let mut written = 0;
    let mut batch = Vec::new();
    for n in 0..a.sessions {
        let c = client(n);
        let topic = Bytes::from(format!("dev/{n:05}/tm"));
        batch.push(Write::Session {
            client: c.clone(),
            expires_ms: None,
            cursor: 0,
        });
        batch.push(Write::Subscribed {
            client: c.clone(),
            filter: Bytes::from(format!("dev/{n:05}/#")),
            qos: 1,
        });
        for slot in 0..per + u64::from(n < extra) {
            batch.push(Write::Queued {
                client: c.clone(),
                slot,
                message: StoredMessage {
                    topic: topic.clone(),
                    payload: payload.clone(),
                    qos: 1,
                    retain: false,
                },
            });
            written += 1;
        }
        if (n + 1) % 1000 == 0 {
            store.commit(&batch)?;
            batch.clear();
        }
    }
    store.commit(&batch)?;
    Ok(written)
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

async fn start_to_connack(dir: &Path) -> Result<(f64, bool), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let mut server = Server::new(Profile::mqtt311(), BrokerConfig::default());
    server.data_dir(dir)?;
    let addr = server.listen(Listener::Tcp("127.0.0.1:0".parse()?)).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let mut o = Options::new(format!("mqtt://{addr}"));
    o.client_id = "s-00000".into();
    o.clean_session = false;
    let (c, _messages) = Client::connect(o).await?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let present = c.session_present();
    drop(c);
    let _ = stop.send(());
    task.await??;
    Ok((ms, present))
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("restart_time: {e}");
            std::process::exit(2);
        }
    };
    let (dir, keep) = match &a.dir {
        Some(d) => (d.clone(), true),
        None => (
            std::env::temp_dir().join(format!("mqtt-sansio-restart-{}", std::process::id())),
            false,
        ),
    };
    if dir.exists() {
        eprintln!("restart_time: {} exists", dir.display());
        std::process::exit(2);
    }
    let t = Instant::now();
    let result = fill(&dir, &a).and_then(|written| {
        let fill_secs = t.elapsed().as_secs_f64();
        let files: Vec<(String, u64)> = ["store.sqlite", "store.sqlite-wal", "commits"]
            .iter()
            .map(|f| (f.to_string(), size(&dir.join(f))))
            .collect();
        let total: u64 = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .map(|e| size(&e.path()))
            .sum();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (ms, present) = rt.block_on(start_to_connack(&dir))?;
        let files: Vec<String> = files.iter().map(|(f, b)| format!("\"{f}\": {b}")).collect();
        println!(
            "{{\"sessions\": {}, \"messages\": {written}, \"payload\": {}, \"fill_secs\": {fill_secs:.2}, \
             \"start_to_connack_ms\": {ms:.1}, \"session_present\": {present}, \"dir_bytes\": {total}, \
             \"files\": {{{}}}, \"bytes_per_message\": {:.1}}}",
            a.sessions,
            a.payload,
            files.join(", "),
            total as f64 / written.max(1) as f64
        );
        Ok(())
    });
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Err(e) = result {
        eprintln!("restart_time: {e}");
        std::process::exit(1);
    }
}
