//! Settings shared by every bench file (each file is its own crate and includes this module).

use std::time::Duration;

use criterion::Criterion;

/// Quick by default, so `cargo bench` for everything takes a few minutes: 20 samples over 2 s
/// after a 0.5 s warm-up. This machine is shared and noisy; compare medians and ratios taken in
/// one run, never figures from different runs.
pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
}

/// 16 distinct paths; a commit of `n` parts writes the first `n`.
#[allow(dead_code, reason = "not every bench uses it")]
pub const PATHS: [&str; 16] = [
    "/bench/00",
    "/bench/01",
    "/bench/02",
    "/bench/03",
    "/bench/04",
    "/bench/05",
    "/bench/06",
    "/bench/07",
    "/bench/08",
    "/bench/09",
    "/bench/10",
    "/bench/11",
    "/bench/12",
    "/bench/13",
    "/bench/14",
    "/bench/15",
];

/// Times `commit` over `iters` calls in bursts of at most `burst`, waiting (untimed) after each
/// burst until the worker has published it, so the queue never fills: the commit's own cost.
#[allow(dead_code, reason = "not every bench uses it")]
pub fn timed_bursts<M: lockstep::Merge>(
    pipeline: &lockstep::Pipeline<M>,
    iters: u64,
    burst: u64,
    mut commit: impl FnMut() -> u64,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(burst);
        let started = std::time::Instant::now();
        let mut last = 0;
        for _ in 0..n {
            last = std::hint::black_box(commit());
        }
        total += started.elapsed();
        pipeline.wait_sealed(last, Duration::from_secs(60)).expect("the worker keeps up");
        left -= n;
    }
    total
}
