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
    pub(super) fn new(tcp: Option<TcpStream>) -> Outbox {
        Outbox {
            tcp,
            pending: Mutex::new(Pending::default()),
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
    pub(super) fn flush(&self, counters: &Counters, notify: bool) -> Result<bool, Error> {
        let mut p = self.lock();
        if let Some(tcp) = &self.tcp {
            write_some(tcp, &mut p, counters)?;
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
/// A future written by hand, so that an idle connection's task holds only these
/// fields: it polls the socket's readiness itself, keeps its waker in the outbox for
/// the core task, and boxes its rare waits (room in the core task's queue, reporting
/// the end, the last flush).
pub(super) struct TcpTask {
    conn: ConnId,
    outbox: Arc<Outbox>,
    input: mpsc::Sender<Input>,
    counters: Counters,
    first: FirstPacket,
    wait: Option<Wait>,
}

impl TcpTask {
    pub(super) fn new(
        conn: ConnId,
        outbox: Arc<Outbox>,
        input: mpsc::Sender<Input>,
        max_connect: usize,
        counters: Counters,
    ) -> TcpTask {
        TcpTask {
            conn,
            outbox,
            input,
            counters,
            first: FirstPacket::new(max_connect),
            wait: None,
        }
    }

    /// Reports the end of the connection to the core task, then ends.
    fn lost(&self, why: String) -> Wait {
        let input = self.input.clone();
        let conn = self.conn;
        Box::pin(async move {
            let _ = input.send(Input::Lost(conn, why)).await;
            false
        })
    }

    /// Writes what is queued (for a while at most), then ends; dropping the socket
    /// then closes it.
    fn flush_and_end(&self) -> Wait {
        let outbox = self.outbox.clone();
        let counters = self.counters.clone();
        Box::pin(async move {
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, drain_tcp(&outbox, &counters)).await;
            false
        })
    }

    /// One step: `Ready(Some(wait))` to wait on, `Ready(None)` to step again.
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Wait>> {
        let Some(tcp) = self.outbox.tcp.as_ref() else {
            return Poll::Ready(Some(Box::pin(std::future::ready(false))));
        };
        let readable = {
            let mut p = self.outbox.lock();
            if p.closed {
                drop(p);
                return Poll::Ready(Some(self.flush_and_end()));
            }
            p.register(cx);
            if !p.buf.is_empty() {
                if let Poll::Ready(r) = tcp.poll_write_ready(cx) {
                    let written = r
                        .map_err(Error::from)
                        .and_then(|()| write_some(tcp, &mut p, &self.counters));
                    let notify = p.buf.is_empty() && std::mem::take(&mut p.notify);
                    drop(p);
                    return Poll::Ready(match written {
                        Ok(()) if notify => self.tell(Input::Writable(self.conn)),
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
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Poll::Ready(None),
            Err(e) => return Poll::Ready(Some(self.lost(e.to_string()))),
        }
        let bytes = match self.first.pass(buf.freeze(), &self.counters) {
            Ok(Some(b)) => b,
            Ok(None) => return Poll::Ready(None),
            Err(TooLarge) => return Poll::Ready(Some(self.lost(self.first.too_large()))),
        };
        Poll::Ready(self.tell(Input::Bytes(self.conn, bytes)))
    }

    /// Hands `input` to the core task: at once, or a wait for room in its queue.
    fn tell(&self, input: Input) -> Option<Wait> {
        match self.input.try_send(input) {
            Ok(()) => None,
            // The core task is behind: wait for room.
            Err(TrySendError::Full(i)) => {
                let input = self.input.clone();
                Some(Box::pin(async move { input.send(i).await.is_ok() }))
            }
            // The core task is gone: write what is queued and end.
            Err(TrySendError::Closed(_)) => Some(self.flush_and_end()),
        }
    }
}

impl Future for TcpTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            if let Some(wait) = &mut this.wait {
                let go_on = std::task::ready!(wait.as_mut().poll(cx));
                this.wait = None;
                if !go_on {
                    return Poll::Ready(());
                }
            }
            this.wait = std::task::ready!(this.step(cx));
        }
    }
}

/// Writes everything that waits in a closed connection's outbox.
async fn drain_tcp(outbox: &Outbox, counters: &Counters) -> Result<(), Error> {
    let Some(tcp) = outbox.tcp.as_ref() else {
        return Ok(());
    };
    loop {
        {
            let mut p = outbox.lock();
            write_some(tcp, &mut p, counters)?;
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
