//! A latency or size histogram that any thread records into with one relaxed atomic add, and
//! that reads out as an [`hdrhistogram::Histogram`] without stopping the writers.
//!
//! It is HdrHistogram's own bucket layout — the bounds and precision of every `Stats` histogram
//! (1 to an hour in nanoseconds, two significant digits) — over an array of `AtomicU64`
//! counters. Recording finds the bucket as HdrHistogram does (a leading-zero count and a shift)
//! and adds to it; reading loads every counter and records each non-zero bucket's lowest value
//! into a fresh `Histogram` of the same layout, where it lands in the same bucket. So the copy is
//! exactly the histogram the values would have made (a test checks it against hdrhistogram),
//! and no lock is taken on either side.
//!
//! A reading is not a snapshot: counters are loaded one by one while writers add, so a reading
//! may count a later value and miss an earlier one. Each value is counted once, in one reading
//! or a later one, never twice and never lost.

use hdrhistogram::Histogram;

use crate::sync::{AtomicU64, Ordering};

/// The smallest value told apart from 0.
const LOWEST: u64 = 1;
/// The largest value kept; larger ones count as this one (as `saturating_record` does).
pub(crate) const HIGHEST: u64 = 3_600_000_000_000;
/// Significant decimal digits kept.
const SIGFIG: u8 = 2;

/// HdrHistogram's layout for `SIGFIG` digits and `LOWEST = 1` (unit magnitude 0): a bucket has
/// `2^ceil(log2(2 * 10^SIGFIG))` = 256 sub-buckets, of which the upper half are new per bucket.
const SUB_BUCKET_HALF_COUNT_MAGNITUDE: u32 = 7;
const SUB_BUCKET_HALF_COUNT: usize = 1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = (2 * SUB_BUCKET_HALF_COUNT as u64) - 1;
const LEADING_ZERO_COUNT_BASE: u32 = 64 - SUB_BUCKET_HALF_COUNT_MAGNITUDE - 1;

/// Buckets needed to reach `HIGHEST`, counted as HdrHistogram counts them.
const BUCKETS: usize = {
    let mut smallest_untrackable = 2 * SUB_BUCKET_HALF_COUNT as u64;
    let mut buckets = 1;
    while smallest_untrackable <= HIGHEST {
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    buckets
};
/// Counters in the layout.
const LEN: usize = (BUCKETS + 1) * SUB_BUCKET_HALF_COUNT;

/// An empty `Histogram` with the layout every `Stats` histogram has.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST, HIGHEST, SIGFIG).expect("static bounds are valid")
}

/// The counter `value` (at most `HIGHEST`) counts in: HdrHistogram's `index_for`.
fn index_of(value: u64) -> usize {
    let bucket = LEADING_ZERO_COUNT_BASE - (value | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = (value >> bucket) as usize;
    ((bucket as usize + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE) + sub_bucket - SUB_BUCKET_HALF_COUNT
}

/// The lowest value counter `index` counts: HdrHistogram's `value_for`.
fn lowest_of(index: usize) -> u64 {
    let bucket = (index >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) as u32;
    let sub_bucket = (index & (SUB_BUCKET_HALF_COUNT - 1)) as u64;
    match bucket.checked_sub(1) {
        // The first bucket has all 256 sub-buckets, at unit resolution.
        None => sub_bucket,
        Some(bucket) => (sub_bucket + SUB_BUCKET_HALF_COUNT as u64) << bucket,
    }
}

/// Counters in HdrHistogram's layout; see the module doc.
pub(crate) struct AtomicHistogram {
    counts: Box<[AtomicU64]>,
}

impl std::fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtomicHistogram { .. }")
    }
}

impl AtomicHistogram {
    pub(crate) fn new() -> Self {
        Self { counts: (0..LEN).map(|_| AtomicU64::new(0)).collect() }
    }

    /// Counts `value` (`HIGHEST` if larger) `n` times.
    pub(crate) fn record_n(&self, value: u64, n: u64) {
        // `get`: the index of a value up to `HIGHEST` is in range (a test checks `HIGHEST`).
        if let Some(count) = self.counts.get(index_of(value.min(HIGHEST))) {
            // Relaxed: a statistic; nothing is published through it.
            count.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn record(&self, value: u64) {
        self.record_n(value, 1);
    }

    /// Adds every value of `local` (recorded in the same layout) in.
    pub(crate) fn add(&self, local: &Histogram<u64>) {
        for step in local.iter_recorded() {
            self.record_n(step.value_iterated_to(), step.count_at_value());
        }
    }

    /// The values counted so far, as a `Histogram`.
    pub(crate) fn read(&self) -> Histogram<u64> {
        let mut histogram = histogram();
        for (index, count) in self.counts.iter().enumerate() {
            // Relaxed: a statistic (module doc: a reading is not a snapshot).
            let n = count.load(Ordering::Relaxed);
            if n > 0 {
                // Cannot fail: the value is at most `HIGHEST`, and the count is what was added.
                let _ = histogram.record_n(lowest_of(index), n);
            }
        }
        histogram
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_layout_is_hdrhistograms() {
        let template = histogram();
        assert_eq!(usize::from(template.buckets()), BUCKETS);
        assert_eq!(template.distinct_values(), LEN);
        assert!(index_of(HIGHEST) < LEN);
        for index in 0..LEN {
            assert_eq!(
                index_of(lowest_of(index)),
                index,
                "counter {index} does not hold its own lowest value"
            );
        }
        for index in 1..LEN {
            assert!(lowest_of(index) > lowest_of(index - 1));
        }
    }

    #[test]
    fn edges_read_back_as_hdrhistogram_records_them() {
        let atomic = AtomicHistogram::new();
        let mut expected = histogram();
        for value in [0, 1, 2, 255, 256, 257, 511, 512, 1 << 20, HIGHEST - 1, HIGHEST, HIGHEST + 1, u64::MAX]
        {
            atomic.record(value);
            expected.saturating_record(value);
        }
        let read = atomic.read();
        assert_eq!(read, expected);
        assert_eq!(read.len(), 13);
        assert_eq!(read.max(), expected.max());
    }

    proptest! {
        /// Whatever the values, the reading equals the histogram hdrhistogram itself records:
        /// same counts in the same buckets, so the same quantiles, mean and extremes.
        #[test]
        fn a_reading_is_the_histogram_of_the_values(
            values in proptest::collection::vec(prop_oneof![0u64..1000, 0u64..HIGHEST, any::<u64>()], 0..200),
            repeat in 1u64..4,
        ) {
            let atomic = AtomicHistogram::new();
            let mut expected = histogram();
            let mut local = histogram();
            for &value in &values {
                atomic.record_n(value, repeat);
                expected.saturating_record(value);
                local.saturating_record(value);
            }
            for _ in 1..repeat {
                for &value in &values {
                    expected.saturating_record(value);
                }
            }
            let read = atomic.read();
            prop_assert_eq!(&read, &expected);
            prop_assert_eq!(read.value_at_quantile(0.99), expected.value_at_quantile(0.99));
            // Folding a local histogram in adds exactly its values.
            atomic.add(&local);
            expected.add(&local).expect("same layout");
            prop_assert_eq!(atomic.read(), expected);
        }
    }
}
