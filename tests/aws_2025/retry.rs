//! The retry limit on unacknowledged QoS 1 messages: AWS IoT Core "retries delivery of
//! unacknowledged quality of service 1 (QoS 1) publish requests to a client for up to
//! one hour", then drops them
//! (https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits,
//! "Maximum retry interval for delivering QoS 1 messages"). Checked on the timer path
//! (online and stored sessions), on the resume path, across export and import, and
//! absent from the presets without the limit.

use std::time::Duration;

use proptest::prelude::*;

use bytes::Bytes;
use mqtt_sansio::broker::{Action, Broker, BrokerConfig, BrokerEvent, DropReason};
use mqtt_sansio::server::ServerConfig;
use mqtt_sansio::session::{BrokerChange, BrokerExport, Change};
use mqtt_sansio::{Instant, Packet, PacketId, Profile, QoS};

use super::payloads;
use super::support::harness::{Harness, connect, publish, publishes};

const HOUR_MS: u64 = 3_600_000;

fn reporting(max_inflight: usize) -> BrokerConfig {
    ServerConfig {
        report_changes: true,
        max_inflight,
        ..ServerConfig::default()
    }
    .into()
}

/// Connects `client` on `conn` asking for no keep-alive (AWS makes it 1200 s, so 30
/// minutes of silence close the connection).
fn quiet(h: &mut Harness, conn: u64, client: &str, clean: bool) -> mqtt_sansio::ConnAck {
    h.connect_with(conn, connect(client, clean, 0, None))
}

/// A broker under `profile` with a persistent subscriber `sub` on connection 1 (to
/// `r/#`, QoS 1) and a publisher on connection 2.
fn subscribed(profile: Profile, max_inflight: usize) -> Harness {
    let mut h = Harness::with_config(profile, reporting(max_inflight));
    quiet(&mut h, 1, "sub", false);
    h.subscribe(1, 1, &[("r/#", QoS::AtLeastOnce)]);
    quiet(&mut h, 2, "pub", true);
    h
}

/// The retry-limit drops reported so far: (client id, packet id, topic, payload).
fn retry_drops(h: &Harness) -> Vec<(String, PacketId, String, String)> {
    h.events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Dropped {
                client_id,
                message,
                reason: DropReason::RetryExpired { packet_id },
            } => Some((
                client_id.as_str().to_owned(),
                *packet_id,
                message.topic.as_str().to_owned(),
                String::from_utf8_lossy(&message.payload).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

/// The changes reported so far, applied to an empty export.
fn durable(h: &Harness) -> BrokerExport {
    let mut store = BrokerExport::default();
    for a in &h.log {
        if let Action::Change(c) = a {
            store.apply(c).expect("the change applies");
        }
    }
    store
}

fn ids(packets: &[Packet<Bytes>]) -> Vec<PacketId> {
    publishes(packets)
        .iter()
        .filter_map(|p| p.qos.packet_id())
        .collect()
}

fn keep_alive(h: &mut Harness, conn: u64) {
    h.send(conn, Packet::PingReq);
    assert_eq!(h.take(conn), [Packet::PingResp]);
}

#[test]
fn an_unacknowledged_qos1_message_is_dropped_and_reported_when_its_retry_limit_passes_online() {
    let limit = Duration::from_secs(10);
    let profile = Profile::aws_iot_core_2025().with_qos1_retry_limit(Some(limit));
    let mut h = subscribed(profile, 1);
    h.send(2, publish("r/a", QoS::AtLeastOnce, 1, "old"));
    h.advance(4_000);
    h.send(2, publish("r/b", QoS::AtLeastOnce, 2, "queued"));
    let first = h.take(1);
    assert_eq!(payloads(&first), ["old"], "the window holds one");
    // The driver is woken for the limit, well before the keep-alive (90 s).
    assert_eq!(h.broker.poll_timeout(), Some(Instant::from_secs(10)));
    h.advance(5_999);
    assert!(retry_drops(&h).is_empty(), "dropped early");
    h.advance(1);
    assert_eq!(
        retry_drops(&h),
        [("sub".into(), ids(&first)[0], "r/a".into(), "old".into())]
    );
    let removed = h.log.iter().position(|a| {
        matches!(a, Action::Change(BrokerChange::Session { change: Change::Removed(id), .. }) if *id == ids(&first)[0])
    });
    let reported = h
        .log
        .iter()
        .position(|a| matches!(a, Action::Event(BrokerEvent::Dropped { .. })));
    assert!(removed.is_some() && removed < reported, "{:?}", h.log);
    // The slot it left goes to the queued message, whose limit counts from now: the
    // limit runs from the first sending, not from the queueing.
    let next = h.take(1);
    assert_eq!(payloads(&next), ["queued"]);
    assert_eq!(h.broker.poll_timeout(), Some(Instant::from_secs(20)));
    h.advance(10_000);
    assert_eq!(retry_drops(&h).len(), 2);
    assert_eq!(h.broker.session("sub").map(|s| s.inflight()), Some(0));
    assert_eq!(durable(&h), h.broker.export());
    assert!(!h.is_closed(1));
}

#[test]
fn an_acknowledged_message_is_not_dropped_and_the_timer_follows_the_oldest_left() {
    let limit = Duration::from_secs(10);
    let profile = Profile::aws_iot_core_2025().with_qos1_retry_limit(Some(limit));
    let mut h = subscribed(profile, 8);
    h.send(2, publish("r/a", QoS::AtLeastOnce, 1, "acked"));
    h.advance(3_000);
    h.send(2, publish("r/b", QoS::AtLeastOnce, 2, "unacked"));
    let got = ids(&h.take(1));
    h.send(1, Packet::PubAck(got[0]));
    assert_eq!(h.broker.poll_timeout(), Some(Instant::from_secs(13)));
    h.advance(10_000);
    let drops = retry_drops(&h);
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].3, "unacked");
    assert_eq!(durable(&h), h.broker.export());
}

#[test]
fn a_stored_session_drops_what_its_client_left_unacknowledged_an_hour_after_sending_it() {
    let mut h = subscribed(Profile::aws_iot_core_2025(), 8);
    h.send(2, publish("r/a", QoS::AtLeastOnce, 1, "m"));
    let sent = ids(&h.take(1));
    h.drop_conn(2);
    h.advance(1_000);
    h.drop_conn(1);
    // The session is kept an hour from the disconnection; the message an hour from
    // its sending, which comes first.
    assert_eq!(h.broker.poll_timeout(), Some(Instant::from_millis(HOUR_MS)));
    h.advance(HOUR_MS - 1_001);
    assert!(retry_drops(&h).is_empty());
    h.advance(1);
    assert_eq!(
        retry_drops(&h),
        [("sub".into(), sent[0], "r/a".into(), "m".into())]
    );
    assert_eq!(durable(&h), h.broker.export());
    assert!(h.broker.export().sessions[0].session.outgoing.is_empty());
    // The session is still there, with nothing to resend.
    h.advance(100);
    assert!(matches!(
        quiet(&mut h, 3, "sub", false),
        mqtt_sansio::ConnAck::Accepted {
            session_present: true
        }
    ));
    assert!(publishes(&h.take(3)).is_empty());
}

#[test]
fn a_message_younger_than_the_limit_is_resent_on_resume_with_its_first_send_time() {
    let mut h = subscribed(Profile::aws_iot_core_2025(), 8);
    h.send(2, publish("r/a", QoS::AtLeastOnce, 1, "m"));
    let sent = ids(&h.take(1));
    h.drop_conn(1);
    h.advance(30 * 60_000);
    h.connect(3, "sub", false);
    let resent = publishes(&h.take(3));
    assert_eq!(resent.len(), 1);
    assert_eq!(&resent[0].payload[..], b"m");
    assert!(!resent[0].dup, "AWS resends with a fresh id, DUP=0");
    let id = resent[0].qos.packet_id().expect("QoS 1");
    assert_ne!(Some(id), sent.first().copied());
    // Still timed from the first sending, not from the resend.
    let kept = h
        .broker
        .session("sub")
        .and_then(|s| s.session().get(id).cloned());
    assert_eq!(kept.and_then(|o| o.first_sent), Some(Instant::ZERO));
    for _ in 0..29 {
        h.advance(60_000);
        keep_alive(&mut h, 3);
    }
    h.advance(60_000);
    assert_eq!(
        retry_drops(&h),
        [("sub".into(), id, "r/a".into(), "m".into())]
    );
    assert_eq!(durable(&h), h.broker.export());
}

#[test]
fn on_resume_a_message_older_than_the_limit_is_dropped_and_reported_and_a_younger_one_resent() {
    let mut h = subscribed(Profile::aws_iot_core_2025(), 8);
    h.send(2, publish("r/a", QoS::AtLeastOnce, 1, "old"));
    h.take(1);
    h.drop_conn(1);
    h.advance(20 * 60_000);
    quiet(&mut h, 3, "sub", false);
    assert_eq!(payloads(&h.take(3)), ["old"], "resent within the hour");
    quiet(&mut h, 4, "pub2", true);
    h.send(4, publish("r/b", QoS::AtLeastOnce, 1, "young"));
    let young = ids(&h.take(3));
    assert_eq!(young.len(), 1);
    h.drop_conn(3);
    let old = h
        .broker
        .session("sub")
        .and_then(|s| s.session().outgoing().next().map(|o| o.id))
        .expect("the old message is still there");
    // The clock jumps past the first message's hour without a timer firing: the
    // resume, not the timer, finds it.
    h.now = Instant::from_millis(HOUR_MS + 5);
    quiet(&mut h, 5, "sub", false);
    assert_eq!(
        retry_drops(&h),
        [("sub".into(), old, "r/a".into(), "old".into())]
    );
    assert_eq!(payloads(&h.take(5)), ["young"]);
    assert_eq!(durable(&h), h.broker.export());
}

#[test]
fn a_restored_broker_keeps_the_first_send_times_and_does_not_resend_what_was_dropped() {
    let config = reporting(8);
    let mut h = subscribed(Profile::aws_iot_core_2025(), 8);
    h.send(2, publish("r/a", QoS::AtLeastOnce, 1, "early"));
    h.advance(10 * 60_000);
    h.send(2, publish("r/b", QoS::AtLeastOnce, 2, "late"));
    h.take(1);
    h.drop_conn(1);
    h.advance(HOUR_MS - 10 * 60_000);
    assert_eq!(retry_drops(&h).len(), 1, "the early one is dropped");
    let export = h.broker.export();
    assert_eq!(durable(&h), export);
    let times: Vec<Option<Instant>> = export.sessions[0]
        .session
        .outgoing
        .iter()
        .map(|o| o.first_sent)
        .collect();
    assert_eq!(times, [Some(Instant::from_millis(10 * 60_000))]);
    let read = BrokerExport::from_bytes(&export.to_bytes()).expect("reads back");
    assert_eq!(read, export);

    let mut b = Harness::with_config(Profile::aws_iot_core_2025(), config.clone());
    b.now = h.now;
    b.broker = Broker::import(Profile::aws_iot_core_2025(), config, read, b.now).expect("imports");
    // The restored broker wakes for the late message's hour.
    assert_eq!(
        b.broker.poll_timeout(),
        Some(Instant::from_millis(HOUR_MS + 10 * 60_000))
    );
    quiet(&mut b, 3, "sub", false);
    assert_eq!(
        payloads(&b.take(3)),
        ["late"],
        "the dropped one is not resent"
    );
}

#[test]
fn the_mqtt311_and_2019_aws_presets_never_drop_an_unacknowledged_message() {
    let long = Duration::from_secs(3 * 3600);
    let presets = [
        Profile::mqtt311(),
        Profile::aws_iot_core()
            .with_session_expiry(long)
            .expect("no maximum"),
    ];
    for profile in presets {
        let name = profile.name;
        let mut h = subscribed(profile, 8);
        h.send(2, publish("r/a", QoS::AtLeastOnce, 1, "kept"));
        h.take(1);
        h.drop_conn(1);
        h.advance(2 * HOUR_MS);
        assert!(retry_drops(&h).is_empty(), "{name}");
        quiet(&mut h, 3, "sub", false);
        assert_eq!(payloads(&h.take(3)), ["kept"], "{name}");
        assert!(
            h.events
                .iter()
                .all(|e| !matches!(e, BrokerEvent::Dropped { .. })),
            "{name}"
        );
    }
}

/// One input of the property below.
#[derive(Debug, Clone)]
enum Op {
    /// Subscriber `i` connects (resuming its session) if it is offline.
    Connect(usize),
    /// Subscriber `i`'s connection drops.
    Drop(usize),
    /// Subscriber `i` acknowledges the oldest unacknowledged PUBLISH it received.
    Ack(usize),
    /// The publisher sends a new QoS 1 message.
    Publish,
    /// Time passes.
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize).prop_map(Op::Connect),
        (0..2usize).prop_map(Op::Drop),
        (0..2usize).prop_map(Op::Ack),
        Just(Op::Publish),
        (0..5_000u64).prop_map(Op::Advance),
    ]
}

/// Two persistent subscribers (an inflight window of 2) and a publisher under a retry
/// limit of 3 s.
struct Subscribers {
    h: Harness,
    online: [Option<u64>; 2],
    /// Per subscriber: the PUBLISH received on its connection and not acknowledged,
    /// oldest first (packet id, payload).
    unacked: [Vec<(PacketId, String)>; 2],
    acked: [Vec<String>; 2],
    last_connect: [Instant; 2],
    next_conn: u64,
    published: u16,
}

impl Subscribers {
    fn new() -> Subscribers {
        let profile =
            Profile::aws_iot_core_2025().with_qos1_retry_limit(Some(Duration::from_secs(3)));
        let mut h = Harness::with_config(profile, reporting(2));
        for (i, conn) in [(0, 1), (1, 2)] {
            quiet(&mut h, conn, &format!("s{i}"), false);
            h.subscribe(conn, 1, &[("r/#", QoS::AtLeastOnce)]);
        }
        quiet(&mut h, 3, "pub", true);
        Subscribers {
            h,
            online: [Some(1), Some(2)],
            unacked: Default::default(),
            acked: Default::default(),
            last_connect: [Instant::ZERO; 2],
            next_conn: 10,
            published: 0,
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Connect(i) if self.online[i].is_none() => {
                // One CONNECT per second per client id.
                let wait = self.h.now.saturating_duration_since(self.last_connect[i]);
                if wait < Duration::from_secs(1) {
                    self.h.advance(1_000);
                }
                let conn = self.next_conn;
                self.next_conn += 1;
                quiet(&mut self.h, conn, &format!("s{i}"), false);
                self.last_connect[i] = self.h.now;
                self.online[i] = Some(conn);
            }
            Op::Connect(_) => {}
            Op::Drop(i) => {
                if let Some(conn) = self.online[i].take() {
                    self.h.drop_conn(conn);
                    self.unacked[i].clear();
                }
            }
            Op::Ack(i) => {
                if let (Some(conn), false) = (self.online[i], self.unacked[i].is_empty()) {
                    let (id, payload) = self.unacked[i].remove(0);
                    self.h.send(conn, Packet::PubAck(id));
                    self.acked[i].push(payload);
                }
            }
            Op::Publish => {
                self.published += 1;
                let n = self.published;
                self.h
                    .send(3, publish("r/t", QoS::AtLeastOnce, n, &format!("p{n}")));
                self.h.take(3);
            }
            Op::Advance(ms) => self.h.advance(ms),
        }
        for i in 0..2 {
            let Some(conn) = self.online[i] else { continue };
            for p in publishes(&self.h.take(conn)) {
                let id = p.qos.packet_id().expect("QoS 1");
                let payload = String::from_utf8_lossy(&p.payload).into_owned();
                // A later PUBLISH with an id replaces what the id stood for.
                self.unacked[i].retain(|(old, _)| *old != id);
                self.unacked[i].push((id, payload));
            }
        }
    }

    /// Every message published reached each subscriber and was acknowledged, is still
    /// in its session, or was reported dropped.
    fn accounted_for(&self) -> Result<(), TestCaseError> {
        for i in 0..2 {
            let client = format!("s{i}");
            let session = self.h.broker.session(&client).expect("the session is kept");
            let held: Vec<String> = session
                .session()
                .outgoing()
                .map(|o| &o.message)
                .chain(session.queue())
                .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
                .collect();
            let dropped: Vec<String> = self
                .h
                .events
                .iter()
                .filter_map(|e| match e {
                    BrokerEvent::Dropped {
                        client_id, message, ..
                    } if client_id.as_str() == client => {
                        Some(String::from_utf8_lossy(&message.payload).into_owned())
                    }
                    _ => None,
                })
                .collect();
            for n in 1..=self.published {
                let p = format!("p{n}");
                prop_assert!(
                    self.acked[i].contains(&p) || held.contains(&p) || dropped.contains(&p),
                    "{} lost for {}",
                    p,
                    client
                );
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn with_retry_drops_in_the_mix_the_changes_give_the_export_and_nothing_is_lost_unreported(
        ops in prop::collection::vec(op(), 0..48),
    ) {
        let mut s = Subscribers::new();
        for op in &ops {
            s.apply(op);
            let export = s.h.broker.export();
            prop_assert_eq!(&durable(&s.h), &export, "after {:?}", op);
            prop_assert_eq!(BrokerExport::from_bytes(&export.to_bytes()), Ok(export));
        }
        s.accounted_for()?;
    }
}

#[test]
fn the_property_above_meets_retry_drops() {
    let mut s = Subscribers::new();
    for op in [
        Op::Publish,
        Op::Publish,
        Op::Publish,
        Op::Ack(0),
        Op::Drop(1),
        Op::Advance(3_000),
    ] {
        s.apply(&op);
    }
    assert_eq!(durable(&s.h), s.h.broker.export());
    s.accounted_for().expect("accounted for");
    assert!(retry_drops(&s.h).len() >= 3, "{:?}", retry_drops(&s.h));
}
