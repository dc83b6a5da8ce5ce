//! The bounded queues between producers and shard workers.
//!
//! Every (producer, shard) pair has its own bounded single-producer queue, so a producer can
//! tell exactly whether a commit fits before it takes a commit number (`try_commit` enqueues all
//! or nothing), and a shard worker reads each producer's parts in that producer's commit order.
//!
//! Parts name their path by its dense id in the shard's directory (`crate::shard::directory`), where
//! the producer interned it the first time it named the path: no part carries a string.

use crate::sync::{AtomicUsize, Mutex, MutexGuard, OnceLock, Ordering};

/// One record of one commit, on its way to the worker that owns its path.
#[derive(Debug)]
pub(crate) struct QueuedPart<R> {
    pub(crate) commit: u64,
    /// The path's id in its shard's directory.
    pub(crate) path: u32,
    pub(crate) record: R,
}

/// The producer end of one (producer, shard) queue.
pub(crate) type Sender<R> = rtrb::Producer<QueuedPart<R>>;
/// The worker end of one (producer, shard) queue.
pub(crate) type Receiver<R> = rtrb::Consumer<QueuedPart<R>>;

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
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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
