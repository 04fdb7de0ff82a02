//! A client driven by a scripted server in simulated time, recording every action it
//! emits: the harness of the client scenario tests.

use bytes::Bytes;
use mqtt_sansio::client::{Action, Client, ClientConfig, Event};
use mqtt_sansio::{
    ConnAck, Connect, Instant, MqttString, Packet, PacketId, Profile, Publish, QoS, QosPid, SubAck,
    SubAckCode, TopicFilter, TopicName,
};

/// A client and the simulated clock, recording every action it emits.
pub struct Sim {
    pub client: Client,
    pub now: Instant,
    pub transcript: Vec<Action>,
}

/// A packet id, from a non-zero number.
pub fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// A topic name, from a valid one.
pub fn topic(s: &str) -> TopicName<Bytes> {
    TopicName::try_from(s).unwrap()
}

/// A topic filter, from a valid one.
pub fn filter(s: &str) -> TopicFilter<Bytes> {
    TopicFilter::try_from(s).unwrap()
}

/// A CONNECT without will or login.
pub fn connect_packet(client_id: &str, clean_session: bool, keep_alive: u16) -> Connect<Bytes> {
    Connect {
        client_id: MqttString::try_from(client_id).unwrap(),
        clean_session,
        keep_alive,
        will: None,
        login: None,
    }
}

/// A PUBLISH from the server.
pub fn incoming(qos: QosPid, t: &str, payload: &'static str) -> Packet<Bytes> {
    Packet::Publish(Publish::new(topic(t), qos, payload))
}

impl Sim {
    /// A client under `profile` with its default settings, at instant zero.
    pub fn new(profile: Profile) -> Sim {
        Sim::with_config(profile.clone(), ClientConfig::for_profile(&profile))
    }

    /// A client under `profile` with `config`, at instant zero.
    pub fn with_config(profile: Profile, config: ClientConfig) -> Sim {
        Sim {
            client: Client::with_config(profile, config),
            now: Instant::ZERO,
            transcript: Vec::new(),
        }
    }

    /// Every pending action, recorded in the transcript too.
    pub fn drain(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = self.client.poll_action() {
            out.push(a);
        }
        self.transcript.extend(out.iter().cloned());
        out
    }

    /// A packet from the server; returns what followed.
    pub fn server(&mut self, p: Packet<Bytes>) -> Vec<Action> {
        self.client.handle_packet(self.now, p).unwrap();
        self.drain()
    }

    /// A SUBACK for `subscribe` with `codes`, then an UNSUBACK for `unsubscribe`: each
    /// must complete its request with its event and nothing else.
    pub fn ack_subscribe_and_unsubscribe(
        &mut self,
        subscribe: PacketId,
        codes: Vec<SubAckCode>,
        unsubscribe: PacketId,
    ) {
        let suback = SubAck::new(subscribe, codes.clone()).unwrap();
        assert_eq!(
            self.server(Packet::SubAck(suback)),
            vec![Action::Event(Event::Subscribed {
                packet_id: subscribe,
                codes
            })]
        );
        assert_eq!(
            self.server(Packet::UnsubAck(unsubscribe)),
            vec![Action::Event(Event::Unsubscribed(unsubscribe))]
        );
    }

    /// Connects and accepts, returning what followed the CONNECT.
    pub fn connected(
        &mut self,
        clean: bool,
        keep_alive: u16,
        session_present: bool,
    ) -> Vec<Action> {
        self.client
            .connect(self.now, connect_packet("c1", clean, keep_alive))
            .unwrap();
        let sent = self.drain();
        assert!(matches!(sent[..], [Action::Send(Packet::Connect(_))]));
        self.server(Packet::ConnAck(ConnAck::Accepted { session_present }))
    }

    /// Publishes `payload` to `t`; returns the packet id (QoS 1/2).
    pub fn publish(&mut self, t: &str, qos: QoS, payload: &'static str) -> Option<PacketId> {
        self.client
            .publish(self.now, topic(t), qos, false, payload)
            .unwrap()
    }

    /// Advances the clock to `to`, firing every timer on the way, the way a run loop
    /// would; returns the actions.
    pub fn run_until(&mut self, to: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(t) = self.client.poll_timeout() {
            if t > to {
                break;
            }
            self.now = t;
            self.client.handle_timeout(t);
            out.extend(self.drain());
        }
        self.now = to;
        out
    }
}

/// The packets among `actions`.
pub fn sent(actions: &[Action]) -> Vec<Packet<Bytes>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// A PUBLISH's DUP flag and packet id.
pub fn republished(p: &Packet<Bytes>) -> (bool, Option<u16>) {
    match p {
        Packet::Publish(p) => (p.dup, p.qos.packet_id().map(PacketId::get)),
        other => panic!("not a PUBLISH: {other:?}"),
    }
}
