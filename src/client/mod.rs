//! One MQTT 3.1.1 client connection, as a deterministic state machine without I/O.
//!
//! See [`Client`] for the driving contract and an example.

mod action;
mod commands;
mod config;
mod connect;
mod deadline;
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
use crate::reconnect::Backoff;
use crate::session::{Ack, ClientExport, Message, Outgoing, Session, Stage, StateError, window};
use crate::time::Instant;
use crate::types::{PacketId, QoS, TopicFilter, TopicName};
use deadline::Deadlines;

/// The connection state. Each variant holds what is valid in it.
#[derive(Debug)]
enum State {
    /// No connection, and whether one is coming.
    Disconnected(Redial),
    /// CONNECT sent. The keep-alive runs only where the profile lets the client send
    /// before CONNACK.
    AwaitingConnAck {
        deadline: Instant,
        link: Link,
    },
    Connected(Link),
}

/// Where a disconnected client stands on reconnecting ([`ClientConfig::reconnect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redial {
    /// No reconnect is coming.
    Off,
    /// [`Action::Reconnect`] goes out at this instant.
    At(Instant),
    /// [`Action::Reconnect`] went out: waiting for `connect` or `connection_failed`.
    Asked,
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

/// The id of the operation `e` ends the wait for, if any: its acknowledgement came, or
/// it is given up.
fn settled(e: &Event) -> Option<PacketId> {
    match e {
        Event::Published(id) | Event::Completed(id) | Event::Unsubscribed(id) => Some(*id),
        Event::Subscribed { packet_id, .. } => Some(*packet_id),
        Event::Lost(Lost::Publish(p)) => p.qos.packet_id(),
        Event::Lost(Lost::Release(id)) => Some(*id),
        Event::Lost(Lost::Subscribe(s)) => Some(s.packet_id),
        Event::Lost(Lost::Unsubscribe(u)) => Some(u.packet_id),
        Event::Connected { .. }
        | Event::Received(_)
        | Event::UnexpectedAck { .. }
        | Event::TimedOut { .. } => None,
    }
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
///   connection is [`connection_lost`](Self::connection_lost), one that could not be
///   opened [`connection_failed`](Self::connection_failed). Every input takes the
///   current [`Instant`]; an instant earlier than one already seen counts as that one.
/// - **Outputs.** After every input, call [`poll_action`](Self::poll_action) until it
///   returns `None` and carry out each [`Action`] in order: `Send` (encode and write),
///   `Deliver` (hand the message to the application), `Event`, `Close` (close the socket;
///   the client is then disconnected and may [`connect`](Self::connect) again on a new
///   connection), `Reconnect` (open a new connection and [`connect`](Self::connect) on
///   it). Then ask [`poll_timeout`](Self::poll_timeout) and call
///   [`handle_timeout`](Self::handle_timeout) once that instant is reached, connected or
///   not.
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
/// - With [`ClientConfig::reconnect`] the client asks to be reconnected
///   ([`Action::Reconnect`]) after a backoff when a connection is lost; every CONNECT,
///   the application's included, keeps the backoff's least interval after the previous
///   one (AWS IoT Core: one per second). See [`connect`](Self::connect).
/// - With [`ClientConfig::request_timeout`] and [`ClientConfig::publish_timeout`] an
///   operation unacknowledged past its deadline is reported as [`Event::TimedOut`] and
///   stays in flight.
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
    /// The reconnect timing, and when the last CONNECT went out.
    backoff: Backoff,
    /// The operation time-outs.
    deadlines: Deadlines,
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
        // Without reconnecting the profile's backoff still spaces the CONNECTs; its
        // jitter is never drawn.
        let backoff = config
            .reconnect
            .clone()
            .unwrap_or_else(|| Backoff::for_profile(&profile, 0));
        Client {
            decoder: Decoder::new().with_max_packet_size(config.max_packet_size),
            profile,
            config,
            state: State::Disconnected(Redial::Off),
            session,
            requests: BTreeMap::new(),
            held: VecDeque::new(),
            held_qos0: 0,
            acks: VecDeque::new(),
            actions: VecDeque::new(),
            read_buf: BytesMut::new(),
            now: Instant::ZERO,
            backoff,
            deadlines: Deadlines::default(),
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
            State::Disconnected(Redial::Off) => ClientState::Disconnected,
            State::Disconnected(_) => ClientState::Reconnecting,
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
    ///
    /// Instants are not session state: the new client asks for no reconnect, its first
    /// CONNECT is not spaced from the old client's last, and its messages have no
    /// [`publish_timeout`](ClientConfig::publish_timeout) deadline.
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
        let state = match &self.state {
            State::Disconnected(Redial::At(t)) => Some(*t),
            State::Disconnected(_) => None,
            State::AwaitingConnAck { deadline, link } => Some(match link.next_wake() {
                Some(t) if self.profile.send_before_connack => t.min(*deadline),
                _ => *deadline,
            }),
            State::Connected(link) => link.next_wake(),
        };
        match (state, self.deadlines.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
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
        if !self.deadlines.is_empty() {
            if let Some(id) = settled(&e) {
                self.deadlines.settle(id);
            }
        }
        self.flush_pending();
        self.actions.push_back(Action::Event(e));
    }
}

// ----- inputs -----

impl Client {
    /// Time has passed: reports the operations past their deadline
    /// ([`Event::TimedOut`]), sends PINGREQ when keep-alive is due, closes when CONNACK
    /// or PINGRESP is late, asks to be reconnected ([`Action::Reconnect`]) when the
    /// backoff has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        while let Some((packet_id, packet_type)) = self.deadlines.pop_due(now) {
            self.event(Event::TimedOut {
                packet_type,
                packet_id,
            });
        }
        let pingresp_timeout = self.config.pingresp_timeout;
        let pings_before_connack = self.profile.send_before_connack;
        let outcome = match &mut self.state {
            State::Disconnected(_) => Ok(false),
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
        // After a close above too: a backoff that has passed asks at once.
        if let State::Disconnected(Redial::At(t)) = self.state {
            if now >= t {
                self.state = State::Disconnected(Redial::Asked);
                self.push(Action::Reconnect);
            }
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
                    if matches!(self.state, State::Disconnected(_)) {
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
