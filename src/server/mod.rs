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
use alloc::vec::Vec;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::codec::{Decoder, Status};
pub use crate::connection::ProtocolError;
use crate::error::DecodeError;
use crate::packet::{
    ConnAck, Connect, ConnectReturnCode, Packet, PacketType, Publish, QosPid, SubAck, SubAckCode,
    Subscribe, Unsubscribe, Will,
};
use crate::profile::{Profile, Qos2Policy, RetainPolicy};
use crate::quota::{Admit, PublishWindow};
use crate::session::{Ack, window};
pub use crate::session::{Message, NotQueued, ServerSession};
use crate::time::Instant;
use crate::topic::reserved;
use crate::types::{MqttString, PacketId, QoS, TopicFilter};

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
    /// gives its allocation back once drained.
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
        let action = self.actions.pop_front();
        if action.is_none() && self.release_actions {
            // After a control packet a connection may stay idle for long; PUBLISH flows
            // come in streams and keep the allocation (one per packet would cost more).
            self.release_actions = false;
            self.actions = VecDeque::new();
        }
        action
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

    fn refuse_with(&mut self, code: ConnectReturnCode) {
        self.send(Packet::ConnAck(ConnAck::Refused(code)));
        self.will = None;
        self.close(CloseReason::Refused(code));
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

    fn handle_connect(&mut self, deadline: Instant, c: Connect<Bytes>) {
        let p = &self.profile;
        if c.client_id.is_empty() && !c.clean_session {
            // MQTT-3.1.3-8
            return self.refuse_with(ConnectReturnCode::IdentifierRejected);
        }
        if c.client_id.len() > p.max_client_id_len {
            // MQTT-3.1.3-9
            return self.refuse_with(ConnectReturnCode::IdentifierRejected);
        }
        if let Some(w) = &c.will {
            if w.qos == QoS::ExactlyOnce && !p.supports_qos2() {
                // No CONNACK code fits (MQTT-3.2.2-6); AWS closes without one.
                return self.close(CloseReason::Policy(PolicyViolation::Qos2));
            }
            if w.retain && p.retain == RetainPolicy::Close {
                return self.close(CloseReason::Policy(PolicyViolation::Retain));
            }
            if !p.topic_within_limits(w.topic.as_bytes()) {
                return self.close(CloseReason::Policy(PolicyViolation::TopicTooLong));
            }
            if let Err(r) = reserved::check_publish(p, w.topic.as_bytes(), w.retain) {
                return self.close(CloseReason::Policy(r.into()));
            }
        }
        if let Err(code) = self
            .config
            .authorizer
            .connect(&c.client_id, c.login.as_ref())
        {
            return self.refuse_with(code);
        }
        let request = ConnectRequest {
            client_id: c.client_id,
            clean_session: c.clean_session,
            keep_alive: self.profile.effective_keep_alive(c.keep_alive),
            will: c.will,
            login: c.login,
        };
        self.state = State::AwaitingAnswer {
            deadline,
            request: Box::new(request.clone()),
        };
        self.event(ServerEvent::Connect(request));
    }

    /// Accepts the pending CONNECT (MQTT-3.1.4-4): sends CONNACK with Session Present
    /// set when `resumed` is a stored session, resends its unacknowledged messages per
    /// the profile, then processes the packets pipelined after the CONNECT.
    ///
    /// `client_id` replaces an empty client id (an id the server assigned,
    /// MQTT-3.1.3-6); `None` keeps the one the client sent. Refused with
    /// [`ServerError::NotAwaitingAnswer`], nothing changed, unless a
    /// [`ServerEvent::Connect`] awaits an answer.
    pub fn accept_as(
        &mut self,
        now: Instant,
        client_id: Option<MqttString<Bytes>>,
        resumed: Option<ServerSession>,
    ) -> Result<(), ServerError> {
        let State::AwaitingAnswer { ref request, .. } = self.state else {
            return Err(ServerError::NotAwaitingAnswer);
        };
        let request = ConnectRequest::clone(request);
        let session_present = resumed.is_some() && !request.clean_session;
        self.session = match resumed {
            Some(s) if !request.clean_session => s,
            _ => ServerSession::new(),
        };
        self.session
            .session
            .set_recording(self.config.report_changes && !request.clean_session);
        self.client_id = client_id.unwrap_or(request.client_id);
        self.will = request.will.map(Box::new);
        self.accepted = true;
        self.release_actions = true;
        self.state = State::Connected {
            keep_alive: self.profile.inactivity_timeout(request.keep_alive),
            last_rx: now,
        };
        self.send(Packet::ConnAck(ConnAck::Accepted { session_present }));
        self.expire_retries(now);
        self.resend();
        self.fill_window(now);
        if !self.rx.is_empty() && !self.profile.send_before_connack {
            self.close(CloseReason::Policy(PolicyViolation::SentBeforeConnAck));
            return Ok(());
        }
        self.process(now);
        Ok(())
    }

    /// [`accept_as`](Self::accept_as) keeping the client's own id.
    pub fn accept(
        &mut self,
        now: Instant,
        resumed: Option<ServerSession>,
    ) -> Result<(), ServerError> {
        self.accept_as(now, None, resumed)
    }

    /// Refuses the pending CONNECT with `code`: sends CONNACK with it and closes
    /// (MQTT-3.2.2-5), ignoring anything pipelined (MQTT-3.1.4-5). Refused with
    /// [`ServerError::NotAwaitingAnswer`], nothing changed, unless a
    /// [`ServerEvent::Connect`] awaits an answer.
    pub fn refuse(&mut self, _now: Instant, code: ConnectReturnCode) -> Result<(), ServerError> {
        let State::AwaitingAnswer { .. } = self.state else {
            return Err(ServerError::NotAwaitingAnswer);
        };
        self.refuse_with(code);
        Ok(())
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

    fn unexpected(&mut self, got: PacketType) {
        self.close(protocol("MQTT-4.8.0-1", "a packet a client sends", got));
    }

    fn handle_connected(&mut self, now: Instant, packet: Packet<Bytes>) {
        self.release_actions |= matches!(
            packet,
            Packet::Subscribe(_) | Packet::Unsubscribe(_) | Packet::PingReq
        );
        match packet {
            Packet::Connect(_) => self.close(protocol(
                "MQTT-3.1.0-2",
                "no second CONNECT",
                PacketType::Connect,
            )),
            Packet::Publish(p) => self.handle_publish(now, p),
            Packet::PubAck(id) => {
                let ack = self.session.session.on_puback(id);
                self.on_ack(now, PacketType::PubAck, id, ack);
            }
            Packet::PubRec(id) => {
                let ack = self.session.session.on_pubrec(id);
                self.on_ack(now, PacketType::PubRec, id, ack);
            }
            Packet::PubComp(id) => {
                let ack = self.session.session.on_pubcomp(id);
                self.on_ack(now, PacketType::PubComp, id, ack);
            }
            Packet::PubRel(id) => {
                self.session.session.on_pubrel(id);
                self.send(Packet::PubComp(id));
            }
            Packet::Subscribe(s) => self.handle_subscribe(s),
            Packet::Unsubscribe(u) => self.handle_unsubscribe(u),
            Packet::PingReq => self.send(Packet::PingResp),
            Packet::Disconnect => {
                // MQTT-3.14.4-3: the will is discarded.
                self.will = None;
                self.close(CloseReason::ClientDisconnect);
            }
            other @ (Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp) => self.unexpected(other.packet_type()),
        }
    }

    fn on_ack(&mut self, now: Instant, packet_type: PacketType, packet_id: PacketId, ack: Ack) {
        match ack {
            Ack::Completed(_) => self.fill_window(now),
            Ack::Released | Ack::Repeated => self.send(Packet::PubRel(packet_id)),
            Ack::Unexpected => self.event(ServerEvent::UnexpectedAck {
                packet_type,
                packet_id,
            }),
        }
    }

    fn handle_publish(&mut self, now: Instant, p: Publish<Bytes>) {
        let profile = &self.profile;
        if !profile.topic_within_limits(p.topic.as_bytes()) {
            return self.close(CloseReason::Policy(PolicyViolation::TopicTooLong));
        }
        if p.payload.len() > profile.max_payload {
            return self.close(CloseReason::Policy(PolicyViolation::PayloadTooLarge));
        }
        if p.retain && profile.retain == RetainPolicy::Close {
            return self.close(CloseReason::Policy(PolicyViolation::Retain));
        }
        if let Err(r) = reserved::check_publish(profile, p.topic.as_bytes(), p.retain) {
            return self.close(CloseReason::Policy(r.into()));
        }
        let size = p.topic.as_bytes().len() + p.payload.len();
        let quotas = &profile.quotas;
        let admit =
            if quotas.publishes_per_second.is_none() && quotas.publish_bytes_per_second.is_none() {
                Admit::Yes
            } else {
                // The window exists only under a profile with publish quotas.
                let window = self.publish_window.get_or_insert_with(Box::default);
                window.admit(now, quotas, size)
            };
        match admit {
            Admit::Yes => {}
            Admit::OverCount => return self.event(ServerEvent::Ignored(Ignored::PublishOverQuota)),
            Admit::OverBytes { resume } => {
                self.delayed = Some(Box::new((resume, p)));
                return;
            }
        }
        if let QosPid::ExactlyOnce(_) = p.qos {
            match profile.qos2 {
                Qos2Policy::Supported => {}
                Qos2Policy::Ignore => {
                    return self.event(ServerEvent::Ignored(Ignored::Qos2Publish));
                }
                Qos2Policy::Close => {
                    return self.close(CloseReason::Policy(PolicyViolation::Qos2));
                }
            }
        }
        let message = Message::from_publish(&p);
        if let QosPid::ExactlyOnce(id) = p.qos {
            if self.session.session.awaits_pubrel(id) {
                // A repeat before PUBREL: acknowledge again, deliver once (MQTT-4.3.3-2).
                return self.send(Packet::PubRec(id));
            }
            let bound = window(self.config.max_inbound_qos2, &self.profile);
            if self.session.session.inbound_qos2_len() >= bound {
                return self.close(CloseReason::Policy(PolicyViolation::TooManyInboundQos2));
            }
        }
        let decision = self.config.authorizer.publish(&self.client_id, &message);
        if decision == PublishDecision::Close {
            return self.close(CloseReason::Policy(PolicyViolation::NotAuthorized));
        }
        if let QosPid::ExactlyOnce(id) = p.qos {
            self.session.session.receive_qos2(id);
        }
        // The message goes to the application (the broker stores and routes it) before
        // it is acknowledged: acknowledged means stored.
        self.event(match decision {
            PublishDecision::Allow => ServerEvent::Publish(message),
            _ => ServerEvent::Discarded(message),
        });
        match p.qos {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(id) => self.send(Packet::PubAck(id)),
            QosPid::ExactlyOnce(id) => self.send(Packet::PubRec(id)),
        }
    }

    fn handle_subscribe(&mut self, s: Subscribe<Bytes>) {
        let wants_qos2 = s.filters().any(|(_, q)| q == QoS::ExactlyOnce);
        if wants_qos2 {
            match self.profile.qos2 {
                Qos2Policy::Supported => {}
                Qos2Policy::Ignore => {
                    return self.event(ServerEvent::Ignored(Ignored::Qos2Subscribe));
                }
                Qos2Policy::Close => {
                    return self.close(CloseReason::Policy(PolicyViolation::Qos2));
                }
            }
        }
        if s.filters()
            .any(|(f, _)| reserved::check_subscribe(&self.profile, f.as_bytes()).is_err())
        {
            return self.close(CloseReason::Policy(PolicyViolation::ReservedTopic));
        }
        let mut codes = Vec::new();
        let mut granted = Vec::new();
        for (i, (filter, requested)) in s.filters_shared().enumerate() {
            let code = self.grant(i, &filter, requested);
            if let SubAckCode::Granted(q) = code {
                granted.push((filter, q));
            }
            codes.push(code);
        }
        // MQTT-3.8.4-1, -2, -5, MQTT-3.9.3-1: one SUBACK, same id, one code per filter.
        match SubAck::new(s.packet_id, codes) {
            Ok(ack) => self.send(Packet::SubAck(ack)),
            Err(e) => return self.close(CloseReason::Malformed(e)),
        }
        if !granted.is_empty() {
            self.event(ServerEvent::Subscribed(granted));
        }
    }

    fn grant(&mut self, index: usize, filter: &TopicFilter<Bytes>, requested: QoS) -> SubAckCode {
        let p = &self.profile;
        if p.max_filters_per_subscribe.is_some_and(|m| index >= m)
            || !p.topic_within_limits(filter.as_bytes())
        {
            return SubAckCode::Failure;
        }
        let Some(q) = self
            .config
            .authorizer
            .subscribe(&self.client_id, filter, requested)
        else {
            return SubAckCode::Failure;
        };
        let q = q.min(requested);
        let subs = &self.session.subscriptions;
        if !subs.contains_key(filter.as_bytes())
            && p.max_subscriptions.is_some_and(|m| subs.len() >= m)
        {
            return SubAckCode::Failure;
        }
        // MQTT-3.8.4-3: an identical filter replaces the subscription.
        self.session.subscribe(filter, q);
        SubAckCode::Granted(q)
    }

    fn handle_unsubscribe(&mut self, u: Unsubscribe<Bytes>) {
        let mut removed = Vec::new();
        for f in u.filters_shared() {
            // MQTT-3.10.4-1: filters are compared literally.
            if self.session.unsubscribe(&f) {
                removed.push(f);
            }
        }
        // MQTT-3.10.4-4, -5, -6: exactly one UNSUBACK, even if nothing was removed.
        self.send(Packet::UnsubAck(u.packet_id));
        if !removed.is_empty() {
            self.event(ServerEvent::Unsubscribed(removed));
        }
    }
}
