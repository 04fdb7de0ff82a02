//! # mqtt-sansio-tokio
//!
//! The [`mqtt_sansio`] core driven over tokio: an async MQTT 3.1.1 [`Client`] and a
//! broker [`Server`], over TCP, TLS (rustls, `ring` provider; TLS 1.2 and 1.3, mutual
//! TLS, SNI, ALPN `mqtt` and `x-amzn-mqtt-ca`) and WebSocket (MQTT 3.1.1 §6: binary
//! frames, sub-protocol `mqtt`). The core decides everything the protocol decides; this
//! crate only moves bytes, keeps time and hands results to the application.
//!
//! ```
//! use mqtt_sansio::{BrokerConfig, Profile, QoS, SubAckCode};
//! use mqtt_sansio_tokio::{Client, Listener, Options, Server};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), mqtt_sansio_tokio::Error> {
//! // A broker on a free port.
//! let mut server = Server::new(Profile::mqtt311(), BrokerConfig::default());
//! let addr = server.listen(Listener::Tcp("127.0.0.1:0".parse().unwrap())).await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let broker = tokio::spawn(server.run(async { let _ = stopped.await; }));
//!
//! // A client: subscribe, publish at QoS 1 (returns once PUBACK came), receive.
//! let (client, mut messages) = Client::connect(Options::new(format!("mqtt://{addr}"))).await?;
//! let codes = client.subscribe(&[("greetings/#", QoS::AtLeastOnce)]).await?;
//! assert_eq!(codes, [SubAckCode::Granted(QoS::AtLeastOnce)]);
//! client.publish("greetings/world", QoS::AtLeastOnce, false, "hello").await?;
//! let message = messages.recv().await.expect("a message");
//! assert_eq!(message.topic.as_str(), "greetings/world");
//! assert_eq!(&message.payload[..], b"hello");
//! client.disconnect().await?;
//!
//! // A graceful shutdown.
//! let _ = stop.send(());
//! broker.await.expect("the server task")?;
//! # Ok(())
//! # }
//! ```
//!
//! ## The run loops
//!
//! Both sides follow the core's contract: after every input (bytes read, a timer, a
//! command) they drain `poll_action()` until `None`, then sleep until `poll_timeout()`.
//!
//! The **client** is a handle ([`Client`], cheap to clone) and a stream of messages
//! ([`Messages`]); a driver task owns the core's client and the connection. A command
//! travels to the driver, which calls the core and answers when the core reports the
//! acknowledgement (PUBACK, PUBCOMP, SUBACK, UNSUBACK). With
//! [`ClientConfig::reconnect`](mqtt_sansio::ClientConfig::reconnect) the core asks
//! for a new connection after its [`Backoff`](mqtt_sansio::reconnect::Backoff) and
//! the driver opens it; with clean session 0 the session resumes and the core resends
//! what was not acknowledged, so the pending `publish` calls complete on the new
//! connection. Operation time-outs are the core's too.
//!
//! The **server** has one task that owns the [`Broker`](mqtt_sansio::Broker) (the core
//! task) and one task per listener that accepts connections (and spawns the TLS and
//! WebSocket handshakes). A plain TCP connection has no task: the core task reads and
//! writes its socket itself. Each connection's socket is registered with a waker that
//! puts the connection on the core task's ready list and wakes it; the core task reads
//! each listed socket into one buffer it reuses for all of them (an idle connection
//! holds no read buffer), hands the bytes to the broker, and once it has carried out
//! the batch of actions (with a store: after their changes are committed) writes every
//! connection's queued packets to its socket, one write per connection per batch. What
//! a socket does not take at once waits in that connection's queue until the socket is
//! writable. A TLS or WebSocket connection has a reader task and a writer task instead,
//! since those streams cannot be read or written a piece at a time without waiting.
//!
//! Why this shape: every PUBLISH touches the sessions of all its subscribers, so the
//! broker is one piece of state; with one owner no lock is taken, the broker's output is
//! applied in order, and the socket work (TLS, WebSocket framing, system calls) runs in
//! the per-connection tasks (now: TLS and WebSocket only). The alternative, one task per connection sharing the
//! broker behind a mutex (`tokio/examples/shape_locked.rs`), was measured against it
//! with the load generator (`benches/server-shapes.sh`, plain TCP, 2 rounds, on a 2-core
//! machine that other builds kept at load average 18–60, so single numbers are noisy):
//!
//! | workload | one core task, 1 thread | locked, 1 thread | one core task, 2 threads | locked, 2 threads |
//! |---|---|---|---|---|
//! | QoS 1, 10 × 2000 → 10 | 482k, 377k msgs/s | 592k, 362k | 307k, 320k | 296k, 401k |
//! | QoS 1, 100 × 100 → 1 | 135k, 43k | 176k, 49k | 76k, 134k | 208k, 24k |
//! | QoS 0, 10 × 2000 → 10 | 487k, 307k | 305k, 175k | 653k, 777k | 456k, 219k |
//!
//! At QoS 1 the two shapes are within the noise of each other; at QoS 0, where one
//! PUBLISH fans out to ten sockets, the core task is ahead in every pair (1.4–3.5×; we
//! have not isolated why: the locked shape encodes and queues the fan-out while it holds
//! the lock, and on two threads the other tasks wait for it). The example broker before this crate (the same
//! shape, written by hand) measured 454k, 407k / 34k, 37k / 270k, 358k in the same runs,
//! so the server keeps its throughput. The example broker runs on one thread by default
//! (`--threads N` for more). That table was measured when each connection still had
//! a reader and a writer task.
//!
//! Why the core task reads and writes TCP sockets itself: every packet used to travel
//! from a reader task over a channel to the core task and from it to a writer task,
//! task switches between a PUBLISH read and its delivery written, and each connection
//! carried its tasks, its channel and an 8 KiB read buffer while it read. Now a message
//! is read, routed and written in one poll of the core task, with one system call per
//! read and per write (a read that does not fill the buffer shows the socket empty, so
//! no read that finds nothing follows it). An idle TCP connection costs its socket's
//! registration, its waker, its entry in the core task's table (an empty queue holds no
//! buffer) and its state in the core (`tokio/examples/session_cost.rs` counts the
//! core's part; `benches/idle-connections.py` compares the whole process with
//! mosquitto; figures in the README).
//!
//! ## TLS
//!
//! Client: [`TlsOptions`] (CA file or the platform's roots, client certificate and key,
//! ALPN, SNI name). Server: [`server_tls`] builds a configuration from PEM files; with a
//! client CA it requires client certificates, and [`Server::check_peer`] (for example
//! with [`cn_is_client_id`]) sees the certificate when it authorizes a CONNECT.
//!
//! ## Errors
//!
//! Every failure is an [`Error`]: refused CONNACK with its code, TLS failure with
//! rustls's reason, time-out with what was awaited, protocol violation with its rule.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod clock;
mod error;
mod options;
mod server;
pub mod store;
mod tls;
mod transport;

pub use client::{Client, Messages};
pub use error::{Error, Timeout};
pub use options::Options;
pub use server::{
    Counters, DEFAULT_MAX_CONNECT_SIZE, Listener, Peer, PeerCheck, Server, cn_is_client_id,
};
pub use tls::{ALPN_AWS_IOT, ALPN_MQTT, TlsOptions, server_tls};
/// The rustls crate this one uses, for building configurations by hand.
pub use tokio_rustls::rustls;
