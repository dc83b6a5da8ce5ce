//! The metric families lockstep exports, named and described once for every exporter (the
//! Prometheus text of `crate::out::export`, the `metrics` facade of `crate::out::metrics`).

use hdrhistogram::Histogram;

use crate::out::stats::Stats;

/// A counter: its name, help, and its figure in a reading.
pub(crate) struct Counter {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) figure: fn(&Stats) -> u64,
}

/// What a histogram records, which decides its unit and its buckets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    /// Nanoseconds, exported in seconds.
    Duration,
    /// Parts, exported as they are.
    Parts,
}

impl Measure {
    /// Recorded values per exported unit (a division rounds to the shortest form better than a
    /// multiplication by the inverse: 369 ns prints as 0.000000369).
    pub(crate) fn per_unit(self) -> f64 {
        match self {
            Measure::Duration => 1e9,
            Measure::Parts => 1.0,
        }
    }
}

/// A histogram: its name as a summary, its name as a bucketed histogram, help, what it
/// measures, and the histogram in a reading.
pub(crate) struct HistogramFamily {
    pub(crate) name: &'static str,
    pub(crate) buckets_name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) measure: Measure,
    pub(crate) histogram: fn(&Stats) -> &Histogram<u64>,
}

/// The frontier gauge: name and help.
pub(crate) const FRONTIER: (&str, &str) =
    ("lockstep_frontier", "The published frontier: every commit at or below it is visible.");

pub(crate) const COUNTERS: [Counter; 7] = [
    Counter { name: "lockstep_commits_total", help: "Commits issued.", figure: |s| s.commits },
    Counter {
        name: "lockstep_records_total",
        help: "Records handed to shard workers.",
        figure: |s| s.records,
    },
    Counter {
        name: "lockstep_sink_writes_total",
        help: "Segments the sink accepted.",
        figure: |s| s.sink_writes,
    },
    Counter {
        name: "lockstep_sink_failures_total",
        help: "Sink writes that failed (each retry counts).",
        figure: |s| s.sink_failures,
    },
    Counter {
        name: "lockstep_segments_dropped_total",
        help: "Segments dropped from memory by retention after the sink took them.",
        figure: |s| s.segments_dropped,
    },
    Counter {
        name: "lockstep_worker_parks_total",
        help: "Times an idle shard worker parked.",
        figure: |s| s.worker_parks,
    },
    Counter {
        name: "lockstep_torn_tails_total",
        help: "Torn log tails dropped when the durable pipeline was opened.",
        figure: |s| s.torn_tails,
    },
];

pub(crate) const HISTOGRAMS: [HistogramFamily; 5] = [
    HistogramFamily {
        name: "lockstep_commit_duration_seconds",
        buckets_name: "lockstep_commit_duration_histogram_seconds",
        help: "Duration of commit and try_commit calls (one call in 16 is timed).",
        measure: Measure::Duration,
        histogram: |s| &s.commit_latency,
    },
    HistogramFamily {
        name: "lockstep_commit_to_visible_seconds",
        buckets_name: "lockstep_commit_to_visible_histogram_seconds",
        help: "From taking a commit number to the global snapshot including it (one commit in 16).",
        measure: Measure::Duration,
        histogram: |s| &s.visible_latency,
    },
    HistogramFamily {
        name: "lockstep_worker_batch_parts",
        buckets_name: "lockstep_worker_batch_histogram_parts",
        help: "Parts a shard worker drained in one loop turn (turns that drained nothing are not counted).",
        measure: Measure::Parts,
        histogram: |s| &s.batch_size,
    },
    HistogramFamily {
        name: "lockstep_worker_merge_seconds",
        buckets_name: "lockstep_worker_merge_histogram_seconds",
        help:
            "Time a shard worker spent merging in one loop turn (turns that merged nothing are not counted).",
        measure: Measure::Duration,
        histogram: |s| &s.compaction,
    },
    HistogramFamily {
        name: "lockstep_worker_queue_depth_parts",
        buckets_name: "lockstep_worker_queue_depth_histogram_parts",
        help: "Parts waiting in a shard worker's queues at the start of a loop turn.",
        measure: Measure::Parts,
        histogram: |s| &s.queue_depth,
    },
];
