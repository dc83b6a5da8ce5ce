//! Commits in: a commit takes its number from the `clock`, its paths are resolved once to a
//! shard and an id (`key`, `router`), and a `producer` pushes its parts into per-(producer,
//! shard) `queue`s, ringing the shard workers' `bell`s.

/// Wake-up bells: producers wake parked workers, and workers wake producers waiting for room,
/// without a lost wake-up.
pub(crate) mod bell;
/// Commit numbers and the sealed frontier.
pub(crate) mod clock;
/// Path keys: a path resolved once.
pub(crate) mod key;
/// The producer handle.
pub(crate) mod producer;
/// The per-(producer, shard) queues.
pub(crate) mod queue;
/// Room in a full queue: refusing, or waiting for it.
pub(crate) mod room;
/// Which shard owns a path, and its id there.
pub(crate) mod router;
/// The feeding handle of a sequenced pipeline: commits at given numbers.
pub(crate) mod sequencer;
