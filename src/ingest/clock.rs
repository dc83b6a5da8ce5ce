//! The commit counter and the sealed frontier.
//!
//! One cache-padded counter issues commit numbers 1, 2, 3, … with no gaps. The *frontier* is
//! the largest commit `F` such that every commit `<= F` has been fully handed to the queues.
//! Tracking it costs no shared write per commit beyond the counter itself: each producer owns a
//! cache-padded slot in which it announces the commit it is working on. Closing is a bit of the
//! counter, so a producer learns its number and whether it was refused from one `fetch_add`,
//! with no fence.
//!
//! # Orderings
//!
//! A producer commits in three steps: **announce** (load the counter's current value `a`,
//! Relaxed, and store it in its slot, Release), **take** (`fetch_add` on the counter, Release;
//! it returns `c >= a`), and, once every part is enqueued, **retire** (store [`IDLE`] in its
//! slot, Release).
//!
//! [`Clock::frontier`] loads the counter (`n`, Acquire), then the slots (Acquire), and returns
//! `min(n, slots) - 1`. It never passes an unfinished commit `c`:
//!
//! * if the counter load read `c`'s take or a later one (`n > c`), it synchronizes with that take
//!   (every write to the counter is a read-modify-write, so the takes form one release
//!   sequence), so `c`'s announcement happens before the slot load, which therefore sees the
//!   announcement `a <= c` or a later store of that slot: the retire (commit `c` finished), or a
//!   later announcement or withdrawal, which the producer makes only after retiring `c`;
//! * if it did not (`n <= c`), the counter alone keeps the frontier below `c`.
//!
//! Each slot value a reading can act on carries the producer's enqueues with it: a retire and a
//! withdrawal are Release stores, and so is an announcement, because the next announcement is
//! what a reader may see in place of the retire before it (a Relaxed announcement there let a
//! reading count a commit whose parts it could not see; the loom model with two commits on one
//! producer found it).
//!
//! **Batches.** [`Clock::begin_many`] takes several consecutive numbers with one announcement,
//! which then holds all of them back. A producer that must wait for room in a queue first
//! *advances* its announcement to the commit it is enqueueing ([`Clock::advance`], Release):
//! every commit of the batch below it is fully enqueued, so the argument above holds with the
//! advance in place of the announcement (a reader that sees it sees those enqueues; a reader
//! that sees the older announcement holds the frontier lower still). Without it the frontier
//! stayed below the whole batch while the batch waited for room the workers would only make
//! once the frontier moved (`crate::shard::worker`, "Producers ahead wait").
//!
//! **Given numbers** (a sequenced pipeline, `crate::ingest::sequencer`). One slot, the only
//! one that ever takes a number, takes numbers it is given instead of the next one:
//! [`Clock::begin_at`] loads the counter (`seen`, Relaxed), announces the given number `g >=
//! seen` (Release), and takes by compare-and-swap from `seen` to `g + 1` (Release). The
//! numbers `seen..g` are commits with nothing in them: nothing of theirs is ever enqueued, so
//! the frontier may pass them, and it does so only through the take, which also carries the
//! announcement of `g`. The argument above holds with `g` for `a`: a reading that sees the take
//! sees the announcement (the take is a read-modify-write of the counter, in the same release
//! sequence as every other write to it) or a later store of the slot. With no other taker the
//! swap fails only when a close set [`CLOSED`] in between: the number is then not issued, and
//! the slot withdraws its announcement. [`Clock::advance_to`] moves the counter the same way
//! with no announcement (the slot is idle: every earlier commit retired), so a reading that
//! sees it passes only numbers with nothing in them, and the retires before it.
//!
//! **The frontier is a safe lower bound, not a monotone one.** A producer may load `a`, be
//! descheduled while others take and retire `a, a + 1, …`, and announce the stale `a` after a
//! reading that already counted those commits; the next reading then returns less. Each reading
//! is safe on its own, so the maximum of several is too: consumers keep the largest they have
//! seen (the workers do). The loom model checks both that readings go back and that each is safe.
//!
//! **Closing** sets [`CLOSED`], the counter's top bit, by compare-and-swap, after raising
//! `closed_at` to the counter's value. The counter's modification order decides every race with
//! it: a take before the CAS has a number (it is issued), a take after it returns `CLOSED` and
//! is refused. The number a refused take added is never issued; readers that see `CLOSED` use
//! `closed_at` instead of the counter (the CAS is Release and the refused takes continue its
//! release sequence, so a reader that sees the bit sees `closed_at`). A producer checks the bit
//! in its announce load before taking, so at most one refused take per producer ever lands (it
//! adds at most 2^32, the most numbers one take asks for): the counter cannot run into its top
//! bit. The closer's CAS is Acquire, so it synchronizes with
//! every take before it, and [`Clock::all_idle`] then sees each such commit's announcement or
//! retire: no fence on either side.

use crossbeam::utils::CachePadded;

use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// A slot value that announces nothing. It is `u64::MAX` so the frontier's `min` ignores it.
pub(crate) const IDLE: u64 = u64::MAX;

/// The counter's top bit: set once the clock is closed; the number is in the bits below.
const CLOSED: u64 = 1 << 63;

/// The largest number [`Clock::begin_at`] and [`Clock::advance_to`] take: the counter then
/// holds one more, still below [`CLOSED`].
pub(crate) const MAX_GIVEN: u64 = CLOSED - 2;

/// The commit counter, the producer slots and the closed flag.
#[derive(Debug)]
pub(crate) struct Clock {
    /// The next commit number to issue (commits `1..next` have been issued), and [`CLOSED`]
    /// once closed; then the number bits are past the last issued by refused takes.
    next: CachePadded<AtomicU64>,
    /// The counter's value when it closed; read only after seeing [`CLOSED`].
    closed_at: AtomicU64,
    slots: Box<[CachePadded<Slot>]>,
    /// One past the highest slot ever claimed, so the frontier scans only slots in use.
    in_use: CachePadded<AtomicUsize>,
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

/// Why the clock took no given number.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Given {
    /// It is closed.
    Closed,
    /// The number is not above `last`, the last one issued.
    Behind {
        /// The last number issued.
        last: u64,
    },
}

impl Clock {
    #[cfg(any(test, feature = "internal-bench"))]
    pub(crate) fn new(slots: usize) -> Self {
        Self::after(slots, 0)
    }

    /// A clock whose first commit is `last + 1`: commits up to `last` were issued before (a
    /// recovered durable pipeline).
    pub(crate) fn after(slots: usize, last: u64) -> Self {
        Self {
            next: CachePadded::new(AtomicU64::new(last + 1)),
            closed_at: AtomicU64::new(0),
            slots: (0..slots)
                .map(|_| {
                    CachePadded::new(Slot { announced: AtomicU64::new(IDLE), owned: AtomicBool::new(false) })
                })
                .collect(),
            in_use: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Claims a free producer slot, or `None` if every slot is owned.
    pub(crate) fn claim(&self) -> Option<usize> {
        let index = self.slots.iter().position(|slot| {
            // Acquire: pairs with `release` so the previous owner's last retire is seen first.
            slot.owned.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
        })?;
        // Relaxed: sequenced before this slot's first take (Release), so every frontier reader
        // and closer that synchronizes with that take scans the slot (module doc).
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
    #[cfg(any(test, feature = "internal-bench"))]
    pub(crate) fn begin(&self, slot: usize) -> Result<u64, Closed> {
        self.begin_many(slot, 1)
    }

    /// Announces and takes `count` consecutive commit numbers for `slot` (one counter step),
    /// returning the first, or refuses once closed. The announcement holds all of them back
    /// until `retire`, as it holds one: the argument of the module doc is unchanged.
    pub(crate) fn begin_many(&self, slot: usize, count: u64) -> Result<u64, Closed> {
        let announced = &self.slots[slot].announced;
        // Relaxed: coherence alone makes the `fetch_add` below return a value >= this one.
        let seen = self.next.load(Ordering::Relaxed);
        if seen & CLOSED != 0 {
            return Err(Closed);
        }
        // Release: a reader that sees this in place of the previous retire sees what it carried.
        announced.store(seen, Ordering::Release);
        // Release: a frontier reader or closer that sees this take sees the announcement above.
        let taken = self.next.fetch_add(count, Ordering::Release);
        if taken & CLOSED != 0 {
            // Release: like the announcement, it may be read in place of the previous retire.
            announced.store(IDLE, Ordering::Release);
            return Err(Closed);
        }
        Ok(taken)
    }

    /// Announces that every commit `slot` began below `commit` is fully enqueued, while
    /// `commit` itself is not: a batch (`begin_many`) moves its announcement up as it goes.
    /// `commit` must be at most the lowest commit of the batch not yet fully enqueued.
    pub(crate) fn advance(&self, slot: usize, commit: u64) {
        // Release: publishes the enqueues of the commits below `commit` to the frontier reader
        // that loads this slot, as a retire does (module doc, "Batches").
        self.slots[slot].announced.store(commit, Ordering::Release);
    }

    /// Announces and takes the given commit number `number` for `slot`, the clock's only taker
    /// (module doc, "Given numbers"). Refuses a number below the next one without touching
    /// anything ([`Given::Behind`], with the last number issued), and refuses once closed.
    /// The caller keeps `number + 1` below [`CLOSED`].
    pub(crate) fn begin_at(&self, slot: usize, number: u64) -> Result<(), Given> {
        debug_assert!(number <= MAX_GIVEN);
        let announced = &self.slots[slot].announced;
        // Relaxed: with no other taker only a close can change it; the swap below checks that.
        let seen = self.next.load(Ordering::Relaxed);
        if seen & CLOSED != 0 {
            return Err(Given::Closed);
        }
        if number < seen {
            return Err(Given::Behind { last: seen - 1 });
        }
        // Release: a reader that sees this in place of the previous retire sees what it carried.
        announced.store(number, Ordering::Release);
        // Release: a frontier reader or closer that sees this take sees the announcement above.
        match self.next.compare_exchange(seen, number + 1, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => Ok(()),
            Err(_) => {
                // Release: like the announcement, it may be read in place of the previous retire.
                announced.store(IDLE, Ordering::Release);
                Err(Given::Closed)
            }
        }
    }

    /// Issues every number up to `number` as a commit with nothing in it, by the clock's only
    /// taker while its slot is idle (module doc, "Given numbers"). A number at or below the last
    /// issued changes nothing. Refuses once closed. The caller keeps `number + 1` below
    /// [`CLOSED`].
    pub(crate) fn advance_to(&self, number: u64) -> Result<(), Given> {
        debug_assert!(number <= MAX_GIVEN);
        // Relaxed: with no other taker only a close can change it; the swap below checks that.
        let seen = self.next.load(Ordering::Relaxed);
        if seen & CLOSED != 0 {
            return Err(Given::Closed);
        }
        if number < seen {
            return Ok(());
        }
        // Release: a reader that sees the new count sees the retires before it (the taker's).
        match self.next.compare_exchange(seen, number + 1, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => Ok(()),
            Err(_) => Err(Given::Closed),
        }
    }

    /// Marks the commit `slot` began as fully enqueued.
    pub(crate) fn retire(&self, slot: usize) {
        // Release: publishes every enqueue above to the frontier reader that loads this slot.
        self.slots[slot].announced.store(IDLE, Ordering::Release);
    }

    /// The next number to issue, from a counter value loaded with Acquire.
    fn number(&self, next: u64) -> u64 {
        if next & CLOSED == 0 {
            next
        } else {
            // Relaxed: the Acquire load that saw `CLOSED` ordered the closer's store before it.
            self.closed_at.load(Ordering::Relaxed)
        }
    }

    /// A commit `F` such that every commit `<= F` is fully enqueued: the largest such, as far
    /// as this reading can tell. Two readings need not be ordered (module doc): keep the maximum.
    pub(crate) fn frontier(&self) -> u64 {
        // Acquire: synchronizes with the takes it counts, so their announcements precede the scan.
        let mut lowest = self.number(self.next.load(Ordering::Acquire));
        // Relaxed: the Acquire above orders it after the claims of every producer counted.
        let in_use = self.in_use.load(Ordering::Relaxed);
        for slot in &self.slots[..in_use] {
            // Acquire: a retire seen here carries that producer's enqueues with it.
            lowest = lowest.min(slot.announced.load(Ordering::Acquire));
        }
        lowest - 1
    }

    /// The last commit issued so far (0 before the first); final once closed.
    pub(crate) fn issued(&self) -> u64 {
        // Acquire: a reader that sees `CLOSED` sees `closed_at` (see `number`).
        self.number(self.next.load(Ordering::Acquire)) - 1
    }

    /// Stops issuing commit numbers: every later `begin` returns [`Closed`]. Returns the last
    /// commit issued, which is final. Closers may race (today only `Pipeline::finish`, which
    /// holds `&mut`, closes): each stores a counter value at most the final one, the winner the
    /// final one itself, and `closed_at` keeps the largest.
    pub(crate) fn close(&self) -> u64 {
        // Relaxed: the compare-and-swap below checks it.
        let mut current = self.next.load(Ordering::Relaxed);
        loop {
            if current & CLOSED != 0 {
                return self.issued();
            }
            // Relaxed: published by the Release compare-and-swap below, which sets `CLOSED`. A
            // maximum, so a racing closer's older value cannot replace the final one.
            self.closed_at.fetch_max(current, Ordering::Relaxed);
            // AcqRel: Acquire to synchronize with every take before it (then `all_idle` sees
            // their announcements); Release to publish `closed_at` with the bit.
            match self.next.compare_exchange_weak(
                current,
                current | CLOSED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return current - 1,
                Err(actual) => current = actual,
            }
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        // Relaxed: advisory; `begin` makes the authoritative check.
        self.next.load(Ordering::Relaxed) & CLOSED != 0
    }

    /// After [`Clock::close`], by the closer: true once every commit issued has retired. (A
    /// producer refused by the close may still announce and withdraw for a moment after.)
    pub(crate) fn all_idle(&self) -> bool {
        // Relaxed: the closer's Acquire compare-and-swap ordered every counted claim before it.
        let in_use = self.in_use.load(Ordering::Relaxed);
        // Acquire: a retire seen here carries that commit's enqueues to the closer.
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
        assert_eq!(clock.close(), 0);
        assert!(clock.is_closed());
        assert_eq!(clock.begin(slot), Err(Closed));
        assert_eq!(clock.issued(), 0);
        assert!(clock.all_idle());
    }

    /// A take that lands after the close (its producer loaded the counter before it) is
    /// refused, and the number it added shows nowhere: not in `issued`, not in the frontier.
    #[test]
    fn a_take_after_the_close_is_refused_and_counts_nowhere() {
        let clock = Clock::new(2);
        let (a, b) = (clock.claim().expect("free slot"), clock.claim().expect("free slot"));
        for expected in 1..=3 {
            assert_eq!(clock.begin(a), Ok(expected));
            clock.retire(a);
        }
        assert_eq!(clock.close(), 3);
        assert_eq!(clock.close(), 3, "closing twice changes nothing");
        // What `begin` does when its announce load came before the close: the take is refused.
        let taken = clock.next.fetch_add(1, Ordering::Relaxed);
        assert_ne!(taken & CLOSED, 0);
        assert_eq!((clock.issued(), clock.frontier()), (3, 3));
        assert_eq!(clock.begin(b), Err(Closed));
        assert!(clock.all_idle());
    }
}

#[cfg(all(test, loom))]
mod loom_models;
