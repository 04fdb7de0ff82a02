//! The broker server: listeners feeding one [`Broker`] core.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::broker::{Action, Broker, BrokerConfig, ConnId};
use mqtt_sansio::session::BrokerExport;
use mqtt_sansio::{ConnectReturnCode, Profile};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Error;
use crate::clock::Clock;
use crate::store::{BrokerStore, StoreError};
use crate::transport::{Accept, Accepted, Stream};
pub use accept::Listener;
use accept::accept_loop;
use commit::Commits;

mod accept;
mod commit;
mod conn;
mod counters;
mod link;
mod log;
mod peer;
mod read;
mod sys;
mod tcp;
use conn::{NotQueued, Outbox, write_loop};
pub use counters::Counters;
use link::{Io, Link, LinkRare};
use log::EventLog;
use peer::{Current, WithPeer};
pub use peer::{Peer, PeerCheck, cn_is_client_id};
use read::read_loop;
use tcp::{Read, ReadyList, SpareBuffers, TcpLink};

/// The most inputs handled before the broker's actions are carried out.
const MAX_BATCH: usize = 256;
/// The buffer the core task reads plain TCP connections into, one at a time. It also
/// bounds how far a publisher the broker pauses can overshoot a queue's bound: by the
/// rest of the read that carried the message over it.
const TCP_READ_BUF: usize = 16 * 1024;
/// The most reads of one plain TCP connection in a round of the core task: one that
/// has more is listed again, behind the others that are ready.
const READS_PER_ROUND: usize = 4;
/// How long a closing connection may take to flush what was queued for it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the TLS and WebSocket handshakes of a new connection may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The default of [`Server::set_max_connect_size`]: 64 KiB.
pub const DEFAULT_MAX_CONNECT_SIZE: usize = 64 * 1024;

/// A broker server: one [`Broker`] core behind any number of listeners.
///
/// ```no_run
/// # async fn demo() -> Result<(), mqtt_sansio_tokio::Error> {
/// use mqtt_sansio::{BrokerConfig, Profile};
/// use mqtt_sansio_tokio::{Listener, Server};
///
/// let mut server = Server::new(Profile::mqtt311(), BrokerConfig::default());
/// let addr = server.listen(Listener::Tcp("127.0.0.1:1883".parse().unwrap())).await?;
/// println!("listening on {addr}");
/// let counters = server.counters();
/// server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// println!("{} connections served", counters.accepted());
/// # Ok(()) }
/// ```
pub struct Server {
    profile: Profile,
    config: BrokerConfig,
    listeners: Vec<(TcpListener, Accept, &'static str)>,
    check: Option<Arc<PeerCheck>>,
    write_queue: usize,
    max_connect_size: usize,
    counters: Counters,
    /// With a data directory: the store, what it held, and the clock its instants use.
    store: Option<(BrokerStore, BrokerExport, Clock)>,
    sys_interval: Option<Duration>,
}

impl Server {
    /// A server for a broker following `profile` with `config`; it listens nowhere yet.
    /// Sessions live in memory: `report_changes` is turned off.
    pub fn new(profile: Profile, config: BrokerConfig) -> Server {
        Server {
            profile,
            config,
            listeners: Vec::new(),
            check: None,
            write_queue: 1024,
            max_connect_size: DEFAULT_MAX_CONNECT_SIZE,
            counters: Counters::default(),
            store: None,
            sys_interval: None,
        }
    }

    /// Keeps the durable state (persistent sessions, their subscriptions and messages,
    /// inbound QoS 2 ids, expiry deadlines, retained messages) in `dir`, restoring what
    /// it holds (see [`store`](crate::store)). From then on a PUBACK or PUBREC reaches a
    /// socket only after the changes that store its message are committed; the changes
    /// of the inputs that arrive together are committed as one transaction. Refused,
    /// naming the file, when the directory holds a damaged store.
    pub fn data_dir(&mut self, dir: impl AsRef<std::path::Path>) -> Result<(), StoreError> {
        let clock = Clock::new();
        let origin_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (store, export) = BrokerStore::open(dir.as_ref(), origin_ms)?;
        // The core checks the export's own rules; a store that breaks them is damaged.
        if let Err(e) = Broker::import(
            self.profile.clone(),
            self.config.clone(),
            export.clone(),
            clock.now(),
        ) {
            return Err(StoreError::Damaged {
                path: dir.as_ref().to_path_buf(),
                detail: format!("its state is not a broker's: {e}"),
            });
        }
        self.store = Some((store, export, clock));
        Ok(())
    }

    /// Binds a listener (port 0: any free port) and returns the address it is bound to.
    pub async fn listen(&mut self, listener: Listener) -> Result<SocketAddr, Error> {
        let (addr, accept, kind) = listener.parts();
        let tcp = TcpListener::bind(addr).await?;
        let bound = tcp.local_addr()?;
        self.listeners.push((tcp, accept, kind));
        Ok(bound)
    }

    /// Checks every CONNECT against its connection, for example its client certificate
    /// ([`cn_is_client_id`]).
    pub fn check_peer(
        &mut self,
        check: impl Fn(&Peer, &str) -> Result<(), ConnectReturnCode> + Send + Sync + 'static,
    ) {
        self.check = Some(Arc::new(check));
    }

    /// The most encoded packets waiting for one connection's socket (default 1024; at
    /// least 1). A packet that finds the queue full drops the connection, as the network
    /// failing would: a client that stops reading costs a bounded amount of memory.
    pub fn set_write_queue(&mut self, packets: usize) {
        self.write_queue = packets.max(1);
    }

    /// The largest Remaining Length a connection's first packet may announce (default
    /// [`DEFAULT_MAX_CONNECT_SIZE`]). The first packet must be the CONNECT
    /// (MQTT-3.1.0-1), so this bounds what a peer that has not authenticated can make the
    /// server hold: a larger one closes the connection as soon as its fixed header is
    /// read, before any of the bytes it announces are buffered, and counts in
    /// [`Counters::connect_too_large`]. The core refuses any CONNECT above
    /// [`MAX_CONNECT_REMAINING_LENGTH`](mqtt_sansio::codec::MAX_CONNECT_REMAINING_LENGTH)
    /// (327 695 bytes) whatever this limit; raise this
    /// one for clients whose CONNECT carries a larger will message or password. The
    /// CONNECT timeout still closes a connection that sends too slowly.
    pub fn set_max_connect_size(&mut self, bytes: usize) {
        self.max_connect_size = bytes;
    }

    /// Publishes the broker's counters as retained messages under `$SYS/broker/...`
    /// when the server starts and then every `interval` (`None` or zero, the default:
    /// never). The topics are listed in the crate's README; they are never written to
    /// the [data directory](Self::data_dir), and a profile that reserves the `$` topics
    /// (AWS IoT Core's) gets none.
    pub fn set_sys_interval(&mut self, interval: Option<Duration>) {
        self.sys_interval = interval;
    }

    /// The server's counters; they keep counting while [`run`](Self::run) runs.
    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// Serves until `shutdown` completes; then stops accepting, closes every connection
    /// after flushing what was queued for it (for at most 5 s) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let (store, restored, clock) = match self.store {
            Some((store, export, clock)) => (Some(store), Some(export), clock),
            None => (None, None, Clock::new()),
        };
        let mut config = self.config;
        // Durable-state changes are reported (and committed) only with a store; without
        // one, sessions live in memory.
        config.connection.report_changes = store.is_some();
        let current = self.check.map(|check| {
            let current: Current = Arc::default();
            config.connection.authorizer = Arc::new(WithPeer {
                inner: config.connection.authorizer.clone(),
                check,
                current: current.clone(),
            });
            current
        });
        let sys = sys::Sys::new(self.sys_interval, &self.profile);
        let (input_tx, input_rx) = mpsc::channel::<Input>(1024);
        let mut accepting = Vec::new();
        for (tcp, accept, kind) in self.listeners {
            accepting.push(tokio::spawn(accept_loop(
                tcp,
                accept,
                kind,
                input_tx.clone(),
                self.counters.clone(),
            )));
        }
        let broker = match restored {
            Some(export) => Broker::import(self.profile, config, export, clock.now())
                .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?,
            None => Broker::new(self.profile, config),
        };
        let core = Core {
            broker,
            commits: store.map(Commits::new),
            store_failed: None,
            links: BTreeMap::new(),
            clock,
            input: input_tx,
            write_queue: self.write_queue,
            max_connect_size: self.max_connect_size,
            next_conn: 0,
            closing: Vec::new(),
            ready: Arc::default(),
            listed: Vec::new(),
            core_waker: None,
            emptied: Vec::new(),
            read_buf: vec![0; TCP_READ_BUF].into_boxed_slice(),
            spare: SpareBuffers::default(),
            dirty: Vec::new(),
            current,
            counters: self.counters,
            log: EventLog::new(std::time::Instant::now()),
            sys,
        };
        // The core runs as a task of its own, not in the caller's future: a task that
        // a socket's readiness wakes is polled next, while the future given to
        // `block_on` is polled only after the runtime looked at its I/O driver again.
        let (stop, stopped) = oneshot::channel();
        let mut serving = tokio::spawn(core.serve(input_rx, accepting, stopped));
        tokio::pin!(shutdown);
        let result = tokio::select! {
            result = &mut serving => result,
            () = &mut shutdown => {
                let _ = stop.send(());
                serving.await
            }
        };
        result.map_err(|e| Error::Io(std::io::Error::other(e)))?
    }
}

/// What the listeners and the TLS and WebSocket connections' tasks tell the core task.
enum Input {
    /// A connection whose handshakes are done.
    Open(Box<Accepted>, Peer),
    /// Bytes read from a connection.
    Bytes(ConnId, Bytes),
    /// The transport ended: end of stream or an error.
    Lost(ConnId, String),
    /// The connection's writer wrote everything the core task had left for it, as
    /// asked.
    Writable(ConnId),
}

/// The task that owns the broker.
struct Core {
    broker: Broker,
    /// With a data directory: where changes are committed, and the actions that wait
    /// for their commit.
    commits: Option<Commits>,
    /// A commit failed: the server stops, acknowledging nothing more.
    store_failed: Option<StoreError>,
    links: BTreeMap<ConnId, Link>,
    clock: Clock,
    input: mpsc::Sender<Input>,
    write_queue: usize,
    /// The pre-authentication limit on the first packet's Remaining Length.
    max_connect_size: usize,
    next_conn: u64,
    /// Tasks of closed connections, still flushing.
    closing: Vec<JoinHandle<()>>,
    /// The plain TCP connections whose socket may be ready.
    ready: Arc<ReadyList>,
    /// Those taken off the ready list, being served (kept for its allocation).
    listed: Vec<ConnId>,
    /// The waker the core task gave the ready list last.
    core_waker: Option<std::task::Waker>,
    /// Connections whose socket a short read emptied in this round, to read once more
    /// after the answers are written.
    emptied: Vec<ConnId>,
    /// What a plain TCP connection's read brings.
    read_buf: Box<[u8]>,
    /// Write buffers of TCP connections that had everything written.
    spare: SpareBuffers,
    /// The connections with packets queued since the last flush.
    dirty: Vec<ConnId>,
    /// The peer the [`PeerCheck`] sees, when there is one.
    current: Option<Current>,
    counters: Counters,
    log: EventLog,
    /// The `$SYS` topics' schedule.
    sys: sys::Sys,
}

impl Core {
    /// Serves until `stop` fires (or its sender is dropped), then shuts down.
    async fn serve(
        mut self,
        mut input_rx: mpsc::Receiver<Input>,
        accepting: Vec<JoinHandle<()>>,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<(), Error> {
        // One timer for the broker's deadlines and the `$SYS` topics. It is set again
        // only when the next deadline comes before the one it is set for: when it moves
        // later (a keep-alive renewed by a packet), the timer fires early, to no effect,
        // and is set for the new one then.
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        let mut armed: Option<tokio::time::Instant> = None;
        loop {
            let broker = self.broker.poll_timeout().map(|t| self.clock.to_tokio(t));
            let log = self.log.due().map(tokio::time::Instant::from_std);
            if let Some(at) = [broker, self.sys.due(), log].into_iter().flatten().min() {
                if armed.is_none_or(|armed| at < armed) {
                    timer.as_mut().reset(at);
                    armed = Some(at);
                }
            }
            // In this order, without drawing lots: stopping and a finished commit first
            // (they cost little while they wait), then the sockets, the timer and the
            // channel. A round of the sockets runs the timer too once it has fired, so
            // that busy sockets cannot hold it back, and it takes the channel's inputs
            // (new connections, TLS and WebSocket bytes) for the same reason. The timer
            // is polled only when no socket is ready: once per wake-up, not twice.
            tokio::select! {
                biased;
                _ = &mut stop => break,
                done = commit::committed(&mut self.commits) => self.on_committed(done),
                () = std::future::poll_fn(|cx| self.ready.poll_take(cx, &mut self.listed, &mut self.core_waker)) => {
                    self.take_inputs(&mut input_rx);
                    self.on_ready();
                    if armed.is_some() && timer.is_elapsed() {
                        armed = None;
                        self.on_timer();
                    }
                    if !self.ready.is_empty() {
                        // Connections with more to read, listed again: the runtime
                        // looks at the other tasks and the sockets first.
                        tokio::task::yield_now().await;
                    }
                }
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.on_timer();
                }
                Some(input) = input_rx.recv() => {
                    // The inputs that are there already form one batch: one commit.
                    self.on_input(input);
                    self.take_inputs(&mut input_rx);
                    self.drain();
                }
            }
            if let Some(e) = self.store_failed.take() {
                tracing::error!("stopping: the store failed: {e}");
                for task in accepting {
                    task.abort();
                }
                drop(input_rx);
                self.shutdown().await;
                return Err(Error::Io(std::io::Error::other(e)));
            }
        }
        for task in accepting {
            task.abort();
        }
        // A reader task waiting to hand bytes over stops waiting.
        drop(input_rx);
        self.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }

    fn open(&mut self, accepted: Accepted, peer: Peer) {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        if let Err(e) = self.broker.open(self.clock.now(), conn) {
            tracing::warn!("conn {}: cannot open: {e:?}", conn.0);
            return;
        }
        tracing::info!(
            "conn {}: accepted from {} over {}",
            conn.0,
            peer.addr,
            peer.transport
        );
        let io = match accepted.stream {
            Stream::Tcp(tcp) => {
                Io::Tcp(TcpLink::new(conn, tcp, &self.ready, self.max_connect_size))
            }
            Stream::Split(reader, writer) => {
                let outbox = Arc::new(Outbox::default());
                let reader = tokio::spawn(read_loop(
                    conn,
                    reader,
                    outbox.clone(),
                    self.input.clone(),
                    self.max_connect_size,
                    self.counters.clone(),
                ));
                let writer = tokio::spawn(write_loop(
                    conn,
                    writer,
                    outbox.clone(),
                    self.input.clone(),
                    self.counters.clone(),
                ));
                Io::Split {
                    outbox,
                    reader,
                    writer,
                }
            }
        };
        Counters::add(&self.counters.0.open, 1);
        let peer = self.current.is_some().then(|| Arc::new(peer));
        self.links.insert(conn, Link::new(io, peer));
    }

    fn on_input(&mut self, input: Input) {
        let now = self.clock.now();
        match input {
            Input::Open(accepted, peer) => self.open(*accepted, peer),
            Input::Bytes(conn, bytes) => {
                Counters::add(&self.counters.0.bytes_received, bytes.len() as u64);
                if let Some(link) = self.links.get_mut(&conn) {
                    if link.stashed() || self.broker.is_paused(conn) {
                        link.rare_mut().stash.push_back(bytes);
                        return;
                    }
                }
                if let Some(link) = self.links.get(&conn) {
                    note_peer(&self.current, &link.rare);
                }
                self.broker.handle_bytes(now, conn, &bytes);
            }
            Input::Writable(conn) => self.broker.writable(now, conn),
            Input::Lost(conn, why) => self.lost(conn, why),
        }
    }

    /// Handles the inputs waiting in the channel, [`MAX_BATCH`] at most.
    fn take_inputs(&mut self, input_rx: &mut mpsc::Receiver<Input>) {
        for _ in 0..MAX_BATCH {
            let Ok(input) = input_rx.try_recv() else {
                break;
            };
            self.on_input(input);
        }
    }

    /// The connection's transport ended.
    fn lost(&mut self, conn: ConnId, why: String) {
        let now = self.clock.now();
        if let Some(mut link) = self.links.remove(&conn) {
            tracing::info!("conn {}: closed by the network: {why}", conn.0);
            // What it sent before it went is handled, paused or not.
            while let Some(bytes) = link.unstash() {
                self.broker.handle_bytes(now, conn, &bytes);
            }
            self.finish(link);
            self.broker.connection_lost(now, conn);
        }
    }

    /// Serves the plain TCP connections whose sockets may be ready, then carries out
    /// what the broker has to do.
    fn on_ready(&mut self) {
        let now = self.clock.now();
        let listed = std::mem::take(&mut self.listed);
        self.listed = self.serve_each(now, listed, true);
        self.drain();
        // The sockets a short read emptied are read once more now that the answers are
        // written (they go out first): the read finds nothing and keeps the waker, or
        // it finds what came meanwhile.
        if !self.emptied.is_empty() {
            let emptied = std::mem::take(&mut self.emptied);
            self.emptied = self.serve_each(now, emptied, false);
            self.drain();
        }
    }

    /// [`serve_tcp`](Self::serve_tcp) for each of `conns`; gives the list back empty,
    /// for its allocation.
    fn serve_each(
        &mut self,
        now: mqtt_sansio::Instant,
        mut conns: Vec<ConnId>,
        defer: bool,
    ) -> Vec<ConnId> {
        for &conn in &conns {
            self.serve_tcp(now, conn, defer);
        }
        conns.clear();
        conns
    }

    /// Writes what waits for a listed plain TCP connection, then reads it unless the
    /// broker paused it: until the socket is empty, or [`READS_PER_ROUND`] times. With
    /// `defer`, a read that empties the socket (a short read) ends it, and the
    /// connection goes on `emptied` for the read that keeps its waker.
    fn serve_tcp(&mut self, now: mqtt_sansio::Instant, conn: ConnId, defer: bool) {
        let Some(Link {
            io: Io::Tcp(tcp),
            rare,
            ..
        }) = self.links.get_mut(&conn)
        else {
            return;
        };
        tcp.unlist();
        let mut lost = None;
        let mut writable = false;
        if tcp.has_output() {
            match tcp.write(&self.counters, &mut self.spare) {
                Ok(done) => writable = done && std::mem::take(&mut tcp.notify),
                Err(e) => lost = Some(e.to_string()),
            }
        }
        let mut reads = 0;
        while lost.is_none() && !self.broker.is_paused(conn) {
            if reads == READS_PER_ROUND {
                tcp.relist();
                break;
            }
            reads += 1;
            match tcp.read(&mut self.read_buf, &self.counters) {
                Read::Pending => break,
                Read::Held => {}
                Read::Lost(why) => lost = Some(why),
                Read::Bytes(bytes) => {
                    Counters::add(&self.counters.0.bytes_received, bytes.len() as u64);
                    note_peer(&self.current, rare);
                    let emptied = bytes.len() < TCP_READ_BUF;
                    self.broker.handle_bytes(now, conn, bytes);
                    if emptied && defer {
                        self.emptied.push(conn);
                        break;
                    }
                }
                Read::First(bytes) => {
                    Counters::add(&self.counters.0.bytes_received, bytes.len() as u64);
                    note_peer(&self.current, rare);
                    self.broker.handle_bytes(now, conn, &bytes);
                }
            }
        }
        match lost {
            Some(why) => self.lost(conn, why),
            None if writable => self.broker.writable(now, conn),
            None => {}
        }
    }

    /// The timer fired: what is due is done.
    fn on_timer(&mut self) {
        // The drops of a second gone by, not logged one by one, are counted now.
        self.log.tick(std::time::Instant::now());
        if self
            .sys
            .due()
            .is_some_and(|at| at <= tokio::time::Instant::now())
        {
            self.publish_sys();
        }
        self.broker.handle_timeout(self.clock.now());
        self.drain();
    }

    /// Closes a connection after what is queued for it is written.
    fn finish(&mut self, link: Link) {
        Counters::add_neg(&self.counters.0.open);
        self.closing.retain(|h| !h.is_finished());
        if let Some(flushing) = link.close(&self.counters) {
            self.closing.push(flushing);
        }
    }

    /// Drops a connection at once, without writing what is queued: its socket failed or
    /// its client stopped reading.
    fn drop_link(&mut self, conn: ConnId) {
        if let Some(link) = self.links.remove(&conn) {
            Counters::add_neg(&self.counters.0.open);
            link.abort();
        }
        self.broker.connection_lost(self.clock.now(), conn);
    }

    /// Carries out every action the broker has, in order; with a store, the changes
    /// among them are noted and committed in batches, and an action that waits for a
    /// commit is held until it is durable (see [`commit`]). The packets queued meanwhile
    /// are written once no action is left.
    fn drain(&mut self) {
        loop {
            while let Some(action) = self.broker.poll_action() {
                // Handed on as it came: each move of an action is a copy of it.
                match &mut self.commits {
                    None => self.act(action),
                    Some(commits) => {
                        if let Some(action) = commits.route(action) {
                            self.act(action);
                        }
                    }
                }
            }
            if let Some(commits) = &mut self.commits {
                if let Err(e) = commits.start() {
                    // Nothing held may go out: it may acknowledge what is lost.
                    self.store_failed = Some(e);
                    return;
                }
                let mut released = false;
                while let Some(action) = self.commits.as_mut().and_then(Commits::pop_ready) {
                    released = true;
                    self.act(action);
                }
                if released {
                    continue;
                }
            }
            if self.dirty.is_empty() {
                return;
            }
            // A failed write makes the broker lose the connection: more actions.
            self.flush();
        }
    }

    /// A commit finished: what waited for it goes out, and the next batch is committed.
    fn on_committed(&mut self, done: Result<(), StoreError>) {
        match done {
            Ok(()) => self.drain(),
            Err(e) => self.store_failed = Some(e),
        }
    }

    /// Writes what was queued for each connection, as far as its socket takes it
    /// without waiting (plain TCP; the rest when it is writable), or hands it to the
    /// connection's writer task.
    fn flush(&mut self) {
        for conn in std::mem::take(&mut self.dirty) {
            let Some(link) = self.links.get_mut(&conn) else {
                continue;
            };
            link.dirty = false;
            // Retained messages still wait for this connection: they follow as it
            // drains, now if the socket took everything, else when its task has.
            let wants = self.broker.wants_writable(conn);
            match link.flush(wants, &self.counters, &mut self.spare) {
                Ok(true) if wants => self.broker.writable(self.clock.now(), conn),
                Ok(_) => {}
                Err(e) => {
                    tracing::info!("conn {}: closed by the network: {e}", conn.0);
                    self.drop_link(conn);
                }
            }
        }
    }

    fn act(&mut self, action: Action) {
        // Looked at in place: moving the packet out would copy it.
        match &action {
            &Action::Send { conn, ref packet } => {
                let Some(link) = self.links.get_mut(&conn) else {
                    return;
                };
                match link.push(packet, self.write_queue, &self.counters, &mut self.spare) {
                    Ok(()) => {
                        Counters::add(&self.counters.0.packets_sent, 1);
                        if !link.dirty {
                            link.dirty = true;
                            self.dirty.push(conn);
                        }
                    }
                    Err(NotQueued::Encode(e)) => {
                        tracing::error!("conn {}: cannot encode {packet:?}: {e}", conn.0);
                    }
                    Err(NotQueued::Full) => {
                        tracing::warn!("conn {}: dropped: write queue full", conn.0);
                        Counters::add(&self.counters.0.slow_dropped, 1);
                        self.drop_link(conn);
                    }
                    Err(NotQueued::Broken(e)) => {
                        tracing::info!("conn {}: closed by the network: {e}", conn.0);
                        self.drop_link(conn);
                    }
                }
            }
            &Action::Close { conn, reason } => {
                tracing::info!("conn {}: closed by the broker: {reason:?}", conn.0);
                if let Some(link) = self.links.remove(&conn) {
                    self.finish(link);
                }
            }
            &Action::Pause { conn } | &Action::Resume { conn } => {
                let paused = matches!(action, Action::Pause { .. });
                tracing::debug!("conn {}: reading paused={paused}", conn.0);
                if paused {
                    Counters::add(&self.counters.0.paused, 1);
                }
                if let Some(link) = self.links.get(&conn) {
                    link.set_paused(paused);
                }
                if !paused {
                    self.unstash(conn);
                }
            }
            Action::Event(event) => self.log.event(event, std::time::Instant::now()),
            // Noted by `drain` with a store; without one, state lives in memory.
            Action::Change(_) => {}
        }
    }

    /// Hands a resumed connection the bytes read before its pause, until it is paused
    /// again.
    fn unstash(&mut self, conn: ConnId) {
        let now = self.clock.now();
        while !self.broker.is_paused(conn) {
            let Some(bytes) = self.links.get_mut(&conn).and_then(Link::unstash) else {
                return;
            };
            self.broker.handle_bytes(now, conn, &bytes);
        }
    }

    async fn shutdown(mut self) {
        self.log.finish();
        self.log_summary();
        if let Some(commits) = &mut self.commits {
            // The changes noted so far are committed; what waited for them goes out
            // before the connections close.
            match commits.commit_all().await {
                Ok(()) => {
                    while let Some(action) = self.commits.as_mut().and_then(Commits::pop_ready) {
                        self.act(action);
                    }
                }
                Err(e) => tracing::error!("the last commit failed: {e}"),
            }
        }
        tracing::info!("shutting down: closing {} connection(s)", self.links.len());
        let links = std::mem::take(&mut self.links);
        for (_, link) in links {
            self.finish(link);
        }
        for h in self.closing.drain(..) {
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, h).await;
        }
    }
}

/// Tells the [`PeerCheck`] which connection's bytes the broker is about to handle.
fn note_peer(current: &Option<Current>, rare: &Option<Box<LinkRare>>) {
    if let Some(current) = current {
        let mut current = current.lock().unwrap_or_else(|p| p.into_inner());
        *current = rare.as_ref().and_then(|r| r.peer.clone());
    }
}
