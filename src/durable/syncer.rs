//! A shard's log synced on a thread of its own, so the worker never sits through an fsync.
//!
//! At `Durability::Synced` the worker writes each turn and goes on draining, sealing and
//! publishing; one fdatasync here covers every turn written since the last (group commit), and
//! only then does the shard's durable frontier move. So a slow disk delays acknowledgments
//! (`wait_durable`) rather than the queues. At `Durability::Written` the frontier moves on the
//! write, and this thread only does the rotations' syncs (below), reporting nothing but a
//! failure.
//!
//! The hand-off is a mutex and a condition variable: the worker stores the frontier it has
//! written (after `write` returned) and, when the log moved to a new segment, a handle to it and
//! the rotation's owed syncs (`crate::durable::writer::Rotation`); the thread takes them,
//! completes the rotation (the old segment whole, the directory, the new segment's header), then
//! syncs the handle (unless the rotation's own sync of the new segment, started here after the
//! frontier was taken, covers it) and reports the frontier synced. A sync covers every byte written to the
//! file before it started, so the frontier taken is synced once it returns. The order is what
//! the reader relies on (`crate::durable::reader`): no turn of a segment is reported synced
//! before the segment before it is synced whole and its own name is durable, so a power cut that
//! tears the older one leaves nothing synced in the newer, and dropping the newer whole is a
//! suffix lost, never a hole. The thread always holds the newest rotation: the writer completes
//! one before it makes the next, so the one handed over covers every rotation before it.
//!
//! A failed sync is reported once and ends the thread: nothing after it is ever reported synced
//! (a failed fsync cannot be retried safely), and the rotation keeps the error for the writer,
//! whose next sync or rotation returns it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::durable::storage::SyncHandle;
use crate::durable::writer::Rotation;
use crate::error::Error;

/// What the syncing thread reports: the frontier synced, or the error that ended it.
pub(crate) type OnSynced = Box<dyn Fn(Result<u64, Error>) + Send + Sync>;

/// What the thread reports to.
pub(crate) enum Reports {
    /// `Durability::Synced`: every frontier synced, or the error that ended the thread.
    Frontier(OnSynced),
    /// `Durability::Written`: rotations only; the error that ended the thread.
    Failure(Box<dyn Fn(Error) + Send + Sync>),
}

impl Reports {
    fn failed(&self, error: Error) {
        match self {
            Reports::Frontier(on_synced) => on_synced(Err(error)),
            Reports::Failure(on_failed) => on_failed(error),
        }
    }
}

/// The worker's end of a shard's syncing thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Syncer {
    shared: Arc<(Mutex<Target>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    /// It syncs turns and reports frontiers (`Durability::Synced`).
    frontiers: bool,
}

/// What the thread is to sync.
#[derive(Debug)]
struct Target {
    /// The segment being written.
    handle: Arc<SyncHandle>,
    /// The rotation to that segment, until the thread takes it.
    rotation: Option<Arc<Rotation>>,
    /// Every turn up to it is written.
    written: u64,
    /// Every turn up to it is synced (reported).
    synced: u64,
    stop: bool,
}

fn lock(shared: &(Mutex<Target>, Condvar)) -> MutexGuard<'_, Target> {
    // A panic while holding it leaves plain numbers and handles behind, still consistent.
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Syncer {
    /// Starts syncing `handle` (the segment being written, after `rotation` if its syncs may be
    /// owed), whose turns up to `synced` are synced already; reporting to `reports`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the OS refuses the thread.
    pub(crate) fn start(
        shard: usize,
        handle: SyncHandle,
        rotation: Option<Arc<Rotation>>,
        synced: u64,
        reports: Reports,
    ) -> Result<Self, Error> {
        let frontiers = matches!(reports, Reports::Frontier(_));
        let target = Target { handle: Arc::new(handle), rotation, written: synced, synced, stop: false };
        let shared = Arc::new((Mutex::new(target), Condvar::new()));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("lockstep-sync-{shard}"))
            .spawn(move || run(&theirs, &reports))
            .map_err(|e| Error::io(format!("starting the sync thread of shard {shard}"), &e))?;
        Ok(Self { shared, thread: Some(thread), frontiers })
    }

    /// True if the thread syncs turns and reports frontiers (`Durability::Synced`): it wants
    /// every [`written`](Self::written); otherwise only rotations.
    pub(crate) fn reports_frontiers(&self) -> bool {
        self.frontiers
    }

    /// Every turn up to `frontier` is written; to the segment `rotated` holds a handle of, if
    /// the log moved to a new one, after that rotation.
    pub(crate) fn written(&self, frontier: u64, rotated: Option<(SyncHandle, Option<Arc<Rotation>>)>) {
        let mut target = lock(&self.shared);
        target.written = frontier;
        if let Some((handle, rotation)) = rotated {
            target.handle = Arc::new(handle);
            target.rotation = rotation;
        }
        drop(target);
        self.shared.1.notify_one();
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.1.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic there was reported as nothing synced; there is nothing more to do here.
            let _ = thread.join();
        }
    }
}

/// The thread: waits for a rotation or written turns, completes the rotation, syncs the turns,
/// reports; until stopped with nothing left, or a sync fails.
fn run(shared: &(Mutex<Target>, Condvar), reports: &Reports) {
    let frontiers = matches!(reports, Reports::Frontier(_));
    loop {
        let mut target = lock(shared);
        let work =
            |target: &Target| target.rotation.is_some() || (frontiers && target.written > target.synced);
        while !work(&target) && !target.stop {
            target = shared.1.wait(target).unwrap_or_else(PoisonError::into_inner);
        }
        if !work(&target) {
            return; // stopped, and nothing is left to sync
        }
        let (handle, rotation, written) = (target.handle.clone(), target.rotation.take(), target.written);
        drop(target);
        // The rotation's own sync of the new segment, if it started here and now, covers every
        // turn up to `written` (all were written before it was taken): no second sync for them.
        let mut covered = false;
        if let Some(rotation) = rotation {
            match rotation.complete() {
                Ok(here) => covered = here,
                Err(error) => {
                    reports.failed(error);
                    return;
                }
            }
        }
        if !frontiers || written <= lock(shared).synced {
            continue;
        }
        if !covered {
            if let Err(error) = handle.sync() {
                reports.failed(Error::io("syncing a log segment", &error));
                return;
            }
        }
        lock(shared).synced = written;
        if let Reports::Frontier(on_synced) = reports {
            on_synced(Ok(written));
        }
    }
}
