//! One MQTT 3.1.1 client connection, as a deterministic state machine without I/O.
//!
//! See [`Client`] for the driving contract and an example.

mod action;
mod config;
mod incoming;

pub use action::{Action, ClientError, ClientState, Event, Lost, ProtocolError, Reason};
pub use config::ClientConfig;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::codec::{Decoder, MAX_REMAINING_LENGTH, Status};
use crate::packet::{
    ConnAck, Connect, Packet, PacketType, Publish, QosPid, SubAck, SubAckCode, Subscribe,
    Unsubscribe,
};
use crate::profile::{Profile, ResendPolicy, RetainPolicy};
use crate::session::{Ack, ClientExport, Message, Outgoing, Session, Stage, StateError, window};
use crate::time::Instant;
use crate::types::{PacketId, QoS, TopicFilter, TopicName};

/// The connection state. Each variant holds what is valid in it.
#[derive(Debug)]
enum State {
    Disconnected,
    /// CONNECT sent. The keep-alive runs only where the profile lets the client send
    /// before CONNACK.
    AwaitingConnAck {
        deadline: Instant,
        link: Link,
    },
    Connected(Link),
}

/// An open network connection.
#[derive(Debug)]
struct Link {
    clean_session: bool,
    /// The keep-alive interval; `None` when keep-alive is off.
    keep_alive: Option<Duration>,
    /// When the client last sent a packet.
    last_sent: Instant,
    /// When the oldest unanswered PINGREQ times out.
    ping_deadline: Option<Instant>,
}

impl Link {
    /// When the keep-alive next needs the client: a PINGREQ due or a PINGRESP late.
    fn next_wake(&self) -> Option<Instant> {
        let ping = self.keep_alive.map(|ka| self.last_sent + ka);
        match (ping, self.ping_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The keep-alive at `now`: `Err` when PINGRESP is late, `Ok(true)` when a PINGREQ
    /// is due.
    fn on_timeout(&mut self, now: Instant, pingresp_timeout: Duration) -> Result<bool, Reason> {
        if self.ping_deadline.is_some_and(|d| now >= d) {
            return Err(Reason::PingTimeout);
        }
        let due = self.keep_alive.is_some_and(|ka| now >= self.last_sent + ka);
        if due && self.ping_deadline.is_none() {
            self.ping_deadline = Some(now + pingresp_timeout);
        }
        Ok(due)
    }
}

/// A SUBSCRIBE or UNSUBSCRIBE awaiting its acknowledgement, or (before CONNACK) its
/// sending. Not session state (§4.1): a lost connection gives them up.
#[derive(Debug, Clone)]
enum Request {
    Subscribe(Subscribe<Bytes>),
    Unsubscribe(Unsubscribe<Bytes>),
}

#[derive(Debug, Clone)]
struct Pending {
    request: Request,
    sent: bool,
}

impl Request {
    fn packet(&self) -> Packet<Bytes> {
        match self {
            Request::Subscribe(s) => Packet::Subscribe(s.clone()),
            Request::Unsubscribe(u) => Packet::Unsubscribe(u.clone()),
        }
    }

    fn lost(self) -> Lost {
        match self {
            Request::Subscribe(s) => Lost::Subscribe(s),
            Request::Unsubscribe(u) => Lost::Unsubscribe(u),
        }
    }
}

/// A command issued before CONNACK, in the order it is to be sent after it.
#[derive(Debug, Clone)]
enum Held {
    /// A QoS 0 PUBLISH (kept only here).
    Qos0(Publish<Bytes>),
    /// A QoS 1/2 PUBLISH, unsent in the session's outgoing table.
    Publish(PacketId),
    /// A request in `requests`.
    Request(PacketId),
}

/// An incoming message the application has yet to acknowledge (manual acks).
#[derive(Debug, Clone, Copy)]
struct AckSlot {
    id: PacketId,
    qos2: bool,
    acked: bool,
}

fn lost_entry(o: Outgoing) -> Lost {
    match o.stage {
        Stage::Published => Lost::Publish(o.message.to_publish(o.id, false)),
        Stage::Released => Lost::Release(o.id),
    }
}

fn protocol(rule: &'static str, expected: &'static str, got: &'static str) -> Reason {
    Reason::Protocol(ProtocolError::new(rule, expected, got))
}

/// One MQTT 3.1.1 client connection, without I/O.
///
/// # Driving contract
///
/// The client is told what happened and answers with what to do; it never reads a
/// clock or touches a socket.
///
/// - **Inputs.** Bytes read from the connection go to [`handle_bytes`](Self::handle_bytes)
///   (or decoded packets to [`handle_packet`](Self::handle_packet)); the passing of time
///   to [`handle_timeout`](Self::handle_timeout); application commands are
///   [`connect`](Self::connect), [`publish`](Self::publish),
///   [`subscribe`](Self::subscribe), [`unsubscribe`](Self::unsubscribe),
///   [`ack`](Self::ack) and [`disconnect`](Self::disconnect); a broken or closed
///   connection is [`connection_lost`](Self::connection_lost). Every input takes the
///   current [`Instant`]; an instant earlier than one already seen counts as that one.
/// - **Outputs.** After every input, call [`poll_action`](Self::poll_action) until it
///   returns `None` and carry out each [`Action`] in order: `Send` (encode and write),
///   `Deliver` (hand the message to the application), `Event`, `Close` (close the socket;
///   the client is then disconnected and may [`connect`](Self::connect) again on a new
///   connection). Then ask [`poll_timeout`](Self::poll_timeout) and call
///   [`handle_timeout`](Self::handle_timeout) once that instant is reached.
/// - **Errors.** A command that cannot be honoured returns a [`ClientError`] and
///   changes nothing. A violation by the server becomes [`Action::Close`] with a
///   [`Reason`]. Nothing is dropped silently: what the client gives up is reported by
///   [`Event::Lost`], one item at a time.
///
/// # Behaviour
///
/// - The first packet on a connection is CONNECT (MQTT-3.1.0-1); nothing but CONNACK is
///   accepted first (MQTT-3.2.0-1). Commands issued before CONNACK are held and sent
///   after it, in order, under every profile: so a resumed session's resends always
///   precede new messages, and AWS IoT Core, which forbids sending before CONNACK, is
///   obeyed.
/// - Keep-alive: a PINGREQ goes out when nothing was sent for the keep-alive interval
///   (MQTT-3.1.2-23). While CONNACK is awaited it does so only where the profile allows
///   sending before CONNACK (3.1.1: PINGREQ is then the one packet that is not held; AWS
///   IoT Core: none, and its shortest keep-alive, 30 s, exceeds the default CONNACK
///   timeout). When a profile clamps the keep-alive and the client asked for 0 (AWS IoT
///   Core applies 1 200 s), the client pings at the clamped maximum. A PINGRESP late by
///   [`ClientConfig::pingresp_timeout`] closes with [`Reason::PingTimeout`].
/// - Packet ids are allocated by [`PacketIds`](crate::session::PacketIds): never 0, never one in flight, reused
///   once acknowledged; PUBLISH, SUBSCRIBE and UNSUBSCRIBE share the space.
/// - Acknowledgements are accepted in any order; one for an id with nothing of its kind
///   in flight is reported as [`Event::UnexpectedAck`] and ignored.
/// - Incoming QoS 2 follows method B of MQTT-4.3.3-2: the message is delivered when the
///   PUBLISH arrives, its id is kept until PUBREL, and repeats of that id meanwhile get
///   PUBREC again without a second delivery. PUBREL is always answered with PUBCOMP.
/// - Reconnect: with clean session 0 the session outlives the connection. After CONNACK
///   with session present 1, every unacknowledged PUBLISH is resent with DUP=1 and its
///   id, and PUBREL for those past PUBREC, in the order the packets were first sent
///   (MQTT-4.4.0-1, MQTT-4.6.0-1). With session present 0 that state is discarded and
///   reported as [`Event::Lost`]. SUBSCRIBE and UNSUBSCRIBE are not session state: on a
///   lost connection the unacknowledged ones are reported lost.
///
/// # Example
///
/// ```
/// use core::time::Duration;
/// use bytes::Bytes;
/// use mqtt_sansio::client::{Action, Client, Event};
/// use mqtt_sansio::{
///     ConnAck, Connect, Instant, MqttString, Packet, Profile, QoS, TopicName,
/// };
///
/// let mut client = Client::new(Profile::mqtt311());
/// let mut now = Instant::ZERO;
/// client.connect(now, Connect {
///     client_id: MqttString::try_from("sensor-1")?,
///     clean_session: true,
///     keep_alive: 30,
///     will: None,
///     login: None,
/// })?;
/// // Drain the actions: the CONNECT goes on the wire.
/// while let Some(action) = client.poll_action() {
///     match action {
///         Action::Send(packet) => { let _bytes = packet.to_bytes()?; /* write them */ }
///         other => panic!("unexpected {other:?}"),
///     }
/// }
///
/// // The server's CONNACK arrives (bytes from the socket, here built by hand).
/// let connack = Packet::<Bytes>::ConnAck(ConnAck::Accepted { session_present: false });
/// client.handle_bytes(now, &connack.to_bytes()?)?;
/// assert_eq!(
///     client.poll_action(),
///     Some(Action::Event(Event::Connected { session_present: false }))
/// );
///
/// let id = client.publish(now, TopicName::try_from("t/1")?, QoS::AtLeastOnce, false, "21.5")?;
/// assert!(matches!(client.poll_action(), Some(Action::Send(Packet::Publish(_)))));
/// client.handle_packet(now, Packet::PubAck(id.unwrap()))?;
/// assert_eq!(client.poll_action(), Some(Action::Event(Event::Published(id.unwrap()))));
///
/// // Nothing to do until the keep-alive is due.
/// assert_eq!(client.poll_action(), None);
/// let wake = client.poll_timeout().unwrap();
/// assert_eq!(wake, now + Duration::from_secs(30));
/// now = wake;
/// client.handle_timeout(now);
/// assert_eq!(client.poll_action(), Some(Action::Send(Packet::PingReq)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    profile: Profile,
    config: ClientConfig,
    state: State,
    session: Session,
    /// SUBSCRIBE and UNSUBSCRIBE awaiting their acks (or their sending), by packet id.
    requests: BTreeMap<PacketId, Pending>,
    /// Commands issued before CONNACK, in order.
    held: VecDeque<Held>,
    /// How many of `held` are QoS 0 publishes.
    held_qos0: usize,
    acks: VecDeque<AckSlot>,
    actions: VecDeque<Action>,
    read_buf: BytesMut,
    decoder: Decoder,
    now: Instant,
}

impl Client {
    /// A disconnected client following `profile`, with [`ClientConfig::for_profile`].
    pub fn new(profile: Profile) -> Client {
        let config = ClientConfig::for_profile(&profile);
        Client::with_config(profile, config)
    }

    /// A disconnected client following `profile`, with `config`.
    pub fn with_config(profile: Profile, config: ClientConfig) -> Client {
        let mut session = Session::default();
        session.set_recording(config.report_changes);
        Client {
            decoder: Decoder::new().with_max_packet_size(config.max_packet_size),
            profile,
            config,
            state: State::Disconnected,
            session,
            requests: BTreeMap::new(),
            held: VecDeque::new(),
            held_qos0: 0,
            acks: VecDeque::new(),
            actions: VecDeque::new(),
            read_buf: BytesMut::new(),
            now: Instant::ZERO,
        }
    }

    /// The profile the client follows.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The client's settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The connection's state.
    pub fn state(&self) -> ClientState {
        match self.state {
            State::Disconnected => ClientState::Disconnected,
            State::AwaitingConnAck { .. } => ClientState::Connecting,
            State::Connected(_) => ClientState::Connected,
        }
    }

    /// How many outgoing QoS 1/2 messages are unacknowledged (the inflight window).
    pub fn inflight(&self) -> usize {
        self.session.inflight()
    }

    /// How many packet ids are in use (messages, subscribes and unsubscribes).
    pub fn ids_in_use(&self) -> usize {
        self.session.ids().len()
    }

    /// Whether `id` is in use by an outgoing packet.
    pub fn id_in_use(&self, id: PacketId) -> bool {
        self.session.ids().contains(id)
    }

    /// The session state (§4.1): packet ids, the outgoing table (with the QoS 1/2
    /// messages held before CONNACK, not yet sent), inbound QoS 2 ids awaiting PUBREL.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The next action for the caller, in order; `None` when there is nothing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.session.has_changes() {
            self.flush_changes();
        }
        self.actions.pop_front()
    }

    /// Queues `action` after the changes recorded before it.
    #[inline]
    fn push(&mut self, action: Action) {
        self.flush_pending();
        self.actions.push_back(action);
    }

    /// Queues the changes recorded so far. Called before an action is built, so that
    /// the action is built in its place in the queue (measured: a copy less per
    /// packet).
    #[inline]
    fn flush_pending(&mut self) {
        if self.session.has_changes() {
            self.flush_changes();
        }
    }

    #[cold]
    #[inline(never)]
    fn flush_changes(&mut self) {
        for c in self.session.take_changes() {
            self.actions.push_back(Action::Change(c));
        }
    }

    /// The client's durable state as plain data: the session, with the QoS 1/2
    /// messages held until CONNACK. SUBSCRIBE, UNSUBSCRIBE and QoS 0 messages not yet
    /// sent are not session state and are not in it.
    pub fn export(&self) -> ClientExport {
        ClientExport {
            session: self.session.export(),
        }
    }

    /// A disconnected client following `profile` with `config`, holding the session
    /// `export` describes (which [`connect`](Self::connect) with clean session 0
    /// resumes). Refused when the export breaks a rule of its own.
    pub fn import(
        profile: Profile,
        config: ClientConfig,
        export: ClientExport,
    ) -> Result<Client, StateError> {
        let mut session = Session::import(export.session)?;
        session.set_recording(config.report_changes);
        let mut client = Client::with_config(profile, config);
        // The messages held before CONNACK go out after it, in order.
        client.held = session
            .outgoing()
            .filter(|o| !o.sent)
            .map(|o| Held::Publish(o.id))
            .collect();
        client.session = session;
        Ok(client)
    }

    /// The instant at which [`handle_timeout`](Self::handle_timeout) must next be
    /// called; `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Disconnected => None,
            State::AwaitingConnAck { deadline, link } => Some(match link.next_wake() {
                Some(t) if self.profile.send_before_connack => t.min(*deadline),
                _ => *deadline,
            }),
            State::Connected(link) => link.next_wake(),
        }
    }

    fn tick(&mut self, now: Instant) -> Instant {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    fn send(&mut self, packet: Packet<Bytes>) {
        if let State::Connected(link) | State::AwaitingConnAck { link, .. } = &mut self.state {
            link.last_sent = self.now;
        }
        self.flush_pending();
        self.actions.push_back(Action::Send(packet));
    }

    fn event(&mut self, e: Event) {
        self.flush_pending();
        self.actions.push_back(Action::Event(e));
    }

    /// Ends the connection: emits `Close`, keeps or discards the session.
    /// What the session gives up follows the `Close`, as [`Event::Lost`].
    fn close(&mut self, reason: Reason) {
        self.push(Action::Close(reason));
        self.end_connection();
    }

    /// The connection is gone: keep the session (clean session 0) or discard it.
    fn end_connection(&mut self) {
        let (clean, accepted) = match core::mem::replace(&mut self.state, State::Disconnected) {
            State::Disconnected => return,
            State::AwaitingConnAck { link, .. } => (link.clean_session, false),
            State::Connected(link) => (link.clean_session, true),
        };
        self.read_buf.clear();
        self.acks.clear();
        if clean && accepted {
            // MQTT-3.1.2-6: a clean session ends with its connection.
            self.discard_session(|_| true);
            self.session.clear_inbound_qos2();
        } else if clean {
            // A clean session that CONNACK never accepted may not have reached the
            // server, which then still holds the earlier session: what went out on it
            // and the QoS 2 ids it received stay. What was held for this connection
            // is given up with it.
            self.discard_session(|o| !o.sent);
        }
        self.discard_requests();
    }

    /// Removes the outgoing entries `which` selects, in order, reporting each as lost.
    fn discard_session(&mut self, which: impl Fn(&Outgoing) -> bool) {
        for entry in self.session.discard(which) {
            self.held
                .retain(|h| !matches!(h, Held::Publish(id) if *id == entry.id));
            self.event(Event::Lost(lost_entry(entry)));
        }
    }

    /// Gives up what is not session state: SUBSCRIBE and UNSUBSCRIBE awaiting their
    /// acks, then what was held before CONNACK other than QoS 1/2 messages.
    fn discard_requests(&mut self) {
        let mut lost = Vec::new();
        let requests = core::mem::take(&mut self.requests);
        for (id, pending) in requests {
            self.session.release_id(id);
            if pending.sent {
                lost.push(pending.request.lost());
            } else {
                // Reported in the order it was held, below.
                self.requests.insert(id, pending);
            }
        }
        for held in core::mem::take(&mut self.held) {
            match held {
                Held::Qos0(p) => lost.push(Lost::Publish(p)),
                Held::Request(id) => {
                    if let Some(pending) = self.requests.remove(&id) {
                        lost.push(pending.request.lost());
                    }
                }
                Held::Publish(id) => self.held.push_back(Held::Publish(id)),
            }
        }
        self.requests.clear();
        self.held_qos0 = 0;
        for l in lost {
            self.event(Event::Lost(l));
        }
    }

    // ----- commands -----

    /// Opens the session on a new network connection: emits CONNECT and waits for
    /// CONNACK. With clean session 1 any session state the client held is discarded
    /// (and reported as [`Event::Lost`]) once CONNACK accepts the connection: until
    /// then the server may still hold the session.
    ///
    /// Refused when a connection is open ([`ClientError::AlreadyConnected`]), for an
    /// empty client id with clean session 0 (MQTT-3.1.3-7), and for what the profile
    /// forbids (client id length, a will at QoS 2 or with RETAIN, will topic limits).
    pub fn connect(&mut self, now: Instant, connect: Connect<Bytes>) -> Result<(), ClientError> {
        if !matches!(self.state, State::Disconnected) {
            return Err(ClientError::AlreadyConnected);
        }
        if connect.client_id.is_empty() && !connect.clean_session {
            return Err(ClientError::EmptyClientIdNeedsCleanSession);
        }
        let len = connect.client_id.len();
        if len > self.profile.max_client_id_len {
            return Err(ClientError::ClientIdTooLong {
                len,
                max: self.profile.max_client_id_len,
            });
        }
        if let Some(will) = &connect.will {
            self.check_qos(will.qos)?;
            self.check_retain(will.retain)?;
            self.check_topic(will.topic.as_bytes())?;
            self.check_payload(will.message.len())?;
        }
        let now = self.tick(now);
        // With clean session 1 the session is discarded when CONNACK accepts the
        // connection (MQTT-3.1.2-6: both sides discard it), not before: if this CONNECT
        // never reaches the server, the server still holds the session, and a client
        // that had forgotten the QoS 2 ids it received would deliver their resends
        // twice on the next resumed session.
        let requested = connect.keep_alive;
        let effective = if requested == 0 {
            self.profile.effective_keep_alive(0)
        } else {
            requested
        };
        let keep_alive = (effective > 0).then(|| Duration::from_secs(u64::from(effective)));
        self.read_buf.clear();
        self.state = State::AwaitingConnAck {
            deadline: now + self.config.connack_timeout,
            link: Link {
                clean_session: connect.clean_session,
                keep_alive,
                last_sent: now,
                ping_deadline: None,
            },
        };
        self.push(Action::Send(Packet::Connect(connect)));
        Ok(())
    }

    fn check_open(&self) -> Result<(), ClientError> {
        match self.state {
            State::Disconnected => Err(ClientError::NotConnected),
            _ => Ok(()),
        }
    }

    fn check_qos(&self, qos: QoS) -> Result<(), ClientError> {
        if qos == QoS::ExactlyOnce && !self.profile.supports_qos2() {
            return Err(ClientError::Qos2NotSupported);
        }
        Ok(())
    }

    fn check_retain(&self, retain: bool) -> Result<(), ClientError> {
        if retain && self.profile.retain == RetainPolicy::Close {
            return Err(ClientError::RetainNotSupported);
        }
        Ok(())
    }

    fn check_topic(&self, topic: &[u8]) -> Result<(), ClientError> {
        let max = self.profile.max_topic_len;
        if topic.len() > max {
            return Err(ClientError::TopicTooLong {
                len: topic.len(),
                max,
            });
        }
        if let Some(max) = self.profile.max_topic_levels {
            let slashes = topic.iter().filter(|&&c| c == b'/').count();
            if slashes > max {
                return Err(ClientError::TooManyTopicLevels { slashes, max });
            }
        }
        Ok(())
    }

    fn check_payload(&self, len: usize) -> Result<(), ClientError> {
        let max = self.profile.max_payload;
        if len > max {
            return Err(ClientError::PayloadTooLarge { len, max });
        }
        Ok(())
    }

    fn allocate_id(&mut self) -> Result<PacketId, ClientError> {
        self.session
            .allocate_id()
            .ok_or(ClientError::PacketIdsExhausted)
    }

    fn allocate_request_id(&mut self) -> Result<PacketId, ClientError> {
        self.session
            .allocate_request_id()
            .ok_or(ClientError::PacketIdsExhausted)
    }

    fn connected(&self) -> bool {
        matches!(self.state, State::Connected(_))
    }

    /// Sends a request now if the connection is accepted, or holds it until CONNACK.
    fn submit(&mut self, id: PacketId, request: Request) {
        let sent = self.connected();
        if sent {
            self.send(request.packet());
        } else {
            self.held.push_back(Held::Request(id));
        }
        self.requests.insert(id, Pending { request, sent });
    }

    /// Publishes an application message. Returns the packet id at QoS 1 and 2, `None`
    /// at QoS 0. Before CONNACK the message is held and sent after it.
    ///
    /// Refused without a connection, for what the profile forbids (QoS 2, RETAIN, topic
    /// or payload limits), when the inflight window is full
    /// ([`ClientError::InflightFull`]), every id is in use
    /// ([`ClientError::PacketIdsExhausted`]) or, before CONNACK, when
    /// [`ClientConfig::max_held_qos0`] QoS 0 publishes are already held
    /// ([`ClientError::HeldFull`]).
    pub fn publish(
        &mut self,
        now: Instant,
        topic: TopicName<Bytes>,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Result<Option<PacketId>, ClientError> {
        self.check_open()?;
        self.check_qos(qos)?;
        self.check_retain(retain)?;
        self.check_topic(topic.as_bytes())?;
        let payload: Bytes = payload.into();
        self.check_payload(payload.len())?;
        let id_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
        if 2 + topic.len() + id_len + payload.len() > MAX_REMAINING_LENGTH {
            return Err(ClientError::PacketTooLarge);
        }
        let connected = self.connected();
        if qos == QoS::AtMostOnce {
            if !connected && self.held_qos0 >= self.config.max_held_qos0 {
                return Err(ClientError::HeldFull {
                    max: self.config.max_held_qos0,
                });
            }
            self.tick(now);
            let mut publish = Publish::new(topic, QosPid::AtMostOnce, payload);
            publish.retain = retain;
            if connected {
                self.send(Packet::Publish(publish));
            } else {
                self.held_qos0 += 1;
                self.held.push_back(Held::Qos0(publish));
            }
            return Ok(None);
        }
        let max = window(self.config.max_inflight, &self.profile);
        if self.session.inflight() >= max {
            return Err(ClientError::InflightFull { max });
        }
        let id = self.allocate_id()?;
        self.tick(now);
        let message = Message {
            topic,
            payload,
            qos,
            retain,
        };
        if connected {
            self.send(Packet::Publish(message.to_publish(id, false)));
        } else {
            self.held.push_back(Held::Publish(id));
        }
        self.session.push(id, message, connected.then_some(now));
        Ok(Some(id))
    }

    /// Subscribes to `filters` (each with its maximum QoS) in one SUBSCRIBE; returns
    /// its packet id. [`Event::Subscribed`] reports the SUBACK.
    ///
    /// Refused without a connection, with no filter, for what the profile forbids
    /// (QoS 2, filter length and levels, filters per SUBSCRIBE) and when every id is in
    /// use.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: &[(TopicFilter<Bytes>, QoS)],
    ) -> Result<PacketId, ClientError> {
        self.check_open()?;
        if filters.is_empty() {
            return Err(ClientError::NoFilters);
        }
        if let Some(max) = self.profile.max_filters_per_subscribe {
            if filters.len() > max {
                return Err(ClientError::TooManyFilters {
                    count: filters.len(),
                    max,
                });
            }
        }
        for (f, q) in filters {
            self.check_qos(*q)?;
            self.check_topic(f.as_bytes())?;
        }
        let len: usize = filters.iter().map(|(f, _)| 3 + f.len()).sum();
        if 2 + len > MAX_REMAINING_LENGTH {
            return Err(ClientError::PacketTooLarge);
        }
        let id = self.allocate_request_id()?;
        let Ok(sub) = Subscribe::new(id, filters) else {
            self.session.release_id(id);
            return Err(ClientError::NoFilters);
        };
        self.tick(now);
        self.submit(id, Request::Subscribe(sub));
        Ok(id)
    }

    /// Unsubscribes from `filters` in one UNSUBSCRIBE; returns its packet id.
    /// [`Event::Unsubscribed`] reports the UNSUBACK.
    ///
    /// Refused without a connection, with no filter, for filters beyond the profile's
    /// limits and when every id is in use.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: &[TopicFilter<Bytes>],
    ) -> Result<PacketId, ClientError> {
        self.check_open()?;
        if filters.is_empty() {
            return Err(ClientError::NoFilters);
        }
        for f in filters {
            self.check_topic(f.as_bytes())?;
        }
        let len: usize = filters.iter().map(|f| 2 + f.len()).sum();
        if 2 + len > MAX_REMAINING_LENGTH {
            return Err(ClientError::PacketTooLarge);
        }
        let id = self.allocate_request_id()?;
        let Ok(unsub) = Unsubscribe::new(id, filters) else {
            self.session.release_id(id);
            return Err(ClientError::NoFilters);
        };
        self.tick(now);
        self.submit(id, Request::Unsubscribe(unsub));
        Ok(id)
    }

    /// Acknowledges the delivered QoS 1 or 2 message with packet id `id`, under
    /// [`ClientConfig::manual_acks`]. The PUBACK or PUBREC goes out once every message
    /// that arrived before this one is acknowledged too (MQTT-4.6.0-2, MQTT-4.6.0-3).
    pub fn ack(&mut self, now: Instant, id: PacketId) -> Result<(), ClientError> {
        if !self.config.manual_acks {
            return Err(ClientError::ManualAcksDisabled);
        }
        let Some(slot) = self.acks.iter_mut().find(|s| s.id == id && !s.acked) else {
            return Err(ClientError::NotAwaitingAck(id));
        };
        slot.acked = true;
        self.tick(now);
        self.flush_acks();
        Ok(())
    }

    fn flush_acks(&mut self) {
        while let Some(slot) = self.acks.front().copied() {
            if !slot.acked {
                break;
            }
            self.acks.pop_front();
            self.send(if slot.qos2 {
                Packet::PubRec(slot.id)
            } else {
                Packet::PubAck(slot.id)
            });
        }
    }

    /// Ends the connection cleanly: DISCONNECT, then [`Action::Close`] with
    /// [`Reason::Disconnected`]; nothing is sent after it (MQTT-3.14.4-1,
    /// MQTT-3.14.4-2). Before CONNACK nothing is sent (the client sends nothing but
    /// CONNECT before CONNACK); the connection is just closed. With clean session 0 the
    /// session is kept for the next connection.
    pub fn disconnect(&mut self, now: Instant) -> Result<(), ClientError> {
        self.check_open()?;
        self.tick(now);
        if matches!(self.state, State::Connected(_)) {
            self.send(Packet::Disconnect);
        }
        self.close(Reason::Disconnected);
        Ok(())
    }

    // ----- inputs -----

    /// The network connection broke or was closed by the server. The client is
    /// disconnected; with clean session 0 it keeps the session for the next
    /// [`connect`](Self::connect). What is given up is reported as [`Event::Lost`].
    /// Does nothing when already disconnected.
    pub fn connection_lost(&mut self, now: Instant) {
        self.tick(now);
        self.end_connection();
    }

    /// Time has passed: sends PINGREQ when keep-alive is due, closes when CONNACK or
    /// PINGRESP is late.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        let pingresp_timeout = self.config.pingresp_timeout;
        let pings_before_connack = self.profile.send_before_connack;
        let outcome = match &mut self.state {
            State::Disconnected => Ok(false),
            State::AwaitingConnAck { deadline, .. } if now >= *deadline => {
                Err(Reason::ConnAckTimeout)
            }
            State::AwaitingConnAck { link, .. } if pings_before_connack => {
                link.on_timeout(now, pingresp_timeout)
            }
            State::AwaitingConnAck { .. } => Ok(false),
            State::Connected(link) => link.on_timeout(now, pingresp_timeout),
        };
        match outcome {
            Ok(true) => self.send(Packet::PingReq),
            Ok(false) => {}
            Err(reason) => self.close(reason),
        }
    }

    /// Bytes read from the connection. Complete packets are handled in order; a partial
    /// packet is kept for the next call. Bytes that can never be a packet close the
    /// connection with [`Reason::Decode`].
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ClientError> {
        self.check_open()?;
        self.read_buf.extend_from_slice(bytes);
        loop {
            match self.decoder.decode_bytes(&mut self.read_buf) {
                Ok(Status::Complete(packet, _)) => {
                    self.handle_packet(now, packet)?;
                    if matches!(self.state, State::Disconnected) {
                        return Ok(());
                    }
                }
                Ok(Status::Incomplete(_)) => return Ok(()),
                Err(e) => {
                    self.tick(now);
                    self.close(Reason::Decode(e));
                    return Ok(());
                }
            }
        }
    }
}
