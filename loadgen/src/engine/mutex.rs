//! Baseline: one global lock around the commit counter and the per-path index.
//!
//! This is the commit-callback design lockstep moves away from, done as well as it simply can
//! be: under one `Mutex`, a commit takes the next number, inserts each part into its path's
//! count-driven [`Tiers`] (a `HashMap<String, Tiers>` lookup; the path is copied into a
//! `String` only the first time it is seen), runs the compaction check on each insert, and
//! publishes the counter. No queue, no worker thread: producers do all the work,
//! one at a time. Compaction is count-driven, so boundaries are not aligned across paths; the
//! layout check says so, and that is expected.
//!
//! Visible: a commit is visible once the `visible` counter, stored under the lock after the
//! commit's inserts, has reached it. A reader that takes the lock sees exactly those commits,
//! so this is a consistent cut, like lockstep's frontier. A sampled commit's commit-to-visible
//! is recorded by its own thread right after that store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam::utils::CachePadded;
use hdrhistogram::Histogram;

use super::tiers::{self, Tiers};
use super::{Committer, Config, Engine, Failure, Finish};
use crate::latency::{histogram, nanos};
use crate::record::Kind;
use crate::workload::Part;

#[derive(Debug)]
pub struct MutexEngine<K: Kind> {
    shared: Arc<Shared<K>>,
    divisor: u64,
    max_level: u32,
}

#[derive(Debug)]
struct Shared<K: Kind> {
    index: Mutex<Index<K>>,
    visible: CachePadded<AtomicU64>,
    divisor: usize,
    max_level: usize,
    /// Commit-to-visible of each producer's sampled commits, nanoseconds.
    figures: Box<[Mutex<Histogram<u64>>]>,
}

#[derive(Debug)]
struct Index<K: Kind> {
    last_commit: u64,
    records: u64,
    paths: HashMap<String, Tiers<K>>,
}

#[derive(Debug)]
pub struct MutexCommitter<K: Kind> {
    shared: Arc<Shared<K>>,
    producer: usize,
}

impl<K: Kind> MutexEngine<K> {
    fn all_figures(&self) -> Histogram<u64> {
        let mut all = histogram();
        for figures in self.shared.figures.iter() {
            if let Ok(figures) = figures.lock() {
                let _ = all.add(&*figures);
            }
        }
        all
    }
}

impl<K: Kind> Engine<K> for MutexEngine<K> {
    type Committer = MutexCommitter<K>;

    fn build(config: &Config) -> Result<Self, Failure> {
        let divisor = usize::try_from(config.divisor).map_err(|_| "divisor does not fit a usize")?;
        let shared = Arc::new(Shared {
            index: Mutex::new(Index { last_commit: 0, records: 0, paths: HashMap::new() }),
            visible: CachePadded::new(AtomicU64::new(0)),
            divisor,
            max_level: config.max_level as usize,
            figures: (0..config.producers).map(|_| Mutex::new(histogram())).collect(),
        });
        Ok(Self { shared, divisor: config.divisor, max_level: config.max_level })
    }

    fn committer(&self, index: usize) -> Result<MutexCommitter<K>, Failure> {
        Ok(MutexCommitter { shared: self.shared.clone(), producer: index })
    }

    fn visible(&self) -> Histogram<u64> {
        self.all_figures()
    }

    fn frontier(&self) -> Option<u64> {
        // Acquire: pairs with the Release store under the lock.
        Some(self.shared.visible.load(Ordering::Acquire))
    }

    fn progress(&self) -> Option<String> {
        // Acquire: pairs with the Release store under the lock.
        Some(format!("published counter at {}", self.shared.visible.load(Ordering::Acquire)))
    }

    fn finish(self) -> Result<Finish, Failure> {
        let visible_latency = self.all_figures();
        let index = self.shared.index.lock().map_err(|_| "a producer panicked holding the index lock")?;
        let layout = tiers::layout(&index.paths, self.divisor, self.max_level, index.last_commit);
        Ok(Finish {
            // Acquire: pairs with the Release store under the lock.
            final_commit: Some(self.shared.visible.load(Ordering::Acquire)),
            records_applied: Some(index.records),
            layout: Some(layout),
            visible_latency,
            notes: Vec::new(),
            durable: None,
        })
    }
}

impl<K: Kind> Committer<K> for MutexCommitter<K> {
    fn commit(&mut self, parts: &mut Vec<Part<K::Record>>, stamp: Option<Instant>) -> Result<(), Failure> {
        let shared = &*self.shared;
        let mut guard = shared.index.lock().map_err(|_| "a producer panicked holding the index lock")?;
        let index = &mut *guard;
        index.last_commit += 1;
        let commit = index.last_commit;
        for (path, record) in parts.drain(..) {
            let path = path.name();
            index.records += 1;
            match index.paths.get_mut(path) {
                Some(tiers) => tiers.insert(commit, record, shared.divisor, shared.max_level),
                None => {
                    let mut tiers = Tiers::<K>::default();
                    tiers.insert(commit, record, shared.divisor, shared.max_level);
                    index.paths.insert(path.to_owned(), tiers);
                }
            }
        }
        // Release, still under the lock: a reader that sees `commit` sees its inserts.
        shared.visible.store(commit, Ordering::Release);
        // Read at the moment of visibility; recorded after the lock is released.
        let visible_at = stamp.map(|start| (start, Instant::now()));
        drop(guard);
        if let Some((start, now)) = visible_at {
            if let Ok(mut figures) = shared.figures[self.producer].lock() {
                crate::latency::record(&mut figures, nanos(now.saturating_duration_since(start)));
            }
        }
        Ok(())
    }
}
