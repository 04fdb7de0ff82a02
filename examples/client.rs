//! A TCP MQTT 3.1.1 client: the crate's sans-I/O [`Client`] plus a tokio socket.
//!
//! ```text
//! cargo run --release --example client -- pub|sub --host H --port P --topic T --qos Q
//!     [--message M] [--count N] [--client-id ID] [--clean-session true|false]
//!     [--retain] [--keep-alive SECS] [--max-inflight N] [--drop-after K]
//!     [--profile mqtt311|aws-iot|aws-iot-2025]
//! ```
//!
//! `sub` subscribes to the filter T and prints each payload it receives on its own line
//! on stdout, and disconnects after N messages (`--count 0`: never). `pub` publishes M
//! to T, N times, and disconnects once every message is acknowledged (QoS 1: PUBACK,
//! QoS 2: PUBCOMP; QoS 0: once written). Progress (`connected session_present=…`,
//! `subscribed …`, `acknowledged N`) goes to stderr. Exit status: 0 when done, 1 when
//! the connection failed or ended early, 2 for bad arguments.
//!
//! `--max-inflight N` (default 20) bounds the QoS 1/2 messages awaiting their
//! acknowledgement; the publisher waits for acks beyond it. The default matches
//! mosquitto's `max_inflight_messages`: mosquitto 2.0 answers a QoS 2 PUBLISH beyond 20
//! unreleased ones with PUBREC and drops it, so a larger window loses messages there.
//!
//! In the message, `{n}` stands for the message's number (0, 1, …). `--drop-after K`
//! (with `pub` and `--clean-session false`) drops the TCP connection without DISCONNECT
//! once K messages are published, reconnects at once and finishes: the client resends
//! what was unacknowledged, so the exchange proves resumption against a real server.
//!
//! # Run loop
//!
//! One task owns the [`Client`] and the socket. After every input (bytes read, the
//! timer at [`Client::poll_timeout`], a command) it drains [`Client::poll_action`]
//! until `None`: `Send` is encoded and written, `Deliver` printed, events counted,
//! `Close` ends the connection. Time is the crate's [`Instant`], counted in
//! milliseconds from the process start.

mod common;

use std::error::Error;
use std::io::Write;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_sansio::client::{Action, Client, ClientConfig, ClientError, Event, Lost, Reason};
use mqtt_sansio::{Connect, Instant, MqttString, Profile, QoS, SubAckCode, TopicFilter, TopicName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const USAGE: &str = "usage: client pub|sub --host H --port P --topic T --qos 0|1|2 \
[--message M] [--count N] [--client-id ID] [--clean-session true|false] [--retain] \
[--keep-alive SECS] [--max-inflight N] [--drop-after K] [--profile mqtt311|aws-iot|aws-iot-2025]";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pub,
    Sub,
}

struct Options {
    mode: Mode,
    host: String,
    port: u16,
    topic: String,
    qos: QoS,
    message: String,
    count: u64,
    client_id: Option<String>,
    clean_session: bool,
    retain: bool,
    keep_alive: u16,
    drop_after: Option<u64>,
    max_inflight: usize,
    profile: Profile,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("pub") => Mode::Pub,
        Some("sub") => Mode::Sub,
        _ => return Err(USAGE.to_string()),
    };
    let mut o = Options {
        mode,
        host: "127.0.0.1".to_string(),
        port: 1883,
        topic: String::new(),
        qos: QoS::AtMostOnce,
        message: String::new(),
        count: 1,
        client_id: None,
        clean_session: true,
        retain: false,
        keep_alive: 30,
        drop_after: None,
        max_inflight: 20,
        profile: Profile::mqtt311(),
    };
    while let Some(flag) = args.next() {
        if flag == "--retain" {
            o.retain = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--host" => o.host = value,
            "--port" => o.port = value.parse().map_err(|e| bad(&e))?,
            "--topic" => o.topic = value,
            "--qos" => {
                o.qos = match value.as_str() {
                    "0" => QoS::AtMostOnce,
                    "1" => QoS::AtLeastOnce,
                    "2" => QoS::ExactlyOnce,
                    _ => return Err(bad(&"0, 1 or 2")),
                }
            }
            "--message" => o.message = value,
            "--count" => o.count = value.parse().map_err(|e| bad(&e))?,
            "--client-id" => o.client_id = Some(value),
            "--clean-session" => o.clean_session = value.parse().map_err(|e| bad(&e))?,
            "--keep-alive" => o.keep_alive = value.parse().map_err(|e| bad(&e))?,
            "--max-inflight" => o.max_inflight = value.parse().map_err(|e| bad(&e))?,
            "--drop-after" => o.drop_after = Some(value.parse().map_err(|e| bad(&e))?),
            "--profile" => {
                o.profile = Profile::by_name(&value)
                    .ok_or_else(|| bad(&format!("one of {}", Profile::NAMES.join(", "))))?
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if o.drop_after.is_some() && (o.mode != Mode::Pub || o.clean_session) {
        return Err("--drop-after needs pub and --clean-session false".to_string());
    }
    if o.topic.is_empty() {
        return Err(format!("--topic is required\n{USAGE}"));
    }
    Ok(o)
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

/// The application: what it has done so far and what it still has to do.
struct App {
    o: Options,
    clock: Clock,
    client: Client,
    topic: TopicName<Bytes>,
    filter: TopicFilter<Bytes>,
    connected: bool,
    subscribe_sent: bool,
    published: u64,
    acknowledged: u64,
    received: u64,
    /// Messages the client gave up (reported by `Event::Lost`).
    lost: u64,
    disconnecting: bool,
    /// Whether `--drop-after` has dropped the connection.
    dropped: bool,
    /// How the connection ended, once it has.
    ended: Option<End>,
}

/// How the connection ended.
#[derive(Debug)]
enum End {
    /// The client closed it ([`Action::Close`]).
    Closed(Reason),
    /// The network connection broke or the server closed it.
    Lost(String),
}

impl App {
    /// Drains the client's actions, then issues the commands that are due, until the
    /// client has nothing more to say.
    async fn step(&mut self, wr: &mut OwnedWriteHalf) -> Result<(), Box<dyn Error>> {
        loop {
            while let Some(action) = self.client.poll_action() {
                self.act(action, wr).await?;
            }
            if self.ended.is_some() || !self.commands()? {
                return Ok(());
            }
        }
    }

    async fn act(&mut self, action: Action, wr: &mut OwnedWriteHalf) -> Result<(), Box<dyn Error>> {
        match action {
            Action::Send(packet) => wr.write_all(&packet.to_bytes()?).await?,
            Action::Deliver(publish) => {
                self.received += 1;
                let mut out = std::io::stdout().lock();
                out.write_all(&publish.payload)?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
            Action::Event(Event::Connected { session_present }) => {
                self.connected = true;
                eprintln!("connected session_present={session_present}");
            }
            Action::Event(Event::Subscribed { codes, .. }) => {
                eprintln!("subscribed {codes:?}");
                if codes.contains(&SubAckCode::Failure) {
                    return Err("the subscription was refused".into());
                }
            }
            Action::Event(Event::Published(_) | Event::Completed(_)) => {
                self.acknowledged += 1;
                eprintln!("acknowledged {}", self.acknowledged);
            }
            Action::Event(Event::Lost(lost)) => {
                if matches!(lost, Lost::Publish(_) | Lost::Release(_)) {
                    self.lost += 1;
                }
                eprintln!("lost: {lost:?}");
            }
            Action::Event(other) => eprintln!("event: {other:?}"),
            // Not asked for: this client keeps its session in memory only.
            Action::Change(_) => {}
            Action::Close(reason) => {
                if reason != Reason::Disconnected {
                    eprintln!("connection closed: {reason:?}");
                }
                self.ended = Some(End::Closed(reason));
            }
        }
        Ok(())
    }

    /// The commands due now: subscribe once connected, publish while the inflight window
    /// has room, disconnect when done. Returns whether any command was issued.
    fn commands(&mut self) -> Result<bool, Box<dyn Error>> {
        if !self.connected || self.disconnecting {
            return Ok(false);
        }
        let mut issued = false;
        let now = self.clock.now();
        match self.o.mode {
            Mode::Sub => {
                if !self.subscribe_sent {
                    self.subscribe_sent = true;
                    issued = true;
                    self.client
                        .subscribe(now, &[(self.filter.clone(), self.o.qos)])?;
                }
                if self.o.count > 0 && self.received >= self.o.count {
                    issued = true;
                    self.disconnect(now)?;
                }
            }
            Mode::Pub => {
                // With `--drop-after`, publish only that many before the drop.
                let limit = match self.o.drop_after {
                    Some(k) if !self.dropped => k.min(self.o.count),
                    _ => self.o.count,
                };
                while self.published < limit {
                    let payload =
                        Bytes::from(self.o.message.replace("{n}", &self.published.to_string()));
                    match self.client.publish(
                        now,
                        self.topic.clone(),
                        self.o.qos,
                        self.o.retain,
                        payload,
                    ) {
                        Ok(_) => {
                            self.published += 1;
                            issued = true;
                        }
                        Err(ClientError::InflightFull { .. } | ClientError::PacketIdsExhausted) => {
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                let done = if self.o.qos == QoS::AtMostOnce {
                    self.published
                } else {
                    self.acknowledged + self.lost
                };
                if done >= self.o.count {
                    issued = true;
                    self.disconnect(now)?;
                }
            }
        }
        Ok(issued)
    }

    fn disconnect(&mut self, now: Instant) -> Result<(), ClientError> {
        self.disconnecting = true;
        self.client.disconnect(now)
    }
}

fn connect_packet(o: &Options) -> Result<Connect<Bytes>, Box<dyn Error>> {
    let client_id = o
        .client_id
        .clone()
        .unwrap_or_else(|| format!("mqtt-sansio-{}", std::process::id()));
    Ok(Connect {
        client_id: MqttString::new(Bytes::from(client_id))?,
        clean_session: o.clean_session,
        keep_alive: o.keep_alive,
        will: None,
        login: None,
    })
}

async fn open(o: &Options) -> Result<(OwnedReadHalf, OwnedWriteHalf), Box<dyn Error>> {
    let stream = TcpStream::connect((o.host.as_str(), o.port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream.into_split())
}

async fn run(o: Options) -> Result<(), Box<dyn Error>> {
    let clock = Clock(std::time::Instant::now());
    let topic = TopicName::new(Bytes::from(o.topic.clone()));
    let filter = TopicFilter::new(Bytes::from(o.topic.clone()))?;
    let topic = match (o.mode, topic) {
        (_, Ok(t)) => t,
        // A subscriber's wildcard filter is not a topic name; it never publishes.
        (Mode::Sub, Err(_)) => TopicName::from_static("unused")?,
        (Mode::Pub, Err(e)) => return Err(format!("--topic {}: {e}", o.topic).into()),
    };
    let connect = connect_packet(&o)?;
    let (mut rd, mut wr) = open(&o).await?;
    let mut config = ClientConfig::for_profile(&o.profile);
    config.max_inflight = o.max_inflight;
    let mut client = Client::with_config(o.profile.clone(), config);
    client.connect(clock.now(), connect.clone())?;
    let mut app = App {
        o,
        clock,
        client,
        topic,
        filter,
        connected: false,
        subscribe_sent: false,
        published: 0,
        acknowledged: 0,
        lost: 0,
        received: 0,
        disconnecting: false,
        dropped: false,
        ended: None,
    };
    app.step(&mut wr).await?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    while app.ended.is_none() {
        if app
            .o
            .drop_after
            .is_some_and(|k| !app.dropped && app.published >= k)
        {
            // Abruptly, as a network failure would: no DISCONNECT. The session (clean
            // session 0) keeps the unacknowledged messages, resent after the new CONNACK.
            app.dropped = true;
            drop((rd, wr));
            eprintln!("dropped the connection after {} publishes", app.published);
            app.client.connection_lost(clock.now());
            (rd, wr) = open(&app.o).await?;
            app.connected = false;
            app.client.connect(clock.now(), connect.clone())?;
            app.step(&mut wr).await?;
            continue;
        }
        let deadline = app.client.poll_timeout().map(|t| clock.to_tokio(t));
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        buf.clear();
        buf.reserve(16 * 1024);
        tokio::select! {
            read = rd.read_buf(&mut buf) => match read {
                Ok(n) if n > 0 => app.client.handle_bytes(clock.now(), &buf)?,
                Ok(_) => {
                    app.client.connection_lost(clock.now());
                    app.ended = Some(End::Lost("the server closed the connection".into()));
                }
                Err(e) => {
                    app.client.connection_lost(clock.now());
                    app.ended = Some(End::Lost(e.to_string()));
                }
            },
            () = timer => app.client.handle_timeout(clock.now()),
        }
        app.step(&mut wr).await?;
    }
    // A graceful close: end our side, then let the server close its side, so that no
    // unread bytes turn the close into a reset that could discard the DISCONNECT.
    let _ = wr.shutdown().await;
    if matches!(app.ended, Some(End::Closed(_))) {
        let drain = async {
            let mut sink = [0u8; 1024];
            while let Ok(n) = rd.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }
    let why = match app.ended {
        Some(End::Closed(Reason::Disconnected)) if app.lost == 0 => return Ok(()),
        Some(End::Closed(reason)) => format!("{reason:?}"),
        Some(End::Lost(why)) => why,
        None => "unknown".to_string(),
    };
    Err(format!(
        "the connection ended early ({why}): received {}, acknowledged {}, lost {}",
        app.received, app.acknowledged, app.lost
    )
    .into())
}

fn main() {
    let options = common::options_or_exit(parse_args());
    let runtime = common::runtime_or_exit();
    if let Err(e) = runtime.block_on(run(options)) {
        eprintln!("client: {e}");
        std::process::exit(1);
    }
}
