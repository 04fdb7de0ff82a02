//! Opening and losing connections: CONNECT, the reconnect backoff and the one
//! CONNECT per interval, and what a connection gives up when it ends.

use super::*;
use crate::packet::ConnectReturnCode;

/// Whether a new connection may succeed where the one closed for `reason` failed: a
/// server that answered too late, or said it was unavailable. Not after the
/// application disconnected, another refusal (the same CONNECT would be refused
/// again) or a violation by the server.
fn worth_retrying(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::ConnAckTimeout
            | Reason::PingTimeout
            | Reason::Refused(ConnectReturnCode::ServerUnavailable)
    )
}

impl Client {
    /// Opens the session on a new network connection: emits CONNECT and waits for
    /// CONNACK. With clean session 1 any session state the client held is discarded
    /// (and reported as [`Event::Lost`]) once CONNACK accepts the connection: until
    /// then the server may still hold the session.
    ///
    /// Refused when a connection is open ([`ClientError::AlreadyConnected`]), for an
    /// empty client id with clean session 0 (MQTT-3.1.3-7), for what the profile
    /// forbids (client id length, a will at QoS 2 or with RETAIN, will topic limits),
    /// and before [`earliest_connect`](Self::earliest_connect)
    /// ([`ClientError::ConnectTooSoon`]: the application waits, the client does not
    /// hold a CONNECT back). A reconnect the client was to ask for is no longer needed.
    pub fn connect(&mut self, now: Instant, connect: Connect<Bytes>) -> Result<(), ClientError> {
        if !matches!(self.state, State::Disconnected(_)) {
            return Err(ClientError::AlreadyConnected);
        }
        if connect.client_id.is_empty() && !connect.clean_session {
            return Err(ClientError::EmptyClientIdNeedsCleanSession);
        }
        let len = connect.client_id.len();
        if len > self.profile.max_client_id_len {
            return Err(ClientError::ClientIdTooLong {
                len,
                max: self.profile.max_client_id_len,
            });
        }
        if let Some(will) = &connect.will {
            self.check_qos(will.qos)?;
            self.check_retain(will.retain)?;
            self.check_topic(will.topic.as_bytes())?;
            self.check_payload(will.message.len())?;
        }
        if let Some(earliest) = self.earliest_connect() {
            if now.max(self.now) < earliest {
                return Err(ClientError::ConnectTooSoon { earliest });
            }
        }
        let now = self.tick(now);
        self.backoff.connecting(now);
        // With clean session 1 the session is discarded when CONNACK accepts the
        // connection (MQTT-3.1.2-6: both sides discard it), not before: if this CONNECT
        // never reaches the server, the server still holds the session, and a client
        // that had forgotten the QoS 2 ids it received would deliver their resends
        // twice on the next resumed session.
        let requested = connect.keep_alive;
        let effective = if requested == 0 {
            self.profile.effective_keep_alive(0)
        } else {
            requested
        };
        let keep_alive = (effective > 0).then(|| Duration::from_secs(u64::from(effective)));
        self.read_buf.clear();
        self.state = State::AwaitingConnAck {
            deadline: now + self.config.connack_timeout,
            link: Link {
                clean_session: connect.clean_session,
                keep_alive,
                last_sent: now,
                ping_deadline: None,
            },
        };
        self.push(Action::Send(Packet::Connect(connect)));
        Ok(())
    }

    /// The earliest instant [`connect`](Self::connect) is accepted: the backoff's
    /// [`min_connect_interval`](Backoff::min_connect_interval) after the last CONNECT
    /// (one second under AWS IoT Core); `None` before the first. A driver that
    /// reconnects on the application's request waits until then before it opens the
    /// network connection.
    pub fn earliest_connect(&self) -> Option<Instant> {
        self.backoff.earliest_connect()
    }

    /// The network connection broke or was closed by the server. The client is
    /// disconnected; with clean session 0 it keeps the session for the next
    /// [`connect`](Self::connect). What is given up is reported as [`Event::Lost`].
    /// With [`ClientConfig::reconnect`] the client asks to be reconnected after the
    /// backoff. Does nothing when already disconnected.
    pub fn connection_lost(&mut self, now: Instant) {
        self.tick(now);
        self.end_connection(true);
    }

    /// Opening a network connection failed before a CONNECT could be sent on it (the
    /// server unreachable, the TLS handshake refused, …). With
    /// [`ClientConfig::reconnect`] it counts as a failed attempt: the client asks again
    /// ([`Action::Reconnect`]) after the next, longer delay. Does nothing while a
    /// connection is open or being opened, or without `reconnect`.
    pub fn connection_failed(&mut self, now: Instant) {
        let now = self.tick(now);
        if matches!(self.state, State::Disconnected(_)) {
            self.redial(now);
        }
    }

    /// With [`ClientConfig::reconnect`], a disconnected client asks to be reconnected
    /// once the backoff from `now` has passed.
    pub(super) fn redial(&mut self, now: Instant) {
        if self.config.reconnect.is_some() {
            self.state = State::Disconnected(Redial::At(self.backoff.lost(now)));
        }
    }

    /// Ends the connection: emits `Close`, keeps or discards the session. What the
    /// session gives up follows the `Close`, as [`Event::Lost`].
    pub(super) fn close(&mut self, reason: Reason) {
        self.push(Action::Close(reason));
        self.end_connection(worth_retrying(reason));
    }

    /// The connection is gone: keep the session (clean session 0) or discard it, and,
    /// when `retry` and reconnecting is on, schedule the reconnect.
    pub(super) fn end_connection(&mut self, retry: bool) {
        let off = State::Disconnected(Redial::Off);
        let (clean, accepted) = match core::mem::replace(&mut self.state, off) {
            State::Disconnected(redial) => {
                self.state = State::Disconnected(redial);
                return;
            }
            State::AwaitingConnAck { link, .. } => (link.clean_session, false),
            State::Connected(link) => (link.clean_session, true),
        };
        if retry {
            self.redial(self.now);
        }
        self.read_buf.clear();
        self.acks.clear();
        if clean && accepted {
            // MQTT-3.1.2-6: a clean session ends with its connection.
            self.discard_session(|_| true);
            self.session.clear_inbound_qos2();
        } else if clean {
            // A clean session that CONNACK never accepted may not have reached the
            // server, which then still holds the earlier session: what went out on it
            // and the QoS 2 ids it received stay. What was held for this connection
            // is given up with it.
            self.discard_session(|o| !o.sent);
        }
        self.discard_requests();
    }

    /// Removes the outgoing entries `which` selects, in order, reporting each as lost.
    pub(super) fn discard_session(&mut self, which: impl Fn(&Outgoing) -> bool) {
        for entry in self.session.discard(which) {
            self.held
                .retain(|h| !matches!(h, Held::Publish(id) if *id == entry.id));
            self.event(Event::Lost(lost_entry(entry)));
        }
    }

    /// Gives up what is not session state: SUBSCRIBE and UNSUBSCRIBE awaiting their
    /// acks, then what was held before CONNACK other than QoS 1/2 messages.
    pub(super) fn discard_requests(&mut self) {
        let mut lost = Vec::new();
        let requests = core::mem::take(&mut self.requests);
        for (id, pending) in requests {
            self.session.release_id(id);
            if pending.sent {
                lost.push(pending.request.lost());
            } else {
                // Reported in the order it was held, below.
                self.requests.insert(id, pending);
            }
        }
        for held in core::mem::take(&mut self.held) {
            match held {
                Held::Qos0(p) => lost.push(Lost::Publish(p)),
                Held::Request(id) => {
                    if let Some(pending) = self.requests.remove(&id) {
                        lost.push(pending.request.lost());
                    }
                }
                Held::Publish(id) => self.held.push_back(Held::Publish(id)),
            }
        }
        self.requests.clear();
        self.held_qos0 = 0;
        for l in lost {
            self.event(Event::Lost(l));
        }
    }
}
