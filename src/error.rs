//! The one error type: every refusal is a variant a caller can match on.

use std::fmt;

/// Why lockstep refused an operation.
///
/// A refused commit, for any reason, takes no commit number and enqueues nothing: commit
/// numbers stay gapless and nothing of the refused commit ever becomes visible.
///
/// ```
/// use lockstep::{merge::Sum, Error, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let mut producer = pipeline.producer()?;
/// let empty: [(&str, i64); 0] = [];
/// assert_eq!(producer.commit(empty), Err(Error::EmptyCommit));
/// assert_eq!(producer.commit([("", 1)]), Err(Error::EmptyPath));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A part named the empty path.
    EmptyPath,
    /// A part named a path longer than [`Builder::max_path_len`](crate::Builder::max_path_len).
    PathTooLong {
        /// Length of the refused path, in bytes.
        len: usize,
        /// The configured limit, in bytes.
        max: usize,
    },
    /// A record measured (by [`Merge::record_bytes`](crate::Merge::record_bytes)) larger than
    /// [`Builder::max_record_bytes`](crate::Builder::max_record_bytes).
    RecordTooLarge {
        /// Size of the refused record, in bytes.
        bytes: usize,
        /// The configured limit, in bytes.
        max: usize,
    },
    /// The commit had no parts.
    EmptyCommit,
    /// `try_commit` found a queue without room for the commit's parts.
    Full,
    /// `try_commit` was handed more parts for one shard than that shard's queue can ever hold;
    /// `commit` (which waits for room part by part) accepts it.
    CommitTooLarge {
        /// Parts the commit routes to the one shard.
        parts: usize,
        /// The queue capacity.
        capacity: usize,
    },
    /// The pipeline has shut down (or was dropped); it takes no more commits.
    Shutdown,
    /// More producers than [`Builder::max_producers`](crate::Builder::max_producers) are alive.
    TooManyProducers {
        /// The configured limit.
        max: usize,
    },
    /// The builder's settings cannot work; the message says which and why.
    InvalidConfig(String),
    /// [`Pipeline::wait_sealed`](crate::Pipeline::wait_sealed) ran out of time.
    Timeout {
        /// The commit waited for.
        commit: u64,
        /// The frontier when time ran out.
        frontier: u64,
    },
    /// A worker thread panicked (a panic in user `Merge` or `Sink` code); the pipeline can
    /// no longer make commits visible.
    WorkerPanicked,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyPath => f.write_str("a part has an empty path"),
            Error::PathTooLong { len, max } => {
                write!(f, "a path of {len} bytes is over the limit of {max} (Builder::max_path_len)")
            }
            Error::RecordTooLarge { bytes, max } => write!(
                f,
                "a record of {bytes} bytes is over the limit of {max} (Builder::max_record_bytes)"
            ),
            Error::EmptyCommit => f.write_str("a commit needs at least one part"),
            Error::Full => f.write_str("a shard queue is full; retry, or use commit to wait"),
            Error::CommitTooLarge { parts, capacity } => write!(
                f,
                "{parts} parts for one shard never fit a queue of {capacity}; use commit, which waits part by part"
            ),
            Error::Shutdown => f.write_str("the pipeline has shut down"),
            Error::TooManyProducers { max } => {
                write!(f, "{max} producers are already alive (Builder::max_producers)")
            }
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Error::Timeout { commit, frontier } => {
                write!(f, "timed out waiting for commit {commit} (frontier is {frontier})")
            }
            Error::WorkerPanicked => f.write_str("a worker thread panicked in Merge or Sink code"),
        }
    }
}

impl std::error::Error for Error {}
