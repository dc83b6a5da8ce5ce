//! What compaction does with the data: the [`Merge`] trait and its built-ins.
//!
//! Compaction never looks inside records. It calls [`Merge::seal`] to turn the records one
//! commit wrote to a path into an output, and [`Merge::merge`] to join the outputs of adjacent
//! aligned ranges into the output of their parent range. Because the ranges are aligned across
//! paths, outputs of different paths covering the same range can be combined by the embedding
//! program too (rollups).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// How records become segment outputs. Implementations must be associative: merging
/// `[merge([a, b]), c]` equals merging `[a, merge([b, c])]` equals merging `[a, b, c]`, and
/// merging one output returns it unchanged, so the result never depends on where boundaries
/// fell or how far compaction had got.
///
/// ```
/// use lockstep::Merge;
///
/// /// Counts records per path.
/// #[derive(Debug, Default)]
/// struct Count;
///
/// impl Merge for Count {
///     type Record = ();
///     type Output = u64;
///     fn seal(&self, records: Vec<(u64, ())>) -> u64 {
///         records.len() as u64
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
pub trait Merge: Send + Sync + 'static {
    /// What a producer commits to a path.
    type Record: Send + 'static;
    /// What a segment holds and what [`Snapshot::read`](crate::Snapshot::read) returns.
    type Output: Clone + Send + Sync + 'static;

    /// Turns the records one commit wrote to one path (tagged with that commit, in the order
    /// they were committed) into an output.
    fn seal(&self, records: Vec<(u64, Self::Record)>) -> Self::Output;

    /// Joins the outputs of adjacent ranges, given in ascending commit order, into one.
    fn merge(&self, outputs: &[&Self::Output]) -> Self::Output;

    /// The size of a record in bytes, if this merge can measure it; commits carrying a record
    /// larger than [`Builder::max_record_bytes`](crate::Builder::max_record_bytes) are refused.
    /// The default measures nothing.
    fn record_bytes(&self, _record: &Self::Record) -> Option<usize> {
        None
    }
}

/// Keeps every record with its commit number, in commit order.
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

    fn seal(&self, records: Vec<(u64, T)>) -> Vec<(u64, T)> {
        records
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

/// Adds `i64` records up (wrapping on overflow, which keeps the sum associative).
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

    fn seal(&self, records: Vec<(u64, i64)>) -> i64 {
        records.iter().fold(0i64, |sum, (_, value)| sum.wrapping_add(*value))
    }

    fn merge(&self, outputs: &[&i64]) -> i64 {
        outputs.iter().fold(0i64, |sum, value| sum.wrapping_add(**value))
    }
}

/// Builds state from patches: the latest value per key, with the commit that wrote it. Within
/// one commit, the later record wins.
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

    fn seal(&self, records: Vec<(u64, (K, V))>) -> Self::Output {
        records.into_iter().map(|(commit, (key, value))| (key, (commit, value))).collect()
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
