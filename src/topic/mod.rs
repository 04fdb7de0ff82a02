//! Topic matching, the subscription index, the retained-message store and the
//! reserved-topic rules.

mod index;
pub mod reserved;
mod retained;

pub use index::SubscriptionIndex;
pub use retained::RetainedStore;

/// Whether `filter` matches `name` (§4.7): `+` matches one level, `#` the remaining
/// levels including none (when `hash_matches_parent`), and a filter starting with a
/// wildcard does not match a name starting with `$` (MQTT-4.7.2-1). Levels are compared
/// byte for byte (MQTT-4.7.3-4).
pub fn matches(filter: &[u8], name: &[u8], hash_matches_parent: bool) -> bool {
    if name.first() == Some(&b'$') && matches!(filter.first(), Some(b'+' | b'#')) {
        return false;
    }
    let mut f = filter.split(|&c| c == b'/');
    let mut n = name.split(|&c| c == b'/');
    loop {
        match (f.next(), n.next()) {
            (Some(b"#"), Some(_)) => return true,
            (Some(b"#"), None) => return hash_matches_parent,
            (Some(b"+"), Some(_)) => {}
            (Some(fl), Some(nl)) if fl == nl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}
