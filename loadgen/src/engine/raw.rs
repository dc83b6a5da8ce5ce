//! Reference: a bare hand-off of the same records between threads, and nothing else.
//!
//! One crossbeam `ArrayQueue` per (producer, consumer) pair, each with `queue_capacity` slots,
//! as lockstep has per (producer, shard): single producer, single consumer, lock-free. A commit
//! takes a per-producer sequence number (no shared counter) and pushes each record, tagged with
//! it, round-robin over the consumers, ignoring its path (no hashing, no routing). One consumer
//! thread per shard pops from its queues, counts records and bytes and drops them. This is the
//! physical limit for moving these records between threads on this machine: what lockstep
//! would cost if sequencing, indexing, compaction and snapshots were free.
//!
//! Waiting: a producer facing a full queue spins, yields, then sleeps 50 µs at a time (as
//! lockstep's producers do); an idle consumer spins, yields, then parks, and producers wake it.
//!
//! Visible: a commit is visible once a consumer has popped every one of its records. Each
//! consumer publishes, after each batch, the last sequence number it has popped from each
//! producer; nothing is indexed, so nothing more is visible to anyone.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::{Backoff, CachePadded};

use super::{pin_current, Committer, Config, Engine, Failure, Finish, ShardTicket, Touched, Watermarks};
use crate::workload::{Part, Record};

/// Records a consumer pops from one queue before it moves on to the next.
const BATCH: usize = 1024;

#[derive(Debug)]
struct Shared {
    producers: usize,
    consumers: usize,
    /// Queue of (producer p, consumer c) at `c * producers + p`: sequence number and record.
    queues: Box<[ArrayQueue<(u64, Record)>]>,
    marks: Watermarks,
    /// Consumer `c` is about to park, or parked.
    sleeping: Box<[CachePadded<AtomicBool>]>,
    threads: Box<[OnceLock<Thread>]>,
    /// Set once every producer is done: consumers drain and return.
    stop: AtomicBool,
}

impl Shared {
    fn queue(&self, producer: usize, consumer: usize) -> &ArrayQueue<(u64, Record)> {
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
pub struct Raw {
    shared: Arc<Shared>,
    consumers: Vec<JoinHandle<(u64, u64)>>,
}

#[derive(Debug)]
pub struct RawCommitter {
    shared: Arc<Shared>,
    producer: usize,
    sequence: u64,
    touched: Touched,
}

impl Engine for Raw {
    type Committer = RawCommitter;
    type Ticket = ShardTicket;
    /// Every (consumer, producer) watermark.
    type Look = (Vec<u64>, usize);

    fn build(config: &Config) -> Result<Self, Failure> {
        let (producers, consumers) = (config.producers, config.shards);
        let shared = Arc::new(Shared {
            producers,
            consumers,
            queues: (0..producers * consumers).map(|_| ArrayQueue::new(config.queue_capacity)).collect(),
            marks: Watermarks::new(consumers, producers),
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

    fn committer(&self, index: usize) -> Result<RawCommitter, Failure> {
        Ok(RawCommitter {
            shared: self.shared.clone(),
            producer: index,
            sequence: 0,
            touched: Touched::new(self.shared.consumers),
        })
    }

    fn look(&self) -> (Vec<u64>, usize) {
        (self.shared.marks.read(), self.shared.producers)
    }

    fn covers((marks, producers): &(Vec<u64>, usize), ticket: &ShardTicket) -> bool {
        ticket.covered_by(marks, *producers)
    }

    fn finish(mut self) -> Result<Finish, Failure> {
        self.stop();
        let (mut records, mut bytes) = (0, 0);
        for consumer in self.consumers.drain(..) {
            let (r, b) = consumer.join().map_err(|_| "a raw consumer panicked")?;
            records += r;
            bytes += b;
        }
        let notes = vec![format!("payload bytes popped: {}", crate::report::group(bytes))];
        Ok(Finish { records_applied: Some(records), notes, ..Finish::default() })
    }
}

impl Raw {
    fn stop(&self) {
        // Release: a consumer that sees `stop` (Acquire) sees every push before it.
        self.shared.stop.store(true, Ordering::Release);
        for thread in self.shared.threads.iter().filter_map(OnceLock::get) {
            thread.unpark();
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // On an early return the consumers must still end; after `finish` this is a no-op.
        self.stop();
    }
}

/// One consumer: pops, counts, drops, until stopped and empty. Returns (records, bytes).
fn consume(shared: &Shared, consumer: usize) -> (u64, u64) {
    let (mut records, mut bytes) = (0u64, 0u64);
    let backoff = Backoff::new();
    loop {
        let mut popped = 0;
        for producer in 0..shared.producers {
            let queue = shared.queue(producer, consumer);
            let mut last = None;
            for _ in 0..BATCH {
                let Some((sequence, record)) = queue.pop() else { break };
                records += 1;
                bytes += record.len() as u64;
                last = Some(sequence);
            }
            if let Some(sequence) = last {
                popped += 1;
                shared.marks.set(consumer, producer, sequence);
            }
        }
        if popped > 0 {
            backoff.reset();
            continue;
        }
        // Acquire: pairs with the Release in `Raw::stop`; the producers are done, and a last
        // pass found every queue empty.
        if shared.stop.load(Ordering::Acquire) && all_empty(shared, consumer) {
            return (records, bytes);
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

fn all_empty(shared: &Shared, consumer: usize) -> bool {
    (0..shared.producers).all(|producer| shared.queue(producer, consumer).is_empty())
}

impl Committer for RawCommitter {
    type Ticket = ShardTicket;

    fn commit(&mut self, parts: &mut Vec<Part>) -> Result<(), Failure> {
        let shared = &*self.shared;
        self.sequence += 1;
        self.touched.clear();
        for (i, (_path, record)) in parts.drain(..).enumerate() {
            let consumer = (self.sequence as usize).wrapping_add(i) % shared.consumers;
            self.touched.add(consumer);
            let queue = shared.queue(self.producer, consumer);
            let mut item = (self.sequence, record);
            let backoff = Backoff::new();
            while let Err(back) = queue.push(item) {
                item = back;
                shared.wake(consumer);
                if backoff.is_completed() {
                    std::thread::park_timeout(Duration::from_micros(50));
                } else {
                    backoff.snooze();
                }
            }
        }
        // SeqCst: pairs with the consumer's fence before it parks (see `consume`).
        fence(Ordering::SeqCst);
        for &consumer in self.touched.list() {
            shared.wake(consumer as usize);
        }
        Ok(())
    }

    fn ticket(&self) -> ShardTicket {
        ShardTicket { producer: self.producer, mark: self.sequence, shards: self.touched.list().to_vec() }
    }
}
