//! Where sealed segments leave the pipeline, and how much of them stays in memory.
//!
//! Segments at the flush level ([`Builder::flush_level`](crate::Builder::flush_level), by default
//! the top level) are handed to the [`Sink`] once. A write that fails loses nothing: it keeps its
//! output, the failure is counted in [`Stats`](crate::Stats), and the write is retried every few
//! milliseconds and once more at shutdown. A write still failing then is handed back:
//! [`Pipeline::shutdown`](crate::Pipeline::shutdown) returns a
//! [`ShutdownError`](crate::ShutdownError) whose [`Undelivered`] list holds every such segment
//! with its output. [`Retention`] decides what stays in memory once the sink has it.

use std::fmt;

use crate::sync::Arc;
use crate::tier::SegmentInfo;

/// The error a [`Sink`] reports.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Receives sealed segments: persist them, forward them, or drop them.
///
/// Called from the shard worker threads, for each path's segments in commit order, so a write
/// should be quick (hand the data to a channel or a buffered writer).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use lockstep::{merge::Sum, Pipeline, SegmentInfo, Sink, SinkError};
///
/// #[derive(Debug, Default, Clone)]
/// struct Collect(Arc<Mutex<Vec<(String, SegmentInfo, i64)>>>);
///
/// impl Sink<i64> for Collect {
///     fn write(&self, path: &str, segment: SegmentInfo, output: &i64) -> Result<(), SinkError> {
///         self.0.lock().map_err(|_| "poisoned")?.push((path.to_owned(), segment, *output));
///         Ok(())
///     }
/// }
///
/// let sink = Collect::default();
/// let pipeline = Pipeline::builder(Sum).divisor(2).max_level(1).sink(sink.clone()).build()?;
/// let mut producer = pipeline.producer()?;
/// producer.commit([("/n", 1)])?;
/// producer.commit([("/n", 2)])?;
/// pipeline.shutdown()?;
/// let written = sink.0.lock().map(|w| w.clone()).unwrap_or_default();
/// assert_eq!(written, [("/n".to_owned(), SegmentInfo { level: 1, start: 1, end: 2 }, 3)]);
/// # Ok::<(), lockstep::Error>(())
/// ```
pub trait Sink<O>: Send + Sync + 'static {
    /// Takes one sealed segment of `path`.
    ///
    /// # Errors
    ///
    /// Whatever the sink reports: the write is then counted in
    /// [`Stats::sink_failures`](crate::Stats::sink_failures), kept with its output and retried
    /// (every few milliseconds, then once more at shutdown, which hands back what still fails).
    fn write(&self, path: &str, segment: SegmentInfo, output: &O) -> Result<(), SinkError>;
}

/// A segment the [`Sink`] still refused at shutdown, after its last retry: what the sink was
/// to be given, handed back by [`ShutdownError::undelivered`](crate::ShutdownError::undelivered)
/// so nothing is lost (write it elsewhere, or keep it for later).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Undelivered<O> {
    /// The segment's path.
    pub path: Arc<str>,
    /// Its range.
    pub segment: SegmentInfo,
    /// What the sink was to be given.
    pub output: O,
}

impl<O> fmt::Debug for Undelivered<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the output: it need not be `Debug`, and may be large.
        f.debug_struct("Undelivered")
            .field("path", &self.path)
            .field("segment", &self.segment)
            .finish_non_exhaustive()
    }
}

/// A sink that accepts and drops every segment: for benchmarks, with a [`Retention`] that
/// bounds memory.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardSink;

impl<O> Sink<O> for DiscardSink {
    fn write(&self, _path: &str, _segment: SegmentInfo, _output: &O) -> Result<(), SinkError> {
        Ok(())
    }
}

/// What stays in memory once the sink has a segment.
///
/// With the `serde` feature it is `Serialize` and `Deserialize`, in serde's default enum form
/// (in JSON, `"All"` and `{"Newest":3}`), so it can sit in a service's configuration file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Retention {
    /// Keep everything: every committed record stays readable. The default.
    #[default]
    All,
    /// Keep a window of the newest `n` top-level ranges, the same commits for every path (as a
    /// time-series database keeps a time window): a snapshot at frontier `F` shows the top-level
    /// ranges ending after `F - F % D^max - n * D^max`, and everything below the top level.
    /// Memory then stays bounded however long the pipeline runs; a path with nothing left in the
    /// window leaves [`Snapshot::paths`](crate::Snapshot::paths). The sink still gets every
    /// flush-level segment exactly once: a write that failed keeps its own copy of the output
    /// until a retry succeeds. A durable pipeline's directory keeps the same window (see
    /// [`Builder::durable`](crate::Builder::durable)).
    ///
    /// ```
    /// use lockstep::{merge::Sum, DiscardSink, Pipeline, Retention};
    ///
    /// // Top-level ranges of 2 commits; keep the newest one.
    /// let pipeline = Pipeline::builder(Sum)
    ///     .divisor(2)
    ///     .max_level(1)
    ///     .sink(DiscardSink)
    ///     .retain(Retention::Newest(1))
    ///     .build()?;
    /// let mut producer = pipeline.producer()?;
    /// for _ in 1..=5 {
    ///     producer.commit([("/all", 1)])?;
    /// }
    /// let last = pipeline.shutdown()?;
    /// // Commits 3 and 4 (the newest top-level range) and commit 5 (below the top level).
    /// assert_eq!(last.read("/all"), Some(3));
    /// # Ok::<(), lockstep::Error>(())
    /// ```
    Newest(usize),
}

pub(crate) struct SharedSink<O>(pub(crate) Option<Box<dyn Sink<O>>>);

impl<O> fmt::Debug for SharedSink<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Sink(..)" } else { "Sink(none)" })
    }
}
