//! The retained-message store: a trie of topic names keyed by topic level.
//!
//! Matching a filter visits the trie nodes along the filter's literal levels and, under
//! a wildcard, the subtrees it covers: the cost follows what the filter can match, not
//! the number of messages stored. An exact topic is one walk down its levels.
//!
//! Every walk is iterative, dropping included: a topic of 65 535 bytes has up to
//! 32 768 levels and nothing recurses once per level.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::mem;

/// One level of the trie: the value stored for the topic that ends here, and the
/// levels below.
struct Node<V> {
    value: Option<V>,
    children: BTreeMap<Box<[u8]>, Node<V>>,
}

impl<V> Node<V> {
    const fn new() -> Self {
        Node {
            value: None,
            children: BTreeMap::new(),
        }
    }
}

impl<V> Drop for Node<V> {
    /// Drops the subtree without recursing once per level.
    fn drop(&mut self) {
        let mut pending: Vec<Node<V>> = mem::take(&mut self.children).into_values().collect();
        while let Some(mut node) = pending.pop() {
            pending.extend(mem::take(&mut node.children).into_values());
        }
    }
}

/// Retained messages (or any value) by topic name, one per topic.
///
/// ```
/// use mqtt_sansio::topic::RetainedStore;
///
/// let mut store = RetainedStore::new();
/// store.insert(b"sport/tennis/score", "15-0");
/// store.insert(b"sport/golf/score", "par");
/// store.insert(b"$SYS/uptime", "1 s");
///
/// let mut got = Vec::new();
/// store.for_each_match(b"sport/+/score", true, |topic, v| got.push((topic.to_vec(), *v)));
/// assert_eq!(got, [(b"sport/golf/score".to_vec(), "par"), (b"sport/tennis/score".to_vec(), "15-0")]);
///
/// // A wildcard in the first level does not match a `$` topic (MQTT-4.7.2-1).
/// let mut all = 0;
/// store.for_each_match(b"#", true, |_, _| all += 1);
/// assert_eq!(all, 2);
/// assert_eq!(store.get(b"$SYS/uptime"), Some(&"1 s"));
/// ```
pub struct RetainedStore<V> {
    root: Node<V>,
    len: usize,
    nodes: usize,
}

impl<V> Default for RetainedStore<V> {
    fn default() -> Self {
        RetainedStore::new()
    }
}

impl<V: core::fmt::Debug> core::fmt::Debug for RetainedStore<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RetainedStore")
            .field("len", &self.len)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

fn levels(topic: &[u8]) -> impl Iterator<Item = &[u8]> {
    topic.split(|&c| c == b'/')
}

impl<V> RetainedStore<V> {
    /// An empty store.
    pub const fn new() -> Self {
        RetainedStore {
            root: Node::new(),
            len: 0,
            nodes: 0,
        }
    }

    /// Stores `value` for `topic`; returns the value it replaces.
    pub fn insert(&mut self, topic: &[u8], value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in levels(topic) {
            if !node.children.contains_key(level) {
                self.nodes += 1;
            }
            node = node
                .children
                .entry(Box::from(level))
                .or_insert_with(Node::new);
        }
        let previous = node.value.replace(value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// The value stored for exactly `topic`.
    pub fn get(&self, topic: &[u8]) -> Option<&V> {
        let mut node = &self.root;
        for level in levels(topic) {
            node = node.children.get(level)?;
        }
        node.value.as_ref()
    }

    /// Whether a value is stored for exactly `topic`.
    pub fn contains(&self, topic: &[u8]) -> bool {
        self.get(topic).is_some()
    }

    /// Removes the value of `topic` and returns it; the levels that led only to it are
    /// pruned, so memory follows what is stored.
    pub fn remove(&mut self, topic: &[u8]) -> Option<V> {
        // First pass: find the value and the deepest node that must stay (the root, or
        // one holding a value or another child).
        let mut node = &self.root;
        let (mut depth, mut keep) = (0usize, 0usize);
        for level in levels(topic) {
            if node.value.is_some() || node.children.len() > 1 {
                keep = depth;
            }
            node = node.children.get(level)?;
            depth += 1;
        }
        node.value.as_ref()?;
        let prune = node.children.is_empty();
        // Second pass: take the value, and cut the chain below `keep` if nothing else
        // hangs on it.
        let mut node = &mut self.root;
        let mut path = levels(topic);
        let value = if prune {
            for level in path.by_ref().take(keep) {
                node = node.children.get_mut(level)?;
            }
            let first = path.next()?;
            let mut chain = node.children.remove(first)?;
            self.nodes -= depth - keep;
            // Walk the removed chain down to the value (each link has one child).
            let mut cur = &mut chain;
            for level in path {
                cur = cur.children.get_mut(level)?;
            }
            cur.value.take()
        } else {
            for level in path {
                node = node.children.get_mut(level)?;
            }
            node.value.take()
        };
        if value.is_some() {
            self.len -= 1;
        }
        value
    }

    /// Calls `f` with every stored topic and value, in byte order of the topics.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &V)) {
        let mut out: Vec<(Vec<u8>, &V)> = Vec::with_capacity(self.len);
        let mut pending: Vec<(&Node<V>, Vec<u8>, bool)> = Vec::new();
        pending.push((&self.root, Vec::new(), true));
        while let Some((node, topic, first)) = pending.pop() {
            for (name, child) in &node.children {
                let t = join(&topic, name, first);
                if let Some(v) = &child.value {
                    out.push((t.clone(), v));
                }
                pending.push((child, t, false));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        for (topic, v) in out {
            f(&topic, v);
        }
    }

    /// Number of values stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of trie nodes below the root: at most the number of levels of the stored
    /// topics, and zero once the store is empty.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Calls `f` with the topic and value of every stored topic `filter` matches
    /// (§4.7: `+` one level, `#` the rest, including the parent level when
    /// `hash_matches_parent`; no wildcard in the first level matches a `$` topic,
    /// MQTT-4.7.2-1), in byte order of the topics. `filter` is assumed valid.
    pub fn for_each_match(
        &self,
        filter: &[u8],
        hash_matches_parent: bool,
        mut f: impl FnMut(&[u8], &V),
    ) {
        let filter_levels: Vec<&[u8]> = levels(filter).collect();
        // Each entry: a node, its topic, and how many filter levels are matched.
        let mut pending: Vec<(&Node<V>, Vec<u8>, usize)> = Vec::new();
        pending.push((&self.root, Vec::new(), 0));
        let mut out: Vec<(Vec<u8>, &V)> = Vec::new();
        while let Some((node, topic, at)) = pending.pop() {
            let Some(&level) = filter_levels.get(at) else {
                if let Some(v) = &node.value {
                    out.push((topic, v));
                }
                continue;
            };
            let first = at == 0;
            match level {
                b"#" => {
                    if hash_matches_parent && !first {
                        if let Some(v) = &node.value {
                            out.push((topic.clone(), v));
                        }
                    }
                    collect_subtree(node, topic, first, &mut out);
                }
                b"+" => {
                    for (name, child) in &node.children {
                        if first && name.first() == Some(&b'$') {
                            continue;
                        }
                        pending.push((child, join(&topic, name, first), at + 1));
                    }
                }
                literal => {
                    if let Some(child) = node.children.get(literal) {
                        pending.push((child, join(&topic, literal, first), at + 1));
                    }
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        for (topic, v) in out {
            f(&topic, v);
        }
    }
}

fn join(topic: &[u8], level: &[u8], first: bool) -> Vec<u8> {
    let mut t = Vec::with_capacity(topic.len() + level.len() + 1);
    t.extend_from_slice(topic);
    if !first {
        t.push(b'/');
    }
    t.extend_from_slice(level);
    t
}

/// Every value strictly below `node` (its descendants), skipping `$` children of the
/// root.
fn collect_subtree<'a, V>(
    node: &'a Node<V>,
    topic: Vec<u8>,
    root: bool,
    out: &mut Vec<(Vec<u8>, &'a V)>,
) {
    let mut pending: Vec<(&Node<V>, Vec<u8>, bool)> = Vec::new();
    pending.push((node, topic, root));
    while let Some((node, topic, first)) = pending.pop() {
        for (name, child) in &node.children {
            if first && name.first() == Some(&b'$') {
                continue;
            }
            let t = join(&topic, name, first);
            if let Some(v) = &child.value {
                out.push((t.clone(), v));
            }
            pending.push((child, t, false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn matches(store: &RetainedStore<u32>, filter: &str, hmp: bool) -> Vec<String> {
        let mut got = Vec::new();
        store.for_each_match(filter.as_bytes(), hmp, |t, _| {
            got.push(String::from_utf8_lossy(t).into_owned())
        });
        got
    }

    #[test]
    fn wildcards_match_as_the_specification_says() {
        let mut s = RetainedStore::new();
        for (i, t) in ["a", "a/b", "a/b/c", "a//c", "/x", "$SYS/a", "b"]
            .iter()
            .enumerate()
        {
            s.insert(t.as_bytes(), i as u32);
        }
        assert_eq!(matches(&s, "a/#", true), ["a", "a//c", "a/b", "a/b/c"]);
        assert_eq!(matches(&s, "a/#", false), ["a//c", "a/b", "a/b/c"]);
        assert_eq!(matches(&s, "a/+/c", true), ["a//c", "a/b/c"]);
        assert_eq!(matches(&s, "+", true), ["a", "b"]);
        assert_eq!(matches(&s, "+/x", true), ["/x"]);
        assert_eq!(
            matches(&s, "#", true),
            ["/x", "a", "a//c", "a/b", "a/b/c", "b"]
        );
        assert_eq!(matches(&s, "$SYS/#", true), ["$SYS/a"]);
        assert_eq!(matches(&s, "a/b", true), ["a/b"]);
    }

    #[test]
    fn removing_prunes_the_levels_that_led_only_to_the_value() {
        let mut s = RetainedStore::new();
        s.insert(b"a/b/c", 1);
        s.insert(b"a/x", 2);
        assert_eq!(s.node_count(), 4);
        assert_eq!(s.remove(b"a/b/c"), Some(1));
        assert_eq!(s.node_count(), 2);
        assert_eq!(s.remove(b"a/b/c"), None);
        assert_eq!(s.remove(b"a"), None);
        assert_eq!(s.remove(b"a/x"), Some(2));
        assert_eq!((s.len(), s.node_count()), (0, 0));
    }

    #[test]
    fn a_value_on_an_inner_level_survives_the_removal_of_one_below() {
        let mut s = RetainedStore::new();
        s.insert(b"a", 1);
        s.insert(b"a/b", 2);
        assert_eq!(s.remove(b"a/b"), Some(2));
        assert_eq!(s.get(b"a"), Some(&1));
        assert_eq!(s.node_count(), 1);
        s.insert(b"a/b", 3);
        assert_eq!(s.remove(b"a"), Some(1));
        assert_eq!(s.get(b"a/b"), Some(&3));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_topic_of_thirty_thousand_levels_is_stored_matched_and_dropped_without_recursion() {
        let topic: Vec<u8> = "a/".repeat(30_000).into_bytes();
        let mut s = RetainedStore::new();
        s.insert(&topic, 7);
        assert_eq!(s.get(&topic), Some(&7));
        let mut n = 0;
        s.for_each_match(b"a/#", true, |_, _| n += 1);
        assert_eq!(n, 1);
        drop(s);
    }
}
