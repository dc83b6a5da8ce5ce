//! Drives one engine with the workload: producer threads (closed loop or fixed rate), an
//! observer thread for commit-to-visible, a progress bar, then the engine's own finish.
//!
//! **Closed loop** (no `--rate`): each producer starts its next commit as soon as the previous
//! one returns; this finds peak throughput. Commit latency is the duration of each call.
//!
//! **Fixed rate** (`--rate N`): commit `i` of producer `p` is *intended* to start at
//! `start + (i + p / producers) × producers / N`, so the producers together start `N` commits a
//! second, evenly spread. A producer waits for each intended start (sleeping while there is
//! time, then yielding; it never spins for long), and records latency from the intended start,
//! not from when it got round to the call: if the engine stalls, every commit scheduled during
//! the stall is charged for it. That is the coordinated-omission correction wrk2 makes.
//! A commit counts in the window if it starts inside it, whenever it was due. Commits due before
//! the end of the window that never started are recorded at their lower bound (end − intended
//! start) and counted as missed. Throughput is what was achieved, not what was asked for.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::channel::ChannelEngine;
use crate::engine::lockstep::Lockstep;
use crate::engine::mutex::MutexEngine;
use crate::engine::raw::Raw;
use crate::engine::{self, Committer, Engine, Failure, Finish, Kind};
use crate::latency::{self, histogram, nanos};
use crate::rss::{self, Rss};
use crate::workload::{Generator, Workload};

/// In a closed loop, about one measured commit in this many is followed to visibility.
const FOLLOW_EVERY: u64 = 256;
/// At a fixed rate, follow about this many commits a second (and at least one in 256).
const FOLLOWED_PER_SECOND: u64 = 16_000;
/// How long the observer sleeps between looks while it follows commits.
const POLL_EVERY: Duration = Duration::from_micros(50);
/// After the deadline, how long the observer keeps looking for the last followed commits.
const RESOLVE_FOR: Duration = Duration::from_secs(1);
/// How often the progress bar is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// A fixed-rate producer sleeps when its next start is further away than this; closer, it
/// yields until the time comes.
const SLEEP_ABOVE: Duration = Duration::from_micros(200);

/// How long to run, and how.
#[derive(Debug, Clone)]
pub struct Settings {
    pub engine: engine::Config,
    pub duration: Duration,
    pub warmup: Duration,
    /// Commits per second, all producers together; `None` for a closed loop.
    pub rate: Option<u64>,
    /// Draw a progress bar (on stderr).
    pub progress: bool,
}

/// What one engine's run measured. Counts and latencies cover the measured window only;
/// `issued_*` and the engine's [`Finish`] cover the whole run, warm-up included.
#[derive(Debug)]
pub struct Measured {
    pub kind: Kind,
    /// The measured window: as timed by the coordinating thread (closed loop), or the scheduled
    /// duration (fixed rate).
    pub window: Duration,
    pub commits: u64,
    pub records: u64,
    pub issued_commits: u64,
    pub issued_records: u64,
    /// Closed loop: duration of each commit call. Fixed rate: from its intended start to its
    /// end. Nanoseconds.
    pub commit_latency: Histogram<u64>,
    /// From the start of a commit call (closed loop) or its intended start (fixed rate) until
    /// the engine shows it visible. Nanoseconds.
    pub visible_latency: Histogram<u64>,
    /// Followed commits not seen visible within `RESOLVE_FOR` after the deadline.
    pub visible_unresolved: u64,
    /// The observer's mean and longest time between two looks: how late a commit-to-visible
    /// figure can be.
    pub poll_mean: Duration,
    pub poll_max: Duration,
    /// Fixed rate: commits due before the end of the window that never started.
    pub missed: u64,
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

    /// Whether the engine ended with everything the producers handed it: its final visible
    /// commit equals the commits issued, and the records it applied equal the records sent.
    pub fn nothing_lost(&self) -> bool {
        self.finish.final_commit.is_none_or(|c| c == self.issued_commits)
            && self.finish.records_applied.is_none_or(|r| r == self.issued_records)
    }
}

/// Runs engine `kind` for warm-up plus duration, finishes it and gathers the figures.
pub fn run(kind: Kind, settings: &Settings, workload: &Workload) -> Result<Measured, Failure> {
    match kind {
        Kind::Lockstep => drive::<Lockstep>(kind, settings, workload),
        Kind::Mutex => drive::<MutexEngine>(kind, settings, workload),
        Kind::Channel => drive::<ChannelEngine>(kind, settings, workload),
        Kind::Raw => drive::<Raw>(kind, settings, workload),
    }
}

/// Switches the producers see; the coordinating thread flips them.
#[derive(Debug, Default)]
struct Flags {
    measuring: AtomicBool,
    stop: AtomicBool,
}

/// When things happen, shared by every producer.
#[derive(Debug, Clone, Copy)]
struct Plan {
    start: Instant,
    measure_from: Instant,
    deadline: Instant,
    /// Fixed rate: nanoseconds between one producer's intended starts.
    interval_ns: Option<f64>,
    producers: usize,
    follow_every: u64,
}

impl Plan {
    /// Producer `index`'s `i`-th intended start, as nanoseconds after `start`: producers are
    /// offset from each other by a fraction of the interval, so starts are spread evenly.
    fn intended_ns(&self, index: usize, i: u64, interval_ns: f64) -> f64 {
        (i as f64 + index as f64 / self.producers as f64) * interval_ns
    }

    /// The first `i` whose intended start is at or after `at_ns` nanoseconds after `start`.
    fn first_at_or_after(&self, index: usize, at_ns: f64, interval_ns: f64) -> u64 {
        let i = (at_ns / interval_ns - index as f64 / self.producers as f64).ceil();
        i.max(0.0) as u64
    }
}

/// One producer thread's figures.
#[derive(Debug)]
struct Tally {
    commits: u64,
    records: u64,
    issued_commits: u64,
    issued_records: u64,
    missed: u64,
    commit_latency: Histogram<u64>,
}

/// The observer's figures.
#[derive(Debug)]
struct Observed {
    latency: Histogram<u64>,
    unresolved: u64,
    poll_mean: Duration,
    poll_max: Duration,
}

fn drive<E: Engine>(kind: Kind, settings: &Settings, workload: &Workload) -> Result<Measured, Failure> {
    let producers = settings.engine.producers;
    rss::release_freed_memory();
    let rss_reset = rss::reset_peak();
    let rss_at_start = rss::current();
    let engine = E::build(&settings.engine)?;
    // Made here, so a refusal is reported before any thread starts.
    let committers = (0..producers).map(|i| engine.committer(i)).collect::<Result<Vec<_>, _>>()?;
    let flags = Flags::default();
    let issued: Vec<CachePadded<AtomicU64>> = (0..producers).map(|_| Default::default()).collect();
    let (follow, to_follow) = mpsc::channel();

    let start = Instant::now();
    let measure_from = start + settings.warmup;
    let plan = Plan {
        start,
        measure_from,
        deadline: measure_from + settings.duration,
        interval_ns: settings.rate.map(|rate| 1e9 * producers as f64 / rate as f64),
        producers,
        follow_every: match settings.rate {
            None => FOLLOW_EVERY,
            Some(rate) => (rate / FOLLOWED_PER_SECOND).clamp(1, FOLLOW_EVERY),
        },
    };

    let (tallies, observed, window) = std::thread::scope(|scope| -> Result<_, Failure> {
        let observer = std::thread::Builder::new()
            .name("loadgen-observer".into())
            .spawn_scoped(scope, || observe(&engine, to_follow))?;
        let mut handles = Vec::with_capacity(producers);
        for (index, committer) in committers.into_iter().enumerate() {
            let generator = workload.generator(index);
            let (flags, issued, follow) = (&flags, &*issued[index], follow.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("loadgen-producer-{index}"))
                .spawn_scoped(scope, move || {
                    produce(committer, generator, index, plan, flags, issued, follow)
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    // The scope joins the threads already started; they see `stop` at once, and
                    // the observer ends once every sender is gone.
                    flags.stop.store(true, Ordering::Relaxed);
                    return Err(format!("cannot start a producer thread: {error}").into());
                }
            }
        }
        // The observer ends once the producers' senders are all gone.
        drop(follow);

        let progress = Progress::new(kind, settings, &issued);
        progress.wait_until(plan.measure_from, "warm-up", &flags);
        // Relaxed: the flags only steer which commits are counted; a commit or two either side
        // of the switch does not change the figures.
        flags.measuring.store(true, Ordering::Relaxed);
        engine.measuring();
        let from = Instant::now();
        progress.wait_until(plan.deadline, "measuring", &flags);
        flags.stop.store(true, Ordering::Relaxed);
        let window = if plan.interval_ns.is_some() { settings.duration } else { from.elapsed() };
        progress.finish();

        // Join everything before reporting a failure, so no thread is left running.
        let joined: Vec<_> = handles.into_iter().map(|handle| handle.join()).collect();
        let observed = observer.join().map_err(|_| "the observer thread panicked")?;
        let mut tallies = Vec::with_capacity(joined.len());
        for result in joined {
            tallies.push(result.map_err(|_| "a producer thread panicked")??);
        }
        Ok((tallies, observed, window))
    })?;

    // Every committer was moved into its producer thread and dropped there.
    let finish = engine.finish()?;
    let rss = Rss { reset: rss_reset, at_start: rss_at_start, peak: rss::peak() };

    let mut measured = Measured {
        kind,
        window,
        commits: 0,
        records: 0,
        issued_commits: 0,
        issued_records: 0,
        commit_latency: histogram(),
        visible_latency: observed.latency,
        visible_unresolved: observed.unresolved,
        poll_mean: observed.poll_mean,
        poll_max: observed.poll_max,
        missed: 0,
        rss,
        finish,
    };
    for tally in tallies {
        measured.commits += tally.commits;
        measured.records += tally.records;
        measured.issued_commits += tally.issued_commits;
        measured.issued_records += tally.issued_records;
        measured.missed += tally.missed;
        measured.commit_latency.add(&tally.commit_latency)?;
    }
    Ok(measured)
}

/// One producer thread: commits until told to stop, in a closed loop or on its schedule.
///
/// Commit latency: every measured commit is timed (two clock reads per call, which the
/// throughput figures include). About one measured commit in `plan.follow_every`, at random
/// gaps so the samples do not lock onto the compaction period, is handed to the observer with
/// the instant its latency counts from.
fn produce<C: Committer>(
    mut committer: C,
    mut generator: Generator<'_>,
    index: usize,
    plan: Plan,
    flags: &Flags,
    issued: &AtomicU64,
    follow: Sender<(C::Ticket, Instant)>,
) -> Result<Tally, Failure> {
    let mut tally = Tally {
        commits: 0,
        records: 0,
        issued_commits: 0,
        issued_records: 0,
        missed: 0,
        commit_latency: histogram(),
    };
    let mut parts = Vec::new();
    let next_gap = |generator: &mut Generator<'_>| 1 + generator.rng().below(2 * plan.follow_every - 1);
    let mut until_followed = next_gap(&mut generator);
    let mut i = 0u64;
    // Relaxed: see `drive`.
    while !flags.stop.load(Ordering::Relaxed) {
        // When this commit's latency counts from, and whether it is measured.
        let (from, measuring) = match plan.interval_ns {
            None => (None, flags.measuring.load(Ordering::Relaxed)),
            Some(interval_ns) => {
                let intended =
                    plan.start + Duration::from_nanos(plan.intended_ns(index, i, interval_ns) as u64);
                if intended >= plan.deadline {
                    break;
                }
                if !wait_until(intended, &flags.stop) {
                    // Told to stop while waiting (the window is over, or another producer failed).
                    break;
                }
                i += 1;
                // Measured if it starts inside the window, even if it was due before (an engine
                // that fell behind during the warm-up carries that backlog into the window).
                (Some(intended), Instant::now() >= plan.measure_from)
            }
        };
        generator.fill(&mut parts);
        let records = parts.len() as u64;
        let started = Instant::now();
        let result = committer.commit(&mut parts);
        let ended = Instant::now();
        if let Err(error) = result {
            // The others stop too: one failed engine ends the run.
            flags.stop.store(true, Ordering::Relaxed);
            return Err(error);
        }
        tally.issued_commits += 1;
        tally.issued_records += records;
        // Relaxed: read only by the progress bar.
        issued.store(tally.issued_commits, Ordering::Relaxed);
        if measuring {
            let from = from.unwrap_or(started);
            tally.commits += 1;
            tally.records += records;
            tally.commit_latency.saturating_record(nanos(ended.saturating_duration_since(from)));
            until_followed -= 1;
            if until_followed == 0 {
                // The observer only stops once every producer has dropped its sender.
                let _ = follow.send((committer.ticket(), from));
                until_followed = next_gap(&mut generator);
            }
        }
    }
    if let Some(interval_ns) = plan.interval_ns {
        // Stopped while behind schedule: the commits due before the end that never started.
        let now = Instant::now();
        let first = i;
        let end = plan.first_at_or_after(
            index,
            plan.deadline.duration_since(plan.start).as_nanos() as f64,
            interval_ns,
        );
        if first < end {
            let first_intended =
                plan.start + Duration::from_nanos(plan.intended_ns(index, first, interval_ns) as u64);
            tally.missed = end - first;
            let lateness = nanos(now.saturating_duration_since(first_intended));
            latency::record_missed(&mut tally.commit_latency, lateness, interval_ns, tally.missed);
        }
    }
    Ok(tally)
}

/// Waits until `at`: sleeps while it is far, then yields (so a waiting producer never holds a
/// core another thread could use). False if told to stop first.
fn wait_until(at: Instant, stop: &AtomicBool) -> bool {
    loop {
        let now = Instant::now();
        if now >= at {
            return true;
        }
        let left = at - now;
        if left > SLEEP_ABOVE {
            // Linux sleeps overshoot by tens of microseconds: wake early, yield the rest.
            std::thread::sleep(left - SLEEP_ABOVE / 2);
            // Relaxed: see `drive`.
            if stop.load(Ordering::Relaxed) {
                return false;
            }
        } else {
            std::thread::yield_now();
        }
    }
}

/// The observer thread: commit-to-visible latency for the followed commits.
///
/// While it follows commits, the observer asks the engine for one look at what is visible,
/// records `now - from` for each followed commit the look covers, and sleeps `POLL_EVERY`. A
/// figure is therefore late by at most the time between two looks (the sleep plus the OS's
/// wake-up delay), which is measured and printed with the figures.
///
/// Why a sleeping observer: looking from the producer threads between commits would be late by
/// a whole blocked commit whenever a queue is full (in a closed loop that is most of the time),
/// and a spinning observer would take a core from the producers and workers it measures on a
/// two-core machine.
fn observe<E: Engine>(engine: &E, to_follow: Receiver<(E::Ticket, Instant)>) -> Observed {
    let mut latency = histogram();
    let mut waiting: Vec<(E::Ticket, Instant)> = Vec::new();
    let (mut polls, mut poll_total, mut poll_max) = (0u32, Duration::ZERO, Duration::ZERO);
    let mut last_poll: Option<Instant> = None;
    let mut give_up: Option<Instant> = None;
    loop {
        loop {
            match to_follow.try_recv() {
                Ok(sample) => waiting.push(sample),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    give_up.get_or_insert_with(|| Instant::now() + RESOLVE_FOR);
                    break;
                }
            }
        }
        if waiting.is_empty() {
            if give_up.is_some() {
                break;
            }
            last_poll = None;
            // Nothing to follow: block until a sample comes (or every producer is done).
            match to_follow.recv() {
                Ok(sample) => waiting.push(sample),
                Err(_) => break,
            }
            continue;
        }
        let look = engine.look();
        // Read after the look: the commits it covers were visible by then at the latest.
        let now = Instant::now();
        if let Some(last) = last_poll {
            let gap = now - last;
            polls += 1;
            poll_total += gap;
            poll_max = poll_max.max(gap);
        }
        last_poll = Some(now);
        waiting.retain(|(ticket, from)| {
            let visible = E::covers(&look, ticket);
            if visible {
                latency.saturating_record(nanos(now.saturating_duration_since(*from)));
            }
            !visible
        });
        if give_up.is_some_and(|at| now >= at) {
            break;
        }
        std::thread::sleep(POLL_EVERY);
    }
    let poll_mean = if polls > 0 { poll_total / polls } else { Duration::ZERO };
    Observed { latency, unresolved: waiting.len() as u64, poll_mean, poll_max }
}

/// The progress bar: drawn from the coordinating thread only, about four times a second, and
/// only when asked to (main turns it off when stdout is not a terminal or the run is short).
struct Progress<'a> {
    bar: Option<ProgressBar>,
    issued: &'a [CachePadded<AtomicU64>],
}

impl<'a> Progress<'a> {
    fn new(kind: Kind, settings: &Settings, issued: &'a [CachePadded<AtomicU64>]) -> Self {
        let bar = settings.progress.then(|| {
            let total = settings.warmup + settings.duration;
            let bar = ProgressBar::new(total.as_millis() as u64);
            let style = ProgressStyle::with_template("{prefix:>8} [{bar:25}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(kind.name());
            bar
        });
        Self { bar, issued }
    }

    fn total(&self) -> u64 {
        // Relaxed: a progress figure.
        self.issued.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }

    /// Sleeps until `deadline` (or until the producers stop on an error), redrawing the bar.
    fn wait_until(&self, deadline: Instant, phase: &str, flags: &Flags) {
        let (mut last_count, mut last_at) = (self.total(), Instant::now());
        loop {
            let now = Instant::now();
            // Relaxed: see `drive`.
            if now >= deadline || flags.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep((deadline - now).min(PROGRESS_EVERY));
            if let Some(bar) = &self.bar {
                let (count, at) = (self.total(), Instant::now());
                let rate = (count - last_count) as f64 / (at - last_at).as_secs_f64().max(1e-9);
                (last_count, last_at) = (count, at);
                let elapsed = bar.elapsed();
                bar.set_message(format!(
                    "{phase} {:.1}/{:.1} s, {} commits/s",
                    elapsed.as_secs_f64(),
                    bar.length().unwrap_or(0) as f64 / 1000.0,
                    crate::report::si(rate)
                ));
                bar.set_position(elapsed.as_millis() as u64);
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(producers: usize) -> Plan {
        let start = Instant::now();
        Plan {
            start,
            measure_from: start,
            deadline: start,
            interval_ns: Some(1000.0),
            producers,
            follow_every: 1,
        }
    }

    #[test]
    fn producers_share_the_schedule_evenly() {
        // Two producers, 1 µs apart each: together one start every 0.5 µs.
        let plan = plan(2);
        let mut starts: Vec<f64> =
            (0..4).flat_map(|i| [plan.intended_ns(0, i, 1000.0), plan.intended_ns(1, i, 1000.0)]).collect();
        starts.sort_by(f64::total_cmp);
        let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| (g - 500.0).abs() < 1e-9), "{gaps:?}");
    }

    #[test]
    fn first_at_or_after_inverts_the_schedule() {
        let plan = plan(4);
        for index in 0..4 {
            for at in [0.0, 1.0, 999.0, 1000.0, 1250.0, 123_456.0] {
                let i = plan.first_at_or_after(index, at, 1000.0);
                assert!(plan.intended_ns(index, i, 1000.0) >= at - 1e-6);
                if i > 0 {
                    assert!(plan.intended_ns(index, i - 1, 1000.0) < at);
                }
            }
        }
    }
}
