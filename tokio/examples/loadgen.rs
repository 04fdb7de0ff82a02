//! A load generator: N publishers × M messages to S subscribers through an MQTT broker,
//! every connection driven by the crate's sans-I/O [`Client`] over tokio TCP.
//!
//! ```text
//! cargo run --release --example loadgen -- [--host H] [--port P] [--publishers N]
//!     [--messages M] [--subscribers S] [--qos 0|1] [--payload BYTES] [--window W]
//!     [--topic T] [--timeout-secs SECS] [--json]
//!     [--cafile FILE [--cert FILE --key FILE] [--tls-server-name NAME]]
//! ```
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--host H`, `--port P` | `127.0.0.1`, `1883` | the broker |
//! | `--publishers N` | 1 | publishing connections |
//! | `--messages M` | 1000 | messages each publisher sends |
//! | `--subscribers S` | 1 | subscribing connections; each must receive all N × M |
//! | `--qos Q` | 1 | QoS of the publishes and the subscriptions |
//! | `--payload BYTES` | 16 | payload size (at least 16: the stamp) |
//! | `--window W` | 20 | a publisher's unacknowledged QoS 1 messages at most (QoS 0: messages per write) |
//! | `--topic T` | `loadgen` | the topic every publisher uses and every subscriber subscribes to |
//! | `--timeout-secs SECS` | 60 | the whole run ends after it, delivered or not |
//! | `--json` | off | print the result as one JSON line instead of text |
//! | `--persistent` | off | subscribers connect with clean session 0 (a durable broker stores their messages) |
//! | `--cafile FILE` | none | connect over TLS (rustls, `ring`), verifying the broker with this CA |
//! | `--cert FILE`, `--key FILE` | none | a client certificate for every connection (mutual TLS) |
//! | `--tls-server-name NAME` | `--host` | the name sent in SNI and checked against the broker's certificate (for a broker reached by an address its certificate does not name) |
//!
//! The subscribers connect and subscribe first; once every SUBACK is in, the publishers
//! connect and publish. Each payload carries the publisher's number, the message's
//! number and the time of the `publish` call (nanoseconds since the process started;
//! every connection lives in this one process, so one clock). A subscriber takes the
//! latency of each message when it is delivered to it, and keeps one bit per message to
//! tell a first delivery from a duplicate.
//!
//! The throughput is the first deliveries at all subscribers divided by the time from
//! the first publish to the last first delivery. Latency percentiles are over every
//! first delivery at every subscriber.
//!
//! Exit status: 0 when every subscriber received every message; 1 when some did not
//! (the count missing is reported as `lost`), when a connection failed, or at the
//! timeout; 2 for bad arguments.
//!
//! # Run loop
//!
//! One task per connection owns its [`Client`] and socket, as the core crate's docs describe:
//! after every input (bytes read, the timer at [`Client::poll_timeout`]) it drains
//! [`Client::poll_action`] until `None`, then issues what is due (publishes while the
//! window has room, DISCONNECT when done), and writes what the drain encoded in one
//! write. Time is the crate's [`Instant`], milliseconds since the process start.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use mqtt_sansio::client::{Action, Client, ClientConfig, ClientError, Event, Lost, Reason};
use mqtt_sansio::{Connect, Instant, MqttString, Profile, QoS, SubAckCode, TopicFilter, TopicName};
use mqtt_sansio_tokio::rustls;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const USAGE: &str = "usage: loadgen [--host H] [--port P] [--publishers N] [--messages M] \
[--subscribers S] [--qos 0|1] [--payload BYTES] [--window W] [--topic T] [--timeout-secs SECS] [--json] [--persistent] \
[--cafile FILE [--cert FILE --key FILE] [--tls-server-name NAME]]";

/// Publisher number, message number, send time: 4 + 4 + 8 bytes.
const STAMP: usize = 16;

#[derive(Clone)]
struct Options {
    host: String,
    port: u16,
    publishers: u32,
    messages: u32,
    subscribers: u32,
    qos: QoS,
    payload: usize,
    window: usize,
    topic: String,
    timeout: Duration,
    json: bool,
    persistent: bool,
    cafile: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    /// The name the broker's certificate is checked against; `host` when `None`.
    server_name: Option<ServerName<'static>>,
    /// Built from the TLS flags once all are parsed.
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        host: "127.0.0.1".to_string(),
        port: 1883,
        publishers: 1,
        messages: 1000,
        subscribers: 1,
        qos: QoS::AtLeastOnce,
        payload: STAMP,
        window: 20,
        topic: "loadgen".to_string(),
        timeout: Duration::from_secs(60),
        json: false,
        persistent: false,
        cafile: None,
        cert: None,
        key: None,
        server_name: None,
        tls: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--json" {
            o.json = true;
            continue;
        }
        if flag == "--persistent" {
            o.persistent = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--host" => o.host = value,
            "--port" => o.port = value.parse().map_err(|e| bad(&e))?,
            "--publishers" => o.publishers = value.parse().map_err(|e| bad(&e))?,
            "--messages" => o.messages = value.parse().map_err(|e| bad(&e))?,
            "--subscribers" => o.subscribers = value.parse().map_err(|e| bad(&e))?,
            "--qos" => {
                o.qos = match value.as_str() {
                    "0" => QoS::AtMostOnce,
                    "1" => QoS::AtLeastOnce,
                    _ => return Err(bad(&"0 or 1")),
                }
            }
            "--payload" => o.payload = value.parse().map_err(|e| bad(&e))?,
            "--window" => o.window = value.parse().map_err(|e| bad(&e))?,
            "--topic" => o.topic = value,
            "--timeout-secs" => {
                o.timeout = Duration::from_secs(value.parse().map_err(|e| bad(&e))?)
            }
            "--cafile" => o.cafile = Some(value.into()),
            "--cert" => o.cert = Some(value.into()),
            "--key" => o.key = Some(value.into()),
            "--tls-server-name" => {
                o.server_name = Some(ServerName::try_from(value.clone()).map_err(|e| bad(&e))?)
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if let Some(ca) = &o.cafile {
        o.tls = Some(tls_config(ca, o.cert.as_ref().zip(o.key.as_ref()))?);
    } else if o.server_name.is_some() {
        return Err("--tls-server-name needs --cafile".to_string());
    }
    if o.payload < STAMP {
        return Err(format!("--payload must be at least {STAMP}"));
    }
    if o.window == 0 || o.publishers == 0 || o.subscribers == 0 {
        return Err("--window, --publishers and --subscribers must be at least 1".to_string());
    }
    if u64::from(o.publishers) * u64::from(o.messages) > 1 << 31 {
        return Err("--publishers × --messages is too large".to_string());
    }
    Ok(o)
}

/// A TLS 1.2/1.3 client configuration that trusts `ca`, with a client certificate.
#[allow(deprecated)] // `ring` lacks only post-quantum key exchange.
fn tls_config(
    ca: &PathBuf,
    identity: Option<(&PathBuf, &PathBuf)>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--cafile: {e}"))? {
        roots
            .add(cert.map_err(|e| format!("--cafile: {e}"))?)
            .map_err(|e| format!("--cafile: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("--cert: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The clock shared by every connection of the process.
#[derive(Clone, Copy)]
struct Clock(std::time::Instant);

impl Clock {
    fn now(self) -> Instant {
        Instant::from_millis(u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Nanoseconds since the process started: latencies are reported to a tenth of a
    /// microsecond, finer than the differences between brokers at window 1.
    fn nanos(self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn to_tokio(self, at: Instant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.0 + Duration::from_millis(at.as_millis()))
    }
}

/// What one connection does beyond connecting.
enum Role {
    Publisher {
        index: u32,
        topic: TopicName<Bytes>,
        published: u32,
        acknowledged: u32,
        /// Time of the first publish, nanoseconds.
        first: Option<u64>,
    },
    Subscriber {
        filter: TopicFilter<Bytes>,
        subscribed: Option<tokio::sync::oneshot::Sender<()>>,
        subscribe_sent: bool,
        /// One bit per message (publisher × messages + number): received yet.
        seen: Vec<u64>,
        unique: u64,
        duplicates: u64,
        /// Latency of each first delivery, nanoseconds (at most about 4.3 s).
        latencies: Vec<u32>,
        /// Time of the last first delivery, nanoseconds.
        last: Option<u64>,
    },
}

/// One connection: the client, its role, and how it ended.
struct Conn {
    o: Options,
    clock: Clock,
    client: Client,
    role: Role,
    connected: bool,
    disconnecting: bool,
    /// Messages the client gave up (`Event::Lost`).
    lost: u64,
    /// Payloads that were not the loadgen's.
    foreign: u64,
    ended: Option<String>,
    out: BytesMut,
}

impl Conn {
    /// Drains the client's actions and issues the due commands until the client has
    /// nothing more to say, then writes what was encoded.
    async fn step(&mut self, wr: &mut (impl AsyncWrite + Unpin)) -> Result<(), Box<dyn Error>> {
        loop {
            while let Some(action) = self.client.poll_action() {
                self.act(action)?;
            }
            if self.ended.is_some() || !self.commands()? {
                break;
            }
        }
        if !self.out.is_empty() {
            wr.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    fn act(&mut self, action: Action) -> Result<(), Box<dyn Error>> {
        match action {
            Action::Send(packet) => packet.encode(&mut self.out)?,
            Action::Deliver(publish) => self.deliver(&publish.payload),
            Action::Event(Event::Connected { .. }) => self.connected = true,
            Action::Event(Event::Subscribed { codes, .. }) => {
                if codes.contains(&SubAckCode::Failure) {
                    return Err("the subscription was refused".into());
                }
                if let Role::Subscriber { subscribed, .. } = &mut self.role
                    && let Some(tx) = subscribed.take()
                {
                    let _ = tx.send(());
                }
            }
            Action::Event(Event::Published(_)) => {
                if let Role::Publisher { acknowledged, .. } = &mut self.role {
                    *acknowledged += 1;
                }
            }
            Action::Event(Event::Lost(lost)) => {
                if matches!(lost, Lost::Publish(_) | Lost::Release(_)) {
                    self.lost += 1;
                }
            }
            // Not asked for: these connections do not reconnect.
            Action::Event(_) | Action::Change(_) | Action::Reconnect => {}
            Action::Close(reason) => {
                self.ended = Some(if reason == Reason::Disconnected {
                    String::new()
                } else {
                    format!("closed: {reason:?}")
                });
            }
        }
        Ok(())
    }

    fn deliver(&mut self, payload: &[u8]) {
        let now = self.clock.nanos();
        let messages = self.o.messages;
        let publishers = self.o.publishers;
        let Role::Subscriber {
            seen,
            unique,
            duplicates,
            latencies,
            last,
            ..
        } = &mut self.role
        else {
            self.foreign += 1;
            return;
        };
        let Some((p, n, sent)) = parse_stamp(payload) else {
            self.foreign += 1;
            return;
        };
        if p >= publishers || n >= messages {
            self.foreign += 1;
            return;
        }
        let bit = (u64::from(p) * u64::from(messages) + u64::from(n)) as usize;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        let Some(w) = seen.get_mut(word) else {
            self.foreign += 1;
            return;
        };
        if *w & mask != 0 {
            *duplicates += 1;
            return;
        }
        *w |= mask;
        *unique += 1;
        latencies.push(u32::try_from(now.saturating_sub(sent)).unwrap_or(u32::MAX));
        *last = Some(now);
    }

    /// The commands due now. Returns whether any command was issued.
    fn commands(&mut self) -> Result<bool, Box<dyn Error>> {
        if !self.connected || self.disconnecting {
            return Ok(false);
        }
        let now = self.clock.now();
        let total = u64::from(self.o.publishers) * u64::from(self.o.messages);
        match &mut self.role {
            Role::Subscriber {
                filter,
                subscribe_sent,
                unique,
                ..
            } => {
                if !*subscribe_sent {
                    *subscribe_sent = true;
                    let filters = [(filter.clone(), self.o.qos)];
                    self.client.subscribe(now, &filters)?;
                    return Ok(true);
                }
                if *unique >= total {
                    self.disconnecting = true;
                    self.client.disconnect(now)?;
                    return Ok(true);
                }
                Ok(false)
            }
            Role::Publisher {
                index,
                topic,
                published,
                acknowledged,
                first,
            } => {
                let mut issued = false;
                // At QoS 0 the window is the number of messages per write.
                let mut batch = 0;
                while *published < self.o.messages
                    && (self.o.qos != QoS::AtMostOnce || batch < self.o.window)
                {
                    let sent = self.clock.nanos();
                    let mut payload = BytesMut::with_capacity(self.o.payload);
                    payload.put_u32(*index);
                    payload.put_u32(*published);
                    payload.put_u64(sent);
                    payload.resize(self.o.payload, 0);
                    match self.client.publish(
                        now,
                        topic.clone(),
                        self.o.qos,
                        false,
                        payload.freeze(),
                    ) {
                        Ok(_) => {
                            first.get_or_insert(sent);
                            *published += 1;
                            batch += 1;
                            issued = true;
                        }
                        Err(ClientError::InflightFull { .. } | ClientError::PacketIdsExhausted) => {
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                if batch > 0 && self.o.qos == QoS::AtMostOnce {
                    // Let the caller write this batch before the next one.
                    return Ok(false);
                }
                let done = if self.o.qos == QoS::AtMostOnce {
                    u64::from(*published)
                } else {
                    u64::from(*acknowledged) + self.lost
                };
                if done >= u64::from(self.o.messages) {
                    self.disconnecting = true;
                    self.client.disconnect(now)?;
                    issued = true;
                }
                Ok(issued)
            }
        }
    }

    /// Whether a QoS 0 publisher has more to publish without waiting for input.
    fn eager(&self) -> bool {
        matches!(self.role, Role::Publisher { .. })
            && self.o.qos == QoS::AtMostOnce
            && self.connected
            && !self.disconnecting
    }
}

fn parse_stamp(payload: &[u8]) -> Option<(u32, u32, u64)> {
    let p = u32::from_be_bytes(payload.get(0..4)?.try_into().ok()?);
    let n = u32::from_be_bytes(payload.get(4..8)?.try_into().ok()?);
    let t = u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?);
    Some((p, n, t))
}

/// Runs one connection until it ends or `deadline` passes; returns its final state.
async fn connection(mut conn: Conn, id: String, deadline: tokio::time::Instant) -> Conn {
    if let Err(e) = drive(&mut conn, id, deadline).await {
        conn.ended = Some(format!("error: {e}"));
    }
    conn
}

async fn drive(
    conn: &mut Conn,
    id: String,
    deadline: tokio::time::Instant,
) -> Result<(), Box<dyn Error>> {
    let stream = tokio::time::timeout_at(
        deadline,
        TcpStream::connect((conn.o.host.as_str(), conn.o.port)),
    )
    .await
    .map_err(|_| "timed out connecting")??;
    stream.set_nodelay(true)?;
    match conn.o.tls.clone() {
        None => {
            let (rd, wr) = stream.into_split();
            exchange(conn, id, deadline, rd, wr).await
        }
        Some(config) => {
            let name = match &conn.o.server_name {
                Some(name) => name.clone(),
                None => ServerName::try_from(conn.o.host.clone())?,
            };
            let tls = tokio::time::timeout_at(
                deadline,
                tokio_rustls::TlsConnector::from(config).connect(name, stream),
            )
            .await
            .map_err(|_| "timed out in the TLS handshake")??;
            let (rd, wr) = tokio::io::split(tls);
            exchange(conn, id, deadline, rd, wr).await
        }
    }
}

/// The MQTT exchange of one connection, over any byte stream.
async fn exchange(
    conn: &mut Conn,
    id: String,
    deadline: tokio::time::Instant,
    mut rd: impl AsyncRead + Unpin,
    mut wr: impl AsyncWrite + Unpin,
) -> Result<(), Box<dyn Error>> {
    let clock = conn.clock;
    let clean_session = !(conn.o.persistent && id.contains("-sub-"));
    conn.client.connect(
        clock.now(),
        Connect {
            client_id: MqttString::new(Bytes::from(id))?,
            clean_session,
            keep_alive: 60,
            will: None,
            login: None,
        },
    )?;
    conn.step(&mut wr).await?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    while conn.ended.is_none() {
        let timer_at = conn.client.poll_timeout().map(|t| clock.to_tokio(t));
        let timer = async {
            match timer_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let eager = conn.eager();
        buf.clear();
        buf.reserve(64 * 1024);
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(deadline) => {
                conn.ended = Some("timed out".into());
                return Ok(());
            }
            read = rd.read_buf(&mut buf) => match read {
                Ok(n) if n > 0 => conn.client.handle_bytes(clock.now(), &buf)?,
                Ok(_) => {
                    conn.client.connection_lost(clock.now());
                    conn.ended = Some("the server closed the connection".into());
                }
                Err(e) => {
                    conn.client.connection_lost(clock.now());
                    conn.ended = Some(e.to_string());
                }
            },
            () = timer => conn.client.handle_timeout(clock.now()),
            () = tokio::task::yield_now(), if eager => {}
        }
        conn.step(&mut wr).await?;
    }
    let _ = wr.shutdown().await;
    if conn.ended.as_deref() == Some("") {
        // Let the server close its side, so the DISCONNECT is not lost to a reset.
        let drain = async {
            let mut sink = [0u8; 4096];
            while let Ok(n) = rd.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }
    Ok(())
}

fn new_conn(o: &Options, clock: Clock, role: Role) -> Conn {
    let profile = Profile::mqtt311();
    let mut config = ClientConfig::for_profile(&profile);
    config.max_inflight = o.window;
    Conn {
        o: o.clone(),
        clock,
        client: Client::with_config(profile, config),
        role,
        connected: false,
        disconnecting: false,
        lost: 0,
        foreign: 0,
        ended: None,
        out: BytesMut::with_capacity(16 * 1024),
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    sorted.get(i).map_or(0.0, |&v| f64::from(v) / 1e6)
}

async fn run(o: Options) -> Result<bool, Box<dyn Error>> {
    let clock = Clock(std::time::Instant::now());
    let deadline = tokio::time::Instant::now() + o.timeout;
    let filter = TopicFilter::new(Bytes::from(o.topic.clone()))?;
    let topic = TopicName::new(Bytes::from(o.topic.clone()))
        .map_err(|e| format!("--topic {}: {e}", o.topic))?;
    let total = u64::from(o.publishers) * u64::from(o.messages);
    let words = usize::try_from(total.div_ceil(64))?;
    let pid = std::process::id();

    let mut subs = Vec::new();
    let mut ready = Vec::new();
    for j in 0..o.subscribers {
        let (tx, rx) = tokio::sync::oneshot::channel();
        ready.push(rx);
        let role = Role::Subscriber {
            filter: filter.clone(),
            subscribed: Some(tx),
            subscribe_sent: false,
            seen: vec![0; words],
            unique: 0,
            duplicates: 0,
            latencies: Vec::with_capacity(usize::try_from(total)?),
            last: None,
        };
        let conn = new_conn(&o, clock, role);
        subs.push(tokio::spawn(connection(
            conn,
            format!("loadgen-{pid}-sub-{j}"),
            deadline,
        )));
    }
    let mut all_subscribed = true;
    for rx in ready {
        if tokio::time::timeout_at(deadline, rx).await.is_err() {
            all_subscribed = false;
            break;
        }
    }
    let mut pubs = Vec::new();
    if all_subscribed {
        for i in 0..o.publishers {
            let role = Role::Publisher {
                index: i,
                topic: topic.clone(),
                published: 0,
                acknowledged: 0,
                first: None,
            };
            let conn = new_conn(&o, clock, role);
            pubs.push(tokio::spawn(connection(
                conn,
                format!("loadgen-{pid}-pub-{i}"),
                deadline,
            )));
        }
    }

    let mut first: Option<u64> = None;
    let mut published = 0u64;
    let mut acknowledged = 0u64;
    let mut given_up = 0u64;
    let mut errors = Vec::new();
    for h in pubs {
        let c = h.await?;
        if let Role::Publisher {
            published: p,
            acknowledged: a,
            first: f,
            ..
        } = c.role
        {
            published += u64::from(p);
            acknowledged += u64::from(a);
            if let Some(f) = f {
                first = Some(first.map_or(f, |x: u64| x.min(f)));
            }
        }
        given_up += c.lost;
        if let Some(e) = c.ended.filter(|e| !e.is_empty()) {
            errors.push(format!("publisher: {e}"));
        }
    }
    let mut last: Option<u64> = None;
    let mut unique = 0u64;
    let mut duplicates = 0u64;
    let mut foreign = 0u64;
    let mut latencies: Vec<u32> = Vec::new();
    for h in subs {
        let c = h.await?;
        foreign += c.foreign;
        if let Role::Subscriber {
            unique: u,
            duplicates: d,
            latencies: l,
            last: t,
            ..
        } = c.role
        {
            unique += u;
            duplicates += d;
            latencies.extend(l);
            if let Some(t) = t {
                last = Some(last.map_or(t, |x: u64| x.max(t)));
            }
        }
        if let Some(e) = c.ended.filter(|e| !e.is_empty()) {
            errors.push(format!("subscriber: {e}"));
        }
    }
    if !all_subscribed {
        errors.push("not every subscriber was subscribed before the timeout".to_string());
    }
    latencies.sort_unstable();
    let expected = total * u64::from(o.subscribers);
    let lost = expected.saturating_sub(unique);
    let elapsed = match (first, last) {
        (Some(f), Some(l)) if l > f => (l - f) as f64 / 1e9,
        _ => 0.0,
    };
    let rate = if elapsed > 0.0 {
        unique as f64 / elapsed
    } else {
        0.0
    };
    let (p50, p90, p99, max) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
    );
    let qos = if o.qos == QoS::AtMostOnce { 0 } else { 1 };
    errors.dedup();
    if o.json {
        let errs: Vec<String> = errors.iter().map(|e| format!("{e:?}")).collect();
        println!(
            "{{\"publishers\":{},\"messages\":{},\"subscribers\":{},\"qos\":{qos},\"payload\":{},\
\"window\":{},\"expected\":{expected},\"delivered\":{unique},\"lost\":{lost},\"duplicates\":{duplicates},\
\"foreign\":{foreign},\"published\":{published},\"acknowledged\":{acknowledged},\"given_up\":{given_up},\
\"seconds\":{elapsed:.3},\"msgs_per_sec\":{rate:.0},\"latency_ms\":{{\"p50\":{p50:.4},\"p90\":{p90:.4},\
\"p99\":{p99:.4},\"max\":{max:.4}}},\"errors\":[{}]}}",
            o.publishers,
            o.messages,
            o.subscribers,
            o.payload,
            o.window,
            errs.join(",")
        );
    } else {
        println!(
            "{} publishers x {} messages (QoS {qos}, {} bytes, window {}) -> {} subscribers",
            o.publishers, o.messages, o.payload, o.window, o.subscribers
        );
        println!(
            "delivered {unique} of {expected} (lost {lost}, duplicates {duplicates}) in {elapsed:.3} s: {rate:.0} msgs/s"
        );
        println!("published {published}, acknowledged {acknowledged}, given up {given_up}");
        println!("latency ms: p50 {p50:.4} p90 {p90:.4} p99 {p99:.4} max {max:.4}");
        for e in &errors {
            println!("error: {e}");
        }
    }
    Ok(lost == 0 && foreign == 0 && errors.is_empty())
}

fn main() {
    let options = parse_args().unwrap_or_else(|msg| {
        eprintln!("{msg}");
        std::process::exit(2);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        });
    match runtime.block_on(run(options)) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}
