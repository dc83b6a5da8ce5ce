//! Counters and latency histograms, readable while the pipeline runs.
//!
//! Nothing here takes a lock, on either side. Producers sample one commit in [`SAMPLE_EVERY`]
//! into a histogram of their own and fold it into the shared one now and then; workers record
//! once per loop turn. Shared histograms are [`AtomicHistogram`]s (one relaxed add per value),
//! counters are relaxed atomics, and [`Recorder::read`] copies them out while they keep
//! counting. The one string, the last sink error, sits in an `ArcCell`, replaced on a failure.

use std::time::Instant;

use hdrhistogram::Histogram;

use crate::out::histogram::{self, AtomicHistogram};
use crate::sync::{Arc, ArcCell, AtomicU64, Ordering};

/// Producers time one commit in this many, and stamp it for the commit-to-visible figure.
pub(crate) const SAMPLE_EVERY: u64 = 16;
/// Stamped commits remembered for the commit-to-visible figure, at least.
const MIN_STAMPS: usize = 1024;
/// Stamped commits remembered at most (16 MiB of stamps).
const MAX_STAMPS: usize = 1 << 20;
/// Samples one publish records at most (the newest of the commits it makes visible).
const PER_PUBLISH: u64 = 1024;

/// A reading of the pipeline's figures. Latencies are in nanoseconds.
///
/// [`Pipeline::stats`](crate::Pipeline::stats) takes it without a lock and without stopping
/// anything: every counter and histogram is an atomic that producers and workers add to, and the
/// reading copies them out while they keep counting (so two figures of one reading may be a few
/// records apart). The histograms are [`hdrhistogram`](crate::hdrhistogram) histograms (1 ns to
/// an hour, two significant digits). [`write_prometheus`](Stats::write_prometheus) and
/// [`write_hgrm`](Stats::write_hgrm) write them out; [`report`](Stats::report) gives the same
/// figures as plain numbers ([`StatsReport`](crate::StatsReport), serializable with the
/// `serde` feature).
///
/// ```
/// use lockstep::{merge::Sum, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let mut producer = pipeline.producer()?;
/// let mut last = 0;
/// for i in 0..1000 {
///     last = producer.commit([("/a", i)])?;
/// }
/// pipeline.wait_sealed(last, std::time::Duration::MAX)?;
/// let stats = pipeline.stats();
/// assert_eq!((stats.commits, stats.records), (1000, 1000));
/// let p99 = stats.visible_latency.value_at_quantile(0.99);
/// println!("commit-to-visible p99: {} µs", p99 / 1000);
/// # Ok::<(), lockstep::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stats {
    /// Commits issued.
    pub commits: u64,
    /// Records handed to workers.
    pub records: u64,
    /// The published frontier.
    pub frontier: u64,
    /// Duration of `commit` / `try_commit` calls (one call in 16 is timed).
    pub commit_latency: Histogram<u64>,
    /// From taking a commit number to the global snapshot including it (one commit in 16; when
    /// one publish covers more than 16,384 commits, only the newest 1,024 samples count). The
    /// worker records a publish's samples just after the publish, so a reading taken the moment
    /// a commit becomes visible (right after `wait_sealed` returns) may not hold them yet.
    pub visible_latency: Histogram<u64>,
    /// Parts a worker drained in one loop turn (turns that drained nothing are not counted).
    pub batch_size: Histogram<u64>,
    /// Time a worker spent forming and merging batches in one loop turn (turns that did neither
    /// are not counted).
    pub compaction: Histogram<u64>,
    /// Parts waiting in a worker's queues at the start of a loop turn.
    pub queue_depth: Histogram<u64>,
    /// Segments the sink accepted.
    pub sink_writes: u64,
    /// Sink writes that failed (each retry counts).
    pub sink_failures: u64,
    /// Segments dropped from memory by the retention setting after the sink took them.
    pub segments_dropped: u64,
    /// The last error a sink reported, if any.
    pub last_sink_error: Option<String>,
    /// Times a worker found nothing to do for [`Builder::idle_spin`](crate::Builder::idle_spin)
    /// and parked.
    pub worker_parks: u64,
    /// Torn log tails (the last turns of a shard's newest log segment, cut short or failing
    /// their checksum, as a crash mid-write leaves them) dropped when the durable pipeline was
    /// opened.
    pub torn_tails: u64,
}

/// The shared side of [`Stats`].
#[derive(Debug)]
pub(crate) struct Recorder {
    start: Instant,
    records: AtomicU64,
    sink_writes: AtomicU64,
    sink_failures: AtomicU64,
    segments_dropped: AtomicU64,
    worker_parks: AtomicU64,
    torn_tails: AtomicU64,
    commit_latency: AtomicHistogram,
    visible_latency: AtomicHistogram,
    batch_size: AtomicHistogram,
    compaction: AtomicHistogram,
    queue_depth: AtomicHistogram,
    last_sink_error: ArcCell<Option<String>>,
    /// Stamped commits, indexed by `commit / SAMPLE_EVERY` (see [`Stamp`]).
    stamps: Box<[AtomicU64]>,
}

/// A stamped commit's time, packed with its lap around the ring into one word, so that a
/// reader never pairs one commit with another's time (two words, stored and loaded apart,
/// could be).
///
/// The low [`Stamp::TIME_BITS`] bits hold the nanoseconds since the recorder started, modulo
/// 2^48; the high 16 bits the commit's lap modulo 2^16. A slot read for commit `c` holds `c`'s
/// stamp or a later one (`c`'s stamp happens before any publish that covers `c`: the queues
/// and the clock order it). A later one is told apart by its lap unless it is a multiple of
/// 2^16 laps later — at least 2^16 × 16 × 1024 = 2^30 commits after `c`, stamped while `c` was
/// not yet visible: then the sample reads too short. A latency over 2^48 ns (78 hours) would
/// read modulo that. Both bounds are far past what a statistic needs.
struct Stamp;

impl Stamp {
    const TIME_BITS: u32 = 48;
    const TIME: u64 = (1 << Self::TIME_BITS) - 1;
    /// No commit's lap matches it until 2^16 laps have passed: it reads as never stamped.
    const EMPTY: u64 = u64::MAX;

    fn pack(lap: u64, nanos: u64) -> u64 {
        (lap << Self::TIME_BITS) | (nanos & Self::TIME)
    }

    /// The latency of the commit on `lap` whose slot holds `stamp`, read at `now`; `None` if
    /// the slot holds another commit's stamp (or none).
    fn latency(stamp: u64, lap: u64, now: u64) -> Option<u64> {
        if stamp == Self::EMPTY || stamp >> Self::TIME_BITS != lap & 0xffff {
            return None;
        }
        // Modulo 2^48 on both sides; exact below 78 hours.
        Some(now.wrapping_sub(stamp) & Self::TIME)
    }
}

/// What one worker loop turn did, recorded in one go.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    pub(crate) drained: u64,
    pub(crate) queued: u64,
    pub(crate) merge_nanos: Option<u64>,
}

impl Recorder {
    /// A recorder whose stamp ring covers `in_flight` commits: as many as can be issued and
    /// not yet visible while every queue is full (a smaller ring lost every sample once the
    /// frontier lagged the counter by more than it: from 4 producers on, in a closed loop).
    pub(crate) fn new(in_flight: usize) -> Self {
        // Four times over: parts drained but not yet sealed wait at the worker too.
        let stamps = (in_flight.saturating_mul(4) / SAMPLE_EVERY as usize).clamp(MIN_STAMPS, MAX_STAMPS);
        let stamps = stamps.next_power_of_two();
        Self {
            start: Instant::now(),
            records: AtomicU64::new(0),
            sink_writes: AtomicU64::new(0),
            sink_failures: AtomicU64::new(0),
            segments_dropped: AtomicU64::new(0),
            worker_parks: AtomicU64::new(0),
            torn_tails: AtomicU64::new(0),
            commit_latency: AtomicHistogram::new(),
            visible_latency: AtomicHistogram::new(),
            batch_size: AtomicHistogram::new(),
            compaction: AtomicHistogram::new(),
            queue_depth: AtomicHistogram::new(),
            last_sink_error: ArcCell::new(Arc::new(None)),
            stamps: (0..stamps).map(|_| AtomicU64::new(Stamp::EMPTY)).collect(),
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Remembers when `commit` was taken, if it is one of the sampled commits.
    pub(crate) fn stamp(&self, commit: u64) {
        if commit.is_multiple_of(SAMPLE_EVERY) {
            let (slot, lap) = self.slot(commit);
            // Relaxed: one word, so a reader never pairs a commit with another's time; the
            // hand-off to the publisher that reads it is ordered by the queues and the clock.
            self.stamps[slot].store(Stamp::pack(lap, self.nanos()), Ordering::Relaxed);
        }
    }

    /// The ring slot of a stamped commit and its lap around the ring.
    fn slot(&self, commit: u64) -> (usize, u64) {
        let index = commit / SAMPLE_EVERY;
        let len = self.stamps.len() as u64;
        ((index % len) as usize, index / len)
    }

    /// Records commit-to-visible latency for the stamped commits in `(before, after]`.
    pub(crate) fn visible(&self, before: u64, after: u64) {
        let first = (before / SAMPLE_EVERY + 1) * SAMPLE_EVERY;
        let last = after / SAMPLE_EVERY * SAMPLE_EVERY;
        if first > last {
            return;
        }
        let now = self.nanos();
        // The newest samples only: at most the ring's, and at most PER_PUBLISH of them, so a
        // publish that makes many commits visible at once records a bounded number.
        let kept = (self.stamps.len() as u64).min(PER_PUBLISH);
        let first = first.max(last.saturating_sub((kept - 1) * SAMPLE_EVERY));
        for commit in (first..=last).step_by(SAMPLE_EVERY as usize) {
            let (slot, lap) = self.slot(commit);
            // Relaxed: see `stamp`.
            let stamp = self.stamps[slot].load(Ordering::Relaxed);
            if let Some(nanos) = Stamp::latency(stamp, lap, now) {
                self.visible_latency.record(nanos);
            }
        }
    }

    /// Folds a producer's own commit-latency histogram in, and empties it.
    pub(crate) fn fold_commit_latency(&self, local: &mut Histogram<u64>) {
        self.commit_latency.add(local);
        local.reset();
    }

    /// A histogram for a producer's own samples, in the shared histograms' layout.
    pub(crate) fn local_histogram() -> Histogram<u64> {
        histogram::histogram()
    }

    pub(crate) fn turn(&self, turn: &Turn) {
        if turn.drained == 0 && turn.merge_nanos.is_none() {
            return;
        }
        // Relaxed: a counter read only for statistics.
        self.records.fetch_add(turn.drained, Ordering::Relaxed);
        if turn.drained > 0 {
            self.batch_size.record(turn.drained);
            self.queue_depth.record(turn.queued);
        }
        if let Some(nanos) = turn.merge_nanos {
            self.compaction.record(nanos);
        }
    }

    pub(crate) fn sink_write(&self, result: &Result<(), crate::out::sink::SinkError>) {
        // Relaxed: counters read only for statistics.
        match result {
            Ok(()) => self.sink_writes.fetch_add(1, Ordering::Relaxed),
            Err(error) => {
                self.last_sink_error.store(Arc::new(Some(error.to_string())));
                self.sink_failures.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// Counts `count` sink writes that succeeded (a worker adds a turn's at once).
    pub(crate) fn sink_writes(&self, count: u64) {
        // Relaxed: a counter read only for statistics.
        self.sink_writes.fetch_add(count, Ordering::Relaxed);
    }

    pub(crate) fn parked(&self) {
        // Relaxed: a counter read only for statistics.
        self.worker_parks.fetch_add(1, Ordering::Relaxed);
    }

    /// Torn log tails recovery dropped.
    pub(crate) fn torn_tails(&self, tails: u64) {
        // Relaxed: a counter read only for statistics.
        self.torn_tails.fetch_add(tails, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self, segments: u64) {
        // Relaxed: a counter read only for statistics.
        self.segments_dropped.fetch_add(segments, Ordering::Relaxed);
    }

    /// Copies every figure out, without a lock and without stopping the writers.
    pub(crate) fn read(&self, commits: u64, frontier: u64) -> Stats {
        Stats {
            commits,
            // Relaxed: statistics.
            records: self.records.load(Ordering::Relaxed),
            frontier,
            commit_latency: self.commit_latency.read(),
            visible_latency: self.visible_latency.read(),
            batch_size: self.batch_size.read(),
            compaction: self.compaction.read(),
            queue_depth: self.queue_depth.read(),
            sink_writes: self.sink_writes.load(Ordering::Relaxed),
            sink_failures: self.sink_failures.load(Ordering::Relaxed),
            segments_dropped: self.segments_dropped.load(Ordering::Relaxed),
            last_sink_error: (*self.last_sink_error.load()).clone(),
            worker_parks: self.worker_parks.load(Ordering::Relaxed),
            torn_tails: self.torn_tails.load(Ordering::Relaxed),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A commit's stamp is read for that commit only: a later commit on the same slot (a later
    /// lap) or an empty slot records nothing, and the time survives the 48-bit wrap.
    #[test]
    fn a_stamp_pairs_with_its_own_commit_only() {
        let recorder = Recorder::new(0);
        let len = recorder.stamps.len() as u64;
        let (commit, later) = (3 * SAMPLE_EVERY, 3 * SAMPLE_EVERY + len * SAMPLE_EVERY);
        let (slot, lap) = recorder.slot(commit);
        assert_eq!(recorder.slot(later), (slot, lap + 1), "the same slot, the next lap");
        assert_eq!(Stamp::latency(Stamp::EMPTY, lap, 100), None, "never stamped");
        assert_eq!(Stamp::latency(Stamp::pack(lap, 40), lap, 100), Some(60));
        assert_eq!(Stamp::latency(Stamp::pack(lap + 1, 40), lap, 100), None, "a later commit's time");
        let wrap = 1 << Stamp::TIME_BITS;
        assert_eq!(Stamp::latency(Stamp::pack(lap, wrap - 10), lap, wrap + 5), Some(15), "across the wrap");

        // Through the recorder: the slot overwritten by the later commit gives the earlier
        // commit no sample; its own commit gets one.
        recorder.stamp(commit);
        recorder.stamp(later);
        recorder.visible(commit - 1, commit);
        assert_eq!(recorder.visible_latency.read().len(), 0, "paired with the later commit's time");
        recorder.visible(later - 1, later);
        assert_eq!(recorder.visible_latency.read().len(), 1);
    }
}
