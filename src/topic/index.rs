//! A subscription index: a trie of topic filters keyed by topic level.
//!
//! Matching a topic name visits only the trie nodes whose filter prefix matches the
//! levels read so far, so its cost grows with the depth of the topic and the number of
//! matching subscriptions, not with the number of subscriptions stored.
//!
//! Every walk over the trie is iterative: a topic or filter of 65 535 bytes has up to
//! 32 768 levels, and neither matching, insertion, removal, formatting nor dropping
//! the index recurses once per level.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::fmt;
use core::mem;

use crate::types::{QoS, TopicFilter};

/// Subscribers of one filter, by key.
type Subscribers<K> = SmallMap<K, QoS>;

/// One trie node: the filters that share the levels on the path from the root.
struct Node<K> {
    /// Children reached by a literal level, compared byte for byte (MQTT-4.7.3-4).
    literal: SmallMap<Box<[u8]>, Box<Node<K>>>,
    /// The child reached by a `+` level.
    plus: Option<Box<Node<K>>>,
    /// Subscribers of the filter made of this node's path followed by `#`.
    hash: Subscribers<K>,
    /// Subscribers of the filter that ends at this node.
    exact: Subscribers<K>,
}

impl<K> Node<K> {
    const fn new() -> Self {
        Node {
            literal: SmallMap::new(),
            plus: None,
            hash: SmallMap::new(),
            exact: SmallMap::new(),
        }
    }

    fn child(&self, edge: Edge<'_>) -> Option<&Node<K>> {
        match edge {
            Edge::Literal(level) => self.literal.get(level).map(|c| &**c),
            Edge::Plus => self.plus.as_deref(),
        }
    }

    fn child_mut(&mut self, edge: Edge<'_>) -> Option<&mut Node<K>> {
        match edge {
            Edge::Literal(level) => self.literal.get_mut(level).map(|c| &mut **c),
            Edge::Plus => self.plus.as_deref_mut(),
        }
    }

    /// The child along `edge`, created if missing (counted in `created`).
    fn child_or_insert(&mut self, edge: Edge<'_>, created: &mut usize) -> &mut Node<K> {
        match edge {
            Edge::Literal(level) => self.literal.get_or_insert_with(
                level,
                || Box::from(level),
                || Box::new(Node::new()),
                created,
            ),
            Edge::Plus => {
                if self.plus.is_none() {
                    *created += 1;
                }
                self.plus.get_or_insert_with(|| Box::new(Node::new()))
            }
        }
    }

    /// Removes the child along `edge` with its whole subtree.
    fn remove_child(&mut self, edge: Edge<'_>) {
        match edge {
            Edge::Literal(level) => {
                self.literal.remove(level);
            }
            Edge::Plus => self.plus = None,
        }
    }

    fn subscribers(&self, end: End) -> &Subscribers<K> {
        match end {
            End::Exact => &self.exact,
            End::Hash => &self.hash,
        }
    }

    fn subscribers_mut(&mut self, end: End) -> &mut Subscribers<K> {
        match end {
            End::Exact => &mut self.exact,
            End::Hash => &mut self.hash,
        }
    }

    fn child_count(&self) -> usize {
        self.literal.len() + usize::from(self.plus.is_some())
    }

    /// Whether the node holds nothing but the single child on some path: such a node
    /// goes away when that child does.
    fn is_link(&self) -> bool {
        self.exact.is_empty() && self.hash.is_empty() && self.child_count() == 1
    }
}

impl<K> Drop for Node<K> {
    /// Drops the subtree without recursing once per level.
    fn drop(&mut self) {
        let mut pending = Vec::new();
        detach_children(self, &mut pending);
        while let Some(mut node) = pending.pop() {
            detach_children(&mut node, &mut pending);
        }
    }
}

/// Moves the children of `node` into `pending`, leaving `node` childless.
#[allow(clippy::vec_box, reason = "the nodes stay in the boxes the trie made")]
fn detach_children<K>(node: &mut Node<K>, pending: &mut Vec<Box<Node<K>>>) {
    node.literal.drain_values_into(pending);
    if let Some(plus) = node.plus.take() {
        pending.push(plus);
    }
}

/// Up to this many entries a [`SmallMap`] is a sorted vector.
const FEW: usize = 8;

/// A map sorted by key that keeps one entry in place (no allocation), up to [`FEW`]
/// in a vector (one small allocation of the exact size, binary search) and more in a
/// B-tree (logarithmic insertion). Most trie nodes have one child and most filters one
/// subscriber.
enum SmallMap<Q, V> {
    One(Q, V),
    Few(Vec<(Q, V)>),
    Many(BTreeMap<Q, V>),
}

fn search<Q: Borrow<R>, R: Ord + ?Sized, V>(few: &[(Q, V)], key: &R) -> Result<usize, usize> {
    few.binary_search_by(|(q, _)| q.borrow().cmp(key))
}

impl<Q, V> SmallMap<Q, V> {
    const fn new() -> Self {
        SmallMap::Few(Vec::new())
    }

    fn len(&self) -> usize {
        match self {
            SmallMap::One(..) => 1,
            SmallMap::Few(few) => few.len(),
            SmallMap::Many(many) => many.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with every entry in key order.
    fn for_each<'a>(&'a self, mut f: impl FnMut(&'a Q, &'a V)) {
        match self {
            SmallMap::One(q, v) => f(q, v),
            SmallMap::Few(few) => few.iter().for_each(|(q, v)| f(q, v)),
            SmallMap::Many(many) => many.iter().for_each(|(q, v)| f(q, v)),
        }
    }

    /// Calls `f` with every entry in reverse key order.
    fn for_each_rev<'a>(&'a self, mut f: impl FnMut(&'a Q, &'a V)) {
        match self {
            SmallMap::One(q, v) => f(q, v),
            SmallMap::Few(few) => few.iter().rev().for_each(|(q, v)| f(q, v)),
            SmallMap::Many(many) => many.iter().rev().for_each(|(q, v)| f(q, v)),
        }
    }

    /// Moves every value into `out`, leaving the map empty.
    fn drain_values_into(&mut self, out: &mut Vec<V>) {
        match mem::replace(self, SmallMap::new()) {
            SmallMap::One(_, v) => out.push(v),
            SmallMap::Few(few) => out.extend(few.into_iter().map(|(_, v)| v)),
            SmallMap::Many(many) => out.extend(many.into_values()),
        }
    }
}

impl<Q: Ord, V> SmallMap<Q, V> {
    fn get<R: Ord + ?Sized>(&self, key: &R) -> Option<&V>
    where
        Q: Borrow<R>,
    {
        match self {
            SmallMap::One(q, v) => (q.borrow() == key).then_some(v),
            SmallMap::Few(few) => {
                let i = search(few, key).ok()?;
                few.get(i).map(|(_, v)| v)
            }
            SmallMap::Many(many) => many.get(key),
        }
    }

    fn get_mut<R: Ord + ?Sized>(&mut self, key: &R) -> Option<&mut V>
    where
        Q: Borrow<R>,
    {
        match self {
            SmallMap::One(q, v) => (Borrow::<R>::borrow(q) == key).then_some(v),
            SmallMap::Few(few) => {
                let i = search(few, key).ok()?;
                few.get_mut(i).map(|(_, v)| v)
            }
            SmallMap::Many(many) => many.get_mut(key),
        }
    }

    /// Makes room for `key`, which is not there: one entry moves into a vector, a full
    /// vector into a B-tree.
    fn make_room<R: Ord + ?Sized>(&mut self, key: &R)
    where
        Q: Borrow<R>,
    {
        if matches!(self, SmallMap::One(..)) {
            if let SmallMap::One(q, v) = mem::replace(self, SmallMap::new()) {
                let mut few = Vec::with_capacity(2);
                few.push((q, v));
                *self = SmallMap::Few(few);
            }
        }
        if let SmallMap::Few(few) = self {
            if few.len() >= FEW && search(few, key).is_err() {
                *self = SmallMap::Many(mem::take(few).into_iter().collect());
            }
        }
    }

    /// The value at `key`; if missing, `owned` makes the key (always, in a B-tree),
    /// `make` the value, and `created` is counted.
    fn get_or_insert_with<R: Ord + ?Sized>(
        &mut self,
        key: &R,
        owned: impl FnOnce() -> Q,
        make: impl FnOnce() -> V,
        created: &mut usize,
    ) -> &mut V
    where
        Q: Borrow<R>,
    {
        match self {
            SmallMap::One(q, _) if Borrow::<R>::borrow(q) == key => {}
            _ => self.make_room(key),
        }
        match self {
            // Only under `key`: an entry under another moved into a vector.
            SmallMap::One(_, v) => v,
            SmallMap::Few(few) => {
                let i = match search(few, key) {
                    Ok(i) => i,
                    Err(i) => {
                        few.reserve_exact(1);
                        few.insert(i, (owned(), make()));
                        *created += 1;
                        i
                    }
                };
                // `i` is the position just found or filled.
                &mut few[i].1
            }
            SmallMap::Many(many) => many.entry(owned()).or_insert_with(|| {
                *created += 1;
                make()
            }),
        }
    }

    /// Inserts or replaces; returns the previous value.
    fn insert(&mut self, key: Q, value: V) -> Option<V> {
        match self {
            SmallMap::One(q, v) if *q == key => return Some(mem::replace(v, value)),
            SmallMap::Few(few) if few.is_empty() => {
                *self = SmallMap::One(key, value);
                return None;
            }
            _ => self.make_room(&key),
        }
        match self {
            SmallMap::One(..) => None,
            SmallMap::Few(few) => match search(few, &key) {
                Ok(i) => few.get_mut(i).map(|(_, v)| mem::replace(v, value)),
                Err(i) => {
                    few.reserve_exact(1);
                    few.insert(i, (key, value));
                    None
                }
            },
            SmallMap::Many(many) => many.insert(key, value),
        }
    }

    fn remove<R: Ord + ?Sized>(&mut self, key: &R) -> Option<V>
    where
        Q: Borrow<R>,
    {
        match self {
            SmallMap::One(q, _) => {
                if Borrow::<R>::borrow(q) != key {
                    return None;
                }
                match mem::replace(self, SmallMap::new()) {
                    SmallMap::One(_, value) => Some(value),
                    _ => None,
                }
            }
            SmallMap::Few(few) => {
                let i = search(few, key).ok()?;
                let (_, value) = few.remove(i);
                if few.len() == 1 {
                    // One entry left: in place, the vector freed.
                    if let Some((q, v)) = few.pop() {
                        *self = SmallMap::One(q, v);
                    }
                } else if few.capacity() > 2 * few.len() {
                    few.shrink_to_fit();
                }
                Some(value)
            }
            SmallMap::Many(many) => {
                let value = many.remove(key);
                if many.len() <= FEW / 2 {
                    *self = SmallMap::Few(mem::take(many).into_iter().collect());
                }
                value
            }
        }
    }
}

impl<Q: fmt::Debug, V: fmt::Debug> fmt::Debug for SmallMap<Q, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        self.for_each(|q, v| {
            map.entry(q, v);
        });
        map.finish()
    }
}

/// One step down the trie.
#[derive(Clone, Copy)]
enum Edge<'a> {
    Literal(&'a [u8]),
    Plus,
}

/// Which subscriber set of the last node a filter names.
#[derive(Clone, Copy)]
enum End {
    /// The filter ends with the last level.
    Exact,
    /// The filter ends with `/#` after the last level (or is `#`).
    Hash,
}

/// Splits a filter into the edges from the root and the subscriber set it names. The
/// mapping is one to one, so equal paths mean byte-equal filters (MQTT-3.10.4-1).
fn parse_filter(filter: &[u8]) -> (impl Iterator<Item = Edge<'_>>, End) {
    let (path, end) = if filter == b"#" {
        (None, End::Hash)
    } else if let Some(prefix) = filter.strip_suffix(b"/#") {
        (Some(prefix), End::Hash)
    } else {
        (Some(filter), End::Exact)
    };
    let edges = path
        .into_iter()
        .flat_map(|p| p.split(|&c| c == b'/'))
        .map(|level| {
            if level == b"+" {
                Edge::Plus
            } else {
                Edge::Literal(level)
            }
        });
    (edges, end)
}

/// Topic filters and the keys (client or session ids) subscribed to them, indexed for
/// matching topic names (§4.7).
///
/// A key holds at most one subscription per filter; subscribing again to the same
/// filter replaces its QoS (MQTT-3.8.4-3). Matching follows [`matches`](super::matches):
/// `+` matches exactly one level (possibly empty), `#` matches the remaining levels,
/// and a filter starting with `+` or `#` does not match a topic starting with `$`
/// (MQTT-4.7.2-1).
///
/// ```
/// use mqtt_sansio::{QoS, TopicFilter};
/// use mqtt_sansio::topic::SubscriptionIndex;
///
/// let mut index = SubscriptionIndex::new(true);
/// index.insert(&TopicFilter::from_static("sport/tennis/+")?, "alice", QoS::AtLeastOnce);
/// index.insert(&TopicFilter::from_static("sport/#")?, "bob", QoS::AtMostOnce);
/// index.insert(&TopicFilter::from_static("news")?, "carol", QoS::AtMostOnce);
///
/// let mut got = Vec::new();
/// index.for_each_match(b"sport/tennis/player1", |key, qos| got.push((*key, qos)));
/// got.sort();
/// assert_eq!(got, [("alice", QoS::AtLeastOnce), ("bob", QoS::AtMostOnce)]);
///
/// assert_eq!(index.remove(b"sport/#", &"bob"), Some(QoS::AtMostOnce));
/// assert_eq!(index.len(), 2);
/// # Ok::<(), mqtt_sansio::DecodeError>(())
/// ```
pub struct SubscriptionIndex<K> {
    root: Node<K>,
    hash_matches_parent: bool,
    len: usize,
    nodes: usize,
}

impl<K: Ord + Clone> SubscriptionIndex<K> {
    /// An empty index. `hash_matches_parent` says whether `a/#` matches `a` (MQTT
    /// 3.1.1: yes; AWS IoT Core: no, see `Profile`).
    pub const fn new(hash_matches_parent: bool) -> Self {
        SubscriptionIndex {
            root: Node::new(),
            hash_matches_parent,
            len: 0,
            nodes: 0,
        }
    }

    /// Adds or replaces the subscription of `key` to `filter`; returns the previous
    /// QoS if `key` already had exactly this filter (MQTT-3.8.4-3).
    pub fn insert(
        &mut self,
        filter: &TopicFilter<impl AsRef<[u8]>>,
        key: K,
        qos: QoS,
    ) -> Option<QoS> {
        let (edges, end) = parse_filter(filter.as_bytes());
        let mut created = 0;
        let mut node = &mut self.root;
        for edge in edges {
            node = node.child_or_insert(edge, &mut created);
        }
        let previous = node.subscribers_mut(end).insert(key, qos);
        self.nodes += created;
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes the subscription of `key` to exactly `filter` (literal comparison,
    /// MQTT-3.10.4-1: removing `a/#` leaves `a/b` alone); returns its QoS. Nodes left
    /// empty are pruned, so memory follows the live subscriptions.
    pub fn remove(&mut self, filter: &[u8], key: &K) -> Option<QoS> {
        // First pass, read only: find the subscription and the node from which the
        // path down to it holds nothing else once the subscription is gone.
        let (edges, end) = parse_filter(filter);
        let mut node = &self.root;
        let mut depth = 0;
        let mut cut = 0;
        for edge in edges {
            if depth == 0 || !node.is_link() {
                cut = depth;
            }
            node = node.child(edge)?;
            depth += 1;
        }
        let subscribers = node.subscribers(end);
        let qos = *subscribers.get(key)?;
        let other = match end {
            End::Exact => &node.hash,
            End::Hash => &node.exact,
        };
        let prune =
            depth > 0 && subscribers.len() == 1 && other.is_empty() && node.child_count() == 0;

        // Second pass: remove the subscription, or the whole chain that only led to it.
        let (mut edges, end) = parse_filter(filter);
        let mut node = &mut self.root;
        if prune {
            for edge in edges.by_ref().take(cut) {
                node = node.child_mut(edge)?;
            }
            node.remove_child(edges.next()?);
            self.nodes -= depth - cut;
        } else {
            for edge in edges {
                node = node.child_mut(edge)?;
            }
            node.subscribers_mut(end).remove(key)?;
        }
        self.len -= 1;
        Some(qos)
    }

    /// Calls `f` once per matching (filter, key) pair with the QoS of that
    /// subscription. A key subscribed through several matching filters is reported once
    /// per filter. The order depends only on the set of subscriptions, not on the
    /// order they were added in.
    pub fn for_each_match(&self, topic: &[u8], mut f: impl FnMut(&K, QoS)) {
        let system = topic.first() == Some(&b'$');
        // Each entry: a node and the part of the topic after its path (`None` once the
        // topic is consumed).
        let mut pending = Pending::new(&self.root, topic);
        while let Some((node, rest)) = pending.pop() {
            // Wildcards in the first level never match a `$` topic (MQTT-4.7.2-1).
            let wildcards = !(system && core::ptr::eq(node, &self.root));
            let Some(rest) = rest else {
                // The topic ends here: the filter that ends here, and `path/#` if
                // `#` may match zero levels.
                emit(&node.exact, &mut f);
                if self.hash_matches_parent {
                    emit(&node.hash, &mut f);
                }
                continue;
            };
            if wildcards {
                emit(&node.hash, &mut f);
            }
            let (level, after) = match rest.iter().position(|&c| c == b'/') {
                Some(i) => {
                    let (level, tail) = rest.split_at(i);
                    (level, tail.get(1..))
                }
                None => (rest, None),
            };
            if wildcards {
                if let Some(plus) = node.plus.as_deref() {
                    pending.push((plus, after));
                }
            }
            if let Some(child) = node.literal.get(level) {
                pending.push((child, after));
            }
        }
    }

    /// Number of (filter, key) subscriptions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the index holds no subscription.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of trie nodes below the root: at most the number of levels of the live
    /// filters, and zero once the index is empty.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Whether `a/#` matches `a` in this index.
    pub fn hash_matches_parent(&self) -> bool {
        self.hash_matches_parent
    }
}

/// The nodes a match still has to visit, last in first out: the first [`INLINE`] on
/// the stack, the rest (a topic with more levels than that under `+` filters) in a
/// vector, so that matching a topic allocates nothing in the common case.
struct Pending<'a, K> {
    inline: [Visit<'a, K>; INLINE],
    len: usize,
    spill: Vec<Visit<'a, K>>,
}

/// A node and the part of the topic after its path (`None` once the topic is
/// consumed).
type Visit<'a, K> = (&'a Node<K>, Option<&'a [u8]>);

/// How many [`Pending`] entries live on the stack.
const INLINE: usize = 8;

impl<'a, K> Pending<'a, K> {
    fn new(root: &'a Node<K>, topic: &'a [u8]) -> Self {
        let mut inline = [(root, None); INLINE];
        inline[0] = (root, Some(topic));
        Pending {
            inline,
            len: 1,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, visit: Visit<'a, K>) {
        // While the vector holds any, the array is full: the order stays last in,
        // first out.
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = visit;
                self.len += 1;
            }
            None => self.spill.push(visit),
        }
    }

    fn pop(&mut self) -> Option<Visit<'a, K>> {
        if let Some(visit) = self.spill.pop() {
            return Some(visit);
        }
        self.len = self.len.checked_sub(1)?;
        self.inline.get(self.len).copied()
    }
}

fn emit<K>(subscribers: &Subscribers<K>, f: &mut impl FnMut(&K, QoS)) {
    subscribers.for_each(|key, &qos| f(key, qos));
}

impl<K> SubscriptionIndex<K> {
    /// Calls `f` with every filter that has subscribers and its subscribers, in a
    /// deterministic order.
    fn for_each_filter(&self, mut f: impl FnMut(&[u8], &Subscribers<K>)) {
        /// A node still to visit.
        struct Visit<'a, K> {
            node: &'a Node<K>,
            /// The length of the parent's filter.
            parent_len: usize,
            parent_is_root: bool,
            /// The level that leads to the node, `None` for the root.
            label: Option<&'a [u8]>,
        }
        let mut filter: Vec<u8> = Vec::new();
        let mut pending = Vec::new();
        pending.push(Visit {
            node: &self.root,
            parent_len: 0,
            parent_is_root: false,
            label: None,
        });
        while let Some(visit) = pending.pop() {
            let node = visit.node;
            filter.truncate(visit.parent_len);
            if let Some(label) = visit.label {
                if !visit.parent_is_root {
                    filter.push(b'/');
                }
                filter.extend_from_slice(label);
            }
            if !node.exact.is_empty() {
                f(&filter, &node.exact);
            }
            let len = filter.len();
            let is_root = visit.label.is_none();
            if !node.hash.is_empty() {
                filter.extend_from_slice(if is_root { b"#" } else { b"/#" });
                f(&filter, &node.hash);
                filter.truncate(len);
            }
            if let Some(plus) = node.plus.as_deref() {
                pending.push(Visit {
                    node: plus,
                    parent_len: len,
                    parent_is_root: is_root,
                    label: Some(b"+"),
                });
            }
            node.literal.for_each_rev(|level, child| {
                pending.push(Visit {
                    node: child,
                    parent_len: len,
                    parent_is_root: is_root,
                    label: Some(level),
                })
            });
        }
    }
}

impl<K: Ord + Clone> Default for SubscriptionIndex<K> {
    /// An empty index with MQTT 3.1.1 matching (`a/#` matches `a`).
    fn default() -> Self {
        SubscriptionIndex::new(true)
    }
}

impl<K: fmt::Debug> fmt::Debug for SubscriptionIndex<K> {
    /// Shows every filter with its subscribers and their QoS.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Filters<'a, K>(&'a SubscriptionIndex<K>);
        impl<K: fmt::Debug> fmt::Debug for Filters<'_, K> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                self.0.for_each_filter(|filter, subscribers| {
                    match core::str::from_utf8(filter) {
                        Ok(text) => map.entry(&text, subscribers),
                        Err(_) => map.entry(&filter, subscribers),
                    };
                });
                map.finish()
            }
        }
        f.debug_struct("SubscriptionIndex")
            .field("hash_matches_parent", &self.hash_matches_parent)
            .field("len", &self.len)
            .field("nodes", &self.nodes)
            .field("filters", &Filters(self))
            .finish()
    }
}
