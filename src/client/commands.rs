//! The application's commands on an open connection: publish, subscribe,
//! unsubscribe, ack and disconnect, with the checks that refuse them.

use super::*;

impl Client {
    pub(super) fn check_open(&self) -> Result<(), ClientError> {
        match self.state {
            State::Disconnected(_) => Err(ClientError::NotConnected),
            _ => Ok(()),
        }
    }

    pub(super) fn check_qos(&self, qos: QoS) -> Result<(), ClientError> {
        if qos == QoS::ExactlyOnce && !self.profile.supports_qos2() {
            return Err(ClientError::Qos2NotSupported);
        }
        Ok(())
    }

    pub(super) fn check_retain(&self, retain: bool) -> Result<(), ClientError> {
        if retain && self.profile.retain == RetainPolicy::Close {
            return Err(ClientError::RetainNotSupported);
        }
        Ok(())
    }

    pub(super) fn check_topic(&self, topic: &[u8]) -> Result<(), ClientError> {
        let max = self.profile.max_topic_len;
        if topic.len() > max {
            return Err(ClientError::TopicTooLong {
                len: topic.len(),
                max,
            });
        }
        if let Some(max) = self.profile.max_topic_levels {
            let slashes = topic.iter().filter(|&&c| c == b'/').count();
            if slashes > max {
                return Err(ClientError::TooManyTopicLevels { slashes, max });
            }
        }
        Ok(())
    }

    pub(super) fn check_payload(&self, len: usize) -> Result<(), ClientError> {
        let max = self.profile.max_payload;
        if len > max {
            return Err(ClientError::PayloadTooLarge { len, max });
        }
        Ok(())
    }

    pub(super) fn allocate_id(&mut self) -> Result<PacketId, ClientError> {
        self.session
            .allocate_id()
            .ok_or(ClientError::PacketIdsExhausted)
    }

    pub(super) fn allocate_request_id(&mut self) -> Result<PacketId, ClientError> {
        self.session
            .allocate_request_id()
            .ok_or(ClientError::PacketIdsExhausted)
    }

    pub(super) fn connected(&self) -> bool {
        matches!(self.state, State::Connected(_))
    }

    /// Reports the operation `id` as [`Event::TimedOut`] if it is still in flight
    /// `timeout` from now.
    pub(super) fn watch(
        &mut self,
        id: PacketId,
        packet_type: PacketType,
        timeout: Option<Duration>,
    ) {
        if let Some(t) = timeout {
            self.deadlines
                .watch(id, packet_type, self.now.saturating_add(t));
        }
    }

    /// Sends a request now if the connection is accepted, or holds it until CONNACK.
    pub(super) fn submit(&mut self, id: PacketId, request: Request) {
        let sent = self.connected();
        if sent {
            self.send(request.packet());
        } else {
            self.held.push_back(Held::Request(id));
        }
        self.requests.insert(id, Pending { request, sent });
    }

    /// Publishes an application message. Returns the packet id at QoS 1 and 2, `None`
    /// at QoS 0. Before CONNACK the message is held and sent after it.
    ///
    /// Refused without a connection, for what the profile forbids (QoS 2, RETAIN, topic
    /// or payload limits), when the inflight window is full
    /// ([`ClientError::InflightFull`]), every id is in use
    /// ([`ClientError::PacketIdsExhausted`]) or, before CONNACK, when
    /// [`ClientConfig::max_held_qos0`] QoS 0 publishes are already held
    /// ([`ClientError::HeldFull`]).
    pub fn publish(
        &mut self,
        now: Instant,
        topic: TopicName<Bytes>,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Result<Option<PacketId>, ClientError> {
        self.check_open()?;
        self.check_qos(qos)?;
        self.check_retain(retain)?;
        self.check_topic(topic.as_bytes())?;
        let payload: Bytes = payload.into();
        self.check_payload(payload.len())?;
        let id_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
        if 2 + topic.len() + id_len + payload.len() > MAX_REMAINING_LENGTH {
            return Err(ClientError::PacketTooLarge);
        }
        let connected = self.connected();
        if qos == QoS::AtMostOnce {
            if !connected && self.held_qos0 >= self.config.max_held_qos0 {
                return Err(ClientError::HeldFull {
                    max: self.config.max_held_qos0,
                });
            }
            self.tick(now);
            let mut publish = Publish::new(topic, QosPid::AtMostOnce, payload);
            publish.retain = retain;
            if connected {
                self.send(Packet::Publish(publish));
            } else {
                self.held_qos0 += 1;
                self.held.push_back(Held::Qos0(publish));
            }
            return Ok(None);
        }
        let max = window(self.config.max_inflight, &self.profile);
        if self.session.inflight() >= max {
            return Err(ClientError::InflightFull { max });
        }
        let id = self.allocate_id()?;
        self.tick(now);
        let message = Message {
            topic,
            payload,
            qos,
            retain,
        };
        if connected {
            self.send(Packet::Publish(message.to_publish(id, false)));
        } else {
            self.held.push_back(Held::Publish(id));
        }
        self.session.push(id, message, connected.then_some(now));
        self.watch(id, PacketType::Publish, self.config.publish_timeout);
        Ok(Some(id))
    }

    /// Subscribes to `filters` (each with its maximum QoS) in one SUBSCRIBE; returns
    /// its packet id. [`Event::Subscribed`] reports the SUBACK.
    ///
    /// Refused without a connection, with no filter, for what the profile forbids
    /// (QoS 2, filter length and levels, filters per SUBSCRIBE) and when every id is in
    /// use.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: &[(TopicFilter<Bytes>, QoS)],
    ) -> Result<PacketId, ClientError> {
        self.check_open()?;
        if filters.is_empty() {
            return Err(ClientError::NoFilters);
        }
        if let Some(max) = self.profile.max_filters_per_subscribe {
            if filters.len() > max {
                return Err(ClientError::TooManyFilters {
                    count: filters.len(),
                    max,
                });
            }
        }
        for (f, q) in filters {
            self.check_qos(*q)?;
            self.check_topic(f.as_bytes())?;
        }
        let len: usize = filters.iter().map(|(f, _)| 3 + f.len()).sum();
        if 2 + len > MAX_REMAINING_LENGTH {
            return Err(ClientError::PacketTooLarge);
        }
        let id = self.allocate_request_id()?;
        let Ok(sub) = Subscribe::new(id, filters) else {
            self.session.release_id(id);
            return Err(ClientError::NoFilters);
        };
        self.tick(now);
        self.submit(id, Request::Subscribe(sub));
        self.watch(id, PacketType::Subscribe, self.config.request_timeout);
        Ok(id)
    }

    /// Unsubscribes from `filters` in one UNSUBSCRIBE; returns its packet id.
    /// [`Event::Unsubscribed`] reports the UNSUBACK.
    ///
    /// Refused without a connection, with no filter, for filters beyond the profile's
    /// limits and when every id is in use.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: &[TopicFilter<Bytes>],
    ) -> Result<PacketId, ClientError> {
        self.check_open()?;
        if filters.is_empty() {
            return Err(ClientError::NoFilters);
        }
        for f in filters {
            self.check_topic(f.as_bytes())?;
        }
        let len: usize = filters.iter().map(|f| 2 + f.len()).sum();
        if 2 + len > MAX_REMAINING_LENGTH {
            return Err(ClientError::PacketTooLarge);
        }
        let id = self.allocate_request_id()?;
        let Ok(unsub) = Unsubscribe::new(id, filters) else {
            self.session.release_id(id);
            return Err(ClientError::NoFilters);
        };
        self.tick(now);
        self.submit(id, Request::Unsubscribe(unsub));
        self.watch(id, PacketType::Unsubscribe, self.config.request_timeout);
        Ok(id)
    }

    /// Acknowledges the delivered QoS 1 or 2 message with packet id `id`, under
    /// [`ClientConfig::manual_acks`]. The PUBACK or PUBREC goes out once every message
    /// that arrived before this one is acknowledged too (MQTT-4.6.0-2, MQTT-4.6.0-3).
    pub fn ack(&mut self, now: Instant, id: PacketId) -> Result<(), ClientError> {
        if !self.config.manual_acks {
            return Err(ClientError::ManualAcksDisabled);
        }
        let Some(slot) = self.acks.iter_mut().find(|s| s.id == id && !s.acked) else {
            return Err(ClientError::NotAwaitingAck(id));
        };
        slot.acked = true;
        self.tick(now);
        self.flush_acks();
        Ok(())
    }

    pub(super) fn flush_acks(&mut self) {
        while let Some(slot) = self.acks.front().copied() {
            if !slot.acked {
                break;
            }
            self.acks.pop_front();
            self.send(if slot.qos2 {
                Packet::PubRec(slot.id)
            } else {
                Packet::PubAck(slot.id)
            });
        }
    }

    /// Ends the connection cleanly: DISCONNECT, then [`Action::Close`] with
    /// [`Reason::Disconnected`]; nothing is sent after it (MQTT-3.14.4-1,
    /// MQTT-3.14.4-2). Before CONNACK nothing is sent (the client sends nothing but
    /// CONNECT before CONNACK); the connection is just closed. With clean session 0 the
    /// session is kept for the next connection.
    ///
    /// Without a connection but with a reconnect coming ([`ClientState::Reconnecting`]),
    /// it cancels the reconnect and emits nothing.
    pub fn disconnect(&mut self, now: Instant) -> Result<(), ClientError> {
        if let State::Disconnected(redial) = &mut self.state {
            if *redial == Redial::Off {
                return Err(ClientError::NotConnected);
            }
            *redial = Redial::Off;
            self.tick(now);
            return Ok(());
        }
        self.tick(now);
        if matches!(self.state, State::Connected(_)) {
            self.send(Packet::Disconnect);
        }
        self.close(Reason::Disconnected);
        Ok(())
    }
}
