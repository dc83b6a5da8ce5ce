//! The sealed frontier: computing it, and one commit's announce/take/retire, with 1, 8 and 64
//! producer slots claimed (all idle between commits, single thread).
//!
//! `frontier()` scans every claimed slot, so it should grow with the producer count;
//! `commit(i)` touches only slot `i` and the shared counter, so it should not.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lockstep::bench::Frontier;

mod common;

const PRODUCERS: [usize; 3] = [1, 8, 64];

fn frontier(c: &mut Criterion) {
    let mut group = c.benchmark_group("frontier");
    for producers in PRODUCERS {
        let clock = Frontier::new(producers);
        // A few commits first, so the counter is not at its initial value.
        for i in 0..producers {
            clock.commit(i);
        }
        group.bench_function(BenchmarkId::new("frontier", producers), |b| {
            b.iter(|| black_box(&clock).frontier())
        });
    }
    for producers in PRODUCERS {
        let clock = Frontier::new(producers);
        let mut slot = 0usize;
        group.bench_function(BenchmarkId::new("commit", producers), |b| {
            b.iter(|| {
                slot = (slot + 1) % producers;
                black_box(&clock).commit(black_box(slot))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = frontier
}
criterion_main!(benches);
