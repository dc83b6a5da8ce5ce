//! The durable frontier: per shard, the last commit its log holds at the pipeline's
//! [`Durability`]; the pipeline's is the lowest of them, as the visible cut is.
//!
//! # Orderings
//!
//! A shard's worker (or, at `Durability::Synced`, its sync thread: `crate::durable::syncer`)
//! raises its durable frontier (Release) after the write or the sync that made it so; `wait_durable` loads every shard's (Acquire): a reader that sees a frontier sees it
//! only once the log's `write` or `fdatasync` has returned. A log error is set once, then
//! `failed` (Release); readers load `failed` (Acquire) before the error.
//!
//! Batch files need more than the durable frontier at `Durability::Written`: a file may be
//! written only once every shard's log is *synced* past its end (`crate::durable::checkpoint`).
//! Each worker stores its synced frontier (Release, after the fsync returned), and a worker
//! about to save a file raises `wanted` to the file's end; every worker syncs its log once its
//! tip reaches `wanted` and its synced frontier is below it. `wanted` is Relaxed on both sides:
//! a worker that reads it stale syncs a turn or an idle park later, and the saving worker keeps
//! asking until every synced frontier has reached its file's end (Acquire on those).
//!
//! Who waits for the durable frontier (`wait_durable` and its async twin) waits in a
//! [`Watch`], rung after each store and after a failure: when nobody waits, a fence and one
//! load (`crate::read::watch`, which states that handshake).

use crossbeam::utils::CachePadded;

use crate::durable::directory::Directory;
use crate::durable::recovery::Durability;
use crate::error::Error;
use crate::read::watch::Watch;
use crate::sync::{AtomicBool, AtomicU64, OnceLock, Ordering};

/// What a durable pipeline shares about its durability.
#[derive(Debug)]
pub(crate) struct DurableState {
    pub(crate) durability: Durability,
    frontiers: Box<[CachePadded<AtomicU64>]>,
    /// Per shard: every commit at or below it is synced in its log.
    synced: Box<[CachePadded<AtomicU64>]>,
    /// The highest synced frontier a worker saving a batch file has asked for.
    wanted: AtomicU64,
    error: OnceLock<Error>,
    failed: AtomicBool,
    /// Who waits for the durable frontier.
    watch: Watch,
    /// The directory, locked while the pipeline lives.
    _directory: Directory,
}

impl DurableState {
    /// Every shard durable up to `recovered`.
    pub(crate) fn new(durability: Durability, shards: usize, recovered: u64, directory: Directory) -> Self {
        Self {
            durability,
            frontiers: (0..shards).map(|_| CachePadded::new(AtomicU64::new(recovered))).collect(),
            // Opening syncs every log it continues (`crate::durable::writer`).
            synced: (0..shards).map(|_| CachePadded::new(AtomicU64::new(recovered))).collect(),
            wanted: AtomicU64::new(0),
            error: OnceLock::new(),
            failed: AtomicBool::new(false),
            watch: Watch::default(),
            _directory: directory,
        }
    }

    /// Every commit at or below it is durable.
    pub(crate) fn frontier(&self) -> u64 {
        // Acquire: pairs with `advance`; see the module doc.
        self.frontiers.iter().map(|f| f.load(Ordering::Acquire)).min().unwrap_or(0)
    }

    /// Shard `shard`'s log holds every commit up to `frontier` at the pipeline's durability.
    pub(crate) fn advance(&self, shard: usize, frontier: u64) {
        // Release: the write or sync behind it happened before; see the module doc. The highest
        // wins: the sync thread and the worker's own sync at shutdown may report out of order.
        self.frontiers[shard].fetch_max(frontier, Ordering::Release);
        // The pipeline's frontier (the lowest shard's) is computed only if someone waits; loaded
        // after the ring's fence, it sees every shard's store that came before that fence.
        self.watch.ring(|| self.frontier());
    }

    /// Every commit at or below it is synced in every shard's log.
    pub(crate) fn synced(&self) -> u64 {
        // Acquire: pairs with `advance_synced` (the fsync happened before).
        self.synced.iter().map(|f| f.load(Ordering::Acquire)).min().unwrap_or(0)
    }

    /// Shard `shard`'s log is synced up to `frontier`.
    pub(crate) fn advance_synced(&self, shard: usize, frontier: u64) {
        // Release: the fsync behind it returned before. The highest wins, as in `advance`.
        self.synced[shard].fetch_max(frontier, Ordering::Release);
    }

    /// Shard `shard`'s own synced frontier.
    pub(crate) fn synced_of(&self, shard: usize) -> u64 {
        // Relaxed: only this shard's worker stores it, and only it asks here.
        self.synced[shard].load(Ordering::Relaxed)
    }

    /// Asks every shard to sync its log up to `frontier`.
    pub(crate) fn want_synced(&self, frontier: u64) {
        // Relaxed: see the module doc (the asker keeps asking).
        self.wanted.fetch_max(frontier, Ordering::Relaxed);
    }

    /// The highest synced frontier asked for.
    pub(crate) fn wanted(&self) -> u64 {
        // Relaxed: see the module doc.
        self.wanted.load(Ordering::Relaxed)
    }

    /// A log failed: durability stops for good (a failed write or fsync is never retried).
    pub(crate) fn fail(&self, error: Error) {
        let _ = self.error.set(error);
        // Release: a reader that sees it finds the error set.
        self.failed.store(true, Ordering::Release);
        self.watch.ring_all();
    }

    /// The waiters for the durable frontier.
    pub(crate) fn watch(&self) -> &Watch {
        &self.watch
    }

    /// The error that stopped durability, if one did.
    pub(crate) fn error(&self) -> Option<Error> {
        // Acquire: pairs with `fail`.
        if self.failed.load(Ordering::Acquire) {
            self.error.get().cloned()
        } else {
            None
        }
    }
}
