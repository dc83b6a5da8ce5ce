//! Aligned tier geometry.
//!
//! With divisor `D`, a level-`L` segment (`L >= 1`) covers exactly `end - D^L + 1 ..= end` with
//! `end % D^L == 0`; level 0 is one commit. Boundaries depend on commit numbers alone, so every
//! path's segments either cover identical ranges or are disjoint. How a shard builds them is
//! `crate::shard::spine`'s business; the finished layout of a path is the base-`D` decomposition of
//! `[1, F]` (top levels first, capped at `max_level`), keeping the ranges where it has data.

/// The commit range one segment covers, and its level.
///
/// With the `serde` feature it is `Serialize` and `Deserialize`, as a map of its three fields
/// (in JSON, `{"level":1,"start":1,"end":2}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SegmentInfo {
    /// 0 for a single commit; `L` for a range of `divisor^L` commits.
    pub level: u32,
    /// First commit covered.
    pub start: u64,
    /// Last commit covered.
    pub end: u64,
}

/// The divisor and level cap, with `divisor^L` precomputed for every level.
#[derive(Debug, Clone)]
pub(crate) struct Geometry {
    max_level: u32,
    /// `spans[L] == divisor^L`, for `L` in `0..=max_level`.
    spans: Vec<u64>,
}

impl Geometry {
    /// `None` if `divisor^max_level` overflows `u64` or `divisor < 2`.
    pub(crate) fn new(divisor: u64, max_level: u32) -> Option<Self> {
        if divisor < 2 {
            return None;
        }
        let mut spans = vec![1u64];
        for _ in 0..max_level {
            let next = spans.last()?.checked_mul(divisor)?;
            spans.push(next);
        }
        Some(Self { max_level, spans })
    }

    pub(crate) fn max_level(&self) -> u32 {
        self.max_level
    }

    /// `divisor^level`: the commits a level-`level` block covers.
    pub(crate) fn span(&self, level: u32) -> u64 {
        self.spans[level as usize]
    }

    /// The first commit a view cut at `cut` shows under a retention window of the newest
    /// `window` top-level blocks (1 without one).
    pub(crate) fn window_start(&self, window: Option<usize>, cut: u64) -> u64 {
        let Some(n) = window else { return 1 };
        let span = self.span(self.max_level);
        let top_end = cut / span * span;
        top_end.saturating_sub(span.saturating_mul(n as u64)) + 1
    }

    /// The end of the level-`level` block holding `commit`. Forming asks this once per segment
    /// of a run, where a 64-bit division showed in forming's profile: with a power-of-two
    /// divisor (the default) it is a mask. (Commit 0, in no block, gives 0, as the division does.)
    pub(crate) fn block_end(&self, level: u32, commit: u64) -> u64 {
        let span = self.span(level);
        if span.is_power_of_two() {
            (commit.wrapping_sub(1) | (span - 1)).wrapping_add(1)
        } else {
            commit.div_ceil(span) * span
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn overflowing_geometry_is_refused() {
        assert!(Geometry::new(1, 3).is_none());
        assert!(Geometry::new(2, 64).is_none());
        assert!(Geometry::new(2, 63).is_some());
        assert!(Geometry::new(u64::MAX, 1).is_some());
        assert_eq!(Geometry::new(4, 3).map(|g| g.span(3)), Some(64));
    }

    #[test]
    fn a_block_end_is_the_division_rounded_up() {
        for divisor in [2, 3, 4, 10, 16] {
            let Some(geometry) = Geometry::new(divisor, 3) else { panic!("a valid geometry") };
            for level in 0..=3 {
                let span = geometry.span(level);
                for commit in 0..=3 * span + 1 {
                    let expected = commit.div_ceil(span) * span;
                    assert_eq!(geometry.block_end(level, commit), expected, "{divisor} {level} {commit}");
                }
            }
        }
    }
}
