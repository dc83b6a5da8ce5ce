//! loadgen: drives lockstep and three reference designs with the same synthetic workload, and
//! reports throughput (beside the machine's hand-off limit, measured in the same run), latency
//! percentiles, memory and segment layout side by side.
//!
//! `loadgen compare A B` compares two saved reports without running anything (`compare`).
//!
//! The modules, in the order a run uses them: `cli` is the command line; `output` opens every
//! output before the run; `record` the record kinds; `workload` makes paths and records (drawn
//! with `rng` and `zipf`); `limit` measures the hand-off limit; `engine` holds the engines
//! behind one trait; `run` drives one engine and measures (`latency` and `rss` are its
//! instruments); `align` checks layouts; `report`, `json`, `hgrm`, `hlog`, `plot` and
//! `baseline` write and compare the results, with the numbers as `format` prints them.
//!
//! Nothing below `main` exits the process: a failure is an error value that reaches `main`,
//! which prints it, writes what was measured before it to the outputs already opened, and
//! exits with status 1.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

mod align;
mod baseline;
mod cli;
mod compare;
mod durable;
mod engine;
mod format;
mod hgrm;
mod hlog;
mod json;
mod latency;
mod limit;
mod output;
mod palette;
mod plot;
mod record;
mod report;
mod rng;
mod rss;
mod run;
mod workload;
mod zipf;

/// Built without transparent huge pages (the `no_thp` feature): the first touch of a fresh huge
/// page zeroes all of it inside the page fault, which stalls the faulting thread and put those
/// stalls into every engine's latency tail (measured in perf/README.md, "What changed since
/// `906c0b6`", item 1).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set by the first Ctrl-C: the current window closes, the remaining engines are skipped, and
/// what was measured is printed and written.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Exit status after Ctrl-C, as shells report a SIGINT.
const INTERRUPTED_STATUS: u8 = 130;

/// What the engines measured, up to the first failure if one failed.
struct Measurement {
    limit: Option<limit::Limit>,
    /// The disk's limit in `--durable DIR`.
    disk: Option<durable::Disk>,
    /// Each engine's median repetition, in the order the engines ran.
    runs: Vec<run::Measured>,
    /// Each engine's records/s, repetition by repetition (same order as `runs`).
    samples: Vec<Vec<f64>>,
    /// Something failed (its message is printed): the engines after it did not run.
    failed: bool,
}

fn main() -> ExitCode {
    // `loadgen compare A B`: saved reports, nothing run.
    let argv: Vec<OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|first| first == "compare") {
        return compare::main(argv.into_iter().skip(1));
    }
    let args = match cli::Args::parse_checked() {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    let kinds = args.choice().kinds();
    let settings = settings(&args);
    let workload =
        workload::Workload::new(args.paths, args.distribution, args.record_bytes(), args.parts_per_commit);
    let mut outputs = match output::Outputs::open(&args, &kinds) {
        Ok(outputs) => outputs,
        Err(message) => {
            eprintln!("loadgen: {message}");
            return ExitCode::from(2);
        }
    };
    // A baseline of another workload is refused now, not after the run.
    if let Some((name, saved)) = &outputs.baseline {
        let planned = serde_json::to_value(json::config(&args, &settings, &workload))
            .map(|config| serde_json::json!({ "config": config }));
        let refused = planned.map_err(|e| e.to_string()).and_then(|planned| {
            baseline::same_workload((&format!("baseline {name:?}"), saved), ("this run", &planned))
        });
        if let Err(message) = refused {
            eprintln!("loadgen: {message}");
            return ExitCode::from(2);
        }
    }
    let handler = ctrlc::set_handler(|| {
        // Relaxed: a flag polled by the coordinating thread.
        if INTERRUPTED.swap(true, Ordering::Relaxed) {
            eprintln!("\nloadgen: interrupted again; quitting without results");
            std::process::exit(i32::from(INTERRUPTED_STATUS));
        }
        eprintln!(
            "\nloadgen: interrupted; closing the window and reporting what was measured (Ctrl-C again quits)"
        );
    });
    if let Err(error) = handler {
        eprintln!("loadgen: cannot catch Ctrl-C ({error}); an interrupted run will report nothing");
    }

    let started = SystemTime::now();
    let measurement = measure(&args, &settings, &workload, &kinds);
    let interrupted = INTERRUPTED.load(Ordering::Relaxed);
    if interrupted && !measurement.failed {
        let skipped: Vec<&str> = kinds
            .iter()
            .filter(|k| !measurement.runs.iter().any(|m| m.kind == **k))
            .map(|k| k.name())
            .collect();
        if !skipped.is_empty() {
            warn(&format!(
                "interrupted by Ctrl-C: not measured: {}; nothing is written for them",
                skipped.join(", ")
            ));
        }
    }
    if measurement.runs.is_empty() && (interrupted || measurement.failed) {
        warn("no engine was measured: no report, and no file written");
        return if measurement.failed { ExitCode::FAILURE } else { ExitCode::from(INTERRUPTED_STATUS) };
    }
    let (written, regressed) =
        write(&args, &settings, &workload, started, &measurement, interrupted, &mut outputs);

    // A misaligned lockstep layout or an engine that lost data is a failed run; the baselines'
    // misalignment is expected and is only reported.
    let runs = &measurement.runs;
    let lockstep_misaligned = runs.iter().any(|m| {
        m.kind == engine::Kind::Lockstep && m.finish.layout.as_ref().is_some_and(|layout| !layout.aligned())
    });
    let lost = runs.iter().any(|m| !m.nothing_lost());
    let unmeasured = runs.iter().any(|m| !m.problems.is_empty());
    if measurement.failed {
        ExitCode::FAILURE
    } else if interrupted {
        ExitCode::from(INTERRUPTED_STATUS)
    } else if written && !lockstep_misaligned && !lost && !unmeasured && !regressed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A note on stderr, unless `--quiet`.
fn note(args: &cli::Args, text: &str) {
    if !args.quiet {
        eprintln!("loadgen: {text}");
    }
}

/// A warning on stderr, even with `--quiet`: something the user must know about the figures.
fn warn(text: &str) {
    eprintln!("loadgen: {text}");
}

fn settings(args: &cli::Args) -> run::Settings {
    run::Settings {
        engine: engine::Config {
            producers: args.producers,
            shards: args.shards,
            divisor: args.divisor,
            max_level: args.max_level,
            queue_capacity: args.queue_capacity,
            pin: args.pinned(),
            retain_all: args.retain_all,
            durable: args.durable.as_ref().map(|dir| engine::DurableConfig {
                dir: dir.clone(),
                durability: args.durability,
                keep: args.keep_durable,
                wait_latency: args.rate.is_some(),
            }),
            nats: (args.choice() == engine::Choice::Nats).then(|| engine::nats::NatsConfig {
                url: args.nats.clone(),
                in_flight: args.in_flight.unwrap_or(cli::DEFAULT_IN_FLIGHT),
                parts_per_commit: args.parts_per_commit,
            }),
        },
        record: args.record,
        duration: args.duration,
        warmup: args.warmup,
        rate: args.rate,
        // Progress goes to stderr, whenever a person is watching it.
        progress: args.progress || (!args.quiet && std::io::stderr().is_terminal()),
        interval: (args.hlog.is_some() || args.plot.is_some()).then_some(args.hlog_interval),
    }
}

/// The hand-off limit, then each engine in turn (`--repeat` rounds of them), until Ctrl-C or
/// the first failure.
fn measure(
    args: &cli::Args,
    settings: &run::Settings,
    workload: &workload::Workload,
    kinds: &[engine::Kind],
) -> Measurement {
    let mut measurement =
        Measurement { limit: None, disk: None, runs: Vec::new(), samples: Vec::new(), failed: false };
    if !args.no_limit {
        let measured = if args.choice() == engine::Choice::Nats {
            note(
                args,
                &format!(
                    "measuring the limit, JetStream alone (the same messages published and consumed, no pipeline), for {:.1} s",
                    engine::nats::LIMIT_FOR.as_secs_f64()
                ),
            );
            engine::nats::measure_limit_record(args.record, &settings.engine, workload, &INTERRUPTED)
        } else {
            note(
                args,
                &format!(
                    "measuring the hand-off limit of {} items for {:.0} s",
                    args.record,
                    limit::MEASURE_FOR.as_secs_f64()
                ),
            );
            limit::measure_record(args.record, workload, args.queue_capacity, &INTERRUPTED)
        };
        match measured {
            Ok(limit) => measurement.limit = Some(limit),
            Err(error) => {
                eprintln!("loadgen: the hand-off limit: {error}");
                measurement.failed = true;
                return measurement;
            }
        }
    }
    if let Some(dir) = &args.durable {
        note(
            args,
            &format!(
                "measuring the disk in {} for {:.1} s (appends, then 4 KiB appends + fdatasync)",
                dir.display(),
                2.0 * durable::DISK_FOR.as_secs_f64()
            ),
        );
        match durable::measure_disk(dir) {
            Ok(disk) => measurement.disk = Some(disk),
            Err(error) => {
                eprintln!("loadgen: the disk's limit: {error}");
                measurement.failed = true;
                return measurement;
            }
        }
    }
    // Round after round, so a slow spell of the machine spreads over every engine's runs
    // rather than landing on one engine's.
    let mut all: Vec<Vec<run::Measured>> = kinds.iter().map(|_| Vec::new()).collect();
    'rounds: for round in 0..args.repeat {
        for (k, &kind) in kinds.iter().enumerate() {
            // Relaxed: see `INTERRUPTED`.
            if INTERRUPTED.load(Ordering::Relaxed) {
                break 'rounds;
            }
            if args.repeat > 1 {
                note(args, &format!("{kind}: run {} of {}", round + 1, args.repeat));
            }
            match run::run(kind, settings, workload, &INTERRUPTED) {
                // Ctrl-C in the warm-up: nothing was measured, so nothing is reported.
                Ok(measured) if measured.warmup_only => break 'rounds,
                Ok(measured) => all[k].push(measured),
                Err(error) => {
                    eprintln!("loadgen: engine {kind}: {error}");
                    measurement.failed = true;
                    break 'rounds;
                }
            }
        }
    }
    for runs in all.into_iter().filter(|runs| !runs.is_empty()) {
        let samples: Vec<f64> = runs.iter().map(run::Measured::records_per_sec).collect();
        measurement.runs.push(median_run(runs));
        measurement.samples.push(samples);
    }
    measurement
}

/// The run whose records/s is the median (the lower of the two middle ones for an even count):
/// its latencies, layout and checks stand for the engine.
fn median_run(mut runs: Vec<run::Measured>) -> run::Measured {
    runs.sort_by(|a, b| a.records_per_sec().total_cmp(&b.records_per_sec()));
    let middle = (runs.len() - 1) / 2;
    runs.swap_remove(middle)
}

/// Prints the report and writes every output asked for. Returns whether every output was
/// written, and whether a throughput fell below `--fail-on-regression`.
fn write(
    args: &cli::Args,
    settings: &run::Settings,
    workload: &workload::Workload,
    started: SystemTime,
    measurement: &Measurement,
    interrupted: bool,
    outputs: &mut output::Outputs,
) -> (bool, bool) {
    let runs = &measurement.runs;
    let results = json::Results {
        limit: measurement.limit.as_ref(),
        disk: measurement.disk.as_ref(),
        runs,
        samples: &measurement.samples,
        interrupted,
    };
    // With an output on stdout, the table goes to stderr, so stdout holds that output alone.
    let mut table: Box<dyn Write> =
        if outputs.stdout_taken() { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let _ = table.write_all(report::render(settings, workload, &results).as_bytes());
    // Loud, and on stderr too, even with --quiet: figures of an overloaded engine mislead.
    for warning in report::overload_warnings(settings, runs) {
        warn(&warning);
    }

    let mut ok = true;
    let mut wrote = |what: &str, dest: &str, result: Result<(), String>| match result {
        Ok(()) => note(args, &format!("wrote {what} to {dest}")),
        Err(error) => {
            eprintln!("loadgen: cannot write {what} to {dest}: {error}");
            ok = false;
        }
    };
    let document = json::document(args, settings, workload, results);
    let document_text = json::text(&document);
    if let Some(dest) = &mut outputs.json {
        let result = document_text.clone().and_then(|text| dest.write(text.as_bytes()));
        wrote("JSON report", &dest.describe(), result);
    }
    for (kind, latency, target) in &mut outputs.hgrm {
        // Only the engines measured: no empty file for one that did not run.
        let Some(measured) = runs.iter().find(|m| m.kind == *kind) else { continue };
        let histogram =
            if *latency == "commit" { &measured.commit_latency } else { &measured.visible_latency };
        let result = target.write(hgrm::render(histogram).as_bytes());
        wrote("percentile distribution", &target.path.display().to_string(), result);
    }
    if let Some(dest) = &mut outputs.plot {
        let title = plot::title(settings, workload);
        let result = plot::render(&title, runs).and_then(|svg| dest.write(svg.as_bytes()));
        wrote("latency chart", &dest.describe(), result);
    }
    if let Some(dest) = &mut outputs.hlog {
        let timed: Vec<_> = runs.iter().map(|m| (m.opened, m)).collect();
        let result = hlog::render(started, &timed).and_then(|text| dest.write(&text));
        wrote("interval log", &dest.describe(), result);
    }
    if let Some(target) = &mut outputs.save_baseline {
        let path = target.path.display().to_string();
        if interrupted {
            // A baseline is what later runs are judged by: never a run cut short.
            warn(&format!("interrupted: the baseline was not saved to {path}"));
        } else {
            let result = document_text.clone().and_then(|text| target.write(text.as_bytes()));
            wrote("baseline", &path, result);
        }
    }
    let mut regressed = false;
    if let Some((name, saved)) = &outputs.baseline {
        match serde_json::to_value(&document) {
            Ok(now) => {
                let comparison = baseline::compare(saved, &now);
                let then = format!("baseline {name:?}");
                let _ = writeln!(table);
                let rendered = comparison.render((&then, saved), ("this run", &now), args.fail_on_regression);
                let _ = table.write_all(rendered.as_bytes());
                if let Some(pct) = args.fail_on_regression {
                    let regressions = comparison.regressions(pct);
                    for row in &regressions {
                        let _ = writeln!(
                            table,
                            "REGRESSION: {} dropped {:.1}% (more than --fail-on-regression {pct}% and the noise)",
                            row.figure,
                            -row.change().unwrap_or(0.0)
                        );
                    }
                    regressed = !regressions.is_empty();
                }
            }
            Err(error) => {
                eprintln!("loadgen: cannot compare with baseline {name:?}: {error}");
                ok = false;
            }
        }
    }
    (ok, regressed)
}
