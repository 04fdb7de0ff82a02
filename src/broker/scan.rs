//! A linear-scan subscription list with the subscription index's interface.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::types::{QoS, TopicFilter};

/// Subscriptions as `(filter, key) → QoS`, matched by scanning every filter.
#[derive(Debug, Clone)]
pub(crate) struct SubscriptionIndex<K: Ord + Clone> {
    hash_matches_parent: bool,
    subs: BTreeMap<(Vec<u8>, K), QoS>,
}

impl<K: Ord + Clone> SubscriptionIndex<K> {
    pub(crate) fn new(hash_matches_parent: bool) -> Self {
        SubscriptionIndex {
            hash_matches_parent,
            subs: BTreeMap::new(),
        }
    }

    pub(crate) fn insert(
        &mut self,
        filter: &TopicFilter<impl AsRef<[u8]>>,
        key: K,
        qos: QoS,
    ) -> Option<QoS> {
        self.subs.insert((filter.as_bytes().to_vec(), key), qos)
    }

    pub(crate) fn remove(&mut self, filter: &[u8], key: &K) -> Option<QoS> {
        self.subs.remove(&(filter.to_vec(), key.clone()))
    }

    pub(crate) fn for_each_match(&self, topic: &[u8], mut f: impl FnMut(&K, QoS)) {
        for ((filter, key), qos) in &self.subs {
            if crate::topic::matches(filter, topic, self.hash_matches_parent) {
                f(key, *qos);
            }
        }
    }
}
