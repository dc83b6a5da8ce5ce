#![cfg(not(loom))]
//! Shutdown drains everything and loses nothing a commit returned `Ok` for; producers used
//! afterwards get `Shutdown`; a panic in a parts iterator leaves no trace; dropping the
//! pipeline joins its workers; `wait_sealed` times out on a commit never issued.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{bounded, eventually, Blocks, Gate, Gated, PATIENCE};
use lockstep::merge::{Concat, Outputs, Sum};
use lockstep::{Error, Merge, Pipeline};

#[test]
fn shutdown_drains_every_queue_and_compacts_fully() {
    let (divisor, max_level) = (2, 3);
    let pipeline = Pipeline::builder(Concat::<u64>::default())
        .shards(2)
        .divisor(divisor)
        .max_level(max_level)
        .queue_capacity(1)
        .merge_budget(1)
        .build()
        .expect("valid config");
    let scripts = (0..3u64)
        .map(|p| {
            let mut rng = common::Rng::new(p);
            (0..300u64)
                .map(|i| {
                    (0..1 + rng.below(3))
                        .map(|k| (format!("/p{}", rng.below(5)), p << 32 | i << 4 | k))
                        .collect()
                })
                .collect()
        })
        .collect();
    let commits = common::commit_scripts(&pipeline, scripts);
    let total = commits.len() as u64;
    // No wait: shutdown itself must drain the queues and finish every compaction.
    let last = bounded("shutdown", move || pipeline.shutdown()).expect("clean shutdown");
    assert_eq!(last.frontier(), total);
    for (path, layout) in common::layouts(&commits, divisor, max_level, total) {
        assert_eq!(last.segments(&path), layout, "{path} is fully compacted");
    }
    for (path, records) in common::concat_reads(&commits, total) {
        assert_eq!(last.read(&path), Some(records), "{path} lost nothing");
    }
}

/// Producers keep committing while the pipeline shuts down: each gets `Ok` until it gets
/// `Shutdown`, and every `Ok` commit is in the final snapshot, numbered without a gap.
#[test]
fn shutdown_while_producers_commit_keeps_every_accepted_commit() {
    let pipeline = Pipeline::builder(Concat::<u64>::default())
        .shards(2)
        .divisor(2)
        .max_level(4)
        .queue_capacity(2)
        .build()
        .expect("valid config");
    let handles: Vec<_> = (0..2u64)
        .map(|p| {
            let mut producer = pipeline.producer().expect("a producer");
            std::thread::spawn(move || {
                let mut done = Vec::new();
                for i in 0.. {
                    let parts = vec![("/shared".to_owned(), p << 32 | i), (format!("/own{p}"), p << 32 | i)];
                    match producer.commit(parts.clone()) {
                        Ok(commit) => done.push((commit, parts)),
                        Err(Error::Shutdown) => break,
                        Err(other) => panic!("unexpected {other:?}"),
                    }
                }
                assert_eq!(
                    producer.commit([("/late", 0)]),
                    Err(Error::Shutdown),
                    "refused once, refused for good"
                );
                done
            })
        })
        .collect();
    eventually("producers made progress", || pipeline.stats().commits >= 200);
    let last = bounded("shutdown", move || pipeline.shutdown()).expect("clean shutdown");
    let numbered: Vec<_> = handles.into_iter().flat_map(|h| h.join().expect("producer thread")).collect();
    let commits = common::gapless(numbered);
    let total = commits.len() as u64;
    assert_eq!(last.frontier(), total, "the final frontier is the last commit that returned Ok");
    assert!(last.read("/late").is_none());
    for (path, layout) in common::layouts(&commits, 2, 4, total) {
        assert_eq!(last.segments(&path), layout, "{path} is fully compacted");
    }
    for (path, records) in common::concat_reads(&commits, total) {
        assert_eq!(last.read(&path), Some(records), "{path} lost nothing");
    }
}

#[test]
fn a_producer_used_after_shutdown_gets_shutdown() {
    let pipeline = Pipeline::builder(Sum).shards(2).build().expect("valid config");
    let mut producer = pipeline.producer().expect("a producer");
    assert_eq!(producer.commit([("/a", 1)]), Ok(1));
    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), 1);
    assert_eq!(producer.commit([("/a", 2)]), Err(Error::Shutdown));
    assert_eq!(producer.try_commit([("/a", 3)]).map_err(Error::from), Err(Error::Shutdown));
    assert_eq!(producer.commit([("/b", 4), ("/c", 5)]), Err(Error::Shutdown));
    assert_eq!(last.read("/a"), Some(1), "the snapshot is immutable");
    drop(producer);
}

/// The only worker is held inside `seal`, so a 40-part commit waits on a queue of 2 with its
/// number taken. Shutdown, called meanwhile, is shown to have begun (it has closed the pipeline
/// to new commits and is blocked waiting) while the commit still waits; only then is the worker
/// let go. The commit finishes: it returns `Ok` and is in the final snapshot.
#[test]
fn a_commit_blocked_on_a_full_queue_finishes_during_shutdown() {
    let gate = Gate::closed();
    let pipeline = Pipeline::builder(Gated(gate.clone())).shards(1).queue_capacity(2).build().expect("valid");
    let _open_on_exit = gate.opener();
    let mut first = pipeline.producer().expect("a producer");
    assert_eq!(first.commit([("/first", 1)]), Ok(1));
    assert!(gate.wait_for_a_waiter(), "the worker never sealed commit 1");

    let mut blocked = pipeline.producer().expect("a producer");
    let (tx, blocked_result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(blocked.commit((0..40u64).map(|i| ("/big", i))));
    });
    // Its number is taken once `commits` counts it; then it can only be waiting for room.
    eventually("the big commit took its number", || pipeline.stats().commits == 2);
    assert!(blocked_result.try_recv().is_err(), "40 parts cannot fit a held queue of 2");

    let (tx, shutdown_result) = mpsc::channel();
    let (started_tx, started) = mpsc::channel();
    std::thread::spawn(move || {
        let blocks = Blocks::of_this_thread();
        let _ = started_tx.send((blocks.clone(), blocks.count()));
        let _ = tx.send(pipeline.shutdown());
    });
    let (blocks, before) = started.recv_timeout(PATIENCE).expect("the shutdown thread starts");
    blocks.wait_beyond(before, "shutdown blocks waiting for the blocked commit");
    // Shutdown has begun: the pipeline takes no new commit (this one would take number 3).
    assert_eq!(first.commit([("/first", 3)]), Err(Error::Shutdown));
    assert!(blocked_result.try_recv().is_err(), "the big commit still waits for room");
    assert!(shutdown_result.try_recv().is_err(), "shutdown cannot end before the big commit does");
    gate.open();
    let commit = blocked_result.recv_timeout(PATIENCE).expect("the blocked commit returns");
    assert_eq!(commit, Ok(2));
    let last = shutdown_result.recv_timeout(PATIENCE).expect("shutdown returns").expect("clean shutdown");
    assert_eq!(last.frontier(), 2);
    assert_eq!(last.read("/big"), Some((0..40).map(|i| (2, i)).collect::<Vec<_>>()));
    assert!(last.read("/first").is_some_and(|records| records == [(1, 1)]), "nothing of commit 3");
}

/// Without holding the worker: one huge commit through a queue of 1 races shutdown. It returns
/// promptly with `Ok` (and is then in the final snapshot) or with `Shutdown`.
#[test]
fn a_huge_commit_racing_shutdown_returns_ok_or_shutdown() {
    for wait_for_number in [true, false] {
        let pipeline =
            Pipeline::builder(Concat::<u64>::default()).shards(2).queue_capacity(1).build().expect("valid");
        let mut producer = pipeline.producer().expect("a producer");
        let (tx, result) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx
                .send(producer.commit((0..5_000u64).map(|i| (if i % 2 == 0 { "/even" } else { "/odd" }, i))));
        });
        if wait_for_number {
            eventually("the huge commit took its number", || pipeline.stats().commits == 1);
        }
        let last = bounded("shutdown", move || pipeline.shutdown()).expect("clean shutdown");
        match result.recv_timeout(PATIENCE).expect("the huge commit returns") {
            Ok(commit) => {
                assert_eq!(commit, 1);
                assert_eq!(last.frontier(), 1);
                let even: Vec<(u64, u64)> = (0..5_000).filter(|i| i % 2 == 0).map(|i| (1, i)).collect();
                assert_eq!(last.read("/even"), Some(even));
                assert_eq!(last.read("/odd").map(|r| r.len()), Some(2_500));
            }
            Err(Error::Shutdown) => {
                assert!(!wait_for_number, "a commit with its number taken must finish");
                assert_eq!(last.frontier(), 0);
                assert_eq!(last.paths().count(), 0);
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// A parts iterator that panics part-way: nothing of it is visible, it takes no number, and
/// the producer keeps working — including for a path it first met in the panicking commit.
#[test]
fn a_panicking_parts_iterator_leaves_no_trace() {
    let pipeline =
        Pipeline::builder(Concat::<u64>::default()).shards(2).queue_capacity(4).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    assert_eq!(producer.commit([("/kept", 1)]), Ok(1));
    for blocking in [true, false] {
        let parts = (0..4u64).map(|i| {
            assert!(i < 2, "a parts iterator panics");
            (if i == 0 { "/kept" } else { "/new" }, 100 + i)
        });
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if blocking {
                producer.commit(parts)
            } else {
                producer.try_commit(parts).map_err(Error::from)
            }
        }));
        assert!(outcome.is_err(), "the panic reaches the caller");
    }
    assert_eq!(pipeline.stats().commits, 1, "a panicked commit took a number");
    assert_eq!(producer.commit([("/kept", 2)]), Ok(2));
    assert_eq!(producer.commit([("/new", 3), ("/kept", 3)]), Ok(3));
    let snapshot = pipeline.wait_sealed(3, PATIENCE).expect("later commits become visible");
    assert_eq!(snapshot.read("/kept"), Some(vec![(1, 1), (2, 2), (3, 3)]));
    assert_eq!(snapshot.read("/new"), Some(vec![(3, 3)]));
    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), 3);
    assert_eq!(last.read("/kept"), Some(vec![(1, 1), (2, 2), (3, 3)]));
    assert_eq!(last.read("/new"), Some(vec![(3, 3)]));
}

/// A path type whose `as_ref` panics on its second use: the same guarantees.
#[test]
fn a_panicking_path_leaves_no_trace() {
    struct Fragile(&'static str, bool);
    impl AsRef<str> for Fragile {
        fn as_ref(&self) -> &str {
            assert!(!self.1, "a path that panics");
            self.0
        }
    }
    let pipeline = Pipeline::builder(Sum).shards(1).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        producer.commit([(Fragile("/a", false), 1), (Fragile("/b", true), 2)])
    }));
    assert!(outcome.is_err());
    assert_eq!(producer.commit([(Fragile("/b", false), 5)]), Ok(1));
    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), 1);
    assert!(last.read("/a").is_none());
    assert_eq!(last.read("/b"), Some(5));
}

/// Sets a flag when dropped: shows when the pipeline's shared state (held by every worker
/// thread) is gone.
#[derive(Debug)]
struct DropFlag<M>(M, Arc<AtomicBool>);

impl<M> Drop for DropFlag<M> {
    fn drop(&mut self) {
        self.1.store(true, Ordering::SeqCst);
    }
}

impl<M: Merge> Merge for DropFlag<M> {
    type Record = M::Record;
    type Output = M::Output;
    type Column = Outputs<M::Output>;

    fn seal(&self, records: impl Iterator<Item = (u64, M::Record)>) -> M::Output {
        self.0.seal(records)
    }

    fn merge(&self, outputs: &[&M::Output]) -> M::Output {
        self.0.merge(outputs)
    }
}

/// Dropping the pipeline without `shutdown` joins its workers (they release the shared state
/// before the drop returns), and a producer that outlives the handle gets `Shutdown`.
#[test]
fn dropping_the_pipeline_joins_workers_and_producers_outlive_it() {
    let dropped = Arc::new(AtomicBool::new(false));
    let pipeline =
        Pipeline::builder(DropFlag(Sum, dropped.clone())).shards(2).queue_capacity(2).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    for i in 0..50 {
        producer.commit([("/a", i), ("/b", i)]).expect("accepted");
    }
    bounded("drop", move || drop(pipeline));
    assert!(!dropped.load(Ordering::SeqCst), "a live producer keeps the shared state");
    assert_eq!(producer.commit([("/a", 1)]), Err(Error::Shutdown));
    assert_eq!(producer.try_commit([("/a", 1)]).map_err(Error::from), Err(Error::Shutdown));
    drop(producer);
    assert!(dropped.load(Ordering::SeqCst), "a worker thread still held the shared state after drop");

    // The same with nothing committed, and with no producer at all.
    let dropped = Arc::new(AtomicBool::new(false));
    let pipeline = Pipeline::builder(DropFlag(Sum, dropped.clone())).shards(3).build().expect("valid");
    drop(pipeline);
    assert!(dropped.load(Ordering::SeqCst), "the workers were not joined by drop");
}

/// A producer thread committing in a loop while the pipeline is dropped stops with `Shutdown`.
#[test]
fn dropping_the_pipeline_stops_a_busy_producer() {
    let pipeline = Pipeline::builder(Sum).shards(2).queue_capacity(1).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    let (tx, stopped) = mpsc::channel();
    std::thread::spawn(move || {
        let mut accepted = 0u64;
        let error = loop {
            match producer.commit([("/a", 1), ("/b", 1)]) {
                Ok(commit) => {
                    accepted += 1;
                    assert_eq!(commit, accepted, "numbers stay gapless");
                }
                Err(error) => break error,
            }
        };
        let _ = tx.send((accepted, error));
    });
    eventually("the producer made progress", || pipeline.stats().commits >= 50);
    bounded("drop", move || drop(pipeline));
    let (accepted, error) = stopped.recv_timeout(PATIENCE).expect("the producer stops");
    assert!(accepted >= 50);
    assert_eq!(error, Error::Shutdown);
}

#[test]
fn wait_sealed_times_out_on_a_commit_never_issued() {
    let pipeline = Pipeline::builder(Sum).shards(2).build().expect("valid");
    assert_eq!(pipeline.wait_sealed(0, Duration::ZERO).expect("commit 0 is always sealed").frontier(), 0);
    let mut producer = pipeline.producer().expect("a producer");
    assert_eq!(producer.commit([("/a", 1)]), Ok(1));
    assert_eq!(pipeline.wait_sealed(1, PATIENCE).expect("commit 1 becomes visible").frontier(), 1);
    match pipeline.wait_sealed(10, Duration::from_millis(20)) {
        Err(Error::Timeout { commit, frontier }) => {
            assert_eq!(commit, 10);
            assert_eq!(frontier, 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(matches!(
        pipeline.wait_sealed(2, Duration::ZERO),
        Err(Error::Timeout { commit: 2, frontier: 1 })
    ));
    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), 1);
}

#[test]
fn an_idle_pipeline_shuts_down_empty() {
    let pipeline = Pipeline::builder(Concat::<u64>::default()).shards(3).build().expect("valid");
    let producer = pipeline.producer().expect("a producer");
    let last = bounded("shutdown", move || pipeline.shutdown()).expect("clean shutdown");
    assert_eq!(last.frontier(), 0);
    assert_eq!(last.paths().count(), 0);
    assert!(last.read("/a").is_none());
    drop(producer);
}
