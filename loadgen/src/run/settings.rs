//! What a run is asked to do: the engines' configuration, the record kind, how long, at what
//! rate, and what to show while it runs.

use std::time::Duration;

use crate::engine;
use crate::record::RecordKind;

/// How long to run, and how.
#[derive(Debug, Clone)]
pub struct Settings {
    pub engine: engine::Config,
    pub record: RecordKind,
    pub duration: Duration,
    pub warmup: Duration,
    /// Commits per second, all producers together; `None` for a closed loop.
    pub rate: Option<u64>,
    /// Draw a progress bar (on stderr).
    pub progress: bool,
    /// Cut the latency figures into intervals this long (for `--hlog` and the plot's second
    /// panel); `None` keeps only the totals.
    pub interval: Option<Duration>,
}
