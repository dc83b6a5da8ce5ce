//! Routing and the bounded queues between producers and shard workers.
//!
//! A path goes to shard `hash(path) % shards`, always the same one for a pipeline ([`Router`]).
//! Every (producer, shard) pair has its own bounded single-producer queue, so a producer can
//! tell exactly whether a commit fits before it takes a commit number (`try_commit` enqueues all
//! or nothing), and a shard worker reads each producer's parts in that producer's commit order.
//!
//! Parts name their path by its dense id in the shard's directory (`crate::directory`), where
//! the producer interned it the first time it named the path: no part carries a string.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, OnceLock};

use siphasher::sip::SipHasher13;

use crate::sync::{AtomicUsize, Ordering};

/// Which shard owns a path.
///
/// SipHash-1-3 keyed with 128 random bits drawn when the pipeline starts: paths from untrusted
/// clients cannot be crafted to land on one shard (the key is never shown, and SipHash is
/// built to keep it so), and no two pipelines route alike. Each producer hashes a name once
/// and keeps its route, so the hash's cost is paid once per path per producer, and once per
/// read by name. With one shard nothing is hashed.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    shards: usize,
    key: (u64, u64),
}

impl Router {
    /// A router over `shards` shards with a fresh random key.
    pub(crate) fn new(shards: usize) -> Self {
        // std's RandomState is SipHash keyed from the OS's randomness; two of its outputs make
        // a key nobody outside this process can know.
        let random = std::collections::hash_map::RandomState::new();
        Self { shards, key: (random.hash_one(0u8), random.hash_one(1u8)) }
    }

    /// The shard that owns `path`.
    pub(crate) fn shard_of(&self, path: &str) -> usize {
        if self.shards == 1 {
            return 0; // no hash to pay for
        }
        let mut hasher = SipHasher13::new_with_keys(self.key.0, self.key.1);
        hasher.write(path.as_bytes());
        (hasher.finish() % self.shards as u64) as usize
    }
}

/// One record of one commit, on its way to the worker that owns its path.
#[derive(Debug)]
pub(crate) struct Part<R> {
    pub(crate) commit: u64,
    /// The path's id in its shard's directory.
    pub(crate) path: u32,
    pub(crate) record: R,
}

/// The producer end of one (producer, shard) queue.
pub(crate) type Sender<R> = rtrb::Producer<Part<R>>;
/// The worker end of one (producer, shard) queue.
pub(crate) type Receiver<R> = rtrb::Consumer<Part<R>>;

/// One producer slot's queues, one per shard: single-writer rings (`rtrb`), so a push is a
/// store and never a compare-and-swap, and a producer reads its room exactly.
struct SlotLanes<R> {
    /// The producer ends: held by the slot's live producer, put back when it drops, so the
    /// next producer in the slot continues the same queues.
    senders: Mutex<Option<Box<[Sender<R>]>>>,
    /// The worker ends, one per shard, each taken once by that shard's worker.
    receivers: Box<[Mutex<Option<Receiver<R>>>]>,
}

/// Every producer slot's queues, made when the slot is first claimed.
pub(crate) struct Lanes<R> {
    slots: Box<[OnceLock<SlotLanes<R>>]>,
    /// Slots whose queues exist: workers look for new receivers when it moves.
    made: AtomicUsize,
    shards: usize,
    capacity: usize,
}

impl<R> std::fmt::Debug for Lanes<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").field("shards", &self.shards).field("capacity", &self.capacity).finish()
    }
}

/// Locks a mutex whose holders never panic while holding it (they only move a value in or out).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<R> Lanes<R> {
    pub(crate) fn new(slots: usize, shards: usize, capacity: usize) -> Self {
        Self {
            slots: (0..slots).map(|_| OnceLock::new()).collect(),
            made: AtomicUsize::new(0),
            shards,
            capacity,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The producer ends of slot `slot`'s queues, for the producer that claimed the slot.
    pub(crate) fn take_senders(&self, slot: usize) -> Box<[Sender<R>]> {
        let lanes = self.slots[slot].get_or_init(|| {
            let (senders, receivers): (Vec<_>, Vec<_>) =
                (0..self.shards).map(|_| rtrb::RingBuffer::new(self.capacity)).unzip();
            let receivers = receivers.into_iter().map(|receiver| Mutex::new(Some(receiver))).collect();
            SlotLanes { senders: Mutex::new(Some(senders.into())), receivers }
        });
        // Release: a worker that sees the count (Acquire) finds this slot's queues made.
        self.made.fetch_add(1, Ordering::Release);
        // The slot's previous producer put them back before it released the slot (its Drop).
        lock(&lanes.senders).take().expect("a claimed slot's senders are free")
    }

    /// Gives a slot's producer ends back; the slot is released after.
    pub(crate) fn put_back(&self, slot: usize, senders: Box<[Sender<R>]>) {
        if let Some(lanes) = self.slots[slot].get() {
            *lock(&lanes.senders) = Some(senders);
        }
    }

    /// A count that moves whenever a slot's queues are made or claimed again.
    pub(crate) fn made(&self) -> usize {
        // Acquire: pairs with `take_senders`.
        self.made.load(Ordering::Acquire)
    }

    /// Takes shard `shard`'s receivers of every slot whose queues exist and not yet `taken`,
    /// adding them to `into` with their slot.
    pub(crate) fn take_receivers(
        &self,
        shard: usize,
        taken: &mut [bool],
        into: &mut Vec<(usize, Receiver<R>)>,
    ) {
        for (slot, taken) in taken.iter_mut().enumerate().filter(|(_, taken)| !**taken) {
            if let Some(receiver) =
                self.slots[slot].get().and_then(|lanes| lock(&lanes.receivers[shard]).take())
            {
                *taken = true;
                into.push((slot, receiver));
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The same path always goes to the same shard of a pipeline; 1,000 paths spread over
    /// every shard; and another pipeline's router (another key) routes them otherwise.
    #[test]
    fn routing_is_stable_spreads_and_is_keyed_per_pipeline() {
        let shards = 4;
        let (router, other) = (Router::new(shards), Router::new(shards));
        let paths: Vec<String> = (0..1000).map(|i| format!("/p/{i}")).collect();
        let first: Vec<usize> = paths.iter().map(|path| router.shard_of(path)).collect();
        let again: Vec<usize> = paths.iter().map(|path| router.clone().shard_of(path)).collect();
        assert_eq!(first, again, "a path's shard never changes within a pipeline");
        let mut seen = [0usize; 4];
        for &shard in &first {
            seen[shard] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "uneven routing: {seen:?}");
        let moved = paths.iter().zip(&first).filter(|&(path, &shard)| other.shard_of(path) != shard).count();
        // Independent keys move about three in four paths; a fixed key would move none.
        assert!(moved > 500, "only {moved} of 1000 paths route differently under another key");
        let one = Router::new(1);
        assert!(paths.iter().all(|path| one.shard_of(path) == 0));
    }
}
