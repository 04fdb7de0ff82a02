//! Back-pressure over real sockets: a subscriber that stops reading fills its queue,
//! the broker stops reading its publishers (over TCP and over WebSocket), and once the
//! subscriber reads again they resume and nothing is lost.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use mqtt_sansio::broker::QueueFullPolicy;
use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::{BrokerConfig, QoS};
use mqtt_sansio_tokio::{Client, Listener, Messages, Options};
use support::{LIMIT, any_port, serve_with};

async fn client(url: String, id: &str, message_queue: usize) -> (Client, Messages) {
    let mut o = Options::new(url);
    o.client_id = id.to_string();
    o.message_queue = message_queue;
    tokio::time::timeout(LIMIT, Client::connect(o))
        .await
        .expect("connects in time")
        .expect("connects")
}

/// Waits (at most [`LIMIT`]) until `ready` holds.
async fn until(what: &str, ready: impl Fn() -> bool) {
    tokio::time::timeout(LIMIT, async {
        while !ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not in time: {what}"));
}

/// Publishes the messages `range` of `name` (1 KiB each, so that a read of the socket
/// takes a few at a time) at QoS 1, all at once, counting the acknowledged ones.
fn publish(
    publisher: &Client,
    name: &'static str,
    range: std::ops::Range<usize>,
    acked: &Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let (publisher, acked) = (publisher.clone(), acked.clone());
    tokio::spawn(async move {
        let sends = range.map(|i| {
            let mut payload = format!("{name}-{i}:").into_bytes();
            payload.resize(1024, b'.');
            let (publisher, acked) = (&publisher, &acked);
            async move {
                let topic = format!("load/{name}");
                let r = publisher
                    .publish(&topic, QoS::AtLeastOnce, false, payload)
                    .await;
                acked.fetch_add(1, Ordering::Relaxed);
                r
            }
        });
        let results = join_all(sends).await;
        assert!(results.iter().all(Result::is_ok), "{name}: {results:?}");
    })
}

#[tokio::test]
async fn a_slow_subscriber_pauses_its_publishers_over_tcp_and_websocket_and_nothing_is_lost() {
    let (n, max_queued) = (300, 20);
    let config = BrokerConfig {
        connection: ServerConfig {
            max_inflight: 2,
            max_queued,
            ..ServerConfig::default()
        },
        queue_full: QueueFullPolicy::Backpressure,
        ..BrokerConfig::default()
    };
    let listeners = vec![Listener::Tcp(any_port()), Listener::Ws(any_port())];
    let server = serve_with(config, listeners, None).await;
    let (tcp, ws) = (server.addrs[0].port(), server.addrs[1].port());
    // A subscriber that buffers one message and stops reading its socket while the
    // test does not take it.
    let (subscriber, mut messages) = client(format!("mqtt://127.0.0.1:{tcp}"), "slow", 1).await;
    subscriber
        .subscribe(&[("load/#", QoS::AtLeastOnce)])
        .await
        .expect("subscribed");
    let acked = Arc::new(AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for (url, name) in [
        (format!("mqtt://127.0.0.1:{tcp}"), "tcp"),
        (format!("ws://127.0.0.1:{ws}/mqtt"), "ws"),
    ] {
        let (publisher, _) = client(url, &format!("publisher-{name}"), 16).await;
        publishers.push((publisher, name));
    }
    // The first half: the subscriber's queue fills, and both publishers are paused.
    let mut batches = Vec::new();
    for (publisher, name) in &publishers {
        batches.push(publish(publisher, name, 0..n / 2, &acked));
        until("the publisher paused", || {
            server.counters.paused() >= batches.len() as u64
        })
        .await;
    }
    // The second half goes into their sockets, where it stays unread while they are
    // paused: nothing more of theirs is read or acknowledged.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (stalled, read) = (
        acked.load(Ordering::Relaxed),
        server.counters.bytes_received(),
    );
    for (publisher, name) in &publishers {
        batches.push(publish(publisher, name, n / 2..n, &acked));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.counters.bytes_received(), read);
    assert_eq!(acked.load(Ordering::Relaxed), stalled);
    assert!(stalled < n, "{stalled} acknowledged");
    // The subscriber reads again: they resume, and every message arrives once.
    let mut got = BTreeSet::new();
    while got.len() < 2 * n {
        let m = tokio::time::timeout(LIMIT, messages.recv())
            .await
            .unwrap_or_else(|_| panic!("stalled after {} messages", got.len()))
            .unwrap_or_else(|| panic!("closed after {} messages", got.len()));
        let head = m.payload.split(|b| *b == b':').next().unwrap_or_default();
        assert!(
            got.insert(String::from_utf8_lossy(head).into_owned()),
            "twice: {}",
            String::from_utf8_lossy(head)
        );
    }
    for batch in batches {
        tokio::time::timeout(LIMIT, batch)
            .await
            .expect("every publish acknowledged in time")
            .expect("publisher task");
    }
    assert_eq!(acked.load(Ordering::Relaxed), 2 * n);
    let expected: BTreeSet<String> = ["tcp", "ws"]
        .iter()
        .flat_map(|name| (0..n).map(move |i| format!("{name}-{i}")))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(server.counters.slow_dropped(), 0);
    server.stop().await;
}
