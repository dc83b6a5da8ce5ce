//! When each producer commits, and which commits are followed to visibility.
//!
//! In a closed loop there is no schedule: a producer commits again as soon as it can, and only
//! the sampling gap applies. At a fixed rate, producer `p`'s commit `i` is intended to start at
//! `start + (i + p / producers) × interval`, where `interval` is one producer's share of the
//! rate: the producers are offset from each other by a fraction of it, so together their
//! starts are spread evenly.

use std::time::{Duration, Instant};

use super::settings::Settings;

/// In a closed loop, about one commit in this many is timed and followed to visibility.
pub const SAMPLE_EVERY: u64 = 64;
/// At a fixed rate, follow about this many commits a second to visibility (and at least one in
/// `SAMPLE_EVERY`).
const FOLLOWED_PER_SECOND: u64 = 16_000;

/// When things happen, shared by every producer once the clock starts.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub start: Instant,
    /// The warm-up ends and the measured window opens.
    pub measure_from: Instant,
    /// The measured window is due to close.
    pub deadline: Instant,
    /// Fixed rate: nanoseconds between one producer's intended starts.
    pub interval_ns: Option<f64>,
    pub producers: usize,
    /// About one commit in this many is sampled (at random gaps averaging this).
    pub sample_every: u64,
}

impl Plan {
    /// The schedule of a run whose clock starts at `start`.
    pub fn new(start: Instant, settings: &Settings) -> Self {
        let producers = settings.engine.producers;
        let measure_from = start + settings.warmup;
        Self {
            start,
            measure_from,
            deadline: measure_from + settings.duration,
            interval_ns: settings.rate.map(|rate| 1e9 * producers as f64 / rate as f64),
            producers,
            sample_every: match settings.rate {
                None => SAMPLE_EVERY,
                Some(rate) => (rate / FOLLOWED_PER_SECOND).clamp(1, SAMPLE_EVERY),
            },
        }
    }

    /// Producer `index`'s `i`-th intended start, as nanoseconds after `start`: producers are
    /// offset from each other by a fraction of the interval, so starts are spread evenly.
    pub fn intended_ns(&self, index: usize, i: u64, interval_ns: f64) -> f64 {
        (i as f64 + index as f64 / self.producers as f64) * interval_ns
    }

    /// The first `i` whose intended start is at or after `at_ns` nanoseconds after `start`.
    pub fn first_at_or_after(&self, index: usize, at_ns: f64, interval_ns: f64) -> u64 {
        let i = (at_ns / interval_ns - index as f64 / self.producers as f64).ceil();
        i.max(0.0) as u64
    }

    pub fn intended(&self, index: usize, i: u64, interval_ns: f64) -> Instant {
        self.start + Duration::from_nanos(self.intended_ns(index, i, interval_ns) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(producers: usize) -> Plan {
        let start = Instant::now();
        Plan {
            start,
            measure_from: start,
            deadline: start,
            interval_ns: Some(1000.0),
            producers,
            sample_every: 1,
        }
    }

    #[test]
    fn producers_share_the_schedule_evenly() {
        // Two producers, 1 µs apart each: together one start every 0.5 µs.
        let plan = plan(2);
        let mut starts: Vec<f64> =
            (0..4).flat_map(|i| [plan.intended_ns(0, i, 1000.0), plan.intended_ns(1, i, 1000.0)]).collect();
        starts.sort_by(f64::total_cmp);
        let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| (g - 500.0).abs() < 1e-9), "{gaps:?}");
    }

    #[test]
    fn first_at_or_after_inverts_the_schedule() {
        let plan = plan(4);
        for index in 0..4 {
            for at in [0.0, 1.0, 999.0, 1000.0, 1250.0, 123_456.0] {
                let i = plan.first_at_or_after(index, at, 1000.0);
                assert!(plan.intended_ns(index, i, 1000.0) >= at - 1e-6);
                if i > 0 {
                    assert!(plan.intended_ns(index, i - 1, 1000.0) < at);
                }
            }
        }
    }
}
