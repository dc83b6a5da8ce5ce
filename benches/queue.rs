//! Queue hand-off: `bench::lane` (the (producer, shard) queue, an `rtrb` single-writer ring
//! carrying the pipeline's part type) against crossbeam's `ArrayQueue` (the multi-producer queue
//! the lanes used before) of the same capacity (4096, the pipeline's default), in the same group,
//! so the ratio is the point. A lane carries a 24-byte part (commit, path id, record);
//! `array_queue_24B` (a bare `ArrayQueue<[u64; 3]>`) carries the same size, `array_queue_u64`
//! 8 bytes.
//!
//! - `push_pop/*`: one push then one pop on one thread, the queue otherwise empty: the
//!   uncontended single-threaded cost of a hand-off.
//! - `spsc_1M/*`: a producer thread pushes 1M records (spinning while full) and the bench thread
//!   pops them all: the two-core transfer rate, thread spawn and join included (tens of
//!   microseconds against milliseconds of transfer).

use std::hint::{black_box, spin_loop};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Bencher, BenchmarkId, Criterion, Throughput};
use crossbeam::queue::ArrayQueue;
use lockstep::bench::lane;

mod common;

/// The pipeline's default queue capacity.
const CAPACITY: usize = 4096;
/// Records per two-thread transfer.
const BATCH: u64 = 1_000_000;
/// What a transfer of `0..BATCH` adds up to.
const CHECKSUM: u64 = BATCH * (BATCH - 1) / 2;

/// A 24-byte record: the size of the part a lane of `u64` records carries.
type Wide = [u64; 3];

/// Moves `0..BATCH` from a spawned thread (`push`, false while full) to this one (`pop`), once
/// per iteration, timing each transfer whole.
fn transfer(
    b: &mut Bencher<'_>,
    mut push: impl FnMut(u64) -> bool + Send,
    mut pop: impl FnMut() -> Option<u64>,
) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let started = Instant::now();
            let sum = std::thread::scope(|s| {
                let push = &mut push;
                s.spawn(move || {
                    for record in 0..BATCH {
                        while !push(record) {
                            spin_loop();
                        }
                    }
                });
                let (mut sum, mut received) = (0u64, 0u64);
                while received < BATCH {
                    match pop() {
                        Some(record) => {
                            sum += record;
                            received += 1;
                        }
                        None => spin_loop(),
                    }
                }
                sum
            });
            total += started.elapsed();
            assert_eq!(black_box(sum), CHECKSUM, "every record arrives once");
        }
        total
    })
}

fn queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(1));

    let (mut sender, mut receiver) = lane::<u64>(CAPACITY);
    let mut i = 0u64;
    group.bench_function(BenchmarkId::new("push_pop", "lane"), |b| {
        b.iter(|| {
            i += 1;
            sender.push(i, black_box(i)).expect("the lane is empty");
            black_box(receiver.pop())
        })
    });

    let bare = ArrayQueue::<u64>::new(CAPACITY);
    let mut i = 0u64;
    group.bench_function(BenchmarkId::new("push_pop", "array_queue_u64"), |b| {
        b.iter(|| {
            i += 1;
            bare.push(black_box(i)).expect("the queue is empty");
            black_box(bare.pop())
        })
    });

    let wide = ArrayQueue::<Wide>::new(CAPACITY);
    let mut i = 0u64;
    group.bench_function(BenchmarkId::new("push_pop", "array_queue_24B"), |b| {
        b.iter(|| {
            i += 1;
            wide.push(black_box([i; 3])).expect("the queue is empty");
            black_box(wide.pop())
        })
    });

    group.throughput(Throughput::Elements(BATCH));

    let (mut sender, mut receiver) = lane::<u64>(CAPACITY);
    group.bench_function(BenchmarkId::new("spsc_1M", "lane"), |b| {
        transfer(b, |record| sender.push(record, record).is_ok(), || receiver.pop().map(|(_, record)| record))
    });

    let bare = ArrayQueue::<u64>::new(CAPACITY);
    group.bench_function(BenchmarkId::new("spsc_1M", "array_queue_u64"), |b| {
        transfer(b, |record| bare.push(record).is_ok(), || bare.pop())
    });

    let wide = ArrayQueue::<Wide>::new(CAPACITY);
    group.bench_function(BenchmarkId::new("spsc_1M", "array_queue_24B"), |b| {
        transfer(b, |record| wide.push([record; 3]).is_ok(), || wide.pop().map(|record| record[2]))
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = queue
}
criterion_main!(benches);
