//! Drives lockstep with the workload: closed-loop producers, measurement, shutdown and checks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::error::Error;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use lockstep::merge::Concat;
use lockstep::{DiscardSink, Pipeline, Producer, Retention, Stats};

use crate::align::{self, Alignment};
use crate::workload::{Generator, Record, Workload};

/// The pipeline under test.
type Lockstep = Concat<Record>;

/// On average one measured commit in this many is followed to visibility.
const VISIBLE_EVERY: u64 = 256;
/// How long the observer sleeps between looks at the frontier while it follows commits.
const POLL_EVERY: Duration = Duration::from_micros(50);
/// After the deadline, how long the observer keeps looking for the last followed commits.
const RESOLVE_FOR: Duration = Duration::from_secs(1);

/// How the pipeline is configured and how long to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub producers: usize,
    pub shards: usize,
    pub divisor: u64,
    pub max_level: u32,
    pub queue_capacity: usize,
    pub pin: bool,
    pub duration: Duration,
    pub warmup: Duration,
}

/// What one run measured. Counts and latencies cover only the measured window (after the
/// warm-up); `issued`, the frontier, the alignment and `stats` cover the whole run.
#[derive(Debug)]
pub struct Outcome {
    /// The measured window, as timed by the coordinating thread.
    pub window: Duration,
    pub commits: u64,
    pub records: u64,
    /// Duration of each `commit` call, in nanoseconds.
    pub commit_latency: Histogram<u64>,
    /// From the start of a `commit` call until a snapshot's frontier covered it, in nanoseconds.
    pub visible_latency: Histogram<u64>,
    /// Followed commits not seen visible within `RESOLVE_FOR` after the deadline.
    pub visible_unresolved: u64,
    /// The observer's mean and longest time between two looks at the frontier: how late a
    /// commit-to-visible figure can be.
    pub poll_mean: Duration,
    pub poll_max: Duration,
    /// Commits that returned `Ok`, warm-up included.
    pub issued: u64,
    /// The frontier of the snapshot `shutdown` returned.
    pub final_frontier: u64,
    pub alignment: Alignment,
    /// The library's own figures, read just before shutdown (warm-up included).
    pub stats: Stats,
    /// Peak resident set of the process, in bytes, where the OS tells.
    pub peak_rss: Option<u64>,
}

/// Switches the producers see; the coordinating thread flips them.
#[derive(Debug, Default)]
struct Flags {
    measuring: AtomicBool,
    stop: AtomicBool,
}

/// One producer thread's figures.
#[derive(Debug)]
struct Tally {
    commits: u64,
    issued: u64,
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

fn histogram() -> Histogram<u64> {
    // 1 ns to 1 hour, three significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("constant bounds are valid")
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Builds the pipeline, runs the producers for warm-up plus duration, shuts down and checks.
pub fn run(settings: &Settings, workload: &Workload, progress: bool) -> Result<Outcome, Box<dyn Error>> {
    let pipeline = Pipeline::builder(Lockstep::default())
        .shards(settings.shards)
        .divisor(settings.divisor)
        .max_level(settings.max_level)
        .queue_capacity(settings.queue_capacity)
        .pin_workers(settings.pin)
        .max_producers(settings.producers)
        // Top-level segments go nowhere and only each path's newest stays in memory, so a long
        // run holds steady memory.
        .sink(DiscardSink)
        .retain(Retention::Newest(1))
        .build()?;
    // Made here, so a refusal is reported before any thread starts.
    let producers = (0..settings.producers).map(|_| pipeline.producer()).collect::<Result<Vec<_>, _>>()?;
    let flags = Flags::default();

    let (followed, to_follow) = mpsc::channel();

    let (tallies, observed, window) = std::thread::scope(|scope| -> Result<_, Box<dyn Error>> {
        let observer = std::thread::Builder::new()
            .name("loadgen-observer".into())
            .spawn_scoped(scope, || observe(&pipeline, to_follow))?;
        let mut handles = Vec::with_capacity(producers.len());
        for (index, producer) in producers.into_iter().enumerate() {
            let generator = workload.generator(index);
            let (flags, followed) = (&flags, followed.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("loadgen-producer-{index}"))
                .spawn_scoped(scope, move || produce(producer, generator, flags, followed));
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
        drop(followed);
        let started = Instant::now();
        let show = |phase: &str, since: Instant, of: Duration| {
            if progress {
                let commits = pipeline.stats().commits;
                eprint!(
                    "\r{phase} {:>5.1}s of {:.1}s, {commits} commits so far   ",
                    since.elapsed().as_secs_f64(),
                    of.as_secs_f64()
                );
                let _ = std::io::stderr().flush();
            }
        };
        wait(started + settings.warmup, || show("warm-up  ", started, settings.warmup));
        // Relaxed: the flags only steer which commits are counted; a commit or two either side
        // of the switch does not change the figures.
        flags.measuring.store(true, Ordering::Relaxed);
        let from = Instant::now();
        wait(from + settings.duration, || show("measuring", from, settings.duration));
        flags.stop.store(true, Ordering::Relaxed);
        let window = from.elapsed();
        if progress {
            eprint!("\r{:70}\r", "");
        }
        let mut tallies = Vec::with_capacity(handles.len());
        for handle in handles {
            tallies.push(handle.join().map_err(|_| "a producer thread panicked")??);
        }
        let observed = observer.join().map_err(|_| "the observer thread panicked")?;
        Ok((tallies, observed, window))
    })?;

    let stats = pipeline.stats();
    let last = pipeline.shutdown()?;
    let alignment = align::check(&last, settings.divisor);

    let mut outcome = Outcome {
        window,
        commits: 0,
        records: 0,
        commit_latency: histogram(),
        visible_latency: observed.latency,
        visible_unresolved: observed.unresolved,
        poll_mean: observed.poll_mean,
        poll_max: observed.poll_max,
        issued: 0,
        final_frontier: last.frontier(),
        alignment,
        stats,
        peak_rss: peak_rss(),
    };
    for tally in tallies {
        outcome.commits += tally.commits;
        outcome.issued += tally.issued;
        outcome.commit_latency.add(&tally.commit_latency)?;
    }
    outcome.records = outcome.commits * workload.parts_per_commit() as u64;
    Ok(outcome)
}

/// Sleeps until `deadline`, calling `tick` about four times a second.
fn wait(deadline: Instant, mut tick: impl FnMut()) {
    loop {
        tick();
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(250)));
    }
}

/// One producer thread: commits in a closed loop until told to stop.
///
/// Commit-call latency: every call is timed, from just before `commit` to just after it
/// returns, and recorded only once the warm-up is over. Timing costs two clock reads per call,
/// which the throughput figures include.
///
/// About one measured commit in `VISIBLE_EVERY`, at random gaps so the samples do not lock onto
/// the compaction period, is handed to the observer with the instant its `commit` call started.
fn produce(
    mut producer: Producer<Lockstep>,
    mut generator: Generator<'_>,
    flags: &Flags,
    followed: Sender<(u64, Instant)>,
) -> Result<Tally, lockstep::Error> {
    let mut tally = Tally { commits: 0, issued: 0, commit_latency: histogram() };
    let mut parts = Vec::new();
    let mut until_followed = 1 + generator.rng().below(2 * VISIBLE_EVERY);
    // Relaxed: see `run`.
    while !flags.stop.load(Ordering::Relaxed) {
        generator.fill(&mut parts);
        let measuring = flags.measuring.load(Ordering::Relaxed);
        let started = Instant::now();
        let commit = producer.commit(parts.drain(..))?;
        let ended = Instant::now();
        tally.issued += 1;
        if measuring {
            tally.commits += 1;
            tally.commit_latency.saturating_record(nanos(ended - started));
            until_followed -= 1;
            if until_followed == 0 {
                // The observer only stops once every producer has dropped its sender.
                let _ = followed.send((commit, started));
                until_followed = 1 + generator.rng().below(2 * VISIBLE_EVERY);
            }
        }
    }
    Ok(tally)
}

/// The observer thread: commit-to-visible latency for the followed commits.
///
/// A commit is visible once a snapshot's frontier covers it (the frontier is global, so every
/// earlier commit is visible too). While it follows commits, the observer looks at
/// `pipeline.snapshot().frontier()`, records `now - started` for each followed commit the
/// frontier has passed, and sleeps `POLL_EVERY`. A figure is therefore late by at most the time
/// between two looks (the sleep plus the OS's wake-up delay), which is measured and printed
/// with the figures.
///
/// Why a sleeping observer: looking from the producer threads between commits would be late by
/// a whole blocked `commit` call whenever a queue is full (in a closed loop that is most of the
/// time), and a spinning observer would take a core from the producers and shard workers it
/// measures on a two-core machine.
fn observe(pipeline: &Pipeline<Lockstep>, to_follow: Receiver<(u64, Instant)>) -> Observed {
    let mut latency = histogram();
    // Samples of several producers arrive out of commit order: keep the lowest commit first.
    let mut waiting: BinaryHeap<Reverse<(u64, Instant)>> = BinaryHeap::new();
    let (mut polls, mut poll_total, mut poll_max) = (0u32, Duration::ZERO, Duration::ZERO);
    let mut last_poll: Option<Instant> = None;
    let mut give_up: Option<Instant> = None;
    loop {
        loop {
            match to_follow.try_recv() {
                Ok(sample) => waiting.push(Reverse(sample)),
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
                Ok(sample) => waiting.push(Reverse(sample)),
                Err(_) => break,
            }
            continue;
        }
        let frontier = pipeline.snapshot().frontier();
        // Read after the snapshot: the commits it covers were visible by then at the latest.
        let now = Instant::now();
        if let Some(last) = last_poll {
            let gap = now - last;
            polls += 1;
            poll_total += gap;
            poll_max = poll_max.max(gap);
        }
        last_poll = Some(now);
        while let Some(&Reverse((commit, started))) = waiting.peek() {
            if commit > frontier {
                break;
            }
            latency.saturating_record(nanos(now - started));
            waiting.pop();
        }
        if give_up.is_some_and(|at| now >= at) {
            break;
        }
        std::thread::sleep(POLL_EVERY);
    }
    let poll_mean = if polls > 0 { poll_total / polls } else { Duration::ZERO };
    Observed { latency, unresolved: waiting.len() as u64, poll_mean, poll_max }
}

/// The process's peak resident set (`VmHWM`), on Linux.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
