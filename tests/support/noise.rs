//! A deterministic byte stream (xorshift), standing in for fuzzer input: the tests
//! replay it through the fuzz targets' checks and `examples/fuzz_seed.rs` seeds the
//! corpora with it.

/// `len` pseudo-random bytes from `seed`; the same seed gives the same bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
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
