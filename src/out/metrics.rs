//! [`Stats`] through the [`metrics`] crate's facade (the `metrics` feature), so whatever
//! recorder the process installed — `metrics-exporter-prometheus`, StatsD, a test's debugging
//! recorder — serves lockstep's figures beside the service's own.
//!
//! lockstep does not call the facade on its hot path: its producers and workers keep adding to
//! their lock-free counters and histograms as always, and [`MetricsExport::record`] copies a
//! reading of them out when the caller asks (a periodic task, or each scrape). Counters are
//! totals already, so they are set (`Counter::absolute`); the frontier is a gauge; a histogram
//! gets only the values recorded since the previous call, the difference of two readings, one
//! `record_many` per HdrHistogram bucket (at the bucket's middle value), so an exporter's own
//! buckets or summaries see each value once.

use hdrhistogram::Histogram;
use metrics::{Label, Unit};

use crate::out::stats::Stats;

/// Nanoseconds in a second: the facade's histograms take base units, as Prometheus does.
const NANOS: f64 = 1e9;

/// A counter's figure in a reading.
type CountOf = fn(&Stats) -> u64;

/// The counters: name, help, and the figure.
const COUNTERS: [(&str, &str, CountOf); 7] = [
    ("lockstep_commits_total", "Commits issued.", |s| s.commits),
    ("lockstep_records_total", "Records handed to shard workers.", |s| s.records),
    ("lockstep_sink_writes_total", "Segments the sink accepted.", |s| s.sink_writes),
    ("lockstep_sink_failures_total", "Sink writes that failed (each retry counts).", |s| s.sink_failures),
    (
        "lockstep_segments_dropped_total",
        "Segments dropped from memory by retention after the sink took them.",
        |s| s.segments_dropped,
    ),
    ("lockstep_worker_parks_total", "Times an idle shard worker parked.", |s| s.worker_parks),
    ("lockstep_torn_tails_total", "Torn log tails dropped when the durable pipeline was opened.", |s| {
        s.torn_tails
    }),
];

/// A histogram of a reading.
type HistogramOf = fn(&Stats) -> &Histogram<u64>;

/// The histograms: name, help, unit, recorded values per unit, and the histogram.
const HISTOGRAMS: [(&str, &str, Unit, f64, HistogramOf); 5] = [
    (
        "lockstep_commit_duration_seconds",
        "Duration of commit and try_commit calls (one call in 16 is timed).",
        Unit::Seconds,
        NANOS,
        |s| &s.commit_latency,
    ),
    (
        "lockstep_commit_to_visible_seconds",
        "From taking a commit number to the global snapshot including it (one commit in 16).",
        Unit::Seconds,
        NANOS,
        |s| &s.visible_latency,
    ),
    (
        "lockstep_worker_batch_parts",
        "Parts a shard worker drained in one loop turn (turns that drained nothing are not counted).",
        Unit::Count,
        1.0,
        |s| &s.batch_size,
    ),
    (
        "lockstep_worker_merge_seconds",
        "Time a shard worker spent merging in one loop turn (turns that merged nothing are not counted).",
        Unit::Seconds,
        NANOS,
        |s| &s.compaction,
    ),
    (
        "lockstep_worker_queue_depth_parts",
        "Parts waiting in a shard worker's queues at the start of a loop turn.",
        Unit::Count,
        1.0,
        |s| &s.queue_depth,
    ),
];

/// Records one pipeline's [`Stats`] through the [`metrics`] facade, each time
/// [`record`](MetricsExport::record) is given a reading. A plain value (`Send + Sync`) that
/// remembers the previous reading's histograms: keep one per pipeline, and give it readings of
/// that pipeline only.
///
/// The names are those of [`Stats::write_prometheus`]'s counters, gauge and summaries
/// (`lockstep_commits_total`, `lockstep_frontier`, `lockstep_commit_to_visible_seconds`, …),
/// plus `lockstep_torn_tails_total`; durations in seconds, sizes in parts. How a histogram is
/// served (buckets, summary) is the installed recorder's choice.
///
/// ```
/// use lockstep::{merge::Sum, MetricsExport, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let mut export = MetricsExport::with_labels(&[("pipeline", "ingest")]);
/// let mut producer = pipeline.producer()?;
/// producer.commit([("/a", 1)])?;
/// // Now and then (say, once a second, or on each scrape):
/// export.record(&pipeline.stats());
/// # Ok::<(), lockstep::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct MetricsExport {
    labels: Vec<Label>,
    /// The previous reading's histograms, in `HISTOGRAMS` order; `None` before the first.
    last: Option<Vec<Histogram<u64>>>,
}

impl MetricsExport {
    /// An export whose metrics carry no labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// An export whose every metric carries `labels` (for instance, which pipeline of a
    /// process it is).
    pub fn with_labels(labels: &[(&str, &str)]) -> Self {
        let labels =
            labels.iter().map(|&(name, value)| Label::new(name.to_owned(), value.to_owned())).collect();
        Self { labels, last: None }
    }

    /// Records `stats` through the facade's current recorder: every counter set to its total,
    /// the frontier, and each histogram's values since the previous call (all of them the first
    /// time, and whenever a histogram counts less than before, as a reading of another pipeline
    /// would). Descriptions and units are given on the first call.
    pub fn record(&mut self, stats: &Stats) {
        let labels = &self.labels;
        if self.last.is_none() {
            for (name, help, _) in COUNTERS {
                metrics::describe_counter!(name, Unit::Count, help);
            }
            metrics::describe_gauge!(
                "lockstep_frontier",
                Unit::Count,
                "The published frontier: every commit at or below it is visible."
            );
            for (name, help, unit, _, _) in HISTOGRAMS {
                metrics::describe_histogram!(name, unit, help);
            }
        }
        for (name, _, figure) in COUNTERS {
            metrics::counter!(name, labels.clone()).absolute(figure(stats));
        }
        metrics::gauge!("lockstep_frontier", labels.clone()).set(stats.frontier as f64);
        let mut now = Vec::with_capacity(HISTOGRAMS.len());
        for (i, (name, _, _, per_unit, histogram_of)) in HISTOGRAMS.into_iter().enumerate() {
            let current = histogram_of(stats);
            let previous = self.last.as_ref().and_then(|last| last.get(i));
            let handle = metrics::histogram!(name, labels.clone());
            let fresh = since(current, previous);
            for step in fresh.iter_recorded() {
                let value = fresh.median_equivalent(step.value_iterated_to()) as f64 / per_unit;
                handle.record_many(value, usize::try_from(step.count_at_value()).unwrap_or(usize::MAX));
            }
            now.push(current.clone());
        }
        self.last = Some(now);
    }
}

/// The values of `current` not in `previous`: their difference, or all of `current` if
/// `previous` holds a value `current` lacks (it was not an earlier reading of the same figure).
fn since(current: &Histogram<u64>, previous: Option<&Histogram<u64>>) -> Histogram<u64> {
    let mut fresh = current.clone();
    if let Some(previous) = previous {
        if fresh.subtract(previous).is_err() {
            fresh = current.clone();
        }
    }
    fresh
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::out::histogram::histogram;

    #[test]
    fn only_the_new_values_are_recorded_again() {
        let (mut before, mut after) = (histogram(), histogram());
        for value in [10, 20, 20] {
            before.saturating_record(value);
            after.saturating_record(value);
        }
        after.saturating_record(30);
        let fresh = since(&after, Some(&before));
        assert_eq!((fresh.len(), fresh.min(), fresh.max()), (1, 30, 30));
        assert_eq!(since(&after, None), after, "the first reading: everything");
        assert_eq!(since(&before, Some(&after)), before, "not an earlier reading: everything");
    }
}
