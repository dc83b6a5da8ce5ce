//! `loadgen compare BASELINE NEW`: two saved JSON reports compared without running anything,
//! as critcmp compares criterion baselines and `vegeta report` reads saved results.
//!
//! Either side is a report file (`--json FILE`) or the name of a baseline saved with
//! `--save-baseline NAME`. The comparison is the one `--baseline` prints after a run
//! ([`crate::baseline`]): refused when the workloads differ, medians and noise when the runs
//! were repeated. Exit status: 0; 1 when `--fail-on-regression PCT` finds a regression; 2 when a
//! report cannot be read or the workloads differ.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use serde_json::Value;

use crate::baseline::{self, Unreadable};

/// Compares two saved loadgen reports, figure by figure, without running anything.
///
/// Each side is a JSON report (written by --json or --save-baseline) or the name of a saved
/// baseline. Reports of different workloads are refused, naming each setting that differs.
/// With repeated runs (--repeat N), each side's figure is the median of its runs and its noise
/// half their range; a throughput counts as regressed only when its drop exceeds both
/// --fail-on-regression and the noise of the two sides together.
///
/// Exit status: 0; 1 on a regression beyond --fail-on-regression; 2 when a report cannot be
/// read or the workloads differ.
#[derive(Debug, Parser)]
#[command(name = "loadgen compare", version, about, long_about)]
pub struct CompareArgs {
    /// The baseline: a report file, or the name of a baseline saved with --save-baseline.
    #[arg(value_name = "BASELINE")]
    pub baseline: String,

    /// The report compared with it: a file or a saved baseline's name.
    #[arg(value_name = "NEW")]
    pub new: String,

    /// Exit with status 1 when any engine's records/s dropped by more than PCT percent (0 to
    /// 100) and by more than the noise.
    #[arg(long, value_name = "PCT", value_parser = crate::cli::parse_percent)]
    pub fail_on_regression: Option<f64>,
}

/// Reads one side: a file if there is one at `given`, else a saved baseline of that name.
fn side(given: &str) -> Result<Value, String> {
    match baseline::read(Path::new(given)) {
        Ok(report) => Ok(report),
        Err(Unreadable::Other(why)) => Err(why),
        Err(Unreadable::Missing) => {
            let dir = baseline::dir();
            if crate::cli::parse_baseline_name(given).is_ok() && baseline::path(&dir, given).exists() {
                baseline::load(&dir, given)
            } else {
                Err(format!(
                    "{given}: no such report file, and no baseline of that name in {} (save one with --save-baseline)",
                    dir.display()
                ))
            }
        }
    }
}

/// Runs `loadgen compare` with `args` (its own name first).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = match CompareArgs::try_parse_from(args) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    let (then, now) = match side(&args.baseline).and_then(|then| Ok((then, side(&args.new)?))) {
        Ok(sides) => sides,
        Err(message) => {
            eprintln!("loadgen compare: {message}");
            return ExitCode::from(2);
        }
    };
    let (then_name, now_name) = (args.baseline.as_str(), args.new.as_str());
    if let Err(message) = baseline::same_workload((then_name, &then), (now_name, &now)) {
        eprintln!("loadgen compare: {message}");
        return ExitCode::from(2);
    }
    let comparison = baseline::compare(&then, &now);
    print!("{}", comparison.render((then_name, &then), (now_name, &now), args.fail_on_regression));
    let Some(pct) = args.fail_on_regression else { return ExitCode::SUCCESS };
    let regressions = comparison.regressions(pct);
    for row in &regressions {
        println!(
            "REGRESSION: {} dropped {:.1}% (more than --fail-on-regression {pct}% and the noise)",
            row.figure,
            -row.change().unwrap_or(0.0)
        );
    }
    if regressions.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
