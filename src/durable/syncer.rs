//! A shard's log synced on a thread of its own, at `Durability::Synced`: the worker writes each
//! turn and goes on draining, sealing and publishing; one fdatasync here covers every turn
//! written since the last (group commit), and only then does the shard's durable frontier move.
//! So the worker never sits idle through an fsync, and a slow disk delays acknowledgments
//! (`wait_durable`) rather than the queues.
//!
//! The hand-off is a mutex and a condition variable: the worker stores the frontier it has
//! written (after `write` returned) and, when the log moved to a new segment, a handle to it;
//! the thread takes both, syncs the handle, and reports the frontier synced. A sync covers every
//! byte written to the file before it started, so the frontier taken is synced once it returns.
//! A new segment is only ever handed over after the log synced the one before it whole
//! (`crate::durable::writer`, rotation), so no turn is reported synced while an older one is
//! not. A failed sync is reported once and ends the thread: nothing after it is ever reported
//! synced (a failed fsync cannot be retried safely).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::durable::storage::SyncHandle;
use crate::error::Error;

/// What the syncing thread reports: the frontier synced, or the error that ended it.
pub(crate) type OnSynced = Box<dyn Fn(Result<u64, Error>) + Send + Sync>;

/// The worker's end of a shard's syncing thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Syncer {
    shared: Arc<(Mutex<Target>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// What the thread is to sync.
#[derive(Debug)]
struct Target {
    /// The segment being written.
    handle: Arc<SyncHandle>,
    /// Every turn up to it is written.
    written: u64,
    /// Every turn up to it is synced (reported).
    synced: u64,
    stop: bool,
}

fn lock(shared: &(Mutex<Target>, Condvar)) -> MutexGuard<'_, Target> {
    // A panic while holding it leaves plain numbers behind, still consistent.
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Syncer {
    /// Starts syncing `handle`, whose turns up to `synced` are synced already.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the OS refuses the thread.
    pub(crate) fn start(
        shard: usize,
        handle: SyncHandle,
        synced: u64,
        on_synced: OnSynced,
    ) -> Result<Self, Error> {
        let target = Target { handle: Arc::new(handle), written: synced, synced, stop: false };
        let shared = Arc::new((Mutex::new(target), Condvar::new()));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("lockstep-sync-{shard}"))
            .spawn(move || run(&theirs, &on_synced))
            .map_err(|e| Error::io(format!("starting the sync thread of shard {shard}"), &e))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Every turn up to `frontier` is written, to the segment `handle` syncs if the log moved
    /// to a new one.
    pub(crate) fn written(&self, frontier: u64, handle: Option<SyncHandle>) {
        let mut target = lock(&self.shared);
        target.written = frontier;
        if let Some(handle) = handle {
            target.handle = Arc::new(handle);
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

/// The thread: waits for written turns, syncs them, reports; until stopped or a sync fails.
fn run(shared: &(Mutex<Target>, Condvar), on_synced: &OnSynced) {
    loop {
        let mut target = lock(shared);
        while target.written <= target.synced && !target.stop {
            target = shared.1.wait(target).unwrap_or_else(PoisonError::into_inner);
        }
        if target.written <= target.synced {
            return; // stopped, and nothing is left to sync
        }
        let (handle, written) = (target.handle.clone(), target.written);
        drop(target);
        if let Err(error) = handle.sync() {
            on_synced(Err(Error::io("syncing a log segment", &error)));
            return;
        }
        lock(shared).synced = written;
        on_synced(Ok(written));
    }
}
