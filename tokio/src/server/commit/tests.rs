//! A commit held shut: what waits for it stays off the socket, what does not goes out.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use mqtt_sansio::codec::{Status, decode};
use mqtt_sansio::packet::QosPid;
use mqtt_sansio::{BrokerConfig, Packet, Profile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Listener, Server};

/// A gate in front of every commit of the test build: shut, a commit waits at it.
pub(super) mod gate {
    use std::sync::{Condvar, Mutex, MutexGuard};

    #[derive(Default)]
    pub(super) struct State {
        pub(super) shut: bool,
        /// Commits that reached the gate, and commits that finished.
        pub(super) entered: u64,
        pub(super) left: u64,
    }

    static STATE: Mutex<State> = Mutex::new(State {
        shut: false,
        entered: 0,
        left: 0,
    });
    static CHANGED: Condvar = Condvar::new();

    pub(super) fn state() -> MutexGuard<'static, State> {
        STATE.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by a commit before it writes: waits while the gate is shut.
    pub(in crate::server) fn enter() {
        let mut s = state();
        s.entered += 1;
        CHANGED.notify_all();
        while s.shut {
            s = CHANGED.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Called by a commit once it is durable.
    pub(in crate::server) fn leave() {
        state().left += 1;
        CHANGED.notify_all();
    }

    pub(super) fn set_shut(shut: bool) {
        state().shut = shut;
        CHANGED.notify_all();
    }

    /// Waits until `n` commits reached the gate in all.
    pub(super) fn wait_entered(n: u64) {
        let mut s = state();
        while s.entered < n {
            s = CHANGED.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Opens the gate when dropped (also when the test fails).
    pub(super) struct Shut;

    impl Shut {
        pub(super) fn new() -> Shut {
            set_shut(true);
            Shut
        }
    }

    impl Drop for Shut {
        fn drop(&mut self) {
            set_shut(false);
        }
    }
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut out = vec![first, body.len() as u8];
    out.extend_from_slice(body);
    out
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn connect(client: &str, clean: bool) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, b"MQTT");
    b.extend_from_slice(&[4, if clean { 2 } else { 0 }, 0, 60]);
    string(&mut b, client.as_bytes());
    frame(0x10, &b)
}

/// A raw MQTT connection: bytes out, packets (described in a word or two) in.
struct Peer {
    tcp: TcpStream,
    buf: BytesMut,
}

impl Peer {
    async fn connect(addr: std::net::SocketAddr, client: &str, clean: bool) -> Peer {
        let mut peer = Peer {
            tcp: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
        };
        peer.send(&connect(client, clean)).await;
        assert_eq!(peer.next().await, "CONNACK");
        peer
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.expect("write");
    }

    /// The next packet, or `None` when none comes within `wait`.
    async fn within(&mut self, wait: Duration) -> Option<String> {
        loop {
            if let Ok(Status::Complete(packet, n)) = decode(&self.buf) {
                let word = match packet {
                    Packet::ConnAck(_) => "CONNACK".to_string(),
                    Packet::SubAck(_) => "SUBACK".to_string(),
                    Packet::PubAck(id) => format!("PUBACK {id}"),
                    Packet::PingResp => "PINGRESP".to_string(),
                    Packet::Publish(p) => match p.qos {
                        QosPid::AtLeastOnce(id) => format!("PUBLISH {id}"),
                        other => format!("PUBLISH {other:?}"),
                    },
                    other => format!("{other:?}"),
                };
                self.buf.advance(n);
                return Some(word);
            }
            let read = tokio::time::timeout(wait, self.tcp.read_buf(&mut self.buf)).await;
            match read {
                Ok(Ok(0)) => panic!("the broker closed the connection"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("read: {e}"),
                Err(_) => return None,
            }
        }
    }

    async fn next(&mut self) -> String {
        self.within(Duration::from_secs(20))
            .await
            .expect("a packet within 20 s")
    }
}

/// A store directory of this test, removed when dropped.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_puback_reaches_the_socket_only_after_its_commit_while_deliveries_go_out_at_once() {
    let dir =
        Dir(std::env::temp_dir().join(format!("mqtt-sansio-commit-test-{}", std::process::id())));
    let mut server = Server::new(Profile::mqtt311(), BrokerConfig::default());
    server.data_dir(&dir.0).expect("data dir");
    let addr = server
        .listen(Listener::Tcp("127.0.0.1:0".parse().expect("addr")))
        .await
        .expect("listen");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let mut sub = Peer::connect(addr, "subscriber", false).await;
    let mut b = 1u16.to_be_bytes().to_vec();
    string(&mut b, b"t");
    b.push(1);
    sub.send(&frame(0x82, &b)).await;
    assert_eq!(sub.next().await, "SUBACK");
    let mut publisher = Peer::connect(addr, "publisher", true).await;

    let shut = gate::Shut::new();
    let before = gate::state().entered;
    let mut p = Vec::new();
    string(&mut p, b"t");
    p.extend_from_slice(&7u16.to_be_bytes());
    p.extend_from_slice(b"stored?");
    publisher.send(&frame(0x32, &p)).await;
    // The delivery needs nothing stored: it goes out while its commit is held.
    assert_eq!(sub.next().await, "PUBLISH 1");
    tokio::task::spawn_blocking(move || gate::wait_entered(before + 1))
        .await
        .expect("the commit reached the gate");
    let left = gate::state().left;
    // The PUBACK was decided with the delivery; it must wait for the commit, and the
    // PINGRESP asked after it must stay behind it.
    publisher.send(&[0xc0, 0]).await;
    assert_eq!(
        publisher.within(Duration::from_millis(500)).await,
        None,
        "an acknowledgement reached the socket before its commit"
    );
    drop(shut);
    assert_eq!(publisher.next().await, "PUBACK 7");
    assert!(
        gate::state().left > left,
        "the PUBACK came before its commit finished"
    );
    assert_eq!(publisher.next().await, "PINGRESP");

    let _ = stop.send(());
    running.await.expect("join").expect("run");
}
