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
//! its slot, SeqCst), **take** (`fetch_add` on the counter, SeqCst; it returns `c >= a`), and,
//! once every part is enqueued, **retire** (store [`IDLE`] in its slot, Release).
//!
//! [`Clock::frontier`] loads the counter (`n`, SeqCst) and *then* every slot (SeqCst) and
//! returns `min(n, slots) - 1`. It never passes an unfinished commit `c`:
//!
//! * if the load of the counter saw `c`'s take (`n > c`), then announce → take → counter load
//!   → slot load is a chain in the single SeqCst order, so the slot load sees the announcement
//!   `a <= c` or a store after it: the retire (commit `c` finished) or a later announcement,
//!   which the same producer makes only after retiring `c`;
//! * if it did not (`n <= c`), the counter alone keeps the frontier below `c`.
//!
//! A slot load that returns a retire (or a later announcement) synchronizes with it, so the
//! worker that computed the frontier also sees every part the producer enqueued before
//! retiring: the frontier is safe to act on.
//!
//! Closing uses the same store-then-load pattern: a producer announces, then loads `closed`; the
//! closer stores `closed`, then waits for every slot to be idle. In the single SeqCst order one
//! of them sees the other, so no commit slips in after the closer has seen every slot idle.

use crossbeam::utils::CachePadded;

use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

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
        // SeqCst: ordered before this slot's first announcement, so a frontier scan whose
        // counter load follows that announcement also sees the slot within `in_use`.
        self.in_use.fetch_max(index + 1, Ordering::SeqCst);
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
        // SeqCst: the announcement must precede the take in the single total order (module doc).
        announced.store(lower_bound, Ordering::SeqCst);
        // SeqCst: store-then-load against `close`, which stores `closed` then loads the slots.
        if self.closed.load(Ordering::SeqCst) {
            // Release: nothing was enqueued; this only withdraws the announcement.
            announced.store(IDLE, Ordering::Release);
            return Err(Closed);
        }
        // SeqCst: the take follows the announcement in the total order (module doc).
        Ok(self.next.fetch_add(1, Ordering::SeqCst))
    }

    /// Marks the commit `slot` began as fully enqueued.
    pub(crate) fn retire(&self, slot: usize) {
        // Release: publishes every enqueue above to the frontier reader that loads this slot.
        self.slots[slot].announced.store(IDLE, Ordering::Release);
    }

    /// The largest commit `F` such that every commit `<= F` is fully enqueued.
    pub(crate) fn frontier(&self) -> u64 {
        // SeqCst: the counter is read before the slots, and after any announcement of a commit
        // it counts (module doc).
        let mut lowest = self.next.load(Ordering::SeqCst);
        // SeqCst: follows the counter load; sees every slot claimed before the commits it counts.
        let in_use = self.in_use.load(Ordering::SeqCst);
        for slot in &self.slots[..in_use] {
            // SeqCst: sees the announcement of any commit the counter load counted; Acquire
            // part: a retire seen here carries that producer's enqueues with it.
            lowest = lowest.min(slot.announced.load(Ordering::SeqCst));
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
        // SeqCst: store-then-load against `begin` (module doc).
        self.closed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        // Relaxed: advisory; `begin` makes the authoritative check.
        self.closed.load(Ordering::Relaxed)
    }

    /// True when no producer is between `begin` and `retire`. After `close`, once this is true
    /// it stays true and [`Clock::issued`] is final.
    pub(crate) fn all_idle(&self) -> bool {
        // SeqCst: follows the `closed` store in `close` in the total order (module doc).
        let in_use = self.in_use.load(Ordering::SeqCst);
        self.slots[..in_use].iter().all(|slot| slot.announced.load(Ordering::SeqCst) == IDLE)
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

    /// Two producers commit while a reader computes the frontier: whatever the interleaving,
    /// every commit at or below a frontier the reader saw was fully enqueued (its "part" flag
    /// is set and visible), and the frontier never goes back.
    #[test]
    fn loom_frontier_never_passes_an_unfinished_commit() {
        loom::model(|| {
            let clock = Arc::new(Clock::new(2));
            // parts[c - 1] stands for "commit c's parts are in the queue".
            let parts = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
            let producers: Vec<_> = (0..2)
                .map(|_| {
                    let (clock, parts) = (clock.clone(), parts.clone());
                    thread::spawn(move || {
                        let slot = clock.claim().expect("two slots for two producers");
                        let commit = clock.begin(slot).expect("open");
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
        loom::model(|| {
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
