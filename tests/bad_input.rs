#![cfg(not(loom))]
//! Bad input gets a typed `Error`, never a panic and never a silent drop; a refused commit takes
//! no commit number and leaves nothing visible.

mod common;

use common::{Gate, Gated, PATIENCE};
use lockstep::merge::{Concat, Sum};
use lockstep::{DiscardSink, Error, Pipeline, Retention};

const NOTHING: [(&str, u64); 0] = [];

#[test]
fn each_bad_part_is_refused_with_its_error() {
    let merge = Concat::<Vec<u8>>::measured_by(|r| r.len());
    let pipeline =
        Pipeline::builder(merge).shards(2).max_path_len(8).max_record_bytes(4).build().expect("valid config");
    let mut producer = pipeline.producer().expect("a producer");
    let empty: [(&str, Vec<u8>); 0] = [];
    assert_eq!(producer.commit(empty), Err(Error::EmptyCommit));
    assert_eq!(producer.commit(Vec::<(String, Vec<u8>)>::new()), Err(Error::EmptyCommit));
    assert_eq!(
        producer.try_commit(Vec::<(String, Vec<u8>)>::new()).map_err(Error::from),
        Err(Error::EmptyCommit)
    );
    assert_eq!(producer.commit([("", vec![1])]), Err(Error::EmptyPath));
    assert_eq!(producer.try_commit([("", vec![1])]).map_err(Error::from), Err(Error::EmptyPath));
    assert_eq!(producer.commit([("/12345678", vec![1])]), Err(Error::PathTooLong { len: 9, max: 8 }));
    // Lengths are bytes, not characters: "/éééé" is 9 bytes.
    assert_eq!(producer.commit([("/éééé", vec![1])]), Err(Error::PathTooLong { len: 9, max: 8 }));
    assert_eq!(producer.commit([("/a", vec![0; 5])]), Err(Error::RecordTooLarge { bytes: 5, max: 4 }));
    assert_eq!(
        producer.try_commit([("/a", vec![0; 5])]).map_err(Error::from),
        Err(Error::RecordTooLarge { bytes: 5, max: 4 })
    );
    // A bad part anywhere refuses the whole commit, the good parts before it included.
    assert_eq!(producer.commit([("/refused", vec![9]), ("", vec![9])]), Err(Error::EmptyPath));
    assert_eq!(
        producer.commit([("/refused", vec![9]), ("/b", vec![9]), ("/b", vec![9; 6])]),
        Err(Error::RecordTooLarge { bytes: 6, max: 4 })
    );

    // At the limits everything is accepted, and numbering starts at 1: nothing refused took one.
    assert_eq!(producer.commit([("/1234567", vec![1, 2, 3, 4])]), Ok(1));
    assert_eq!(producer.commit([("/ééé", vec![])]), Ok(2));
    assert_eq!(
        producer.commit([("/a", vec![0; 5]), ("/a", vec![1])]),
        Err(Error::RecordTooLarge { bytes: 5, max: 4 })
    );
    assert_eq!(producer.try_commit([("/a", vec![7])]).map_err(Error::from), Ok(3));

    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), 3);
    let mut paths: Vec<&str> = last.paths().collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/1234567", "/a", "/ééé"]);
    assert_eq!(last.read("/a"), Some(vec![(3, vec![7])]));
    assert!(last.read("/refused").is_none(), "a part of a refused commit became visible");
    assert!(last.read("/b").is_none(), "a part of a refused commit became visible");
}

#[test]
fn unmeasured_records_are_not_limited() {
    let pipeline =
        Pipeline::builder(Concat::<Vec<u8>>::default()).max_record_bytes(1).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    assert_eq!(producer.commit([("/big", vec![0; 100])]), Ok(1));
    assert_eq!(pipeline.shutdown().expect("clean shutdown").read("/big").map(|r| r.len()), Some(1));
}

#[test]
fn too_many_producers_and_dropping_one_frees_its_slot() {
    let pipeline = Pipeline::builder(Sum).shards(2).max_producers(2).build().expect("valid");
    let mut first = pipeline.producer().expect("slot 1 of 2");
    let second = pipeline.producer().expect("slot 2 of 2");
    assert_eq!(pipeline.producer().err(), Some(Error::TooManyProducers { max: 2 }));
    assert_eq!(first.commit([("/n", 1)]), Ok(1));
    drop(second);
    let mut third = pipeline.producer().expect("the dropped producer's slot is free again");
    assert_eq!(pipeline.producer().err(), Some(Error::TooManyProducers { max: 2 }));
    assert_eq!(third.commit([("/n", 2)]), Ok(2));

    // A producer dropped on another thread frees its slot too.
    std::thread::spawn(move || {
        let mut moved = third;
        moved.commit([("/n", 3)]).expect("a commit from another thread")
    })
    .join()
    .expect("producer thread");
    let mut fourth = pipeline.producer().expect("the slot freed on the other thread");
    assert_eq!(fourth.commit([("/n", 4)]), Ok(4));
    assert_eq!(first.commit([("/n", 5)]), Ok(5));
    drop((first, fourth));
    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.read("/n"), Some(15));
}

#[test]
fn invalid_configs_are_refused() {
    let refused = |result: Result<Pipeline<Sum>, Error>, what: &str| match result {
        Err(Error::InvalidConfig(why)) => assert!(!why.is_empty(), "{what}: empty message"),
        Err(other) => panic!("{what}: expected InvalidConfig, got {other:?}"),
        Ok(_) => panic!("{what}: accepted"),
    };
    refused(Pipeline::builder(Sum).divisor(0).build(), "divisor 0");
    refused(Pipeline::builder(Sum).divisor(1).build(), "divisor 1");
    refused(Pipeline::builder(Sum).shards(0).build(), "zero shards");
    refused(Pipeline::builder(Sum).queue_capacity(0).build(), "zero queue capacity");
    refused(Pipeline::builder(Sum).max_producers(0).build(), "zero producers");
    refused(Pipeline::builder(Sum).max_path_len(0).build(), "zero path length");
    refused(Pipeline::builder(Sum).merge_budget(0).build(), "zero merge budget");
    refused(Pipeline::builder(Sum).divisor(2).max_level(64).build(), "2^64 overflows");
    refused(Pipeline::builder(Sum).divisor(u64::MAX).max_level(2).build(), "u64::MAX^2 overflows");
    refused(Pipeline::builder(Sum).divisor(3).max_level(41).build(), "3^41 overflows");
    refused(Pipeline::builder(Sum).retain(Retention::Newest(2)).build(), "retention without a sink");
    refused(Pipeline::builder(Sum).max_level(2).flush_level(3).build(), "flush level above max level");
    refused(
        Pipeline::builder(Sum).sink(DiscardSink).max_level(0).flush_level(1).build(),
        "flush level above max level 0",
    );

    // The largest geometries that fit are accepted, and work.
    for builder in [
        Pipeline::builder(Sum).divisor(2).max_level(63),
        Pipeline::builder(Sum).divisor(u64::MAX).max_level(1),
        Pipeline::builder(Sum).divisor(3).max_level(40),
        Pipeline::builder(Sum).divisor(2).max_level(0).shards(1).queue_capacity(1),
        Pipeline::builder(Sum).sink(DiscardSink).retain(Retention::Newest(1)).max_level(2).flush_level(2),
    ] {
        let pipeline = builder.build().expect("a geometry that fits");
        let mut producer = pipeline.producer().expect("a producer");
        for value in 1..=5 {
            producer.commit([("/x", value)]).expect("a valid commit");
        }
        drop(producer);
        let last = pipeline.shutdown().expect("clean shutdown");
        assert_eq!(last.frontier(), 5);
    }
}

/// With the only worker held inside `seal`, nothing drains: `try_commit` fills the queue and
/// is then refused with `Full`, exactly, and the refused commits take no number.
#[test]
fn try_commit_is_refused_exactly_when_the_queue_is_full() {
    let gate = Gate::closed();
    let pipeline =
        Pipeline::builder(Gated(gate.clone())).shards(1).queue_capacity(2).build().expect("valid config");
    let _open_on_exit = gate.opener();
    let mut producer = pipeline.producer().expect("a producer");
    assert_eq!(producer.commit([("/a", 1)]), Ok(1));
    assert!(gate.wait_for_a_waiter(), "the worker never sealed commit 1");

    // The worker is held: the queue (capacity 2) is empty and nothing drains it.
    assert_eq!(producer.try_commit([("/a", 2), ("/b", 3)]).map_err(Error::from), Ok(2));
    assert_eq!(producer.try_commit([("/a", 100)]).map_err(Error::from), Err(Error::Full));
    assert_eq!(producer.try_commit([("/c", 101), ("/c", 102)]).map_err(Error::from), Err(Error::Full));
    assert_eq!(
        producer.try_commit([("/c", 103), ("/c", 104), ("/c", 105)]).map_err(Error::from),
        Err(Error::CommitTooLarge { parts: 3, capacity: 2 })
    );
    assert_eq!(producer.try_commit(NOTHING).map_err(Error::from), Err(Error::EmptyCommit));
    assert_eq!(producer.try_commit([("/a", 106)]).map_err(Error::from), Err(Error::Full));
    assert_eq!(pipeline.stats().commits, 2, "a refused commit took a number");

    gate.open();
    let snapshot = pipeline.wait_sealed(2, PATIENCE).expect("commits 1 and 2 become visible");
    assert_eq!(snapshot.read("/a"), Some(vec![(1, 1), (2, 2)]));
    // Room again: the next commit is number 3, whatever was refused in between.
    let next = loop {
        match producer.try_commit([("/a", 4)]).map_err(Error::from) {
            Err(Error::Full) => std::thread::yield_now(),
            other => break other,
        }
    };
    assert_eq!(next, Ok(3));
    // `commit` waits for room part by part, so it takes what `try_commit` never could.
    assert_eq!(producer.commit([("/c", 5), ("/c", 6), ("/c", 7)]), Ok(4));
    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), 4);
    assert_eq!(last.read("/a"), Some(vec![(1, 1), (2, 2), (3, 4)]));
    assert_eq!(last.read("/b"), Some(vec![(2, 3)]));
    assert_eq!(last.read("/c"), Some(vec![(4, 5), (4, 6), (4, 7)]));
}

/// A refused `try_commit` hands back its parts (paths and records, in order), and retrying
/// exactly those parts once there is room commits them.
#[test]
fn a_refused_try_commit_gives_its_parts_back_for_a_retry() {
    let gate = Gate::closed();
    let pipeline =
        Pipeline::builder(Gated(gate.clone())).shards(1).queue_capacity(2).build().expect("valid config");
    let _open_on_exit = gate.opener();
    let mut producer = pipeline.producer().expect("a producer");
    assert_eq!(producer.commit([("/held", 1)]), Ok(1));
    assert!(gate.wait_for_a_waiter(), "the worker never sealed commit 1");
    assert_eq!(producer.commit([("/fill", 2), ("/fill", 3)]), Ok(2));

    let parts: Vec<(String, u64)> = vec![("/retry/a".into(), 10), ("/retry/b".into(), 11)];
    let refused = producer.try_commit(parts.clone()).expect_err("the queue is full");
    assert_eq!(refused.error, Error::Full);
    assert_eq!(refused.parts, parts, "every part comes back, in order");
    assert_eq!(format!("{refused}"), format!("{} (2 parts handed back)", Error::Full));
    assert_eq!(pipeline.stats().commits, 2, "the refusal took a number");

    gate.open();
    let mut retry = refused.parts;
    let commit = loop {
        match producer.try_commit(retry) {
            Ok(commit) => break commit,
            Err(refused) => {
                assert_eq!(refused.error, Error::Full);
                retry = refused.parts;
                std::thread::yield_now();
            }
        }
    };
    assert_eq!(commit, 3);
    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.read("/retry/a"), Some(vec![(3, 10)]));
    assert_eq!(last.read("/retry/b"), Some(vec![(3, 11)]));
}

/// Without holding the worker: hammer `try_commit` on a tiny queue with commits that fit it (one
/// part on each of two paths: with one shard both go to its queue of 2, with two they may go to
/// either). Both halves must happen — commits accepted, and commits refused with `Full` because
/// the worker has not drained the last ones yet — and whatever the mix, the accepted commits are
/// numbered 1, 2, 3, … and only they are visible.
#[test]
fn refusals_under_load_leave_no_gap_and_no_trace() {
    for shards in [1, 2] {
        let pipeline = Pipeline::builder(Concat::<u64>::default())
            .shards(shards)
            .queue_capacity(2)
            .divisor(2)
            .max_level(3)
            .build()
            .expect("valid config");
        let mut producer = pipeline.producer().expect("a producer");
        let mut accepted: Vec<(u64, u64)> = Vec::new();
        let mut refused = 0u64;
        let mut attempt = 0u64;
        let deadline = std::time::Instant::now() + PATIENCE;
        while (accepted.len() < 300 || refused == 0) && std::time::Instant::now() < deadline {
            attempt += 1;
            let parts = [("/x", attempt), ("/y", attempt)];
            let outcome = producer.try_commit(parts).map_err(|refused| {
                assert_eq!(refused.parts, parts, "a refusal hands back every part as given");
                refused.error
            });
            match outcome {
                Ok(commit) => {
                    let expected = accepted.last().map_or(1, |&(c, _)| c + 1);
                    assert_eq!(commit, expected, "a commit number was skipped after {refused} refusals");
                    accepted.push((commit, attempt));
                }
                Err(Error::Full) => {
                    refused += 1;
                    std::thread::yield_now();
                }
                Err(other) => panic!("{shards} shards: a commit that fits the queue refused with {other:?}"),
            }
        }
        assert!(accepted.len() >= 300, "{shards} shards: {} accepted in {attempt} attempts", accepted.len());
        assert!(refused > 0, "{shards} shards: no refusal in {attempt} attempts; the Full half never ran");
        let last = pipeline.shutdown().expect("clean shutdown");
        assert_eq!(last.frontier(), accepted.len() as u64);
        for path in ["/x", "/y"] {
            assert_eq!(last.read(path), Some(accepted.clone()), "{path} holds exactly the accepted commits");
        }
    }
}

#[test]
fn errors_are_std_errors_with_messages() {
    // Each error with the variant its `Debug` names (a log of a refusal says which it was).
    let all = [
        (Error::EmptyPath, "EmptyPath"),
        (Error::PathTooLong { len: 9, max: 8 }, "PathTooLong"),
        (Error::RecordTooLarge { bytes: 5, max: 4 }, "RecordTooLarge"),
        (Error::EmptyCommit, "EmptyCommit"),
        (Error::Full, "Full"),
        (Error::CommitTooLarge { parts: 3, capacity: 2 }, "CommitTooLarge"),
        (Error::Shutdown, "Shutdown"),
        (Error::TooManyProducers { max: 2 }, "TooManyProducers"),
        (Error::InvalidConfig("divisor must be at least 2".into()), "InvalidConfig"),
        (Error::Timeout { commit: 7, frontier: 3 }, "Timeout"),
        (Error::WorkerPanicked, "WorkerPanicked"),
        (Error::ForeignKey, "ForeignKey"),
    ];
    let mut messages = std::collections::BTreeSet::new();
    for (error, variant) in all {
        let message = error.to_string();
        assert!(!message.trim().is_empty(), "{error:?} has an empty message");
        assert!(messages.insert(message.clone()), "two errors share the message {message:?}");
        let debug = format!("{error:?}");
        assert!(debug.starts_with(variant), "{debug:?} does not name the variant {variant}");
        let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(error.clone());
        assert_eq!(boxed.to_string(), message);
        assert!(boxed.source().is_none());
    }
    // The numbers a caller needs show in the message and in `Debug`.
    assert!(Error::PathTooLong { len: 9, max: 8 }.to_string().contains('9'));
    assert!(Error::Timeout { commit: 7, frontier: 3 }.to_string().contains('7'));
    assert_eq!(
        format!("{:?}", Error::Timeout { commit: 7, frontier: 3 }),
        "Timeout { commit: 7, frontier: 3 }"
    );
    // `?` converts it into the usual boxed error (this compiles only while `Error` is a
    // `std::error::Error`), and the caller gets the very variant back out of the box.
    fn boxed(error: Error) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err(error)?
    }
    let refused = boxed(Error::TooManyProducers { max: 2 }).expect_err("`?` passes the error on");
    assert_eq!(refused.downcast_ref::<Error>(), Some(&Error::TooManyProducers { max: 2 }));
}

/// A producer dropped while its parts still wait in its queue: the next producer takes the same
/// slot (and the same queues, and the same small path ids) and must not mix the paths up.
#[test]
fn a_reused_producer_slot_keeps_paths_apart() {
    let gate = Gate::closed();
    let pipeline = Pipeline::builder(Gated(gate.clone()))
        .shards(1)
        .max_producers(1)
        .queue_capacity(8)
        .build()
        .expect("valid config");
    let _open_on_exit = gate.opener();
    let mut first = pipeline.producer().expect("the only slot");
    assert_eq!(first.commit([("/first", 1)]), Ok(1));
    assert!(gate.wait_for_a_waiter(), "the worker never sealed commit 1");
    // Held worker: these stay queued while their producer goes away.
    assert_eq!(first.commit([("/first", 2), ("/other", 3)]), Ok(2));
    drop(first);
    let mut second = pipeline.producer().expect("the slot is free again");
    assert_eq!(second.commit([("/second", 4), ("/first", 5)]), Ok(3));
    assert_eq!(second.commit([("/other", 6), ("/second", 7)]), Ok(4));
    gate.open();
    let snapshot = pipeline.wait_sealed(4, PATIENCE).expect("all four commits become visible");
    assert_eq!(snapshot.read("/first"), Some(vec![(1, 1), (2, 2), (3, 5)]));
    assert_eq!(snapshot.read("/other"), Some(vec![(2, 3), (4, 6)]));
    assert_eq!(snapshot.read("/second"), Some(vec![(3, 4), (4, 7)]));
    drop(second);
    assert_eq!(pipeline.shutdown().expect("clean shutdown").frontier(), 4);
}

/// With two shards, `try_commit` is all or nothing: when one shard's queue is full, the parts
/// for the other shard (which would fit) are not enqueued either.
#[test]
fn try_commit_across_shards_enqueues_all_or_nothing() {
    let gate = Gate::closed();
    let pipeline =
        Pipeline::builder(Gated(gate.clone())).shards(2).queue_capacity(2).build().expect("valid config");
    let _open_on_exit = gate.opener();
    let mut producer = pipeline.producer().expect("a producer");
    // Eight paths: some on each shard, so both workers end up held in `seal`.
    let keys: Vec<String> = (0..8).map(|k| format!("/k{k}")).collect();
    assert_eq!(producer.commit(keys.iter().map(|k| (k.as_str(), 0))), Ok(1));
    assert!(gate.wait_for_waiters(2), "both workers should be held sealing commit 1");

    // Fill the queue of the shard that owns "/k0".
    assert_eq!(producer.try_commit([("/k0", 1), ("/k0", 2)]).map_err(Error::from), Ok(2));
    assert_eq!(producer.try_commit([("/k0", 3)]).map_err(Error::from), Err(Error::Full));
    // Every other path either shares that shard (refused) or has room on the other one.
    let mut next = 3;
    let mut spanning = None;
    for key in &keys[1..] {
        match producer.try_commit([(key.as_str(), 10)]).map_err(Error::from) {
            Err(Error::Full) => {}
            Ok(commit) => {
                assert_eq!(commit, next);
                next += 1;
                spanning = Some(key.clone());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let other = spanning.expect("one of eight paths lives on the other shard");
    // The other shard has room for one more part; "/k0"'s shard has none: refused whole.
    assert_eq!(
        producer.try_commit([(other.as_str(), 99), ("/k0", 99)]).map_err(Error::from),
        Err(Error::Full)
    );
    assert_eq!(
        producer.try_commit([("/k0", 99), (other.as_str(), 99)]).map_err(Error::from),
        Err(Error::Full)
    );
    assert_eq!(producer.try_commit([(other.as_str(), 11)]).map_err(Error::from), Ok(next));
    assert_eq!(producer.try_commit([(other.as_str(), 99)]).map_err(Error::from), Err(Error::Full));

    gate.open();
    let last_commit = next;
    let snapshot = pipeline.wait_sealed(last_commit, PATIENCE).expect("the accepted commits become visible");
    assert_eq!(snapshot.read("/k0"), Some(vec![(1, 0), (2, 1), (2, 2)]));
    assert_eq!(snapshot.read(&other), Some(vec![(1, 0), (last_commit - 1, 10), (last_commit, 11)]));
    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), last_commit);
    for key in &keys {
        let records = last.read(key).expect("every key was written by commit 1");
        assert!(records.iter().all(|&(_, r)| r != 99), "{key}: a part of a refused commit is visible");
    }
}
