//! Latency histograms: nanoseconds inside, microseconds in every output.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Significant decimal digits every latency histogram keeps.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// The percentiles every report shows, with their names in the table and in JSON.
pub const QUANTILES: [(&str, f64); 5] =
    [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999), ("p99.99", 0.9999)];

/// An empty latency histogram: from 1 ns, three significant digits, growing to the largest value
/// recorded (so a thousand producers' histograms cost kilobytes each, not a quarter megabyte).
pub fn histogram() -> Histogram<u64> {
    Histogram::new(SIGNIFICANT_DIGITS).expect("three significant digits are valid")
}

/// Records `value` (nanoseconds), growing the histogram as needed. The crate's
/// `saturating_record` clamps to the current range instead of growing an auto-resizing
/// histogram, which would pin every value above 2 µs at 2 µs.
#[inline]
pub fn record(histogram: &mut Histogram<u64>, value: u64) {
    record_n(histogram, value, 1);
}

/// [`record`] `count` times.
pub fn record_n(histogram: &mut Histogram<u64>, value: u64, count: u64) {
    if histogram.record_n(value, count).is_err() {
        // Only a value beyond u64's range of buckets fails; clamp it.
        histogram.saturating_record_n(value, count);
    }
}

pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

pub fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

/// A latency distribution in microseconds: what the table and the JSON show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub samples: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// `None` for an empty histogram: no sample, no figure.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let at = |quantile: f64| micros(histogram.value_at_quantile(quantile));
        Some(Self {
            samples: histogram.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            p9999: at(0.9999),
            max: micros(histogram.max()),
            mean: histogram.mean() / 1000.0,
        })
    }

    /// The figures in the order of [`QUANTILES`], then the maximum.
    pub fn columns(&self) -> [f64; 6] {
        [self.p50, self.p90, self.p99, self.p999, self.p9999, self.max]
    }
}

/// Records the commits a fixed-rate producer was scheduled to start but never issued before the
/// run ended, each at its lower bound `end - intended`: the first was due `first_ns` before the
/// end, each later one `interval_ns` after the previous. Leaving them out would hide exactly the
/// stall that kept them from being issued (coordinated omission).
///
/// There can be hundreds of millions of them when an engine falls far behind, so instead of one
/// `record` each, runs of commits that land in the same histogram bucket are recorded at once.
pub fn record_missed(histogram: &mut Histogram<u64>, first_ns: u64, interval_ns: f64, count: u64) {
    let interval_ns = interval_ns.max(f64::MIN_POSITIVE);
    let mut recorded = 0;
    while recorded < count {
        // The latency of the next unrecorded commit: they shrink as `recorded` grows.
        let value = first_ns.saturating_sub((recorded as f64 * interval_ns) as u64);
        if value == 0 {
            record_n(histogram, 0, count - recorded);
            return;
        }
        let floor = histogram.lowest_equivalent(value);
        // Commits from this one on whose latency is still at least `floor` share its bucket.
        let in_bucket = ((value - floor) as f64 / interval_ns) as u64 + 1;
        let n = in_bucket.min(count - recorded);
        record_n(histogram, value, n);
        recorded += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_percentiles_are_in_microseconds() {
        let mut h = histogram();
        for v in 1..=10_000u64 {
            h.record(v * 1000).unwrap(); // 1 µs to 10 ms
        }
        let s = Summary::of(&h).unwrap();
        assert_eq!(s.samples, 10_000);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(s.p50, 5000.0), "p50 {}", s.p50);
        assert!(close(s.p90, 9000.0), "p90 {}", s.p90);
        assert!(close(s.p99, 9900.0), "p99 {}", s.p99);
        assert!(close(s.p999, 9990.0), "p99.9 {}", s.p999);
        assert!(close(s.p9999, 9999.0), "p99.99 {}", s.p9999);
        assert!(close(s.max, 10_000.0), "max {}", s.max);
        assert!(close(s.mean, 5000.5), "mean {}", s.mean);
        assert_eq!(s.columns()[5], s.max);
        assert_eq!(Summary::of(&histogram()), None);
    }

    #[test]
    fn large_values_grow_the_histogram_instead_of_being_clamped() {
        let mut h = histogram();
        record(&mut h, 5_000_000_000);
        record(&mut h, 3);
        assert!(h.max() >= 4_990_000_000, "{}", h.max());
        assert_eq!(h.min(), 3);
    }

    #[test]
    fn missed_commits_are_recorded_one_by_one_in_effect() {
        // The shortcut must give the same histogram as recording every commit.
        for (first, interval, count) in
            [(5_000_000u64, 1000.0, 5000u64), (123_456, 7.5, 10_000), (100, 30.0, 10), (100, 1.0, 1_000_000)]
        {
            let mut fast = histogram();
            record_missed(&mut fast, first, interval, count);
            let mut slow = histogram();
            for i in 0..count {
                record(&mut slow, first.saturating_sub((i as f64 * interval) as u64));
            }
            assert_eq!(fast.len(), count);
            assert_eq!(fast.max(), slow.max());
            for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999] {
                assert_eq!(fast.value_at_quantile(q), slow.value_at_quantile(q), "q {q}");
            }
        }
    }
}
