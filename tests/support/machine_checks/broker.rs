//! The `broker` target: a `Broker` with four connection ids and scripted clients.

use super::peer::*;
use super::*;

/// The setup of a `broker` run.
#[derive(Arbitrary, Debug, Clone)]
pub struct BrokerSetup {
    /// The per-connection settings.
    pub connection: ServerSetup,
    /// Session bound (0 to 5), if any.
    pub max_sessions: Option<u8>,
    /// Retained message bound (0 to 5), if any.
    pub max_retained: Option<u8>,
    /// [`QueueFullPolicy::Backpressure`] instead of dropping.
    pub backpressure: bool,
    /// Byte bound of each session's queue (0 to 255), if any.
    pub max_queued_bytes: Option<u8>,
    /// Byte bound over every session's queue (0 to 1023), if any.
    pub max_queued_bytes_total: Option<u16>,
}

/// One operation of a `broker` run, on one of four connection ids.
#[derive(Arbitrary, Debug, Clone)]
pub enum BrokerOp {
    /// `open`.
    Open(u8),
    /// Something from the client on a connection.
    Peer(u8, ClientPacket, Delivery),
    /// `close` by the application.
    Close(u8),
    /// `connection_lost`: the transport ended.
    ConnectionClosed(u8),
    /// Time passes; `precise` fires every timer at its instant.
    Advance(Step, bool),
    /// `handle_timeout` now, due or not.
    Fire,
}

/// A `broker` input: setup and operations.
#[derive(Arbitrary, Debug, Clone)]
pub struct BrokerInput {
    /// The setup.
    pub setup: BrokerSetup,
    /// The operations.
    pub ops: Vec<BrokerOp>,
}

/// One entry of a broker run's transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerRecord {
    /// The result of `open`.
    Opened(bool),
    /// An action.
    Action(BrokerAction),
    /// `poll_timeout` after an input.
    Wake(Option<Instant>),
}

/// What the model knows of one open connection.
#[derive(Default)]
pub(super) struct BrokerConn {
    sent: usize,
    accepted: bool,
    expect_close: Option<CloseReason>,
    peer: Peer,
    /// The connection's read buffer, mirrored (the broker answers CONNECT at once, so
    /// every complete packet is handled).
    rx: Shadow,
    /// Inbound QoS 2 ids: PUBREC sent on this connection, PUBCOMP not yet (a subset of
    /// the session's, which a resumed session may extend).
    inbound: BTreeSet<PacketId>,
    /// Between a `Pause` and its `Resume` (the model goes on feeding it: the broker
    /// must hold whatever a driver hands it).
    paused: bool,
}

pub(super) struct BrokerRun {
    broker: Broker,
    profile: Profile,
    config: BrokerConfig,
    now: Instant,
    log: Vec<BrokerRecord>,
    conns: BTreeMap<ConnId, BrokerConn>,
    /// Every client id a connection was accepted for.
    clients: BTreeSet<Bytes>,
    /// The first export with every reported change applied: the export, always.
    durable: BrokerExport,
}

pub(super) fn conn_id(c: u8) -> ConnId {
    ConnId(u64::from(c % 4))
}

impl BrokerRun {
    pub(super) fn new(setup: &BrokerSetup) -> BrokerRun {
        let (profile, connection) = setup.connection.build();
        let config = BrokerConfig {
            // Checked against the export after every input.
            connection: ServerConfig {
                report_changes: true,
                max_queued_bytes: setup.max_queued_bytes.map(usize::from),
                ..connection
            },
            max_sessions: setup.max_sessions.map(|n| usize::from(n % 6)),
            max_retained: setup.max_retained.map(|n| usize::from(n % 6)),
            queue_full: if setup.backpressure {
                QueueFullPolicy::Backpressure
            } else {
                QueueFullPolicy::Drop
            },
            max_queued_bytes_total: setup.max_queued_bytes_total.map(|n| usize::from(n % 1024)),
        };
        BrokerRun {
            broker: Broker::new(profile.clone(), config.clone()),
            profile,
            config,
            now: Instant::ZERO,
            log: Vec::new(),
            conns: BTreeMap::new(),
            clients: BTreeSet::new(),
            durable: BrokerExport::default(),
        }
    }

    pub(super) fn conn(&mut self, conn: ConnId, what: &dyn core::fmt::Debug) -> &mut BrokerConn {
        match self.conns.get_mut(&conn) {
            Some(c) => c,
            None => panic!("{what:?} for connection {}, which is not open", conn.0),
        }
    }

    pub(super) fn on_send(&mut self, conn: ConnId, p: &Packet<Bytes>) {
        let c = self.conn(conn, p);
        assert!(
            c.expect_close.is_none(),
            "sent {p:?} after a refusing CONNACK"
        );
        assert_server_packet(p);
        assert_wire_roundtrip(p);
        if c.sent == 0 {
            assert!(
                matches!(p, Packet::ConnAck(_)),
                "first packet {p:?} is not CONNACK"
            );
        } else {
            assert!(!matches!(p, Packet::ConnAck(_)), "a second CONNACK");
        }
        c.sent += 1;
        match p {
            Packet::ConnAck(ConnAck::Accepted { .. }) => c.accepted = true,
            Packet::ConnAck(ConnAck::Refused(code)) => {
                c.expect_close = Some(CloseReason::Refused(*code));
            }
            Packet::Publish(_) => {
                assert!(c.accepted, "PUBLISH before CONNACK");
                if let Some((id, dup)) = publish_id(p) {
                    c.peer.received(id, dup);
                }
            }
            Packet::PubRec(id) => {
                c.inbound.insert(*id);
            }
            Packet::PubComp(id) => {
                c.inbound.remove(id);
            }
            _ => {}
        }
    }

    pub(super) fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(a) = self.broker.poll_action() {
            n += 1;
            match &a {
                BrokerAction::Send { conn, packet } => self.on_send(*conn, packet),
                BrokerAction::Close { conn, reason } => {
                    let c = self.conn(*conn, reason);
                    if let Some(expected) = c.expect_close.take() {
                        assert_eq!(*reason, expected, "a refusing CONNACK closes otherwise");
                    }
                    self.conns.remove(conn);
                }
                BrokerAction::Change(c) => {
                    if let Err(e) = self.durable.apply(c) {
                        panic!("{c:?} does not apply to the export: {e}");
                    }
                }
                BrokerAction::Pause { conn } | BrokerAction::Resume { conn } => {
                    assert_eq!(
                        self.config.queue_full,
                        QueueFullPolicy::Backpressure,
                        "no back-pressure under the drop policy: {a:?}"
                    );
                    let pause = matches!(a, BrokerAction::Pause { .. });
                    let c = self.conn(*conn, &a);
                    assert!(c.accepted, "{a:?} before the CONNECT was accepted");
                    assert_ne!(c.paused, pause, "{a:?} twice in a row");
                    c.paused = pause;
                }
                BrokerAction::Event(e) => match e {
                    BrokerEvent::Connected {
                        conn, client_id, ..
                    } => {
                        let c = self.conn(*conn, e);
                        assert!(
                            !c.accepted && c.sent == 0,
                            "Connected twice on a connection"
                        );
                        self.clients.insert(client_id.as_bytes().to_vec().into());
                    }
                    BrokerEvent::Ignored { conn, .. }
                    | BrokerEvent::SessionLimit { conn }
                    | BrokerEvent::Discarded { conn, .. } => {
                        self.conn(*conn, e);
                    }
                    _ => {}
                },
            }
            self.log.push(BrokerRecord::Action(a));
        }
        n
    }

    pub(super) fn check_state(&self) {
        let export = self.broker.export();
        assert_eq!(
            self.durable, export,
            "the changes applied to the first export are not the export"
        );
        assert_eq!(
            BrokerExport::from_bytes(&export.to_bytes()),
            Ok(export),
            "the export does not survive its encoding"
        );
        assert_eq!(
            self.broker.connections(),
            self.conns.len(),
            "open connections are not the model's"
        );
        let conn_config = &self.config.connection;
        // Under back-pressure a queue takes what was read beyond its bounds; under the
        // drop policy they hold.
        let dropping = self.config.queue_full == QueueFullPolicy::Drop;
        let mut sessions = 0;
        for client in &self.clients {
            let key = std::str::from_utf8(client).expect("client ids are UTF-8");
            if let Some(s) = self.broker.session(key) {
                sessions += 1;
                assert_session_bounds(s, conn_config, &self.profile, dropping);
            }
        }
        if let (true, Some(max)) = (dropping, self.config.max_queued_bytes_total) {
            let n = self.broker.queued_bytes();
            assert!(n <= max, "{n} queued bytes over the budget {max}");
        }
        if let Some(max) = self.config.max_sessions {
            assert!(sessions <= max, "{sessions} sessions over the bound {max}");
        }
        if let Some(max) = self.config.max_retained {
            let n = self.broker.retained_len();
            assert!(n <= max, "{n} retained messages over the bound {max}");
        }
        let bound = inbound_bound(conn_config, &self.profile);
        for (id, c) in &self.conns {
            assert_eq!(c.expect_close, None, "a refusing CONNACK without its Close");
            assert_eq!(
                self.broker.is_paused(*id),
                c.paused,
                "connection {} paused otherwise than its actions said",
                id.0
            );
            assert!(
                c.inbound.len() <= bound,
                "{} inbound QoS 2 on connection {} over the bound {bound}",
                c.inbound.len(),
                id.0
            );
        }
    }

    pub(super) fn fire(&mut self) {
        let now = self.now;
        check_fire(
            self,
            now,
            false,
            |r| {
                r.broker.handle_timeout(now);
                r.drain()
            },
            |r| r.broker.poll_timeout(),
        );
    }

    pub(super) fn advance(&mut self, step: Step, precise: bool) {
        let end = self.now + step.duration();
        if precise {
            for _ in 0..MAX_TIMER_FIRES {
                match self.broker.poll_timeout() {
                    Some(t) if t <= end => {
                        self.now = self.now.max(t);
                        self.fire();
                    }
                    _ => break,
                }
            }
        } else if self.broker.poll_timeout().is_some_and(|t| t <= end) {
            self.now = end;
            self.fire();
        }
        self.now = end;
    }

    pub(super) fn apply(&mut self, op: &BrokerOp) {
        match op {
            BrokerOp::Open(c) => {
                let conn = conn_id(*c);
                let r = self.broker.open(self.now, conn);
                self.log.push(BrokerRecord::Opened(r.is_ok()));
                assert_eq!(
                    r.is_err(),
                    self.conns.contains_key(&conn),
                    "open refused iff the id is open"
                );
                if r.is_ok() {
                    let limit = server_packet_limit(&self.profile);
                    let c = BrokerConn {
                        rx: Shadow::with_limit(limit),
                        ..BrokerConn::default()
                    };
                    self.conns.insert(conn, c);
                }
                assert_eq!(self.drain(), 0, "open acted");
            }
            BrokerOp::Peer(c, packet, how) => {
                let conn = conn_id(*c);
                let bytes = match self.conns.get(&conn) {
                    Some(m) => m.peer.build(packet),
                    None => Peer::default().build(packet),
                };
                for chunk in chunks(&bytes, *how) {
                    let open = match self.conns.get_mut(&conn) {
                        Some(m) => {
                            m.peer.sent(chunk);
                            m.rx.buf.extend_from_slice(chunk);
                            true
                        }
                        None => false,
                    };
                    self.broker.handle_bytes(self.now, conn, chunk);
                    let n = self.drain();
                    if !open {
                        assert_eq!(n, 0, "bytes for a connection that is not open acted");
                    }
                    let limit = server_packet_limit(&self.profile);
                    if let Some(m) = self.conns.get_mut(&conn) {
                        m.rx.feed(&[]);
                        assert_buffered_within(&m.rx, limit);
                    }
                }
            }
            BrokerOp::Close(c) => {
                let conn = conn_id(*c);
                let open = self.conns.contains_key(&conn);
                self.broker.close(self.now, conn);
                let n = self.drain();
                assert!(
                    !self.conns.contains_key(&conn),
                    "close left the connection open"
                );
                if !open {
                    assert_eq!(n, 0, "close of a connection that is not open acted");
                }
            }
            BrokerOp::ConnectionClosed(c) => {
                let conn = conn_id(*c);
                let open = self.conns.remove(&conn).is_some();
                self.broker.connection_lost(self.now, conn);
                let n = self.drain();
                if !open {
                    assert_eq!(n, 0, "connection_lost of a connection not open acted");
                }
            }
            BrokerOp::Advance(step, precise) => self.advance(*step, *precise),
            BrokerOp::Fire => self.fire(),
        }
        self.drain();
        self.check_state();
        self.log
            .push(BrokerRecord::Wake(self.broker.poll_timeout()));
    }
}

impl Machine for BrokerRun {
    type Setup = BrokerSetup;
    type Op = BrokerOp;
    type Record = BrokerRecord;

    fn new(setup: &BrokerSetup) -> BrokerRun {
        BrokerRun::new(setup)
    }

    fn apply(&mut self, op: &BrokerOp) {
        BrokerRun::apply(self, op)
    }

    fn into_log(self) -> Vec<BrokerRecord> {
        self.log
    }
}

/// Runs a `broker` input, checking every step; returns the transcript.
pub fn run_broker(input: &BrokerInput) -> Vec<BrokerRecord> {
    run::<BrokerRun>(&input.setup, &input.ops)
}

/// The `broker` target: a broker driven by arbitrary operations on four connection ids
/// keeps every invariant, and the same operations on a fresh broker give the same
/// transcript.
pub fn check_broker(data: &[u8]) {
    if let Some((setup, ops)) = parse::<BrokerSetup, BrokerOp>(data) {
        check_twice::<BrokerRun>(&setup, &ops);
    }
}

/// [`check_broker`] for a built input.
pub fn check_broker_input(input: &BrokerInput) {
    check_twice::<BrokerRun>(&input.setup, &input.ops);
}
