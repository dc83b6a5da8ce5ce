//! A turn's sealed rows sorted by (path, commit), keeping arrival order among equals, with
//! buffers kept from turn to turn.
//!
//! The key of a row packs its path id above its commit's offset in the turn, so one `u64`
//! orders both; a least-significant-digit radix sort of `(key, index)` pairs skips the bytes
//! every key shares (a turn's commits span a few bytes, its ids a few more), so a turn costs a
//! few linear passes. The rows are then put in that order in place, by following the cycles of
//! the permutation. Sorting pairs rather than rows keeps it free of `unsafe` for any record type,
//! and keeping both pair buffers means a turn allocates nothing once they have grown: a fresh
//! scratch buffer per turn (as a sort that allocates its own takes) costs a page fault per 4 KiB
//! wherever the allocator has just returned memory to the system, which it does all the time
//! while a shard's retained history grows.

use crate::spine::Row;

/// Bits of the key below the path id: a turn whose commits span more falls back to a
/// comparison sort.
const COMMIT_BITS: u32 = 40;

/// The two pair buffers of the radix sort.
#[derive(Debug, Default)]
pub(crate) struct Sorter {
    pairs: Vec<(u64, u32)>,
    scratch: Vec<(u64, u32)>,
}

impl Sorter {
    /// Sorts `rows` by (id, commit); rows with equal keys keep their order.
    pub(crate) fn sort<R>(&mut self, rows: &mut [Row<R>]) {
        let first = rows.iter().map(|r| r.commit).min().unwrap_or(0);
        let span = rows.iter().map(|r| r.commit - first).max().unwrap_or(0);
        if span >= 1 << COMMIT_BITS || rows.len() > u32::MAX as usize {
            rows.sort_by_key(|r| (r.id, r.commit)); // stable; never for a real turn
            return;
        }
        let pairs = &mut self.pairs;
        pairs.clear();
        pairs.extend(
            rows.iter().zip(0u32..).map(|(r, i)| (u64::from(r.id) << COMMIT_BITS | (r.commit - first), i)),
        );
        let (all, any) = pairs.iter().fold((u64::MAX, 0), |(all, any), &(key, _)| (all & key, any | key));
        let varying = all ^ any;
        for shift in (0..64).step_by(8) {
            if (varying >> shift) & 0xff == 0 {
                continue; // every key has the same byte here
            }
            let mut starts = [0usize; 256];
            for &(key, _) in pairs.iter() {
                starts[(key >> shift) as usize & 0xff] += 1;
            }
            let mut at = 0;
            for start in &mut starts {
                (*start, at) = (at, at + *start);
            }
            self.scratch.clear();
            self.scratch.resize(pairs.len(), (0, 0));
            for &pair in pairs.iter() {
                let digit = (pair.0 >> shift) as usize & 0xff;
                self.scratch[starts[digit]] = pair;
                starts[digit] += 1;
            }
            std::mem::swap(pairs, &mut self.scratch);
        }
        // Row `i` of the sorted order is row `pairs[i].1` of the input: follow each cycle of
        // that permutation, marking a position done by pointing it at itself.
        for start in 0..rows.len() {
            let mut at = start;
            loop {
                let from = pairs[at].1 as usize;
                pairs[at].1 = at as u32;
                if from == start || from == at {
                    break;
                }
                rows.swap(at, from);
                at = from;
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The same order as a stable sort by (id, commit), whatever the ids and commits.
        #[test]
        fn sorts_like_a_stable_sort(
            base in prop_oneof![Just(1u64), 1u64..1 << 50],
            spread in prop_oneof![Just(16u64), Just(1 << 20), Just(1 << 45)],
            rows in proptest::collection::vec((0u32..5000, 0u64..1 << 45), 0..300),
        ) {
            let mut rows: Vec<Row<usize>> = rows
                .into_iter()
                .enumerate()
                .map(|(i, (id, commit))| Row { commit: base + commit % spread, id: id % 7 * 1000, record: i })
                .collect();
            let mut expected: Vec<(u32, u64, usize)> = rows.iter().map(|r| (r.id, r.commit, r.record)).collect();
            expected.sort_by_key(|&(id, commit, _)| (id, commit));
            let mut sorter = Sorter::default();
            sorter.sort(&mut rows);
            let got: Vec<(u32, u64, usize)> = rows.iter().map(|r| (r.id, r.commit, r.record)).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
