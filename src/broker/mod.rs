//! A sans-I/O broker: many connections, sessions by client id, routing, retained
//! messages and wills, still without touching a socket or a clock.
//!
//! The [`Broker`] owns one [`Server`] per connection and the state they share: the
//! sessions (online and stored), the subscription index, the retained messages (a
//! topic trie, [`RetainedStore`]) and, where the [`Profile`] has them, the
//! shared-subscription groups and AWS IoT Core's lifecycle events and CONNECT quota.
//! `state` exports and imports what outlives a connection.

mod conns;
mod lifecycle;
mod pressure;
mod retry;
mod route;
mod shared;
mod state;
mod stats;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::packet::{Packet, PacketType};
use crate::profile::Profile;
use crate::server::{
    Action as ServerAction, CloseReason, ConnectRequest, Ignored, Message, PolicyViolation, Server,
    ServerConfig, ServerEvent, ServerSession,
};
use crate::session::BrokerChange;
use crate::time::Instant;
use crate::topic::{RetainedStore, SubscriptionIndex};
use crate::types::{MqttString, PacketId, TopicFilter};

use conns::{Conn, Conns};
pub use pressure::QueueFullPolicy;
pub use stats::{BrokerStats, DropCounts};

/// The caller's name for one network connection. The broker never invents one: the
/// caller picks a fresh id for every connection it [`open`](Broker::open)s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Why a message was not delivered to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The session's queue held its configured maximum of messages
    /// ([`ServerConfig::max_queued`]).
    QueueFull,
    /// The message would have taken the bytes queued in the session beyond
    /// [`ServerConfig::max_queued_bytes`].
    QueueBytesFull,
    /// The message would have taken the bytes queued over every session beyond
    /// [`BrokerConfig::max_queued_bytes_total`].
    BudgetFull,
    /// A QoS 0 message for a session whose client is offline: 3.1.1 lets a server keep
    /// such messages (MQTT-3.1.2-5) but does not require it, and this broker does not.
    OfflineQos0,
    /// The message was sent with `packet_id` and not acknowledged within the profile's
    /// [`qos1_retry_limit`](crate::profile::Quotas::qos1_retry_limit) of its first
    /// sending (AWS IoT Core: an hour); it left the session, which will not resend it.
    RetryExpired {
        /// The packet id it had.
        packet_id: PacketId,
    },
}

/// Something the broker's owner may want to log or count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerEvent {
    /// A CONNECT was accepted on `conn` for `client_id` (which the broker assigned if the
    /// client sent an empty one).
    Connected {
        /// The connection.
        conn: ConnId,
        /// The client id in effect.
        client_id: MqttString<Bytes>,
        /// Whether a stored session was resumed.
        session_present: bool,
    },
    /// A message for `client_id` was dropped by a bound.
    Dropped {
        /// The session that did not get it.
        client_id: MqttString<Bytes>,
        /// The message, as it would have been delivered.
        message: Message,
        /// Which bound.
        reason: DropReason,
    },
    /// A stored session reached the profile's expiry and was deleted.
    SessionExpired {
        /// Its client id.
        client_id: MqttString<Bytes>,
    },
    /// The profile made the broker ignore a request on `conn`.
    Ignored {
        /// The connection.
        conn: ConnId,
        /// What was ignored.
        what: Ignored,
    },
    /// A retained message for a new topic was not stored: the retained store held
    /// [`BrokerConfig::max_retained`] messages. It was still routed.
    RetainedNotStored {
        /// The message.
        message: Message,
    },
    /// A CONNECT on `conn` was refused because the broker held
    /// [`BrokerConfig::max_sessions`] sessions.
    SessionLimit {
        /// The connection.
        conn: ConnId,
    },
    /// The authorizer made the broker acknowledge and drop a PUBLISH on `conn`.
    Discarded {
        /// The connection.
        conn: ConnId,
        /// The message.
        message: Message,
    },
    /// A message for a shared-subscription group was dropped by a bound: every member
    /// was offline and the group's queue was full (or the message was QoS 0), or the
    /// group's last member left with messages queued.
    SharedDropped {
        /// The group's filter, `$share/{ShareName}/{filter}`.
        group: TopicFilter<Bytes>,
        /// The message.
        message: Message,
        /// Which bound.
        reason: DropReason,
    },
    /// An acknowledgement on `conn` for an id with nothing of its kind in flight. It
    /// was ignored.
    UnexpectedAck {
        /// The connection.
        conn: ConnId,
        /// The kind of the acknowledgement.
        packet_type: PacketType,
        /// Its packet id.
        packet_id: PacketId,
    },
}

/// What the broker asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write `packet` to connection `conn`.
    Send {
        /// The connection.
        conn: ConnId,
        /// The packet.
        packet: Packet<Bytes>,
    },
    /// Close connection `conn`; the broker has forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// Stop reading connection `conn` (keep writing to it) until [`Action::Resume`]:
    /// its messages would overflow a queue ([`QueueFullPolicy::Backpressure`]). Bytes
    /// already read may still be handed in.
    Pause {
        /// The connection.
        conn: ConnId,
    },
    /// Read connection `conn` again.
    Resume {
        /// The connection.
        conn: ConnId,
    },
    /// Something happened.
    Event(BrokerEvent),
    /// The durable state changed (only with
    /// [`ServerConfig::report_changes`](crate::server::ServerConfig::report_changes)):
    /// applied to the last [`Broker::export`], the changes give the current one. Make
    /// each durable before carrying out the actions that follow it: a PUBACK or PUBREC
    /// to a publisher always comes after the changes that store its message.
    Change(BrokerChange),
}

/// Settings of a broker: those of each connection, and bounds on what the broker keeps
/// for all of them.
#[derive(Debug, Clone, Default)]
pub struct BrokerConfig {
    /// Applied to every connection (queue and inflight bounds, authorizer, …).
    pub connection: ServerConfig,
    /// Most sessions (connected or stored) at once; a CONNECT that would create one
    /// more is refused with CONNACK 3, server unavailable. `None`: no bound.
    pub max_sessions: Option<usize>,
    /// Most retained messages (one per topic); a retained PUBLISH to a new topic beyond
    /// it is routed but not stored, and reported. `None`: no bound.
    pub max_retained: Option<usize>,
    /// Most bytes (topic and payload) queued over every session, online or stored,
    /// beyond their inflight windows: the queues' memory budget. `None`: no bound.
    pub max_queued_bytes_total: Option<usize>,
    /// What a message beyond a queue's bound (in messages, in bytes, or this budget)
    /// does: dropped and reported, or admitted while its publisher is throttled.
    pub queue_full: QueueFullPolicy,
}

impl From<ServerConfig> for BrokerConfig {
    fn from(connection: ServerConfig) -> Self {
        BrokerConfig {
            connection,
            ..BrokerConfig::default()
        }
    }
}

/// The caller named a connection that is already open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnIdInUse(pub ConnId);

impl core::fmt::Display for ConnIdInUse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "connection id {} is already open", self.0.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConnIdInUse {}

#[derive(Debug)]
struct Stored {
    session: ServerSession,
    expires: Option<Instant>,
}

/// Many MQTT connections, their sessions and the routing between them, without I/O.
///
/// # Driving a broker
///
/// The caller owns the sockets and the clock. It names each connection with a
/// [`ConnId`] of its choice and tells the broker what happens:
///
/// - [`open`](Broker::open) when a connection is accepted,
/// - [`handle_bytes`](Broker::handle_bytes) with whatever bytes arrived on it (any split),
/// - [`connection_lost`](Broker::connection_lost) when the transport ends,
/// - [`handle_timeout`](Broker::handle_timeout) when the instant given by
///   [`poll_timeout`](Broker::poll_timeout) is reached.
///
/// After **every** input, drain [`poll_action`](Broker::poll_action) until it returns
/// `None` (write each `Send` to its connection, close each `Close`d one, log events),
/// then re-arm the timer with [`poll_timeout`](Broker::poll_timeout). Time is an input
/// ([`Instant`]); the same inputs always give the same actions in the same order.
/// Under [`QueueFullPolicy::Backpressure`], also stop reading a connection on
/// [`Action::Pause`] (keeping what was read and not handed in yet) until
/// [`Action::Resume`].
///
/// ```
/// use mqtt_sansio::broker::{Action, Broker, ConnId};
/// use mqtt_sansio::server::ServerConfig;
/// use mqtt_sansio::{
///     Connect, Instant, MqttString, Packet, Profile, Publish, QoS, QosPid, Subscribe,
///     TopicFilter, TopicName,
/// };
///
/// fn connect(id: &'static str) -> Packet<bytes::Bytes> {
///     Packet::Connect(Connect {
///         client_id: MqttString::from_static(id).unwrap(),
///         clean_session: true,
///         keep_alive: 60,
///         will: None,
///         login: None,
///     })
/// }
///
/// let mut broker = Broker::new(Profile::mqtt311(), ServerConfig::default());
/// let (sub, publ) = (ConnId(1), ConnId(2));
/// let now = Instant::ZERO;
/// let mut sent = Vec::new();
/// let mut input = |b: &mut Broker, conn: ConnId, p: Packet<bytes::Bytes>| {
///     b.handle_bytes(now, conn, &p.to_bytes().unwrap());
///     while let Some(action) = b.poll_action() {
///         if let Action::Send { conn, packet } = action {
///             sent.push((conn, packet)); // write packet.to_bytes() to `conn`
///         }
///     }
/// };
/// broker.open(now, sub)?;
/// broker.open(now, publ)?;
/// input(&mut broker, sub, connect("sub"));
/// input(&mut broker, publ, connect("pub"));
/// let filter = TopicFilter::from_static("sensors/+")?;
/// let id = mqtt_sansio::PacketId::new(1).unwrap();
/// input(&mut broker, sub, Subscribe::new(id, &[(filter, QoS::AtLeastOnce)])?.into());
/// let topic = TopicName::from_static("sensors/t1")?;
/// input(&mut broker, publ, Publish::new(topic, QosPid::AtMostOnce, &b"21.5"[..]).into());
///
/// // The subscriber got CONNACK, SUBACK and the message, at QoS 0 as it was published.
/// let (conn, Packet::Publish(p)) = sent.last().unwrap() else { panic!() };
/// assert_eq!((*conn, p.topic.as_str(), &p.payload[..]), (sub, "sensors/t1", &b"21.5"[..]));
/// // Keep-alive deadlines: 1.5 × 60 s.
/// assert_eq!(broker.poll_timeout(), Some(Instant::from_secs(90)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Broker {
    /// Shared with every connection's [`Server`].
    profile: Arc<Profile>,
    config: BrokerConfig,
    /// `config.connection`, shared with every connection's [`Server`].
    connection: Arc<ServerConfig>,
    conns: Conns,
    online: BTreeMap<Bytes, ConnId>,
    stored: BTreeMap<Bytes, Stored>,
    expiries: BTreeSet<(Instant, Bytes)>,
    /// The subscriptions, keyed by the subscribers' numbers.
    index: SubscriptionIndex<route::Sid>,
    subscribers: route::Subscribers,
    retained: RetainedStore<Message>,
    pending: route::PendingRetained,
    shared: shared::SharedGroups,
    lifecycle: lifecycle::Lifecycle,
    connect_rate: crate::quota::ConnectRate,
    retry: retry::RetryDeadlines,
    pressure: pressure::Pressure,
    timers: BTreeSet<(Instant, ConnId)>,
    /// Connections (and their slots) that got something to send since they were last
    /// pumped; each once, as its `dirty` flag says.
    dirty: Vec<(ConnId, usize)>,
    /// Kept between routes and settles for their capacity.
    targets: Vec<route::Sid>,
    settling: Vec<(ConnId, usize)>,
    actions: VecDeque<Action>,
    next_assigned: u64,
    /// The counts of [`stats`](Broker::stats); its sizes are read from the tables,
    /// and `packets_sent` counts the packets other than PUBLISH (a delivery costs one
    /// increment).
    stats: BrokerStats,
}

impl Broker {
    /// An empty broker following `profile` (a [`ServerConfig`] converts into a
    /// [`BrokerConfig`] without broker-wide bounds).
    pub fn new(profile: Profile, config: impl Into<BrokerConfig>) -> Broker {
        let config = config.into();
        Broker {
            index: SubscriptionIndex::new(profile.hash_matches_parent),
            shared: shared::SharedGroups::new(profile.hash_matches_parent),
            lifecycle: lifecycle::Lifecycle::default(),
            connect_rate: Default::default(),
            retry: Default::default(),
            pressure: pressure::Pressure::new(&config),
            profile: Arc::new(profile),
            connection: Arc::new(config.connection.clone()),
            config,
            conns: Conns::default(),
            subscribers: route::Subscribers::default(),
            online: BTreeMap::new(),
            stored: BTreeMap::new(),
            expiries: BTreeSet::new(),
            retained: RetainedStore::new(),
            pending: Default::default(),
            timers: BTreeSet::new(),
            dirty: Vec::new(),
            targets: Vec::new(),
            settling: Vec::new(),
            actions: VecDeque::new(),
            next_assigned: 0,
            stats: BrokerStats::default(),
        }
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// A new network connection `conn`, which must send CONNECT first. Refused (nothing
    /// changes) if `conn` is already open.
    pub fn open(&mut self, now: Instant, conn: ConnId) -> Result<(), ConnIdInUse> {
        if self.conns.contains_key(&conn) {
            return Err(ConnIdInUse(conn));
        }
        let server = Server::open(now, self.profile.clone(), self.connection.clone());
        let slot = self.conns.insert(Conn {
            id: conn,
            server,
            accepted: None,
            armed: None,
            seen_bytes: 0,
        });
        self.arm(conn, slot);
        Ok(())
    }

    /// Bytes arrived on `conn`. Bytes for a connection that is not open are ignored.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(&conn) {
            self.stats.bytes_received += bytes.len() as u64;
            c.server.handle_bytes(now, bytes);
            self.pump(now, conn);
            self.settle(now);
            self.relieve(now);
        }
    }

    /// The transport of `conn` ended (without a `Close` asked by the broker): its will
    /// is published and its session stored or discarded.
    pub fn connection_lost(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.server.connection_lost(now);
            self.pump(now, conn);
            self.settle(now);
            self.relieve(now);
        }
    }

    /// The application closes `conn` (an administrator's kick, a shutdown): a `Close`
    /// action with [`CloseReason::Application`] follows, and the will is published.
    pub fn close(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.server.close_with(now, CloseReason::Application);
            self.pump(now, conn);
            self.settle(now);
            self.relieve(now);
        }
    }

    /// Time has passed: keep-alive and connect deadlines, session expiry, and the
    /// retry limit on unacknowledged QoS 1 messages.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, conn)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(c) = self.conns.get_mut(&conn) {
                c.armed = None;
                c.server.handle_timeout(now);
                self.pump(now, conn);
            }
        }
        while let Some((at, _)) = self.expiries.first() {
            if *at > now {
                break;
            }
            let Some((_, client)) = self.expiries.pop_first() else {
                break;
            };
            if let Some(st) = self.stored.remove(&client) {
                self.pressure.total -= st.session.queued_bytes().min(self.pressure.total);
                self.retry.forget(&client);
                self.unindex(&client, &st.session);
                self.change(BrokerChange::SessionDiscarded {
                    client_id: MqttString(client.clone()),
                });
                self.actions
                    .push_back(Action::Event(BrokerEvent::SessionExpired {
                        client_id: MqttString(client),
                    }));
            }
        }
        self.expire_stored_retries(now);
        self.settle(now);
        self.relieve(now);
    }

    /// The next action, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be
    /// called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conn = self.timers.first().map(|(t, _)| *t);
        let session = self.expiries.first().map(|(t, _)| *t);
        [conn, session, self.retry.first()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The number of open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The session of `client_id`, online or stored.
    pub fn session(&self, client_id: &str) -> Option<&ServerSession> {
        let key = client_id.as_bytes();
        if let Some(conn) = self.online.get(key) {
            return self.conns.get(conn).map(|c| c.server.session());
        }
        self.stored.get(key).map(|s| &s.session)
    }

    /// The retained message of `topic`, if any.
    pub fn retained(&self, topic: &str) -> Option<&Message> {
        self.retained.get(topic.as_bytes())
    }

    /// The number of messages waiting in the shared-subscription group `group`
    /// (`$share/{ShareName}/{filter}`) for one of its members to come online.
    pub fn shared_queued(&self, group: &str) -> usize {
        self.shared.queued(group.as_bytes())
    }

    /// The number of retained messages.
    pub fn retained_len(&self) -> usize {
        self.retained.len()
    }

    /// Puts connection `conn` (in `slot`) in the timers under its server's deadline.
    fn arm(&mut self, conn: ConnId, slot: usize) {
        let Some(c) = self.conns.at_mut(conn, slot) else {
            return;
        };
        let at = c.server.poll_timeout();
        if at == c.armed {
            return;
        }
        if let Some(old) = core::mem::replace(&mut c.armed, at) {
            self.timers.remove(&(old, conn));
        }
        if let Some(at) = at {
            self.timers.insert((at, conn));
        }
    }

    /// Pumps every connection that got something to send, in connection id order,
    /// until none is left.
    fn settle(&mut self, now: Instant) {
        let mut batch = core::mem::take(&mut self.settling);
        let mut next = 0;
        // A QoS 1 message sent under a retry limit starts its own deadline, which can
        // come before the connection's; without that limit, handing messages to a
        // connection leaves its deadline where it was.
        let rearm = self.profile.quotas.qos1_retry_limit.is_some();
        loop {
            if !self.dirty.is_empty() {
                // More to pump: in order with what is left of this batch.
                batch.drain(..next);
                batch.append(&mut self.dirty);
                batch.sort_unstable();
                next = 0;
            }
            let Some(&(conn, slot)) = batch.get(next) else {
                break;
            };
            next += 1;
            match self.conns.take_dirty(conn, slot) {
                // Only deliveries staged while it was quiet: its server is not reached.
                Some(true) => self.flush_staged(slot),
                // Only messages were handed to it since its last pump.
                Some(false) => self.pump_at(now, conn, slot, rearm),
                None => {}
            }
        }
        batch.clear();
        self.settling = batch;
    }

    /// Carries out the deliveries staged for `slot`, counted as sent.
    fn flush_staged(&mut self, slot: usize) {
        self.stats.messages_sent += self.conns.flush_staged(slot, &mut self.actions);
    }

    /// Carries out the actions of one connection's server, in order.
    fn pump(&mut self, now: Instant, conn: ConnId) {
        if let Some(slot) = self.conns.slot_of(conn) {
            self.pump_at(now, conn, slot, true);
        }
    }

    /// [`pump`](Self::pump) for connection `conn` in `slot`; `rearm` puts it back in
    /// the timers under its (possibly new) deadline.
    ///
    /// The deliveries staged for it while it was quiet go first: its server queued
    /// nothing before them. A connection still quiet has nothing else to do, and its
    /// server is not reached.
    fn pump_at(&mut self, now: Instant, conn: ConnId, slot: usize, rearm: bool) {
        match self.conns.begin_pump(conn, slot) {
            None => return,
            Some(true) => return self.flush_staged(slot),
            Some(false) => {}
        }
        let mut fed = false;
        loop {
            // Staged while a nested pump had left it quiet.
            self.flush_staged(slot);
            let Some(c) = self.conns.at_mut(conn, slot) else {
                return;
            };
            if c.server.is_closed() {
                // What the connection did before it closed is carried out while it is
                // still known (its subscriptions reach the index); from the close on,
                // it is forgotten, so that its will reaches its stored session, if any.
                let mut rest = Vec::new();
                while let Some(a) = c.server.poll_action() {
                    rest.push(a);
                }
                let reason = rest.iter().find_map(|a| match a {
                    ServerAction::Close(r) => Some(*r),
                    _ => None,
                });
                let mut detached = false;
                for a in rest {
                    let ends = matches!(
                        a,
                        ServerAction::Close(_) | ServerAction::Event(ServerEvent::Will(_))
                    );
                    if ends && !detached {
                        self.detach(now, conn, reason);
                        detached = true;
                    }
                    self.on_server_action(now, conn, a);
                }
                if !detached {
                    self.detach(now, conn, reason);
                }
                return;
            }
            match c.server.poll_action() {
                // Retained messages pending for the connection go after what it
                // had to do (a SUBACK first), as it has room; once per pump.
                None if !fed && self.feed_retained(now, conn, slot) => fed = true,
                None => break,
                Some(ServerAction::Send(packet @ Packet::Publish(_))) => {
                    // The common case, without a detour.
                    self.stats.messages_sent += 1;
                    self.actions.push_back(Action::Send { conn, packet });
                }
                Some(a) => self.on_server_action(now, conn, a),
            }
        }
        if self.pressure.bounded {
            self.account(conn, slot);
        }
        if rearm {
            self.arm(conn, slot);
        }
        let connected = self
            .conns
            .at_mut(conn, slot)
            .is_some_and(|c| c.server.is_connected());
        if connected && !self.pending.contains_key(&conn) {
            self.conns.set_quiet(conn, slot);
        }
    }

    /// Forgets a closed connection: its session is stored (persistent) or dropped with
    /// its subscriptions (clean). `reason` is why the server closed it (`None`: the
    /// transport ended).
    fn detach(&mut self, now: Instant, conn: ConnId, reason: Option<CloseReason>) {
        if let Some(slot) = self.conns.slot_of(conn) {
            self.flush_staged(slot);
        }
        let Some(mut c) = self.conns.remove(&conn) else {
            return;
        };
        self.stats.packets_received += c.server.packets_received();
        self.pending.remove(&conn);
        self.pressure.forget(conn);
        self.pressure.total -= c.seen_bytes.min(self.pressure.total);
        if let Some(m) = self.lifecycle.disconnected(now, conn, reason) {
            self.route(now, m);
        }
        if let Some(old) = c.armed.take() {
            self.timers.remove(&(old, conn));
        }
        let Some(clean) = c.accepted.take() else {
            return;
        };
        let client = c.server.client_id().0.clone();
        if self.online.get(&client) == Some(&conn) {
            self.online.remove(&client);
            self.subscribers.set_conn(&client, None);
        }
        let mut session = c.server.take_session().unwrap_or_default();
        if clean {
            // MQTT-3.1.2-6: a clean session ends with its connection.
            self.unindex(&client, &session);
        } else {
            // MQTT-3.1.2-4, MQTT-4.1.0-1: a persistent session outlives it.
            for change in session.session.take_changes() {
                self.change(BrokerChange::Session {
                    client_id: MqttString(client.clone()),
                    change,
                });
            }
            let expires = self.profile.session_expiry.map(|d| now + d);
            if let Some(at) = expires {
                self.expiries.insert((at, client.clone()));
                self.change(BrokerChange::SessionExpires {
                    client_id: MqttString(client.clone()),
                    at: Some(at),
                });
            }
            self.pressure.total += session.queued_bytes();
            self.stored
                .insert(client.clone(), Stored { session, expires });
            self.arm_retry(&client);
        }
    }

    fn unindex(&mut self, client: &Bytes, session: &ServerSession) {
        for (filter, _) in session.subscriptions() {
            self.remove_subscription(filter, client);
        }
    }

    fn client_of(&self, conn: ConnId) -> Option<Bytes> {
        self.conns
            .get(&conn)
            .filter(|c| c.accepted.is_some())
            .map(|c| c.server.client_id().0.clone())
    }

    fn on_server_action(&mut self, now: Instant, conn: ConnId, a: ServerAction) {
        match a {
            ServerAction::Send(packet) => {
                if matches!(packet, Packet::PubAck(_) | Packet::PubRec(_)) {
                    // The deliveries of the acknowledged message go out before the
                    // acknowledgement (a publisher waiting for it sends its next message
                    // while the subscribers' copies are on their way, not before), and
                    // what routing stored is reported before it.
                    self.settle(now);
                }
                match packet {
                    Packet::Publish(_) => self.stats.messages_sent += 1,
                    _ => self.stats.packets_sent += 1,
                }
                if let Some(packet) = self.pressure.hold(conn, packet) {
                    self.actions.push_back(Action::Send { conn, packet })
                }
            }
            ServerAction::Change(change) => {
                if let Some(client) = self.client_of(conn) {
                    self.change(BrokerChange::Session {
                        client_id: MqttString(client),
                        change,
                    });
                }
            }
            ServerAction::Close(reason) => self.actions.push_back(Action::Close { conn, reason }),
            ServerAction::Event(e) => match e {
                ServerEvent::Connect(req) => self.on_connect(now, conn, req),
                ServerEvent::Publish(m) => {
                    self.stats.messages_received += 1;
                    // The publisher a full queue throttles.
                    self.pressure.source = Some(conn);
                    self.route(now, m);
                    self.pressure.source = None;
                }
                ServerEvent::Will(m) => self.route(now, m),
                ServerEvent::Subscribed(list) => self.on_subscribed(now, conn, list),
                ServerEvent::Unsubscribed(list) => {
                    if let Some(client) = self.client_of(conn) {
                        for f in &list {
                            self.remove_subscription(f.as_bytes(), &client);
                        }
                        let topics: Vec<&str> = list.iter().map(|f| f.as_str()).collect();
                        if let Some(m) = self.lifecycle.subscriptions(now, conn, false, &topics) {
                            self.route(now, m);
                        }
                    }
                }
                ServerEvent::Ignored(what) => self
                    .actions
                    .push_back(Action::Event(BrokerEvent::Ignored { conn, what })),
                ServerEvent::Discarded(message) => {
                    self.stats.messages_received += 1;
                    self.actions
                        .push_back(Action::Event(BrokerEvent::Discarded { conn, message }))
                }
                ServerEvent::UnexpectedAck {
                    packet_type,
                    packet_id,
                } => self
                    .actions
                    .push_back(Action::Event(BrokerEvent::UnexpectedAck {
                        conn,
                        packet_type,
                        packet_id,
                    })),
                ServerEvent::RetryExpired { packet_id, message } => {
                    if let Some(client) = self.client_of(conn) {
                        let reason = DropReason::RetryExpired { packet_id };
                        self.dropped(&client, message, reason);
                    }
                }
            },
        }
    }

    fn assign_id(&mut self) -> MqttString<Bytes> {
        loop {
            self.next_assigned += 1;
            let id = Bytes::from(format!("auto-{}", self.next_assigned));
            if !self.online.contains_key(&id) && !self.stored.contains_key(&id) {
                return MqttString(id);
            }
        }
    }

    fn on_connect(&mut self, now: Instant, conn: ConnId, req: ConnectRequest) {
        if self.conns.get(&conn).is_none_or(|c| c.server.is_closed()) {
            return;
        }
        let (client_id, assigned) = if req.client_id.is_empty() {
            // MQTT-3.1.3-6: the server assigns a unique id.
            (self.assign_id(), true)
        } else {
            (req.client_id.clone(), false)
        };
        let key = client_id.0.clone();
        if !self.connect_rate.admit(now, &self.profile.quotas, &key) {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.server
                    .close_with(now, CloseReason::Policy(PolicyViolation::Throttled));
            }
            return;
        }
        let known = self.online.contains_key(&key) || self.stored.contains_key(&key);
        let full = self
            .config
            .max_sessions
            .is_some_and(|max| self.online.len() + self.stored.len() >= max);
        if full && !known {
            if let Some(c) = self.conns.get_mut(&conn) {
                // The server awaits this answer: `on_connect` runs on its Connect event.
                let _ = c
                    .server
                    .refuse(now, crate::packet::ConnectReturnCode::ServerUnavailable);
            }
            self.actions
                .push_back(Action::Event(BrokerEvent::SessionLimit { conn }));
            return;
        }
        // MQTT-3.1.4-2: a client id in use is taken over; the older connection closes
        // first (and its will is published per the profile).
        if let Some(&old) = self.online.get(&key) {
            if old != conn {
                if let Some(c) = self.conns.get_mut(&old) {
                    if !self.profile.will_on_takeover {
                        c.server.discard_will();
                    }
                    c.server.close_with(now, CloseReason::Takeover);
                }
                self.pump(now, old);
            }
        }
        // MQTT-3.1.4-3: CleanSession handling.
        let resumed = if req.clean_session {
            if let Some(st) = self.stored.remove(&key) {
                self.forget_expiry(&key, st.expires);
                self.pressure.total -= st.session.queued_bytes().min(self.pressure.total);
                self.unindex(&key, &st.session);
                self.change(BrokerChange::SessionDiscarded {
                    client_id: client_id.clone(),
                });
            }
            None
        } else {
            match self.stored.remove(&key) {
                Some(st) => {
                    self.forget_expiry(&key, st.expires);
                    if st.expires.is_some() {
                        self.change(BrokerChange::SessionExpires {
                            client_id: client_id.clone(),
                            at: None,
                        });
                    }
                    Some(st.session)
                }
                None => {
                    self.change(BrokerChange::SessionCreated {
                        client_id: client_id.clone(),
                    });
                    None
                }
            }
        };
        let session_present = resumed.is_some();
        // A resumed session's queue moves from the stored ones to the connection's.
        let resumed_bytes = resumed.as_ref().map_or(0, |s| s.queued_bytes());
        let Some(slot) = self.conns.slot_of(conn) else {
            return;
        };
        self.subscribers.set_conn(&key, Some((conn, slot)));
        let Some(c) = self.conns.at_mut(conn, slot) else {
            return;
        };
        c.accepted = Some(req.clean_session);
        c.seen_bytes = resumed_bytes;
        self.online.insert(key.clone(), conn);
        self.stats.connects += 1;
        self.actions
            .push_back(Action::Event(BrokerEvent::Connected {
                conn,
                client_id: client_id.clone(),
                session_present,
            }));
        // The server awaits this answer: `on_connect` runs on its Connect event.
        let _ = c
            .server
            .accept_as(now, assigned.then_some(client_id), resumed);
        if self.profile.lifecycle_events {
            let principal = req.login.as_ref().map(|l| l.username.as_str());
            if let Some(m) = self.lifecycle.connected(now, conn, &key, principal) {
                self.route(now, m);
            }
        }
        self.flush_shared(now, &key);
    }

    fn session_of(&self, client: &Bytes) -> Option<&ServerSession> {
        if let Some(conn) = self.online.get(client) {
            return self.conns.get(conn).map(|c| c.server.session());
        }
        self.stored.get(client).map(|s| &s.session)
    }

    /// Forgets the deadlines of a session leaving the stored ones.
    fn forget_expiry(&mut self, key: &Bytes, at: Option<Instant>) {
        self.retry.forget(key);
        if let Some(at) = at {
            self.expiries.remove(&(at, key.clone()));
        }
    }
}
