//! Handing messages to a client: at once, into the inflight window, or into the
//! session's queue within its bounds (in messages and in bytes).

use super::Server;
use crate::packet::{Packet, Publish, QosPid};
use crate::session::{Full, Message, NotQueued};
use crate::time::Instant;
use crate::types::QoS;

#[cfg(doc)]
use super::ServerConfig;

impl Server {
    /// Hands a message to the client: QoS 0 goes out at once, QoS 1/2 within the
    /// inflight window, beyond it into the session's queue. A closed connection queues
    /// QoS 1/2 in its session (for [`take_session`](Self::take_session)) and drops
    /// QoS 0. When the queue is full (in messages, or in bytes with
    /// [`ServerConfig::max_queued_bytes`]), or the connection is not accepted yet, the
    /// message comes back and nothing changes.
    pub fn publish(&mut self, now: Instant, message: Message) -> Result<(), NotQueued> {
        self.publish_within(now, message, true)
    }

    /// [`publish`](Self::publish), beyond the queue's bounds when `bounded` is false.
    pub(crate) fn publish_within(
        &mut self,
        now: Instant,
        message: Message,
        bounded: bool,
    ) -> Result<(), NotQueued> {
        if self.is_closed() && self.accepted {
            if message.qos == QoS::AtMostOnce {
                return Ok(());
            }
            return self.enqueue(message, bounded);
        }
        if !self.is_connected() {
            return Err(NotQueued(message));
        }
        if message.qos == QoS::AtMostOnce {
            self.send(Packet::Publish(Publish {
                dup: false,
                qos: QosPid::AtMostOnce,
                retain: message.retain,
                topic: message.topic,
                payload: message.payload,
            }));
            return Ok(());
        }
        if self.session.queue.is_empty() && self.session.session.inflight() < self.window() {
            // Straight into the window: the queue would only pass it through.
            if bounded && self.config.max_queued == 0 {
                return Err(NotQueued(message));
            }
            if let Some(id) = self.session.session.allocate_id() {
                self.send(Packet::Publish(message.to_publish(id, false)));
                self.session.session.push(id, message, Some(now));
                return Ok(());
            }
        }
        self.enqueue(message, bounded)?;
        self.fill_window(now);
        Ok(())
    }

    /// Queues `message` in the session, within the bounds when `bounded`.
    fn enqueue(&mut self, message: Message, bounded: bool) -> Result<(), NotQueued> {
        if bounded && self.queue_full(&message).is_some() {
            return Err(NotQueued(message));
        }
        self.session.push_queue(message);
        Ok(())
    }

    /// Whether queuing `message` would break a bound of the session's queue: it holds
    /// [`ServerConfig::max_queued`] messages, or `message` would take its bytes beyond
    /// [`ServerConfig::max_queued_bytes`].
    pub(crate) fn queue_full(&self, message: &Message) -> Option<Full> {
        self.session
            .fits(
                message,
                self.config.max_queued,
                self.config.max_queued_bytes,
            )
            .err()
    }

    /// Whether [`publish`](Self::publish) would put `message` in the session's queue
    /// (rather than send it at once, into the inflight window, or refuse it).
    pub(crate) fn would_queue(&self, message: &Message) -> bool {
        if message.qos == QoS::AtMostOnce {
            return false;
        }
        if self.is_closed() {
            return self.accepted;
        }
        self.is_connected()
            && (!self.session.queue.is_empty()
                || self.session.session.inflight() >= self.window()
                || self.config.max_queued == 0)
    }
}
