//! lockstep: lock-free sharded ingestion whose compaction boundaries line up across every path.
//!
//! Producers [`commit`](Producer::commit) records to paths. Each commit takes its number from
//! one global atomic counter; its parts travel through bounded lock-free queues to the shard
//! worker that owns each path. Workers compact a path's data into tiers whose boundaries are
//! *arithmetic* — with divisor `D`, a level-`L` segment covers `end - D^L + 1 ..= end` with
//! `end % D^L == 0` — and they compact a range only once the *sealed frontier* (every commit up
//! to it fully enqueued) has passed it. So a path written only at odd commits compacts at the
//! same boundaries as a path written at every commit, whatever the thread timing, and readers
//! take consistent cross-path [`Snapshot`]s with one lock-free load.
//!
//! ```
//! use lockstep::{merge::Concat, Pipeline, SegmentInfo};
//!
//! let pipeline = Pipeline::builder(Concat::<u64>::default()).shards(2).divisor(2).max_level(3).build()?;
//! let mut producer = pipeline.producer()?;
//! for commit in 1..=13u64 {
//!     let mut parts = vec![("/every", commit)];
//!     if commit % 2 == 1 {
//!         parts.push(("/odd", commit));
//!     }
//!     producer.commit(parts)?;
//! }
//! let last = pipeline.shutdown()?;
//! assert_eq!(last.frontier(), 13);
//! // Both paths are cut at the same boundaries: [1, 8], [9, 12], then commit 13 alone.
//! assert_eq!(last.segments("/odd"), last.segments("/every"));
//! assert_eq!(
//!     last.segments("/odd"),
//!     [
//!         SegmentInfo { level: 3, start: 1, end: 8 },
//!         SegmentInfo { level: 2, start: 9, end: 12 },
//!         SegmentInfo { level: 0, start: 13, end: 13 },
//!     ]
//! );
//! assert_eq!(last.read("/odd").map(|records| records.len()), Some(7));
//! # Ok::<(), lockstep::Error>(())
//! ```
//!
//! The way through, in the API: a [`Pipeline`] is configured by a [`Builder`]; each thread that
//! writes holds a [`Producer`] and names paths by string or by [`PathKey`]; what compaction does
//! with records is a [`Merge`] (built-ins in [`merge`]); readers hold a [`Snapshot`]; sealed
//! segments leave through a [`Sink`] under a [`Retention`]; [`Stats`] has the figures and
//! [`Error`] every refusal. The source follows the same flow, a folder per stage: `ingest`
//! (clock, routing, producers, queues), `shard` (worker, compaction policy, spine, batches,
//! history), `read` (views, snapshot) and `out` (sink, stats).

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::unwrap_used)]

// In the order of the data flow (DESIGN.md): a commit enters through `ingest`, is formed and
// merged in a `shard`, is published for `read`, and leaves through `out`.

/// The primitives every concurrent part is built on: std's, or loom's in the models.
mod sync;

/// The builder.
mod builder;
/// The checked settings, and their limits.
mod config;
/// The error type.
mod error;
/// The `Merge` trait and the built-in merges.
pub mod merge;
/// Aligned ranges: the arithmetic every layer shares.
mod tier;

/// Commits in: the clock, path keys and routing, producers, queues and bells.
mod ingest;
/// Segments and figures out: the sink, statistics and their text formats.
mod out;
/// Consistent cross-shard views, and the snapshot readers hold.
mod read;
/// A shard's worker and its storage: batches, sort, spine, history, directory.
mod shard;

/// Durable pipelines: the directory, each shard's log of sealed turns, recovery.
mod durable;

/// The pipeline handle.
mod pipeline;
/// What producers, workers and the handle share, and the pipeline's lifecycle.
mod shared;

/// Handles on internal stages for the benchmarks, behind the `internal-bench` feature.
#[doc(hidden)]
#[cfg(all(feature = "internal-bench", not(loom)))]
pub mod bench;

/// The HdrHistogram crate the [`Stats`] histograms are made with, re-exported so a caller names
/// `lockstep::hdrhistogram::Histogram` without depending on a matching version of it.
///
/// ```
/// use lockstep::hdrhistogram::Histogram;
/// use lockstep::{merge::Sum, Pipeline};
///
/// fn p99(histogram: &Histogram<u64>) -> u64 {
///     histogram.value_at_quantile(0.99)
/// }
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let mut producer = pipeline.producer()?;
/// let mut last = 0;
/// for i in 0..1000 {
///     last = producer.commit([("/a", i)])?;
/// }
/// pipeline.wait_sealed(last, std::time::Duration::MAX)?;
/// // One commit in 16 is followed from its number to the snapshot that shows it: a commit
/// // takes time to become visible, so the p99 of those samples is above zero. (They are
/// // recorded just after the publish that shows them: read again until they are in.)
/// let mut stats = pipeline.stats();
/// while stats.visible_latency.is_empty() {
///     std::thread::yield_now();
///     stats = pipeline.stats();
/// }
/// assert!(p99(&stats.visible_latency) > 0, "{} samples", stats.visible_latency.len());
/// # Ok::<(), lockstep::Error>(())
/// ```
pub use hdrhistogram;

/// The largest settings [`Builder::build`] accepts: each sizes something allocated up front,
/// so a larger one is refused with [`Error::InvalidConfig`] rather than abort the process when
/// the allocation fails.
pub mod limits {
    pub use crate::config::{
        MAX_PATH_LEN, MAX_PRODUCERS, MAX_QUEUES, MAX_QUEUE_BYTES, MAX_QUEUE_CAPACITY, MAX_SHARDS,
    };
}

pub use builder::Builder;
pub use durable::recovery::Durability;
pub use error::{Error, TryCommitError};
pub use ingest::key::{AsPath, PathKey, PathRef};
pub use ingest::producer::Producer;
pub use ingest::sequencer::Sequencer;
pub use merge::Merge;
#[cfg(feature = "metrics")]
pub use out::metrics::MetricsExport;
pub use out::report::{HistogramSummary, StatsReport};
pub use out::sink::{DiscardSink, Retention, Sink, SinkError, Undelivered};
pub use out::stats::Stats;
pub use pipeline::{Pipeline, ShutdownError};
pub use read::snapshot::Snapshot;
pub use tier::SegmentInfo;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_say_who_may_use_them() {
        send_sync::<Pipeline<merge::Concat<Vec<u8>>>>();
        send_sync::<Snapshot<merge::LastWriteWins<String, u64>>>();
        send::<Producer<merge::Sum>>();
        send::<Sequencer<merge::Sum>>();
        send_sync::<Error>();
        send_sync::<Builder<merge::Concat<Vec<u8>>>>();
        send_sync::<PathKey>();
        send_sync::<PathRef<'static>>();
        send_sync::<Stats>();
        #[cfg(feature = "metrics")]
        send_sync::<MetricsExport>();
    }
}
