//! MQTT over WebSocket (MQTT 3.1.1 §6) between the crate's client and server, and
//! against a raw WebSocket peer that frames the bytes as the test chooses.

mod support;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use mqtt_sansio::QoS;
use mqtt_sansio_tokio::{Client, Error, Listener, Options, TlsOptions, server_tls};
use support::{LIMIT, Pki, any_port, serve};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// CONNECT, client id "ws", clean session, keep-alive 30.
const CONNECT: &[u8] = b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x1e\x00\x02ws";
/// SUBSCRIBE id 1 to "a/b" at QoS 1.
const SUBSCRIBE: &[u8] = b"\x82\x08\x00\x01\x00\x03a/b\x01";
const PINGREQ: &[u8] = b"\xc0\x00";
const CONNACK: &[u8] = b"\x20\x02\x00\x00";
const SUBACK: &[u8] = b"\x90\x03\x00\x01\x01";
const PINGRESP: &[u8] = b"\xd0\x00";

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A raw WebSocket connection to `port`, offering `protocol` (if any).
async fn raw(
    port: u16,
    protocol: Option<&'static str>,
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    String,
> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let mut request = format!("ws://127.0.0.1:{port}/mqtt")
        .into_client_request()
        .unwrap();
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
    }
    tokio_tungstenite::client_async(request, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// The bytes of binary frames received until `want` bytes arrived.
async fn read_bytes(ws: &mut Ws, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Binary(b))) => got.extend_from_slice(&b),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("after {got:?}: {other:?}"),
        }
    }
    got
}

#[tokio::test]
async fn the_server_selects_mqtt_and_reads_packets_split_across_and_packed_into_frames() {
    let server = serve(vec![Listener::Ws(any_port())], None).await;
    let (mut ws, response) = raw(server.addrs[0].port(), Some("mqtt")).await.unwrap();
    // MQTT-6.0.0-4: the server selected the sub-protocol mqtt.
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "mqtt"
    );
    // MQTT-6.0.0-2: CONNECT split over three frames, then SUBSCRIBE and PINGREQ in one.
    ws.send(Message::Binary(Bytes::from_static(&CONNECT[..3])))
        .await
        .unwrap();
    ws.send(Message::Binary(Bytes::from_static(&CONNECT[3..9])))
        .await
        .unwrap();
    ws.send(Message::Binary(Bytes::from_static(&CONNECT[9..])))
        .await
        .unwrap();
    let mut both = SUBSCRIBE.to_vec();
    both.extend_from_slice(PINGREQ);
    ws.send(Message::Binary(Bytes::from(both))).await.unwrap();
    let want = [CONNACK, SUBACK, PINGRESP].concat();
    assert_eq!(read_bytes(&mut ws, want.len()).await, want);
    server.stop().await;
}

#[tokio::test]
async fn a_handshake_without_the_mqtt_subprotocol_is_refused() {
    let server = serve(vec![Listener::Ws(any_port())], None).await;
    let port = server.addrs[0].port();
    let none = raw(port, None).await;
    assert!(
        none.as_ref().is_err_and(|e| e.contains("400")),
        "{:?}",
        none.map(|_| ())
    );
    let other = raw(port, Some("wamp")).await;
    assert!(
        other.as_ref().is_err_and(|e| e.contains("400")),
        "{:?}",
        other.map(|_| ())
    );
    assert_eq!(server.counters.handshakes_failed(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_text_frame_closes_the_connection() {
    let server = serve(vec![Listener::Ws(any_port())], None).await;
    let (mut ws, _) = raw(server.addrs[0].port(), Some("mqtt")).await.unwrap();
    ws.send(Message::Binary(Bytes::from_static(CONNECT)))
        .await
        .unwrap();
    assert_eq!(read_bytes(&mut ws, CONNACK.len()).await, CONNACK);
    ws.send(Message::Text(
        String::from_utf8_lossy(PINGREQ).into_owned().into(),
    ))
    .await
    .unwrap();
    // MQTT-6.0.0-1: no PINGRESP; the connection ends.
    loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("closed in time")
        {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
            Some(Ok(Message::Binary(b))) => panic!("answered {b:?} after a text frame"),
            Some(Ok(_)) => {}
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_client_publishes_and_receives_over_ws_and_wss() {
    let pki = Pki::new();
    let tls = server_tls(&pki.path("server.pem"), &pki.path("server.key"), None).unwrap();
    let server = serve(
        vec![Listener::Ws(any_port()), Listener::Wss(any_port(), tls)],
        None,
    )
    .await;
    let urls = [
        format!("ws://127.0.0.1:{}/mqtt", server.addrs[0].port()),
        format!("wss://localhost:{}", server.addrs[1].port()),
    ];
    for url in urls {
        let mut o = Options::new(url.clone());
        o.client_id = format!("c-{}", url.len());
        o.tls = TlsOptions {
            ca_file: Some(pki.path("ca.pem")),
            ..TlsOptions::default()
        };
        let (client, mut messages) = tokio::time::timeout(LIMIT, Client::connect(o))
            .await
            .unwrap()
            .unwrap();
        client
            .subscribe(&[("ws/#", QoS::ExactlyOnce)])
            .await
            .unwrap();
        // A payload far larger than one read: it crosses many frames and reads.
        let big = vec![b'x'; 300_000];
        client
            .publish("ws/big", QoS::ExactlyOnce, false, big.clone())
            .await
            .unwrap();
        let m = tokio::time::timeout(LIMIT, messages.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.payload.len(), big.len(), "{url}");
        client.disconnect().await.unwrap();
    }
    server.stop().await;
}

/// A WebSocket server that selects `protocol` and then sends `first`; reports the
/// sub-protocols the client offered.
async fn fake_server(
    protocol: Option<&'static str>,
    first: Option<Message>,
) -> (u16, std::sync::mpsc::Receiver<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (offered_tx, offered) = std::sync::mpsc::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let callback = move |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                             mut response: tokio_tungstenite::tungstenite::handshake::server::Response| {
            let header = request.headers().get("Sec-WebSocket-Protocol");
            let _ = offered_tx.send(header.and_then(|v| v.to_str().ok()).map(str::to_string));
            if let Some(p) = protocol {
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
            }
            Ok(response)
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
            return;
        };
        if let Some(m) = first {
            let _ = ws.send(m).await;
        }
        // Hold the connection open until the client closes it.
        while let Some(Ok(_)) = ws.next().await {}
    });
    (port, offered)
}

#[tokio::test]
async fn the_client_offers_mqtt_and_refuses_a_server_that_does_not_select_it() {
    let (port, offered) = fake_server(None, None).await;
    let e = Client::connect(Options::new(format!("ws://127.0.0.1:{port}")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WebSocket(_)), "{e:?}");
    // MQTT-6.0.0-3: the client offered mqtt.
    assert_eq!(offered.recv().unwrap().as_deref(), Some("mqtt"));
}

#[tokio::test]
async fn the_client_closes_on_a_text_frame_from_the_server() {
    let (port, _) = fake_server(Some("mqtt"), Some(Message::Text("\u{20}\u{2}\0\0".into()))).await;
    let e = tokio::time::timeout(
        LIMIT,
        Client::connect(Options::new(format!("ws://127.0.0.1:{port}"))),
    )
    .await
    .expect("no hang")
    .unwrap_err();
    assert!(
        matches!(&e, Error::WebSocket(why) if why.contains("MQTT-6.0.0-1")),
        "{e:?}"
    );
}
