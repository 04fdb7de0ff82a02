//! The retained-message trie against the plain matcher: the same topics come out of
//! `RetainedStore::for_each_match` as from checking every stored topic with
//! `topic::matches`, whatever was inserted and removed before.

use std::collections::BTreeMap;

use mqtt_sansio::topic::{RetainedStore, matches};
use proptest::prelude::*;

fn topic_strategy() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("a"), Just("b"), Just(""), Just("$s")];
    prop::collection::vec(level, 1..6).prop_map(|levels| levels.join("/"))
}

fn filter_strategy() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("a"), Just("b"), Just(""), Just("$s"), Just("+")];
    (prop::collection::vec(level, 0..5), any::<bool>()).prop_map(|(levels, hash)| {
        let mut s = levels.join("/");
        if levels.is_empty() {
            return "#".to_owned();
        }
        if hash {
            s.push_str("/#");
        }
        s
    })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u8),
    Remove(String),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (topic_strategy(), any::<u8>()).prop_map(|(t, v)| Op::Insert(t, v)),
        1 => topic_strategy().prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_trie_finds_exactly_what_checking_every_topic_finds(
        ops in prop::collection::vec(op_strategy(), 0..40),
        filters in prop::collection::vec(filter_strategy(), 1..8),
        hash_matches_parent in any::<bool>(),
    ) {
        let mut store = RetainedStore::new();
        let mut model: BTreeMap<String, u8> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(t, v) => {
                    prop_assert_eq!(store.insert(t.as_bytes(), v), model.insert(t, v));
                }
                Op::Remove(t) => {
                    prop_assert_eq!(store.remove(t.as_bytes()), model.remove(&t));
                }
            }
            prop_assert_eq!(store.len(), model.len());
        }
        for (t, v) in &model {
            prop_assert_eq!(store.get(t.as_bytes()), Some(v));
        }
        for f in &filters {
            let mut got: Vec<(String, u8)> = Vec::new();
            store.for_each_match(f.as_bytes(), hash_matches_parent, |t, v| {
                got.push((String::from_utf8_lossy(t).into_owned(), *v))
            });
            let want: Vec<(String, u8)> = model
                .iter()
                .filter(|(t, _)| matches(f.as_bytes(), t.as_bytes(), hash_matches_parent))
                .map(|(t, v)| (t.clone(), *v))
                .collect();
            prop_assert_eq!(got, want, "filter {}", f);
        }
        if model.is_empty() {
            prop_assert_eq!(store.node_count(), 0);
        }
    }
}
