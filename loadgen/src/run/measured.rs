//! What one engine's run measured, and whether it can be trusted.

use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::intervals::Interval;
use crate::engine::{Finish, Kind};
use crate::rss::Rss;

/// A window timed this much longer or shorter than asked (in parts) is reported as not what
/// was asked.
const WINDOW_TOLERANCE: f64 = 0.10;

/// What one engine's run measured. Counts and latencies cover the measured window only;
/// `issued_*` and the engine's [`Finish`] cover the whole run, warm-up included.
#[derive(Debug)]
pub struct Measured {
    pub kind: Kind,
    /// The measured window, as timed by the coordinating thread.
    pub window: Duration,
    /// When the window opened, by the wall clock (the interval log's timestamps).
    pub opened: SystemTime,
    /// The window asked for (`--duration`).
    pub asked: Duration,
    pub commits: u64,
    pub records: u64,
    pub issued_commits: u64,
    pub issued_records: u64,
    /// Closed loop: duration of the sampled commit calls. Fixed rate: every commit, from its
    /// intended start to its end. Nanoseconds.
    pub commit_latency: Histogram<u64>,
    /// Commit-to-visible, measured by the engine where commits become visible. Nanoseconds.
    pub visible_latency: Histogram<u64>,
    /// Fixed rate: commits due before the end of the window that never started.
    pub missed: u64,
    /// Producers that finished no commit in the measured window.
    pub idle_producers: usize,
    pub producers: usize,
    pub intervals: Vec<Interval>,
    /// Why these figures cannot be trusted, if they cannot; the run then fails.
    pub problems: Vec<String>,
    /// Ctrl-C ended the window early.
    pub interrupted: bool,
    /// Ctrl-C came during the warm-up: the window never opened and nothing was measured (main
    /// reports the engine as not run and writes nothing for it).
    pub warmup_only: bool,
    /// The engine's frontier when the window opened and closed, where it has one.
    pub frontier: Option<(u64, u64)>,
    pub rss: Rss,
    pub finish: Finish,
}

impl Measured {
    pub fn per_second(&self, n: u64) -> f64 {
        let seconds = self.window.as_secs_f64();
        if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        }
    }

    pub fn records_per_sec(&self) -> f64 {
        self.per_second(self.records)
    }

    pub fn commits_per_sec(&self) -> f64 {
        self.per_second(self.commits)
    }

    /// Producers the run had.
    pub fn issued_producers(&self) -> usize {
        self.producers
    }

    /// Whether the engine ended with everything the producers handed it: its final visible
    /// commit equals the commits issued, and the records it applied equal the records sent.
    pub fn nothing_lost(&self) -> bool {
        self.finish.final_commit.is_none_or(|c| c == self.issued_commits)
            && self.finish.records_applied.is_none_or(|r| r == self.issued_records)
    }
}

/// Why a run's figures cannot be trusted.
pub fn problems(m: &Measured) -> Vec<String> {
    let mut problems = Vec::new();
    if m.interrupted && m.commits == 0 {
        // Not the engine's fault: Ctrl-C closed the window before a commit finished in it.
        return problems;
    }
    if m.commits == 0 {
        problems.push("no commit finished in the measured window: the engine did not keep up".to_owned());
    } else if let Some((before, _)) = m.frontier.filter(|(before, after)| before == after) {
        problems.push(format!(
            "{} commits finished but the frontier stayed at {before} through the window: it stalled",
            m.commits
        ));
    } else if m.visible_latency.is_empty() && m.frontier.is_none() {
        problems.push(
            "commits finished but none of the sampled ones became visible in the window: the engine stalled"
                .to_owned(),
        );
    }
    let (asked, got) = (m.asked.as_secs_f64(), m.window.as_secs_f64());
    if !m.interrupted && (got - asked).abs() > asked * WINDOW_TOLERANCE {
        problems.push(format!(
            "the measured window was {got:.3} s where {asked:.3} s was asked: the machine could not keep the schedule"
        ));
    }
    problems
}

#[cfg(test)]
impl Measured {
    /// A run of `kind` for the tests of what reads one: 1,000 commits of one part in a 1 s
    /// window, every latency 1 µs to 1 ms, and four 250 ms intervals.
    pub fn example(kind: Kind) -> Self {
        use crate::latency::histogram;
        let mut latency = histogram();
        for v in 1..=1000u64 {
            crate::latency::record(&mut latency, v * 1000);
        }
        let interval = |i: u32| Interval {
            start: Duration::from_millis(250) * i,
            length: Duration::from_millis(250),
            commit: latency.clone(),
            visible: latency.clone(),
        };
        Measured {
            kind,
            window: Duration::from_secs(1),
            opened: SystemTime::UNIX_EPOCH,
            asked: Duration::from_secs(1),
            commits: 1000,
            records: 1000,
            issued_commits: 1000,
            issued_records: 1000,
            commit_latency: latency.clone(),
            visible_latency: latency.clone(),
            missed: 0,
            idle_producers: 0,
            producers: 1,
            intervals: (0..4).map(interval).collect(),
            problems: Vec::new(),
            interrupted: false,
            warmup_only: false,
            frontier: None,
            rss: Rss { reset: true, at_start: None, peak: None },
            finish: Finish { visible_latency: latency, ..Finish::default() },
        }
    }
}
