//! Borrowed decoding allocates nothing: a counting global allocator watches `decode` of
//! each of the 14 packet types, and the reading of every field of the result.
//!
//! The count is kept per thread, so the test harness's own threads do not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use mqtt_sansio::{
    Binary, ConnAck, Connect, Login, MqttString, Packet, PacketId, PacketType, Publish, QoS,
    QosPid, Status, SubAck, SubAckCode, Subscribe, TopicFilter, TopicName, Unsubscribe, Will,
    decode, decode_frame,
};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the only addition
// is a thread-local counter that needs no allocation itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn id(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

/// One packet of each type, with every optional field present.
fn one_of_each() -> Vec<Packet<Bytes>> {
    let connect = Connect {
        client_id: MqttString::from_static("client-1").unwrap(),
        clean_session: true,
        keep_alive: 60,
        will: Some(Will {
            topic: TopicName::from_static("wills/client-1").unwrap(),
            message: Binary::new(Bytes::from_static(b"gone")).unwrap(),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        login: Some(Login {
            username: MqttString::from_static("user").unwrap(),
            password: Some(Binary::new(Bytes::from_static(b"secret")).unwrap()),
        }),
    };
    let filters = [
        (TopicFilter::from_static("a/+/c").unwrap(), QoS::ExactlyOnce),
        (
            TopicFilter::from_static("sensors/#").unwrap(),
            QoS::AtMostOnce,
        ),
    ];
    let names: Vec<TopicFilter<Bytes>> = filters.iter().map(|(f, _)| f.clone()).collect();
    vec![
        Packet::Connect(connect),
        Packet::ConnAck(ConnAck::Accepted {
            session_present: true,
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: QosPid::ExactlyOnce(id(7)),
            retain: true,
            topic: TopicName::from_static("sensors/t1").unwrap(),
            payload: Bytes::from(vec![0x5A; 300]),
        }),
        Packet::PubAck(id(1)),
        Packet::PubRec(id(2)),
        Packet::PubRel(id(3)),
        Packet::PubComp(id(4)),
        Packet::Subscribe(Subscribe::new(id(5), &filters).unwrap()),
        Packet::SubAck(
            SubAck::new(
                id(5),
                [SubAckCode::Granted(QoS::ExactlyOnce), SubAckCode::Failure],
            )
            .unwrap(),
        ),
        Packet::Unsubscribe(Unsubscribe::new(id(6), &names).unwrap()),
        Packet::UnsubAck(id(6)),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect,
    ]
}

/// Reads every field of a decoded packet, returning a value that depends on all of
/// them so that the reads cannot be skipped.
fn touch(p: &Packet<&[u8]>) -> usize {
    match p {
        Packet::Connect(c) => {
            let mut n = c.client_id.as_str().len() + usize::from(c.keep_alive);
            if let Some(w) = &c.will {
                n += w.topic.as_str().len() + w.message.len() + w.qos.as_u8() as usize;
            }
            if let Some(l) = &c.login {
                n += l.username.as_str().len() + l.password.as_ref().map_or(0, |p| p.len());
            }
            n
        }
        Packet::ConnAck(a) => a.code() as usize,
        Packet::Publish(p) => p.topic.as_str().len() + p.payload.len(),
        Packet::Subscribe(s) => s
            .filters()
            .map(|(f, q)| f.as_str().len() + q.as_u8() as usize)
            .sum(),
        Packet::SubAck(s) => s.codes().map(|c| c.as_u8() as usize).sum(),
        Packet::Unsubscribe(s) => s.filters().map(|f| f.as_str().len()).sum(),
        Packet::PubAck(id)
        | Packet::PubRec(id)
        | Packet::PubRel(id)
        | Packet::PubComp(id)
        | Packet::UnsubAck(id) => id.get() as usize,
        Packet::PingReq | Packet::PingResp | Packet::Disconnect => 1,
    }
}

#[test]
fn borrowed_decoding_of_every_packet_type_allocates_nothing() {
    let encoded: Vec<(PacketType, Bytes)> = one_of_each()
        .iter()
        .map(|p| (p.packet_type(), p.to_bytes().unwrap()))
        .collect();
    assert_eq!(encoded.len(), 14);

    for (t, bytes) in &encoded {
        let before = allocations();
        let result = decode(bytes);
        let read = match &result {
            Ok(Status::Complete(p, n)) if *n == bytes.len() && p.packet_type() == *t => touch(p),
            _ => usize::MAX,
        };
        let during = allocations() - before;
        assert_ne!(read, usize::MAX, "{t:?} did not decode: {result:?}");
        assert_eq!(
            during,
            0,
            "decoding a {} allocated {during} times",
            t.name()
        );
    }
}

/// Frames from a stream reader's buffer, holding all 14 packet types back to back and
/// already split once (which shares its storage: the one allocation `bytes` makes per
/// buffer), allocate nothing: a frame is one reference count.
#[test]
fn frame_decoding_from_a_reader_buffer_allocates_nothing() {
    let packets = one_of_each();
    let mut buf = BytesMut::new();
    for p in &packets {
        p.encode(&mut buf).unwrap();
    }
    // The first split of a buffer shares its storage (the allocation); do it here.
    drop(buf.split_to(0));
    let mut frames = Vec::with_capacity(packets.len());
    for p in &packets {
        let before = allocations();
        let result = decode_frame(&mut buf);
        let read = match &result {
            Ok(Status::Complete(f, _)) if f.packet_type() == p.packet_type() => touch(&f.packet()),
            _ => usize::MAX,
        };
        let during = allocations() - before;
        assert_ne!(
            read,
            usize::MAX,
            "{:?} did not decode: {result:?}",
            p.packet_type()
        );
        assert_eq!(
            during,
            0,
            "a {} frame allocated {during} times",
            p.packet_type().name()
        );
        frames.push(result);
    }
    assert!(buf.is_empty());
}

#[test]
fn the_counting_allocator_sees_an_allocation() {
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 16]);
    assert!(allocations() > before, "the allocator did not count {v:?}");
}
