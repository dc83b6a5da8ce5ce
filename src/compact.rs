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

/// Merges `segments` as the policy directs for `bound` (building every block at level `keep`)
/// until it names nothing or `fuel` (merge inputs) runs out. `made` sees every new segment.
/// Returns the largest end merged, if any.
pub(crate) fn compact<M: Merge>(
    merge: &M,
    geometry: &Geometry,
    segments: &mut Vec<Segment<M::Output>>,
    bound: u64,
    keep: u32,
    fuel: &mut usize,
    mut made: impl FnMut(&Segment<M::Output>),
) -> Option<u64> {
    let mut merged_end = None;
    while *fuel > 0 {
        let Some(plan) = geometry.next_merge(segments, bound, keep) else { break };
        let inputs = &segments[plan.inputs.clone()];
        *fuel = fuel.saturating_sub(inputs.len());
        let output = match inputs {
            // Merging one output returns it unchanged (a law of `Merge`): share it.
            [one] => one.output.clone(),
            _ => {
                let outputs: SmallVec<[&M::Output; 8]> = inputs.iter().map(|s| &*s.output).collect();
                Arc::new(merge.merge(&outputs))
            }
        };
        let segment = Segment { info: plan.target, output };
        made(&segment);
        segments.splice(plan.inputs, [segment]);
        merged_end = Some(plan.target.end);
    }
    merged_end
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::merge::Concat;

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
        compact(&Concat::default(), &geometry, &mut all_at_once, 8, 3, &mut fuel, |_| {});

        let mut stepwise = level0(&commits);
        let mut turns = 0;
        loop {
            let mut fuel = 2;
            if compact(&Concat::default(), &geometry, &mut stepwise, 8, 3, &mut fuel, |_| {}).is_none() {
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
        compact(&Concat::default(), &geometry, &mut lone, 16, 4, &mut fuel, |s| levels.push(s.info.level));
        assert_eq!(levels, [4]);
        levels.clear();
        let mut lone = level0(&[3]);
        compact(&Concat::default(), &geometry, &mut lone, 16, 2, &mut fuel, |s| levels.push(s.info.level));
        assert_eq!(levels, [2, 4], "the level-2 block is built for the sink");
        assert_eq!(lone[0].info, SegmentInfo { level: 4, start: 1, end: 16 });
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
