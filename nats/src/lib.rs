//! lockstep beyond one machine: a NATS JetStream stream's sequence is the commit clock.
//!
//! A [`Publisher`] publishes each commit as one message and gets back the stream sequence the
//! stream's leader gave it: that is the commit's number, global across every publisher on every
//! host. A [`Follower`] reads the stream in order, from its pipeline's frontier + 1, into a
//! sequenced lockstep pipeline ([`lockstep::Builder::sequenced`]), keeping every path (a
//! replica) or a [`Partition`] of them. Since aligned ranges are arithmetic on commit numbers,
//! every follower of one stream cuts the same ranges: a path's segments and reads are the same
//! on every follower that keeps it.
//!
//! [`Publisher::send`] keeps several commits in flight, each an [`InFlight`] with its own
//! message id that waits for its acknowledgment (and publishes again under that id if it is
//! lost). A follower refuses a stream that allows deletes or purges ([`Error::Unguarded`])
//! unless [`StreamSpec::accept_unguarded`] says otherwise: a message deleted from it would be
//! a hole no follower started later could fill.
//!
//! The stream is the write-ahead log; a durable follower's batch files are its checkpoint. A
//! follower rebuilt on the same directory reopens at its recovered frontier and reads on from
//! the stream. What an acknowledged publish survives is the server's to say (README,
//! "Beyond one machine").

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![deny(unsafe_code)]
#![warn(clippy::unwrap_used)]

/// One commit's parts in a message, and the partition a path belongs to.
mod codec;
/// The error type.
mod error;
/// Reading the stream into a sequenced pipeline.
mod follower;
/// Publishing commits.
mod publisher;

pub use codec::Partition;
pub use error::Error;
pub use follower::{Follower, StreamSpec};
pub use publisher::{InFlight, Publisher};
