//! The `server` target: one `Server` connection against a scripted client.

use super::peer::*;
use super::*;

/// One operation of a `server` run.
#[derive(Arbitrary, Debug, Clone)]
pub enum ServerOp {
    /// Something from the client.
    Peer(ClientPacket, Delivery),
    /// `accept` (or `accept_as` an assigned id), resuming the stored session or not.
    Accept {
        /// Resume the session kept by [`ServerOp::Reopen`].
        resume: bool,
        /// Assign a client id.
        assign: bool,
    },
    /// `refuse`.
    Refuse(ConnectReturnCode),
    /// `publish` a message to the client.
    Publish {
        /// Topic pool index.
        topic: u8,
        /// QoS.
        qos: QoS,
        /// RETAIN.
        retain: bool,
        /// Payload.
        payload: Payload,
    },
    /// `connection_lost`.
    ConnectionClosed,
    /// `close_with` an application close.
    Close,
    /// `discard_will`.
    DiscardWill,
    /// A new connection: the old one's transport closes, its session is taken.
    Reopen,
    /// Time passes; `precise` fires every timer at its instant.
    Advance(Step, bool),
    /// `handle_timeout` now, due or not.
    Fire,
}

/// A `server` input: setup and operations.
#[derive(Arbitrary, Debug, Clone)]
pub struct ServerInput {
    /// The setup.
    pub setup: ServerSetup,
    /// The operations.
    pub ops: Vec<ServerOp>,
}

/// One entry of a server run's transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRecord {
    /// The result of `publish` (`true`: taken).
    Published(bool),
    /// An action.
    Action(ServerAction),
    /// `poll_timeout` after an input.
    Wake(Option<Instant>),
}

/// A session kept between connections, with the client's view of it.
pub(super) struct Kept {
    session: ServerSession,
    unacked: BTreeSet<PacketId>,
    inbound: BTreeSet<PacketId>,
}

pub(super) struct ServerRun {
    server: Server,
    profile: Profile,
    config: ServerConfig,
    now: Instant,
    log: Vec<ServerRecord>,
    closed: bool,
    /// CONNACK accepted the connection.
    accepted: bool,
    sent: usize,
    /// A refusing CONNACK was sent: its `Close` comes next.
    expect_close: Option<CloseReason>,
    /// The CONNECT awaiting an answer.
    awaiting: Option<mqtt_sansio::server::ConnectRequest>,
    /// What the accepted CONNACK must say, and the client's view of the session.
    pending_accept: Option<(bool, Option<Kept>)>,
    peer: Peer,
    /// The server's read buffer, mirrored: what it has not handled yet.
    rx: Shadow,
    /// The mirrored buffer has given up the CONNECT awaiting an answer.
    connect_taken: bool,
    /// Inbound QoS 2 ids awaiting PUBREL: PUBREC sent, PUBCOMP not yet.
    inbound: BTreeSet<PacketId>,
    kept: Option<Kept>,
}

impl ServerRun {
    pub(super) fn new(setup: &ServerSetup) -> ServerRun {
        let (profile, config) = setup.build();
        ServerRun {
            server: Server::open(Instant::ZERO, profile.clone(), config.clone()),
            rx: Shadow::with_limit(server_packet_limit(&profile)),
            connect_taken: false,
            profile,
            config,
            now: Instant::ZERO,
            log: Vec::new(),
            closed: false,
            accepted: false,
            sent: 0,
            expect_close: None,
            awaiting: None,
            pending_accept: None,
            peer: Peer::default(),
            inbound: BTreeSet::new(),
            kept: None,
        }
    }

    pub(super) fn on_send(&mut self, p: &Packet<Bytes>) {
        assert!(!self.closed, "sent {p:?} on a closed connection");
        assert!(
            self.expect_close.is_none(),
            "sent {p:?} after a refusing CONNACK"
        );
        assert_server_packet(p);
        assert_wire_roundtrip(p);
        if self.sent == 0 {
            assert!(
                matches!(p, Packet::ConnAck(_)),
                "first packet {p:?} is not CONNACK"
            );
        } else {
            assert!(!matches!(p, Packet::ConnAck(_)), "a second CONNACK");
        }
        self.sent += 1;
        match p {
            Packet::ConnAck(ConnAck::Accepted { session_present }) => {
                let Some((expected, kept)) = self.pending_accept.take() else {
                    panic!("CONNACK accepted without accept");
                };
                assert_eq!(*session_present, expected, "session present is wrong");
                self.accepted = true;
                self.awaiting = None;
                match kept {
                    Some(k) if *session_present => {
                        self.peer.unacked =
                            if self.profile.resend == mqtt_sansio::profile::ResendPolicy::FreshId {
                                BTreeSet::new()
                            } else {
                                k.unacked
                            };
                        self.inbound = k.inbound;
                    }
                    _ => {
                        self.peer.unacked.clear();
                        self.inbound.clear();
                    }
                }
            }
            Packet::ConnAck(ConnAck::Refused(code)) => {
                self.awaiting = None;
                self.expect_close = Some(CloseReason::Refused(*code));
            }
            Packet::Publish(_) => {
                assert!(self.accepted, "PUBLISH before CONNACK");
                if let Some((id, dup)) = publish_id(p) {
                    self.peer.received(id, dup);
                }
            }
            Packet::PubRec(id) => {
                self.inbound.insert(*id);
            }
            Packet::PubComp(id) => {
                self.inbound.remove(id);
            }
            _ => {}
        }
    }

    pub(super) fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(a) = self.server.poll_action() {
            n += 1;
            match &a {
                ServerAction::Send(p) => self.on_send(p),
                ServerAction::Close(reason) => {
                    assert!(!self.closed, "a second Close: {reason:?}");
                    if let Some(expected) = self.expect_close.take() {
                        assert_eq!(*reason, expected, "a refusing CONNACK closes otherwise");
                    }
                    self.closed = true;
                }
                ServerAction::Change(c) => panic!("{c:?} reported without report_changes"),
                ServerAction::Event(e) => match e {
                    ServerEvent::Connect(req) => {
                        assert!(
                            self.awaiting.is_none() && !self.accepted && !self.closed,
                            "a second CONNECT reported"
                        );
                        assert_eq!(self.sent, 0, "CONNECT reported after sending");
                        self.awaiting = Some(req.clone());
                    }
                    ServerEvent::Will(_) => {
                        assert!(self.closed && self.accepted, "a will before the close");
                    }
                    _ => assert!(
                        self.accepted && !self.closed,
                        "{e:?} outside an accepted connection"
                    ),
                },
            }
            self.log.push(ServerRecord::Action(a));
        }
        n
    }

    pub(super) fn check_state(&self) {
        assert_eq!(
            self.server.is_closed(),
            self.closed,
            "closed is not the model's"
        );
        assert_eq!(
            self.server.is_connected(),
            self.accepted && !self.closed,
            "connected is not the model's"
        );
        assert_eq!(
            self.expect_close, None,
            "a refusing CONNACK without its Close"
        );
        assert_session_bounds(self.server.session(), &self.config, &self.profile, true);
        let bound = inbound_bound(&self.config, &self.profile);
        assert!(
            self.inbound.len() <= bound,
            "{} inbound QoS 2 awaiting PUBREL over the bound {bound}",
            self.inbound.len()
        );
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        if !self.closed {
            self.peer.sent(bytes);
            self.rx.buf.extend_from_slice(bytes);
        }
        self.server.handle_bytes(self.now, bytes);
        self.drain();
        self.check_buffer();
    }

    /// The mirrored read buffer: while a CONNECT awaits its answer, the server holds
    /// what follows it (closing beyond the limit); otherwise it handles every complete
    /// packet and keeps part of one.
    pub(super) fn check_buffer(&mut self) {
        let limit = server_packet_limit(&self.profile);
        if self.closed {
            self.rx.reset();
        } else if self.awaiting.is_some() && !self.accepted {
            if !self.connect_taken {
                // The CONNECT itself was handled, and nothing after it.
                let first = self.rx.decoder.decode_bytes(&mut self.rx.buf);
                assert!(
                    matches!(first, Ok(Status::Complete(Packet::Connect(_), _))),
                    "CONNECT reported, but the stream starts with {first:?}"
                );
                self.connect_taken = true;
            }
            assert!(
                self.rx.buf.len() <= limit,
                "{} bytes held after CONNECT over the {limit}-byte limit",
                self.rx.buf.len()
            );
        } else {
            self.rx.feed(&[]);
            assert_buffered_within(&self.rx, limit);
        }
    }

    pub(super) fn fire(&mut self) {
        let now = self.now;
        check_fire(
            self,
            now,
            false,
            |r| {
                r.server.handle_timeout(now);
                r.drain()
            },
            |r| r.server.poll_timeout(),
        );
    }

    pub(super) fn advance(&mut self, step: Step, precise: bool) {
        let end = self.now + step.duration();
        if precise {
            for _ in 0..MAX_TIMER_FIRES {
                match self.server.poll_timeout() {
                    Some(t) if t <= end => {
                        self.now = self.now.max(t);
                        self.fire();
                    }
                    _ => break,
                }
            }
        } else if self.server.poll_timeout().is_some_and(|t| t <= end) {
            self.now = end;
            self.fire();
        }
        self.now = end;
    }

    /// An answer to a CONNECT that is not awaiting one is refused and does nothing.
    pub(super) fn answer_without_connect(
        &mut self,
        f: impl FnOnce(&mut Server, Instant) -> Result<(), ServerError>,
    ) {
        let before = (self.server.is_closed(), self.server.poll_timeout());
        assert_eq!(
            f(&mut self.server, self.now),
            Err(ServerError::NotAwaitingAnswer),
            "an answer without CONNECT was not refused"
        );
        assert!(
            self.server.poll_action().is_none(),
            "an answer without CONNECT acted"
        );
        let after = (self.server.is_closed(), self.server.poll_timeout());
        assert_eq!(
            before, after,
            "an answer without CONNECT changed the server"
        );
    }

    pub(super) fn apply(&mut self, op: &ServerOp) {
        match op {
            ServerOp::Peer(packet, how) => {
                let bytes = self.peer.build(packet);
                for chunk in chunks(&bytes, *how) {
                    self.bytes(chunk);
                }
            }
            ServerOp::Accept { resume, assign } => {
                let Some(req) = self.awaiting.clone().filter(|_| !self.closed) else {
                    let kept = if *resume {
                        self.kept.as_ref().map(|k| k.session.clone())
                    } else {
                        None
                    };
                    return self.answer_without_connect(|s, now| s.accept(now, kept));
                };
                let kept = if *resume { self.kept.take() } else { None };
                let expected = kept.is_some() && !req.clean_session;
                let session = kept.as_ref().map(|k| k.session.clone());
                self.pending_accept = Some((expected, kept));
                if *assign {
                    let id = MqttString::from_static("assigned").expect("valid");
                    self.server
                        .accept_as(self.now, Some(id), session)
                        .expect("a CONNECT awaits the answer");
                } else {
                    self.server
                        .accept(self.now, session)
                        .expect("a CONNECT awaits the answer");
                }
                self.drain();
                assert!(self.pending_accept.is_none(), "accept sent no CONNACK");
                self.check_buffer();
            }
            ServerOp::Refuse(code) => {
                if self.awaiting.is_none() || self.closed {
                    return self.answer_without_connect(|s, now| s.refuse(now, *code));
                }
                self.server
                    .refuse(self.now, *code)
                    .expect("a CONNECT awaits the answer");
                self.drain();
                assert!(self.closed, "refuse did not close");
            }
            ServerOp::Publish {
                topic: t,
                qos,
                retain,
                payload,
            } => {
                let m = Message {
                    topic: topic(*t),
                    payload: payload.bytes(),
                    qos: *qos,
                    retain: *retain,
                };
                let queued = self.server.session().queued();
                let full = *qos != QoS::AtMostOnce && queued >= self.config.max_queued;
                let expected = if self.accepted { !full } else { false };
                let r = self.server.publish(self.now, m.clone());
                self.log.push(ServerRecord::Published(r.is_ok()));
                assert_eq!(r.is_ok(), expected, "publish taken or refused wrongly");
                if let Err(back) = r {
                    assert_eq!(back.0, m, "publish gave back another message");
                    assert!(
                        self.server.poll_action().is_none(),
                        "a refused publish acted"
                    );
                    assert_eq!(self.server.session().queued(), queued, "refused but queued");
                }
            }
            ServerOp::ConnectionClosed => {
                let was_closed = self.closed;
                self.server.connection_lost(self.now);
                self.closed = true;
                let n = self.log.len();
                self.drain();
                let closes = self.log[n..]
                    .iter()
                    .filter(|r| matches!(r, ServerRecord::Action(ServerAction::Close(_))))
                    .count();
                assert_eq!(closes, 0, "connection_lost produced a Close");
                if was_closed {
                    assert_eq!(self.log.len(), n, "connection_lost after close acted");
                }
            }
            ServerOp::Close => {
                let was_closed = self.closed;
                self.server.close_with(self.now, CloseReason::Application);
                let n = self.drain();
                assert!(self.closed, "close_with did not close");
                if was_closed {
                    assert_eq!(n, 0, "close_with after close acted");
                }
            }
            ServerOp::DiscardWill => self.server.discard_will(),
            ServerOp::Reopen => {
                if !self.closed {
                    self.server.connection_lost(self.now);
                    self.closed = true;
                    self.drain();
                }
                let session = self.server.take_session();
                assert!(session.is_some(), "a closed connection kept its session");
                if self.accepted {
                    if let Some(session) = session {
                        self.kept = Some(Kept {
                            session,
                            unacked: core::mem::take(&mut self.peer.unacked),
                            inbound: core::mem::take(&mut self.inbound),
                        });
                    }
                }
                self.server = Server::open(self.now, self.profile.clone(), self.config.clone());
                self.closed = false;
                self.accepted = false;
                self.sent = 0;
                self.awaiting = None;
                self.pending_accept = None;
                self.peer = Peer::default();
                self.rx.reset();
                self.connect_taken = false;
                self.inbound.clear();
            }
            ServerOp::Advance(step, precise) => self.advance(*step, *precise),
            ServerOp::Fire => self.fire(),
        }
        self.drain();
        self.check_state();
        self.log
            .push(ServerRecord::Wake(self.server.poll_timeout()));
    }
}

impl Machine for ServerRun {
    type Setup = ServerSetup;
    type Op = ServerOp;
    type Record = ServerRecord;

    fn new(setup: &ServerSetup) -> ServerRun {
        ServerRun::new(setup)
    }

    fn apply(&mut self, op: &ServerOp) {
        ServerRun::apply(self, op)
    }

    fn into_log(self) -> Vec<ServerRecord> {
        self.log
    }
}

/// Runs a `server` input, checking every step; returns the transcript.
pub fn run_server(input: &ServerInput) -> Vec<ServerRecord> {
    run::<ServerRun>(&input.setup, &input.ops)
}

/// The `server` target: a server connection driven by arbitrary operations keeps every
/// invariant, and the same operations on a fresh server give the same transcript.
pub fn check_server(data: &[u8]) {
    if let Some((setup, ops)) = parse::<ServerSetup, ServerOp>(data) {
        check_twice::<ServerRun>(&setup, &ops);
    }
}

/// [`check_server`] for a built input.
pub fn check_server_input(input: &ServerInput) {
    check_twice::<ServerRun>(&input.setup, &input.ops);
}
