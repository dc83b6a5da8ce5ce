//! A shard's batch files saved on a thread of its own: the worker hands over a file's batches
//! and goes on draining, sealing and publishing, while this thread encodes the file, writes it
//! under its temporary name, syncs it, renames it, syncs the directory, and then removes the log
//! segments the files now cover (`crate::durable::checkpoint`, `crate::durable::writer`).
//!
//! A file is several fsyncs and an encoding of every top-level batch in its range: done inline,
//! it stalled the worker for as long, and at a fixed rate every commit queued behind the stall
//! waited with it (perf/README.md, "Batch files off the worker").
//!
//! One file at a time: the worker hands over the next only once this thread reports the last
//! saved (a file starts where the one before it ended, so their order is their ranges' order).
//! The segments removed after a file are the ones it covers, named by the worker when it hands
//! the file over, and removed only once the file and its directory entry are synced: oldest
//! first, the directory synced after each, so a power cut leaves no gap.
//!
//! Under a retention window the thread also replaces the files the window left by the names
//! file (`crate::durable::checkpoint`, [`Job::Expire`]): one job at a time either way.
//!
//! A failed save or removal is reported once and ends the thread, as a failed log write does:
//! durability stops for good, and what the files and the log already hold stays.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::durable::checkpoint::Checkpoint;
use crate::durable::format::Tip;
use crate::durable::recovery::Persist;
use crate::durable::storage::Storage;
use crate::durable::writer::remove_segments;
use crate::error::Error;
use crate::merge::Merge;
use crate::shard::batch::Batch;
use crate::sync::Arc;

/// What the saving thread reports: the error that ended it.
pub(crate) type OnFailed = Box<dyn Fn(Error) + Send + Sync>;

/// A batch file to save: the shard's top-level batches from the files' end to `end`, the path
/// names interned since the files' end, and the log segments to remove once it is saved.
pub(crate) struct File<M: Merge> {
    pub(crate) batches: Vec<Arc<Batch<M>>>,
    pub(crate) end: u64,
    pub(crate) names: Vec<Arc<str>>,
    pub(crate) covered: Vec<PathBuf>,
}

/// What the worker hands the thread.
pub(crate) enum Job<M: Merge> {
    /// Save a batch file.
    Save(File<M>),
    /// Replace every file ending at or below `through` by the names file (`names`: the
    /// shard's names from id 0 on, at least as many as those files name).
    Expire { through: u64, names: Vec<Arc<str>> },
}

/// The worker's end of a shard's saving thread; dropping it lets the thread finish the job it
/// holds, then stops and joins it.
pub(crate) struct Saver<M: Merge> {
    shared: Arc<(Mutex<Slot<M>>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl<M: Merge> std::fmt::Debug for Saver<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = lock(&self.shared);
        f.debug_struct("Saver").field("saved", &slot.saved).field("busy", &slot.busy).finish()
    }
}

/// What passes between the worker and the thread.
struct Slot<M: Merge> {
    /// The job handed over and not yet taken by the thread.
    job: Option<Job<M>>,
    /// A job was handed over and is not done yet.
    busy: bool,
    /// Where the saved files end.
    saved: Tip,
    /// The thread ended on an error: `busy` stays, nothing more is saved.
    failed: bool,
    stop: bool,
}

fn lock<M: Merge>(shared: &(Mutex<Slot<M>>, Condvar)) -> MutexGuard<'_, Slot<M>> {
    // A panic while holding it leaves a consistent slot behind (plain values, set whole).
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<M: Persist> Saver<M> {
    /// Starts saving shard `shard`'s files to `files`, encoding outputs with `merge` and files of
    /// top level `level`; `storage` removes the segments each file covers.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the OS refuses the thread.
    pub(crate) fn start<S: Storage>(
        shard: usize,
        mut files: Checkpoint<S>,
        merge: Arc<M>,
        level: u32,
        storage: S,
        on_failed: OnFailed,
    ) -> Result<Self, Error> {
        let slot = Slot { job: None, busy: false, saved: files.tip(), failed: false, stop: false };
        let shared = Arc::new((Mutex::new(slot), Condvar::new()));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("lockstep-save-{shard}"))
            .spawn(move || {
                while let Some(job) = next(&theirs) {
                    let saved = match job {
                        // A user's `Serialize` may panic: that file is then refused as one whose
                        // output does not encode, not a thread gone quiet.
                        Job::Save(file) => catch_unwind(AssertUnwindSafe(|| {
                            files.save(&*merge, &file.batches, file.end, level, &file.names)
                        }))
                        .unwrap_or_else(|_| Err(panicked(shard, file.end)))
                        .and_then(|()| remove_segments(&storage, &file.covered)),
                        Job::Expire { through, names } => files.expire(through, level, &names),
                    };
                    if let Err(error) = saved {
                        on_failed(error);
                        lock(&theirs).failed = true;
                        theirs.1.notify_all();
                        return; // `busy` stays: nothing more is saved
                    }
                    let mut slot = lock(&theirs);
                    (slot.saved, slot.busy) = (files.tip(), false);
                    drop(slot);
                    theirs.1.notify_all();
                }
            })
            .map_err(|e| Error::io(format!("starting the saving thread of shard {shard}"), &e))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Where the saved files end, and whether a file is still being saved.
    pub(crate) fn saved(&self) -> (Tip, bool) {
        let slot = lock(&self.shared);
        (slot.saved, slot.busy)
    }

    /// Waits until the file handed over is saved, for at most `timeout`; true if it is (or
    /// none was), false if the time ran out or the thread failed.
    pub(crate) fn wait_saved(&self, timeout: std::time::Duration) -> bool {
        let slot = lock(&self.shared);
        let (slot, _) = self
            .shared
            .1
            .wait_timeout_while(slot, timeout, |slot| slot.busy && !slot.failed)
            .unwrap_or_else(PoisonError::into_inner);
        !slot.busy
    }

    /// Hands `job` to the thread.
    ///
    /// # Panics
    ///
    /// If a job is still being done (the worker hands over one at a time: `saved`).
    pub(crate) fn hand(&self, job: Job<M>) {
        let mut slot = lock(&self.shared);
        assert!(!slot.busy, "a job is handed to the saving thread while the last is not done");
        (slot.job, slot.busy) = (Some(job), true);
        drop(slot);
        self.shared.1.notify_all();
    }
}

fn panicked(shard: usize, end: u64) -> Error {
    Error::Io {
        what: format!("saving the batch file of shard {shard} ending at commit {end}"),
        kind: std::io::ErrorKind::InvalidData,
        message: "an output's `Serialize` panicked".to_owned(),
    }
}

/// The next job, waiting for one; `None` once stopped with nothing left to do.
fn next<M: Merge>(shared: &(Mutex<Slot<M>>, Condvar)) -> Option<Job<M>> {
    let mut slot = lock(shared);
    loop {
        if let Some(job) = slot.job.take() {
            return Some(job);
        }
        if slot.stop {
            return None;
        }
        slot = shared.1.wait(slot).unwrap_or_else(PoisonError::into_inner);
    }
}

impl<M: Merge> Drop for Saver<M> {
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.1.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic there (in a user's `Serialize`) saved nothing more; the log still holds it.
            let _ = thread.join();
        }
    }
}
