//! Count-driven tiers: one path's segments in the baseline designs (`mutex`, `channel`).
//!
//! A path keeps a list of segments per level. Each insert of a new commit checks: every level
//! that holds `divisor` segments is merged into one segment of the next level, cascading up to
//! `max_level`; then the commit gets its own level-0 segment (a commit naming the path again
//! joins it).
//! That is "merge when I hold `D` inputs": every path compacts on its own count, so a path
//! written at every commit and a path written at odd commits end up with boundaries at different
//! commits. It is also the cheapest honest version of the job: merging moves the records (no
//! clone, no copy of the payload), or adds the sums for `--record i64`.
//!
//! To hold memory steady as lockstep does in loadgen (`DiscardSink` with
//! `Retention::Newest(1)`), a path keeps only its newest top-level segment: the older ones are
//! considered handed to a sink and dropped.

use std::collections::HashMap;

use lockstep::SegmentInfo;

use crate::align::Layout;
use crate::record::Kind;

/// One segment: what a range of this path's commits left, as the record kind keeps it (their
/// sum, or every record tagged with its commit, in commit order: what lockstep's merge keeps).
#[derive(Debug)]
struct Segment<K: Kind> {
    start: u64,
    end: u64,
    data: K::Segment,
}

/// One path's segments, per level, oldest first.
#[derive(Debug)]
pub struct Tiers<K: Kind> {
    levels: Vec<Vec<Segment<K>>>,
}

impl<K: Kind> Default for Tiers<K> {
    fn default() -> Self {
        Self { levels: Vec::new() }
    }
}

impl<K: Kind> Tiers<K> {
    /// Adds `record` of `commit` and runs the compaction check. Commits arrive in ascending
    /// order per path (`channel` keeps that only per producer; a late one is still inserted, as
    /// the callback design would).
    pub fn insert(&mut self, commit: u64, record: K::Record, divisor: usize, max_level: usize) {
        if self.levels.is_empty() {
            self.levels.resize_with(max_level + 1, Vec::new);
        }
        if let Some(open) = self.levels[0].last_mut().filter(|segment| segment.end == commit) {
            // The same commit names this path again: same segment, nothing new to compact.
            K::push(&mut open.data, commit, record);
            return;
        }
        // A new commit for this path closes the previous level-0 segment: the check runs first,
        // so a merge never takes the segment of a commit that may still add records to it.
        self.compact(divisor, max_level);
        let mut data = K::Segment::default();
        K::push(&mut data, commit, record);
        self.levels[0].push(Segment { start: commit, end: commit, data });
        // The newest top-level segment stays; older ones count as handed to the sink.
        let top = &mut self.levels[max_level];
        if top.len() > 1 {
            top.drain(..top.len() - 1);
        }
    }

    /// Merges every level that holds `divisor` segments into one segment of the next level,
    /// cascading upwards.
    fn compact(&mut self, divisor: usize, max_level: usize) {
        for level in 0..max_level {
            if self.levels[level].len() < divisor {
                break;
            }
            let mut inputs = std::mem::take(&mut self.levels[level]).into_iter();
            let Some(mut merged) = inputs.next() else { break };
            for input in inputs {
                merged.end = input.end;
                K::absorb(&mut merged.data, input.data);
            }
            self.levels[level + 1].push(merged);
        }
    }

    /// The segments, ascending by commit: top level first (they are the oldest), level 0 last.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let mut all: Vec<SegmentInfo> = (0..self.levels.len())
            .rev()
            .flat_map(|level| {
                self.levels[level].iter().map(move |s| SegmentInfo {
                    level: level as u32,
                    start: s.start,
                    end: s.end,
                })
            })
            .collect();
        // Already ascending unless commits arrived out of order (channel); the check wants order.
        all.sort_by_key(|s| (s.start, s.end));
        all
    }
}

/// Checks every path's segments against the grid.
pub fn layout<K: Kind>(
    paths: &HashMap<String, Tiers<K>>,
    divisor: u64,
    max_level: u32,
    frontier: u64,
) -> Layout {
    let mut layout = Layout::new(max_level);
    for (path, tiers) in paths {
        layout.add_path(path, &tiers.segments(), divisor, frontier);
    }
    layout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{I64, U64};

    fn record() -> u64 {
        12
    }

    fn info(level: u32, start: u64, end: u64) -> SegmentInfo {
        SegmentInfo { level, start, end }
    }

    #[test]
    fn every_commit_compacts_onto_the_grid() {
        let mut tiers = Tiers::<U64>::default();
        for commit in 1..=13 {
            tiers.insert(commit, record(), 2, 3);
        }
        assert_eq!(tiers.segments(), [info(3, 1, 8), info(2, 9, 12), info(0, 13, 13)]);
    }

    #[test]
    fn odd_commits_compact_off_the_grid() {
        // The seed's case: lockstep gives [1, 8], [9, 12], [13]; counting gives other ranges.
        let mut tiers = Tiers::<U64>::default();
        for commit in (1..=13).step_by(2) {
            tiers.insert(commit, record(), 2, 3);
        }
        assert_eq!(tiers.segments(), [info(2, 1, 7), info(1, 9, 11), info(0, 13, 13)]);
    }

    #[test]
    fn only_the_newest_top_segment_stays_and_a_repeated_commit_joins_its_segment() {
        let mut tiers = Tiers::<U64>::default();
        for commit in 1..=9 {
            tiers.insert(commit, record(), 2, 1);
            tiers.insert(commit, record(), 2, 1);
        }
        assert_eq!(tiers.segments(), [info(1, 7, 8), info(0, 9, 9)]);
        assert_eq!(tiers.levels[1][0].data.len(), 4);
    }

    #[test]
    fn sums_compact_into_one_value_per_segment() {
        let mut tiers = Tiers::<I64>::default();
        for commit in 1..=9 {
            tiers.insert(commit, 2, 2, 1);
            tiers.insert(commit, 3, 2, 1);
        }
        // Each commit adds 5; the newest level-1 segment (commits 7 and 8) holds their sum, and
        // commit 9 is on level 0.
        assert_eq!(tiers.levels[1].iter().map(|s| s.data).collect::<Vec<_>>(), [10]);
        assert_eq!(tiers.levels[0][0].data, 5);
    }
}
