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
//! so this is a consistent cut, like lockstep's frontier.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam::utils::CachePadded;

use super::tiers::{self, Tiers};
use super::{Committer, Config, Engine, Failure, Finish};
use crate::workload::Part;

#[derive(Debug)]
pub struct MutexEngine {
    shared: Arc<Shared>,
    divisor: u64,
    max_level: u32,
}

#[derive(Debug)]
struct Shared {
    index: Mutex<Index>,
    visible: CachePadded<AtomicU64>,
    divisor: usize,
    max_level: usize,
}

#[derive(Debug, Default)]
struct Index {
    last_commit: u64,
    records: u64,
    paths: HashMap<String, Tiers>,
}

#[derive(Debug)]
pub struct MutexCommitter {
    shared: Arc<Shared>,
    last: u64,
}

impl Engine for MutexEngine {
    type Committer = MutexCommitter;
    /// The commit number.
    type Ticket = u64;
    /// The published counter.
    type Look = u64;

    fn build(config: &Config) -> Result<Self, Failure> {
        let divisor = usize::try_from(config.divisor).map_err(|_| "divisor does not fit a usize")?;
        let shared = Arc::new(Shared {
            index: Mutex::new(Index::default()),
            visible: CachePadded::new(AtomicU64::new(0)),
            divisor,
            max_level: config.max_level as usize,
        });
        Ok(Self { shared, divisor: config.divisor, max_level: config.max_level })
    }

    fn committer(&self, _index: usize) -> Result<MutexCommitter, Failure> {
        Ok(MutexCommitter { shared: self.shared.clone(), last: 0 })
    }

    fn look(&self) -> u64 {
        // Acquire: pairs with the Release store under the lock.
        self.shared.visible.load(Ordering::Acquire)
    }

    fn covers(visible: &u64, commit: &u64) -> bool {
        commit <= visible
    }

    fn finish(self) -> Result<Finish, Failure> {
        let index = self.shared.index.lock().map_err(|_| "a producer panicked holding the index lock")?;
        let layout = tiers::layout(&index.paths, self.divisor, self.max_level, index.last_commit);
        Ok(Finish {
            final_commit: Some(self.look()),
            records_applied: Some(index.records),
            layout: Some(layout),
            ..Finish::default()
        })
    }
}

impl Committer for MutexCommitter {
    type Ticket = u64;

    fn commit(&mut self, parts: &mut Vec<Part>) -> Result<(), Failure> {
        let shared = &*self.shared;
        let mut index = shared.index.lock().map_err(|_| "a producer panicked holding the index lock")?;
        let index = &mut *index;
        index.last_commit += 1;
        let commit = index.last_commit;
        for (path, record) in parts.drain(..) {
            index.records += 1;
            match index.paths.get_mut(path) {
                Some(tiers) => tiers.insert(commit, record, shared.divisor, shared.max_level),
                None => {
                    let mut tiers = Tiers::default();
                    tiers.insert(commit, record, shared.divisor, shared.max_level);
                    index.paths.insert(path.to_owned(), tiers);
                }
            }
        }
        // Release, still under the lock: a reader that sees `commit` sees its inserts.
        shared.visible.store(commit, Ordering::Release);
        self.last = commit;
        Ok(())
    }

    fn ticket(&self) -> u64 {
        self.last
    }
}
