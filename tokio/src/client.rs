//! The async client: a handle ([`Client`]) and a stream of incoming messages
//! ([`Messages`]) talking to a driver task that owns the core's client and the
//! connection.

mod actions;
mod commands;
mod driver;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use mqtt_sansio::{
    Connect, MqttString, PacketId, Publish, QoS, SubAckCode, TopicFilter, TopicName,
};
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::Options;
use crate::store::ClientStore;
use crate::transport::Url;
use driver::Driver;

/// A handle on a connected client; cheap to clone. When every handle is dropped the
/// client disconnects.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    session_present: Arc<AtomicBool>,
}

/// The messages the server delivers, in order. Ends when the client is closed.
#[derive(Debug)]
pub struct Messages {
    rx: mpsc::Receiver<Publish<Bytes>>,
}

impl Messages {
    /// The next message; `None` once the client is closed. Under
    /// [`ClientConfig::manual_acks`](mqtt_sansio::ClientConfig::manual_acks) a QoS 1/2 message must be acknowledged with
    /// [`Client::ack`].
    pub async fn recv(&mut self) -> Option<Publish<Bytes>> {
        self.rx.recv().await
    }
}

type Reply<T> = oneshot::Sender<Result<T, Error>>;

#[derive(Debug)]
enum Command {
    Publish {
        topic: TopicName<Bytes>,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        reply: Reply<()>,
    },
    Subscribe {
        filters: Vec<(TopicFilter<Bytes>, QoS)>,
        reply: Reply<Vec<SubAckCode>>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter<Bytes>>,
        reply: Reply<()>,
    },
    Ack {
        id: PacketId,
        reply: Reply<()>,
    },
    Disconnect {
        reply: Reply<()>,
    },
    Reconnect {
        reply: Reply<bool>,
    },
}

fn topic_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{what}: {e}"))
}

impl Client {
    /// Connects as `options` say and waits for CONNACK. Fails with [`Error::Refused`]
    /// when the server refuses, [`Error::Tls`] when the TLS handshake fails,
    /// [`Error::Timeout`] when the connection or CONNACK takes too long.
    pub async fn connect(options: Options) -> Result<(Client, Messages), Error> {
        let url = Url::parse(&options.url)?;
        let tls = if url.tls {
            Some((
                options.tls.client_config()?,
                options.tls.server_name(&url.host)?,
            ))
        } else {
            None
        };
        let connect = Connect {
            client_id: MqttString::new(Bytes::from(options.client_id.clone()))
                .map_err(|e| topic_error("client id", e))?,
            clean_session: options.clean_session,
            keep_alive: options.keep_alive,
            will: options.will.clone(),
            login: options.login.clone(),
        };
        let (messages_tx, messages_rx) = mpsc::channel(options.message_queue.max(1));
        // With a data directory the stored session is resumed and its changes reported
        // (and committed); without one it lives in memory, with no changes to report.
        let (core, store) = match &options.data_dir {
            Some(_) if options.client_id.is_empty() => {
                return Err(Error::Config(
                    "a data directory keeps the session of a client id: set one".into(),
                ));
            }
            Some(dir) => {
                let profile = options.profile.clone();
                let client = connect.client_id.clone();
                let (store, core) =
                    ClientStore::resume(dir, client, profile, options.config.clone())?;
                (core, Some(store))
            }
            None => {
                let mut config = options.config.clone();
                config.report_changes = false;
                (
                    mqtt_sansio::Client::with_config(options.profile.clone(), config),
                    None,
                )
            }
        };
        let mut driver = Driver::new(core, store, url, tls, connect, options, messages_tx);
        driver.establish().await?;
        let (tx, rx) = mpsc::channel(64);
        let client = Client {
            commands: tx,
            session_present: driver.session_present.clone(),
        };
        tokio::spawn(driver.run(rx));
        Ok((client, Messages { rx: messages_rx }))
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.unwrap_or(Err(Error::Closed))
    }

    /// Publishes `payload` to `topic`. Completes when the message is acknowledged (QoS
    /// 1: PUBACK, QoS 2: PUBCOMP) or, at QoS 0, written. Waits while the inflight window
    /// is full.
    pub async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let topic = TopicName::new(Bytes::copy_from_slice(topic.as_bytes()))
            .map_err(|e| topic_error(topic, e))?;
        let payload = payload.into();
        self.call(|reply| Command::Publish {
            topic,
            qos,
            retain,
            payload,
            reply,
        })
        .await
    }

    /// Subscribes to `filters` (each with its maximum QoS) in one SUBSCRIBE; completes
    /// with the SUBACK's codes, one per filter.
    pub async fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<SubAckCode>, Error> {
        let filters = filters
            .iter()
            .map(|(f, q)| {
                TopicFilter::new(Bytes::copy_from_slice(f.as_bytes()))
                    .map(|f| (f, *q))
                    .map_err(|e| topic_error(f, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.call(|reply| Command::Subscribe { filters, reply })
            .await
    }

    /// Unsubscribes from `filters` in one UNSUBSCRIBE; completes with the UNSUBACK.
    pub async fn unsubscribe(&self, filters: &[&str]) -> Result<(), Error> {
        let filters = filters
            .iter()
            .map(|f| {
                TopicFilter::new(Bytes::copy_from_slice(f.as_bytes()))
                    .map_err(|e| topic_error(f, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.call(|reply| Command::Unsubscribe { filters, reply })
            .await
    }

    /// Acknowledges a QoS 1/2 message received under [`ClientConfig::manual_acks`](mqtt_sansio::ClientConfig::manual_acks); the
    /// acknowledgements go out in the order the messages arrived. A QoS 0 message needs
    /// none (this returns at once).
    pub async fn ack(&self, message: &Publish<Bytes>) -> Result<(), Error> {
        match message.qos.packet_id() {
            Some(id) => self.call(|reply| Command::Ack { id, reply }).await,
            None => Ok(()),
        }
    }

    /// The session present flag of the last CONNACK: whether the server resumed a
    /// session it held for this client id.
    pub fn session_present(&self) -> bool {
        self.session_present.load(Ordering::Relaxed)
    }

    /// Closes the connection without DISCONNECT, as a network failure would (the
    /// server publishes the will), and connects again at once (as soon as the profile's
    /// CONNECT interval allows: one second under AWS IoT Core); completes with the new
    /// CONNACK's session present flag. With clean session 0 the session resumes and what
    /// was not acknowledged is resent.
    pub async fn reconnect(&self) -> Result<bool, Error> {
        self.call(|reply| Command::Reconnect { reply }).await
    }

    /// Sends DISCONNECT, closes the connection and stops the client. Requests still
    /// waiting for their acknowledgement fail with [`Error::Lost`] (with clean session 0
    /// the server keeps them in the session).
    pub async fn disconnect(&self) -> Result<(), Error> {
        self.call(|reply| Command::Disconnect { reply }).await
    }
}
