//! Driving one server connection alone: its actions, split by kind, and a connected
//! server to start from.

use std::sync::Arc;

use bytes::Bytes;
use mqtt_sansio::server::{
    Action, Authorizer, CloseReason, Message, PublishDecision, Server, ServerConfig, ServerEvent,
};
use mqtt_sansio::{ConnAck, ConnectReturnCode, Instant, Login, MqttString, Packet, Profile, QoS};

use super::harness::connect;

pub fn bytes(p: impl Into<Packet<Bytes>>) -> Bytes {
    p.into().to_bytes().expect("encodable")
}

pub fn drain(s: &mut Server) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

pub fn sends(actions: &[Action]) -> Vec<Packet<Bytes>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

pub fn events(actions: &[Action]) -> Vec<ServerEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

pub fn close_reason(actions: &[Action]) -> Option<CloseReason> {
    actions.iter().find_map(|a| match a {
        Action::Close(r) => Some(*r),
        _ => None,
    })
}

pub fn accepted() -> Packet<Bytes> {
    Packet::ConnAck(ConnAck::Accepted {
        session_present: false,
    })
}

/// A server that has accepted `client` (keep-alive 10 s, the given will).
pub fn connected(
    profile: Profile,
    config: ServerConfig,
    client: &str,
    w: Option<mqtt_sansio::Will<Bytes>>,
) -> Server {
    let mut s = Server::open(Instant::ZERO, profile, config);
    s.handle_bytes(
        Instant::ZERO,
        &bytes(Packet::Connect(connect(client, true, 10, w))),
    );
    let a = drain(&mut s);
    assert!(matches!(events(&a)[..], [ServerEvent::Connect(_)]), "{a:?}");
    s.accept(Instant::ZERO, None).unwrap();
    assert_eq!(sends(&drain(&mut s)), vec![accepted()]);
    s
}

pub fn plain(client: &str) -> Server {
    connected(Profile::mqtt311(), ServerConfig::default(), client, None)
}

pub fn msg(topic: &str, qos: QoS, payload: &str) -> Message {
    Message {
        topic: mqtt_sansio::TopicName::try_from(topic).unwrap(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain: false,
    }
}

/// Accepts the password `pw` only (code 4 for another, 5 without a login), grants at
/// most QoS 1 and refuses wildcard filters; a PUBLISH to `closed` closes, to `dropped`
/// is discarded.
pub struct Passwords;

impl Authorizer for Passwords {
    fn connect(
        &self,
        _: &MqttString<Bytes>,
        login: Option<&Login<Bytes>>,
    ) -> Result<(), ConnectReturnCode> {
        match login {
            None => Err(ConnectReturnCode::NotAuthorized),
            Some(l) if l.password.as_ref().map(|p| p.as_bytes()) == Some(b"pw") => Ok(()),
            Some(_) => Err(ConnectReturnCode::BadUserNameOrPassword),
        }
    }
    fn subscribe(
        &self,
        _: &MqttString<Bytes>,
        f: &mqtt_sansio::TopicFilter<Bytes>,
        q: QoS,
    ) -> Option<QoS> {
        if f.has_wildcards() {
            None
        } else {
            Some(q.min(QoS::AtLeastOnce))
        }
    }
    fn publish(&self, _: &MqttString<Bytes>, m: &Message) -> PublishDecision {
        match m.topic.as_str() {
            "closed" => PublishDecision::Close,
            "dropped" => PublishDecision::Discard,
            _ => PublishDecision::Allow,
        }
    }
}

pub fn with_passwords() -> ServerConfig {
    ServerConfig {
        authorizer: Arc::new(Passwords),
        ..ServerConfig::default()
    }
}

pub fn login(pw: &str) -> Option<Login<Bytes>> {
    Some(Login {
        username: MqttString::from_static("u").unwrap(),
        password: Some(mqtt_sansio::Binary::new(Bytes::copy_from_slice(pw.as_bytes())).unwrap()),
    })
}

/// Grants at most QoS 1 and refuses wildcard filters (a server without wildcards).
pub struct NoWildcards;

impl Authorizer for NoWildcards {
    fn subscribe(
        &self,
        c: &MqttString<Bytes>,
        f: &mqtt_sansio::TopicFilter<Bytes>,
        q: QoS,
    ) -> Option<QoS> {
        Passwords.subscribe(c, f, q)
    }
}

pub fn with_passwords_accepting() -> ServerConfig {
    ServerConfig {
        authorizer: Arc::new(NoWildcards),
        ..ServerConfig::default()
    }
}
