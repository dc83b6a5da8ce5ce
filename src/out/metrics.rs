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

use crate::out::families::{Measure, COUNTERS, FRONTIER, HISTOGRAMS};
use crate::out::stats::Stats;

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
            for counter in &COUNTERS {
                metrics::describe_counter!(counter.name, Unit::Count, counter.help);
            }
            let (name, help) = FRONTIER;
            metrics::describe_gauge!(name, Unit::Count, help);
            for family in &HISTOGRAMS {
                let unit = match family.measure {
                    Measure::Duration => Unit::Seconds,
                    Measure::Parts => Unit::Count,
                };
                metrics::describe_histogram!(family.name, unit, family.help);
            }
        }
        for counter in &COUNTERS {
            metrics::counter!(counter.name, labels.clone()).absolute((counter.figure)(stats));
        }
        metrics::gauge!(FRONTIER.0, labels.clone()).set(stats.frontier as f64);
        let mut now = Vec::with_capacity(HISTOGRAMS.len());
        for (i, family) in HISTOGRAMS.iter().enumerate() {
            let (name, per_unit) = (family.name, family.measure.per_unit());
            let current = (family.histogram)(stats);
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
