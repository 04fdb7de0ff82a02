//! A broker driven in simulated time, with the packets each connection received.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use mqtt_sansio::broker::{Action, Broker, BrokerConfig, BrokerEvent, ConnId};
use mqtt_sansio::server::{CloseReason, ServerConfig};
use mqtt_sansio::{
    ConnAck, Connect, Instant, MqttString, Packet, PacketId, Profile, Publish, QoS, QosPid,
    Subscribe, TopicFilter, TopicName, Unsubscribe, Will,
};

/// A broker, a clock, and what came out.
pub struct Harness {
    pub broker: Broker,
    pub now: Instant,
    /// Every action, in order.
    pub log: Vec<Action>,
    /// Packets received by each connection and not yet taken.
    pub inbox: BTreeMap<u64, VecDeque<Packet<Bytes>>>,
    /// Connections the broker closed, with the reason.
    pub closed: BTreeMap<u64, CloseReason>,
    /// Broker events, in order.
    pub events: Vec<BrokerEvent>,
    /// Connections the broker paused (back-pressure) and has not resumed.
    pub paused: BTreeSet<u64>,
}

impl Harness {
    pub fn new(profile: Profile) -> Harness {
        Harness::with_config(profile, ServerConfig::default())
    }

    pub fn with_config(profile: Profile, config: impl Into<BrokerConfig>) -> Harness {
        Harness {
            broker: Broker::new(profile, config),
            now: Instant::ZERO,
            log: Vec::new(),
            inbox: BTreeMap::new(),
            closed: BTreeMap::new(),
            events: Vec::new(),
            paused: BTreeSet::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(a) = self.broker.poll_action() {
            match &a {
                Action::Send { conn, packet } => {
                    assert!(
                        !self.closed.contains_key(&conn.0),
                        "sent {packet:?} on closed connection {}",
                        conn.0
                    );
                    self.inbox
                        .entry(conn.0)
                        .or_default()
                        .push_back(packet.clone());
                }
                Action::Close { conn, reason } => {
                    self.closed.insert(conn.0, *reason);
                }
                Action::Event(e) => self.events.push(e.clone()),
                Action::Change(_) => {}
                Action::Pause { conn } => {
                    assert!(self.paused.insert(conn.0), "paused {} twice", conn.0);
                }
                Action::Resume { conn } => {
                    assert!(self.paused.remove(&conn.0), "resumed {} unpaused", conn.0);
                }
            }
            self.log.push(a);
        }
    }

    pub fn open(&mut self, c: u64) {
        self.broker
            .open(self.now, ConnId(c))
            .expect("fresh connection id");
        self.closed.remove(&c);
        self.inbox.remove(&c);
        self.drain();
    }

    pub fn send_bytes(&mut self, c: u64, bytes: &[u8]) {
        self.broker.handle_bytes(self.now, ConnId(c), bytes);
        self.drain();
    }

    pub fn send(&mut self, c: u64, p: impl Into<Packet<Bytes>>) {
        let bytes = p.into().to_bytes().expect("encodable");
        self.send_bytes(c, &bytes);
    }

    /// The transport of `c` wrote what it was given.
    pub fn writable(&mut self, c: u64) {
        self.broker.writable(self.now, ConnId(c));
        self.drain();
    }

    /// Closes the transport of `c` from the client's side.
    pub fn drop_conn(&mut self, c: u64) {
        self.broker.connection_lost(self.now, ConnId(c));
        self.drain();
    }

    /// The broker publishes `m` itself.
    pub fn broker_publish(&mut self, m: mqtt_sansio::server::Message) {
        self.broker.publish(self.now, m);
        self.drain();
    }

    /// Advances time by `ms`, firing every timer on the way at its own instant.
    pub fn advance(&mut self, ms: u64) {
        let end = Instant::from_millis(self.now.as_millis() + ms);
        while let Some(t) = self.broker.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.broker.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    /// Takes every packet `c` received since the last take.
    pub fn take(&mut self, c: u64) -> Vec<Packet<Bytes>> {
        self.inbox.remove(&c).map(Vec::from).unwrap_or_default()
    }

    pub fn is_closed(&self, c: u64) -> bool {
        self.closed.contains_key(&c)
    }

    /// Opens `c`, connects as `client` and returns the CONNACK.
    pub fn connect(&mut self, c: u64, client: &str, clean: bool) -> ConnAck {
        self.connect_with(c, connect(client, clean, 60, None))
    }

    pub fn connect_with(&mut self, c: u64, p: Connect<Bytes>) -> ConnAck {
        self.open(c);
        self.send(c, Packet::Connect(p));
        // The CONNACK is taken; what follows it (resent and queued messages) stays.
        match self.inbox.get_mut(&c).and_then(|q| q.pop_front()) {
            Some(Packet::ConnAck(a)) => a,
            other => panic!("expected CONNACK on {c}, got {other:?}"),
        }
    }

    pub fn subscribe(&mut self, c: u64, id: u16, filters: &[(&str, QoS)]) -> Vec<Packet<Bytes>> {
        self.send(c, subscribe(id, filters));
        self.take(c)
    }
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

pub fn connect(
    client: &str,
    clean: bool,
    keep_alive: u16,
    will: Option<Will<Bytes>>,
) -> Connect<Bytes> {
    Connect {
        client_id: MqttString::try_from(client).expect("valid client id"),
        clean_session: clean,
        keep_alive,
        will,
        login: None,
    }
}

pub fn will(topic: &str, payload: &str, qos: QoS, retain: bool) -> Will<Bytes> {
    Will {
        topic: TopicName::try_from(topic).expect("valid topic"),
        message: mqtt_sansio::Binary::new(Bytes::copy_from_slice(payload.as_bytes()))
            .expect("short"),
        qos,
        retain,
    }
}

pub fn publish(topic: &str, qos: QoS, id: u16, payload: &str) -> Publish<Bytes> {
    let q = match qos {
        QoS::AtMostOnce => QosPid::AtMostOnce,
        q => QosPid::new(q, pid(id)),
    };
    Publish::new(
        TopicName::try_from(topic).expect("valid topic"),
        q,
        Bytes::copy_from_slice(payload.as_bytes()),
    )
}

pub fn retained(topic: &str, qos: QoS, id: u16, payload: &str) -> Publish<Bytes> {
    Publish {
        retain: true,
        ..publish(topic, qos, id, payload)
    }
}

pub fn subscribe(id: u16, filters: &[(&str, QoS)]) -> Subscribe<Bytes> {
    let list: Vec<(TopicFilter<Bytes>, QoS)> = filters
        .iter()
        .map(|(f, q)| (TopicFilter::try_from(*f).expect("valid filter"), *q))
        .collect();
    Subscribe::new(pid(id), &list).expect("non-empty")
}

pub fn unsubscribe(id: u16, filters: &[&str]) -> Unsubscribe<Bytes> {
    let list: Vec<TopicFilter<Bytes>> = filters
        .iter()
        .map(|f| TopicFilter::try_from(*f).expect("valid filter"))
        .collect();
    Unsubscribe::new(pid(id), &list).expect("non-empty")
}

/// The PUBLISH packets among `packets`.
pub fn publishes(packets: &[Packet<Bytes>]) -> Vec<Publish<Bytes>> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// The payloads of the PUBLISH packets among `packets`, as text.
pub fn payloads(packets: &[Packet<Bytes>]) -> Vec<String> {
    publishes(packets)
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}
