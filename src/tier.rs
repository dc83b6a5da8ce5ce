//! Aligned tier geometry and the compaction policy, as pure functions.
//!
//! With divisor `D`, a level-`L` segment (`L >= 1`) covers exactly `end - D^L + 1 ..= end` with
//! `end % D^L == 0`; level 0 is one commit. Boundaries depend on commit numbers alone, so every
//! path's segments either cover identical ranges or are disjoint.
//!
//! The policy, stated one merge at a time, is `Geometry::next_merge`: it looks at one path's
//! segments and a bound (the highest commit compaction may reach) and names the next merge.
//! Applying it until it names nothing leaves the base-`D` decomposition of `[1, bound]` (top
//! levels first, capped at `max_level`), restricted to the ranges where the path has data.
//! The worker executes the same policy in `crate::compact`, one pass per level; a property
//! test there holds the two equal, merge for merge.

#[cfg(all(test, not(loom)))]
use std::ops::Range;

/// The commit range one segment covers, and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentInfo {
    /// 0 for a single commit; `L` for a range of `divisor^L` commits.
    pub level: u32,
    /// First commit covered.
    pub start: u64,
    /// Last commit covered.
    pub end: u64,
}

impl AsRef<SegmentInfo> for SegmentInfo {
    fn as_ref(&self) -> &SegmentInfo {
        self
    }
}

/// The divisor and level cap, with `divisor^L` precomputed for every level.
#[derive(Debug, Clone)]
pub(crate) struct Geometry {
    max_level: u32,
    /// `spans[L] == divisor^L`, for `L` in `0..=max_level`.
    spans: Vec<u64>,
}

#[cfg(all(test, not(loom)))]
/// One merge the policy chose: replace `inputs` (indexes into the path's segments) with a
/// single segment `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) target: SegmentInfo,
    pub(crate) inputs: Range<usize>,
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

    fn span(&self, level: u32) -> u64 {
        self.spans[level as usize]
    }

    /// The end of the level-`level` block holding commit `commit`, or `None` past `u64::MAX`.
    fn block_end(&self, commit: u64, level: u32) -> Option<u64> {
        let span = self.span(level);
        commit.div_ceil(span).checked_mul(span)
    }

    #[cfg(all(test, not(loom)))]
    /// The level `segment` belongs at once compaction may reach `bound`: the largest level
    /// whose block holding it ends at or below `bound`.
    fn target_level(&self, segment: &SegmentInfo, bound: u64) -> u32 {
        let mut level = segment.level;
        while level < self.max_level {
            match self.block_end(segment.end, level + 1) {
                Some(end) if end <= bound => level += 1,
                _ => break,
            }
        }
        level
    }

    #[cfg(all(test, not(loom)))]
    /// The next merge `segments` (ascending, disjoint, aligned) need for `bound`, if any.
    ///
    /// It takes the leftmost segment of the lowest level whose parent block is sealed and merges
    /// the rest of that block with it, so every input has the same level. A block holding nothing
    /// else climbs on, up every sealed level where it would still be alone (a sparse path's
    /// lone record goes up in one step, not one per level), but never past `keep`: every block
    /// at level `keep` is built (the sink takes each one).
    pub(crate) fn next_merge<S: AsRef<SegmentInfo>>(
        &self,
        segments: &[S],
        bound: u64,
        keep: u32,
    ) -> Option<Plan> {
        let mut lowest: Option<(u32, usize, u64)> = None;
        // Top-level segments form a prefix (older blocks rise first), so scan back to it.
        for (index, segment) in segments.iter().enumerate().rev() {
            let segment = segment.as_ref();
            if segment.level >= self.max_level {
                break;
            }
            if lowest.is_some_and(|(level, _, _)| segment.level > level) {
                continue;
            }
            if let Some(end) = self.block_end(segment.end, segment.level + 1).filter(|&end| end <= bound) {
                lowest = Some((segment.level, index, end));
            }
        }
        let (level, first, end) = lowest?;
        let inputs = first..first + segments[first..].iter().take_while(|s| s.as_ref().end <= end).count();
        let before = inputs.start.checked_sub(1).map(|i| *segments[i].as_ref());
        let after = segments.get(inputs.end).map(|s| s.as_ref().start);
        Some(Plan { target: self.climb(level + 1, end, before, after, bound, keep), inputs })
    }

    /// The end of the sealed (at or below `bound`) parent block of a level-`level` segment
    /// ending at `end`, if there is one.
    pub(crate) fn sealed_parent(&self, level: u32, end: u64, bound: u64) -> Option<u64> {
        if level >= self.max_level {
            return None;
        }
        self.block_end(end, level + 1).filter(|&parent| parent <= bound)
    }

    /// The segment a merge into the level-`level` block ending at `end` builds: that block, or
    /// a higher one if the block would be alone in it between its neighbours `before` (the
    /// segment to its left) and `after` (the start of the one to its right). It never climbs
    /// past `keep`, nor to the top level past a segment below the top (the top level stays a
    /// prefix).
    pub(crate) fn climb(
        &self,
        mut level: u32,
        mut end: u64,
        before: Option<SegmentInfo>,
        after: Option<u64>,
        bound: u64,
        keep: u32,
    ) -> SegmentInfo {
        while level != keep {
            let Some(parent_end) = self.sealed_parent(level, end, bound) else { break };
            let parent_start = parent_end - self.span(level + 1) + 1;
            let alone = before.is_none_or(|b| b.end < parent_start) && after.is_none_or(|a| a > parent_end);
            let prefix_kept = level + 1 < self.max_level || before.is_none_or(|b| b.level == self.max_level);
            if !alone || !prefix_kept {
                break;
            }
            level += 1;
            end = parent_end;
        }
        SegmentInfo { level, start: end - self.span(level) + 1, end }
    }

    /// The lowest bound at which `segments` will need a merge, if ever.
    pub(crate) fn next_due<S: AsRef<SegmentInfo>>(&self, segments: &[S]) -> Option<u64> {
        segments
            .iter()
            .rev()
            .map(AsRef::as_ref)
            .take_while(|s| s.level < self.max_level)
            .filter_map(|s| self.block_end(s.end, s.level + 1))
            .min()
    }

    /// The finished layout: the base-`D` decomposition of `[1, frontier]` restricted to ranges
    /// holding one of `commits` (ascending). The reference the policy is tested against.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn layout(&self, commits: &[u64], frontier: u64) -> Vec<SegmentInfo> {
        let mut out: Vec<SegmentInfo> = Vec::new();
        for &commit in commits.iter().filter(|&&c| c <= frontier) {
            let level = self.target_level(&SegmentInfo { level: 0, start: commit, end: commit }, frontier);
            let end = self.block_end(commit, level).expect("test commits are small");
            let segment = SegmentInfo { level, start: end - self.span(level) + 1, end };
            if out.last() != Some(&segment) {
                out.push(segment);
            }
        }
        out
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn compact(geometry: &Geometry, commits: &[u64], bound: u64) -> Vec<SegmentInfo> {
        let mut segments: Vec<SegmentInfo> =
            commits.iter().map(|&c| SegmentInfo { level: 0, start: c, end: c }).collect();
        while let Some(plan) = geometry.next_merge(&segments, bound, geometry.max_level()) {
            segments.splice(plan.inputs, [plan.target]);
        }
        segments
    }

    #[test]
    fn the_seed_case_aligns_odd_commits_with_every_commit() {
        let geometry = Geometry::new(2, 3).expect("valid");
        let every: Vec<u64> = (1..=13).collect();
        let odd: Vec<u64> = (1..=13).filter(|c| c % 2 == 1).collect();
        let dense = compact(&geometry, &every, 13);
        let sparse = compact(&geometry, &odd, 13);
        assert_eq!(sparse, dense, "a path written at odd commits keeps the same boundaries");
        let ranges: Vec<(u32, u64, u64)> = dense.iter().map(|s| (s.level, s.start, s.end)).collect();
        assert_eq!(ranges, vec![(3, 1, 8), (2, 9, 12), (0, 13, 13)]);
    }

    #[test]
    fn overflowing_geometry_is_refused() {
        assert!(Geometry::new(1, 3).is_none());
        assert!(Geometry::new(2, 64).is_none());
        assert!(Geometry::new(2, 63).is_some());
        assert!(Geometry::new(u64::MAX, 1).is_some());
    }

    proptest! {
        #[test]
        fn policy_reaches_the_decomposition(
            divisor in 2u64..6,
            max_level in 0u32..5,
            keep in 0u32..6,
            commits in proptest::collection::btree_set(1u64..400, 0..60),
            bounds in proptest::collection::vec(0u64..450, 1..5),
        ) {
            let geometry = Geometry::new(divisor, max_level).expect("small geometry");
            let commits: Vec<u64> = commits.into_iter().collect();
            let mut bounds = bounds;
            bounds.sort_unstable();
            // Compaction in steps of a rising bound ends where one step to the last bound does.
            let mut segments: Vec<SegmentInfo> = Vec::new();
            let mut revealed = 0;
            for &bound in &bounds {
                for &c in commits.iter().filter(|&&c| c > revealed && c <= bound) {
                    segments.push(SegmentInfo { level: 0, start: c, end: c });
                }
                revealed = revealed.max(bound);
                while let Some(plan) = geometry.next_merge(&segments, bound, keep) {
                    prop_assert!(plan.target.end <= bound);
                    let levels: Vec<u32> = segments[plan.inputs.clone()].iter().map(|s| s.level).collect();
                    prop_assert!(levels.iter().all(|&l| l == levels[0] && l < plan.target.level));
                    // Nothing skips the kept level: a block reaching past it starts from it.
                    if levels[0] < keep {
                        prop_assert!(plan.target.level <= keep);
                    }
                    segments.splice(plan.inputs, [plan.target]);
                    let top = segments.iter().take_while(|s| s.level == max_level).count();
                    prop_assert!(segments[top..].iter().all(|s| s.level < max_level), "top levels form a prefix");
                }
                prop_assert_eq!(&segments, &geometry.layout(&commits, bound));
                if let Some(due) = geometry.next_due(&segments) {
                    prop_assert!(due > bound);
                }
            }
        }
    }
}
