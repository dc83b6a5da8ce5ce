//! Embedding lockstep: two producer threads count requests, a reader checks that every snapshot
//! is consistent across paths (and shards), and shutdown returns the final state.
//!
//! Run it with `cargo run --example embed`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lockstep::merge::Sum;
use lockstep::Pipeline;

const COMMITS_PER_PRODUCER: i64 = 3_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Sum adds i64 records up. Two shard workers; with divisor 4 and max level 5, compaction
    // builds aligned segments of 4, 16, 64, 256 and 1024 commits.
    let pipeline = Pipeline::builder(Sum).shards(2).divisor(4).max_level(5).build()?;

    // One producer per thread, made up front so a refusal surfaces before any thread starts.
    let regions = ["eu", "us"];
    let mut producers = Vec::new();
    for _ in regions {
        producers.push(pipeline.producer()?);
    }

    let done = AtomicBool::new(false);
    std::thread::scope(|scope| -> Result<(), Box<dyn std::error::Error>> {
        let mut writers = Vec::new();
        for (region, mut producer) in regions.into_iter().zip(producers) {
            writers.push(scope.spawn(move || -> Result<(), lockstep::Error> {
                let path = format!("/requests/{region}");
                for i in 0..COMMITS_PER_PRODUCER {
                    // One commit, several paths: readers see all of its parts or none of them.
                    let mut parts = vec![(path.as_str(), 1), ("/requests/total", 1)];
                    if i % 10 == 0 {
                        parts.push(("/errors", 1));
                    }
                    producer.commit(parts)?;
                }
                Ok(())
            }));
        }

        // Snapshots are one lock-free load; reading never blocks the writers.
        let reader = scope.spawn(|| -> Result<usize, String> {
            let mut checked = 0;
            let mut last = 0;
            loop {
                // Acquire: pairs with the Release below; once it is seen, the writers are done.
                let finished = done.load(Ordering::Acquire);
                let snapshot = if finished {
                    // The last look: wait until every commit is visible.
                    let total = 2 * COMMITS_PER_PRODUCER as u64;
                    pipeline.wait_sealed(total, Duration::from_secs(5)).map_err(|e| e.to_string())?
                } else {
                    pipeline.snapshot()
                };
                if snapshot.frontier() > last {
                    last = snapshot.frontier();
                    let eu = snapshot.read("/requests/eu").unwrap_or(0);
                    let us = snapshot.read("/requests/us").unwrap_or(0);
                    let total = snapshot.read("/requests/total").unwrap_or(0);
                    // Never happens: a commit is in a snapshot whole or not at all.
                    if eu + us != total {
                        return Err(format!("inconsistent snapshot at {last}: {eu} + {us} != {total}"));
                    }
                    if checked < 4 || finished {
                        println!("snapshot at commit {last:>4}: eu {eu:>4} + us {us:>4} = total {total:>4}");
                    }
                    checked += 1;
                }
                if finished {
                    return Ok(checked);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });

        // Join everything before reporting a failure, so no thread is left waiting.
        let written: Vec<_> = writers.into_iter().map(|writer| writer.join()).collect();
        done.store(true, Ordering::Release);
        let checked = reader.join().map_err(|_| "the reader panicked")?;
        for result in written {
            result.map_err(|_| "a producer panicked")??;
        }
        println!("snapshots checked: {}, all consistent", checked?);
        Ok(())
    })?;

    // Shutdown drains everything: the final snapshot holds every commit.
    let last = pipeline.shutdown()?;
    println!("final frontier {}", last.frontier());
    for path in ["/requests/eu", "/requests/us", "/requests/total", "/errors"] {
        println!("{path:<16} = {:>4}", last.read(path).unwrap_or(0));
    }

    // Boundaries depend on commit numbers alone: /errors, written by one commit in ten, is cut
    // on the same grid as /requests/total, written by every commit.
    let grid = last.segments("/requests/total");
    for segment in last.segments("/errors") {
        if !grid.contains(&segment) {
            return Err(format!("/errors has a segment off the grid: {segment:?}").into());
        }
    }
    // Consecutive segments of one level, grouped: "L5 x19 [1, 19456]".
    let mut runs: Vec<(u32, usize, u64, u64)> = Vec::new();
    for s in &grid {
        match runs.last_mut() {
            Some((level, count, _, end)) if *level == s.level => (*count, *end) = (*count + 1, s.end),
            _ => runs.push((s.level, 1, s.start, s.end)),
        }
    }
    let runs: Vec<String> =
        runs.iter().map(|(level, count, start, end)| format!("L{level} x{count} [{start}, {end}]")).collect();
    println!("segments of /requests/total, and of /errors: {}", runs.join(", "));
    Ok(())
}
