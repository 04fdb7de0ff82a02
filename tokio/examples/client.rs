//! An MQTT 3.1.1 client on the crate's [`Client`]: publish or subscribe over TCP, TLS,
//! WebSocket or WebSocket over TLS.
//!
//! ```text
//! cargo run --release --example client -- pub|sub [--url URL | --host H --port P] --topic T --qos Q
//!     [--message M] [--count N] [--client-id ID] [--clean-session true|false]
//!     [--retain] [--keep-alive SECS] [--max-inflight N] [--drop-after K] [--data-dir DIR]
//!     [--profile mqtt311|aws-iot|aws-iot-2025] [--username U --password P]
//!     [--cafile FILE] [--cert FILE --key FILE] [--tls-alpn PROTO]... [--insecure]
//! ```
//!
//! `--url` is `mqtt://`, `mqtts://`, `ws://` or `wss://` with host, port and (WebSocket)
//! path; without it the client connects to `--host`/`--port` over TCP, or over TLS when
//! a TLS flag is given. The TLS flags are mosquitto_pub's: `--cafile` (default: the
//! platform's roots), `--cert`/`--key` (a client certificate), `--tls-alpn` (for AWS IoT
//! Core on port 443: `x-amzn-mqtt-ca`), `--insecure` (accept a certificate issued for
//! another host name).
//!
//! `sub` subscribes to the filter T, prints each payload on its own line on stdout and
//! disconnects after N messages (`--count 0`: never). `pub` publishes M to T, N times,
//! and disconnects once every message is acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP;
//! QoS 0: once written); `{n}` in M stands for the message's number. Progress
//! (`connected session_present=…`, `subscribed …`, `acknowledged N`) goes to stderr.
//! Exit status: 0 when done, 1 when the connection failed or ended early (with the
//! typed error on stderr), 2 for bad arguments.
//!
//! `--max-inflight N` (default 20, mosquitto's `max_inflight_messages`) bounds the
//! QoS 1/2 messages awaiting their acknowledgement. `--drop-after K` (with `pub` and
//! `--clean-session false`) drops the connection without DISCONNECT once K messages are
//! handed to the client, reconnects at once and finishes: the client resends what was
//! not acknowledged, which proves resumption against a real server.
//!
//! `--data-dir DIR` (with `--client-id` and `--clean-session false`) keeps the session in
//! DIR: a QoS 1/2 message whose PUBLISH left the client is resent (same id, DUP=1) when
//! the client is started again on DIR, even after `kill -9`, and an inbound QoS 2
//! message is not delivered twice. A damaged DIR is refused (exit 1, naming the file).

mod common;

use std::path::PathBuf;
use std::pin::pin;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use mqtt_sansio::{Login, MqttString, Profile, QoS, SubAckCode};
use mqtt_sansio_tokio::{Client, Error, Options, TlsOptions};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Pub,
    Sub,
}

/// Publish or subscribe with the mqtt-sansio client.
#[derive(Parser)]
struct Args {
    /// pub or sub.
    mode: Mode,
    /// mqtt://, mqtts://, ws:// or wss:// URL (instead of --host and --port).
    #[arg(long)]
    url: Option<String>,
    /// The server's host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The server's port (default 1883, or 8883 with TLS flags).
    #[arg(long)]
    port: Option<u16>,
    /// The topic (pub) or filter (sub).
    #[arg(long)]
    topic: String,
    /// 0, 1 or 2.
    #[arg(long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// The payload; {n} is the message's number.
    #[arg(long, default_value = "")]
    message: String,
    /// Messages to publish or to receive (sub: 0 = forever).
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// The client id (default: mqtt-sansio-PID).
    #[arg(long)]
    client_id: Option<String>,
    /// true or false.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    clean_session: bool,
    /// Publish with RETAIN.
    #[arg(long)]
    retain: bool,
    /// Keep-alive in seconds.
    #[arg(long, default_value_t = 30)]
    keep_alive: u16,
    /// QoS 1/2 messages awaiting acknowledgement at once.
    #[arg(long, default_value_t = 20)]
    max_inflight: usize,
    /// Drop the connection after K publishes, reconnect and finish.
    #[arg(long)]
    drop_after: Option<u64>,
    /// Keep the session in this directory (survives a restart).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// mqtt311, aws-iot or aws-iot-2025.
    #[arg(long, default_value = "mqtt311", value_parser = parse_profile)]
    profile: Profile,
    /// User name.
    #[arg(long)]
    username: Option<String>,
    /// Password.
    #[arg(long)]
    password: Option<String>,
    /// CA certificates (PEM) to verify the server with.
    #[arg(long)]
    cafile: Option<PathBuf>,
    /// Client certificate chain (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// ALPN protocol to offer (repeatable).
    #[arg(long)]
    tls_alpn: Vec<String>,
    /// Accept a server certificate for another host name.
    #[arg(long)]
    insecure: bool,
}

fn parse_qos(s: &str) -> Result<QoS, String> {
    match s {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Ok(QoS::ExactlyOnce),
        _ => Err("0, 1 or 2".into()),
    }
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::by_name(s).ok_or_else(|| format!("one of {}", Profile::NAMES.join(", ")))
}

fn options(a: &Args) -> Result<Options, Box<dyn std::error::Error>> {
    let tls = a.cafile.is_some() || a.cert.is_some() || !a.tls_alpn.is_empty() || a.insecure;
    let url = match &a.url {
        Some(u) => u.clone(),
        None => {
            let scheme = if tls { "mqtts" } else { "mqtt" };
            let port = a.port.unwrap_or(if tls { 8883 } else { 1883 });
            let host = if a.host.contains(':') {
                format!("[{}]", a.host)
            } else {
                a.host.clone()
            };
            format!("{scheme}://{host}:{port}")
        }
    };
    let mut o = Options::new(url);
    if let Some(id) = &a.client_id {
        o.client_id = id.clone();
    }
    o.clean_session = a.clean_session;
    o.keep_alive = a.keep_alive;
    o.config = mqtt_sansio::ClientConfig::for_profile(&a.profile);
    o.config.max_inflight = a.max_inflight;
    o.profile = a.profile.clone();
    o.data_dir = a.data_dir.clone();
    if let Some(user) = &a.username {
        o.login = Some(Login {
            username: MqttString::new(Bytes::from(user.clone()))?,
            password: a
                .password
                .as_ref()
                .map(|p| mqtt_sansio::Binary::new(Bytes::from(p.clone())))
                .transpose()?,
        });
    }
    o.tls = TlsOptions {
        ca_file: a.cafile.clone(),
        cert_file: a.cert.clone(),
        key_file: a.key.clone(),
        alpn: a.tls_alpn.iter().map(|p| p.as_bytes().to_vec()).collect(),
        server_name: None,
        insecure: a.insecure,
    };
    Ok(o)
}

async fn subscribe(
    a: &Args,
    client: &Client,
    mut messages: mqtt_sansio_tokio::Messages,
) -> Result<(), Error> {
    let codes = client.subscribe(&[(a.topic.as_str(), a.qos)]).await?;
    eprintln!("subscribed {codes:?}");
    if codes.contains(&SubAckCode::Failure) {
        return Err(Error::Config("the subscription was refused".into()));
    }
    let mut received = 0;
    while a.count == 0 || received < a.count {
        let Some(message) = messages.recv().await else {
            return Err(Error::Closed);
        };
        received += 1;
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&message.payload);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
    client.disconnect().await
}

async fn publish(a: &Args, client: &Client) -> Result<(), Error> {
    let send = |n: u64| {
        let client = client.clone();
        let payload = a.message.replace("{n}", &n.to_string());
        let (topic, qos, retain) = (a.topic.clone(), a.qos, a.retain);
        async move { client.publish(&topic, qos, retain, payload).await }
    };
    let window = a.max_inflight.max(1);
    let mut acknowledged = 0u64;
    let mut first = 0;
    if let Some(k) = a.drop_after {
        let k = k.min(a.count);
        let mut batch = pin!(futures_util::stream::iter(0..k).map(send).buffered(window));
        // Hand the first K to the client (awaiting none of the acknowledgements), then
        // break the connection under them.
        let mut handed = 0;
        while handed < k {
            tokio::select! {
                biased;
                done = batch.next() => match done {
                    Some(r) => { r?; acknowledged += 1; eprintln!("acknowledged {acknowledged}"); handed += 1; }
                    None => break,
                },
                () = tokio::task::yield_now() => break,
            }
        }
        let session_present = client.reconnect().await?;
        eprintln!("dropped the connection after {k} publishes");
        eprintln!("connected session_present={session_present}");
        while let Some(r) = batch.next().await {
            r?;
            acknowledged += 1;
            eprintln!("acknowledged {acknowledged}");
        }
        first = k;
    }
    let mut rest = pin!(
        futures_util::stream::iter(first..a.count)
            .map(send)
            .buffered(window)
    );
    while let Some(r) = rest.next().await {
        r?;
        acknowledged += 1;
        eprintln!("acknowledged {acknowledged}");
    }
    client.disconnect().await
}

async fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    if a.drop_after.is_some() && (a.mode != Mode::Pub || a.clean_session) {
        return Err("--drop-after needs pub and --clean-session false".into());
    }
    let (client, messages) = Client::connect(options(&a)?).await?;
    eprintln!("connected session_present={}", client.session_present());
    match a.mode {
        Mode::Sub => subscribe(&a, &client, messages).await?,
        Mode::Pub => publish(&a, &client).await?,
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    common::init_logging();
    let runtime = common::runtime_or_exit(1);
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("client: {e}");
        std::process::exit(1);
    }
}
