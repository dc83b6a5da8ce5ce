//! The builder: every setting, its default, and the checks that refuse a config that cannot work
//! (the limits are in `crate::config`).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{
    Config, DEFAULT_MERGE_BUDGET, MAX_PATH_LEN, MAX_PRODUCERS, MAX_QUEUES, MAX_QUEUE_BYTES,
    MAX_QUEUE_CAPACITY, MAX_SHARDS,
};
use crate::durable::recovery::{Durability, DurableSpec};
use crate::error::Error;
use crate::ingest::queue::QueuedPart;
use crate::merge::{Merge, Restore};
use crate::out::sink::{Retention, SharedSink, Sink};
use crate::pipeline::Pipeline;
use crate::tier::Geometry;

/// Configures and starts a [`Pipeline`]. Every setting has a default, so
/// `Pipeline::builder(merge).build()` works. A plain value: `Send + Sync` (a [`Merge`] and a
/// [`Sink`] are both), so it may be made on one thread and built on another.
///
/// ```
/// use lockstep::{merge::Concat, Pipeline};
///
/// let pipeline = Pipeline::builder(Concat::<Vec<u8>>::default())
///     .shards(2)
///     .divisor(4)
///     .max_level(3)
///     .queue_capacity(4096)
///     .pin_workers(false)
///     .build()?;
/// # Ok::<(), lockstep::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<M: Merge> {
    merge: M,
    shards: usize,
    divisor: u64,
    max_level: u32,
    queue_capacity: usize,
    pin_workers: bool,
    max_producers: usize,
    max_path_len: usize,
    max_record_bytes: Option<usize>,
    flush_level: Option<u32>,
    retention: Retention,
    merge_budget: usize,
    idle_spin: Duration,
    sink: SharedSink<M::Output>,
    durable: Option<DurableSpec<M>>,
    /// Set by `durability` without `durable`: refused at `build`.
    durability: Option<Durability>,
    /// Commit numbers are given, through the pipeline's `Sequencer`.
    sequenced: bool,
}

impl<M: Merge + fmt::Debug> fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("merge", &self.merge)
            .field("shards", &self.shards)
            .field("divisor", &self.divisor)
            .field("max_level", &self.max_level)
            .field("queue_capacity", &self.queue_capacity)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl<M: Merge> Builder<M> {
    pub(crate) fn new(merge: M) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            merge,
            shards: (cores / 2).max(1),
            divisor: 4,
            max_level: 8,
            queue_capacity: 4096,
            pin_workers: false,
            max_producers: 64,
            max_path_len: 4096,
            max_record_bytes: None,
            flush_level: None,
            retention: Retention::All,
            merge_budget: DEFAULT_MERGE_BUDGET,
            idle_spin: Duration::from_micros(50),
            sink: SharedSink(None),
            durable: None,
            durability: None,
            sequenced: false,
        }
    }

    /// Shard workers, one thread each (default: half the cores this process may use, at least
    /// one, leaving the rest to producers). At most [`MAX_SHARDS`](crate::limits::MAX_SHARDS).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// How many level-`L` ranges make one level-`L+1` range (default 4; at least 2).
    pub fn divisor(mut self, divisor: u64) -> Self {
        self.divisor = divisor;
        self
    }

    /// The highest level compaction builds (default 8); `divisor^max_level` must fit a `u64`.
    ///
    /// A top-level block is the coarsest segment a path keeps, so this decides what stays in
    /// memory: with the defaults (divisor 4, [`Retention::All`]) a path keeps at most one
    /// output per 65,536 commits, however often it is written. Smaller top blocks keep more:
    /// at the former default of 4 (blocks of 256 commits), a shard of 10,000 paths kept nearly
    /// one segment per record, several times the memory level 8 keeps (`perf/README.md`). The top level is also the default [`flush_level`](Self::flush_level):
    /// a sink gets a path's data once per top-level block, so a pipeline that commits a few
    /// times a second and wants its sink written sooner sets a lower flush level. A retention
    /// window ([`Retention::Newest`]) is counted in top-level blocks, so it too spans more
    /// commits when they are larger.
    pub fn max_level(mut self, max_level: u32) -> Self {
        self.max_level = max_level;
        self
    }

    /// Parts each (producer, shard) queue holds (default 4096). A full queue makes `commit`
    /// wait and `try_commit` refuse with [`Error::Full`].
    ///
    /// A producer's queues are allocated when it is made, one per shard, so `build` refuses a
    /// capacity above [`MAX_QUEUE_CAPACITY`](crate::limits::MAX_QUEUE_CAPACITY) parts, or one
    /// whose queues for one producer would take more than
    /// [`MAX_QUEUE_BYTES`](crate::limits::MAX_QUEUE_BYTES) (shards × capacity × the record's
    /// size plus 16 bytes), with [`Error::InvalidConfig`] rather than fail to allocate later.
    ///
    /// ```
    /// use lockstep::{merge::Sum, Error, Pipeline};
    ///
    /// let huge = Pipeline::builder(Sum).queue_capacity(1 << 40).build();
    /// assert!(matches!(huge, Err(Error::InvalidConfig(_))));
    /// ```
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Pins shard worker `i` to the `i`-th core this process may use (default off). Quietly
    /// left unpinned where pinning is impossible or there are fewer cores than shards.
    pub fn pin_workers(mut self, pin: bool) -> Self {
        self.pin_workers = pin;
        self
    }

    /// Producers alive at once (default 64); [`Pipeline::producer`] refuses past it. At most
    /// [`MAX_PRODUCERS`](crate::limits::MAX_PRODUCERS), and at most
    /// [`MAX_QUEUES`](crate::limits::MAX_QUEUES) with the shards multiplied in: the clock and
    /// every worker set up a little state per producer slot when the pipeline starts.
    pub fn max_producers(mut self, max: usize) -> Self {
        self.max_producers = max;
        self
    }

    /// The longest path accepted, in bytes (default 4096; at most
    /// [`MAX_PATH_LEN`](crate::limits::MAX_PATH_LEN)).
    pub fn max_path_len(mut self, max: usize) -> Self {
        self.max_path_len = max;
        self
    }

    /// The largest record accepted, in bytes, where the merge can measure records
    /// ([`Merge::record_bytes`]); default: no limit.
    pub fn max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = Some(max);
        self
    }

    /// Where sealed segments go at the flush level (default: nowhere; they stay in memory).
    pub fn sink(mut self, sink: impl Sink<M::Output>) -> Self {
        self.sink = SharedSink(Some(Box::new(sink)));
        self
    }

    /// The level whose segments are handed to the sink (default: `max_level`).
    pub fn flush_level(mut self, level: u32) -> Self {
        self.flush_level = Some(level);
        self
    }

    /// What stays in memory once the sink has a segment (default [`Retention::All`]).
    pub fn retain(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Merge work, in segments, a worker does in one loop turn at the least (default 4096); a
    /// turn that drained records earns 64 segments of it per record on top, so merging keeps
    /// pace with what comes in. Merges are resumed across turns: this bounds how long one turn's
    /// merging can delay the next publish.
    pub fn merge_budget(mut self, inputs: usize) -> Self {
        self.merge_budget = inputs;
        self
    }

    /// How long an idle worker keeps looking for work, yielding its core between looks, before
    /// it parks until a producer wakes it (default 50 µs). Waking a parked thread costs tens of
    /// microseconds, so under a steady trickle of commits a longer look lowers commit-to-visible
    /// latency; but a worker that gets work more often than this never parks, and shows as busy
    /// (yielding) even at a low rate. `Duration::ZERO` parks as soon as a short spin finds
    /// nothing. [`Stats::worker_parks`](crate::Stats::worker_parks) counts the parks.
    ///
    /// ```
    /// use std::time::Duration;
    /// use lockstep::{merge::Sum, Pipeline};
    ///
    /// // A pipeline fed a few commits a second: save the CPU, wake per commit.
    /// let pipeline = Pipeline::builder(Sum).idle_spin(Duration::ZERO).build()?;
    /// let mut producer = pipeline.producer()?;
    /// producer.commit([("/a", 1)])?;
    /// assert_eq!(pipeline.shutdown()?.read("/a"), Some(1));
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    pub fn idle_spin(mut self, spin: Duration) -> Self {
        self.idle_spin = spin;
        self
    }

    /// How commits become durable, for a [`durable`](Self::durable) pipeline (default
    /// [`Durability::Written`]); `build` refuses it without `durable`.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = Some(durability);
        self
    }

    /// Checks the settings and starts the workers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`], naming the setting, for settings that cannot work: a divisor
    /// below 2, `divisor^max_level` past `u64`, zero or too many shards, queue capacity,
    /// producers or path length (past [`limits`](crate::limits)), queues too large to
    /// allocate, a zero merge budget, a flush level above `max_level`, a retention other than
    /// `All` without a sink, a durability without [`durable`](Builder::durable), a durable
    /// pipeline with a retention other than `All`. [`Error::Io`] if the OS refuses a worker thread. A durable
    /// pipeline also opens its directory: [`Error::Locked`] while another pipeline holds it,
    /// [`Error::Io`] for a file system refusal, [`Error::Corrupt`] or
    /// [`Error::Incompatible`] for files it will not recover from (nothing is changed then).
    ///
    /// ```
    /// use lockstep::{merge::Sum, Error, Pipeline};
    ///
    /// let refused = Pipeline::builder(Sum).divisor(1).build();
    /// assert!(matches!(refused, Err(Error::InvalidConfig(why)) if why.contains("divisor")));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn build(self) -> Result<Pipeline<M>, Error> {
        let invalid = |why: String| Err(Error::InvalidConfig(why));
        if self.divisor < 2 {
            return invalid(format!("divisor must be at least 2, not {}", self.divisor));
        }
        let Some(geometry) = Geometry::new(self.divisor, self.max_level) else {
            return invalid(format!("divisor^max_level ({}^{}) overflows u64", self.divisor, self.max_level));
        };
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            return invalid(format!("shards must be 1 to {MAX_SHARDS}, not {}", self.shards));
        }
        if !(1..=MAX_QUEUE_CAPACITY).contains(&self.queue_capacity) {
            return invalid(format!(
                "queue_capacity must be 1 to {MAX_QUEUE_CAPACITY}, not {}",
                self.queue_capacity
            ));
        }
        let part = std::mem::size_of::<QueuedPart<M::Record>>().max(1);
        let queue_bytes = self.shards.saturating_mul(self.queue_capacity).saturating_mul(part);
        if queue_bytes > MAX_QUEUE_BYTES {
            return invalid(format!(
                "one producer's queues would take {queue_bytes} bytes ({} shards x {} parts x {part} bytes), over {MAX_QUEUE_BYTES}",
                self.shards, self.queue_capacity
            ));
        }
        if !(1..=MAX_PRODUCERS).contains(&self.max_producers) {
            return invalid(format!(
                "max_producers must be 1 to {MAX_PRODUCERS}, not {}",
                self.max_producers
            ));
        }
        if self.max_producers.saturating_mul(self.shards) > MAX_QUEUES {
            return invalid(format!(
                "max_producers x shards ({} x {}) is over {MAX_QUEUES} queues",
                self.max_producers, self.shards
            ));
        }
        if !(1..=MAX_PATH_LEN).contains(&self.max_path_len) {
            return invalid(format!("max_path_len must be 1 to {MAX_PATH_LEN}, not {}", self.max_path_len));
        }
        if self.merge_budget == 0 {
            return invalid("merge_budget must be at least 1".into());
        }
        let flush_level = self.flush_level.unwrap_or(self.max_level);
        if flush_level > self.max_level {
            return invalid(format!("flush_level {flush_level} is above max_level {}", self.max_level));
        }
        if self.retention != Retention::All && self.sink.0.is_none() {
            return invalid("a retention other than All needs a sink to hand segments to".into());
        }
        let mut durable = self.durable;
        match (&mut durable, self.durability) {
            (Some(spec), Some(durability)) => spec.durability = durability,
            (None, Some(_)) => {
                return invalid("durability is a setting of a durable pipeline: call durable(dir)".into())
            }
            _ => {}
        }
        let config = Config {
            shards: self.shards,
            divisor: self.divisor,
            geometry,
            queue_capacity: self.queue_capacity,
            pin_workers: self.pin_workers,
            // A sequenced pipeline has one feeding handle, so one producer slot.
            max_producers: if self.sequenced { 1 } else { self.max_producers },
            max_path_len: self.max_path_len,
            max_record_bytes: self.max_record_bytes,
            flush_level,
            retention: self.retention,
            merge_budget: self.merge_budget,
            idle_spin: self.idle_spin,
        };
        let pipeline = Pipeline::start(config, self.merge, self.sink, durable)?;
        Ok(if self.sequenced { pipeline.into_sequenced() } else { pipeline })
    }
}

// ---- Sequenced pipelines ----

impl<M: Merge> Builder<M> {
    /// Makes the pipeline *sequenced*: its commit numbers are given, not taken. It is fed by
    /// its one [`Sequencer`](crate::Sequencer) ([`Pipeline::sequencer`]), which commits at a
    /// number strictly above the last one, and every number skipped is a commit with nothing
    /// for this pipeline; [`Pipeline::producer`] refuses with [`Error::Sequenced`]. Everything
    /// else is as in any pipeline: shards, compaction, snapshots, sink, durability (a durable
    /// sequenced pipeline reopens at its recovered frontier, and its sequencer goes on after it).
    ///
    /// Instances fed the same numbered commits from one replicated sequence (a log's offsets, a
    /// stream's sequence numbers) cut the same aligned ranges on every machine: ranges are
    /// arithmetic on commit numbers.
    ///
    /// ```
    /// use lockstep::{merge::Sum, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Sum).divisor(2).sequenced().build()?;
    /// let mut sequencer = pipeline.sequencer()?;
    /// sequencer.commit_at(5, [("/a", 1)])?;
    /// let last = { drop(sequencer); pipeline.shutdown()? };
    /// assert_eq!(last.frontier(), 5);
    /// assert_eq!(last.segments("/a")[0].end, 5);
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    pub fn sequenced(mut self) -> Self {
        self.sequenced = true;
        self
    }
}

// ---- end of sequenced pipelines ----

impl<M: Merge> Builder<M>
where
    M::Record: Serialize + DeserializeOwned,
    M::Output: Serialize + DeserializeOwned,
    M::Column: Restore<M>,
{
    /// Makes the pipeline durable in the directory `dir` (created if missing): every shard's
    /// worker logs each sealed turn there before it makes the turn visible, and
    /// [`build`](Self::build) recovers what the directory holds, so the snapshot starts at the
    /// recovered frontier and commit numbers resume after it. What survives which crash is
    /// [`Durability`]'s to say; [`Pipeline::wait_durable`] waits for it.
    ///
    /// Records are encoded with serde (postcard), so the merge's records and outputs must be
    /// `Serialize + DeserializeOwned` (a derive for a type of one's own), and its column one
    /// that [`Restore`] rebuilds (as the built-in columns are): each shard's top-level batches
    /// are saved to files once formed, and the log goes below them. The directory is
    /// locked while the pipeline lives; it remembers the divisor, max level, shards and merge
    /// it was made with, and refuses others.
    ///
    /// # Errors (from `build`)
    ///
    /// [`Error::Locked`] if another pipeline holds the directory, [`Error::Incompatible`] if it
    /// was made with other settings (the message names them) or by another format version,
    /// [`Error::Corrupt`] for damage no crash explains, [`Error::Io`] if the disk refuses.
    ///
    /// Under a retention window ([`Retention::Newest`]) the disk keeps what memory keeps: the
    /// batch files the window left are replaced by one file of their path names, so the
    /// directory stays bounded too. Reopening shows exactly the window; a wider window than the
    /// directory was kept for (or [`Retention::All`]) is refused with [`Error::Incompatible`],
    /// never shown an empty past. With a [`sink`](Self::sink),
    /// every flush-level segment reaches it at least once across crashes, and exactly once
    /// without one: a segment the sink has not taken yet is never saved to a batch file, so the
    /// log above the files still holds it, and reopening hands the sink every flush-level
    /// segment above the files again (some of which it may have had before the crash:
    /// deduplicate by `(path, segment)`, which names the same data every time). A segment the
    /// sink still refuses at [`shutdown`](crate::Pipeline::shutdown) is handed back in
    /// [`ShutdownError`](crate::ShutdownError) *and* kept for the next open.
    ///
    /// ```
    /// use std::time::Duration;
    /// use lockstep::{merge::Sum, Durability, Pipeline};
    ///
    /// let dir = std::env::temp_dir().join(format!("lockstep-doc-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let pipeline = Pipeline::builder(Sum).durable(&dir).durability(Durability::Synced).build()?;
    /// let mut producer = pipeline.producer()?;
    /// let commit = producer.commit([("/a", 2)])?;
    /// assert!(pipeline.wait_durable(commit, Duration::from_secs(10))? >= commit);
    /// drop(producer);
    /// pipeline.shutdown()?;
    ///
    /// // Reopened: everything is back, and numbering goes on.
    /// let pipeline = Pipeline::builder(Sum).durable(&dir).build()?;
    /// assert_eq!(pipeline.snapshot().read("/a"), Some(2));
    /// assert_eq!(pipeline.producer()?.commit([("/a", 1)])?, commit + 1);
    /// # drop(pipeline);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    pub fn durable(mut self, dir: impl AsRef<Path>) -> Self {
        self.durable = Some(DurableSpec::new(dir.as_ref().to_path_buf()));
        self
    }

    /// As [`durable`](Self::durable), on `storage` (a file system that forgets what was not
    /// synced, in the tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn durable_on<S: crate::durable::storage::Storage>(
        mut self,
        storage: S,
        dir: &Path,
        options: crate::durable::writer::LogOptions,
    ) -> Self {
        let mut spec = DurableSpec::on(storage, dir.to_path_buf());
        spec.options = options;
        self.durable = Some(spec);
        self
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::merge::{Concat, Sum};

    fn refused<M: Merge>(builder: Builder<M>) -> String {
        match builder.build() {
            Err(Error::InvalidConfig(why)) => why,
            Err(other) => panic!("refused with {other:?}, not InvalidConfig"),
            Ok(_) => panic!("a config past the limits was accepted"),
        }
    }

    /// Every setting that sizes an allocation is refused past its limit with a typed error,
    /// before anything is allocated (a producer of such a pipeline aborted the process).
    #[test]
    fn settings_that_size_allocations_are_bounded() {
        for capacity in [1 << 40, usize::MAX, MAX_QUEUE_CAPACITY + 1] {
            assert!(refused(Pipeline::builder(Sum).queue_capacity(capacity)).contains("queue_capacity"));
        }
        // Within the part limit, but a producer's queues over the byte limit.
        let wide =
            Pipeline::builder(Concat::<[u8; 1024]>::default()).shards(8).queue_capacity(MAX_QUEUE_CAPACITY);
        assert!(refused(wide).contains("bytes"));
        for shards in [0, MAX_SHARDS + 1, usize::MAX] {
            assert!(refused(Pipeline::builder(Sum).shards(shards)).contains("shards"));
        }
        for producers in [0, MAX_PRODUCERS + 1, usize::MAX] {
            assert!(refused(Pipeline::builder(Sum).max_producers(producers)).contains("max_producers"));
        }
        let queues = Pipeline::builder(Sum).shards(MAX_SHARDS).max_producers(MAX_PRODUCERS);
        assert!(refused(queues).contains("queues"));
        for len in [0, MAX_PATH_LEN + 1, usize::MAX] {
            assert!(refused(Pipeline::builder(Sum).max_path_len(len)).contains("max_path_len"));
        }
    }

    /// The limits themselves are accepted, and such a pipeline works.
    #[test]
    fn the_limits_themselves_work() -> Result<(), Error> {
        let pipeline = Pipeline::builder(Sum)
            .shards(1)
            .queue_capacity(MAX_QUEUE_CAPACITY)
            .max_producers(MAX_PRODUCERS)
            .max_path_len(MAX_PATH_LEN)
            .build()?;
        let mut producer = pipeline.producer()?;
        let long = "/".repeat(MAX_PATH_LEN);
        producer.commit([(long.as_str(), 2), ("/a", 3)])?;
        drop(producer);
        let last = pipeline.shutdown()?;
        assert_eq!((last.read(&long), last.read("/a")), (Some(2), Some(3)));
        Ok(())
    }
}
