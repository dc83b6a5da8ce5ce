//! Path keys: a path resolved once to its shard and its id there.
//!
//! A commit names each part's path by a string or by a [`PathKey`], through one generic
//! signature ([`AsPath`]). A string costs a hash and a comparison in the producer's own map
//! per part; a key costs neither: it already holds the shard and the shard's dense id for the
//! path, which is what travels to the worker. Reads take either as well.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::sync::Arc;

/// A path resolved once: made by [`Pipeline::key`](crate::Pipeline::key) (or
/// [`Producer::key`](crate::Producer::key)), validated then, and usable by every producer of
/// that pipeline and in every snapshot of it. Cheap to clone (an `Arc` of the name).
///
/// ```
/// use lockstep::{merge::Sum, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let hits = pipeline.key("/hits")?;
/// let mut producer = pipeline.producer()?;
/// for _ in 0..3 {
///     producer.commit([(&hits, 1)])?; // no hashing, no string comparison
/// }
/// producer.commit([("/hits", 1)])?; // the same path by name
/// let last = pipeline.shutdown()?;
/// assert_eq!(last.read(&hits), Some(4));
/// assert_eq!(last.read("/hits"), Some(4));
/// assert_eq!(hits.name(), "/hits");
/// # Ok::<(), lockstep::Error>(())
/// ```
#[derive(Clone)]
pub struct PathKey {
    /// The pipeline that made it (a key of another pipeline is refused).
    pub(crate) pipeline: u64,
    pub(crate) shard: u32,
    pub(crate) id: u32,
    pub(crate) name: Arc<str>,
}

impl PathKey {
    /// The path's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for PathKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PathKey").field(&&*self.name).finish()
    }
}

impl PartialEq for PathKey {
    fn eq(&self, other: &Self) -> bool {
        (self.pipeline, self.shard, self.id) == (other.pipeline, other.shard, other.id)
    }
}

impl Eq for PathKey {}

impl Hash for PathKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.pipeline, self.shard, self.id).hash(state);
    }
}

mod sealed {
    /// Only lockstep's own path types name a path.
    pub trait Sealed {}
}

/// What names a path in a commit or a read: anything that is a string (`&str`, `String`,
/// `Arc<str>`, …), or a [`PathKey`] (by value or by reference). Sealed: lockstep's own list.
pub trait AsPath: sealed::Sealed {
    #[doc(hidden)]
    fn as_path(&self) -> PathRef<'_>;
}

/// A path as a commit or a read sees it. Not part of the API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum PathRef<'a> {
    /// By name.
    Name(&'a str),
    /// By key.
    Key(&'a PathKey),
}

impl<T: AsRef<str>> sealed::Sealed for T {}

impl<T: AsRef<str>> AsPath for T {
    fn as_path(&self) -> PathRef<'_> {
        PathRef::Name(self.as_ref())
    }
}

impl sealed::Sealed for PathKey {}

impl AsPath for PathKey {
    fn as_path(&self) -> PathRef<'_> {
        PathRef::Key(self)
    }
}

impl sealed::Sealed for &PathKey {}

impl AsPath for &PathKey {
    fn as_path(&self) -> PathRef<'_> {
        PathRef::Key(self)
    }
}
