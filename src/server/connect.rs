//! The CONNECT path: the profile's and the [`Authorizer`](super::Authorizer)'s checks
//! on a CONNECT, and the application's answer to the [`ServerEvent::Connect`] they let
//! through: [`accept`](Server::accept), [`accept_as`](Server::accept_as) or
//! [`refuse`](Server::refuse).

use alloc::boxed::Box;

use bytes::Bytes;

use super::{
    CloseReason, ConnectRequest, PolicyViolation, Server, ServerError, ServerEvent, State,
};
use crate::packet::{ConnAck, Connect, ConnectReturnCode, Packet};
use crate::profile::RetainPolicy;
use crate::session::ServerSession;
use crate::time::Instant;
use crate::topic::reserved;
use crate::types::{MqttString, QoS};

impl Server {
    pub(super) fn handle_connect(&mut self, deadline: Instant, c: Connect<Bytes>) {
        let p = &self.profile;
        if c.client_id.is_empty() && !c.clean_session {
            // MQTT-3.1.3-8
            return self.refuse_with(ConnectReturnCode::IdentifierRejected);
        }
        if c.client_id.len() > p.max_client_id_len {
            // MQTT-3.1.3-9
            return self.refuse_with(ConnectReturnCode::IdentifierRejected);
        }
        if let Some(w) = &c.will {
            if w.qos == QoS::ExactlyOnce && !p.supports_qos2() {
                // No CONNACK code fits (MQTT-3.2.2-6); AWS closes without one.
                return self.close(CloseReason::Policy(PolicyViolation::Qos2));
            }
            if w.retain && p.retain == RetainPolicy::Close {
                return self.close(CloseReason::Policy(PolicyViolation::Retain));
            }
            if !p.topic_within_limits(w.topic.as_bytes()) {
                return self.close(CloseReason::Policy(PolicyViolation::TopicTooLong));
            }
            if let Err(r) = reserved::check_publish(p, w.topic.as_bytes(), w.retain) {
                return self.close(CloseReason::Policy(r.into()));
            }
        }
        if let Err(code) = self
            .config
            .authorizer
            .connect(&c.client_id, c.login.as_ref())
        {
            return self.refuse_with(code);
        }
        let request = ConnectRequest {
            client_id: c.client_id,
            clean_session: c.clean_session,
            keep_alive: self.profile.effective_keep_alive(c.keep_alive),
            will: c.will,
            login: c.login,
        };
        self.state = State::AwaitingAnswer {
            deadline,
            request: Box::new(request.clone()),
        };
        self.event(ServerEvent::Connect(request));
    }

    /// Accepts the pending CONNECT (MQTT-3.1.4-4): sends CONNACK with Session Present
    /// set when `resumed` is a stored session, resends its unacknowledged messages per
    /// the profile, then processes the packets pipelined after the CONNECT.
    ///
    /// `client_id` replaces an empty client id (an id the server assigned,
    /// MQTT-3.1.3-6); `None` keeps the one the client sent. Refused with
    /// [`ServerError::NotAwaitingAnswer`], nothing changed, unless a
    /// [`ServerEvent::Connect`] awaits an answer.
    pub fn accept_as(
        &mut self,
        now: Instant,
        client_id: Option<MqttString<Bytes>>,
        resumed: Option<ServerSession>,
    ) -> Result<(), ServerError> {
        let State::AwaitingAnswer { ref request, .. } = self.state else {
            return Err(ServerError::NotAwaitingAnswer);
        };
        let request = ConnectRequest::clone(request);
        let session_present = resumed.is_some() && !request.clean_session;
        self.session = match resumed {
            Some(s) if !request.clean_session => s,
            _ => ServerSession::new(),
        };
        self.session
            .session
            .set_recording(self.config.report_changes && !request.clean_session);
        self.client_id = client_id.unwrap_or(request.client_id);
        self.will = request.will.map(Box::new);
        self.accepted = true;
        self.release_actions = true;
        self.state = State::Connected {
            keep_alive: self.profile.inactivity_timeout(request.keep_alive),
            last_rx: now,
        };
        self.send(Packet::ConnAck(ConnAck::Accepted { session_present }));
        self.expire_retries(now);
        self.resend();
        self.fill_window(now);
        if !self.rx.is_empty() && !self.profile.send_before_connack {
            self.close(CloseReason::Policy(PolicyViolation::SentBeforeConnAck));
            return Ok(());
        }
        self.process(now);
        Ok(())
    }

    /// [`accept_as`](Self::accept_as) keeping the client's own id.
    pub fn accept(
        &mut self,
        now: Instant,
        resumed: Option<ServerSession>,
    ) -> Result<(), ServerError> {
        self.accept_as(now, None, resumed)
    }

    /// Refuses the pending CONNECT with `code`: sends CONNACK with it and closes
    /// (MQTT-3.2.2-5), ignoring anything pipelined (MQTT-3.1.4-5). Refused with
    /// [`ServerError::NotAwaitingAnswer`], nothing changed, unless a
    /// [`ServerEvent::Connect`] awaits an answer.
    pub fn refuse(&mut self, _now: Instant, code: ConnectReturnCode) -> Result<(), ServerError> {
        let State::AwaitingAnswer { .. } = self.state else {
            return Err(ServerError::NotAwaitingAnswer);
        };
        self.refuse_with(code);
        Ok(())
    }

    pub(super) fn refuse_with(&mut self, code: ConnectReturnCode) {
        self.send(Packet::ConnAck(ConnAck::Refused(code)));
        self.will = None;
        self.close(CloseReason::Refused(code));
    }
}
