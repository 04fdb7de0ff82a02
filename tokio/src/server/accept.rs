//! The listeners: each accepts connections in a task of its own and hands them to the
//! core task, after the TLS and WebSocket handshakes (each in a task of its own, with
//! a time limit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::rustls::ServerConfig;

use super::{Counters, HANDSHAKE_TIMEOUT, Input, Peer};
use crate::transport::{Accept, Accepted};

/// A listener's address and kind.
#[derive(Clone)]
pub enum Listener {
    /// MQTT over TCP.
    Tcp(SocketAddr),
    /// MQTT over TLS (see [`server_tls`](crate::server_tls)).
    Tls(SocketAddr, Arc<ServerConfig>),
    /// MQTT over WebSocket (sub-protocol `mqtt`).
    Ws(SocketAddr),
    /// MQTT over WebSocket over TLS.
    Wss(SocketAddr, Arc<ServerConfig>),
}

impl Listener {
    pub(super) fn parts(&self) -> (SocketAddr, Accept, &'static str) {
        match self {
            Listener::Tcp(a) => (*a, Accept::new(None, false), "tcp"),
            Listener::Tls(a, c) => (*a, Accept::new(Some(c.clone()), false), "tls"),
            Listener::Ws(a) => (*a, Accept::new(None, true), "ws"),
            Listener::Wss(a, c) => (*a, Accept::new(Some(c.clone()), true), "wss"),
        }
    }
}

pub(super) async fn accept_loop(
    tcp: TcpListener,
    accept: Accept,
    kind: &'static str,
    input: mpsc::Sender<Input>,
    counters: Counters,
) {
    loop {
        let (stream, addr) = match tcp.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors, say: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        Counters::add(&counters.0.accepted, 1);
        if accept.is_plain() {
            // No handshake: no task for it.
            let peer = Peer {
                addr,
                transport: kind,
                certificates: Vec::new(),
                alpn: None,
                server_name: None,
            };
            let accepted = Accepted::tcp(stream);
            if input
                .send(Input::Open(Box::new(accepted), peer))
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let accept = accept.clone();
        let input = input.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept.accept(stream)).await;
            match done {
                Ok(Ok(accepted)) => {
                    let peer = Peer {
                        addr,
                        transport: kind,
                        certificates: accepted.certificates.clone(),
                        alpn: accepted.alpn.clone(),
                        server_name: accepted.server_name.clone(),
                    };
                    let _ = input.send(Input::Open(Box::new(accepted), peer)).await;
                }
                Ok(Err(e)) => {
                    Counters::add(&counters.0.handshakes_failed, 1);
                    tracing::info!("{kind} handshake with {addr} failed: {e}");
                }
                Err(_) => {
                    Counters::add(&counters.0.handshakes_failed, 1);
                    tracing::info!("{kind} handshake with {addr} timed out");
                }
            }
        });
    }
}
