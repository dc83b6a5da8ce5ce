#![cfg(not(loom))]
//! After a worker fails, every call refuses with `WorkerPanicked` before taking a commit number,
//! whatever the queues hold; `wait_sealed` with `Duration::MAX` waits without a deadline and
//! ends on visibility or failure.

mod common;

use std::time::Duration;

use common::{bounded, PanicOn, PATIENCE};
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

/// Waiting forever on a commit not yet issued ends when it becomes visible.
#[test]
fn wait_sealed_forever_ends_when_the_commit_becomes_visible() {
    let pipeline = Pipeline::builder(PanicOn(13)).shards(2).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    let seen = std::thread::scope(|scope| {
        let waiter =
            scope.spawn(|| pipeline.wait_sealed(3, Duration::MAX).map(|s| (s.frontier(), s.read("/b"))));
        for i in 1..=3 {
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(producer.commit([("/b", i)]), Ok(i));
        }
        bounded_join(waiter)
    });
    let (frontier, read) = seen.expect("visible");
    assert!(frontier >= 3);
    assert_eq!(read, Some(6));
}

/// Waiting forever on a commit that can never become visible ends when a worker fails.
#[test]
fn wait_sealed_forever_ends_when_a_worker_fails() {
    let pipeline = Pipeline::builder(PanicOn(13)).shards(1).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    let outcome = std::thread::scope(|scope| {
        // Commit 5 is never issued: only the failure can end this wait.
        let waiter = scope.spawn(|| pipeline.wait_sealed(5, Duration::MAX).map(|s| s.frontier()));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "the wait ended before anything happened");
        assert_eq!(producer.commit([("/c", 13)]), Ok(1));
        bounded_join(waiter)
    });
    assert_eq!(outcome, Err(Error::WorkerPanicked));
}

/// Joins a scoped thread, failing the test if it does not finish within `PATIENCE`.
fn bounded_join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !handle.is_finished() {
        assert!(std::time::Instant::now() < deadline, "the waiter did not return within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    handle.join().expect("the waiter thread")
}
