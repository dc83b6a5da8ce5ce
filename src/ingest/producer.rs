//! The producer handle: validates a commit, takes its number and enqueues its parts; or,
//! in async code, awaits room for all of them first (`awaiting`).

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::Instant;

use hdrhistogram::Histogram;
use rtrb::PushError;

use crate::durable::frontier::DurableState;
use crate::error::{Error, TryCommitError};
use crate::ingest::key::{AsPath, PathKey, PathRef};
use crate::ingest::queue::{QueuedPart, Sender};
use crate::ingest::room::{full_or_failed, push_waiting};
use crate::merge::Merge;
use crate::out::stats::{Recorder, SAMPLE_EVERY};
use crate::shared::Shared;
use crate::sync::Arc;

/// `commit_async`'s future.
mod awaiting;

/// The most parts one `commit_many` call takes: where each commit ends is kept as a `u32`, and
/// one step of the clock takes at most 2^32 numbers (`crate::ingest::clock`, "Closing").
const MAX_BATCH_PARTS: usize = u32::MAX as usize;

/// Timed commits a producer collects before folding them into the shared histogram.
const FOLD_EVERY: u64 = 64;

/// Commits records to paths. One per thread: a `Producer` is `Send` but not `Sync`, and keeps
/// per-thread state (its slot in the frontier, its queues, its path ids) to itself.
///
/// A producer keeps working after the [`Pipeline`](crate::Pipeline) handle that made it is
/// dropped; it then gets [`Error::Shutdown`].
///
/// ```compile_fail
/// fn shared<T: Sync>(_: &T) {}
/// let pipeline = lockstep::Pipeline::builder(lockstep::merge::Sum).build().unwrap();
/// let producer = pipeline.producer().unwrap();
/// shared(&producer); // a Producer is not Sync
/// ```
pub struct Producer<M: Merge> {
    shared: Arc<Shared<M>>,
    slot: usize,
    /// This slot's queues, one per shard: only this producer pushes to them.
    senders: Box<[Sender<M::Record>]>,
    /// Path name to its route, for commits by name. foldhash: several times cheaper than
    /// SipHash on short names, and still seeded per map, so crafted paths cannot pick the
    /// buckets. Commits by [`PathKey`] skip it.
    ids: HashMap<Box<str>, Route, foldhash::fast::RandomState>,
    /// The commit being assembled: route and record.
    staged: Vec<(Route, M::Record)>,
    /// `commit_many`: where each staged commit's parts end.
    bounds: Vec<u32>,
    /// Parts per shard, for `try_commit`'s room check.
    need: Vec<usize>,
    /// `try_commit`'s routes of the parts it holds, kept for the allocation.
    routes_of_try: Vec<Route>,
    calls: u64,
    latency: Histogram<u64>,
    _not_sync: PhantomData<Cell<()>>,
}

/// Where a path's parts go: its shard, and its id in the shard's directory.
#[derive(Debug, Clone, Copy)]
struct Route {
    shard: u32,
    id: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Block,
    Refuse,
}

impl<M: Merge> fmt::Debug for Producer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("slot", &self.slot).field("paths", &self.ids.len()).finish()
    }
}

impl<M: Merge> Producer<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>) -> Result<Self, Error> {
        if shared.clock.is_closed() {
            return Err(Error::Shutdown);
        }
        if shared.lifecycle.has_failed() {
            return Err(Error::WorkerPanicked);
        }
        let max = shared.config.max_producers;
        let slot = shared.clock.claim().ok_or(Error::TooManyProducers { max })?;
        let senders = shared.lanes.take_senders(slot);
        let shards = shared.config.shards;
        Ok(Self {
            shared,
            slot,
            senders,
            ids: HashMap::default(),
            staged: Vec::new(),
            bounds: Vec::new(),
            need: vec![0; shards],
            routes_of_try: Vec::new(),
            calls: 0,
            latency: Recorder::local_histogram(),
            _not_sync: PhantomData,
        })
    }

    /// Commits every part as one commit and returns its number, waiting while a queue is full.
    ///
    /// A path may appear more than once; its records keep their order. While this call waits
    /// for room it holds the frontier back: no later commit becomes visible until this one is
    /// enqueued. On error nothing is enqueued and no commit number is taken, with one exception
    /// ([`Error::WorkerPanicked`] from a wait for room in a failed worker's queue).
    ///
    /// # Errors
    ///
    /// - a bad part: [`Error::EmptyPath`], [`Error::PathTooLong`], [`Error::RecordTooLarge`]
    ///   (with [`Builder::max_record_bytes`](crate::Builder::max_record_bytes)),
    ///   [`Error::ForeignKey`] for a [`PathKey`] of another pipeline;
    /// - [`Error::EmptyCommit`] for no parts;
    /// - [`Error::Shutdown`] once the pipeline is shutting down or dropped;
    /// - [`Error::WorkerPanicked`] once a worker has failed;
    /// - on a durable pipeline, the [`Error::Io`] that stopped durability for good.
    ///
    /// ```
    /// use lockstep::{merge::Concat, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Concat::<u32>::default()).build()?;
    /// let mut producer = pipeline.producer()?;
    /// assert_eq!(producer.commit([("/a", 1), ("/b", 2), ("/a", 3)])?, 1);
    /// assert_eq!(producer.commit(vec![(String::from("/a"), 4)])?, 2);
    /// assert_eq!(pipeline.shutdown()?.read("/a"), Some(vec![(1, 1), (1, 3), (2, 4)]));
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    pub fn commit<P: AsPath>(
        &mut self,
        parts: impl IntoIterator<Item = (P, M::Record)>,
    ) -> Result<u64, Error> {
        let started = self.start_call();
        let result = self.stage(parts).and_then(|()| self.take_number()).and_then(|commit| {
            // Moved out and back (three words), so `enqueue` can borrow the producer whole.
            let mut staged = std::mem::take(&mut self.staged);
            let result = self.enqueue(commit, staged.drain(..), Wait::Block);
            self.staged = staged;
            result
        });
        self.staged.clear();
        self.end_call(started);
        result
    }

    /// Commits every part as one commit and returns its number, like
    /// [`commit`](Producer::commit), but as a future that awaits room in a full queue instead
    /// of parking the thread: for async code (tokio, async-std, smol, or any executor: the
    /// future needs no runtime, the worker that drains the queue wakes its task).
    ///
    /// The parts are validated when it is called, and the future borrows the producer. When
    /// polled, it waits until every shard's queue has room for all of the commit's parts
    /// (only this producer pushes to its queues, so room only grows while it waits), and only
    /// then takes the commit number and enqueues the parts in one go, without waiting again.
    /// So it is cancel-safe: a future dropped before it finishes has taken no number and
    /// enqueued nothing, and leaves no registration behind; the commit just did not happen.
    /// Unlike `commit`, it never holds the frontier back while it waits.
    ///
    /// With room available it is ready at its first poll and costs about what `commit` costs
    /// (`benches/commit_async.rs`); it allocates nothing.
    ///
    /// # Errors
    ///
    /// What [`commit`](Producer::commit) refuses, and [`Error::CommitTooLarge`] when one
    /// shard's parts exceed its queue's capacity: they can never all be in the queue at once,
    /// so waiting for room for all of them would wait for good, and taking the number first
    /// would let a dropped future leave the commit half enqueued, holding the frontier back
    /// forever. Use `commit` for such a commit (on a blocking thread), or a larger
    /// [`Builder::queue_capacity`](crate::Builder::queue_capacity). Once the pipeline shuts
    /// down, a waiting future gives [`Error::Shutdown`]; once a worker fails,
    /// [`Error::WorkerPanicked`]; in both cases nothing was taken or enqueued.
    ///
    /// ```
    /// use lockstep::{merge::Sum, Error, Pipeline};
    ///
    /// # fn main() -> Result<(), Error> {
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    /// let pipeline = Pipeline::builder(Sum).queue_capacity(2).build()?;
    /// let mut producer = pipeline.producer()?;
    /// runtime.block_on(async {
    ///     // Far more commits than the queue holds: each waits for room when it is full.
    ///     for i in 1..=100 {
    ///         producer.commit_async([("/a", i), ("/b", 1)]).await?;
    ///     }
    ///     // Three parts for one shard never fit a queue of two.
    ///     let wide = producer.commit_async([("/a", 1), ("/a", 2), ("/a", 3)]).await;
    ///     assert_eq!(wide, Err(Error::CommitTooLarge { parts: 3, capacity: 2 }));
    ///     Ok::<(), Error>(())
    /// })?;
    /// let last = pipeline.shutdown()?;
    /// assert_eq!((last.frontier(), last.read("/a"), last.read("/b")), (100, Some(5050), Some(100)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn commit_async<P: AsPath>(
        &mut self,
        parts: impl IntoIterator<Item = (P, M::Record)>,
    ) -> impl Future<Output = Result<u64, Error>> + Send + Unpin + '_ {
        let started = self.start_call();
        // Only a commit of more parts than a queue holds may have too many for one shard: the
        // others are counted per shard only if they have to wait.
        let capacity = self.shared.lanes.capacity();
        let staged = self.stage(parts);
        let tallied = staged.is_ok() && self.staged.len() > capacity;
        let refused = staged.and_then(|()| if tallied { self.tally_staged() } else { Ok(()) }).err();
        awaiting::CommitAsync::new(self, refused, tallied, started)
    }

    /// Commits several commits in one call: each item is one commit's parts. They are numbered
    /// consecutively with one step of the counter, so a producer with many small commits at hand
    /// pays for taking a number, announcing, retiring and waking the workers once; returns the
    /// numbers taken. Every commit is validated before any number is taken: one bad part or an
    /// empty commit refuses them all, and nothing is enqueued. A batch may hold any number of
    /// parts for a shard, however small its queue: while the call waits for room, the commits
    /// of the batch already enqueued may become visible.
    ///
    /// # Errors
    ///
    /// What [`commit`](Producer::commit) refuses, for any commit of the batch;
    /// [`Error::EmptyCommit`] for a batch without commits; [`Error::BatchTooLarge`] past
    /// 2^32 - 1 parts in one call.
    ///
    /// ```
    /// use lockstep::{merge::Sum, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Sum).build()?;
    /// let mut producer = pipeline.producer()?;
    /// let hits = pipeline.key("/hits")?;
    /// let numbers = producer.commit_many((0..100).map(|i| [(&hits, i)]))?;
    /// assert_eq!(numbers, 1..=100);
    /// assert_eq!(producer.commit([(&hits, 0)])?, 101);
    /// assert_eq!(pipeline.shutdown()?.read(&hits), Some(4950));
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    pub fn commit_many<P: AsPath, C: IntoIterator<Item = (P, M::Record)>>(
        &mut self,
        commits: impl IntoIterator<Item = C>,
    ) -> Result<std::ops::RangeInclusive<u64>, Error> {
        let started = self.start_call();
        let result = self.stage_many(commits, MAX_BATCH_PARTS).and_then(|count| {
            let first = self.take_numbers(count)?;
            let mut staged = std::mem::take(&mut self.staged);
            let mut bounds = std::mem::take(&mut self.bounds);
            // Parts of commit `first + k` end at `bounds[k]`.
            let mut k = 0;
            let numbered = staged.drain(..).enumerate().map(|(i, part)| {
                while bounds[k] as usize <= i {
                    k += 1;
                }
                (first + k as u64, part)
            });
            let result = self.enqueue_numbered(numbered, Wait::Block).map(|()| first..=first + count - 1);
            bounds.clear();
            (self.staged, self.bounds) = (staged, bounds);
            result
        });
        self.staged.clear();
        self.bounds.clear();
        self.end_call(started);
        result
    }

    /// Stages every commit's parts, remembering where each commit ends; returns how many.
    /// Refuses a batch of more than `max_parts` parts.
    fn stage_many<P: AsPath, C: IntoIterator<Item = (P, M::Record)>>(
        &mut self,
        commits: impl IntoIterator<Item = C>,
        max_parts: usize,
    ) -> Result<u64, Error> {
        debug_assert!(max_parts <= MAX_BATCH_PARTS);
        self.staged.clear();
        self.bounds.clear();
        for parts in commits {
            let before = self.staged.len();
            for (path, record) in parts {
                let route = self.resolve(path.as_path(), &record)?;
                self.staged.push((route, record));
            }
            if self.staged.len() == before {
                return Err(Error::EmptyCommit);
            }
            if self.staged.len() > max_parts {
                return Err(Error::BatchTooLarge { parts: self.staged.len(), max: max_parts });
            }
            // In range: `max_parts` is at most `MAX_BATCH_PARTS`.
            self.bounds.push(self.staged.len() as u32);
        }
        match self.bounds.len() as u64 {
            0 => Err(Error::EmptyCommit),
            count => Ok(count),
        }
    }

    /// Like [`commit`](Producer::commit), but refuses instead of waiting when a queue lacks room
    /// for the commit's parts, and hands back every part it refused.
    ///
    /// On any refusal — [`Error::Full`], or any other [`Error`] a commit can get — nothing is
    /// enqueued, no commit number is taken, and the [`TryCommitError`] holds the error and the
    /// parts exactly as given (same order, same values), so the caller can retry them without
    /// rebuilding the records. Keeping them costs `try_commit` one vector of the parts per call
    /// (none when the parts come as a `Vec`: it is reused); `commit` pays nothing for it.
    ///
    /// # Errors
    ///
    /// A [`TryCommitError`] holding the parts and one of: what [`commit`](Producer::commit)
    /// refuses; [`Error::Full`] when a queue lacks room now; [`Error::CommitTooLarge`] when one
    /// shard's parts exceed its queue's capacity, so they never fit (`commit` takes them).
    ///
    /// ```
    /// use lockstep::{merge::Concat, Error, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Concat::<String>::default()).shards(1).queue_capacity(2).build()?;
    /// let mut producer = pipeline.producer()?;
    ///
    /// // A full queue: retry the very same parts until they fit.
    /// let mut parts = vec![("/log", String::from("started")), ("/log", String::from("ready"))];
    /// let commit = loop {
    ///     match producer.try_commit(parts) {
    ///         Ok(commit) => break commit,
    ///         Err(refused) if refused.error == Error::Full => {
    ///             parts = refused.parts; // the records come back; nothing was enqueued
    ///             std::thread::yield_now();
    ///         }
    ///         Err(refused) => return Err(refused.into()),
    ///     }
    /// };
    ///
    /// // Never fits a queue of 2: the three records come back with the error.
    /// let three = ["a", "b", "c"].map(|r| ("/log", String::from(r)));
    /// let Err(refused) = producer.try_commit(three) else { unreachable!("3 parts never fit 2") };
    /// assert_eq!(refused.error, Error::CommitTooLarge { parts: 3, capacity: 2 });
    /// assert_eq!(refused.parts[2], ("/log", String::from("c")));
    ///
    /// // `?` turns a refusal into its `Error`. (Once commit 1 is visible, the queue is empty.)
    /// pipeline.wait_sealed(commit, std::time::Duration::MAX)?;
    /// producer.try_commit([("/log", String::from("done"))])?;
    /// let last = pipeline.shutdown()?;
    /// assert_eq!(last.read("/log").map(|records| records[0].0), Some(commit));
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    pub fn try_commit<P: AsPath>(
        &mut self,
        parts: impl IntoIterator<Item = (P, M::Record)>,
    ) -> Result<u64, TryCommitError<P, M::Record>> {
        let started = self.start_call();
        let mut parts: Vec<(P, M::Record)> = parts.into_iter().collect();
        let mut routes = std::mem::take(&mut self.routes_of_try);
        routes.clear();
        let checked = self.check_try(&parts, &mut routes);
        let result = match checked {
            Ok(commit) => {
                let records = parts.drain(..).map(|(_, record)| record);
                let enqueued = self.enqueue(commit, routes.drain(..).zip(records), Wait::Refuse);
                // An error here is unreachable (the room was checked, and only this producer
                // pushes to its queues); the parts are gone by then.
                enqueued.map_err(|error| TryCommitError { error, parts })
            }
            Err(error) => Err(TryCommitError { error, parts }),
        };
        self.routes_of_try = routes;
        self.end_call(started);
        result
    }

    /// Everything `try_commit` checks before it takes a number; then takes it.
    fn check_try<P: AsPath>(
        &mut self,
        parts: &[(P, M::Record)],
        routes: &mut Vec<Route>,
    ) -> Result<u64, Error> {
        for (path, record) in parts {
            routes.push(self.resolve(path.as_path(), record)?);
        }
        if routes.is_empty() {
            return Err(Error::EmptyCommit);
        }
        self.check_room(routes)?;
        self.take_number()
    }

    /// Counts a call; the start time of the calls that are timed.
    fn start_call(&mut self) -> Option<Instant> {
        self.calls += 1;
        self.calls.is_multiple_of(SAMPLE_EVERY).then(Instant::now)
    }

    fn end_call(&mut self, started: Option<Instant>) {
        if let Some(started) = started {
            self.latency.saturating_record(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
            if self.calls.is_multiple_of(SAMPLE_EVERY * FOLD_EVERY) {
                self.shared.stats.fold_commit_latency(&mut self.latency);
            }
        }
    }

    /// Validates every part and resolves its route; touches nothing shared.
    fn stage<P: AsPath>(&mut self, parts: impl IntoIterator<Item = (P, M::Record)>) -> Result<(), Error> {
        self.staged.clear();
        for (path, record) in parts {
            let route = self.resolve(path.as_path(), &record)?;
            self.staged.push((route, record));
        }
        if self.staged.is_empty() {
            return Err(Error::EmptyCommit);
        }
        Ok(())
    }

    /// Validates one part and resolves its path's route: a key directly, a name through this
    /// producer's map (the first time, through the shard's directory).
    fn resolve(&mut self, path: PathRef<'_>, record: &M::Record) -> Result<Route, Error> {
        let shared = &*self.shared;
        if let Some(max) = shared.config.max_record_bytes {
            if let Some(bytes) = shared.merge.record_bytes(record) {
                if bytes > max {
                    return Err(Error::RecordTooLarge { bytes, max });
                }
            }
        }
        match path {
            PathRef::Key(key) => shared.router.resolve(key).map(|(shard, id)| Route { shard, id }),
            PathRef::Name(name) => match self.ids.get(name) {
                Some(&route) => Ok(route),
                None => self.route(name),
            },
        }
    }

    /// The first time this producer names `path`: validates and interns it.
    #[cold]
    fn route(&mut self, path: &str) -> Result<Route, Error> {
        let key = self.shared.router.key(path)?;
        let route = Route { shard: key.shard, id: key.id };
        self.ids.insert(path.into(), route);
        Ok(route)
    }

    /// Resolves `path` once, as [`Pipeline::key`](crate::Pipeline::key) does.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyPath`] for `""`; [`Error::PathTooLong`] past
    /// [`Builder::max_path_len`](crate::Builder::max_path_len) bytes.
    pub fn key(&self, path: &str) -> Result<PathKey, Error> {
        self.shared.router.key(path)
    }

    /// Refuses unless every part fits now. Exact: this producer is its queues' only writer.
    fn check_room(&mut self, routes: &[Route]) -> Result<(), Error> {
        self.tally(routes.iter())?;
        if self.fits() {
            Ok(())
        } else {
            Err(full_or_failed(&self.shared))
        }
    }

    /// Counts the staged parts per shard into `need`, as [`tally`](Producer::tally) does.
    fn tally_staged(&mut self) -> Result<(), Error> {
        let staged = std::mem::take(&mut self.staged);
        let tallied = self.tally(staged.iter().map(|(route, _)| route));
        self.staged = staged;
        tallied
    }

    /// Counts the parts per shard into `need`; refuses if a shard's would never fit its queue.
    fn tally<'r>(&mut self, routes: impl Iterator<Item = &'r Route>) -> Result<(), Error> {
        self.need.iter_mut().for_each(|n| *n = 0);
        for route in routes {
            self.need[route.shard as usize] += 1;
        }
        let capacity = self.shared.lanes.capacity();
        match self.need.iter().find(|&&parts| parts > capacity) {
            Some(&parts) => Err(Error::CommitTooLarge { parts, capacity }),
            None => Ok(()),
        }
    }

    /// Every shard's queue has room for all the staged parts, as last seen: enough for any
    /// split of them among the shards, found without counting them per shard or loading the
    /// worker's cache line (the room last seen only underestimates).
    fn fits_at_once(&self) -> bool {
        let parts = self.staged.len();
        self.senders.iter().all(|queue| parts <= queue.cached_slots())
    }

    /// Every shard's queue has room for the parts `need` counts for it now (and keeps it: only
    /// this producer pushes to its queues).
    fn fits(&self) -> bool {
        self.need.iter().zip(self.senders.iter()).all(|(&parts, queue)| {
            // The room last seen first (it only underestimates: the worker only frees slots),
            // which costs no load of the worker's cache line; the exact room only if short.
            parts <= queue.cached_slots() || parts <= queue.slots()
        })
    }

    /// Takes the next commit number, unless the pipeline refuses.
    fn take_number(&self) -> Result<u64, Error> {
        self.take_numbers(1)
    }

    /// Takes `count` consecutive commit numbers, the first returned, unless the pipeline refuses.
    fn take_numbers(&self, count: u64) -> Result<u64, Error> {
        let shared = &*self.shared;
        // Refuse before taking a number once any worker has failed, whatever the queues hold:
        // nothing can become visible any more (the global view is cut at the lowest shard
        // frontier, and the failed shard's no longer moves).
        //
        // The race: a worker that fails after this load is not seen here, and the commit is
        // taken and acknowledged (or, waiting for room in the failed worker's queue, refused
        // with `WorkerPanicked` after all, its number taken). Such a commit never becomes
        // visible, exactly like the commits acknowledged before the failure that were not yet
        // published. What holds: (1) a failure that happened before this call (its Release store
        // of `failed` is visible to this Acquire load, as it is once any call on any thread has
        // returned `WorkerPanicked` and told this one) refuses with no number taken; (2) no
        // acknowledged commit is lost silently: `wait_sealed` for it returns `WorkerPanicked`
        // instead of a snapshot, and so does `shutdown`.
        if shared.lifecycle.has_failed() {
            return Err(Error::WorkerPanicked);
        }
        // Durability stopped for good (a log write or sync failed): a commit taken now could
        // never become durable, so none is taken.
        if let Some(error) = shared.durable.as_ref().and_then(DurableState::error) {
            return Err(error);
        }
        let first = shared.clock.begin_many(self.slot, count).map_err(|_| Error::Shutdown)?;
        for commit in first..first + count {
            shared.stats.stamp(commit);
        }
        Ok(first)
    }

    /// Enqueues every part of `commit`, whose number `take_number` took, then retires it.
    fn enqueue(
        &mut self,
        commit: u64,
        parts: impl Iterator<Item = (Route, M::Record)>,
        wait: Wait,
    ) -> Result<u64, Error> {
        self.enqueue_numbered(parts.map(|part| (commit, part)), wait).map(|()| commit)
    }

    /// Enqueues every part, each with the number `take_numbers` took for its commit, then
    /// retires them all.
    fn enqueue_numbered(
        &mut self,
        parts: impl Iterator<Item = (u64, (Route, M::Record))>,
        wait: Wait,
    ) -> Result<(), Error> {
        let shared = &*self.shared;
        let mut failed = false;
        for (commit, (route, record)) in parts {
            let part = QueuedPart { commit, path: route.id, record };
            let queue = &mut self.senders[route.shard as usize];
            if let Err(PushError::Full(part)) = queue.push(part) {
                debug_assert!(wait == Wait::Block, "try_commit checked for room");
                if !push_waiting(shared, self.slot, queue, route.shard as usize, part) {
                    failed = true;
                    break;
                }
            }
        }
        shared.clock.retire(self.slot);
        shared.bells.ring_sleepers();
        if failed {
            return Err(Error::WorkerPanicked);
        }
        Ok(())
    }
}

impl<M: Merge> Drop for Producer<M> {
    fn drop(&mut self) {
        // Before the slot is released, so its next producer finds them.
        let senders = std::mem::take(&mut self.senders);
        self.shared.lanes.put_back(self.slot, senders);
        self.shared.stats.fold_commit_latency(&mut self.latency);
        self.shared.clock.release(self.slot);
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
