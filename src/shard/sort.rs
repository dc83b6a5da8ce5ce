//! A turn's sealed rows sorted by (path, commit), keeping arrival order among equals, with
//! buffers kept from turn to turn.
//!
//! The key of a row packs its path id, its commit's offset in the turn and its index in the
//! turn into one `u64`, each in the bits the turn needs; a least-significant-digit radix sort
//! of the keys skips the index and every byte all keys share (a turn's commits span a few
//! bytes, its ids a few more), so a turn costs a few linear passes. The rows are then gathered
//! in that order. Sorting keys rather than rows keeps it free of `unsafe` for any record type,
//! and keeping the buffers means a turn allocates nothing once they have grown: a fresh
//! scratch buffer per turn (as a sort that allocates its own takes) costs a page fault per 4 KiB
//! wherever the allocator has just returned memory to the system, which it does all the time
//! while a shard's retained history grows.

use crate::ingest::queue::QueuedPart;

/// A sealed record, drained from a queue, with the shard's dense id for its path.
#[derive(Debug)]
pub(crate) struct Row<R> {
    pub(crate) commit: u64,
    pub(crate) id: u32,
    pub(crate) record: R,
}

impl<R> From<QueuedPart<R>> for Row<R> {
    fn from(part: QueuedPart<R>) -> Self {
        Self { commit: part.commit, id: part.path, record: part.record }
    }
}

/// The bits needed to write `value`.
fn bits(value: u64) -> u32 {
    u64::BITS - value.leading_zeros()
}

/// The two key buffers of the radix sort, and the rows' slots while they are gathered.
pub(crate) struct Sorter<R> {
    keys: Vec<u64>,
    scratch: Vec<u64>,
    slots: Vec<Option<Row<R>>>,
}

impl<R> Default for Sorter<R> {
    fn default() -> Self {
        Self { keys: Vec::new(), scratch: Vec::new(), slots: Vec::new() }
    }
}

impl<R> Sorter<R> {
    /// Sorts `rows` by (id, commit); rows with equal keys keep their order.
    pub(crate) fn sort(&mut self, rows: &mut Vec<Row<R>>) {
        let (first, last, top) = rows.iter().fold((u64::MAX, 0, 0), |(first, last, top), r| {
            (first.min(r.commit), last.max(r.commit), top.max(r.id))
        });
        // With no rows: first 0, span 0.
        let (first, span) = (first.min(last), last.saturating_sub(first));
        // Each key is `id | commit - first | index`, in as few bits as the turn needs.
        let index_bits = bits(rows.len().saturating_sub(1) as u64);
        let commit_bits = bits(span);
        if index_bits + commit_bits + bits(u64::from(top)) > u64::BITS {
            rows.sort_by_key(|r| (r.id, r.commit)); // stable; beyond any real turn
            return;
        }
        let keys = &mut self.keys;
        keys.clear();
        keys.extend(
            rows.iter()
                .zip(0u64..)
                .map(|(r, i)| (u64::from(r.id) << commit_bits | (r.commit - first)) << index_bits | i),
        );
        let (all, any) = keys.iter().fold((u64::MAX, 0), |(all, any), &key| (all & key, any | key));
        let varying = (all ^ any) >> index_bits << index_bits;
        self.scratch.clear();
        self.scratch.resize(keys.len(), 0);
        let mut shift = index_bits;
        while shift < u64::BITS && varying >> shift != 0 {
            let digit = |key: u64| (key >> shift) as usize & 0xff;
            if digit(varying) != 0 {
                let mut starts = [0usize; 256];
                for &key in keys.iter() {
                    starts[digit(key)] += 1;
                }
                let mut at = 0;
                for start in &mut starts {
                    (*start, at) = (at, at + *start);
                }
                for &key in keys.iter() {
                    let slot = &mut starts[digit(key)];
                    self.scratch[*slot] = key;
                    *slot += 1;
                }
                std::mem::swap(keys, &mut self.scratch);
            }
            shift += 8;
        }
        // Row `i` of the sorted order is row `keys[i]`'s index of the input: gathered in that
        // order. Each load is independent of the last, so with a large turn (many producers)
        // the cache misses overlap; following the permutation's cycles in place would chain them.
        let mask = (1u64 << index_bits) - 1;
        self.slots.clear();
        self.slots.extend(rows.drain(..).map(Some));
        let slots = &mut self.slots;
        rows.extend(
            keys.iter().map(|&key| slots[(key & mask) as usize].take().expect("each row is gathered once")),
        );
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
            let mut sorter = Sorter::<usize>::default();
            sorter.sort(&mut rows);
            let got: Vec<(u32, u64, usize)> = rows.iter().map(|r| (r.id, r.commit, r.record)).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
