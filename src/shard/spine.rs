//! A shard's data up to its frontier: a spine of immutable batches, one per aligned range.
//!
//! With divisor `D` and top level `T`, the spine of a shard at frontier `F` holds the base-`D`
//! decomposition of `[1, F]`: top-level blocks, then at most `D - 1` blocks per lower level,
//! then the *tail*: the single commits after the last block that could be formed. Each batch
//! holds every path of the shard that has data in its range. Without a retention window the
//! top-level blocks are handed to the shard's history (`crate::shard::history`) as soon as they exist,
//! so the spine itself holds O(D · T) batches; under a window it keeps them, combined into runs.
//!
//! A loop turn hands the spine the records it sealed; the spine sorts them by (path, commit)
//! with one radix sort (`crate::shard::sort`). **Forming** puts each into the batch of the highest
//! aligned block that its range allows: the blocks of `(formed, to]` are chosen greedily (the largest aligned block
//! starting at `formed + 1` that ends by `to`), so a turn that seals thousands of commits builds
//! top-level batches directly. One walk over the sorted records and the old tail fills every
//! block and the new tail.
//!
//! **Merging**: when the blocks of one level inside a parent block are all formed, they are
//! merged into the parent by one linear merge of their sorted path ids. **Combining** (under a
//! window only): old top-level blocks are combined into runs (segments copied, not merged) like
//! a base-8 counter, so a shard keeps O(log window) runs and a read probes that many. Both are
//! [`Merging`] values paid with fuel counted in segments and resumed across turns: while one is
//! in progress its inputs stay in the spine (and published), so visibility never waits for
//! compaction. **Retention** (`Retention::Newest(n)`) drops whole top-level runs once the window
//! of the turn's bound has passed them; runs are then capped at half the window. Without a
//! window nothing is dropped, and combining would copy every segment `log_8(history)` times into
//! fresh memory; the history's per-path logs write each one once instead.
//!
//! `to`, the end of forming, is the last multiple of `D` at or below the turn's *bound*: rule 1
//! of `crate::read::snapshot` (no block may end past the lowest published frontier of the other
//! shards). The tail is cuttable; everything else ends at or below `formed`.
//!
//! A sink at flush level `K < T` must receive every level-`K` block, so forming then stops at
//! level `K` and merges build the levels above; with `K = 0` every sealed record goes through
//! the tail first, and the tail's new single commits are what the sink takes.

use std::collections::VecDeque;

use smallvec::SmallVec;

use crate::merge::{Merge, Part};
use crate::read::view::ShardView;
use crate::shard::batch::{Batch, BatchBuilder};
use crate::shard::history::Writer;
use crate::shard::merging::Merging;
use crate::shard::policy::{Meta, Policy};
use crate::shard::sort::{Row, Sorter};
use crate::sync::Arc;
use crate::tier::Geometry;

/// What the spine did that the worker must act on.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// The published batches changed.
    pub(crate) batches: bool,
    /// Segments dropped by retention.
    pub(crate) dropped: u64,
}

/// One shard's batches and the compaction in progress over them.
pub(crate) struct Spine<M: Merge> {
    geometry: Geometry,
    /// What to form, merge, combine and drop.
    policy: Policy,
    /// The level whose blocks go to the sink, if there is one.
    flush: Option<u32>,
    /// Batches of level >= 1 (and, with `max_level` 0, runs of single commits), disjoint and
    /// ascending; under a window, old top-level ones combined into runs.
    batches: Vec<Arc<Batch<M>>>,
    /// Without a window: where top-level batches go once formed (`crate::shard::history`), before
    /// every batch in `batches`.
    history: Option<Writer<M>>,
    /// Single commits in `(formed, frontier]`.
    tail: Option<Arc<Batch<M>>>,
    /// Every commit at or below it is in `batches`.
    formed: u64,
    /// Every commit at or below it is in `batches` or the tail.
    frontier: u64,
    /// The end of the last block retention dropped (0: none).
    dropped_end: u64,
    merges: VecDeque<Merging<M>>,
    sorter: Sorter<M::Record>,
    /// New batches for the sink, with the end after which their segments are new.
    flushed: Vec<(Arc<Batch<M>>, u64)>,
    /// A durable pipeline's: top-level batches handed over to history (under a window: formed),
    /// to be saved to files, in range order.
    saving: Option<Vec<Arc<Batch<M>>>>,
    /// Under a window, a durable pipeline's: every top-level block up to it went to `saving`.
    saved_end: u64,
}

impl<M: Merge> Spine<M> {
    pub(crate) fn new(geometry: Geometry, flush: Option<u32>, window: Option<usize>) -> Self {
        Self {
            policy: Policy::new(geometry.clone(), flush, window),
            geometry,
            flush,
            batches: Vec::new(),
            history: window.is_none().then(Writer::default),
            tail: None,
            formed: 0,
            frontier: 0,
            dropped_end: 0,
            merges: VecDeque::new(),
            sorter: Sorter::default(),
            flushed: Vec::new(),
            saving: None,
            saved_end: 0,
        }
    }

    /// Keeps the top-level batches handed over to history (under a window: as they are formed,
    /// before any combining) for [`take_saved`](Self::take_saved): a durable pipeline saves
    /// them to files.
    pub(crate) fn saving(mut self) -> Self {
        self.saving = Some(Vec::new());
        self
    }

    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Lets go of the sort's buffers. Recovery calls it when it is done: its seals are far
    /// larger than a live turn, whose own size the buffers grow back to, and every shard would
    /// otherwise keep a large seal's worth of them for good.
    pub(crate) fn release_buffers(&mut self) {
        self.sorter = Sorter::default();
    }

    /// Recovery: takes the top-level batches read back from a file ending at `end`; every
    /// commit up to `end` is formed. Under a window they join the spine's runs (the next seal
    /// combines them and drops those the window left).
    pub(crate) fn restore(&mut self, batches: Vec<Batch<M>>, end: u64) {
        debug_assert!(self.tail.is_none() && self.merges.is_empty());
        debug_assert!(end > self.frontier);
        match &mut self.history {
            Some(history) => {
                debug_assert!(self.batches.is_empty());
                for batch in batches {
                    history.append(Arc::new(batch));
                }
            }
            None => self.batches.extend(batches.into_iter().map(Arc::new)),
        }
        (self.formed, self.frontier, self.saved_end) = (end, end, end);
    }

    /// The first commit a retention window shows at the cut `cut` (1 without a window).
    pub(crate) fn window_start(&self, cut: u64) -> u64 {
        self.policy.window_start(cut)
    }

    /// The top-level batches handed over since the last call, in range order.
    pub(crate) fn take_saved(&mut self) -> Vec<Arc<Batch<M>>> {
        self.saving.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Every top-level block up to it has been handed over for saving (if it had data): the
    /// last top-level boundary at or below `formed` that no batch still in the spine covers (under
    /// a window: no batch not yet handed over).
    pub(crate) fn handed_over(&self) -> u64 {
        let span = self.geometry.span(self.geometry.max_level());
        let top = self.formed / span * span;
        let mut waiting = self.batches.iter();
        let first = match self.history {
            Some(_) => waiting.next(),
            None => waiting.find(|b| b.end > self.saved_end),
        };
        first.map_or(top, |first| top.min(first.start - 1))
    }

    pub(crate) fn frontier(&self) -> u64 {
        self.frontier
    }

    /// What a view of this spine shows: the history handed over, then every batch, ascending,
    /// the tail last.
    pub(crate) fn view(&self) -> ShardView<M> {
        ShardView {
            frontier: self.frontier,
            merged_end: self.formed,
            dropped_end: self.dropped_end,
            history: self.history.as_ref().map(Writer::view),
            batches: self.batches.iter().chain(self.tail.iter()).cloned().collect(),
        }
    }

    /// Without a window, hands the top-level batches at the front over to history; under one,
    /// when saving, the new ones in range order to `saving` (they stay in the spine).
    fn hand_over(&mut self) {
        let Some(history) = &mut self.history else {
            let Some(saving) = &mut self.saving else { return };
            let top = self.geometry.max_level();
            // In range order: a block still below the top level (its merge up in progress) holds
            // back the top-level batches formed after it.
            let handed = self.saved_end;
            for batch in self.batches.iter().filter(|b| b.end > handed) {
                if batch.level != top {
                    break;
                }
                saving.push(batch.clone());
                self.saved_end = batch.end;
            }
            return;
        };
        let top = self.geometry.max_level();
        // Top-level batches are never a merge's input without a window (no combines).
        let done = self.batches.iter().take_while(|b| b.level == top).count();
        for batch in self.batches.drain(..done) {
            if let Some(saving) = &mut self.saving {
                saving.push(batch.clone());
            }
            history.append(batch);
        }
    }

    /// New flush-level batches ready for the sink, in range order, each with the end after
    /// which its segments are new; none reaching past `through`. A merge in progress at or below the flush level will make a
    /// flush-level block before the later ones, so those wait for it.
    pub(crate) fn take_flushed(&mut self, through: u64) -> Vec<(Arc<Batch<M>>, u64)> {
        let Some(flush) = self.flush.filter(|_| !self.flushed.is_empty()) else { return Vec::new() };
        let merging = self.merges.iter().filter(|m| !m.combine && m.out.level() <= flush);
        // Batches past `through` wait too, and so do the later ones (range order per path).
        let hold = merging.map(Merging::start).min().unwrap_or(u64::MAX).min(through.saturating_add(1));
        self.flushed.sort_by_key(|(batch, after)| (batch.start, *after));
        let ready = self.flushed.partition_point(|(batch, _)| batch.end < hold);
        self.flushed.drain(..ready).collect()
    }

    /// True if a flush-level batch ending at or below `through` waits for the sink.
    pub(crate) fn has_flushed_through(&self, through: u64) -> bool {
        self.flushed.iter().any(|(batch, _)| batch.end <= through)
    }

    /// True if a flush-level batch starting at or below `end` waits for the sink (held back by
    /// a merge in progress, or not taken yet).
    pub(crate) fn flushing_through(&self, end: u64) -> bool {
        self.flushed.iter().any(|(batch, _)| batch.start <= end)
    }

    /// The highest end forming may reach under `bound`.
    fn formable(&self, bound: u64) -> u64 {
        self.policy.formable(self.formed, bound)
    }

    /// What the policy sees of the batches, and the ranges of the merges in progress.
    fn metas(&self) -> (Vec<Meta>, SmallVec<[(u64, u64); 8]>) {
        let metas = self
            .batches
            .iter()
            .map(|b| Meta {
                level: b.level,
                start: b.start,
                end: b.end,
                paths: b.paths(),
                segments: b.segments(),
            })
            .collect();
        (metas, self.merges.iter().map(|m| (m.start(), m.end())).collect())
    }

    /// True when nothing is left to form or merge under `bound` (combining may go on: it never
    /// changes a layout).
    pub(crate) fn settled(&self, bound: u64) -> bool {
        self.formed == self.formable(bound) && self.merges.iter().all(|m| m.combine)
    }

    /// True if [`Spine::work`] has merging to do.
    pub(crate) fn has_merges(&self) -> bool {
        !self.merges.is_empty()
    }

    /// Takes the records sealed by a new `frontier` (commits in `(self.frontier, frontier]`) and
    /// forms every block up to `bound`'s formable end.
    pub(crate) fn seal(
        &mut self,
        merge: &M,
        rows: &mut Vec<Row<M::Record>>,
        frontier: u64,
        bound: u64,
    ) -> Changes {
        debug_assert!(rows.iter().all(|r| r.commit > self.frontier && r.commit <= frontier));
        let frontier = frontier.max(self.frontier);
        let to = self.formable(bound.min(frontier));
        let mut changes = Changes::default();
        if self.flush == Some(0) && !rows.is_empty() {
            // Every single commit goes to the sink: through the tail first.
            let before = self.frontier;
            self.form(merge, rows, self.formed, frontier);
            if let Some(tail) = &self.tail {
                self.flushed.push((tail.clone(), before));
            }
            changes.batches = true;
        }
        if to > self.formed || !rows.is_empty() || frontier > self.frontier {
            self.form(merge, rows, to, frontier);
            changes.batches = true;
            self.hand_over();
            self.schedule();
        }
        changes.dropped = self.retain(bound);
        changes.batches |= changes.dropped > 0;
        changes
    }

    /// Forms the blocks of `(formed, to]` and the tail `(to, frontier]` from the old tail and
    /// `rows` (sorted here), in one walk.
    fn form(&mut self, merge: &M, rows: &mut Vec<Row<M::Record>>, to: u64, frontier: u64) {
        if rows.is_empty() && to == self.formed {
            // Only the frontier moved (other shards' commits): the tail stands as it is.
            self.frontier = frontier;
            return;
        }
        // By (path, commit), keeping arrival order within a commit (its parts' order).
        self.sorter.sort(rows);
        let mut builders = self.blocks(self.formed, to);
        if frontier > to {
            builders.push(BatchBuilder::blocks(0, to + 1, frontier));
        }
        // The builders' ends, searched once per segment: dense, so the search stays in a line
        // or two of cache.
        let ends: SmallVec<[u64; 32]> = builders.iter().map(BatchBuilder::end).collect();
        let old = self.tail.take();
        let old_paths = old.as_ref().map_or(0, |t| t.paths());
        let mut rows = rows.drain(..).peekable();
        let mut next_old = 0;
        loop {
            let row_id = rows.peek().map(|r| r.id);
            let old_id = (next_old < old_paths).then(|| old.as_ref().map(|t| t.ids()[next_old])).flatten();
            let Some(id) = row_id.into_iter().chain(old_id).min() else { break };
            let segments = match &old {
                Some(tail) if old_id == Some(id) => {
                    next_old += 1;
                    tail.path(next_old - 1).1
                }
                _ => 0..0,
            };
            let mut segment = segments.start;
            loop {
                let old_end =
                    (segment < segments.end).then(|| old.as_ref().map(|t| t.end_of(segment))).flatten();
                let row_commit = rows.peek().filter(|r| r.id == id).map(|r| r.commit);
                let Some(first) = old_end.into_iter().chain(row_commit).min() else { break };
                let builder = &mut builders[ends.partition_point(|&end| end < first)];
                // Everything of the path in `first`'s block (in the tail, a block is one commit).
                let limit = self.geometry.block_end(builder.level(), first);
                let mut parts: SmallVec<[Part<'_, M::Column>; 4]> = SmallVec::new();
                if let Some(tail) = &old {
                    while segment < segments.end && tail.end_of(segment) <= limit {
                        parts.push(tail.part(segment));
                        segment += 1;
                    }
                }
                let records = std::iter::from_fn(|| {
                    rows.next_if(|r| r.id == id && r.commit <= limit).map(|r| (r.commit, r.record))
                });
                builder.push(merge, id, limit, &parts, records);
            }
        }
        drop(rows);
        for builder in builders {
            if builder.is_empty() {
                continue;
            }
            let level = builder.level();
            let tail = builder.end() > to;
            let batch = Arc::new(builder.finish());
            if tail {
                self.tail = Some(batch);
                continue;
            }
            if self.flush == Some(level) && level > 0 {
                self.flushed.push((batch.clone(), 0));
            }
            self.batches.push(batch);
        }
        self.formed = to;
        self.frontier = frontier;
    }

    /// Builders for the blocks the policy forms in `(from, to]`.
    fn blocks(&self, from: u64, to: u64) -> Vec<BatchBuilder<M>> {
        let span = self.geometry.span(self.geometry.max_level());
        let blocks = self.policy.blocks(from, to).into_iter();
        blocks
            .map(|b| {
                let level = b.level;
                if level == self.geometry.max_level() && b.end - b.start + 1 > span {
                    BatchBuilder::blocks(level, b.start, b.end)
                } else {
                    BatchBuilder::block(&self.geometry, level, b.end)
                }
            })
            .collect()
    }

    /// Starts the merges and combines the policy finds due.
    fn schedule(&mut self) {
        let (metas, busy) = self.metas();
        let mut choices = self.policy.merges(&metas, self.formed, &busy);
        if self.history.is_none() {
            // Disjoint from the merges chosen above: those are below the top level.
            choices.extend(self.policy.combines(&metas, &busy));
        }
        for choice in choices {
            let inputs = self.batches[choice.at..choice.at + choice.inputs].to_vec();
            let out = choice.out;
            let mut builder = if choice.combine {
                BatchBuilder::blocks(out.level, out.start, out.end)
            } else {
                BatchBuilder::block(&self.geometry, out.level, out.end)
            };
            // No vector grows while merging.
            builder.reserve(choice.paths, choice.segments);
            self.merges.push_back(Merging::new(inputs, choice.combine, builder));
        }
    }

    /// Spends `fuel` on the merges in progress, oldest first; installs each one done.
    pub(crate) fn work(&mut self, merge: &M, fuel: &mut usize) -> Changes {
        let mut changes = Changes::default();
        while *fuel > 0 {
            let Some(merging) = self.merges.front_mut() else { break };
            if !merging.work(merge, fuel) {
                break;
            }
            let Some(done) = self.merges.pop_front() else { break };
            let first = done.inputs[0].clone();
            let at = self.batches.iter().position(|b| Arc::ptr_eq(b, &first));
            let at = at.expect("a merge's inputs stay in the spine until it is installed");
            let batch = Arc::new(done.out.finish());
            debug_assert!(done.inputs.iter().zip(&self.batches[at..]).all(|(a, b)| Arc::ptr_eq(a, b)));
            if !done.combine && self.flush == Some(batch.level) {
                self.flushed.push((batch.clone(), 0));
            }
            self.batches.splice(at..at + done.inputs.len(), [batch]);
            changes.batches = true;
            self.hand_over();
            self.schedule();
        }
        changes
    }

    /// Drops the top-level runs the policy finds expired under `bound`; returns segments
    /// dropped.
    fn retain(&mut self, bound: u64) -> u64 {
        let (metas, busy) = self.metas();
        let expired = self.policy.expired(&metas, bound, &busy);
        let Some(last) = expired.checked_sub(1) else { return 0 };
        self.dropped_end = self.batches[last].end;
        self.batches.drain(..expired).map(|b| b.segments() as u64).sum()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, not(loom)))]
mod model;
