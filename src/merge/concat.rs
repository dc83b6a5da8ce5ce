//! [`Concat`]: every record, commit-tagged, kept in [`Rows`], a column that moves a record once.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use super::{Column, Merge, Part, Restore};
use crate::sync::Arc;

/// Commit-tagged records shared between batches: the column of [`Concat`].
///
/// A batch appends the records it seals to an array of its own; a segment is a list of runs,
/// each a range of some array (its own, or one of an earlier batch's it was merged from). So
/// merging or combining batches copies run descriptors, never records, and a record is cloned
/// only when it is read.
pub struct Rows<T> {
    /// Record arrays segments point into; `[0]` is this column's own.
    stores: Vec<Arc<Vec<(u64, T)>>>,
    /// Per run: store index, first row, one past the last row.
    runs: Vec<(u32, u32, u32)>,
    /// Segment `i` is `runs[firsts[i]..firsts[i + 1]]`; starts with 0.
    firsts: Vec<u32>,
    /// While building: each source column seen, by address, with the index its stores start at
    /// in `stores`. Identity only, never dereferenced.
    sources: Vec<(usize, u32)>,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Self { stores: vec![Arc::new(Vec::new())], runs: Vec::new(), firsts: vec![0], sources: Vec::new() }
    }
}

impl<T> fmt::Debug for Rows<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rows").field("segments", &(self.firsts.len() - 1)).finish_non_exhaustive()
    }
}

impl<T: Clone> Rows<T> {
    /// Where `from`'s stores start in ours, adding them on first sight.
    fn source(&mut self, from: &Self) -> u32 {
        let address = from as *const Self as usize;
        if let Some(&(_, base)) = self.sources.iter().rev().find(|(seen, _)| *seen == address) {
            return base;
        }
        let base = self.stores.len() as u32;
        self.stores.extend(from.stores.iter().cloned());
        self.sources.push((address, base));
        base
    }

    /// Appends the runs of `from`'s segments `segments` to ours (segment bounds are the caller's).
    fn copy_runs(&mut self, from: &Self, segments: Range<usize>) {
        let base = self.source(from);
        let (first, last) = (from.firsts[segments.start] as usize, from.firsts[segments.end] as usize);
        self.runs
            .extend(from.runs[first..last].iter().map(|&(store, start, end)| (base + store, start, end)));
    }

    fn runs_of<'a>(&'a self, index: usize) -> impl Iterator<Item = &'a [(u64, T)]> + 'a {
        let (first, last) = (self.firsts[index] as usize, self.firsts[index + 1] as usize);
        self.runs[first..last]
            .iter()
            .map(|&(store, start, end)| &self.stores[store as usize][start as usize..end as usize])
    }
}

impl<T: Clone + Send + Sync + 'static> Column<Concat<T>> for Rows<T> {
    fn push(
        &mut self,
        _merge: &Concat<T>,
        parts: &[Part<'_, Self>],
        records: impl Iterator<Item = (u64, T)>,
    ) {
        for part in parts {
            self.copy_runs(part.column(), part.index()..part.index() + 1);
        }
        // Unique while the batch is being built (nothing has cloned it yet): no copy is made.
        let own = Arc::make_mut(&mut self.stores[0]);
        let start = own.len() as u32;
        own.extend(records);
        let end = own.len() as u32;
        if end > start {
            self.runs.push((0, start, end));
        }
        self.firsts.push(self.runs.len() as u32);
    }

    fn copy(&mut self, from: &Self, segments: Range<usize>) {
        let shift = self.runs.len() as u32;
        let first = from.firsts[segments.start];
        self.copy_runs(from, segments.clone());
        let ends = &from.firsts[segments.start + 1..segments.end + 1];
        self.firsts.extend(ends.iter().map(|&end| end - first + shift));
    }

    fn shrink(&mut self) {
        Arc::make_mut(&mut self.stores[0]).shrink_to_fit();
        self.stores.shrink_to_fit();
        self.runs.shrink_to_fit();
        self.firsts.shrink_to_fit();
        self.sources = Vec::new(); // only needed while building
    }

    fn read(_merge: &Concat<T>, parts: &[Part<'_, Self>]) -> Vec<(u64, T)> {
        let len = parts.iter().flat_map(|part| part.column().runs_of(part.index())).map(<[_]>::len).sum();
        let mut all = Vec::with_capacity(len);
        for part in parts {
            for run in part.column().runs_of(part.index()) {
                all.extend_from_slice(run);
            }
        }
        all
    }
}

impl<T: Clone + Send + Sync + 'static> Restore<Concat<T>> for Rows<T> {
    /// One store holding every segment's records, one run per segment.
    fn restore(_merge: &Concat<T>, outputs: Vec<Vec<(u64, T)>>) -> Self {
        let mut rows = Self::default();
        let own = Arc::make_mut(&mut rows.stores[0]);
        own.reserve(outputs.iter().map(Vec::len).sum());
        for output in outputs {
            let start = own.len() as u32;
            own.extend(output);
            rows.runs.push((0, start, own.len() as u32));
            rows.firsts.push(rows.runs.len() as u32);
        }
        rows
    }
}

/// Keeps every record with its commit number, in commit order, in a [`Rows`] column: merging
/// copies no record.
///
/// `Concat::<T>::default()` measures no record; [`Concat::measured_by`] supplies a size
/// function so [`Builder::max_record_bytes`](crate::Builder::max_record_bytes) applies.
///
/// ```
/// use lockstep::{merge::Concat, Pipeline};
///
/// let pipeline = Pipeline::builder(Concat::<&'static str>::default()).build()?;
/// let mut producer = pipeline.producer()?;
/// producer.commit([("/log", "a"), ("/log", "b")])?;
/// producer.commit([("/log", "c")])?;
/// let last = pipeline.shutdown()?;
/// assert_eq!(last.read("/log"), Some(vec![(1, "a"), (1, "b"), (2, "c")]));
/// # Ok::<(), lockstep::Error>(())
/// ```
pub struct Concat<T> {
    measure: Option<fn(&T) -> usize>,
    _records: PhantomData<fn() -> T>,
}

impl<T> Concat<T> {
    /// A `Concat` that measures no record (the same as `Concat::default()`, usable in `const`).
    pub const fn new() -> Self {
        Self { measure: None, _records: PhantomData }
    }

    /// A `Concat` whose records are measured by `measure`, in bytes.
    ///
    /// ```
    /// use lockstep::{merge::Concat, Error, Pipeline};
    ///
    /// let merge = Concat::<Vec<u8>>::measured_by(|r| r.len());
    /// let pipeline = Pipeline::builder(merge).max_record_bytes(4).build()?;
    /// let mut producer = pipeline.producer()?;
    /// assert_eq!(
    ///     producer.commit([("/a", vec![0; 5])]),
    ///     Err(Error::RecordTooLarge { bytes: 5, max: 4 })
    /// );
    /// # Ok::<(), Error>(())
    /// ```
    pub fn measured_by(measure: fn(&T) -> usize) -> Self {
        Self { measure: Some(measure), _records: PhantomData }
    }
}

impl<T> Default for Concat<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Concat<T> {
    fn clone(&self) -> Self {
        Self { measure: self.measure, _records: PhantomData }
    }
}

impl<T> fmt::Debug for Concat<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Concat").field("measured", &self.measure.is_some()).finish()
    }
}

impl<T: Clone + Send + Sync + 'static> Merge for Concat<T> {
    type Record = T;
    type Output = Vec<(u64, T)>;
    type Column = Rows<T>;

    fn seal(&self, records: impl Iterator<Item = (u64, T)>) -> Vec<(u64, T)> {
        records.collect()
    }

    fn merge(&self, outputs: &[&Vec<(u64, T)>]) -> Vec<(u64, T)> {
        let mut all = Vec::with_capacity(outputs.iter().map(|o| o.len()).sum());
        for output in outputs {
            all.extend_from_slice(output);
        }
        all
    }

    fn record_bytes(&self, record: &T) -> Option<usize> {
        self.measure.map(|measure| measure(record))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Builds a column the way a shard does and reads it back.
    fn column<M: Merge>(merge: &M, segments: Vec<Vec<(u64, M::Record)>>) -> M::Column {
        let mut column = M::Column::default();
        for records in segments {
            column.push(merge, &[], records.into_iter());
        }
        column
    }

    #[test]
    fn rows_merge_by_reference_and_read_in_order() {
        let merge = Concat::<String>::default();
        let left = column(&merge, vec![vec![(1, "a".into()), (1, "b".into())], vec![(2, "c".into())]]);
        let right = column(&merge, vec![vec![(3, "d".into())]]);
        let mut parent = Rows::default();
        // Segment 0: left[0] and right[0] merged, then a new record of commit 4.
        parent.push(&merge, &[Part::new(&left, 0), Part::new(&right, 0)], [(4, "e".to_owned())].into_iter());
        parent.copy(&left, 1..2);
        assert_eq!(parent.stores.len(), 3, "its own store and one per source, each added once");
        let read = |column: &Rows<String>, index| Column::read(&merge, &[Part::new(column, index)]);
        let strings = |v: &[(u64, &str)]| v.iter().map(|&(c, s)| (c, s.to_owned())).collect::<Vec<_>>();
        assert_eq!(read(&parent, 0), strings(&[(1, "a"), (1, "b"), (3, "d"), (4, "e")]));
        assert_eq!(read(&parent, 1), strings(&[(2, "c")]));
        assert_eq!(
            Column::read(&merge, &[Part::new(&parent, 1), Part::new(&right, 0)]),
            strings(&[(2, "c"), (3, "d")])
        );
    }
}
