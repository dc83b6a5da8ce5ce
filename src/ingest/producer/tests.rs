//! The producer's refusals that need its insides to show.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Waker};
use std::time::Duration;

use crate::merge::{Outputs, Sum};
use crate::{Error, Merge, Pipeline};

/// A batch past the most parts one call numbers is refused with its own error, and nothing
/// of it is taken or enqueued. (The real limit, 2^32 - 1 parts, is checked the same way.)
#[test]
fn a_batch_over_the_limit_is_refused_with_its_own_error() -> Result<(), Error> {
    let pipeline = Pipeline::builder(Sum).build()?;
    let mut producer = pipeline.producer()?;
    let batch = (0..4).map(|i| [("/a", i), ("/b", i)]);
    assert_eq!(producer.stage_many(batch, 5), Err(Error::BatchTooLarge { parts: 6, max: 5 }));
    assert_eq!(producer.stage_many([[("/a", 1)]], 5), Ok(1));
    producer.staged.clear();
    producer.bounds.clear();
    assert_eq!(producer.commit([("/a", 1)])?, 1, "no number was taken by the refusal");
    assert_eq!(pipeline.shutdown()?.read("/a"), Some(1));
    Ok(())
}

/// `Sum` over `u64` whose `seal` waits until the test opens it (bounded), so queues stay full.
struct Held(Arc<(Mutex<bool>, Condvar)>);

impl Held {
    fn open(&self) {
        *self.0 .0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0 .1.notify_all();
    }
}

impl Merge for Held {
    type Record = u64;
    type Output = u64;
    type Column = Outputs<u64>;

    fn seal(&self, records: impl Iterator<Item = (u64, u64)>) -> u64 {
        let (open, opened) = &*self.0;
        let guard = open.lock().unwrap_or_else(PoisonError::into_inner);
        let _open = opened.wait_timeout_while(guard, Duration::from_secs(30), |open| !*open);
        records.map(|(_, r)| r).sum()
    }

    fn merge(&self, outputs: &[&u64]) -> u64 {
        outputs.iter().copied().sum()
    }
}

/// Futures dropped while they wait leave nothing behind: the commit's place among the
/// producers waiting for room is empty again, its staged records are gone, and the sealed
/// waiters' list is empty.
#[test]
fn dropped_futures_leave_no_registration() -> Result<(), Error> {
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let pipeline = Pipeline::builder(Held(gate.clone())).shards(1).queue_capacity(2).build()?;
    let mut producer = pipeline.producer()?;
    let shared = producer.shared.clone();
    // The worker takes commit 1 and waits in `seal`; commit 2 fills the queue.
    assert_eq!(producer.commit([("/a", 1)])?, 1);
    while producer.senders[0].slots() < 2 {
        std::thread::yield_now();
    }
    assert_eq!(producer.commit([("/a", 2), ("/a", 3)])?, 2);
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut commit = pin!(producer.commit_async([("/a", 4)]));
        assert!(commit.as_mut().poll(&mut cx).is_pending());
        assert!(commit.as_mut().poll(&mut cx).is_pending(), "polled again: still one place");
        assert!(shared.waiters.holds(0), "the waiting task is registered");
    }
    assert!(!shared.waiters.holds(0), "a dropped commit leaves its place");
    assert!(producer.staged.is_empty(), "and its records");
    {
        let mut first = pin!(pipeline.wait_sealed_async(2));
        let mut second = pin!(pipeline.wait_sealed_async(9));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert_eq!(shared.views.sealed().len(), 2);
    }
    assert_eq!(shared.views.sealed().len(), 0, "dropped waits leave their places");
    assert_eq!(pipeline.stats().commits, 2, "the dropped commit took no number");
    Held(gate).open();
    assert_eq!(producer.commit([("/a", 4)])?, 3);
    assert_eq!(pipeline.shutdown()?.read("/a"), Some(10));
    Ok(())
}
