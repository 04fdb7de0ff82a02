//! A client's session in a directory: the changes the core client reports, committed
//! per batch, read back as its export; damaged stores refused at connect naming the
//! file; and a client that dies with messages on the wire resends them when it starts
//! again on the same directory, against the crate's server and a scripted one.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use mqtt_sansio::client::Action;
use mqtt_sansio::{
    ConnAck, Connect, Instant, MqttString, Packet, Publish, QoS, QosPid, Status, TopicFilter,
    TopicName,
};
use mqtt_sansio_tokio::store::{ClientStore, StoreError};
use mqtt_sansio_tokio::{Client, Error, Listener, Options};
use proptest::prelude::*;
use support::{LIMIT, TempDir, any_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn id(s: &str) -> MqttString<Bytes> {
    MqttString::new(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

fn topic(s: &str) -> TopicName<Bytes> {
    TopicName::new(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

fn bytes(p: Packet<Bytes>) -> Bytes {
    p.to_bytes().unwrap()
}

/// The client's CONNECT: clean session 0.
fn connect() -> Connect<Bytes> {
    Connect {
        client_id: id("device"),
        clean_session: false,
        keep_alive: 0,
        will: None,
        login: None,
    }
}

/// One input to a core client whose changes go to a store.
#[derive(Debug, Clone)]
enum Step {
    /// The application publishes at this QoS.
    Publish(u8),
    /// The client connects (clean session 0) and the server accepts, with this session
    /// present flag.
    Connect(bool),
    /// The connection drops.
    Drop,
    /// The server acknowledges every packet the client sent since the last `Ack`.
    Ack,
    /// The server sends a QoS 2 message with this id.
    Inbound(u16),
    /// The server releases this inbound id.
    Release(u16),
    /// The application subscribes (takes a packet id that is not session state).
    Subscribe,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..3).prop_map(Step::Publish),
        any::<bool>().prop_map(Step::Connect),
        Just(Step::Drop),
        Just(Step::Ack),
        (1u16..4).prop_map(Step::Inbound),
        (1u16..4).prop_map(Step::Release),
        Just(Step::Subscribe),
    ]
}

/// A core client, its store, and what it sent that the server has not answered.
struct Rig {
    core: mqtt_sansio::Client,
    store: ClientStore,
    sent: Vec<Packet<Bytes>>,
    now: u64,
    n: u32,
}

impl Rig {
    fn open(dir: &TempDir) -> Rig {
        let (store, export) = ClientStore::open(&dir.0, id("device")).unwrap();
        let mut config = mqtt_sansio::ClientConfig::for_profile(&mqtt_sansio::Profile::mqtt311());
        config.report_changes = true;
        config.max_inflight = 4;
        let core =
            mqtt_sansio::Client::import(mqtt_sansio::Profile::mqtt311(), config, export).unwrap();
        Rig {
            core,
            store,
            sent: Vec::new(),
            now: 0,
            n: 0,
        }
    }

    fn now(&mut self) -> Instant {
        self.now += 10;
        Instant::from_millis(self.now)
    }

    /// The core's actions as the async client carries them out: one batch, its
    /// changes committed first.
    fn drain(&mut self) {
        let batch: Vec<Action> = std::iter::from_fn(|| self.core.poll_action()).collect();
        for a in &batch {
            if let Action::Change(c) = a {
                self.store.note(c);
            }
        }
        self.store.commit().unwrap();
        for a in batch {
            match a {
                Action::Send(p) => self.sent.push(p),
                Action::Close(_) => self.sent.clear(),
                _ => {}
            }
        }
    }

    fn server_sends(&mut self, p: Packet<Bytes>) {
        let now = self.now();
        let _ = self.core.handle_bytes(now, &bytes(p));
        self.drain();
    }

    fn run(&mut self, step: &Step) {
        let now = self.now();
        match *step {
            Step::Publish(q) => {
                self.n += 1;
                let qos = if q == 1 {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                let payload = format!("m{}", self.n);
                let _ = self.core.publish(now, topic("t/a"), qos, false, payload);
                self.drain();
            }
            Step::Connect(present) => {
                if self.core.connect(now, connect()).is_ok() {
                    self.drain();
                    self.server_sends(Packet::ConnAck(ConnAck::Accepted {
                        session_present: present,
                    }));
                }
            }
            Step::Drop => {
                self.core.connection_lost(now);
                self.drain();
                self.sent.clear();
            }
            Step::Ack => {
                for p in std::mem::take(&mut self.sent) {
                    let reply = match p {
                        Packet::Publish(p) => match p.qos {
                            QosPid::AtLeastOnce(id) => Packet::PubAck(id),
                            QosPid::ExactlyOnce(id) => Packet::PubRec(id),
                            QosPid::AtMostOnce => continue,
                        },
                        Packet::PubRel(id) => Packet::PubComp(id),
                        _ => continue,
                    };
                    self.server_sends(reply);
                }
            }
            Step::Inbound(pid) => {
                let pid = mqtt_sansio::PacketId::new(pid).unwrap();
                let p = Publish::new(topic("in/x"), QosPid::ExactlyOnce(pid), "in");
                self.server_sends(Packet::Publish(p));
            }
            Step::Release(pid) => {
                self.server_sends(Packet::PubRel(mqtt_sansio::PacketId::new(pid).unwrap()));
            }
            Step::Subscribe => {
                let f = TopicFilter::new(Bytes::from_static(b"s/#")).unwrap();
                let _ = self.core.subscribe(now, &[(f, QoS::AtLeastOnce)]);
                self.drain();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// After any inputs, the store read back is the client's session: its outgoing
    /// table (ids, stages, sent or held) and its inbound QoS 2 ids.
    #[test]
    fn the_store_read_back_is_the_clients_session(steps in proptest::collection::vec(step(), 1..30)) {
        let dir = TempDir::new("store-client");
        let mut rig = Rig::open(&dir);
        for s in &steps {
            rig.run(s);
        }
        let expected = rig.core.export().session;
        drop(rig);
        let (_, export) = ClientStore::open(&dir.0, id("device")).unwrap();
        prop_assert_eq!(&export.session.outgoing, &expected.outgoing);
        prop_assert_eq!(&export.session.inbound_qos2, &expected.inbound_qos2);
        // A client resumed from it starts where the first one stopped.
        let resumed = Rig::open(&dir);
        prop_assert_eq!(resumed.core.export().session.outgoing, expected.outgoing);
    }
}

#[test]
fn held_sent_and_released_messages_and_inbound_ids_read_back() {
    let dir = TempDir::new("store-client");
    let mut rig = Rig::open(&dir);
    for s in [
        Step::Connect(false),
        Step::Publish(2),
        Step::Publish(1),
        Step::Publish(2),
        Step::Inbound(3),
    ] {
        rig.run(&s);
    }
    // PUBREC for the first QoS 2 message only: it is released (PUBREL out).
    let first = rig.sent.iter().find_map(|p| match p {
        Packet::Publish(p) => p.qos.packet_id(),
        _ => None,
    });
    rig.server_sends(Packet::PubRec(first.unwrap()));
    rig.run(&Step::Drop);
    // Connecting again, CONNACK not in yet: a new message is held.
    let now = rig.now();
    rig.core.connect(now, connect()).unwrap();
    rig.drain();
    rig.run(&Step::Publish(1));
    let expected = rig.core.export().session;
    drop(rig);
    let (_, export) = ClientStore::open(&dir.0, id("device")).unwrap();
    let stages: Vec<(bool, mqtt_sansio::session::Stage)> = export
        .session
        .outgoing
        .iter()
        .map(|o| (o.sent, o.stage))
        .collect();
    use mqtt_sansio::session::Stage::{Published, Released};
    assert_eq!(
        stages,
        [
            (true, Published),
            (true, Published),
            (true, Released),
            (false, Published)
        ],
        "sent, sent, released (moved last), held until CONNACK"
    );
    assert_eq!(export.session.outgoing, expected.outgoing);
    assert_eq!(export.session.inbound_qos2.len(), 1);
    assert_eq!(export.session.inbound_qos2, expected.inbound_qos2);
}

/// Options for the client `device` at `addr`, its session in `dir`.
fn durable(addr: SocketAddr, dir: &TempDir) -> Options {
    let mut o = Options::new(format!("mqtt://{addr}"));
    o.client_id = "device".into();
    o.clean_session = false;
    o.keep_alive = 0;
    o.data_dir = Some(dir.0.clone());
    o
}

/// A store holding a session with two messages, closed.
fn stored(dir: &TempDir) {
    let mut rig = Rig::open(dir);
    rig.run(&Step::Publish(1));
    rig.run(&Step::Publish(2));
}

/// `Client::connect` on a damaged store: refused before any connection is tried (no
/// server listens at the address), with the file named.
async fn refused(dir: &TempDir, file: &std::path::Path) -> String {
    let o = durable(SocketAddr::from(([127, 0, 0, 1], 1)), dir);
    match Client::connect(o).await {
        Err(Error::Store(e)) => {
            let text = Error::Store(e).to_string();
            assert!(text.contains(&file.display().to_string()), "{text}");
            text
        }
        Err(other) => panic!("not a store error: {other}"),
        Ok(_) => panic!("a damaged store was accepted"),
    }
}

#[tokio::test]
async fn a_damaged_database_is_refused_at_connect_naming_the_file() {
    for damage in ["header", "truncated", "overwritten"] {
        let dir = TempDir::new("store-client");
        stored(&dir);
        let db = dir.0.join("store.sqlite");
        let mut raw = std::fs::read(&db).unwrap();
        match damage {
            "header" => raw[..16].copy_from_slice(&[0xa5; 16]),
            "truncated" => raw.truncate(raw.len() / 2 + 100),
            _ => {
                let mut x = 7u32;
                for b in &mut raw[8192..] {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    *b = (x >> 16) as u8;
                }
            }
        }
        std::fs::write(&db, &raw).unwrap();
        refused(&dir, &db).await;
    }
}

#[tokio::test]
async fn a_removed_database_is_refused_rather_than_started_empty() {
    let dir = TempDir::new("store-client");
    stored(&dir);
    let db = dir.0.join("store.sqlite");
    std::fs::remove_file(&db).unwrap();
    refused(&dir, &db).await;
}

#[tokio::test]
async fn a_damaged_count_of_commits_is_refused_naming_it() {
    let dir = TempDir::new("store-client");
    stored(&dir);
    let counter = dir.0.join("commits");
    std::fs::write(&counter, [0u8; 16]).unwrap();
    refused(&dir, &counter).await;
}

#[tokio::test]
async fn the_store_of_another_client_is_refused() {
    let dir = TempDir::new("store-client");
    stored(&dir);
    let mut o = durable(SocketAddr::from(([127, 0, 0, 1], 1)), &dir);
    o.client_id = "other".into();
    match Client::connect(o).await {
        Err(Error::Store(StoreError::Damaged { detail, .. })) => {
            assert!(detail.contains("\"device\""), "{detail}");
        }
        other => panic!("not refused as another client's: {:?}", other.err()),
    }
}

#[tokio::test]
async fn a_data_dir_without_a_client_id_is_a_configuration_error() {
    let dir = TempDir::new("store-client");
    let mut o = durable(SocketAddr::from(([127, 0, 0, 1], 1)), &dir);
    o.client_id = String::new();
    assert!(matches!(Client::connect(o).await, Err(Error::Config(_))));
    assert!(!dir.0.exists(), "nothing was made");
}

/// A TCP proxy that records what clients send and, once frozen, stops passing it on:
/// what a client sent after that was on the wire when it died but never arrived.
struct Proxy {
    addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    /// Per connection, in order: the bytes the client sent.
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(any_port()).await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            frozen: Arc::default(),
            sent: Arc::default(),
        };
        let (frozen, sent) = (proxy.frozen.clone(), proxy.sent.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let up = TcpStream::connect(upstream).await.unwrap();
                let n = {
                    let mut s = sent.lock().unwrap();
                    s.push(Vec::new());
                    s.len() - 1
                };
                let (frozen, sent) = (frozen.clone(), sent.clone());
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut ur, mut uw) = up.into_split();
                    let back = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut ur, &mut cw).await;
                    });
                    let mut buf = vec![0; 16 * 1024];
                    while let Ok(k) = cr.read(&mut buf).await {
                        if k == 0 {
                            break;
                        }
                        sent.lock().unwrap()[n].extend_from_slice(&buf[..k]);
                        if !frozen.load(Ordering::SeqCst) && uw.write_all(&buf[..k]).await.is_err()
                        {
                            break;
                        }
                    }
                    // The client is gone: so is its connection to the server.
                    back.abort();
                });
            }
        });
        proxy
    }

    /// The PUBLISH packets connection `n` sent: (packet id, DUP, payload).
    fn publishes(&self, n: usize) -> Vec<(u16, bool, Vec<u8>)> {
        let sent = self.sent.lock().unwrap();
        let Some(raw) = sent.get(n) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut at = 0;
        while let Ok(Status::Complete(p, used)) = mqtt_sansio::decode(&raw[at..]) {
            at += used;
            if let Packet::Publish(p) = p {
                let pid = p.qos.packet_id().map_or(0, |i| i.get());
                out.push((pid, p.dup, p.payload.to_vec()));
            }
        }
        out
    }
}

/// Waits (bounded) until `ready` holds.
async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    tokio::time::timeout(LIMIT, async {
        while !ready() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Runs `life` on a runtime of its own on another thread, then drops that runtime as
/// a killed process ends: every task stops where it is, nothing more is written, no
/// DISCONNECT.
async fn life_then_kill<F>(life: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(life());
        drop(rt);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn messages_on_the_wire_when_the_client_died_are_resent_after_a_restart() {
    let server = support::serve(vec![Listener::Tcp(any_port())], None).await;
    let addr = server.addrs[0];
    let (watcher, mut seen) = Client::connect(Options::new(format!("mqtt://{addr}")))
        .await
        .unwrap();
    watcher
        .subscribe(&[("dev/#", QoS::ExactlyOnce)])
        .await
        .unwrap();
    let proxy = Arc::new(Proxy::start(addr).await);
    let dir = TempDir::new("store-client");

    // First life: both PUBLISHes leave the client but never reach the server.
    let (o, p) = (durable(proxy.addr, &dir), proxy.clone());
    life_then_kill(move || async move {
        let (client, _messages) = Client::connect(o).await.unwrap();
        p.frozen.store(true, Ordering::SeqCst);
        for (t, qos, payload) in [
            ("dev/1", QoS::AtLeastOnce, "one"),
            ("dev/2", QoS::ExactlyOnce, "two"),
        ] {
            let c = client.clone();
            tokio::spawn(async move { c.publish(t, qos, false, payload).await });
        }
        until("both PUBLISHes on the wire", || p.publishes(0).len() == 2).await;
    })
    .await;
    let first = proxy.publishes(0);
    assert!(first.iter().all(|(_, dup, _)| !dup), "{first:?}");

    // Second life on the same directory: the session resumes and both are resent.
    proxy.frozen.store(false, Ordering::SeqCst);
    let (client, _messages) = Client::connect(durable(proxy.addr, &dir)).await.unwrap();
    assert!(client.session_present());
    client
        .publish("dev/end", QoS::ExactlyOnce, false, "end")
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.last().is_none_or(|p: &Bytes| &p[..] != b"end") {
        let m = tokio::time::timeout(LIMIT, seen.recv()).await.unwrap();
        got.push(m.expect("a message").payload);
    }
    assert_eq!(got, ["one", "two", "end"], "each once, in order");
    // The same ids, with DUP=1.
    let resent: Vec<_> = proxy.publishes(1).into_iter().take(2).collect();
    let expected: Vec<_> = first
        .iter()
        .map(|(i, _, p)| (*i, true, p.clone()))
        .collect();
    assert_eq!(resent, expected);
    client.disconnect().await.unwrap();
    // Acknowledged, so gone from the store.
    let (_, export) = ClientStore::open(&dir.0, id("device")).unwrap();
    assert!(export.session.outgoing.is_empty(), "{export:?}");
    watcher.disconnect().await.unwrap();
    server.stop().await;
}

/// Reads one packet the client sent.
async fn read_packet(s: &mut TcpStream, buf: &mut BytesMut) -> Packet<Bytes> {
    loop {
        if let Status::Complete(p, _) = mqtt_sansio::decode_bytes(buf).unwrap() {
            return p;
        }
        let k = tokio::time::timeout(LIMIT, s.read_buf(buf))
            .await
            .unwrap()
            .unwrap();
        assert!(k > 0, "the client closed the connection");
    }
}

/// Accepts a connection, reads its CONNECT and accepts it with `present`.
async fn accept(l: &TcpListener, present: bool) -> (TcpStream, BytesMut) {
    let (mut s, _) = tokio::time::timeout(LIMIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = BytesMut::new();
    assert!(matches!(
        read_packet(&mut s, &mut buf).await,
        Packet::Connect(_)
    ));
    let connack = Packet::ConnAck(ConnAck::Accepted {
        session_present: present,
    });
    s.write_all(&bytes(connack)).await.unwrap();
    (s, buf)
}

#[tokio::test]
async fn an_inbound_qos2_message_resent_after_a_restart_is_delivered_once() {
    let l = TcpListener::bind(any_port()).await.unwrap();
    let addr = l.local_addr().unwrap();
    let dir = TempDir::new("store-client");
    let pid = mqtt_sansio::PacketId::new(7).unwrap();
    let hello = Publish::new(topic("in/x"), QosPid::ExactlyOnce(pid), "hello");

    // First life: the message is delivered and PUBREC sent; the client dies before
    // PUBREL.
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let o = durable(addr, &dir);
    let life = tokio::spawn(life_then_kill(move || async move {
        let (_client, mut messages) = Client::connect(o).await.unwrap();
        let m = messages.recv().await.expect("a message");
        assert_eq!(&m.payload[..], b"hello");
        let _ = killed.await;
    }));
    let (mut s, mut buf) = accept(&l, false).await;
    s.write_all(&bytes(Packet::Publish(hello.clone())))
        .await
        .unwrap();
    assert_eq!(read_packet(&mut s, &mut buf).await, Packet::PubRec(pid));
    kill.send(()).unwrap();
    life.await.unwrap();

    // Second life: the server had no PUBREC, so it resends the PUBLISH.
    let second = tokio::spawn(Client::connect(durable(addr, &dir)));
    let (mut s, mut buf) = accept(&l, true).await;
    let mut again = hello;
    again.dup = true;
    s.write_all(&bytes(Packet::Publish(again))).await.unwrap();
    assert_eq!(read_packet(&mut s, &mut buf).await, Packet::PubRec(pid));
    s.write_all(&bytes(Packet::PubRel(pid))).await.unwrap();
    assert_eq!(read_packet(&mut s, &mut buf).await, Packet::PubComp(pid));
    let next_id = mqtt_sansio::PacketId::new(8).unwrap();
    let next = Publish::new(topic("in/x"), QosPid::AtLeastOnce(next_id), "next");
    s.write_all(&bytes(Packet::Publish(next))).await.unwrap();
    assert_eq!(read_packet(&mut s, &mut buf).await, Packet::PubAck(next_id));
    let (_client, mut messages) = second.await.unwrap().unwrap();
    let m = messages.recv().await.expect("a message");
    assert_eq!(
        &m.payload[..],
        b"next",
        "the resent QoS 2 message came again"
    );
}

/// The number of commits the store in `dir` made, from its `commits` file.
fn commits(dir: &std::path::Path) -> u64 {
    let raw = std::fs::read(dir.join("commits")).unwrap();
    u64::from_be_bytes(raw[..8].try_into().unwrap())
}

#[tokio::test]
async fn publishes_waiting_together_reach_the_socket_after_one_commit_that_stores_them_all() {
    const K: usize = 8;
    let dir = TempDir::new("store-client");
    let l = std::net::TcpListener::bind(any_port()).unwrap();
    l.set_nonblocking(true).unwrap();
    let mut o = durable(l.local_addr().unwrap(), &dir);
    o.config.max_inflight = K;
    let path = dir.0.clone();
    let seen = Arc::new(Mutex::new(None));
    let out = seen.clone();

    // One thread runs the client and this scripted server: while the server reads, the
    // client's driver is parked at an await, and the runtime ends there (as `kill -9`
    // would stop the process) once the server has read the K PUBLISHes.
    life_then_kill(move || async move {
        let l = TcpListener::from_std(l).unwrap();
        let connecting = tokio::spawn(Client::connect(o));
        let (mut s, mut buf) = accept(&l, false).await;
        let (client, _messages) = connecting.await.unwrap().unwrap();
        let before = commits(&path);
        // Spawned together: all K commands wait in the channel when the driver wakes for
        // the first one.
        for n in 0..K {
            let c = client.clone();
            tokio::spawn(async move {
                c.publish("dev/x", QoS::AtLeastOnce, false, format!("m{n}"))
                    .await
            });
        }
        let mut ids = Vec::new();
        while ids.len() < K {
            match read_packet(&mut s, &mut buf).await {
                Packet::Publish(p) => ids.push(p.qos.packet_id().expect("QoS 1")),
                other => panic!("not a PUBLISH: {other:?}"),
            }
        }
        *out.lock().unwrap() = Some((ids, before, commits(&path)));
    })
    .await;

    let (ids, before, after) = seen.lock().unwrap().take().expect("the server's view");
    assert_eq!(after, before + 1, "the K waiting publishes took one commit");
    // Every PUBLISH the server read was on disk, sent, before it left the client.
    let (_, export) = ClientStore::open(&dir.0, id("device")).unwrap();
    let stored: Vec<_> = export
        .session
        .outgoing
        .iter()
        .filter(|o| o.sent)
        .map(|o| o.id)
        .collect();
    assert_eq!(stored, ids);
}

#[tokio::test]
async fn a_reconnect_behind_waiting_publishes_starts_the_next_connection_with_connect() {
    const K: usize = 4;
    let l = TcpListener::bind(any_port()).await.unwrap();
    let dir = TempDir::new("store-client");
    let mut o = durable(l.local_addr().unwrap(), &dir);
    o.config.max_inflight = K;
    let connecting = tokio::spawn(Client::connect(o));
    let (_first, _) = accept(&l, false).await;
    let (client, _messages) = connecting.await.unwrap().unwrap();
    // Spawned together on this one thread: the driver takes the K publishes and the
    // reconnect behind them as one batch; the connection ends before its PUBLISHes are
    // written.
    let mut published = Vec::new();
    for n in 0..K {
        let c = client.clone();
        published.push(tokio::spawn(async move {
            c.publish("dev/x", QoS::AtLeastOnce, false, format!("m{n}"))
                .await
        }));
    }
    let c = client.clone();
    let reconnected = tokio::spawn(async move { c.reconnect().await });
    // The next connection starts with CONNECT (`accept` checks), then resends the K.
    let (mut s, mut buf) = accept(&l, true).await;
    for n in 0..K {
        let Packet::Publish(p) = read_packet(&mut s, &mut buf).await else {
            panic!("not a PUBLISH");
        };
        assert_eq!(&p.payload[..], format!("m{n}").as_bytes());
        let id = p.qos.packet_id().expect("QoS 1");
        s.write_all(&bytes(Packet::PubAck(id))).await.unwrap();
    }
    assert!(reconnected.await.unwrap().unwrap(), "session present");
    for p in published {
        p.await.unwrap().unwrap();
    }
    client.disconnect().await.unwrap();
    let (_, export) = ClientStore::open(&dir.0, id("device")).unwrap();
    assert!(export.session.outgoing.is_empty(), "{export:?}");
}
