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
//! The modules follow the data: a commit is sequenced by the `clock`, travels a `queue` to a
//! shard `worker`, is formed into a `batch` (one per aligned range, every path of the shard in
//! it) and merged along the shard's `spine` by a [`Merge`], is published as a [`Snapshot`] and
//! leaves through a [`Sink`].

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::unwrap_used)]

mod sync;

/// One immutable, columnar batch per range.
mod batch;
/// An append-only list whose entries never move.
mod chunks;
/// Commit numbers and the sealed frontier.
mod clock;
/// The builder.
mod config;
/// A shard's path names and ids, shared by its worker and readers.
mod directory;
/// The error type.
mod error;
/// Writing `Stats` out: Prometheus text exposition and `.hgrm` percentile distributions.
mod export;
/// A histogram recorded with relaxed atomic adds, read as an hdrhistogram `Histogram`.
mod histogram;
/// Top-level batches kept for good, indexed per path.
mod history;
/// Path keys: a path resolved once.
mod key;

/// The wake-up bells: producers wake parked workers without a lost wake-up.
mod bell;
#[doc(hidden)]
#[cfg(not(loom))]
pub mod bench;
/// The `Merge` trait and the built-in merges.
pub mod merge;
/// The pipeline handle.
mod pipeline;
/// The producer handle.
mod producer;
/// Routing and the per-(producer, shard) queues.
mod queue;
/// The sink for sealed segments, and retention.
mod sink;
/// Consistent cross-shard snapshots.
mod snapshot;
/// A turn's rows sorted by (path, commit) without allocating.
mod sort;
/// A shard's batches: forming, fueled merging, retention runs, the hand-over to history.
mod spine;
/// Statistics.
mod stats;
/// Aligned tier geometry.
mod tier;
/// Shard workers: drain, form, merge, publish.
mod worker;

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
/// // takes time to become visible, so the p99 of those samples is above zero.
/// let stats = pipeline.stats();
/// assert!(p99(&stats.visible_latency) > 0, "{} samples", stats.visible_latency.len());
/// # Ok::<(), lockstep::Error>(())
/// ```
pub use hdrhistogram;

pub use config::Builder;
pub use error::{Error, TryCommitError};
pub use key::{AsPath, PathKey};
pub use merge::Merge;
pub use pipeline::Pipeline;
pub use producer::Producer;
pub use sink::{DiscardSink, Retention, Sink, SinkError};
pub use snapshot::Snapshot;
pub use stats::Stats;
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
        send_sync::<Error>();
    }
}
