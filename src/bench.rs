//! Handles on internal stages, for the criterion benchmarks in `benches/` only. Not part of the
//! API: hidden from the docs, and free to change in any release.

use crate::config::DEFAULT_MERGE_BUDGET;
use crate::ingest::clock::Clock;
use crate::ingest::queue::{QueuedPart, Receiver, Sender};
use crate::ingest::router::Router;
use crate::merge::Merge;
use crate::read::snapshot::Snapshot;
use crate::read::view::{Layout, Views};
use crate::shard::policy;
use crate::shard::sort::Row;
use crate::shard::spine::Spine;
use crate::sync::Arc;
use crate::tier::Geometry;

/// The frontier tracker with `producers` claimed slots, each idle.
#[derive(Debug)]
pub struct Frontier {
    clock: Clock,
    slots: Vec<usize>,
}

impl Frontier {
    /// A clock whose `producers` slots are all claimed.
    pub fn new(producers: usize) -> Self {
        let clock = Clock::new(producers.max(1));
        let slots = (0..producers).filter_map(|_| clock.claim()).collect();
        Self { clock, slots }
    }

    /// One commit through producer `producer`'s slot: announce, take, retire.
    pub fn commit(&self, producer: usize) -> u64 {
        let slot = self.slots[producer % self.slots.len()];
        let commit = self.clock.begin(slot).unwrap_or(0);
        self.clock.retire(slot);
        commit
    }

    /// The frontier, scanning every claimed slot.
    pub fn frontier(&self) -> u64 {
        self.clock.frontier()
    }
}

/// One (producer, shard) queue carrying the same part type the pipeline carries: its two ends.
pub fn lane<R>(capacity: usize) -> (LaneSender<R>, LaneReceiver<R>) {
    let (sender, receiver) = rtrb::RingBuffer::new(capacity);
    (LaneSender(sender), LaneReceiver(receiver))
}

/// The producer end of a [`lane`].
#[derive(Debug)]
pub struct LaneSender<R>(Sender<R>);

/// The worker end of a [`lane`].
#[derive(Debug)]
pub struct LaneReceiver<R>(Receiver<R>);

impl<R> LaneSender<R> {
    /// Enqueues one record; gives it back if the queue is full.
    pub fn push(&mut self, commit: u64, record: R) -> Result<(), R> {
        self.0.push(QueuedPart { commit, path: 0, record }).map_err(|rtrb::PushError::Full(part)| part.record)
    }
}

impl<R> LaneReceiver<R> {
    /// Dequeues one record with its commit.
    pub fn pop(&mut self) -> Option<(u64, R)> {
        self.0.pop().ok().map(|part| (part.commit, part.record))
    }
}

/// One shard's stage after the queues, as a worker's loop turn runs it: the turn's sealed
/// records are formed into batches, merges are paid with the worker's fuel, and the shard view
/// and the global view are published.
pub struct Shard<M: Merge> {
    merge: Arc<M>,
    spine: Spine<M>,
    views: Views<M>,
    rows: Vec<Row<M::Record>>,
    frontier: u64,
}

impl<M: Merge> std::fmt::Debug for Shard<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("frontier", &self.frontier).finish_non_exhaustive()
    }
}

impl<M: Merge> Shard<M> {
    /// A shard of `paths` paths named [`Shard::name`], with divisor `divisor`, top level
    /// `max_level` and a retention window of `window` top-level blocks (`None`: keep all).
    pub fn new(merge: M, paths: u32, divisor: u64, max_level: u32, window: Option<usize>) -> Option<Self> {
        let geometry = Geometry::new(divisor, max_level)?;
        let router = Arc::new(Router::new(1, 64));
        for path in 0..paths {
            router.directory(0).intern(&Self::name(path));
        }
        let layout = Layout { geometry: geometry.clone(), window, router };
        let views = Views::new(1, layout);
        let spine = Spine::new(geometry, None, window);
        Some(Self { merge: Arc::new(merge), spine, views, rows: Vec::new(), frontier: 0 })
    }

    /// The name of path `path`.
    pub fn name(path: u32) -> String {
        format!("/p/{path:08}")
    }

    /// One turn sealing `commits` new commits whose records are `records` (path, commit offset
    /// in `1..=commits`, record), in commit order.
    pub fn turn(&mut self, commits: u64, records: impl IntoIterator<Item = (u32, u64, M::Record)>) {
        let base = self.frontier;
        for (id, offset, record) in records {
            self.rows.push(Row { commit: base + offset, id, record });
        }
        let drained = self.rows.len();
        self.frontier += commits;
        let merge = &*self.merge;
        self.spine.seal(merge, &mut self.rows, self.frontier, self.frontier);
        let mut fuel = policy::fuel(DEFAULT_MERGE_BUDGET, drained);
        self.spine.work(merge, &mut fuel);
        let view = self.spine.view();
        self.views.publish(0, view);
    }

    /// Batches the published view holds.
    pub fn batches(&self) -> usize {
        self.views.global().shards[0].batches.len()
    }

    /// Batches the published view reads from the history (`Retention::All`).
    pub fn history_runs(&self) -> usize {
        self.views.global().shards[0].history.as_ref().map_or(0, |(_, runs)| *runs)
    }

    /// A snapshot of the published view.
    pub fn snapshot(&self) -> Snapshot<M> {
        Snapshot::new(self.views.global(), self.merge.clone())
    }
}
