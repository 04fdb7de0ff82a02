//! Property tests of the codec: round trips, streams split anywhere, prefixes, final
//! errors, size limits and zero-copy decoding, over generated packets of all 14 types.

use bytes::{Bytes, BytesMut};
use mqtt_sansio::{
    Binary, ConnAck, Connect, ConnectReturnCode, DecodeError, Decoder, Login, MqttString, Packet,
    PacketId, PacketType, Publish, QoS, QosPid, Status, SubAck, SubAckCode, Subscribe, TopicFilter,
    TopicName, Unsubscribe, Will, decode, decode_bytes, decode_frame,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

const CASES: u32 = 256;

// ---- strategies -------------------------------------------------------------------

fn text() -> impl Strategy<Value = MqttString<Bytes>> {
    "[^\u{0}]{0,12}".prop_map(|s| MqttString::try_from(s.as_str()).unwrap())
}

fn topic_name() -> impl Strategy<Value = TopicName<Bytes>> {
    "[^\u{0}+#]{1,12}".prop_map(|s| TopicName::try_from(s.as_str()).unwrap())
}

fn topic_filter() -> impl Strategy<Value = TopicFilter<Bytes>> {
    let level = prop_oneof![
        3 => "[^\u{0}+#/]{0,6}".prop_map(String::from),
        1 => Just("+".to_string()),
    ];
    (vec(level, 1..5), any::<bool>()).prop_map(|(mut levels, hash)| {
        if hash {
            levels.push("#".into());
        }
        let mut s = levels.join("/");
        if s.is_empty() {
            s.push('+');
        }
        TopicFilter::try_from(s.as_str()).unwrap()
    })
}

fn binary() -> impl Strategy<Value = Binary<Bytes>> {
    vec(any::<u8>(), 0..24).prop_map(|b| Binary::new(Bytes::from(b)).unwrap())
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|v| PacketId::new(v).unwrap())
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

/// Payloads short, and long enough to cross the 127 and 16 383 Remaining Length
/// boundaries.
fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..48).prop_map(Bytes::from),
        1 => (100usize..140).prop_map(|n| Bytes::from(vec![0xA5; n])),
        1 => (16_350usize..16_400).prop_map(|n| Bytes::from(vec![0x5A; n])),
    ]
}

fn connect() -> impl Strategy<Value = Connect<Bytes>> {
    let will =
        (topic_name(), binary(), qos(), any::<bool>()).prop_map(|(topic, message, qos, retain)| {
            Will {
                topic,
                message,
                qos,
                retain,
            }
        });
    let login = (text(), option::of(binary()))
        .prop_map(|(username, password)| Login { username, password });
    (
        text(),
        any::<bool>(),
        any::<u16>(),
        option::of(will),
        option::of(login),
    )
        .prop_map(
            |(client_id, clean_session, keep_alive, will, login)| Connect {
                client_id,
                clean_session,
                keep_alive,
                will,
                login,
            },
        )
}

fn publish() -> impl Strategy<Value = Publish<Bytes>> {
    (
        qos(),
        packet_id(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        payload(),
    )
        .prop_map(|(q, id, dup, retain, topic, payload)| {
            let qos = QosPid::new(q, id);
            Publish {
                // DUP only at QoS 1 and 2 (MQTT-3.3.1-2).
                dup: dup && qos != QosPid::AtMostOnce,
                qos,
                retain,
                topic,
                payload,
            }
        })
}

fn connack() -> impl Strategy<Value = ConnAck> {
    prop_oneof![
        any::<bool>().prop_map(|session_present| ConnAck::Accepted { session_present }),
        (1u8..=5).prop_map(|c| ConnAck::Refused(ConnectReturnCode::from_u8(c).unwrap())),
    ]
}

fn suback_code() -> impl Strategy<Value = SubAckCode> {
    prop_oneof![
        qos().prop_map(SubAckCode::Granted),
        Just(SubAckCode::Failure)
    ]
}

/// Any of the 14 packets.
fn packet() -> impl Strategy<Value = Packet<Bytes>> {
    prop_oneof![
        connect().prop_map(Packet::Connect),
        connack().prop_map(Packet::ConnAck),
        publish().prop_map(Packet::Publish),
        packet_id().prop_map(Packet::PubAck),
        packet_id().prop_map(Packet::PubRec),
        packet_id().prop_map(Packet::PubRel),
        packet_id().prop_map(Packet::PubComp),
        (packet_id(), vec((topic_filter(), qos()), 1..5))
            .prop_map(|(id, f)| Packet::Subscribe(Subscribe::new(id, &f).unwrap())),
        (packet_id(), vec(suback_code(), 1..5))
            .prop_map(|(id, c)| Packet::SubAck(SubAck::new(id, c).unwrap())),
        (packet_id(), vec(topic_filter(), 1..5))
            .prop_map(|(id, f)| Packet::Unsubscribe(Unsubscribe::new(id, &f).unwrap())),
        packet_id().prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect),
    ]
}

/// The bytes of a valid packet, sometimes with one byte changed: mostly-valid input
/// that reaches deep into the decoder and sometimes fails there.
fn near_valid_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        packet(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(p, at, xor, mutate)| {
            let mut b = p.to_bytes().unwrap().to_vec();
            if mutate {
                let i = at.index(b.len());
                b[i] ^= xor;
            }
            b
        })
}

fn encode(p: &Packet<Bytes>) -> Bytes {
    p.to_bytes().expect("a valid packet encodes")
}

/// The length of the fixed header at the start of `b`.
fn header_len(b: &[u8]) -> usize {
    match Decoder::new().fixed_header(b) {
        Ok(Status::Complete(h, _)) => h.header_len,
        other => panic!("no header: {other:?}"),
    }
}

/// Feeds `chunks` one after another to a buffer, decoding zero-copy after each.
fn decode_chunked<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Packet<Bytes>>, usize) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Status::Complete(p, _) = decode_bytes(&mut buf).expect("valid stream") {
            out.push(p);
        }
    }
    (out, buf.len())
}

// ---- properties -------------------------------------------------------------------

#[test]
fn the_packet_strategy_reaches_all_fourteen_types() {
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..1000 {
        let p = packet().new_tree(&mut runner).unwrap().current();
        seen.insert(p.packet_type());
    }
    assert_eq!(seen.len(), 14, "types reached: {seen:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Encoding in chunks gives the same bytes as encoding whole: the head written to the
    /// buffer followed by the returned payload, which is the packet's own (not a copy)
    /// exactly when it is a PUBLISH payload of at least `min_chunk` bytes.
    #[test]
    fn a_chunked_encoding_is_the_whole_encoding_with_the_payload_left_in_place(
        p in packet(),
        min_chunk in prop_oneof![Just(0usize), 1usize..64, Just(usize::MAX)],
    ) {
        let whole = encode(&p);
        let mut head = vec![0xEE];
        let chunk = p.encode_chunked(&mut head, min_chunk).unwrap();
        prop_assert_eq!(head[0], 0xEE);
        let mut joined = head[1..].to_vec();
        match (&p, chunk) {
            (Packet::Publish(publish), Some(c)) => {
                prop_assert!(publish.payload.len() >= min_chunk);
                prop_assert_eq!(c.as_ptr(), publish.payload.as_ptr());
                joined.extend_from_slice(c);
            }
            (Packet::Publish(publish), None) => prop_assert!(publish.payload.len() < min_chunk),
            (_, c) => prop_assert!(c.is_none()),
        }
        prop_assert_eq!(&joined[..], &whole[..]);
    }

    /// Encode then decode gives the packet back, through all three decode forms, using
    /// exactly `encoded_len` bytes; encoding into a `Vec<u8>` gives the same bytes.
    #[test]
    fn every_packet_survives_encode_then_decode_in_both_forms(p in packet()) {
        let b = encode(&p);
        prop_assert_eq!(b.len(), p.encoded_len());
        // Either kind of buffer gets the same bytes, appended after what it holds.
        let mut v = vec![0xEE];
        p.encode(&mut v).unwrap();
        prop_assert_eq!(&v[1..], &b[..]);
        prop_assert_eq!(v[0], 0xEE);
        match decode(&b) {
            Ok(Status::Complete(q, n)) => {
                prop_assert_eq!(n, b.len());
                prop_assert_eq!(q.to_owned(), p.clone());
            }
            other => prop_assert!(false, "decode gave {:?}", other),
        }
        let mut buf = BytesMut::from(&b[..]);
        prop_assert_eq!(decode_bytes(&mut buf), Ok(Status::Complete(p.clone(), b.len())));
        prop_assert!(buf.is_empty());
        let mut buf = BytesMut::from(&b[..]);
        match decode_frame(&mut buf) {
            Ok(Status::Complete(frame, n)) => {
                prop_assert_eq!(n, b.len());
                prop_assert_eq!(frame.packet().to_owned(), p.clone());
                prop_assert_eq!(frame.into_packet(), p);
            }
            other => prop_assert!(false, "decode_frame gave {:?}", other),
        }
        prop_assert!(buf.is_empty());
    }

    /// Minimal-form input that decodes re-encodes to itself, byte for byte.
    #[test]
    fn decoding_then_encoding_reproduces_minimal_form_input(input in near_valid_bytes()) {
        if let Ok(Status::Complete(p, used)) = decode(&input) {
            // One changed byte may have made the Remaining Length non-minimal.
            let minimal = Packet::<&[u8]>::encoded_len(&p) == used;
            let again = p.to_bytes().unwrap();
            if minimal {
                prop_assert_eq!(&again[..], &input[..used]);
            } else {
                prop_assert_eq!(again[0], input[0]);
            }
        }
    }

    /// §2.2.3: a Remaining Length in a longer-than-needed form still decodes, and the
    /// packet re-encodes in the minimal form.
    #[test]
    fn a_non_minimal_remaining_length_decodes_and_re_encodes_minimally(p in packet(), extra in 1usize..3) {
        let b = encode(&p);
        let h = header_len(&b);
        let rl = b.len() - h;
        // Re-encode the length with `extra` more bytes than needed, up to four.
        let groups = (h - 1 + extra).min(4);
        prop_assume!(groups > h - 1);
        let mut input = vec![b[0]];
        for i in 0..groups {
            let mut byte = ((rl >> (7 * i)) & 0x7F) as u8;
            if i + 1 < groups {
                byte |= 0x80;
            }
            input.push(byte);
        }
        input.extend_from_slice(&b[h..]);
        match decode(&input) {
            Ok(Status::Complete(q, n)) => {
                prop_assert_eq!(n, input.len());
                prop_assert_eq!(q.to_owned(), p);
                prop_assert_eq!(q.to_bytes().unwrap(), b);
            }
            other => prop_assert!(false, "non-minimal form gave {:?}", other),
        }
    }

    /// A stream of packets split into two at any byte decodes to the same packets.
    #[test]
    fn a_stream_split_at_every_byte_boundary_decodes_to_the_same_packets(
        packets in vec(packet(), 2..5),
    ) {
        let mut stream = BytesMut::new();
        for p in &packets {
            p.encode(&mut stream).unwrap();
        }
        // Long payloads make for many split points; step through those.
        let step = stream.len() / 600 + 1;
        for split in (0..=stream.len()).step_by(step) {
            let (a, b) = stream.split_at(split);
            let (got, left) = decode_chunked([a, b]);
            prop_assert_eq!(&got, &packets, "split at {}", split);
            prop_assert_eq!(left, 0);
        }
    }

    /// The same stream fed in random chunks decodes to the same packets.
    #[test]
    fn a_stream_in_random_chunks_decodes_to_the_same_packets(
        packets in vec(packet(), 1..6),
        sizes in vec(1usize..40, 1..64),
    ) {
        let mut stream = BytesMut::new();
        for p in &packets {
            p.encode(&mut stream).unwrap();
        }
        let mut chunks = Vec::new();
        let mut rest = &stream[..];
        for &n in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at(n.min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        let (got, left) = decode_chunked(chunks);
        prop_assert_eq!(got, packets);
        prop_assert_eq!(left, 0);
    }

    /// Every strict prefix of a packet is Incomplete, never claiming more than the
    /// missing bytes, and exactly the missing bytes once the fixed header is whole.
    #[test]
    fn every_strict_prefix_is_incomplete_by_at_most_the_missing_bytes(p in packet()) {
        let b = encode(&p);
        let h = header_len(&b);
        let step = b.len() / 600 + 1;
        for k in (0..b.len()).step_by(step) {
            match decode(&b[..k]) {
                Ok(Status::Incomplete(n)) => {
                    prop_assert!(n >= 1 && k + n <= b.len(), "Incomplete({}) at {}", n, k);
                    if k >= h {
                        prop_assert_eq!(k + n, b.len());
                    }
                }
                other => prop_assert!(false, "prefix {} gave {:?}", k, other),
            }
            let mut buf = BytesMut::from(&b[..k]);
            prop_assert!(matches!(decode_bytes(&mut buf), Ok(Status::Incomplete(_))));
            prop_assert_eq!(buf.len(), k);
        }
    }

    /// An error is final: whatever bytes follow, the same input gives the same error,
    /// and no prefix of it decodes to a packet.
    #[test]
    fn an_error_stays_the_same_whatever_bytes_follow(
        input in prop_oneof![near_valid_bytes(), vec(any::<u8>(), 0..32)],
        tail in vec(any::<u8>(), 0..32),
    ) {
        if let Err(e) = decode(&input) {
            let mut longer = input.clone();
            longer.extend_from_slice(&tail);
            prop_assert_eq!(decode(&longer), Err(e));
            let mut buf = BytesMut::from(&longer[..]);
            prop_assert_eq!(decode_bytes(&mut buf), Err(e));
            prop_assert_eq!(&buf[..], &longer[..]);
            for k in 0..input.len() {
                prop_assert!(!matches!(decode(&input[..k]), Ok(Status::Complete(..))));
            }
        }
    }

    /// A decoder with a size limit refuses a bigger packet as soon as the fixed header
    /// is read, and accepts a packet exactly at the limit.
    #[test]
    fn a_size_limit_refuses_a_bigger_packet_from_its_header_alone(p in packet(), under in 1usize..8) {
        let b = encode(&p);
        let h = header_len(&b);
        let tight = Decoder::new().with_max_packet_size(b.len().saturating_sub(under));
        prop_assert_eq!(tight.decode(&b[..h]), Err(DecodeError::PacketTooLarge));
        prop_assert_eq!(tight.decode(&b).err(), Some(DecodeError::PacketTooLarge));
        let mut buf = BytesMut::from(&b[..]);
        prop_assert_eq!(tight.decode_bytes(&mut buf).err(), Some(DecodeError::PacketTooLarge));
        prop_assert_eq!(buf.len(), b.len());
        let exact = Decoder::new().with_max_packet_size(b.len());
        prop_assert!(matches!(exact.decode(&b), Ok(Status::Complete(_, n)) if n == b.len()));
    }

    /// Zero-copy decoding hands out a payload and topic that point into the input
    /// buffer, even after other packets in front of it were decoded.
    #[test]
    fn the_zero_copy_payload_points_into_the_input_buffer(
        before in vec(packet(), 0..3),
        p in publish(),
    ) {
        let mut buf = BytesMut::new();
        for q in &before {
            q.encode(&mut buf).unwrap();
        }
        Packet::from(p.clone()).encode(&mut buf).unwrap();
        let start = buf.as_ptr() as usize;
        let end = start + buf.len();
        for _ in &before {
            prop_assert!(matches!(decode_bytes(&mut buf), Ok(Status::Complete(..))));
        }
        match decode_bytes(&mut buf) {
            Ok(Status::Complete(Packet::Publish(q), _)) => {
                let fields = [q.payload.as_ref(), q.topic.as_bytes()];
                for field in fields.iter().filter(|f| !f.is_empty()) {
                    let at = field.as_ptr() as usize;
                    prop_assert!(start <= at && at + field.len() <= end, "field copied out of the buffer");
                }
                prop_assert_eq!(q, p);
            }
            other => prop_assert!(false, "gave {:?}", other),
        }
    }
}

/// §2.2.3: packets whose Remaining Length sits on each side of the 1/2/3/4-byte
/// boundaries round-trip, with the expected header length.
#[test]
fn publishes_at_the_remaining_length_boundaries_round_trip() {
    let topic = TopicName::from_static("t").unwrap();
    // Remaining Length = 2 (topic length) + 1 (topic) + payload.
    for (rl, header) in [
        (127, 2),
        (128, 3),
        (16_383, 3),
        (16_384, 4),
        (2_097_151, 4),
        (2_097_152, 5),
    ] {
        let payload = Bytes::from(vec![0x42; rl - 3]);
        let p = Packet::from(Publish::new(topic.clone(), QosPid::AtMostOnce, payload));
        let b = encode(&p);
        assert_eq!(b.len(), header + rl, "remaining length {rl}");
        assert_eq!(header_len(&b), header);
        match decode(&b) {
            Ok(Status::Complete(q, n)) => {
                assert_eq!(n, b.len());
                assert_eq!(q.to_owned(), p);
            }
            other => panic!("remaining length {rl} gave {other:?}"),
        }
    }
}

/// §2.2.3: the largest packet 3.1.1 can express is announced by its header; the default
/// decoder waits for it, a limited one refuses it from the five header bytes.
#[test]
fn the_largest_announced_packet_is_refused_by_a_limit_from_five_bytes() {
    let header = [0x30, 0xFF, 0xFF, 0xFF, 0x7F];
    assert_eq!(decode(&header), Ok(Status::Incomplete(268_435_455)));
    let limited = Decoder::new().with_max_packet_size(1 << 20);
    assert_eq!(limited.decode(&header), Err(DecodeError::PacketTooLarge));
    assert_eq!(
        PacketType::from_u8(header[0] >> 4),
        Some(PacketType::Publish)
    );
}
