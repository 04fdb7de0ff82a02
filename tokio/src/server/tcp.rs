//! A plain TCP connection, served by the core task itself. Each connection has a waker
//! that puts it on the [`ReadyList`] and wakes the core task; the core task then reads
//! the socket into one buffer it reuses for every connection, hands the bytes to the
//! broker and writes the answers. No task, channel or read buffer per connection, and
//! no hop between tasks on a message's way through the broker.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use bytes::{Buf, Bytes, BytesMut};
use mqtt_sansio::Packet;
use mqtt_sansio::broker::ConnId;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::conn::{NotQueued, queue_packet};
use super::read::{FirstPacket, TooLarge};
use super::{Counters, FLUSH_TIMEOUT};

/// The connections whose socket may be ready, in the order their wakers fired.
///
/// The core task looks at it after every wake-up, and most of those looks find it
/// empty: an atomic flag answers them without taking the lock, and the core task's
/// waker is handed over only when it changes (see [`poll_take`](Self::poll_take)).
#[derive(Default)]
pub(super) struct ReadyList {
    listed: Mutex<Listed>,
    /// Whether `listed.conns` holds any: set under the lock, cleared by the core task
    /// as it takes them.
    any: AtomicBool,
}

#[derive(Default)]
struct Listed {
    conns: Vec<ConnId>,
    /// The core task's waker.
    core: Option<Waker>,
}

impl ReadyList {
    fn lock(&self) -> MutexGuard<'_, Listed> {
        self.listed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ready once connections are listed: they are moved into `into` (which the core
    /// task keeps, so that its allocation is reused). Else `cx`'s waker is woken when
    /// one is; `given` is the waker the core task gave last, kept on its side so that
    /// the same waker is not handed over again.
    pub(super) fn poll_take(
        &self,
        cx: &Context<'_>,
        into: &mut Vec<ConnId>,
        given: &mut Option<Waker>,
    ) -> Poll<()> {
        if !self.any.load(Ordering::Acquire) {
            if given.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return Poll::Pending;
            }
            // A connection listed before the waker is in place is seen here: it was
            // listed under the same lock.
            let mut listed = self.lock();
            listed.core = Some(cx.waker().clone());
            *given = Some(cx.waker().clone());
            if listed.conns.is_empty() {
                return Poll::Pending;
            }
            self.take(&mut listed, into);
        } else {
            self.take(&mut self.lock(), into);
        }
        Poll::Ready(())
    }

    fn take(&self, listed: &mut Listed, into: &mut Vec<ConnId>) {
        std::mem::swap(&mut listed.conns, into);
        self.any.store(false, Ordering::Release);
    }

    /// Whether connections are listed.
    pub(super) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }
}

/// A connection's waker: lists the connection (once, until the core task looks at it)
/// and wakes the core task.
struct ConnWaker {
    conn: ConnId,
    listed: AtomicBool,
    ready: Arc<ReadyList>,
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.listed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut listed = self.ready.lock();
        listed.conns.push(self.conn);
        self.ready.any.store(true, Ordering::Release);
        if let Some(core) = &listed.core {
            core.wake_by_ref();
        }
    }
}

/// Write buffers that TCP connections gave back once everything in them was written,
/// for the next connection that queues packets: an idle connection holds no buffer,
/// and a busy one does not allocate one for each batch.
#[derive(Default)]
pub(super) struct SpareBuffers(Vec<BytesMut>);

impl SpareBuffers {
    /// The most buffers kept.
    const MAX: usize = 64;
    /// The largest buffer kept, in bytes: a larger one (a burst's) is freed.
    const MAX_CAPACITY: usize = 4096;

    fn take(&mut self) -> BytesMut {
        self.0.pop().unwrap_or_default()
    }

    fn give(&mut self, mut buf: BytesMut) {
        // Written through: empty, with its start advanced; reserving takes the whole
        // allocation back, so that its capacity is the allocation's.
        buf.clear();
        buf.reserve(1);
        if self.0.len() < Self::MAX && buf.capacity() <= Self::MAX_CAPACITY {
            self.0.push(buf);
        }
    }
}

/// What one read of a connection found.
pub(super) enum Read<'a> {
    /// Bytes, to hand to the broker.
    Bytes(&'a [u8]),
    /// Nothing now: the connection's waker is kept for its next bytes.
    Pending,
    /// The first packet's fixed header is not complete yet: its start is kept.
    Held,
    /// The first packet's start, complete with its fixed header, which passed the
    /// pre-authentication limit.
    First(Bytes),
    /// The connection ended, or broke the pre-authentication limit: why.
    Lost(String),
}

/// A plain TCP connection's socket and the bytes the core task queued for it.
pub(super) struct TcpLink {
    stream: TcpStream,
    waker: Arc<ConnWaker>,
    /// `waker` as a [`Waker`], made once: each read and write polls the socket with
    /// it, and making it anew would count the `Arc` up and down each time.
    as_waker: Waker,
    /// Encoded packets, in order, not written yet. It holds no allocation while empty.
    out: BytesMut,
    /// How many packets `out` holds (a packet partly written counts whole).
    packets: usize,
    /// The broker waits to hear when `out` is written (it has more for this connection
    /// as it drains: retained messages after a SUBSCRIBE).
    pub(super) notify: bool,
    /// Until the first packet's fixed header has passed the pre-authentication limit.
    first: Option<Box<FirstPacket>>,
}

impl TcpLink {
    /// A connection whose readiness `ready` will list; it is listed at once, so that
    /// what arrived with the handshake is read.
    pub(super) fn new(
        conn: ConnId,
        stream: TcpStream,
        ready: &Arc<ReadyList>,
        max_connect: usize,
    ) -> TcpLink {
        let waker = Arc::new(ConnWaker {
            conn,
            listed: AtomicBool::new(false),
            ready: ready.clone(),
        });
        waker.wake_by_ref();
        TcpLink {
            stream,
            as_waker: Waker::from(waker.clone()),
            waker,
            out: BytesMut::new(),
            packets: 0,
            notify: false,
            first: Some(Box::new(FirstPacket::new(max_connect))),
        }
    }

    /// The core task looks at the connection: it comes off the ready list.
    pub(super) fn unlist(&self) {
        self.waker.listed.store(false, Ordering::Release);
    }

    /// Lists the connection again, for the core task's next round.
    pub(super) fn relist(&self) {
        self.waker.wake_by_ref();
    }

    /// Reads once into `buf`. A read that does not fill it shows the socket empty: the
    /// next call then only keeps the waker, with no system call.
    pub(super) fn read<'a>(&'a mut self, buf: &'a mut [u8], counters: &Counters) -> Read<'a> {
        let mut read = ReadBuf::new(buf);
        let mut cx = Context::from_waker(&self.as_waker);
        match Pin::new(&mut self.stream).poll_read(&mut cx, &mut read) {
            Poll::Pending => return Read::Pending,
            Poll::Ready(Err(e)) => return Read::Lost(e.to_string()),
            Poll::Ready(Ok(())) => {}
        }
        let n = read.filled().len();
        let buf: &'a [u8] = buf;
        let bytes = &buf[..n];
        if bytes.is_empty() {
            return Read::Lost("end of stream".to_string());
        }
        let Some(first) = self.first.as_mut() else {
            return Read::Bytes(bytes);
        };
        match first.pass(Bytes::copy_from_slice(bytes), counters) {
            Ok(None) => Read::Held,
            Err(TooLarge) => Read::Lost(first.too_large()),
            Ok(Some(passed)) => {
                self.first = None;
                Read::First(passed)
            }
        }
    }

    /// Appends `packet`'s bytes, unless `limit` packets wait already; an empty queue
    /// takes a spare buffer.
    pub(super) fn push(
        &mut self,
        packet: &Packet<Bytes>,
        limit: usize,
        spare: &mut SpareBuffers,
    ) -> Result<(), NotQueued> {
        if self.out.capacity() == 0 {
            self.out = spare.take();
        }
        queue_packet(&mut self.out, &mut self.packets, packet, limit)
    }

    /// Writes what waits, as far as the socket takes it; for what is left, the
    /// connection's waker is kept until the socket is writable. `Ok(true)`: nothing
    /// waits, and the buffer is given back to `spare`.
    pub(super) fn write(
        &mut self,
        counters: &Counters,
        spare: &mut SpareBuffers,
    ) -> io::Result<bool> {
        let wrote = !self.out.is_empty();
        while !self.out.is_empty() {
            // Tried first without a waker (no task budget, no registration): the socket
            // takes what it can; only when it is full is the waker kept for when it is
            // writable again.
            match self.stream.try_write(&self.out) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut cx = Context::from_waker(&self.as_waker);
                    match self.stream.poll_write_ready(&mut cx) {
                        Poll::Pending => return Ok(false),
                        Poll::Ready(Err(e)) => return Err(e),
                        Poll::Ready(Ok(())) => {}
                    }
                }
                Err(e) => return Err(e),
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    Counters::add(&counters.0.bytes_sent, n as u64);
                    // The queue's bound counts packets and the socket takes bytes: the
                    // packets left are estimated from the bytes left, rounded up.
                    let len = self.out.len();
                    self.packets = (self.packets * (len - n)).div_ceil(len);
                    self.out.advance(n);
                }
            }
        }
        // Written through: an advanced buffer shows no capacity, but it holds its
        // allocation, which the next connection to queue packets takes.
        if wrote {
            spare.give(std::mem::take(&mut self.out));
        }
        self.packets = 0;
        Ok(true)
    }

    /// Whether bytes wait to be written.
    pub(super) fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Writes what waits (for a while at most), then closes the socket.
    pub(super) async fn flush_and_close(mut self, counters: Counters) {
        let before = self.out.len();
        let flushed = tokio::time::timeout(FLUSH_TIMEOUT, async {
            self.stream.write_all_buf(&mut self.out).await?;
            self.stream.shutdown().await
        })
        .await;
        Counters::add(&counters.0.bytes_sent, (before - self.out.len()) as u64);
        if let Ok(Err(e)) = flushed {
            tracing::debug!("conn {}: last flush failed: {e}", self.waker.conn.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_listed_once_until_the_core_task_looks_at_it() {
        let ready = Arc::new(ReadyList::default());
        let waker = Arc::new(ConnWaker {
            conn: ConnId(7),
            listed: AtomicBool::new(false),
            ready: ready.clone(),
        });
        let as_waker = Waker::from(waker.clone());
        as_waker.wake_by_ref();
        as_waker.wake_by_ref();
        let mut taken = Vec::new();
        let mut given = None;
        let cx = Context::from_waker(Waker::noop());
        assert_eq!(
            ready.poll_take(&cx, &mut taken, &mut given),
            Poll::Ready(())
        );
        assert_eq!(taken, [ConnId(7)], "listed once");
        // Not looked at yet: a wake does not list it again.
        as_waker.wake_by_ref();
        assert!(ready.is_empty());
        // Looked at: the next wake lists it.
        waker.listed.store(false, Ordering::Release);
        as_waker.wake_by_ref();
        taken.clear();
        assert_eq!(
            ready.poll_take(&cx, &mut taken, &mut given),
            Poll::Ready(())
        );
        assert_eq!(taken, [ConnId(7)]);
        assert_eq!(ready.poll_take(&cx, &mut taken, &mut given), Poll::Pending);
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_core_task_is_woken_by_a_listing_and_hands_its_waker_over_once() {
        let ready = Arc::new(ReadyList::default());
        let conn = |id| {
            Waker::from(Arc::new(ConnWaker {
                conn: ConnId(id),
                listed: AtomicBool::new(false),
                ready: ready.clone(),
            }))
        };
        let (one, two) = (conn(1), conn(2));
        // Listed before the core task has given a waker: taken on its first look.
        one.wake_by_ref();
        let count = Arc::new(Count::default());
        let core = Waker::from(count.clone());
        let cx = Context::from_waker(&core);
        let (mut taken, mut given) = (Vec::new(), None);
        assert_eq!(
            ready.poll_take(&cx, &mut taken, &mut given),
            Poll::Ready(())
        );
        assert_eq!(taken, [ConnId(1)]);
        // Nothing listed: the waker is handed over, once.
        assert_eq!(ready.poll_take(&cx, &mut taken, &mut given), Poll::Pending);
        assert!(given.as_ref().is_some_and(|w| w.will_wake(&core)));
        assert_eq!(ready.poll_take(&cx, &mut taken, &mut given), Poll::Pending);
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        // Listed while the core task waits: it is woken, and the list is not empty.
        two.wake_by_ref();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert!(!ready.is_empty());
        taken.clear();
        assert_eq!(
            ready.poll_take(&cx, &mut taken, &mut given),
            Poll::Ready(())
        );
        assert_eq!(taken, [ConnId(2)]);
        assert!(ready.is_empty());
        // Another waker (the core task polled elsewhere) is handed over and woken next.
        let other_count = Arc::new(Count::default());
        let other = Waker::from(other_count.clone());
        assert_eq!(
            ready.poll_take(&Context::from_waker(&other), &mut taken, &mut given),
            Poll::Pending
        );
        assert!(given.as_ref().is_some_and(|w| w.will_wake(&other)));
        conn(3).wake_by_ref();
        assert_eq!(other_count.0.load(Ordering::Relaxed), 1);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_written_buffer_is_kept_whole_and_a_large_or_surplus_one_is_freed() {
        let mut spare = SpareBuffers::default();
        let mut buf = BytesMut::with_capacity(1000);
        buf.extend_from_slice(&[1; 1000]);
        buf.advance(1000);
        assert_eq!(buf.capacity(), 0, "advanced through");
        spare.give(buf);
        let again = spare.take();
        assert!(again.is_empty());
        assert!(again.capacity() >= 1000, "the allocation comes back whole");
        let mut big = BytesMut::with_capacity(SpareBuffers::MAX_CAPACITY + 1);
        big.extend_from_slice(&[2; 10]);
        spare.give(big);
        assert_eq!(spare.0.len(), 0, "a burst's buffer is freed");
        for _ in 0..SpareBuffers::MAX + 5 {
            spare.give(BytesMut::with_capacity(16));
        }
        assert_eq!(spare.0.len(), SpareBuffers::MAX);
        assert_eq!(
            SpareBuffers::default().take().capacity(),
            0,
            "none kept: none made"
        );
    }
}
