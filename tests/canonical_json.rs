//! The canonical JSON form round-trips every packet type.

mod support;

use bytes::BytesMut;
use mqtt_sansio::{Packet, Status, decode_bytes};
use support::canonical::{from_hex, packet_from_json, packet_to_json, to_hex};

#[test]
fn canonical_json_round_trips_one_packet_of_each_type() {
    let hexes = [
        "101d00044d51545404c6000a0003636c690001740002686900017500027077", // CONNECT
        "20020100",                                                       // CONNACK
        "3d0a00036132620007ff00ff",                                       // PUBLISH QoS2 dup retain
        "40020001",
        "50020002",
        "62020003",
        "70020004",
        "820e000a0003612f62010003632f6402", // SUBSCRIBE from the spec's example
        "9005000a000280",                   // SUBACK
        "a2050005000161",
        "b0020006",
        "c000",
        "d000",
        "e000",
    ];
    for h in hexes {
        let bytes = from_hex(h).unwrap();
        let mut buf = BytesMut::from(&bytes[..]);
        let p = match decode_bytes(&mut buf) {
            Ok(Status::Complete(p, n)) => {
                assert_eq!(n, bytes.len(), "{h}");
                p
            }
            other => panic!("{h}: {other:?}"),
        };
        let j = packet_to_json(&p);
        let back: Packet<bytes::Bytes> = packet_from_json(&j).unwrap();
        assert_eq!(back, p, "{h} via {j}");
        assert_eq!(to_hex(&back.to_bytes().unwrap()), h, "{j}");
    }
}
