//! Many retained messages for one `#` subscriber over real TCP: they follow the SUBACK
//! as the subscriber acknowledges them (QoS 1) or as its socket drains (QoS 0), and the
//! connection stays up.

mod support;

use std::collections::BTreeSet;

use futures_util::future::join_all;
use mqtt_sansio::QoS;
use mqtt_sansio_tokio::{Client, Listener, Messages};
use support::{LIMIT, any_port, connect_client, serve};

async fn client(port: u16, id: &str) -> (Client, Messages) {
    connect_client(&format!("mqtt://127.0.0.1:{port}"), id).await
}

#[tokio::test]
async fn twenty_thousand_retained_messages_reach_a_hash_subscriber_that_stays_connected() {
    retained_flood(QoS::AtLeastOnce).await;
}

/// At QoS 0 nothing acknowledges them: the next go out as the connection's socket takes
/// the ones before, without the subscriber sending anything.
#[tokio::test]
async fn twenty_thousand_retained_messages_reach_a_qos0_hash_subscriber_as_its_socket_drains() {
    retained_flood(QoS::AtMostOnce).await;
}

async fn retained_flood(qos: QoS) {
    let n = 20_000;
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let port = server.addrs[0].port();
    let (publisher, _) = client(port, "publisher").await;
    // QoS 1: each is stored before its PUBACK; 100 in flight at a time.
    let topics: Vec<String> = (0..n).map(|i| format!("r/{}/{i}", i % 100)).collect();
    for chunk in topics.chunks(100) {
        let sent = join_all(
            chunk
                .iter()
                .map(|t| publisher.publish(t, QoS::AtLeastOnce, true, t.clone().into_bytes())),
        )
        .await;
        assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    }
    let (subscriber, mut messages) = client(port, "reader").await;
    let codes = tokio::time::timeout(LIMIT, subscriber.subscribe(&[("#", qos)]))
        .await
        .expect("SUBACK in time")
        .expect("subscribed");
    assert_eq!(codes.len(), 1);
    let mut got = BTreeSet::new();
    while got.len() < n {
        let m = tokio::time::timeout(LIMIT, messages.recv())
            .await
            .unwrap_or_else(|_| panic!("stalled after {} messages", got.len()))
            .unwrap_or_else(|| panic!("connection closed after {} messages", got.len()));
        assert!(m.retain, "{}", m.topic.as_str());
        assert_eq!(m.payload, m.topic.as_str().as_bytes());
        assert!(
            got.insert(m.topic.as_str().to_string()),
            "twice: {}",
            m.topic.as_str()
        );
    }
    assert_eq!(got, topics.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(server.counters.slow_dropped(), 0, "no connection dropped");
    // Still connected: a live message comes through.
    publisher
        .publish("live", QoS::AtLeastOnce, false, &b"after"[..])
        .await
        .expect("published");
    let m = tokio::time::timeout(LIMIT, messages.recv())
        .await
        .expect("live message in time")
        .expect("still connected");
    assert_eq!((m.topic.as_str(), m.retain), ("live", false));
    subscriber.disconnect().await.expect("disconnects");
    publisher.disconnect().await.expect("disconnects");
    server.stop().await;
}
