//! The other server shape, kept for measurement only: one task per connection, all
//! sharing the [`Broker`] behind a mutex, against the crate's [`Server`] (one task owns
//! the broker). Plain TCP, the `mqtt311` profile.
//!
//! ```text
//! cargo run --release --example shape_locked -- [--listen 127.0.0.1:0] [--max-inflight N] [--max-queued N] [--threads N]
//! ```
//!
//! Each connection's task reads, locks the broker, hands it the bytes, drains every
//! action (sending to the writers of the connections they name) and unlocks. A timer
//! task locks the broker at its `poll_timeout`. Prints `listening on ADDR`; runs until
//! killed. `benches/server-shapes.sh` drives both shapes with the load generator.
//!
//! [`Server`]: mqtt_sansio_tokio::Server

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use clap::Parser;
use mqtt_sansio::broker::{Action, Broker, BrokerConfig, ConnId};
use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::{Instant, Profile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

/// A broker with one task per connection sharing a locked core.
#[derive(Parser)]
struct Args {
    /// The TCP listener.
    #[arg(long, default_value = "127.0.0.1:1883")]
    listen: SocketAddr,
    /// QoS 1/2 deliveries unacknowledged per session.
    #[arg(long, default_value_t = 64)]
    max_inflight: usize,
    /// QoS 1/2 deliveries waiting per session.
    #[arg(long, default_value_t = 1000)]
    max_queued: usize,
    /// Encoded packets waiting for one connection's socket.
    #[arg(long, default_value_t = 1024)]
    write_queue: usize,
    /// Runtime worker threads (1: single-threaded).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// The broker and the writers of the open connections, under one lock.
struct Shared {
    broker: Broker,
    writers: HashMap<ConnId, mpsc::Sender<Bytes>>,
}

struct State {
    shared: Mutex<Shared>,
    start: std::time::Instant,
    /// Wakes the timer task when the broker's next deadline may have moved.
    rearm: Notify,
}

impl State {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Runs `f` on the broker under the lock, then carries out every action.
    fn with<F: FnOnce(&mut Broker, Instant)>(&self, f: F) {
        let now = self.now();
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s.broker, now);
        while let Some(action) = s.broker.poll_action() {
            match action {
                Action::Send { conn, packet } => {
                    let Ok(bytes) = packet.to_bytes() else {
                        continue;
                    };
                    let full = s
                        .writers
                        .get(&conn)
                        .is_some_and(|w| w.try_send(bytes).is_err());
                    if full {
                        s.writers.remove(&conn);
                        s.broker.connection_lost(now, conn);
                    }
                }
                Action::Close { conn, .. } => {
                    s.writers.remove(&conn);
                }
                // No back-pressure here (the default `QueueFullPolicy::Drop`).
                Action::Event(_)
                | Action::Change(_)
                | Action::Pause { .. }
                | Action::Resume { .. } => {}
            }
        }
        drop(s);
        self.rearm.notify_one();
    }
}

async fn timer(state: Arc<State>) {
    loop {
        let next = {
            let s = state.shared.lock().unwrap_or_else(|p| p.into_inner());
            s.broker.poll_timeout()
        };
        let sleep = async {
            match next {
                Some(at) => {
                    let at = state.start + Duration::from_millis(at.as_millis());
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => state.with(|b, now| b.handle_timeout(now)),
            () = state.rearm.notified() => {}
        }
    }
}

async fn serve(a: Args) -> std::io::Result<()> {
    let config = ServerConfig {
        max_inflight: a.max_inflight,
        max_queued: a.max_queued,
        ..ServerConfig::default()
    };
    let state = Arc::new(State {
        shared: Mutex::new(Shared {
            broker: Broker::new(Profile::mqtt311(), BrokerConfig::from(config)),
            writers: HashMap::new(),
        }),
        start: std::time::Instant::now(),
        rearm: Notify::new(),
    });
    tokio::spawn(timer(state.clone()));
    let listener = TcpListener::bind(a.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let mut next = 0u64;
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        next += 1;
        let conn = ConnId(next);
        let (mut rd, mut wr) = tcp.into_split();
        let (tx, mut rx) = mpsc::channel::<Bytes>(a.write_queue);
        {
            let mut s = state.shared.lock().unwrap_or_else(|p| p.into_inner());
            if s.broker.open(state.now(), conn).is_err() {
                continue;
            }
            s.writers.insert(conn, tx);
        }
        tokio::spawn(async move {
            let mut batch = BytesMut::new();
            while let Some(first) = rx.recv().await {
                batch.extend_from_slice(&first);
                while batch.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(more) => batch.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                if wr.write_all(&batch).await.is_err() {
                    return;
                }
                batch.clear();
            }
            let _ = wr.shutdown().await;
        });
        let state = state.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(8 * 1024);
            loop {
                buf.clear();
                buf.reserve(8 * 1024);
                match rd.read_buf(&mut buf).await {
                    Ok(n) if n > 0 => state.with(|b, now| b.handle_bytes(now, conn, &buf)),
                    _ => {
                        state.with(|b, now| b.connection_lost(now, conn));
                        let mut s = state.shared.lock().unwrap_or_else(|p| p.into_inner());
                        s.writers.remove(&conn);
                        return;
                    }
                }
            }
        });
    }
}

fn main() {
    let a = Args::parse();
    let rt = if a.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.threads)
            .enable_all()
            .build()
    };
    let rt = rt.unwrap_or_else(|e| {
        eprintln!("cannot start the runtime: {e}");
        std::process::exit(1);
    });
    if let Err(e) = rt.block_on(serve(a)) {
        eprintln!("shape_locked: {e}");
        std::process::exit(1);
    }
}
