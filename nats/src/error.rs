//! The crate's one error type.

use std::fmt;

/// Why a publisher or a follower stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The pipeline refused (see [`lockstep::Error`]).
    Lockstep(lockstep::Error),
    /// The NATS client or server refused, and retrying did not help.
    Nats {
        /// What was being done.
        what: String,
        /// The client's message.
        message: String,
    },
    /// The stream skipped a sequence the follower expected: a message was deleted or purged
    /// (a stream made without `deny_delete` or `deny_purge`), or the stream's limits dropped it.
    /// The follower stops rather than cut ranges that would differ from other followers'.
    Gap {
        /// The sequence expected.
        expected: u64,
        /// The sequence found instead.
        found: u64,
    },
    /// A message is not a commit this follower's records decode from.
    Decode {
        /// The message's stream sequence.
        sequence: u64,
        /// What the decoder said.
        why: String,
    },
    /// A commit's parts could not be encoded.
    Encode {
        /// What the encoder said.
        why: String,
    },
    /// A publish was not acknowledged within the publisher's patience; it may or may not be in
    /// the stream (publish it again with the same publisher within the deduplication window to
    /// find out: a duplicate returns the sequence it has).
    GaveUp {
        /// The message id it was published with.
        msg_id: String,
        /// The last failure.
        last: String,
    },
    /// A partition `index of count` with `count == 0` or `index >= count`.
    InvalidPartition {
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
    /// A commit with no parts: it would take a sequence and hold nothing.
    EmptyCommit,
    /// The stream exists without `deny_delete` or `deny_purge`, so a message deleted from it
    /// would leave a hole no later follower can fill; a follower refuses it unless its
    /// [`StreamSpec::accept_unguarded`](crate::StreamSpec::accept_unguarded) is set.
    Unguarded {
        /// The stream's name.
        stream: String,
        /// Whether the stream denies deletes.
        deny_delete: bool,
        /// Whether the stream denies purges.
        deny_purge: bool,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Lockstep(error) => write!(f, "the pipeline refused: {error}"),
            Error::Nats { what, message } => write!(f, "{what}: {message}"),
            Error::Gap { expected, found } => write!(
                f,
                "the stream skipped from sequence {expected} to {found} (a deleted or purged message?): stopped"
            ),
            Error::Decode { sequence, why } => write!(f, "message {sequence} is not a commit: {why}"),
            Error::Encode { why } => write!(f, "a commit could not be encoded: {why}"),
            Error::GaveUp { msg_id, last } => write!(f, "publishing {msg_id} was never acknowledged: {last}"),
            Error::InvalidPartition { index, count } => {
                write!(f, "partition {index} of {count} does not exist")
            }
            Error::EmptyCommit => f.write_str("a commit needs at least one part"),
            Error::Unguarded { stream, deny_delete, deny_purge } => write!(
                f,
                "stream {stream} allows {}: a deleted message would be a hole no later follower can fill \
                 (make it with deny_delete and deny_purge, or set StreamSpec::accept_unguarded)",
                match (deny_delete, deny_purge) {
                    (false, false) => "deletes and purges",
                    (false, true) => "deletes",
                    _ => "purges",
                }
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<lockstep::Error> for Error {
    fn from(error: lockstep::Error) -> Self {
        Error::Lockstep(error)
    }
}

impl Error {
    /// An [`Error::Nats`] for `error`, met while doing `what`.
    pub(crate) fn nats(what: impl Into<String>, error: impl fmt::Display) -> Self {
        Error::Nats { what: what.into(), message: error.to_string() }
    }
}
