//! Handles on internal stages, for the criterion benchmarks in `benches/` only. Not part of the
//! API: hidden from the docs, and free to change in any release.

use crossbeam::queue::ArrayQueue;

use crate::clock::Clock;
use crate::merge::Merge;
use crate::path_table::{PathEntry, TableWriter};
use crate::queue::Part;
use crate::snapshot::{Segment, ShardView, Snapshot, Views};
use crate::sync::Arc;
use crate::tier::SegmentInfo;

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

/// One (producer, shard) queue carrying the same part type the pipeline carries.
#[derive(Debug)]
pub struct Lane<R>(ArrayQueue<Part<R>>);

impl<R> Lane<R> {
    /// A queue of `capacity` parts.
    pub fn new(capacity: usize) -> Self {
        Self(ArrayQueue::new(capacity))
    }

    /// Enqueues one record; gives it back if the queue is full.
    pub fn push(&self, commit: u64, record: R) -> Result<(), R> {
        self.0.push(Part { commit, path: 0, name: None, record }).map_err(|part| part.record)
    }

    /// Dequeues one record with its commit.
    pub fn pop(&self) -> Option<(u64, R)> {
        self.0.pop().map(|part| (part.commit, part.record))
    }
}

/// One shard's published path map, as a worker keeps and publishes it.
pub struct Publisher<M: Merge> {
    merge: Arc<M>,
    views: Views<M>,
    names: Vec<Arc<str>>,
    paths: TableWriter<M::Output>,
    output: Arc<M::Output>,
    frontier: u64,
}

impl<M: Merge> std::fmt::Debug for Publisher<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("paths", &self.names.len()).finish_non_exhaustive()
    }
}

impl<M: Merge> Publisher<M> {
    /// A one-shard publisher holding `paths` paths, each with one segment of `output`.
    pub fn new(merge: M, paths: usize, output: M::Output) -> Self {
        let output = Arc::new(output);
        let names: Vec<Arc<str>> = (0..paths).map(|i| Arc::from(format!("/p/{i:08}"))).collect();
        let views = Views::new(1);
        let mut paths = views.table();
        paths.update(
            (0..names.len())
                .map(|slot| Self::entry(&paths, &names, slot, &output, 1))
                .collect::<Vec<_>>()
                .into_iter(),
        );
        Self { merge: Arc::new(merge), views, names, paths, output, frontier: 1 }
    }

    fn entry(
        table: &TableWriter<M::Output>,
        names: &[Arc<str>],
        slot: usize,
        output: &Arc<M::Output>,
        commit: u64,
    ) -> PathEntry<M::Output> {
        let info = SegmentInfo { level: 0, start: commit, end: commit };
        let fresh = std::iter::once(Segment { info, output: output.clone() }).collect();
        let name = &names[slot];
        PathEntry::new(name.clone(), table.hash(name), slot as u32, None, None, fresh)
    }

    /// Advances the frontier by one commit that changed `changed` paths (spread over the table,
    /// and different ones each time, so that over many publishes every path changes), and
    /// publishes the shard view and the global view, as a worker's loop turn does.
    pub fn publish(&mut self, changed: usize) {
        self.frontier += 1;
        let count = self.names.len();
        let step = (count / changed.max(1)).max(1);
        let (table, output, frontier) = (&self.paths, &self.output, self.frontier);
        let entries: Vec<_> = (0..changed.min(count))
            .map(|k| (frontier as usize + k * step) % count)
            .map(|slot| Self::entry(table, &self.names, slot, output, frontier))
            .collect();
        self.paths.update(entries.into_iter());
        let view = ShardView { frontier: self.frontier, merged_end: 0, paths: self.paths.table().clone() };
        self.views.publish(0, view);
    }

    /// The published global frontier (what a snapshot load returns the view of).
    pub fn published(&self) -> u64 {
        self.views.global().frontier
    }

    /// Reads `count` paths spread over the table from a snapshot of the published view, as
    /// `Snapshot::read` does; returns how many held data.
    pub fn read(&self, count: usize) -> usize {
        let snapshot = Snapshot::new(self.views.global(), self.merge.clone());
        let step = (self.names.len() / count.max(1)).max(1);
        self.names.iter().step_by(step).take(count).filter(|name| snapshot.read(name).is_some()).count()
    }
}
