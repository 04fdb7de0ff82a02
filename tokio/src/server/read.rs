//! A connection's reading side: the pre-authentication limit on the first packet, and
//! the reader of a TLS or WebSocket connection.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mqtt_sansio::DecodeError;
use mqtt_sansio::broker::ConnId;
use mqtt_sansio::codec::{Decoder, Status};
use tokio::sync::mpsc;

use super::conn::Outbox;
use super::{Counters, Input};
use crate::transport::Reader;

/// The most bytes one read of a connection takes in.
pub(super) const READ_CHUNK: usize = 8 * 1024;

/// The check of a connection's first packet against the pre-authentication limit: the
/// bytes read pass through it on their way to the core task.
pub(super) struct FirstPacket {
    /// The start of the first packet, until its fixed header is complete (at most 5
    /// bytes are needed, but a read may bring more); `None` once it passed. Boxed, so
    /// that it costs a pointer once it is not needed.
    head: Option<Box<BytesMut>>,
    max_connect: usize,
}

/// The first packet announced a Remaining Length above the limit.
pub(super) struct TooLarge;

impl FirstPacket {
    pub(super) fn new(max_connect: usize) -> FirstPacket {
        FirstPacket {
            head: Some(Box::default()),
            max_connect,
        }
    }

    /// What to hand to the core task of the bytes just read: `None` while the first
    /// packet's fixed header is incomplete (they are kept), the bytes (with those kept)
    /// once it is.
    pub(super) fn pass(
        &mut self,
        bytes: Bytes,
        counters: &Counters,
    ) -> Result<Option<Bytes>, TooLarge> {
        let Some(mut head) = self.head.take() else {
            return Ok(Some(bytes));
        };
        // Usually the whole fixed header comes in the first read: no copy then.
        let bytes = if head.is_empty() {
            bytes
        } else {
            head.extend_from_slice(&bytes);
            head.split().freeze()
        };
        match first_packet_check(&bytes, self.max_connect) {
            Check::Incomplete => {
                self.head = Some(Box::new(BytesMut::from(&bytes[..])));
                Ok(None)
            }
            Check::TooLarge => {
                Counters::add(&counters.0.connect_too_large, 1);
                Err(TooLarge)
            }
            Check::Pass => Ok(Some(bytes)),
        }
    }

    /// Why the connection is closed, for the log.
    pub(super) fn too_large(&self) -> String {
        format!(
            "first packet larger than the limit of {} bytes before CONNECT is accepted",
            self.max_connect
        )
    }
}

/// Reads a TLS or WebSocket connection and hands its bytes to the core task (a plain
/// TCP connection is read by the core task itself, [`TcpLink`](super::tcp::TcpLink)).
pub(super) async fn read_loop(
    conn: ConnId,
    mut reader: Reader,
    outbox: Arc<Outbox>,
    input: mpsc::Sender<Input>,
    max_connect: usize,
    counters: Counters,
) {
    let mut first = FirstPacket::new(max_connect);
    let why = loop {
        // The broker may have paused the connection (back-pressure): no read until it
        // resumes it, and a read under way when it pauses is given up (a read is
        // cancel-safe: nothing is taken from the stream unless it completes).
        std::future::poll_fn(|cx| outbox.poll_paused(cx, false)).await;
        let read = tokio::select! {
            read = reader.read_chunk(READ_CHUNK) => read,
            () = std::future::poll_fn(|cx| outbox.poll_paused(cx, true)) => continue,
        };
        let bytes = match read {
            Ok(b) if b.is_empty() => break "end of stream".to_string(),
            Ok(b) => b,
            Err(e) => break e.to_string(),
        };
        let bytes = match first.pass(bytes, &counters) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(TooLarge) => break first.too_large(),
        };
        if input.send(Input::Bytes(conn, bytes)).await.is_err() {
            return;
        }
    };
    let _ = input.send(Input::Lost(conn, why)).await;
}

/// What the start of a connection's first packet says about the pre-authentication limit.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    /// The fixed header is not complete yet.
    Incomplete,
    /// The announced Remaining Length is above the limit, or above that of any valid
    /// CONNECT.
    TooLarge,
    /// Within the limit, or malformed: the core decides (and closes on a malformed one).
    Pass,
}

fn first_packet_check(head: &[u8], max_connect: usize) -> Check {
    match Decoder::new().fixed_header(head) {
        Ok(Status::Incomplete(_)) => Check::Incomplete,
        Ok(Status::Complete(h, _)) if h.remaining_length > max_connect => Check::TooLarge,
        Err(DecodeError::ConnectTooLarge) => Check::TooLarge,
        Ok(Status::Complete(..)) | Err(_) => Check::Pass,
    }
}
