//! Drives one engine with the workload: producer threads (closed loop or fixed rate), a
//! coordinating thread that opens and closes the measured window, and the engine's own finish.
//!
//! **Start.** Every producer thread is started and has made its first records before the clock
//! starts; a run whose producers are not all ready within [`START_WITHIN`] is refused with a
//! message, not measured.
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
//! [`STOP_WITHIN`]; one that does not means the engine stopped taking commits, and the run ends
//! there with a message and a failing exit status.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crossbeam::utils::CachePadded;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::channel::ChannelEngine;
use crate::engine::lockstep::Lockstep;
use crate::engine::mutex::MutexEngine;
use crate::engine::raw::Raw;
use crate::engine::{self, Committer, Engine, Failure, Finish, Kind};
use crate::latency::{self, histogram, nanos};
use crate::record::{self, RecordKind};
use crate::rss::{self, Rss};
use crate::workload::{Generator, Workload};

/// In a closed loop, about one commit in this many is timed and followed to visibility.
pub const SAMPLE_EVERY: u64 = 64;
/// At a fixed rate, follow about this many commits a second to visibility (and at least one in
/// `SAMPLE_EVERY`).
const FOLLOWED_PER_SECOND: u64 = 16_000;
/// Every producer thread must be running within this long of the first one's start.
pub const START_WITHIN: Duration = Duration::from_secs(5);
/// Every producer must have left its last commit within this long of the window's end.
pub const STOP_WITHIN: Duration = Duration::from_secs(5);
/// How often the progress bar is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// A fixed-rate producer sleeps when its next start is further away than this; closer, it
/// yields until the time comes.
const SLEEP_ABOVE: Duration = Duration::from_micros(200);
/// A window timed this much longer or shorter than asked (in parts) is reported as not what
/// was asked.
const WINDOW_TOLERANCE: f64 = 0.10;

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

/// One interval's latency figures (nanoseconds), for the interval log and the plot.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Since the measured window opened.
    pub start: Duration,
    pub length: Duration,
    pub commit: Histogram<u64>,
    pub visible: Histogram<u64>,
}

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

/// Runs engine `kind` with records of `settings.record` for warm-up plus duration, finishes it
/// and gathers the figures. Ends the window early when `interrupted` is set.
pub fn run(
    kind: Kind,
    settings: &Settings,
    workload: &Workload,
    interrupted: &AtomicBool,
) -> Result<Measured, Failure> {
    match settings.record {
        RecordKind::I64 => run_kind::<record::I64>(kind, settings, workload, interrupted),
        RecordKind::U64 => run_kind::<record::U64>(kind, settings, workload, interrupted),
        RecordKind::Bytes => run_kind::<record::Bytes>(kind, settings, workload, interrupted),
        RecordKind::Shared => run_kind::<record::Shared>(kind, settings, workload, interrupted),
    }
}

fn run_kind<K: record::Kind>(
    kind: Kind,
    settings: &Settings,
    workload: &Workload,
    interrupted: &AtomicBool,
) -> Result<Measured, Failure> {
    match kind {
        Kind::Lockstep => drive::<K, Lockstep<K>>(kind, settings, workload, interrupted),
        Kind::Mutex => drive::<K, MutexEngine<K>>(kind, settings, workload, interrupted),
        Kind::Channel => drive::<K, ChannelEngine<K>>(kind, settings, workload, interrupted),
        Kind::Raw => drive::<K, Raw<K>>(kind, settings, workload, interrupted),
    }
}

/// Switches the producers see; the coordinating thread flips them.
#[derive(Debug, Default)]
struct Flags {
    measuring: AtomicBool,
    stop: AtomicBool,
}

/// When things happen, shared by every producer once the clock starts.
#[derive(Debug, Clone, Copy)]
struct Plan {
    start: Instant,
    measure_from: Instant,
    deadline: Instant,
    /// Fixed rate: nanoseconds between one producer's intended starts.
    interval_ns: Option<f64>,
    producers: usize,
    sample_every: u64,
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

    fn intended(&self, index: usize, i: u64, interval_ns: f64) -> Instant {
        self.start + Duration::from_nanos(self.intended_ns(index, i, interval_ns) as u64)
    }
}

/// What the producers and the coordinating thread share.
#[derive(Debug)]
struct Slot {
    /// Commits this producer has finished; read by the coordinator at the window's edges.
    issued: CachePadded<AtomicU64>,
    /// Commit latency of the measured window, nanoseconds: locked once per timed commit and by
    /// the coordinator when it cuts an interval.
    latency: Mutex<Histogram<u64>>,
}

/// Holds the producers until the clock starts.
#[derive(Debug, Default)]
struct Gate {
    ready: AtomicUsize,
    open: Mutex<bool>,
    opened: Condvar,
    plan: OnceLock<Plan>,
}

impl Gate {
    /// A producer is ready; waits for the clock to start, then returns the plan (or `None` if
    /// the run was called off).
    fn arrive(&self) -> Option<Plan> {
        self.ready.fetch_add(1, Ordering::AcqRel);
        let mut open = self.open.lock().ok()?;
        while !*open {
            open = self.opened.wait(open).ok()?;
        }
        self.plan.get().copied()
    }

    fn open(&self, plan: Option<Plan>) {
        if let Some(plan) = plan {
            let _ = self.plan.set(plan);
        }
        if let Ok(mut open) = self.open.lock() {
            *open = true;
        }
        self.opened.notify_all();
    }
}

/// One producer thread's figures.
#[derive(Debug, Default)]
struct Tally {
    issued_commits: u64,
    issued_records: u64,
    missed: u64,
}

fn drive<K: record::Kind, E: Engine<K>>(
    kind: Kind,
    settings: &Settings,
    workload: &Workload,
    interrupted: &AtomicBool,
) -> Result<Measured, Failure> {
    let producers = settings.engine.producers;
    rss::release_freed_memory();
    let rss_reset = rss::reset_peak();
    let rss_at_start = rss::current();
    let engine = E::build(&settings.engine)?;
    // Made here, so a refusal is reported before any thread starts.
    let committers = (0..producers).map(|i| engine.committer(i)).collect::<Result<Vec<_>, _>>()?;
    let flags = Flags::default();
    let slots: Vec<Slot> = (0..producers)
        .map(|_| Slot { issued: Default::default(), latency: Mutex::new(histogram()) })
        .collect();
    let gate = Gate::default();
    let left = AtomicUsize::new(producers);
    let sample_every = match settings.rate {
        None => SAMPLE_EVERY,
        Some(rate) => (rate / FOLLOWED_PER_SECOND).clamp(1, SAMPLE_EVERY),
    };

    let outcome = std::thread::scope(|scope| -> Result<_, Failure> {
        let mut handles = Vec::with_capacity(producers);
        for (index, committer) in committers.into_iter().enumerate() {
            let generator = workload.generator::<K>(index);
            let (flags, slot, gate, left) = (&flags, &slots[index], &gate, &left);
            let spawned = std::thread::Builder::new()
                .name(format!("loadgen-producer-{index}"))
                .stack_size(256 << 10)
                .spawn_scoped(scope, move || {
                    let tally = match gate.arrive() {
                        Some(plan) => produce(committer, generator, index, plan, flags, slot),
                        None => Ok(Tally::default()),
                    };
                    left.fetch_sub(1, Ordering::AcqRel);
                    tally
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    // The threads already started leave at once when the gate opens empty.
                    gate.open(None);
                    return Err(
                        format!("cannot start producer thread {index} of {producers}: {error}").into()
                    );
                }
            }
        }
        let started = Instant::now();
        while gate.ready.load(Ordering::Acquire) < producers {
            if started.elapsed() > START_WITHIN {
                let ready = gate.ready.load(Ordering::Acquire);
                gate.open(None);
                return Err(format!(
                    "only {ready} of {producers} producer threads were running {} s after they were started; \
                     the machine cannot run this many (try fewer --producers)",
                    START_WITHIN.as_secs()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }

        let start = Instant::now();
        let measure_from = start + settings.warmup;
        let plan = Plan {
            start,
            measure_from,
            deadline: measure_from + settings.duration,
            interval_ns: settings.rate.map(|rate| 1e9 * producers as f64 / rate as f64),
            producers,
            sample_every,
        };
        gate.open(Some(plan));

        let progress = Progress::new(kind, settings, &slots);
        let mut interrupt = !progress.wait_until(plan.measure_from, "warm-up", &flags, interrupted);
        let issued_at = |slots: &[Slot]| -> Vec<u64> {
            // Relaxed: counts, read twice; a commit either side of the edge does not matter.
            slots.iter().map(|s| s.issued.load(Ordering::Relaxed)).collect()
        };
        let before = issued_at(&slots);
        let frontier_before = engine.frontier();
        // Relaxed: the flag only steers which commits are sampled into the figures.
        flags.measuring.store(true, Ordering::Relaxed);
        engine.measuring();
        let from = Instant::now();
        let opened = SystemTime::now();
        // A closed loop measures what was asked from when the window really opened (the
        // coordinator may have been late on a busy machine); a fixed rate keeps its schedule.
        let close = if plan.interval_ns.is_some() { plan.deadline } else { from + settings.duration };
        let mut intervals = Vec::new();
        let mut cut = Cutter::default();
        while !interrupt {
            let next = match settings.interval {
                Some(length) => (from + length * (intervals.len() as u32 + 1)).min(close),
                None => close,
            };
            interrupt = !progress.wait_until(next, "measuring", &flags, interrupted);
            if settings.interval.is_some() {
                let now = Instant::now();
                intervals.push(cut.next(from, now, &slots, &engine));
            }
            if Instant::now() >= close || flags.stop.load(Ordering::Relaxed) {
                break;
            }
        }
        let after = issued_at(&slots);
        let to = Instant::now();
        let frontier = frontier_before.zip(engine.frontier());
        flags.stop.store(true, Ordering::Relaxed);
        progress.finish();

        // Every producer must leave its commit soon; one that does not is stuck in the engine.
        let stopped = Instant::now();
        while left.load(Ordering::Acquire) > 0 {
            if stopped.elapsed() > STOP_WITHIN {
                let stuck = left.load(Ordering::Acquire);
                let at = engine.progress().map(|p| format!(" ({p})")).unwrap_or_default();
                eprintln!(
                    "loadgen: engine {kind}: {stuck} of {producers} producers were still inside a commit {} s after \
                     the window closed: the engine stopped taking commits{at}; giving up",
                    STOP_WITHIN.as_secs()
                );
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut tallies = Vec::with_capacity(handles.len());
        for handle in handles {
            tallies.push(handle.join().map_err(|_| "a producer thread panicked")??);
        }
        let commits: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
        let idle = after.iter().zip(&before).filter(|(a, b)| a == b).count();
        Ok((tallies, commits, idle, to - from, opened, intervals, interrupt, frontier))
    })?;
    let (tallies, commits, idle_producers, window, opened, intervals, interrupted, frontier) = outcome;

    // Every committer was moved into its producer thread and dropped there.
    let finish = engine.finish()?;
    let rss = Rss { reset: rss_reset, at_start: rss_at_start, peak: rss::peak() };
    let parts = workload.parts_per_commit() as u64;

    let mut measured = Measured {
        kind,
        window,
        opened,
        asked: settings.duration,
        commits,
        records: commits * parts,
        issued_commits: 0,
        issued_records: 0,
        commit_latency: histogram(),
        visible_latency: finish.visible_latency.clone(),
        missed: 0,
        idle_producers,
        producers,
        intervals,
        problems: Vec::new(),
        interrupted,
        frontier,
        rss,
        finish,
    };
    for (tally, slot) in tallies.iter().zip(&slots) {
        measured.issued_commits += tally.issued_commits;
        measured.issued_records += tally.issued_records;
        measured.missed += tally.missed;
        if let Ok(latency) = slot.latency.lock() {
            measured.commit_latency.add(&*latency)?;
        }
    }
    measured.problems = problems(&measured);
    Ok(measured)
}

/// Why a run's figures cannot be trusted.
fn problems(m: &Measured) -> Vec<String> {
    let mut problems = Vec::new();
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

/// Cuts the running totals into intervals.
#[derive(Debug, Default)]
struct Cutter {
    commit: Option<Histogram<u64>>,
    visible: Option<Histogram<u64>>,
    last: Option<Instant>,
}

impl Cutter {
    fn next<K: record::Kind, E: Engine<K>>(
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

/// One producer thread: commits until told to stop, in a closed loop or on its schedule.
fn produce<K: record::Kind, C: Committer<K>>(
    mut committer: C,
    mut generator: Generator<K>,
    index: usize,
    plan: Plan,
    flags: &Flags,
    slot: &Slot,
) -> Result<Tally, Failure> {
    let mut tally = Tally::default();
    let mut parts = Vec::with_capacity(generator.parts());
    let gap = |generator: &mut Generator<K>| 1 + generator.rng().below(2 * plan.sample_every - 1);
    let mut until_sampled = gap(&mut generator);
    let record = |nanos: u64| {
        if let Ok(mut latency) = slot.latency.lock() {
            crate::latency::record(&mut latency, nanos);
        }
    };
    let fail = |error: Failure| {
        // The others stop too: one failed engine ends the run.
        flags.stop.store(true, Ordering::Relaxed);
        error
    };
    match plan.interval_ns {
        None => {
            // Relaxed: see `drive`.
            while !flags.stop.load(Ordering::Relaxed) {
                generator.fill(&mut parts);
                until_sampled -= 1;
                if until_sampled == 0 {
                    until_sampled = gap(&mut generator);
                    let measuring = flags.measuring.load(Ordering::Relaxed);
                    let started = Instant::now();
                    committer.commit(&mut parts, measuring.then_some(started)).map_err(fail)?;
                    if measuring {
                        record(nanos(started.elapsed()));
                    }
                } else {
                    committer.commit(&mut parts, None).map_err(fail)?;
                }
                tally.issued_commits += 1;
                // Relaxed: a count read at the window's edges and by the progress bar, on its
                // own cache line, written only by this producer.
                slot.issued.store(tally.issued_commits, Ordering::Relaxed);
            }
        }
        Some(interval_ns) => {
            let mut i = 0u64;
            while !flags.stop.load(Ordering::Relaxed) {
                let intended = plan.intended(index, i, interval_ns);
                if intended >= plan.deadline || !wait_until(intended, &flags.stop) {
                    break;
                }
                i += 1;
                generator.fill(&mut parts);
                let measuring = flags.measuring.load(Ordering::Relaxed);
                until_sampled -= 1;
                let stamp = if until_sampled == 0 {
                    until_sampled = gap(&mut generator);
                    // Stamped at the call, like lockstep's own figure: the lateness behind the
                    // intended start is in the commit latency.
                    measuring.then(Instant::now)
                } else {
                    None
                };
                committer.commit(&mut parts, stamp).map_err(fail)?;
                if measuring {
                    record(nanos(intended.elapsed()));
                }
                tally.issued_commits += 1;
                // Relaxed: see the closed loop.
                slot.issued.store(tally.issued_commits, Ordering::Relaxed);
            }
            // Stopped while behind schedule: the commits due before the end that never started.
            let now = Instant::now();
            let end = plan.first_at_or_after(
                index,
                now.min(plan.deadline).saturating_duration_since(plan.start).as_nanos() as f64,
                interval_ns,
            );
            if i < end && flags.measuring.load(Ordering::Relaxed) {
                tally.missed = end - i;
                let lateness = nanos(now.saturating_duration_since(plan.intended(index, i, interval_ns)));
                if let Ok(mut latency) = slot.latency.lock() {
                    latency::record_missed(&mut latency, lateness, interval_ns, tally.missed);
                }
            }
        }
    }
    tally.issued_records = tally.issued_commits * generator.parts() as u64;
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

/// The progress bar: drawn from the coordinating thread only, about four times a second, on
/// stderr, and only when asked to (main decides: stderr is a terminal, or `--progress`).
struct Progress<'a> {
    bar: Option<ProgressBar>,
    slots: &'a [Slot],
}

impl<'a> Progress<'a> {
    fn new(kind: Kind, settings: &Settings, slots: &'a [Slot]) -> Self {
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
    fn wait_until(&self, deadline: Instant, phase: &str, flags: &Flags, interrupted: &AtomicBool) -> bool {
        let (mut last_count, mut last_at) = (self.total(), Instant::now());
        loop {
            // Relaxed: a flag set by the Ctrl-C handler, polled.
            if interrupted.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            // Relaxed: see `drive`.
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
            sample_every: 1,
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

    #[test]
    fn a_gate_called_off_lets_its_producers_go_without_a_plan() {
        let gate = Gate::default();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| gate.arrive());
            while gate.ready.load(Ordering::Acquire) == 0 {
                std::thread::yield_now();
            }
            gate.open(None);
            assert!(waiter.join().unwrap().is_none());
        });
    }
}
