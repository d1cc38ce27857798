//! Where randomized tests get their choices: a seeded generator for
//! property tests, or the bytes of a fuzzer's input, behind one trait so
//! that the same scenario code serves both.

use crate::rng::SplitMix64;

/// A source of choices.
pub trait Choices {
    /// A value in `0..bound` (`bound > 0`).
    fn below(&mut self, bound: u64) -> u64;

    /// A value in `low..=high`.
    fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        match (high - low).checked_add(1) {
            Some(span) => low + self.below(span),
            None => low.wrapping_add(self.below(u64::MAX)),
        }
    }

    /// True with probability about `numerator / denominator`.
    fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// Fills `buf` with arbitrary bytes.
    fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            *byte = self.below(256) as u8;
        }
    }
}

impl Choices for SplitMix64 {
    fn below(&mut self, bound: u64) -> u64 {
        SplitMix64::below(self, bound)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        SplitMix64::fill(self, buf)
    }
}

/// Choices read from a fuzzer's input; once it is used up, every choice is
/// 0 (so inputs stay short and finite).
#[derive(Debug)]
pub struct ByteChoices<'a> {
    bytes: &'a [u8],
}

impl<'a> ByteChoices<'a> {
    /// Choices from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        ByteChoices { bytes }
    }

    /// True once every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl Choices for ByteChoices<'_> {
    fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        // As many bytes as the bound needs, little-endian.
        let width = (64 - (bound - 1).leading_zeros()).div_ceil(8) as usize;
        let take = width.min(self.bytes.len());
        let mut value = 0u64;
        for (i, byte) in self.bytes[..take].iter().enumerate() {
            value |= u64::from(*byte) << (8 * i);
        }
        self.bytes = &self.bytes[take..];
        value % bound
    }
}
