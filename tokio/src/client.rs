//! The async client: a handle ([`Client`]) and a stream of incoming messages
//! ([`Messages`]) talking to a driver task that owns the core's client and the
//! connection.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use mqtt_sansio::client::{Action, ClientError, ClientState, Event, Lost};
use mqtt_sansio::{
    Connect, MqttString, PacketId, PacketType, Publish, QoS, SubAckCode, TopicFilter, TopicName,
};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls;

use crate::Options;
use crate::clock::Clock;
use crate::store::ClientStore;
use crate::transport::{self, Reader, Url, Writer};
use crate::{Error, Timeout};

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

/// Most commands kept while the client waits to reconnect.
const MAX_OFFLINE: usize = 64;

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
        let mut driver = Driver {
            core,
            store,
            batch: VecDeque::new(),
            clock: Clock::new(),
            url,
            tls,
            connect,
            options,
            link: None,
            out: BytesMut::new(),
            written: Vec::new(),
            unwritten: Vec::new(),
            publishes: BTreeMap::new(),
            subscribes: BTreeMap::new(),
            unsubscribes: BTreeMap::new(),
            blocked: VecDeque::new(),
            offline: VecDeque::new(),
            messages: messages_tx,
            connected: false,
            ended: None,
            disconnect: None,
            reconnect: None,
            redial: false,
            session_present: Arc::default(),
        };
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

/// What one open connection needs.
struct Link {
    reader: Reader,
    writer: Writer,
}

/// The task that owns the core's client and the connection.
struct Driver {
    core: mqtt_sansio::Client,
    /// With [`Options::data_dir`]: the session's store.
    store: Option<ClientStore>,
    /// With a store: the core's actions whose changes are committed, to carry out.
    batch: VecDeque<Action>,
    clock: Clock,
    url: Url,
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls_pki_types::ServerName<'static>,
    )>,
    connect: Connect<Bytes>,
    options: Options,
    link: Option<Link>,
    /// Encoded packets not yet written.
    out: BytesMut,
    /// QoS 0 publishes whose packets are in `out`: complete once it is written.
    written: Vec<Reply<()>>,
    /// QoS 0 publishes the core holds until CONNACK.
    unwritten: Vec<Reply<()>>,
    /// Requests waiting for their acknowledgement, by packet id.
    publishes: BTreeMap<PacketId, Reply<()>>,
    subscribes: BTreeMap<PacketId, Reply<Vec<SubAckCode>>>,
    unsubscribes: BTreeMap<PacketId, Reply<()>>,
    /// Publishes refused for a full inflight window or a lack of packet ids, retried as
    /// acknowledgements free room.
    blocked: VecDeque<Command>,
    /// Commands that arrived while the client waited to reconnect, carried out once it
    /// has (at most [`MAX_OFFLINE`]; beyond it the application waits).
    offline: VecDeque<Command>,
    messages: mpsc::Sender<Publish<Bytes>>,
    connected: bool,
    /// Why the current connection ended, once it has.
    ended: Option<Error>,
    disconnect: Option<Reply<()>>,
    /// The application asked for a new connection.
    reconnect: Option<Reply<bool>>,
    /// The core asked for a new connection ([`Action::Reconnect`]).
    redial: bool,
    session_present: Arc<AtomicBool>,
}

impl Driver {
    /// Opens the connection, sends CONNECT and waits for CONNACK.
    async fn establish(&mut self) -> Result<(), Error> {
        self.open().await?;
        self.handshake().await
    }

    /// Opens the network connection (TCP, TLS, WebSocket).
    async fn open(&mut self) -> Result<(), Error> {
        let timeout = self.options.connect_timeout;
        let opened = tokio::time::timeout(timeout, transport::connect(&self.url, self.tls.clone()))
            .await
            .map_err(|_| Error::Timeout(Timeout::Connect))??;
        self.link = Some(Link {
            reader: opened.0,
            writer: opened.1,
        });
        Ok(())
    }

    /// Sends CONNECT on the open connection and waits for CONNACK.
    async fn handshake(&mut self) -> Result<(), Error> {
        self.ended = None;
        self.connected = false;
        if let Err(e) = self.core.connect(self.clock.now(), self.connect.clone()) {
            self.link = None;
            return Err(Error::Rejected(e));
        }
        let mut buf = BytesMut::with_capacity(16 * 1024);
        loop {
            self.drain().await;
            self.flush().await;
            if let Some(e) = self.ended.take() {
                self.link = None;
                return Err(e);
            }
            if self.connected {
                return Ok(());
            }
            self.step(&mut buf, None).await;
        }
    }

    /// The driver's life: serve the connection, reconnect when it is lost and the core
    /// asks for it, until the application disconnects or drops every handle.
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        loop {
            for command in std::mem::take(&mut self.offline) {
                self.command(command);
            }
            while self.ended.is_none() {
                self.drain().await;
                self.retry_blocked();
                self.drain().await;
                self.flush().await;
                if self.ended.is_some() {
                    break;
                }
                self.step(&mut buf, Some(&mut commands)).await;
            }
            self.link = None;
            let why = self.ended.take().unwrap_or(Error::Closed);
            if self.disconnect.is_some() || commands.is_closed() {
                break;
            }
            if let Some(reply) = self.reconnect.take() {
                let result = self.reconnect_now().await;
                let ok = result.is_ok();
                let _ = reply.send(result.map(|()| self.session_present.load(Ordering::Relaxed)));
                if ok {
                    continue;
                }
            } else {
                tracing::info!("connection lost: {why}");
            }
            if !self.follow_reconnects(&mut commands).await {
                break;
            }
        }
        self.close_for_good(&mut commands).await;
    }

    /// The application's reconnect: a new connection at once, or as soon as the
    /// profile's CONNECT interval allows.
    async fn reconnect_now(&mut self) -> Result<(), Error> {
        if let Some(at) = self.core.earliest_connect() {
            tokio::time::sleep_until(self.clock.to_tokio(at)).await;
        }
        match self.open().await {
            Ok(()) => self.handshake().await,
            Err(e) => {
                if e.is_transient() {
                    self.core.connection_failed(self.clock.now());
                }
                Err(e)
            }
        }
    }

    /// Follows the core while there is no connection: carries out its actions, wakes
    /// it on time, and opens a connection when it asks ([`Action::Reconnect`]). True
    /// once a new connection is accepted; false when the core asks for none (no
    /// reconnecting configured, or a close a retry cannot help), the failure is not
    /// one a retry can help (a TLS or WebSocket handshake refused), or the application
    /// disconnects or drops every handle meanwhile. Other commands wait for the
    /// connection.
    async fn follow_reconnects(&mut self, commands: &mut mpsc::Receiver<Command>) -> bool {
        loop {
            self.drain().await;
            if std::mem::take(&mut self.redial) {
                match self.open().await {
                    Ok(()) => match self.handshake().await {
                        Ok(()) => {
                            tracing::info!("reconnected");
                            return true;
                        }
                        // The core closed, or the link broke: it decides what follows.
                        Err(e) => tracing::info!("reconnect failed: {e}"),
                    },
                    Err(e) if e.is_transient() => {
                        tracing::info!("reconnect failed: {e}");
                        self.core.connection_failed(self.clock.now());
                    }
                    Err(e) => {
                        tracing::info!("reconnect failed for good: {e}");
                        return false;
                    }
                }
                continue;
            }
            if self.core.state() != ClientState::Reconnecting {
                return false;
            }
            // Operation time-outs may fall due before the reconnect.
            let Some(at) = self.core.poll_timeout() else {
                return false;
            };
            let room = self.offline.len() < MAX_OFFLINE;
            tokio::select! {
                () = tokio::time::sleep_until(self.clock.to_tokio(at)) => {
                    self.core.handle_timeout(self.clock.now());
                }
                command = commands.recv(), if room => match command {
                    Some(Command::Disconnect { reply }) => {
                        // The core forgets the reconnect it was to ask for.
                        let _ = self.core.disconnect(self.clock.now());
                        self.disconnect = Some(reply);
                        return false;
                    }
                    Some(other) => self.offline.push_back(other),
                    None => {
                        let _ = self.core.disconnect(self.clock.now());
                        return false;
                    }
                },
            }
        }
    }

    /// Waits for one input (bytes, a command, the timer) and hands it to the core.
    async fn step(&mut self, buf: &mut BytesMut, commands: Option<&mut mpsc::Receiver<Command>>) {
        let deadline = self.core.poll_timeout().map(|t| self.clock.to_tokio(t));
        let Some(link) = self.link.as_mut() else {
            self.ended = Some(Error::Closed);
            return;
        };
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let accepting =
            self.blocked.is_empty() && self.disconnect.is_none() && self.reconnect.is_none();
        let command = async {
            match commands {
                Some(c) if accepting => c.recv().await,
                _ => std::future::pending().await,
            }
        };
        buf.clear();
        tokio::select! {
            read = link.reader.read(buf) => {
                let now = self.clock.now();
                match read {
                    Ok(0) => self.lost(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
                    Ok(_) => {
                        if let Err(e) = self.core.handle_bytes(now, buf) {
                            tracing::debug!("bytes after the close: {e}");
                        }
                    }
                    Err(e) => self.lost(e),
                }
            }
            command = command => match command {
                Some(c) => self.command(c),
                // Every handle is gone: disconnect.
                None => {
                    let _ = self.core.disconnect(self.clock.now());
                }
            },
            () = timer => self.core.handle_timeout(self.clock.now()),
        }
    }

    fn lost(&mut self, why: Error) {
        self.core.connection_lost(self.clock.now());
        if self.ended.is_none() {
            self.ended = Some(why);
        }
    }

    fn command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::Publish {
                topic,
                qos,
                retain,
                payload,
                reply,
            } => {
                match self
                    .core
                    .publish(now, topic.clone(), qos, retain, payload.clone())
                {
                    Ok(Some(id)) => {
                        self.publishes.insert(id, reply);
                    }
                    Ok(None) => self.unwritten.push(reply),
                    Err(ClientError::InflightFull { .. } | ClientError::PacketIdsExhausted) => {
                        self.blocked.push_back(Command::Publish {
                            topic,
                            qos,
                            retain,
                            payload,
                            reply,
                        });
                    }
                    Err(e) => {
                        let _ = reply.send(Err(Error::Rejected(e)));
                    }
                }
            }
            Command::Subscribe { filters, reply } => match self.core.subscribe(now, &filters) {
                Ok(id) => {
                    self.subscribes.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::Rejected(e)));
                }
            },
            Command::Unsubscribe { filters, reply } => match self.core.unsubscribe(now, &filters) {
                Ok(id) => {
                    self.unsubscribes.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::Rejected(e)));
                }
            },
            Command::Ack { id, reply } => {
                let _ = reply.send(self.core.ack(now, id).map_err(Error::Rejected));
            }
            Command::Reconnect { reply } => {
                self.reconnect = Some(reply);
                self.lost(Error::Io(std::io::ErrorKind::ConnectionAborted.into()));
            }
            Command::Disconnect { reply } => match self.core.disconnect(now) {
                Ok(()) => self.disconnect = Some(reply),
                Err(e) => {
                    let _ = reply.send(Err(Error::Rejected(e)));
                }
            },
        }
    }

    /// Retries the publishes the inflight window held back, in order, while it has room.
    fn retry_blocked(&mut self) {
        if !self.connected {
            return;
        }
        let now = self.clock.now();
        while let Some(Command::Publish {
            topic,
            qos,
            retain,
            payload,
            reply,
        }) = self.blocked.pop_front()
        {
            match self
                .core
                .publish(now, topic.clone(), qos, retain, payload.clone())
            {
                Ok(Some(id)) => {
                    self.publishes.insert(id, reply);
                }
                Ok(None) => self.unwritten.push(reply),
                Err(ClientError::InflightFull { .. } | ClientError::PacketIdsExhausted) => {
                    self.blocked.push_front(Command::Publish {
                        topic,
                        qos,
                        retain,
                        payload,
                        reply,
                    });
                    return;
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::Rejected(e)));
                }
            }
        }
    }

    /// The core's next action. With a store the actions come in batches, every action
    /// the core has: the changes among them are committed before the first is carried
    /// out. When the commit fails none is, and the client stops.
    fn next_action(&mut self) -> Option<Action> {
        let Some(store) = self.store.as_mut() else {
            return self.core.poll_action();
        };
        if self.batch.is_empty() {
            self.batch
                .extend(std::iter::from_fn(|| self.core.poll_action()));
            for action in &self.batch {
                if let Action::Change(c) = action {
                    store.note(c);
                }
            }
            // A batch without changes commits nothing, unless an earlier commit failed.
            if let Err(e) = store.commit() {
                tracing::error!("stopping: the session store failed: {e}");
                self.batch.clear();
                self.connected = false;
                self.ended = Some(Error::Store(e));
                return None;
            }
        }
        self.batch.pop_front()
    }

    /// Carries out the core's actions, in order.
    async fn drain(&mut self) {
        while let Some(action) = self.next_action() {
            match action {
                Action::Send(packet) => {
                    let is_qos0_publish = matches!(
                        &packet,
                        mqtt_sansio::Packet::Publish(p) if p.qos.packet_id().is_none()
                    );
                    match packet.to_bytes() {
                        Ok(bytes) => self.out.extend_from_slice(&bytes),
                        Err(e) => tracing::error!("cannot encode {packet:?}: {e}"),
                    }
                    if is_qos0_publish && !self.unwritten.is_empty() {
                        let reply = self.unwritten.remove(0);
                        self.written.push(reply);
                    }
                }
                Action::Deliver(publish) => {
                    // A dropped `Messages` discards deliveries.
                    let _ = self.messages.send(publish).await;
                }
                Action::Event(event) => self.event(event),
                // Committed by `next_action` with a store; reported only with one.
                Action::Change(_) => {}
                Action::Close(reason) => {
                    self.connected = false;
                    if self.ended.is_none() {
                        self.ended = Some(Error::from_reason(reason));
                    }
                }
                Action::Reconnect => self.redial = true,
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Connected { session_present } => {
                tracing::debug!("connected session_present={session_present}");
                self.session_present
                    .store(session_present, Ordering::Relaxed);
                self.connected = true;
            }
            Event::Published(id) | Event::Completed(id) => {
                if let Some(reply) = self.publishes.remove(&id) {
                    let _ = reply.send(Ok(()));
                }
            }
            Event::Subscribed { packet_id, codes } => {
                if let Some(reply) = self.subscribes.remove(&packet_id) {
                    let _ = reply.send(Ok(codes));
                }
            }
            Event::Unsubscribed(id) => {
                if let Some(reply) = self.unsubscribes.remove(&id) {
                    let _ = reply.send(Ok(()));
                }
            }
            // The core keeps waiting for the acknowledgement; a late one finds no
            // reply here and is ignored.
            Event::TimedOut {
                packet_type,
                packet_id,
            } => {
                let operation = Error::Timeout(Timeout::Operation);
                match packet_type {
                    PacketType::Publish => answer(&mut self.publishes, packet_id, operation),
                    PacketType::Subscribe => answer(&mut self.subscribes, packet_id, operation),
                    PacketType::Unsubscribe => answer(&mut self.unsubscribes, packet_id, operation),
                    _ => {}
                }
            }
            Event::Lost(lost) => {
                let waiting = match lost {
                    Lost::Publish(p) => match p.qos.packet_id() {
                        Some(id) => self.publishes.remove(&id),
                        // A QoS 0 publish held before CONNACK.
                        None => (!self.unwritten.is_empty()).then(|| self.unwritten.remove(0)),
                    },
                    Lost::Release(id) => self.publishes.remove(&id),
                    Lost::Subscribe(s) => {
                        if let Some(reply) = self.subscribes.remove(&s.packet_id) {
                            let _ = reply.send(Err(Error::Lost));
                        }
                        None
                    }
                    Lost::Unsubscribe(u) => self.unsubscribes.remove(&u.packet_id),
                };
                if let Some(reply) = waiting {
                    let _ = reply.send(Err(Error::Lost));
                }
            }
            Event::Received(_) | Event::UnexpectedAck { .. } => {}
        }
    }

    /// Writes what the core asked to send.
    async fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let Some(link) = self.link.as_mut() else {
            self.out.clear();
            return;
        };
        let written = link.writer.write(&self.out).await;
        self.out.clear();
        match written {
            Ok(()) => {
                for reply in self.written.drain(..) {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                for reply in self.written.drain(..) {
                    let _ = reply.send(Err(Error::Lost));
                }
                self.lost(e);
            }
        }
        if self.disconnect.is_some() && !self.connected {
            if let Some(link) = self.link.as_mut() {
                let _ = link.writer.shutdown().await;
            }
        }
    }

    /// The client stops: whatever waits fails, and the message stream ends.
    async fn close_for_good(mut self, commands: &mut mpsc::Receiver<Command>) {
        if let Some(mut link) = self.link.take() {
            let _ = link.writer.shutdown().await;
        }
        commands.close();
        self.blocked.extend(self.offline.drain(..));
        while let Ok(command) = commands.try_recv() {
            self.blocked.push_back(command);
        }
        for command in self.blocked.drain(..) {
            fail(command);
        }
        for reply in std::mem::take(&mut self.publishes).into_values() {
            let _ = reply.send(Err(Error::Lost));
        }
        for reply in std::mem::take(&mut self.subscribes).into_values() {
            let _ = reply.send(Err(Error::Lost));
        }
        for reply in std::mem::take(&mut self.unsubscribes).into_values() {
            let _ = reply.send(Err(Error::Lost));
        }
        for reply in self.unwritten.drain(..).chain(self.written.drain(..)) {
            let _ = reply.send(Err(Error::Lost));
        }
        if let Some(reply) = self.disconnect.take() {
            let _ = reply.send(Ok(()));
        }
        if let Some(reply) = self.reconnect.take() {
            let _ = reply.send(Err(Error::Closed));
        }
    }
}

/// Fails the request waiting under `id` in `waiting`, if any, with `error`.
fn answer<T>(waiting: &mut BTreeMap<PacketId, Reply<T>>, id: PacketId, error: Error) {
    if let Some(reply) = waiting.remove(&id) {
        let _ = reply.send(Err(error));
    }
}

/// Answers a command the closed client will not carry out.
fn fail(command: Command) {
    match command {
        Command::Publish { reply, .. }
        | Command::Unsubscribe { reply, .. }
        | Command::Ack { reply, .. }
        | Command::Disconnect { reply } => {
            let _ = reply.send(Err(Error::Closed));
        }
        Command::Reconnect { reply } => {
            let _ = reply.send(Err(Error::Closed));
        }
        Command::Subscribe { reply, .. } => {
            let _ = reply.send(Err(Error::Closed));
        }
    }
}
