//! The latency figures cut into intervals while the window is open (for `--hlog` and the
//! plot's second panel): the coordinating thread reads the running totals at each interval's
//! end and keeps what was added since the last reading.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::producer::Slot;
use crate::engine::Engine;
use crate::latency::histogram;
use crate::record;

/// One interval's latency figures (nanoseconds), for the interval log and the plot.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Since the measured window opened.
    pub start: Duration,
    pub length: Duration,
    pub commit: Histogram<u64>,
    pub visible: Histogram<u64>,
}

/// Cuts the running totals into intervals.
#[derive(Debug, Default)]
pub struct Cutter {
    commit: Option<Histogram<u64>>,
    visible: Option<Histogram<u64>>,
    last: Option<Instant>,
}

impl Cutter {
    /// The interval from the last cut (the first from `from`, when the window opened) to `now`.
    pub fn next<K: record::Kind, E: Engine<K>>(
        &mut self,
        from: Instant,
        now: Instant,
        slots: &[Slot],
        engine: &E,
    ) -> Interval {
        let mut commit = histogram();
        for slot in slots {
            if let Ok(latency) = slot.latency.lock() {
                let _ = commit.add(&*latency);
            }
        }
        let visible = engine.visible();
        let start = self.last.unwrap_or(from);
        self.last = Some(now);
        let since = |total: &Histogram<u64>, before: &Option<Histogram<u64>>| {
            let mut part = total.clone();
            if let Some(before) = before {
                // Totals only grow; if one was reset underneath, keep the whole.
                if part.subtract(before).is_err() {
                    part = total.clone();
                }
            }
            part
        };
        let interval = Interval {
            start: start - from,
            length: now - start,
            commit: since(&commit, &self.commit),
            visible: since(&visible, &self.visible),
        };
        self.commit = Some(commit);
        self.visible = Some(visible);
        interval
    }
}
