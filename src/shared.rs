//! What the producers, the workers and the pipeline handle share, and the pipeline's lifecycle.
//!
//! # Orderings
//!
//! The lifecycle is three words, each written by one side and read by the other:
//!
//! - **finishing** (`Pipeline::shutdown`): the closer stores `last`, the final commit count,
//!   Relaxed, then sets `finishing` with Release; a worker that loads `finishing` with Acquire
//!   and sees it set reads the final `last` ([`Lifecycle::finish_line`]). The closer does so
//!   only once the clock is closed and every issued commit retired, so `last` is final.
//! - **failed** (a worker's panic): the worker sets it with Release after its last write, and
//!   wakes everyone who may wait for it ([`Shared::fail`]: the workers' bells, the producers
//!   waiting for room, the sealed and durable waiters); producers, waiters and the closer load
//!   it with Acquire ([`Lifecycle::has_failed`]) and stop waiting for that worker. Each wake-up
//!   fences before it looks for sleepers, so a waiter that registered before the failure is
//!   woken and one that registers after it sees it. A failure seen by any call
//!   that returned `WorkerPanicked` is seen by every later call on any thread that learnt of
//!   it, which is what lets a refusal come before a commit number is taken.

use crate::config::Config;
use crate::durable::frontier::DurableState;
use crate::ingest::bell::{Bells, Waiters};
use crate::ingest::clock::Clock;
use crate::ingest::queue::Lanes;
use crate::ingest::router::Router;
use crate::merge::Merge;
use crate::out::sink::SharedSink;
use crate::out::stats::Recorder;
use crate::read::view::Views;
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering};

/// Everything the producers, workers and handles share.
pub(crate) struct Shared<M: Merge> {
    pub(crate) config: Config,
    /// Which shard owns a path, and its id there.
    pub(crate) router: Arc<Router>,
    pub(crate) merge: Arc<M>,
    pub(crate) clock: Clock,
    pub(crate) lanes: Lanes<M::Record>,
    pub(crate) views: Views<M>,
    pub(crate) bells: Bells,
    /// Producers waiting for room in a full queue.
    pub(crate) waiters: Waiters,
    pub(crate) stats: Recorder,
    pub(crate) sink: SharedSink<M::Output>,
    pub(crate) lifecycle: Lifecycle,
    /// A durable pipeline's durable frontier and log failure.
    pub(crate) durable: Option<DurableState>,
}

impl<M: Merge> Shared<M> {
    /// A worker failed: marks the pipeline failed and wakes everyone who may be waiting for
    /// it, threads and tasks alike, so they find out.
    pub(crate) fn fail(&self) {
        self.lifecycle.fail();
        self.bells.ring_all();
        self.waiters.wake_all();
        self.views.sealed().ring_all();
        if let Some(durable) = &self.durable {
            durable.watch().ring_all();
        }
    }
}

/// Running, finishing (shutdown has begun), or failed; see the module's `# Orderings`.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// Set once the clock is closed and idle: workers finish everything up to `last`.
    finishing: AtomicBool,
    /// The last commit issued, valid once `finishing` is set.
    last: AtomicU64,
    /// A worker panicked; nothing more will become visible.
    failed: AtomicBool,
}

impl Lifecycle {
    /// Shutdown: commits up to `last` were all issued and enqueued, and no more will be;
    /// workers finish them and stop.
    pub(crate) fn finish_at(&self, last: u64) {
        // Relaxed: published by the Release store of `finishing` just below.
        self.last.store(last, Ordering::Relaxed);
        // Release: workers that see `finishing` (Acquire) see the final `last` stored above.
        self.finishing.store(true, Ordering::Release);
    }

    /// The commit every worker must reach before it may stop, once shutdown has begun.
    pub(crate) fn finish_line(&self) -> Option<u64> {
        // Acquire: pairs with the Release in `finish_at`, so `last` is the final count.
        self.finishing.load(Ordering::Acquire).then(|| self.last.load(Ordering::Relaxed))
    }

    /// A worker panicked: nothing more becomes visible.
    pub(crate) fn fail(&self) {
        // Release: pairs with `has_failed`.
        self.failed.store(true, Ordering::Release);
    }

    pub(crate) fn has_failed(&self) -> bool {
        // Acquire: pairs with the Release in `fail`.
        self.failed.load(Ordering::Acquire)
    }
}
