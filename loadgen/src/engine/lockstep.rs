//! The library under test: a lockstep pipeline with the record kind's merge (`Sum` for `i64`,
//! `Concat` otherwise).
//!
//! Compacted top-level segments go to a sink that discards them and only each path's newest one
//! stays in memory (`Retention::Newest(1)`), so a long run holds steady memory.
//!
//! Visible: a commit is visible once `pipeline.snapshot().frontier()` covers it. The frontier
//! is a consistent cut: every earlier commit is then visible too, on every shard. The figure is
//! the library's own `Stats::visible_latency` (one commit in 16, from taking its number to the
//! publish that shows it), taken where the publish happens.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use hdrhistogram::Histogram;
use lockstep::{DiscardSink, PathKey, Pipeline, Producer, Retention, Stats};

use super::{Committer, Config, Engine, Failure, Finish};
use crate::align::Layout;
use crate::format::group;
use crate::record::Kind;
use crate::workload::Part;

/// Each path's key, by the workload's path index, resolved the first time any producer names
/// it; one table for all producers, as an embedding would keep (a table per producer thread is
/// a cache miss per part once there are many producers).
type Keys = OnceLock<Box<[OnceLock<PathKey>]>>;

#[derive(Debug)]
pub struct Lockstep<K: Kind> {
    pipeline: Pipeline<K::Merge>,
    keys: Arc<Keys>,
    divisor: u64,
    max_level: u32,
    /// The pipeline's figures when the measured window started, subtracted from later ones.
    at_window: Mutex<Option<Stats>>,
}

#[derive(Debug)]
pub struct LockstepCommitter<K: Kind> {
    producer: Producer<K::Merge>,
    /// Commits go by key, as an embedding that knows its paths up front would.
    keys: Arc<Keys>,
}

impl<K: Kind> Lockstep<K> {
    /// The pipeline's figures since the measured window started.
    fn window_stats(&self) -> Stats {
        let mut stats = self.pipeline.stats();
        if let Some(at_window) = self.at_window.lock().ok().and_then(|at| at.clone()) {
            since(&mut stats.visible_latency, &at_window.visible_latency);
            since(&mut stats.batch_size, &at_window.batch_size);
            since(&mut stats.compaction, &at_window.compaction);
        }
        stats
    }
}

impl<K: Kind> Engine<K> for Lockstep<K> {
    type Committer = LockstepCommitter<K>;

    fn build(config: &Config) -> Result<Self, Failure> {
        let pipeline = Pipeline::builder(K::merge())
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
            keys: Arc::default(),
            divisor: config.divisor,
            max_level: config.max_level,
            at_window: Mutex::new(None),
        })
    }

    fn committer(&self, _index: usize) -> Result<LockstepCommitter<K>, Failure> {
        Ok(LockstepCommitter { producer: self.pipeline.producer()?, keys: self.keys.clone() })
    }

    fn visible(&self) -> Histogram<u64> {
        self.window_stats().visible_latency
    }

    fn frontier(&self) -> Option<u64> {
        Some(self.pipeline.snapshot().frontier())
    }

    fn progress(&self) -> Option<String> {
        let stats = self.pipeline.stats();
        Some(format!("frontier at {} of {} commits issued", group(stats.frontier), group(stats.commits)))
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
        let stats = self.window_stats();
        let last = self.pipeline.shutdown()?;
        let mut layout = Layout::new(self.max_level);
        for path in last.paths() {
            layout.add_path(path, &last.segments(path), self.divisor, last.frontier());
        }
        let micros = |nanos: u64| crate::latency::micros(nanos);
        let mut notes = Vec::new();
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
            visible_latency: stats.visible_latency,
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

impl<K: Kind> Committer<K> for LockstepCommitter<K> {
    #[inline]
    fn commit(&mut self, parts: &mut Vec<Part<K::Record>>, _stamp: Option<Instant>) -> Result<(), Failure> {
        // The library stamps its own sampled commits (`Stats::visible_latency`).
        let Some(&(first, _)) = parts.first() else { return Ok(()) };
        let keys = self.keys.get_or_init(|| (0..first.paths()).map(|_| OnceLock::new()).collect());
        for &(path, _) in parts.iter() {
            let slot = &keys[path.index as usize];
            if slot.get().is_none() {
                // Another producer may set it first, to the same key: either is fine.
                let _ = slot.set(self.producer.key(path.name())?);
            }
        }
        // By reference: no reference count touched per part.
        let keyed = parts.drain(..).map(|(path, record)| (keys[path.index as usize].get(), record));
        self.producer.commit(keyed.map(|(key, record)| (key.expect("resolved above"), record)))?;
        Ok(())
    }
}
