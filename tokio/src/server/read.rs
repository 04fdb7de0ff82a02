//! A connection's reading side: no buffer held while idle, and the pre-authentication
//! limit on the first packet.

use bytes::BytesMut;
use mqtt_sansio::DecodeError;
use mqtt_sansio::broker::ConnId;
use mqtt_sansio::codec::{Decoder, Status};
use tokio::sync::mpsc;

use super::{Counters, Input};
use crate::transport::Reader;

/// The most bytes one read of a connection takes in.
const READ_CHUNK: usize = 8 * 1024;

/// Reads a connection and hands its bytes to the core task.
///
/// While the connection is idle it holds no read buffer: it waits for readability, then
/// reads into a fresh buffer of at most [`READ_CHUNK`] bytes, handed to the core task as
/// it is, so it is freed once the core task has handled it.
///
/// The first packet's fixed header is checked against `max_connect` before anything is
/// handed on: a larger announced Remaining Length closes the connection.
pub(super) async fn read_loop(
    conn: ConnId,
    mut reader: Reader,
    input: mpsc::Sender<Input>,
    max_connect: usize,
    counters: Counters,
) {
    // The start of the first packet, until its fixed header is complete (at most 5
    // bytes are needed, but a read may bring more).
    let mut first: Option<BytesMut> = Some(BytesMut::new());
    let why = loop {
        if let Err(e) = reader.readable().await {
            break e.to_string();
        }
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        match reader.read(&mut buf).await {
            Ok(0) => break "end of stream".to_string(),
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
        let bytes = match first.take() {
            None => buf.freeze(),
            Some(mut head) => {
                head.extend_from_slice(&buf);
                match first_packet_check(&head, max_connect) {
                    FirstPacket::Incomplete => {
                        first = Some(head);
                        continue;
                    }
                    FirstPacket::TooLarge => {
                        Counters::add(&counters.0.connect_too_large, 1);
                        break format!(
                            "first packet larger than the limit of {max_connect} bytes \
                             before CONNECT is accepted"
                        );
                    }
                    FirstPacket::Pass => head.freeze(),
                }
            }
        };
        if input.send(Input::Bytes(conn, bytes)).await.is_err() {
            return;
        }
    };
    let _ = input.send(Input::Lost(conn, why)).await;
}

/// What the start of a connection's first packet says about the pre-authentication limit.
#[derive(Debug, PartialEq, Eq)]
enum FirstPacket {
    /// The fixed header is not complete yet.
    Incomplete,
    /// The announced Remaining Length is above the limit, or above that of any valid
    /// CONNECT.
    TooLarge,
    /// Within the limit, or malformed: the core decides (and closes on a malformed one).
    Pass,
}

fn first_packet_check(head: &[u8], max_connect: usize) -> FirstPacket {
    match Decoder::new().fixed_header(head) {
        Ok(Status::Incomplete(_)) => FirstPacket::Incomplete,
        Ok(Status::Complete(h, _)) if h.remaining_length > max_connect => FirstPacket::TooLarge,
        Err(DecodeError::ConnectTooLarge) => FirstPacket::TooLarge,
        Ok(Status::Complete(..)) | Err(_) => FirstPacket::Pass,
    }
}
