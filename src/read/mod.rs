//! Reading: each shard publishes its view, a global view is cut across them, and a `snapshot`
//! is what a reader holds.

/// The snapshot a reader holds.
pub(crate) mod snapshot;
/// Shard views and the global view cut across them: the publish protocol.
pub(crate) mod view;
/// Waiting for the sealed or the durable frontier: `wait_sealed`, `wait_durable` and their
/// async twins.
pub(crate) mod wait;
/// The waiter lists those waits register in, rung when a frontier moves.
pub(crate) mod watch;
