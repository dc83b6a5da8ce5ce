//! loadgen: drives lockstep and three reference designs with the same synthetic workload, and
//! reports throughput, latency percentiles, memory and segment layout side by side.
//!
//! `cli` is the command line; `workload` makes paths and records; `engine` holds the engines
//! behind one trait; `run` drives one engine and measures; `align` checks layouts; `report`,
//! `json`, `hgrm` and `plot` write the results.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

mod align;
mod cli;
mod engine;
mod hgrm;
mod json;
mod latency;
mod plot;
mod report;
mod rss;
mod run;
mod workload;

/// Built without transparent huge pages (the `no_thp` feature): on the development VM, the first
/// touch of a fresh 2 MiB huge page zeroes it inside a page fault that can cost the faulting
/// thread milliseconds, which put millisecond stalls into every engine's latency tail
/// (perf/README.md, "the allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs shorter than this (warm-up included) get no progress bar.
const PROGRESS_ABOVE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let args = cli::Args::parse_checked();
    let settings = run::Settings {
        engine: engine::Config {
            producers: args.producers,
            shards: args.shards,
            divisor: args.divisor,
            max_level: args.max_level,
            queue_capacity: args.queue_capacity,
            pin: args.pinned(),
        },
        duration: args.duration,
        warmup: args.warmup,
        rate: args.rate,
        // Progress goes to stderr, and only when a person is watching.
        progress: std::io::stdout().is_terminal() && args.warmup + args.duration > PROGRESS_ABOVE,
    };
    let workload =
        workload::Workload::new(args.paths, args.distribution, args.record_bytes, args.parts_per_commit);

    let mut runs = Vec::new();
    for kind in args.choice().kinds() {
        match run::run(kind, &settings, &workload) {
            Ok(measured) => runs.push(measured),
            Err(error) => {
                eprintln!("loadgen: engine {kind}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }

    print!("{}", report::render(&settings, &workload, &runs));

    let mut ok = true;
    if let Some(path) = &args.json {
        let document = json::document(&args, &settings, &workload, &runs);
        ok &= wrote("JSON report", path.display(), json::write(path, &document));
    }
    if let Some(prefix) = &args.hgrm {
        for measured in &runs {
            for (kind, histogram) in
                [("commit", &measured.commit_latency), ("visible", &measured.visible_latency)]
            {
                let path = format!("{prefix}.{}.{kind}.hgrm", measured.kind);
                ok &= wrote("percentile distribution", &path, std::fs::write(&path, hgrm::render(histogram)));
            }
        }
    }
    if let Some(path) = &args.plot {
        ok &= wrote("latency chart", path.display(), plot::draw(path, &runs));
    }

    // A misaligned lockstep layout or an engine that lost data is a failed run; the baselines'
    // misalignment is expected and is only reported.
    let lockstep_misaligned = runs.iter().any(|m| {
        m.kind == engine::Kind::Lockstep && m.finish.layout.as_ref().is_some_and(|layout| !layout.aligned())
    });
    let lost = runs.iter().any(|m| !m.nothing_lost());
    if ok && !lockstep_misaligned && !lost {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Reports where an output went, or why it did not; true if it was written.
fn wrote<E: std::fmt::Display>(what: &str, path: impl std::fmt::Display, result: Result<(), E>) -> bool {
    match result {
        Ok(()) => {
            eprintln!("loadgen: wrote {what} to {path}");
            true
        }
        Err(error) => {
            eprintln!("loadgen: cannot write {what} to {path}: {error}");
            false
        }
    }
}
