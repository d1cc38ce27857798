//! Latency histograms cheap enough for the commit path: a fixed array of
//! atomic counters on a log-linear scale (four buckets per power of two,
//! so a percentile is reported within 25 % above the true value). Recording
//! is one relaxed `fetch_add`; nothing allocates or locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SUB_BUCKET_BITS: u32 = 2;
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
const BUCKETS: usize = 63 * SUB_BUCKETS;

/// A summary of recorded latencies. Percentiles are bucket upper bounds
/// (at most 25 % above the true value); `max_ns` is exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median, in nanoseconds.
    pub p50_ns: u64,
    /// 99th percentile, in nanoseconds.
    pub p99_ns: u64,
    /// Largest value, in nanoseconds.
    pub max_ns: u64,
    /// Mean, in nanoseconds.
    pub mean_ns: u64,
}

/// A concurrent latency histogram.
pub struct Histogram {
    buckets: Box<[AtomicU64; BUCKETS]>,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.summary().fmt(f)
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS as u64 {
        return value as usize;
    }
    let log = 63 - value.leading_zeros();
    let sub = (value >> (log - SUB_BUCKET_BITS)) as usize & (SUB_BUCKETS - 1);
    (log as usize - SUB_BUCKET_BITS as usize + 1) * SUB_BUCKETS + sub
}

/// The largest value that falls in `bucket`.
fn bucket_upper(bucket: usize) -> u64 {
    if bucket < SUB_BUCKETS {
        return bucket as u64;
    }
    let log = (bucket / SUB_BUCKETS) as u32 + SUB_BUCKET_BITS - 1;
    let sub = (bucket % SUB_BUCKETS) as u64;
    let low = (1u64 << log) | (sub << (log - SUB_BUCKET_BITS));
    low.saturating_add((1u64 << (log - SUB_BUCKET_BITS)) - 1)
}

impl Histogram {
    /// Records one latency.
    pub fn record(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// The summary of everything recorded so far.
    pub fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return LatencySummary::default();
        }
        let max_ns = self.max_ns.load(Ordering::Relaxed);
        let percentile = |per_mille: u64| {
            let rank = (count * per_mille).div_ceil(1000).max(1);
            let mut seen = 0;
            for (bucket, &n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return bucket_upper(bucket).min(max_ns);
                }
            }
            max_ns
        };
        LatencySummary {
            count,
            p50_ns: percentile(500),
            p99_ns: percentile(990),
            max_ns,
            mean_ns: self.sum_ns.load(Ordering::Relaxed) / count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut previous_upper = None;
        for bucket in 0..BUCKETS {
            let upper = bucket_upper(bucket);
            if let Some(previous) = previous_upper {
                assert!(upper > previous, "bucket {bucket}");
                assert_eq!(bucket_of(previous + 1), bucket, "bucket {bucket}");
            }
            assert_eq!(bucket_of(upper), bucket, "bucket {bucket} upper {upper}");
            previous_upper = Some(upper);
        }
        assert_eq!(bucket_upper(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn percentiles_are_within_a_quarter_above_the_truth() {
        let histogram = Histogram::default();
        for us in 1..=1000u64 {
            histogram.record(Duration::from_micros(us));
        }
        let summary = histogram.summary();
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.max_ns, 1_000_000);
        assert_eq!(summary.mean_ns, 500_500);
        for (value, truth) in [(summary.p50_ns, 500_000), (summary.p99_ns, 990_000)] {
            assert!(
                value >= truth && value <= truth * 5 / 4,
                "{value} vs {truth}"
            );
        }
    }

    #[test]
    fn an_empty_histogram_summarizes_to_zeros() {
        assert_eq!(Histogram::default().summary(), LatencySummary::default());
    }
}
