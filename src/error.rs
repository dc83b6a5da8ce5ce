//! The one error type: every refusal is a variant a caller can match on.

use std::fmt;

/// Why lockstep refused an operation.
///
/// A refused commit takes no commit number and enqueues nothing, so commit numbers stay gapless
/// and nothing of the refused commit ever becomes visible. The one exception is
/// [`Error::WorkerPanicked`] (see there).
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
    ///
    /// Once a failure has been seen (any call returned this), every later `commit`,
    /// `try_commit` and [`Pipeline::producer`](crate::Pipeline::producer) refuses with it before
    /// taking a commit number, and `wait_sealed` and `shutdown` return it for any commit not
    /// already visible. A commit that races the failure itself may still be acknowledged, or
    /// refused with this after taking its number while it waited for room in the failed
    /// worker's queue; it never becomes visible, like every commit not yet visible when the
    /// worker failed, and `wait_sealed` and `shutdown` report this error for it.
    WorkerPanicked,
    /// A [`PathKey`](crate::PathKey) made by another pipeline was used with this one.
    ForeignKey,
    /// [`Producer::commit_many`](crate::Producer::commit_many) was given more parts in one
    /// call than it numbers at once; split the batch.
    BatchTooLarge {
        /// Parts the batch held when it was refused.
        parts: usize,
        /// The most parts one call takes.
        max: usize,
    },
    /// The operating system refused what lockstep needed (a worker thread, say).
    Io {
        /// What lockstep was doing.
        what: String,
        /// The system's error kind.
        kind: std::io::ErrorKind,
        /// The system's message.
        message: String,
    },
    /// A file of a durable pipeline is damaged where no crash can have damaged it, or one is
    /// missing: anywhere but the torn tail of a shard's newest log segment (which is dropped and
    /// counted, as a crash leaves it). lockstep refuses to open rather than recover a history
    /// shorter than the one it acknowledged.
    Corrupt {
        /// The file (for a missing one, the name it should have).
        file: String,
        /// Where in it, in bytes.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// A file of a durable pipeline was written in another format version (or, for the
    /// directory, with other settings); nothing was changed.
    Incompatible {
        /// The file.
        file: String,
        /// What differs.
        why: String,
    },
    /// The durable directory is held by another pipeline (in this process or another).
    Locked {
        /// The directory.
        dir: String,
    },
    /// [`Pipeline::wait_durable`](crate::Pipeline::wait_durable) on a pipeline built without
    /// [`Builder::durable`](crate::Builder::durable).
    NotDurable,
    /// [`Pipeline::shutdown`](crate::Pipeline::shutdown): the sink still refused `segments`
    /// segments after the last retry; the [`ShutdownError`](crate::ShutdownError) holds them.
    Undelivered {
        /// Segments the sink did not take.
        segments: usize,
    },
    /// [`Pipeline::producer`](crate::Pipeline::producer) on a sequenced pipeline
    /// ([`Builder::sequenced`](crate::Builder::sequenced)): its commit numbers are given, and it
    /// takes commits only through its [`Sequencer`](crate::Sequencer).
    Sequenced,
    /// [`Pipeline::sequencer`](crate::Pipeline::sequencer) on a pipeline built without
    /// [`Builder::sequenced`](crate::Builder::sequenced).
    NotSequenced,
    /// [`Pipeline::sequencer`](crate::Pipeline::sequencer) was already called: a sequenced
    /// pipeline has one feeding handle.
    SequencerTaken,
    /// [`Sequencer::commit_at`](crate::Sequencer::commit_at) was given a number not above the
    /// last one issued (committed or advanced to, or recovered): numbers strictly increase.
    NotAhead {
        /// The number refused.
        number: u64,
        /// The last number issued.
        last: u64,
    },
    /// A [`Sequencer`](crate::Sequencer) was given a number past the largest a pipeline numbers
    /// commits with.
    NumberTooLarge {
        /// The number refused.
        number: u64,
        /// The largest number accepted.
        max: u64,
    },
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
            Error::ForeignKey => f.write_str("a path key of another pipeline was used"),
            Error::WorkerPanicked => f.write_str("a worker thread panicked in Merge or Sink code"),
            Error::BatchTooLarge { parts, max } => {
                write!(f, "a commit_many batch of {parts} parts or more is over the limit of {max}; split it")
            }
            Error::Io { what, message, .. } => write!(f, "{what}: {message}"),
            Error::Corrupt { file, offset, why } => write!(f, "{file} is corrupt at byte {offset}: {why}"),
            Error::Incompatible { file, why } => write!(f, "{file} cannot be used: {why}"),
            Error::Locked { dir } => write!(f, "{dir} is in use by another pipeline"),
            Error::NotDurable => f.write_str("the pipeline is not durable (Builder::durable)"),
            Error::Undelivered { segments } => write!(
                f,
                "the sink still refused {segments} segments at shutdown; ShutdownError::undelivered holds them"
            ),
            Error::Sequenced => {
                f.write_str("a sequenced pipeline takes commits through its sequencer, not a producer")
            }
            Error::NotSequenced => f.write_str("the pipeline is not sequenced (Builder::sequenced)"),
            Error::SequencerTaken => f.write_str("the pipeline's sequencer was already taken"),
            Error::NotAhead { number, last } => {
                write!(f, "commit number {number} is not above the last one issued, {last}")
            }
            Error::NumberTooLarge { number, max } => {
                write!(f, "commit number {number} is past the largest a pipeline takes, {max}")
            }
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// An [`Error::Io`] for `error`, met while doing `what`.
    pub(crate) fn io(what: impl Into<String>, error: &std::io::Error) -> Self {
        Error::Io { what: what.into(), kind: error.kind(), message: error.to_string() }
    }
}

/// A refused [`Producer::try_commit`](crate::Producer::try_commit): why, and the parts it was
/// given, handed back untouched (as rtrb's `PushError::Full(value)` hands back its value).
///
/// Match on [`error`](TryCommitError::error) to decide (retry on [`Error::Full`], give up on the
/// others); take [`parts`](TryCommitError::parts) to retry without rebuilding the records. It
/// converts into its [`Error`], so `?` works in a function returning `Result<_, Error>`.
///
/// ```
/// use lockstep::{merge::Sum, Error, Pipeline, TryCommitError};
///
/// let pipeline = Pipeline::builder(Sum).build()?;
/// let mut producer = pipeline.producer()?;
/// let Err(refused) = producer.try_commit([("/ok", 1), ("", 2)]) else { unreachable!("an empty path") };
/// let refused: TryCommitError<&str, i64> = refused;
/// assert_eq!(refused.error, Error::EmptyPath);
/// assert_eq!(refused.parts, [("/ok", 1), ("", 2)]);
/// assert_eq!(pipeline.stats().commits, 0, "a refusal takes no commit number");
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TryCommitError<P, R> {
    /// Why the commit was refused.
    pub error: Error,
    /// Every part of the refused commit, in the order given.
    pub parts: Vec<(P, R)>,
}

impl<P, R> fmt::Debug for TryCommitError<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The parts' count, not the parts: they need not be `Debug`, and may be large.
        f.debug_struct("TryCommitError")
            .field("error", &self.error)
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl<P, R> fmt::Display for TryCommitError<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} parts handed back)", self.error, self.parts.len())
    }
}

impl<P, R> std::error::Error for TryCommitError<P, R> {}

impl<P, R> From<TryCommitError<P, R>> for Error {
    fn from(refused: TryCommitError<P, R>) -> Self {
        refused.error
    }
}
