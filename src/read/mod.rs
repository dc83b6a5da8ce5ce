//! Reading: each shard publishes its view, a global view is cut across them, and a `snapshot`
//! is what a reader holds.

/// Consistent cross-shard snapshots.
pub(crate) mod snapshot;
