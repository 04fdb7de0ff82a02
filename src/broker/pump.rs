//! Carrying out what the connections' servers ask: pumping a connection's server,
//! settling every connection that got something to send (in connection id order),
//! keeping each connection's timer under its server's deadline, and turning a
//! server's actions into the broker's.

use alloc::vec::Vec;

use super::{Action, Broker, BrokerEvent, ConnId, DropReason};
use crate::packet::Packet;
use crate::server::{Action as ServerAction, ServerEvent};
use crate::session::BrokerChange;
use crate::time::Instant;
use crate::types::MqttString;

impl Broker {
    /// Puts connection `conn` (in `slot`) in the timers under its server's deadline.
    pub(super) fn arm(&mut self, conn: ConnId, slot: usize) {
        let Some(c) = self.conns.at_mut(conn, slot) else {
            return;
        };
        let at = c.server.poll_timeout();
        if at == c.armed {
            return;
        }
        if let Some(old) = core::mem::replace(&mut c.armed, at) {
            self.timers.remove(&(old, conn));
        }
        if let Some(at) = at {
            self.timers.insert((at, conn));
        }
    }

    /// Pumps every connection that got something to send, in connection id order,
    /// until none is left.
    pub(super) fn settle(&mut self, now: Instant) {
        let mut batch = core::mem::take(&mut self.settling);
        let mut next = 0;
        // A QoS 1 message sent under a retry limit starts its own deadline, which can
        // come before the connection's; without that limit, handing messages to a
        // connection leaves its deadline where it was.
        let rearm = self.profile.quotas.qos1_retry_limit.is_some();
        loop {
            if !self.dirty.is_empty() {
                // More to pump: in order with what is left of this batch.
                batch.drain(..next);
                batch.append(&mut self.dirty);
                batch.sort_unstable();
                next = 0;
            }
            let Some(&(conn, slot)) = batch.get(next) else {
                break;
            };
            next += 1;
            match self.conns.take_dirty(conn, slot) {
                // Only deliveries staged while it was quiet: its server is not reached.
                Some(true) => self.flush_staged(slot),
                // Only messages were handed to it since its last pump.
                Some(false) => self.pump_at(now, conn, slot, rearm),
                None => {}
            }
        }
        batch.clear();
        self.settling = batch;
    }

    /// Carries out the deliveries staged for `slot`, counted as sent.
    pub(super) fn flush_staged(&mut self, slot: usize) {
        self.stats.messages_sent += self.conns.flush_staged(slot, &mut self.actions);
    }

    /// Carries out the actions of one connection's server, in order.
    pub(super) fn pump(&mut self, now: Instant, conn: ConnId) {
        if let Some(slot) = self.conns.slot_of(conn) {
            self.pump_at(now, conn, slot, true);
        }
    }

    /// [`pump`](Self::pump) for connection `conn` in `slot`; `rearm` puts it back in
    /// the timers under its (possibly new) deadline.
    ///
    /// The deliveries staged for it while it was quiet go first: its server queued
    /// nothing before them. A connection still quiet has nothing else to do, and its
    /// server is not reached.
    fn pump_at(&mut self, now: Instant, conn: ConnId, slot: usize, rearm: bool) {
        match self.conns.begin_pump(conn, slot) {
            None => return,
            Some(true) => return self.flush_staged(slot),
            Some(false) => {}
        }
        let mut fed = false;
        loop {
            // Staged while a nested pump had left it quiet.
            self.flush_staged(slot);
            let Some(c) = self.conns.at_mut(conn, slot) else {
                return;
            };
            if c.server.is_closed() {
                // What the connection did before it closed is carried out while it is
                // still known (its subscriptions reach the index); from the close on,
                // it is forgotten, so that its will reaches its stored session, if any.
                let mut rest = Vec::new();
                while let Some(a) = c.server.poll_action() {
                    rest.push(a);
                }
                let reason = rest.iter().find_map(|a| match a {
                    ServerAction::Close(r) => Some(*r),
                    _ => None,
                });
                let mut detached = false;
                for a in rest {
                    let ends = matches!(
                        a,
                        ServerAction::Close(_) | ServerAction::Event(ServerEvent::Will(_))
                    );
                    if ends && !detached {
                        self.detach(now, conn, reason);
                        detached = true;
                    }
                    self.on_server_action(now, conn, a);
                }
                if !detached {
                    self.detach(now, conn, reason);
                }
                return;
            }
            match c.server.poll_action() {
                // Retained messages pending for the connection go after what it
                // had to do (a SUBACK first), as it has room; once per pump.
                None if !fed && self.feed_retained(now, conn, slot) => fed = true,
                None => break,
                Some(ServerAction::Send(packet @ Packet::Publish(_))) => {
                    // The common case, without a detour.
                    self.stats.messages_sent += 1;
                    self.actions.push_back(Action::Send { conn, packet });
                }
                Some(a) => self.on_server_action(now, conn, a),
            }
        }
        if self.pressure.bounded {
            self.account(conn, slot);
        }
        if rearm {
            self.arm(conn, slot);
        }
        let connected = self
            .conns
            .at_mut(conn, slot)
            .is_some_and(|c| c.server.is_connected());
        if connected && !self.pending.contains_key(&conn) {
            self.conns.set_quiet(conn, slot);
        }
    }

    fn on_server_action(&mut self, now: Instant, conn: ConnId, a: ServerAction) {
        match a {
            ServerAction::Send(packet) => {
                if matches!(packet, Packet::PubAck(_) | Packet::PubRec(_)) {
                    // The deliveries of the acknowledged message go out before the
                    // acknowledgement (a publisher waiting for it sends its next message
                    // while the subscribers' copies are on their way, not before), and
                    // what routing stored is reported before it.
                    self.settle(now);
                }
                match packet {
                    Packet::Publish(_) => self.stats.messages_sent += 1,
                    _ => self.stats.packets_sent += 1,
                }
                // Looked at in place, and moved once: into the held acknowledgements
                // of a throttled publisher, or else into the actions.
                match self.pressure.held_acks(conn) {
                    Some(acks) if matches!(packet, Packet::PubAck(_) | Packet::PubComp(_)) => {
                        acks.push(packet)
                    }
                    _ => self.actions.push_back(Action::Send { conn, packet }),
                }
            }
            ServerAction::Change(change) => {
                if let Some(client) = self.client_of(conn) {
                    self.change(BrokerChange::Session {
                        client_id: MqttString(client),
                        change,
                    });
                }
            }
            ServerAction::Close(reason) => self.actions.push_back(Action::Close { conn, reason }),
            ServerAction::Event(e) => match e {
                ServerEvent::Connect(req) => self.on_connect(now, conn, req),
                ServerEvent::Publish(m) => {
                    self.stats.messages_received += 1;
                    // The publisher a full queue throttles.
                    self.pressure.source = Some(conn);
                    self.route(now, m);
                    self.pressure.source = None;
                }
                ServerEvent::Will(m) => self.route(now, m),
                ServerEvent::Subscribed(list) => self.on_subscribed(now, conn, list),
                ServerEvent::Unsubscribed(list) => {
                    if let Some(client) = self.client_of(conn) {
                        for f in &list {
                            self.remove_subscription(f.as_bytes(), &client);
                        }
                        let topics: Vec<&str> = list.iter().map(|f| f.as_str()).collect();
                        if let Some(m) = self.lifecycle.subscriptions(now, conn, false, &topics) {
                            self.route(now, m);
                        }
                    }
                }
                ServerEvent::Ignored(what) => self
                    .actions
                    .push_back(Action::Event(BrokerEvent::Ignored { conn, what })),
                ServerEvent::Discarded(message) => {
                    self.stats.messages_received += 1;
                    self.actions
                        .push_back(Action::Event(BrokerEvent::Discarded { conn, message }))
                }
                ServerEvent::UnexpectedAck {
                    packet_type,
                    packet_id,
                } => self
                    .actions
                    .push_back(Action::Event(BrokerEvent::UnexpectedAck {
                        conn,
                        packet_type,
                        packet_id,
                    })),
                ServerEvent::RetryExpired { packet_id, message } => {
                    if let Some(client) = self.client_of(conn) {
                        let reason = DropReason::RetryExpired { packet_id };
                        self.dropped(&client, message, reason);
                    }
                }
            },
        }
    }
}
