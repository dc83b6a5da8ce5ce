//! The checked settings every thread of a pipeline reads, and the limits `Builder::build`
//! holds them to.

use std::time::Duration;

use crate::out::sink::Retention;
use crate::tier::Geometry;

/// The most shard workers a pipeline starts.
pub const MAX_SHARDS: usize = 1024;
/// The largest [`Builder::queue_capacity`](crate::Builder::queue_capacity), in parts.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;
/// The most bytes one producer's queues (one per shard) may take together: `shards ×
/// queue_capacity × ` the size of a queued part (the record plus 16 bytes).
pub const MAX_QUEUE_BYTES: usize = 1 << 30;
/// The largest [`Builder::max_producers`](crate::Builder::max_producers).
pub const MAX_PRODUCERS: usize = 1 << 16;
/// The most (producer, shard) queues a pipeline may have: `max_producers × shards`. Each worker
/// keeps a little state per producer slot, so this bounds what a pipeline sets up front.
pub const MAX_QUEUES: usize = 1 << 20;
/// The largest [`Builder::max_path_len`](crate::Builder::max_path_len), in bytes.
pub const MAX_PATH_LEN: usize = 1 << 20;

/// [`Builder::merge_budget`](crate::Builder::merge_budget)'s default, in segments.
pub(crate) const DEFAULT_MERGE_BUDGET: usize = 4096;

/// Checked settings, shared by every thread of a pipeline.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) shards: usize,
    pub(crate) divisor: u64,
    pub(crate) geometry: Geometry,
    pub(crate) queue_capacity: usize,
    pub(crate) pin_workers: bool,
    pub(crate) max_producers: usize,
    pub(crate) max_path_len: usize,
    pub(crate) max_record_bytes: Option<usize>,
    pub(crate) flush_level: u32,
    pub(crate) retention: Retention,
    pub(crate) merge_budget: usize,
    pub(crate) idle_spin: Duration,
}

impl Config {
    /// The retention window: the newest top-level blocks kept, if not all.
    pub(crate) fn window(&self) -> Option<usize> {
        match self.retention {
            Retention::All => None,
            Retention::Newest(n) => Some(n),
        }
    }
}
