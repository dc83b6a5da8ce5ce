//! Seal and merge for each built-in `Merge`: `Concat<u64>`, `Concat<Arc<[u8]>>` (16-byte
//! records), `Sum` and `LastWriteWins<u64, u64>`.
//!
//! - `<merge>/seal/1` and `<merge>/seal/16`: one commit's records for one path become an output.
//!   The input vector is built outside the timing (`iter_batched`), and the output is dropped
//!   outside it too.
//! - `<merge>/merge_4x16`: four adjacent outputs of 16 records each (one commit each) joined into
//!   their parent's output, the output dropped outside the timing. For `LastWriteWins` the four
//!   outputs have keys `8j .. 8j + 16`, so neighbours overlap by half (40 distinct keys in the
//!   result).
//!
//! Throughput is in records (1, 16 and 64).

use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use lockstep::merge::{Concat, LastWriteWins, Sum};
use lockstep::Merge;

mod common;

/// Records per output in the merge bench, and the larger seal size.
const RECORDS: usize = 16;
/// Outputs joined in the merge bench.
const OUTPUTS: usize = 4;

/// Seal and merge benches for `merge`; `record(j, i)` is record `i` of output `j`.
fn seal_and_merge<M: Merge>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    merge: M,
    record: impl Fn(usize, usize) -> M::Record,
) {
    for n in [1usize, RECORDS] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new(format!("{name}/seal"), n), |b| {
            b.iter_batched(
                || (0..n).map(|i| (1u64, record(0, i))).collect::<Vec<_>>(),
                |records| merge.seal(black_box(records).into_iter()),
                BatchSize::SmallInput,
            )
        });
    }

    let outputs: Vec<M::Output> =
        (0..OUTPUTS).map(|j| merge.seal((0..RECORDS).map(|i| (j as u64 + 1, record(j, i))))).collect();
    let inputs: Vec<&M::Output> = outputs.iter().collect();
    group.throughput(Throughput::Elements((OUTPUTS * RECORDS) as u64));
    group.bench_function(BenchmarkId::new(name, format!("merge_{OUTPUTS}x{RECORDS}")), |b| {
        b.iter_with_large_drop(|| merge.merge(black_box(&inputs)))
    });
}

fn merges(c: &mut Criterion) {
    let mut group = c.benchmark_group("merge");
    seal_and_merge(&mut group, "concat_u64", Concat::<u64>::default(), |j, i| (j * RECORDS + i) as u64);
    seal_and_merge(&mut group, "concat_arc16", Concat::<Arc<[u8]>>::default(), |j, i| {
        Arc::from(((j * RECORDS + i) as u128).to_le_bytes().as_slice())
    });
    seal_and_merge(&mut group, "sum", Sum, |j, i| (j * RECORDS + i) as i64);
    seal_and_merge(&mut group, "lww_u64_u64", LastWriteWins::<u64, u64>::default(), |j, i| {
        ((j * RECORDS / 2 + i) as u64, (j * RECORDS + i) as u64)
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = merges
}
criterion_main!(benches);
