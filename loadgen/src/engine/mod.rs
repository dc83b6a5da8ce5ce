//! The engines loadgen drives with the same workload, one after another, in one process.
//!
//! - [`lockstep`]: the library under test.
//! - [`mutex`]: one global lock around the commit counter and a per-path index, with a
//!   count-driven compaction check on each insert: the commit-callback design lockstep replaces.
//! - [`channel`]: a thread per shard fed by crossbeam channels, each owning its paths and
//!   compacting each path by count.
//! - [`raw`]: a bare hand-off of the same records through crossbeam `ArrayQueue`s to consumers
//!   that only count them: the physical limit for moving records between threads.
//!
//! Each engine says for itself what "visible" means (see its module); the driver only asks it
//! to [`look`](Engine::look) and whether a look [`covers`](Engine::covers) a followed commit.

use std::error::Error;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use clap::ValueEnum;
use crossbeam::utils::CachePadded;
use hdrhistogram::Histogram;

use crate::align::Layout;
use crate::workload::Part;

pub mod channel;
pub mod lockstep;
pub mod mutex;
pub mod raw;
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
    /// Records handed through crossbeam ArrayQueues to consumers that only count them.
    Raw,
    /// All four, one after another, with ratios.
    All,
}

/// One engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lockstep,
    Mutex,
    Channel,
    Raw,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Lockstep, Kind::Mutex, Kind::Channel, Kind::Raw];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Lockstep => "lockstep",
            Kind::Mutex => "mutex",
            Kind::Channel => "channel",
            Kind::Raw => "raw",
        }
    }

    /// What "visible" means for this engine, in one line for the report.
    pub fn visible_means(self) -> &'static str {
        match self {
            Kind::Lockstep => "pipeline.snapshot().frontier() covers the commit (and so every earlier one)",
            Kind::Mutex => "the counter published under the lock after the commit's inserts has reached it",
            Kind::Channel => {
                "every shard the commit touched has applied its parts (per commit: no cut across shards)"
            }
            Kind::Raw => "a consumer has popped every record of the commit (nothing is indexed)",
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
}

/// An engine under test.
///
/// The driver builds it, takes one [`Committer`] per producer thread, follows sampled commits
/// until they are visible from an observer thread, and finally calls [`finish`](Engine::finish).
pub trait Engine: Sized + Sync {
    /// One producer thread's handle.
    type Committer: Committer<Ticket = Self::Ticket>;
    /// What identifies a commit to the visibility check.
    type Ticket: Send;
    /// One reading of what is visible.
    type Look;

    fn build(config: &Config) -> Result<Self, Failure>;

    /// The handle of producer `index` (`0..config.producers`).
    fn committer(&self, index: usize) -> Result<Self::Committer, Failure>;

    /// Reads what is visible now; cheap, never blocks the producers for long.
    fn look(&self) -> Self::Look;

    /// Whether `look` shows the commit of `ticket` as visible.
    fn covers(look: &Self::Look, ticket: &Self::Ticket) -> bool;

    /// Called once, when the measured window starts (the warm-up is over).
    fn measuring(&self) {}

    /// Drains and stops the engine, and reports on what it holds. Called once every committer
    /// is dropped.
    fn finish(self) -> Result<Finish, Failure>;
}

/// A producer thread's handle on an engine.
pub trait Committer: Send {
    type Ticket;

    /// Commits every part of `parts` as one commit, waiting while the engine is full; leaves
    /// `parts` empty.
    fn commit(&mut self, parts: &mut Vec<Part>) -> Result<(), Failure>;

    /// The ticket of the last commit, for the visibility check.
    fn ticket(&self) -> Self::Ticket;
}

/// What an engine reports after it has been drained and stopped.
#[derive(Debug, Default)]
pub struct Finish {
    /// The last commit the engine shows as visible at the end, where it has one global number
    /// (lockstep's final frontier, mutex's published counter); must equal the commits issued.
    pub final_commit: Option<u64>,
    /// Records that reached the engine's end state (indexed, or popped by `raw`), where it
    /// counts them; must equal the records the producers handed over.
    pub records_applied: Option<u64>,
    /// Segments per level and the grid check, for engines that keep an index.
    pub layout: Option<Layout>,
    /// The engine's own commit-to-visible figures over the measured window, where it keeps
    /// them (lockstep's `Stats::visible_latency`). Nanoseconds.
    pub own_visible_latency: Option<Histogram<u64>>,
    /// Extra lines for the report.
    pub notes: Vec<String>,
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

/// The shard that owns `path`: SipHash with fixed keys, as lockstep routes.
pub fn shard_of(path: &str, shards: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

/// Per (shard, producer) watermarks: the last commit (or sequence number) of each producer that
/// each shard has finished with. A producer's items reach a shard in the order it sent them, so
/// a watermark at `n` means every item of that producer up to `n` for that shard is done.
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

    /// A copy of every mark, shard-major.
    pub fn read(&self) -> Vec<u64> {
        // Acquire: pairs with the Release in `set`.
        self.marks.iter().map(|m| m.load(Ordering::Acquire)).collect()
    }
}

/// A commit of one producer that touched some shards: visible once each of those shards' marks
/// for that producer has reached it.
#[derive(Debug, Clone)]
pub struct ShardTicket {
    pub producer: usize,
    pub mark: u64,
    pub shards: Vec<u32>,
}

impl ShardTicket {
    /// Whether `marks` (a [`Watermarks::read`]) shows this commit done everywhere it went.
    pub fn covered_by(&self, marks: &[u64], producers: usize) -> bool {
        self.shards.iter().all(|&shard| marks[shard as usize * producers + self.producer] >= self.mark)
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
    fn a_ticket_waits_for_every_shard_it_touched() {
        let marks = Watermarks::new(3, 2);
        let ticket = ShardTicket { producer: 1, mark: 5, shards: vec![0, 2] };
        assert!(!ticket.covered_by(&marks.read(), 2));
        marks.set(0, 1, 5);
        marks.set(1, 0, 9); // another producer, and a shard the commit did not touch
        assert!(!ticket.covered_by(&marks.read(), 2));
        marks.set(2, 1, 7);
        assert!(ticket.covered_by(&marks.read(), 2));
    }

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

    #[test]
    fn routing_is_stable_and_in_range() {
        for shards in [1, 2, 7] {
            for path in ["/a", "/p/00000001", "/x/y/z"] {
                let shard = shard_of(path, shards);
                assert!(shard < shards);
                assert_eq!(shard, shard_of(path, shards));
            }
        }
    }
}
