//! The hand-off limit, measured in the same process before the engines: one thread hands the
//! same item `raw` carries (a sequence number and a record made the same way) to another
//! through one crossbeam `ArrayQueue`, both spinning, for about a second. No paths, no commits,
//! no clock reads, no sampling: what moving these records between two cores costs on this
//! machine right now, the ceiling every engine's records/s is divided by.
//!
//! The figure is the best of five 200 ms windows: another process can only ever slow a
//! hand-off down, so on a shared machine the best window is the closest to what the machine can
//! do, and one busy moment does not lower every ratio of the run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::{Backoff, CachePadded};

use crate::engine::raw::Item;
use crate::engine::Failure;
use crate::record::Kind;
use crate::workload::Workload;

/// How long the limit is measured, after `WARM_UP`: `WINDOWS` windows of `WINDOW`.
pub const MEASURE_FOR: Duration = Duration::from_secs(1);
const WINDOWS: u32 = 5;
const WINDOW: Duration = Duration::from_millis(200);
const WARM_UP: Duration = Duration::from_millis(200);
/// Items the consumer pops between two updates of its published count.
const PUBLISH_EVERY: u64 = 1024;

/// What the hand-off moved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// The best window's rate.
    pub records_per_sec: f64,
    /// The median window's rate: far below the best, the machine was busy.
    pub median_records_per_sec: f64,
    /// All windows together.
    pub window: Duration,
}

/// Measures the hand-off of `K`'s items through a queue of `capacity` slots. Ends early (with
/// what it measured so far) when `interrupted` is set.
pub fn measure<K: Kind>(
    workload: &Workload,
    capacity: usize,
    interrupted: &AtomicBool,
) -> Result<Limit, Failure> {
    let queue: ArrayQueue<Item<K>> = ArrayQueue::new(capacity.max(1));
    let stop = AtomicBool::new(false);
    let popped = CachePadded::new(AtomicU64::new(0));
    let mut generator = workload.generator::<K>(0);
    std::thread::scope(|scope| -> Result<Limit, Failure> {
        let producer =
            std::thread::Builder::new().name("loadgen-limit-producer".into()).spawn_scoped(scope, || {
                let mut sequence = 0u64;
                // Relaxed: a stop flag checked once per 256 items; late by a few items at most.
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        sequence += 1;
                        let mut item = (sequence, generator.record());
                        let backoff = Backoff::new();
                        while let Err(back) = queue.push(item) {
                            item = back;
                            backoff.snooze();
                        }
                    }
                }
            })?;
        let consumer =
            std::thread::Builder::new().name("loadgen-limit-consumer".into()).spawn_scoped(scope, || {
                let (mut count, mut read) = (0u64, 0u64);
                let backoff = Backoff::new();
                loop {
                    match queue.pop() {
                        Some((_, record)) => {
                            read = read.wrapping_add(K::touch(&record));
                            count += 1;
                            if count % PUBLISH_EVERY == 0 {
                                // Relaxed: a figure read twice by the measuring thread.
                                popped.store(count, Ordering::Relaxed);
                            }
                            backoff.reset();
                        }
                        // Relaxed: see the producer; the queue is drained either way.
                        None if stop.load(Ordering::Relaxed) && queue.is_empty() => return read,
                        None => backoff.snooze(),
                    }
                }
            })?;
        let wait = |d: Duration| {
            let until = Instant::now() + d;
            // Relaxed: the Ctrl-C flag, polled.
            while Instant::now() < until && !interrupted.load(Ordering::Relaxed) {
                std::thread::sleep(
                    Duration::from_millis(10).min(until.saturating_duration_since(Instant::now())),
                );
            }
        };
        wait(WARM_UP);
        let mut rates = Vec::with_capacity(WINDOWS as usize);
        let (mut count, mut at) = (popped.load(Ordering::Relaxed), Instant::now());
        let first = at;
        for _ in 0..WINDOWS {
            wait(WINDOW);
            let (next_count, next_at) = (popped.load(Ordering::Relaxed), Instant::now());
            rates.push((next_count - count) as f64 / (next_at - at).as_secs_f64().max(1e-9));
            (count, at) = (next_count, next_at);
            // Relaxed: the Ctrl-C flag, polled.
            if interrupted.load(Ordering::Relaxed) {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        producer.join().map_err(|_| "the limit's producer panicked")?;
        let read = consumer.join().map_err(|_| "the limit's consumer panicked")?;
        std::hint::black_box(read);
        rates.sort_by(f64::total_cmp);
        Ok(Limit {
            records_per_sec: rates.last().copied().unwrap_or(0.0),
            median_records_per_sec: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            window: at - first,
        })
    })
}

/// [`measure`] for the kind `--record` names.
pub fn measure_record(
    record: crate::record::RecordKind,
    workload: &Workload,
    capacity: usize,
    interrupted: &AtomicBool,
) -> Result<Limit, Failure> {
    use crate::record::{Bytes, RecordKind, Shared, I64, U64};
    match record {
        RecordKind::I64 => measure::<I64>(workload, capacity, interrupted),
        RecordKind::U64 => measure::<U64>(workload, capacity, interrupted),
        RecordKind::Bytes => measure::<Bytes>(workload, capacity, interrupted),
        RecordKind::Shared => measure::<Shared>(workload, capacity, interrupted),
    }
}
