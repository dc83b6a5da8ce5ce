//! Shard workers: each owns its paths outright. A loop turn reads: drain → form → merge →
//! publish, and nothing else.
//!
//! A turn reads the clock's frontier `f` *first*, then drains. Every part of every commit `<= f`
//! was enqueued before `f` could be read (see [`crate::ingest::clock`]), so it sits at the front of its
//! queue, and one pass of at most `capacity` pops per queue collects all of them. Parts of later
//! commits wait in their producer's pending list, in that producer's commit order, so a turn
//! takes the sealed ones from the front: its work is what it drains and seals, never the number
//! of pending parts or of paths. The sealed records go to the shard's [`Spine`], which forms
//! them into batches; merges are paid with fuel that grows with what the turn drained; then the
//! shard view (its batches' `Arc`s and the directory) is published.
//!
//! **Bounded turns.** With many producers, full queues would make a turn of hundreds of
//! thousands of parts, its sort and forming far outside the caches and much slower per part
//! (perf/README.md). So a queue holding more than its share of
//! `TURN_ROWS` gives only that share to its pending list, and the turn seals only the commits
//! below the newest one taken from such a queue: that commit's other parts, and later commits,
//! may still be queued behind it, since a queue holds its producer's parts in commit order. A
//! queue holding no more than its share is emptied as before. Turns keep sealing: a queue that
//! bounds a turn gives its share each turn, so its newest commit taken moves on until the queue
//! holds no more than its share and bounds nothing.
//!
//! **Producers ahead wait.** A queue whose pending list already holds a share's worth of parts
//! of two commits or more is not popped: its producer is ahead of the frontier, and letting it
//! fill its queue and wait gives the two cores to the producers behind it (popping such queues
//! anyway let the pending lists grow without bound and cost throughput with several producers;
//! perf/README.md). It cannot hold the frontier back for good. After the seal, a pending list
//! holds only commits above the turn's frontier. When a queue bounds the turn (above), it gives
//! its share whatever its list holds. Otherwise the turn's frontier is the clock's, and the
//! producer holding the oldest unsealed commit `c` has enqueued nothing of a later commit: a
//! plain commit is one number; a `commit_many` batch, before it waits for room, advances its
//! announcement to the commit it is enqueueing (`crate::ingest::clock`, "Batches"), so the frontier
//! reaches the commit before it. Its list then holds parts of `c` alone, however many, and its
//! queue is popped: a commit may have more parts than its queue holds, and its producer needs
//! the room to finish it. (A stale frontier read can leave older commits in that list for a
//! turn; the next read, with that producer waiting in its commit, is exact.) Once the frontier
//! passes a waiting producer's older commits, its list is down to its in-flight commit and it is
//! popped again. `tests/commit_many.rs` hangs without the advance.
//!
//! Idle workers spin briefly, keep looking (yielding their core) for `Builder::idle_spin`, then
//! park; producers ring a sleeping worker's bell after a commit (the frontier may have moved for
//! every shard, not only the ones the commit touched). Waking a parked thread costs tens of
//! microseconds (more on a VM), longer than most gaps between commits under a steady load: a
//! worker that parked at once added that to the median commit-to-visible latency
//! (perf/README.md).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crossbeam::utils::Backoff;

use crate::durable::recovery::Durability;
use crate::durable::saver::OnFailed;
use crate::durable::store::ShardLog;
use crate::durable::syncer::OnSynced;
use crate::error::Error;
use crate::ingest::queue::Receiver;
use crate::merge::{Column, Merge};
use crate::out::sink::Undelivered;
use crate::out::stats::Turn;
use crate::read::view::Published;
use crate::shard::batch::Batch;
use crate::shard::directory::Directory;
use crate::shard::policy;
use crate::shard::sort::Row;
use crate::shard::spine::Spine;
use crate::shared::Shared;
use crate::sync::Arc;
use crate::tier::SegmentInfo;

/// How long an idle worker parks before looking again without being rung (a safety net; the
/// bell is what normally wakes it).
const IDLE_PARK: Duration = Duration::from_millis(50);
/// The same while shutting down, when the other workers' progress is what it waits for.
const FINISHING_PARK: Duration = Duration::from_micros(200);
/// How long a clean shutdown waits for the batch files that are due (`Worker::save_before_exit`).
const FINISH_SAVES: Duration = Duration::from_secs(5);
/// How often, at most, failed sink writes are retried while running, and how many at a time.
const RETRY_EVERY: Duration = Duration::from_millis(10);
const RETRIES_AT_ONCE: usize = 4;

/// About the most parts a turn takes from its queues (module doc, "Bounded turns").
const TURN_ROWS: usize = 1 << 15;

/// A sink write to try again; it owns its output, so retention can drop the batch.
struct Retry<O> {
    path: u32,
    info: SegmentInfo,
    output: O,
}

/// A shard worker and everything it owns.
pub(crate) struct Worker<M: Merge> {
    shared: Arc<Shared<M>>,
    shard: usize,
    /// Path names and dense ids (producers intern; the worker names paths for the sink).
    directory: Arc<Directory>,
    /// This shard's queue of every producer slot used so far, with the slot.
    receivers: Vec<(usize, Receiver<M::Record>)>,
    /// Per producer slot: its receiver is in `receivers`.
    taken: Vec<bool>,
    /// `Lanes::made` when the receivers were last looked for.
    made: usize,
    /// Per producer slot: drained parts of commits above the frontier, in commit order.
    pending: Vec<VecDeque<Row<M::Record>>>,
    /// The turn's sealed records (a buffer kept across turns).
    sealed: Vec<Row<M::Record>>,
    /// Per receiver, in this turn: it held more than its share, which was taken first.
    taken_share: Vec<bool>,
    spine: Spine<M>,
    /// A durable pipeline's log of this shard's sealed turns (`crate::durable`); `None` once
    /// it failed (durability has then stopped for good).
    log: Option<ShardLog<M>>,
    /// The path names a turn logs or a batch file saves (a buffer kept across turns).
    names: Vec<Arc<str>>,
    /// Top-level batches handed over to history and not saved to files yet, in range order.
    unsaved: VecDeque<Arc<Batch<M>>>,
    /// The spine changed since the last publish.
    dirty: bool,
    published_frontier: u64,
    /// The published global view holds this worker's latest shard view.
    included: bool,
    retries: VecDeque<Retry<M::Output>>,
    last_retry: Instant,
}

impl<M: Merge> Worker<M> {
    /// The worker of shard `shard`, starting from `spine` (empty, or what recovery rebuilt) and,
    /// for a durable pipeline, continuing `log`.
    pub(crate) fn new(
        shared: Arc<Shared<M>>,
        shard: usize,
        spine: Spine<M>,
        mut log: Option<ShardLog<M>>,
    ) -> Result<Self, Error> {
        if let (Some(log), Some(durable)) = (log.as_mut(), &shared.durable) {
            let on_synced =
                (durable.durability == Durability::Synced).then(|| Self::on_synced(shared.clone(), shard));
            log.start(shard, shared.merge.clone(), Self::on_failed(shared.clone()), on_synced)?;
        }
        let slots = shared.config.max_producers;
        Ok(Self {
            published_frontier: spine.frontier(),
            log,
            names: Vec::new(),
            unsaved: VecDeque::new(),
            directory: shared.router.directory(shard).clone(),
            shared,
            shard,
            receivers: Vec::new(),
            taken: vec![false; slots],
            made: 0,
            pending: (0..slots).map(|_| VecDeque::new()).collect(),
            sealed: Vec::new(),
            taken_share: Vec::new(),
            spine,
            dirty: false,
            included: true,
            retries: VecDeque::new(),
            last_retry: Instant::now(),
        })
    }

    /// What shard `shard`'s sync thread reports to (`Durability::Synced`): the shard's durable
    /// frontier moves (waking `wait_durable`), and the workers look again (a sink write or a
    /// batch file may have waited for it); or durability stops for good.
    fn on_synced(shared: Arc<Shared<M>>, shard: usize) -> OnSynced {
        Box::new(move |synced| {
            let Some(durable) = &shared.durable else { return };
            match synced {
                Ok(frontier) => {
                    durable.advance_synced(shard, frontier);
                    durable.advance(shard, frontier);
                    shared.bells.ring_sleepers();
                }
                Err(error) => durable.fail(error),
            }
        })
    }

    /// What shard `shard`'s saving thread reports a failed batch file to: durability stops for
    /// good, as after a failed log write.
    fn on_failed(shared: Arc<Shared<M>>) -> OnFailed {
        Box::new(move |error| {
            if let Some(durable) = &shared.durable {
                durable.fail(error);
            }
        })
    }

    /// The thread body; returns the sink writes still failing when it stopped (shutdown hands
    /// them back). A panic in user code (merge or sink) marks the pipeline failed, so producers
    /// and shutdown stop waiting for this worker.
    pub(crate) fn run(mut self) -> Vec<Undelivered<M::Output>> {
        let shared = self.shared.clone();
        if catch_unwind(AssertUnwindSafe(|| self.work())).is_err() {
            shared.fail();
        }
        let directory = &self.directory;
        self.retries
            .drain(..)
            .map(|retry| Undelivered {
                path: directory.name(retry.path).clone(),
                segment: retry.info,
                output: retry.output,
            })
            .collect()
    }

    fn work(&mut self) {
        let backoff = Backoff::new();
        // When this worker last found nothing to do, while it keeps looking.
        let mut idle_since: Option<Instant> = None;
        loop {
            let worked = self.turn();
            if let Some(last) = self.shared.lifecycle.finish_line() {
                if self.finished(last) {
                    self.sync_log();
                    self.retry_sink(usize::MAX);
                    self.save_before_exit();
                    return;
                }
            }
            if self.shared.lifecycle.has_failed() {
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

    /// One loop turn: drain → form → merge → publish; true if it did anything.
    fn turn(&mut self) -> bool {
        let shared = self.shared.clone();
        // Read before draining: see the module doc. Kept at our maximum (the clock's reading
        // is a lower bound, and two readings need not be ordered).
        let frontier = shared.clock.frontier().max(self.spine.frontier());
        let mut turn = Turn::default();
        let frontier = self.drain(frontier, &mut turn);
        // Logged before it is sealed, so nothing becomes visible before it is written (or, at
        // `Durability::Synced`, synced).
        self.log_turn(frontier);
        // Rule 1 of `crate::read::snapshot`: form up to our frontier and the others' published ones.
        let bound = shared.views.bound(self.shard, frontier);
        let merge = &*shared.merge;
        let started = Instant::now();
        let formed = !self.sealed.is_empty();
        let changes = self.spine.seal(merge, &mut self.sealed, frontier, bound);
        let mut merged = false;
        if self.spine.has_merges() {
            let mut fuel = policy::fuel(shared.config.merge_budget, turn.drained as usize);
            merged = self.spine.work(merge, &mut fuel).batches;
        }
        if formed || merged {
            turn.merge_nanos = Some(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        self.dirty |= changes.batches || merged;
        self.flush();
        // After the sink writes: a file holds only segments the sink has taken.
        let saved = self.save() | self.sync_if_wanted();
        // After the sink writes: a block can be dropped in the turn that formed it (its batch
        // stays alive for the sink), and the stats never show a drop before its write.
        if changes.dropped > 0 {
            shared.stats.dropped(changes.dropped);
        }
        // Counted before publishing, so a snapshot never shows records the stats have not.
        shared.stats.turn(&turn);
        let published = self.publish();
        if !self.retries.is_empty() && self.last_retry.elapsed() >= RETRY_EVERY {
            self.retry_sink(RETRIES_AT_ONCE);
            self.last_retry = Instant::now();
        }
        turn.drained > 0 || turn.merge_nanos.is_some() || published || saved
    }

    /// Moves the parts of commits up to the turn's frontier into `sealed`, and later ones into
    /// `pending`; returns the turn's frontier: `frontier`, or less when there are more queued
    /// parts than a turn should take (module doc, "Bounded turns").
    fn drain(&mut self, frontier: u64, turn: &mut Turn) -> u64 {
        let shared = self.shared.clone();
        // After the frontier read: a producer makes its queues before it takes a number, so
        // the queues of every commit at or below `frontier` are found here.
        let made = shared.lanes.made();
        if made != self.made {
            shared.lanes.take_receivers(self.shard, &mut self.taken, &mut self.receivers);
            self.made = made;
        }
        let capacity = shared.lanes.capacity();
        let quota = (TURN_ROWS / self.receivers.len().max(1)).clamp(1, capacity);
        // First the queues holding more than their share: take the share into their pending
        // lists, and seal only below the last commit taken (its other parts, and later
        // commits, may still be queued).
        let mut sealed_to = frontier;
        self.taken_share.clear();
        for (slot, queue) in &mut self.receivers {
            let slots = queue.slots();
            turn.queued += slots as u64;
            let big = slots > quota;
            self.taken_share.push(big);
            if !big {
                continue;
            }
            let pending = &mut self.pending[*slot];
            for _ in 0..quota {
                let Ok(part) = queue.pop() else { break };
                turn.drained += 1;
                pending.push_back(Row::from(part));
            }
            if let Some(last) = pending.back() {
                sealed_to = sealed_to.min(last.commit - 1);
            }
        }
        let frontier = sealed_to.max(self.spine.frontier());
        for ((slot, queue), &taken) in self.receivers.iter_mut().zip(&self.taken_share) {
            let pending = &mut self.pending[*slot];
            while pending.front().is_some_and(|row| row.commit <= frontier) {
                let Some(row) = pending.pop_front() else { break };
                self.sealed.push(row);
            }
            // Its share is taken; or its producer is ahead of the frontier by a share's worth
            // of two commits or more: it waits, so the producers behind it get the cores.
            let spans_two = pending.front().zip(pending.back()).is_some_and(|(a, b)| a.commit < b.commit);
            if taken || (pending.len() >= quota && spans_two) {
                continue;
            }
            // At most `quota` pops: every part of a sealed commit when the queue held no more
            // than that (module doc), and a bound on the turn while producers keep pushing.
            for _ in 0..quota {
                let Ok(part) = queue.pop() else { break };
                turn.drained += 1;
                let row = Row::from(part);
                if row.commit <= frontier && pending.is_empty() {
                    self.sealed.push(row);
                } else {
                    pending.push_back(row);
                }
            }
        }
        if turn.drained > 0 {
            // Room was made: wake the producers waiting for it (crate::ingest::bell::Waiters).
            shared.waiters.fence();
            for (slot, _) in &self.receivers {
                shared.waiters.wake(*slot);
            }
        }
        frontier
    }

    /// Logs the turn's sealed rows and the names interned since the last turn, if the frontier
    /// moved; syncs at `Durability::Synced`; moves this shard's durable frontier. A failure
    /// stops durability for good (a failed write or fsync is never retried).
    fn log_turn(&mut self, frontier: u64) {
        let Some(log) = self.log.as_mut() else { return };
        let shared = &*self.shared;
        let Some(durable) = &shared.durable else { return };
        if durable.error().is_some() {
            // The sync thread failed: nothing written from now on would ever be durable.
            self.log = None;
            return;
        }
        let tip = log.tip();
        if frontier <= tip.frontier && self.sealed.is_empty() {
            return;
        }
        // The names interned since the last turn.
        visible_names(&self.directory, tip.names, &mut self.names);
        match log.append(frontier, &self.names, &self.sealed) {
            // At `Synced`, the sync thread moves the durable frontier once the turn is synced.
            Ok(()) if durable.durability == Durability::Synced => {}
            Ok(()) => durable.advance(self.shard, frontier),
            Err(error) => {
                durable.fail(error);
                self.log = None;
            }
        }
    }

    /// Hands the top-level batches handed over to history to the saving thread as a batch file
    /// (`crate::durable::saver`) once the last file is saved and they reach the next checkpoint
    /// boundary (`crate::durable::checkpoint`), the sink has taken every flush-level segment up
    /// to the file's end, and every shard's log is synced past it: until then it asks every
    /// shard for that sync and tries again on a later turn. Under a retention window, first
    /// hands over the replacing of the files the window left. True if it handed a job over.
    fn save(&mut self) -> bool {
        let Some(log) = self.log.as_mut() else { return false };
        let shared = &*self.shared;
        let Some(durable) = &shared.durable else { return false };
        self.unsaved.extend(self.spine.take_saved());
        let Some((saved, boundary)) = log.files() else { return false };
        // Under a retention window, the files the window left go first (their names stay, in
        // the names file). The window's start at the synced frontier, not the visible one: a
        // crash recovers at least that far, so the window reopens past every file it left.
        if let Some(through) = log.expirable(self.spine.window_start(durable.synced())) {
            visible_names(&self.directory, 0, &mut self.names);
            log.expire(through, self.names.clone());
            return true;
        }
        if self.spine.handed_over() < boundary {
            return false;
        }
        // Every top-level batch starting at or below the boundary (a run formed at once may
        // cross it, and the file then ends with it).
        let take = self.unsaved.iter().take_while(|batch| batch.start <= boundary).count();
        let end = take
            .checked_sub(1)
            .and_then(|last| self.unsaved.get(last))
            .map_or(boundary, |batch| batch.end.max(boundary));
        // A flush-level segment the sink has not taken stays above the files (the log holds
        // it, so reopening hands it to the sink again): at least once across crashes.
        let undelivered = self.retries.iter().any(|retry| retry.info.end <= end);
        if undelivered || self.spine.flushing_through(end) {
            return false;
        }
        if durable.synced() < end {
            durable.want_synced(end);
            // The others sync on their next turn, or now if they sleep.
            shared.bells.ring_sleepers();
            return false;
        }
        visible_names(&self.directory, saved.names, &mut self.names);
        let batches = self.unsaved.drain(..take).collect();
        log.save(batches, end, self.names.clone());
        true
    }

    /// At a clean shutdown, saves every batch file that is due, one after another, so that
    /// the next open replays little log: waits for the file in flight, hands over the next, and
    /// waits for the other shards' syncs a file needs (each syncs its log as it finishes). A
    /// file still waiting after [`FINISH_SAVES`] (or for the sink) stays in the log.
    fn save_before_exit(&mut self) {
        let deadline = Instant::now() + FINISH_SAVES;
        loop {
            let Some(log) = self.log.as_mut() else { return };
            let left = deadline.saturating_duration_since(Instant::now());
            if !log.wait_saved(left) || self.durability_failed() {
                return;
            }
            if self.save() {
                continue;
            }
            // Not handed over: done, unless it waits for another shard's sync.
            let Some(durable) = &self.shared.durable else { return };
            if durable.synced() >= durable.wanted()
                || Instant::now() >= deadline
                || self.shared.lifecycle.has_failed()
            {
                return;
            }
            std::thread::park_timeout(FINISHING_PARK);
        }
    }

    /// True if a worker saving a batch file waits on this shard's log being synced further
    /// than it is (and it has logged further).
    fn sync_wanted(&self) -> bool {
        let (Some(log), Some(durable)) = (&self.log, &self.shared.durable) else { return false };
        let synced = durable.synced_of(self.shard);
        synced < durable.wanted().min(log.tip().frontier)
    }

    /// Syncs the log if a worker saving a batch file waits on it.
    fn sync_if_wanted(&mut self) -> bool {
        if !self.sync_wanted() {
            return false;
        }
        self.sync_log();
        true
    }

    /// Syncs the log whatever the durability: at shutdown (a clean one leaves every turn synced),
    /// and when a worker saving a batch file waits on it.
    fn sync_log(&mut self) {
        let (Some(log), Some(durable)) = (self.log.as_mut(), &self.shared.durable) else { return };
        match log.sync() {
            Ok(frontier) => {
                durable.advance_synced(self.shard, frontier);
                durable.advance(self.shard, frontier);
            }
            Err(error) => {
                durable.fail(error);
                self.log = None;
            }
        }
    }

    /// The last commit a segment handed to the sink may reach: at `Durability::Synced`, the
    /// synced frontier, so that a sink never holds a segment of commits a power cut can take
    /// back (their numbers would be issued again, with other records).
    fn flushable(&self) -> u64 {
        match &self.shared.durable {
            Some(durable) if durable.durability == Durability::Synced => durable.synced(),
            _ => u64::MAX,
        }
    }

    /// Hands the new flush-level segments to the sink, in ascending order per path.
    fn flush(&mut self) {
        let shared = self.shared.clone();
        let Some(sink) = shared.sink.0.as_deref() else { return };
        let geometry = &shared.config.geometry;
        let mut written = 0;
        let directory = self.directory.clone();
        for (batch, after) in self.spine.take_flushed(self.flushable()) {
            // All the batch's names first, in one tight loop: with a million paths each is a
            // cache miss, and there they overlap instead of waiting one by one behind a write.
            let names: Vec<&Arc<str>> = batch.ids().iter().map(|&id| directory.name(id)).collect();
            for (i, name) in names.into_iter().enumerate() {
                let (id, segments) = batch.path(i);
                for segment in segments.filter(|&s| batch.end_of(s) > after) {
                    let info = batch.info(geometry, segment);
                    let output = M::Column::read(&shared.merge, &[batch.part(segment)]);
                    let result = sink.write(name, info, &output);
                    if result.is_ok() {
                        written += 1;
                    } else {
                        shared.stats.sink_write(&result);
                        self.retries.push_back(Retry { path: id, info, output });
                    }
                }
            }
        }
        // One counter update per turn, not per segment.
        if written > 0 {
            shared.stats.sink_writes(written);
        }
    }

    /// Publishes this shard's view if anything changed since the last one.
    fn publish(&mut self) -> bool {
        let shared = self.shared.clone();
        let frontier = self.spine.frontier();
        if !self.dirty && frontier == self.published_frontier {
            if self.included {
                return false;
            }
            // The last publish gave up (rule 2 in `crate::read::snapshot`): try the global view again.
            let published = shared.views.publish_global(self.shard);
            self.published(published);
            return true;
        }
        let view = self.spine.view();
        (self.dirty, self.published_frontier) = (false, frontier);
        let published = shared.views.publish(self.shard, view);
        self.published(published);
        true
    }

    fn published(&mut self, published: Published) {
        self.included = published.included;
        if let Some((before, after)) = published.advanced {
            let shared = &self.shared;
            shared.stats.visible(before, after);
            // Other workers may now form further, and must publish to move the cut again.
            shared.bells.ring_sleepers();
        }
    }

    /// Retries up to `limit` failed sink writes.
    fn retry_sink(&mut self, limit: usize) {
        let shared = self.shared.clone();
        let Some(sink) = shared.sink.0.as_deref() else { return };
        for _ in 0..limit.min(self.retries.len()) {
            let Some(retry) = self.retries.pop_front() else { break };
            let result = sink.write(self.directory.name(retry.path), retry.info, &retry.output);
            shared.stats.sink_write(&result);
            if result.is_err() {
                self.retries.push_back(retry);
            }
        }
    }

    /// True once shutdown can end for this worker: everything up to `last` is drained, formed,
    /// merged, published and handed to the sink (at `Durability::Synced`, the sync thread
    /// syncs the last turns meanwhile).
    fn finished(&self, last: u64) -> bool {
        let shared = &self.shared;
        self.spine.frontier() == last
            && self.published_frontier == last
            && self.included
            && !self.dirty
            && shared.views.frontier() == last
            && self.spine.settled(shared.views.bound(self.shard, last))
            && self.pending.iter().all(VecDeque::is_empty)
            && self.receivers.iter().all(|(_, queue)| queue.is_empty())
            && (!self.spine.has_flushed_through(u64::MAX) || self.durability_failed())
    }

    /// True once durability has stopped for good: segments held for the sync that would make
    /// them durable are held for good too (the log keeps what was written, for the next open).
    fn durability_failed(&self) -> bool {
        self.shared.durable.as_ref().is_some_and(|durable| durable.error().is_some())
    }

    /// True if a loop turn would find something to do.
    fn has_work(&self) -> bool {
        let shared = &self.shared;
        let frontier = self.spine.frontier();
        shared.clock.frontier() > frontier
            || self.sync_wanted()
            || self.spine.has_flushed_through(self.flushable())
            || !self.included
            || self.spine.has_merges()
            || !self.spine.settled(shared.views.bound(self.shard, frontier))
            || shared.lanes.made() != self.made
            || self.receivers.iter().any(|(_, queue)| !queue.is_empty())
    }

    fn sleep(&mut self) {
        let shared = self.shared.clone();
        let park = if shared.lifecycle.finish_line().is_some() { FINISHING_PARK } else { IDLE_PARK };
        // The handshake with producers is `Bells`' (crate::ingest::bell).
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

/// The names of ids from `from` on that this thread sees interned, in id order, into `names`.
/// `len` is only a hint, but every id a row holds was interned before its part was pushed (and
/// every lower id before it, under the directory's lock), so the prefix that is visible covers
/// every row logged or batch saved after it.
fn visible_names(directory: &Directory, from: u32, names: &mut Vec<Arc<str>>) {
    names.clear();
    names.extend((from..directory.len() as u32).map_while(|id| directory.get(id).cloned()));
}
