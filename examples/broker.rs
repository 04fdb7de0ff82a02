//! A TCP MQTT 3.1.1 broker: the crate's sans-I/O [`Broker`] plus tokio sockets.
//!
//! ```text
//! cargo run --release --example broker -- [--listen 127.0.0.1:1883] [--profile aws-iot|mqtt311]
//!     [--user NAME:PASSWORD]... [--deny-subscribe FILTER]... [--deny-publish FILTER]...
//!     [--max-packet-size BYTES] [--max-inflight N] [--max-queued N] [--max-inbound-qos2 N]
//!     [--max-sessions N] [--max-retained N] [--write-queue N]
//! ```
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--listen ADDR` | `127.0.0.1:1883` | the address to listen on (port 0: any free port) |
//! | `--profile P` | `aws-iot` | `aws-iot` (AWS IoT Core's dialect) or `mqtt311` (the standard) |
//! | `--user NAME:PASSWORD` | anyone | with one or more, CONNECT needs a matching login: none gets CONNACK 5, a wrong one CONNACK 4 (repeatable) |
//! | `--deny-subscribe FILTER` | none | refuse subscriptions FILTER matches (repeatable) |
//! | `--deny-publish FILTER` | none | acknowledge and drop publishes FILTER matches (repeatable) |
//! | `--max-packet-size BYTES` | the profile's | largest PUBLISH payload; a larger one closes the connection |
//! | `--max-inflight N` | 64 | QoS 1/2 deliveries unacknowledged per session (the profile caps it) |
//! | `--max-queued N` | 1000 | QoS 1/2 deliveries waiting per session, online or offline; beyond it they are dropped and logged |
//! | `--max-inbound-qos2 N` | 64 | QoS 2 PUBLISH from one client awaiting PUBREL; one more closes the connection |
//! | `--max-sessions N` | unbounded | sessions held at once; beyond it CONNECT gets CONNACK 3 |
//! | `--max-retained N` | unbounded | retained messages stored |
//! | `--write-queue N` | 1024 | encoded packets waiting for one connection's socket (see below) |
//!
//! The bound address is printed on stdout (`listening on ADDR`), so `--listen
//! 127.0.0.1:0` picks a free port. One line per connection event goes to stderr. Ctrl-C
//! or SIGTERM stops the broker: every connection is closed and the process exits 0.
//!
//! # Run loop
//!
//! One task owns the [`Broker`]. It accepts connections, receives what the per-connection
//! reader tasks read, and wakes at [`Broker::poll_timeout`]. After every input it drains
//! [`Broker::poll_action`] until `None`: a `Send` is encoded and handed to the
//! connection's writer task, a `Close` ends the connection, an event is logged. Time is
//! the crate's [`Instant`], counted in milliseconds from the process start.
//!
//! # Memory bounds
//!
//! Each connection's writer has a bounded queue (`--write-queue` packets, default 1024).
//! QoS 1/2 deliveries are bounded by the broker core itself (`--max-inflight` in flight,
//! `--max-queued` waiting per session); QoS 0 deliveries are not, so a subscriber that
//! stops reading fills its writer queue. When a packet finds the queue full, the
//! connection is dropped at once (socket closed without flushing) and the core is told
//! the connection was lost: its will is published, and a persistent session keeps its
//! unacknowledged QoS 1/2 messages for resend when the client comes back. The event is
//! logged as `write queue full`. So a stalled subscriber costs at most `--write-queue`
//! encoded packets, never an unbounded amount.
//!
//! # Authorization
//!
//! `--user NAME:PASSWORD` (repeatable) makes a login necessary: a CONNECT without one is
//! refused with return code 5 (not authorized), one with an unknown name or a wrong
//! password with 4 (bad user name or password).
//! `--deny-subscribe FILTER` answers a SUBSCRIBE to any filter that FILTER matches (taken
//! literally, so `secret/#` denies `secret/a` and `secret/#`) with the SUBACK failure
//! code 0x80. `--deny-publish FILTER` acknowledges a PUBLISH to a matching topic as usual
//! and drops it (MQTT 3.1.1 has no negative acknowledgement).

mod common;

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_sansio::broker::{Action, Broker, BrokerConfig, BrokerEvent, ConnId};
use mqtt_sansio::server::{Authorizer, Message, PublishDecision, ServerConfig};
use mqtt_sansio::{
    ConnectReturnCode, Instant, Login, MqttString, Profile, QoS, TopicFilter, topic,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const USAGE: &str = "usage: broker [--listen ADDR] [--profile aws-iot|mqtt311] \
[--user NAME:PASSWORD]... [--deny-subscribe FILTER]... [--deny-publish FILTER]... [--max-packet-size BYTES] \
[--max-inflight N] [--max-queued N] [--max-inbound-qos2 N] [--max-sessions N] [--max-retained N] [--write-queue N]";

/// How long a closing connection may take to flush what was queued for it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

struct Options {
    listen: SocketAddr,
    profile: Profile,
    users: BTreeMap<String, String>,
    deny_subscribe: Vec<TopicFilter<Bytes>>,
    deny_publish: Vec<TopicFilter<Bytes>>,
    max_payload: Option<usize>,
    max_inflight: Option<usize>,
    max_queued: Option<usize>,
    max_inbound_qos2: Option<usize>,
    max_sessions: Option<usize>,
    max_retained: Option<usize>,
    write_queue: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
        profile: Profile::aws_iot_core(),
        users: BTreeMap::new(),
        deny_subscribe: Vec::new(),
        deny_publish: Vec::new(),
        max_payload: None,
        max_inflight: None,
        max_queued: None,
        max_inbound_qos2: None,
        max_sessions: None,
        max_retained: None,
        write_queue: 1024,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        let filter = || {
            TopicFilter::new(Bytes::from(value.clone()))
                .map_err(|e| format!("{flag} {value}: not a topic filter: {e}"))
        };
        match flag.as_str() {
            "--listen" => {
                o.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?
            }
            "--profile" => {
                o.profile = match value.as_str() {
                    "aws-iot" => Profile::aws_iot_core(),
                    "mqtt311" => Profile::mqtt311(),
                    _ => return Err(format!("--profile {value}: aws-iot or mqtt311")),
                }
            }
            "--user" => {
                let (name, password) = value
                    .split_once(':')
                    .ok_or_else(|| format!("--user {value}: NAME:PASSWORD"))?;
                o.users.insert(name.to_string(), password.to_string());
            }
            "--deny-subscribe" => o.deny_subscribe.push(filter()?),
            "--deny-publish" => o.deny_publish.push(filter()?),
            "--max-packet-size" => o.max_payload = Some(number()?),
            "--max-inflight" => o.max_inflight = Some(number()?),
            "--max-queued" => o.max_queued = Some(number()?),
            "--max-inbound-qos2" => o.max_inbound_qos2 = Some(number()?),
            "--max-sessions" => o.max_sessions = Some(number()?),
            "--max-retained" => o.max_retained = Some(number()?),
            "--write-queue" => o.write_queue = number()?.max(1),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(o)
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

/// What the reader and writer tasks tell the task that owns the broker.
enum Input {
    Bytes(ConnId, Bytes),
    /// The transport ended: end of stream or an I/O error.
    Lost(ConnId, String),
}

/// One open connection, as the owner of the broker sees it.
struct Link {
    writer: mpsc::Sender<Bytes>,
    reader: JoinHandle<()>,
    writer_task: JoinHandle<()>,
}

/// The clock: milliseconds since the process started, as the crate's `Instant`.
#[derive(Clone, Copy)]
struct Clock(std::time::Instant);

impl Clock {
    fn now(self) -> Instant {
        Instant::from_millis(u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn to_tokio(self, at: Instant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.0 + Duration::from_millis(at.as_millis()))
    }
}

struct Core {
    broker: Broker,
    links: BTreeMap<ConnId, Link>,
    clock: Clock,
    input: mpsc::Sender<Input>,
    write_queue: usize,
    next_conn: u64,
    /// Writers of closed connections, still flushing.
    closing: Vec<JoinHandle<()>>,
}

impl Core {
    fn accept(&mut self, stream: TcpStream, peer: SocketAddr) {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        if let Err(e) = self.broker.open(self.clock.now(), conn) {
            eprintln!("conn {}: cannot open: {e}", conn.0);
            return;
        }
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel(self.write_queue);
        let reader = tokio::spawn(read_loop(conn, rd, self.input.clone()));
        let writer_task = tokio::spawn(write_loop(conn, wr, rx, self.input.clone()));
        self.links.insert(
            conn,
            Link {
                writer: tx,
                reader,
                writer_task,
            },
        );
        eprintln!("conn {}: accepted from {peer}", conn.0);
        self.drain();
    }

    fn on_input(&mut self, input: Input) {
        let now = self.clock.now();
        match input {
            Input::Bytes(conn, bytes) => self.broker.handle_bytes(now, conn, &bytes),
            Input::Lost(conn, why) => {
                if let Some(link) = self.links.remove(&conn) {
                    eprintln!("conn {}: closed by the network: {why}", conn.0);
                    self.finish(link);
                    self.broker.connection_lost(now, conn);
                }
            }
        }
        self.drain();
    }

    fn on_timeout(&mut self) {
        self.broker.handle_timeout(self.clock.now());
        self.drain();
    }

    /// Closes a connection after its writer has flushed what is queued.
    fn finish(&mut self, link: Link) {
        link.reader.abort();
        drop(link.writer);
        self.closing.retain(|h| !h.is_finished());
        self.closing.push(link.writer_task);
    }

    /// Carries out every action the broker has, in order.
    fn drain(&mut self) {
        while let Some(action) = self.broker.poll_action() {
            match action {
                Action::Send { conn, packet } => {
                    let Some(link) = self.links.get(&conn) else {
                        continue;
                    };
                    let bytes = match packet.to_bytes() {
                        Ok(b) => b,
                        Err(e) => {
                            eprintln!("conn {}: cannot encode {packet:?}: {e}", conn.0);
                            continue;
                        }
                    };
                    if let Err(e) = link.writer.try_send(bytes) {
                        let why = match e {
                            mpsc::error::TrySendError::Full(_) => "write queue full",
                            mpsc::error::TrySendError::Closed(_) => "writer gone",
                        };
                        eprintln!("conn {}: dropped: {why}", conn.0);
                        if let Some(link) = self.links.remove(&conn) {
                            link.reader.abort();
                            link.writer_task.abort();
                        }
                        self.broker.connection_lost(self.clock.now(), conn);
                    }
                }
                Action::Close { conn, reason } => {
                    eprintln!("conn {}: closed by the broker: {reason:?}", conn.0);
                    if let Some(link) = self.links.remove(&conn) {
                        self.finish(link);
                    }
                }
                Action::Event(event) => log_event(&event),
            }
        }
    }

    async fn shutdown(mut self) {
        eprintln!("shutting down: closing {} connection(s)", self.links.len());
        let links = std::mem::take(&mut self.links);
        for (_, link) in links {
            self.finish(link);
        }
        for h in self.closing.drain(..) {
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, h).await;
        }
    }
}

fn log_event(event: &BrokerEvent) {
    match event {
        BrokerEvent::Connected {
            conn,
            client_id,
            session_present,
        } => eprintln!(
            "conn {}: connected client_id={} session_present={session_present}",
            conn.0,
            client_id.as_str()
        ),
        BrokerEvent::Dropped {
            client_id,
            message,
            reason,
        } => eprintln!(
            "client {}: message on {} dropped: {reason:?}",
            client_id.as_str(),
            message.topic.as_str()
        ),
        BrokerEvent::SessionExpired { client_id } => {
            eprintln!("client {}: session expired", client_id.as_str())
        }
        BrokerEvent::Ignored { conn, what } => eprintln!("conn {}: ignored {what:?}", conn.0),
        BrokerEvent::RetainedNotStored { message } => eprintln!(
            "retained message on {} not stored: the retained store is full",
            message.topic.as_str()
        ),
        BrokerEvent::SessionLimit { conn } => {
            eprintln!("conn {}: refused: the session limit is reached", conn.0)
        }
        BrokerEvent::Discarded { conn, message } => eprintln!(
            "conn {}: publish to {} not authorized, discarded",
            conn.0,
            message.topic.as_str()
        ),
        BrokerEvent::UnexpectedAck {
            conn,
            packet_type,
            packet_id,
        } => eprintln!(
            "conn {}: {} {packet_id} for nothing in flight, ignored",
            conn.0,
            packet_type.name()
        ),
    }
}

async fn read_loop(conn: ConnId, mut rd: OwnedReadHalf, input: mpsc::Sender<Input>) {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let why = loop {
        buf.reserve(8 * 1024);
        match rd.read_buf(&mut buf).await {
            Ok(0) => break "end of stream".to_string(),
            Ok(_) => {
                if input
                    .send(Input::Bytes(conn, buf.split().freeze()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => break e.to_string(),
        }
    };
    let _ = input.send(Input::Lost(conn, why)).await;
}

async fn write_loop(
    conn: ConnId,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Bytes>,
    input: mpsc::Sender<Input>,
) {
    let mut batch = BytesMut::new();
    while let Some(first) = rx.recv().await {
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        let closing = rx.is_closed();
        let write = wr.write_all(&batch);
        let result = if closing {
            tokio::time::timeout(FLUSH_TIMEOUT, write)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        } else {
            write.await
        };
        batch.clear();
        if let Err(e) = result {
            let _ = input.send(Input::Lost(conn, e.to_string())).await;
            return;
        }
    }
    // The broker closed the connection: everything queued was written.
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, wr.shutdown()).await;
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
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
                eprintln!("signal handlers not installed: {e:?}");
                std::future::pending().await
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn run(o: Options) -> Result<(), Box<dyn Error>> {
    let clock = Clock(std::time::Instant::now());
    let mut profile = o.profile;
    if let Some(max) = o.max_payload {
        profile.max_payload = max;
    }
    let mut config = ServerConfig::default();
    if let Some(n) = o.max_inflight {
        config.max_inflight = n;
    }
    if let Some(n) = o.max_queued {
        config.max_queued = n;
    }
    if let Some(n) = o.max_inbound_qos2 {
        config.max_inbound_qos2 = n;
    }
    config.authorizer = Arc::new(DenyList {
        users: o.users,
        subscribe: o.deny_subscribe,
        publish: o.deny_publish,
        hash_matches_parent: profile.hash_matches_parent,
    });
    let listener = TcpListener::bind(o.listen).await?;
    let addr = listener.local_addr()?;
    eprintln!(
        "broker: profile {}, max inflight {}, max queued {}, write queue {}",
        profile.name, config.max_inflight, config.max_queued, o.write_queue
    );
    println!("listening on {addr}");

    let (input_tx, mut input_rx) = mpsc::channel::<Input>(1024);
    let mut core = Core {
        broker: Broker::new(
            profile,
            BrokerConfig {
                connection: config,
                max_sessions: o.max_sessions,
                max_retained: o.max_retained,
            },
        ),
        links: BTreeMap::new(),
        clock,
        input: input_tx,
        write_queue: o.write_queue,
        next_conn: 0,
        closing: Vec::new(),
    };
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let deadline = core.broker.poll_timeout().map(|t| clock.to_tokio(t));
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => core.accept(stream, peer),
                Err(e) => {
                    // Out of file descriptors, say: back off a little instead of spinning.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(input) = input_rx.recv() => core.on_input(input),
            () = timer => core.on_timeout(),
            () = &mut shutdown => break,
        }
    }
    core.shutdown().await;
    eprintln!("stopped");
    Ok(())
}

fn main() {
    let options = common::options_or_exit(parse_args());
    let runtime = common::runtime_or_exit();
    if let Err(e) = runtime.block_on(run(options)) {
        eprintln!("broker: {e}");
        std::process::exit(1);
    }
}
