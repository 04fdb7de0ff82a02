//! The core's actions carried out: committed first when the session is kept in a
//! store, then sent, delivered, or answered to the application's waiting requests.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use mqtt_sansio::client::{Action, Event, Lost};
use mqtt_sansio::{PacketId, PacketType};

use super::Reply;
use super::driver::Driver;
use crate::{Error, Timeout};

impl Driver {
    /// The core's next action. With a store the actions come in batches, every action
    /// the core has: the changes among them are committed before the first is carried
    /// out. When the commit fails none is, and the client stops.
    fn next_action(&mut self) -> Option<Action> {
        let Some(store) = self.store.as_mut() else {
            return self.core.poll_action();
        };
        if self.batch.is_empty() {
            self.batch
                .extend(std::iter::from_fn(|| self.core.poll_action()));
            for action in &self.batch {
                if let Action::Change(c) = action {
                    store.note(c);
                }
            }
            // A batch without changes commits nothing, unless an earlier commit failed.
            if let Err(e) = store.commit() {
                tracing::error!("stopping: the session store failed: {e}");
                self.batch.clear();
                self.connected = false;
                self.ended = Some(Error::Store(e));
                return None;
            }
        }
        self.batch.pop_front()
    }

    /// Carries out the core's actions, in order.
    pub(super) async fn drain(&mut self) {
        while let Some(action) = self.next_action() {
            match action {
                Action::Send(packet) => {
                    let is_qos0_publish = matches!(
                        &packet,
                        mqtt_sansio::Packet::Publish(p) if p.qos.packet_id().is_none()
                    );
                    match packet.to_bytes() {
                        Ok(bytes) => self.out.extend_from_slice(&bytes),
                        Err(e) => tracing::error!("cannot encode {packet:?}: {e}"),
                    }
                    if is_qos0_publish && !self.unwritten.is_empty() {
                        let reply = self.unwritten.remove(0);
                        self.written.push(reply);
                    }
                }
                Action::Deliver(publish) => {
                    // A dropped `Messages` discards deliveries.
                    let _ = self.messages.send(publish).await;
                }
                Action::Event(event) => self.event(event),
                // Committed by `next_action` with a store; reported only with one.
                Action::Change(_) => {}
                Action::Close(reason) => {
                    self.connected = false;
                    if self.ended.is_none() {
                        self.ended = Some(Error::from_reason(reason));
                    }
                }
                Action::Reconnect => self.redial = true,
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Connected { session_present } => {
                tracing::debug!("connected session_present={session_present}");
                self.session_present
                    .store(session_present, Ordering::Relaxed);
                self.connected = true;
            }
            Event::Published(id) | Event::Completed(id) => {
                if let Some(reply) = self.publishes.remove(&id) {
                    let _ = reply.send(Ok(()));
                }
            }
            Event::Subscribed { packet_id, codes } => {
                if let Some(reply) = self.subscribes.remove(&packet_id) {
                    let _ = reply.send(Ok(codes));
                }
            }
            Event::Unsubscribed(id) => {
                if let Some(reply) = self.unsubscribes.remove(&id) {
                    let _ = reply.send(Ok(()));
                }
            }
            // The core keeps waiting for the acknowledgement; a late one finds no
            // reply here and is ignored.
            Event::TimedOut {
                packet_type,
                packet_id,
            } => {
                let operation = Error::Timeout(Timeout::Operation);
                match packet_type {
                    PacketType::Publish => answer(&mut self.publishes, packet_id, operation),
                    PacketType::Subscribe => answer(&mut self.subscribes, packet_id, operation),
                    PacketType::Unsubscribe => answer(&mut self.unsubscribes, packet_id, operation),
                    _ => {}
                }
            }
            Event::Lost(lost) => {
                let waiting = match lost {
                    Lost::Publish(p) => match p.qos.packet_id() {
                        Some(id) => self.publishes.remove(&id),
                        // A QoS 0 publish held before CONNACK.
                        None => (!self.unwritten.is_empty()).then(|| self.unwritten.remove(0)),
                    },
                    Lost::Release(id) => self.publishes.remove(&id),
                    Lost::Subscribe(s) => {
                        if let Some(reply) = self.subscribes.remove(&s.packet_id) {
                            let _ = reply.send(Err(Error::Lost));
                        }
                        None
                    }
                    Lost::Unsubscribe(u) => self.unsubscribes.remove(&u.packet_id),
                };
                if let Some(reply) = waiting {
                    let _ = reply.send(Err(Error::Lost));
                }
            }
            Event::Received(_) | Event::UnexpectedAck { .. } => {}
        }
    }
}

/// Fails the request waiting under `id` in `waiting`, if any, with `error`.
fn answer<T>(waiting: &mut BTreeMap<PacketId, Reply<T>>, id: PacketId, error: Error) {
    if let Some(reply) = waiting.remove(&id) {
        let _ = reply.send(Err(error));
    }
}
