//! Consistent cross-path views, published through arc-swap and read without a lock.
//!
//! Each shard worker publishes an immutable [`ShardView`]: its frontier and the `Arc`s of its
//! batches (see `crate::shard::spine`); the path directories (`crate::shard::directory`) are shared by every
//! view. The global [`View`] holds one `Arc` per shard and is cut at the minimum of their
//! frontiers, so a commit whose parts went to several shards is seen whole or not at all.
//! [`Pipeline::snapshot`](crate::Pipeline::snapshot) is one load of the global view, and a
//! [`Snapshot`](crate::Snapshot) (`crate::read::snapshot`) reads it. Publishing a
//! shard view costs O(batches) `Arc` clones, never anything per path.
//!
//! # Cutting across shards
//!
//! A single-commit segment (the tail) can be cut out of a view; a block cannot. If shard A
//! formed a block ending at 12 while shard B has only published up to 10, no view may pair them.
//! Two rules keep every view cuttable:
//!
//! 1. a shard forms (or merges) a block only once its own frontier and every *other* shard's
//!    published frontier have passed the block's end ([`Views::bound`]); likewise it drops a
//!    top-level block for retention only once the window of that bound has passed it. Shard views
//!    only move forward, so any global view built from this shard's new view and the others'
//!    views *as loaded after it* is cut at or above every formed end;
//! 2. a global view is published by compare-and-swap, from shard views loaded after the view it
//!    replaces (so its frontier never goes back), and only when every shard's formed end is at
//!    or below its cut and every dropped block ends before its window ([`Views::publish`]). This
//!    check is what makes rule 1's "as loaded after it" hold: a builder that loaded shard B's
//!    view before B moved on, then shard A's view with blocks that relied on B's newer frontier,
//!    sees the check fail and loads again.
//!
//! **Liveness.** The check fails only when the builder loaded some shard view older than one a
//! block relied on, that is, when a shard published during the build. Each retry loads every
//! shard view afresh, so while the shards keep publishing, some build sees a settled set and its
//! CAS either succeeds or loses to another publisher's (which includes a newer set). A publisher
//! retries [`PUBLISH_ATTEMPTS`] times, then leaves the rest to its next loop turn (`included`
//! stays false, so it does not sleep): the global publish never gives up while progress is
//! possible, it only yields its turn.

use std::fmt;

use crate::ingest::router::Router;
use crate::merge::Merge;
use crate::read::watch::Watch;
use crate::shard::batch::{Batch, Found};
use crate::shard::history::History;
use crate::sync::{Arc, ArcCell};
use crate::tier::Geometry;

/// What every view of a pipeline is read with: the geometry, the retention window, and the
/// router (the shards' directories, for reads by name and by key).
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) geometry: Geometry,
    pub(crate) window: Option<usize>,
    pub(crate) router: Arc<Router>,
}

impl Layout {
    /// The first commit a view cut at `cut` shows.
    pub(crate) fn window_start(&self, cut: u64) -> u64 {
        self.geometry.window_start(self.window, cut)
    }
}

/// The data of one shard up to that shard's frontier.
pub(crate) struct ShardView<M: Merge> {
    /// Every commit at or below it is inside this view, for this shard's paths.
    pub(crate) frontier: u64,
    /// Every block (level >= 1) in this view ends at or below it.
    pub(crate) merged_end: u64,
    /// The end of the last top-level block dropped for retention; 0 if none.
    pub(crate) dropped_end: u64,
    /// Without a retention window: the shard's history (`crate::shard::history`) and the runs of it
    /// this view shows, all before `batches`.
    pub(crate) history: Option<(Arc<History<M>>, usize)>,
    /// Ascending; the tail of single commits last.
    pub(crate) batches: Vec<Arc<Batch<M>>>,
}

impl<M: Merge> ShardView<M> {
    /// A view of nothing.
    fn empty() -> Self {
        Self { frontier: 0, merged_end: 0, dropped_end: 0, history: None, batches: Vec::new() }
    }

    /// Path `id`'s segments in this view, ascending, appended to `out`: its history log, then
    /// one binary search per batch.
    pub(crate) fn find<'a>(&'a self, id: u32, out: &mut Vec<Found<'a, M>>) {
        if let Some((history, runs)) = &self.history {
            out.extend(history.segments(id, *runs));
        }
        for batch in &self.batches {
            out.extend(batch.find(id).into_iter().flatten().map(|segment| (&**batch, segment)));
        }
    }
}

/// A global view: one shard view per shard, cut at `frontier`.
pub(crate) struct View<M: Merge> {
    pub(crate) frontier: u64,
    pub(crate) shards: Box<[Arc<ShardView<M>>]>,
    pub(crate) layout: Arc<Layout>,
}

/// The shard views and the global view built from them.
pub(crate) struct Views<M: Merge> {
    shards: Box<[ArcCell<ShardView<M>>]>,
    global: ArcCell<View<M>>,
    layout: Arc<Layout>,
    /// Who waits for the global frontier (`wait_sealed` and its async twin), rung whenever a
    /// publish moves it.
    sealed: Watch,
}

impl<M: Merge> Views<M> {
    pub(crate) fn new(shards: usize, layout: Layout) -> Self {
        let layout = Arc::new(layout);
        let empty: Vec<Arc<ShardView<M>>> = (0..shards).map(|_| Arc::new(ShardView::empty())).collect();
        Self {
            shards: empty.iter().map(|view| ArcCell::new(view.clone())).collect(),
            global: ArcCell::new(Arc::new(View {
                frontier: 0,
                shards: empty.into(),
                layout: layout.clone(),
            })),
            layout,
            sealed: Watch::default(),
        }
    }

    /// The published global view.
    pub(crate) fn global(&self) -> Arc<View<M>> {
        self.global.load()
    }

    /// The waiters for the global frontier.
    pub(crate) fn sealed(&self) -> &Watch {
        &self.sealed
    }

    /// The frontier of the published global view.
    pub(crate) fn frontier(&self) -> u64 {
        self.global.peek().frontier
    }

    /// The highest commit shard `shard` may form blocks up to once its own frontier is `own`
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
            let dropped = shards.iter().map(|s| s.dropped_end).max().unwrap_or(0);
            let before = current.frontier;
            if merged > cut || cut < before || (dropped > 0 && dropped >= self.layout.window_start(cut)) {
                continue; // rule 2: a shard view loaded too early; load them again
            }
            if current.shards.iter().zip(shards.iter()).all(|(a, b)| Arc::ptr_eq(a, b)) {
                return Published { advanced: None, included: true };
            }
            let mine = shards[shard].clone();
            let view = View { frontier: cut, shards, layout: self.layout.clone() };
            if self.global.compare_and_swap(&current, Arc::new(view)) {
                if cut > before {
                    // After the swap: a waiter woken (or looking after the ring's fence) loads
                    // this view or a later one.
                    self.sealed.ring(|| cut);
                }
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

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::merge::Sum;
    use loom::thread;

    /// What every published view must be: no block past its cut, no shard behind it, and nothing
    /// dropped for retention that its window still shows.
    fn cuttable(global: &View<Sum>) {
        let from = global.layout.window_start(global.frontier);
        for shard in global.shards.iter() {
            assert!(shard.merged_end <= global.frontier, "a block crosses the cut");
            assert!(shard.frontier >= global.frontier);
            assert!(shard.dropped_end < from, "a block inside the view's window (from {from}) was dropped");
        }
    }

    fn view(frontier: u64, merged_end: u64) -> ShardView<Sum> {
        ShardView { frontier, merged_end, ..ShardView::empty() }
    }

    /// Three shards, `D = 2`, top level 1 (top-level blocks of two commits).
    fn layout(window: Option<usize>) -> Layout {
        Layout { geometry: Geometry::new(2, 1).expect("valid"), window, router: Arc::new(Router::new(3, 64)) }
    }

    /// Three shards stand at frontier 1; each moves to 2, and shard 1 forms a block under rule 1
    /// as it does. A reader and every worker check each global view they load: formed ends at or
    /// below the cut, and a frontier that never goes back. A builder (shard 2) can load shard 0's
    /// view just before shard 0 moves on, then shard 1's view whose block relied on shard 0's new
    /// frontier: only rule 2's check keeps that pair out of a published view.
    #[test]
    fn loom_published_views_are_always_cuttable() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let views = Arc::new(Views::<Sum>::new(3, layout(None)));
            for shard in 0..3 {
                views.publish(shard, view(1, 0));
            }
            let workers: Vec<_> = (0..3)
                .map(|shard| {
                    let views = views.clone();
                    thread::spawn(move || {
                        // Rule 1: form only up to our frontier and the others' published ones.
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

    /// The retention half of the rules, under `Retention::Newest(0)`: a view cut at `c` shows the
    /// commits after the last top-level block ending at or below `c`, so at cut 1 it shows
    /// commit 1 and at cut 2 nothing. Three shards stand at frontier 1; each moves to 2, and
    /// shard 1, once its bound (rule 1) reaches 2, forms the block `[1, 2]` and drops it at once
    /// for retention, holding no block afterwards (`merged_end` 0: it bounds the blocks a view
    /// holds). A builder (shard 2, on the model's main thread) can load shard 0's view at
    /// frontier 1, then shard 1's view whose drop relied on shard 0's frontier 2: a global view
    /// cut at 1 would show commit 1 without shard 1's part of it. Only rule 2's `dropped_end`
    /// check keeps that pair out. (The spine publishes its formed end as `merged_end`, which
    /// covers every block it dropped, so there the formed-end check would refuse the pair too;
    /// this model checks the retention half on its own, as rule 2 states it.)
    #[test]
    fn loom_windowed_views_never_lack_a_dropped_block() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let views = Arc::new(Views::<Sum>::new(3, layout(Some(0))));
            for shard in 0..3 {
                views.publish(shard, view(1, 0));
            }
            let workers: Vec<_> = (0..2)
                .map(|shard| {
                    let views = views.clone();
                    thread::spawn(move || {
                        let mut moved = view(2, 0);
                        // Rule 1's retention half: drop only what the window of the bound is past.
                        if shard == 1 && views.layout.window_start(views.bound(shard, 2)) > 2 {
                            moved.dropped_end = 2;
                        }
                        assert!(views.publish(shard, moved).included, "a publish gave up");
                        cuttable(&views.global());
                    })
                })
                .collect();
            assert!(views.publish(2, view(2, 0)).included, "a publish gave up");
            cuttable(&views.global());
            for worker in workers {
                worker.join().expect("worker thread");
            }
            let last = views.global();
            cuttable(&last);
            assert_eq!(last.frontier, 2);
        });
    }
}
