//! The shard's stage and snapshots: a worker's turn over the batches, reading one path from a long
//! history, and loading a snapshot.
//!
//! - `shard_turn/paths/{10000,1000000}`: one shard worker's turn after the queues, as the
//!   worker runs it (`bench::Shard::turn`): 4,096 sealed `Sum` records, one per commit, to
//!   uniformly random paths, are sorted and formed into batches (divisor 4, top level 4:
//!   blocks of 256 commits), merges are paid with the worker's fuel, and the shard view and the
//!   global view are published. A window of 4 top-level blocks is kept, as the loadgen's setting
//!   (`Retention::Newest`) keeps memory steady. Throughput is in records, so the figure is the
//!   cost per record of form + merge + publish; it excludes the queue pops and the path id
//!   lookup of the drain. The records are generated outside the timing (`iter_batched`).
//!   `shard_turn/top_8/10000` is the same at top level 8, the library's default: each turn
//!   forms one 4,096-commit block, and merges build the levels above it.
//! - `snapshot_long_history/{read,segments}`: `Snapshot::read` and `Snapshot::segments` of a path
//!   written once, at commit 1, in a shard that retains 100,000 top-level blocks of other paths'
//!   data (divisor 2, top level 1, `Retention::All`): a directory lookup, one lookup of the
//!   path's history log and one binary search per spine batch, however long the history.
//! - `snapshot_load/*`: `Pipeline::snapshot()` (load and drop) on a one-shard `Sum` pipeline
//!   holding 1,000 paths, with nothing else running (`idle`), with one background thread loading
//!   snapshots in a loop (`1_reader`), and while one background producer commits in a loop, so
//!   the worker publishes new views all the time (`committing_producer`). At most two threads
//!   run besides the bench thread (the shard worker, plus the reader or the producer); they stop
//!   once their benchmark is done.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use lockstep::bench::Shard;
use lockstep::merge::Sum;
use lockstep::{DiscardSink, Pipeline, Retention};

mod common;

/// Paths the loaded pipeline holds.
const LOADED_PATHS: usize = 1_000;
/// Records (one per commit) a benchmarked turn seals.
const TURN: u64 = 4096;
/// Top-level blocks in the long history.
const HISTORY: u64 = 100_000;

/// A small deterministic generator (SplitMix64) for path choices.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn turn(c: &mut Criterion) {
    let mut group = c.benchmark_group("shard_turn");
    group.throughput(Throughput::Elements(TURN));
    for (name, paths, max_level) in [("paths", 10_000u32, 4), ("paths", 1_000_000, 4), ("top_8", 10_000, 8)] {
        let mut shard = Shard::new(Sum, paths, 4, max_level, Some(4)).expect("a valid geometry");
        let mut state = u64::from(paths);
        group.bench_function(BenchmarkId::new(name, paths), |b| {
            b.iter_batched(
                || {
                    (1..=TURN)
                        .map(|commit| ((splitmix(&mut state) % u64::from(paths)) as u32, commit, 1i64))
                        .collect::<Vec<_>>()
                },
                |records| shard.turn(TURN, records),
                BatchSize::LargeInput,
            )
        });
        eprintln!("shard_turn/{name}/{paths}: {} batches published at the end", shard.batches());
    }
    group.finish();
}

fn long_history(c: &mut Criterion) {
    let started = Instant::now();
    let mut shard = Shard::new(Sum, 1_000, 2, 1, None).expect("a valid geometry");
    // Path 0 once, at commit 1; then the other paths, one per commit, turn by turn.
    let commits = 2 * HISTORY;
    let mut state = 7u64;
    let mut done = 0;
    while done < commits {
        let n = TURN.min(commits - done);
        let records: Vec<(u32, u64, i64)> = (1..=n)
            .map(|offset| {
                let path = if done + offset == 1 { 0 } else { 1 + (splitmix(&mut state) % 999) as u32 };
                (path, offset, 1)
            })
            .collect();
        shard.turn(n, records);
        done += n;
    }
    let snapshot = shard.snapshot();
    let once = Shard::<Sum>::name(0);
    assert_eq!(snapshot.read(&once), Some(1), "the path written once reads its record");
    eprintln!(
        "snapshot_long_history: {HISTORY} top-level blocks in {} history batches and {} more, built in {:.2?}",
        shard.history_runs(),
        shard.batches(),
        started.elapsed()
    );
    let mut group = c.benchmark_group("snapshot_long_history");
    group.bench_function("read", |b| b.iter(|| snapshot.read(black_box(&once))));
    group.bench_function("segments", |b| b.iter(|| snapshot.segments(black_box(&once))));
    group.finish();
}

/// A thread loading or committing in the background until told to stop.
type Background = fn(&Pipeline<Sum>, &AtomicBool);

/// Loads snapshots in a loop until `stop`.
fn reader(pipeline: &Pipeline<Sum>, stop: &AtomicBool) {
    // Relaxed: a stop flag; nothing is published through it.
    while !stop.load(Ordering::Relaxed) {
        black_box(pipeline.snapshot().frontier());
    }
}

/// Commits one part at a time, over the loaded paths, until `stop`.
fn committer(pipeline: &Pipeline<Sum>, stop: &AtomicBool) {
    let mut producer = pipeline.producer().expect("a free producer slot");
    let paths: Vec<String> = (0..LOADED_PATHS).map(|i| format!("/load/{i:04}")).collect();
    let mut i = 0usize;
    // Relaxed: a stop flag; nothing is published through it.
    while !stop.load(Ordering::Relaxed) {
        i = (i + 1) % LOADED_PATHS;
        producer.commit([(&paths[i], 1i64)]).expect("the pipeline is running");
    }
}

fn load(c: &mut Criterion) {
    let pipeline = Pipeline::builder(Sum)
        .shards(1)
        .sink(DiscardSink)
        .retain(Retention::Newest(2))
        .build()
        .expect("a valid benchmark configuration");
    let mut producer = pipeline.producer().expect("a free producer slot");
    let mut last = 0;
    for i in 0..LOADED_PATHS {
        last = producer.commit([(format!("/load/{i:04}"), 1i64)]).expect("the pipeline is running");
    }
    drop(producer);
    pipeline.wait_sealed(last, Duration::from_secs(30)).expect("the worker publishes the paths");

    let mut group = c.benchmark_group("snapshot_load");
    let background: [(&str, Option<Background>); 3] =
        [("idle", None), ("1_reader", Some(reader)), ("committing_producer", Some(committer))];
    for (name, thread) in background {
        let stop = AtomicBool::new(false);
        let (started, before) = (Instant::now(), pipeline.snapshot().frontier());
        std::thread::scope(|s| {
            if let Some(thread) = thread {
                let (pipeline, stop) = (&pipeline, &stop);
                s.spawn(move || thread(pipeline, stop));
            }
            group.bench_function(name, |b| b.iter(|| pipeline.snapshot()));
            // Relaxed: a stop flag; the scope's join orders everything else.
            stop.store(true, Ordering::Relaxed);
        });
        let (elapsed, after) = (started.elapsed(), pipeline.snapshot().frontier());
        let rate = (after - before) as f64 / elapsed.as_secs_f64();
        eprintln!(
            "snapshot_load/{name}: frontier {before} -> {after} in {elapsed:.2?} ({rate:.0} commits/s)"
        );
    }
    group.finish();
    pipeline.shutdown().expect("clean shutdown");
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = turn, long_history, load
}
criterion_main!(benches);
