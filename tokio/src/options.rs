//! How the async client connects and behaves.

use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::client::ClientConfig;
use mqtt_sansio::packet::Will;
use mqtt_sansio::{Login, Profile};

use crate::tls::TlsOptions;

/// How to connect: where, as whom, and how the client behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// `mqtt://host[:port]` (default port 1883), `mqtts://` (8883), `ws://host[:port][/path]`
    /// (80, path `/mqtt`) or `wss://` (443).
    pub url: String,
    /// The client id; empty asks the server to assign one (needs clean session).
    pub client_id: String,
    /// Clean session: start a new session instead of resuming the stored one.
    pub clean_session: bool,
    /// Keep-alive interval in seconds (0: off).
    pub keep_alive: u16,
    /// The will, published by the server if the connection ends without DISCONNECT.
    pub will: Option<Will<Bytes>>,
    /// User name and password.
    pub login: Option<Login<Bytes>>,
    /// TLS settings for `mqtts://` and `wss://`.
    pub tls: TlsOptions,
    /// The dialect: [`Profile::mqtt311`] or [`Profile::aws_iot_core`].
    pub profile: Profile,
    /// The core client's settings: inflight window, manual acks, CONNACK and PINGRESP
    /// time-outs, and
    /// - [`reconnect`](ClientConfig::reconnect): reconnect after a lost connection
    ///   with this [`Backoff`](mqtt_sansio::reconnect::Backoff) (with clean session 0
    ///   the session resumes and what was not acknowledged is resent); `None`: a lost
    ///   connection closes the client;
    /// - [`request_timeout`](ClientConfig::request_timeout) and
    ///   [`publish_timeout`](ClientConfig::publish_timeout): a SUBSCRIBE or
    ///   UNSUBSCRIBE (a QoS 1/2 PUBLISH) not acknowledged in time fails with
    ///   [`Timeout::Operation`](crate::Timeout::Operation).
    ///
    /// `report_changes` is set by the client: on with [`data_dir`](Self::data_dir)
    /// (the session is kept on disk), off without.
    pub config: ClientConfig,
    /// How long opening the connection (TCP, TLS, WebSocket) may take.
    pub connect_timeout: Duration,
    /// Incoming messages buffered for [`Messages`](crate::Messages); when it is full the client stops
    /// reading from the network.
    pub message_queue: usize,
    /// Keep the session in this directory ([`ClientStore`](crate::store::ClientStore))
    /// instead of in memory only; meant for clean session 0 and a fixed client id.
    /// [`Client::connect`](crate::Client::connect) resumes the stored session (a damaged
    /// store is an [`Error::Store`](crate::Error::Store) naming the file) and the changes
    /// of each batch of the core's actions are committed before any of them is carried
    /// out: a QoS 1/2 message whose PUBLISH reached the socket is resent after a restart,
    /// even after `kill -9`, and an inbound QoS 2 message delivered before it is not
    /// delivered again. `None` (the default): in memory.
    pub data_dir: Option<std::path::PathBuf>,
}

impl Options {
    /// Options for `url` with the defaults: a client id made from the process id, clean
    /// session, keep-alive 30 s, the `mqtt311` profile, connect time-out 10 s, no
    /// operation time-out, no reconnect, 1024 buffered messages, the session in memory.
    pub fn new(url: impl Into<String>) -> Options {
        let profile = Profile::mqtt311();
        Options {
            url: url.into(),
            client_id: format!("mqtt-sansio-{}", std::process::id()),
            clean_session: true,
            keep_alive: 30,
            will: None,
            login: None,
            tls: TlsOptions::default(),
            config: ClientConfig::for_profile(&profile),
            profile,
            connect_timeout: Duration::from_secs(10),
            message_queue: 1024,
            data_dir: None,
        }
    }
}
