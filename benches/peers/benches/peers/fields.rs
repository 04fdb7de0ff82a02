//! What each crate decodes, seen through one crate-neutral type, and the check that
//! every crate decodes every workload to the same fields and encodes it back to the same
//! bytes before anything is timed.

use bytes::{Bytes, BytesMut};
use mqtt::packet::VariablePacket as MpPacket;
use mqtt::{Decodable, Encodable};
use mqttrs::Packet as RsPacket;
use ntex_codec::{Decoder as _, Encoder as _};
use ntex_mqtt::v3::codec as nx;
use rumqttc::mqttbytes::v4::Packet as RuPacket;

use super::workloads;

/// A crate-neutral view of the fields of the packets the workloads hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fields {
    Connect {
        client_id: String,
        keep_alive: u16,
        clean_session: bool,
        will: Option<(String, Vec<u8>, u8, bool)>,
        username: Option<String>,
        password: Option<Vec<u8>>,
    },
    Publish {
        dup: bool,
        qos: u8,
        retain: bool,
        packet_id: Option<u16>,
        topic: String,
        payload: Vec<u8>,
    },
    PubAck(u16),
    Subscribe(u16, Vec<(String, u8)>),
    SubAck(u16, Vec<u8>),
    Unsubscribe(u16, Vec<String>),
    PingReq,
}

/// What the workload `name` was built from.
pub(crate) fn expected(name: &str) -> Fields {
    use workloads::*;
    let publish = |qos: u8, n: usize| Fields::Publish {
        dup: false,
        qos,
        retain: false,
        packet_id: (qos > 0).then_some(PUBLISH_ID),
        topic: TOPIC.into(),
        payload: payload(n),
    };
    match name {
        "connect" => Fields::Connect {
            client_id: CLIENT_ID.into(),
            keep_alive: KEEP_ALIVE,
            clean_session: true,
            will: Some((WILL_TOPIC.into(), WILL_MESSAGE.to_vec(), WILL_QOS, true)),
            username: Some(USERNAME.into()),
            password: Some(PASSWORD.as_bytes().to_vec()),
        },
        "publish_qos0_16B" => publish(0, 16),
        "publish_qos0_1KiB" => publish(0, 1024),
        "publish_qos0_64KiB" => publish(0, 64 * 1024),
        "publish_qos1_1KiB" => publish(1, 1024),
        "puback" => Fields::PubAck(PUBLISH_ID),
        "subscribe_10" => Fields::Subscribe(
            SUBSCRIBE_ID,
            SUBSCRIBE_FILTERS
                .iter()
                .map(|&(f, q)| (f.into(), q))
                .collect(),
        ),
        "suback_10" => Fields::SubAck(SUBSCRIBE_ID, SUBACK_CODES.to_vec()),
        "unsubscribe_3" => Fields::Unsubscribe(
            UNSUBSCRIBE_ID,
            UNSUBSCRIBE_FILTERS.iter().map(|&f| f.into()).collect(),
        ),
        "pingreq" => Fields::PingReq,
        other => panic!("no expectation for {other}"),
    }
}

pub(crate) fn ours<B: AsRef<[u8]> + std::fmt::Debug>(p: &mqtt_sansio::Packet<B>) -> Fields {
    use mqtt_sansio::{Packet, SubAckCode};
    match p {
        Packet::Connect(c) => Fields::Connect {
            client_id: c.client_id.as_str().into(),
            keep_alive: c.keep_alive,
            clean_session: c.clean_session,
            will: c.will.as_ref().map(|w| {
                (
                    w.topic.as_str().into(),
                    w.message.as_bytes().to_vec(),
                    w.qos.as_u8(),
                    w.retain,
                )
            }),
            username: c.login.as_ref().map(|l| l.username.as_str().into()),
            password: c
                .login
                .as_ref()
                .and_then(|l| l.password.as_ref())
                .map(|p| p.as_bytes().to_vec()),
        },
        Packet::Publish(p) => Fields::Publish {
            dup: p.dup,
            qos: p.qos.qos().as_u8(),
            retain: p.retain,
            packet_id: p.qos.packet_id().map(|id| id.get()),
            topic: p.topic.as_str().into(),
            payload: p.payload.as_ref().to_vec(),
        },
        Packet::PubAck(id) => Fields::PubAck(id.get()),
        Packet::Subscribe(s) => Fields::Subscribe(
            s.packet_id.get(),
            s.filters()
                .map(|(f, q)| (f.as_str().into(), q.as_u8()))
                .collect(),
        ),
        Packet::SubAck(s) => Fields::SubAck(
            s.packet_id.get(),
            s.codes().map(SubAckCode::as_u8).collect(),
        ),
        Packet::Unsubscribe(u) => Fields::Unsubscribe(
            u.packet_id.get(),
            u.filters().map(|f| f.as_str().into()).collect(),
        ),
        Packet::PingReq => Fields::PingReq,
        other => panic!("not in the workloads: {other:?}"),
    }
}

pub(crate) fn rumqttc_fields(p: &RuPacket) -> Fields {
    use rumqttc::mqttbytes::v4::SubscribeReasonCode;
    match p {
        RuPacket::Connect(c) => Fields::Connect {
            client_id: c.client_id.clone(),
            keep_alive: c.keep_alive,
            clean_session: c.clean_session,
            will: c
                .last_will
                .as_ref()
                .map(|w| (w.topic.clone(), w.message.to_vec(), w.qos as u8, w.retain)),
            username: c.login.as_ref().map(|l| l.username.clone()),
            password: c.login.as_ref().map(|l| l.password.as_bytes().to_vec()),
        },
        RuPacket::Publish(p) => Fields::Publish {
            dup: p.dup,
            qos: p.qos as u8,
            retain: p.retain,
            packet_id: (p.qos as u8 > 0).then_some(p.pkid),
            topic: p.topic.clone(),
            payload: p.payload.to_vec(),
        },
        RuPacket::PubAck(a) => Fields::PubAck(a.pkid),
        RuPacket::Subscribe(s) => Fields::Subscribe(
            s.pkid,
            s.filters
                .iter()
                .map(|f| (f.path.clone(), f.qos as u8))
                .collect(),
        ),
        RuPacket::SubAck(s) => Fields::SubAck(
            s.pkid,
            s.return_codes
                .iter()
                .map(|c| match c {
                    SubscribeReasonCode::Success(q) => *q as u8,
                    SubscribeReasonCode::Failure => 0x80,
                })
                .collect(),
        ),
        RuPacket::Unsubscribe(u) => Fields::Unsubscribe(u.pkid, u.topics.clone()),
        RuPacket::PingReq => Fields::PingReq,
        other => panic!("not in the workloads: {other:?}"),
    }
}

pub(crate) fn mqttrs_qos(q: mqttrs::QoS) -> u8 {
    match q {
        mqttrs::QoS::AtMostOnce => 0,
        mqttrs::QoS::AtLeastOnce => 1,
        mqttrs::QoS::ExactlyOnce => 2,
    }
}

pub(crate) fn mqttrs_fields(p: &RsPacket<'_>) -> Fields {
    use mqttrs::{QosPid, SubscribeReturnCodes};
    match p {
        RsPacket::Connect(c) => Fields::Connect {
            client_id: c.client_id.into(),
            keep_alive: c.keep_alive,
            clean_session: c.clean_session,
            will: c.last_will.as_ref().map(|w| {
                (
                    w.topic.into(),
                    w.message.to_vec(),
                    mqttrs_qos(w.qos),
                    w.retain,
                )
            }),
            username: c.username.map(Into::into),
            password: c.password.map(<[u8]>::to_vec),
        },
        RsPacket::Publish(p) => Fields::Publish {
            dup: p.dup,
            qos: mqttrs_qos(p.qospid.qos()),
            retain: p.retain,
            packet_id: match p.qospid {
                QosPid::AtMostOnce => None,
                QosPid::AtLeastOnce(id) | QosPid::ExactlyOnce(id) => Some(id.get()),
            },
            topic: p.topic_name.into(),
            payload: p.payload.to_vec(),
        },
        RsPacket::Puback(id) => Fields::PubAck(id.get()),
        RsPacket::Subscribe(s) => Fields::Subscribe(
            s.pid.get(),
            s.topics
                .iter()
                .map(|t| (t.topic_path.clone(), mqttrs_qos(t.qos)))
                .collect(),
        ),
        RsPacket::Suback(s) => Fields::SubAck(
            s.pid.get(),
            s.return_codes
                .iter()
                .map(|c| match c {
                    SubscribeReturnCodes::Success(q) => mqttrs_qos(*q),
                    SubscribeReturnCodes::Failure => 0x80,
                })
                .collect(),
        ),
        RsPacket::Unsubscribe(u) => Fields::Unsubscribe(u.pid.get(), u.topics.clone()),
        RsPacket::Pingreq => Fields::PingReq,
        other => panic!("not in the workloads: {other:?}"),
    }
}

pub(crate) fn mqtt_protocol_fields(p: &MpPacket) -> Fields {
    use mqtt::packet::QoSWithPacketIdentifier as Q;
    match p {
        MpPacket::ConnectPacket(c) => Fields::Connect {
            client_id: c.client_identifier().into(),
            keep_alive: c.keep_alive(),
            clean_session: c.clean_session(),
            will: c
                .will()
                .map(|(t, m)| (t.into(), m.to_vec(), c.will_qos(), c.will_retain())),
            username: c.user_name().map(Into::into),
            password: c.password().map(|p| p.as_bytes().to_vec()),
        },
        MpPacket::PublishPacket(p) => {
            let (qos, packet_id) = match p.qos() {
                Q::Level0 => (0, None),
                Q::Level1(id) => (1, Some(id)),
                Q::Level2(id) => (2, Some(id)),
            };
            Fields::Publish {
                dup: p.dup(),
                qos,
                retain: p.retain(),
                packet_id,
                topic: p.topic_name().into(),
                payload: p.payload().to_vec(),
            }
        }
        MpPacket::PubackPacket(a) => Fields::PubAck(a.packet_identifier()),
        MpPacket::SubscribePacket(s) => Fields::Subscribe(
            s.packet_identifier(),
            s.subscribes()
                .iter()
                .map(|(f, q)| (f.to_string(), *q as u8))
                .collect(),
        ),
        MpPacket::SubackPacket(s) => Fields::SubAck(
            s.packet_identifier(),
            s.subscribes().iter().map(|&c| c as u8).collect(),
        ),
        MpPacket::UnsubscribePacket(u) => Fields::Unsubscribe(
            u.packet_identifier(),
            u.subscribes().iter().map(|f| f.to_string()).collect(),
        ),
        MpPacket::PingreqPacket(_) => Fields::PingReq,
        other => panic!("not in the workloads: {other:?}"),
    }
}

fn ntex_qos(q: nx::QoS) -> u8 {
    q as u8
}

/// One packet decoded by ntex-mqtt: the packet, or a PUBLISH with its payload.
pub(crate) enum NtexPacket {
    Packet(nx::Packet),
    Publish(nx::Publish, ntex_bytes::Bytes),
}

pub(crate) fn ntex_fields(p: &NtexPacket) -> Fields {
    match p {
        NtexPacket::Publish(p, payload) => Fields::Publish {
            dup: p.dup,
            qos: ntex_qos(p.qos),
            retain: p.retain,
            packet_id: p.packet_id.map(|id| id.get()),
            topic: p.topic.to_string(),
            payload: payload.to_vec(),
        },
        NtexPacket::Packet(nx::Packet::Connect(c)) => Fields::Connect {
            client_id: c.client_id.to_string(),
            keep_alive: c.keep_alive,
            clean_session: c.clean_session,
            will: c.last_will.as_ref().map(|w| {
                (
                    w.topic.to_string(),
                    w.message.to_vec(),
                    ntex_qos(w.qos),
                    w.retain,
                )
            }),
            username: c.username.as_ref().map(|u| u.to_string()),
            password: c.password.as_ref().map(|p| p.to_vec()),
        },
        NtexPacket::Packet(nx::Packet::PublishAck { packet_id }) => Fields::PubAck(packet_id.get()),
        NtexPacket::Packet(nx::Packet::Subscribe {
            packet_id,
            topic_filters,
        }) => Fields::Subscribe(
            packet_id.get(),
            topic_filters
                .iter()
                .map(|(f, q)| (f.to_string(), ntex_qos(*q)))
                .collect(),
        ),
        NtexPacket::Packet(nx::Packet::SubscribeAck { packet_id, status }) => Fields::SubAck(
            packet_id.get(),
            status
                .iter()
                .map(|c| match c {
                    nx::SubscribeReturnCode::Success(q) => ntex_qos(*q),
                    nx::SubscribeReturnCode::Failure => 0x80,
                })
                .collect(),
        ),
        NtexPacket::Packet(nx::Packet::Unsubscribe {
            packet_id,
            topic_filters,
        }) => Fields::Unsubscribe(
            packet_id.get(),
            topic_filters.iter().map(|f| f.to_string()).collect(),
        ),
        NtexPacket::Packet(nx::Packet::PingRequest) => Fields::PingReq,
        NtexPacket::Packet(other) => panic!("not in the workloads: {other:?}"),
    }
}

/// ntex-mqtt's decoder on one packet at the front of `buf` (its codec keeps a state
/// between calls, back at the start once a whole packet is out).
pub(crate) fn ntex_decode(codec: &nx::Codec, buf: &mut ntex_bytes::BytesMut) -> NtexPacket {
    match codec.decode(buf) {
        Ok(Some(nx::Decoded::Packet(p, _))) => NtexPacket::Packet(p),
        Ok(Some(nx::Decoded::Publish(p, payload, _))) => NtexPacket::Publish(p, payload),
        other => panic!("ntex-mqtt: {other:?}"),
    }
}

/// What ntex-mqtt's encoder takes for `p`: a PUBLISH with its payload as a chunk.
pub(crate) fn ntex_encoded(p: NtexPacket) -> nx::Encoded {
    match p {
        NtexPacket::Packet(p) => nx::Encoded::Packet(p),
        NtexPacket::Publish(p, payload) => nx::Encoded::Publish(p, Some(payload)),
    }
}

/// `bytes` in an ntex `BytesMut` whose storage is already shared, as
/// `workloads::reader_buf` makes for `bytes::BytesMut`.
pub(crate) fn ntex_reader_buf(bytes: &[u8]) -> ntex_bytes::BytesMut {
    let mut buf = ntex_bytes::BytesMut::with_capacity(bytes.len() + 1);
    buf.extend_from_slice(&[0]);
    buf.extend_from_slice(bytes);
    drop(buf.split_to(1));
    buf
}

/// Everything an ntex `BytePages` holds, in order (taking it out, as a writer does).
pub(crate) fn ntex_take_all(pages: &mut ntex_bytes::BytePages) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = pages.take() {
        out.extend_from_slice(&p);
    }
    out
}

// One packet through each crate's decoder. Each returns the packet and the bytes used.

pub(crate) fn ours_decode(buf: &[u8]) -> (mqtt_sansio::Packet<&[u8]>, usize) {
    match mqtt_sansio::decode(buf) {
        Ok(mqtt_sansio::Status::Complete(p, n)) => (p, n),
        other => panic!("mqtt-sansio: {other:?}"),
    }
}

pub(crate) fn ours_decode_bytes(buf: &mut BytesMut) -> mqtt_sansio::Packet<Bytes> {
    match mqtt_sansio::decode_bytes(buf) {
        Ok(mqtt_sansio::Status::Complete(p, _)) => p,
        other => panic!("mqtt-sansio: {other:?}"),
    }
}

pub(crate) fn ours_decode_frame(buf: &mut BytesMut) -> mqtt_sansio::Frame {
    match mqtt_sansio::decode_frame(buf) {
        Ok(mqtt_sansio::Status::Complete(f, _)) => f,
        other => panic!("mqtt-sansio: {other:?}"),
    }
}

pub(crate) fn rumqttc_decode(buf: &mut BytesMut) -> RuPacket {
    RuPacket::read(buf, usize::MAX).expect("rumqttc decodes the workload")
}

pub(crate) fn mqttrs_decode(buf: &[u8]) -> RsPacket<'_> {
    mqttrs::decode_slice(buf)
        .expect("mqttrs decodes the workload")
        .expect("mqttrs: whole packet")
}

pub(crate) fn mqtt_protocol_decode(r: &mut &[u8]) -> MpPacket {
    MpPacket::decode(r).expect("mqtt-protocol decodes the workload")
}

/// The size of the packet at the front of `buf`. mqttrs's `decode_slice` does not say
/// how many bytes it used, so a stream reader on top of it has to work this out.
pub(crate) fn frame_len(buf: &[u8]) -> usize {
    let mut len = 0usize;
    for (i, &b) in buf[1..].iter().take(4).enumerate() {
        len |= ((b & 0x7F) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return 2 + i + len;
        }
    }
    panic!("bad remaining length")
}

/// Every crate decodes `bytes` (one or many packets) to the same fields, and encodes
/// each packet back to the same bytes. Returns the fields.
pub(crate) fn verify(name: &str, bytes: &[u8]) -> Vec<Fields> {
    let mut want = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (p, n) = ours_decode(rest);
        want.push(ours(&p));
        assert_eq!(
            &p.to_owned().to_bytes().unwrap()[..],
            &rest[..n],
            "mqtt-sansio re-encodes {name}"
        );
        rest = &rest[n..];
    }

    let mut buf = BytesMut::from(bytes);
    let mut got = Vec::new();
    while !buf.is_empty() {
        got.push(ours(&ours_decode_bytes(&mut buf)));
    }
    assert_eq!(got, want, "mqtt-sansio decode_bytes on {name}");

    let mut buf = BytesMut::from(bytes);
    let mut got = Vec::new();
    while !buf.is_empty() {
        got.push(ours(&ours_decode_frame(&mut buf).packet()));
    }
    assert_eq!(got, want, "mqtt-sansio decode_frame on {name}");

    let mut buf = BytesMut::from(bytes);
    let mut got = Vec::new();
    let mut out = BytesMut::new();
    while !buf.is_empty() {
        let p = rumqttc_decode(&mut buf);
        got.push(rumqttc_fields(&p));
        p.write(&mut out, usize::MAX).unwrap();
    }
    assert_eq!(got, want, "rumqttc on {name}");
    assert_eq!(&out[..], bytes, "rumqttc re-encodes {name}");

    let mut rest = bytes;
    let mut got = Vec::new();
    let mut out = vec![0u8; bytes.len()];
    let mut at = 0;
    while !rest.is_empty() {
        let p = mqttrs_decode(rest);
        got.push(mqttrs_fields(&p));
        at += mqttrs::encode_slice(&p, &mut out[at..]).unwrap();
        rest = &rest[frame_len(rest)..];
    }
    assert_eq!(got, want, "mqttrs on {name}");
    assert_eq!(&out[..at], bytes, "mqttrs re-encodes {name}");

    let mut rest = bytes;
    let mut got = Vec::new();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let p = mqtt_protocol_decode(&mut rest);
        got.push(mqtt_protocol_fields(&p));
        p.encode(&mut out).unwrap();
    }
    assert_eq!(got, want, "mqtt-protocol on {name}");
    assert_eq!(&out[..], bytes, "mqtt-protocol re-encodes {name}");

    let codec = nx::Codec::new();
    let mut buf = ntex_bytes::BytesMut::copy_from_slice(bytes);
    let mut got = Vec::new();
    let mut pages = ntex_bytes::BytePages::default();
    while !buf.is_empty() {
        let p = ntex_decode(&codec, &mut buf);
        got.push(ntex_fields(&p));
        codec.encodev(ntex_encoded(p), &mut pages).unwrap();
    }
    assert_eq!(got, want, "ntex-mqtt on {name}");
    assert_eq!(
        ntex_take_all(&mut pages),
        bytes,
        "ntex-mqtt re-encodes {name}"
    );
    want
}
