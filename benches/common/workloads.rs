//! The benchmark workloads: byte sequences of MQTT 3.1.1 packets with realistic shapes,
//! and the field values each one carries.
//!
//! The bytes are laid out by hand here, with no codec involved, so that every crate
//! measured (this one and its peers) reads exactly the same input. Both bench packages
//! include this file by path.
#![allow(dead_code)]

use bytes::BytesMut;

/// `bytes` in a [`BytesMut`] as a stream reader holds them once it has split off its
/// first packet: the storage is already shared. Splitting a packet off a fresh
/// `BytesMut` makes `bytes` allocate a shared header (once per buffer); off this one
/// it costs a reference count. The zero-copy decoders (ours and rumqttc) get this in
/// the single-packet workloads, so that the row times the decode a stream reader
/// repeats per packet; `mixed_4MiB` starts from a fresh buffer and pays the one
/// allocation.
pub fn reader_buf(bytes: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(bytes.len() + 1);
    buf.extend_from_slice(&[0]);
    buf.extend_from_slice(bytes);
    drop(buf.split_to(1));
    buf
}

/// CONNECT fields.
pub const CLIENT_ID: &str = "device-7f3a9c21-building-7";
/// CONNECT keep-alive, seconds.
pub const KEEP_ALIVE: u16 = 60;
/// Will topic.
pub const WILL_TOPIC: &str = "devices/device-7f3a9c21/status";
/// Will message.
pub const WILL_MESSAGE: &[u8] = b"{\"state\":\"offline\",\"reason\":\"connection lost\"}";
/// Will QoS (1) and retain (set).
pub const WILL_QOS: u8 = 1;
/// User name.
pub const USERNAME: &str = "fleet-gateway-eu-west";
/// Password (kept UTF-8 so that every peer, including one that reads it as text, agrees).
pub const PASSWORD: &str = "s3cr3t-t0ken-8d1e4b7a0c9f2e65";

/// The topic of every PUBLISH.
pub const TOPIC: &str = "sensors/building-7/floor-3/room-12/temperature";
/// Packet identifier of the QoS 1 PUBLISH and its PUBACK.
pub const PUBLISH_ID: u16 = 4711;

/// SUBSCRIBE packet identifier and its ten filters with requested QoS.
pub const SUBSCRIBE_ID: u16 = 17;
/// The SUBSCRIBE filters.
pub const SUBSCRIBE_FILTERS: [(&str, u8); 10] = [
    ("sensors/building-7/+/+/temperature", 1),
    ("sensors/building-7/floor-3/#", 0),
    ("devices/device-7f3a9c21/commands/#", 1),
    ("devices/device-7f3a9c21/config", 1),
    ("fleet/eu-west/announcements", 0),
    ("$SYS/broker/uptime", 0),
    ("alarms/+/critical", 2),
    ("alarms/+/warning", 1),
    ("firmware/gateway/v2/+", 1),
    ("telemetry/+/+/+/humidity", 0),
];
/// SUBACK return codes answering the SUBSCRIBE (one refused).
pub const SUBACK_CODES: [u8; 10] = [1, 0, 1, 1, 0, 0x80, 2, 1, 1, 0];
/// UNSUBSCRIBE packet identifier.
pub const UNSUBSCRIBE_ID: u16 = 18;
/// UNSUBSCRIBE filters.
pub const UNSUBSCRIBE_FILTERS: [&str; 3] = [
    "sensors/building-7/floor-3/#",
    "alarms/+/warning",
    "telemetry/+/+/+/humidity",
];

/// The payload of `n` bytes used by the PUBLISH workloads: a fixed pseudo-random
/// pattern, not all one value.
pub fn payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A packet: first byte, minimal Remaining Length, body.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n & 0x7F) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// CONNECT, clean session, with will (QoS 1, retained), user name and password.
pub fn connect() -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, b"MQTT");
    b.push(4);
    // user name | password | will retain | will QoS 1 | will | clean session
    b.push(0x80 | 0x40 | 0x20 | (WILL_QOS << 3) | 0x04 | 0x02);
    b.extend_from_slice(&KEEP_ALIVE.to_be_bytes());
    put_str(&mut b, CLIENT_ID.as_bytes());
    put_str(&mut b, WILL_TOPIC.as_bytes());
    put_str(&mut b, WILL_MESSAGE);
    put_str(&mut b, USERNAME.as_bytes());
    put_str(&mut b, PASSWORD.as_bytes());
    frame(0x10, &b)
}

/// PUBLISH at QoS 0 with an `n`-byte payload.
pub fn publish_qos0(n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, TOPIC.as_bytes());
    b.extend_from_slice(&payload(n));
    frame(0x30, &b)
}

/// PUBLISH at QoS 1, packet identifier [`PUBLISH_ID`], with an `n`-byte payload.
pub fn publish_qos1(n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, TOPIC.as_bytes());
    b.extend_from_slice(&PUBLISH_ID.to_be_bytes());
    b.extend_from_slice(&payload(n));
    frame(0x32, &b)
}

/// PUBACK for [`PUBLISH_ID`].
pub fn puback() -> Vec<u8> {
    frame(0x40, &PUBLISH_ID.to_be_bytes())
}

/// SUBSCRIBE with the ten [`SUBSCRIBE_FILTERS`].
pub fn subscribe() -> Vec<u8> {
    let mut b = SUBSCRIBE_ID.to_be_bytes().to_vec();
    for (f, q) in SUBSCRIBE_FILTERS {
        put_str(&mut b, f.as_bytes());
        b.push(q);
    }
    frame(0x82, &b)
}

/// SUBACK with [`SUBACK_CODES`].
pub fn suback() -> Vec<u8> {
    let mut b = SUBSCRIBE_ID.to_be_bytes().to_vec();
    b.extend_from_slice(&SUBACK_CODES);
    frame(0x90, &b)
}

/// UNSUBSCRIBE with [`UNSUBSCRIBE_FILTERS`].
pub fn unsubscribe() -> Vec<u8> {
    let mut b = UNSUBSCRIBE_ID.to_be_bytes().to_vec();
    for f in UNSUBSCRIBE_FILTERS {
        put_str(&mut b, f.as_bytes());
    }
    frame(0xA2, &b)
}

/// PINGREQ.
pub fn pingreq() -> Vec<u8> {
    vec![0xC0, 0x00]
}

/// The single-packet workloads, by name, in report order.
pub fn single() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("connect", connect()),
        ("publish_qos0_16B", publish_qos0(16)),
        ("publish_qos0_1KiB", publish_qos0(1024)),
        ("publish_qos0_64KiB", publish_qos0(64 * 1024)),
        ("publish_qos1_1KiB", publish_qos1(1024)),
        ("puback", puback()),
        ("subscribe_10", subscribe()),
        ("suback_10", suback()),
        ("unsubscribe_3", unsubscribe()),
        ("pingreq", pingreq()),
    ]
}

/// How many copies of a single-packet workload the peer comparison decodes back to
/// back per iteration: the per-packet time is the median divided by this.
pub const REPEAT: usize = 32;

/// [`REPEAT`] copies of `packet`, back to back.
pub fn repeated(packet: &[u8]) -> Vec<u8> {
    packet.repeat(REPEAT)
}

/// Size of the mixed stream.
pub const STREAM_LEN: usize = 4 * 1024 * 1024;

/// About [`STREAM_LEN`] bytes of whole packets back to back, as a broker reads them
/// from many clients' telemetry: mostly small QoS 0 and QoS 1 PUBLISHes with their
/// acknowledgements, now and then a larger one, a ping, and a (un)subscription.
/// Returns the bytes and the number of packets.
pub fn mixed_stream() -> (Vec<u8>, usize) {
    let cycle: Vec<Vec<u8>> = vec![
        publish_qos0(16),
        publish_qos0(64),
        publish_qos1(256),
        puback(),
        publish_qos0(16),
        publish_qos1(1024),
        puback(),
        publish_qos0(128),
        pingreq(),
        publish_qos0(16),
        publish_qos1(64),
        puback(),
        subscribe(),
        suback(),
        publish_qos0(4096),
        unsubscribe(),
    ];
    let mut out = Vec::with_capacity(STREAM_LEN + 8192);
    let mut n = 0;
    'fill: loop {
        for p in &cycle {
            if out.len() + p.len() > STREAM_LEN {
                break 'fill;
            }
            out.extend_from_slice(p);
            n += 1;
        }
    }
    (out, n)
}
