//! Shared subscriptions: `$share/{ShareName}/{filter}` (MQTT 5 §4.8.2, offered on 3.1.1
//! by AWS IoT Core, mosquitto 2, EMQX and HiveMQ; a [`Profile`](crate::Profile) knob).
//!
//! The sessions subscribed with the same share name and filter form a group. Each
//! message matching the filter goes to one member: the next online member after the
//! one chosen last, in client-id order, so the choice is deterministic. While every
//! member is offline, QoS 1 messages wait in the group's queue (bounded like a
//! session's) and go to the first member that connects
//! (<https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt5-shared-subscription>).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use bytes::Bytes;

use super::{Action, Broker, BrokerEvent, DropReason};
use crate::profile::SHARE_PREFIX;
use crate::server::Message;
use crate::session::{BrokerChange, SharedQueue, StateError};
use crate::time::Instant;
use crate::topic::SubscriptionIndex;
use crate::types::{QoS, TopicFilter};

/// The share name and the filter of `filter` if it is a shared subscription: a share
/// name of at least one character without `/`, `+` or `#`, then a non-empty filter.
pub(crate) fn parse(filter: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = filter.strip_prefix(SHARE_PREFIX)?;
    let i = rest.iter().position(|&c| c == b'/')?;
    let (name, inner) = (&rest[..i], &rest[i + 1..]);
    let valid = !name.is_empty() && !name.iter().any(|&c| c == b'+' || c == b'#');
    (valid && !inner.is_empty()).then_some((name, inner))
}

#[derive(Debug, Default)]
struct Group {
    /// Members and the QoS each was granted, in client-id order.
    members: Vec<(Bytes, QoS)>,
    /// Where the search for the next member starts.
    next: usize,
    /// Messages waiting for a member to come online.
    queue: VecDeque<Message>,
}

/// Where a message for a group goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// To this member, at this QoS.
    Member(Bytes, QoS),
    /// Every member is offline: into the group's queue (QoS 1 and 2).
    Queue,
    /// Every member is offline and the message is QoS 0: not kept.
    Drop,
}

/// The shared-subscription groups of a broker.
#[derive(Debug)]
pub(crate) struct SharedGroups {
    /// The shared filters, keyed by the whole `$share/{name}/{filter}`.
    index: SubscriptionIndex<Bytes>,
    groups: BTreeMap<Bytes, Group>,
}

impl SharedGroups {
    pub(crate) fn new(hash_matches_parent: bool) -> Self {
        SharedGroups {
            index: SubscriptionIndex::new(hash_matches_parent),
            groups: BTreeMap::new(),
        }
    }

    /// Adds (or updates the QoS of) `client` in the group of `full`, a filter that
    /// [`parse`] accepts; `false` if it does not.
    pub(crate) fn join(&mut self, full: &TopicFilter<Bytes>, client: &Bytes, qos: QoS) -> bool {
        let bytes = full.clone().into_inner();
        let Some((name, inner)) = parse(&bytes) else {
            return false;
        };
        let start = SHARE_PREFIX.len() + name.len() + 1;
        let Ok(inner) = TopicFilter::new(bytes.slice(start..start + inner.len())) else {
            return false;
        };
        let group = self.groups.entry(bytes.clone()).or_default();
        if group.members.is_empty() {
            self.index.insert(&inner, bytes, QoS::AtMostOnce);
        }
        match group.members.binary_search_by(|(c, _)| c.cmp(client)) {
            Ok(i) => group.members[i].1 = qos,
            Err(i) => {
                group.members.insert(i, (client.clone(), qos));
                if i < group.next {
                    group.next += 1;
                }
            }
        }
        true
    }

    /// Removes `client` from the group of `full`. A group left without members is
    /// deleted; its queued messages come back, to be reported.
    pub(crate) fn leave(&mut self, full: &[u8], client: &Bytes) -> Vec<Message> {
        let Some(group) = self.groups.get_mut(full) else {
            return Vec::new();
        };
        if let Ok(i) = group.members.binary_search_by(|(c, _)| c.cmp(client)) {
            group.members.remove(i);
            if i < group.next {
                group.next -= 1;
            }
        }
        if !group.members.is_empty() {
            return Vec::new();
        }
        let queue = self
            .groups
            .remove(full)
            .map(|g| g.queue.into_iter().collect())
            .unwrap_or_default();
        if let Some((_, inner)) = parse(full) {
            self.index.remove(inner, &Bytes::copy_from_slice(full));
        }
        queue
    }

    /// The groups whose filter matches `topic`, in order.
    pub(crate) fn matching(&self, topic: &[u8]) -> Vec<Bytes> {
        let mut out = Vec::new();
        self.index
            .for_each_match(topic, |key, _| out.push(key.clone()));
        out.sort();
        out.dedup();
        out
    }

    /// Chooses where a message of `qos` for group `key` goes: the next member after the
    /// last one chosen for which `online` holds.
    pub(crate) fn pick(&mut self, key: &Bytes, qos: QoS, online: impl Fn(&Bytes) -> bool) -> Pick {
        let Some(group) = self.groups.get_mut(key) else {
            return Pick::Drop;
        };
        let n = group.members.len();
        for step in 0..n {
            let i = (group.next + step) % n;
            let (client, granted) = &group.members[i];
            if online(client) {
                let pick = Pick::Member(client.clone(), qos.min(*granted));
                group.next = (i + 1) % n;
                return pick;
            }
        }
        if qos == QoS::AtMostOnce {
            Pick::Drop
        } else {
            Pick::Queue
        }
    }

    /// Queues `m` for group `key`, unless it holds `max` messages already (then `m`
    /// comes back).
    pub(crate) fn enqueue(&mut self, key: &Bytes, m: Message, max: usize) -> Result<(), Message> {
        match self.groups.get_mut(key) {
            Some(g) if g.queue.len() < max => {
                g.queue.push_back(m);
                Ok(())
            }
            _ => Err(m),
        }
    }

    /// Takes the messages queued for group `key`, each at the QoS of `client`'s
    /// membership.
    pub(crate) fn take_queued(&mut self, key: &[u8], client: &Bytes) -> Vec<Message> {
        let Some(group) = self.groups.get_mut(key) else {
            return Vec::new();
        };
        let Ok(i) = group.members.binary_search_by(|(c, _)| c.cmp(client)) else {
            return Vec::new();
        };
        let granted = group.members[i].1;
        group
            .queue
            .drain(..)
            .map(|m| Message {
                qos: m.qos.min(granted),
                ..m
            })
            .collect()
    }

    /// The non-empty group queues, ascending by group.
    pub(crate) fn export(&self) -> Vec<SharedQueue> {
        self.groups
            .iter()
            .filter(|(_, g)| !g.queue.is_empty())
            .filter_map(|(key, g)| {
                Some(SharedQueue {
                    group: TopicFilter::new(key.clone()).ok()?,
                    queue: g.queue.iter().cloned().collect(),
                })
            })
            .collect()
    }

    /// Puts back the queue of an exported group, once its members have joined it again
    /// (from their imported subscriptions). Refused, changing nothing, for a group
    /// without members or with a queue already.
    pub(crate) fn restore(&mut self, q: SharedQueue) -> Result<(), StateError> {
        let group = self
            .groups
            .get_mut(q.group.as_bytes())
            .ok_or(StateError::Invalid("a shared queue without group members"))?;
        if !group.queue.is_empty() || q.queue.is_empty() {
            return Err(StateError::Invalid("a shared queue twice, or empty"));
        }
        group.queue = q.queue.into_iter().collect();
        Ok(())
    }

    /// The number of messages queued in group `key`.
    pub(crate) fn queued(&self, key: &[u8]) -> usize {
        self.groups.get(key).map_or(0, |g| g.queue.len())
    }
}

impl Broker {
    /// Adds the subscription of `client` to `filter`: to its shared group, or to the
    /// index. True for an ordinary (not shared) subscription.
    pub(super) fn add_subscription(
        &mut self,
        filter: &TopicFilter<Bytes>,
        client: &Bytes,
        qos: QoS,
    ) -> bool {
        if self.profile.shared_subscriptions && self.shared.join(filter, client, qos) {
            return false;
        }
        let online = self.online.get(client).and_then(|&conn| {
            let slot = self.conns.slot_of(conn)?;
            Some((conn, slot))
        });
        let sid = self.subscribers.id_or_insert(client, online);
        if self.index.insert(filter, sid, qos).is_none() {
            self.subscribers.added(sid);
        }
        true
    }

    /// Removes one subscription of `client` from the index, or from its shared group.
    pub(super) fn remove_subscription(&mut self, filter: &[u8], client: &Bytes) {
        if self.profile.shared_subscriptions && parse(filter).is_some() {
            let lost = self.shared.leave(filter, client);
            if let Ok(group) = TopicFilter::new(Bytes::copy_from_slice(filter)) {
                for message in lost {
                    self.change(BrokerChange::SharedDequeued(group.clone()));
                    self.stats.shared_dropped.count(DropReason::QueueFull);
                    self.actions
                        .push_back(Action::Event(BrokerEvent::SharedDropped {
                            group: group.clone(),
                            message,
                            reason: DropReason::QueueFull,
                        }));
                }
            }
        } else if let Some(sid) = self.subscribers.id(client) {
            if self.index.remove(filter, &sid).is_some() {
                self.subscribers.removed(sid);
            }
        }
    }

    /// Hands the messages queued in the shared groups `client` belongs to over to it,
    /// now that it is online.
    pub(super) fn flush_shared(&mut self, now: Instant, client: &Bytes) {
        if !self.profile.shared_subscriptions {
            return;
        }
        let Some(session) = self.session_of(client) else {
            return;
        };
        let groups: Vec<Bytes> = session
            .subscriptions()
            .filter(|(f, _)| parse(f).is_some() && self.shared.queued(f) > 0)
            .map(|(f, _)| Bytes::copy_from_slice(f))
            .collect();
        for g in groups {
            let Ok(group) = TopicFilter::new(g.clone()) else {
                continue;
            };
            for m in self.shared.take_queued(&g, client) {
                self.change(BrokerChange::SharedDequeued(group.clone()));
                self.deliver(now, client, m);
            }
        }
    }

    /// Gives `m` to one member of each shared group whose filter matches, or queues it
    /// in the group while every member is offline.
    pub(super) fn route_shared(&mut self, now: Instant, m: &Message) {
        for group in self.shared.matching(m.topic.as_bytes()) {
            let online = &self.online;
            let pick = self
                .shared
                .pick(&group, m.qos, |client| online.contains_key(client));
            let out = Message {
                retain: false,
                ..m.clone()
            };
            let dropped = match pick {
                Pick::Member(client, qos) => {
                    self.deliver(now, &client, Message { qos, ..out });
                    None
                }
                Pick::Queue => {
                    let max = self.config.connection.max_queued;
                    match self.shared.enqueue(&group, out.clone(), max) {
                        Ok(()) => {
                            if let Ok(filter) = TopicFilter::new(group.clone()) {
                                self.change(BrokerChange::SharedQueued {
                                    group: filter,
                                    message: out,
                                });
                            }
                            None
                        }
                        Err(m) => Some((m, DropReason::QueueFull)),
                    }
                }
                Pick::Drop => Some((out, DropReason::OfflineQos0)),
            };
            if let Some((message, reason)) = dropped {
                self.stats.shared_dropped.count(reason);
                if let Ok(group) = TopicFilter::new(group) {
                    self.actions
                        .push_back(Action::Event(BrokerEvent::SharedDropped {
                            group,
                            message,
                            reason,
                        }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(s: &'static str) -> TopicFilter<Bytes> {
        TopicFilter::new(Bytes::from_static(s.as_bytes())).expect("valid")
    }

    #[test]
    fn only_a_share_name_and_a_filter_make_a_shared_subscription() {
        assert_eq!(parse(b"$share/g/a/+"), Some((&b"g"[..], &b"a/+"[..])));
        assert_eq!(parse(b"$share//a"), None);
        assert_eq!(parse(b"$share/g"), None);
        assert_eq!(parse(b"$share/g/"), None);
        assert_eq!(parse(b"$share/+/a"), None);
        assert_eq!(parse(b"share/g/a"), None);
    }

    #[test]
    fn members_take_turns_in_client_id_order_skipping_the_offline_ones() {
        let mut g = SharedGroups::new(true);
        let key = Bytes::from_static(b"$share/g/t/#");
        for c in ["c", "a", "b"] {
            assert!(g.join(
                &filter("$share/g/t/#"),
                &Bytes::from_static(c.as_bytes()),
                QoS::AtLeastOnce
            ));
        }
        assert_eq!(g.matching(b"t/x"), vec![key.clone()]);
        let all = |_: &Bytes| true;
        let picks: Vec<Pick> = (0..4)
            .map(|_| g.pick(&key, QoS::AtLeastOnce, all))
            .collect();
        let name =
            |s: &'static str| Pick::Member(Bytes::from_static(s.as_bytes()), QoS::AtLeastOnce);
        assert_eq!(picks, [name("a"), name("b"), name("c"), name("a")]);
        let only_c = |c: &Bytes| c == "c";
        assert_eq!(g.pick(&key, QoS::AtLeastOnce, only_c), name("c"));
        let none = |_: &Bytes| false;
        assert_eq!(g.pick(&key, QoS::AtLeastOnce, none), Pick::Queue);
        assert_eq!(g.pick(&key, QoS::AtMostOnce, none), Pick::Drop);
    }

    #[test]
    fn the_last_member_leaving_deletes_the_group_and_returns_its_queue() {
        let mut g = SharedGroups::new(true);
        let key = Bytes::from_static(b"$share/g/t");
        let a = Bytes::from_static(b"a");
        g.join(&filter("$share/g/t"), &a, QoS::AtLeastOnce);
        let m = Message {
            topic: crate::TopicName::from_static("t").expect("valid"),
            payload: Bytes::from_static(b"x"),
            qos: QoS::AtLeastOnce,
            retain: false,
        };
        assert_eq!(g.enqueue(&key, m.clone(), 1), Ok(()));
        assert_eq!(g.enqueue(&key, m.clone(), 1), Err(m.clone()));
        assert_eq!(g.queued(&key), 1);
        assert_eq!(g.leave(&key, &a), [m]);
        assert!(g.matching(b"t").is_empty());
    }
}
