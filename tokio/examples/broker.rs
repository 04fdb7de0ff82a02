//! An MQTT 3.1.1 broker: the crate's [`Server`] with listeners on TCP, TLS, WebSocket
//! and WebSocket over TLS.
//!
//! ```text
//! cargo run --release --example broker -- [--listen 127.0.0.1:1883] [--profile aws-iot|aws-iot-2025|mqtt311]
//!     [--tls-listen ADDR --tls-cert FILE --tls-key FILE [--tls-client-ca FILE] [--require-cn-client-id]]
//!     [--ws-listen ADDR] [--wss-listen ADDR]
//!     [--user NAME:PASSWORD]... [--deny-subscribe FILTER]... [--deny-publish FILTER]...
//!     [--max-packet-size BYTES] [--max-inflight N] [--max-queued N] [--max-inbound-qos2 N]
//!     [--max-sessions N] [--max-retained N] [--max-connect-size BYTES] [--write-queue N]
//!     [--threads N] [--data-dir DIR] [--qos1-retry-ms MS] [--sys-interval SECS]
//!     [--queue-full drop|backpressure] [--max-queued-bytes BYTES] [--max-queued-bytes-total BYTES]
//! ```
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--listen ADDR` | `127.0.0.1:1883` | the plain TCP listener (port 0: any free port) |
//! | `--tls-listen ADDR` | none | a TLS listener; needs `--tls-cert` and `--tls-key` |
//! | `--tls-cert FILE`, `--tls-key FILE` | | the server's certificate chain and key (PEM), for TLS and WSS |
//! | `--tls-client-ca FILE` | none | require client certificates issued by this CA (mutual TLS) |
//! | `--require-cn-client-id` | off | refuse (CONNACK 5) a CONNECT whose client id is not its certificate's subject CN |
//! | `--ws-listen ADDR` | none | a WebSocket listener (sub-protocol `mqtt`, any path) |
//! | `--wss-listen ADDR` | none | a WebSocket listener over TLS |
//! | `--profile P` | `aws-iot` | `aws-iot` (AWS IoT Core's dialect, 2019–2021), `aws-iot-2025` (AWS IoT Core as documented today) or `mqtt311` (the standard) |
//! | `--user NAME:PASSWORD` | anyone | with one or more, CONNECT needs a matching login: none gets CONNACK 5, a wrong one CONNACK 4 (repeatable) |
//! | `--deny-subscribe FILTER` | none | refuse subscriptions FILTER matches (repeatable) |
//! | `--deny-publish FILTER` | none | acknowledge and drop publishes FILTER matches (repeatable) |
//! | `--max-packet-size BYTES` | the profile's | largest PUBLISH payload; a larger one closes the connection |
//! | `--max-inflight N` | 64 | QoS 1/2 deliveries unacknowledged per session (the profile caps it) |
//! | `--max-queued N` | 1000 | QoS 1/2 deliveries waiting per session; beyond it see `--queue-full` |
//! | `--queue-full P` | `drop` | a QoS 1/2 delivery beyond a queue bound (`--max-queued`, `--max-queued-bytes`, `--max-queued-bytes-total`): `drop` drops and logs it; `backpressure` queues it and stops reading its publisher (or, for a publisher that is a subscriber with deliveries outstanding, holds back its PUBACKs) until the queue is back at half the bound; deliveries to offline sessions beyond a bound are dropped under both |
//! | `--max-queued-bytes BYTES` | unbounded | bytes (topic + payload) of the QoS 1/2 deliveries waiting per session |
//! | `--max-queued-bytes-total BYTES` | unbounded | bytes (topic + payload) of the deliveries waiting over every session |
//! | `--max-inbound-qos2 N` | 64 | QoS 2 PUBLISH from one client awaiting PUBREL; one more closes the connection |
//! | `--max-sessions N` | unbounded | sessions held at once; beyond it CONNECT gets CONNACK 3 |
//! | `--max-retained N` | unbounded | retained messages stored |
//! | `--max-connect-size BYTES` | 65536 | largest Remaining Length of a connection's first packet (its CONNECT); a larger one closes the connection before its bytes are read |
//! | `--write-queue N` | 1024 | encoded packets waiting for one connection's socket |
//! | `--threads N` | 1 | runtime worker threads (1: a single-threaded runtime) |
//! | `--qos1-retry-ms MS` | the profile's | drop an unacknowledged QoS 1 delivery MS milliseconds after its first sending, logged (0: never); `aws-iot-2025` has an hour, the others none |
//! | `--sys-interval SECS` | 10 | publish the broker's counters as retained `$SYS/broker/...` messages every SECS seconds, as mosquitto does (0: never; none under `aws-iot-2025`, which reserves the `$` topics); a summary of them is logged on shutdown either way |
//! | `--data-dir DIR` | in memory | keep persistent sessions, their messages and the retained ones in DIR (SQLite), restored at start; PUBACK/PUBREC only after they are stored; a damaged store is refused naming the file |
//!
//! Every bound address is printed on stdout (`listening on ADDR`, then `tls listening on
//! ADDR`, `ws listening on ADDR`, `wss listening on ADDR`), so port 0 picks a free port.
//! Logs go to stderr (`RUST_LOG` filters them). Ctrl-C or SIGTERM stops the broker:
//! every connection is closed after its queued packets are written, and the process
//! exits 0.
//!
//! A packet that finds a connection's write queue full drops that connection (logged as
//! `write queue full`): a subscriber that stops reading costs at most `--write-queue`
//! packets. `--deny-subscribe` answers a matching SUBSCRIBE with the SUBACK failure code;
//! `--deny-publish` acknowledges a matching PUBLISH and drops it (MQTT 3.1.1 has no
//! negative acknowledgement).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use mqtt_sansio::broker::QueueFullPolicy;
use mqtt_sansio::server::{Authorizer, Message, PublishDecision, ServerConfig};
use mqtt_sansio::{
    BrokerConfig, ConnectReturnCode, Login, MqttString, Profile, QoS, TopicFilter, topic,
};
use mqtt_sansio_tokio::{Listener, Server, cn_is_client_id, server_tls};

/// An MQTT 3.1.1 broker on TCP, TLS, WebSocket and WebSocket over TLS.
#[derive(Parser)]
struct Args {
    /// The plain TCP listener.
    #[arg(long, default_value = "127.0.0.1:1883")]
    listen: SocketAddr,
    /// A TLS listener (needs --tls-cert and --tls-key).
    #[arg(long)]
    tls_listen: Option<SocketAddr>,
    /// The server certificate chain (PEM), for TLS and WSS.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// The server key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Require client certificates issued by this CA (PEM).
    #[arg(long)]
    tls_client_ca: Option<PathBuf>,
    /// Refuse a CONNECT whose client id is not the certificate's subject CN.
    #[arg(long)]
    require_cn_client_id: bool,
    /// A WebSocket listener.
    #[arg(long)]
    ws_listen: Option<SocketAddr>,
    /// A WebSocket-over-TLS listener.
    #[arg(long)]
    wss_listen: Option<SocketAddr>,
    /// aws-iot (AWS IoT Core, 2019–2021), aws-iot-2025 (AWS IoT Core as documented today) or mqtt311.
    #[arg(long, default_value = "aws-iot", value_parser = parse_profile)]
    profile: Profile,
    /// NAME:PASSWORD; with one or more a login is needed (repeatable).
    #[arg(long = "user", value_parser = parse_user)]
    users: Vec<(String, String)>,
    /// Refuse subscriptions this filter matches (repeatable).
    #[arg(long, value_parser = parse_filter)]
    deny_subscribe: Vec<TopicFilter<Bytes>>,
    /// Acknowledge and drop publishes this filter matches (repeatable).
    #[arg(long, value_parser = parse_filter)]
    deny_publish: Vec<TopicFilter<Bytes>>,
    /// Largest PUBLISH payload.
    #[arg(long)]
    max_packet_size: Option<usize>,
    /// QoS 1/2 deliveries unacknowledged per session.
    #[arg(long)]
    max_inflight: Option<usize>,
    /// QoS 1/2 deliveries waiting per session.
    #[arg(long)]
    max_queued: Option<usize>,
    /// What a delivery beyond a queue bound does: drop (dropped and logged) or
    /// backpressure (queued; its publisher is throttled until the queue drains).
    #[arg(long, default_value = "drop", value_parser = parse_queue_full)]
    queue_full: QueueFullPolicy,
    /// Bytes (topic + payload) of QoS 1/2 deliveries waiting per session.
    #[arg(long)]
    max_queued_bytes: Option<usize>,
    /// Bytes (topic + payload) of deliveries waiting over every session.
    #[arg(long)]
    max_queued_bytes_total: Option<usize>,
    /// QoS 2 PUBLISH from one client awaiting PUBREL.
    #[arg(long)]
    max_inbound_qos2: Option<usize>,
    /// Sessions held at once.
    #[arg(long)]
    max_sessions: Option<usize>,
    /// Retained messages stored.
    #[arg(long)]
    max_retained: Option<usize>,
    /// Close a connection that has not completed its CONNECT within this many
    /// milliseconds; default: 30 000.
    #[arg(long)]
    connect_timeout_ms: Option<u64>,
    /// Largest Remaining Length of a connection's first packet (its CONNECT).
    #[arg(long, default_value_t = mqtt_sansio_tokio::DEFAULT_MAX_CONNECT_SIZE)]
    max_connect_size: usize,
    /// Encoded packets waiting for one connection's socket.
    #[arg(long, default_value_t = 1024)]
    write_queue: usize,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Keep the durable state in this directory (restored at start).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Drop an unacknowledged QoS 1 delivery this many milliseconds after its first
    /// sending (0: never); default: the profile's.
    #[arg(long)]
    qos1_retry_ms: Option<u64>,
    /// Publish the counters under $SYS/broker/ every this many seconds (0: never).
    #[arg(long, default_value_t = 10)]
    sys_interval: u64,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::by_name(s).ok_or_else(|| format!("one of {}", Profile::NAMES.join(", ")))
}

fn parse_queue_full(s: &str) -> Result<QueueFullPolicy, String> {
    match s {
        "drop" => Ok(QueueFullPolicy::Drop),
        "backpressure" => Ok(QueueFullPolicy::Backpressure),
        _ => Err("drop or backpressure".to_string()),
    }
}

fn parse_user(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .ok_or_else(|| "NAME:PASSWORD".to_string())
}

fn parse_filter(s: &str) -> Result<TopicFilter<Bytes>, String> {
    TopicFilter::new(Bytes::from(s.to_string())).map_err(|e| format!("not a topic filter: {e}"))
}

/// The authorization hook driven by `--user`, `--deny-subscribe` and `--deny-publish`.
struct DenyList {
    /// User name → password; empty: anyone may connect.
    users: BTreeMap<String, String>,
    subscribe: Vec<TopicFilter<Bytes>>,
    publish: Vec<TopicFilter<Bytes>>,
    hash_matches_parent: bool,
}

impl DenyList {
    fn denies(&self, list: &[TopicFilter<Bytes>], topic: &[u8]) -> bool {
        list.iter().any(|d| {
            d.as_bytes() == topic || topic::matches(d.as_bytes(), topic, self.hash_matches_parent)
        })
    }
}

impl Authorizer for DenyList {
    fn subscribe(
        &self,
        _client_id: &MqttString<Bytes>,
        filter: &TopicFilter<Bytes>,
        requested: QoS,
    ) -> Option<QoS> {
        (!self.denies(&self.subscribe, filter.as_bytes())).then_some(requested)
    }

    fn connect(
        &self,
        _client_id: &MqttString<Bytes>,
        login: Option<&Login<Bytes>>,
    ) -> Result<(), ConnectReturnCode> {
        if self.users.is_empty() {
            return Ok(());
        }
        let Some(login) = login else {
            return Err(ConnectReturnCode::NotAuthorized);
        };
        let password = login.password.as_ref().map_or(&[][..], |p| p.as_bytes());
        match self.users.get(login.username.as_str()) {
            Some(expected) if expected.as_bytes() == password => Ok(()),
            _ => Err(ConnectReturnCode::BadUserNameOrPassword),
        }
    }

    fn publish(&self, _client_id: &MqttString<Bytes>, message: &Message) -> PublishDecision {
        if self.denies(&self.publish, message.topic.as_bytes()) {
            PublishDecision::Discard
        } else {
            PublishDecision::Allow
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        (int, term) => {
            let e = int.err().or(term.err());
            tracing::error!("signal handlers not installed: {e:?}");
            std::future::pending().await
        }
    }
}

async fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut profile = a.profile;
    if let Some(max) = a.max_packet_size {
        profile.max_payload = max;
    }
    if let Some(ms) = a.qos1_retry_ms {
        let limit = (ms > 0).then(|| std::time::Duration::from_millis(ms));
        profile = profile.with_qos1_retry_limit(limit);
    }
    let mut config = ServerConfig::default();
    if let Some(n) = a.max_inflight {
        config.max_inflight = n;
    }
    if let Some(n) = a.max_queued {
        config.max_queued = n;
    }
    config.max_queued_bytes = a.max_queued_bytes;
    if let Some(n) = a.max_inbound_qos2 {
        config.max_inbound_qos2 = n;
    }
    if let Some(ms) = a.connect_timeout_ms {
        config.connect_timeout = std::time::Duration::from_millis(ms);
    }
    config.authorizer = Arc::new(DenyList {
        users: a.users.into_iter().collect(),
        subscribe: a.deny_subscribe,
        publish: a.deny_publish,
        hash_matches_parent: profile.hash_matches_parent,
    });
    tracing::info!(
        "broker: profile {}, max inflight {}, max queued {}, write queue {}, queue full: {:?}",
        profile.name,
        config.max_inflight,
        config.max_queued,
        a.write_queue,
        a.queue_full
    );
    let mut server = Server::new(
        profile,
        BrokerConfig {
            connection: config,
            max_sessions: a.max_sessions,
            max_retained: a.max_retained,
            max_queued_bytes_total: a.max_queued_bytes_total,
            queue_full: a.queue_full,
        },
    );
    server.set_write_queue(a.write_queue);
    server.set_max_connect_size(a.max_connect_size);
    server.set_sys_interval(Some(std::time::Duration::from_secs(a.sys_interval)));
    if let Some(dir) = &a.data_dir {
        server.data_dir(dir)?;
        tracing::info!("durable state in {}", dir.display());
    }
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(server_tls(cert, key, a.tls_client_ca.as_deref())?),
        (None, None) if a.tls_listen.is_none() && a.wss_listen.is_none() => None,
        _ => return Err("--tls-listen and --wss-listen need --tls-cert and --tls-key".into()),
    };
    if a.require_cn_client_id {
        server.check_peer(cn_is_client_id);
    }
    println!(
        "listening on {}",
        server.listen(Listener::Tcp(a.listen)).await?
    );
    if let (Some(addr), Some(tls)) = (a.tls_listen, &tls) {
        let bound = server.listen(Listener::Tls(addr, tls.clone())).await?;
        println!("tls listening on {bound}");
    }
    if let Some(addr) = a.ws_listen {
        println!(
            "ws listening on {}",
            server.listen(Listener::Ws(addr)).await?
        );
    }
    if let (Some(addr), Some(tls)) = (a.wss_listen, &tls) {
        let bound = server.listen(Listener::Wss(addr, tls.clone())).await?;
        println!("wss listening on {bound}");
    }
    let counters = server.counters();
    server.run(shutdown_signal()).await?;
    tracing::info!(
        "served {} connections ({} failed handshakes), {} bytes in, {} bytes out",
        counters.accepted(),
        counters.handshakes_failed(),
        counters.bytes_received(),
        counters.bytes_sent()
    );
    Ok(())
}

fn main() {
    let args = Args::parse();
    common::init_logging();
    let runtime = common::runtime_or_exit(args.threads);
    if let Err(e) = runtime.block_on(run(args)) {
        tracing::error!("broker: {e}");
        std::process::exit(1);
    }
}
