//! The pre-authentication limit: a connection's first packet may not announce more than
//! the server's `max_connect_size`. Real TCP connections against a running server.

use std::net::SocketAddr;
use std::time::Duration;

use mqtt_sansio::{BrokerConfig, Profile};
use mqtt_sansio_tokio::{Counters, Listener, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a test may wait for before it fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(15);

struct Running {
    addr: SocketAddr,
    counters: Counters,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn serve(max_connect_size: usize) -> Running {
    let mut server = Server::new(Profile::mqtt311(), BrokerConfig::default());
    server.set_max_connect_size(max_connect_size);
    let addr = server
        .listen(Listener::Tcp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let counters = server.counters();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        counters,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(LIMIT, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// The Remaining Length encoding of `n` (§2.2.3).
fn remaining_length(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return out;
        }
    }
}

/// A CONNECT (clean session, keep alive 60 s) whose Remaining Length is exactly `len`
/// (at least 12): the client id fills the rest.
fn connect_of_length(len: usize) -> Vec<u8> {
    let id_len = len - 12;
    let mut p = vec![0x10];
    p.extend(remaining_length(len));
    p.extend([0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60]);
    p.extend((id_len as u16).to_be_bytes());
    p.extend(std::iter::repeat_n(b'c', id_len));
    p
}

/// Reads until the server closes the connection (end of stream or reset); returns what
/// it sent first.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(LIMIT, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {LIMIT:?}"),
        }
    }
}

#[tokio::test]
async fn a_connect_header_announcing_250_mb_closes_the_connection_without_buffering() {
    let server = serve(64 * 1024).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut header = vec![0x10];
    header.extend(remaining_length(250_000_000));
    tcp.write_all(&header).await.unwrap();
    // Some of the announced bytes: the server must not wait for, nor keep, them.
    let _ = tcp.write_all(&[0u8; 16 * 1024]).await;
    let answer = read_until_closed(&mut tcp).await;
    assert!(answer.is_empty(), "no CONNACK for a refused CONNECT");
    assert_eq!(server.counters.connect_too_large(), 1);
    assert_eq!(
        server.counters.bytes_received(),
        0,
        "nothing was handed to the broker"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_connect_at_the_limit_is_accepted_and_one_byte_more_is_refused() {
    let limit = 200;
    let server = serve(limit).await;

    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&connect_of_length(limit)).await.unwrap();
    let mut connack = [0u8; 4];
    tokio::time::timeout(LIMIT, tcp.read_exact(&mut connack))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK accepted");

    let mut over = TcpStream::connect(server.addr).await.unwrap();
    over.write_all(&connect_of_length(limit + 1)).await.unwrap();
    assert!(read_until_closed(&mut over).await.is_empty());
    assert_eq!(server.counters.connect_too_large(), 1);
    drop(tcp);
    server.stop().await;
}

#[tokio::test]
async fn a_fixed_header_sent_byte_by_byte_is_still_checked() {
    let server = serve(1024).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut header = vec![0x10];
    header.extend(remaining_length(2_000_000));
    for b in header {
        tcp.write_all(&[b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(read_until_closed(&mut tcp).await.is_empty());
    assert_eq!(server.counters.connect_too_large(), 1);
    assert_eq!(server.counters.bytes_received(), 0);
    server.stop().await;
}

#[tokio::test]
async fn packets_after_an_accepted_connect_are_not_held_to_the_limit() {
    let limit = 100;
    let server = serve(limit).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&connect_of_length(20)).await.unwrap();
    let mut connack = [0u8; 4];
    tokio::time::timeout(LIMIT, tcp.read_exact(&mut connack))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);
    // A QoS 1 PUBLISH of 1 000 bytes, ten times the limit: PUBACK comes back.
    let topic = b"t/big";
    let payload = vec![7u8; 1000];
    let mut publish = vec![0x32];
    publish.extend(remaining_length(2 + topic.len() + 2 + payload.len()));
    publish.extend((topic.len() as u16).to_be_bytes());
    publish.extend(topic);
    publish.extend([0, 1]);
    publish.extend(&payload);
    tcp.write_all(&publish).await.unwrap();
    let mut puback = [0u8; 4];
    tokio::time::timeout(LIMIT, tcp.read_exact(&mut puback))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(puback, [0x40, 2, 0, 1]);
    assert_eq!(server.counters.connect_too_large(), 0);
    drop(tcp);
    server.stop().await;
}

#[tokio::test]
async fn a_first_publish_announcing_250_mb_is_refused_by_the_limit_too() {
    let server = serve(64 * 1024).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut header = vec![0x30];
    header.extend(remaining_length(250_000_000));
    tcp.write_all(&header).await.unwrap();
    let _ = tcp.write_all(&[0u8; 16 * 1024]).await;
    assert!(read_until_closed(&mut tcp).await.is_empty());
    assert_eq!(server.counters.connect_too_large(), 1);
    assert_eq!(server.counters.bytes_received(), 0);
    server.stop().await;
}
