//! The snapshot a reader holds: one global view (`crate::read::view`), read without a lock.

use std::fmt;

use crate::ingest::key::AsPath;
use crate::merge::{Column, Merge, Part};
use crate::read::view::View;
use crate::shard::batch::{Batch, Found};
use crate::sync::Arc;
use crate::tier::SegmentInfo;

/// A consistent, immutable cut across every path: each commit at or below
/// [`frontier`](Snapshot::frontier) is inside it whole, and nothing after it is. `Send + Sync`
/// and cheap to clone (two `Arc`s): hand it to any thread, or keep it as long as needed.
///
/// Taking one is a single lock-free load; holding one never blocks writers (it keeps the
/// batches it references alive). Reading a path is a directory lookup, then one binary search
/// per batch of its shard (a dozen or so; a few dozen under a long retention window), and,
/// with `Retention::All`, one lookup of the path's history log, however long the history. The
/// read then visits each of the path's segments: a long-lived path's old segments are spread over
/// the batches that formed them, one memory access each.
///
/// ```
/// use lockstep::{merge::Sum, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).shards(2).divisor(2).build()?;
/// let mut producer = pipeline.producer()?;
/// for i in 0..5 {
///     producer.commit([("/a", i), ("/b", 10 * i)])?;
/// }
/// let snapshot = pipeline.wait_sealed(5, std::time::Duration::from_secs(10))?;
/// assert!(snapshot.frontier() >= 5);
/// assert_eq!(snapshot.read("/a"), Some(10));
/// assert_eq!(snapshot.read("/b"), Some(100));
/// let mut paths: Vec<&str> = snapshot.paths().collect();
/// paths.sort();
/// assert_eq!(paths, ["/a", "/b"]);
/// # Ok::<(), lockstep::Error>(())
/// ```
pub struct Snapshot<M: Merge> {
    view: Arc<View<M>>,
    merge: Arc<M>,
}

impl<M: Merge> Clone for Snapshot<M> {
    fn clone(&self) -> Self {
        Self { view: self.view.clone(), merge: self.merge.clone() }
    }
}

impl<M: Merge> fmt::Debug for Snapshot<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot").field("frontier", &self.view.frontier).finish_non_exhaustive()
    }
}

impl<M: Merge> Snapshot<M> {
    pub(crate) fn new(view: Arc<View<M>>, merge: Arc<M>) -> Self {
        Self { view, merge }
    }

    /// Every commit at or below this number is inside the snapshot; none above it is.
    pub fn frontier(&self) -> u64 {
        self.view.frontier
    }

    /// The first commit inside the retention window (1 unless
    /// [`Retention::Newest`](crate::Retention::Newest) dropped older blocks).
    fn window_start(&self) -> u64 {
        self.view.layout.window_start(self.view.frontier)
    }

    /// True if segment `segment` of `batch` is inside this snapshot.
    fn shows(&self, batch: &Batch<M>, segment: usize, from: u64) -> bool {
        let end = batch.end_of(segment);
        end <= self.view.frontier && end - self.view.layout.geometry.span(batch.level) + 1 >= from
    }

    /// The names of the paths holding data inside the snapshot, in no particular order.
    pub fn paths(&self) -> impl Iterator<Item = &str> + '_ {
        self.shard_paths(None, false).map(|(name, _)| name)
    }

    /// Every path holding data inside the snapshot with its output, merged as
    /// [`read`](Snapshot::read) merges it: one pass over each shard's batches, no lookup per
    /// path. Shard by shard, and in each shard in the order paths were first seen.
    ///
    /// ```
    /// use lockstep::{merge::Sum, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Sum).shards(2).build()?;
    /// let mut producer = pipeline.producer()?;
    /// producer.commit([("/eu/paris", 2), ("/eu/rome", 3), ("/us/nyc", 4)])?;
    /// let last = pipeline.shutdown()?;
    /// let total: i64 = last.iter().map(|(_, sum)| sum).sum();
    /// assert_eq!(total, 9);
    /// let mut eu: Vec<(&str, i64)> = last.iter_prefix("/eu/").collect();
    /// eu.sort();
    /// assert_eq!(eu, [("/eu/paris", 2), ("/eu/rome", 3)]);
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, M::Output)> + '_ {
        self.shard_paths(None, true).map(|(name, parts)| (name, M::Column::read(&self.merge, &parts)))
    }

    /// Like [`iter`](Snapshot::iter), for the paths whose names start with `prefix` (a name
    /// test per path, no lookup).
    pub fn iter_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, M::Output)> + 'a {
        self.shard_paths(Some(prefix), true).map(|(name, parts)| (name, M::Column::read(&self.merge, &parts)))
    }

    /// Each path with visible data (whose name starts with `prefix`, if given) and, if `all`,
    /// its parts (else only the first one, to know it has data): per shard, ids in ascending
    /// order, each looked up in the history and matched against a cursor per batch (the
    /// batches' ids are sorted), so no binary search per batch.
    fn shard_paths<'a>(
        &'a self,
        prefix: Option<&'a str>,
        all: bool,
    ) -> impl Iterator<Item = (&'a str, Vec<Part<'a, M::Column>>)> + 'a {
        let from = self.window_start();
        let layout = &*self.view.layout;
        self.view.shards.iter().zip(layout.router.directories()).flat_map(move |(shard, directory)| {
            let mut cursors = vec![0usize; shard.batches.len()];
            (0..directory.len() as u32).filter_map(move |id| {
                // Unnamed here: interned after this view was published, so nothing in it.
                let name = directory.get(id).map(|name| &**name);
                let wanted = name.filter(|name| prefix.is_none_or(|prefix| name.starts_with(prefix)));
                let mut found: Vec<Found<'a, M>> = Vec::new();
                if wanted.is_some() {
                    let history = shard.history.as_ref().map(|(history, runs)| history.segments(id, *runs));
                    // One history segment is enough to know the path has data: history holds
                    // blocks at or below `merged_end` (inside every cut) and has no window.
                    found.extend(history.into_iter().flatten().take(if all { usize::MAX } else { 1 }));
                }
                for (batch, cursor) in shard.batches.iter().zip(cursors.iter_mut()) {
                    if *cursor < batch.paths() && batch.ids()[*cursor] == id {
                        if wanted.is_some() {
                            found.extend(batch.path(*cursor).1.map(|segment| (&**batch, segment)));
                        }
                        *cursor += 1;
                    }
                }
                let name = wanted?;
                let parts: Vec<Part<'a, M::Column>> = found
                    .into_iter()
                    .filter(|(batch, segment)| self.shows(batch, *segment, from))
                    .map(|(batch, segment)| batch.part(segment))
                    .collect();
                (!parts.is_empty()).then_some((name, parts))
            })
        })
    }

    /// The shard and id of `path`, if it names one of this pipeline's paths.
    fn locate(&self, path: &impl AsPath) -> Option<(usize, u32)> {
        self.view.layout.router.locate(path.as_path())
    }

    fn visible(&self, path: &impl AsPath) -> Vec<Found<'_, M>> {
        let Some((shard, id)) = self.locate(path) else { return Vec::new() };
        let from = self.window_start();
        let mut found = Vec::new();
        self.view.shards[shard].find(id, &mut found);
        found.retain(|(batch, segment)| self.shows(batch, *segment, from));
        found
    }

    /// `path`'s segments inside the snapshot, ascending; single-commit (level-0) segments of
    /// commits not yet formed into a block included. `path` is a name or a [`PathKey`](crate::PathKey).
    pub fn segments(&self, path: impl AsPath) -> Vec<SegmentInfo> {
        let geometry = &self.view.layout.geometry;
        self.visible(&path).into_iter().map(|(batch, segment)| batch.info(geometry, segment)).collect()
    }

    /// Each of `path`'s segments with its output, ascending: what a cross-path rollup combines,
    /// since the same range means the same commits on every path. Outputs are built on the way
    /// (a batch keeps no object per segment).
    pub fn segment_outputs(&self, path: impl AsPath) -> impl Iterator<Item = (SegmentInfo, M::Output)> + '_ {
        let geometry = &self.view.layout.geometry;
        self.visible(&path).into_iter().map(move |(batch, segment)| {
            (batch.info(geometry, segment), M::Column::read(&self.merge, &[batch.part(segment)]))
        })
    }

    /// Everything committed to `path` inside the snapshot, merged into one output; `None` if
    /// the path has no data there (or is a key of another pipeline).
    pub fn read(&self, path: impl AsPath) -> Option<M::Output> {
        let parts: Vec<Part<'_, M::Column>> =
            self.visible(&path).into_iter().map(|(batch, segment)| batch.part(segment)).collect();
        (!parts.is_empty()).then(|| M::Column::read(&self.merge, &parts))
    }
}
