//! Lost connections: the client reconnects with the core's backoff, resumes its session
//! and resends what was not acknowledged; operation time-outs; a client without
//! reconnect reports what it gave up. A proxy between client and server cuts the
//! connections or swallows what the server sends, as a failing network would. Also
//! manual acknowledgements.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mqtt_sansio::reconnect::Backoff;
use mqtt_sansio::{Profile, QoS};
use mqtt_sansio_tokio::{Client, Error, Listener, Options, Timeout};
use support::{LIMIT, any_port, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to `upstream` that can cut every connection or swallow the server's bytes.
struct Proxy {
    port: u16,
    cut: watch::Sender<u64>,
    swallow: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, cuts) = watch::channel(0u64);
        let swallow = Arc::new(AtomicBool::new(false));
        let swallowing = swallow.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let mut cuts = cuts.clone();
                let generation = *cuts.borrow_and_update();
                let swallowing = swallowing.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async {
                        let mut buf = [0u8; 4096];
                        while let Ok(n @ 1..) = cr.read(&mut buf).await {
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down = async {
                        let mut buf = [0u8; 4096];
                        while let Ok(n @ 1..) = sr.read(&mut buf).await {
                            if swallowing.load(Ordering::SeqCst) {
                                continue;
                            }
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let cut = async {
                        while cuts.changed().await.is_ok() {
                            if *cuts.borrow() != generation {
                                return;
                            }
                        }
                        std::future::pending::<()>().await
                    };
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                        () = cut => {}
                    }
                });
            }
        });
        Proxy { port, cut, swallow }
    }

    /// Closes every open connection (new ones are still accepted).
    fn cut(&self) {
        self.cut.send_modify(|g| *g += 1);
    }

    fn swallow(&self, on: bool) {
        self.swallow.store(on, Ordering::SeqCst);
    }
}

fn options(port: u16, client_id: &str) -> Options {
    let mut o = Options::new(format!("mqtt://127.0.0.1:{port}"));
    o.client_id = client_id.to_string();
    o
}

fn fast_backoff() -> Backoff {
    let mut b = Backoff::for_profile(&Profile::mqtt311(), 1);
    b.min = Duration::from_millis(50);
    b.max = Duration::from_millis(200);
    b
}

#[tokio::test]
async fn an_unacknowledged_publish_is_resent_after_the_reconnect_and_completes() {
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let proxy = Proxy::start(server.addrs[0]).await;
    let (watcher, mut seen) = Client::connect(options(server.addrs[0].port(), "watcher"))
        .await
        .unwrap();
    watcher
        .subscribe(&[("r/#", QoS::AtLeastOnce)])
        .await
        .unwrap();

    let mut o = options(proxy.port, "resumer");
    o.clean_session = false;
    o.config.reconnect = Some(fast_backoff());
    let (client, _) = Client::connect(o).await.unwrap();
    // The server's PUBACK never reaches the client: the publish stays unacknowledged.
    proxy.swallow(true);
    let publish = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .publish("r/1", QoS::AtLeastOnce, false, "again")
                .await
        }
    });
    let first = tokio::time::timeout(LIMIT, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first.payload[..], b"again");
    assert!(!publish.is_finished());
    proxy.swallow(false);
    proxy.cut();
    // The client reconnects by itself, resumes and resends; the PUBACK completes it.
    tokio::time::timeout(LIMIT, publish)
        .await
        .expect("completes after the reconnect")
        .unwrap()
        .unwrap();
    assert!(client.session_present());
    // The resend reached the server: at least once means it may be delivered again.
    let again = tokio::time::timeout(LIMIT, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&again.payload[..], b"again");
    client.disconnect().await.unwrap();
    watcher.disconnect().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_reconnected_client_keeps_working_after_repeated_cuts() {
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let proxy = Proxy::start(server.addrs[0]).await;
    let mut o = options(proxy.port, "survivor");
    o.clean_session = false;
    o.config.reconnect = Some(fast_backoff());
    let (client, _) = Client::connect(o).await.unwrap();
    for round in 0..3 {
        proxy.cut();
        tokio::time::timeout(
            LIMIT,
            client.publish("r/s", QoS::AtLeastOnce, false, format!("{round}")),
        )
        .await
        .expect("in time")
        .unwrap();
    }
    assert!(server.counters.accepted() >= 2);
    client.disconnect().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn disconnect_during_an_outage_ends_the_client_without_waiting_for_the_server() {
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let proxy = Proxy::start(server.addrs[0]).await;
    let mut o = options(proxy.port, "outage");
    o.clean_session = false;
    o.config.reconnect = Some(fast_backoff());
    let (client, _) = Client::connect(o).await.unwrap();
    // The server goes away: every reconnect fails.
    server.stop().await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A publish issued meanwhile waits for a connection.
    let publish = tokio::spawn({
        let client = client.clone();
        async move { client.publish("o", QoS::AtLeastOnce, false, "x").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!publish.is_finished());
    tokio::time::timeout(LIMIT, client.disconnect())
        .await
        .expect("disconnect does not wait for the server")
        .unwrap();
    // Given up with the client (had it reached the core, with the connection).
    let result = tokio::time::timeout(LIMIT, publish).await.unwrap().unwrap();
    assert!(
        matches!(result, Err(Error::Closed | Error::Lost)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_subscribe_without_suback_fails_with_an_operation_timeout() {
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let proxy = Proxy::start(server.addrs[0]).await;
    let mut o = options(proxy.port, "impatient");
    o.config.request_timeout = Some(Duration::from_millis(200));
    let (client, _) = Client::connect(o).await.unwrap();
    proxy.swallow(true);
    let e = tokio::time::timeout(LIMIT, client.subscribe(&[("x", QoS::AtLeastOnce)]))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(Timeout::Operation)), "{e:?}");
    let e = tokio::time::timeout(LIMIT, client.unsubscribe(&["x"]))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(Timeout::Operation)), "{e:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_publish_without_puback_fails_with_an_operation_timeout_only_when_configured() {
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let proxy = Proxy::start(server.addrs[0]).await;
    let mut o = options(proxy.port, "hasty");
    o.config.request_timeout = Some(Duration::from_millis(100));
    o.config.publish_timeout = Some(Duration::from_millis(200));
    let (client, _) = Client::connect(o).await.unwrap();
    proxy.swallow(true);
    let e = tokio::time::timeout(LIMIT, client.publish("p", QoS::AtLeastOnce, false, "x"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(Timeout::Operation)), "{e:?}");
    // Without a publish time-out the same publish waits.
    let mut o = options(proxy.port, "patient");
    o.config.request_timeout = Some(Duration::from_millis(100));
    proxy.swallow(false);
    let (patient, _) = Client::connect(o).await.unwrap();
    proxy.swallow(true);
    let waiting = tokio::time::timeout(
        Duration::from_millis(500),
        patient.publish("p", QoS::AtLeastOnce, false, "y"),
    )
    .await;
    assert!(waiting.is_err(), "{waiting:?}");
    server.stop().await;
}

#[tokio::test]
async fn without_reconnect_a_lost_connection_fails_the_pending_publish_and_ends_the_stream() {
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let proxy = Proxy::start(server.addrs[0]).await;
    let (client, mut messages) = Client::connect(options(proxy.port, "fragile"))
        .await
        .unwrap();
    proxy.swallow(true);
    let publish = tokio::spawn({
        let client = client.clone();
        async move { client.publish("f", QoS::AtLeastOnce, false, "x").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.cut();
    let result = tokio::time::timeout(LIMIT, publish).await.unwrap().unwrap();
    assert!(matches!(result, Err(Error::Lost)), "{result:?}");
    assert!(
        tokio::time::timeout(LIMIT, messages.recv())
            .await
            .unwrap()
            .is_none()
    );
    let after = client.publish("f", QoS::AtMostOnce, false, "y").await;
    assert!(matches!(after, Err(Error::Closed)), "{after:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_refused_connect_is_a_typed_error_and_a_dead_port_a_network_error() {
    // Not reachable: nothing listens there once the listener is dropped.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = Client::connect(options(port, "x")).await.unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e:?}");
    // An empty client id with clean session 0 is refused by the core before any I/O.
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let mut o = options(server.addrs[0].port(), "");
    o.clean_session = false;
    let e = Client::connect(o).await.unwrap_err();
    assert!(matches!(e, Error::Rejected(_)), "{e:?}");
    server.stop().await;
}

#[tokio::test]
async fn manual_acks_are_sent_by_ack_and_refused_without_manual_mode() {
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let port = server.addrs[0].port();
    let mut o = options(port, "manual");
    o.config.manual_acks = true;
    let (manual, mut inbox) = Client::connect(o).await.unwrap();
    manual
        .subscribe(&[("m/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let (auto, mut auto_inbox) = Client::connect(options(port, "auto")).await.unwrap();
    auto.subscribe(&[("m/#", QoS::AtLeastOnce)]).await.unwrap();
    auto.publish("m/1", QoS::AtLeastOnce, false, "one")
        .await
        .unwrap();
    let m = tokio::time::timeout(LIMIT, inbox.recv())
        .await
        .unwrap()
        .unwrap();
    manual.ack(&m).await.unwrap();
    // A second ack of the same message owes nothing.
    let again = manual.ack(&m).await;
    assert!(matches!(again, Err(Error::Rejected(_))), "{again:?}");
    let a = tokio::time::timeout(LIMIT, auto_inbox.recv())
        .await
        .unwrap()
        .unwrap();
    let refused = auto.ack(&a).await;
    assert!(matches!(refused, Err(Error::Rejected(_))), "{refused:?}");
    manual.disconnect().await.unwrap();
    auto.disconnect().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn under_the_aws_profile_a_reconnect_waits_a_second_after_the_last_connect() {
    let server = serve(vec![Listener::Tcp(any_port())], None).await;
    let mut o = options(server.addrs[0].port(), "quota");
    o.profile = Profile::aws_iot_core();
    o.config = mqtt_sansio::ClientConfig::for_profile(&o.profile);
    let (client, _) = Client::connect(o).await.unwrap();
    let start = std::time::Instant::now();
    client.reconnect().await.unwrap();
    client.reconnect().await.unwrap();
    // Three CONNECTs for one client id: at least two seconds between the first and the last.
    assert!(
        start.elapsed() >= Duration::from_millis(1_900),
        "{:?}",
        start.elapsed()
    );
    client.disconnect().await.unwrap();
    server.stop().await;
}
