//! The progress bar, and the coordinating thread's waits that draw it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::producer::{Flags, Slot};
use super::settings::Settings;
use crate::engine::Kind;

/// How often the progress bar is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The progress bar: drawn from the coordinating thread only, about four times a second, on
/// stderr, and only when asked to (main decides: stderr is a terminal, or `--progress`).
pub struct Progress<'a> {
    bar: Option<ProgressBar>,
    slots: &'a [Slot],
}

impl<'a> Progress<'a> {
    pub fn new(kind: Kind, settings: &Settings, slots: &'a [Slot]) -> Self {
        let bar = settings.progress.then(|| {
            let total = settings.warmup + settings.duration;
            let bar = ProgressBar::with_draw_target(
                Some(total.as_millis() as u64),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            let style = ProgressStyle::with_template("{prefix:>8} [{bar:25}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(kind.name());
            bar
        });
        Self { bar, slots }
    }

    fn total(&self) -> u64 {
        // Relaxed: a progress figure.
        self.slots.iter().map(|s| s.issued.load(Ordering::Relaxed)).sum()
    }

    /// Sleeps until `deadline` (or until the producers stop on an error), redrawing the bar.
    /// False if Ctrl-C came first.
    pub fn wait_until(
        &self,
        deadline: Instant,
        phase: &str,
        flags: &Flags,
        interrupted: &AtomicBool,
    ) -> bool {
        let (mut last_count, mut last_at) = (self.total(), Instant::now());
        loop {
            // Relaxed: a flag set by the Ctrl-C handler, polled.
            if interrupted.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            // Relaxed: see `Flags`.
            if now >= deadline || flags.stop.load(Ordering::Relaxed) {
                return true;
            }
            // Short sleeps, so Ctrl-C is seen within 50 ms.
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
            if let Some(bar) = &self.bar {
                let at = Instant::now();
                if at - last_at < PROGRESS_EVERY {
                    continue;
                }
                let count = self.total();
                let rate = count.saturating_sub(last_count) as f64 / (at - last_at).as_secs_f64().max(1e-9);
                (last_count, last_at) = (count, at);
                let elapsed = bar.elapsed();
                bar.set_message(format!(
                    "{phase} {:.1}/{:.1} s, {} commits/s",
                    elapsed.as_secs_f64(),
                    bar.length().unwrap_or(0) as f64 / 1000.0,
                    crate::format::si(rate)
                ));
                bar.set_position(elapsed.as_millis() as u64);
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
