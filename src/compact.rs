//! Executing compaction: which paths are due, and merging them under a work budget.
//!
//! The worker schedules each path at the lowest bound where its segments next need a merge
//! ([`Geometry::next_due`]). When the published frontier crosses boundaries, every path due at
//! or below it is merged in one batch, cascading up the levels. The batch spends *fuel* (merge
//! inputs): when a loop turn's fuel is gone the rest waits for the next turn, so publishing a
//! new frontier never waits for a large merge.

use std::collections::BTreeMap;

use smallvec::SmallVec;

use crate::merge::Merge;
use crate::snapshot::Segment;
use crate::sync::Arc;
use crate::tier::{Geometry, SegmentInfo};

impl<O> AsRef<SegmentInfo> for Segment<O> {
    fn as_ref(&self) -> &SegmentInfo {
        &self.info
    }
}

/// Paths waiting for a bound to reach their next merge. A path is listed once, at its lowest
/// due bound; its own `due_at` field tells a live entry from a superseded one.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    due: BTreeMap<u64, Vec<u32>>,
}

impl Schedule {
    /// Lists `path` as due at `at`, unless it is already due earlier.
    pub(crate) fn add(&mut self, due_at: &mut u64, path: u32, at: u64) {
        if *due_at == 0 || at < *due_at {
            *due_at = at;
            self.due.entry(at).or_default().push(path);
        }
    }

    /// Takes one `(due bound, path)` entry at or below `bound`.
    pub(crate) fn take(&mut self, bound: u64) -> Option<(u64, u32)> {
        let mut entry = self.due.first_entry()?;
        let at = *entry.key();
        if at > bound {
            return None;
        }
        let path = entry.get_mut().pop();
        if entry.get().is_empty() {
            entry.remove();
        }
        path.map(|path| (at, path))
    }

    /// True if some path is due at or below `bound`.
    pub(crate) fn has_due(&self, bound: u64) -> bool {
        self.due.keys().next().is_some_and(|&at| at <= bound)
    }
}

/// How compaction merges: the user's merge, the geometry, and the level whose every block is
/// built (the flush level).
pub(crate) struct Compactor<'a, M: Merge> {
    pub(crate) merge: &'a M,
    pub(crate) geometry: &'a Geometry,
    pub(crate) keep: u32,
}

impl<M: Merge> Compactor<'_, M> {
    /// Merges `segments` as the policy (`Geometry::next_merge`) directs for `bound`, building
    /// every block at level `keep`, until nothing is due or `fuel` (merge inputs) runs out. `made`
    /// sees every new segment. `scratch` is an empty buffer lent for the pass (kept by the caller
    /// so a pass allocates nothing). Returns the largest end merged, if any.
    ///
    /// Same result, in the same order, as applying `next_merge` until it names nothing, but in one
    /// pass per level over the segments below the top level: a turn that brings a hot path
    /// thousands of commits costs O(segments × levels), not O(segments²).
    pub(crate) fn run(
        &self,
        segments: &mut Vec<Segment<M::Output>>,
        bound: u64,
        fuel: &mut usize,
        scratch: &mut Vec<Segment<M::Output>>,
        mut made: impl FnMut(&Segment<M::Output>),
    ) -> Option<u64> {
        let Compactor { merge, geometry, keep } = *self;
        let top = geometry.max_level();
        // The top level is a prefix (`Geometry::climb` keeps it one) and never merges again.
        let below_top = segments.partition_point(|s| s.info.level == top);
        let mut merged_end = None;
        for level in 0..top {
            let due = |s: &Segment<M::Output>| {
                s.info.level == level && geometry.sealed_parent(level, s.info.end, bound).is_some()
            };
            if *fuel == 0 || !segments[below_top..].iter().any(due) {
                continue;
            }
            scratch.extend(segments.drain(below_top..));
            let mut rest = scratch.drain(..).peekable();
            while let Some(first) = rest.next() {
                let parent = if *fuel > 0 && first.info.level == level {
                    geometry.sealed_parent(level, first.info.end, bound)
                } else {
                    None
                };
                let Some(end) = parent else {
                    segments.push(first);
                    continue;
                };
                // Everything else in the parent block has this level too: lower levels were
                // merged by the earlier passes.
                let mut inputs: SmallVec<[Segment<M::Output>; 8]> = SmallVec::new();
                inputs.push(first);
                while let Some(next) = rest.next_if(|s| s.info.end <= end) {
                    inputs.push(next);
                }
                *fuel = fuel.saturating_sub(inputs.len());
                let output = match inputs.as_slice() {
                    // Merging one output returns it unchanged (a law of `Merge`): share it.
                    [one] => one.output.clone(),
                    many => {
                        let outputs: SmallVec<[&M::Output; 8]> = many.iter().map(|s| &*s.output).collect();
                        Arc::new(merge.merge(&outputs))
                    }
                };
                let before = segments.last().map(|s| s.info);
                let after = rest.peek().map(|s| s.info.start);
                let info = geometry.climb(level + 1, end, before, after, bound, keep);
                let segment = Segment { info, output };
                made(&segment);
                merged_end = merged_end.max(Some(info.end));
                segments.push(segment);
            }
        }
        merged_end
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::merge::Concat;

    fn concat(geometry: &Geometry, keep: u32) -> Compactor<'_, Concat<u64>> {
        const CONCAT: Concat<u64> = Concat::new();
        Compactor { merge: &CONCAT, geometry, keep }
    }

    fn level0(commits: &[u64]) -> Vec<Segment<Vec<(u64, u64)>>> {
        commits
            .iter()
            .map(|&c| Segment {
                info: SegmentInfo { level: 0, start: c, end: c },
                output: Arc::new(vec![(c, c * 10)]),
            })
            .collect()
    }

    #[test]
    fn fuel_spreads_a_cascade_over_turns_with_the_same_result() {
        let geometry = Geometry::new(2, 3).expect("valid");
        let commits: Vec<u64> = (1..=8).collect();
        let mut all_at_once = level0(&commits);
        let mut fuel = usize::MAX;
        concat(&geometry, 3).run(&mut all_at_once, 8, &mut fuel, &mut Vec::new(), |_| {});

        let mut stepwise = level0(&commits);
        let mut turns = 0;
        loop {
            let mut fuel = 2;
            if concat(&geometry, 3).run(&mut stepwise, 8, &mut fuel, &mut Vec::new(), |_| {}).is_none() {
                break;
            }
            turns += 1;
        }
        assert_eq!(turns, 7, "seven two-input merges build 1..=8 from eight commits");
        let infos = |s: &[Segment<Vec<(u64, u64)>>]| s.iter().map(|s| s.info).collect::<Vec<_>>();
        assert_eq!(infos(&stepwise), infos(&all_at_once));
        assert_eq!(infos(&stepwise), [SegmentInfo { level: 3, start: 1, end: 8 }]);
        let expected: Vec<(u64, u64)> = commits.iter().map(|&c| (c, c * 10)).collect();
        assert_eq!(*stepwise[0].output, expected);
    }

    #[test]
    fn a_lone_record_climbs_in_one_step_but_stops_at_the_kept_level() {
        let geometry = Geometry::new(2, 4).expect("valid");
        let mut fuel = usize::MAX;
        let mut levels = Vec::new();
        let mut lone = level0(&[3]);
        concat(&geometry, 4).run(&mut lone, 16, &mut fuel, &mut Vec::new(), |s| levels.push(s.info.level));
        assert_eq!(levels, [4]);
        levels.clear();
        let mut lone = level0(&[3]);
        concat(&geometry, 2).run(&mut lone, 16, &mut fuel, &mut Vec::new(), |s| levels.push(s.info.level));
        assert_eq!(levels, [2, 4], "the level-2 block is built for the sink");
        assert_eq!(lone[0].info, SegmentInfo { level: 4, start: 1, end: 16 });
    }

    proptest::proptest! {
        #[test]
        fn one_pass_per_level_equals_the_policy(
            divisor in 2u64..5,
            max_level in 0u32..5,
            keep in 0u32..6,
            commits in proptest::collection::btree_set(1u64..300, 0..80),
            bounds in proptest::collection::vec(0u64..320, 1..4),
            budget in 1usize..12,
        ) {
            let geometry = Geometry::new(divisor, max_level).expect("small geometry");
            let commits: Vec<u64> = commits.into_iter().collect();
            let mut bounds = bounds;
            bounds.sort_unstable();
            let (mut passes, mut policy) = (Vec::new(), Vec::<SegmentInfo>::new());
            let mut revealed = 0;
            for &bound in &bounds {
                for &c in commits.iter().filter(|&&c| c > revealed && c <= bound) {
                    passes.extend(level0(&[c]));
                    policy.push(SegmentInfo { level: 0, start: c, end: c });
                }
                revealed = revealed.max(bound);
                // A few turns with a small budget, as the worker runs them.
                let mut made_passes = Vec::new();
                loop {
                    let mut fuel = budget;
                    let merged = concat(&geometry, keep).run(&mut passes, bound, &mut fuel, &mut Vec::new(), |s| made_passes.push(s.info));
                    if merged.is_none() {
                        break;
                    }
                }
                let mut made_policy = Vec::new();
                while let Some(plan) = geometry.next_merge(&policy, bound, keep) {
                    made_policy.push(plan.target);
                    policy.splice(plan.inputs, [plan.target]);
                }
                let infos: Vec<SegmentInfo> = passes.iter().map(|s| s.info).collect();
                proptest::prop_assert_eq!(&infos, &policy);
                proptest::prop_assert_eq!(&made_passes, &made_policy);
                let records: Vec<(u64, u64)> = passes.iter().flat_map(|s| s.output.iter().copied()).collect();
                let expected: Vec<(u64, u64)> = commits.iter().filter(|&&c| c <= revealed).map(|&c| (c, c * 10)).collect();
                proptest::prop_assert_eq!(records, expected);
            }
        }
    }

    #[test]
    fn schedule_takes_the_lowest_due_first_and_skips_nothing() {
        let mut schedule = Schedule::default();
        let mut due = [0u64; 3];
        schedule.add(&mut due[0], 0, 8);
        schedule.add(&mut due[1], 1, 4);
        schedule.add(&mut due[0], 0, 4);
        schedule.add(&mut due[2], 2, 12);
        assert_eq!(due, [4, 4, 12]);
        assert!(!schedule.has_due(3));
        let mut taken = Vec::new();
        while let Some(entry) = schedule.take(8) {
            taken.push(entry);
        }
        taken.sort_unstable();
        assert_eq!(taken, [(4, 0), (4, 1), (8, 0)], "the stale (8, 0) entry is the caller's to skip");
        assert!(schedule.has_due(12));
    }
}
