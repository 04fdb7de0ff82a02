//! Runs one state-machine workload a given number of times and nothing else, so that
//! `valgrind --tool=callgrind` can count the instructions it takes:
//! `benches/callgrind.py --state` runs it with N operations and with 0 (the same setup,
//! nothing done) and divides the difference by N.
//!
//! The workloads are those of `benches/state.rs`, built the same way:
//!
//! - `client_qos0`, `client_qos1`: one message through a connected [`Client`]: publish,
//!   encode what it sends, and at QoS 1 feed the PUBACK back until the `Published`
//!   event (the `client/publish_round_trip` bench);
//! - `fanout_1`, `fanout_100`, `fanout_10000`: a [`Broker`] with that many subscribers
//!   to one topic at QoS 0 and one publisher; one QoS 0 PUBLISH of 64 bytes from the
//!   publisher, every action drained (the `broker/route_one_publish` and
//!   `broker/fanout_10000` benches);
//! - `window1_qos1`: a [`Broker`] with one publisher and one subscriber at QoS 1; one
//!   QoS 1 PUBLISH of 64 bytes in, the PUBACK to the publisher and the delivery encoded
//!   as a server would write them, then the subscriber's PUBACK in: one message of the
//!   window-1 load (no criterion bench: it is counted here only).
//!
//! Usage: `cargo run --release --example state_ops -- WORKLOAD N`. It checks what each
//! operation did (every subscriber got the message, every QoS 1 message was
//! acknowledged) and exits with an error if not. It uses only the API the crate has had
//! since the state benches were written, so the same file measures an older checkout.

use std::hint::black_box;
use std::process::ExitCode;

use bytes::{Bytes, BytesMut};
use mqtt_sansio::broker::{Action as BrokerAction, Broker, BrokerConfig, ConnId};
use mqtt_sansio::client::{Action as ClientAction, Event};
use mqtt_sansio::{
    Client, ConnAck, Connect, Instant, MqttString, Packet, PacketId, Profile, Publish, QoS, QosPid,
    Subscribe, TopicFilter, TopicName,
};

const NOW: Instant = Instant::ZERO;
/// The topic of `benches/common/workloads.rs`.
const TOPIC: &str = "sensors/building-7/floor-3/room-12/temperature";

/// A CONNECT with clean session, no keep-alive, no will and no login, laid out by
/// hand so that the driver builds against any version of the packet types.
fn connect_bytes(client_id: &str) -> Bytes {
    let id = client_id.as_bytes();
    let id_len = u16::try_from(id.len()).expect("a short client id");
    let remaining = u8::try_from(12 + id.len()).expect("a short client id");
    let mut b = vec![0x10, remaining, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0];
    b.extend_from_slice(&id_len.to_be_bytes());
    b.extend_from_slice(id);
    Bytes::from(b)
}

fn bytes_of(p: &Packet<Bytes>) -> Bytes {
    p.to_bytes().expect("an encodable packet")
}

fn topic() -> TopicName<Bytes> {
    TopicName::from_static(TOPIC).expect("a valid topic")
}

fn payload() -> Bytes {
    Bytes::from((0..64u8).map(|i| i.wrapping_mul(37)).collect::<Vec<u8>>())
}

/// A connected client: CONNECT sent, CONNACK handled.
fn connected_client() -> Client {
    let mut c = Client::new(Profile::mqtt311());
    let connect = Connect {
        client_id: MqttString::try_from("bench-client").expect("a valid client id"),
        clean_session: true,
        keep_alive: 0,
        will: None,
        login: None,
    };
    c.connect(NOW, connect).expect("connect");
    while c.poll_action().is_some() {}
    let connack = Packet::<Bytes>::ConnAck(ConnAck::Accepted {
        session_present: false,
    });
    c.handle_bytes(NOW, &bytes_of(&connack)).expect("CONNACK");
    while c.poll_action().is_some() {}
    c
}

/// One message through the client; returns 1 when it completed.
fn round_trip(c: &mut Client, qos: QoS, payload: &Bytes, wire: &mut BytesMut) -> usize {
    let id = c
        .publish(NOW, topic(), qos, false, payload.clone())
        .expect("publish");
    while let Some(a) = c.poll_action() {
        if let ClientAction::Send(p) = a {
            wire.clear();
            p.encode(wire).expect("encode");
        }
    }
    let Some(id) = id else {
        return 1;
    };
    let [hi, lo] = id.get().to_be_bytes();
    c.handle_bytes(NOW, &[0x40, 0x02, hi, lo]).expect("PUBACK");
    let mut done = 0;
    while let Some(a) = c.poll_action() {
        if matches!(a, ClientAction::Event(Event::Published(p)) if p == id) {
            done += 1;
        }
    }
    done
}

/// A broker with `n` subscribers to the topic at `qos` (connections 1..=n) and one publisher
/// (connection 0), every CONNACK and SUBACK drained.
fn broker_with(n: u64, qos: QoS) -> Broker {
    let mut b = Broker::new(Profile::mqtt311(), BrokerConfig::default());
    let filter = TopicFilter::from_static(TOPIC).expect("a valid filter");
    let id = PacketId::new(1).expect("non-zero");
    let subscribe = bytes_of(&Packet::Subscribe(
        Subscribe::new(id, &[(filter, qos)]).expect("a valid SUBSCRIBE"),
    ));
    for conn in 0..=n {
        b.open(NOW, ConnId(conn)).expect("a fresh connection id");
        let id = if conn == 0 {
            "publisher".to_string()
        } else {
            format!("sub-{conn}")
        };
        b.handle_bytes(NOW, ConnId(conn), &connect_bytes(&id));
        if conn > 0 {
            b.handle_bytes(NOW, ConnId(conn), &subscribe);
        }
        while b.poll_action().is_some() {}
    }
    b
}

/// One publish from connection 0; returns how many PUBLISHes the broker sent.
fn route(b: &mut Broker, publish: &[u8]) -> usize {
    b.handle_bytes(NOW, ConnId(0), publish);
    let mut sent = 0;
    while let Some(a) = b.poll_action() {
        if let BrokerAction::Send {
            packet: Packet::Publish(p),
            ..
        } = a
        {
            black_box(&p);
            sent += 1;
        }
    }
    sent
}

/// One window-1 message: QoS 1 PUBLISH `n` from connection 0 to the subscriber on
/// connection 1, every packet the broker sends encoded into `wire`, then the
/// subscriber's PUBACK. Returns whether the publisher got its PUBACK and the subscriber
/// its message.
fn window1(b: &mut Broker, n: u16, payload: &Bytes, wire: &mut BytesMut) -> bool {
    let pid = PacketId::new(n).expect("non-zero");
    let publish = Publish::new(topic(), QosPid::AtLeastOnce(pid), payload.clone());
    wire.clear();
    Packet::Publish(publish).encode(wire).expect("encode");
    let incoming = wire.split().freeze();
    b.handle_bytes(NOW, ConnId(0), &incoming);
    let (mut acked, mut delivered) = (false, None);
    while let Some(a) = b.poll_action() {
        if let BrokerAction::Send { conn, packet } = a {
            match (&packet, conn) {
                (Packet::PubAck(id), ConnId(0)) => acked = *id == pid,
                (Packet::Publish(p), ConnId(1)) => delivered = p.qos.packet_id(),
                _ => {}
            }
            packet.encode(wire).expect("encode");
        }
    }
    let Some(id) = delivered else {
        return false;
    };
    let [hi, lo] = id.get().to_be_bytes();
    b.handle_bytes(NOW, ConnId(1), &[0x40, 0x02, hi, lo]);
    while let Some(a) = b.poll_action() {
        black_box(a);
    }
    acked
}

fn run(workload: &str, n: usize) -> Result<(), String> {
    if let Some(qos) = workload.strip_prefix("client_qos") {
        let qos = match qos {
            "0" => QoS::AtMostOnce,
            "1" => QoS::AtLeastOnce,
            _ => return Err(format!("unknown workload {workload}")),
        };
        let mut c = connected_client();
        let payload = payload();
        let mut wire = BytesMut::with_capacity(256);
        for _ in 0..n {
            if round_trip(&mut c, qos, black_box(&payload), &mut wire) != 1 {
                return Err("a message did not complete".into());
            }
        }
        return Ok(());
    }
    if let Some(subscribers) = workload.strip_prefix("fanout_") {
        let subscribers: u64 = subscribers
            .parse()
            .map_err(|_| format!("unknown workload {workload}"))?;
        let mut b = broker_with(subscribers, QoS::AtMostOnce);
        let publish = bytes_of(&Packet::Publish(Publish::new(
            topic(),
            QosPid::AtMostOnce,
            payload(),
        )));
        for _ in 0..n {
            if route(&mut b, black_box(&publish)) != subscribers as usize {
                return Err("a subscriber missed the message".into());
            }
        }
        return Ok(());
    }
    if workload == "window1_qos1" {
        let mut b = broker_with(1, QoS::AtLeastOnce);
        let payload = payload();
        let mut wire = BytesMut::with_capacity(512);
        for i in 0..n {
            let pid = (i % usize::from(u16::MAX)) as u16 + 1;
            if !window1(&mut b, pid, black_box(&payload), &mut wire) {
                return Err("a message was not delivered and acknowledged".into());
            }
        }
        return Ok(());
    }
    Err(format!("unknown workload {workload}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workload, n] = args.as_slice() else {
        eprintln!(
            "usage: state_ops WORKLOAD N (client_qos0, client_qos1, fanout_SUBSCRIBERS, window1_qos1)"
        );
        return ExitCode::from(2);
    };
    let Ok(n) = n.parse() else {
        eprintln!("N must be a number, got {n}");
        return ExitCode::from(2);
    };
    match run(workload, n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{workload}: {e}");
            ExitCode::FAILURE
        }
    }
}
