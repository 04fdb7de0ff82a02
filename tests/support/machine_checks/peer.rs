//! The client side of a server connection, shared by the `server` and `broker`
//! targets: a scripted client, its setup, and the bounds a server session keeps.

use super::*;

/// Which acknowledgement the scripted client sends for an id the server has in flight.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PeerAck {
    /// PUBACK.
    Ack,
    /// PUBREC.
    Rec,
    /// PUBCOMP.
    Comp,
}

/// What the scripted client sends a server (or a broker connection).
#[derive(Arbitrary, Debug, Clone)]
pub enum ClientPacket {
    /// CONNECT.
    Connect(ConnectSpec),
    /// A PUBLISH with a small packet id.
    Publish {
        /// Topic pool index.
        topic: u8,
        /// QoS.
        qos: QoS,
        /// Packet id (small pool).
        id: u8,
        /// DUP (only at QoS 1 and 2).
        dup: bool,
        /// RETAIN.
        retain: bool,
        /// Payload.
        payload: Payload,
    },
    /// An acknowledgement for the `which`-th id the server sent and the client has not
    /// acknowledged (a small id when none).
    Ack {
        /// Index into those ids.
        which: u8,
        /// Which acknowledgement.
        kind: PeerAck,
    },
    /// PUBREL with a small packet id.
    PubRel(u8),
    /// SUBSCRIBE (pool indices; the first filter when empty).
    Subscribe(u8, Vec<(u8, QoS)>),
    /// UNSUBSCRIBE (pool indices; the first filter when empty).
    Unsubscribe(u8, Vec<u8>),
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect,
    /// Any valid packet.
    Any(Packet<Bytes>),
    /// Any bytes.
    Raw(Vec<u8>),
}

/// The scripted client's view of one connection: the ids of the server's QoS 1/2
/// PUBLISH it has not acknowledged, read from what it sent (a decoder of its own byte
/// stream, so that acknowledgements inside arbitrary bytes count too).
#[derive(Default)]
pub(super) struct Peer {
    pub(super) unacked: BTreeSet<PacketId>,
    stream: Shadow,
}

impl Peer {
    /// The bytes of `packet`, built against what the client has seen.
    pub(super) fn build(&self, packet: &ClientPacket) -> Vec<u8> {
        let p = match packet {
            ClientPacket::Connect(spec) => Packet::Connect(spec.build()),
            ClientPacket::Publish {
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
            ClientPacket::Ack { which, kind } => {
                let ids: Vec<PacketId> = self.unacked.iter().copied().collect();
                let id = if ids.is_empty() {
                    small_id(*which)
                } else {
                    ids[usize::from(*which) % ids.len()]
                };
                match kind {
                    PeerAck::Ack => Packet::PubAck(id),
                    PeerAck::Rec => Packet::PubRec(id),
                    PeerAck::Comp => Packet::PubComp(id),
                }
            }
            ClientPacket::PubRel(id) => Packet::PubRel(small_id(*id)),
            ClientPacket::Subscribe(id, list) => {
                let mut filters: Vec<(TopicFilter<Bytes>, QoS)> = list
                    .iter()
                    .take(12)
                    .map(|(f, q)| (filter(*f), *q))
                    .collect();
                if filters.is_empty() {
                    filters.push((filter(0), QoS::AtLeastOnce));
                }
                Packet::Subscribe(Subscribe::new(small_id(*id), &filters).expect("non-empty"))
            }
            ClientPacket::Unsubscribe(id, list) => {
                let mut filters: Vec<TopicFilter<Bytes>> =
                    list.iter().take(12).map(|f| filter(*f)).collect();
                if filters.is_empty() {
                    filters.push(filter(0));
                }
                Packet::Unsubscribe(Unsubscribe::new(small_id(*id), &filters).expect("non-empty"))
            }
            ClientPacket::PingReq => Packet::PingReq,
            ClientPacket::Disconnect => Packet::Disconnect,
            ClientPacket::Any(p) => p.clone(),
            ClientPacket::Raw(b) => return b.clone(),
        };
        p.to_bytes().expect("a valid packet encodes").to_vec()
    }

    /// The client sent `bytes`: an acknowledgement in them frees its id, as far as the
    /// client knows (a server may still hold it if it never read them).
    pub(super) fn sent(&mut self, bytes: &[u8]) {
        for p in self.stream.feed(bytes) {
            if let Packet::PubAck(id) | Packet::PubComp(id) = p {
                self.unacked.remove(&id);
            }
        }
    }

    /// The server sent a QoS 1/2 PUBLISH: a new one (DUP=0) must not use an id the
    /// client still holds unacknowledged.
    pub(super) fn received(&mut self, id: PacketId, dup: bool) {
        if !dup {
            assert!(
                self.unacked.insert(id),
                "a new PUBLISH uses id {id}, still in flight"
            );
        }
    }
}

/// The packets a server may send.
pub(super) fn assert_server_packet(p: &Packet<Bytes>) {
    assert!(
        matches!(
            p,
            Packet::ConnAck(_)
                | Packet::Publish(_)
                | Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubRel(_)
                | Packet::PubComp(_)
                | Packet::SubAck(_)
                | Packet::UnsubAck(_)
                | Packet::PingResp
        ),
        "a server sent a client's packet: {p:?}"
    );
}

/// The bounds a session keeps under `config` and `profile`: the inflight window and the
/// queue, distinct ids in flight, the subscription limit.
/// A session's bounds; its queue's (messages and bytes) only when `queue` says they hold
/// (not under back-pressure).
pub(super) fn assert_session_bounds(
    s: &ServerSession,
    config: &ServerConfig,
    profile: &Profile,
    queue: bool,
) {
    let window = mqtt_sansio::session::window(config.max_inflight, profile);
    assert!(
        s.inflight() <= window,
        "{} in flight over the window {window}",
        s.inflight()
    );
    let ids: BTreeSet<PacketId> = s.inflight_ids().collect();
    assert_eq!(ids.len(), s.inflight(), "an id twice in flight");
    assert!(
        !queue || s.queued() <= config.max_queued,
        "{} queued over the bound {}",
        s.queued(),
        config.max_queued
    );
    if let (true, Some(max)) = (queue, config.max_queued_bytes) {
        let n = s.queued_bytes();
        assert!(n <= max, "{n} queued bytes over the bound {max}");
    }
    if let Some(max) = profile.max_subscriptions {
        let n = s.subscriptions().count();
        assert!(n <= max, "{n} subscriptions over the limit {max}");
    }
}

/// An authorizer with rules the pools reach: `c2` may not connect, `$SYS/#` is refused
/// and `#` granted QoS 0 at most, a PUBLISH to `s/2` is discarded and one to `$SYS/x`
/// closes the connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Picky;

impl mqtt_sansio::Authorizer for Picky {
    fn connect(
        &self,
        client_id: &MqttString<Bytes>,
        _login: Option<&Login<Bytes>>,
    ) -> Result<(), ConnectReturnCode> {
        if client_id.as_bytes() == b"c2" {
            return Err(ConnectReturnCode::NotAuthorized);
        }
        Ok(())
    }

    fn subscribe(
        &self,
        _client_id: &MqttString<Bytes>,
        filter: &TopicFilter<Bytes>,
        requested: QoS,
    ) -> Option<QoS> {
        match filter.as_bytes() {
            b"$SYS/#" => None,
            b"#" => Some(QoS::AtMostOnce),
            _ => Some(requested),
        }
    }

    fn publish(
        &self,
        _client_id: &MqttString<Bytes>,
        message: &Message,
    ) -> mqtt_sansio::server::PublishDecision {
        use mqtt_sansio::server::PublishDecision;
        match message.topic.as_bytes() {
            b"s/2" => PublishDecision::Discard,
            b"$SYS/x" => PublishDecision::Close,
            _ => PublishDecision::Allow,
        }
    }
}

/// The per-connection settings of a `server` or `broker` run.
#[derive(Arbitrary, Debug, Clone)]
pub struct ServerSetup {
    /// The profile.
    pub preset: Preset,
    /// CONNECT timeout, ms.
    pub connect_timeout_ms: u16,
    /// Queue bound (0 to 7).
    pub max_queued: u8,
    /// Inflight window (0 to 7; 0 acts as 1).
    pub max_inflight: u8,
    /// Inbound QoS 2 bound (0 to 7; 0 acts as 1).
    pub max_inbound_qos2: u8,
    /// The [`Picky`] authorizer instead of allowing everything.
    pub picky: bool,
}

impl ServerSetup {
    pub(super) fn build(&self) -> (Profile, ServerConfig) {
        let profile = self.preset.profile();
        let mut config = ServerConfig {
            connect_timeout: Duration::from_millis(u64::from(self.connect_timeout_ms)),
            max_queued: usize::from(self.max_queued % 8),
            max_inflight: usize::from(self.max_inflight % 8),
            max_inbound_qos2: usize::from(self.max_inbound_qos2 % 8),
            ..ServerConfig::default()
        };
        if self.picky {
            config.authorizer = std::sync::Arc::new(Picky);
        }
        (profile, config)
    }
}

pub(super) fn inbound_bound(config: &ServerConfig, profile: &Profile) -> usize {
    config.max_inbound_qos2.min(profile.max_inflight).max(1)
}

/// The largest packet a server connection buffers: a PUBLISH of the profile's largest
/// payload with its longest topic, and at least a CONNECT with every field at its
/// longest (the bound `PolicyViolation::BufferFull` refers to).
pub(super) fn server_packet_limit(profile: &Profile) -> usize {
    profile
        .max_payload
        .saturating_add(profile.max_topic_len)
        .saturating_add(9)
        .clamp(5 * 65_537 + 15, MAX_PACKET_SIZE)
}

/// What a server leaves buffered once it has handled every complete packet: part of
/// one packet within the limit, and no stream error (that closes).
pub(super) fn assert_buffered_within(rx: &Shadow, limit: usize) {
    assert_eq!(rx.err, None, "a bad stream left the connection open");
    assert!(
        rx.buf.len() < limit.max(5),
        "{} bytes buffered with a {limit}-byte packet limit",
        rx.buf.len()
    );
}
