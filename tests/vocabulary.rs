//! The words both roles share: a peer's protocol violation, close reasons that print,
//! `connection_lost`, and commands that refuse misuse without changing anything.

use bytes::Bytes;
use mqtt_sansio::client::{Action as ClientAction, Reason};
use mqtt_sansio::server::{Action as ServerAction, CloseReason, ServerConfig, ServerError};
use mqtt_sansio::{
    Client, Connect, ConnectReturnCode, Instant, MqttString, Packet, Profile, ProtocolError, Server,
};

const NOW: Instant = Instant::ZERO;

fn connect() -> Connect<Bytes> {
    Connect {
        client_id: MqttString::try_from("c1").unwrap(),
        clean_session: true,
        keep_alive: 0,
        will: None,
        login: None,
    }
}

#[test]
fn a_peers_violation_carries_rule_expected_and_got_on_both_roles() {
    let mut c = Client::new(Profile::mqtt311());
    c.connect(NOW, connect()).unwrap();
    while c.poll_action().is_some() {}
    c.handle_packet(NOW, Packet::PingResp).unwrap();
    let Some(ClientAction::Close(Reason::Protocol(client_side))) = c.poll_action() else {
        panic!("the client closes with a protocol error")
    };
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    s.handle_bytes(NOW, &Packet::<Bytes>::PingReq.to_bytes().unwrap());
    let Some(ServerAction::Close(CloseReason::Protocol(server_side))) = s.poll_action() else {
        panic!("the server closes with a protocol error")
    };
    assert_eq!(
        client_side,
        ProtocolError {
            rule: "MQTT-3.2.0-1",
            expected: "CONNACK",
            got: "PINGRESP"
        }
    );
    assert_eq!(
        server_side,
        ProtocolError {
            rule: "MQTT-3.1.0-1",
            expected: "CONNECT",
            got: "PINGREQ"
        }
    );
    assert_eq!(
        Reason::Protocol(client_side).to_string(),
        "the server broke the protocol: MQTT-3.2.0-1: expected CONNACK, got PINGRESP"
    );
    assert_eq!(
        CloseReason::Protocol(server_side).to_string(),
        "the client broke the protocol: MQTT-3.1.0-1: expected CONNECT, got PINGREQ"
    );
}

#[test]
fn every_close_reason_prints_a_sentence() {
    let client = [
        Reason::Disconnected,
        Reason::Refused(ConnectReturnCode::NotAuthorized),
        Reason::ConnAckTimeout,
        Reason::PingTimeout,
    ];
    let server = [
        CloseReason::Refused(ConnectReturnCode::NotAuthorized),
        CloseReason::KeepAliveTimeout,
        CloseReason::ConnectTimeout,
        CloseReason::ClientDisconnect,
        CloseReason::Takeover,
        CloseReason::Application,
    ];
    let texts: Vec<String> = client
        .iter()
        .map(ToString::to_string)
        .chain(server.iter().map(ToString::to_string))
        .collect();
    for t in &texts {
        assert!(t.len() > 8 && !t.contains('_'), "{t:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = texts.iter().collect();
    assert_eq!(distinct.len(), texts.len(), "two reasons print alike");
}

#[test]
fn accept_or_refuse_without_a_connect_awaiting_an_answer_is_refused_and_changes_nothing() {
    let mut s = Server::open(NOW, Profile::mqtt311(), ServerConfig::default());
    let timeout = s.poll_timeout();
    assert_eq!(s.accept(NOW, None), Err(ServerError::NotAwaitingAnswer));
    assert_eq!(
        s.refuse(NOW, ConnectReturnCode::NotAuthorized),
        Err(ServerError::NotAwaitingAnswer)
    );
    assert_eq!(s.poll_action(), None);
    assert_eq!((s.is_connected(), s.poll_timeout()), (false, timeout));

    s.handle_bytes(NOW, &Packet::Connect(connect()).to_bytes().unwrap());
    while s.poll_action().is_some() {}
    assert_eq!(s.accept(NOW, None), Ok(()));
    while s.poll_action().is_some() {}
    // Answered once: a second answer is misuse.
    assert_eq!(s.accept(NOW, None), Err(ServerError::NotAwaitingAnswer));
    assert_eq!(
        s.refuse(NOW, ConnectReturnCode::NotAuthorized),
        Err(ServerError::NotAwaitingAnswer)
    );
    assert_eq!(s.poll_action(), None);
    assert!(s.is_connected());
}

#[test]
fn a_lost_connection_is_connection_lost_on_both_roles() {
    let mut c = Client::new(Profile::mqtt311());
    c.connect(NOW, connect()).unwrap();
    while c.poll_action().is_some() {}
    c.connection_lost(NOW);
    assert_eq!(c.state(), mqtt_sansio::ClientState::Disconnected);
    let mut s = Server::new(Profile::mqtt311(), ServerConfig::default());
    s.handle_bytes(NOW, &Packet::Connect(connect()).to_bytes().unwrap());
    s.connection_lost(NOW);
    assert!(s.is_closed());
}
