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

use std::ops::Range;

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
#[derive(Debug)]
pub struct Part<'a, C> {
    column: &'a C,
    index: usize,
}

// Not derived: a derive would ask `C: Copy`, and a part only holds a reference.
impl<C> Clone for Part<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Part<'_, C> {}

impl<'a, C> Part<'a, C> {
    /// Segment `index` of `column`.
    pub fn new(column: &'a C, index: usize) -> Self {
        Self { column, index }
    }

    /// The column holding the segment.
    pub fn column(&self) -> &'a C {
        self.column
    }

    /// The segment's index in its column.
    pub fn index(&self) -> usize {
        self.index
    }
}

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

/// A column rebuilt from its segments' outputs: how a durable pipeline loads the batches it
/// saved to files (`Builder::durable`). [`Outputs`] and [`Rows`] implement it, so every merge
/// whose column is one of them is durable once its records and outputs are serde types; a
/// column of one's own implements it to be.
///
/// ```
/// use lockstep::merge::{Column, Outputs, Part, Restore, Sum};
///
/// let column = <Outputs<i64> as Restore<Sum>>::restore(&Sum, vec![3, 4]);
/// assert_eq!(<Outputs<i64> as Column<Sum>>::read(&Sum, &[Part::new(&column, 1)]), 4);
/// ```
pub trait Restore<M: Merge>: Column<M> {
    /// The column whose segment `i` reads as `outputs[i]`.
    fn restore(merge: &M, outputs: Vec<M::Output>) -> Self;
}

impl<M: Merge> Restore<M> for Outputs<M::Output>
where
    Outputs<M::Output>: Column<M>,
{
    fn restore(_merge: &M, outputs: Vec<M::Output>) -> Self {
        Self(outputs)
    }
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
            ([part], false) => part.column.0[part.index].clone(),
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
            [part] => part.column.0[part.index].clone(),
            parts => merged(merge, parts),
        }
    }
}

/// The output of `parts` (at least one) merged. Merges join a few parts at a time (the
/// divisor's worth), on the hot path of every merge, so up to eight are gathered into an array
/// on the stack: collecting into a `SmallVec` is not inlined, and cost more than the sum itself.
fn merged<'a, M: Merge>(merge: &M, parts: &[Part<'a, Outputs<M::Output>>]) -> M::Output {
    const FEW: usize = 8;
    fn output<'a, O>(Part { column, index }: Part<'a, Outputs<O>>) -> &'a O {
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

mod builtin;
mod concat;

pub use builtin::{LastWriteWins, Sum};
pub use concat::{Concat, Rows};
