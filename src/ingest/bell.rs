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
//!
//! # Tasks
//!
//! A producer awaiting room ([`Producer::commit_async`](crate::Producer::commit_async)) takes
//! the same place in [`Waiters`] as a parked one, with its task's [`Waker`] where a thread
//! would be ([`Sleeper`]): it stores the waker, says it waits, fences and looks for room once
//! more; the worker's side is unchanged, so a drained queue wakes a task exactly as it unparks
//! a thread, for the same single load when nobody waits. Our own slot rather than the
//! `event-listener` crate: a slot has one producer, so one waker per slot is the whole list
//! (no allocation, no queue of listeners to hand a notification on when one is dropped), and
//! the handshake stays the one the loom models here check.

use std::task::Waker;

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

/// Who waits in a list of waiters: a parked thread, or a task through its waker.
#[derive(Debug, Clone)]
pub(crate) enum Sleeper<T> {
    Thread(T),
    Task(Waker),
}

impl<T: Wake> Wake for Sleeper<T> {
    fn wake(&self) {
        match self {
            Sleeper::Thread(thread) => thread.wake(),
            Sleeper::Task(waker) => waker.wake_by_ref(),
        }
    }
}

impl<T> Sleeper<T> {
    /// It is `waker`'s task already (a task polled again need not store its waker again).
    pub(crate) fn wakes(&self, waker: &Waker) -> bool {
        matches!(self, Sleeper::Task(known) if known.will_wake(waker))
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
/// drains a slot's queue wakes its producer (a parked thread, or an awaiting task: module doc,
/// "Tasks"). The same handshake as the bells, the other way
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
    /// The waiting producer's thread or task (a producer may move between threads and tasks,
    /// so it is set on each wait). Held only to store, clone or drop the handle: no
    /// synchronization happens inside.
    sleeper: Mutex<Option<Sleeper<T>>>,
}

impl<T: Wake + Clone> Waiters<T> {
    pub(crate) fn new(slots: usize) -> Self {
        Self(
            (0..slots)
                .map(|_| Waiter {
                    waiting: CachePadded::new(AtomicBool::new(false)),
                    sleeper: Mutex::new(None),
                })
                .collect(),
        )
    }

    fn sleeper(&self, slot: usize) -> MutexGuard<'_, Option<Sleeper<T>>> {
        self.0[slot].sleeper.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Producer slot `slot`'s side, on thread `current`: says it waits, looks for room once
    /// more (`has_room`), and parks (`park`, which may return early) unless there is some.
    pub(crate) fn wait(&self, slot: usize, current: T, has_room: impl FnOnce() -> bool, park: impl FnOnce()) {
        *self.sleeper(slot) = Some(Sleeper::Thread(current));
        doze(&self.0[slot].waiting, has_room, park);
    }

    /// Producer slot `slot`'s side for a task: registers `waker`, says it waits, and looks for
    /// room once more (`has_room`). True if there is room (the registration is then gone);
    /// false if the task is to return `Pending`: the worker that makes room wakes `waker`.
    /// A future that stops waiting without room calls [`cancel`](Waiters::cancel).
    pub(crate) fn poll(&self, slot: usize, waker: &Waker, has_room: impl FnOnce() -> bool) -> bool {
        let mut sleeper = self.sleeper(slot);
        if !sleeper.as_ref().is_some_and(|known| known.wakes(waker)) {
            *sleeper = Some(Sleeper::Task(waker.clone()));
        }
        drop(sleeper);
        let waiter = &self.0[slot];
        // Relaxed: the SeqCst fence just after orders it before the recheck (module doc).
        waiter.waiting.store(true, Ordering::Relaxed);
        // SeqCst: the waiting side's fence of the handshake (module doc).
        fence(Ordering::SeqCst);
        if has_room() {
            self.cancel(slot);
            return true;
        }
        false
    }

    /// Slot `slot`'s task stops waiting (its future is done or dropped): the flag is cleared
    /// and the waker dropped, so nothing of the wait is left behind. The slot has one producer,
    /// so no other waiter's wake-up can be lost here.
    pub(crate) fn cancel(&self, slot: usize) {
        // Relaxed: only a hint to the worker; a stale `true` costs one spurious wake.
        self.0[slot].waiting.store(false, Ordering::Relaxed);
        *self.sleeper(slot) = None;
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
            let sleeper = self.sleeper(slot).clone();
            if let Some(sleeper) = sleeper {
                sleeper.wake();
            }
        }
    }

    /// Slot `slot` holds a waiting thread or task (the tests check that none is left behind).
    #[cfg(test)]
    pub(crate) fn holds(&self, slot: usize) -> bool {
        self.sleeper(slot).is_some()
    }

    /// Wakes every waiting producer (a worker failed, or the pipeline is shutting down: they
    /// look again and find out).
    pub(crate) fn wake_all(&self) {
        // SeqCst: the waking side's fence, as in `fence`: the failure or the closed clock,
        // stored above, comes before the `waiting` loads.
        fence(Ordering::SeqCst);
        for slot in 0..self.0.len() {
            self.wake(slot);
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

    /// The task's side of the room handshake: a future registers its waker, looks for room and
    /// returns `Pending`, while the worker pops, fences and wakes. loom's `block_on` parks the
    /// thread while the future is pending, so a lost wake-up is a deadlock. Then a second wait,
    /// polled once and cancelled while nothing wakes it, leaves the slot empty.
    #[test]
    fn loom_no_lost_room_wakeup_for_a_task() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let waiters = Arc::new(Waiters::<loom::thread::Thread>::new(1));
            let room = Arc::new(AtomicBool::new(false));
            let producer = {
                let (waiters, room) = (waiters.clone(), room.clone());
                thread::spawn(move || {
                    loom::future::block_on(std::future::poll_fn(|cx| {
                        // Relaxed on purpose: only the handshake's fences may order it.
                        if waiters.poll(0, cx.waker(), || room.load(Ordering::Relaxed)) {
                            std::task::Poll::Ready(())
                        } else {
                            std::task::Poll::Pending
                        }
                    }));
                    assert!(!waiters.holds(0), "a finished wait holds no place");
                    assert!(!waiters.poll(0, Waker::noop(), || false));
                    waiters.cancel(0);
                    assert!(!waiters.holds(0), "a cancelled wait holds no place");
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
