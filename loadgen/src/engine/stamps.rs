//! Commit-to-visible for engines whose consumers make commits visible (`channel`, `raw`).
//!
//! A producer stamps a sampled commit: it puts `(mark, stamp)` into a small single-producer,
//! single-consumer queue per (consumer, producer) for every consumer the commit touched, before
//! it hands over the commit's records. A consumer, right after it publishes its watermark for a
//! producer, takes that producer's stamps up to the mark; the last of the touched consumers to
//! do so (a countdown in the stamp) records `now - start`. So the figure is taken at the moment
//! the commit became visible, not when someone polled for it, and costs nothing per record: one
//! allocation per sampled commit, and one look at an (almost always empty) queue per batch.
//!
//! Orderings: the stamp is pushed before the records it belongs to, by the same thread, and a
//! consumer takes stamps only after it popped those records (the records' queue push and pop,
//! an `rtrb` ring for `raw` and a channel for `channel`, are Release and Acquire), so a stamp
//! is always there by the time its mark is published.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;

use crate::latency::{histogram, nanos};

/// Stamps in flight per (consumer, producer); a producer that finds a queue full skips the
/// sample (it never waits for a figure).
const IN_FLIGHT: usize = 64;

#[derive(Debug)]
struct Stamp {
    start: Instant,
    /// Consumers that have not yet published the commit.
    remaining: AtomicUsize,
}

/// A stamp on its way: the commit's mark and the stamp shared by the consumers it touched.
type Pending = (u64, Arc<Stamp>);

/// The stamp queues of every (consumer, producer) pair, and each consumer's figures.
#[derive(Debug)]
pub struct Stamps {
    producers: usize,
    queues: Box<[ArrayQueue<Pending>]>,
    /// Commit-to-visible recorded by each consumer, nanoseconds; locked once per resolved
    /// stamp and by [`Stamps::visible`].
    figures: Box<[Mutex<Histogram<u64>>]>,
}

impl Stamps {
    pub fn new(consumers: usize, producers: usize) -> Self {
        Self {
            producers,
            queues: (0..consumers * producers).map(|_| ArrayQueue::new(IN_FLIGHT)).collect(),
            figures: (0..consumers).map(|_| Mutex::new(histogram())).collect(),
        }
    }

    fn queue(&self, consumer: usize, producer: usize) -> &ArrayQueue<Pending> {
        &self.queues[consumer * self.producers + producer]
    }

    /// Producer `producer` stamps its commit `mark`, which touched `consumers`, as started at
    /// `start`. Call before handing over the commit's records. Skipped if a queue is full.
    pub fn stamp(&self, producer: usize, mark: u64, consumers: &[u32], start: Instant) {
        // Only this producer pushes to these queues, so room seen here stays room.
        if consumers.iter().any(|&c| self.queue(c as usize, producer).is_full()) {
            return;
        }
        let stamp = Arc::new(Stamp { start, remaining: AtomicUsize::new(consumers.len()) });
        for &consumer in consumers {
            let _ = self.queue(consumer as usize, producer).push((mark, stamp.clone()));
        }
    }

    /// Everything recorded so far, all consumers together.
    pub fn visible(&self) -> Histogram<u64> {
        let mut all = histogram();
        for figures in self.figures.iter() {
            if let Ok(figures) = figures.lock() {
                let _ = all.add(&*figures);
            }
        }
        all
    }
}

/// One consumer's side: the stamp it took from each producer's queue but whose mark it has not
/// published yet.
#[derive(Debug)]
pub struct Resolver {
    consumer: usize,
    pending: Vec<Option<Pending>>,
}

impl Resolver {
    pub fn new(consumer: usize, producers: usize) -> Self {
        Self { consumer, pending: (0..producers).map(|_| None).collect() }
    }

    /// The consumer has just published `mark` for `producer`: resolves the stamps it covers.
    /// `now` is read at most once per batch, by the first stamp that needs it.
    #[inline]
    pub fn published(&mut self, stamps: &Stamps, producer: usize, mark: u64, now: &mut Option<Instant>) {
        loop {
            let head = match self.pending[producer].take() {
                Some(head) => head,
                None => match stamps.queue(self.consumer, producer).pop() {
                    Some(head) => head,
                    None => return,
                },
            };
            if head.0 > mark {
                self.pending[producer] = Some(head);
                return;
            }
            // AcqRel: the last consumer to count down sees the others' decrements; the figure
            // is recorded once.
            if head.1.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                let now = *now.get_or_insert_with(Instant::now);
                if let Ok(mut figures) = stamps.figures[self.consumer].lock() {
                    crate::latency::record(&mut figures, nanos(now.saturating_duration_since(head.1.start)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stamp_counts_once_the_last_touched_consumer_publishes() {
        let stamps = Stamps::new(2, 1);
        let start = Instant::now() - Duration::from_millis(5);
        stamps.stamp(0, 3, &[0, 1], start);
        let (mut a, mut b) = (Resolver::new(0, 1), Resolver::new(1, 1));
        let mut now = None;
        a.published(&stamps, 0, 2, &mut now);
        b.published(&stamps, 0, 2, &mut now);
        assert!(stamps.visible().is_empty(), "mark 2 does not cover commit 3");
        a.published(&stamps, 0, 3, &mut now);
        assert!(stamps.visible().is_empty(), "consumer 1 has not published it");
        b.published(&stamps, 0, 4, &mut now);
        let visible = stamps.visible();
        assert_eq!(visible.len(), 1);
        assert!(visible.min() >= 5_000_000);
    }

    #[test]
    fn a_full_queue_skips_the_sample() {
        let stamps = Stamps::new(1, 1);
        for mark in 0..IN_FLIGHT as u64 + 10 {
            stamps.stamp(0, mark, &[0], Instant::now());
        }
        let mut resolver = Resolver::new(0, 1);
        resolver.published(&stamps, 0, u64::MAX, &mut None);
        assert_eq!(stamps.visible().len(), IN_FLIGHT as u64);
    }
}
