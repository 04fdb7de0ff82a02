//! The driver task: owns the core's client and the connection; opens it, serves it,
//! reconnects, and stops for good.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use mqtt_sansio::client::{Action, ClientState};
use mqtt_sansio::{Connect, PacketId, Publish, SubAckCode};
use tokio::sync::mpsc;
use tokio_rustls::rustls;

use super::commands::fail;
use super::{Command, Reply};
use crate::Options;
use crate::clock::Clock;
use crate::store::ClientStore;
use crate::transport::{self, Reader, Url, Writer};
use crate::{Error, Timeout};

/// Most commands kept while the client waits to reconnect.
const MAX_OFFLINE: usize = 64;
/// Most waiting commands taken into one batch of inputs (one commit with a store)
/// besides the input the driver woke for.
const MAX_COMMANDS: usize = 256;
/// Most reads of bytes already there taken into one batch of inputs.
const MAX_READS: usize = 16;

/// What one open connection needs.
struct Link {
    reader: Reader,
    writer: Writer,
}

/// A TLS client configuration and the server name to verify.
type Tls = (
    Arc<rustls::ClientConfig>,
    rustls_pki_types::ServerName<'static>,
);

/// The task that owns the core's client and the connection.
pub(super) struct Driver {
    pub(super) core: mqtt_sansio::Client,
    /// With [`Options::data_dir`]: the session's store.
    pub(super) store: Option<ClientStore>,
    /// With a store: the core's actions whose changes are committed, to carry out.
    pub(super) batch: VecDeque<Action>,
    pub(super) clock: Clock,
    url: Url,
    tls: Option<Tls>,
    connect: Connect<Bytes>,
    options: Options,
    link: Option<Link>,
    /// Encoded packets not yet written.
    pub(super) out: BytesMut,
    /// QoS 0 publishes whose packets are in `out`: complete once it is written.
    pub(super) written: Vec<Reply<()>>,
    /// QoS 0 publishes the core holds until CONNACK.
    pub(super) unwritten: Vec<Reply<()>>,
    /// Requests waiting for their acknowledgement, by packet id.
    pub(super) publishes: BTreeMap<PacketId, Reply<()>>,
    pub(super) subscribes: BTreeMap<PacketId, Reply<Vec<SubAckCode>>>,
    pub(super) unsubscribes: BTreeMap<PacketId, Reply<()>>,
    /// Publishes refused for a full inflight window or a lack of packet ids, retried as
    /// acknowledgements free room.
    pub(super) blocked: VecDeque<Command>,
    /// Commands that arrived while the client waited to reconnect, carried out once it
    /// has (at most [`MAX_OFFLINE`]; beyond it the application waits).
    offline: VecDeque<Command>,
    pub(super) messages: mpsc::Sender<Publish<Bytes>>,
    pub(super) connected: bool,
    /// Why the current connection ended, once it has.
    pub(super) ended: Option<Error>,
    pub(super) disconnect: Option<Reply<()>>,
    /// The application asked for a new connection.
    pub(super) reconnect: Option<Reply<bool>>,
    /// The core asked for a new connection ([`Action::Reconnect`]).
    pub(super) redial: bool,
    pub(super) session_present: Arc<AtomicBool>,
}

impl Driver {
    /// A driver for `core` (its session in `store`, if kept), to connect to `url` with
    /// `connect`, delivering messages to `messages`; nothing is opened yet.
    pub(super) fn new(
        core: mqtt_sansio::Client,
        store: Option<ClientStore>,
        url: Url,
        tls: Option<Tls>,
        connect: Connect<Bytes>,
        options: Options,
        messages: mpsc::Sender<Publish<Bytes>>,
    ) -> Driver {
        Driver {
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
            messages,
            connected: false,
            ended: None,
            disconnect: None,
            reconnect: None,
            redial: false,
            session_present: Arc::default(),
        }
    }

    /// Opens the connection, sends CONNECT and waits for CONNACK.
    pub(super) async fn establish(&mut self) -> Result<(), Error> {
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
    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
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
            // The connection ended in the middle of a batch of inputs: what the core
            // queued before it is carried out now (its changes committed), and the
            // packets for the connection that ended are dropped, never written on the
            // next one (the session resends what needs it).
            self.drain().await;
            self.flush().await;
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

    /// Waits for one input (bytes, a command, the timer) and hands it to the core, with
    /// every input already there ([`gather`](Self::gather)): the actions of them all
    /// form one batch, committed once.
    async fn step(
        &mut self,
        buf: &mut BytesMut,
        mut commands: Option<&mut mpsc::Receiver<Command>>,
    ) {
        let deadline = self.core.poll_timeout().map(|t| self.clock.to_tokio(t));
        let accepting = self.accepting();
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
        {
            let command = async {
                match commands.as_deref_mut() {
                    Some(c) if accepting => c.recv().await,
                    _ => std::future::pending().await,
                }
            };
            buf.clear();
            tokio::select! {
                read = link.reader.read(buf) => self.read(read, buf),
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
        self.gather(buf, commands).await;
    }

    /// Hands the core what is already there without waiting, while the connection
    /// serves: the bytes already readable (at most [`MAX_READS`] reads), then the
    /// commands already waiting (at most [`MAX_COMMANDS`]), in order, while they are
    /// accepted.
    async fn gather(&mut self, buf: &mut BytesMut, commands: Option<&mut mpsc::Receiver<Command>>) {
        for _ in 0..MAX_READS {
            if !self.serving() {
                return;
            }
            let Some(link) = self.link.as_mut() else {
                return;
            };
            buf.clear();
            // Polled once: the read finishes at once, or is dropped having read nothing.
            let read = tokio::select! {
                biased;
                read = link.reader.read(buf) => read,
                () = std::future::ready(()) => break,
            };
            self.read(read, buf);
        }
        let Some(commands) = commands else {
            return;
        };
        for _ in 0..MAX_COMMANDS {
            if !self.serving() || !self.accepting() {
                return;
            }
            match commands.try_recv() {
                Ok(c) => self.command(c),
                // None waiting; or every handle is gone, which the next step sees.
                Err(_) => return,
            }
        }
    }

    /// Whether the connection still serves: not once it ended, nor once the core closed
    /// it (its close, read from earlier bytes, is the reason the connection ends; what
    /// follows waits for the next connection).
    fn serving(&self) -> bool {
        self.ended.is_none()
            && matches!(
                self.core.state(),
                ClientState::Connecting | ClientState::Connected
            )
    }

    /// Whether commands are taken: not while publishes wait for room in the inflight
    /// window (they go first), nor once the application disconnects or reconnects.
    fn accepting(&self) -> bool {
        self.blocked.is_empty() && self.disconnect.is_none() && self.reconnect.is_none()
    }

    /// Hands the core what one read brought (`buf`), or the end of the connection.
    fn read(&mut self, read: Result<usize, Error>, buf: &BytesMut) {
        match read {
            Ok(0) => self.lost(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {
                if let Err(e) = self.core.handle_bytes(self.clock.now(), buf) {
                    tracing::debug!("bytes after the close: {e}");
                }
            }
            Err(e) => self.lost(e),
        }
    }

    pub(super) fn lost(&mut self, why: Error) {
        self.core.connection_lost(self.clock.now());
        if self.ended.is_none() {
            self.ended = Some(why);
        }
    }

    /// Writes what the core asked to send; without a connection it is dropped (and the
    /// QoS 0 publishes among it fail with [`Error::Lost`]).
    async fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let Some(link) = self.link.as_mut() else {
            self.out.clear();
            for reply in self.written.drain(..) {
                let _ = reply.send(Err(Error::Lost));
            }
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
