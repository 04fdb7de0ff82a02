//! # mqtt-sansio
//!
//! MQTT 3.1.1 without I/O: a packet codec made of pure functions, and deterministic
//! state machines that are told what happened and answer with what to do.
//!
//! The crate never touches a socket or a clock. Bytes, time and application commands
//! are inputs; packets to send, messages to deliver, connections to close and the next
//! instant to be woken are outputs. The same core serves clients, brokers, proxies,
//! fuzzers and conformance checkers.
//!
//! ## Decoding and encoding
//!
//! ```
//! use bytes::BytesMut;
//! use mqtt_sansio::{decode, Packet, Publish, QosPid, PacketId, Status, TopicName};
//!
//! // Build a QoS 1 PUBLISH and encode it.
//! let topic = TopicName::from_static("sensors/t1")?;
//! let id = PacketId::new(10).unwrap();
//! let publish = Publish::new(topic, QosPid::AtLeastOnce(id), &b"21.5"[..]);
//! let packet = Packet::from(publish);
//! let mut buf = BytesMut::new();
//! packet.encode(&mut buf)?;
//! assert_eq!(buf.len(), packet.encoded_len());
//!
//! // A prefix is incomplete, not an error: the decoder says how much more it needs.
//! assert_eq!(decode(&buf[..3])?, Status::Incomplete(buf.len() - 3));
//!
//! // The whole packet decodes, borrowing from the buffer.
//! match decode(&buf)? {
//!     Status::Complete(Packet::Publish(p), used) => {
//!         assert_eq!(used, buf.len());
//!         assert_eq!(p.topic.as_str(), "sensors/t1");
//!         assert_eq!(p.payload, b"21.5");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // Zero-copy: a `Frame` owns the packet's bytes (one reference count, shared with
//! // the input buffer) and lends the packet out; `share` gives a field its own `Bytes`.
//! let mut two = BytesMut::new();
//! packet.encode(&mut two)?;
//! packet.encode(&mut two)?;
//! if let Status::Complete(frame, _) = mqtt_sansio::decode_frame(&mut two)? {
//!     if let Packet::Publish(p) = frame.packet() {
//!         let payload = frame.share(p.payload).expect("a field of the frame");
//!         assert_eq!(&payload[..], b"21.5");
//!     }
//! }
//! // Or every field its own `Bytes` sharing the buffer.
//! if let Status::Complete(Packet::Publish(p), _) = mqtt_sansio::decode_bytes(&mut two)? {
//!     assert_eq!(&p.payload[..], b"21.5");
//! }
//! assert!(two.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every [`DecodeError`] names the rule of the specification it breaks:
//!
//! ```
//! // A PUBLISH with both QoS bits set.
//! let err = mqtt_sansio::decode(&[0x36, 0x00]).unwrap_err();
//! assert_eq!(err.rule(), "MQTT-3.3.1-4");
//! ```
//!
//! ## Features
//!
//! - `std` (default): `std::error::Error` for the error types. Without it the crate is
//!   `no_std` and needs only `alloc`.
//! - `arbitrary`: `arbitrary::Arbitrary` for the packet types, producing only valid
//!   packets, for fuzzing.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

#[cfg(feature = "arbitrary")]
mod arbitrary;
pub mod broker;
pub mod client;
pub mod codec;
pub mod connection;
pub mod error;
pub mod packet;
pub mod profile;
mod quota;
pub mod reconnect;
pub mod server;
pub mod session;
pub mod time;
pub mod topic;
pub mod types;

pub use broker::{Broker, BrokerConfig, ConnId};
pub use client::{Client, ClientConfig, ClientError, ClientState};
pub use codec::{
    Decoder, FixedHeader, Frame, MAX_PACKET_SIZE, Status, decode, decode_bytes, decode_frame,
};
pub use connection::ProtocolError;
pub use error::{DecodeError, EncodeError};
pub use packet::EncodeBuf;
pub use packet::{
    ConnAck, Connect, ConnectReturnCode, Login, Packet, PacketType, Publish, QosPid, SubAck,
    SubAckCode, Subscribe, Unsubscribe, Will,
};
pub use profile::Profile;
pub use server::{Authorizer, Server};
pub use time::Instant;
pub use types::{Binary, MqttString, PacketId, QoS, TopicFilter, TopicName};
