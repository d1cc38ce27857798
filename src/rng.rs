//! A small deterministic pseudo-random generator (SplitMix64).
//!
//! Used by the simulated io and by tests, fuzzers and benchmarks, which all
//! take a `u64` seed so that a failure can be replayed exactly. It is not
//! cryptographic and is never used for anything an attacker could target.

/// SplitMix64's state increment.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output for state `value`: a bijective, well-spreading hash of
/// a `u64` (the generator's next output after seeding it with `value`).
pub fn mix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: one `u64` of state, full period, good enough statistical
/// quality for simulations.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // Tests, the test kit and the benchmark use it.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // Tests, the test kit and the benchmark use it.
impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let bits = mix64(self.state);
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        bits
    }

    /// A value in `0..bound` (`bound` must be non-zero).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no valid result");
        // Lemire's multiply-shift: unbiased enough for simulation purposes.
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A value in `low..=high`.
    pub fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high);
        if high - low == u64::MAX {
            return self.next_u64();
        }
        low + self.below(high - low + 1)
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the generator is SplitMix64 (reference output for seed 0), and
    // `mix64(seed)` is its first output after seeding with `seed`.
    #[test]
    fn matches_splitmix64_and_mix64() {
        let mut generator = SplitMix64::new(0);
        assert_eq!(generator.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(generator.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        for seed in [0, 1, 42, u64::MAX] {
            assert_eq!(mix64(seed), SplitMix64::new(seed).next_u64(), "seed {seed}");
        }
    }
}
