//! Replays saved inputs of the state-machine fuzz targets, and a few fixed operation
//! sequences, through the checks the targets make (`tests/support/machine_checks.rs`).
//!
//! `fuzz/regressions/{client,server,broker}/` hold inputs that once made a target fail
//! (each a few bytes, kept after the fix).

#[allow(dead_code)]
#[path = "support/machine_checks.rs"]
mod machine_checks;

use machine_checks::*;

/// A deterministic byte stream (xorshift), standing in for fuzzer input.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn pseudo_random_runs_keep_every_invariant() {
    let n: u64 = std::env::var("MACHINE_NOISE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    for seed in 0..n {
        let data = noise(seed, 64 << (seed % 6));
        for (name, check) in [
            ("client", check_client as fn(&[u8])),
            ("server", check_server),
            ("broker", check_broker),
        ] {
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                std::fs::write(format!("/tmp/fuzzsm-fail-{name}-{seed}"), &data).unwrap();
                panic!("{name} seed {seed}");
            }
        }
    }
}
