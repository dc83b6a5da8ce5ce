//! The producer handle: validates a commit, takes its number and enqueues its parts.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::Backoff;
use hdrhistogram::Histogram;

use crate::error::Error;
use crate::merge::Merge;
use crate::pipeline::Shared;
use crate::queue::{shard_of, Part};
use crate::stats::{Recorder, SAMPLE_EVERY};
use crate::sync::Arc;

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
    /// Path name to the index of its route. foldhash: several times cheaper than SipHash on
    /// short names, and still seeded per map, so crafted paths cannot pick the buckets.
    ids: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    routes: Vec<Route>,
    /// Ids handed out per shard so far: a route's id is dense within its shard.
    next_id: Vec<u32>,
    /// The commit being assembled: route index and record.
    staged: Vec<(u32, M::Record)>,
    /// Parts per shard, for `try_commit`'s room check.
    need: Vec<usize>,
    calls: u64,
    latency: Histogram<u64>,
    _not_sync: PhantomData<Cell<()>>,
}

#[derive(Debug)]
struct Route {
    shard: u32,
    id: u32,
    /// The name, until the first part naming it has been sent.
    unsent: Option<Arc<str>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Block,
    Refuse,
}

impl<M: Merge> fmt::Debug for Producer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("slot", &self.slot).field("paths", &self.routes.len()).finish()
    }
}

impl<M: Merge> Producer<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>) -> Result<Self, Error> {
        if shared.clock.is_closed() {
            return Err(Error::Shutdown);
        }
        let max = shared.config.max_producers;
        let slot = shared.clock.claim().ok_or(Error::TooManyProducers { max })?;
        let shards = shared.config.shards;
        Ok(Self {
            shared,
            slot,
            ids: HashMap::default(),
            routes: Vec::new(),
            next_id: vec![0; shards],
            staged: Vec::new(),
            need: vec![0; shards],
            calls: 0,
            latency: Recorder::local_histogram(),
            _not_sync: PhantomData,
        })
    }

    /// Commits every part as one commit and returns its number, waiting while a queue is full.
    ///
    /// A path may appear more than once; its records keep their order. While this call waits
    /// for room it holds the frontier back: no later commit becomes visible until this one is
    /// enqueued. On error nothing is enqueued and no commit number is taken.
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
    pub fn commit<P: AsRef<str>>(
        &mut self,
        parts: impl IntoIterator<Item = (P, M::Record)>,
    ) -> Result<u64, Error> {
        self.send(parts, Wait::Block)
    }

    /// Like [`commit`](Producer::commit), but refuses with [`Error::Full`] instead of waiting
    /// when a queue lacks room for the commit's parts; then nothing is enqueued.
    ///
    /// ```
    /// use lockstep::{merge::Sum, Error, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Sum).shards(1).queue_capacity(2).build()?;
    /// let mut producer = pipeline.producer()?;
    /// assert_eq!(producer.try_commit([("/a", 1), ("/a", 2), ("/a", 3)]),
    ///            Err(Error::CommitTooLarge { parts: 3, capacity: 2 }));
    /// assert_eq!(producer.try_commit([("/a", 1)])?, 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_commit<P: AsRef<str>>(
        &mut self,
        parts: impl IntoIterator<Item = (P, M::Record)>,
    ) -> Result<u64, Error> {
        self.send(parts, Wait::Refuse)
    }

    fn send<P: AsRef<str>>(
        &mut self,
        parts: impl IntoIterator<Item = (P, M::Record)>,
        wait: Wait,
    ) -> Result<u64, Error> {
        self.calls += 1;
        let started = self.calls.is_multiple_of(SAMPLE_EVERY).then(Instant::now);
        let result = self.stage(parts).and_then(|()| {
            if wait == Wait::Refuse {
                self.check_room()?;
            }
            self.enqueue(wait)
        });
        self.staged.clear();
        if let Some(started) = started {
            self.latency.saturating_record(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
            if self.calls.is_multiple_of(SAMPLE_EVERY * FOLD_EVERY) {
                self.shared.stats.fold_commit_latency(&mut self.latency);
            }
        }
        result
    }

    /// Validates every part and resolves its route; touches nothing shared.
    fn stage<P: AsRef<str>>(&mut self, parts: impl IntoIterator<Item = (P, M::Record)>) -> Result<(), Error> {
        self.staged.clear();
        let (max_path_len, max_record_bytes) =
            (self.shared.config.max_path_len, self.shared.config.max_record_bytes);
        for (path, record) in parts {
            let path = path.as_ref();
            if path.is_empty() {
                return Err(Error::EmptyPath);
            }
            if path.len() > max_path_len {
                return Err(Error::PathTooLong { len: path.len(), max: max_path_len });
            }
            if let Some(max) = max_record_bytes {
                if let Some(bytes) = self.shared.merge.record_bytes(&record) {
                    if bytes > max {
                        return Err(Error::RecordTooLarge { bytes, max });
                    }
                }
            }
            let route = match self.ids.get(path) {
                Some(&route) => route,
                None => self.route(path),
            };
            self.staged.push((route, record));
        }
        if self.staged.is_empty() {
            return Err(Error::EmptyCommit);
        }
        Ok(())
    }

    #[cold]
    fn route(&mut self, path: &str) -> u32 {
        let shard = shard_of(path, self.shared.config.shards);
        let id = self.next_id[shard];
        self.next_id[shard] += 1;
        let route = self.routes.len() as u32;
        self.routes.push(Route { shard: shard as u32, id, unsent: Some(Arc::from(path)) });
        self.ids.insert(path.into(), route);
        route
    }

    /// Refuses unless every part fits now. Exact: this producer is its queues' only writer.
    fn check_room(&mut self) -> Result<(), Error> {
        let queues = self.shared.lanes.of(self.slot);
        let capacity = self.shared.lanes.capacity();
        self.need.iter_mut().for_each(|n| *n = 0);
        for (route, _) in &self.staged {
            self.need[self.routes[*route as usize].shard as usize] += 1;
        }
        for (shard, &parts) in self.need.iter().enumerate() {
            if parts > capacity {
                return Err(Error::CommitTooLarge { parts, capacity });
            }
            if parts > capacity - queues[shard].len() {
                return Err(Error::Full);
            }
        }
        Ok(())
    }

    /// Takes the commit number and enqueues every staged part.
    fn enqueue(&mut self, wait: Wait) -> Result<u64, Error> {
        let shared = &*self.shared;
        let commit = shared.clock.begin(self.slot).map_err(|_| Error::Shutdown)?;
        shared.stats.stamp(commit);
        let queues = shared.lanes.of(self.slot);
        let mut failed = false;
        for (route, record) in self.staged.drain(..) {
            let route = &mut self.routes[route as usize];
            let part = Part { commit, path: route.id, name: route.unsent.take(), record };
            let queue = &queues[route.shard as usize];
            if let Err(part) = queue.push(part) {
                debug_assert!(wait == Wait::Block, "try_commit checked for room");
                if !push_waiting(shared, queue, route.shard as usize, part) {
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
        Ok(commit)
    }
}

/// Waits for room in a full queue: spin, then yield, then sleep briefly. False only if the
/// worker that drains it is gone.
#[cold]
fn push_waiting<M: Merge>(
    shared: &Shared<M>,
    queue: &ArrayQueue<Part<M::Record>>,
    shard: usize,
    mut part: Part<M::Record>,
) -> bool {
    let backoff = Backoff::new();
    loop {
        shared.bells.ring(shard);
        if backoff.is_completed() {
            if shared.has_failed() {
                return false;
            }
            std::thread::park_timeout(Duration::from_micros(50));
        } else {
            backoff.snooze();
        }
        match queue.push(part) {
            Ok(()) => return true,
            Err(back) => part = back,
        }
    }
}

impl<M: Merge> Drop for Producer<M> {
    fn drop(&mut self) {
        self.shared.stats.fold_commit_latency(&mut self.latency);
        self.shared.clock.release(self.slot);
    }
}
