//! Snapshots: publishing one, reading from one, and loading one.
//!
//! - `snapshot_publish_10_changed/paths/{10000,1000000}`: one shard's path table holds 10k or 1M
//!   paths; each iteration advances the frontier by a commit that changed 10 of them and
//!   publishes the shard view and the global view, as a worker's loop turn does
//!   (`bench::Publisher::publish(10)`). The 10 move on with every commit, so over a run every
//!   path changes, the table's merges are paid for and the changed entries are cold, as in a
//!   real turn. Publishing should cost O(paths changed), so the two figures should be close;
//!   their ratio is the point. The 1M table is built once, outside the timing (its build time
//!   is printed).
//! - `snapshot_read_10/paths/{10000,1000000}`: `Snapshot::read` of 10 paths spread over the same
//!   tables, from a snapshot taken after the publishes above: a lookup through the layers.
//! - `snapshot_load/*`: `Pipeline::snapshot()` (load and drop) on a one-shard `Sum` pipeline
//!   holding 1,000 paths, with nothing else running (`idle`), with one background thread loading
//!   snapshots in a loop (`1_reader`), and while one background producer commits in a loop, so
//!   the worker publishes new views all the time (`committing_producer`). At most two threads
//!   run besides the bench thread (the shard worker, plus the reader or the producer); they stop
//!   once their benchmark is done.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lockstep::bench::Publisher;
use lockstep::merge::Sum;
use lockstep::{DiscardSink, Pipeline, Retention};

mod common;

/// Paths changed by each published commit.
const CHANGED: usize = 10;
/// Paths the loaded pipeline holds.
const LOADED_PATHS: usize = 1_000;

fn publish(c: &mut Criterion) {
    let mut publishers: Vec<(usize, Publisher<Sum>)> = [10_000usize, 1_000_000]
        .into_iter()
        .map(|paths| {
            let started = Instant::now();
            let publisher = Publisher::new(Sum, paths, 0);
            eprintln!("snapshot_publish: built a {paths}-path publisher in {:?}", started.elapsed());
            (paths, publisher)
        })
        .collect();
    let mut group = c.benchmark_group("snapshot_publish_10_changed");
    for (paths, publisher) in &mut publishers {
        group.bench_function(BenchmarkId::new("paths", *paths), |b| {
            b.iter(|| publisher.publish(black_box(CHANGED)))
        });
        black_box(publisher.published());
    }
    group.finish();
    // Reads from the layers those publishes left behind.
    let mut group = c.benchmark_group("snapshot_read_10");
    for (paths, publisher) in &publishers {
        group.bench_function(BenchmarkId::new("paths", *paths), |b| {
            b.iter(|| publisher.read(black_box(CHANGED)))
        });
    }
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
    targets = publish, load
}
criterion_main!(benches);
