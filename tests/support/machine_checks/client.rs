//! The `client` target: one `Client` against a scripted server, checked against a
//! model after every input.

use super::*;
use mqtt_sansio::PacketType;
use mqtt_sansio::reconnect::Backoff;

/// What an outgoing id is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IdUse {
    Publish { qos2: bool },
    Subscribe(usize),
    Unsubscribe,
}

/// A client, a clock and the model its actions are checked against.
pub(super) struct ClientRun {
    client: Client,
    profile: Profile,
    config: ClientConfig,
    now: Instant,
    log: Vec<ClientRecord>,
    /// Between a successful `connect` and its `Close` or `connection_lost`.
    open: bool,
    /// CONNACK accepted the current connection.
    connected: bool,
    /// The CleanSession flag of the current (or last) connection.
    clean: bool,
    /// Packets sent on the current connection.
    sent: usize,
    /// DISCONNECT was sent: only `Close` may follow.
    disconnecting: bool,
    /// The ids in use, from the commands' results, freed by the events.
    ids: BTreeMap<PacketId, IdUse>,
    /// QoS 1/2 PUBLISH ids sent with DUP=0 (once per use of the id).
    fresh: BTreeSet<PacketId>,
    /// QoS 2 ids whose PUBREC arrived.
    received: BTreeSet<PacketId>,
    /// Incoming QoS 2 ids delivered, awaiting PUBREL.
    incoming_qos2: BTreeSet<PacketId>,
    /// Deliveries awaiting the application's `ack`.
    to_ack: Vec<PacketId>,
    /// The client's read buffer, mirrored.
    shadow: Shadow,
    /// The first export with every reported change applied: the export, always.
    durable: ClientExport,
    /// When the last CONNECT went out.
    last_connect: Option<Instant>,
    /// The least time between two CONNECTs.
    connect_interval: Duration,
    /// Disconnected, with a reconnect coming.
    reconnecting: bool,
    /// `Reconnect` went out and no connect followed yet.
    asked: bool,
    /// Operations with a time-out not yet reported: id → deadline.
    deadlines: BTreeMap<PacketId, Instant>,
}

impl ClientRun {
    pub(super) fn new(setup: &ClientSetup) -> ClientRun {
        let (profile, config) = setup.build();
        let connect_interval = config.reconnect.as_ref().map_or_else(
            || Backoff::for_profile(&profile, 0).min_connect_interval,
            |b| b.min_connect_interval,
        );
        ClientRun {
            client: Client::with_config(profile.clone(), config.clone()),
            shadow: Shadow::with_limit(config.max_packet_size),
            profile,
            config,
            now: Instant::ZERO,
            log: Vec::new(),
            open: false,
            connected: false,
            clean: true,
            sent: 0,
            disconnecting: false,
            ids: BTreeMap::new(),
            fresh: BTreeSet::new(),
            received: BTreeSet::new(),
            incoming_qos2: BTreeSet::new(),
            to_ack: Vec::new(),
            durable: ClientExport::default(),
            last_connect: None,
            connect_interval,
            reconnecting: false,
            asked: false,
            deadlines: BTreeMap::new(),
        }
    }

    pub(super) fn free(&mut self, id: PacketId, what: &str) -> IdUse {
        let Some(use_) = self.ids.remove(&id) else {
            panic!("{what} frees id {id}, which is not in use");
        };
        self.fresh.remove(&id);
        self.received.remove(&id);
        self.deadlines.remove(&id);
        use_
    }

    /// The connection ended; `retry`: for a reason after which the client reconnects
    /// (when configured to).
    pub(super) fn connection_ended(&mut self, retry: bool) {
        self.reconnecting = retry && self.config.reconnect.is_some();
        self.open = false;
        self.connected = false;
        self.disconnecting = false;
        self.to_ack.clear();
        self.shadow.reset();
        if self.clean {
            self.incoming_qos2.clear();
        }
    }

    pub(super) fn on_send(&mut self, p: &Packet<Bytes>) {
        assert!(self.open, "sent {p:?} without an open connection");
        assert!(!self.disconnecting, "sent {p:?} after DISCONNECT");
        assert_wire_roundtrip(p);
        assert!(
            matches!(
                p,
                Packet::Connect(_)
                    | Packet::Publish(_)
                    | Packet::PubAck(_)
                    | Packet::PubRec(_)
                    | Packet::PubRel(_)
                    | Packet::PubComp(_)
                    | Packet::Subscribe(_)
                    | Packet::Unsubscribe(_)
                    | Packet::PingReq
                    | Packet::Disconnect
            ),
            "a client sent a server's packet: {p:?}"
        );
        if self.sent == 0 {
            assert!(
                matches!(p, Packet::Connect(_)),
                "first packet {p:?} is not CONNECT"
            );
        } else {
            assert!(!matches!(p, Packet::Connect(_)), "a second CONNECT");
            if !self.connected {
                // MQTT-3.1.0-1; commands are held until CONNACK.
                assert!(
                    matches!(p, Packet::PingReq) && self.profile.send_before_connack,
                    "sent {p:?} before CONNACK"
                );
            }
        }
        self.sent += 1;
        match p {
            Packet::Publish(publish) => {
                if let Some(id) = publish.qos.packet_id() {
                    let qos2 = matches!(publish.qos, QosPid::ExactlyOnce(_));
                    assert_eq!(
                        self.ids.get(&id),
                        Some(&IdUse::Publish { qos2 }),
                        "PUBLISH with id {id} not in use by a message of its QoS"
                    );
                    // MQTT-4.3.3-1: after PUBREC the PUBLISH is never sent again.
                    assert!(
                        !self.received.contains(&id),
                        "PUBLISH {id} after its PUBREC"
                    );
                    if publish.dup {
                        assert!(
                            self.fresh.contains(&id),
                            "DUP=1 on PUBLISH {id}, never sent before"
                        );
                    } else {
                        assert!(self.fresh.insert(id), "PUBLISH {id} sent twice with DUP=0");
                    }
                } else {
                    assert!(!publish.dup, "DUP=1 at QoS 0");
                }
            }
            Packet::Subscribe(s) => assert_eq!(
                self.ids.get(&s.packet_id),
                Some(&IdUse::Subscribe(s.filters().count())),
                "SUBSCRIBE with an id not in use by it"
            ),
            Packet::Unsubscribe(u) => assert_eq!(
                self.ids.get(&u.packet_id),
                Some(&IdUse::Unsubscribe),
                "UNSUBSCRIBE with an id not in use by it"
            ),
            Packet::PubRel(id) => assert!(
                self.ids.get(id) == Some(&IdUse::Publish { qos2: true })
                    && self.received.contains(id),
                "PUBREL {id} without its PUBREC"
            ),
            Packet::PubComp(id) => {
                self.incoming_qos2.remove(id);
            }
            Packet::Disconnect => self.disconnecting = true,
            _ => {}
        }
    }

    pub(super) fn on_event(&mut self, e: &Event) {
        match e {
            Event::Connected { session_present } => {
                assert!(self.open && !self.connected, "Connected without a CONNECT");
                // MQTT-3.2.2-1: refused by the client otherwise.
                assert!(
                    !(self.clean && *session_present),
                    "session present after clean"
                );
                self.connected = true;
                if !session_present {
                    self.incoming_qos2.clear();
                }
            }
            Event::Published(id) => {
                let u = self.free(*id, "Published");
                assert_eq!(u, IdUse::Publish { qos2: false }, "Published for {u:?}");
            }
            Event::Received(id) => {
                assert_eq!(
                    self.ids.get(id),
                    Some(&IdUse::Publish { qos2: true }),
                    "Received for an id not used by a QoS 2 message"
                );
                assert!(self.received.insert(*id), "Received twice for {id}");
            }
            Event::Completed(id) => {
                assert!(self.received.contains(id), "Completed before Received");
                self.free(*id, "Completed");
            }
            Event::Subscribed { packet_id, codes } => {
                let u = self.free(*packet_id, "Subscribed");
                assert_eq!(u, IdUse::Subscribe(codes.len()), "Subscribed for {u:?}");
            }
            Event::Unsubscribed(id) => {
                let u = self.free(*id, "Unsubscribed");
                assert_eq!(u, IdUse::Unsubscribe, "Unsubscribed for {u:?}");
            }
            Event::UnexpectedAck { .. } => {}
            Event::TimedOut {
                packet_type,
                packet_id,
            } => {
                let Some(deadline) = self.deadlines.remove(packet_id) else {
                    panic!("TimedOut for {packet_id}, not watched or already reported");
                };
                assert!(
                    deadline <= self.now,
                    "TimedOut for {packet_id} before {deadline:?}"
                );
                let kind = match self.ids.get(packet_id) {
                    Some(IdUse::Publish { .. }) => PacketType::Publish,
                    Some(IdUse::Subscribe(_)) => PacketType::Subscribe,
                    Some(IdUse::Unsubscribe) => PacketType::Unsubscribe,
                    None => panic!("TimedOut for {packet_id}, not in use"),
                };
                assert_eq!(*packet_type, kind, "TimedOut names another operation");
            }
            Event::Lost(lost) => match lost {
                Lost::Publish(p) => {
                    if let Some(id) = p.qos.packet_id() {
                        self.free(id, "Lost(Publish)");
                    }
                }
                Lost::Release(id) => {
                    assert!(self.received.contains(id), "Lost(Release) before PUBREC");
                    self.free(*id, "Lost(Release)");
                }
                Lost::Subscribe(s) => {
                    self.free(s.packet_id, "Lost(Subscribe)");
                }
                Lost::Unsubscribe(u) => {
                    self.free(u.packet_id, "Lost(Unsubscribe)");
                }
            },
        }
    }

    /// Drains and checks the actions; returns how many there were.
    pub(super) fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(a) = self.client.poll_action() {
            n += 1;
            if self.disconnecting {
                assert!(
                    matches!(
                        a,
                        ClientAction::Close(mqtt_sansio::client::Reason::Disconnected)
                    ),
                    "{a:?} follows DISCONNECT instead of Close"
                );
            }
            match &a {
                ClientAction::Send(p) => self.on_send(p),
                ClientAction::Deliver(p) => {
                    assert!(self.connected, "delivered {p:?} before CONNACK");
                    if let QosPid::ExactlyOnce(id) = p.qos {
                        // Method B of MQTT-4.3.3-2: once until PUBREL.
                        assert!(self.incoming_qos2.insert(id), "QoS 2 {id} delivered twice");
                    }
                    if let Some(id) = p.qos.packet_id() {
                        if self.config.manual_acks {
                            self.to_ack.push(id);
                        }
                    }
                }
                ClientAction::Event(e) => self.on_event(e),
                ClientAction::Change(c) => {
                    if let Err(e) = self.durable.apply(c) {
                        panic!("{c:?} does not apply to the export: {e}");
                    }
                }
                ClientAction::Close(reason) => {
                    use mqtt_sansio::client::Reason;
                    assert!(self.open, "Close {reason:?} without an open connection");
                    if let Reason::Decode(e) = reason {
                        assert_eq!(
                            self.shadow.err,
                            Some(*e),
                            "closed for a decode error the byte stream does not have"
                        );
                    }
                    let retry = matches!(
                        reason,
                        Reason::ConnAckTimeout
                            | Reason::PingTimeout
                            | Reason::Refused(ConnectReturnCode::ServerUnavailable)
                    );
                    self.connection_ended(retry);
                }
                ClientAction::Reconnect => {
                    assert!(!self.open, "Reconnect with a connection open");
                    assert!(self.reconnecting, "Reconnect not coming");
                    assert!(!self.asked, "Reconnect asked twice");
                    if let Some(last) = self.last_connect {
                        // The backoff keeps the quota: a CONNECT now is accepted.
                        assert!(
                            self.now >= last + self.connect_interval,
                            "Reconnect at {:?}, sooner than the interval after {last:?}",
                            self.now
                        );
                    }
                    self.asked = true;
                }
            }
            self.log.push(ClientRecord::Action(a));
        }
        n
    }

    /// The getters agree with the model.
    pub(super) fn check_state(&self) {
        use mqtt_sansio::ClientState;
        let export = self.client.export();
        assert_eq!(
            self.durable, export,
            "the changes applied to the first export are not the export"
        );
        assert_eq!(
            ClientExport::from_bytes(&export.to_bytes()),
            Ok(export),
            "the export does not survive its encoding"
        );
        let expected = match (self.open, self.connected) {
            (false, _) if self.reconnecting => ClientState::Reconnecting,
            (false, _) => ClientState::Disconnected,
            (true, false) => ClientState::Connecting,
            (true, true) => ClientState::Connected,
        };
        assert_eq!(
            self.client.state(),
            expected,
            "the state is not the model's"
        );
        assert_eq!(
            self.client.ids_in_use(),
            self.ids.len(),
            "ids in use differ"
        );
        for id in self.ids.keys() {
            assert!(
                self.client.id_in_use(*id),
                "id {id} in use but not reported"
            );
        }
        let publishes = self
            .ids
            .values()
            .filter(|u| matches!(u, IdUse::Publish { .. }))
            .count();
        assert_eq!(
            self.client.inflight(),
            publishes,
            "inflight is not the model's"
        );
        // Every deadline not yet reported wakes the client in time; so does a reconnect.
        let wake = self.client.poll_timeout();
        for (id, deadline) in &self.deadlines {
            assert!(
                wake.is_some_and(|t| t <= *deadline),
                "{id}'s deadline {deadline:?} unreported and the next wake is {wake:?}"
            );
        }
        if self.reconnecting && !self.asked {
            assert!(wake.is_some(), "a reconnect is coming and no timer runs");
        }
        let window = mqtt_sansio::session::window(self.config.max_inflight, &self.profile);
        assert!(
            self.client.inflight() <= window,
            "inflight {} over the window {window}",
            self.client.inflight(),
        );
    }

    /// Runs a command, checking that a refused one changes nothing.
    pub(super) fn command(
        &mut self,
        f: impl FnOnce(&mut Client, Instant) -> Result<Option<PacketId>, ClientError>,
    ) -> Result<Option<PacketId>, ClientError> {
        let before = (
            self.client.state(),
            self.client.ids_in_use(),
            self.client.inflight(),
            self.client.poll_timeout(),
        );
        let r = f(&mut self.client, self.now);
        self.log.push(ClientRecord::Result(r));
        if r.is_err() {
            assert!(
                self.client.poll_action().is_none(),
                "a refused command acted"
            );
            let after = (
                self.client.state(),
                self.client.ids_in_use(),
                self.client.inflight(),
                self.client.poll_timeout(),
            );
            assert_eq!(before, after, "a refused command changed the client");
        }
        r
    }

    pub(super) fn fresh_id(&mut self, r: Result<Option<PacketId>, ClientError>, use_: IdUse) {
        if let Ok(Some(id)) = r {
            assert!(
                self.ids.insert(id, use_).is_none(),
                "id {id} allocated while in use"
            );
            assert!(self.client.id_in_use(id), "allocated id {id} not in use");
            let timeout = match use_ {
                IdUse::Publish { .. } => self.config.publish_timeout,
                IdUse::Subscribe(_) | IdUse::Unsubscribe => self.config.request_timeout,
            };
            if let Some(t) = timeout {
                self.deadlines.insert(id, self.now + t);
            }
        }
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        let was_open = self.open;
        let r = self
            .client
            .handle_bytes(self.now, bytes)
            .map(|()| None::<PacketId>);
        self.log.push(ClientRecord::Result(r));
        assert_eq!(
            r.is_err(),
            !was_open,
            "handle_bytes refused iff not connected"
        );
        if was_open {
            self.shadow.feed(bytes);
        }
        self.drain();
        if self.open {
            // Everything complete was handled; a partial packet within the limit stays.
            assert_eq!(
                self.shadow.err, None,
                "a bad stream left the connection open"
            );
            assert!(
                self.shadow.buf.len() < self.config.max_packet_size.max(5),
                "{} bytes buffered with a {}-byte packet limit",
                self.shadow.buf.len(),
                self.config.max_packet_size
            );
        }
    }

    pub(super) fn reply_packet(&self, reply: &Reply) -> Result<Packet<Bytes>, Vec<u8>> {
        Ok(match reply {
            Reply::ConnAck(a) => Packet::ConnAck(*a),
            Reply::Ack { which, kind } => {
                let ids: Vec<(PacketId, IdUse)> = self.ids.iter().map(|(i, u)| (*i, *u)).collect();
                let (id, use_) = if ids.is_empty() {
                    (small_id(*which), IdUse::Subscribe(1))
                } else {
                    ids[usize::from(*which) % ids.len()]
                };
                match kind {
                    AckKind::PubAck => Packet::PubAck(id),
                    AckKind::PubRec => Packet::PubRec(id),
                    AckKind::PubComp => Packet::PubComp(id),
                    AckKind::UnsubAck => Packet::UnsubAck(id),
                    AckKind::SubAck(code) => {
                        let n = match use_ {
                            IdUse::Subscribe(n) => n.max(1),
                            _ => 1,
                        };
                        Packet::SubAck(SubAck::new(id, vec![*code; n]).expect("non-empty"))
                    }
                    AckKind::SubAckCodes(codes) => match SubAck::new(id, codes.clone()) {
                        Ok(s) => Packet::SubAck(s),
                        Err(_) => Packet::SubAck(
                            SubAck::new(id, [SubAckCode::Failure]).expect("non-empty"),
                        ),
                    },
                }
            }
            Reply::Publish {
                topic: t,
                qos,
                id,
                dup,
                retain,
                payload,
            } => {
                let qos = match qos {
                    QoS::AtMostOnce => QosPid::AtMostOnce,
                    q => QosPid::new(*q, small_id(*id)),
                };
                Packet::Publish(Publish {
                    dup: *dup && qos != QosPid::AtMostOnce,
                    qos,
                    retain: *retain,
                    topic: topic(*t),
                    payload: payload.bytes(),
                })
            }
            Reply::PubRel(id) => Packet::PubRel(small_id(*id)),
            Reply::PingResp => Packet::PingResp,
            Reply::Any(p) => p.clone(),
            Reply::Raw(b) => return Err(b.clone()),
        })
    }

    pub(super) fn fire(&mut self) {
        let now = self.now;
        let equal_allowed = self.config.pingresp_timeout.is_zero();
        check_fire(
            self,
            now,
            equal_allowed,
            |r| {
                r.client.handle_timeout(now);
                r.drain()
            },
            |r| r.client.poll_timeout(),
        );
    }

    pub(super) fn advance(&mut self, step: Step, precise: bool) {
        let end = self.now + step.duration();
        if precise {
            for _ in 0..MAX_TIMER_FIRES {
                match self.client.poll_timeout() {
                    Some(t) if t <= end => {
                        self.now = self.now.max(t);
                        self.fire();
                    }
                    _ => break,
                }
            }
            self.now = end;
        } else {
            self.now = end;
            if self.client.poll_timeout().is_some_and(|t| t <= end) {
                self.fire();
            }
        }
    }

    pub(super) fn apply(&mut self, op: &ClientOp) {
        match op {
            ClientOp::Connect(spec) => {
                let c = spec.build();
                let clean = c.clean_session;
                let was_open = self.open;
                let r = self.command(|cl, now| cl.connect(now, c).map(|()| None));
                let earliest = self.last_connect.map(|l| l + self.connect_interval);
                if let Err(ClientError::ConnectTooSoon { earliest: e }) = r {
                    assert_eq!(Some(e), earliest, "ConnectTooSoon names another instant");
                    assert!(
                        self.now < e,
                        "ConnectTooSoon at {:?}, after {e:?}",
                        self.now
                    );
                }
                if r.is_ok() {
                    assert!(!was_open, "connect accepted on an open connection");
                    assert!(
                        earliest.is_none_or(|e| self.now >= e),
                        "CONNECT at {:?}, sooner than {earliest:?}",
                        self.now
                    );
                    self.last_connect = Some(self.now);
                    self.reconnecting = false;
                    self.asked = false;
                    self.open = true;
                    self.connected = false;
                    self.clean = clean;
                    self.sent = 0;
                    self.shadow.reset();
                    if clean {
                        self.incoming_qos2.clear();
                    }
                } else if was_open {
                    assert_eq!(r, Err(ClientError::AlreadyConnected));
                }
            }
            ClientOp::Publish {
                topic: t,
                qos,
                retain,
                payload,
            } => {
                let (t, qos, retain, payload) = (topic(*t), *qos, *retain, payload.bytes());
                let r = self.command(|cl, now| cl.publish(now, t, qos, retain, payload));
                let qos2 = qos == QoS::ExactlyOnce;
                if let Ok(id) = r {
                    assert_eq!(id.is_some(), qos != QoS::AtMostOnce, "id iff QoS 1/2");
                }
                self.fresh_id(r, IdUse::Publish { qos2 });
            }
            ClientOp::Subscribe(list) => {
                let filters: Vec<(TopicFilter<Bytes>, QoS)> = list
                    .iter()
                    .take(12)
                    .map(|(f, q)| (filter(*f), *q))
                    .collect();
                let n = filters.len();
                let r = self.command(|cl, now| cl.subscribe(now, &filters).map(Some));
                self.fresh_id(r, IdUse::Subscribe(n));
            }
            ClientOp::Unsubscribe(list) => {
                let filters: Vec<TopicFilter<Bytes>> =
                    list.iter().take(12).map(|f| filter(*f)).collect();
                let r = self.command(|cl, now| cl.unsubscribe(now, &filters).map(Some));
                self.fresh_id(r, IdUse::Unsubscribe);
            }
            ClientOp::Ack(n) => {
                let id = if self.to_ack.is_empty() {
                    small_id(*n)
                } else {
                    self.to_ack[usize::from(*n) % self.to_ack.len()]
                };
                let r = self.command(|cl, now| cl.ack(now, id).map(|()| None));
                if !self.config.manual_acks {
                    assert_eq!(r, Err(ClientError::ManualAcksDisabled));
                }
                if r.is_ok() {
                    if let Some(i) = self.to_ack.iter().position(|x| *x == id) {
                        self.to_ack.remove(i);
                    }
                }
            }
            ClientOp::Disconnect => {
                let (was_open, was_reconnecting) = (self.open, self.reconnecting);
                let r = self.command(|cl, now| cl.disconnect(now).map(|()| None));
                assert_eq!(
                    r.is_ok(),
                    was_open || was_reconnecting,
                    "disconnect refused iff neither connected nor reconnecting"
                );
                if r.is_ok() && !was_open {
                    // The reconnect is cancelled; nothing is emitted.
                    assert!(self.client.poll_action().is_none(), "disconnect acted");
                    self.reconnecting = false;
                    self.asked = false;
                }
            }
            ClientOp::ConnectionLost => {
                self.client.connection_lost(self.now);
                if self.open {
                    self.connection_ended(true);
                }
            }
            ClientOp::ConnectionFailed => {
                self.client.connection_failed(self.now);
                if !self.open && self.config.reconnect.is_some() {
                    self.reconnecting = true;
                    self.asked = false;
                }
            }
            ClientOp::Peer(reply, how) => match (self.reply_packet(reply), how) {
                (Ok(p), Delivery::Direct) => {
                    let was_open = self.open;
                    let r = self
                        .client
                        .handle_packet(self.now, p)
                        .map(|()| None::<PacketId>);
                    self.log.push(ClientRecord::Result(r));
                    assert_eq!(r.is_err(), !was_open, "handle_packet refused iff closed");
                }
                (Ok(p), how) => {
                    let bytes = p.to_bytes().expect("a valid packet encodes");
                    for chunk in chunks(&bytes, *how) {
                        self.bytes(chunk);
                    }
                }
                (Err(raw), how) => {
                    for chunk in chunks(&raw, *how) {
                        self.bytes(chunk);
                    }
                }
            },
            ClientOp::Advance(step, precise) => self.advance(*step, *precise),
            ClientOp::Fire => self.fire(),
        }
        self.drain();
        self.check_state();
        self.log
            .push(ClientRecord::Wake(self.client.poll_timeout()));
    }
}

impl Machine for ClientRun {
    type Setup = ClientSetup;
    type Op = ClientOp;
    type Record = ClientRecord;

    fn new(setup: &ClientSetup) -> ClientRun {
        ClientRun::new(setup)
    }

    fn apply(&mut self, op: &ClientOp) {
        ClientRun::apply(self, op)
    }

    fn into_log(self) -> Vec<ClientRecord> {
        self.log
    }
}

/// Runs a `client` input, checking every step; returns the transcript.
pub fn run_client(input: &ClientInput) -> Vec<ClientRecord> {
    run::<ClientRun>(&input.setup, &input.ops)
}

/// The `client` target: a client driven by arbitrary operations keeps every invariant,
/// and the same operations on a fresh client give the same transcript.
pub fn check_client(data: &[u8]) {
    if let Some((setup, ops)) = parse::<ClientSetup, ClientOp>(data) {
        check_twice::<ClientRun>(&setup, &ops);
    }
}

/// [`check_client`] for a built input.
pub fn check_client_input(input: &ClientInput) {
    check_twice::<ClientRun>(&input.setup, &input.ops);
}
