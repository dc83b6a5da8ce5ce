//! Reference: a bare hand-off of the same records between threads, and nothing else.
//!
//! One crossbeam `ArrayQueue` per (producer, consumer) pair, each with `queue_capacity` slots,
//! as lockstep has per (producer, shard): single producer, single consumer, lock-free. A commit
//! takes a per-producer sequence number (no shared counter) and pushes each record, tagged with
//! it, round-robin over the consumers, ignoring its path (no hashing, no routing). One consumer
//! thread per shard pops from its queues, reads each record (sums the values, or the lengths)
//! and drops it. This is what lockstep would cost if sequencing, indexing, compaction and
//! snapshots were free; the `limit` row (the same item type between two threads, outside the
//! harness) says how close the harness lets it come to the machine.
//!
//! Waiting: a producer facing a full queue spins, yields, then sleeps 50 µs at a time (as
//! lockstep's producers do); an idle consumer spins, yields, then parks, and producers wake it.
//!
//! Visible: a commit is visible once a consumer has popped every one of its records. Each
//! consumer publishes, after each batch, the last sequence number it has popped from each
//! producer, and then resolves the stamps of sampled commits (see [`super::stamps`]); nothing is
//! indexed, so nothing more is visible to anyone.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::{Backoff, CachePadded};
use hdrhistogram::Histogram;

use super::stamps::{Resolver, Stamps};
use super::{pin_current, Committer, Config, Engine, Failure, Finish, Watermarks};
use crate::record::Kind;
use crate::workload::Part;

/// Records a consumer pops from one queue before it moves on to the next.
const BATCH: usize = 1024;

/// What a raw queue carries: the producer's sequence number and the record. The `limit` row
/// hands the same item between two threads.
pub type Item<K> = (u64, <K as Kind>::Record);

#[derive(Debug)]
struct Shared<K: Kind> {
    producers: usize,
    consumers: usize,
    /// Queue of (producer p, consumer c) at `c * producers + p`.
    queues: Box<[ArrayQueue<Item<K>>]>,
    marks: Watermarks,
    stamps: Stamps,
    /// Consumer `c` is about to park, or parked.
    sleeping: Box<[CachePadded<AtomicBool>]>,
    threads: Box<[OnceLock<Thread>]>,
    /// Set once every producer is done: consumers drain and return.
    stop: AtomicBool,
}

impl<K: Kind> Shared<K> {
    fn queue(&self, producer: usize, consumer: usize) -> &ArrayQueue<Item<K>> {
        &self.queues[consumer * self.producers + producer]
    }

    fn wake(&self, consumer: usize) {
        // Relaxed: ordered by the SeqCst fence before it (see `RawCommitter::commit`).
        if self.sleeping[consumer].load(Ordering::Relaxed) {
            if let Some(thread) = self.threads[consumer].get() {
                thread.unpark();
            }
        }
    }
}

#[derive(Debug)]
pub struct Raw<K: Kind> {
    shared: Arc<Shared<K>>,
    consumers: Vec<JoinHandle<(u64, u64)>>,
}

#[derive(Debug)]
pub struct RawCommitter<K: Kind> {
    shared: Arc<Shared<K>>,
    producer: usize,
    sequence: u64,
    touched: Vec<u32>,
}

impl<K: Kind> Engine<K> for Raw<K> {
    type Committer = RawCommitter<K>;

    fn build(config: &Config) -> Result<Self, Failure> {
        let (producers, consumers) = (config.producers, config.shards);
        let shared = Arc::new(Shared {
            producers,
            consumers,
            queues: (0..producers * consumers).map(|_| ArrayQueue::new(config.queue_capacity)).collect(),
            marks: Watermarks::new(consumers, producers),
            stamps: Stamps::new(consumers, producers),
            sleeping: (0..consumers).map(|_| Default::default()).collect(),
            threads: (0..consumers).map(|_| OnceLock::new()).collect(),
            stop: AtomicBool::new(false),
        });
        let mut engine = Self { shared: shared.clone(), consumers: Vec::with_capacity(consumers) };
        for consumer in 0..consumers {
            let (mine, pin) = (shared.clone(), config.pin);
            let spawned =
                std::thread::Builder::new().name(format!("raw-consumer-{consumer}")).spawn(move || {
                    pin_current(pin, consumer, mine.consumers);
                    consume(&mine, consumer)
                });
            let handle = match spawned {
                Ok(handle) => handle,
                Err(error) => {
                    engine.stop();
                    return Err(format!("cannot start a consumer thread: {error}").into());
                }
            };
            let _ = shared.threads[consumer].set(handle.thread().clone());
            engine.consumers.push(handle);
        }
        Ok(engine)
    }

    fn committer(&self, index: usize) -> Result<RawCommitter<K>, Failure> {
        Ok(RawCommitter { shared: self.shared.clone(), producer: index, sequence: 0, touched: Vec::new() })
    }

    fn visible(&self) -> Histogram<u64> {
        self.shared.stamps.visible()
    }

    fn progress(&self) -> Option<String> {
        let queued: usize = self.shared.queues.iter().map(ArrayQueue::len).sum();
        Some(format!("{queued} records waiting in the queues"))
    }

    fn finish(mut self) -> Result<Finish, Failure> {
        self.stop();
        let (mut records, mut read) = (0, 0u64);
        for consumer in self.consumers.drain(..) {
            let (r, b) = consumer.join().map_err(|_| "a raw consumer panicked")?;
            records += r;
            read = read.wrapping_add(b);
        }
        let what = if K::KIND.has_payload() { "payload bytes popped" } else { "sum of the values popped" };
        let notes = vec![format!("{what}: {}", crate::format::group(read))];
        Ok(Finish {
            records_applied: Some(records),
            visible_latency: self.shared.stamps.visible(),
            notes,
            ..Finish::default()
        })
    }
}

impl<K: Kind> Raw<K> {
    fn stop(&self) {
        // Release: a consumer that sees `stop` (Acquire) sees every push before it.
        self.shared.stop.store(true, Ordering::Release);
        for thread in self.shared.threads.iter().filter_map(OnceLock::get) {
            thread.unpark();
        }
    }
}

impl<K: Kind> Drop for Raw<K> {
    fn drop(&mut self) {
        // On an early return the consumers must still end; after `finish` this is a no-op.
        self.stop();
    }
}

/// One consumer: pops, reads, drops, until stopped and empty. Returns (records, what it read:
/// the sum of the values or of the lengths).
fn consume<K: Kind>(shared: &Shared<K>, consumer: usize) -> (u64, u64) {
    let (mut records, mut read) = (0u64, 0u64);
    let mut resolver = Resolver::new(consumer, shared.producers);
    let backoff = Backoff::new();
    loop {
        let mut popped = 0;
        let mut now = None;
        for producer in 0..shared.producers {
            let queue = shared.queue(producer, consumer);
            let mut last = None;
            for _ in 0..BATCH {
                let Some((sequence, record)) = queue.pop() else { break };
                records += 1;
                read = read.wrapping_add(K::touch(&record));
                last = Some(sequence);
            }
            if let Some(sequence) = last {
                popped += 1;
                shared.marks.set(consumer, producer, sequence);
                resolver.published(&shared.stamps, producer, sequence, &mut now);
            }
        }
        if popped > 0 {
            backoff.reset();
            continue;
        }
        // Acquire: pairs with the Release in `Raw::stop`; the producers are done, and a last
        // pass found every queue empty.
        if shared.stop.load(Ordering::Acquire) && all_empty(shared, consumer) {
            return (records, read);
        }
        if !backoff.is_completed() {
            backoff.snooze();
            continue;
        }
        // Park. Relaxed store, then a SeqCst fence: either a producer's fence comes after ours
        // and it sees `sleeping` (and unparks us), or ours comes after its and we see its push.
        shared.sleeping[consumer].store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if all_empty(shared, consumer) && !shared.stop.load(Ordering::Acquire) {
            // The timeout is only a safety net.
            std::thread::park_timeout(Duration::from_millis(10));
        }
        shared.sleeping[consumer].store(false, Ordering::Relaxed);
    }
}

fn all_empty<K: Kind>(shared: &Shared<K>, consumer: usize) -> bool {
    (0..shared.producers).all(|producer| shared.queue(producer, consumer).is_empty())
}

impl<K: Kind> Committer<K> for RawCommitter<K> {
    #[inline]
    fn commit(&mut self, parts: &mut Vec<Part<K::Record>>, stamp: Option<Instant>) -> Result<(), Failure> {
        let shared = &*self.shared;
        let consumers = shared.consumers;
        self.sequence += 1;
        // Records go round-robin from a consumer that moves on with each commit, so the
        // consumers a commit touched are a run of `min(parts, consumers)` from `first`.
        let first = self.sequence as usize % consumers;
        let touched = parts.len().min(consumers);
        if let Some(start) = stamp {
            // The stamp goes first, so it is there by the time a consumer publishes the commit.
            self.touched.clear();
            self.touched.extend((0..touched).map(|i| ((first + i) % consumers) as u32));
            shared.stamps.stamp(self.producer, self.sequence, &self.touched, start);
        }
        let mut consumer = first;
        for (_path, record) in parts.drain(..) {
            let queue = shared.queue(self.producer, consumer);
            let mut item = (self.sequence, record);
            if let Err(back) = queue.push(item) {
                item = back;
                push_slowly(shared, queue, consumer, item);
            }
            consumer += 1;
            if consumer == consumers {
                consumer = 0;
            }
        }
        // SeqCst: pairs with the consumer's fence before it parks (see `consume`).
        fence(Ordering::SeqCst);
        for i in 0..touched {
            shared.wake((first + i) % consumers);
        }
        Ok(())
    }
}

/// A full queue: wakes its consumer and waits for room, spinning, yielding, then sleeping.
#[cold]
fn push_slowly<K: Kind>(shared: &Shared<K>, queue: &ArrayQueue<Item<K>>, consumer: usize, mut item: Item<K>) {
    let backoff = Backoff::new();
    loop {
        shared.wake(consumer);
        if backoff.is_completed() {
            std::thread::park_timeout(Duration::from_micros(50));
        } else {
            backoff.snooze();
        }
        match queue.push(item) {
            Ok(()) => return,
            Err(back) => item = back,
        }
    }
}
