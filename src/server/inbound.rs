//! What a connected client sends: the dispatch of its packets, the acknowledgements
//! of the messages sent to it, PUBLISH (the profile's checks, the publish quotas, the
//! [`Authorizer`](super::Authorizer)), SUBSCRIBE and UNSUBSCRIBE.

use alloc::boxed::Box;
use alloc::vec::Vec;

use bytes::Bytes;

use super::{
    CloseReason, Ignored, PolicyViolation, PublishDecision, Server, ServerEvent, protocol,
};
use crate::packet::{
    Packet, PacketType, Publish, QosPid, SubAck, SubAckCode, Subscribe, Unsubscribe,
};
use crate::profile::{Qos2Policy, RetainPolicy};
use crate::quota::Admit;
use crate::session::{Ack, Message, window};
use crate::time::Instant;
use crate::topic::reserved;
use crate::types::{PacketId, QoS, TopicFilter};

impl Server {
    fn unexpected(&mut self, got: PacketType) {
        self.close(protocol("MQTT-4.8.0-1", "a packet a client sends", got));
    }

    pub(super) fn handle_connected(&mut self, now: Instant, packet: Packet<Bytes>) {
        self.release_actions |= matches!(
            packet,
            Packet::Subscribe(_) | Packet::Unsubscribe(_) | Packet::PingReq
        );
        match packet {
            Packet::Connect(_) => self.close(protocol(
                "MQTT-3.1.0-2",
                "no second CONNECT",
                PacketType::Connect,
            )),
            Packet::Publish(p) => self.handle_publish(now, p),
            Packet::PubAck(id) => {
                let ack = self.session.session.on_puback(id);
                self.on_ack(now, PacketType::PubAck, id, ack);
            }
            Packet::PubRec(id) => {
                let ack = self.session.session.on_pubrec(id);
                self.on_ack(now, PacketType::PubRec, id, ack);
            }
            Packet::PubComp(id) => {
                let ack = self.session.session.on_pubcomp(id);
                self.on_ack(now, PacketType::PubComp, id, ack);
            }
            Packet::PubRel(id) => {
                self.session.session.on_pubrel(id);
                self.send(Packet::PubComp(id));
            }
            Packet::Subscribe(s) => self.handle_subscribe(s),
            Packet::Unsubscribe(u) => self.handle_unsubscribe(u),
            Packet::PingReq => self.send(Packet::PingResp),
            Packet::Disconnect => {
                // MQTT-3.14.4-3: the will is discarded.
                self.will = None;
                self.close(CloseReason::ClientDisconnect);
            }
            other @ (Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp) => self.unexpected(other.packet_type()),
        }
    }

    fn on_ack(&mut self, now: Instant, packet_type: PacketType, packet_id: PacketId, ack: Ack) {
        match ack {
            Ack::Completed(_) => self.fill_window(now),
            Ack::Released | Ack::Repeated => self.send(Packet::PubRel(packet_id)),
            Ack::Unexpected => self.event(ServerEvent::UnexpectedAck {
                packet_type,
                packet_id,
            }),
        }
    }

    pub(super) fn handle_publish(&mut self, now: Instant, p: Publish<Bytes>) {
        let profile = &self.profile;
        if !profile.topic_within_limits(p.topic.as_bytes()) {
            return self.close(CloseReason::Policy(PolicyViolation::TopicTooLong));
        }
        if p.payload.len() > profile.max_payload {
            return self.close(CloseReason::Policy(PolicyViolation::PayloadTooLarge));
        }
        if p.retain && profile.retain == RetainPolicy::Close {
            return self.close(CloseReason::Policy(PolicyViolation::Retain));
        }
        if let Err(r) = reserved::check_publish(profile, p.topic.as_bytes(), p.retain) {
            return self.close(CloseReason::Policy(r.into()));
        }
        let size = p.topic.as_bytes().len() + p.payload.len();
        let quotas = &profile.quotas;
        let admit =
            if quotas.publishes_per_second.is_none() && quotas.publish_bytes_per_second.is_none() {
                Admit::Yes
            } else {
                // The window exists only under a profile with publish quotas.
                let window = self.publish_window.get_or_insert_with(Box::default);
                window.admit(now, quotas, size)
            };
        match admit {
            Admit::Yes => {}
            Admit::OverCount => return self.event(ServerEvent::Ignored(Ignored::PublishOverQuota)),
            Admit::OverBytes { resume } => {
                self.delayed = Some(Box::new((resume, p)));
                return;
            }
        }
        if let QosPid::ExactlyOnce(_) = p.qos {
            match profile.qos2 {
                Qos2Policy::Supported => {}
                Qos2Policy::Ignore => {
                    return self.event(ServerEvent::Ignored(Ignored::Qos2Publish));
                }
                Qos2Policy::Close => {
                    return self.close(CloseReason::Policy(PolicyViolation::Qos2));
                }
            }
        }
        let message = Message::from_publish(&p);
        if let QosPid::ExactlyOnce(id) = p.qos {
            if self.session.session.awaits_pubrel(id) {
                // A repeat before PUBREL: acknowledge again, deliver once (MQTT-4.3.3-2).
                return self.send(Packet::PubRec(id));
            }
            let bound = window(self.config.max_inbound_qos2, &self.profile);
            if self.session.session.inbound_qos2_len() >= bound {
                return self.close(CloseReason::Policy(PolicyViolation::TooManyInboundQos2));
            }
        }
        let decision = self.config.authorizer.publish(&self.client_id, &message);
        if decision == PublishDecision::Close {
            return self.close(CloseReason::Policy(PolicyViolation::NotAuthorized));
        }
        if let QosPid::ExactlyOnce(id) = p.qos {
            self.session.session.receive_qos2(id);
        }
        // The message goes to the application (the broker stores and routes it) before
        // it is acknowledged: acknowledged means stored.
        self.event(match decision {
            PublishDecision::Allow => ServerEvent::Publish(message),
            _ => ServerEvent::Discarded(message),
        });
        match p.qos {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(id) => self.send(Packet::PubAck(id)),
            QosPid::ExactlyOnce(id) => self.send(Packet::PubRec(id)),
        }
    }

    fn handle_subscribe(&mut self, s: Subscribe<Bytes>) {
        let wants_qos2 = s.filters().any(|(_, q)| q == QoS::ExactlyOnce);
        if wants_qos2 {
            match self.profile.qos2 {
                Qos2Policy::Supported => {}
                Qos2Policy::Ignore => {
                    return self.event(ServerEvent::Ignored(Ignored::Qos2Subscribe));
                }
                Qos2Policy::Close => {
                    return self.close(CloseReason::Policy(PolicyViolation::Qos2));
                }
            }
        }
        if s.filters()
            .any(|(f, _)| reserved::check_subscribe(&self.profile, f.as_bytes()).is_err())
        {
            return self.close(CloseReason::Policy(PolicyViolation::ReservedTopic));
        }
        let mut codes = Vec::new();
        let mut granted = Vec::new();
        for (i, (filter, requested)) in s.filters_shared().enumerate() {
            let code = self.grant(i, &filter, requested);
            if let SubAckCode::Granted(q) = code {
                granted.push((filter, q));
            }
            codes.push(code);
        }
        // MQTT-3.8.4-1, -2, -5, MQTT-3.9.3-1: one SUBACK, same id, one code per filter.
        match SubAck::new(s.packet_id, codes) {
            Ok(ack) => self.send(Packet::SubAck(ack)),
            Err(e) => return self.close(CloseReason::Malformed(e)),
        }
        if !granted.is_empty() {
            self.event(ServerEvent::Subscribed(granted));
        }
    }

    fn grant(&mut self, index: usize, filter: &TopicFilter<Bytes>, requested: QoS) -> SubAckCode {
        let p = &self.profile;
        if p.max_filters_per_subscribe.is_some_and(|m| index >= m)
            || !p.topic_within_limits(filter.as_bytes())
        {
            return SubAckCode::Failure;
        }
        let Some(q) = self
            .config
            .authorizer
            .subscribe(&self.client_id, filter, requested)
        else {
            return SubAckCode::Failure;
        };
        let q = q.min(requested);
        let subs = &self.session.subscriptions;
        if !subs.contains_key(filter.as_bytes())
            && p.max_subscriptions.is_some_and(|m| subs.len() >= m)
        {
            return SubAckCode::Failure;
        }
        // MQTT-3.8.4-3: an identical filter replaces the subscription.
        self.session.subscribe(filter, q);
        SubAckCode::Granted(q)
    }

    fn handle_unsubscribe(&mut self, u: Unsubscribe<Bytes>) {
        let mut removed = Vec::new();
        for f in u.filters_shared() {
            // MQTT-3.10.4-1: filters are compared literally.
            if self.session.unsubscribe(&f) {
                removed.push(f);
            }
        }
        // MQTT-3.10.4-4, -5, -6: exactly one UNSUBACK, even if nothing was removed.
        self.send(Packet::UnsubAck(u.packet_id));
        if !removed.is_empty() {
            self.event(ServerEvent::Unsubscribed(removed));
        }
    }
}
