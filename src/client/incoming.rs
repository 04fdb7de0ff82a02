//! What the client does with each packet from the server.

use super::*;

impl Client {
    /// A packet received from the server.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        packet: Packet<Bytes>,
    ) -> Result<(), ClientError> {
        self.check_open()?;
        self.tick(now);
        if let State::AwaitingConnAck { .. } = self.state {
            match packet {
                Packet::ConnAck(ack) => self.on_connack(now, ack),
                other => self.close(protocol(
                    "MQTT-3.2.0-1",
                    "CONNACK",
                    other.packet_type().name(),
                )),
            }
            return Ok(());
        }
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(id) => self.on_puback(id),
            Packet::PubRec(id) => self.on_pubrec(id),
            Packet::PubRel(id) => self.on_pubrel(id),
            Packet::PubComp(id) => self.on_pubcomp(id),
            Packet::SubAck(s) => self.on_suback(s),
            Packet::UnsubAck(id) => self.on_unsuback(id),
            Packet::PingResp => {
                if let State::Connected(link) = &mut self.state {
                    link.ping_deadline = None;
                }
                // Before CONNACK a PINGRESP is refused above (MQTT-3.2.0-1).
            }
            Packet::ConnAck(_) => {
                self.close(protocol("MQTT-4.8.0-1", "no second CONNACK", "CONNACK"))
            }
            other @ (Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::Disconnect) => self.close(protocol(
                "MQTT-4.8.0-1",
                "a packet a server sends",
                other.packet_type().name(),
            )),
        }
        Ok(())
    }

    fn on_connack(&mut self, now: Instant, ack: ConnAck) {
        let State::AwaitingConnAck { link, .. } = &self.state else {
            return;
        };
        let clean_session = link.clean_session;
        let session_present = match ack {
            ConnAck::Refused(code) => {
                self.close(Reason::Refused(code));
                return;
            }
            ConnAck::Accepted { session_present } => session_present,
        };
        if clean_session && session_present {
            self.close(protocol(
                "MQTT-3.2.2-1",
                "session present 0 after clean session 1",
                "session present 1",
            ));
            return;
        }
        if let State::AwaitingConnAck { link, .. } =
            core::mem::replace(&mut self.state, State::Disconnected(Redial::Off))
        {
            self.state = State::Connected(link);
        }
        self.backoff.connected(self.now);
        self.event(Event::Connected { session_present });
        if !session_present {
            // What was sent on an earlier connection belonged to a session the server
            // no longer has.
            self.discard_session(|o| o.sent);
            self.session.clear_inbound_qos2();
        }
        // Resend what is unacknowledged, then send what was held: in original order.
        // Always with the same id and DUP=1 (MQTT-4.4.0-1): the application knows its
        // messages by the id `publish` returned, and AWS IoT Core accepts such resends;
        // the profile's fresh-id policy describes what its broker does.
        for packet in self.session.resend(ResendPolicy::SameIdWithDup) {
            self.send(packet);
        }
        self.held_qos0 = 0;
        while let Some(held) = self.held.pop_front() {
            match held {
                Held::Qos0(p) => self.send(Packet::Publish(p)),
                Held::Publish(id) => {
                    if let Some(p) = self.session.send_held(id, now) {
                        self.send(Packet::Publish(p));
                    }
                }
                Held::Request(id) => {
                    if let Some(pending) = self.requests.get_mut(&id) {
                        pending.sent = true;
                        let packet = pending.request.packet();
                        self.send(packet);
                    }
                }
            }
        }
    }

    fn on_publish(&mut self, p: Publish<Bytes>) {
        match p.qos {
            QosPid::AtMostOnce => self.push(Action::Deliver(p)),
            QosPid::AtLeastOnce(id) => {
                if self.config.manual_acks {
                    if self.acks.iter().any(|s| s.id == id && !s.qos2) {
                        // Already delivered, its PUBACK awaits the application.
                        return;
                    }
                    self.acks.push_back(AckSlot {
                        id,
                        qos2: false,
                        acked: false,
                    });
                    self.push(Action::Deliver(p));
                } else {
                    self.push(Action::Deliver(p));
                    self.send(Packet::PubAck(id));
                }
            }
            QosPid::ExactlyOnce(id) => {
                if self.session.awaits_pubrel(id) {
                    // A repeat before PUBREL: PUBREC again, no second delivery.
                    if !self.acks.iter().any(|s| s.id == id) {
                        self.send(Packet::PubRec(id));
                    }
                    return;
                }
                self.session.receive_qos2(id);
                self.push(Action::Deliver(p));
                if self.config.manual_acks {
                    self.acks.push_back(AckSlot {
                        id,
                        qos2: true,
                        acked: false,
                    });
                } else {
                    self.send(Packet::PubRec(id));
                }
            }
        }
    }

    fn unexpected(&mut self, packet_type: PacketType, packet_id: PacketId) {
        self.event(Event::UnexpectedAck {
            packet_type,
            packet_id,
        });
    }

    fn on_puback(&mut self, id: PacketId) {
        match self.session.on_puback(id) {
            Ack::Completed(_) => self.event(Event::Published(id)),
            _ => self.unexpected(PacketType::PubAck, id),
        }
    }

    fn on_pubrec(&mut self, id: PacketId) {
        match self.session.on_pubrec(id) {
            Ack::Released => {
                self.event(Event::Received(id));
                self.send(Packet::PubRel(id));
            }
            Ack::Repeated => self.send(Packet::PubRel(id)),
            _ => self.unexpected(PacketType::PubRec, id),
        }
    }

    fn on_pubcomp(&mut self, id: PacketId) {
        match self.session.on_pubcomp(id) {
            Ack::Completed(_) => self.event(Event::Completed(id)),
            _ => self.unexpected(PacketType::PubComp, id),
        }
    }

    fn on_pubrel(&mut self, id: PacketId) {
        if self.acks.iter().any(|s| s.id == id && s.qos2) {
            return self.close(protocol(
                "MQTT-4.3.3-2",
                "PUBREL after PUBREC",
                "PUBREL before PUBREC",
            ));
        }
        self.session.on_pubrel(id);
        self.send(Packet::PubComp(id));
    }

    fn on_suback(&mut self, s: SubAck<Bytes>) {
        let id = s.packet_id;
        let filters = match self.requests.get(&id) {
            Some(Pending {
                request: Request::Subscribe(sub),
                sent: true,
            }) => sub.filters().count(),
            _ => return self.unexpected(PacketType::SubAck, id),
        };
        let codes: Vec<SubAckCode> = s.codes().collect();
        if codes.len() != filters {
            return self.close(protocol(
                "MQTT-3.8.4-5",
                "one SUBACK return code per filter",
                "another number of return codes",
            ));
        }
        self.requests.remove(&id);
        self.session.release_id(id);
        self.event(Event::Subscribed {
            packet_id: id,
            codes,
        });
    }

    fn on_unsuback(&mut self, id: PacketId) {
        if !matches!(
            self.requests.get(&id),
            Some(Pending {
                request: Request::Unsubscribe(_),
                sent: true,
            })
        ) {
            return self.unexpected(PacketType::UnsubAck, id);
        }
        self.requests.remove(&id);
        self.session.release_id(id);
        self.event(Event::Unsubscribed(id));
    }
}
