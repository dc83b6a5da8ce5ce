//! render: the perf results as tables and charts, from the JSON reports the perf scripts keep
//! under perf/results.
//!
//! - The matrix (`perf/run.sh`): `table.md`, one row per configuration and engine, medians of
//!   the runs; `throughput.svg`, records/s per configuration and engine; `latency.svg`,
//!   commit-call and commit-to-visible p50, p99 and p99.9 on a log scale.
//! - The targets (`perf/targets.sh`, under `targets/`): `targets.md`, one row per target with
//!   its goal, median, verdict and every run's figure; `targets/f.rss.svg`, resident memory over
//!   the long run.
//!
//! One run's latency curves are the loadgen's own `--plot`: it alone holds the whole
//! histograms. This draws what only a set of runs shows, with the same colour per engine.
//!
//! ```sh
//! cargo run --release -p loadgen --bin render -- [--results DIR] [--targets-only | --matrix-only]
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

mod charts;
mod matrix;
mod numbers;
// The loadgen's palette, so an engine has one colour in every chart.
#[path = "../../palette.rs"]
mod palette;
mod results;
mod svg;
mod targets;

#[derive(Debug, Parser)]
#[command(about = "Renders the loadgen results under perf/results as markdown tables and SVG charts")]
struct Args {
    /// The results directory (default: perf/results of this workspace).
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Only the targets (targets.md and targets/f.rss.svg).
    #[arg(long, conflicts_with = "matrix_only")]
    targets_only: bool,
    /// Only the matrix (table.md, throughput.svg, latency.svg).
    #[arg(long)]
    matrix_only: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let results = args
        .results
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("perf").join("results"));
    let mut ok = true;
    if !args.targets_only {
        let configs = matrix::load_matrix(&results);
        if configs.is_empty() {
            eprintln!("render: no matrix results in {}", results.display());
        } else {
            ok &= write(&results.join("table.md"), &matrix::table(&configs));
            ok &= write(&results.join("throughput.svg"), &charts::throughput(&configs));
            ok &= write(&results.join("latency.svg"), &charts::latencies(&configs));
        }
    }
    if !args.matrix_only {
        let out = results.join("targets");
        match out.is_dir().then(|| targets::render(&out)).flatten() {
            Some((page, chart)) => {
                if let Some(chart) = chart {
                    ok &= write(&out.join("f.rss.svg"), &chart);
                }
                ok &= write(&results.join("targets.md"), &page);
            }
            None => eprintln!("render: no target runs in {}, no targets rendered", out.display()),
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes `text` to `path`, with a final newline; says so, or why not.
fn write(path: &Path, text: &str) -> bool {
    let text = if text.ends_with('\n') { text.to_owned() } else { format!("{text}\n") };
    match std::fs::write(path, text) {
        Ok(()) => {
            println!("render: wrote {}", path.display());
            true
        }
        Err(error) => {
            eprintln!("render: cannot write {}: {error}", path.display());
            false
        }
    }
}
