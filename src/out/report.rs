//! A plain view of [`Stats`]: numbers only, to log, store or send (serde with the `serde`
//! feature), where an [`hdrhistogram::Histogram`] is too much and not serializable.
//!
//! Each histogram becomes a [`HistogramSummary`]: its count, extremes, mean and the quantiles
//! [`Stats::write_prometheus`] reports, in the histogram's own unit (nanoseconds or parts). A
//! summary is what a log line or a dashboard row wants; it does not add up across pipelines or
//! instances (quantiles do not), so figures that must aggregate come from the Prometheus
//! histograms instead.

use hdrhistogram::Histogram;

use crate::out::stats::Stats;

/// [`Stats`] as plain numbers: the counters as they are, each histogram as a
/// [`HistogramSummary`]. Made by [`Stats::report`]; `Serialize` and `Deserialize` with the
/// `serde` feature. Latencies are in nanoseconds.
///
/// ```
/// use lockstep::{merge::Sum, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let mut producer = pipeline.producer()?;
/// for i in 0..32 {
///     producer.commit([("/a", i)])?;
/// }
/// drop(producer); // a producer folds its timings into the shared figures now and then, and when dropped
/// let report = pipeline.stats().report();
/// assert_eq!(report.commits, 32);
/// // One call in 16 is timed: two of the 32.
/// assert_eq!(report.commit_latency.count, 2);
/// assert!(report.commit_latency.min <= report.commit_latency.p50);
/// assert!(report.commit_latency.p50 <= report.commit_latency.max);
/// # Ok::<(), lockstep::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct StatsReport {
    /// [`Stats::commits`].
    pub commits: u64,
    /// [`Stats::records`].
    pub records: u64,
    /// [`Stats::frontier`].
    pub frontier: u64,
    /// [`Stats::commit_latency`], in nanoseconds.
    pub commit_latency: HistogramSummary,
    /// [`Stats::visible_latency`], in nanoseconds.
    pub visible_latency: HistogramSummary,
    /// [`Stats::batch_size`], in parts.
    pub batch_size: HistogramSummary,
    /// [`Stats::compaction`], in nanoseconds.
    pub compaction: HistogramSummary,
    /// [`Stats::queue_depth`], in parts.
    pub queue_depth: HistogramSummary,
    /// [`Stats::sink_writes`].
    pub sink_writes: u64,
    /// [`Stats::sink_failures`].
    pub sink_failures: u64,
    /// [`Stats::segments_dropped`].
    pub segments_dropped: u64,
    /// [`Stats::last_sink_error`].
    pub last_sink_error: Option<String>,
    /// [`Stats::worker_parks`].
    pub worker_parks: u64,
    /// [`Stats::torn_tails`].
    pub torn_tails: u64,
}

/// One histogram as a handful of numbers, in its own unit. Every value is read from the
/// histogram's buckets, so it carries their two significant digits. An empty histogram has
/// every field 0.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct HistogramSummary {
    /// Values recorded.
    pub count: u64,
    /// The smallest.
    pub min: u64,
    /// The largest.
    pub max: u64,
    /// Their mean.
    pub mean: f64,
    /// The median.
    pub p50: u64,
    /// The 90th percentile.
    pub p90: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The 99.9th percentile.
    pub p999: u64,
}

impl HistogramSummary {
    /// The summary of `histogram` (any `hdrhistogram` histogram, not only lockstep's).
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self { count: 0, min: 0, max: 0, mean: 0.0, p50: 0, p90: 0, p99: 0, p999: 0 };
        }
        Self {
            count: histogram.len(),
            min: histogram.min(),
            max: histogram.max(),
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
        }
    }
}

impl Stats {
    /// These figures as plain numbers (see [`StatsReport`]): the counters, and each histogram
    /// summarized by its count, extremes, mean and quantiles.
    pub fn report(&self) -> StatsReport {
        StatsReport {
            commits: self.commits,
            records: self.records,
            frontier: self.frontier,
            commit_latency: HistogramSummary::of(&self.commit_latency),
            visible_latency: HistogramSummary::of(&self.visible_latency),
            batch_size: HistogramSummary::of(&self.batch_size),
            compaction: HistogramSummary::of(&self.compaction),
            queue_depth: HistogramSummary::of(&self.queue_depth),
            sink_writes: self.sink_writes,
            sink_failures: self.sink_failures,
            segments_dropped: self.segments_dropped,
            last_sink_error: self.last_sink_error.clone(),
            worker_parks: self.worker_parks,
            torn_tails: self.torn_tails,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::out::histogram::histogram;

    #[test]
    fn a_summary_reads_the_histogram() {
        let mut values = histogram();
        for value in 1..=1000 {
            values.saturating_record(value);
        }
        let summary = HistogramSummary::of(&values);
        assert_eq!((summary.count, summary.min), (1000, 1));
        // Two significant digits: each value is its bucket's, as `value_at_quantile` gives it.
        assert_eq!(summary.max, values.max());
        assert_eq!(summary.p50, values.value_at_quantile(0.5));
        assert!((495..=505).contains(&summary.p50), "{summary:?}");
        assert!((985..=1000).contains(&summary.p99), "{summary:?}");
        assert!(summary.p50 <= summary.p90 && summary.p90 <= summary.p99 && summary.p99 <= summary.p999);
        assert!((summary.mean - 500.5).abs() < 5.0, "{summary:?}");
        let empty = HistogramSummary::of(&histogram());
        assert_eq!(
            empty,
            HistogramSummary { count: 0, min: 0, max: 0, mean: 0.0, p50: 0, p90: 0, p99: 0, p999: 0 }
        );
    }
}
