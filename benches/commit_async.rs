//! `Producer::commit_async` against `Producer::commit` with room available, in one run: the
//! cost of the future (validate, check room for every part, take a number, enqueue) next to the
//! blocking call's (validate, take a number, enqueue), `Sum` records by name, one shard.
//!
//! Each id is timed in bursts of at most one queue's worth of parts (4096 one-part or 256
//! sixteen-part commits), then the bench waits, untimed, until the worker has published them,
//! as `commit.rs`'s `burst` ids do: the queue never fills, so a commit never waits. The future
//! is driven by the most trivial executor: polled once with a no-op waker, where it is ready
//! (room is there); were it ever pending, the bench panics rather than time a wait.
//!
//! Both ids run on one pipeline and one producer, one after the other. On a pipeline each,
//! whichever ran second came out 5-20% dearer, and swapping their order swapped the verdict
//! (benches/README.md).
//!
//! `commit_async/burst/{commit,commit_async}/{1,16}`; the ratio of their medians is the
//! figure (README.md).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lockstep::merge::Sum;
use lockstep::{DiscardSink, Pipeline, Retention};

mod common;

/// Parts each queue holds: the builder's default, restated to size the bursts.
const CAPACITY: usize = 4096;

fn start() -> Pipeline<Sum> {
    Pipeline::builder(Sum)
        .shards(1)
        .sink(DiscardSink)
        .retain(Retention::Newest(2))
        .build()
        .expect("a valid benchmark configuration")
}

/// Polls `future` once: with room available a commit is ready at its first poll.
fn ready<F: Future>(future: F, cx: &mut Context<'_>) -> F::Output {
    match pin!(future).poll(cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a commit waited for room: the burst is larger than the queue"),
    }
}

fn commit_async(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit_async");
    for parts in [1usize, 16] {
        group.throughput(Throughput::Elements(parts as u64));
        let burst = (CAPACITY / parts) as u64;
        let paths = &common::PATHS[..parts];

        let pipeline = start();
        let mut producer = pipeline.producer().expect("a free producer slot");
        group.bench_function(BenchmarkId::new("burst/commit", parts), |b| {
            b.iter_custom(|iters| {
                common::timed_bursts(&pipeline, iters, burst, || {
                    let parts = paths.iter().map(|&path| (path, black_box(1i64)));
                    producer.commit(parts).expect("the pipeline is running")
                })
            })
        });
        let mut cx = Context::from_waker(Waker::noop());
        group.bench_function(BenchmarkId::new("burst/commit_async", parts), |b| {
            b.iter_custom(|iters| {
                common::timed_bursts(&pipeline, iters, burst, || {
                    let parts = paths.iter().map(|&path| (path, black_box(1i64)));
                    ready(producer.commit_async(parts), &mut cx).expect("the pipeline is running")
                })
            })
        });
        drop(producer);
        pipeline.shutdown().expect("clean shutdown");
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = commit_async
}
criterion_main!(benches);
