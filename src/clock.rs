//! The commit counter and the sealed frontier.
//!
//! One cache-padded counter issues commit numbers 1, 2, 3, … with no gaps. The *frontier* is
//! the largest commit `F` such that every commit `<= F` has been fully handed to the queues.
//! Tracking it costs no shared write per commit beyond the counter itself: each producer owns a
//! cache-padded slot in which it announces the commit it is working on.
//!
//! # Orderings
//!
//! A producer commits in three steps: **announce** (store the counter's current value `a` in
//! its slot, then a SeqCst fence `P`), **take** (`fetch_add` on the counter, AcqRel; it returns
//! `c >= a`), and, once every part is enqueued, **retire** (store [`IDLE`] in its slot, Release).
//!
//! [`Clock::frontier`] loads the counter (`n`, Acquire), then the slots (Acquire), and returns
//! `min(n, slots) - 1`. It never passes an unfinished commit `c`:
//!
//! * if the counter load read `c`'s take or a later one (`n > c`), it synchronizes with that take
//!   (the takes form one release sequence), so `c`'s announcement happens before the slot load,
//!   which therefore sees the announcement `a <= c` or a later store: the retire (commit `c`
//!   finished) or a later announcement, which the same producer makes only after retiring `c`;
//! * if it did not (`n <= c`), the counter alone keeps the frontier below `c`.
//!
//! A slot load that returns a retire synchronizes with it, so the worker that computed the
//! frontier also sees every part the producer enqueued before retiring: the frontier is safe to
//! act on.
//!
//! Closing is the same fence-against-fence pattern: a producer announces, fences, then loads
//! `closed`; the closer stores `closed`, fences, then loads the slots. Whichever fence comes
//! first in the SeqCst order, one side sees the other's store, so no commit slips in after the
//! closer has seen every slot idle. (Fences rather than SeqCst accesses: the argument is the
//! standard one, and loom checks fences exactly.)

use crossbeam::utils::CachePadded;

use crate::sync::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// A slot value that announces nothing. It is `u64::MAX` so the frontier's `min` ignores it.
pub(crate) const IDLE: u64 = u64::MAX;

/// The commit counter, the producer slots and the closed flag.
#[derive(Debug)]
pub(crate) struct Clock {
    /// The next commit number to issue; commits `1..next` have been issued.
    next: CachePadded<AtomicU64>,
    slots: Box<[CachePadded<Slot>]>,
    /// One past the highest slot ever claimed, so the frontier scans only slots in use.
    in_use: CachePadded<AtomicUsize>,
    closed: AtomicBool,
}

#[derive(Debug)]
struct Slot {
    /// [`IDLE`], or a lower bound of the commit its producer is handing to the queues.
    announced: AtomicU64,
    owned: AtomicBool,
}

/// The clock took no commit number: it is closed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed;

impl Clock {
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            next: CachePadded::new(AtomicU64::new(1)),
            slots: (0..slots)
                .map(|_| {
                    CachePadded::new(Slot { announced: AtomicU64::new(IDLE), owned: AtomicBool::new(false) })
                })
                .collect(),
            in_use: CachePadded::new(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
        }
    }

    /// Claims a free producer slot, or `None` if every slot is owned.
    pub(crate) fn claim(&self) -> Option<usize> {
        let index = self.slots.iter().position(|slot| {
            // Acquire: pairs with `release` so the previous owner's last retire is seen first.
            slot.owned.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
        })?;
        // Relaxed: sequenced before this slot's first announcement fence, which orders it for
        // every frontier scan and closer that must see the slot (module doc).
        self.in_use.fetch_max(index + 1, Ordering::Relaxed);
        Some(index)
    }

    /// Gives a slot back; its owner has retired every commit it began.
    pub(crate) fn release(&self, slot: usize) {
        debug_assert_eq!(self.slots[slot].announced.load(Ordering::Relaxed), IDLE);
        // Release: the next claimer (Acquire) starts after everything this owner did.
        self.slots[slot].owned.store(false, Ordering::Release);
    }

    /// Announces and takes the next commit number for `slot`, or refuses once closed.
    pub(crate) fn begin(&self, slot: usize) -> Result<u64, Closed> {
        let announced = &self.slots[slot].announced;
        // Relaxed: coherence alone makes the `fetch_add` below return a value >= this one.
        let lower_bound = self.next.load(Ordering::Relaxed);
        // Relaxed: the fence below orders it for frontier readers and the closer.
        announced.store(lower_bound, Ordering::Relaxed);
        // SeqCst: fence `P` of the module doc.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence against the closer's fence.
        if self.closed.load(Ordering::Relaxed) {
            // Relaxed: nothing was taken or enqueued; this only withdraws the announcement.
            announced.store(IDLE, Ordering::Relaxed);
            return Err(Closed);
        }
        // AcqRel: Release so a frontier reader that sees this take also sees fence `P`.
        Ok(self.next.fetch_add(1, Ordering::AcqRel))
    }

    /// Marks the commit `slot` began as fully enqueued.
    pub(crate) fn retire(&self, slot: usize) {
        // Release: publishes every enqueue above to the frontier reader that loads this slot.
        self.slots[slot].announced.store(IDLE, Ordering::Release);
    }

    /// The largest commit `F` such that every commit `<= F` is fully enqueued.
    pub(crate) fn frontier(&self) -> u64 {
        // Acquire: synchronizes with the takes it counts, so their fences precede `R`.
        let mut lowest = self.next.load(Ordering::Acquire);
        // Relaxed: the Acquire above orders it after the claims of every producer counted.
        let in_use = self.in_use.load(Ordering::Relaxed);
        for slot in &self.slots[..in_use] {
            // Acquire: a retire seen here carries that producer's enqueues with it.
            lowest = lowest.min(slot.announced.load(Ordering::Acquire));
        }
        lowest - 1
    }

    /// The last commit issued so far (0 before the first).
    pub(crate) fn issued(&self) -> u64 {
        // Acquire: a reader after `wait_idle` sees the final count.
        self.next.load(Ordering::Acquire) - 1
    }

    /// Stops issuing commit numbers: every later `begin` returns [`Closed`].
    pub(crate) fn close(&self) {
        // Relaxed: `all_idle` fences after it (module doc).
        self.closed.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_closed(&self) -> bool {
        // Relaxed: advisory; `begin` makes the authoritative check.
        self.closed.load(Ordering::Relaxed)
    }

    /// True when no producer is between `begin` and `retire`. After `close`, once this is true
    /// it stays true and [`Clock::issued`] is final.
    pub(crate) fn all_idle(&self) -> bool {
        // SeqCst: the closer's fence, after its `closed` store in `close` (module doc).
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence, like the frontier's scan.
        let in_use = self.in_use.load(Ordering::Relaxed);
        // Acquire: a retire seen here makes that commit's take visible to `issued`.
        self.slots[..in_use].iter().all(|slot| slot.announced.load(Ordering::Acquire) == IDLE)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn frontier_waits_for_the_oldest_unfinished_commit() {
        let clock = Clock::new(2);
        let (a, b) = (clock.claim().expect("free slot"), clock.claim().expect("free slot"));
        assert_eq!(clock.claim(), None);
        assert_eq!(clock.frontier(), 0);
        let first = clock.begin(a).expect("open");
        let second = clock.begin(b).expect("open");
        assert_eq!((first, second), (1, 2));
        clock.retire(b);
        assert_eq!(clock.frontier(), 0, "commit 1 is still in flight");
        clock.retire(a);
        assert_eq!(clock.frontier(), 2);
        clock.release(a);
        assert_eq!(clock.claim(), Some(a));
    }

    #[test]
    fn a_closed_clock_issues_nothing() {
        let clock = Clock::new(1);
        let slot = clock.claim().expect("free slot");
        clock.close();
        assert_eq!(clock.begin(slot), Err(Closed));
        assert_eq!(clock.issued(), 0);
        assert!(clock.all_idle());
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Bounded preemptions keep the models to seconds; the bugs they target (a missing
    /// SeqCst, a wrong load order) need only one or two preemptions to show.
    fn model(body: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(body);
    }

    /// Two producers commit while a reader computes the frontier: whatever the interleaving,
    /// every commit at or below a frontier the reader saw was fully enqueued (its "part" flag
    /// is set and visible), and the frontier never goes back.
    #[test]
    fn loom_frontier_never_passes_an_unfinished_commit() {
        model(|| {
            let clock = Arc::new(Clock::new(2));
            // parts[c - 1] stands for "commit c's parts are in the queue".
            let parts = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
            let slots = [clock.claim().expect("free slot"), clock.claim().expect("free slot")];
            let producers: Vec<_> = slots
                .into_iter()
                .map(|slot| {
                    let (clock, parts) = (clock.clone(), parts.clone());
                    thread::spawn(move || {
                        let commit = clock.begin(slot).expect("open");
                        // Relaxed on purpose: only the clock's orderings may make it visible.
                        parts[commit as usize - 1].store(true, Ordering::Relaxed);
                        clock.retire(slot);
                    })
                })
                .collect();
            let mut last = 0;
            for _ in 0..2 {
                let frontier = clock.frontier();
                assert!(frontier >= last, "frontier went back");
                for commit in 1..=frontier {
                    // Relaxed on purpose: seen only if the frontier's Acquire loads carried it.
                    assert!(parts[commit as usize - 1].load(Ordering::Relaxed), "commit {commit} unfinished");
                }
                last = frontier;
            }
            for producer in producers {
                producer.join().expect("producer thread");
            }
            assert_eq!(clock.frontier(), 2);
        });
    }

    /// A producer racing `close`: either its commit is taken before the closer sees every slot
    /// idle (and then `issued` counts it), or it is refused. Never a commit after the final count.
    #[test]
    fn loom_close_is_exact() {
        model(|| {
            let clock = Arc::new(Clock::new(1));
            let producer = {
                let clock = clock.clone();
                thread::spawn(move || {
                    let slot = clock.claim().expect("one slot");
                    let taken = clock.begin(slot).is_ok();
                    if taken {
                        clock.retire(slot);
                    }
                    taken
                })
            };
            clock.close();
            while !clock.all_idle() {
                thread::yield_now();
            }
            let issued = clock.issued();
            let taken = producer.join().expect("producer thread");
            assert_eq!(clock.issued(), issued, "a commit was issued after the final count");
            assert_eq!(issued, u64::from(taken));
        });
    }
}
