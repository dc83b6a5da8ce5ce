//! loadgen: drives a lockstep pipeline with a synthetic workload and reports throughput,
//! commit-call latency, commit-to-visible latency, and whether the result is aligned.
//!
//! `main.rs` is the command line; `workload` makes paths and records, `run` drives the
//! pipeline and measures, `align` checks the final layout, `report` prints.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

mod align;
mod report;
mod run;
mod workload;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Drives a lockstep pipeline with a synthetic workload and prints throughput and latency.
///
/// Each producer thread commits in a closed loop (the next commit starts when the previous one
/// returns) until the deadline. A commit names `--parts-per-commit` paths drawn uniformly from
/// `--paths`, each with a `--record-bytes` record. Compacted top-level segments go to a sink
/// that discards them and only each path's newest one stays in memory, so long runs hold steady
/// memory. Figures cover the time after the warm-up. After shutdown every segment of every path
/// is checked to lie on the aligned grid; the exit status is 1 if it does not.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, long_about)]
struct Args {
    /// Producer threads, each with its own lockstep producer (1 to 1024).
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    producers: usize,

    /// Shard workers, one thread each; paths are hashed to shards (1 to 1024).
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    shards: usize,

    /// Compaction divisor D: D level-L segments make one level-L+1 segment (at least 2).
    #[arg(long, default_value_t = 4, value_parser = parse_divisor)]
    divisor: u64,

    /// Highest compaction level; a top segment covers D^max-level commits (D^max-level must fit
    /// a u64).
    #[arg(long, default_value_t = 4, value_parser = RangedU64ValueParser::<u32>::new().range(0..=64))]
    max_level: u32,

    /// Distinct paths the commits write to, named /p/00000000, /p/00000001, … (1 to 10,000,000).
    #[arg(long, default_value_t = 10_000, value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    paths: usize,

    /// Parts (path, record) in each commit; paths are drawn independently, so a commit may name
    /// one twice (1 to 65,536).
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    parts_per_commit: usize,

    /// Payload bytes per record (0 to 1,048,576).
    #[arg(long, default_value_t = 16, value_parser = RangedU64ValueParser::<usize>::new().range(0..=1 << 20))]
    record_bytes: usize,

    /// How long to measure, after the warm-up: e.g. 3s, 500ms, 1m.
    #[arg(long, default_value = "3s", value_parser = parse_positive_duration)]
    duration: Duration,

    /// How long to run before measuring (excluded from every figure): e.g. 1s, 0s.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,

    /// Parts each (producer, shard) queue holds; a producer waits when its queue is full
    /// (1 to 1,048,576).
    #[arg(long, default_value_t = 4096, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1 << 20))]
    queue_capacity: usize,

    /// Pin shard worker i to core i (quietly unpinned where the OS refuses or cores are short).
    #[arg(long, overrides_with = "no_pin")]
    pin: bool,

    /// Leave shard workers unpinned (the default).
    #[arg(long, overrides_with = "pin")]
    no_pin: bool,
}

fn parse_divisor(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(divisor) if divisor >= 2 => Ok(divisor),
        Ok(_) => Err("must be at least 2".into()),
        Err(error) => Err(error.to_string()),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| error.to_string())
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("must be longer than zero".into()),
        duration => Ok(duration),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.divisor.checked_pow(args.max_level).is_none() {
        Args::command()
            .error(
                ErrorKind::ValueValidation,
                format!(
                    "--divisor {} with --max-level {}: {}^{} overflows u64; lower one of them",
                    args.divisor, args.max_level, args.divisor, args.max_level
                ),
            )
            .exit();
    }
    let settings = run::Settings {
        producers: args.producers,
        shards: args.shards,
        divisor: args.divisor,
        max_level: args.max_level,
        queue_capacity: args.queue_capacity,
        pin: args.pin && !args.no_pin,
        duration: args.duration,
        warmup: args.warmup,
    };
    let workload = workload::Workload::new(args.paths, args.record_bytes, args.parts_per_commit);
    // Progress goes to stderr, and only when a person is watching.
    let progress = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    match run::run(&settings, &workload, progress) {
        Ok(outcome) => {
            print!("{}", report::render(&settings, &workload, &outcome));
            if outcome.alignment.ok() && outcome.final_frontier == outcome.issued {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn bad_values_are_refused_by_clap() {
        for bad in [["--producers", "0"], ["--divisor", "1"], ["--duration", "0s"], ["--duration", "3"]] {
            let error = Args::try_parse_from(["loadgen", bad[0], bad[1]]).err();
            assert!(error.is_some(), "{bad:?} was accepted");
        }
    }
}
