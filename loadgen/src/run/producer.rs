//! The producer threads: the gate that holds them until the clock starts, and the loop each
//! runs until the window closes, in a closed loop or on its schedule.
//!
//! A producer shares with the coordinating thread only its [`Slot`] (its count of finished
//! commits, on its own cache line, and its commit-latency histogram) and the [`Flags`] the
//! coordinator flips; nothing else is shared on the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use hdrhistogram::Histogram;

use super::schedule::Plan;
use crate::engine::{Committer, Failure};
use crate::latency::{self, histogram, nanos};
use crate::record;
use crate::workload::Generator;

/// A fixed-rate producer sleeps when its next start is further away than this; closer, it
/// yields until the time comes.
const SLEEP_ABOVE: Duration = Duration::from_micros(200);

/// What the producer threads and the coordinating thread share.
#[derive(Debug)]
pub struct Shared {
    pub flags: Flags,
    /// One per producer, by index.
    pub slots: Vec<Slot>,
    pub gate: Gate,
    /// Producer threads that have not yet left their loop.
    pub left: AtomicUsize,
}

impl Shared {
    pub fn new(producers: usize) -> Self {
        Self {
            flags: Flags::default(),
            slots: (0..producers)
                .map(|_| Slot { issued: Default::default(), latency: Mutex::new(histogram()) })
                .collect(),
            gate: Gate::default(),
            left: AtomicUsize::new(producers),
        }
    }

    /// Every producer's count of finished commits.
    pub fn issued(&self) -> Vec<u64> {
        // Relaxed: counts, read twice; a commit either side of the edge does not matter.
        self.slots.iter().map(|s| s.issued.load(Ordering::Relaxed)).collect()
    }
}

/// Switches the producers see; the coordinating thread flips them.
///
/// Both are read and written Relaxed: neither publishes data. `measuring` only steers which
/// commits are sampled into the figures, and `stop` only ends the loops (the counts the
/// coordinator reads are its own atomics, and the tallies come back through `join`).
#[derive(Debug, Default)]
pub struct Flags {
    /// The warm-up is over: sampled commits count.
    pub measuring: AtomicBool,
    /// The window has closed, or a producer failed: leave the loop.
    pub stop: AtomicBool,
}

/// One producer's figures, as the coordinating thread reads them while the producer runs.
#[derive(Debug)]
pub struct Slot {
    /// Commits this producer has finished; read by the coordinator at the window's edges.
    pub issued: CachePadded<AtomicU64>,
    /// Commit latency of the measured window, nanoseconds: locked once per timed commit and by
    /// the coordinator when it cuts an interval.
    pub latency: Mutex<Histogram<u64>>,
}

/// Holds the producers until the clock starts.
#[derive(Debug, Default)]
pub struct Gate {
    ready: AtomicUsize,
    open: Mutex<bool>,
    opened: Condvar,
    plan: OnceLock<Plan>,
}

impl Gate {
    /// A producer is ready; waits for the clock to start, then returns the plan (or `None` if
    /// the run was called off).
    fn arrive(&self) -> Option<Plan> {
        self.ready.fetch_add(1, Ordering::AcqRel);
        let mut open = self.open.lock().ok()?;
        while !*open {
            open = self.opened.wait(open).ok()?;
        }
        self.plan.get().copied()
    }

    /// Producers waiting at the gate.
    pub fn ready(&self) -> usize {
        self.ready.load(Ordering::Acquire)
    }

    /// Lets every producer through: with a plan, to run it; with `None`, to leave at once.
    pub fn open(&self, plan: Option<Plan>) {
        if let Some(plan) = plan {
            let _ = self.plan.set(plan);
        }
        if let Ok(mut open) = self.open.lock() {
            *open = true;
        }
        self.opened.notify_all();
    }
}

/// One producer thread's figures.
#[derive(Debug, Default)]
pub struct Tally {
    pub issued_commits: u64,
    pub issued_records: u64,
    pub missed: u64,
}

/// Producer `index`'s thread: waits at the gate, commits until told to stop (unless the run
/// was called off), and counts itself out.
pub fn thread<K: record::Kind, C: Committer<K>>(
    shared: &Shared,
    index: usize,
    committer: C,
    generator: Generator<K>,
) -> Result<Tally, Failure> {
    let tally = match shared.gate.arrive() {
        Some(plan) => produce(committer, generator, index, plan, &shared.flags, &shared.slots[index]),
        None => Ok(Tally::default()),
    };
    // AcqRel: after this producer's last commit; the coordinator waits for zero (Acquire).
    shared.left.fetch_sub(1, Ordering::AcqRel);
    tally
}

/// One producer thread: commits until told to stop, in a closed loop or on its schedule.
fn produce<K: record::Kind, C: Committer<K>>(
    mut committer: C,
    mut generator: Generator<K>,
    index: usize,
    plan: Plan,
    flags: &Flags,
    slot: &Slot,
) -> Result<Tally, Failure> {
    let mut tally = Tally::default();
    let mut parts = Vec::with_capacity(generator.parts());
    let gap = |generator: &mut Generator<K>| 1 + generator.rng().below(2 * plan.sample_every - 1);
    let mut until_sampled = gap(&mut generator);
    let record = |nanos: u64| {
        if let Ok(mut latency) = slot.latency.lock() {
            crate::latency::record(&mut latency, nanos);
        }
    };
    let fail = |error: Failure| {
        // The others stop too: one failed engine ends the run.
        flags.stop.store(true, Ordering::Relaxed);
        error
    };
    match plan.interval_ns {
        None => {
            // Relaxed: see `Flags`.
            while !flags.stop.load(Ordering::Relaxed) {
                generator.fill(&mut parts);
                until_sampled -= 1;
                if until_sampled == 0 {
                    until_sampled = gap(&mut generator);
                    let measuring = flags.measuring.load(Ordering::Relaxed);
                    let started = Instant::now();
                    committer.commit(&mut parts, measuring.then_some(started)).map_err(fail)?;
                    if measuring {
                        record(nanos(started.elapsed()));
                    }
                } else {
                    committer.commit(&mut parts, None).map_err(fail)?;
                }
                tally.issued_commits += 1;
                // Relaxed: a count read at the window's edges and by the progress bar, on its
                // own cache line, written only by this producer.
                slot.issued.store(tally.issued_commits, Ordering::Relaxed);
            }
        }
        Some(interval_ns) => {
            let mut i = 0u64;
            while !flags.stop.load(Ordering::Relaxed) {
                let intended = plan.intended(index, i, interval_ns);
                if intended >= plan.deadline || !wait_until(intended, &flags.stop) {
                    break;
                }
                i += 1;
                generator.fill(&mut parts);
                let measuring = flags.measuring.load(Ordering::Relaxed);
                until_sampled -= 1;
                let stamp = if until_sampled == 0 {
                    until_sampled = gap(&mut generator);
                    // Stamped at the call, like lockstep's own figure: the lateness behind the
                    // intended start is in the commit latency.
                    measuring.then(Instant::now)
                } else {
                    None
                };
                if stamp.is_some() {
                    committer.intended(intended);
                }
                committer.commit(&mut parts, stamp).map_err(fail)?;
                if measuring {
                    record(nanos(intended.elapsed()));
                }
                tally.issued_commits += 1;
                // Relaxed: see the closed loop.
                slot.issued.store(tally.issued_commits, Ordering::Relaxed);
            }
            // Stopped while behind schedule: the commits due before the end that never started.
            let now = Instant::now();
            let end = plan.first_at_or_after(
                index,
                now.min(plan.deadline).saturating_duration_since(plan.start).as_nanos() as f64,
                interval_ns,
            );
            if i < end && flags.measuring.load(Ordering::Relaxed) {
                tally.missed = end - i;
                let lateness = nanos(now.saturating_duration_since(plan.intended(index, i, interval_ns)));
                if let Ok(mut latency) = slot.latency.lock() {
                    latency::record_missed(&mut latency, lateness, interval_ns, tally.missed);
                }
            }
        }
    }
    tally.issued_records = tally.issued_commits * generator.parts() as u64;
    Ok(tally)
}

/// Waits until `at`: sleeps while it is far, then yields (so a waiting producer never holds a
/// core another thread could use). False if told to stop first.
fn wait_until(at: Instant, stop: &AtomicBool) -> bool {
    loop {
        let now = Instant::now();
        if now >= at {
            return true;
        }
        let left = at - now;
        if left > SLEEP_ABOVE {
            // Linux sleeps overshoot by tens of microseconds: wake early, yield the rest.
            std::thread::sleep(left - SLEEP_ABOVE / 2);
            // Relaxed: see `Flags`.
            if stop.load(Ordering::Relaxed) {
                return false;
            }
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_called_off_lets_its_producers_go_without_a_plan() {
        let gate = Gate::default();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| gate.arrive());
            while gate.ready.load(Ordering::Acquire) == 0 {
                std::thread::yield_now();
            }
            gate.open(None);
            assert!(waiter.join().unwrap().is_none());
        });
    }
}
