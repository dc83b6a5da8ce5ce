//! The library under test: a lockstep pipeline of `Concat<Record>`.
//!
//! Compacted top-level segments go to a sink that discards them and only each path's newest one
//! stays in memory (`Retention::Newest(1)`), so a long run holds steady memory.
//!
//! Visible: a commit is visible once `pipeline.snapshot().frontier()` covers it. The frontier
//! is a consistent cut: every earlier commit is then visible too, on every shard.

use std::sync::Mutex;

use hdrhistogram::Histogram;
use lockstep::merge::Concat;
use lockstep::{DiscardSink, Pipeline, Producer, Retention, Stats};

use super::{Committer, Config, Engine, Failure, Finish};
use crate::align::Layout;
use crate::latency::Summary;
use crate::report::group;
use crate::workload::{Part, Record};

type Merge = Concat<Record>;

#[derive(Debug)]
pub struct Lockstep {
    pipeline: Pipeline<Merge>,
    divisor: u64,
    max_level: u32,
    /// The pipeline's figures when the measured window started, subtracted at the end.
    at_window: Mutex<Option<Stats>>,
}

#[derive(Debug)]
pub struct LockstepCommitter {
    producer: Producer<Merge>,
    last: u64,
}

impl Engine for Lockstep {
    type Committer = LockstepCommitter;
    /// The commit number.
    type Ticket = u64;
    /// The published frontier.
    type Look = u64;

    fn build(config: &Config) -> Result<Self, Failure> {
        let pipeline = Pipeline::builder(Merge::default())
            .shards(config.shards)
            .divisor(config.divisor)
            .max_level(config.max_level)
            .queue_capacity(config.queue_capacity)
            .pin_workers(config.pin)
            .max_producers(config.producers)
            .sink(DiscardSink)
            .retain(Retention::Newest(1))
            .build()?;
        Ok(Self {
            pipeline,
            divisor: config.divisor,
            max_level: config.max_level,
            at_window: Mutex::new(None),
        })
    }

    fn committer(&self, _index: usize) -> Result<LockstepCommitter, Failure> {
        Ok(LockstepCommitter { producer: self.pipeline.producer()?, last: 0 })
    }

    fn look(&self) -> u64 {
        self.pipeline.snapshot().frontier()
    }

    fn covers(frontier: &u64, commit: &u64) -> bool {
        commit <= frontier
    }

    fn measuring(&self) {
        let stats = self.pipeline.stats();
        if let Ok(mut at_window) = self.at_window.lock() {
            *at_window = Some(stats);
        }
    }

    fn finish(self) -> Result<Finish, Failure> {
        // Read before shutdown, which consumes the pipeline: the worker figures cover the
        // measured window and the drain that ends it, not the final drain.
        let mut stats = self.pipeline.stats();
        if let Some(at_window) = self.at_window.into_inner().ok().flatten() {
            since(&mut stats.visible_latency, &at_window.visible_latency);
            since(&mut stats.batch_size, &at_window.batch_size);
            since(&mut stats.compaction, &at_window.compaction);
        }
        let last = self.pipeline.shutdown()?;
        let mut layout = Layout::new(self.max_level);
        for path in last.paths() {
            layout.add_path(path, &last.segments(path), self.divisor, last.frontier());
        }
        let micros = |nanos: u64| crate::latency::micros(nanos);
        let mut notes = Vec::new();
        if let Some(visible) = Summary::of(&stats.visible_latency) {
            notes.push(format!(
                "library's own commit-to-visible (1 commit in 16, from taking its number): p50 {:.1} / p99 {:.1} / p99.9 {:.1} / max {:.0} µs",
                visible.p50, visible.p99, visible.p999, visible.max
            ));
        }
        notes.push(format!(
            "worker batch p50 {} / p99 {} parts; merge time per turn p50 {:.0} / p99 {:.0} / max {:.0} µs",
            stats.batch_size.value_at_quantile(0.5),
            stats.batch_size.value_at_quantile(0.99),
            micros(stats.compaction.value_at_quantile(0.5)),
            micros(stats.compaction.value_at_quantile(0.99)),
            micros(stats.compaction.max()),
        ));
        notes.push(format!(
            "sink writes {}, dropped by retention {}, sink failures {}",
            group(stats.sink_writes),
            group(stats.segments_dropped),
            group(stats.sink_failures),
        ));
        Ok(Finish {
            final_commit: Some(last.frontier()),
            records_applied: None,
            layout: Some(layout),
            own_visible_latency: Some(stats.visible_latency),
            notes,
        })
    }
}

/// Leaves in `total` what was recorded after `before` (an earlier reading of the same
/// histogram); keeps `total` whole if the two do not fit.
fn since(total: &mut Histogram<u64>, before: &Histogram<u64>) {
    let mut after = total.clone();
    if after.subtract(before).is_ok() {
        *total = after;
    }
}

impl Committer for LockstepCommitter {
    type Ticket = u64;

    fn commit(&mut self, parts: &mut Vec<Part>) -> Result<(), Failure> {
        self.last = self.producer.commit(parts.drain(..))?;
        Ok(())
    }

    fn ticket(&self) -> u64 {
        self.last
    }
}
