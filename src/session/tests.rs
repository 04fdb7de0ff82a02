use super::*;
use crate::time::Instant;
use crate::types::TopicName;
use core::time::Duration;

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn message(qos: QoS) -> Message {
    Message {
        topic: TopicName::from_static("t").unwrap(),
        payload: Bytes::from_static(b"m"),
        qos,
        retain: false,
    }
}

fn recording() -> Session {
    let mut s = Session::new();
    s.set_recording(true);
    s
}

#[test]
fn each_ack_of_the_right_kind_moves_its_flow_and_reports_the_change() {
    let mut s = recording();
    let one = s.allocate_id().unwrap();
    assert!(s.push(one, message(QoS::AtLeastOnce), Some(Instant::ZERO)));
    let two = s.allocate_id().unwrap();
    assert!(s.push(two, message(QoS::ExactlyOnce), Some(Instant::ZERO)));
    assert_eq!(s.on_pubcomp(two), Ack::Unexpected, "PUBCOMP before PUBREC");
    assert_eq!(s.on_pubrec(one), Ack::Unexpected, "PUBREC for QoS 1");
    assert_eq!(s.on_pubrec(two), Ack::Released);
    assert_eq!(s.on_pubrec(two), Ack::Repeated);
    assert!(matches!(s.on_puback(one), Ack::Completed(o) if o.id == one));
    assert!(matches!(s.on_pubcomp(two), Ack::Completed(o) if o.stage == Stage::Released));
    assert_eq!((s.inflight(), s.ids().len()), (0, 0));
    let changes: Vec<Change> = s.take_changes();
    assert_eq!(changes.len(), 5, "{changes:?}");
    assert!(matches!(changes[2], Change::Released(i) if i == two));
    assert_eq!(changes[3], Change::Removed(one));
}

#[test]
fn a_held_entry_is_not_acknowledged_nor_resent_until_it_is_sent() {
    let mut s = Session::new();
    let a = s.allocate_id().unwrap();
    s.push(a, message(QoS::AtLeastOnce), None);
    assert_eq!(s.on_puback(a), Ack::Unexpected);
    assert!(s.resend(ResendPolicy::SameIdWithDup).is_empty());
    let first = s.send_held(a, Instant::ZERO).unwrap();
    assert!(!first.dup);
    assert_eq!(s.send_held(a, Instant::ZERO), None, "sent once");
    let again = s.resend(ResendPolicy::SameIdWithDup);
    assert!(matches!(&again[..], [Packet::Publish(p)] if p.dup && p.qos.packet_id() == Some(a)));
}

#[test]
fn a_fresh_id_resend_keeps_the_place_frees_the_old_id_and_reports_the_renumbering() {
    let mut s = recording();
    let a = s.allocate_id().unwrap();
    s.push(a, message(QoS::AtLeastOnce), Some(Instant::ZERO));
    let b = s.allocate_id().unwrap();
    s.push(b, message(QoS::AtLeastOnce), Some(Instant::ZERO));
    s.take_changes();
    let out = s.resend(ResendPolicy::FreshId);
    let ids: Vec<PacketId> = out
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => {
                assert!(!p.dup);
                p.qos.packet_id().unwrap()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [id(3), id(4)]);
    assert!(!s.ids().contains(a) && !s.ids().contains(b));
    assert_eq!(
        s.take_changes(),
        [
            Change::Renumbered { old: a, new: id(3) },
            Change::Renumbered { old: b, new: id(4) }
        ]
    );
}

#[test]
fn a_qos0_message_or_an_id_in_the_table_is_not_pushed() {
    let mut s = Session::new();
    assert!(!s.push(id(1), message(QoS::AtMostOnce), Some(Instant::ZERO)));
    assert!(s.push(id(1), message(QoS::AtLeastOnce), Some(Instant::ZERO)));
    assert!(!s.push(id(1), message(QoS::ExactlyOnce), Some(Instant::ZERO)));
    assert_eq!(s.inflight(), 1);
}

#[test]
fn an_inbound_qos2_id_is_new_once_until_pubrel() {
    let mut s = recording();
    assert!(s.receive_qos2(id(5)));
    assert!(!s.receive_qos2(id(5)));
    assert!(s.awaits_pubrel(id(5)));
    assert!(s.on_pubrel(id(5)));
    assert!(!s.on_pubrel(id(5)));
    assert!(s.receive_qos2(id(5)));
    assert_eq!(
        s.take_changes(),
        [
            Change::InboundStored(id(5)),
            Change::InboundReleased(id(5)),
            Change::InboundStored(id(5))
        ]
    );
}

#[test]
fn the_window_is_capped_by_the_profile_and_never_zero() {
    let aws = Profile::aws_iot_core();
    assert_eq!(window(1_000, &aws), aws.max_inflight);
    assert_eq!(window(3, &aws), 3);
    assert_eq!(window(0, &Profile::mqtt311()), 1);
}

#[test]
fn a_retry_limit_drops_only_unacknowledged_qos1_publishes_old_enough_and_reports_them() {
    let mut s = recording();
    let limit = Duration::from_secs(10);
    let old = s.allocate_id().unwrap();
    s.push(old, message(QoS::AtLeastOnce), Some(Instant::from_secs(1)));
    let young = s.allocate_id().unwrap();
    s.push(
        young,
        message(QoS::AtLeastOnce),
        Some(Instant::from_secs(5)),
    );
    let qos2 = s.allocate_id().unwrap();
    s.push(qos2, message(QoS::ExactlyOnce), Some(Instant::ZERO));
    let held = s.allocate_id().unwrap();
    s.push(held, message(QoS::AtLeastOnce), None);
    s.take_changes();
    assert_eq!(s.retry_deadline(limit), Some(Instant::from_secs(11)));
    assert!(
        s.expire_retries(Instant::from_millis(10_999), limit)
            .is_empty()
    );
    let dropped = s.expire_retries(Instant::from_secs(11), limit);
    assert_eq!(dropped.iter().map(|o| o.id).collect::<Vec<_>>(), [old]);
    assert_eq!(s.take_changes(), [Change::Removed(old)]);
    assert!(!s.ids().contains(old));
    assert_eq!(s.retry_deadline(limit), Some(Instant::from_secs(15)));
    // A fresh-id resend keeps the first-send time.
    s.resend(ResendPolicy::FreshId);
    let renumbered = s
        .outgoing()
        .find(|o| o.message.qos == QoS::AtLeastOnce && o.sent);
    assert_eq!(
        renumbered.and_then(|o| o.first_sent),
        Some(Instant::from_secs(5))
    );
    let gone = s.expire_retries(Instant::from_secs(3600), limit);
    assert_eq!(
        gone.len(),
        1,
        "the QoS 2 and the held entries stay: {gone:?}"
    );
    assert_eq!(s.inflight(), 2);
    assert_eq!(s.retry_deadline(limit), None);
}

#[test]
fn subscriptions_stay_in_filter_order_when_they_outgrow_the_vector() {
    use crate::types::TopicFilter;
    let filter = |i: usize| TopicFilter::new(Bytes::from(alloc::format!("f/{i:03}"))).unwrap();
    let mut s = ServerSession::new();
    // Inserted in reverse, one more than the vector keeps: the last moves them all.
    for i in (0..=16).rev() {
        s.subscribe(&filter(i), QoS::AtMostOnce);
    }
    s.subscribe(&filter(3), QoS::AtLeastOnce);
    assert!(matches!(s.subscriptions, server::Subscriptions::Many(_)));
    let got: Vec<(Vec<u8>, QoS)> = s.subscriptions().map(|(f, q)| (f.to_vec(), q)).collect();
    let want: Vec<(Vec<u8>, QoS)> = (0..=16)
        .map(|i| {
            let qos = if i == 3 {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            (filter(i).as_bytes().to_vec(), qos)
        })
        .collect();
    assert_eq!(got, want, "byte order, the replaced QoS kept");
    assert!(s.unsubscribe(&filter(16)));
    assert!(!s.unsubscribe(&filter(16)), "already gone");
    assert_eq!(s.subscriptions().count(), 16);
}

#[test]
fn a_few_subscriptions_are_replaced_and_removed_in_place() {
    use crate::types::TopicFilter;
    let a = TopicFilter::new(Bytes::from_static(b"a/#")).unwrap();
    let b = TopicFilter::new(Bytes::from_static(b"b")).unwrap();
    let mut s = ServerSession::new();
    s.subscribe(&b, QoS::AtMostOnce);
    s.subscribe(&a, QoS::AtMostOnce);
    s.subscribe(&b, QoS::ExactlyOnce);
    assert!(matches!(s.subscriptions, server::Subscriptions::Few(_)));
    let got: Vec<(&[u8], QoS)> = s.subscriptions().collect();
    assert_eq!(
        got,
        [
            (&b"a/#"[..], QoS::AtMostOnce),
            (&b"b"[..], QoS::ExactlyOnce)
        ]
    );
    assert!(s.unsubscribe(&a));
    assert!(!s.unsubscribe(&a));
    let got: Vec<(&[u8], QoS)> = s.subscriptions().collect();
    assert_eq!(got, [(&b"b"[..], QoS::ExactlyOnce)]);
}
