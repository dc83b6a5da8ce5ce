//! Drives one engine with the workload: producer threads (closed loop or fixed rate), a
//! coordinating thread that opens and closes the measured window, and the engine's own finish.
//!
//! **Start.** Every producer thread is started and has made its first records before the clock
//! starts; a run whose producers are not all ready within [`START_WITHIN`](drive::START_WITHIN)
//! is refused with a message, not measured.
//!
//! **The window.** The coordinating thread reads every producer's count of finished commits
//! when the warm-up ends and again when the window closes, and times the two readings: the
//! throughput is that difference over that time, whatever the producers were doing at the edges
//! (a thousand producers on two cores may not notice a flag for a while). If the window it could
//! time is far from the one asked for, or nothing became visible in it, the report says so and
//! the run fails.
//!
//! **Closed loop** (no `--rate`): each producer starts its next commit as soon as the previous
//! one returns; this finds peak throughput. One commit in about [`SAMPLE_EVERY`] (at random
//! gaps, so samples do not lock onto the compaction period) is timed and stamped for
//! commit-to-visible: two clock reads per sampled commit, none on the others.
//!
//! **Fixed rate** (`--rate N`): commit `i` of producer `p` is *intended* to start at
//! `start + (i + p / producers) × producers / N`, so the producers together start `N` commits a
//! second, evenly spread. A producer waits for each intended start (sleeping while there is
//! time, then yielding; it never spins for long), and times every commit from its intended
//! start, not from when it got round to the call: if the engine stalls, every commit scheduled
//! during the stall is charged for it (the coordinated-omission correction wrk2 makes). That
//! costs a clock read after every commit and one on every wait. Commits due before the end of
//! the window that never started are recorded at their lower bound (end − intended start) and
//! counted as missed. Throughput is what was achieved, not what was asked for.
//!
//! **Stop.** Once the window closes, every producer must leave its commit within
//! [`STOP_WITHIN`](drive::STOP_WITHIN); one that does not means the engine stopped taking
//! commits, and the run ends there with an error: main reports it, writes what the engines
//! before it measured, and exits with a failing status.
//!
//! The parts, in the order a run uses them: [`settings`] says what to run; [`drive`] picks the
//! engine and record types and coordinates the run; [`schedule`] says when each producer
//! commits; [`producer`] is the producer threads' loop and the gate that starts them together;
//! [`progress`] draws the bar while the window is open; [`intervals`] cuts the latency into
//! intervals; [`measured`] holds what came out and says whether it can be trusted.

mod drive;
mod intervals;
mod measured;
mod producer;
mod progress;
mod schedule;
mod settings;

pub use drive::run;
// Named only by the tests that build `Measured` values by hand.
#[cfg(test)]
pub use intervals::Interval;
pub use measured::Measured;
pub use schedule::SAMPLE_EVERY;
pub use settings::Settings;
