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

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep::merge::Sum;

    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    fn send_future<F: std::future::Future + Send>(_: F) {}

    /// What each handle's first paragraph says of `Send` and `Sync`.
    #[test]
    fn handles_say_who_may_use_them() {
        send_sync::<Publisher>();
        send_sync::<InFlight>();
        send_sync::<StreamSpec>();
        send_sync::<Partition>();
        send_sync::<Error>();
        send::<Follower<Sum>>();
    }

    /// Type-checked, never run: the futures a service hands to `tokio::spawn` are `Send`.
    #[allow(dead_code)]
    fn futures_are_send(publisher: &mut Publisher, in_flight: InFlight, follower: &mut Follower<Sum>) {
        send_future(publisher.publish(&[("/a", 1u64)]));
        send_future(publisher.send(&[("/a", 1u64)]));
        send_future(in_flight.acked());
        send_future(follower.run(std::future::pending()));
    }
}
