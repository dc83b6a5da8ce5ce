//! The wake-up bells: an idle shard worker parks, and a producer that has just made work for it
//! wakes it, without a lock and without a lost wake-up.
//!
//! # Orderings
//!
//! It is the store-then-load handshake, and needs a SeqCst fence on each side. A worker going
//! to sleep stores `sleeping = true`, fences, then looks for work once more; a producer stores
//! its work (enqueues and retire), fences ([`Bells::ring_sleepers`]), then loads `sleeping`.
//! Whichever fence is first in the single SeqCst order, the other side's load after its own
//! fence sees the store before the first: either the worker sees the work and does not park,
//! or the producer sees the worker asleep and unparks it (an unpark before the park makes the
//! park return at once). This fence is the one SeqCst fence a commit pays (the clock needs
//! none); the loom model below loses a wake-up without either fence.

use crossbeam::utils::CachePadded;

use crate::sync::{fence, AtomicBool, Mutex, MutexGuard, OnceLock, Ordering};

/// The sleeping side of both handshakes (the bells' and the waiters'): says it sleeps through
/// `flag`, looks once more (`ready`), and parks (`park`, which may return early) unless ready.
fn doze(flag: &AtomicBool, ready: impl FnOnce() -> bool, park: impl FnOnce()) {
    // Relaxed: the SeqCst fence just after orders it before the recheck (module doc).
    flag.store(true, Ordering::Relaxed);
    // SeqCst: the sleeping side's fence of the handshake (module doc).
    fence(Ordering::SeqCst);
    if !ready() {
        park();
    }
    // Relaxed: only a hint to the waking side; a stale `true` costs one spurious unpark.
    flag.store(false, Ordering::Relaxed);
}

/// What a bell wakes: a parked thread.
pub(crate) trait Wake {
    fn wake(&self);
}

impl Wake for std::thread::Thread {
    fn wake(&self) {
        self.unpark();
    }
}

#[cfg(loom)]
impl Wake for loom::thread::Thread {
    fn wake(&self) {
        self.unpark();
    }
}

/// One bell per worker: producers ring the sleeping ones.
#[derive(Debug)]
pub(crate) struct Bells<T = std::thread::Thread>(Box<[Bell<T>]>);

#[derive(Debug)]
struct Bell<T> {
    sleeping: CachePadded<AtomicBool>,
    thread: OnceLock<T>,
}

impl<T: Wake> Bells<T> {
    pub(crate) fn new(workers: usize) -> Self {
        Self(
            (0..workers)
                .map(|_| Bell { sleeping: CachePadded::new(AtomicBool::new(false)), thread: OnceLock::new() })
                .collect(),
        )
    }

    pub(crate) fn register(&self, worker: usize, thread: T) {
        // Set once, before any producer exists; a second call cannot happen.
        let _ = self.0[worker].thread.set(thread);
    }

    /// Worker `worker`'s side: says it is asleep, looks for work once more (`has_work`), and
    /// parks (`park`, which may return early) unless there is some.
    pub(crate) fn sleep(&self, worker: usize, has_work: impl FnOnce() -> bool, park: impl FnOnce()) {
        doze(&self.0[worker].sleeping, has_work, park);
    }

    /// Wakes worker `worker` if it is asleep.
    pub(crate) fn ring(&self, worker: usize) {
        let bell = &self.0[worker];
        // Relaxed: the callers' fence (or the worker's own recheck) orders this load.
        if bell.sleeping.load(Ordering::Relaxed) {
            if let Some(thread) = bell.thread.get() {
                thread.wake();
            }
        }
    }

    /// After a commit: wakes every sleeping worker.
    pub(crate) fn ring_sleepers(&self) {
        // SeqCst: the producer's fence of the handshake (module doc): the enqueues and retire
        // above come before the `sleeping` loads.
        fence(Ordering::SeqCst);
        for worker in 0..self.0.len() {
            self.ring(worker);
        }
    }

    /// Wakes every worker, asleep or not (shutdown).
    pub(crate) fn ring_all(&self) {
        for bell in self.0.iter() {
            if let Some(thread) = bell.thread.get() {
                thread.wake();
            }
        }
    }
}

/// Producers waiting for room in a full queue, one place per producer slot: the worker that
/// drains a slot's queue wakes its producer. The same handshake as the bells, the other way
/// round: the producer stores `waiting`, fences, and looks for room once more before it parks;
/// the worker pops (the ring's Release store of its head), fences ([`Waiters::fence`]) and
/// loads `waiting`. Without it, a waiting producer had to poll for room, and a hundred of
/// them on two cores kept the worker from running at all. The loom model below loses a
/// wake-up without either fence.
#[derive(Debug)]
pub(crate) struct Waiters<T = std::thread::Thread>(Box<[Waiter<T>]>);

#[derive(Debug)]
struct Waiter<T> {
    waiting: CachePadded<AtomicBool>,
    /// The waiting producer's thread (a producer may move between threads, so it is set on
    /// each wait). Held only to store or clone the handle: no synchronization happens inside.
    thread: Mutex<Option<T>>,
}

impl<T: Wake + Clone> Waiters<T> {
    pub(crate) fn new(slots: usize) -> Self {
        Self(
            (0..slots)
                .map(|_| Waiter {
                    waiting: CachePadded::new(AtomicBool::new(false)),
                    thread: Default::default(),
                })
                .collect(),
        )
    }

    fn thread(&self, slot: usize) -> MutexGuard<'_, Option<T>> {
        self.0[slot].thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Producer slot `slot`'s side, on thread `current`: says it waits, looks for room once
    /// more (`has_room`), and parks (`park`, which may return early) unless there is some.
    pub(crate) fn wait(&self, slot: usize, current: T, has_room: impl FnOnce() -> bool, park: impl FnOnce()) {
        *self.thread(slot) = Some(current);
        doze(&self.0[slot].waiting, has_room, park);
    }

    /// The worker's fence of this handshake, once per turn that popped anything, before it
    /// [`wake`](Waiters::wake)s the slots it drained.
    pub(crate) fn fence(&self) {
        // SeqCst: the pops above come before the `waiting` loads in `wake`.
        fence(Ordering::SeqCst);
    }

    /// Wakes slot `slot`'s producer if it waits for room.
    pub(crate) fn wake(&self, slot: usize) {
        // Relaxed: ordered by `fence`.
        if self.0[slot].waiting.load(Ordering::Relaxed) {
            // Cloned out first: the wake-up happens with no lock held.
            let thread = self.thread(slot).clone();
            if let Some(thread) = thread {
                thread.wake();
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// A worker goes to sleep while a producer makes work and rings: the worker either sees the
    /// work or is woken. A lost wake-up leaves it parked for good, which loom reports as a
    /// deadlock.
    #[test]
    fn loom_no_lost_wakeup() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            // The worker runs on a thread of its own, registered before any producer exists, as
            // in `Pipeline`; it hands the producer's handle to the model's thread to join,
            // because loom lets an unpark end a `join` it is blocked in.
            let worker = thread::spawn(|| {
                let bells = Arc::new(Bells::new(1));
                let work = Arc::new(AtomicBool::new(false));
                let rung = Arc::new(AtomicBool::new(false));
                bells.register(0, thread::current());
                let producer = {
                    let (bells, work, rung) = (bells.clone(), work.clone(), rung.clone());
                    thread::spawn(move || {
                        // Relaxed on purpose: only the bells' fences may order it.
                        work.store(true, Ordering::Relaxed);
                        bells.ring_sleepers();
                        // Release: the worker waits for it before it ends (and is no longer rung).
                        rung.store(true, Ordering::Release);
                    })
                };
                // Relaxed on purpose, as above.
                bells.sleep(0, || work.load(Ordering::Relaxed), thread::park);
                // Acquire: pairs with the Release above.
                while !rung.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                producer
            });
            let producer = worker.join().expect("worker thread");
            producer.join().expect("producer thread");
        });
    }

    /// A producer waits for room while the worker pops and wakes it: the producer either sees
    /// the room or is woken. A lost wake-up leaves it parked for good: loom reports a deadlock.
    #[test]
    fn loom_no_lost_room_wakeup() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let waiters = Arc::new(Waiters::new(1));
            let room = Arc::new(AtomicBool::new(false));
            let producer = {
                let (waiters, room) = (waiters.clone(), room.clone());
                thread::spawn(move || {
                    // Relaxed on purpose: only the handshake's fences may order it.
                    waiters.wait(0, thread::current(), || room.load(Ordering::Relaxed), thread::park);
                })
            };
            // The worker: makes room (a pop), fences, wakes.
            room.store(true, Ordering::Relaxed);
            waiters.fence();
            waiters.wake(0);
            producer.join().expect("producer thread");
        });
    }
}
