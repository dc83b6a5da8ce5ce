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
/// The gate also records that a seal has begun, so the test knows the worker is inside one
/// and takes nothing more from its queue (an empty queue alone does not say that: the worker
/// may still be gathering the turn).
struct Held(Arc<(Mutex<Gate>, Condvar)>);

#[derive(Default)]
struct Gate {
    open: bool,
    sealing: bool,
}

impl Held {
    fn open(&self) {
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner).open = true;
        self.0 .1.notify_all();
    }

    /// Waits (bounded) until the worker is inside `seal`.
    fn wait_sealing(&self) -> bool {
        let (gate, changed) = &*self.0;
        let guard = gate.lock().unwrap_or_else(PoisonError::into_inner);
        let timeout = Duration::from_secs(30);
        let (gate, _) = changed
            .wait_timeout_while(guard, timeout, |gate| !gate.sealing)
            .unwrap_or_else(PoisonError::into_inner);
        gate.sealing
    }
}

impl Merge for Held {
    type Record = u64;
    type Output = u64;
    type Column = Outputs<u64>;

    fn seal(&self, records: impl Iterator<Item = (u64, u64)>) -> u64 {
        let (gate, changed) = &*self.0;
        let mut guard = gate.lock().unwrap_or_else(PoisonError::into_inner);
        guard.sealing = true;
        changed.notify_all();
        let _open = changed.wait_timeout_while(guard, Duration::from_secs(30), |gate| !gate.open);
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
    let gate = Held(Arc::new((Mutex::new(Gate::default()), Condvar::new())));
    let pipeline = Pipeline::builder(Held(gate.0.clone())).shards(1).queue_capacity(2).build()?;
    let mut producer = pipeline.producer()?;
    let shared = producer.shared.clone();
    // The worker takes commit 1 and waits in `seal`; commit 2 fills the queue.
    assert_eq!(producer.commit([("/a", 1)])?, 1);
    assert!(gate.wait_sealing(), "the worker sealed commit 1 within the bound");
    assert_eq!(producer.senders[0].slots(), 2, "and took it from the queue");
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
    gate.open();
    assert_eq!(producer.commit([("/a", 4)])?, 3);
    assert_eq!(pipeline.shutdown()?.read("/a"), Some(10));
    Ok(())
}
