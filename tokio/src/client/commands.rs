//! The application's commands: handed to the core, or held back while the inflight
//! window is full; and answered with [`Error::Closed`] once the client has stopped.

use mqtt_sansio::client::ClientError;

use super::Command;
use super::driver::Driver;
use crate::Error;

impl Driver {
    /// Hands one command to the core; its reply waits for the acknowledgement (or is
    /// sent at once when the core refuses it).
    pub(super) fn command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            publish @ Command::Publish { .. } => {
                if let Some(held) = self.try_publish(now, publish) {
                    self.blocked.push_back(held);
                }
            }
            Command::Subscribe { filters, reply } => match self.core.subscribe(now, &filters) {
                Ok(id) => {
                    self.subscribes.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::Rejected(e)));
                }
            },
            Command::Unsubscribe { filters, reply } => match self.core.unsubscribe(now, &filters) {
                Ok(id) => {
                    self.unsubscribes.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::Rejected(e)));
                }
            },
            Command::Ack { id, reply } => {
                let _ = reply.send(self.core.ack(now, id).map_err(Error::Rejected));
            }
            Command::Reconnect { reply } => {
                self.reconnect = Some(reply);
                self.lost(Error::Io(std::io::ErrorKind::ConnectionAborted.into()));
            }
            Command::Disconnect { reply } => match self.core.disconnect(now) {
                Ok(()) => self.disconnect = Some(reply),
                Err(e) => {
                    let _ = reply.send(Err(Error::Rejected(e)));
                }
            },
        }
    }

    /// Retries the publishes the inflight window held back, in order, while it has room.
    pub(super) fn retry_blocked(&mut self) {
        if !self.connected {
            return;
        }
        let now = self.clock.now();
        while let Some(publish @ Command::Publish { .. }) = self.blocked.pop_front() {
            if let Some(held) = self.try_publish(now, publish) {
                self.blocked.push_front(held);
                return;
            }
        }
    }

    /// Hands a publish to the core; gives it back when the inflight window (or the
    /// packet ids) has no room for it yet, so that the caller holds it.
    fn try_publish(&mut self, now: mqtt_sansio::Instant, command: Command) -> Option<Command> {
        let Command::Publish {
            topic,
            qos,
            retain,
            payload,
            reply,
        } = command
        else {
            fail(command);
            return None;
        };
        match self
            .core
            .publish(now, topic.clone(), qos, retain, payload.clone())
        {
            Ok(Some(id)) => {
                self.publishes.insert(id, reply);
            }
            Ok(None) => self.unwritten.push(reply),
            Err(ClientError::InflightFull { .. } | ClientError::PacketIdsExhausted) => {
                return Some(Command::Publish {
                    topic,
                    qos,
                    retain,
                    payload,
                    reply,
                });
            }
            Err(e) => {
                let _ = reply.send(Err(Error::Rejected(e)));
            }
        }
        None
    }
}

/// Answers a command the closed client will not carry out.
pub(super) fn fail(command: Command) {
    match command {
        Command::Publish { reply, .. }
        | Command::Unsubscribe { reply, .. }
        | Command::Ack { reply, .. }
        | Command::Disconnect { reply } => {
            let _ = reply.send(Err(Error::Closed));
        }
        Command::Reconnect { reply } => {
            let _ = reply.send(Err(Error::Closed));
        }
        Command::Subscribe { reply, .. } => {
            let _ = reply.send(Err(Error::Closed));
        }
    }
}
