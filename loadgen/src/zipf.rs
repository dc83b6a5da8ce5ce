//! Zipf-distributed ranks in constant time and memory, for `--distribution zipf:<s>`.

use crate::rng::Rng;

/// Draws ranks `1..=n` with probability proportional to `1 / rank^s`, in constant time and
/// memory, by rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-inversion to
/// generate variates from monotone discrete distributions", 1996; the same method as Apache
/// Commons RNG's `RejectionInversionZipfSampler`).
///
/// The idea: `h(x) = x^-s` is a decreasing density over `[0.5, n + 0.5]` that bounds the
/// probabilities from above when integrated over `[k - 0.5, k + 0.5]`. Draw `x` from that
/// continuous density by inverting its integral `H`, round it to the nearest rank `k`, and accept
/// `k` when `u` falls inside the part of `k`'s interval that matches the exact probability.
/// Acceptance is above 90% for every `s`, so a draw costs about one `ln` and one `exp`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    /// Below this distance from `x`, a rounded rank is accepted without the exact test.
    squeeze: f64,
}

impl Zipf {
    /// `n >= 1` ranks, exponent `s > 0`.
    pub fn new(n: u64, s: f64) -> Self {
        let mut zipf = Self { n: n as f64, s, h_integral_x1: 0.0, h_integral_n: 0.0, squeeze: 0.0 };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(n as f64 + 0.5);
        zipf.squeeze = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        zipf
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.squeeze || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// `h(x) = x^-s`.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// `H(x)`, an integral of `h`: `(x^(1-s) - 1) / (1 - s)`, or `ln x` when `s == 1`, written so
    /// it stays accurate near `s == 1`.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.s) * log_x) * log_x
    }

    /// The inverse of `H`.
    fn h_integral_inverse(&self, x: f64) -> f64 {
        // Clamped: rounding can push `t` just below -1, where `ln(1 + t)` is undefined.
        let t = (x * (1.0 - self.s)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, continuous at 0.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, continuous at 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact probability of each rank, for comparison.
    fn zipf_probabilities(n: u64, s: f64) -> Vec<f64> {
        let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| w / total).collect()
    }

    #[test]
    fn zipf_matches_the_exact_probabilities() {
        // A fixed seed: the test is deterministic; the bound is about five standard deviations.
        let draws = 200_000u32;
        for (n, s) in [(10u64, 1.1), (50, 0.7), (20, 1.0), (5, 2.5)] {
            let zipf = Zipf::new(n, s);
            let mut rng = Rng::new(42);
            let mut counts = vec![0u32; n as usize];
            for _ in 0..draws {
                let rank = zipf.sample(&mut rng);
                assert!((1..=n).contains(&rank), "rank {rank} out of 1..={n}");
                counts[rank as usize - 1] += 1;
            }
            for (rank, (&count, p)) in counts.iter().zip(zipf_probabilities(n, s)).enumerate() {
                let expected = p * f64::from(draws);
                let sigma = (expected * (1.0 - p)).sqrt();
                let off = (f64::from(count) - expected).abs();
                assert!(
                    off <= 5.0 * sigma + 1.0,
                    "n {n}, s {s}, rank {}: {count} vs {expected:.0}",
                    rank + 1
                );
            }
        }
    }

    #[test]
    fn zipf_is_skewed_and_covers_large_ranges() {
        let zipf = Zipf::new(10_000_000, 1.1);
        let mut rng = Rng::new(1);
        let draws: Vec<u64> = (0..100_000).map(|_| zipf.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&r| (1..=10_000_000).contains(&r)));
        let top = draws.iter().filter(|&&r| r == 1).count();
        // P(rank 1) is about 1 / zeta(1.1) over ten million ranks, about 0.1.
        assert!((5_000..15_000).contains(&top), "rank 1 drawn {top} times");
        assert!(draws.iter().any(|&r| r > 100_000), "the tail is never reached");
    }
}
