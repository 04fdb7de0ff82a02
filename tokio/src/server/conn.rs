//! The writing side of a TLS or WebSocket connection: the core task encodes the packets
//! for it into its [`Outbox`], and the connection's writer task writes them. (A plain
//! TCP connection is written by the core task itself: [`tcp`](super::tcp).)

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use mqtt_sansio::Packet;
use mqtt_sansio::broker::ConnId;
use tokio::sync::mpsc;

use super::{Counters, FLUSH_TIMEOUT, Input};
use crate::Error;
use crate::transport::Writer;

/// What the core task has for a TLS or WebSocket connection and its writer has not
/// taken yet; its reader waits here while the connection is paused.
#[derive(Default)]
pub(super) struct Outbox {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    /// Encoded packets, in order, not yet written. It holds no allocation while empty.
    buf: BytesMut,
    /// How many packets `buf` holds (a packet partly written counts whole).
    packets: usize,
    /// The core task closed the connection: write what waits, then end.
    closed: bool,
    /// The core task waits to hear when `buf` is empty (the broker has more for this
    /// connection as it drains: retained messages after a SUBSCRIBE).
    notify: bool,
    /// The writer task, to wake when bytes wait or the connection is closed.
    task: Option<Waker>,
    /// The broker stopped reading the connection (back-pressure): its reader waits.
    paused: bool,
    /// The reader of a TLS or WebSocket connection, waiting for the resume.
    reader: Option<Waker>,
}

impl Pending {
    fn wake(&self) {
        if let Some(w) = &self.task {
            w.wake_by_ref();
        }
    }

    /// Keeps `cx`'s waker for [`wake`](Self::wake).
    fn register(&mut self, cx: &Context<'_>) {
        if !self.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.task = Some(cx.waker().clone());
        }
    }
}

/// Appends `packet`'s bytes to `buf`, which holds `packets` packets, unless `limit`
/// packets wait already.
pub(super) fn queue_packet(
    buf: &mut BytesMut,
    packets: &mut usize,
    packet: &Packet<Bytes>,
    limit: usize,
) -> Result<(), NotQueued> {
    if *packets >= limit {
        return Err(NotQueued::Full);
    }
    packet.encode(buf).map_err(NotQueued::Encode)?;
    *packets += 1;
    Ok(())
}

/// A packet that could not be queued.
pub(super) enum NotQueued {
    /// The connection's queue held its limit of packets.
    Full,
    /// The packet has no encoding (too large).
    Encode(mqtt_sansio::EncodeError),
    /// The socket failed while the queue was being written to make room.
    Broken(std::io::Error),
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `packet`'s bytes, unless `limit` packets wait already.
    pub(super) fn push(&self, packet: &Packet<Bytes>, limit: usize) -> Result<(), NotQueued> {
        let p = &mut *self.lock();
        queue_packet(&mut p.buf, &mut p.packets, packet, limit)
    }

    /// Hands what waits to the writer task. `true`: nothing waits. With `notify`, when
    /// something does, the writer sends [`Input::Writable`] once it has written it.
    pub(super) fn flush(&self, notify: bool) -> bool {
        let mut p = self.lock();
        if p.buf.is_empty() {
            return true;
        }
        p.notify |= notify;
        p.wake();
        false
    }

    /// Whether the core task asked to hear that the buffer, now empty, was written; the
    /// request is consumed.
    fn take_notify(&self) -> bool {
        let mut p = self.lock();
        p.buf.is_empty() && std::mem::take(&mut p.notify)
    }

    /// The broker stops (`true`) or resumes reading the connection: a paused
    /// connection's reader waits; it is woken on resume.
    pub(super) fn set_paused(&self, paused: bool) {
        let mut p = self.lock();
        p.paused = paused;
        if let Some(w) = p.reader.take() {
            w.wake();
        }
    }

    /// Ready once the connection is paused (`true`) or not (`false`), for its reader.
    pub(super) fn poll_paused(&self, cx: &Context<'_>, paused: bool) -> Poll<()> {
        let mut p = self.lock();
        if p.paused == paused {
            return Poll::Ready(());
        }
        if !p.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            p.reader = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Marks the connection closed and wakes its writer, which writes what waits and
    /// ends.
    pub(super) fn close(&self) {
        let mut p = self.lock();
        p.closed = true;
        p.wake();
    }
}

/// The writer of a TLS or WebSocket connection: writes what the core task queued, in
/// batches of what waited, until the connection is closed and everything is written.
pub(super) async fn write_loop(
    conn: ConnId,
    mut writer: Writer,
    outbox: Arc<Outbox>,
    input: mpsc::Sender<Input>,
    counters: Counters,
) {
    loop {
        let (batch, closed) = poll_fn(|cx| {
            let mut p = outbox.lock();
            if p.buf.is_empty() && !p.closed {
                p.register(cx);
                return Poll::Pending;
            }
            p.packets = 0;
            Poll::Ready((std::mem::take(&mut p.buf), p.closed))
        })
        .await;
        if batch.is_empty() {
            break;
        }
        let write = writer.write(&batch);
        let result = if closed {
            tokio::time::timeout(FLUSH_TIMEOUT, write)
                .await
                .unwrap_or_else(|_| Err(Error::Timeout(crate::Timeout::Operation)))
        } else {
            write.await
        };
        if let Err(e) = result {
            let _ = input.send(Input::Lost(conn, e.to_string())).await;
            return;
        }
        Counters::add(&counters.0.bytes_sent, batch.len() as u64);
        if outbox.take_notify() && input.send(Input::Writable(conn)).await.is_err() {
            return;
        }
    }
    // The broker closed the connection: everything queued was written.
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, writer.shutdown()).await;
}
