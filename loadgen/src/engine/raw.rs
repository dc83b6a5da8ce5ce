//! Reference: lockstep's transport alone: the same hand-off of the same records between
//! threads, and nothing else.
//!
//! What it shares with lockstep, piece by piece, so that `lockstep ÷ raw` is the share of its
//! transport's ceiling lockstep keeps, and `raw ÷ limit` what that transport costs:
//! - **Lanes.** One bounded single-writer ring (`rtrb`, as lockstep's queues) per (producer,
//!   consumer) pair, `queue_capacity` slots each: a push is a store, never a compare-and-swap.
//! - **Draining.** A consumer turn pops up to a queue's capacity from each of its queues, as a
//!   lockstep worker's turn drains, then publishes what it popped (a watermark per producer)
//!   and wakes the producers waiting for room. A turn that found fewer than [`SMALL_TURN`]
//!   records is followed by a pause of [`TURN_FLOOR`], which stands in for the fixed cost of a
//!   lockstep worker's turn (reading the frontier, forming, publishing): without it a consumer
//!   that does nothing per turn runs right behind its producer, so every ring slot and the
//!   ring's tail move between the two cores while the producer is still writing them, and the
//!   producer's fence after each commit waits for those transfers (perf/README.md, "`raw` after
//!   issue 19"). A lockstep worker is never that close, and its transport never pays that.
//! - **Waking.** The same two handshakes as lockstep's bells and waiters: an idle consumer spins,
//!   yields for [`IDLE_SPIN`] (lockstep's default `idle_spin`), then says it sleeps, fences,
//!   looks once more and parks; a producer fences after its commit and unparks the sleeping
//!   consumers it handed records to. A producer facing a full ring rings its consumer, spins,
//!   then says it waits, fences, looks once more and parks until the consumer that drains the
//!   ring wakes it.
//!
//! What it leaves out is everything lockstep does beyond the transport: no commit numbers from a
//! shared clock (a per-producer sequence), no frontier, no routing by path (records are dealt
//! round-robin over the consumers), no sorting, indexing, compaction or snapshots. A consumer
//! reads each record (sums the values, or the lengths) and drops it.
//!
//! Visible: a commit is visible once a consumer has popped every one of its records. Each
//! consumer publishes, after each turn, the last sequence number it has popped from each
//! producer, and then resolves the stamps of sampled commits (see [`super::stamps`]); nothing is
//! indexed, so nothing more is visible to anyone.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam::utils::{Backoff, CachePadded};
use hdrhistogram::Histogram;
use rtrb::{Consumer, Producer, PushError, RingBuffer};

use super::stamps::{Resolver, Stamps};
use super::{pin_current, Committer, Config, Engine, Failure, Finish, Watermarks};
use crate::record::Kind;
use crate::workload::Part;

/// How long an idle consumer keeps looking (yielding its core) before it parks: lockstep's
/// default `Builder::idle_spin`.
pub const IDLE_SPIN: Duration = Duration::from_micros(50);
/// A turn that popped fewer records than this is a small one, followed by [`TURN_FLOOR`].
pub const SMALL_TURN: u64 = 256;
/// The pause after a small turn, spent without touching the rings: a small fraction of what a
/// lockstep worker's turn takes at one producer (perf/README.md, "`raw` after issue 19").
pub const TURN_FLOOR: Duration = Duration::from_micros(5);
/// How long an idle consumer parks unwoken (a safety net: producers wake it), as lockstep's
/// idle workers.
const IDLE_PARK: Duration = Duration::from_millis(50);
/// How long a producer waiting for room parks unwoken (a safety net), as lockstep's.
const ROOM_PARK: Duration = Duration::from_millis(5);

/// What a raw queue carries: the producer's sequence number and the record. The `limit` row
/// hands the same item between two threads.
pub type Item<K> = (u64, <K as Kind>::Record);

/// One thread's ends of its rings, until that thread takes them.
type Ends<T> = Box<[Mutex<Option<Vec<T>>>]>;

/// The sleeping side of both handshakes, as lockstep's: says it sleeps through `flag`, fences,
/// looks once more (`ready`), and parks (`park`, which may return early) unless ready.
fn doze(flag: &AtomicBool, ready: impl FnOnce() -> bool, park: impl FnOnce()) {
    // Relaxed: ordered before the recheck by the SeqCst fence just after.
    flag.store(true, Ordering::Relaxed);
    // SeqCst: pairs with the waking side's fence. Whichever comes first in the single SeqCst
    // order, the other side sees the store before it: either the work (or room) is seen here,
    // or the waking side sees `flag` and unparks this thread.
    fence(Ordering::SeqCst);
    if !ready() {
        park();
    }
    // Relaxed: only a hint to the waking side; a stale `true` costs one spurious unpark.
    flag.store(false, Ordering::Relaxed);
}

#[derive(Debug)]
struct Shared<K: Kind> {
    producers: usize,
    consumers: usize,
    /// Each consumer's ends of its rings (one per producer), taken by its thread.
    receivers: Ends<Consumer<Item<K>>>,
    /// Each producer's ends of its rings (one per consumer), taken by its committer.
    senders: Ends<Producer<Item<K>>>,
    marks: Watermarks,
    stamps: Stamps,
    /// Consumer `c` is about to park, or parked.
    sleeping: Box<[CachePadded<AtomicBool>]>,
    threads: Box<[OnceLock<Thread>]>,
    /// Producer `p` waits for room, and its thread (set on each wait).
    waiting: Box<[CachePadded<AtomicBool>]>,
    waiters: Box<[Mutex<Option<Thread>>]>,
    /// Set once every producer is done: consumers drain and return.
    stop: AtomicBool,
}

impl<K: Kind> Shared<K> {
    /// Wakes consumer `consumer` if it sleeps.
    fn ring(&self, consumer: usize) {
        // Relaxed: ordered by the caller's SeqCst fence (see `doze`).
        if self.sleeping[consumer].load(Ordering::Relaxed) {
            if let Some(thread) = self.threads[consumer].get() {
                thread.unpark();
            }
        }
    }

    /// Wakes producer `producer` if it waits for room.
    fn wake_producer(&self, producer: usize) {
        // Relaxed: ordered by the consumer's SeqCst fence after its pops (see `consume`).
        if self.waiting[producer].load(Ordering::Relaxed) {
            // Cloned out first: the unpark happens with no lock held.
            let thread = self.waiters[producer].lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(thread) = thread {
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
    /// This producer's rings, one per consumer.
    rings: Vec<Producer<Item<K>>>,
    sequence: u64,
    touched: Vec<u32>,
}

impl<K: Kind> Engine<K> for Raw<K> {
    type Committer = RawCommitter<K>;

    fn build(config: &Config) -> Result<Self, Failure> {
        let (producers, consumers) = (config.producers, config.shards);
        let mut senders: Vec<Vec<Producer<Item<K>>>> = (0..producers).map(|_| Vec::new()).collect();
        let mut receivers: Vec<Vec<Consumer<Item<K>>>> = (0..consumers).map(|_| Vec::new()).collect();
        for sending in &mut senders {
            for receiving in &mut receivers {
                let (tx, rx) = RingBuffer::new(config.queue_capacity);
                sending.push(tx);
                receiving.push(rx);
            }
        }
        let shared = Arc::new(Shared {
            producers,
            consumers,
            receivers: receivers.into_iter().map(|r| Mutex::new(Some(r))).collect(),
            senders: senders.into_iter().map(|s| Mutex::new(Some(s))).collect(),
            marks: Watermarks::new(consumers, producers),
            stamps: Stamps::new(consumers, producers),
            sleeping: (0..consumers).map(|_| Default::default()).collect(),
            threads: (0..consumers).map(|_| OnceLock::new()).collect(),
            waiting: (0..producers).map(|_| Default::default()).collect(),
            waiters: (0..producers).map(|_| Mutex::new(None)).collect(),
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
        let rings = self.shared.senders[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| format!("raw: producer {index}'s rings were already taken"))?;
        Ok(RawCommitter {
            shared: self.shared.clone(),
            producer: index,
            rings,
            sequence: 0,
            touched: Vec::new(),
        })
    }

    fn visible(&self) -> Histogram<u64> {
        self.shared.stamps.visible()
    }

    fn progress(&self) -> Option<String> {
        let stuck = self.shared.waiting.iter().filter(|w| w.load(Ordering::Relaxed)).count();
        Some(format!("{stuck} producers waiting for room"))
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

/// One consumer: turn after turn, pops, reads and drops, until stopped and empty. Returns
/// (records, what it read: the sum of the values or of the lengths).
fn consume<K: Kind>(shared: &Shared<K>, consumer: usize) -> (u64, u64) {
    let (mut records, mut read) = (0u64, 0u64);
    let Some(mut rings) = shared.receivers[consumer].lock().unwrap_or_else(PoisonError::into_inner).take()
    else {
        return (0, 0);
    };
    let mut resolver = Resolver::new(consumer, shared.producers);
    let backoff = Backoff::new();
    let mut idle_since: Option<Instant> = None;
    let mut drained = vec![false; rings.len()];
    loop {
        // A turn: at most a ring's capacity from each ring, as a lockstep worker's turn.
        let mut popped = false;
        let mut now = None;
        let before = records;
        for (producer, ring) in rings.iter_mut().enumerate() {
            let mut last = None;
            for _ in 0..ring.buffer().capacity() {
                let Ok((sequence, record)) = ring.pop() else { break };
                records += 1;
                read = read.wrapping_add(K::touch(&record));
                last = Some(sequence);
            }
            drained[producer] = last.is_some();
            if let Some(sequence) = last {
                popped = true;
                shared.marks.set(consumer, producer, sequence);
                resolver.published(&shared.stamps, producer, sequence, &mut now);
            }
        }
        if popped {
            // SeqCst: the waking side of the room handshake (`doze`): the pops above come
            // before the `waiting` loads.
            fence(Ordering::SeqCst);
            for producer in drained.iter().enumerate().filter(|(_, d)| **d).map(|(p, _)| p) {
                shared.wake_producer(producer);
            }
            if records - before < SMALL_TURN {
                pause(TURN_FLOOR);
            }
            backoff.reset();
            idle_since = None;
            continue;
        }
        // Acquire: pairs with the Release in `Raw::stop`; the producers are done, and a last
        // pass found every ring empty.
        if shared.stop.load(Ordering::Acquire) && rings.iter().all(Consumer::is_empty) {
            return (records, read);
        }
        if !backoff.is_completed() {
            backoff.snooze();
        } else if idle_since.get_or_insert_with(Instant::now).elapsed() < IDLE_SPIN {
            std::thread::yield_now();
        } else {
            let ready = || !rings.iter().all(Consumer::is_empty) || shared.stop.load(Ordering::Acquire);
            doze(&shared.sleeping[consumer], ready, || std::thread::park_timeout(IDLE_PARK));
            backoff.reset();
            idle_since = None;
        }
    }
}

/// Spins for `length` without touching shared memory (a clock read every 16 spin hints).
fn pause(length: Duration) {
    let start = Instant::now();
    while start.elapsed() < length {
        for _ in 0..16 {
            std::hint::spin_loop();
        }
    }
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
            let ring = &mut self.rings[consumer];
            if let Err(PushError::Full(item)) = ring.push((self.sequence, record)) {
                push_waiting(shared, self.producer, ring, consumer, item);
            }
            consumer += 1;
            if consumer == consumers {
                consumer = 0;
            }
        }
        // SeqCst: the waking side of the consumers' handshake (`doze`): the pushes above come
        // before the `sleeping` loads.
        fence(Ordering::SeqCst);
        for i in 0..touched {
            shared.ring((first + i) % consumers);
        }
        Ok(())
    }
}

/// A full ring: wakes its consumer, spins, then parks until the consumer that drains it wakes
/// this producer (as lockstep's producers wait for room).
#[cold]
fn push_waiting<K: Kind>(
    shared: &Shared<K>,
    producer: usize,
    ring: &mut Producer<Item<K>>,
    consumer: usize,
    mut item: Item<K>,
) {
    // SeqCst: the consumer may be asleep: the records pushed so far come before its flag's load.
    fence(Ordering::SeqCst);
    let backoff = Backoff::new();
    loop {
        shared.ring(consumer);
        if backoff.is_completed() {
            *shared.waiters[producer].lock().unwrap_or_else(PoisonError::into_inner) =
                Some(std::thread::current());
            let room = || ring.slots() > 0;
            doze(&shared.waiting[producer], room, || std::thread::park_timeout(ROOM_PARK));
        } else {
            backoff.snooze();
        }
        match ring.push(item) {
            Ok(()) => return,
            Err(PushError::Full(back)) => item = back,
        }
    }
}
