//! The broker server's transport counters, shared with whoever holds a [`Counters`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(doc)]
use super::Server;

/// The server's counters, shared with the running server: cheap to clone, read at any
/// time.
#[derive(Debug, Clone, Default)]
pub struct Counters(pub(super) Arc<CounterCells>);

#[derive(Debug, Default)]
pub(super) struct CounterCells {
    pub(super) accepted: AtomicU64,
    pub(super) handshakes_failed: AtomicU64,
    pub(super) open: AtomicU64,
    pub(super) bytes_received: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
    pub(super) packets_sent: AtomicU64,
    pub(super) slow_dropped: AtomicU64,
    pub(super) connect_too_large: AtomicU64,
    pub(super) paused: AtomicU64,
}

impl Counters {
    /// TCP connections accepted, on every listener.
    pub fn accepted(&self) -> u64 {
        self.0.accepted.load(Ordering::Relaxed)
    }
    /// Connections whose TLS or WebSocket handshake failed or timed out.
    pub fn handshakes_failed(&self) -> u64 {
        self.0.handshakes_failed.load(Ordering::Relaxed)
    }
    /// Connections open now (handshakes done).
    pub fn open(&self) -> u64 {
        self.0.open.load(Ordering::Relaxed)
    }
    /// MQTT bytes received, on every connection.
    pub fn bytes_received(&self) -> u64 {
        self.0.bytes_received.load(Ordering::Relaxed)
    }
    /// MQTT bytes written, on every connection.
    pub fn bytes_sent(&self) -> u64 {
        self.0.bytes_sent.load(Ordering::Relaxed)
    }
    /// Packets queued for the connections' sockets.
    pub fn packets_sent(&self) -> u64 {
        self.0.packets_sent.load(Ordering::Relaxed)
    }
    /// Connections dropped because their write queue was full (a client that stopped
    /// reading).
    pub fn slow_dropped(&self) -> u64 {
        self.0.slow_dropped.load(Ordering::Relaxed)
    }

    /// Connections closed because their first packet announced a Remaining Length above
    /// the pre-authentication limit ([`Server::set_max_connect_size`]).
    pub fn connect_too_large(&self) -> u64 {
        self.0.connect_too_large.load(Ordering::Relaxed)
    }

    /// Times the broker stopped reading a connection whose messages would overflow a
    /// queue ([`QueueFullPolicy::Backpressure`](mqtt_sansio::broker::QueueFullPolicy)).
    pub fn paused(&self) -> u64 {
        self.0.paused.load(Ordering::Relaxed)
    }

    pub(super) fn add(cell: &AtomicU64, n: u64) {
        cell.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn add_neg(cell: &AtomicU64) {
        cell.fetch_sub(1, Ordering::Relaxed);
    }
}
