//! Shard workers: each owns its paths outright, drains its queues in batches, makes sealed
//! commits visible, compacts under a budget and publishes its view.
//!
//! A loop turn reads the clock's frontier `f` *first*, then drains. Every part of every commit
//! `<= f` was enqueued before `f` could be read (see [`crate::clock`]), so it sits at the front
//! of its queue, and one pass of at most `capacity` pops per queue collects all of them. Parts
//! of later commits wait in their path's `pending` list until a later frontier covers them.
//!
//! Idle workers spin briefly, keep looking (yielding their core) for `Builder::idle_spin`, then
//! park; producers ring a sleeping worker's bell after a commit (the frontier may have moved for
//! every shard, not only the ones the commit touched). Waking a parked thread costs tens of
//! microseconds (more on a VM), longer than most gaps between commits under a steady load: a
//! worker that parked at once added that to the median commit-to-visible latency (17–20 µs
//! against 10–11 µs with the default 50 µs look, at 500k commits/s; perf/README.md).

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crossbeam::utils::Backoff;
use smallvec::{smallvec, SmallVec};

use crate::compact::{Compactor, Schedule};
use crate::merge::Merge;
use crate::path_table::{PathEntry, TableWriter, INLINE};
use crate::pipeline::Shared;
use crate::queue::Part;
use crate::sink::Retention;
use crate::snapshot::{History, Published, Segment, ShardView};
use crate::stats::Turn;
use crate::sync::{Arc, Ordering};
use crate::tier::SegmentInfo;

/// How long an idle worker parks before looking again without being rung (a safety net; the
/// bell is what normally wakes it).
const IDLE_PARK: Duration = Duration::from_millis(50);
/// The same while shutting down, when the other workers' progress is what it waits for.
const FINISHING_PARK: Duration = Duration::from_micros(200);
/// How often, at most, failed sink writes are retried while running, and how many at a time.
const RETRY_EVERY: Duration = Duration::from_millis(10);
const RETRIES_AT_ONCE: usize = 4;

/// One path's state, owned by its shard's worker.
struct PathState<M: Merge> {
    name: Arc<str>,
    /// `name` hashed as the published table does.
    hash: u64,
    /// Drained records not yet visible (their commit is above the frontier), in arrival order.
    pending: Vec<(u64, M::Record)>,
    /// Full chunks of the oldest top-level segments, and the list of them as last published.
    history: Vec<Arc<[Segment<M::Output>]>>,
    history_view: Option<History<M::Output>>,
    /// Visible segments after the history, ascending.
    segments: Vec<Segment<M::Output>>,
    /// `segments` up to the last merged one, as last published; `None` once they changed.
    settled: Option<Arc<[Segment<M::Output>]>>,
    /// The bound this path is scheduled at for its next merge; 0 when not scheduled.
    due_at: u64,
    /// Listed in `with_pending`.
    listed: bool,
    /// Listed in `dirty`: segments changed since the last publish.
    dirty: bool,
    /// Sink writes of this path that failed and wait for a retry; retention drops nothing of
    /// the path meanwhile.
    unsunk: u32,
}

/// Top-level segments per history chunk.
const HISTORY_CHUNK: usize = 64;

impl<M: Merge> PathState<M> {
    /// The entry to publish: a short path's segments inline; otherwise the history chunks and
    /// settled segments shared with the last entry unless they changed, and a copy of the
    /// level-0 tail.
    fn entry(&mut self, slot: u32) -> PathEntry<M::Output> {
        if self.history_view.is_none() && !self.history.is_empty() {
            self.history_view = Some(self.history.iter().cloned().collect());
        }
        let segments = &self.segments;
        if self.history.is_empty() && segments.len() <= INLINE {
            let fresh = segments.iter().cloned().collect();
            return PathEntry::new(self.name.clone(), self.hash, slot, None, None, fresh);
        }
        let settled = self
            .settled
            .get_or_insert_with(|| {
                let merged = segments.iter().rposition(|s| s.info.level > 0).map_or(0, |last| last + 1);
                segments[..merged].iter().cloned().collect()
            })
            .clone();
        debug_assert!(
            settled.len() <= segments.len() && settled.iter().zip(segments).all(|(a, b)| a.info == b.info),
            "the settled segments changed without being marked"
        );
        let fresh = segments[settled.len()..].iter().cloned().collect();
        PathEntry::new(self.name.clone(), self.hash, slot, self.history_view.clone(), Some(settled), fresh)
    }

    /// Drops the oldest top-level segments beyond the newest `keep`; returns how many.
    fn retain_newest(&mut self, top: u32, keep: usize) -> usize {
        let in_history: usize = self.history.iter().map(|chunk| chunk.len()).sum();
        let tops = in_history + self.segments.iter().take_while(|s| s.info.level == top).count();
        let mut drop = tops.saturating_sub(keep);
        let dropped = drop;
        while drop > 0 {
            match self.history.first() {
                Some(chunk) if chunk.len() <= drop => {
                    drop -= chunk.len();
                    self.history.remove(0);
                }
                Some(chunk) => {
                    self.history[0] = chunk[drop..].iter().cloned().collect();
                    drop = 0;
                }
                None => {
                    self.segments.drain(..drop);
                    self.settled = None;
                    drop = 0;
                }
            }
            self.history_view = None;
        }
        dropped
    }
}

/// A sink write to try again.
struct Retry<O> {
    path: u32,
    info: SegmentInfo,
    output: Arc<O>,
}

/// A shard worker and everything it owns.
pub(crate) struct Worker<M: Merge> {
    shared: Arc<Shared<M>>,
    shard: usize,
    /// Path name to dense index.
    index: HashMap<Arc<str>, u32>,
    paths: Vec<PathState<M>>,
    /// Per producer slot: that producer's path id on this shard to the dense index.
    ids: Vec<Vec<u32>>,
    with_pending: Vec<u32>,
    dirty: Vec<u32>,
    schedule: Schedule,
    /// The per-path table published views share (layered: updates copy mostly what changed).
    published: TableWriter<M::Output>,
    /// Every commit at or below it is visible in this worker's state.
    frontier: u64,
    published_frontier: u64,
    /// The published global view holds this worker's latest shard view.
    included: bool,
    merged_end: u64,
    retries: VecDeque<Retry<M::Output>>,
    last_retry: Instant,
    /// Lent to every compaction pass, so passes allocate nothing.
    scratch: Vec<Segment<M::Output>>,
}

impl<M: Merge> Worker<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>, shard: usize) -> Self {
        let slots = shared.config.max_producers;
        let published = shared.views.table();
        Self {
            shared,
            shard,
            index: HashMap::new(),
            paths: Vec::new(),
            ids: vec![Vec::new(); slots],
            with_pending: Vec::new(),
            dirty: Vec::new(),
            schedule: Schedule::default(),
            published,
            frontier: 0,
            published_frontier: 0,
            included: true,
            merged_end: 0,
            retries: VecDeque::new(),
            last_retry: Instant::now(),
            scratch: Vec::new(),
        }
    }

    /// The thread body. A panic in user code (merge or sink) marks the pipeline failed, so
    /// producers and shutdown stop waiting for this worker.
    pub(crate) fn run(mut self) {
        let shared = self.shared.clone();
        if catch_unwind(AssertUnwindSafe(|| self.work())).is_err() {
            // Release: pairs with `Shared::has_failed`.
            shared.failed.store(true, Ordering::Release);
            shared.bells.ring_all();
        }
    }

    fn work(&mut self) {
        let backoff = Backoff::new();
        // When this worker last found nothing to do, while it keeps looking.
        let mut idle_since: Option<Instant> = None;
        loop {
            let worked = self.turn();
            if let Some(last) = self.shared.finish_line() {
                if self.finished(last) {
                    self.retry_sink(usize::MAX);
                    return;
                }
            }
            if self.shared.has_failed() {
                return;
            }
            if worked {
                backoff.reset();
                idle_since = None;
            } else if !backoff.is_completed() {
                backoff.snooze();
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() < self.shared.config.idle_spin {
                std::thread::yield_now();
            } else {
                self.sleep();
                backoff.reset();
                idle_since = None;
            }
        }
    }

    /// One loop turn; true if it did anything.
    fn turn(&mut self) -> bool {
        let shared = self.shared.clone();
        // Read before draining: see the module doc.
        let frontier = shared.clock.frontier();
        let mut turn = Turn::default();
        self.drain(&mut turn);
        // Rule 1 of `crate::snapshot`: merge up to our new frontier and the others' published ones.
        let bound = shared.views.bound(self.shard, frontier.max(self.frontier));
        // Fuel grows with what came in, so compaction keeps pace on average (each record is a
        // merge input at most once per level) while one turn's merging stays bounded.
        let levels = shared.config.geometry.max_level().max(1) as usize;
        let mut fuel = shared.config.merge_budget.max((turn.drained as usize).saturating_mul(2 * levels));
        let started = Instant::now();
        let mut merged = false;
        if frontier > self.frontier {
            merged |= self.reveal(frontier, bound, &mut fuel);
            self.frontier = frontier;
        }
        if self.schedule.has_due(bound) {
            merged |= self.compact(bound, &mut fuel);
        }
        if merged {
            turn.merge_nanos = Some(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        // Counted before publishing, so a snapshot never shows records the stats have not.
        shared.stats.turn(&turn);
        let published = self.publish();
        if !self.retries.is_empty() && self.last_retry.elapsed() >= RETRY_EVERY {
            self.retry_sink(RETRIES_AT_ONCE);
            self.last_retry = Instant::now();
        }
        turn.drained > 0 || merged || published
    }

    /// Moves every part waiting for this shard into its path's pending list.
    fn drain(&mut self, turn: &mut Turn) {
        let shared = self.shared.clone();
        let capacity = shared.lanes.capacity();
        for (slot, queue) in shared.lanes.for_shard(self.shard) {
            let waiting = queue.len();
            turn.queued += waiting as u64;
            // At most `capacity` pops: enough for every part of a sealed commit (module doc),
            // and a bound on the turn while producers keep pushing.
            for _ in 0..capacity {
                let Some(part) = queue.pop() else { break };
                self.accept(slot, part);
                turn.drained += 1;
            }
        }
    }

    fn accept(&mut self, slot: usize, part: Part<M::Record>) {
        let ids = &mut self.ids[slot];
        let id = part.path as usize;
        let path = match part.name {
            Some(name) => {
                let path = match self.index.get(&name) {
                    Some(&path) => path,
                    None => {
                        let hash = self.published.hash(&name);
                        intern(&mut self.index, &mut self.paths, name, hash)
                    }
                };
                if ids.len() <= id {
                    ids.resize(id + 1, u32::MAX);
                }
                ids[id] = path;
                path
            }
            // The queue is FIFO and a producer names a path on its first part: the name came first.
            None => *ids.get(id).expect("a producer names a path before using its id"),
        };
        let state = &mut self.paths[path as usize];
        state.pending.push((part.commit, part.record));
        if !state.listed {
            state.listed = true;
            self.with_pending.push(path);
        }
    }

    /// Turns pending records at or below `frontier` into level-0 segments, one per commit, and
    /// compacts each path so touched while it is at hand. True if anything merged.
    fn reveal(&mut self, frontier: u64, bound: u64, fuel: &mut usize) -> bool {
        let shared = self.shared.clone();
        let mut merged = false;
        let mut still_pending = Vec::new();
        for path in std::mem::take(&mut self.with_pending) {
            let state = &mut self.paths[path as usize];
            // Parts of one path can come from several producers' queues, so restore commit order;
            // the sort is stable, so one commit's records keep their order.
            if !state.pending.windows(2).all(|w| w[0].0 <= w[1].0) {
                state.pending.sort_by_key(|(commit, _)| *commit);
            }
            let sealed = state.pending.partition_point(|(commit, _)| *commit <= frontier);
            if sealed == 0 {
                still_pending.push(path);
                continue;
            }
            let records = if sealed == state.pending.len() {
                state.listed = false;
                std::mem::take(&mut state.pending)
            } else {
                still_pending.push(path);
                let later = state.pending.split_off(sealed);
                std::mem::replace(&mut state.pending, later)
            };
            // One level-0 segment per commit. Usually the records are one commit's, and the
            // vector itself is sealed; otherwise each commit's run is moved out in one pass.
            let one_commit = records.first().map(|r| r.0) == records.last().map(|r| r.0);
            let mut groups = if one_commit { smallvec![records] } else { split_by_commit(records) };
            for group in groups.drain(..) {
                let commit = group[0].0;
                let output = Arc::new(shared.merge.seal(group));
                let segment = Segment { info: SegmentInfo { level: 0, start: commit, end: commit }, output };
                if shared.config.flush_level == 0 {
                    sink(&shared, &mut self.retries, &state.name, &mut state.unsunk, path, &segment);
                }
                state.segments.push(segment);
            }
            merged |= self.compact_path(path, bound, fuel);
        }
        self.with_pending = still_pending;
        merged
    }

    /// After a path's segments changed: apply retention, move full chunks of old top-level
    /// segments to the history, mark the path for publishing, reschedule it.
    fn settle(&mut self, path: u32) {
        let shared = &self.shared;
        let state = &mut self.paths[path as usize];
        let top = shared.config.geometry.max_level();
        if let Retention::Newest(keep) = shared.config.retention {
            if state.unsunk == 0 {
                let dropped = state.retain_newest(top, keep);
                if dropped > 0 {
                    shared.stats.dropped(dropped as u64);
                }
            }
        }
        // Top-level segments are a prefix, so the chunk is full when its last slot is top-level.
        if state.segments.get(HISTORY_CHUNK - 1).is_some_and(|s| s.info.level == top) {
            state.history.push(state.segments.drain(..HISTORY_CHUNK).collect());
            state.history_view = None;
            state.settled = None;
        }
        if !state.dirty {
            state.dirty = true;
            self.dirty.push(path);
        }
        if let Some(at) = shared.config.geometry.next_due(&state.segments) {
            self.schedule.add(&mut state.due_at, path, at);
        }
    }

    /// Merges due paths up to `bound` until the turn's fuel is spent. True if anything merged.
    fn compact(&mut self, bound: u64, fuel: &mut usize) -> bool {
        let mut merged = false;
        while *fuel > 0 {
            let Some((at, path)) = self.schedule.take(bound) else { break };
            let state = &mut self.paths[path as usize];
            if state.due_at != at {
                continue; // superseded by an earlier entry for the same path
            }
            state.due_at = 0;
            merged |= self.compact_path(path, bound, fuel);
        }
        merged
    }

    /// Merges one path as far as `bound` and the fuel allow, hands new flush-level segments to
    /// the sink, then settles the path. True if anything merged.
    fn compact_path(&mut self, path: u32, bound: u64, fuel: &mut usize) -> bool {
        let shared = &self.shared;
        let flush_level = shared.config.flush_level;
        let (retries, scratch) = (&mut self.retries, &mut self.scratch);
        let PathState { name, segments, settled, unsunk, .. } = &mut self.paths[path as usize];
        let compactor =
            Compactor { merge: &*shared.merge, geometry: &shared.config.geometry, keep: flush_level };
        let merged = compactor.run(segments, bound, fuel, scratch, |segment| {
            if segment.info.level == flush_level {
                sink(shared, retries, name, unsunk, path, segment);
            }
        });
        if let Some(end) = merged {
            *settled = None;
            self.merged_end = self.merged_end.max(end);
        }
        // Rescheduled by `settle`: still due at or below `bound` if fuel ran out.
        self.settle(path);
        merged.is_some()
    }

    /// Publishes this shard's view if anything changed since the last one.
    fn publish(&mut self) -> bool {
        let shared = self.shared.clone();
        if self.dirty.is_empty() && self.frontier == self.published_frontier {
            if self.included {
                return false;
            }
            // The last publish gave up (rule 2 in `crate::snapshot`): try the global view again.
            let published = shared.views.publish_global(self.shard);
            self.published(published);
            return true;
        }
        let paths = &mut self.paths;
        self.published.update(self.dirty.drain(..).map(|path| {
            let state = &mut paths[path as usize];
            state.dirty = false;
            state.entry(path) // empty once retention dropped everything: a tombstone
        }));
        self.published_frontier = self.frontier;
        let view = ShardView {
            frontier: self.frontier,
            merged_end: self.merged_end,
            paths: self.published.table().clone(),
        };
        let published = shared.views.publish(self.shard, view);
        self.published(published);
        true
    }

    fn published(&mut self, published: Published) {
        self.included = published.included;
        if let Some((before, after)) = published.advanced {
            let shared = &self.shared;
            shared.stats.visible(before, after);
            // Other workers may now compact further, and must publish to move the cut again.
            shared.bells.ring_sleepers();
        }
    }

    /// Retries up to `limit` failed sink writes.
    fn retry_sink(&mut self, limit: usize) {
        let shared = self.shared.clone();
        let Some(sink) = shared.sink.0.as_deref() else { return };
        for _ in 0..limit.min(self.retries.len()) {
            let Some(retry) = self.retries.pop_front() else { break };
            let state = &mut self.paths[retry.path as usize];
            let result = sink.write(&state.name, retry.info, &retry.output);
            shared.stats.sink_write(&result);
            if result.is_ok() {
                state.unsunk -= 1;
            } else {
                self.retries.push_back(retry);
            }
        }
    }

    /// True once shutdown can end for this worker: everything up to `last` is drained, visible,
    /// compacted and published.
    fn finished(&self, last: u64) -> bool {
        let shared = &self.shared;
        self.frontier == last
            && self.with_pending.is_empty()
            && self.dirty.is_empty()
            && self.published_frontier == last
            && self.included
            && shared.views.frontier() == last
            && !self.schedule.has_due(last)
            && shared.lanes.for_shard(self.shard).all(|(_, queue)| queue.is_empty())
    }

    /// True if a loop turn would find something to do.
    fn has_work(&self) -> bool {
        let shared = &self.shared;
        shared.clock.frontier() > self.frontier
            || !self.included
            || self.schedule.has_due(shared.views.bound(self.shard, self.frontier))
            || shared.lanes.for_shard(self.shard).any(|(_, queue)| !queue.is_empty())
    }

    fn sleep(&mut self) {
        let shared = self.shared.clone();
        let park = if shared.finish_line().is_some() { FINISHING_PARK } else { IDLE_PARK };
        // The handshake with producers is `Bells`' (crate::bell).
        shared.bells.sleep(
            self.shard,
            || self.has_work(),
            || {
                shared.stats.parked();
                std::thread::park_timeout(park);
            },
        );
    }
}

/// Splits commit-ordered records into one vector per commit, moving each record once.
fn split_by_commit<R>(records: Vec<(u64, R)>) -> SmallVec<[Vec<(u64, R)>; 1]> {
    let mut groups: SmallVec<[Vec<(u64, R)>; 1]> = SmallVec::new();
    for record in records {
        match groups.last_mut() {
            Some(group) if group[0].0 == record.0 => group.push(record),
            _ => groups.push(vec![record]),
        }
    }
    groups
}

#[cold]
fn intern<M: Merge>(
    index: &mut HashMap<Arc<str>, u32>,
    paths: &mut Vec<PathState<M>>,
    name: Arc<str>,
    hash: u64,
) -> u32 {
    let path = paths.len() as u32;
    index.insert(name.clone(), path);
    paths.push(PathState {
        name,
        hash,
        pending: Vec::new(),
        history: Vec::new(),
        history_view: None,
        segments: Vec::new(),
        settled: None,
        due_at: 0,
        listed: false,
        dirty: false,
        unsunk: 0,
    });
    path
}

/// Hands a new flush-level segment to the sink; on failure keeps it for a retry.
fn sink<M: Merge>(
    shared: &Shared<M>,
    retries: &mut VecDeque<Retry<M::Output>>,
    name: &str,
    unsunk: &mut u32,
    path: u32,
    segment: &Segment<M::Output>,
) {
    let Some(sink) = shared.sink.0.as_deref() else { return };
    let result = sink.write(name, segment.info, &segment.output);
    shared.stats.sink_write(&result);
    if result.is_err() {
        *unsunk += 1;
        retries.push_back(Retry { path, info: segment.info, output: segment.output.clone() });
    }
}
