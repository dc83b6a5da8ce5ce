//! Waiting for a frontier: the threads and tasks that wait for the sealed or the durable
//! frontier to reach a commit, woken by whoever moves it, without polling and without a lost
//! wake-up.
//!
//! A [`Watch`] is a list of waiters, each with the commit it waits for (its *target*), kept in
//! a map ordered by target under a mutex, and a count of them beside it. Whoever moves the
//! frontier [`ring`](Watch::ring)s with the frontier it reached: with nobody waiting that is a
//! fence and one load of the count, and nothing else (no lock, no frontier computed); otherwise
//! it takes out the waiters whose target is reached, and only those, and wakes each. A failure
//! ([`ring_all`](Watch::ring_all)) wakes them all.
//!
//! A waiter is a parked thread ([`block`](Watch::block), behind `wait_sealed` and
//! `wait_durable`) or a task's waker ([`poll`](Watch::poll) and [`cancel`](Watch::cancel),
//! behind their async twins). Every waiter woken is taken out of the list by the ringer, and
//! every waiter that stops waiting takes itself out (a dropped future in its `Drop`), so the
//! list holds only live waits. Since a ring wakes every waiter it concerns, rather than handing
//! one notification to one of them, a waiter that goes away cannot take a wake-up another
//! needed.
//!
//! Our own list rather than the `event-listener` crate: the ringer's cost when nobody waits
//! must be one load (the wake-ups come from a worker's turn); targets let a ring wake only the
//! waiters it concerns, where a plain listener list would wake every waiter at every advance;
//! and the handshake is the bells' (`crate::ingest::bell`), checked by the loom models below.
//!
//! # Orderings
//!
//! The bells' store-then-load handshake, with the count as the flag. A waiter inserts itself
//! and stores the count under the lock, fences (SeqCst), then looks at the frontier once more;
//! a ringer stores the frontier, fences (SeqCst) in [`ring`](Watch::ring), then loads the
//! count. Whichever fence comes first in the single SeqCst order, the other side's load sees
//! the store before it: the waiter sees the frontier and stops waiting, or the ringer sees the
//! count and takes the lock. The lock then comes after the waiter's insertion (a lock taken
//! before it could not have let the ringer read the count the insertion stored), so the
//! ringer finds the waiter and wakes it.

use std::collections::BTreeMap;
use std::task::Waker;

use crossbeam::utils::CachePadded;

use crate::ingest::bell::{Sleeper, Wake};
use crate::sync::{fence, AtomicUsize, Mutex, MutexGuard, Ordering};

/// Threads and tasks waiting for a frontier to reach their commits (module doc).
#[derive(Debug)]
pub(crate) struct Watch<T = std::thread::Thread> {
    /// How many waiters the list holds: the ringer's one look when nobody waits.
    waiting: CachePadded<AtomicUsize>,
    list: Mutex<List<T>>,
}

#[derive(Debug)]
struct List<T> {
    /// Waiters by (target, id): a ring takes a prefix.
    waiters: BTreeMap<Ticket, Sleeper<T>>,
    next: u64,
}

/// A waiter's place in a [`Watch`]: its target, then a number no other waiter has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket {
    target: u64,
    id: u64,
}

impl<T> Default for Watch<T> {
    fn default() -> Self {
        Self {
            waiting: CachePadded::new(AtomicUsize::new(0)),
            list: Mutex::new(List { waiters: BTreeMap::new(), next: 0 }),
        }
    }
}

impl<T: Wake> Watch<T> {
    fn list(&self) -> MutexGuard<'_, List<T>> {
        // Holders only move waiters in and out of the map; a panic inside cannot leave it torn.
        self.list.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores the count: under the lock, so counts are stored in the order the list changed.
    fn count(&self, list: &List<T>) {
        // Relaxed: the waiter's SeqCst fence after the unlock orders it (module doc); a ringer
        // reading a stale non-zero count only takes the lock for nothing.
        self.waiting.store(list.waiters.len(), Ordering::Relaxed);
    }

    /// Adds a waiter for `target`, then fences: the caller looks at the frontier next.
    fn insert(&self, target: u64, sleeper: Sleeper<T>) -> Ticket {
        let mut list = self.list();
        let ticket = Ticket { target, id: list.next };
        list.next += 1;
        list.waiters.insert(ticket, sleeper);
        self.count(&list);
        drop(list);
        // SeqCst: the waiting side's fence of the handshake (module doc).
        fence(Ordering::SeqCst);
        ticket
    }

    fn remove(&self, ticket: Ticket) {
        let mut list = self.list();
        if list.waiters.remove(&ticket).is_some() {
            self.count(&list);
        }
    }

    /// Blocks the calling thread (`current`) until `ready()`, or until `park` gives up (it
    /// parks, and returns false once a deadline has passed); true if ready. `park` may return
    /// early: readiness is looked at again.
    pub(crate) fn block(
        &self,
        target: u64,
        current: T,
        mut ready: impl FnMut() -> bool,
        mut park: impl FnMut() -> bool,
    ) -> bool
    where
        T: Clone,
    {
        loop {
            // One whole handshake per round: a ring may have taken the last one out.
            let ticket = self.insert(target, Sleeper::Thread(current.clone()));
            let done = ready();
            let go_on = !done && park();
            self.remove(ticket);
            if done || !go_on {
                return done;
            }
        }
    }

    /// A task's wait for `target`, from its future's `poll`: true if `ready()`, and then the
    /// task holds no place in the list any more; false if the future is to return `Pending`,
    /// `waker` registered (or refreshed in the place `ticket` holds) to be woken once a ring
    /// reaches `target`.
    pub(crate) fn poll(
        &self,
        ticket: &mut Option<Ticket>,
        target: u64,
        waker: &Waker,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        if ready() {
            self.cancel(ticket);
            return true;
        }
        if let Some(held) = *ticket {
            let mut list = self.list();
            if let Some(sleeper) = list.waiters.get_mut(&held) {
                // Still in the list: no ring has reached it since its handshake (a ring under
                // way takes the lock after this and wakes the waker stored here).
                if !sleeper.wakes(waker) {
                    *sleeper = Sleeper::Task(waker.clone());
                }
                return false;
            }
        }
        // Not in the list (first poll, or a ring took it out): a new handshake.
        *ticket = Some(self.insert(target, Sleeper::Task(waker.clone())));
        if ready() {
            self.cancel(ticket);
            return true;
        }
        false
    }

    /// A task stops waiting (done, or its future dropped): its place, if it still has one,
    /// goes. Nothing of the wait is left, and no other waiter's wake-up depends on it.
    pub(crate) fn cancel(&self, ticket: &mut Option<Ticket>) {
        if let Some(ticket) = ticket.take() {
            self.remove(ticket);
        }
    }

    /// The frontier moved (stored before this call): wakes the waiters whose target is at or
    /// below `reached()`, which is computed only if someone waits.
    pub(crate) fn ring(&self, reached: impl FnOnce() -> u64) {
        // SeqCst: the ringing side's fence of the handshake (module doc): the frontier stored
        // before this call comes before the count's load.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence just above.
        if self.waiting.load(Ordering::Relaxed) != 0 {
            self.wake_due(Some(reached()));
        }
    }

    /// Wakes every waiter (a failure: they look again and find out).
    pub(crate) fn ring_all(&self) {
        // SeqCst: as in `ring`; the failure stored before this call comes before the load.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence just above.
        if self.waiting.load(Ordering::Relaxed) != 0 {
            self.wake_due(None);
        }
    }

    /// Takes out the waiters with a target at or below `reached` (all of them for `None`) and
    /// wakes them, with the lock released.
    #[cold]
    fn wake_due(&self, reached: Option<u64>) {
        let mut list = self.list();
        let due = match reached.and_then(|reached| reached.checked_add(1)) {
            Some(above) => {
                let later = list.waiters.split_off(&Ticket { target: above, id: 0 });
                std::mem::replace(&mut list.waiters, later)
            }
            None => std::mem::take(&mut list.waiters),
        };
        self.count(&list);
        drop(list);
        for sleeper in due.values() {
            sleeper.wake();
        }
    }

    /// How many waiters the list holds (the tests check that none is left behind).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list().waiters.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, AtomicUsize as StdAtomicUsize};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake as TaskWake};

    use super::*;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(StdAtomicUsize);

    impl TaskWake for Count {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A future waiting on `watch` for `frontier` to reach `target`.
    struct Wait<'a> {
        watch: &'a Watch,
        frontier: &'a AtomicU64,
        target: u64,
        ticket: Option<Ticket>,
    }

    impl Future for Wait<'_> {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let this = &mut *self;
            let (frontier, target) = (this.frontier, this.target);
            let ready = || frontier.load(Ordering::Relaxed) >= target;
            if this.watch.poll(&mut this.ticket, target, cx.waker(), ready) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    impl Drop for Wait<'_> {
        fn drop(&mut self) {
            self.watch.cancel(&mut self.ticket);
        }
    }

    /// A ring wakes the waiters it reached and only them; dropped waits leave nothing; a ring
    /// with nobody waiting does not compute its frontier.
    #[test]
    fn a_ring_wakes_the_waiters_it_reached_and_drops_leave_nothing() {
        let watch = Watch::default();
        let frontier = AtomicU64::new(0);
        let counts: Vec<Arc<Count>> = (0..3).map(|_| Arc::default()).collect();
        let mut waits: Vec<Wait<'_>> =
            (1..=3).map(|target| Wait { watch: &watch, frontier: &frontier, target, ticket: None }).collect();
        for (wait, count) in waits.iter_mut().zip(&counts) {
            let waker = Waker::from(count.clone());
            assert!(Pin::new(wait).poll(&mut Context::from_waker(&waker)).is_pending());
        }
        // Polled again with the same waker: still one place each.
        let waker = Waker::from(counts[0].clone());
        assert!(Pin::new(&mut waits[0]).poll(&mut Context::from_waker(&waker)).is_pending());
        assert_eq!(watch.len(), 3);

        frontier.store(2, Ordering::Relaxed);
        watch.ring(|| 2);
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::Relaxed)).collect();
        assert_eq!(woken, [1, 1, 0], "the waiters for 1 and 2, not the one for 3");
        assert_eq!(watch.len(), 1);
        for wait in &mut waits[..2] {
            let waker = Waker::from(counts[0].clone());
            assert!(Pin::new(wait).poll(&mut Context::from_waker(&waker)).is_ready());
        }

        drop(waits);
        assert_eq!(watch.len(), 0, "a dropped wait leaves its place");
        watch.ring(|| unreachable!("nobody waits: no frontier is computed"));
        watch.ring_all();
    }

    /// A parked thread is woken by the ring that reaches its target, and a deadline ends it.
    #[test]
    fn a_blocked_thread_is_woken_or_gives_up() {
        let watch = Arc::new(Watch::default());
        let frontier = Arc::new(AtomicU64::new(0));
        let waiter = {
            let (watch, frontier) = (watch.clone(), frontier.clone());
            std::thread::spawn(move || {
                let ready = || frontier.load(Ordering::Relaxed) >= 5;
                watch.block(5, std::thread::current(), ready, || {
                    std::thread::park();
                    true
                })
            })
        };
        while watch.len() == 0 {
            std::thread::yield_now();
        }
        frontier.store(5, Ordering::Relaxed);
        watch.ring(|| 5);
        assert!(waiter.join().expect("waiter"));
        let gave_up = watch.block(9, std::thread::current(), || false, || false);
        assert!(!gave_up);
        assert_eq!(watch.len(), 0);
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use std::future::poll_fn;
    use std::task::Poll;

    use super::*;
    use crate::sync::AtomicU64;
    use loom::sync::Arc;
    use loom::thread;

    /// A thread waits for commit 1 while a worker moves the frontier to 1 and rings: the
    /// waiter sees the frontier or is woken. A lost wake-up leaves it parked for good, which
    /// loom reports as a deadlock.
    #[test]
    fn loom_watch_wakes_a_thread() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let watch = Arc::new(Watch::<loom::thread::Thread>::default());
            let frontier = Arc::new(AtomicU64::new(0));
            let waiter = {
                let (watch, frontier) = (watch.clone(), frontier.clone());
                thread::spawn(move || {
                    // Relaxed on purpose: only the handshake's fences may order it.
                    let ready = || frontier.load(Ordering::Relaxed) >= 1;
                    assert!(watch.block(1, thread::current(), ready, || {
                        thread::park();
                        true
                    }));
                })
            };
            // The worker: publishes, then rings. Relaxed on purpose, as above.
            frontier.store(1, Ordering::Relaxed);
            watch.ring(|| 1);
            waiter.join().expect("waiter thread");
            assert_eq!(watch.len(), 0);
        });
    }

    /// The same hand-off for a task: a future registers its waker, looks at the frontier, and
    /// returns `Pending`, while a worker moves the frontier and rings. loom's `block_on` parks
    /// its thread while the future is pending, so a lost wake-up is a deadlock. A second task
    /// waits for a later commit the worker never reaches and is then dropped: its place goes
    /// with it.
    #[test]
    fn loom_watch_wakes_a_task_and_a_dropped_wait_leaves_nothing() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let watch = Arc::new(Watch::<loom::thread::Thread>::default());
            let frontier = Arc::new(AtomicU64::new(0));
            let waiter = {
                let (watch, frontier) = (watch.clone(), frontier.clone());
                thread::spawn(move || {
                    let mut ticket = None;
                    loom::future::block_on(poll_fn(|cx| {
                        // Relaxed on purpose: only the handshake's fences may order it.
                        let ready = || frontier.load(Ordering::Relaxed) >= 1;
                        if watch.poll(&mut ticket, 1, cx.waker(), ready) {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    }));
                    assert!(ticket.is_none(), "a finished wait holds no place");
                    // A wait for commit 2, polled once, then dropped (cancelled).
                    let mut ticket = None;
                    let ready = || frontier.load(Ordering::Relaxed) >= 2;
                    assert!(!watch.poll(&mut ticket, 2, Waker::noop(), ready));
                    watch.cancel(&mut ticket);
                })
            };
            // Relaxed on purpose, as above.
            frontier.store(1, Ordering::Relaxed);
            watch.ring(|| 1);
            waiter.join().expect("waiter thread");
            assert_eq!(watch.len(), 0, "no place left behind");
        });
    }
}
