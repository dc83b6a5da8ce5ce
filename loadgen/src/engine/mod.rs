//! The engines loadgen drives with the same workload, one after another, in one process.
//!
//! - [`lockstep`]: the library under test.
//! - [`mutex`]: one global lock around the commit counter and a per-path index, with a
//!   count-driven compaction check on each insert: the commit-callback design lockstep replaces.
//! - [`channel`]: a thread per shard fed by crossbeam channels, each owning its paths and
//!   compacting each path by count.
//! - [`raw`]: lockstep's transport alone: the same records through the same single-writer
//!   rings, drained in turns and woken as lockstep's workers are, to consumers that only read
//!   them. `lockstep ÷ raw` is the share of its transport's ceiling lockstep keeps.
//! - [`nats`]: lockstep behind NATS JetStream: producers publish commits to a stream, a
//!   follower reads it into a sequenced pipeline (not part of `all`).
//!
//! Every engine does the same work for a record kind (see [`crate::record`]): sums per path for
//! `i64`, keeps every record otherwise (`raw` reads each record and drops it).
//!
//! Commit-to-visible is measured where a commit becomes visible, by the engine itself: lockstep
//! by its own `Stats::visible_latency`; `mutex` in the committing thread right after it
//! publishes the counter under the lock; `channel` and `raw` by the consumer thread that
//! publishes the last watermark a sampled commit waited for (see [`stamps`]).

use std::error::Error;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::ValueEnum;
use crossbeam::utils::CachePadded;
use hdrhistogram::Histogram;

use crate::align::Layout;
use crate::record::Kind as RecordKind;
use crate::workload::Part;

pub mod channel;
pub mod fjall;
pub mod lockstep;
pub mod mutex;
pub mod nats;
pub mod raw;
pub mod stamps;
mod tiers;

/// Errors crossing threads: engine failures, reported at the end of a run.
pub type Failure = Box<dyn Error + Send + Sync>;

/// The `--engine` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Choice {
    /// The lockstep pipeline.
    Lockstep,
    /// Global mutex around the commit counter and a per-path index, count-driven compaction.
    Mutex,
    /// A thread per shard fed by crossbeam channels, count-driven compaction per path.
    Channel,
    /// lockstep's transport alone: records through single-writer rings to consumers that only
    /// read them.
    Raw,
    /// All four (lockstep, mutex, channel, raw), one after another, with ratios.
    All,
    /// fjall, an embedded LSM store, writing each record durably (needs --durable): the peer
    /// row of durable runs. Not part of `all`.
    Fjall,
    /// lockstep behind NATS JetStream: each commit published as one message to a stream on a
    /// loopback nats-server (started per run, or --nats URL), followed into a sequenced
    /// pipeline; its limit row is JetStream alone. Not part of `all`.
    Nats,
}

/// One engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lockstep,
    Mutex,
    Channel,
    Raw,
    Fjall,
    Nats,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Lockstep, Kind::Mutex, Kind::Channel, Kind::Raw];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Lockstep => "lockstep",
            Kind::Mutex => "mutex",
            Kind::Channel => "channel",
            Kind::Raw => "raw",
            Kind::Fjall => "fjall",
            Kind::Nats => "nats",
        }
    }

    /// What "visible" means for this engine and where it is measured, in one line.
    pub fn visible_means(self) -> &'static str {
        match self {
            Kind::Lockstep => {
                "in pipeline.snapshot() (a consistent cut); the library's own Stats::visible_latency, 1 commit in 16, from taking its number to the publish"
            }
            Kind::Mutex => {
                "the counter published under the lock after the commit's inserts; stamped in the committing thread"
            }
            Kind::Channel => {
                "every shard it touched has applied it (per commit, no cut across shards); stamped by the last of those shards"
            }
            Kind::Raw => {
                "a consumer has popped every record of it (nothing is indexed); stamped by the last of those consumers"
            }
            Kind::Fjall => "its write batch committed (readable); stamped in the committing thread",
            Kind::Nats => {
                "in the follower's pipeline.snapshot() (a consistent cut), from the producer's stamp before the publish; waited for (wait_sealed of its sequence) by a thread that takes the samples in turn"
            }
        }
    }
}

impl Choice {
    /// The engines this choice runs, in order.
    pub fn kinds(self) -> Vec<Kind> {
        match self {
            Choice::Lockstep => vec![Kind::Lockstep],
            Choice::Mutex => vec![Kind::Mutex],
            Choice::Channel => vec![Kind::Channel],
            Choice::Raw => vec![Kind::Raw],
            Choice::All => Kind::ALL.to_vec(),
            Choice::Fjall => vec![Kind::Fjall],
            Choice::Nats => vec![Kind::Nats],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How every engine is configured: the same knobs mean the same thing for each.
#[derive(Debug, Clone)]
pub struct Config {
    pub producers: usize,
    pub shards: usize,
    pub divisor: u64,
    pub max_level: u32,
    /// Parts each (producer, shard) queue holds; engines with one queue per shard get
    /// `producers` times as much, so every engine buffers the same number of parts.
    pub queue_capacity: usize,
    /// Pin shard worker (or consumer) `i` to core `i`.
    pub pin: bool,
    /// lockstep keeps every segment and has no sink (`--retain-all`, and every durable run).
    pub retain_all: bool,
    /// lockstep is durable (`--durable`).
    pub durable: Option<DurableConfig>,
    /// The nats engine's server and publishing (`--engine nats` only).
    pub nats: Option<nats::NatsConfig>,
}

/// `--durable DIR` and what goes with it.
#[derive(Debug, Clone)]
pub struct DurableConfig {
    /// DIR: each run logs into a fresh subdirectory of it.
    pub dir: std::path::PathBuf,
    pub durability: crate::cli::DurabilityChoice,
    /// Keep the run's subdirectory instead of removing it.
    pub keep: bool,
    /// Measure commit-to-durable (at a fixed rate only: in a closed loop the waiting thread would
    /// take a core from the run it measures).
    pub wait_latency: bool,
}

/// An engine under test, for records of kind `K`.
///
/// The driver builds it, takes one [`Committer`] per producer thread, reads
/// [`visible`](Engine::visible) now and then for the interval log, and finally calls
/// [`finish`](Engine::finish).
pub trait Engine<K: RecordKind>: Sized + Sync {
    /// One producer thread's handle.
    type Committer: Committer<K>;

    fn build(config: &Config) -> Result<Self, Failure>;

    /// The handle of producer `index` (`0..config.producers`).
    fn committer(&self, index: usize) -> Result<Self::Committer, Failure>;

    /// Called once, when the measured window starts (the warm-up is over).
    fn measuring(&self) {}

    /// Commit-to-visible of the measured window so far (nanoseconds), measured where commits
    /// become visible. Cheap enough to call a few times a second; never blocks the hot path for
    /// long.
    fn visible(&self) -> Histogram<u64>;

    /// Where the engine stands, for a report that it stalled (e.g. lockstep's frontier).
    fn progress(&self) -> Option<String> {
        None
    }

    /// The last commit the engine shows visible now, where it has one global number (lockstep's
    /// frontier, mutex's published counter): read when the window opens and closes, to tell a
    /// stalled frontier from one that moved.
    fn frontier(&self) -> Option<u64> {
        None
    }

    /// Drains and stops the engine, and reports on what it holds. Called once every committer
    /// is dropped.
    fn finish(self) -> Result<Finish, Failure>;
}

/// A producer thread's handle on an engine.
pub trait Committer<K: RecordKind>: Send {
    /// Commits every part of `parts` as one commit, waiting while the engine is full; leaves
    /// `parts` empty. With `stamp` (a sampled commit, and when its latency counts from), the
    /// engine records when the commit becomes visible.
    fn commit(&mut self, parts: &mut Vec<Part<K::Record>>, stamp: Option<Instant>) -> Result<(), Failure>;

    /// Called just before a sampled (stamped) commit with the instant its latency counts from:
    /// its intended start at a fixed rate. An engine that measures a later stage from it
    /// (lockstep's commit-to-durable) keeps it for the next commit; the others ignore it.
    #[inline]
    fn intended(&mut self, _at: Instant) {}
}

/// What an engine reports after it has been drained and stopped.
#[derive(Debug)]
pub struct Finish {
    /// The last commit the engine shows as visible at the end, where it has one global number
    /// (lockstep's final frontier, mutex's published counter); must equal the commits issued.
    pub final_commit: Option<u64>,
    /// Records that reached the engine's end state (indexed, or popped by `raw`), where it
    /// counts them; must equal the records the producers handed over.
    pub records_applied: Option<u64>,
    /// Segments per level and the grid check, for engines that keep an index.
    pub layout: Option<Layout>,
    /// Commit-to-visible over the measured window, measured where commits become visible.
    /// Nanoseconds.
    pub visible_latency: Histogram<u64>,
    /// Extra lines for the report.
    pub notes: Vec<String>,
    /// What a durable lockstep run wrote and how long commits took to become durable.
    pub durable: Option<DurableFinish>,
}

/// A durable run's own figures.
#[derive(Debug)]
pub struct DurableFinish {
    /// Bytes in the run's log directory after shutdown (every commit of the run is in it).
    pub log_bytes: u64,
    /// The directory, when it was kept (`--keep-durable`).
    pub kept: Option<std::path::PathBuf>,
    /// Commit-to-durable, nanoseconds: from a sampled commit's intended start until
    /// `wait_durable` returned for it; `None` when not measured (closed loop).
    pub wait_latency: Option<Histogram<u64>>,
    /// Sampled commits the waiting thread had no room for (its queue was full), not measured.
    pub wait_dropped: u64,
}

impl Default for Finish {
    fn default() -> Self {
        Self {
            final_commit: None,
            records_applied: None,
            layout: None,
            visible_latency: crate::latency::histogram(),
            notes: Vec::new(),
            durable: None,
        }
    }
}

/// Pins the calling thread to the `index`-th core this process may use, if `pin` is set and
/// there are at least `threads` such cores (as lockstep does with its shard workers): a
/// consumer left unpinned is better than two stacked on one core.
pub fn pin_current(pin: bool, index: usize, threads: usize) {
    if !pin {
        return;
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if cores.len() >= threads {
        if let Some(&core) = cores.get(index) {
            // Quietly unpinned where the OS refuses.
            core_affinity::set_for_current(core);
        }
    }
}

/// The shard that owns `path`: SipHash with fixed keys (lockstep keys its routing at random per
/// pipeline; the reference designs only need the paths spread).
pub fn shard_of(path: &str, shards: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

/// Per (shard, producer) watermarks: the last commit (or sequence number) of each producer that
/// each shard has finished with. A producer's items reach a shard in the order it sent them, so
/// a watermark at `n` means every item of that producer up to `n` for that shard is done.
/// Publishing them is what makes work visible in `channel` and `raw`; the stamps of sampled
/// commits are resolved right after.
#[derive(Debug)]
pub struct Watermarks {
    producers: usize,
    marks: Box<[CachePadded<AtomicU64>]>,
}

impl Watermarks {
    pub fn new(shards: usize, producers: usize) -> Self {
        let marks = (0..shards * producers).map(|_| Default::default()).collect();
        Self { producers, marks }
    }

    /// Shard `shard` is done with producer `producer`'s items up to `mark`.
    pub fn set(&self, shard: usize, producer: usize, mark: u64) {
        // Release: whoever reads the mark (Acquire) sees the work done before it.
        self.marks[shard * self.producers + producer].store(mark, Ordering::Release);
    }
}

/// The shards one commit touched, without allocating per commit.
#[derive(Debug)]
pub struct Touched {
    seen: Vec<bool>,
    list: Vec<u32>,
}

impl Touched {
    pub fn new(shards: usize) -> Self {
        Self { seen: vec![false; shards], list: Vec::new() }
    }

    pub fn clear(&mut self) {
        for &shard in &self.list {
            self.seen[shard as usize] = false;
        }
        self.list.clear();
    }

    pub fn add(&mut self, shard: usize) {
        if !self.seen[shard] {
            self.seen[shard] = true;
            self.list.push(shard as u32);
        }
    }

    pub fn list(&self) -> &[u32] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_lists_each_shard_once() {
        let mut touched = Touched::new(4);
        for shard in [2, 0, 2, 3, 0] {
            touched.add(shard);
        }
        assert_eq!(touched.list(), [2, 0, 3]);
        touched.clear();
        touched.add(2);
        assert_eq!(touched.list(), [2]);
    }

    /// Routing is a function of the path alone: the same shard from another thread (a hasher
    /// seeded per thread or per call would route differently), in range, and spread over every
    /// shard.
    #[test]
    fn routing_is_stable_and_in_range() {
        let paths: Vec<String> = (0..1000).map(|i| format!("/p/{i:08}")).collect();
        for shards in [1, 2, 7] {
            let route = || paths.iter().map(|path| shard_of(path, shards)).collect::<Vec<usize>>();
            let here = route();
            let there = std::thread::scope(|scope| scope.spawn(route).join().expect("routing thread"));
            assert_eq!(here, there, "{shards} shards: another thread routes differently");
            let mut per_shard = vec![0usize; shards];
            for &shard in &here {
                assert!(shard < shards, "shard {shard} of {shards}");
                per_shard[shard] += 1;
            }
            // About 1000 / shards paths each; far from it, some shard would sit idle.
            let share = paths.len() / shards;
            assert!(
                per_shard.iter().all(|&n| n > share / 2 && n < share * 3 / 2),
                "{shards} shards: {per_shard:?}"
            );
        }
    }
}
