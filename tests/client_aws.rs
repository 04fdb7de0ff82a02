//! Scenario tests of the client under the AWS IoT Core profile, in simulated time:
//! AWS's limits as typed errors, commands held until CONNACK, the clamped keep-alive.

use bytes::Bytes;
use mqtt_sansio::client::{ClientConfig, ClientError};
use mqtt_sansio::{
    Binary, ConnAck, Instant, Packet, PacketId, Profile, QoS, QosPid, TopicFilter, Will,
};

mod support;

use support::client_sim::*;

#[test]
fn aws_refuses_qos2_publish_subscribe_and_will_with_a_typed_error() {
    let mut sim = Sim::new(Profile::aws_iot_core());
    let mut c = connect_packet("c", true, 30);
    c.will = Some(Will {
        topic: topic("w"),
        message: Binary::new(Bytes::new()).unwrap(),
        qos: QoS::ExactlyOnce,
        retain: false,
    });
    assert_eq!(
        sim.client.connect(sim.now, c),
        Err(ClientError::Qos2NotSupported)
    );
    sim.connected(true, 30, false);
    assert_eq!(
        sim.client
            .publish(sim.now, topic("t"), QoS::ExactlyOnce, false, ""),
        Err(ClientError::Qos2NotSupported)
    );
    assert_eq!(
        sim.client
            .subscribe(sim.now, &[(filter("t"), QoS::ExactlyOnce)]),
        Err(ClientError::Qos2NotSupported)
    );
    assert!(sim.drain().is_empty());
    assert_eq!(sim.client.ids_in_use(), 0);
}

#[test]
fn qos0_publishes_held_before_connack_are_bounded_and_the_bound_ends_with_connack() {
    let profile = Profile::mqtt311();
    let mut config = ClientConfig::for_profile(&profile);
    config.max_held_qos0 = 2;
    let mut sim = Sim::with_config(profile, config);
    sim.client
        .connect(sim.now, connect_packet("c", true, 0))
        .unwrap();
    sim.drain();
    sim.publish("t", QoS::AtMostOnce, "1");
    sim.publish("t", QoS::AtMostOnce, "2");
    assert_eq!(
        sim.client
            .publish(sim.now, topic("t"), QoS::AtMostOnce, false, "3"),
        Err(ClientError::HeldFull { max: 2 })
    );
    assert!(sim.drain().is_empty(), "a refused publish emits nothing");
    // QoS 1 is bounded by the inflight window, not by this.
    let q1 = sim.publish("t", QoS::AtLeastOnce, "4");
    let out = sent(&sim.server(Packet::ConnAck(ConnAck::Accepted {
        session_present: false,
    })));
    assert_eq!(
        out,
        vec![
            incoming(QosPid::AtMostOnce, "t", "1"),
            incoming(QosPid::AtMostOnce, "t", "2"),
            incoming(QosPid::AtLeastOnce(q1.unwrap()), "t", "4"),
        ]
    );
    // Once connected, QoS 0 goes straight out and nothing is held.
    for _ in 0..5 {
        assert_eq!(sim.publish("t", QoS::AtMostOnce, "m"), None);
    }
    assert_eq!(sent(&sim.drain()).len(), 5);
}

#[test]
fn aws_holds_commands_until_connack_and_then_sends_them_in_order() {
    let mut sim = Sim::new(Profile::aws_iot_core());
    sim.client
        .connect(sim.now, connect_packet("c", true, 30))
        .unwrap();
    let s = sim
        .client
        .subscribe(sim.now, &[(filter("a"), QoS::AtLeastOnce)])
        .unwrap();
    let p = sim.publish("t", QoS::AtLeastOnce, "1");
    sim.publish("t", QoS::AtMostOnce, "2");
    let out = sent(&sim.drain());
    assert!(
        matches!(out[..], [Packet::Connect(_)]),
        "only CONNECT before CONNACK"
    );
    let out = sim.server(Packet::ConnAck(ConnAck::Accepted {
        session_present: false,
    }));
    let packets = sent(&out);
    assert!(matches!(&packets[0], Packet::Subscribe(x) if x.packet_id == s));
    assert_eq!(republished(&packets[1]), (false, p.map(PacketId::get)));
    assert_eq!(packets[2], incoming(QosPid::AtMostOnce, "t", "2"));
    assert_eq!(packets.len(), 3);
}

#[test]
fn aws_limits_are_typed_errors() {
    let mut sim = Sim::new(Profile::aws_iot_core());
    let long_id = "i".repeat(129);
    assert_eq!(
        sim.client
            .connect(sim.now, connect_packet(&long_id, true, 30)),
        Err(ClientError::ClientIdTooLong { len: 129, max: 128 })
    );
    sim.connected(true, 30, false);
    let long = "t".repeat(257);
    assert_eq!(
        sim.client
            .publish(sim.now, topic(&long), QoS::AtMostOnce, false, ""),
        Err(ClientError::TopicTooLong { len: 257, max: 256 })
    );
    assert_eq!(
        sim.client.publish(
            sim.now,
            topic("a/b/c/d/e/f/g/h/i"),
            QoS::AtMostOnce,
            false,
            ""
        ),
        Err(ClientError::TooManyTopicLevels { slashes: 8, max: 7 })
    );
    assert_eq!(
        sim.client.publish(
            sim.now,
            topic("t"),
            QoS::AtMostOnce,
            false,
            vec![0u8; 128 * 1024 + 1]
        ),
        Err(ClientError::PayloadTooLarge {
            len: 128 * 1024 + 1,
            max: 128 * 1024
        })
    );
    assert_eq!(
        sim.client
            .publish(sim.now, topic("t"), QoS::AtMostOnce, true, ""),
        Err(ClientError::RetainNotSupported)
    );
    let nine: Vec<(TopicFilter<Bytes>, QoS)> = (0..9)
        .map(|i| (filter(&format!("f/{i}")), QoS::AtMostOnce))
        .collect();
    assert_eq!(
        sim.client.subscribe(sim.now, &nine),
        Err(ClientError::TooManyFilters { count: 9, max: 8 })
    );
    assert!(sim.client.subscribe(sim.now, &nine[..8]).is_ok());
}

#[test]
fn aws_keep_alive_0_pings_at_the_clamped_maximum() {
    let mut sim = Sim::new(Profile::aws_iot_core());
    sim.connected(true, 0, false);
    assert_eq!(sim.client.poll_timeout(), Some(Instant::from_secs(1200)));
}
