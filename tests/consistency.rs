#![cfg(not(loom))]
//! Readers take snapshots while writers commit multi-part commits that span shards. Every
//! snapshot must be a consistent cut: frontier monotone, segments aligned, ascending, disjoint
//! and below the frontier, and each commit at or below the frontier visible in all of its paths
//! (and none above it). Afterwards the final snapshot must equal the reference model and every
//! kept snapshot must read exactly what the model reads at its frontier.
//!
//! Small by default; longer with `LOCKSTEP_STRESS` (see `common::Stress`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Stress, PATIENCE};
use lockstep::merge::Concat;
use lockstep::{Pipeline, Snapshot};

/// Paths written together: a commit picks one group and writes one record to each of its paths
/// (the first path twice). `/rare` is a group of its own, picked seldom.
const GROUPS: [&[&str]; 4] = [
    &["/g0/a", "/g0/b", "/g0/c", "/g0/d"],
    &["/g1/a", "/g1/b", "/g1/c"],
    &["/g2/x", "/g2/y", "/g2/z/deep"],
    &["/rare"],
];

fn all_paths() -> Vec<&'static str> {
    GROUPS.iter().flat_map(|group| group.iter().copied()).collect()
}

/// A record names its group, writer, the writer's sequence number and its part index.
fn record(group: usize, writer: u64, seq: u64, part: usize) -> u64 {
    (group as u64) << 56 | writer << 48 | seq << 8 | part as u64
}

fn group_of(record: u64) -> usize {
    (record >> 56) as usize
}

fn part_of(record: u64) -> usize {
    (record & 0xff) as usize
}

/// The parts of one commit of `group`.
fn parts(group: usize, writer: u64, seq: u64) -> Vec<(String, u64)> {
    let paths = GROUPS[group];
    let mut out: Vec<(String, u64)> = Vec::new();
    // The first path twice, so one path holds two records of the commit, in part order.
    for (part, path) in std::iter::once(paths[0]).chain(paths.iter().copied()).enumerate() {
        out.push((path.to_owned(), record(group, writer, seq, part)));
    }
    out
}

/// The parts a commit of `group` writes, as (path, part index), sorted.
fn expected_parts(group: usize) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> =
        parts(group, 0, 0).into_iter().enumerate().map(|(part, (path, _))| (path, part)).collect();
    out.sort();
    out
}

struct Settings {
    shards: usize,
    divisor: u64,
    max_level: u32,
    commits_per_writer: u64,
}

/// Commits each of the two writers makes in the consistent-cut runs.
fn commits_per_writer() -> u64 {
    match common::stress() {
        Stress::Small => 1_500,
        Stress::Short => 8_000,
        Stress::Long => 40_000,
    }
}

/// Checks one snapshot; returns its frontier.
fn check_snapshot(snapshot: &Snapshot<Concat<u64>>, settings: &Settings, previous: u64) -> u64 {
    let frontier = snapshot.frontier();
    assert!(frontier >= previous, "frontier went back from {previous} to {frontier}");
    // commit -> its parts seen, as (path, part index)
    let mut seen: BTreeMap<u64, Vec<(String, usize)>> = BTreeMap::new();
    let mut groups: BTreeMap<u64, usize> = BTreeMap::new();
    let mut with_data = BTreeSet::new();
    for path in all_paths() {
        let segments = snapshot.segments(path);
        common::check_shape(&segments, settings.divisor, settings.max_level, frontier)
            .unwrap_or_else(|why| panic!("{path} at frontier {frontier}: {why}; {segments:?}"));
        let Some(records) = snapshot.read(path) else {
            assert!(segments.is_empty(), "{path} has segments but reads nothing");
            continue;
        };
        with_data.insert(path.to_owned());
        assert!(records.windows(2).all(|w| w[0].0 <= w[1].0), "{path} reads out of commit order");
        // The read is the concatenation of the segments' outputs, each inside its range.
        let mut joined = Vec::new();
        for (segment, output) in snapshot.segment_outputs(path) {
            for (commit, _) in &output {
                assert!(
                    (segment.start..=segment.end).contains(commit),
                    "{path}: commit {commit} in the output of {segment:?}"
                );
            }
            joined.extend_from_slice(&output);
        }
        assert_eq!(joined, records, "{path}: read differs from its segments' outputs");
        for (commit, rec) in records {
            assert!(commit >= 1 && commit <= frontier, "{path}: commit {commit} beyond frontier {frontier}");
            let group = group_of(rec);
            let known = *groups.entry(commit).or_insert(group);
            assert_eq!(known, group, "commit {commit} carries records of two groups");
            seen.entry(commit).or_default().push((path.to_owned(), part_of(rec)));
        }
    }
    // Every commit up to the frontier is visible (each writes at least one path), whole.
    let visible: Vec<u64> = seen.keys().copied().collect();
    let all: Vec<u64> = (1..=frontier).collect();
    assert_eq!(visible.len(), all.len(), "commits missing below the frontier {frontier}");
    assert_eq!(visible, all, "commits missing below the frontier {frontier}");
    for (commit, mut parts) in seen {
        parts.sort();
        assert_eq!(parts, expected_parts(groups[&commit]), "commit {commit} is only partly visible");
    }
    let listed: BTreeSet<String> = snapshot.paths().map(str::to_owned).collect();
    assert_eq!(listed, with_data, "paths() at frontier {frontier}");
    frontier
}

/// Sets its flag when dropped, by a normal end or by a panic.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        // Release: pairs with the reader's Acquire, so its last snapshot sees every commit.
        self.0.store(true, Ordering::Release);
    }
}

fn run(settings: Settings) {
    let pipeline = Pipeline::builder(Concat::<u64>::default())
        .shards(settings.shards)
        .divisor(settings.divisor)
        .max_level(settings.max_level)
        .queue_capacity(4)
        .merge_budget(2)
        .build()
        .expect("valid settings");
    let writers_done = AtomicBool::new(false);
    // The frontier of the last snapshot the reader checked: writer 0 waits on it half-way, so
    // the reader is shown to check snapshots while commits are still being written.
    let reader_at = AtomicU64::new(0);
    let mut producers: Vec<_> =
        (0..2).map(|_| pipeline.producer().expect("two producers are allowed")).collect();
    let (numbered, kept, checked) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut frontier = 0;
            let mut kept = Vec::new();
            let mut checked: Vec<u64> = Vec::new();
            loop {
                // Read the flag first: a snapshot taken after it is set sees the end state.
                let last_round = writers_done.load(Ordering::Acquire);
                let snapshot = pipeline.snapshot();
                frontier = check_snapshot(&snapshot, &settings, frontier);
                // Relaxed: a progress mark, polled; the snapshot it stands for is checked.
                reader_at.store(frontier, Ordering::Relaxed);
                if checked.len().is_multiple_of(16) {
                    assert!(pipeline.stats().commits >= frontier, "frontier past the commits issued");
                }
                if checked.len().is_multiple_of(8) && kept.len() < 64 {
                    kept.push(snapshot);
                }
                checked.push(frontier);
                if last_round {
                    return (kept, checked);
                }
            }
        });
        let writers: Vec<_> = producers
            .drain(..)
            .enumerate()
            .map(|(writer, mut producer)| {
                let count = settings.commits_per_writer;
                let reader_at = &reader_at;
                scope.spawn(move || {
                    let mut rng = common::Rng::new(writer as u64 + 7);
                    let mut done = Vec::new();
                    for seq in 0..count {
                        if writer == 0 && seq == count / 2 {
                            // Half-way, until the reader has checked a snapshot showing this
                            // writer's last commit: one taken while half of it is still to come.
                            let mine = done.last().map_or(0, |&(commit, _)| commit);
                            common::eventually("the reader checks a snapshot mid-run", || {
                                reader_at.load(Ordering::Relaxed) >= mine
                            });
                        }
                        let group = if rng.below(16) == 0 { 3 } else { rng.below(3) as usize };
                        let parts = parts(group, writer as u64, seq);
                        let commit = producer.commit(parts.clone()).expect("a valid commit is accepted");
                        done.push((commit, parts));
                    }
                    done
                })
            })
            .collect();
        // Set when the writers are done, or when one of them failed: the reader then stops too,
        // and the scope can end.
        let done = SetOnDrop(&writers_done);
        let numbered: Vec<_> = writers.into_iter().flat_map(|w| w.join().expect("writer thread")).collect();
        drop(done);
        let (kept, checked) = reader.join().expect("reader thread");
        (numbered, kept, checked)
    });
    let commits = common::gapless(numbered);
    let total = commits.len() as u64;
    let mid_run = checked.iter().filter(|&&frontier| frontier > 0 && frontier < total).count();
    assert!(mid_run > 0, "none of the {} snapshots checked was taken while writing", checked.len());
    let sealed = pipeline.wait_sealed(total, PATIENCE).expect("every commit becomes visible");
    check_snapshot(&sealed, &settings, 0);

    // Each kept snapshot reads exactly what the model reads at its frontier.
    for snapshot in &kept {
        let frontier = snapshot.frontier();
        for path in all_paths() {
            let expected = common::concat_of(&commits, path, frontier);
            let expected = (!expected.is_empty()).then_some(expected);
            assert_eq!(snapshot.read(path), expected, "{path} at frontier {frontier}");
        }
    }

    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), total);
    check_snapshot(&last, &settings, 0);
    let layouts = common::layouts(&commits, settings.divisor, settings.max_level, total);
    for (path, layout) in &layouts {
        assert_eq!(&last.segments(path), layout, "finished layout of {path}");
    }
    for (path, expected) in common::concat_reads(&commits, total) {
        assert_eq!(last.read(&path), Some(expected), "final read of {path}");
    }
}

#[test]
fn snapshots_are_consistent_cuts_across_two_shards() {
    run(Settings { shards: 2, divisor: 2, max_level: 4, commits_per_writer: commits_per_writer() });
}

#[test]
fn snapshots_are_consistent_cuts_across_three_shards() {
    run(Settings { shards: 3, divisor: 3, max_level: 3, commits_per_writer: commits_per_writer() });
}

/// Many short runs of fresh three-shard pipelines, two producers each. With three shards a
/// worker building a global view can load one shard's view just before that shard moves on,
/// then another shard's view whose merges relied on the move: the publish must notice and
/// retry, never publish the pair, and never take a worker down. Every run must end with the
/// model's layout and reads.
#[test]
fn short_three_shard_runs_keep_every_worker_alive() {
    let budget = Duration::from_secs(match common::stress() {
        Stress::Small => 4,
        Stress::Short => 20,
        Stress::Long => 60,
    });
    let started = Instant::now();
    let mut runs = 0u64;
    while runs < 20 || started.elapsed() < budget {
        runs += 1;
        let (divisor, max_level) = (2, 3);
        let pipeline = Pipeline::builder(Concat::<u64>::default())
            .shards(3)
            .divisor(divisor)
            .max_level(max_level)
            .queue_capacity(2)
            .merge_budget(3)
            .build()
            .expect("valid settings");
        let scripts = (0..2u64)
            .map(|p| {
                let mut rng = common::Rng::new(runs << 8 | p);
                (0..40u64)
                    .map(|i| {
                        (0..1 + rng.below(4))
                            .map(|k| (format!("/p{}", rng.below(6)), p << 32 | i << 4 | k))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let commits = common::commit_scripts(&pipeline, scripts);
        let total = commits.len() as u64;
        pipeline.wait_sealed(total, PATIENCE).unwrap_or_else(|e| panic!("run {runs}: {e}"));
        let last = pipeline.shutdown().unwrap_or_else(|e| panic!("run {runs}: {e}"));
        assert_eq!(last.frontier(), total);
        for (path, layout) in common::layouts(&commits, divisor, max_level, total) {
            assert_eq!(last.segments(&path), layout, "run {runs}: layout of {path}");
        }
        for (path, records) in common::concat_reads(&commits, total) {
            assert_eq!(last.read(&path), Some(records), "run {runs}: read of {path}");
        }
    }
}

/// Many producers on queues of one part, more threads than cores: producers find their queue
/// full all the time and wait for room (spinning, then parked until the worker that drains
/// their queue wakes them). Every commit lands, in order, and the run ends.
#[test]
fn many_producers_on_tiny_queues_all_finish() {
    let pipeline = Pipeline::builder(Concat::<u64>::default())
        .shards(2)
        .queue_capacity(1)
        .max_producers(16)
        .build()
        .expect("valid settings");
    let scripts: Vec<common::Commits<u64>> = (0..16u64)
        .map(|p| (0..300u64).map(|i| vec![(format!("/p{}", (p + i) % 5), p << 32 | i)]).collect())
        .collect();
    // Bounded: producers stuck waiting for room fail the test instead of hanging it.
    let (pipeline, commits) = common::bounded("sixteen producers on queues of one part", move || {
        let commits = common::commit_scripts(&pipeline, scripts);
        (pipeline, commits)
    });
    let last = common::bounded("shutdown", move || pipeline.shutdown()).expect("clean shutdown");
    assert_eq!(last.frontier(), commits.len() as u64);
    for (path, records) in common::concat_reads(&commits, last.frontier()) {
        assert_eq!(last.read(&path), Some(records), "{path}");
    }
}

/// Sixteen producers fill queues of 4,096 parts while the worker is held, so the next turn
/// finds far more than it takes at once (`TURN_ROWS` in `src/shard/worker.rs`: each of the 17 queues
/// gives 1,927 parts a turn, so commits get split at that share, and a 4,000-part commit spans
/// three turns' shares). Turns then seal only below the newest commit taken from a queue that
/// still holds more. Every commit lands whole, in order, and the run ends. (Sealing up to that
/// commit instead, one past the rule, fails this test.)
#[test]
fn full_queues_are_taken_over_several_bounded_turns() {
    let gate = common::Gate::closed();
    let pipeline = Pipeline::builder(common::Gated(gate.clone()))
        .shards(1)
        .queue_capacity(4096)
        .max_producers(17)
        .build()
        .expect("valid settings");
    let _open_on_exit = gate.opener();
    let mut first = pipeline.producer().expect("a producer");
    assert_eq!(first.commit([("/first", 0)]), Ok(1));
    assert!(gate.wait_for_a_waiter(), "the worker never sealed commit 1");
    let mut rng = common::Rng::new(17);
    let scripts: Vec<common::Commits<u64>> = (0..16u64)
        .map(|p| {
            // About 2,400 parts each: more than a turn's share, less than a queue holds. The
            // first four producers start with a commit of 4,000 parts: more than two shares,
            // so no single turn takes all of it.
            let big =
                (p < 4).then(|| (0..4000u64).map(|k| (format!("/big{}", k % 3), p << 32 | k)).collect());
            let small = (0..if p < 4 { 20 } else { 600 }).map(|i: u64| {
                let parts = 1 + rng.below(7);
                (0..parts).map(|k| (format!("/p{}", (p + i + k) % 9), p << 32 | (i + 1) << 16 | k)).collect()
            });
            big.into_iter().chain(small).collect()
        })
        .collect();
    let producers: Vec<_> = scripts.iter().map(|_| pipeline.producer().expect("a producer")).collect();
    let mut numbered = vec![(1, vec![("/first".to_string(), 0)])];
    std::thread::scope(|scope| {
        let handles: Vec<_> = producers
            .into_iter()
            .zip(scripts)
            .map(|(mut producer, script)| {
                scope.spawn(move || {
                    let commit = |parts: Vec<(String, u64)>| {
                        (producer.commit(parts.clone()).expect("room in the queue"), parts)
                    };
                    script.into_iter().map(commit).collect::<Vec<_>>()
                })
            })
            .collect();
        numbered.extend(handles.into_iter().flat_map(|h| h.join().expect("producer thread")));
    });
    gate.open();
    let last = pipeline.shutdown().expect("clean shutdown");
    let commits = common::gapless(numbered);
    assert_eq!(last.frontier(), commits.len() as u64);
    for (path, records) in common::concat_reads(&commits, last.frontier()) {
        assert_eq!(last.read(&path), Some(records), "{path}");
    }
}
