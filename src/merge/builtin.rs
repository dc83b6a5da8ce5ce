//! The built-in merges that keep one output per segment: [`Sum`] and [`LastWriteWins`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use super::{Merge, Outputs};

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
    use crate::merge::{Column, Part};

    #[test]
    fn outputs_seal_merge_and_copy() {
        let mut left = Outputs::default();
        Column::<Sum>::push(&mut left, &Sum, &[], [(1, 2), (1, 3)].into_iter());
        let mut parent = Outputs::default();
        Column::<Sum>::push(&mut parent, &Sum, &[Part::new(&left, 0)], [(2, 10)].into_iter());
        Column::<Sum>::push(&mut parent, &Sum, &[Part::new(&left, 0)], std::iter::empty());
        Column::<Sum>::copy(&mut parent, &left, 0..1);
        assert_eq!(parent.0, [15, 5, 5]);
        assert_eq!(
            <Outputs<i64> as Column<Sum>>::read(&Sum, &[Part::new(&parent, 0), Part::new(&parent, 1)]),
            20
        );
    }
}
