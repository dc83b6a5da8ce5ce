//! Counters and latency histograms, readable while the pipeline runs.
//!
//! Hot paths never take a shared lock per record: producers sample one commit in
//! [`SAMPLE_EVERY`] into a histogram of their own and fold it into the shared one now and then;
//! workers record once per loop turn.

use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::sync::{AtomicU64, Ordering};

/// Producers time one commit in this many, and stamp it for the commit-to-visible figure.
pub(crate) const SAMPLE_EVERY: u64 = 16;
/// Stamped commits remembered for the commit-to-visible figure.
const STAMPS: usize = 1024;

/// A reading of the pipeline's figures. Latencies are in nanoseconds.
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
    /// one publish covers more than 16,384 commits, only the newest 1,024 samples count).
    pub visible_latency: Histogram<u64>,
    /// Parts a worker drained in one loop turn (turns that drained nothing are not counted).
    pub batch_size: Histogram<u64>,
    /// Time a worker spent merging in one loop turn (turns that merged nothing are not counted).
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
}

fn histogram() -> Histogram<u64> {
    // Two significant digits up to an hour: a few kilobytes, never resized.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("static bounds are valid")
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
    commit_latency: Mutex<Histogram<u64>>,
    visible_latency: Mutex<Histogram<u64>>,
    turns: Mutex<Turns>,
    last_sink_error: Mutex<Option<String>>,
    /// `(commit, nanos since start)` of stamped commits, indexed by `commit / SAMPLE_EVERY`.
    stamps: Box<[(AtomicU64, AtomicU64)]>,
}

#[derive(Debug)]
struct Turns {
    batch_size: Histogram<u64>,
    compaction: Histogram<u64>,
    queue_depth: Histogram<u64>,
}

/// What one worker loop turn did, recorded in one go.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    pub(crate) drained: u64,
    pub(crate) queued: u64,
    pub(crate) merge_nanos: Option<u64>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            records: AtomicU64::new(0),
            sink_writes: AtomicU64::new(0),
            sink_failures: AtomicU64::new(0),
            segments_dropped: AtomicU64::new(0),
            worker_parks: AtomicU64::new(0),
            commit_latency: Mutex::new(histogram()),
            visible_latency: Mutex::new(histogram()),
            turns: Mutex::new(Turns {
                batch_size: histogram(),
                compaction: histogram(),
                queue_depth: histogram(),
            }),
            last_sink_error: Mutex::new(None),
            stamps: (0..STAMPS).map(|_| (AtomicU64::new(0), AtomicU64::new(0))).collect(),
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Remembers when `commit` was taken, if it is one of the sampled commits.
    pub(crate) fn stamp(&self, commit: u64) {
        if commit.is_multiple_of(SAMPLE_EVERY) {
            let (stamped, nanos) = &self.stamps[(commit / SAMPLE_EVERY) as usize % STAMPS];
            // Relaxed: a statistic; a torn pair is caught by the commit check in `visible`.
            nanos.store(self.nanos(), Ordering::Relaxed);
            stamped.store(commit, Ordering::Relaxed);
        }
    }

    /// Records commit-to-visible latency for the stamped commits in `(before, after]`.
    pub(crate) fn visible(&self, before: u64, after: u64) {
        let first = (before / SAMPLE_EVERY + 1) * SAMPLE_EVERY;
        let last = after / SAMPLE_EVERY * SAMPLE_EVERY;
        if first > last {
            return;
        }
        let now = self.nanos();
        // Only the newest STAMPS samples can still be in the ring.
        let first = first.max(last.saturating_sub((STAMPS as u64 - 1) * SAMPLE_EVERY));
        let Ok(mut histogram) = self.visible_latency.lock() else { return };
        for commit in (first..=last).step_by(SAMPLE_EVERY as usize) {
            let (stamped, nanos) = &self.stamps[(commit / SAMPLE_EVERY) as usize % STAMPS];
            // Relaxed: a statistic (see `stamp`).
            let at = nanos.load(Ordering::Relaxed);
            if stamped.load(Ordering::Relaxed) == commit && at <= now {
                histogram.saturating_record(now - at);
            }
        }
    }

    /// Folds a producer's own commit-latency histogram in, and empties it.
    pub(crate) fn fold_commit_latency(&self, local: &mut Histogram<u64>) {
        if let Ok(mut shared) = self.commit_latency.lock() {
            // Same bounds on both sides: adding cannot fail.
            let _ = shared.add(&*local);
        }
        local.reset();
    }

    pub(crate) fn local_histogram() -> Histogram<u64> {
        histogram()
    }

    pub(crate) fn turn(&self, turn: &Turn) {
        if turn.drained == 0 && turn.merge_nanos.is_none() {
            return;
        }
        // Relaxed: a counter read only for statistics.
        self.records.fetch_add(turn.drained, Ordering::Relaxed);
        let Ok(mut turns) = self.turns.lock() else { return };
        if turn.drained > 0 {
            turns.batch_size.saturating_record(turn.drained);
            turns.queue_depth.saturating_record(turn.queued);
        }
        if let Some(nanos) = turn.merge_nanos {
            turns.compaction.saturating_record(nanos);
        }
    }

    pub(crate) fn sink_write(&self, result: &Result<(), crate::sink::SinkError>) {
        // Relaxed: counters read only for statistics.
        match result {
            Ok(()) => self.sink_writes.fetch_add(1, Ordering::Relaxed),
            Err(error) => {
                if let Ok(mut last) = self.last_sink_error.lock() {
                    *last = Some(error.to_string());
                }
                self.sink_failures.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    pub(crate) fn parked(&self) {
        // Relaxed: a counter read only for statistics.
        self.worker_parks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self, segments: u64) {
        // Relaxed: a counter read only for statistics.
        self.segments_dropped.fetch_add(segments, Ordering::Relaxed);
    }

    pub(crate) fn read(&self, commits: u64, frontier: u64) -> Stats {
        let copy = |h: &Mutex<Histogram<u64>>| h.lock().map(|h| h.clone()).unwrap_or_else(|_| histogram());
        let (batch_size, compaction, queue_depth) = match self.turns.lock() {
            Ok(t) => (t.batch_size.clone(), t.compaction.clone(), t.queue_depth.clone()),
            Err(_) => (histogram(), histogram(), histogram()),
        };
        Stats {
            commits,
            // Relaxed: statistics.
            records: self.records.load(Ordering::Relaxed),
            frontier,
            commit_latency: copy(&self.commit_latency),
            visible_latency: copy(&self.visible_latency),
            batch_size,
            compaction,
            queue_depth,
            sink_writes: self.sink_writes.load(Ordering::Relaxed),
            sink_failures: self.sink_failures.load(Ordering::Relaxed),
            segments_dropped: self.segments_dropped.load(Ordering::Relaxed),
            last_sink_error: self.last_sink_error.lock().ok().and_then(|e| e.clone()),
            worker_parks: self.worker_parks.load(Ordering::Relaxed),
        }
    }
}
