//! The subscription index against the matching rules of §4.7 and against
//! `topic::matches`.

use std::collections::BTreeMap;

use mqtt_sansio::topic::{SubscriptionIndex, matches};
use mqtt_sansio::{QoS, TopicFilter};
use proptest::prelude::*;

fn filter(s: &str) -> TopicFilter<&[u8]> {
    match TopicFilter::new(s.as_bytes()) {
        Ok(f) => f,
        Err(e) => panic!("invalid filter {s:?} in a test: {e:?}"),
    }
}

/// The keys matched by `topic`, in the order the index reports them.
fn matched<K: Ord + Clone>(index: &SubscriptionIndex<K>, topic: &str) -> Vec<(K, QoS)> {
    let mut got = Vec::new();
    index.for_each_match(topic.as_bytes(), |k, q| got.push((k.clone(), q)));
    got
}

fn single_match(f: &str, topic: &str, hash_matches_parent: bool) -> bool {
    let mut index = SubscriptionIndex::new(hash_matches_parent);
    index.insert(&filter(f), (), QoS::AtMostOnce);
    let got = matched(&index, topic);
    assert!(got.len() <= 1, "{f} reported more than once for {topic}");
    !got.is_empty()
}

/// The table of SPEC-NOTES §5.2, from the examples of §4.7.
const SPEC_TABLE: &[(&str, &str, bool)] = &[
    ("sport/tennis/player1/#", "sport/tennis/player1", true),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon",
        true,
    ),
    ("sport/#", "sport", true),
    ("#", "sport/tennis", true),
    ("#", "/", true),
    ("sport/tennis/+", "sport/tennis/player1", true),
    ("sport/tennis/+", "sport/tennis/player1/ranking", false),
    ("sport/+", "sport", false),
    ("sport/+", "sport/", true),
    ("+/+", "/finance", true),
    ("/+", "/finance", true),
    ("+", "/finance", false),
    ("#", "$SYS/monitor/Clients", false),
    ("+/monitor/Clients", "$SYS/monitor/Clients", false),
    ("$SYS/#", "$SYS/monitor/Clients", true),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
    ("ACCOUNTS", "Accounts", false),
    ("/finance", "finance", false),
    ("a/+/c", "a//c", true),
];

// MQTT-4.7.1-2, MQTT-4.7.1-3, MQTT-4.7.2-1, MQTT-4.7.3-4
#[test]
fn the_spec_matching_examples_hold_one_filter_at_a_time() {
    for &(f, topic, expected) in SPEC_TABLE {
        assert_eq!(single_match(f, topic, true), expected, "{f} vs {topic}");
        assert_eq!(
            matches(f.as_bytes(), topic.as_bytes(), true),
            expected,
            "matches: {f} vs {topic}"
        );
    }
}

// MQTT-4.7.1-2, MQTT-4.7.1-3, MQTT-4.7.2-1, MQTT-4.7.3-4
#[test]
fn the_spec_matching_examples_hold_with_all_filters_in_one_index() {
    let mut index = SubscriptionIndex::new(true);
    for &(f, _, _) in SPEC_TABLE {
        index.insert(&filter(f), f, QoS::AtLeastOnce);
    }
    for &(_, topic, _) in SPEC_TABLE {
        let mut got: Vec<&str> = matched(&index, topic).into_iter().map(|(k, _)| k).collect();
        got.sort();
        got.dedup();
        let mut expected: Vec<&str> = SPEC_TABLE
            .iter()
            .map(|&(f, _, _)| f)
            .filter(|f| matches(f.as_bytes(), topic.as_bytes(), true))
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(got, expected, "{topic}");
    }
}

// MQTT-4.7.2-1
#[test]
fn wildcards_in_the_first_level_never_match_dollar_topics() {
    for f in ["#", "+", "+/#", "+/monitor/Clients", "+/+/+"] {
        assert!(!single_match(f, "$SYS/monitor/Clients", true), "{f}");
        assert!(!single_match(f, "$SYS", true), "{f}");
    }
    // A literal `$` first level matches, and wildcards after it do.
    for f in [
        "$SYS/#",
        "$SYS/+/Clients",
        "$SYS/monitor/+",
        "$SYS/monitor/Clients",
    ] {
        assert!(single_match(f, "$SYS/monitor/Clients", true), "{f}");
    }
    // Only the first character of the topic counts: `$` further on is an ordinary byte.
    assert!(single_match("#", "a/$SYS", true));
    assert!(single_match("+/+", "a/$SYS", true));
}

// MQTT-4.7.1-3
#[test]
fn plus_matches_exactly_one_level_even_an_empty_one() {
    assert!(single_match("+", "", true));
    assert!(single_match("+/+", "/", true));
    assert!(single_match("a/+/c", "a//c", true));
    assert!(single_match("a/+", "a/", true));
    assert!(!single_match("a/+", "a", true));
    assert!(!single_match("a/+", "a/b/c", true));
    assert!(single_match("/", "/", true));
    assert!(!single_match("/", "//", true));
    assert!(single_match("//+", "//", true));
}

// MQTT-4.7.1-2
#[test]
fn hash_matches_the_parent_level_only_when_configured() {
    assert!(single_match("a/#", "a", true));
    assert!(!single_match("a/#", "a", false));
    assert!(single_match("a/b/#", "a/b", true));
    assert!(!single_match("a/b/#", "a/b", false));
    // Below the parent, both settings match.
    for hash_matches_parent in [true, false] {
        assert!(single_match("a/#", "a/", hash_matches_parent));
        assert!(single_match("a/#", "a/b", hash_matches_parent));
        assert!(single_match("a/#", "a/b/c", hash_matches_parent));
        assert!(single_match("#", "a", hash_matches_parent));
        assert!(single_match("+/#", "a/b", hash_matches_parent));
        assert!(!single_match("a/#", "b", hash_matches_parent));
        assert!(!single_match("a/#", "ab", hash_matches_parent));
    }
    assert!(single_match("+/#", "a", true));
    assert!(!single_match("+/#", "a", false));
}

// MQTT-4.7.3-4
#[test]
fn levels_compare_byte_for_byte() {
    assert!(!single_match("ACCOUNTS", "Accounts", true));
    assert!(!single_match("caf\u{e9}", "cafe\u{301}", true));
    assert!(!single_match("a ", "a", true));
    assert!(single_match("caf\u{e9}/+", "caf\u{e9}/x", true));
}

// MQTT-3.8.4-3
#[test]
fn subscribing_again_replaces_the_qos_and_returns_the_previous_one() {
    let mut index = SubscriptionIndex::new(true);
    assert_eq!(index.insert(&filter("a/+"), 1, QoS::AtMostOnce), None);
    assert_eq!(
        index.insert(&filter("a/+"), 1, QoS::ExactlyOnce),
        Some(QoS::AtMostOnce)
    );
    assert_eq!(index.insert(&filter("a/+"), 2, QoS::AtLeastOnce), None);
    assert_eq!(index.insert(&filter("a/#"), 1, QoS::AtLeastOnce), None);
    assert_eq!(index.len(), 3);
    assert_eq!(
        matched(&index, "a/b"),
        [
            (1, QoS::AtLeastOnce),
            (1, QoS::ExactlyOnce),
            (2, QoS::AtLeastOnce)
        ]
    );
}

// MQTT-3.10.4-1
#[test]
fn remove_compares_filters_literally() {
    let mut index = SubscriptionIndex::new(true);
    index.insert(&filter("a/b"), 1, QoS::AtLeastOnce);
    index.insert(&filter("a/+"), 1, QoS::AtMostOnce);
    assert_eq!(index.remove(b"a/#", &1), None);
    assert_eq!(index.remove(b"a/+/", &1), None);
    assert_eq!(index.remove(b"a", &1), None);
    assert_eq!(index.remove(b"a/b", &2), None);
    assert_eq!(index.remove(b"", &1), None);
    assert_eq!(index.remove(b"a/#/b", &1), None);
    assert_eq!(index.len(), 2);
    assert_eq!(index.remove(b"a/+", &1), Some(QoS::AtMostOnce));
    assert_eq!(index.remove(b"a/+", &1), None);
    assert_eq!(matched(&index, "a/b"), [(1, QoS::AtLeastOnce)]);
    assert_eq!(matched(&index, "a/c"), []);
}

#[test]
fn removing_every_subscription_prunes_every_node() {
    let mut index = SubscriptionIndex::new(true);
    let filters = [
        "#",
        "a",
        "a/b",
        "a/b/c",
        "a/#",
        "a/+/c",
        "+",
        "+/#",
        "/",
        "//",
        "/#",
        "a/b/c/d/e",
    ];
    for (i, f) in filters.iter().enumerate() {
        index.insert(&filter(f), i % 3, QoS::AtLeastOnce);
        index.insert(&filter(f), 7, QoS::AtMostOnce);
    }
    assert_eq!(index.len(), 2 * filters.len());
    assert!(index.node_count() > 0);
    for (i, f) in filters.iter().enumerate().rev() {
        assert_eq!(index.remove(f.as_bytes(), &7), Some(QoS::AtMostOnce));
        assert_eq!(index.remove(f.as_bytes(), &(i % 3)), Some(QoS::AtLeastOnce));
    }
    assert_eq!(index.len(), 0);
    assert!(index.is_empty());
    assert_eq!(index.node_count(), 0);
    assert_eq!(matched(&index, "a/b/c"), []);
}

#[test]
fn removing_a_deep_filter_keeps_the_shorter_ones_it_shares_levels_with() {
    let mut index = SubscriptionIndex::new(true);
    index.insert(&filter("a/b"), 1, QoS::AtMostOnce);
    index.insert(&filter("a/b/c/d"), 1, QoS::AtMostOnce);
    assert_eq!(index.node_count(), 4);
    assert_eq!(index.remove(b"a/b/c/d", &1), Some(QoS::AtMostOnce));
    assert_eq!(index.node_count(), 2);
    assert_eq!(matched(&index, "a/b"), [(1, QoS::AtMostOnce)]);
    assert_eq!(index.remove(b"a/b", &1), Some(QoS::AtMostOnce));
    assert_eq!(index.node_count(), 0);
}

#[test]
fn filters_and_topics_of_the_maximum_length_do_not_exhaust_the_stack() {
    // 32 768 levels: any walk that recursed per level would overflow a test thread.
    let deep = vec!["a"; 32_768].join("/");
    let deep_hash = format!("{}/#", vec!["a"; 32_767].join("/"));
    assert_eq!(deep.len(), 65_535);
    let mut index = SubscriptionIndex::new(true);
    index.insert(&filter(&deep), 1, QoS::AtMostOnce);
    index.insert(&filter(&deep_hash), 2, QoS::AtMostOnce);
    index.insert(&filter("+/#"), 3, QoS::AtMostOnce);
    assert_eq!(index.node_count(), 32_768 + 1);
    let mut got = matched(&index, &deep);
    got.sort();
    assert_eq!(
        got,
        [
            (1, QoS::AtMostOnce),
            (2, QoS::AtMostOnce),
            (3, QoS::AtMostOnce)
        ]
    );
    assert!(format!("{index:?}").contains(&deep_hash));
    assert_eq!(index.remove(deep.as_bytes(), &1), Some(QoS::AtMostOnce));
    assert_eq!(index.node_count(), 32_767 + 1);
    // Dropping the index with a deep filter still in it.
    drop(index);
}

#[test]
fn a_topic_that_branches_at_every_level_matches_past_the_walks_inline_stack() {
    // `a/.../a/+/.../+` for every split point, and `a/.../a`: the walk keeps one `+`
    // branch per level waiting while it follows the literal path, 16 at the deepest,
    // more than the stack it keeps before it spills into a vector.
    const LEVELS: usize = 16;
    let inserts: Vec<(String, u8, QoS)> = (0..=LEVELS)
        .map(|k| {
            let levels: Vec<&str> = (0..LEVELS).map(|i| if i < k { "a" } else { "+" }).collect();
            (levels.join("/"), (k % 3) as u8, QoS::AtLeastOnce)
        })
        .collect();
    let topics = [
        vec!["a"; LEVELS].join("/"),
        vec!["a"; LEVELS - 1].join("/") + "/b",
        "a/b".to_string() + &"/a".repeat(LEVELS - 2),
    ];
    for hash_matches_parent in [false, true] {
        if let Err(e) = check_against_matches(hash_matches_parent, &inserts, &[], &topics) {
            panic!("{e}");
        }
    }
    let mut index = SubscriptionIndex::new(true);
    for (k, (f, _, qos)) in inserts.iter().enumerate() {
        index.insert(&filter(f), k, *qos);
    }
    assert_eq!(
        matched(&index, &topics[0]).len(),
        LEVELS + 1,
        "every filter matches"
    );
}

#[test]
fn debug_lists_each_filter_with_its_subscribers() {
    let mut index = SubscriptionIndex::new(false);
    index.insert(&filter("#"), "x", QoS::AtMostOnce);
    index.insert(&filter("/+"), "y", QoS::AtLeastOnce);
    index.insert(&filter("a/#"), "z", QoS::ExactlyOnce);
    let text = format!("{index:?}");
    assert_eq!(
        text,
        "SubscriptionIndex { hash_matches_parent: false, len: 3, nodes: 3, filters: {\
         \"#\": {\"x\": AtMostOnce}, \"/+\": {\"y\": AtLeastOnce}, \"a/#\": {\"z\": ExactlyOnce}} }"
    );
}

#[test]
fn default_matches_the_parent_as_mqtt_3_1_1_does() {
    let mut index = SubscriptionIndex::<u8>::default();
    assert!(index.is_empty());
    assert!(index.hash_matches_parent());
    index.insert(&filter("a/#"), 0, QoS::AtMostOnce);
    assert_eq!(matched(&index, "a"), [(0, QoS::AtMostOnce)]);
}

fn filter_strategy() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("a"), Just("b"), Just(""), Just("$s"), Just("+"),];
    // No level at all, or one empty level (an empty filter is invalid), stands for `#`.
    (prop::collection::vec(level, 0..5), any::<bool>()).prop_map(|(levels, hash)| {
        let mut s = levels.join("/");
        if levels.is_empty() || s.is_empty() && !hash {
            return "#".to_owned();
        }
        if hash {
            s.push_str("/#");
        }
        s
    })
}

fn topic_strategy() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("a"), Just("b"), Just(""), Just("$s")];
    prop::collection::vec(level, 1..6).prop_map(|levels| levels.join("/"))
}

fn qos_strategy() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

/// Applies `inserts` then `removes` (an index into `inserts` and a client) to an index
/// and to a model, then checks that the index reports exactly the live (filter, key)
/// pairs that `topic::matches` accepts for each topic, each once, with its QoS, and that
/// its order, its `Debug` and its node count are those of an index built from the live
/// set alone in another order.
fn check_against_matches(
    hash_matches_parent: bool,
    inserts: &[(String, u8, QoS)],
    removes: &[(prop::sample::Index, u8)],
    topics: &[String],
) -> Result<(), TestCaseError> {
    let mut index = SubscriptionIndex::new(hash_matches_parent);
    let mut model: BTreeMap<(String, u8), QoS> = BTreeMap::new();
    for (f, client, qos) in inserts {
        let key = (f.clone(), *client);
        let previous = model.insert(key.clone(), *qos);
        prop_assert_eq!(index.insert(&filter(f), key, *qos), previous);
    }
    for (which, client) in removes {
        if inserts.is_empty() {
            break;
        }
        let f = &inserts[which.index(inserts.len())].0;
        let key = (f.clone(), *client);
        prop_assert_eq!(index.remove(f.as_bytes(), &key), model.remove(&key));
    }
    prop_assert_eq!(index.len(), model.len());

    // A fresh index holding only the live set, built in another order.
    let mut fresh = SubscriptionIndex::new(hash_matches_parent);
    for ((f, client), qos) in model.iter().rev() {
        fresh.insert(&filter(f), (f.clone(), *client), *qos);
    }
    prop_assert_eq!(index.node_count(), fresh.node_count());
    prop_assert_eq!(format!("{index:?}"), format!("{fresh:?}"));

    for topic in topics {
        let got = matched(&index, topic);
        prop_assert_eq!(&got, &matched(&fresh, topic));
        let mut got = got;
        got.sort();
        let expected: Vec<((String, u8), QoS)> = model
            .iter()
            .filter(|((f, _), _)| matches(f.as_bytes(), topic.as_bytes(), hash_matches_parent))
            .map(|(k, q)| (k.clone(), *q))
            .collect();
        prop_assert_eq!(got, expected, "topic {:?}", topic);
    }

    for (f, client) in model.keys() {
        prop_assert!(index.remove(f.as_bytes(), &(f.clone(), *client)).is_some());
    }
    prop_assert_eq!(index.len(), 0);
    prop_assert_eq!(index.node_count(), 0);
    Ok(())
}

fn wide_filter_strategy() -> impl Strategy<Value = String> {
    (0u8..40, 0u8..4).prop_map(|(n, shape)| match shape {
        0 => format!("x/{n}"),
        1 => format!("x/{n}/#"),
        2 => format!("x/+/{n}"),
        _ => format!("{n}/+"),
    })
}

fn wide_topic_strategy() -> impl Strategy<Value = String> {
    (0u8..40, 0u8..40, any::<bool>()).prop_map(|(n, m, deep)| {
        if deep {
            format!("x/{n}/{m}")
        } else {
            format!("x/{n}")
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Few levels, so that filters overlap a lot.
    #[test]
    fn the_index_agrees_with_matches_on_random_filters_and_topics(
        hash_matches_parent in any::<bool>(),
        inserts in prop::collection::vec((filter_strategy(), 0u8..3, qos_strategy()), 0..24),
        removes in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3), 0..16),
        topics in prop::collection::vec(topic_strategy(), 1..8),
    ) {
        check_against_matches(hash_matches_parent, &inserts, &removes, &topics)?;
    }

    /// Many sibling levels, so that nodes grow past and shrink below the small-node size.
    #[test]
    fn the_index_agrees_with_matches_with_many_siblings(
        hash_matches_parent in any::<bool>(),
        inserts in prop::collection::vec((wide_filter_strategy(), 0u8..2, qos_strategy()), 0..80),
        removes in prop::collection::vec((any::<prop::sample::Index>(), 0u8..2), 0..80),
        topics in prop::collection::vec(wide_topic_strategy(), 1..8),
    ) {
        check_against_matches(hash_matches_parent, &inserts, &removes, &topics)?;
    }
}
