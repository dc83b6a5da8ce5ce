//! The library under test: a lockstep pipeline of `Concat<Record>`.
//!
//! Compacted top-level segments go to a sink that discards them and only each path's newest one
//! stays in memory (`Retention::Newest(1)`), so a long run holds steady memory.
//!
//! Visible: a commit is visible once `pipeline.snapshot().frontier()` covers it. The frontier
//! is a consistent cut: every earlier commit is then visible too, on every shard.

use lockstep::merge::Concat;
use lockstep::{DiscardSink, Pipeline, Producer, Retention};

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
        Ok(Self { pipeline, divisor: config.divisor, max_level: config.max_level })
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

    fn finish(self) -> Result<Finish, Failure> {
        // Read before shutdown, which consumes the pipeline: the worker figures cover the whole
        // run, warm-up included, and miss only the final drain.
        let stats = self.pipeline.stats();
        let last = self.pipeline.shutdown()?;
        let mut layout = Layout::new(self.max_level);
        for path in last.paths() {
            layout.add_path(path, &last.segments(path), self.divisor, last.frontier());
        }
        let micros = |nanos: u64| crate::latency::micros(nanos);
        let mut notes = Vec::new();
        if let Some(visible) = Summary::of(&stats.visible_latency) {
            notes.push(format!(
                "library's own commit-to-visible (1 in 16, warm-up included): p50 {:.0} / p99 {:.0} / max {:.0} µs",
                visible.p50, visible.p99, visible.max
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
        Ok(Finish { final_commit: Some(last.frontier()), records_applied: None, layout: Some(layout), notes })
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
