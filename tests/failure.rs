#![cfg(not(loom))]
//! After a worker fails, every call refuses with `WorkerPanicked` before taking a commit number,
//! whatever the queues hold; `wait_sealed` with `Duration::MAX` waits without a deadline and
//! ends on visibility or failure.

mod common;

use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{bounded, Blocks, PanicOn, PATIENCE};
use lockstep::{Error, Pipeline};

/// Commits `("/boom", 13)` to a `PanicOn(13)` pipeline and waits until its worker has failed,
/// so every queue is empty (the worker drained the part before it panicked).
fn failed_pipeline(shards: usize) -> (Pipeline<PanicOn>, lockstep::Producer<PanicOn>) {
    let pipeline = Pipeline::builder(PanicOn(13)).shards(shards).queue_capacity(4).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    assert_eq!(producer.commit([("/fine", 1)]), Ok(1));
    assert_eq!(pipeline.wait_sealed(1, PATIENCE).expect("visible").read("/fine"), Some(1));
    assert_eq!(producer.commit([("/boom", 13)]), Ok(2));
    // The failure is seen here: from now on it happened before every call below.
    assert_eq!(pipeline.wait_sealed(2, PATIENCE).err(), Some(Error::WorkerPanicked));
    (pipeline, producer)
}

#[test]
fn after_a_worker_panic_with_empty_queues_every_call_refuses() {
    let (pipeline, mut producer) = failed_pipeline(1);
    assert_eq!(pipeline.stats().commits, 2);
    // The queue has room: without the check these would be acknowledged and never visible.
    assert_eq!(producer.commit([("/fine", 2)]), Err(Error::WorkerPanicked));
    let refused = producer.try_commit([("/fine", 3), ("/other", 4)]).expect_err("refused");
    assert_eq!(refused.error, Error::WorkerPanicked);
    assert_eq!(refused.parts, [("/fine", 3), ("/other", 4)], "the parts come back");
    assert_eq!(pipeline.stats().commits, 2, "a refused commit took a number");
    assert_eq!(pipeline.producer().err(), Some(Error::WorkerPanicked));
    // The snapshot from before the failure stays readable; nothing new becomes visible.
    let snapshot = pipeline.snapshot();
    assert_eq!((snapshot.frontier(), snapshot.read("/fine")), (1, Some(1)));
    assert_eq!(
        bounded("shutdown", move || pipeline.shutdown()).err().map(Error::from),
        Some(Error::WorkerPanicked)
    );
    assert_eq!(producer.commit([("/fine", 5)]), Err(Error::WorkerPanicked));
}

/// With two shards, a commit routed only to the live worker's shard is refused as well: once
/// any worker fails, no commit can become visible (the global cut stops at the failed shard).
#[test]
fn a_commit_for_a_live_shard_is_refused_too() {
    let (pipeline, mut producer) = failed_pipeline(2);
    let failed_shard_paths = ["/boom"];
    // Find a path on the other shard: one whose first commit, before the failure, would have
    // gone to another queue. Routing is internal, so try many names; all must be refused.
    for i in 0..64 {
        let path = format!("/live/{i}");
        assert_eq!(producer.commit([(path.as_str(), 1)]), Err(Error::WorkerPanicked), "{path}");
        let refused = producer.try_commit([(path.clone(), 1)]).expect_err("refused");
        assert_eq!((refused.error, refused.parts), (Error::WorkerPanicked, vec![(path, 1)]));
    }
    assert_eq!(producer.commit(failed_shard_paths.map(|p| (p, 1))), Err(Error::WorkerPanicked));
    assert_eq!(pipeline.stats().commits, 2);
    // A producer made before the failure refuses as well.
    drop(producer);
    assert_eq!(pipeline.producer().err(), Some(Error::WorkerPanicked));
}

/// A commit that waits for room in a failed worker's queue gives up instead of hanging.
#[test]
fn a_commit_waiting_on_a_dead_worker_gives_up() {
    let pipeline = Pipeline::builder(PanicOn(13)).shards(1).queue_capacity(1).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    assert_eq!(producer.commit([("/a", 1)]), Ok(1));
    assert_eq!(pipeline.wait_sealed(1, PATIENCE).expect("visible").read("/a"), Some(1));
    assert_eq!(producer.commit([("/a", 13)]), Ok(2));
    assert_eq!(pipeline.wait_sealed(2, PATIENCE).err(), Some(Error::WorkerPanicked));
    let outcome = bounded("a commit to a dead worker", move || {
        let result = producer.commit((0..10).map(|i| ("/a", i)));
        (result, producer)
    });
    assert_eq!(outcome.0, Err(Error::WorkerPanicked));
    assert_eq!(
        bounded("shutdown", move || pipeline.shutdown()).err().map(Error::from),
        Some(Error::WorkerPanicked)
    );
}

#[test]
fn wait_sealed_forever_returns_at_once_for_a_sealed_commit() {
    let pipeline = Pipeline::builder(PanicOn(13)).shards(2).build().expect("valid");
    // Commit 0 is sealed from the start.
    assert_eq!(pipeline.wait_sealed(0, Duration::MAX).expect("sealed").frontier(), 0);
    let mut producer = pipeline.producer().expect("a producer");
    let commit = producer.commit([("/a", 5)]).expect("accepted");
    assert_eq!(pipeline.wait_sealed(commit, PATIENCE).expect("visible").read("/a"), Some(5));
    let snapshot = bounded("wait_sealed(sealed, MAX)", move || {
        let snapshot = pipeline.wait_sealed(commit, Duration::MAX).map(|s| s.read("/a"));
        (snapshot, pipeline)
    });
    assert_eq!(snapshot.0, Ok(Some(5)));
    // Any timeout the clock cannot add is the same: no deadline, no panic.
    let pipeline = snapshot.1;
    assert_eq!(pipeline.wait_sealed(commit, Duration::new(u64::MAX, 0)).map(|s| s.frontier()), Ok(1));
}

/// Starts a thread that shows where it is blocked (see [`Blocks`]), then calls `wait` and sends
/// its result on the returned channel. Not scoped: a wait that never ends fails the test when
/// the test stops receiving, instead of hanging the scope that would join it.
fn waiter<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> (Blocks, u64, mpsc::Receiver<T>) {
    let (started_tx, started) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let blocks = Blocks::of_this_thread();
        let _ = started_tx.send((blocks.clone(), blocks.count()));
        let _ = done_tx.send(wait());
    });
    let (blocks, before) = started.recv_timeout(PATIENCE).expect("the waiter starts");
    (blocks, before, done)
}

/// Waiting forever on a commit not yet issued ends when it becomes visible. The waiter is shown
/// to be blocked in its wait before commit 1 is issued, and not to end once commits 1 and 2 are
/// visible (a frontier below its commit does not even wake it: the waiter list wakes only the
/// waits a frontier reaches).
#[test]
fn wait_sealed_forever_ends_when_the_commit_becomes_visible() {
    let pipeline = Arc::new(Pipeline::builder(PanicOn(13)).shards(2).build().expect("valid"));
    let mut producer = pipeline.producer().expect("a producer");
    let waiting = pipeline.clone();
    let (blocks, before, done) =
        waiter(move || waiting.wait_sealed(3, Duration::MAX).map(|s| (s.frontier(), s.read("/b"))));
    blocks.wait_beyond(before, "the waiter blocks waiting for commit 3");
    for i in 1..=3 {
        assert!(done.try_recv().is_err(), "the wait ended before commit {i} was issued");
        assert_eq!(producer.commit([("/b", i)]), Ok(i));
        if i < 3 {
            pipeline.wait_sealed(i, PATIENCE).expect("visible");
        }
    }
    let seen = done.recv_timeout(PATIENCE).expect("the wait ends once commit 3 is visible");
    let (frontier, read) = seen.expect("visible");
    assert!(frontier >= 3);
    assert_eq!(read, Some(6));
}

/// Waiting forever on a commit that can never become visible ends when a worker fails. The
/// waiter is shown to be blocked in its wait before the failure.
#[test]
fn wait_sealed_forever_ends_when_a_worker_fails() {
    let pipeline = Arc::new(Pipeline::builder(PanicOn(13)).shards(1).build().expect("valid"));
    let mut producer = pipeline.producer().expect("a producer");
    // Commit 5 is never issued: only the failure can end this wait.
    let waiting = pipeline.clone();
    let (blocks, before, done) = waiter(move || waiting.wait_sealed(5, Duration::MAX).map(|s| s.frontier()));
    blocks.wait_beyond(before, "the waiter blocks waiting for commit 5");
    assert!(done.try_recv().is_err(), "the wait ended before anything happened");
    assert_eq!(producer.commit([("/c", 13)]), Ok(1));
    let outcome = done.recv_timeout(PATIENCE).expect("the wait ends once the worker has failed");
    assert_eq!(outcome, Err(Error::WorkerPanicked));
}
