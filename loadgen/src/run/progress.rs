//! The progress display, and the coordinating thread's waits that draw it.

use std::cell::{Cell, RefCell};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::producer::{Flags, Slot};
use super::settings::Settings;
use crate::engine::Kind;

/// How often the progress bar is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How often a progress line is written when stderr is not a terminal (a log file, a CI
/// console): a line a second keeps such a log short and still shows a run that hangs.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Where progress goes.
enum Display {
    None,
    /// A terminal: a bar redrawn in place.
    Bar(ProgressBar),
    /// Anything else: plain lines, one when a phase starts and one a second after that.
    Lines {
        kind: Kind,
        started: Instant,
        total: Duration,
        /// The phase of the last line and when it was written.
        last: RefCell<Option<(String, Instant)>>,
    },
}

/// The progress display: drawn from the coordinating thread only, on stderr, and only when
/// asked to (main decides: stderr is a terminal, or `--progress`). A bar on a terminal;
/// elsewhere (`--progress` into a file or a pipe), where a bar draws nothing, a plain line now
/// and then.
pub struct Progress<'a> {
    display: Display,
    slots: &'a [Slot],
    /// The count and time of the last rate reading.
    last_count: Cell<(u64, Instant)>,
}

impl<'a> Progress<'a> {
    pub fn new(kind: Kind, settings: &Settings, slots: &'a [Slot]) -> Self {
        let total = settings.warmup + settings.duration;
        let display = if !settings.progress {
            Display::None
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(
                Some(total.as_millis() as u64),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            let style = ProgressStyle::with_template("{prefix:>8} [{bar:25}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(kind.name());
            Display::Bar(bar)
        } else {
            Display::Lines { kind, started: Instant::now(), total, last: RefCell::new(None) }
        };
        let progress = Self { display, slots, last_count: Cell::new((0, Instant::now())) };
        progress.last_count.set((progress.total(), Instant::now()));
        progress
    }

    fn total(&self) -> u64 {
        // Relaxed: a progress figure.
        self.slots.iter().map(|s| s.issued.load(Ordering::Relaxed)).sum()
    }

    /// Sleeps until `deadline` (or until the producers stop on an error), drawing the progress.
    /// False if Ctrl-C came first.
    pub fn wait_until(
        &self,
        deadline: Instant,
        phase: &str,
        flags: &Flags,
        interrupted: &AtomicBool,
    ) -> bool {
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
            self.draw(phase);
        }
    }

    /// Commits a second since the last reading.
    fn rate(&self) -> f64 {
        let (last_count, last_at) = self.last_count.get();
        let (count, at) = (self.total(), Instant::now());
        self.last_count.set((count, at));
        count.saturating_sub(last_count) as f64 / (at - last_at).as_secs_f64().max(1e-9)
    }

    fn draw(&self, phase: &str) {
        match &self.display {
            Display::None => {}
            Display::Bar(bar) => {
                if self.last_count.get().1.elapsed() < PROGRESS_EVERY {
                    return;
                }
                let rate = self.rate();
                let elapsed = bar.elapsed();
                bar.set_message(format!(
                    "{phase} {:.1}/{:.1} s, {} commits/s",
                    elapsed.as_secs_f64(),
                    bar.length().unwrap_or(0) as f64 / 1000.0,
                    crate::format::si(rate)
                ));
                bar.set_position(elapsed.as_millis() as u64);
            }
            Display::Lines { kind, started, total, last } => {
                let due = match &*last.borrow() {
                    None => true,
                    Some((last_phase, at)) => last_phase != phase || at.elapsed() >= LINE_EVERY,
                };
                if !due {
                    return;
                }
                let rate = self.rate();
                // Failing to write progress is no reason to stop a run.
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "loadgen: {kind} {phase} {:.1}/{:.1} s, {} commits/s",
                    started.elapsed().as_secs_f64(),
                    total.as_secs_f64(),
                    crate::format::si(rate)
                );
                *last.borrow_mut() = Some((phase.to_owned(), Instant::now()));
            }
        }
    }

    pub fn finish(&self) {
        if let Display::Bar(bar) = &self.display {
            bar.finish_and_clear();
        }
    }
}
