//! A sans-I/O broker: many connections, sessions by client id, routing, retained
//! messages and wills, still without touching a socket or a clock.
//!
//! The [`Broker`] owns one [`Server`] per connection and the state they share: the
//! sessions (online and stored), the subscription index, the retained messages (a
//! topic trie, [`RetainedStore`]) and, where the [`Profile`] has them, the
//! shared-subscription groups and AWS IoT Core's lifecycle events and CONNECT quota.
//! `state` exports and imports what outlives a connection.

mod connect;
mod conns;
mod lifecycle;
mod pressure;
mod pump;
mod retry;
mod route;
mod shared;
mod state;
mod stats;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::packet::{Packet, PacketType};
use crate::profile::Profile;
use crate::server::{CloseReason, Ignored, Message, Server, ServerConfig, ServerSession};
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
    /// The retained topics the broker itself set ([`Broker::publish`]): kept outside
    /// [`BrokerConfig::max_retained`], which bounds what clients store.
    own_retained: BTreeSet<Bytes>,
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
            own_retained: BTreeSet::new(),
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
}
