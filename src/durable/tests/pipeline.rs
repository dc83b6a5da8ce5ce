//! Whole durable pipelines on a file system that forgets what was not synced: a power cut at a
//! random moment keeps every commit `wait_durable` acknowledged at `Synced`, and what it loses
//! at `Written` is a suffix of the commits, never a hole; a failed log write stops durability
//! for good with a typed error, and reopening recovers everything acknowledged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::durable::sim::{Fault, Rng, SimStorage};
use crate::durable::writer::LogOptions;
use crate::merge::Concat;
use crate::{Builder, Durability, Error, Pipeline};

pub(super) const ROOT: &str = "/pipeline";

fn open(storage: &SimStorage, durability: Durability) -> Result<Pipeline<Concat<u64>>, Error> {
    open_with(storage, durability, LogOptions::default())
}

pub(super) fn open_with(
    storage: &SimStorage,
    durability: Durability,
    options: LogOptions,
) -> Result<Pipeline<Concat<u64>>, Error> {
    builder(storage, durability, options).build()
}

/// The tests' pipeline: 2 shards, divisor 2, max level 3 (top-level blocks of 8 commits).
pub(super) fn builder(
    storage: &SimStorage,
    durability: Durability,
    options: LogOptions,
) -> Builder<Concat<u64>> {
    Pipeline::builder(Concat::<u64>::default())
        .shards(2)
        .divisor(2)
        .max_level(3)
        .durable_on(storage.clone(), Path::new(ROOT), options)
        .durability(durability)
}

/// Segments of a few turns each, so that a run rotates and removes many.
pub(super) fn small_segments() -> LogOptions {
    LogOptions { segment_bytes: 300, checkpoint_commits: 16 }
}

/// Commit `value`'s parts: 1 or 2 paths, records naming the commit's value.
pub(super) fn parts(value: u64) -> Vec<(String, u64)> {
    (0..1 + value % 2).map(|k| (format!("/p{}", (value + k * 3) % 5), value * 2 + k)).collect()
}

/// Commits `parts_of(value)` for each of `values`, acknowledging every fourth with
/// `wait_durable`; stops at the first refusal (the power is out). Returns the commits issued
/// (commit number to value) and the highest acknowledgment.
pub(super) fn commit_acknowledging(
    pipeline: &Pipeline<Concat<u64>>,
    values: std::ops::Range<u64>,
    parts_of: impl Fn(u64) -> Vec<(String, u64)>,
) -> Result<(BTreeMap<u64, u64>, u64), Error> {
    let mut issued = BTreeMap::new();
    let mut acknowledged = 0;
    let mut producer = pipeline.producer()?;
    for value in values {
        let Ok(commit) = producer.commit(parts_of(value)) else { break };
        issued.insert(commit, value);
        if value % 4 == 0 {
            match pipeline.wait_durable(commit, Duration::from_secs(10)) {
                Ok(frontier) => acknowledged = frontier,
                Err(Error::Io { .. }) => break,
                Err(other) => return Err(other),
            }
        }
    }
    Ok((issued, acknowledged))
}

/// Every commit of the snapshot, from its records: commit number to its sorted parts.
pub(super) fn commits_in(pipeline: &Pipeline<Concat<u64>>) -> (u64, BTreeMap<u64, Vec<(String, u64)>>) {
    let snapshot = pipeline.snapshot();
    let mut found: BTreeMap<u64, Vec<(String, u64)>> = BTreeMap::new();
    for path in snapshot.paths() {
        for (commit, record) in snapshot.read(path).unwrap_or_default() {
            found.entry(commit).or_default().push((path.to_owned(), record));
        }
    }
    for parts in found.values_mut() {
        parts.sort();
    }
    (snapshot.frontier(), found)
}

#[test]
fn a_power_cut_keeps_every_synced_acknowledgment_and_loses_only_a_suffix() -> Result<(), Error> {
    let cases = std::env::var("LOCKSTEP_POWER_CUTS").ok().and_then(|n| n.parse().ok()).unwrap_or(40u64);
    for case in 0..cases {
        let durability = if case.is_multiple_of(2) { Durability::Synced } else { Durability::Written };
        let mut rng = Rng::new(case);
        let storage = SimStorage::default();
        // A first life, shut down cleanly: its commits are all synced.
        let mut issued: BTreeMap<u64, u64> = BTreeMap::new();
        let mut acknowledged = 0;
        {
            let pipeline = open(&storage, durability)?;
            let mut producer = pipeline.producer()?;
            for value in 0..rng.up_to(30) {
                issued.insert(producer.commit(parts(value))?, value);
            }
            drop(producer);
            acknowledged = acknowledged.max(pipeline.shutdown().map_err(Error::from)?.frontier());
        }
        // A second life, cut off by a power cut at a random operation of the storage.
        {
            let pipeline = open(&storage, durability)?;
            storage.cut_power_after(rng.up_to(60), case);
            let mut producer = pipeline.producer()?;
            for value in 1000..1000 + rng.up_to(80) {
                let Ok(commit) = producer.commit(parts(value)) else { break };
                issued.insert(commit, value);
                if value % 4 == 0 {
                    match pipeline.wait_durable(commit, Duration::from_secs(10)) {
                        Ok(frontier) => acknowledged = acknowledged.max(frontier),
                        Err(Error::Io { .. }) => break,
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        let after = storage.after_power_cut().unwrap_or_else(|| storage.crash(case));
        let reopened = open(&after, durability)?;
        let (recovered, found) = commits_in(&reopened);
        if durability == Durability::Synced {
            assert!(
                recovered >= acknowledged,
                "case {case}: recovered {recovered} < acknowledged {acknowledged}"
            );
        }
        // A prefix: every commit up to the recovered frontier, each whole, as issued; none past.
        for commit in 1..=recovered {
            let value =
                issued.get(&commit).unwrap_or_else(|| panic!("case {case}: commit {commit} never issued"));
            let mut wanted = parts(*value);
            wanted.sort();
            assert_eq!(found.get(&commit), Some(&wanted), "case {case}: commit {commit} not whole");
        }
        assert!(found.keys().all(|&c| c <= recovered), "case {case}: a commit past the frontier");
        assert_eq!(reopened.producer()?.commit(parts(7))?, recovered + 1, "case {case}: numbering resumes");
    }
    Ok(())
}

/// A log write that fails (a full disk) stops durability for good: `wait_durable` and every
/// later commit say so; what was acknowledged before is recovered once space is freed.
#[test]
fn a_full_disk_stops_durability_and_loses_nothing_acknowledged() -> Result<(), Error> {
    let storage = SimStorage::default();
    let pipeline = open(&storage, Durability::Synced)?;
    let mut producer = pipeline.producer()?;
    let mut last = 0;
    for value in 0..20 {
        last = producer.commit(parts(value))?;
    }
    let acknowledged = pipeline.wait_durable(last, Duration::from_secs(10))?;
    storage.fail_next_write(Fault::NoSpace, 0);
    let doomed = producer.commit(parts(99))?;
    let error = pipeline.wait_durable(doomed, Duration::from_secs(10)).expect_err("the write failed");
    assert!(matches!(&error, Error::Io { kind: std::io::ErrorKind::StorageFull, .. }), "{error:?}");
    assert_eq!(producer.commit(parts(100)), Err(error.clone()), "later commits are refused with it");
    assert_eq!(pipeline.wait_durable(1, Duration::ZERO), Ok(acknowledged), "what was durable stays so");
    drop(producer);
    drop(pipeline);
    let reopened = open(&storage, Durability::Synced)?;
    let (recovered, _) = commits_in(&reopened);
    assert!(recovered >= acknowledged, "recovered {recovered} < acknowledged {acknowledged}");
    Ok(())
}

/// At `Synced` the sync runs on a thread of its own; when it fails, durability stops for good
/// just the same: `wait_durable` and later commits say so, and what was durable stays so.
#[test]
fn a_failed_background_sync_stops_durability() -> Result<(), Error> {
    let storage = SimStorage::default();
    let pipeline = open(&storage, Durability::Synced)?;
    let mut producer = pipeline.producer()?;
    let mut last = 0;
    for value in 0..20 {
        last = producer.commit(parts(value))?;
    }
    let acknowledged = pipeline.wait_durable(last, Duration::from_secs(10))?;
    storage.fail_next_sync(Fault::Eio);
    let doomed = producer.commit(parts(99))?;
    let error = pipeline.wait_durable(doomed, Duration::from_secs(10)).expect_err("the sync failed");
    assert!(matches!(&error, Error::Io { .. }), "{error:?}");
    assert_eq!(pipeline.wait_durable(1, Duration::ZERO), Ok(acknowledged), "what was durable stays so");
    let refused = (0..100).map(|value| producer.commit(parts(value))).find(Result::is_err);
    assert_eq!(refused, Some(Err(error)), "later commits are refused with it");
    drop(producer);
    drop(pipeline);
    let reopened = open(&storage, Durability::Synced)?;
    let (recovered, _) = commits_in(&reopened);
    assert!(recovered >= acknowledged, "recovered {recovered} < acknowledged {acknowledged}");
    Ok(())
}
