//! One engine's run, from building it to its figures: picks the engine and record types,
//! starts the producers, opens and closes the measured window, stops the producers and
//! finishes the engine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::intervals::{Cutter, Interval};
use super::measured::{problems, Measured};
use super::producer::{self, Shared, Tally};
use super::progress::Progress;
use super::schedule::Plan;
use super::settings::Settings;
use crate::engine::channel::ChannelEngine;
use crate::engine::fjall::FjallEngine;
use crate::engine::lockstep::Lockstep;
use crate::engine::mutex::MutexEngine;
use crate::engine::nats::NatsEngine;
use crate::engine::raw::Raw;
use crate::engine::{Committer, Engine, Failure, Kind};
use crate::latency::histogram;
use crate::record::{self, RecordKind};
use crate::rss::{self, Rss};
use crate::workload::Workload;

/// Every producer thread must be running within this long of the first one's start.
pub const START_WITHIN: Duration = Duration::from_secs(5);
/// Every producer must have left its last commit within this long of the window's end.
pub const STOP_WITHIN: Duration = Duration::from_secs(5);

/// A producer thread, and the figures it hands back when it ends.
type Handle = JoinHandle<Result<Tally, Failure>>;

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
        Kind::Fjall => drive::<K, FjallEngine<K>>(kind, settings, workload, interrupted),
        Kind::Nats => drive::<K, NatsEngine<K>>(kind, settings, workload, interrupted),
    }
}

/// What the coordinating thread saw of the measured window.
#[derive(Debug)]
struct Window {
    /// Commits finished in the window, all producers together.
    commits: u64,
    /// Producers that finished no commit in the window.
    idle_producers: usize,
    /// The window, as the coordinating thread timed it.
    length: Duration,
    /// When it opened, by the wall clock.
    opened: SystemTime,
    intervals: Vec<Interval>,
    /// Ctrl-C closed it early.
    interrupted: bool,
    /// Ctrl-C came during the warm-up: the window never opened, nothing was measured.
    warmup_only: bool,
    /// The engine's frontier when it opened and when it closed, where it has one.
    frontier: Option<(u64, u64)>,
}

fn drive<K: record::Kind, E: Engine<K>>(
    kind: Kind,
    settings: &Settings,
    workload: &Workload,
    interrupted: &AtomicBool,
) -> Result<Measured, Failure>
where
    E::Committer: 'static,
{
    let producers = settings.engine.producers;
    rss::release_freed_memory();
    let rss_reset = rss::reset_peak();
    let rss_at_start = rss::current();
    let engine = E::build(&settings.engine)?;
    // Made here, so a refusal is reported before any thread starts.
    let committers = (0..producers).map(|i| engine.committer(i)).collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared::new(producers));
    let handles = start(&shared, committers, workload)?;

    let plan = Plan::new(Instant::now(), settings);
    shared.gate.open(Some(plan));
    let window = window(kind, settings, &plan, &engine, &shared, interrupted);
    if let Err(stuck) = stopped(&shared, STOP_WITHIN, || engine.progress()) {
        // Dropping the engine would wait for the commits under way (lockstep's pipeline drains
        // them before it stops), and these never end: it is left as it is, for main to report
        // the error, write what was measured and exit.
        std::mem::forget(engine);
        return Err(stuck);
    }
    let mut tallies = Vec::with_capacity(handles.len());
    for handle in handles {
        tallies.push(handle.join().map_err(|_| "a producer thread panicked")??);
    }

    // Every committer was moved into its producer thread and dropped there.
    let finish = engine.finish()?;
    let rss = Rss { reset: rss_reset, at_start: rss_at_start, peak: rss::peak() };
    let parts = workload.parts_per_commit() as u64;

    let mut measured = Measured {
        kind,
        window: window.length,
        opened: window.opened,
        asked: settings.duration,
        commits: window.commits,
        records: window.commits * parts,
        issued_commits: 0,
        issued_records: 0,
        commit_latency: histogram(),
        visible_latency: finish.visible_latency.clone(),
        missed: 0,
        idle_producers: window.idle_producers,
        producers,
        intervals: window.intervals,
        problems: Vec::new(),
        interrupted: window.interrupted,
        warmup_only: window.warmup_only,
        frontier: window.frontier,
        rss,
        finish,
    };
    for (tally, slot) in tallies.iter().zip(&shared.slots) {
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

/// Starts one thread per committer and waits until every one is at the gate. On failure the
/// threads already started are let go (they leave at once) and joined before the error.
fn start<K: record::Kind, C: Committer<K> + 'static>(
    shared: &Arc<Shared>,
    committers: Vec<C>,
    workload: &Workload,
) -> Result<Vec<Handle>, Failure> {
    let producers = committers.len();
    let mut handles = Vec::with_capacity(producers);
    for (index, committer) in committers.into_iter().enumerate() {
        let generator = workload.generator::<K>(index);
        let thread_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("loadgen-producer-{index}"))
            .stack_size(256 << 10)
            .spawn(move || producer::thread(&thread_shared, index, committer, generator));
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                call_off(shared, handles);
                return Err(format!("cannot start producer thread {index} of {producers}: {error}").into());
            }
        }
    }
    let started = Instant::now();
    while shared.gate.ready() < producers {
        if started.elapsed() > START_WITHIN {
            let ready = shared.gate.ready();
            call_off(shared, handles);
            return Err(format!(
                "only {ready} of {producers} producer threads were running {} s after they were started; \
                 the machine cannot run this many (try fewer --producers)",
                START_WITHIN.as_secs()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(handles)
}

/// Opens the gate with no plan, so every producer leaves at once, and waits until they have.
fn call_off(shared: &Shared, handles: Vec<Handle>) {
    shared.gate.open(None);
    for handle in handles {
        let _ = handle.join();
    }
}

/// The coordinating thread's part once the gate is open: waits out the warm-up, opens the
/// window, cuts intervals, closes the window and tells the producers to stop.
fn window<K: record::Kind, E: Engine<K>>(
    kind: Kind,
    settings: &Settings,
    plan: &Plan,
    engine: &E,
    shared: &Shared,
    interrupted: &AtomicBool,
) -> Window {
    let flags = &shared.flags;
    let progress = Progress::new(kind, settings, &shared.slots);
    let mut interrupt = !progress.wait_until(plan.measure_from, "warm-up", flags, interrupted);
    let warmup_only = interrupt;
    let before = shared.issued();
    let frontier_before = engine.frontier();
    // Relaxed: see `Flags`.
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
        interrupt = !progress.wait_until(next, "measuring", flags, interrupted);
        if settings.interval.is_some() {
            let now = Instant::now();
            intervals.push(cut.next(from, now, &shared.slots, engine));
        }
        if Instant::now() >= close || flags.stop.load(Ordering::Relaxed) {
            break;
        }
    }
    let after = shared.issued();
    let to = Instant::now();
    let frontier = frontier_before.zip(engine.frontier());
    flags.stop.store(true, Ordering::Relaxed);
    progress.finish();
    Window {
        commits: after.iter().zip(&before).map(|(a, b)| a - b).sum(),
        idle_producers: after.iter().zip(&before).filter(|(a, b)| a == b).count(),
        length: to - from,
        opened,
        intervals,
        interrupted: interrupt,
        warmup_only,
        frontier,
    }
}

/// Waits for every producer to leave its loop. One still inside a commit `within` after the
/// window closed means the engine stopped taking commits: that is the error, with where the
/// engine stands (`progress`).
fn stopped(
    shared: &Shared,
    within: Duration,
    progress: impl FnOnce() -> Option<String>,
) -> Result<(), Failure> {
    let producers = shared.slots.len();
    let since = Instant::now();
    // Acquire: pairs with each producer's count-out (`producer::thread`).
    while shared.left.load(Ordering::Acquire) > 0 {
        if since.elapsed() > within {
            let stuck = shared.left.load(Ordering::Acquire);
            let at = progress().map(|p| format!(" ({p})")).unwrap_or_default();
            return Err(format!(
                "{stuck} of {producers} producers were still inside a commit {} s after the window closed: \
                 the engine stopped taking commits{at}; giving up",
                within.as_secs()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_still_in_its_commit_after_the_window_is_an_error_for_main() {
        let shared = Shared::new(3);
        // Two of the three producers have left; one is still inside its commit.
        shared.left.fetch_sub(2, Ordering::AcqRel);
        let error = stopped(&shared, Duration::from_millis(20), || Some("frontier at 7".to_owned()))
            .expect_err("a producer never left");
        let message = error.to_string();
        assert!(message.starts_with("1 of 3 producers were still inside a commit"), "{message}");
        assert!(message.contains("stopped taking commits (frontier at 7); giving up"), "{message}");

        shared.left.fetch_sub(1, Ordering::AcqRel);
        assert!(stopped(&shared, Duration::from_millis(20), || None).is_ok());
    }
}
