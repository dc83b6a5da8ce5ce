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
//!
//! Durable (`--durable`): the pipeline logs into a fresh directory (see [`crate::durable`]),
//! keeps every segment and takes no sink (a durable pipeline takes none yet). At a fixed rate,
//! commit-to-durable is measured by a thread of its own: each sampled commit's producer hands
//! it (number, intended start) through a bounded queue; the thread calls `wait_durable` for each
//! in turn, as a user acknowledging commits would, and records the time from the intended start
//! to its return. Its own lateness (it is one more thread on the machine) only adds to the
//! figure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Sender};
use hdrhistogram::Histogram;
use lockstep::{Builder, DiscardSink, PathKey, Pipeline, Producer, Retention, Stats};

use super::{Committer, Config, DurableFinish, Engine, Failure, Finish};
use crate::align::Layout;
use crate::durable::Scratch;
use crate::format::group;
use crate::record::Kind;
use crate::workload::Part;

/// Each path's key, by the workload's path index, resolved the first time any producer names
/// it; one table for all producers, as an embedding would keep (a table per producer thread is
/// a cache miss per part once there are many producers).
type Keys = OnceLock<Box<[OnceLock<PathKey>]>>;

#[derive(Debug)]
pub struct Lockstep<K: Kind> {
    /// Shared with the commit-to-durable thread, when there is one.
    pipeline: Arc<Pipeline<K::Merge>>,
    durable: Option<Durable>,
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
    /// Where sampled commits go to be waited for until durable.
    waiter: Option<(Sender<Sampled>, Arc<AtomicU64>)>,
    /// The intended start of the next commit, when it is sampled.
    intended: Option<Instant>,
}

/// A sampled commit's number and intended start.
type Sampled = (u64, Instant);

/// Sampled commits waiting for the commit-to-durable thread; beyond this, samples are dropped
/// (and counted).
const WAITER_QUEUE: usize = 1 << 16;

/// A durable run's directory and commit-to-durable thread.
#[derive(Debug)]
struct Durable {
    scratch: Scratch,
    keep: bool,
    waiter: Option<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    sender: Sender<Sampled>,
    dropped: Arc<AtomicU64>,
    thread: JoinHandle<Result<Histogram<u64>, lockstep::Error>>,
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

/// A pipeline builder with the run's geometry, queues and pinning (what every lockstep-backed
/// engine shares).
pub(super) fn builder<K: Kind>(config: &Config) -> Builder<K::Merge> {
    Pipeline::builder(K::merge())
        .shards(config.shards)
        .divisor(config.divisor)
        .max_level(config.max_level)
        .queue_capacity(config.queue_capacity)
        .pin_workers(config.pin)
}

impl<K: Kind> Engine<K> for Lockstep<K> {
    type Committer = LockstepCommitter<K>;

    fn build(config: &Config) -> Result<Self, Failure> {
        let mut builder = builder::<K>(config).max_producers(config.producers);
        if !config.retain_all {
            builder = builder.sink(DiscardSink).retain(Retention::Newest(1));
        }
        let scratch = match &config.durable {
            Some(durable) => {
                let scratch = Scratch::new(&durable.dir)?;
                builder = builder.durable(scratch.path()).durability(durable.durability.library());
                Some(scratch)
            }
            None => None,
        };
        let pipeline = Arc::new(builder.build()?);
        let durable = match (scratch, &config.durable) {
            (Some(scratch), Some(settings)) => {
                let waiter = if settings.wait_latency { Some(Waiter::start(&pipeline)?) } else { None };
                Some(Durable { scratch, keep: settings.keep, waiter })
            }
            _ => None,
        };
        Ok(Self {
            pipeline,
            durable,
            keys: Arc::default(),
            divisor: config.divisor,
            max_level: config.max_level,
            at_window: Mutex::new(None),
        })
    }

    fn committer(&self, _index: usize) -> Result<LockstepCommitter<K>, Failure> {
        let waiter = self.durable.as_ref().and_then(|d| d.waiter.as_ref());
        Ok(LockstepCommitter {
            producer: self.pipeline.producer()?,
            keys: self.keys.clone(),
            waiter: waiter.map(|w| (w.sender.clone(), w.dropped.clone())),
            intended: None,
        })
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
        let (durable, waited) = match self.durable {
            Some(Durable { scratch, keep, waiter }) => {
                let waited = match waiter {
                    Some(waiter) => Some(waiter.finish()?),
                    None => None,
                };
                (Some((scratch, keep)), waited)
            }
            None => (None, None),
        };
        let pipeline = Arc::try_unwrap(self.pipeline)
            .map_err(|_| "the pipeline is still shared after its waiter ended")?;
        let last = pipeline.shutdown()?;
        let durable = match durable {
            Some((scratch, keep)) => {
                let log_bytes = scratch.bytes();
                let kept = if keep {
                    Some(scratch.path().to_path_buf())
                } else {
                    scratch.remove()?;
                    None
                };
                let (wait_latency, wait_dropped) = waited.map_or((None, 0), |(h, d)| (Some(h), d));
                Some(DurableFinish { log_bytes, kept, wait_latency, wait_dropped })
            }
            None => None,
        };
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
            durable,
        })
    }
}

impl Waiter {
    fn start<M: lockstep::merge::Merge>(pipeline: &Arc<Pipeline<M>>) -> Result<Self, Failure>
    where
        Pipeline<M>: Send + Sync + 'static,
    {
        let (sender, receiver) = bounded::<Sampled>(WAITER_QUEUE);
        let pipeline = Arc::clone(pipeline);
        let thread = std::thread::Builder::new().name("loadgen-wait-durable".into()).spawn(move || {
            let mut latency = crate::latency::histogram();
            // Ends when every sender is gone: the committers and the engine's own.
            for (commit, intended) in receiver {
                pipeline.wait_durable(commit, Duration::from_secs(60))?;
                crate::latency::record(&mut latency, crate::latency::nanos(intended.elapsed()));
            }
            Ok(latency)
        })?;
        Ok(Self { sender, dropped: Arc::default(), thread })
    }

    /// Waits for the samples queued, and returns their latency and how many were dropped.
    fn finish(self) -> Result<(Histogram<u64>, u64), Failure> {
        drop(self.sender);
        let latency = self.thread.join().map_err(|_| "the commit-to-durable thread panicked")??;
        // Relaxed: the committers are gone; a count.
        Ok((latency, self.dropped.load(Ordering::Relaxed)))
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
        let commit =
            self.producer.commit(keyed.map(|(key, record)| (key.expect("resolved above"), record)))?;
        if let (Some(intended), Some((sender, dropped))) = (self.intended.take(), &self.waiter) {
            if sender.try_send((commit, intended)).is_err() {
                // Relaxed: a count, read after the committers are gone.
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    #[inline]
    fn intended(&mut self, at: Instant) {
        self.intended = Some(at);
    }
}
