//! A sans-I/O broker: many connections, sessions by client id, routing, retained
//! messages and wills, still without touching a socket or a clock.
//!
//! The [`Broker`] owns one [`Server`] per connection and the state they share: the
//! sessions (online and stored), the subscription index, the retained messages (a
//! topic trie, [`RetainedStore`]) and, where the [`Profile`] has them, the
//! shared-subscription groups and AWS IoT Core's lifecycle events and CONNECT quota.
//! `state` exports and imports what outlives a connection.

mod lifecycle;
mod shared;
mod state;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::packet::{Packet, PacketType};
use crate::profile::{Profile, RetainPolicy};
use crate::server::{
    Action as ServerAction, CloseReason, ConnectRequest, Ignored, Message, NotQueued,
    PolicyViolation, Server, ServerConfig, ServerEvent, ServerSession,
};
use crate::session::BrokerChange;
use crate::time::Instant;
use crate::topic::{RetainedStore, SubscriptionIndex};
use crate::types::{MqttString, PacketId, QoS, TopicFilter};

/// The caller's name for one network connection. The broker never invents one: the
/// caller picks a fresh id for every connection it [`open`](Broker::open)s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Why a message was not delivered to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The session's queue held its configured maximum of messages.
    QueueFull,
    /// A QoS 0 message for a session whose client is offline: 3.1.1 lets a server keep
    /// such messages (MQTT-3.1.2-5) but does not require it, and this broker does not.
    OfflineQos0,
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
struct Conn {
    server: Server,
    /// The client id and CleanSession flag, once the CONNECT is accepted.
    accepted: Option<(Bytes, bool)>,
}

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
    /// Boxed: a B-tree node holds eleven entries and is seldom full, and a
    /// connection's state is large.
    conns: BTreeMap<ConnId, Box<Conn>>,
    online: BTreeMap<Bytes, ConnId>,
    stored: BTreeMap<Bytes, Stored>,
    expiries: BTreeSet<(Instant, Bytes)>,
    index: SubscriptionIndex<Bytes>,
    retained: RetainedStore<Message>,
    shared: shared::SharedGroups,
    lifecycle: lifecycle::Lifecycle,
    connect_rate: crate::quota::ConnectRate,
    timers: BTreeSet<(Instant, ConnId)>,
    armed: BTreeMap<ConnId, Instant>,
    dirty: BTreeSet<ConnId>,
    actions: VecDeque<Action>,
    next_assigned: u64,
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
            profile: Arc::new(profile),
            connection: Arc::new(config.connection.clone()),
            config,
            conns: BTreeMap::new(),
            online: BTreeMap::new(),
            stored: BTreeMap::new(),
            expiries: BTreeSet::new(),
            retained: RetainedStore::new(),
            timers: BTreeSet::new(),
            armed: BTreeMap::new(),
            dirty: BTreeSet::new(),
            actions: VecDeque::new(),
            next_assigned: 0,
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
        self.conns.insert(
            conn,
            Box::new(Conn {
                server,
                accepted: None,
            }),
        );
        self.arm(conn);
        Ok(())
    }

    /// Bytes arrived on `conn`. Bytes for a connection that is not open are ignored.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.server.handle_bytes(now, bytes);
            self.pump(now, conn);
            self.settle(now);
        }
    }

    /// The transport of `conn` ended (without a `Close` asked by the broker): its will
    /// is published and its session stored or discarded.
    pub fn connection_lost(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.server.connection_lost(now);
            self.pump(now, conn);
            self.settle(now);
        }
    }

    /// The application closes `conn` (an administrator's kick, a shutdown): a `Close`
    /// action with [`CloseReason::Application`] follows, and the will is published.
    pub fn close(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.server.close_with(now, CloseReason::Application);
            self.pump(now, conn);
            self.settle(now);
        }
    }

    /// Time has passed: keep-alive and connect deadlines, and session expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, conn)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.armed.remove(&conn);
            if let Some(c) = self.conns.get_mut(&conn) {
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
        self.settle(now);
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
        match (conn, session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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

    fn arm(&mut self, conn: ConnId) {
        if let Some(old) = self.armed.remove(&conn) {
            self.timers.remove(&(old, conn));
        }
        if let Some(at) = self.conns.get(&conn).and_then(|c| c.server.poll_timeout()) {
            self.armed.insert(conn, at);
            self.timers.insert((at, conn));
        }
    }

    /// Pumps every connection that got something to send, until none is left.
    fn settle(&mut self, now: Instant) {
        while let Some(conn) = self.dirty.pop_first() {
            self.pump(now, conn);
        }
    }

    /// Carries out the actions of one connection's server, in order.
    fn pump(&mut self, now: Instant, conn: ConnId) {
        self.dirty.remove(&conn);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
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
            let Some(a) = c.server.poll_action() else {
                break;
            };
            self.on_server_action(now, conn, a);
        }
        self.arm(conn);
    }

    /// Forgets a closed connection: its session is stored (persistent) or dropped with
    /// its subscriptions (clean). `reason` is why the server closed it (`None`: the
    /// transport ended).
    fn detach(&mut self, now: Instant, conn: ConnId, reason: Option<CloseReason>) {
        let Some(mut c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(m) = self.lifecycle.disconnected(now, conn, reason) {
            self.route(now, m);
        }
        if let Some(old) = self.armed.remove(&conn) {
            self.timers.remove(&(old, conn));
        }
        let Some((client, clean)) = c.accepted.take() else {
            return;
        };
        if self.online.get(&client) == Some(&conn) {
            self.online.remove(&client);
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
            self.stored.insert(client, Stored { session, expires });
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
            .and_then(|c| c.accepted.as_ref())
            .map(|(id, _)| id.clone())
    }

    fn on_server_action(&mut self, now: Instant, conn: ConnId, a: ServerAction) {
        match a {
            ServerAction::Send(packet) => {
                if self.reporting() && matches!(packet, Packet::PubAck(_) | Packet::PubRec(_)) {
                    // What routing the acknowledged message stored, in other sessions
                    // or this one, is reported before the acknowledgement.
                    self.settle(now);
                }
                self.actions.push_back(Action::Send { conn, packet })
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
                ServerEvent::Publish(m) | ServerEvent::Will(m) => self.route(now, m),
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
                ServerEvent::Discarded(message) => self
                    .actions
                    .push_back(Action::Event(BrokerEvent::Discarded { conn, message })),
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
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.accepted = Some((key.clone(), req.clean_session));
        self.online.insert(key.clone(), conn);
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

    fn forget_expiry(&mut self, key: &Bytes, at: Option<Instant>) {
        if let Some(at) = at {
            self.expiries.remove(&(at, key.clone()));
        }
    }

    fn on_subscribed(&mut self, now: Instant, conn: ConnId, list: Vec<(TopicFilter<Bytes>, QoS)>) {
        let Some(client) = self.client_of(conn) else {
            return;
        };
        let topics: Vec<TopicFilter<Bytes>> = list.iter().map(|(f, _)| f.clone()).collect();
        for (filter, qos) in list {
            if !self.add_subscription(&filter, &client, qos) {
                // A shared subscription gets no retained messages (MQTT 5 §4.8.2).
                continue;
            }
            // MQTT-3.3.1-6, MQTT-3.8.4-3: retained messages matching the (new or
            // replaced) subscription go out with RETAIN=1 (MQTT-3.3.1-8).
            let hmp = self.profile.hash_matches_parent;
            let matching: Vec<Message> = if filter.has_wildcards() {
                if !self.profile.retained_on_wildcard {
                    continue;
                }
                let mut found = Vec::new();
                self.retained
                    .for_each_match(filter.as_bytes(), hmp, |_, m| found.push(m.clone()));
                found
            } else {
                self.retained
                    .get(filter.as_bytes())
                    .cloned()
                    .into_iter()
                    .collect()
            };
            for m in matching {
                let out = Message {
                    qos: m.qos.min(qos),
                    retain: true,
                    ..m
                };
                self.deliver(now, &client, out);
            }
        }
        let names: Vec<&str> = topics.iter().map(|f| f.as_str()).collect();
        if let Some(m) = self.lifecycle.subscriptions(now, conn, true, &names) {
            self.route(now, m);
        }
    }

    /// Routes an application message to every matching session (MQTT-4.5.0-1) and
    /// keeps it as the retained message when asked.
    fn route(&mut self, now: Instant, m: Message) {
        if m.retain && self.profile.retain == RetainPolicy::Store {
            let topic = m.topic.as_bytes();
            if m.payload.is_empty() {
                // MQTT-3.3.1-10, -11
                if self.retained.remove(topic).is_some() {
                    self.change(BrokerChange::RetainedCleared(m.topic.clone()));
                }
            } else if self.retained.contains(topic)
                || self
                    .config
                    .max_retained
                    .is_none_or(|max| self.retained.len() < max)
            {
                // MQTT-3.3.1-5, -7
                self.retained.insert(topic, m.clone());
                self.change(BrokerChange::RetainedSet(m.clone()));
            } else {
                self.actions
                    .push_back(Action::Event(BrokerEvent::RetainedNotStored {
                        message: m.clone(),
                    }));
            }
        }
        // MQTT-3.3.5-1: one copy per client, at the highest matching QoS.
        let mut targets: BTreeMap<Bytes, QoS> = BTreeMap::new();
        self.index
            .for_each_match(m.topic.as_bytes(), |client, qos| {
                let e = targets.entry(client.clone()).or_insert(qos);
                *e = (*e).max(qos);
            });
        for (client, qos) in targets {
            // MQTT-3.8.4-6: min(publish, granted); MQTT-3.3.1-9: RETAIN=0 on routing.
            let out = Message {
                qos: m.qos.min(qos),
                retain: false,
                ..m.clone()
            };
            self.deliver(now, &client, out);
        }
        if self.profile.shared_subscriptions {
            self.route_shared(now, &m);
        }
    }

    fn deliver(&mut self, now: Instant, client: &Bytes, m: Message) {
        let result = if let Some(&conn) = self.online.get(client) {
            match self.conns.get_mut(&conn) {
                Some(c) => {
                    self.dirty.insert(conn);
                    c.server.publish(now, m)
                }
                None => Ok(()),
            }
        } else if let Some(st) = self.stored.get_mut(client) {
            if m.qos == QoS::AtMostOnce {
                // QoS 0 is not kept for an offline session (optional, MQTT-3.1.2-5),
                // and saying so keeps the loss visible.
                self.actions.push_back(Action::Event(BrokerEvent::Dropped {
                    client_id: MqttString(client.clone()),
                    message: m,
                    reason: DropReason::OfflineQos0,
                }));
                return;
            } else {
                // MQTT-3.1.2-5: queued while the client is offline.
                // A stored session records no changes: the broker reports them.
                let copy = self.config.connection.report_changes.then(|| m.clone());
                let queued = st.session.enqueue(m, self.config.connection.max_queued);
                if let (Ok(()), Some(m)) = (&queued, copy) {
                    self.actions
                        .push_back(Action::Change(BrokerChange::Session {
                            client_id: MqttString(client.clone()),
                            change: crate::session::Change::Queued(m),
                        }));
                }
                queued
            }
        } else {
            Ok(())
        };
        if let Err(NotQueued(message)) = result {
            self.actions.push_back(Action::Event(BrokerEvent::Dropped {
                client_id: MqttString(client.clone()),
                message,
                reason: DropReason::QueueFull,
            }));
        }
    }
}
