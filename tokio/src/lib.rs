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
//! [`Options::reconnect`] a lost connection is reopened after the core's
//! [`Backoff`](mqtt_sansio::reconnect::Backoff); with clean session 0 the session
//! resumes and the core resends what was not acknowledged, so the pending `publish`
//! calls complete on the new connection.
//!
//! The **server** has one task that owns the [`Broker`](mqtt_sansio::Broker), one task
//! per listener that accepts and spawns the TLS and WebSocket handshakes, and per
//! connection a reader task (socket → core task) and a writer task (bounded queue →
//! socket, batching up to 64 KiB per write). Why this shape and not a task per
//! connection sharing a locked broker: every PUBLISH touches the sessions of all its
//! subscribers, so the broker is one piece of state; with one owner no lock is ever
//! taken or contended, the broker's output is applied in order, and the socket work
//! (TLS encryption, WebSocket framing, system calls) runs in the per-connection tasks,
//! in parallel on a multi-threaded runtime. Measured with the load generator
//! (`benches/broker-vs-mosquitto.sh`; see the README), this shape keeps the example
//! broker's throughput.
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
mod server;
pub mod store;
mod tls;
mod transport;

pub use client::{Client, Messages, Options};
pub use error::{Error, Timeout};
pub use server::{Counters, Listener, Peer, PeerCheck, Server, cn_is_client_id};
pub use tls::{ALPN_AWS_IOT, ALPN_MQTT, TlsOptions, server_tls};
/// The rustls crate this one uses, for building configurations by hand.
pub use tokio_rustls::rustls;
