//! Plain TCP connections are read and written by the server's core task itself, through
//! one read buffer it shares between them: a connection that keeps sending is read a
//! few times per round and the others are served in between, and a packet larger than
//! that buffer arrives whole. Real TCP connections against a running server.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use mqtt_sansio::{Connect, MqttString, Packet, Publish, QoS, QosPid, TopicName};
use mqtt_sansio_tokio::Listener;
use support::{LIMIT, any_port, connect_client, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A CONNECT for `id` (clean session, keep alive 60 s).
fn connect(id: &str) -> Vec<u8> {
    connect_keeping_alive(id, 60)
}

/// A CONNECT for `id` (clean session, keep alive `keep_alive` seconds).
fn connect_keeping_alive(id: &str, keep_alive: u16) -> Vec<u8> {
    Packet::<Bytes>::Connect(Connect {
        client_id: MqttString::try_from(id).unwrap(),
        clean_session: true,
        keep_alive,
        will: None,
        login: None,
    })
    .to_bytes()
    .unwrap()
    .to_vec()
}

/// A QoS 0 PUBLISH of `payload` to `topic`.
fn publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    let topic = TopicName::new(Bytes::copy_from_slice(topic.as_bytes())).unwrap();
    Packet::Publish(Publish::new(
        topic,
        QosPid::AtMostOnce,
        Bytes::copy_from_slice(payload),
    ))
    .to_bytes()
    .unwrap()
    .to_vec()
}

#[tokio::test]
async fn a_connection_that_keeps_sending_does_not_keep_the_others_waiting() {
    let running = serve(vec![Listener::Tcp(any_port())], None).await;
    let addr = running.addrs[0];
    // The flooder: QoS 0 publishes of 16 KiB to a topic nobody reads, as fast as the
    // socket takes them, until the others are done.
    let mut flood = TcpStream::connect(addr).await.unwrap();
    flood.write_all(&connect("flooder")).await.unwrap();
    let chunk = publish("flood/nobody", &[b'f'; 16 * 1024]).repeat(8);
    let (done, written) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let flooding = tokio::spawn({
        let (done, written) = (done.clone(), written.clone());
        async move {
            while !done.load(Ordering::Relaxed) {
                flood
                    .write_all(&chunk)
                    .await
                    .expect("the broker keeps reading");
                written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    });
    // Well into the flood, more than one round's reads of the shared buffer.
    tokio::time::timeout(LIMIT, async {
        while written.load(Ordering::Relaxed) < 4 << 20 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the flood is read");
    // A client that goes silent after its CONNECT (keep alive 1 s): the broker's timer
    // closes it while the flood goes on.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    silent
        .write_all(&connect_keeping_alive("silent", 1))
        .await
        .unwrap();
    // Others connect, subscribe and get their messages meanwhile.
    let url = format!("mqtt://{addr}");
    let (sub, mut messages) = connect_client(&url, "quiet-sub").await;
    sub.subscribe(&[("quiet/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let (publisher, _) = connect_client(&url, "quiet-pub").await;
    for i in 0..20u8 {
        publisher
            .publish("quiet/t", QoS::AtLeastOnce, false, vec![i])
            .await
            .unwrap();
        let got = tokio::time::timeout(LIMIT, messages.recv())
            .await
            .expect("delivered in time")
            .expect("a message");
        assert_eq!(&got.payload[..], &[i]);
    }
    // CONNACK, then the end of the stream once the keep-alive has run out (1.5 s).
    let mut read = Vec::new();
    tokio::time::timeout(LIMIT, silent.read_to_end(&mut read))
        .await
        .expect("the silent client is closed by its keep-alive during the flood")
        .ok();
    assert_eq!(read, [0x20, 2, 0, 0], "a CONNACK and nothing else");
    assert!(!flooding.is_finished(), "the flooder is still connected");
    done.store(true, Ordering::Relaxed);
    tokio::time::timeout(LIMIT, flooding)
        .await
        .expect("the flood stops")
        .expect("no write failed");
    assert!(running.counters.bytes_received() >= 4 << 20);
    running.stop().await;
}

#[tokio::test]
async fn a_publish_larger_than_the_read_buffer_arrives_whole() {
    let running = serve(vec![Listener::Tcp(any_port())], None).await;
    let addr = running.addrs[0];
    let (sub, mut messages) = connect_client(&format!("mqtt://{addr}"), "big-sub").await;
    sub.subscribe(&[("big/t", QoS::AtMostOnce)]).await.unwrap();
    // 300 000 bytes (the core task reads 16 KiB at a time), sent in uneven pieces after
    // the CONNECT in the same first write.
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = connect("big-pub");
    bytes.extend(publish("big/t", &payload));
    let mut raw = TcpStream::connect(addr).await.unwrap();
    let first = bytes.len() / 3 + 7;
    raw.write_all(&bytes[..first]).await.unwrap();
    raw.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    raw.write_all(&bytes[first..]).await.unwrap();
    let got = tokio::time::timeout(LIMIT, messages.recv())
        .await
        .expect("delivered in time")
        .expect("a message");
    assert_eq!(got.payload.len(), payload.len());
    assert!(got.payload[..] == payload[..], "the payload arrives intact");
    drop(raw);
    running.stop().await;
}
