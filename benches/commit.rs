//! The commit call: `Producer::commit` of 1 and of 16 parts through the public API, one shard,
//! default queue capacity (4096), the shard worker draining concurrently on the other core.
//!
//! - `saturated/<merge>/<parts>`: commit back to back for as long as criterion asks. The queue
//!   fills and stays full, so this is the worker's drain rate as the producer feels it, not the
//!   cost of the call (the queue depth the worker saw is printed after each bench to show it).
//! - `burst/<merge>/<parts>`: time at most one queue's worth of parts (4096 one-part or 256
//!   sixteen-part commits), then wait, untimed, until the worker has published them, and go
//!   again. The queue never fills: this is the cost of the call itself (validate, route, take a
//!   commit number, enqueue, ring the worker if it sleeps).
//!
//! - `burst/sum_key/<parts>`: the burst of `Sum` commits naming their paths by [`PathKey`]
//!   (resolved once before the timing) instead of by string: no hashing or string comparison
//!   per part.
//!
//! Records are 16 bytes: `Arc<[u8]>` (cloned from a pool of distinct records, so the timed loop
//! neither allocates nor hammers one reference count the worker also touches) and, for
//! comparison, `Sum`'s plain `i64`. A commit of `n` parts writes paths `/bench/00..n`. Sealed
//! top-level segments go to a discarding sink with `Retention::Newest(2)`, so memory stays
//! bounded however many iterations criterion runs.

use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, Bencher, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use lockstep::merge::{Concat, Sum};
use lockstep::{DiscardSink, Merge, PathKey, Pipeline, Producer, Retention};

mod common;

/// Parts each queue holds: the builder's default, restated to size the bursts.
const CAPACITY: usize = 4096;

/// Distinct 16-byte records the `Arc<[u8]>` bench cycles through.
const POOL: usize = 4096;

fn start<M: Merge>(merge: M) -> Pipeline<M> {
    Pipeline::builder(merge)
        .shards(1)
        .sink(DiscardSink)
        .retain(Retention::Newest(2))
        .build()
        .expect("a valid benchmark configuration")
}

fn report_depth<M: Merge>(name: &str, pipeline: &Pipeline<M>) {
    let stats = pipeline.stats();
    if stats.commits == 0 {
        return; // filtered out on the command line
    }
    let depth = &stats.queue_depth;
    eprintln!(
        "{name}: {} commits; queue depth at worker turns: p50 {} p99 {} max {} (capacity {CAPACITY})",
        stats.commits,
        depth.value_at_quantile(0.5),
        depth.value_at_quantile(0.99),
        depth.max()
    );
}

/// One commit of `parts` parts, each record made by `record`.
fn commit_parts<M: Merge>(
    producer: &mut Producer<M>,
    parts: usize,
    record: &mut impl FnMut() -> M::Record,
) -> u64 {
    producer
        .commit(common::PATHS[..parts].iter().map(|&path| (path, record())))
        .expect("the pipeline is running")
}

/// Times `commit` in bursts of at most `burst` calls, waiting (untimed) after each burst until
/// the worker has published it, so the queue never fills.
fn bursts<M: Merge>(
    b: &mut Bencher<'_>,
    pipeline: &Pipeline<M>,
    burst: u64,
    mut commit: impl FnMut() -> u64,
) {
    b.iter_custom(|iters| common::timed_bursts(pipeline, iters, burst, &mut commit))
}

/// Both benches for one merge and one commit size, each on a fresh pipeline.
fn commit_benches<M: Merge>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    parts: usize,
    merge: impl Fn() -> M,
    mut record: impl FnMut() -> M::Record,
) {
    // Saturated: commit as fast as the call returns; the queue fills and stays full, so this
    // is the worker's drain rate as seen by the producer.
    let pipeline = start(merge());
    let mut producer = pipeline.producer().expect("a free producer slot");
    group.bench_function(BenchmarkId::new(format!("saturated/{name}"), parts), |b| {
        b.iter(|| black_box(commit_parts(&mut producer, parts, &mut record)))
    });
    report_depth(&format!("commit/saturated/{name}/{parts}"), &pipeline);
    drop(producer);
    pipeline.shutdown().expect("clean shutdown");

    // Burst: time at most a queue's worth of parts, then wait (untimed) until the worker has
    // published them, so the queue never fills: the cost of the call itself, with the worker
    // draining concurrently on the other core.
    let pipeline = start(merge());
    let mut producer = pipeline.producer().expect("a free producer slot");
    let burst = (CAPACITY / parts) as u64;
    group.bench_function(BenchmarkId::new(format!("burst/{name}"), parts), |b| {
        bursts(b, &pipeline, burst, || commit_parts(&mut producer, parts, &mut record))
    });
    report_depth(&format!("commit/burst/{name}/{parts}"), &pipeline);
    drop(producer);
    pipeline.shutdown().expect("clean shutdown");
}

/// The burst bench for `Sum` commits of `parts` parts named by key.
fn keyed_burst(group: &mut BenchmarkGroup<'_, WallTime>, parts: usize) {
    let pipeline = start(Sum);
    let keys: Vec<PathKey> =
        common::PATHS.iter().map(|path| pipeline.key(path).expect("a valid path")).collect();
    let mut producer = pipeline.producer().expect("a free producer slot");
    let burst = (CAPACITY / parts) as u64;
    group.bench_function(BenchmarkId::new("burst/sum_key", parts), |b| {
        bursts(b, &pipeline, burst, || {
            let commit = producer.commit(keys[..parts].iter().map(|key| (key, black_box(1i64))));
            commit.expect("the pipeline is running")
        })
    });
    report_depth(&format!("commit/burst/sum_key/{parts}"), &pipeline);
    drop(producer);
    pipeline.shutdown().expect("clean shutdown");
}

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    let pool: Vec<Arc<[u8]>> = (0..POOL).map(|i| Arc::from((i as u128).to_le_bytes().as_slice())).collect();
    for parts in [1usize, 16] {
        group.throughput(Throughput::Elements(parts as u64));
        let mut next = 0usize;
        commit_benches(&mut group, "concat_arc16", parts, Concat::<Arc<[u8]>>::default, || {
            next = (next + 1) % POOL;
            pool[next].clone()
        });
        commit_benches(&mut group, "sum", parts, || Sum, || black_box(1i64));
        keyed_burst(&mut group, parts);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = commit
}
criterion_main!(benches);
