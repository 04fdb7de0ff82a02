//! Routing: from one application message to every session whose subscriptions match
//! it (MQTT-4.5.0-1), one copy per session at the highest matching QoS (MQTT-3.3.5-1),
//! and from a new subscription to the retained messages that match it (MQTT-3.3.1-6).
//!
//! The subscription index does not hold client ids but dense numbers
//! ([`Subscribers`]): a client id with at least one subscription in the index has one,
//! and its record says which connection it is online on. Routing to many subscribers
//! then costs no search per subscriber: the index yields numbers, a mark per record
//! removes the duplicates (a client matched by several filters), and each record
//! leads to its connection's slot.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::mem;

use bytes::Bytes;

use super::pressure::over_bound;
use super::{Action, Broker, BrokerEvent, ConnId, DropReason};
use crate::packet::{Publish, QosPid};
use crate::profile::RetainPolicy;
use crate::server::{Message, NotQueued};
use crate::session::{BrokerChange, Change};
use crate::time::Instant;
use crate::types::{MqttString, QoS, TopicFilter};

/// Retained messages matched by new subscriptions and not yet handed to their
/// connections' sessions, by connection: a snapshot taken at the SUBSCRIBE (each at
/// its delivery QoS, RETAIN=1), so a retained message changed or cleared meanwhile
/// still goes out as it was when the subscription was made. Not durable: a connection
/// that ends drops its list, and a resumed session does not get it back (MQTT 3.1.1
/// sends retained messages on new subscriptions only, MQTT-3.3.1-6).
pub(super) type PendingRetained = BTreeMap<ConnId, VecDeque<Message>>;

/// The dense number of a client id in the subscription index.
pub(super) type Sid = u32;

/// One client id with subscriptions in the index.
#[derive(Debug)]
struct Subscriber {
    client: Bytes,
    /// How many (filter, this client) subscriptions the index holds.
    filters: usize,
}

/// What a route reads and writes of a subscriber, apart from its client id: a route to
/// many subscribers goes through a dense array of these.
#[derive(Debug, Clone, Copy)]
struct Hot {
    /// The route that matched it last, and the highest QoS that route matched.
    mark: u64,
    best: QoS,
    /// Whether the client is online, on connection `conn` in `slot`.
    online: bool,
    conn: ConnId,
    slot: usize,
}

impl Hot {
    fn new(conn: Option<(ConnId, usize)>) -> Hot {
        let (online, (conn, slot)) = match conn {
            Some(c) => (true, c),
            None => (false, (ConnId(0), 0)),
        };
        Hot {
            mark: 0,
            best: QoS::AtMostOnce,
            online,
            conn,
            slot,
        }
    }

    /// The connection (and its slot) the client is online on.
    fn conn(&self) -> Option<(ConnId, usize)> {
        self.online.then_some((self.conn, self.slot))
    }
}

/// The client ids with subscriptions in the index, by dense number. A number is
/// reused once its client has no subscription left.
#[derive(Debug, Default)]
pub(super) struct Subscribers {
    by_client: BTreeMap<Bytes, Sid>,
    records: Vec<Option<Subscriber>>,
    /// By number, beside `records` (a free number's is stale).
    hot: Vec<Hot>,
    free: Vec<Sid>,
    /// The number of the current route (marks older than it are stale).
    route: u64,
}

impl Subscribers {
    /// The number of `client`, if it has subscriptions.
    pub(super) fn id(&self, client: &[u8]) -> Option<Sid> {
        self.by_client.get(client).copied()
    }

    fn get(&self, sid: Sid) -> Option<&Subscriber> {
        self.records.get(sid as usize)?.as_ref()
    }

    fn get_mut(&mut self, sid: Sid) -> Option<&mut Subscriber> {
        self.records.get_mut(sid as usize)?.as_mut()
    }

    /// The number of `client`, made (online on `conn`) if it has none yet.
    pub(super) fn id_or_insert(&mut self, client: &Bytes, conn: Option<(ConnId, usize)>) -> Sid {
        if let Some(sid) = self.id(client) {
            return sid;
        }
        let record = Some(Subscriber {
            client: client.clone(),
            filters: 0,
        });
        let hot = Hot::new(conn);
        let sid = match self.free.pop() {
            Some(sid) => {
                self.records[sid as usize] = record;
                self.hot[sid as usize] = hot;
                sid
            }
            None => {
                self.records.push(record);
                self.hot.push(hot);
                (self.records.len() - 1) as Sid
            }
        };
        self.by_client.insert(client.clone(), sid);
        sid
    }

    /// One more subscription of `sid` in the index.
    pub(super) fn added(&mut self, sid: Sid) {
        if let Some(s) = self.get_mut(sid) {
            s.filters += 1;
        }
    }

    /// One subscription of `sid` less in the index; the number is freed with the last.
    pub(super) fn removed(&mut self, sid: Sid) {
        let Some(s) = self.get_mut(sid) else {
            return;
        };
        s.filters -= 1;
        if s.filters == 0 {
            if let Some(s) = self.records[sid as usize].take() {
                self.by_client.remove(&s.client);
            }
            self.free.push(sid);
        }
    }

    /// `client` is now online on `conn` (in slot), or offline (`None`).
    pub(super) fn set_conn(&mut self, client: &[u8], conn: Option<(ConnId, usize)>) {
        if let Some(sid) = self.id(client) {
            if let Some(h) = self.hot.get_mut(sid as usize) {
                *h = Hot {
                    mark: h.mark,
                    best: h.best,
                    ..Hot::new(conn)
                };
            }
        }
    }

    /// Starts a route: every mark is stale.
    fn begin(&mut self) {
        self.route += 1;
    }

    /// `sid` matched the current route at `qos`: true the first time.
    #[inline]
    fn mark(&mut self, sid: Sid, qos: QoS) -> bool {
        let route = self.route;
        let Some(h) = self.hot.get_mut(sid as usize) else {
            return false;
        };
        if h.mark == route {
            h.best = h.best.max(qos);
            false
        } else {
            h.mark = route;
            h.best = qos;
            true
        }
    }

    /// The connection `sid` is online on, if any, and the highest QoS the current route
    /// matched it at.
    #[inline]
    fn target(&self, sid: Sid) -> Option<(Option<(ConnId, usize)>, QoS)> {
        let h = self.hot.get(sid as usize)?;
        Some((h.conn(), h.best))
    }
}

/// A delivery of a bounded route: the client, its connection (and slot) if online,
/// and the message at its delivery QoS.
type Weighed = (Bytes, Option<(ConnId, usize)>, Message);

/// A delivery whose outcome is an action of the broker's own (an event, a change):
/// those go out in client-id order, as they always have.
enum Late {
    /// For a session whose client is offline.
    Offline(Message),
    /// Refused by an online session's bound.
    Dropped(Message),
}

impl Broker {
    /// The transport of `conn` has written what it was given: the retained messages
    /// still pending for it (those of a large match, which follow the SUBACK as the
    /// session has room) continue.
    pub fn writable(&mut self, now: Instant, conn: ConnId) {
        if self.pending.contains_key(&conn) {
            self.pump(now, conn);
            self.settle(now);
            self.relieve(now);
        }
    }

    /// Whether retained messages still wait for room on connection `conn`: a driver
    /// whose transport could not take at once all it was given calls
    /// [`writable`](Self::writable) once it has.
    pub fn wants_writable(&self, conn: ConnId) -> bool {
        self.pending.contains_key(&conn)
    }

    /// Routes an application message to every matching session (MQTT-4.5.0-1) and
    /// keeps it as the retained message when asked.
    pub(super) fn route(&mut self, now: Instant, m: Message) {
        if m.retain && self.profile.retain == RetainPolicy::Store {
            self.retain(&m, false);
        }
        // MQTT-3.3.5-1: one copy per client, at the highest matching QoS.
        let mut targets = mem::take(&mut self.targets);
        targets.clear();
        let subscribers = &mut self.subscribers;
        subscribers.begin();
        self.index.for_each_match(m.topic.as_bytes(), |&sid, qos| {
            if subscribers.mark(sid, qos) {
                targets.push(sid);
            }
        });
        if self.pressure.bounded {
            self.route_bounded(now, &m, &targets);
            self.targets = targets;
            if self.profile.shared_subscriptions {
                self.route_shared(now, &m);
            }
            return;
        }
        let mut late: Vec<(Bytes, Late)> = Vec::new();
        // The PUBLISH every quiet subscriber at QoS 0 gets, kept once for all of them.
        let mut staged = None;
        for &sid in &targets {
            let Some((conn, best)) = self.subscribers.target(sid) else {
                continue;
            };
            // MQTT-3.8.4-6: min(publish, granted).
            let qos = m.qos.min(best);
            if let Some((conn, slot)) = conn {
                if qos == QoS::AtMostOnce && self.conns.is_quiet(conn, slot) {
                    // What its server would have queued, behind nothing: staged.
                    let publish = *staged.get_or_insert_with(|| {
                        self.conns.keep(Publish {
                            dup: false,
                            qos: QosPid::AtMostOnce,
                            retain: false,
                            topic: m.topic.clone(),
                            payload: m.payload.clone(),
                        })
                    });
                    if self.conns.stage(conn, slot, publish) {
                        self.dirty.push((conn, slot));
                    }
                    continue;
                }
            }
            // MQTT-3.3.1-9: RETAIN=0 on routing.
            let out = Message {
                qos,
                retain: false,
                ..m.clone()
            };
            let result = match conn {
                Some((conn, slot)) => match self.deliver_online(now, conn, slot, out) {
                    Ok(()) => continue,
                    Err(NotQueued(message)) => Late::Dropped(message),
                },
                None => Late::Offline(out),
            };
            if let Some(s) = self.subscribers.get(sid) {
                late.push((s.client.clone(), result));
            }
        }
        self.targets = targets;
        late.sort_by(|a, b| a.0.cmp(&b.0));
        for (client, l) in late {
            match l {
                Late::Offline(m) => self.deliver(now, &client, m),
                Late::Dropped(message) => self.dropped(&client, message, DropReason::QueueFull),
            }
        }
        if self.profile.shared_subscriptions {
            self.route_shared(now, &m);
        }
    }

    /// The deliveries of a route when they are weighed against byte bounds or
    /// back-pressure applies ([`deliver_bounded`](Self::deliver_bounded)), in
    /// client-id order.
    fn route_bounded(&mut self, now: Instant, m: &Message, targets: &[Sid]) {
        let mut each: Vec<Weighed> = targets
            .iter()
            .filter_map(|&sid| {
                let (conn, best) = self.subscribers.target(sid)?;
                let client = self.subscribers.get(sid)?.client.clone();
                // MQTT-3.8.4-6: min(publish, granted); MQTT-3.3.1-9: RETAIN=0 on routing.
                let out = Message {
                    qos: m.qos.min(best),
                    retain: false,
                    ..m.clone()
                };
                Some((client, conn, out))
            })
            .collect();
        each.sort_by(|a, b| a.0.cmp(&b.0));
        for (client, conn, out) in each {
            self.deliver_bounded(now, &client, conn, out);
        }
    }

    /// Subscriptions granted on `conn`: into the index, and the retained messages that
    /// match them to the client.
    pub(super) fn on_subscribed(
        &mut self,
        now: Instant,
        conn: ConnId,
        list: Vec<(TopicFilter<Bytes>, QoS)>,
    ) {
        let Some(client) = self.client_of(conn) else {
            return;
        };
        let topics: Vec<TopicFilter<Bytes>> = list.iter().map(|(f, _)| f.clone()).collect();
        for (filter, qos) in list {
            if !self.add_subscription(&filter, &client, qos) {
                // A shared subscription gets no retained messages (MQTT 5 §4.8.2).
                continue;
            }
            // MQTT-3.3.1-6, MQTT-3.8.4-3: retained messages matching the (new or
            // replaced) subscription go out with RETAIN=1 (MQTT-3.3.1-8).
            let hmp = self.profile.hash_matches_parent;
            let matching: Vec<Message> = if filter.has_wildcards() {
                if !self.profile.retained_on_wildcard {
                    continue;
                }
                let mut found = Vec::new();
                self.retained
                    .for_each_match(filter.as_bytes(), hmp, |_, m| found.push(m.clone()));
                found
            } else {
                self.retained
                    .get(filter.as_bytes())
                    .cloned()
                    .into_iter()
                    .collect()
            };
            // Not handed over now: they follow the SUBACK (already sent, MQTT-3.8.4-1)
            // as the session has room (`feed_retained`).
            let pending = self.pending.entry(conn).or_default();
            for m in matching {
                pending.push_back(Message {
                    qos: m.qos.min(qos),
                    retain: true,
                    ..m
                });
            }
        }
        let names: Vec<&str> = topics.iter().map(|f| f.as_str()).collect();
        if let Some(m) = self.lifecycle.subscriptions(now, conn, true, &names) {
            self.route(now, m);
        }
    }

    /// Hands the retained messages pending for `conn` (in `slot`) to its session while
    /// it has room, in the order of the trie walk; true if any went.
    ///
    /// Room: a message goes while the session's queue is empty (QoS 1/2 into the
    /// inflight window, or as the one message queued behind it; QoS 0 at once, so
    /// never ahead of an earlier retained message still queued), so live messages,
    /// which queue up to the bound, are never starved and never dropped because of
    /// retained ones. QoS 0 has no acknowledgement to pace it: at most `max_queued`
    /// (the session's allowance of messages waiting for the client) go per pump of the
    /// connection, which its next input or [`Broker::writable`](super::Broker::writable)
    /// (the transport drained) brings.
    pub(super) fn feed_retained(&mut self, now: Instant, conn: ConnId, slot: usize) -> bool {
        let Some(list) = self.pending.get_mut(&conn) else {
            return false;
        };
        let Some(c) = self.conns.at_mut(conn, slot) else {
            return false;
        };
        if !c.server.is_connected() {
            return false;
        }
        let burst = self.config.connection.max_queued.max(1);
        let (mut qos0, mut fed) = (0, false);
        let mut dropped = Vec::new();
        while let Some(m) = list.pop_front() {
            if c.server.session().queued() > 0 || (m.qos == QoS::AtMostOnce && qos0 == burst) {
                list.push_front(m);
                break;
            }
            if m.qos == QoS::AtMostOnce {
                qos0 += 1;
            }
            match c.server.publish(now, m) {
                Ok(()) => fed = true,
                // Refused with nothing in flight (a bound of 0): no acknowledgement
                // will make room, so it is dropped and reported.
                Err(NotQueued(m)) if c.server.session().inflight() == 0 => dropped.push(m),
                Err(NotQueued(m)) => {
                    list.push_front(m);
                    break;
                }
            }
        }
        if list.is_empty() {
            self.pending.remove(&conn);
        }
        if !dropped.is_empty() {
            if let Some(client) = self.client_of(conn) {
                for m in dropped {
                    self.dropped(&client, m, DropReason::QueueFull);
                }
            }
        }
        fed
    }

    /// Stores or clears the retained message of `m`'s topic (MQTT-3.3.1-5, -7, -10,
    /// -11), within [`max_retained`](super::BrokerConfig::max_retained).
    /// Keeps `m` as the retained message of its topic, or clears it, for a client's
    /// PUBLISH (within [`BrokerConfig::max_retained`](super::BrokerConfig)) or, `own`,
    /// for the broker's own ([`Broker::publish`]), outside that bound.
    pub(super) fn retain(&mut self, m: &Message, own: bool) {
        let topic = m.topic.as_bytes();
        // A topic changes hands with its last message: the broker's or a client's.
        let was_own = self.own_retained.remove(topic);
        let clients =
            (self.retained.len()).saturating_sub(self.own_retained.len() + usize::from(was_own));
        if m.payload.is_empty() {
            // MQTT-3.3.1-10, -11
            if self.retained.remove(topic).is_some() {
                self.change(BrokerChange::RetainedCleared(m.topic.clone()));
            }
        } else if own
            || (self.retained.contains(topic) && !was_own)
            || self.config.max_retained.is_none_or(|max| clients < max)
        {
            // MQTT-3.3.1-5, -7
            if own {
                self.own_retained.insert(m.topic.clone().into_inner());
            }
            self.retained.insert(topic, m.clone());
            self.change(BrokerChange::RetainedSet(m.clone()));
        } else {
            if was_own {
                // Over the bound: the broker's message stays, and stays the broker's.
                self.own_retained.insert(m.topic.clone().into_inner());
            }
            self.actions
                .push_back(Action::Event(BrokerEvent::RetainedNotStored {
                    message: m.clone(),
                }));
        }
    }

    /// Hands `m` to the session of `client`, online or stored.
    pub(super) fn deliver(&mut self, now: Instant, client: &Bytes, m: Message) {
        let online = self.online.get(client).copied();
        let Some(conn) = online else {
            return self.deliver_stored(client, m);
        };
        let Some(slot) = self.conns.slot_of(conn) else {
            return;
        };
        if self.pressure.bounded {
            return self.deliver_bounded(now, client, Some((conn, slot)), m);
        }
        if let Err(NotQueued(message)) = self.deliver_online(now, conn, slot, m) {
            self.dropped(client, message, DropReason::QueueFull);
        }
    }

    /// Hands `m` to the server of connection `conn` (in `slot`), to be pumped.
    #[inline]
    pub(super) fn deliver_online(
        &mut self,
        now: Instant,
        conn: ConnId,
        slot: usize,
        m: Message,
    ) -> Result<(), NotQueued> {
        if self.conns.mark_dirty(conn, slot) {
            self.dirty.push((conn, slot));
        }
        let Some(c) = self.conns.at_mut(conn, slot) else {
            return Ok(());
        };
        c.server.publish(now, m)
    }

    /// Queues `m` in the stored session of `client` (QoS 1 and 2), reporting the change;
    /// a message beyond the session's bounds or the total budget is dropped and
    /// reported, under either [`QueueFullPolicy`](super::QueueFullPolicy): an offline
    /// session drains only when its client returns, so it throttles no publisher.
    pub(super) fn deliver_stored(&mut self, client: &Bytes, m: Message) {
        let Some(st) = self.stored.get_mut(client) else {
            return;
        };
        if m.qos == QoS::AtMostOnce {
            // QoS 0 is not kept for an offline session (optional, MQTT-3.1.2-5), and
            // saying so keeps the loss visible.
            self.dropped(client, m, DropReason::OfflineQos0);
            return;
        }
        if let Some(reason) = over_bound(&self.config, self.pressure.total, &st.session, &m) {
            self.dropped(client, m, reason);
            return;
        }
        // MQTT-3.1.2-5: queued while the client is offline. A stored session records
        // no changes: the broker reports them.
        let copy = self.config.connection.report_changes.then(|| m.clone());
        self.pressure.total += m.size();
        st.session.push_queue(m);
        if let Some(m) = copy {
            self.actions
                .push_back(Action::Change(BrokerChange::Session {
                    client_id: MqttString(client.clone()),
                    change: Change::Queued(m),
                }));
        }
    }

    /// Reports (and counts) `message` for `client` dropped for `reason`.
    pub(super) fn dropped(&mut self, client: &Bytes, message: Message, reason: DropReason) {
        self.stats.dropped.count(reason);
        self.actions.push_back(Action::Event(BrokerEvent::Dropped {
            client_id: MqttString(client.clone()),
            message,
            reason,
        }));
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec;

    use super::*;
    use crate::packet::{Connect, Packet, PacketType, Publish, QosPid, Subscribe};
    use crate::profile::Profile;
    use crate::server::ServerConfig;
    use crate::types::{PacketId, TopicFilter, TopicName};

    fn input(b: &mut Broker, conn: u64, p: Packet<Bytes>) -> Vec<Action> {
        b.handle_bytes(
            Instant::ZERO,
            ConnId(conn),
            &p.to_bytes().expect("encodable"),
        );
        core::iter::from_fn(|| b.poll_action()).collect()
    }

    fn join(b: &mut Broker, conn: u64, client: &'static str, clean: bool) {
        connect(b, conn, client, clean);
        subscribe(b, conn, "t", QoS::AtMostOnce);
    }

    fn connect(b: &mut Broker, conn: u64, client: &'static str, clean: bool) {
        b.open(Instant::ZERO, ConnId(conn)).expect("a fresh id");
        let connect = Connect {
            client_id: MqttString::from_static(client).expect("valid"),
            clean_session: clean,
            keep_alive: 0,
            will: None,
            login: None,
        };
        input(b, conn, Packet::Connect(connect));
    }

    fn subscribe(b: &mut Broker, conn: u64, filter: &'static str, qos: QoS) -> Vec<Action> {
        let filter = TopicFilter::from_static(filter).expect("valid");
        let id = PacketId::new(1).expect("non-zero");
        let subscribe = Subscribe::new(id, &[(filter, qos)]).expect("valid");
        input(b, conn, subscribe.into())
    }

    /// Several packets from `conn` in one read.
    fn input_all(b: &mut Broker, conn: u64, packets: Vec<Packet<Bytes>>) -> Vec<Action> {
        let mut bytes = Vec::new();
        for p in packets {
            bytes.extend_from_slice(&p.to_bytes().expect("encodable"));
        }
        b.handle_bytes(Instant::ZERO, ConnId(conn), &bytes);
        core::iter::from_fn(|| b.poll_action()).collect()
    }

    /// The PUBLISHes among `actions`: connection, payload and QoS.
    fn publishes(actions: &[Action]) -> Vec<(u64, Bytes, QoS)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    conn,
                    packet: Packet::Publish(p),
                } => Some((conn.0, p.payload.clone(), p.qos.qos())),
                _ => None,
            })
            .collect()
    }

    fn message(topic: &'static str, qos: QosPid, payload: &'static [u8]) -> Packet<Bytes> {
        let topic = TopicName::from_static(topic).expect("valid");
        Publish::new(topic, qos, payload).into()
    }

    fn publish(b: &mut Broker, conn: u64) -> Vec<Action> {
        let topic = TopicName::from_static("t").expect("valid");
        input(
            b,
            conn,
            Publish::new(topic, QosPid::AtMostOnce, &b"m"[..]).into(),
        )
    }

    #[test]
    fn deliveries_go_out_in_connection_order_whatever_order_the_subscribers_came_in() {
        let mut b = Broker::new(Profile::mqtt311(), ServerConfig::default());
        // Subscriber numbers follow the order of subscription: 30, 20, 10.
        for (conn, client) in [(30, "x"), (20, "y"), (10, "z")] {
            join(&mut b, conn, client, true);
        }
        // The publisher subscribes too: its own copy goes out as it is pumped, first.
        join(&mut b, 40, "publisher", true);
        let sent: Vec<u64> = publish(&mut b, 40)
            .iter()
            .filter_map(|a| match a {
                Action::Send { conn, .. } => Some(conn.0),
                _ => None,
            })
            .collect();
        assert_eq!(sent, [40, 10, 20, 30]);
    }

    #[test]
    fn a_qos1_publish_reaches_its_subscribers_before_its_puback_leaves() {
        let mut b = Broker::new(Profile::mqtt311(), ServerConfig::default());
        join(&mut b, 2, "subscriber", true);
        join(&mut b, 1, "publisher", true);
        let topic = TopicName::from_static("t").expect("valid");
        let id = PacketId::new(7).expect("non-zero");
        let publish = Publish::new(topic, QosPid::AtLeastOnce(id), &b"m"[..]);
        let sent: Vec<(u64, PacketType)> = input(&mut b, 1, publish.into())
            .iter()
            .filter_map(|a| match a {
                Action::Send { conn, packet } => Some((conn.0, packet.packet_type())),
                _ => None,
            })
            .collect();
        // `join` subscribed the publisher too: its own copy is a delivery as well.
        let deliveries = [(1, PacketType::Publish), (2, PacketType::Publish)];
        assert_eq!(sent[..2], deliveries);
        assert_eq!(sent[2..], [(1, PacketType::PubAck)]);
    }

    #[test]
    fn drops_for_offline_sessions_are_reported_in_client_id_order() {
        let mut b = Broker::new(Profile::mqtt311(), ServerConfig::default());
        // Subscriber numbers: c, a, b; connection ids in yet another order.
        for (conn, client) in [(5, "c"), (7, "a"), (6, "b")] {
            join(&mut b, conn, client, false);
            b.connection_lost(Instant::ZERO, ConnId(conn));
            while b.poll_action().is_some() {}
        }
        join(&mut b, 1, "publisher", true);
        let dropped: Vec<String> = publish(&mut b, 1)
            .iter()
            .filter_map(|a| match a {
                Action::Event(BrokerEvent::Dropped {
                    client_id, reason, ..
                }) => {
                    assert_eq!(*reason, DropReason::OfflineQos0);
                    Some(String::from(client_id.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(dropped, vec!["a", "b", "c"]);
    }

    #[test]
    fn a_subscriber_number_is_reused_once_its_client_has_no_subscription_left() {
        let mut b = Broker::new(Profile::mqtt311(), ServerConfig::default());
        join(&mut b, 1, "first", true);
        assert_eq!(b.subscribers.id(b"first"), Some(0));
        input(&mut b, 1, Packet::Disconnect);
        assert_eq!(b.subscribers.id(b"first"), None, "a clean session ends");
        join(&mut b, 2, "second", true);
        assert_eq!(b.subscribers.id(b"second"), Some(0));
        assert_eq!(b.subscribers.records.len(), 1);
        let sent = publish(&mut b, 2);
        assert!(
            sent.iter()
                .any(|a| matches!(a, Action::Send { conn, .. } if *conn == ConnId(2)))
        );
    }

    #[test]
    fn two_qos0_publishes_in_one_read_go_out_connection_by_connection() {
        let mut b = Broker::new(Profile::mqtt311(), ServerConfig::default());
        for (conn, client) in [(20, "y"), (10, "x")] {
            join(&mut b, conn, client, true);
        }
        connect(&mut b, 1, "publisher", true);
        let m = |p| message("t", QosPid::AtMostOnce, p);
        let sent = publishes(&input_all(&mut b, 1, vec![m(b"a"), m(b"b")]));
        let q0 = QoS::AtMostOnce;
        let expected = [(10, "a", q0), (10, "b", q0), (20, "a", q0), (20, "b", q0)]
            .map(|(c, p, q)| (c, Bytes::from_static(p.as_bytes()), q));
        assert_eq!(sent, expected);
    }

    #[test]
    fn a_qos0_message_goes_out_before_a_qos1_message_published_after_it() {
        let mut b = Broker::new(Profile::mqtt311(), ServerConfig::default());
        connect(&mut b, 2, "subscriber", true);
        subscribe(&mut b, 2, "t", QoS::AtLeastOnce);
        connect(&mut b, 1, "publisher", true);
        let id = PacketId::new(7).expect("non-zero");
        let first = message("t", QosPid::AtMostOnce, b"first");
        let second = message("t", QosPid::AtLeastOnce(id), b"second");
        let actions = input_all(&mut b, 1, vec![first, second]);
        let expected = [
            (2, Bytes::from_static(b"first"), QoS::AtMostOnce),
            (2, Bytes::from_static(b"second"), QoS::AtLeastOnce),
        ];
        assert_eq!(publishes(&actions), expected);
        let last = actions.iter().rev().find_map(|a| match a {
            Action::Send { conn, packet } => Some((conn.0, packet.packet_type())),
            _ => None,
        });
        assert_eq!(last, Some((1, PacketType::PubAck)));
    }

    #[test]
    fn a_live_message_does_not_stop_the_retained_messages_still_flowing_after_a_suback() {
        let config = ServerConfig {
            max_queued: 1,
            ..ServerConfig::default()
        };
        let mut b = Broker::new(Profile::mqtt311(), config);
        connect(&mut b, 1, "publisher", true);
        for (topic, payload) in [("t/1", b"r1"), ("t/2", b"r2"), ("t/3", b"r3")] {
            let topic = TopicName::from_static(topic).expect("valid");
            let mut p = Publish::new(topic, QosPid::AtMostOnce, &payload[..]);
            p.retain = true;
            input(&mut b, 1, p.into());
        }
        connect(&mut b, 2, "subscriber", true);
        // One QoS 0 retained message per pump (the allowance of 1): r1 with the SUBACK.
        let first = publishes(&subscribe(&mut b, 2, "t/#", QoS::AtMostOnce));
        assert_eq!(first.len(), 1);
        assert!(b.wants_writable(ConnId(2)));
        // A live message pumps the connection: it goes out, and the next retained one
        // follows it.
        let sent = publishes(&input(
            &mut b,
            1,
            message("t/9", QosPid::AtMostOnce, b"live"),
        ));
        let payloads: Vec<Bytes> = sent.into_iter().map(|(_, p, _)| p).collect();
        assert_eq!(payloads.len(), 2);
        assert_eq!(payloads[0], Bytes::from_static(b"live"));
        assert_ne!(payloads[1], first[0].1, "the next retained message");
    }
}
