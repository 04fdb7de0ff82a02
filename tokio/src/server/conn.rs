//! A connection's writing side and its task: the core task encodes the packets for a
//! connection into its [`Outbox`] and, over plain TCP, writes them to the socket itself
//! once it has carried out a batch of actions; the connection's task writes only what
//! the socket would not take at once (and, over TLS and WebSocket, everything).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use mqtt_sansio::Packet;
use mqtt_sansio::broker::ConnId;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::read::{FirstPacket, READ_CHUNK, TooLarge};
use super::{Counters, FLUSH_TIMEOUT, Input};
use crate::Error;
use crate::transport::Writer;

/// What the core task has for one connection and the socket has not taken yet.
pub(super) struct Outbox {
    /// Over plain TCP, the socket: read by the connection's task, written by whichever
    /// of the two tasks finds bytes waiting.
    tcp: Option<TcpStream>,
    pending: Mutex<Pending>,
    /// The connection.
    conn: ConnId,
    /// The core task's queue, for the connection's tasks.
    input: mpsc::Sender<Input>,
    counters: Counters,
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
    /// The connection's task, to wake when bytes wait that the core task could not
    /// write, or when the connection is closed.
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

/// A packet that could not be queued.
pub(super) enum NotQueued {
    /// The connection's queue held its limit of packets.
    Full,
    /// The packet has no encoding (too large).
    Encode(mqtt_sansio::EncodeError),
}

impl Outbox {
    pub(super) fn new(
        conn: ConnId,
        tcp: Option<TcpStream>,
        input: mpsc::Sender<Input>,
        counters: Counters,
    ) -> Outbox {
        Outbox {
            tcp,
            pending: Mutex::new(Pending::default()),
            conn,
            input,
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `packet`'s bytes, unless `limit` packets wait already.
    pub(super) fn push(&self, packet: &Packet<Bytes>, limit: usize) -> Result<(), NotQueued> {
        let mut p = self.lock();
        if p.packets >= limit {
            return Err(NotQueued::Full);
        }
        packet.encode(&mut p.buf).map_err(NotQueued::Encode)?;
        p.packets += 1;
        Ok(())
    }

    /// Writes what waits without waiting for the socket (plain TCP); what it does not
    /// take, and everything over TLS and WebSocket, is left to the connection's task.
    /// `Ok(true)`: everything was written. With `notify`, when something is left, the
    /// connection's task sends [`Input::Writable`] once it has written it.
    pub(super) fn flush(&self, notify: bool) -> Result<bool, Error> {
        let mut p = self.lock();
        if let Some(tcp) = &self.tcp {
            write_some(tcp, &mut p, &self.counters)?;
        }
        if p.buf.is_empty() {
            return Ok(true);
        }
        p.notify |= notify;
        p.wake();
        Ok(false)
    }

    /// Whether the core task asked to hear that the buffer, now empty, was written; the
    /// request is consumed.
    fn take_notify(&self) -> bool {
        let mut p = self.lock();
        p.buf.is_empty() && std::mem::take(&mut p.notify)
    }

    /// The broker stops (`true`) or resumes reading the connection: a paused
    /// connection's reader waits (over plain TCP, its task stops polling for
    /// readability and only writes); it is woken on resume.
    pub(super) fn set_paused(&self, paused: bool) {
        let mut p = self.lock();
        p.paused = paused;
        if !paused {
            p.wake();
        }
        if let Some(w) = p.reader.take() {
            w.wake();
        }
    }

    /// Ready once the connection is paused (`true`) or not (`false`), for the reader of
    /// a TLS or WebSocket connection.
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

    /// Marks the connection closed and wakes its task, which writes what waits and ends.
    pub(super) fn close(&self) {
        let mut p = self.lock();
        p.closed = true;
        p.wake();
    }
}

/// Writes from the front of `p.buf` until it is empty or the socket would block; an
/// empty buffer gives its allocation back.
fn write_some(tcp: &TcpStream, p: &mut Pending, counters: &Counters) -> Result<(), Error> {
    while !p.buf.is_empty() {
        match tcp.try_write(&p.buf) {
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
            Ok(n) => {
                Counters::add(&counters.0.bytes_sent, n as u64);
                // The queue's bound counts packets and the socket takes bytes: the
                // packets left are estimated from the bytes left, rounded up.
                let len = p.buf.len();
                p.packets = (p.packets * (len - n)).div_ceil(len);
                p.buf.advance(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    p.buf = BytesMut::new();
    p.packets = 0;
    Ok(())
}

/// The rare waits of a plain TCP connection's task, boxed: `true` to go on reading.
type Wait = Pin<Box<dyn Future<Output = bool> + Send>>;

/// The task of a plain TCP connection: reads it and hands its bytes to the core task
/// (holding no buffer while the connection is idle: it waits for readability, then
/// reads into a fresh buffer of at most [`READ_CHUNK`] bytes, freed once the core task
/// has handled it), and writes what the core task could not write at once.
///
/// A future written by hand, and small: tokio keeps a task in a block of 128 bytes
/// when its future takes at most 24, and of 256 above. So the task holds its outbox
/// (which names the connection, the core task's queue and the counters), a box that
/// exists only while the first packet is checked or a rare wait runs (room in the core
/// task's queue, reporting the end, the last flush), and one flag; it polls the
/// socket's readiness itself and keeps its waker in the outbox for the core task.
pub(super) struct TcpTask {
    outbox: Arc<Outbox>,
    rare: Option<Box<Rare>>,
    /// The last read took less than it could: let the core task run before reading on.
    yield_next: bool,
}

/// What a TCP connection's task holds only for a while.
#[derive(Default)]
struct Rare {
    /// Until the first packet's fixed header has passed the pre-authentication limit.
    first: Option<FirstPacket>,
    wait: Option<Wait>,
}

impl TcpTask {
    pub(super) fn new(outbox: Arc<Outbox>, max_connect: usize) -> TcpTask {
        TcpTask {
            outbox,
            rare: Some(Box::new(Rare {
                first: Some(FirstPacket::new(max_connect)),
                wait: None,
            })),
            yield_next: false,
        }
    }

    /// Reports the end of the connection to the core task, then ends.
    fn lost(&self, why: String) -> Wait {
        let input = self.outbox.input.clone();
        let conn = self.outbox.conn;
        Box::pin(async move {
            let _ = input.send(Input::Lost(conn, why)).await;
            false
        })
    }

    /// Writes what is queued (for a while at most), then ends; dropping the socket
    /// then closes it.
    fn flush_and_end(&self) -> Wait {
        let outbox = self.outbox.clone();
        Box::pin(async move {
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, drain_tcp(&outbox)).await;
            false
        })
    }

    /// One step: `Ready(Some(wait))` to wait on, `Ready(None)` to step again.
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Wait>> {
        let outbox = &*self.outbox;
        let Some(tcp) = outbox.tcp.as_ref() else {
            return Poll::Ready(Some(Box::pin(std::future::ready(false))));
        };
        let readable = {
            let mut p = outbox.lock();
            if p.closed {
                drop(p);
                return Poll::Ready(Some(self.flush_and_end()));
            }
            p.register(cx);
            if !p.buf.is_empty() {
                if let Poll::Ready(r) = tcp.poll_write_ready(cx) {
                    let written = r
                        .map_err(Error::from)
                        .and_then(|()| write_some(tcp, &mut p, &outbox.counters));
                    let notify = p.buf.is_empty() && std::mem::take(&mut p.notify);
                    drop(p);
                    return Poll::Ready(match written {
                        Ok(()) if notify => self.tell(Input::Writable(outbox.conn)),
                        Ok(()) => None,
                        Err(e) => Some(self.lost(e.to_string())),
                    });
                }
            }
            if p.paused {
                // Not read until resumed (the waker is in the outbox).
                return Poll::Pending;
            }
            drop(p);
            std::task::ready!(tcp.poll_read_ready(cx))
        };
        if let Err(e) = readable {
            return Poll::Ready(Some(self.lost(e.to_string())));
        }
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        match tcp.try_read_buf(&mut buf) {
            Ok(0) => return Poll::Ready(Some(self.lost("end of stream".to_string()))),
            // Most likely the socket is empty now: the read that would say so waits
            // until the core task has had these bytes.
            Ok(n) if n < READ_CHUNK => self.yield_next = true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Poll::Ready(None),
            Err(e) => return Poll::Ready(Some(self.lost(e.to_string()))),
        }
        let mut bytes = buf.freeze();
        if let Some(first) = self.rare.as_mut().and_then(|r| r.first.as_mut()) {
            bytes = match first.pass(bytes, &self.outbox.counters) {
                Ok(Some(b)) => b,
                Ok(None) => return Poll::Ready(None),
                Err(TooLarge) => {
                    let why = first.too_large();
                    return Poll::Ready(Some(self.lost(why)));
                }
            };
            // Passed: the check is over.
            if let Some(rare) = self.rare.as_mut() {
                rare.first = None;
            }
        }
        Poll::Ready(self.tell(Input::Bytes(self.outbox.conn, bytes)))
    }

    /// Hands `input` to the core task: at once, or a wait for room in its queue.
    fn tell(&self, input: Input) -> Option<Wait> {
        match self.outbox.input.try_send(input) {
            Ok(()) => None,
            // The core task is behind: wait for room.
            Err(TrySendError::Full(i)) => {
                let input = self.outbox.input.clone();
                Some(Box::pin(async move { input.send(i).await.is_ok() }))
            }
            // The core task is gone: write what is queued and end.
            Err(TrySendError::Closed(_)) => Some(self.flush_and_end()),
        }
    }

    /// Keeps `wait` (in the rare box) or, without one, frees the box once nothing in
    /// it is needed.
    fn set_wait(&mut self, wait: Option<Wait>) {
        match (wait, &mut self.rare) {
            (Some(w), Some(rare)) => rare.wait = Some(w),
            (Some(w), rare @ None) => {
                *rare = Some(Box::new(Rare {
                    first: None,
                    wait: Some(w),
                }))
            }
            (None, rare) => {
                if let Some(r) = rare.as_mut() {
                    r.wait = None;
                    if r.first.is_none() {
                        *rare = None;
                    }
                }
            }
        }
    }
}

impl Future for TcpTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            if let Some(wait) = this.rare.as_mut().and_then(|r| r.wait.as_mut()) {
                let go_on = std::task::ready!(wait.as_mut().poll(cx));
                this.set_wait(None);
                if !go_on {
                    return Poll::Ready(());
                }
            }
            let wait = std::task::ready!(this.step(cx));
            let waits = wait.is_some();
            this.set_wait(wait);
            if std::mem::take(&mut this.yield_next) && !waits {
                // Queued behind the core task, which the bytes just handed over woke:
                // what they answer goes out before this task reads again.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

/// Writes everything that waits in a closed connection's outbox.
async fn drain_tcp(outbox: &Outbox) -> Result<(), Error> {
    let Some(tcp) = outbox.tcp.as_ref() else {
        return Ok(());
    };
    loop {
        {
            let mut p = outbox.lock();
            write_some(tcp, &mut p, &outbox.counters)?;
            if p.buf.is_empty() {
                return Ok(());
            }
        }
        tcp.writable().await?;
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

#[cfg(test)]
mod tests {
    /// tokio keeps a task whose future takes at most 24 bytes in a 128-byte block (on
    /// 64-bit targets with 128-byte cache-line alignment), a larger one in 256.
    #[test]
    fn a_tcp_task_fits_in_the_smallest_task_block() {
        assert!(std::mem::size_of::<super::TcpTask>() <= 24);
    }
}
