//! The pipeline handle: starts the workers, hands out producers and snapshots, shuts down.

use std::fmt;
use std::future::Future;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::utils::Backoff;

use crate::builder::Builder;
use crate::config::Config;
use crate::durable::directory::Manifest;
use crate::durable::frontier::DurableState;
use crate::durable::recovery::{recover, DurableSpec};
use crate::durable::store::ShardLog;
use crate::error::Error;
use crate::ingest::bell::{Bells, Waiters};
use crate::ingest::clock::Clock;
use crate::ingest::key::PathKey;
use crate::ingest::producer::Producer;
use crate::ingest::queue::Lanes;
use crate::ingest::router::Router;
use crate::ingest::sequencer::Sequencer;
use crate::merge::Merge;
use crate::out::sink::{SharedSink, Undelivered};
use crate::out::stats::{Recorder, Stats};
use crate::read::snapshot::Snapshot;
use crate::read::view::{Layout, Views};
use crate::read::wait::{self, WaitDurable, WaitSealed};
use crate::shard::spine::Spine;
use crate::shard::worker::Worker;
use crate::shared::{Lifecycle, Shared};
use crate::sync::{Arc, AtomicBool, Ordering};

/// A running pipeline: shard workers fed by lock-free queues, publishing consistent snapshots.
/// `Pipeline` is `Send + Sync`: share it (or an `Arc` of it) between threads that take
/// snapshots and make producers; each writing thread takes its own [`Producer`].
///
/// Dropping it without [`shutdown`](Pipeline::shutdown) still drains every queue and joins the
/// workers.
///
/// ```
/// use lockstep::{merge::Concat, Pipeline};
///
/// let pipeline = Pipeline::builder(Concat::<u64>::default()).shards(2).divisor(2).build()?;
/// let mut producer = pipeline.producer()?;
/// let c = producer.commit([("/a/b", 1), ("/a/c", 2)])?;
/// let snapshot = pipeline.wait_sealed(c, std::time::Duration::from_secs(10))?;
/// assert_eq!(snapshot.read("/a/b"), Some(vec![(c, 1)]));
/// let last = pipeline.shutdown()?;
/// assert_eq!(last.frontier(), c);
/// # Ok::<(), lockstep::Error>(())
/// ```
pub struct Pipeline<M: Merge> {
    shared: Arc<Shared<M>>,
    workers: Vec<JoinHandle<Vec<Undelivered<M::Output>>>>,
    /// A sequenced pipeline's flag: set once its sequencer is taken. `None`: not sequenced.
    sequencer: Option<AtomicBool>,
}

/// Why [`Pipeline::shutdown`] did not end cleanly, with what it can still hand back.
///
/// - [`Error::Undelivered`]: every commit is in [`last`](ShutdownError::last), but the sink
///   still refused some segments after the last retry; [`undelivered`](ShutdownError::undelivered)
///   holds each of them with its output, so nothing is lost: write them elsewhere.
/// - [`Error::WorkerPanicked`]: a worker failed; `last` is `None` (not every commit became
///   visible), and `undelivered` holds the failed sink writes of the workers that did not panic.
///
/// It converts into its [`Error`], so `pipeline.shutdown()?` works in a function returning
/// `Result<_, lockstep::Error>`.
///
/// ```
/// use lockstep::{merge::Sum, Error, Pipeline, SegmentInfo, Sink, SinkError};
///
/// /// A sink whose store is down.
/// struct Down;
/// impl Sink<i64> for Down {
///     fn write(&self, _: &str, _: SegmentInfo, _: &i64) -> Result<(), SinkError> {
///         Err("the store is down".into())
///     }
/// }
///
/// let pipeline = Pipeline::builder(Sum).divisor(2).max_level(1).sink(Down).build()?;
/// let mut producer = pipeline.producer()?;
/// producer.commit([("/n", 1)])?;
/// producer.commit([("/n", 2)])?;
/// let Err(refused) = pipeline.shutdown() else { unreachable!("the sink refuses every write") };
/// assert_eq!(refused.error, Error::Undelivered { segments: 1 });
/// let kept = &refused.undelivered[0];
/// assert_eq!((&*kept.path, kept.segment, kept.output), ("/n", SegmentInfo { level: 1, start: 1, end: 2 }, 3));
/// assert_eq!(refused.last.map(|last| last.frontier()), Some(2), "every commit made it in");
/// # Ok::<(), Error>(())
/// ```
#[non_exhaustive]
pub struct ShutdownError<M: Merge> {
    /// [`Error::Undelivered`] or [`Error::WorkerPanicked`].
    pub error: Error,
    /// The sink writes still failing, each with its path, segment and output.
    pub undelivered: Vec<Undelivered<M::Output>>,
    /// The final snapshot, if every commit became visible (not after a worker panicked).
    pub last: Option<Snapshot<M>>,
}

impl<M: Merge> fmt::Debug for ShutdownError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownError")
            .field("error", &self.error)
            .field("undelivered", &self.undelivered)
            .field("last", &self.last.as_ref().map(Snapshot::frontier))
            .finish()
    }
}

impl<M: Merge> fmt::Display for ShutdownError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<M: Merge> std::error::Error for ShutdownError<M> {}

impl<M: Merge> From<ShutdownError<M>> for Error {
    fn from(refused: ShutdownError<M>) -> Self {
        refused.error
    }
}

impl<M: Merge> fmt::Debug for Pipeline<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("shards", &self.shared.config.shards)
            .field("frontier", &self.shared.views.frontier())
            .finish_non_exhaustive()
    }
}

impl<M: Merge> Pipeline<M> {
    /// Starts configuring a pipeline that compacts with `merge`.
    pub fn builder(merge: M) -> Builder<M> {
        Builder::new(merge)
    }

    pub(crate) fn start(
        config: Config,
        merge: M,
        sink: SharedSink<M::Output>,
        durable: Option<DurableSpec<M>>,
    ) -> Result<Self, Error> {
        let flush = sink.0.is_some().then_some(config.flush_level);
        let spine = || Spine::new(config.geometry.clone(), flush, config.window());
        let fresh = Router::new(config.shards, config.max_path_len);
        let (router, recovered, durable) = match durable {
            None => (Arc::new(fresh), None, None),
            Some(spec) => {
                let manifest = Manifest {
                    divisor: config.divisor,
                    max_level: config.geometry.max_level(),
                    shards: config.shards,
                    merge: std::any::type_name::<M>().to_owned(),
                    routing: fresh.routing_key(),
                };
                let (shards, max) = (config.shards, config.max_path_len);
                let with_key = |key| Arc::new(Router::with_key(shards, max, key));
                let (recovered, router) =
                    recover(&spec, manifest, with_key, spine, &merge, config.merge_budget)?;
                (router, Some(recovered), Some(spec.durability))
            }
        };
        let last = recovered.as_ref().map_or(0, |r| r.frontier);
        let layout =
            Layout { geometry: config.geometry.clone(), window: config.window(), router: router.clone() };
        let views = Views::new(config.shards, layout);
        let stats = Recorder::new(config.max_producers.saturating_mul(config.queue_capacity));
        let mut shards: Vec<(Spine<M>, Option<ShardLog<M>>)> = Vec::new();
        let mut state = None;
        match (recovered, durable) {
            (Some(recovered), Some(durability)) => {
                stats.torn_tails(recovered.torn_tails);
                for (shard, (spine, log)) in recovered.shards.into_iter().enumerate() {
                    views.publish(shard, spine.view());
                    shards.push((spine, Some(log)));
                }
                // Every shard is at `last` now: the global view is cut there.
                views.publish_global(0);
                debug_assert_eq!(views.frontier(), last);
                state = Some(DurableState::new(durability, config.shards, last, recovered.directory));
            }
            _ => shards.extend((0..config.shards).map(|_| (spine(), None))),
        }
        let shared = Arc::new(Shared {
            router,
            merge: Arc::new(merge),
            clock: Clock::after(config.max_producers, last),
            lanes: Lanes::new(config.max_producers, config.shards, config.queue_capacity),
            views,
            bells: Bells::new(config.shards),
            waiters: Waiters::new(config.max_producers),
            stats,
            sink,
            lifecycle: Lifecycle::default(),
            durable: state,
            config,
        });
        let cores = if shared.config.pin_workers {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let pin = cores.len() >= shared.config.shards;
        let mut pipeline = Pipeline { shared: shared.clone(), workers: Vec::new(), sequencer: None };
        for (shard, (spine, log)) in shards.into_iter().enumerate() {
            let core = if pin { cores.get(shard).copied() } else { None };
            let worker = Worker::new(shared.clone(), shard, spine, log)?;
            let spawned =
                std::thread::Builder::new().name(format!("lockstep-shard-{shard}")).spawn(move || {
                    if let Some(core) = core {
                        // Quietly unpinned where the OS refuses (containers, restricted masks).
                        core_affinity::set_for_current(core);
                    }
                    worker.run()
                });
            match spawned {
                Ok(handle) => {
                    shared.bells.register(shard, handle.thread().clone());
                    pipeline.workers.push(handle);
                }
                // Dropping `pipeline` stops and joins the workers already started.
                Err(error) => {
                    return Err(Error::io(format!("starting the worker thread of shard {shard}"), &error))
                }
            }
        }
        Ok(pipeline)
    }

    /// Resolves `path` once, for committing and reading by key (see [`PathKey`]): validated now
    /// (empty, longer than [`Builder::max_path_len`]), never hashed again.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyPath`] for `""`; [`Error::PathTooLong`] past
    /// [`Builder::max_path_len`] bytes. The same path always gets an equal key.
    ///
    /// ```
    /// use lockstep::{merge::Sum, Error, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Sum).max_path_len(8).build()?;
    /// let key = pipeline.key("/a")?;
    /// assert_eq!(pipeline.key("/a")?, key, "the same path, the same key");
    /// assert_eq!(pipeline.key(""), Err(Error::EmptyPath));
    /// assert_eq!(pipeline.key("/too/long"), Err(Error::PathTooLong { len: 9, max: 8 }));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn key(&self, path: &str) -> Result<PathKey, Error> {
        self.shared.router.key(path)
    }

    /// A new producer handle, for one thread (a [`Producer`] is `Send`, not `Sync`). Its slot is
    /// freed when it is dropped, for the next one to take.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyProducers`] while [`Builder::max_producers`] producers are alive;
    /// [`Error::Shutdown`] once the pipeline is shutting down; [`Error::WorkerPanicked`] once a
    /// worker has failed.
    ///
    /// ```
    /// use lockstep::{merge::Sum, Error, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Sum).max_producers(1).build()?;
    /// let first = pipeline.producer()?;
    /// assert_eq!(pipeline.producer().err(), Some(Error::TooManyProducers { max: 1 }));
    /// drop(first);
    /// let _again = pipeline.producer()?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn producer(&self) -> Result<Producer<M>, Error> {
        if self.sequencer.is_some() {
            return Err(Error::Sequenced);
        }
        Producer::new(self.shared.clone())
    }

    // ---- Sequenced pipelines (`Builder::sequenced`) ----

    /// Marks a pipeline just started as sequenced: its numbers come from its sequencer.
    pub(crate) fn into_sequenced(mut self) -> Self {
        self.sequencer = Some(AtomicBool::new(false));
        self
    }

    /// The one feeding handle of a sequenced pipeline ([`Builder::sequenced`]): it commits at
    /// given numbers (see [`Sequencer`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotSequenced`] on a pipeline built without [`Builder::sequenced`];
    /// [`Error::SequencerTaken`] on the second call, even once the first is dropped;
    /// [`Error::Shutdown`] and [`Error::WorkerPanicked`] as for [`producer`](Pipeline::producer).
    pub fn sequencer(&self) -> Result<Sequencer<M>, Error> {
        let taken = self.sequencer.as_ref().ok_or(Error::NotSequenced)?;
        // Relaxed: only the flag's own value matters; the clock slot orders what follows.
        if taken.swap(true, Ordering::Relaxed) {
            return Err(Error::SequencerTaken);
        }
        Sequencer::new(self.shared.clone())
    }

    // ---- end of sequenced pipelines ----

    /// The latest published snapshot: one lock-free load, never blocking writers. It cannot
    /// fail: after a worker failure it is the last snapshot published before it.
    pub fn snapshot(&self) -> Snapshot<M> {
        Snapshot::new(self.shared.views.global(), self.shared.merge.clone())
    }

    /// Waits until the published frontier reaches `commit` and returns that snapshot.
    ///
    /// The calling thread spins briefly, then parks until the worker that publishes a frontier
    /// at or past `commit` wakes it (never polling). It returns the snapshot as soon as one
    /// covers `commit` (at once if one already does,
    /// whatever the timeout, and even after a worker failed: a snapshot is sound once
    /// published). A timeout too long for the clock to add — [`Duration::MAX`] is the way to
    /// say it — waits without a deadline, also for a commit no producer has issued yet.
    ///
    /// # Errors
    ///
    /// - [`Error::WorkerPanicked`] once a worker has failed and `commit` is not visible, since
    ///   nothing becomes visible after that;
    /// - [`Error::Timeout`] after `timeout`, with the frontier then.
    ///
    /// Shutdown cannot end a wait: [`shutdown`](Pipeline::shutdown) and dropping take the
    /// pipeline by value, so they cannot run while a waiter borrows it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use lockstep::{merge::Sum, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Sum).build()?;
    /// let mut producer = pipeline.producer()?;
    /// let commit = producer.commit([("/a", 2)])?;
    /// assert_eq!(pipeline.wait_sealed(commit, Duration::MAX)?.read("/a"), Some(2));
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    ///
    /// ```compile_fail
    /// # use std::time::Duration;
    /// # use lockstep::{merge::Sum, Pipeline};
    /// let pipeline = Pipeline::builder(Sum).build()?;
    /// std::thread::scope(|scope| {
    ///     scope.spawn(|| pipeline.wait_sealed(1, Duration::MAX));
    ///     pipeline.shutdown() // cannot move the pipeline while the waiter borrows it
    /// });
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    pub fn wait_sealed(&self, commit: u64, timeout: Duration) -> Result<Snapshot<M>, Error> {
        wait::wait_sealed(&self.shared, commit, timeout)
    }

    /// Waits, as a future, until the published frontier reaches `commit`, and gives that
    /// snapshot: [`wait_sealed`](Pipeline::wait_sealed) for async code, with the same outcomes
    /// but no timeout. Compose one with your runtime's timer (`tokio::time::timeout`, a
    /// `select!` against a sleep); dropping the future stops the wait and leaves nothing behind.
    ///
    /// No runtime is needed: the worker that moves the frontier wakes the task's waker, and
    /// the future never polls. It is `Send` and `Unpin`, and borrows the pipeline, so shutdown
    /// cannot run while it is alive (as with `wait_sealed`). (The README's "Async" section
    /// shows the example below.)
    ///
    /// # Errors
    ///
    /// [`Error::WorkerPanicked`] once a worker has failed and `commit` is not visible.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use lockstep::{merge::Sum, Pipeline};
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let pipeline = Pipeline::builder(Sum).build()?;
    ///     let mut producer = pipeline.producer()?;
    ///     // Awaits room if a queue is full; dropping the future leaves nothing half-committed.
    ///     let commit = producer.commit_async([("/hits", 1), ("/bytes", 512)]).await?;
    ///     // Resolves once a snapshot covers the commit; the timeout is the runtime's.
    ///     let snapshot = tokio::time::timeout(Duration::from_secs(10), pipeline.wait_sealed_async(commit)).await??;
    ///     assert_eq!(snapshot.read("/bytes"), Some(512));
    ///     Ok(())
    /// }
    /// ```
    pub fn wait_sealed_async(
        &self,
        commit: u64,
    ) -> impl Future<Output = Result<Snapshot<M>, Error>> + Send + Unpin + '_ {
        WaitSealed::new(&self.shared, commit)
    }

    /// Every commit at or below it is durable at the pipeline's [`Durability`](crate::Durability):
    /// its turn is in every shard's log. 0 for a pipeline that is not durable.
    pub fn durable_frontier(&self) -> u64 {
        self.shared.durable.as_ref().map_or(0, DurableState::frontier)
    }

    /// Waits until every commit up to `commit` is durable, and returns the durable frontier
    /// then (`>= commit`). This is the acknowledgment a durable pipeline's users wait for:
    /// after any crash the durability level covers, the recovered frontier is at least it.
    ///
    /// # Errors
    ///
    /// [`Error::NotDurable`] on a pipeline built without [`Builder::durable`]; the
    /// [`Error::Io`] that stopped durability for good (a log write or sync failed: nothing
    /// after it becomes durable); [`Error::WorkerPanicked`]; [`Error::Timeout`] after
    /// `timeout` (its `frontier` is the durable frontier then). [`Duration::MAX`] waits without
    /// a deadline.
    pub fn wait_durable(&self, commit: u64, timeout: Duration) -> Result<u64, Error> {
        wait::wait_durable(&self.shared, commit, timeout)
    }

    /// Waits, as a future, until every commit up to `commit` is durable, and gives the durable
    /// frontier then (`>= commit`): [`wait_durable`](Pipeline::wait_durable) for async code,
    /// with the same outcomes but no timeout (compose one with your runtime's timer; dropping
    /// the future stops the wait and leaves nothing behind). The worker whose log write or
    /// sync moves the durable frontier wakes the task; the future never polls.
    ///
    /// # Errors
    ///
    /// [`Error::NotDurable`] on a pipeline built without [`Builder::durable`]; the
    /// [`Error::Io`] that stopped durability for good; [`Error::WorkerPanicked`].
    ///
    /// ```
    /// use lockstep::{merge::Sum, Error, Pipeline};
    ///
    /// # fn main() -> Result<(), Error> {
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    /// let pipeline = Pipeline::builder(Sum).build()?; // not durable
    /// let outcome = runtime.block_on(pipeline.wait_durable_async(1));
    /// assert_eq!(outcome, Err(Error::NotDurable));
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_durable_async(
        &self,
        commit: u64,
    ) -> impl Future<Output = Result<u64, Error>> + Send + Unpin + '_ {
        WaitDurable::new(&self.shared, commit)
    }

    /// The pipeline's counters and latency histograms so far, read without a lock (see
    /// [`Stats`]).
    pub fn stats(&self) -> Stats {
        self.shared.stats.read(self.shared.clock.issued(), self.shared.views.frontier())
    }

    /// Stops taking commits, drains every queue, finishes every due compaction and returns the
    /// final snapshot, whose frontier is the last commit issued.
    ///
    /// It does not wait for producers to be dropped: a producer used afterwards gets
    /// [`Error::Shutdown`], and one waiting on a full queue finishes its commit (which is then
    /// in the final snapshot).
    ///
    /// # Errors
    ///
    /// A [`ShutdownError`] that hands back what it can: [`Error::Undelivered`] with every sink
    /// write still failing after its last retry (and the final snapshot), or
    /// [`Error::WorkerPanicked`]. Dropping the pipeline instead of shutting it down drops such
    /// writes (they stay counted in [`Stats::sink_failures`](crate::Stats::sink_failures)).
    pub fn shutdown(mut self) -> Result<Snapshot<M>, ShutdownError<M>> {
        let Finished { panicked, undelivered } = self.finish();
        if panicked {
            return Err(ShutdownError { error: Error::WorkerPanicked, undelivered, last: None });
        }
        let view = self.shared.views.global();
        debug_assert_eq!(view.frontier, self.shared.clock.issued());
        let last = Snapshot::new(view, self.shared.merge.clone());
        if undelivered.is_empty() {
            return Ok(last);
        }
        let error = Error::Undelivered { segments: undelivered.len() };
        Err(ShutdownError { error, undelivered, last: Some(last) })
    }

    /// Closes the clock, lets the workers finish everything and joins them.
    fn finish(&mut self) -> Finished<M::Output> {
        let mut finished = Finished { panicked: false, undelivered: Vec::new() };
        if self.workers.is_empty() {
            return finished;
        }
        let shared = &self.shared;
        let last = shared.clock.close();
        // Tasks awaiting room have no commit number yet: they find the clock closed and give up.
        shared.waiters.wake_all();
        // Commits already under way finish: the workers keep draining their queues.
        let backoff = Backoff::new();
        while !shared.clock.all_idle() {
            if backoff.is_completed() {
                std::thread::sleep(Duration::from_micros(50));
            } else {
                backoff.snooze();
            }
        }
        shared.lifecycle.finish_at(last);
        shared.bells.ring_all();
        let mut panicked = false;
        for worker in self.workers.drain(..) {
            match worker.join() {
                Ok(undelivered) => finished.undelivered.extend(undelivered),
                Err(_) => panicked = true,
            }
        }
        finished.panicked = panicked || shared.lifecycle.has_failed();
        finished
    }
}

/// How the workers ended.
struct Finished<O> {
    /// A worker panicked: not every commit became visible.
    panicked: bool,
    /// Sink writes still failing.
    undelivered: Vec<Undelivered<O>>,
}

impl<M: Merge> Drop for Pipeline<M> {
    fn drop(&mut self) {
        // Errors have nowhere to go from a drop; `shutdown` reports them and hands back the
        // undelivered sink writes.
        let _ = self.finish();
    }
}
