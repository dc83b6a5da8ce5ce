//! The unit of storage: one immutable, columnar batch per range, holding every path of a shard.
//!
//! A batch covers the commits `start..=end` at one level. Its segments are sorted by path id, and
//! within a path by range: a column of the distinct path ids, offsets into the segments, each
//! segment's end, and the segments' data in the merge's [`Column`]. A formed or merged batch of
//! level `L >= 1` covers exactly one aligned block, so each path has one segment in it. Two kinds
//! cover several blocks: the level-0 tail (single commits not yet formed into a block) and runs
//! of old top-level blocks (formed in one turn, or combined under a retention window so that a
//! read probes few batches).
//!
//! Nothing here allocates per record: a batch is five vectors, built once and never changed.
//! Retained history is mostly batches, so a segment's overhead is kept to its path's share of an
//! id and an offset, and a 4-byte end (none in a one-block batch).

use std::fmt;
use std::ops::Range;

use crate::merge::{Column, Merge, Part};
use crate::tier::{Geometry, SegmentInfo};

/// One segment, found for a read: its batch and its index there.
pub(crate) type Found<'a, M> = (&'a Batch<M>, usize);

/// One range's segments of every path of a shard.
pub(crate) struct Batch<M: Merge> {
    pub(crate) level: u32,
    /// First commit covered.
    pub(crate) start: u64,
    /// Last commit covered.
    pub(crate) end: u64,
    /// Distinct path ids, ascending.
    ids: Vec<u32>,
    /// The segments of `ids[i]` are `offsets[i]..offsets[i + 1]`.
    offsets: Vec<u32>,
    /// The end of each segment's block.
    ends: Ends,
    pub(crate) column: M::Column,
}

/// Each segment's end. A batch's data is mostly these and its column, so they are kept small:
/// nothing when the batch is one block, an offset from `start` in 4 bytes when the batch spans
/// fewer than 2^32 commits (every formed run, nearly every tail), the commit itself otherwise.
enum Ends {
    One,
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Ends {
    fn for_range(start: u64, end: u64, single: bool) -> Self {
        match u32::try_from(end - start) {
            _ if single => Self::One,
            Ok(_) => Self::Narrow(Vec::new()),
            Err(_) => Self::Wide(Vec::new()),
        }
    }

    fn reserve(&mut self, segments: usize) {
        match self {
            Self::One => {}
            Self::Narrow(ends) => ends.reserve(segments),
            Self::Wide(ends) => ends.reserve(segments),
        }
    }

    /// Appends `end`, a commit in `start..=` the batch's end.
    fn push(&mut self, start: u64, end: u64) {
        match self {
            Self::One => {}
            // In range: `for_range` chose `Narrow` for a batch whose every end fits.
            Self::Narrow(ends) => ends.push((end - start) as u32),
            Self::Wide(ends) => ends.push(end),
        }
    }

    fn shrink(&mut self) {
        match self {
            Self::One => {}
            Self::Narrow(ends) => ends.shrink_to_fit(),
            Self::Wide(ends) => ends.shrink_to_fit(),
        }
    }
}

impl<M: Merge> fmt::Debug for Batch<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("level", &self.level)
            .field("range", &(self.start..=self.end))
            .field("paths", &self.ids.len())
            .field("segments", &self.segments())
            .finish()
    }
}

impl<M: Merge> Batch<M> {
    /// Segments held.
    pub(crate) fn segments(&self) -> usize {
        self.offsets.last().map_or(0, |&n| n as usize)
    }

    /// Distinct paths with a segment here.
    pub(crate) fn paths(&self) -> usize {
        self.ids.len()
    }

    /// The `i`-th path id and its segments.
    pub(crate) fn path(&self, i: usize) -> (u32, Range<usize>) {
        (self.ids[i], self.offsets[i] as usize..self.offsets[i + 1] as usize)
    }

    pub(crate) fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The segments of path `id`, if it has any here: one binary search.
    pub(crate) fn find(&self, id: u32) -> Option<Range<usize>> {
        let i = self.ids.binary_search(&id).ok()?;
        Some(self.path(i).1)
    }

    /// The end of segment `segment`'s block.
    pub(crate) fn end_of(&self, segment: usize) -> u64 {
        match &self.ends {
            Ends::One => self.end,
            Ends::Narrow(ends) => self.start + u64::from(ends[segment]),
            Ends::Wide(ends) => ends[segment],
        }
    }

    pub(crate) fn info(&self, geometry: &Geometry, segment: usize) -> SegmentInfo {
        let end = self.end_of(segment);
        SegmentInfo { level: self.level, start: end - geometry.span(self.level) + 1, end }
    }

    pub(crate) fn part(&self, segment: usize) -> Part<'_, M::Column> {
        Part::new(&self.column, segment)
    }
}

/// A batch read back from a file: its parts as [`Batch`]'s accessors give them.
pub(crate) struct Parts<C> {
    pub(crate) level: u32,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Distinct path ids, ascending, and each one's segment count.
    pub(crate) paths: Vec<(u32, u32)>,
    /// Each segment's end (`None`: the batch is one block, every segment ends at `end`).
    pub(crate) ends: Option<Vec<u64>>,
    pub(crate) column: C,
}

impl<M: Merge> Batch<M> {
    /// The batch `parts` describe; the caller has checked them (ids ascending, segments in
    /// range and as many as the column holds).
    pub(crate) fn restore(parts: Parts<M::Column>) -> Self {
        let Parts { level, start, end, paths, ends, column } = parts;
        let mut offsets = Vec::with_capacity(paths.len() + 1);
        offsets.push(0);
        let mut total = 0u32;
        for &(_, count) in &paths {
            total += count;
            offsets.push(total);
        }
        let mut kept = Ends::for_range(start, end, ends.is_none());
        kept.reserve(total as usize);
        for segment_end in ends.into_iter().flatten() {
            kept.push(start, segment_end);
        }
        Self {
            level,
            start,
            end,
            ids: paths.into_iter().map(|(id, _)| id).collect(),
            offsets,
            ends: kept,
            column,
        }
    }

    /// True if the batch is one aligned block (each path has one segment, ending at `end`).
    pub(crate) fn is_block(&self) -> bool {
        matches!(self.ends, Ends::One)
    }
}

/// Builds a batch path by path, in ascending id order.
pub(crate) struct BatchBuilder<M: Merge> {
    batch: Batch<M>,
}

impl<M: Merge> BatchBuilder<M> {
    /// A builder for one aligned block of `level` ending at `end`.
    pub(crate) fn block(geometry: &Geometry, level: u32, end: u64) -> Self {
        let start = end - geometry.span(level) + 1;
        Self::new(level, start, end, true)
    }

    /// A builder for several blocks of `level` in `start..=end` (the tail, a run).
    pub(crate) fn blocks(level: u32, start: u64, end: u64) -> Self {
        Self::new(level, start, end, false)
    }

    fn new(level: u32, start: u64, end: u64, single: bool) -> Self {
        let batch = Batch {
            level,
            start,
            end,
            ids: Vec::new(),
            offsets: vec![0],
            ends: Ends::for_range(start, end, single),
            column: M::Column::default(),
        };
        Self { batch }
    }

    /// Makes room for `paths` paths and `segments` segments up front, so a large combine does
    /// not copy what it built each time a vector grows.
    pub(crate) fn reserve(&mut self, paths: usize, segments: usize) {
        let batch = &mut self.batch;
        batch.ids.reserve(paths);
        batch.offsets.reserve(paths);
        batch.ends.reserve(segments);
        batch.column.reserve(segments);
    }

    pub(crate) fn level(&self) -> u32 {
        self.batch.level
    }

    pub(crate) fn end(&self) -> u64 {
        self.batch.end
    }

    /// Counts `count` more segments for path `id`, starting its entry unless the last segments
    /// were already `id`'s.
    fn add(&mut self, id: u32, count: usize) {
        let batch = &mut self.batch;
        if batch.ids.last() != Some(&id) {
            debug_assert!(batch.ids.last().is_none_or(|&last| last < id), "paths come in ascending order");
            batch.ids.push(id);
            batch.offsets.push(batch.offsets[batch.offsets.len() - 1]);
        }
        *batch.offsets.last_mut().expect("offsets start with 0") += count as u32;
    }

    /// Appends path `id`'s segment ending at `end`, made of `parts` then `records`.
    pub(crate) fn push(
        &mut self,
        merge: &M,
        id: u32,
        end: u64,
        parts: &[Part<'_, M::Column>],
        records: impl Iterator<Item = (u64, M::Record)>,
    ) {
        debug_assert!(end >= self.batch.start && end <= self.batch.end, "segment outside its batch");
        self.add(id, 1);
        self.batch.ends.push(self.batch.start, end);
        self.batch.column.push(merge, parts, records);
    }

    /// Appends path `id`'s segments `segments` of `from`, unchanged, after any it has here.
    pub(crate) fn copy(&mut self, id: u32, from: &Batch<M>, segments: Range<usize>) {
        self.add(id, segments.len());
        let batch = &mut self.batch;
        for segment in segments.clone() {
            batch.ends.push(batch.start, from.end_of(segment));
        }
        batch.column.copy(&from.column, segments);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batch.ids.is_empty()
    }

    /// The batch, holding no spare capacity (a retained batch keeps its memory for good).
    pub(crate) fn finish(mut self) -> Batch<M> {
        let batch = &mut self.batch;
        batch.ids.shrink_to_fit();
        batch.offsets.shrink_to_fit();
        batch.ends.shrink();
        batch.column.shrink();
        self.batch
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::merge::Sum;

    #[test]
    fn a_run_finds_each_path_and_its_blocks() {
        let geometry = Geometry::new(2, 1).expect("valid");
        let mut run = BatchBuilder::<Sum>::blocks(1, 1, 8);
        run.push(&Sum, 3, 2, &[], [(1, 1), (2, 1)].into_iter());
        run.push(&Sum, 3, 6, &[], [(5, 4)].into_iter());
        run.push(&Sum, 9, 8, &[], [(8, 7)].into_iter());
        let run = run.finish();
        assert_eq!((run.paths(), run.segments()), (2, 3));
        assert_eq!(run.find(3), Some(0..2));
        assert_eq!(run.find(4), None);
        assert_eq!(run.info(&geometry, 1), SegmentInfo { level: 1, start: 5, end: 6 });
        assert_eq!(<_ as Column<Sum>>::read(&Sum, &[run.part(0), run.part(1)]), 6);
        let mut block = BatchBuilder::<Sum>::block(&geometry, 1, 8);
        block.copy(9, &run, 2..3);
        let block = block.finish();
        assert_eq!(block.info(&geometry, 0), SegmentInfo { level: 1, start: 7, end: 8 });
    }
}
