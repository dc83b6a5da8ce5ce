//! A shard's top-level batches kept for good (`Retention::All`), and a log per path saying where
//! its segments are, so history is written once and never copied.
//!
//! Without a retention window every top-level block stays readable forever. Keeping them as
//! spine batches would make each turn and each read cost O(history); combining them into
//! ever larger runs (as a window does, `crate::shard::spine`) copies every segment `log(history)` times
//! and faults in fresh memory for each copy. Instead the spine hands each top-level batch over
//! here once: it is appended to the shard's list of *runs*, and each path it holds gets one
//! entry, `(run, index of the path in that run)`, appended to the path's *log*. Reading a path
//! is one lookup of its log, then its entries in order; a turn's work is one entry per (path,
//! batch) it hands over.
//!
//! # Orderings
//!
//! One writer (the shard's worker) appends; readers read through a view, which carries the
//! number of runs handed over before it was published. Run `r` is set (a [`OnceLock`]) before
//! any entry names it, and a view counting it is published after; so a reader that got the view
//! finds every run it counts set, and every entry naming one in the path's log. A log's entries
//! below `len` are written before `len` is stored (Release, paired with the reader's Acquire):
//! a reader may see entries newer than its view, so it must read them whole to skip them by
//! their run. When a log is full the writer copies it into one twice the size and swaps that in;
//! the old one stays complete up to the swap for readers still holding it, and a reader that got
//! a later view loads the new one (the cell's store precedes the view's).

use crate::merge::Merge;
use crate::shard::batch::Batch;
use crate::shard::batch::Found;
use crate::shard::chunks::Chunks;
use crate::sync::{Arc, ArcSlot, AtomicU64, AtomicUsize, OnceLock, Ordering};

/// Entries a path's first log has room for.
#[cfg(not(loom))]
const FIRST_ENTRIES: usize = 4;
/// One, so the loom model grows a log twice in three appends.
#[cfg(loom)]
const FIRST_ENTRIES: usize = 1;

/// One path's entries, each `run << 32 | index of the path in the run`, in run order.
struct Log {
    /// Entries written; only the writer stores it.
    len: AtomicUsize,
    entries: Box<[AtomicU64]>,
}

impl Log {
    /// A log with room for `capacity` entries, holding a copy of `old`'s.
    fn grown(old: Option<&Log>, capacity: usize) -> Self {
        // Relaxed, here and below: we are the only writer, and the new log is published by its
        // cell's store.
        let held = old.map_or(&[][..], |old| &old.entries[..old.len.load(Ordering::Relaxed)]);
        let entries: Box<[AtomicU64]> = (0..capacity)
            .map(|i| AtomicU64::new(held.get(i).map_or(0, |entry| entry.load(Ordering::Relaxed))))
            .collect();
        Self { len: AtomicUsize::new(held.len()), entries }
    }
}

/// The runs handed over and every path's log, shared by the writer and every view.
pub(crate) struct History<M: Merge> {
    /// Top-level batches in range order, each set once.
    runs: Chunks<OnceLock<Arc<Batch<M>>>>,
    /// By path id: where its segments are, if it has any here.
    logs: Chunks<ArcSlot<Log>>,
}

impl<M: Merge> History<M> {
    /// Path `id`'s segments in the first `runs` runs, ascending.
    pub(crate) fn segments(&self, id: u32, runs: usize) -> impl Iterator<Item = Found<'_, M>> + '_ {
        let log = self.logs.get(id as usize).map(ArcSlot::peek);
        // Acquire: pairs with the writer's Release, so every entry below `len` reads whole.
        let len = log.as_ref().and_then(|log| log.as_ref().map(|log| log.len.load(Ordering::Acquire)));
        let mut next = 0;
        let entries = std::iter::from_fn(move || {
            let log = log.as_ref()?.as_ref()?;
            let entry = log.entries[..len?].get(next)?;
            next += 1;
            // Relaxed: ordered by the Acquire above.
            let entry = entry.load(Ordering::Relaxed);
            let (run, index) = ((entry >> 32) as usize, entry as u32 as usize);
            // Past `runs`: handed over after the view was published.
            (run < runs).then_some((run, index))
        });
        entries.flat_map(move |(run, index)| {
            let batch = self.runs.get(run).and_then(OnceLock::get);
            let batch = batch.expect("a run is set before any view counts it");
            let (held, segments) = batch.path(index);
            debug_assert_eq!(held, id, "a log entry names its own path");
            segments.map(move |segment| (&**batch, segment))
        })
    }
}

/// The shard worker's side: appends runs and log entries.
pub(crate) struct Writer<M: Merge> {
    history: Arc<History<M>>,
    /// Runs handed over.
    runs: usize,
    /// Each path's current log (the one its cell holds), so appending loads no cell.
    logs: Vec<Option<Arc<Log>>>,
}

impl<M: Merge> Default for Writer<M> {
    fn default() -> Self {
        let history = History { runs: Chunks::default(), logs: Chunks::default() };
        Self { history: Arc::new(history), runs: 0, logs: Vec::new() }
    }
}

impl<M: Merge> Writer<M> {
    /// What a view needs: the shared history and the runs it may read.
    pub(crate) fn view(&self) -> (Arc<History<M>>, usize) {
        (self.history.clone(), self.runs)
    }

    /// Hands `batch` over: a new run, and an entry in the log of each path it holds.
    ///
    /// # Panics
    /// Past `u32::MAX` runs (at the default geometry, over a trillion commits).
    pub(crate) fn append(&mut self, batch: Arc<Batch<M>>) {
        let run = self.runs;
        assert!(run <= u32::MAX as usize, "history runs are numbered in 32 bits");
        if let Some(&last) = batch.ids().last() {
            if last as usize >= self.logs.len() {
                self.logs.resize(last as usize + 1, None);
            }
        }
        for (index, &id) in batch.ids().iter().enumerate() {
            self.push(id as usize, (run as u64) << 32 | index as u64);
        }
        // Set before any view counts it (module doc); `runs` is private to us until then.
        let _ = self.history.runs.get_or_alloc(run).set(batch);
        self.runs += 1;
    }

    fn push(&mut self, id: usize, entry: u64) {
        let log = match &self.logs[id] {
            Some(log) if log.len.load(Ordering::Relaxed) < log.entries.len() => log,
            _ => self.grow(id),
        };
        // Relaxed: we are the only writer of `len`.
        let len = log.len.load(Ordering::Relaxed);
        // Relaxed: published by the Release below.
        log.entries[len].store(entry, Ordering::Relaxed);
        // Release: a reader that sees the new `len` sees the entry whole (module doc).
        log.len.store(len + 1, Ordering::Release);
    }

    /// Swaps in a log twice the size of path `id`'s (or its first one).
    #[cold]
    fn grow(&mut self, id: usize) -> &Log {
        let old = self.logs[id].as_deref();
        let capacity = old.map_or(FIRST_ENTRIES, |old| old.entries.len() * 2);
        let log = Arc::new(Log::grown(old, capacity));
        self.history.logs.get_or_alloc(id).store(log.clone());
        self.logs[id].insert(log)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::merge::Sum;
    use crate::shard::batch::BatchBuilder;

    /// A top-level run ending at `end` holding `ids`, each with one segment of value `end`.
    fn run(end: u64, ids: &[u32]) -> Arc<Batch<Sum>> {
        let mut builder = BatchBuilder::<Sum>::blocks(1, end - 1, end);
        for &id in ids {
            builder.push(&Sum, id, end, &[], [(end, end as i64)].into_iter());
        }
        Arc::new(builder.finish())
    }

    fn ends(history: &History<Sum>, id: u32, runs: usize) -> Vec<u64> {
        history.segments(id, runs).map(|(batch, segment)| batch.end_of(segment)).collect()
    }

    #[test]
    fn a_path_finds_its_segments_in_the_runs_a_view_counts() {
        let mut writer = Writer::<Sum>::default();
        for i in 1..=100u64 {
            // Path 3 in every run, path 70 in every tenth, path 5 in none.
            let ids: &[u32] = if i % 10 == 0 { &[0, 3, 70] } else { &[0, 3] };
            writer.append(run(2 * i, ids));
        }
        let (history, runs) = writer.view();
        assert_eq!(runs, 100);
        assert_eq!(ends(&history, 3, runs), (1..=100).map(|i| 2 * i).collect::<Vec<_>>());
        assert_eq!(ends(&history, 70, runs), (1..=10).map(|i| 20 * i).collect::<Vec<_>>());
        assert_eq!(ends(&history, 3, 7), (1..=7).map(|i| 2 * i).collect::<Vec<_>>(), "an older view");
        assert!(ends(&history, 5, runs).is_empty());
        assert!(ends(&history, 1_000_000, runs).is_empty(), "an id never seen");
    }

    /// A reader reads while the writer appends and logs grow under it: at every view it sees
    /// exactly the runs the view counts, in order, never an entry of a later one.
    #[test]
    fn readers_see_exactly_their_view_while_logs_grow() {
        let mut writer = Writer::<Sum>::default();
        let published = crate::sync::ArcCell::new(Arc::new(writer.view()));
        let total = 20_000u64;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 1..=total {
                    writer.append(run(2 * i, &[1, (i % 7) as u32 + 2]));
                    published.store(Arc::new(writer.view()));
                }
            });
            let mut seen = 0;
            while seen < total as usize {
                let view = published.load();
                let (history, runs) = &*view;
                assert_eq!(ends(history, 1, *runs).len(), *runs, "path 1 is in every run");
                let sixes = ends(history, 6, *runs);
                assert!(sixes.iter().all(|&end| end <= 2 * *runs as u64 && (end / 2) % 7 == 4));
                seen = *runs;
            }
        });
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::merge::Sum;
    use crate::shard::batch::BatchBuilder;
    use loom::thread;

    /// The writer hands over three runs of path 0, growing its log twice (room for 1, 2, then
    /// 4), and publishes a view count after each; a reader reads path 0 at whatever count it
    /// loads. It must find exactly that many segments: none missing (the view's publish orders
    /// them), and none from an entry written after its view but read before it was whole (the
    /// Release on `len`; making it Relaxed lets the reader take a zeroed entry for run 0).
    #[test]
    fn loom_a_reader_sees_exactly_its_view() {
        loom::model(|| {
            let mut writer = Writer::<Sum>::default();
            let (history, _) = writer.view();
            let published = Arc::new(AtomicUsize::new(0));
            let runs: Vec<Arc<Batch<Sum>>> = (1..=3u64)
                .map(|end| {
                    let mut builder = BatchBuilder::<Sum>::blocks(0, end, end);
                    builder.push(&Sum, 0, end, &[], [(end, 1)].into_iter());
                    Arc::new(builder.finish())
                })
                .collect();
            let reader = {
                let (history, published) = (history.clone(), published.clone());
                thread::spawn(move || {
                    // Acquire: stands for loading the published view.
                    let count = published.load(Ordering::Acquire);
                    let found = history.segments(0, count);
                    let ends: Vec<u64> = found.map(|(batch, s)| batch.end_of(s)).collect();
                    assert_eq!(ends, (1..=count as u64).collect::<Vec<_>>());
                })
            };
            for (i, run) in runs.into_iter().enumerate() {
                writer.append(run);
                // Release: stands for publishing the view.
                published.store(i + 1, Ordering::Release);
            }
            reader.join().expect("reader");
        });
    }
}
