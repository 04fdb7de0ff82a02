//! A connection's writing side and its task: the core task encodes the packets for a
//! connection into its [`Outbox`] and, over plain TCP, writes them to the socket itself
//! once it has carried out a batch of actions; the connection's task writes only what
//! the socket would not take at once (and, over TLS and WebSocket, everything).

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, Bytes, BytesMut};
use mqtt_sansio::Packet;
use mqtt_sansio::broker::ConnId;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

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
    /// Wakes the connection's task: bytes wait that the core task could not write, or
    /// the connection is closed.
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    /// Encoded packets, in order, not yet written. It holds no allocation while empty.
    buf: BytesMut,
    /// How many packets `buf` holds (a packet partly written counts whole).
    packets: usize,
    /// The core task closed the connection: write what waits, then end.
    closed: bool,
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
            wake: Notify::new(),
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
    pub(super) fn flush(&self, counters: &Counters) -> Result<(), Error> {
        let mut p = self.lock();
        if let Some(tcp) = &self.tcp {
            write_some(tcp, &mut p, counters)?;
        }
        if !p.buf.is_empty() {
            drop(p);
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Marks the connection closed and wakes its task, which writes what waits and ends.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
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

/// The task of a plain TCP connection: reads it and hands its bytes to the core task
/// (holding no buffer while the connection is idle: it waits for readability, then
/// reads into a fresh buffer of at most [`READ_CHUNK`] bytes, freed once the core task
/// has handled it), and writes what the core task could not write at once.
pub(super) async fn tcp_task(
    conn: ConnId,
    outbox: Arc<Outbox>,
    input: mpsc::Sender<Input>,
    max_connect: usize,
    counters: Counters,
) {
    let Some(tcp) = outbox.tcp.as_ref() else {
        return;
    };
    let mut first = FirstPacket::new(max_connect);
    // Why the connection ended; `None` when the core task closed it or is gone.
    let why = loop {
        let (waiting, closed) = {
            let p = outbox.lock();
            (!p.buf.is_empty(), p.closed)
        };
        if closed {
            break None;
        }
        tokio::select! {
            () = outbox.wake.notified() => continue,
            ready = tcp.writable(), if waiting => {
                if let Err(e) = ready
                    .map_err(Error::from)
                    .and_then(|()| write_some(tcp, &mut outbox.lock(), &counters))
                {
                    break Some(e.to_string());
                }
            }
            ready = tcp.readable() => {
                if let Err(e) = ready {
                    break Some(e.to_string());
                }
                let mut buf = BytesMut::with_capacity(READ_CHUNK);
                match tcp.try_read_buf(&mut buf) {
                    Ok(0) => break Some("end of stream".to_string()),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => break Some(e.to_string()),
                }
                let bytes = match first.pass(buf.freeze(), &counters) {
                    Ok(Some(b)) => b,
                    Ok(None) => continue,
                    Err(TooLarge) => break Some(first.too_large()),
                };
                if input.send(Input::Bytes(conn, bytes)).await.is_err() {
                    break None;
                }
            }
        }
    };
    match why {
        Some(why) => {
            let _ = input.send(Input::Lost(conn, why)).await;
        }
        None => {
            // Everything queued is written, for a while at most; dropping the socket
            // then closes it.
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, drain_tcp(tcp, &outbox, &counters)).await;
        }
    }
}

/// Writes everything that waits in a closed connection's outbox.
async fn drain_tcp(tcp: &TcpStream, outbox: &Outbox, counters: &Counters) -> Result<(), Error> {
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
        let (batch, closed) = {
            let mut p = outbox.lock();
            p.packets = 0;
            (std::mem::take(&mut p.buf), p.closed)
        };
        if batch.is_empty() {
            if closed {
                break;
            }
            outbox.wake.notified().await;
            continue;
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
    }
    // The broker closed the connection: everything queued was written.
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, writer.shutdown()).await;
}
