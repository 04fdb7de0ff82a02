//! A TCP MQTT 3.1.1 client: the crate's sans-I/O [`Client`] plus a tokio socket.
//!
//! ```text
//! cargo run --release --example client -- pub|sub --host H --port P --topic T --qos Q
//!     [--message M] [--count N] [--client-id ID] [--clean-session true|false]
//!     [--retain] [--keep-alive SECS] [--profile mqtt311|aws-iot]
//! ```
//!
//! `sub` subscribes to the filter T and prints each payload it receives on its own line
//! on stdout, and disconnects after N messages (`--count 0`: never). `pub` publishes M
//! to T, N times, and disconnects once every message is acknowledged (QoS 1: PUBACK,
//! QoS 2: PUBCOMP; QoS 0: once written). Progress (`connected session_present=…`,
//! `subscribed …`, `acknowledged N`) goes to stderr. Exit status: 0 when done, 1 when
//! the connection failed or ended early, 2 for bad arguments.
//!
//! # Run loop
//!
//! One task owns the [`Client`] and the socket. After every input (bytes read, the
//! timer at [`Client::poll_timeout`], a command) it drains [`Client::poll_action`]
//! until `None`: `Send` is encoded and written, `Deliver` printed, events counted,
//! `Close` ends the connection. Time is the crate's [`Instant`], counted in
//! milliseconds from the process start.

use std::error::Error;
use std::io::Write;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_sansio::client::{Action, Client, ClientError, Event, Reason};
use mqtt_sansio::{Connect, Instant, MqttString, Profile, QoS, SubAckCode, TopicFilter, TopicName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

const USAGE: &str = "usage: client pub|sub --host H --port P --topic T --qos 0|1|2 \
[--message M] [--count N] [--client-id ID] [--clean-session true|false] [--retain] \
[--keep-alive SECS] [--profile mqtt311|aws-iot]";

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
            "--profile" => {
                o.profile = match value.as_str() {
                    "aws-iot" => Profile::aws_iot_core(),
                    "mqtt311" => Profile::mqtt311(),
                    _ => return Err(bad(&"aws-iot or mqtt311")),
                }
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
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
    subscribed: bool,
    published: u64,
    acknowledged: u64,
    received: u64,
    disconnecting: bool,
    /// How the connection ended, once it has.
    closed: Option<Reason>,
}

impl App {
    /// Drains the client's actions, then issues the commands that are due, until the
    /// client has nothing more to say.
    async fn step(&mut self, wr: &mut OwnedWriteHalf) -> Result<(), Box<dyn Error>> {
        loop {
            while let Some(action) = self.client.poll_action() {
                self.act(action, wr).await?;
            }
            if self.closed.is_some() || !self.commands()? {
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
                self.subscribed = true;
            }
            Action::Event(Event::Published(_) | Event::Completed(_)) => {
                self.acknowledged += 1;
                eprintln!("acknowledged {}", self.acknowledged);
            }
            Action::Event(Event::Lost(lost)) => eprintln!("lost: {lost:?}"),
            Action::Event(other) => eprintln!("event: {other:?}"),
            Action::Close(reason) => {
                if reason != Reason::Disconnected {
                    eprintln!("connection closed: {reason:?}");
                }
                self.closed = Some(reason);
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
                while self.published < self.o.count {
                    let payload = Bytes::from(self.o.message.clone());
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
                    self.acknowledged
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
    let client_id = o
        .client_id
        .clone()
        .unwrap_or_else(|| format!("mqtt-sansio-{}", std::process::id()));
    let stream = TcpStream::connect((o.host.as_str(), o.port)).await?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let mut client = Client::new(o.profile.clone());
    client.connect(
        clock.now(),
        Connect {
            client_id: MqttString::new(Bytes::from(client_id))?,
            clean_session: o.clean_session,
            keep_alive: o.keep_alive,
            will: None,
            login: None,
        },
    )?;
    let mut app = App {
        o,
        clock,
        client,
        topic,
        filter,
        connected: false,
        subscribe_sent: false,
        subscribed: false,
        published: 0,
        acknowledged: 0,
        received: 0,
        disconnecting: false,
        closed: None,
    };
    app.step(&mut wr).await?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    while app.closed.is_none() {
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
                    eprintln!("the server closed the connection");
                    app.client.connection_lost(clock.now());
                }
                Err(e) => {
                    eprintln!("read failed: {e}");
                    app.client.connection_lost(clock.now());
                }
            },
            () = timer => app.client.handle_timeout(clock.now()),
        }
        app.step(&mut wr).await?;
    }
    let _ = wr.shutdown().await;
    match app.closed {
        Some(Reason::Disconnected) => Ok(()),
        other => Err(format!(
            "the connection ended early ({other:?}): received {}, acknowledged {}",
            app.received, app.acknowledged
        )
        .into()),
    }
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(options)) {
        eprintln!("client: {e}");
        std::process::exit(1);
    }
}
