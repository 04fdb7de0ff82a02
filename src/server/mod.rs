//! One server-side connection: the broker's half of a single network connection.
//!
//! A [`Server`] is told what arrived on the connection and when, and answers with
//! [`Action`]s. It checks that CONNECT comes first (MQTT-3.1.0-1, MQTT-3.1.0-2), answers
//! CONNACK return codes, enforces the keep-alive (1.5 × keep-alive without a packet
//! closes, MQTT-3.1.2-24), answers PINGREQ, runs the QoS 1 and QoS 2 flows in both
//! directions, and applies the [`Profile`]'s dialect rules. Routing, sessions shared by
//! many connections and retained messages belong to the [`Broker`](crate::broker::Broker),
//! which drives one `Server` per connection.
//!
//! [`Server`]'s documentation states the driving contract, with an example.

mod action;
mod config;
mod connect;
mod inbound;
mod queue;
mod retry;

pub use action::{
    Action, CloseReason, ConnectRequest, Ignored, PolicyViolation, ServerError, ServerEvent,
};
use config::max_packet_size;
pub use config::{AllowAll, Authorizer, PublishDecision, ServerConfig};

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::codec::{Decoder, Status};
pub use crate::connection::ProtocolError;
use crate::error::DecodeError;
use crate::packet::{ConnectReturnCode, Packet, PacketType, Publish, Will};
use crate::profile::Profile;
use crate::quota::PublishWindow;
use crate::session::window;
pub use crate::session::{Message, NotQueued, ServerSession};
use crate::time::Instant;
use crate::types::MqttString;

#[derive(Debug)]
enum State {
    AwaitingConnect {
        deadline: Instant,
    },
    AwaitingAnswer {
        deadline: Instant,
        /// Boxed: a connection spends a moment in this state, and the request is large.
        request: Box<ConnectRequest>,
    },
    Connected {
        keep_alive: Option<Duration>,
        last_rx: Instant,
    },
    Closed,
}

/// One server-side connection.
///
/// # Driving a server
///
/// - Feed received bytes with [`handle_bytes`](Server::handle_bytes), expiries of
///   [`poll_timeout`](Server::poll_timeout) with [`handle_timeout`](Server::handle_timeout),
///   and the end of the transport with [`connection_lost`](Server::connection_lost).
/// - After every input, call [`poll_action`](Server::poll_action) until it returns `None`,
///   then re-arm your timer with [`poll_timeout`](Server::poll_timeout).
/// - A valid CONNECT that passes the profile's and the [`Authorizer`]'s checks produces
///   [`ServerEvent::Connect`]. Answer it with [`accept`](Server::accept) (giving the
///   session to resume, if any) or [`refuse`](Server::refuse). Packets pipelined after
///   the CONNECT are held until then and processed only if it is accepted
///   (MQTT-3.1.4-5).
/// - Messages for the client are handed over with [`publish`](Server::publish); they go
///   out within the inflight window and are queued (up to a bound) beyond it.
///
/// ```
/// use mqtt_sansio::server::{Action, Server, ServerConfig, ServerEvent};
/// use mqtt_sansio::{ConnAck, Connect, Instant, MqttString, Packet, Profile};
///
/// let mut server = Server::new(Profile::mqtt311(), ServerConfig::default());
/// let connect = Packet::Connect(Connect {
///     client_id: MqttString::from_static("sensor-1")?,
///     clean_session: true,
///     keep_alive: 10,
///     will: None,
///     login: None,
/// });
/// let now = Instant::ZERO;
/// server.handle_bytes(now, &connect.to_bytes()?);
/// while let Some(action) = server.poll_action() {
///     match action {
///         Action::Event(ServerEvent::Connect(req)) => {
///             assert_eq!(req.client_id.as_str(), "sensor-1");
///             server.accept(now, None)?;
///         }
///         Action::Send(packet) => {
///             // Write `packet.to_bytes()` to the socket.
///             assert_eq!(packet, Packet::ConnAck(ConnAck::Accepted { session_present: false }));
///         }
///         Action::Event(_) | Action::Change(_) => {}
///         Action::Close(reason) => panic!("closed: {reason:?}"),
///     }
/// }
/// // Nothing received for 1.5 × 10 s closes the connection.
/// assert_eq!(server.poll_timeout(), Some(Instant::from_secs(15)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Server {
    /// Shared: a broker's connections all follow one profile.
    profile: Arc<Profile>,
    /// Shared, like the profile.
    config: Arc<ServerConfig>,
    decoder: Decoder,
    rx: BytesMut,
    state: State,
    client_id: MqttString<Bytes>,
    /// Boxed: most clients have none, and an idle connection should be small.
    will: Option<Box<Will<Bytes>>>,
    session: ServerSession,
    accepted: bool,
    actions: VecDeque<Action>,
    /// Set by a control packet (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ): `actions`
    /// gives its allocation back once drained, and the outgoing table its room if it
    /// is empty.
    release_actions: bool,
    /// The publish quotas' current window: boxed, and only under a profile with them.
    publish_window: Option<Box<PublishWindow>>,
    /// A PUBLISH over the byte-rate quota, held until the next window; the bytes after
    /// it wait in `rx`.
    delayed: Option<Box<(Instant, Publish<Bytes>)>>,
    /// The broker stopped reading the connection (back-pressure): no keep-alive.
    paused: bool,
    /// Packets decoded from the peer's bytes.
    received: u64,
}

fn protocol(rule: &'static str, expected: &'static str, got: PacketType) -> CloseReason {
    CloseReason::Protocol(ProtocolError::new(rule, expected, got.name()))
}

impl Server {
    /// A new connection, waiting for CONNECT.
    pub fn new(profile: impl Into<Arc<Profile>>, config: impl Into<Arc<ServerConfig>>) -> Server {
        Server::open(Instant::ZERO, profile, config)
    }

    /// A new connection opened at `now`, waiting for CONNECT until `now` plus the
    /// configured connect timeout.
    ///
    /// The profile and the configuration are values or, to share them among many
    /// connections, `Arc`s.
    pub fn open(
        now: Instant,
        profile: impl Into<Arc<Profile>>,
        config: impl Into<Arc<ServerConfig>>,
    ) -> Server {
        let profile = profile.into();
        let config = config.into();
        let deadline = now + config.connect_timeout;
        Server {
            decoder: Decoder::new().with_max_packet_size(max_packet_size(&profile)),
            profile,
            config,
            rx: BytesMut::new(),
            state: State::AwaitingConnect { deadline },
            client_id: MqttString(Bytes::new()),
            will: None,
            session: ServerSession::new(),
            accepted: false,
            publish_window: None,
            delayed: None,
            paused: false,
            actions: VecDeque::new(),
            release_actions: false,
            received: 0,
        }
    }

    /// How many packets were decoded from the peer's bytes so far.
    pub fn packets_received(&self) -> u64 {
        self.received
    }

    /// The profile this connection follows.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The client id, once accepted (possibly assigned by the application).
    pub fn client_id(&self) -> &MqttString<Bytes> {
        &self.client_id
    }

    /// Whether CONNECT has been accepted and the connection is not closed.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The session state of this connection.
    pub fn session(&self) -> &ServerSession {
        &self.session
    }

    /// Takes the session out of a closed connection (to keep it for a later resume);
    /// an open connection keeps its session and this returns `None`.
    ///
    /// Changes recorded and not yet polled stay with the session.
    pub fn take_session(&mut self) -> Option<ServerSession> {
        match self.state {
            State::Closed => {
                let mut session = core::mem::take(&mut self.session);
                session.session.set_recording(false);
                Some(session)
            }
            _ => None,
        }
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.session.session.has_changes() {
            self.flush_changes();
        }
        if self.actions.is_empty() && self.release_actions {
            // After a control packet a connection may stay idle for long; PUBLISH flows
            // come in streams and keep the allocations (one per packet would cost
            // more): the action queue's, and the outgoing table's once it is empty.
            self.release_actions = false;
            self.actions = VecDeque::new();
            self.session.session.release_room();
        }
        // Returned straight from the queue: no copy of the action in between.
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
        if self.session.session.has_changes() {
            self.flush_changes();
        }
    }

    #[cold]
    #[inline(never)]
    fn flush_changes(&mut self) {
        for c in self.session.session.take_changes() {
            self.actions.push_back(Action::Change(c));
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let resume = self.delayed.as_deref().map(|(at, _)| *at);
        let next = match (self.deadline(), resume) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (next, self.retry_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::AwaitingConnect { deadline } | State::AwaitingAnswer { deadline, .. } => {
                Some(*deadline)
            }
            State::Connected {
                keep_alive: Some(ka),
                last_rx,
            } if !self.paused => Some(*last_rx + *ka),
            _ => None,
        }
    }

    /// Time has passed: closes the connection if its deadline is reached, resumes a
    /// PUBLISH held by the byte-rate quota when its window has passed, and drops the
    /// unacknowledged QoS 1 messages the profile's retry limit has reached.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.delayed.as_deref().is_some_and(|(at, _)| now >= *at) {
            if let Some((at, p)) = self.delayed.take().map(|d| *d) {
                self.handle_publish(at.max(now), p);
                self.process(now);
            }
        }
        if self.retry_deadline().is_some_and(|at| now >= at) {
            self.expire_retries(now);
            self.fill_window(now);
        }
        let Some(deadline) = self.deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        let reason = match self.state {
            State::Connected { .. } => CloseReason::KeepAliveTimeout,
            _ => CloseReason::ConnectTimeout,
        };
        self.close(reason);
    }

    /// The transport closed under the connection (reset, EOF without DISCONNECT): the
    /// will is published. No `Close` action is produced.
    pub fn connection_lost(&mut self, _now: Instant) {
        if self.is_closed() {
            return;
        }
        self.finish(true);
    }

    /// Forgets the will, so that it is not published when the connection closes.
    pub fn discard_will(&mut self) {
        self.will = None;
    }

    /// The application closes the connection (for example, on takeover).
    pub fn close_with(&mut self, _now: Instant, reason: CloseReason) {
        self.close(reason);
    }

    fn finish(&mut self, publish_will: bool) {
        let was_connected = self.is_connected();
        self.state = State::Closed;
        self.rx.clear();
        if let Some(will) = self.will.take() {
            if publish_will && was_connected {
                self.event(ServerEvent::Will(Message::from_will(&will)));
            }
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        // The Close action comes first: the will is published after the connection is
        // gone.
        self.push(Action::Close(reason));
        self.finish(reason.publishes_will());
    }

    fn send(&mut self, p: Packet<Bytes>) {
        self.flush_pending();
        self.actions.push_back(Action::Send(p));
    }

    fn event(&mut self, e: ServerEvent) {
        self.flush_pending();
        self.actions.push_back(Action::Event(e));
    }

    /// Bytes arrived on the connection at `now`. An instant earlier than one already
    /// seen counts as that one: the keep-alive deadline never moves back.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.rx.extend_from_slice(bytes);
        if let State::AwaitingAnswer { .. } = self.state {
            if self.rx.len() > self.decoder_limit() {
                self.close(CloseReason::Policy(PolicyViolation::BufferFull));
            }
            return;
        }
        if self.delayed.is_some() {
            // Input waits while a PUBLISH is delayed by the byte-rate quota; a peer
            // that keeps sending beyond one packet's worth meanwhile is closed.
            if self.rx.len() > self.decoder_limit() {
                self.close(CloseReason::Policy(PolicyViolation::BufferFull));
            }
            return;
        }
        self.process(now);
    }

    fn decoder_limit(&self) -> usize {
        max_packet_size(&self.profile)
    }

    fn process(&mut self, now: Instant) {
        loop {
            if self.delayed.is_some() {
                return;
            }
            if !matches!(
                self.state,
                State::AwaitingConnect { .. } | State::Connected { .. }
            ) || self.rx.is_empty()
            {
                return;
            }
            match self.decoder.decode_bytes(&mut self.rx) {
                Ok(Status::Complete(packet, _)) => {
                    self.received += 1;
                    self.handle_packet(now, packet)
                }
                Ok(Status::Incomplete(_)) => return,
                Err(DecodeError::UnsupportedProtocolLevel(_))
                    if matches!(self.state, State::AwaitingConnect { .. }) =>
                {
                    // MQTT-3.1.2-2
                    self.refuse_with(ConnectReturnCode::UnacceptableProtocolVersion);
                    return;
                }
                Err(e) => {
                    self.close(CloseReason::Malformed(e));
                    return;
                }
            }
        }
    }

    fn handle_packet(&mut self, now: Instant, packet: Packet<Bytes>) {
        match self.state {
            State::AwaitingConnect { deadline } => match packet {
                Packet::Connect(c) => self.handle_connect(deadline, c),
                other => self.close(protocol("MQTT-3.1.0-1", "CONNECT", other.packet_type())),
            },
            State::Connected {
                ref mut last_rx, ..
            } => {
                // Time does not run backwards: an instant earlier than one already
                // seen counts as that one, so the keep-alive deadline never moves back.
                *last_rx = (*last_rx).max(now);
                let now = *last_rx;
                self.handle_connected(now, packet);
            }
            _ => {}
        }
    }

    fn window(&self) -> usize {
        window(self.config.max_inflight, &self.profile)
    }

    fn resend(&mut self) {
        for packet in self.session.session.resend(self.profile.resend) {
            self.send(packet);
        }
    }

    /// Sends queued messages while the inflight window has room.
    fn fill_window(&mut self, now: Instant) {
        while self.session.session.inflight() < self.window() && !self.session.queue.is_empty() {
            let Some(id) = self.session.session.allocate_id() else {
                return;
            };
            let Some(m) = self.session.dequeue() else {
                self.session.session.release_id(id);
                return;
            };
            self.send(Packet::Publish(m.to_publish(id, false)));
            self.session.session.push(id, m, Some(now));
        }
    }

    /// The broker stopped (`true`) or resumed reading the connection. While it is
    /// paused, the keep-alive does not run (the client's packets, PINGREQ among them,
    /// wait unread); on resume, it runs again from `now`.
    pub(crate) fn set_paused(&mut self, now: Instant, paused: bool) {
        self.paused = paused;
        if let State::Connected { last_rx, .. } = &mut self.state {
            if !paused {
                *last_rx = (*last_rx).max(now);
            }
        }
    }
}
