//! A shard: its `worker` drains the queues, `sort`s the sealed rows, and its `spine` forms them
//! into `batch`es, one per aligned range, and merges them up the levels (`merging`), as its
//! `policy` decides; top-level batches go to the `history`. Path names live in the shard's
//! `directory`.

/// One immutable, columnar batch per range.
pub(crate) mod batch;
/// An append-only list whose entries never move.
pub(crate) mod chunks;
/// A shard's path names and ids, shared by producers, its worker and readers.
pub(crate) mod directory;
/// Top-level batches kept for good, indexed per path.
pub(crate) mod history;
/// A merge or combine in progress: `new`, `work(&mut fuel)`, done.
pub(crate) mod merging;
/// The compaction policy: what to form, merge, combine and drop, decided from numbers alone.
pub(crate) mod policy;
/// A turn's rows sorted by (path, commit) without allocating.
pub(crate) mod sort;
/// A shard's batches: forming, fueled merging, retention runs, the hand-over to history.
pub(crate) mod spine;
/// Shard workers: drain, form, merge, publish.
pub(crate) mod worker;
