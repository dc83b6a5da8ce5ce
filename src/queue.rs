//! Routing and the bounded queues between producers and shard workers.
//!
//! A path goes to shard `hash(path) % shards`, always the same one. Every (producer, shard)
//! pair has its own bounded single-producer queue, so a producer can tell exactly whether a
//! commit fits before it takes a commit number (`try_commit` enqueues all or nothing), and a
//! shard worker reads each producer's parts in that producer's commit order.
//!
//! Parts name their path by its dense id in the shard's directory (`crate::directory`), where
//! the producer interned it the first time it named the path: no part carries a string.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use crossbeam::queue::ArrayQueue;

/// The shard that owns `path`.
pub(crate) fn shard_of(path: &str, shards: usize) -> usize {
    // SipHash with fixed keys: the same path routes the same way in every thread and view.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

/// One record of one commit, on its way to the worker that owns its path.
#[derive(Debug)]
pub(crate) struct Part<R> {
    pub(crate) commit: u64,
    /// The path's id in its shard's directory.
    pub(crate) path: u32,
    pub(crate) record: R,
}

/// One producer slot's queues, one per shard.
type SlotLanes<R> = Box<[ArrayQueue<Part<R>>]>;

/// Every producer slot's queues, made when the slot is first claimed.
#[derive(Debug)]
pub(crate) struct Lanes<R> {
    slots: Box<[OnceLock<SlotLanes<R>>]>,
    shards: usize,
    capacity: usize,
}

impl<R> Lanes<R> {
    pub(crate) fn new(slots: usize, shards: usize, capacity: usize) -> Self {
        Self { slots: (0..slots).map(|_| OnceLock::new()).collect(), shards, capacity }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The queues of producer slot `slot`, one per shard.
    pub(crate) fn of(&self, slot: usize) -> &[ArrayQueue<Part<R>>] {
        self.slots[slot].get_or_init(|| (0..self.shards).map(|_| ArrayQueue::new(self.capacity)).collect())
    }

    /// Shard `shard`'s queue from every slot that has ever had a producer, with the slot index.
    pub(crate) fn for_shard(&self, shard: usize) -> impl Iterator<Item = (usize, &ArrayQueue<Part<R>>)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(move |(slot, queues)| queues.get().map(|queues| (slot, &queues[shard])))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn routing_is_stable_and_spreads() {
        let shards = 4;
        let mut seen = [0usize; 4];
        for i in 0..1000 {
            let path = format!("/p/{i}");
            let shard = shard_of(&path, shards);
            assert_eq!(shard, shard_of(&path, shards));
            seen[shard] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "uneven routing: {seen:?}");
    }
}
