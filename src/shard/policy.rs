//! The compaction policy: pure functions from a shard's batch metadata, its geometry and its
//! retention window to the choices the spine executes.
//!
//! The spine (`crate::shard::spine`) holds the batches and does the work; this module only
//! decides, from numbers, as lsm-tree's compaction strategies choose from a version:
//!
//! - **form**: which blocks a turn builds between the formed end and the formable end
//!   ([`Policy::formable`], [`Policy::blocks`]): greedily the largest aligned block, up to the
//!   forming cap, that starts at the formed end and ends within reach, so a turn that seals
//!   thousands of commits builds top-level batches directly; consecutive top-level blocks share
//!   one run (at most half the retention window, so retention drops whole runs);
//! - **merge**: the blocks of one level inside a formed parent block, all formed and none busy,
//!   merge into the parent ([`Policy::merges`]);
//! - **combine** (under a window only): the newest [`FAN_IN`] top-level runs combine into one
//!   whenever the oldest holds no more blocks than the others together, a base-`FAN_IN` counter,
//!   so a segment is copied `log_8(history)` times and a shard keeps about `7 log_8(history)`
//!   runs ([`Policy::combines`]);
//! - **drop**: the leading top-level runs wholly before the window of the turn's bound
//!   ([`Policy::expired`]);
//! - **fuel**: the merge work a turn earns ([`fuel`]).
//!
//! A batch in a merge or combine in progress is *busy*: no other choice may take it, and
//! retention waits for it.

use crate::tier::Geometry;

/// Top-level runs combined at once.
pub(crate) const FAN_IN: usize = 8;

/// Merge fuel a turn earns per record it drained, in segments: enough for a record's share of
/// every level's merge and of the history's combines, so compaction keeps pace on average.
const FUEL_PER_RECORD: usize = 64;

/// The merge work, in segments, a loop turn that drained `drained` records may do: at least
/// `budget` (`Builder::merge_budget`), and more when it drained more.
pub(crate) fn fuel(budget: usize, drained: usize) -> usize {
    budget.max(drained.saturating_mul(FUEL_PER_RECORD))
}

/// What the policy sees of one batch: its level, its range, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) level: u32,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Paths with data in it.
    pub(crate) paths: usize,
    /// Segments in it (a run of several top-level blocks holds several per path).
    pub(crate) segments: usize,
}

/// A block, or a run of consecutive top-level blocks, that forming builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) level: u32,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// A merge or combine to start: the `inputs` batches from index `at`, adjacent in the spine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    pub(crate) at: usize,
    pub(crate) inputs: usize,
    /// Combine (copy every segment into one run) rather than merge (one segment per path).
    pub(crate) combine: bool,
    /// The output: its level and range.
    pub(crate) out: Block,
    /// Paths and segments the output holds at most, to reserve up front.
    pub(crate) paths: usize,
    pub(crate) segments: usize,
}

/// The policy of one shard.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    geometry: Geometry,
    /// The highest level forming builds directly.
    form_cap: u32,
    /// `Retention::Newest(n)`: the top-level blocks kept.
    window: Option<usize>,
}

impl Policy {
    /// A sink at flush level `K < T` must receive every level-`K` block, so forming then stops
    /// at level `K` and merges build the levels above.
    pub(crate) fn new(geometry: Geometry, flush: Option<u32>, window: Option<usize>) -> Self {
        let top = geometry.max_level();
        let form_cap = match flush {
            Some(level) if level >= 1 => level.min(top),
            _ => top,
        };
        Self { geometry, form_cap, window }
    }

    /// The first commit the window shows at the cut `cut` (1 without a window).
    pub(crate) fn window_start(&self, cut: u64) -> u64 {
        self.geometry.window_start(self.window, cut)
    }

    /// The most top-level blocks one run may hold: half the window, so retention drops whole
    /// runs (no limit without a window).
    fn run_cap(&self) -> u64 {
        self.window.map_or(u64::MAX, |n| (n as u64 / 2).max(1))
    }

    /// The highest end forming may reach under `bound` (rule 1 of `crate::read::view`), given
    /// the formed end: the last multiple of `D` at or below it, never below `formed`.
    pub(crate) fn formable(&self, formed: u64, bound: u64) -> u64 {
        let unit = self.geometry.span(self.geometry.max_level().min(1));
        (bound / unit * unit).max(formed)
    }

    /// The greedy decomposition of `(from, to]` into the blocks forming builds.
    pub(crate) fn blocks(&self, from: u64, to: u64) -> Vec<Block> {
        let geometry = &self.geometry;
        let top = geometry.max_level();
        let top_span = geometry.span(top);
        let mut blocks = Vec::new();
        let mut at = from;
        while at < to {
            let mut level = self.form_cap;
            while level > 1 && (!at.is_multiple_of(geometry.span(level)) || to - at < geometry.span(level)) {
                level -= 1;
            }
            let count = if level == top { ((to - at) / top_span).min(self.run_cap()) } else { 1 };
            let end = at + count * geometry.span(level);
            blocks.push(Block { level, start: at + 1, end });
            at = end;
        }
        blocks
    }

    /// The merges due among `batches` (ascending, disjoint): the children of every parent block
    /// ending at or below `formed`, when the first batch inside the parent is a child and every
    /// batch inside it is a child (a lower block inside is still merging up), none busy.
    pub(crate) fn merges(&self, batches: &[Meta], formed: u64, busy: &[(u64, u64)]) -> Vec<Choice> {
        let geometry = &self.geometry;
        let top = geometry.max_level();
        let is_busy = |start: u64, end: u64| overlaps(busy, start, end);
        let mut choices = Vec::new();
        let mut i = 0;
        while i < batches.len() {
            let batch = &batches[i];
            let level = batch.level;
            if level >= top || is_busy(batch.start, batch.end) {
                i += 1;
                continue;
            }
            let span = geometry.span(level + 1);
            let end = batch.end.div_ceil(span) * span;
            let start = end - span + 1;
            // Only from the first batch inside the parent block (the ones before it are busy).
            if end > formed || (i > 0 && batches[i - 1].end >= start) {
                i += 1;
                continue;
            }
            let inside = batches[i..].iter().take_while(|b| b.end <= end).count();
            let children = &batches[i..i + inside];
            if !children.iter().all(|b| b.level == level && b.start >= start && !is_busy(b.start, b.end)) {
                i += 1;
                continue;
            }
            // At most every child's paths, one segment each.
            let paths = children.iter().map(|b| b.paths).sum();
            let out = Block { level: level + 1, start, end };
            choices.push(Choice { at: i, inputs: inside, combine: false, out, paths, segments: paths });
            i += inside;
        }
        choices
    }

    /// The combines due among the leading top-level runs of `batches`, newest groups first.
    pub(crate) fn combines(&self, batches: &[Meta], busy: &[(u64, u64)]) -> Vec<Choice> {
        let top = self.geometry.max_level();
        let span = self.geometry.span(top);
        let cap = self.run_cap();
        let prefix = batches.iter().take_while(|b| b.level == top).count();
        let blocks = |b: &Meta| (b.end - b.start + 1) / span;
        let mut choices = Vec::new();
        let mut end = prefix;
        while end >= FAN_IN {
            let group = &batches[end - FAN_IN..end];
            let (oldest, newer) = (blocks(&group[0]), group[1..].iter().map(blocks).sum::<u64>());
            let segments: usize = group.iter().map(|b| b.segments).sum();
            let fits = oldest + newer <= cap && segments < u32::MAX as usize;
            if oldest <= newer && fits && !overlaps(busy, group[0].start, group[FAN_IN - 1].end) {
                let out = Block { level: top, start: group[0].start, end: group[FAN_IN - 1].end };
                let paths = group.iter().map(|b| b.paths).sum();
                choices.push(Choice {
                    at: end - FAN_IN,
                    inputs: FAN_IN,
                    combine: true,
                    out,
                    paths,
                    segments,
                });
                end -= FAN_IN;
            } else {
                end -= 1;
            }
        }
        choices
    }

    /// How many leading batches retention drops under `bound`: top-level runs wholly before
    /// the window of `bound`, none busy.
    pub(crate) fn expired(&self, batches: &[Meta], bound: u64, busy: &[(u64, u64)]) -> usize {
        let start = self.geometry.window_start(self.window, bound);
        let top = self.geometry.max_level();
        batches
            .iter()
            .take_while(|b| b.level == top && b.end < start && !overlaps(busy, b.start, b.end))
            .count()
    }
}

/// True if `start..=end` meets one of the `busy` ranges.
fn overlaps(busy: &[(u64, u64)], start: u64, end: u64) -> bool {
    busy.iter().any(|&(s, e)| s <= end && start <= e)
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! The policy alone, on metadata: no batch is built.
    use super::*;
    use proptest::prelude::*;

    /// A batch of `paths` paths for each block.
    fn meta(block: Block, paths: usize) -> Meta {
        Meta { level: block.level, start: block.start, end: block.end, paths, segments: paths }
    }

    /// The base-`D` decomposition of `[1, frontier]`, top levels first.
    fn decomposition(geometry: &Geometry, frontier: u64) -> Vec<(u32, u64, u64)> {
        let mut out = Vec::new();
        let mut start = 1;
        while start <= frontier {
            let level = (0..=geometry.max_level())
                .rev()
                .find(|&l| {
                    (start - 1).is_multiple_of(geometry.span(l)) && start - 1 + geometry.span(l) <= frontier
                })
                .unwrap_or(0);
            let span = geometry.span(level);
            out.push((level, start, start + span - 1));
            start += span;
        }
        out
    }

    proptest! {
        /// Forming tiles `(from, to]` with aligned blocks no higher than the cap, runs of top
        /// blocks only at the top and within half the window.
        #[test]
        fn formed_blocks_tile_the_range_aligned(
            divisor in 2u64..6,
            max_level in 1u32..5,
            flush in proptest::option::of(0u32..5),
            window in proptest::option::of(1usize..9),
            from_blocks in 0u64..50,
            length in 0u64..3_000,
        ) {
            let geometry = Geometry::new(divisor, max_level).expect("small geometry");
            let policy = Policy::new(geometry.clone(), flush.map(|f| f.min(max_level)), window);
            let from = from_blocks * divisor;
            let to = policy.formable(from, from + length);
            let blocks = policy.blocks(from, to);
            let mut at = from;
            for block in &blocks {
                prop_assert_eq!(block.start, at + 1, "blocks tile the range");
                let span = geometry.span(block.level);
                prop_assert!(block.level >= 1 || max_level == 0);
                prop_assert!(block.end.is_multiple_of(span), "{block:?} aligned");
                let count = (block.end - block.start + 1) / span;
                prop_assert_eq!((block.end - block.start + 1) % span, 0);
                if count > 1 {
                    prop_assert_eq!(block.level, max_level, "runs only at the top");
                    prop_assert!(count <= window.map_or(u64::MAX, |n| (n as u64 / 2).max(1)));
                }
                at = block.end;
            }
            prop_assert_eq!(at, to);
        }

        /// Forming then merging, as the policy chooses and with nothing else deciding, reaches the
        /// base-`D` decomposition of the formed range, whatever the turns.
        #[test]
        fn forming_and_merging_reach_the_decomposition(
            divisor in 2u64..5,
            max_level in 1u32..4,
            flush in proptest::option::of(1u32..4),
            turns in proptest::collection::vec(0u64..40, 1..40),
        ) {
            let geometry = Geometry::new(divisor, max_level).expect("small geometry");
            let policy = Policy::new(geometry.clone(), flush.map(|f| f.min(max_level)), None);
            let (mut batches, mut formed) = (Vec::<Meta>::new(), 0u64);
            for advance in turns {
                let to = policy.formable(formed, formed + advance);
                batches.extend(policy.blocks(formed, to).into_iter().map(|b| meta(b, 1)));
                formed = to;
                // Merges run to completion between turns here; the spine's model test covers
                // merges left in progress.
                loop {
                    let choices = policy.merges(&batches, formed, &[]);
                    if choices.is_empty() {
                        break;
                    }
                    for choice in choices.into_iter().rev() {
                        let inputs = &batches[choice.at..choice.at + choice.inputs];
                        prop_assert!(inputs.iter().all(|b| b.level + 1 == choice.out.level));
                        prop_assert_eq!((inputs[0].start, inputs[choice.inputs - 1].end), (choice.out.start, choice.out.end));
                        batches.splice(choice.at..choice.at + choice.inputs, [meta(choice.out, 1)]);
                    }
                }
            }
            // A run of top-level blocks is one batch holding each block's segments.
            let top = geometry.span(max_level);
            let layout: Vec<(u32, u64, u64)> = batches
                .iter()
                .flat_map(|b| {
                    let span = if b.level == max_level { top } else { b.end - b.start + 1 };
                    (b.start..=b.end).step_by(span as usize).map(move |start| (b.level, start, start + span - 1))
                })
                .collect();
            prop_assert_eq!(layout, decomposition(&geometry, formed));
        }

        /// Retention drops exactly the leading top-level runs wholly before the window, never a
        /// busy one and never one below the top level.
        #[test]
        fn retention_drops_exactly_the_runs_before_the_window(
            window in 1usize..6,
            runs in proptest::collection::vec(1u64..4, 0..12),
            tail_levels in proptest::collection::vec(0u32..2, 0..3),
            bound_extra in 0u64..40,
            busy_run in proptest::option::of(0usize..12),
        ) {
            let geometry = Geometry::new(2, 2).expect("valid");
            let policy = Policy::new(geometry.clone(), None, Some(window));
            let mut batches = Vec::new();
            let mut at = 0;
            for blocks in &runs {
                batches.push(meta(Block { level: 2, start: at + 1, end: at + 4 * blocks }, 1));
                at += 4 * blocks;
            }
            for &level in &tail_levels {
                let span = geometry.span(level);
                batches.push(meta(Block { level, start: at + 1, end: at + span }, 1));
                at += span;
            }
            let bound = at + bound_extra;
            let busy: Vec<(u64, u64)> = busy_run.and_then(|i| batches.get(i)).map(|b| (b.start, b.end)).into_iter().collect();
            let dropped = policy.expired(&batches, bound, &busy);
            let start = geometry.window_start(Some(window), bound);
            let wanted = batches
                .iter()
                .take_while(|b| b.level == 2 && b.end < start && !busy.iter().any(|&(s, e)| s <= b.end && b.start <= e))
                .count();
            prop_assert_eq!(dropped, wanted);
        }

        /// Combines group `FAN_IN` adjacent top-level runs, oldest no larger than the others
        /// together, within half the window.
        #[test]
        fn combines_follow_the_counter_rule(
            window in proptest::option::of(2usize..64),
            runs in proptest::collection::vec(1u64..5, 0..30),
        ) {
            let geometry = Geometry::new(2, 1).expect("valid");
            let policy = Policy::new(geometry, None, window);
            let mut batches = Vec::new();
            let mut at = 0;
            for blocks in &runs {
                batches.push(meta(Block { level: 1, start: at + 1, end: at + 2 * blocks }, 3));
                at += 2 * blocks;
            }
            let cap = window.map_or(u64::MAX, |n| (n as u64 / 2).max(1));
            let mut taken = vec![false; batches.len()];
            for choice in policy.combines(&batches, &[]) {
                prop_assert!(choice.combine && choice.inputs == FAN_IN);
                let group = &batches[choice.at..choice.at + FAN_IN];
                let blocks: Vec<u64> = group.iter().map(|b| (b.end + 1 - b.start) / 2).collect();
                prop_assert!(blocks[0] <= blocks[1..].iter().sum::<u64>());
                prop_assert!(blocks.iter().sum::<u64>() <= cap);
                prop_assert_eq!((choice.out.start, choice.out.end), (group[0].start, group[FAN_IN - 1].end));
                prop_assert_eq!(choice.segments, 3 * FAN_IN);
                for t in &mut taken[choice.at..choice.at + FAN_IN] {
                    prop_assert!(!*t, "a run in two combines");
                    *t = true;
                }
            }
        }
    }

    #[test]
    fn a_turn_earns_at_least_the_budget() {
        assert_eq!(fuel(4096, 0), 4096);
        assert_eq!(fuel(4096, 1000), 64_000);
        assert_eq!(fuel(1, usize::MAX), usize::MAX, "saturates");
    }
}
