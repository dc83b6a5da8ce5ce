//! What compaction does with the data: the [`Merge`](crate::merge::Merge) trait, the
//! [`Column`](crate::merge::Column) a batch keeps its outputs in, and the built-in merges.
//!
//! Compaction never looks inside records. A shard stores each aligned range once, as one batch
//! holding every path's segment for that range (see `crate::shard::batch`); the segments live in the
//! batch's [`Column`](crate::merge::Column), one after another in path order.
//! [`Merge::seal`](crate::merge::Merge::seal) turns the records one path wrote in a range into an
//! output, [`Merge::merge`](crate::merge::Merge::merge) joins the outputs of adjacent ranges.
//! Because ranges are aligned across paths, outputs of different paths covering the same range
//! can be combined by the embedding program too (rollups).
//!
//! # Why a column
//!
//! Most merges keep one small output per segment ([`Outputs`](crate::merge::Outputs): a `Vec` of
//! them, so a batch of `Sum` segments is one `Vec<i64>`, with no allocation per segment). A merge
//! whose output is a collection of the records themselves would pay an allocation per segment
//! that way, and a copy of every record at every level. [`Concat`](crate::merge::Concat)
//! therefore keeps its records in [`Rows`](crate::merge::Rows): each batch seals the records it
//! formed into one shared array, and a merged segment only points at the runs of its children,
//! so a record is moved once when its batch forms and cloned once more only when someone reads
//! it. A user's merge names its column in one line, `type Column = Outputs<Self::Output>;`,
//! unless it wants a layout of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use crate::sync::Arc;

/// How records become segment outputs. Implementations must be associative: merging
/// `[merge([a, b]), c]` equals merging `[a, merge([b, c])]` equals merging `[a, b, c]`, and
/// merging one output returns it unchanged, so the result never depends on where boundaries
/// fell or how far compaction had got. Sealing records in two halves and merging the two
/// outputs must equal sealing them at once.
///
/// ```
/// use lockstep::merge::{Merge, Outputs};
///
/// /// Counts records per path.
/// #[derive(Debug, Default)]
/// struct Count;
///
/// impl Merge for Count {
///     type Record = ();
///     type Output = u64;
///     type Column = Outputs<u64>;
///     fn seal(&self, records: impl Iterator<Item = (u64, ())>) -> u64 {
///         records.count() as u64
///     }
///     fn merge(&self, outputs: &[&u64]) -> u64 {
///         outputs.iter().copied().sum()
///     }
/// }
///
/// let pipeline = lockstep::Pipeline::builder(Count).build()?;
/// let mut producer = pipeline.producer()?;
/// producer.commit([("/a", ()), ("/a", ()), ("/b", ())])?;
/// let last = pipeline.shutdown()?;
/// assert_eq!(last.read("/a"), Some(2));
/// # Ok::<(), lockstep::Error>(())
/// ```
pub trait Merge: Sized + Send + Sync + 'static {
    /// What a producer commits to a path.
    type Record: Send + 'static;
    /// What a segment holds and what [`Snapshot::read`](crate::Snapshot::read) returns.
    type Output: Clone + Send + Sync + 'static;
    /// Where a batch keeps its segments: [`Outputs<Self::Output>`] unless the merge has a
    /// layout of its own (as [`Concat`] has).
    type Column: Column<Self>;

    /// Turns records one path wrote in one range (tagged with their commits, in commit order,
    /// records of one commit in the order they were committed) into an output. Never empty.
    fn seal(&self, records: impl Iterator<Item = (u64, Self::Record)>) -> Self::Output;

    /// Joins the outputs of adjacent ranges, given in ascending commit order, into one.
    fn merge(&self, outputs: &[&Self::Output]) -> Self::Output;

    /// The size of a record in bytes, if this merge can measure it; commits carrying a record
    /// larger than [`Builder::max_record_bytes`](crate::Builder::max_record_bytes) are refused.
    /// The default measures nothing.
    fn record_bytes(&self, _record: &Self::Record) -> Option<usize> {
        None
    }
}

/// One segment in a column: the column and the segment's index in it.
pub type Part<'a, C> = (&'a C, usize);

/// The segments of one batch, appended in path order and immutable once the batch is built.
///
/// The shard calls [`push`](Column::push) once per (path, range) when it forms or merges a
/// batch, [`copy`](Column::copy) when it combines old batches without merging them, and
/// [`read`](Column::read) to answer a reader or hand a segment to the sink.
pub trait Column<M: Merge>: Default + Send + Sync + 'static {
    /// Appends one segment: `parts` (segments of the same path in earlier, adjacent ranges,
    /// ascending) followed by `records` (later commits, in commit order). At least one of the
    /// two is non-empty.
    fn push(&mut self, merge: &M, parts: &[Part<'_, Self>], records: impl Iterator<Item = (u64, M::Record)>);

    /// Appends segments `segments` of `from`, unchanged (combining old batches into a run).
    fn copy(&mut self, from: &Self, segments: Range<usize>);

    /// The output of `parts` (ascending, at least one) merged: what a read returns.
    fn read(merge: &M, parts: &[Part<'_, Self>]) -> M::Output;

    /// Makes room for `segments` more segments (a hint; the default does nothing).
    fn reserve(&mut self, _segments: usize) {}

    /// Gives back spare capacity once the batch is built (the default does nothing).
    fn shrink(&mut self) {}
}

/// A column of one output per segment: what most merges use.
#[derive(Debug, Clone)]
pub struct Outputs<O>(Vec<O>);

impl<O> Default for Outputs<O> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<M: Merge> Column<M> for Outputs<M::Output> {
    fn push(&mut self, merge: &M, parts: &[Part<'_, Self>], records: impl Iterator<Item = (u64, M::Record)>) {
        let mut records = records.peekable();
        let output = match (parts, records.peek().is_some()) {
            // Merging one output returns it unchanged (a law of `Merge`): copy it.
            ([(column, index)], false) => column.0[*index].clone(),
            ([], _) => merge.seal(records),
            (parts, false) => merged(merge, parts),
            (parts, true) => {
                let sealed = merge.seal(records);
                merge.merge(&[&merged(merge, parts), &sealed])
            }
        };
        self.0.push(output);
    }

    fn copy(&mut self, from: &Self, segments: Range<usize>) {
        self.0.extend_from_slice(&from.0[segments]);
    }

    fn reserve(&mut self, segments: usize) {
        self.0.reserve(segments);
    }

    fn shrink(&mut self) {
        self.0.shrink_to_fit();
    }

    fn read(merge: &M, parts: &[Part<'_, Self>]) -> M::Output {
        match parts {
            [(column, index)] => column.0[*index].clone(),
            parts => merged(merge, parts),
        }
    }
}

/// The output of `parts` (at least one) merged. Merges join a few parts at a time (the
/// divisor's worth), on the hot path of every merge, so up to eight are gathered into an array
/// on the stack: collecting into a `SmallVec` is not inlined, and cost more than the sum itself.
fn merged<'a, M: Merge>(merge: &M, parts: &[Part<'a, Outputs<M::Output>>]) -> M::Output {
    const FEW: usize = 8;
    fn output<'a, O>((column, index): Part<'a, Outputs<O>>) -> &'a O {
        &column.0[index]
    }
    match parts.len() {
        1..=FEW => {
            let last = parts.len() - 1;
            let outputs: [&M::Output; FEW] = std::array::from_fn(|i| output(parts[i.min(last)]));
            merge.merge(&outputs[..parts.len()])
        }
        _ => merge.merge(&parts.iter().copied().map(output).collect::<Vec<_>>()),
    }
}

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
        for (column, index) in parts {
            self.copy_runs(column, *index..*index + 1);
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
        let len = parts.iter().flat_map(|(column, index)| column.runs_of(*index)).map(<[_]>::len).sum();
        let mut all = Vec::with_capacity(len);
        for (column, index) in parts {
            for run in column.runs_of(*index) {
                all.extend_from_slice(run);
            }
        }
        all
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

/// Adds `i64` records up (wrapping on overflow, which keeps the sum associative). A batch of
/// sums is one `Vec<i64>`.
///
/// ```
/// use lockstep::{merge::Sum, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let mut producer = pipeline.producer()?;
/// producer.commit([("/hits", 2), ("/hits", 3)])?;
/// producer.commit([("/hits", -1)])?;
/// assert_eq!(pipeline.shutdown()?.read("/hits"), Some(4));
/// # Ok::<(), lockstep::Error>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Sum;

impl Merge for Sum {
    type Record = i64;
    type Output = i64;
    type Column = Outputs<i64>;

    fn seal(&self, records: impl Iterator<Item = (u64, i64)>) -> i64 {
        records.fold(0i64, |sum, (_, value)| sum.wrapping_add(value))
    }

    fn merge(&self, outputs: &[&i64]) -> i64 {
        outputs.iter().fold(0i64, |sum, value| sum.wrapping_add(**value))
    }
}

/// Builds state from patches: the latest value per key, with the commit that wrote it. Within
/// one commit, the later record wins. Each segment keeps its own map ([`Outputs`]), so a
/// segment costs an allocation; state is compacted as segments merge.
///
/// ```
/// use lockstep::{merge::LastWriteWins, Pipeline};
///
/// let pipeline = Pipeline::builder(LastWriteWins::<&str, u32>::default()).build()?;
/// let mut producer = pipeline.producer()?;
/// producer.commit([("/cfg", ("port", 80)), ("/cfg", ("host", 1))])?;
/// producer.commit([("/cfg", ("port", 8080))])?;
/// let state = pipeline.shutdown()?.read("/cfg").unwrap_or_default();
/// assert_eq!(state.get("port"), Some(&(2, 8080)));
/// assert_eq!(state.get("host"), Some(&(1, 1)));
/// # Ok::<(), lockstep::Error>(())
/// ```
pub struct LastWriteWins<K, V> {
    _records: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Default for LastWriteWins<K, V> {
    fn default() -> Self {
        Self { _records: PhantomData }
    }
}

impl<K, V> Clone for LastWriteWins<K, V> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<K, V> fmt::Debug for LastWriteWins<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LastWriteWins")
    }
}

impl<K, V> Merge for LastWriteWins<K, V>
where
    K: Ord + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    type Record = (K, V);
    type Output = BTreeMap<K, (u64, V)>;
    type Column = Outputs<Self::Output>;

    fn seal(&self, records: impl Iterator<Item = (u64, (K, V))>) -> Self::Output {
        records.map(|(commit, (key, value))| (key, (commit, value))).collect()
    }

    fn merge(&self, outputs: &[&Self::Output]) -> Self::Output {
        // Inputs come in ascending commit order, so a later insert is always the newer write.
        let mut state = BTreeMap::new();
        for output in outputs {
            for (key, entry) in output.iter() {
                state.insert(key.clone(), entry.clone());
            }
        }
        state
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
        parent.push(&merge, &[(&left, 0), (&right, 0)], [(4, "e".to_owned())].into_iter());
        parent.copy(&left, 1..2);
        assert_eq!(parent.stores.len(), 3, "its own store and one per source, each added once");
        let read = |column: &Rows<String>, index| Column::read(&merge, &[(column, index)]);
        let strings = |v: &[(u64, &str)]| v.iter().map(|&(c, s)| (c, s.to_owned())).collect::<Vec<_>>();
        assert_eq!(read(&parent, 0), strings(&[(1, "a"), (1, "b"), (3, "d"), (4, "e")]));
        assert_eq!(read(&parent, 1), strings(&[(2, "c")]));
        assert_eq!(Column::read(&merge, &[(&parent, 1), (&right, 0)]), strings(&[(2, "c"), (3, "d")]));
    }

    #[test]
    fn outputs_seal_merge_and_copy() {
        let mut left = Outputs::default();
        Column::<Sum>::push(&mut left, &Sum, &[], [(1, 2), (1, 3)].into_iter());
        let mut parent = Outputs::default();
        Column::<Sum>::push(&mut parent, &Sum, &[(&left, 0)], [(2, 10)].into_iter());
        Column::<Sum>::push(&mut parent, &Sum, &[(&left, 0)], std::iter::empty());
        Column::<Sum>::copy(&mut parent, &left, 0..1);
        assert_eq!(parent.0, [15, 5, 5]);
        assert_eq!(<Outputs<i64> as Column<Sum>>::read(&Sum, &[(&parent, 0), (&parent, 1)]), 20);
    }
}
