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
