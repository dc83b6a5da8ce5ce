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
/// that pipeline and in every snapshot of it. `Send + Sync`, and cheap to clone (an `Arc` of
/// the name). To mix keys and names in one commit, name the parts by [`PathRef`].
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
/// `Arc<str>`, …), a [`PathKey`] (by value or by reference), or a [`PathRef`] (either one).
/// Sealed: lockstep's own list.
///
/// One commit's parts share one path type, as any iterator's items do. To mix keys and names in
/// one commit, name each part by [`PathRef`], which `From` makes out of both.
pub trait AsPath: sealed::Sealed {
    #[doc(hidden)]
    fn as_path(&self) -> PathRef<'_>;
}

/// A path named either way: by name or by [`PathKey`]. It is what lets one commit mix the two
/// (`[(&key, 1), ("/b", 2)]` does not build: an array holds one type), and `From` makes it out
/// of a `&str`, a `&String` or a `&PathKey`, so the first part fixes the type and `.into()`
/// does the rest. `Copy`, `Send` and `Sync`: it only borrows.
///
/// ```
/// use lockstep::{merge::Sum, PathRef, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let hits = pipeline.key("/hits")?;
/// let mut producer = pipeline.producer()?;
/// producer.commit([(PathRef::from(&hits), 1), ("/misses".into(), 1)])?;
/// producer.commit([(PathRef::Name("/hits"), 1), (PathRef::Key(&hits), 1)])?;
/// let last = pipeline.shutdown()?;
/// assert_eq!(last.read(&hits), Some(3));
/// assert_eq!(last.read(PathRef::Name("/misses")), Some(1));
/// # Ok::<(), lockstep::Error>(())
/// ```
///
/// Without it, the parts do not share a type:
///
/// ```compile_fail
/// use lockstep::{merge::Sum, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let hits = pipeline.key("/hits")?;
/// pipeline.producer()?.commit([(&hits, 1), ("/misses", 1)])?; // expected `&PathKey`, found `&str`
/// # Ok::<(), lockstep::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRef<'a> {
    /// By name: validated (and, the first time a producer names it, interned) at the commit.
    Name(&'a str),
    /// By key: resolved already.
    Key(&'a PathKey),
}

impl<'a> From<&'a str> for PathRef<'a> {
    fn from(name: &'a str) -> Self {
        PathRef::Name(name)
    }
}

impl<'a> From<&'a String> for PathRef<'a> {
    fn from(name: &'a String) -> Self {
        PathRef::Name(name)
    }
}

impl<'a> From<&'a PathKey> for PathRef<'a> {
    fn from(key: &'a PathKey) -> Self {
        PathRef::Key(key)
    }
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

impl sealed::Sealed for PathRef<'_> {}

impl AsPath for PathRef<'_> {
    fn as_path(&self) -> PathRef<'_> {
        *self
    }
}
