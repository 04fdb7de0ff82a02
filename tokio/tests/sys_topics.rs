//! The `$SYS/broker/...` topics over real TCP: they move as clients work, `#` alone does
//! not see them, and a data directory never keeps them.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::{BrokerConfig, Profile, QoS};
use mqtt_sansio_tokio::store::{Store, StoredMessage, Write};
use mqtt_sansio_tokio::{Client, Listener, Messages, Server};
use support::{LIMIT, Running, TempDir, any_port, connect_client, run};

const INTERVAL: Duration = Duration::from_millis(50);

async fn start(profile: Profile, sys: Option<Duration>, dir: Option<&Path>) -> Running {
    let mut server = Server::new(profile, BrokerConfig::default());
    server.set_sys_interval(sys);
    if let Some(dir) = dir {
        server.data_dir(dir).expect("a usable data directory");
    }
    run(server, vec![Listener::Tcp(any_port())]).await
}

async fn client(server: &Running, id: &str) -> (Client, Messages) {
    let url = format!("mqtt://127.0.0.1:{}", server.addrs[0].port());
    connect_client(&url, id).await
}

async fn subscribe(c: &Client, filter: &str) {
    tokio::time::timeout(LIMIT, c.subscribe(&[(filter, QoS::AtMostOnce)]))
        .await
        .expect("SUBACK in time")
        .expect("subscribed");
}

/// The last topic of a round of figures.
const LAST: &str = "retained messages/count";

/// The latest value of each `$SYS/broker/` topic seen so far.
#[derive(Default)]
struct Figures(BTreeMap<String, String>);

impl Figures {
    /// Reads messages until `done` holds for what was seen at the end of a round (or
    /// fails after the limit). A round of figures ends with the retained count.
    async fn until(
        &mut self,
        messages: &mut Messages,
        what: &str,
        done: impl Fn(&Figures) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        let mut last = String::from(LAST);
        while last != LAST || !done(self) {
            let m = tokio::time::timeout_at(deadline, messages.recv())
                .await
                .unwrap_or_else(|_| panic!("{what}: not seen in time; seen {:?}", self.0))
                .expect("the connection stays up");
            let topic = m.topic.as_str();
            let name = topic
                .strip_prefix("$SYS/broker/")
                .unwrap_or_else(|| panic!("a message on {topic}"));
            let value = String::from_utf8(m.payload.to_vec()).expect("text");
            self.0.insert(name.to_string(), value);
            last = name.to_string();
        }
    }

    fn number(&self, name: &str) -> u64 {
        self.0.get(name).map_or(0, |v| v.parse().expect("a number"))
    }
}

#[tokio::test]
async fn the_sys_topics_count_what_clients_do_as_it_happens() {
    let server = start(Profile::mqtt311(), Some(INTERVAL), None).await;
    let (watcher, mut seen) = client(&server, "watcher").await;
    subscribe(&watcher, "$SYS/broker/#").await;
    let mut figures = Figures::default();
    figures
        .until(&mut seen, "the first figures", |f| {
            [
                "version",
                "uptime",
                "publish/messages/received",
                "retained messages/count",
            ]
            .iter()
            .all(|k| f.0.contains_key(*k))
        })
        .await;
    assert_eq!(
        figures.0["version"],
        format!("mqtt-sansio-tokio version {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(figures.0["uptime"].ends_with(" seconds"), "{:?}", figures.0);
    let before = figures.number("publish/messages/received");
    let packets_before = figures.number("messages/received");
    let bytes_before = figures.number("bytes/received");
    let (publisher, _) = client(&server, "publisher").await;
    for i in 0..5 {
        publisher
            .publish(
                "data/t",
                QoS::AtLeastOnce,
                false,
                format!("m{i}").into_bytes(),
            )
            .await
            .expect("acknowledged");
    }
    figures
        .until(&mut seen, "five more messages received", |f| {
            f.number("publish/messages/received") >= before + 5
                && f.number("clients/connected") == 2
        })
        .await;
    assert_eq!(figures.number("publish/messages/received"), before + 5);
    assert!(figures.number("messages/received") >= packets_before + 6);
    assert!(figures.number("bytes/received") > bytes_before);
    assert!(figures.number("messages/sent") > 0);
    assert_eq!(figures.number("clients/total"), 2);
    assert_eq!(figures.number("connections/open"), 2);
    assert_eq!(figures.number("publish/messages/dropped"), 0);
    assert_eq!(figures.number("publish/messages/dropped/queue-full"), 0);
    // Every $SYS message is retained, so the count includes them.
    assert!(figures.number("retained messages/count") >= 20);
    // The watcher's own deliveries are counted as sent.
    let sent = figures.number("publish/messages/sent");
    figures
        .until(&mut seen, "more messages sent", |f| {
            f.number("publish/messages/sent") > sent
        })
        .await;
    server.stop().await;
}

// MQTT-4.7.2-1
#[tokio::test]
async fn a_hash_subscriber_gets_no_sys_message() {
    let server = start(Profile::mqtt311(), Some(INTERVAL), None).await;
    let (all, mut everything) = client(&server, "all").await;
    subscribe(&all, "#").await;
    subscribe(&all, "+/broker/uptime").await;
    let (watcher, mut seen) = client(&server, "watcher").await;
    subscribe(&watcher, "$SYS/broker/uptime").await;
    // Two rounds of figures after both subscriptions: the second one was live.
    let mut rounds = 0;
    while rounds < 2 {
        let m = tokio::time::timeout(LIMIT, seen.recv())
            .await
            .expect("uptime in time")
            .expect("connected");
        assert_eq!(m.topic.as_str(), "$SYS/broker/uptime");
        rounds += 1;
    }
    // Messages on one connection keep their order: anything of $SYS for `#` would
    // come before this one.
    watcher
        .publish("after/sys", QoS::AtLeastOnce, false, &b"x"[..])
        .await
        .expect("acknowledged");
    let first = tokio::time::timeout(LIMIT, everything.recv())
        .await
        .expect("a message in time")
        .expect("connected");
    assert_eq!(first.topic.as_str(), "after/sys");
    server.stop().await;
}

fn retained_topics(dir: &Path) -> Vec<String> {
    let state = Store::open(dir)
        .expect("the store opens")
        .load()
        .expect("loads");
    state
        .retained
        .iter()
        .map(|m| String::from_utf8_lossy(&m.topic).into_owned())
        .collect()
}

#[tokio::test]
async fn a_data_dir_never_holds_sys_messages_and_a_restart_brings_none_back() {
    let dir = TempDir::new("sys-topics");
    // A stale figure, as a store written by an older build would hold it.
    let stale = StoredMessage {
        topic: Bytes::from_static(b"$SYS/broker/uptime"),
        payload: Bytes::from_static(b"999999 seconds"),
        qos: 0,
        retain: true,
    };
    Store::open(&dir.0)
        .expect("a new store")
        .commit(&[Write::Retained { message: stale }])
        .expect("committed");
    let server = start(Profile::mqtt311(), Some(INTERVAL), Some(&dir.0)).await;
    let (c, mut seen) = client(&server, "c").await;
    c.publish("keep/me", QoS::AtLeastOnce, true, &b"kept"[..])
        .await
        .expect("acknowledged: stored");
    subscribe(&c, "$SYS/broker/uptime").await;
    // Fresh figures, replacing the stale one, over a few rounds.
    for _ in 0..3 {
        let m = tokio::time::timeout(LIMIT, seen.recv())
            .await
            .expect("uptime in time")
            .expect("connected");
        assert_ne!(&m.payload[..], b"999999 seconds");
    }
    server.stop().await;
    assert_eq!(retained_topics(&dir.0), ["keep/me"]);
    // Restarted without $SYS topics: the retained message is back, no figure is.
    let server = start(Profile::mqtt311(), None, Some(&dir.0)).await;
    let (c, mut seen) = client(&server, "c").await;
    subscribe(&c, "$SYS/#").await;
    subscribe(&c, "keep/#").await;
    let m = tokio::time::timeout(LIMIT, seen.recv())
        .await
        .expect("the retained message in time")
        .expect("connected");
    assert_eq!(m.topic.as_str(), "keep/me", "nothing under $SYS came first");
    server.stop().await;
}
