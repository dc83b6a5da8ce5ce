//! Consistent cross-path views, published through arc-swap and read without a lock.
//!
//! Each shard worker publishes an immutable [`ShardView`]: its paths' segments up to the shard's
//! own frontier. The global [`View`] holds one `Arc` per shard and is cut at the minimum of their
//! frontiers, so a commit whose parts went to several shards is seen whole or not at all.
//! [`Pipeline::snapshot`](crate::Pipeline::snapshot) is one load of the global view.
//!
//! # Cutting across shards
//!
//! A level-0 segment (one commit) can be cut out of a view; a merged segment cannot. If shard A
//! merged a range ending at 12 while shard B has only published up to 10, no view may pair them.
//! Two rules keep every view cuttable:
//!
//! 1. a shard merges a range only once its own frontier and every *other* shard's published
//!    frontier have passed the range's end ([`Views::bound`]). Shard views only move forward,
//!    so any global view built from this shard's new view and the others' views *as loaded
//!    after it* is cut at or above every merged end;
//! 2. a global view is published by compare-and-swap, from shard views loaded after the view it
//!    replaces (so its frontier never goes back), and only when the largest merged end in it is
//!    at or below its cut ([`Views::publish`]). This check is what makes rule 1's "as loaded
//!    after it" hold: a builder that loaded shard B's view before B moved on, then shard A's
//!    view with merges that relied on B's newer frontier, sees the check fail and loads again.
//!
//! For one shard, rule 1 lets a worker compact up to the frontier it is about to publish, so a
//! new record is published once, already compacted, rather than once per step.
//!
//! Publishing a shard view costs about O(paths changed): the per-path table is layered
//! ([`crate::path_table`]), and a view shares every layer with the views before it.

use std::fmt;

use crate::merge::Merge;
use crate::path_table::{PathTable, TableWriter};
use crate::queue::shard_of;
use crate::sync::{Arc, ArcCell};
use crate::tier::SegmentInfo;

/// One published segment of a path: where it lies and what it holds.
pub(crate) struct Segment<O> {
    pub(crate) info: SegmentInfo,
    pub(crate) output: Arc<O>,
}

impl<O> Clone for Segment<O> {
    fn clone(&self) -> Self {
        Self { info: self.info, output: self.output.clone() }
    }
}

/// Chunks of old top-level segments, oldest first.
pub(crate) type History<O> = Arc<[Arc<[Segment<O>]>]>;

/// The paths of one shard up to that shard's frontier.
pub(crate) struct ShardView<M: Merge> {
    /// Every commit at or below it is inside this view, for this shard's paths.
    pub(crate) frontier: u64,
    /// The largest end of a merged (level >= 1) segment in this view; 0 if none.
    pub(crate) merged_end: u64,
    pub(crate) paths: PathTable<M::Output>,
}

/// A global view: one shard view per shard, cut at `frontier`.
pub(crate) struct View<M: Merge> {
    pub(crate) frontier: u64,
    pub(crate) shards: Box<[Arc<ShardView<M>>]>,
}

/// The shard views and the global view built from them.
pub(crate) struct Views<M: Merge> {
    shards: Box<[ArcCell<ShardView<M>>]>,
    global: ArcCell<View<M>>,
    /// Hashes path names for every shard's table, so readers hash a name the same way.
    hasher: foldhash::fast::RandomState,
}

impl<M: Merge> Views<M> {
    pub(crate) fn new(shards: usize) -> Self {
        let hasher = foldhash::fast::RandomState::default();
        let empty: Vec<Arc<ShardView<M>>> = (0..shards)
            .map(|_| {
                Arc::new(ShardView { frontier: 0, merged_end: 0, paths: PathTable::new(hasher.clone()) })
            })
            .collect();
        Self {
            shards: empty.iter().map(|view| ArcCell::new(view.clone())).collect(),
            global: ArcCell::new(Arc::new(View { frontier: 0, shards: empty.into() })),
            hasher,
        }
    }

    /// A writer for a shard's path table, hashing as readers of these views do.
    pub(crate) fn table(&self) -> TableWriter<M::Output> {
        TableWriter::new(self.hasher.clone())
    }

    /// The published global view.
    pub(crate) fn global(&self) -> Arc<View<M>> {
        self.global.load()
    }

    /// The frontier of the published global view.
    pub(crate) fn frontier(&self) -> u64 {
        self.global.peek().frontier
    }

    /// The highest commit shard `shard` may merge up to once its own frontier is `own`
    /// (rule 1 of the module doc).
    pub(crate) fn bound(&self, shard: usize, own: u64) -> u64 {
        self.shards
            .iter()
            .enumerate()
            .filter(|&(other, _)| other != shard)
            .map(|(_, cell)| cell.peek().frontier)
            .fold(own, u64::min)
    }

    /// Stores `view` as shard `shard`'s, then publishes a global view including it.
    pub(crate) fn publish(&self, shard: usize, view: ShardView<M>) -> Published {
        debug_assert!(view.frontier >= self.shards[shard].peek().frontier, "shard frontier went back");
        self.shards[shard].store(Arc::new(view));
        self.publish_global(shard)
    }

    /// Publishes a global view of the current shard views unless it would show nothing new.
    pub(crate) fn publish_global(&self, shard: usize) -> Published {
        for _ in 0..PUBLISH_ATTEMPTS {
            // Loaded before the shard views, so they are at least as new as the ones in it.
            let current = self.global.load();
            let shards: Box<[Arc<ShardView<M>>]> = self.shards.iter().map(ArcCell::load).collect();
            let cut = shards.iter().map(|s| s.frontier).min().unwrap_or(0);
            let merged = shards.iter().map(|s| s.merged_end).max().unwrap_or(0);
            let before = current.frontier;
            if merged > cut || cut < before {
                continue; // rule 2: a shard view loaded too early; load them again
            }
            if current.shards.iter().zip(shards.iter()).all(|(a, b)| Arc::ptr_eq(a, b)) {
                return Published { advanced: None, included: true };
            }
            let mine = shards[shard].clone();
            if self.global.compare_and_swap(&current, Arc::new(View { frontier: cut, shards })) {
                return Published { advanced: (cut > before).then_some((before, cut)), included: true };
            }
            // Another worker published first; if its view already holds ours, we are done.
            if Arc::ptr_eq(&self.global.peek().shards[shard], &mine) {
                return Published { advanced: None, included: true };
            }
        }
        Published { advanced: None, included: false }
    }
}

/// How many times a publisher loads the shard views before leaving it to its next turn.
const PUBLISH_ATTEMPTS: usize = 64;

/// What [`Views::publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// The global frontier before and after, if it advanced.
    pub(crate) advanced: Option<(u64, u64)>,
    /// The published global view holds the publishing shard's latest view.
    pub(crate) included: bool,
}

impl<M: Merge> fmt::Debug for Views<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Views").field("frontier", &self.frontier()).finish_non_exhaustive()
    }
}

/// A consistent, immutable cut across every path: each commit at or below
/// [`frontier`](Snapshot::frontier) is inside it whole, and nothing after it is.
///
/// Taking one is a single lock-free load; holding one never blocks writers (it keeps the
/// segments it references alive).
///
/// ```
/// use lockstep::{merge::Sum, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).shards(2).divisor(2).build()?;
/// let mut producer = pipeline.producer()?;
/// for i in 0..5 {
///     producer.commit([("/a", i), ("/b", 10 * i)])?;
/// }
/// let snapshot = pipeline.wait_sealed(5, std::time::Duration::from_secs(10))?;
/// assert!(snapshot.frontier() >= 5);
/// assert_eq!(snapshot.read("/a"), Some(10));
/// assert_eq!(snapshot.read("/b"), Some(100));
/// let mut paths: Vec<&str> = snapshot.paths().collect();
/// paths.sort();
/// assert_eq!(paths, ["/a", "/b"]);
/// # Ok::<(), lockstep::Error>(())
/// ```
pub struct Snapshot<M: Merge> {
    view: Arc<View<M>>,
    merge: Arc<M>,
}

impl<M: Merge> Clone for Snapshot<M> {
    fn clone(&self) -> Self {
        Self { view: self.view.clone(), merge: self.merge.clone() }
    }
}

impl<M: Merge> fmt::Debug for Snapshot<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot").field("frontier", &self.view.frontier).finish_non_exhaustive()
    }
}

impl<M: Merge> Snapshot<M> {
    pub(crate) fn new(view: Arc<View<M>>, merge: Arc<M>) -> Self {
        Self { view, merge }
    }

    /// Every commit at or below this number is inside the snapshot; none above it is.
    pub fn frontier(&self) -> u64 {
        self.view.frontier
    }

    /// The names of the paths holding data at or below the frontier, in no particular order.
    pub fn paths(&self) -> impl Iterator<Item = &str> + '_ {
        let frontier = self.view.frontier;
        self.view.shards.iter().flat_map(move |shard| {
            shard
                .paths
                .iter()
                .filter(move |entry| entry.first().is_some_and(|s| s.info.end <= frontier))
                .map(|entry| &*entry.name)
        })
    }

    fn visible(&self, path: &str) -> impl Iterator<Item = &Segment<M::Output>> {
        let shard = &self.view.shards[shard_of(path, self.view.shards.len())];
        shard.paths.get(path).into_iter().flat_map(|entry| entry.upto(self.view.frontier))
    }

    /// `path`'s segments at or below the frontier, ascending; level-0 entries (one per commit
    /// not yet compacted) included.
    pub fn segments(&self, path: &str) -> Vec<SegmentInfo> {
        self.visible(path).map(|s| s.info).collect()
    }

    /// Each of `path`'s segments with its output, ascending: what a cross-path rollup combines,
    /// since the same range means the same commits on every path.
    pub fn segment_outputs(&self, path: &str) -> impl Iterator<Item = (SegmentInfo, &M::Output)> + '_ {
        self.visible(path).map(|s| (s.info, &*s.output))
    }

    /// Everything committed to `path` up to the frontier, merged into one output; `None` if the
    /// path has no data at or below the frontier.
    pub fn read(&self, path: &str) -> Option<M::Output> {
        let outputs: Vec<&M::Output> = self.visible(path).map(|s| &*s.output).collect();
        match outputs.as_slice() {
            [] => None,
            [one] => Some((*one).clone()),
            many => Some(self.merge.merge(many)),
        }
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::merge::Sum;
    use loom::thread;

    fn cuttable(global: &View<Sum>) {
        for shard in global.shards.iter() {
            assert!(shard.merged_end <= global.frontier, "a merged segment crosses the cut");
            assert!(shard.frontier >= global.frontier);
        }
    }

    fn view(frontier: u64, merged_end: u64) -> ShardView<Sum> {
        ShardView { frontier, merged_end, paths: PathTable::new(foldhash::fast::RandomState::default()) }
    }

    /// Three shards stand at frontier 1; each moves to 2, and shard 1 merges under rule 1 as it
    /// does. A reader and every worker check each global view they load: merged ends at or below
    /// the cut, and a frontier that never goes back. A builder (shard 2) can load shard 0's view
    /// just before shard 0 moves on, then shard 1's view whose merge relied on shard 0's new
    /// frontier: only rule 2's check keeps that pair out of a published view.
    #[test]
    fn loom_published_views_are_always_cuttable() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let views = Arc::new(Views::<Sum>::new(3));
            for shard in 0..3 {
                views.publish(shard, view(1, 0));
            }
            let workers: Vec<_> = (0..3)
                .map(|shard| {
                    let views = views.clone();
                    thread::spawn(move || {
                        // Rule 1: merge only up to our frontier and the others' published ones.
                        let merged = if shard == 1 { views.bound(shard, 2) } else { 0 };
                        assert!(views.publish(shard, view(2, merged)).included, "a publish gave up");
                        cuttable(&views.global());
                    })
                })
                .collect();
            let mut last = 0;
            for _ in 0..2 {
                let global = views.global();
                assert!(global.frontier >= last, "frontier went back");
                cuttable(&global);
                last = global.frontier;
                thread::yield_now();
            }
            for worker in workers {
                worker.join().expect("worker thread");
            }
            assert_eq!(views.global().frontier, 2);
        });
    }
}
