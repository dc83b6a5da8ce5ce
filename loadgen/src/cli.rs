//! The command line: every flag, its default, its range, and the checks across flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::engine::Choice;
use crate::workload::Distribution;

/// Drives lockstep, and simpler designs built in the same binary, with one synthetic workload,
/// and prints throughput, latency percentiles, memory and the layout of the compacted segments.
///
/// Each producer thread commits `--parts-per-commit` parts (a path and a `--record-bytes`
/// record) per commit, with paths drawn by `--distribution` from `--paths` names. Figures cover
/// `--duration` after a `--warmup`. Two modes: a closed loop (the default: each producer starts
/// its next commit when the previous one returns, for peak throughput) and a fixed rate
/// (`--rate N` commits a second, open loop, latency counted from each commit's intended start so
/// that stalls are not hidden, as wrk2 does).
///
/// Engines (`--engine`, run one after another with `all`): `lockstep`; `mutex`, one global
/// lock around the commit counter and a per-path index with a count-driven compaction check on
/// each insert (the commit-callback design lockstep replaces); `channel`, a thread per shard fed
/// by crossbeam channels, compacting each path by count; `raw`, the same records handed through
/// crossbeam ArrayQueues to consumers that only count them (the limit for moving records
/// between threads). Compacted top-level segments are discarded, and only each path's newest
/// stays in memory, in every engine.
///
/// Latency: "commit call" is the commit (from its intended start at a fixed rate);
/// "commit-to-visible" runs until the engine shows the commit: for lockstep, until
/// `pipeline.snapshot()`'s frontier covers it (the report says what it means for each engine).
///
/// Exit status: 0; 1 if lockstep's segments are not all on the aligned grid, if an engine ends
/// without every commit or record it was handed, or on an error; 2 for a bad command line.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, long_about)]
pub struct Args {
    /// Which engine to drive, or all of them one after another.
    ///
    /// With `all`, the engines run in this order in one process, with the same workload, and the
    /// report adds lockstep's ratios to each of the others.
    #[arg(long, value_enum, default_value_t = Choice::Lockstep)]
    pub engine: Choice,

    /// Same as `--engine all`.
    #[arg(long, conflicts_with = "engine")]
    pub compare: bool,

    /// Producer threads, each committing on its own (1 to 1024).
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub producers: usize,

    /// Shards, one thread each (1 to 1024).
    ///
    /// lockstep's shard workers, channel's consumer threads, raw's consumer threads. Paths are
    /// hashed to shards (raw ignores paths and deals records round-robin).
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub shards: usize,

    /// Compaction divisor D: D segments of one level make one of the next (at least 2).
    ///
    /// lockstep aligns a level-L segment to a multiple of D^L commits; the mutex and channel
    /// engines merge whenever a path holds D segments of a level.
    #[arg(long, default_value_t = 4, value_parser = parse_divisor)]
    pub divisor: u64,

    /// Highest compaction level; a lockstep top-level segment covers D^max-level commits
    /// (D^max-level must fit a u64).
    #[arg(long, default_value_t = 4, value_parser = RangedU64ValueParser::<u32>::new().range(0..=64))]
    pub max_level: u32,

    /// Distinct paths the commits write to, named /p/00000000, /p/00000001, …
    /// (1 to 10,000,000).
    #[arg(long, default_value_t = 10_000, value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub paths: usize,

    /// How each part's path is chosen: `uniform`, `zipf:<s>` or `sparse:<k>`.
    ///
    /// `uniform`: every path equally likely. `zipf:<s>`: the path of rank r (rank 1 is
    /// /p/00000000) with probability proportional to 1/r^s, a few hot paths and a long tail
    /// (s > 0, e.g. zipf:1.1). `sparse:<k>`: the paths are split into k
    /// groups (path i is in group i mod k) and a producer's c-th commit draws its paths
    /// uniformly from group c mod k, so each path is written at most every k-th commit;
    /// `sparse:2` is the seed's odd-commit case. With one producer, c is the commit number; with
    /// several, each producer cycles through the groups on its own, so a path is still written by
    /// only one commit in k on average but not at exact multiples.
    #[arg(long, default_value = "uniform", value_parser = clap::value_parser!(Distribution))]
    pub distribution: Distribution,

    /// Parts (path, record) in each commit; paths are drawn independently, so a commit may name
    /// one twice (1 to 65,536).
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    pub parts_per_commit: usize,

    /// Payload bytes per record (0 to 1,048,576).
    ///
    /// Each record is an Arc<[u8]> from a pool made before the run, handed over by reference and
    /// never copied, in every engine.
    #[arg(long, default_value_t = 16, value_parser = RangedU64ValueParser::<usize>::new().range(0..=1 << 20))]
    pub record_bytes: usize,

    /// How long to measure each engine, after its warm-up: e.g. 3s, 500ms, 1m.
    #[arg(long, default_value = "3s", value_parser = parse_positive_duration)]
    pub duration: Duration,

    /// How long each engine runs before measuring (excluded from every figure): e.g. 1s, 0s.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Fixed rate: commits per second, all producers together (1 to 1,000,000,000); without it,
    /// a closed loop.
    ///
    /// The rate is split evenly across producers. Latency counts from each commit's intended
    /// start, so an engine that cannot keep up shows growing latency instead of hiding it
    /// (coordinated omission corrected, as wrk2 does); commits due but never started by the end
    /// are counted as missed.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<u64>,

    /// Pin shard worker (or consumer) i to core i.
    ///
    /// Quietly left unpinned where the OS refuses or there are fewer cores than shards.
    #[arg(long, overrides_with = "no_pin")]
    pub pin: bool,

    /// Leave shard workers and consumers unpinned (the default).
    #[arg(long, overrides_with = "pin")]
    pub no_pin: bool,

    /// Parts each (producer, shard) queue holds (1 to 1,048,576).
    ///
    /// lockstep's and raw's queues; each of channel's per-shard channels holds this times
    /// --producers, the same in total. A producer waits when its queue is full.
    #[arg(long, default_value_t = 4096, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1 << 20))]
    pub queue_capacity: usize,

    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Also write HdrHistogram percentile-distribution files (.hgrm), values in microseconds.
    ///
    /// One per engine and latency: PREFIX.ENGINE.commit.hgrm and PREFIX.ENGINE.visible.hgrm.
    /// Any HdrHistogram plotter reads them.
    #[arg(long, value_name = "PREFIX")]
    pub hgrm: Option<String>,

    /// Also draw the latency percentile curves of every engine run on one SVG chart.
    ///
    /// The x axis is the percentile on a log scale of 1/(1-p), as HdrHistogram plots are; the
    /// commit call is drawn solid, commit-to-visible dashed.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

impl Args {
    /// Parses the command line; a bad one prints clap's message and exits with status 2.
    pub fn parse_checked() -> Self {
        let args = Self::parse();
        if let Err((kind, message)) = args.check() {
            Self::command().error(kind, message).exit();
        }
        args
    }

    /// The checks that involve more than one flag.
    pub fn check(&self) -> Result<(), (ErrorKind, String)> {
        if self.divisor.checked_pow(self.max_level).is_none() {
            return Err((
                ErrorKind::ValueValidation,
                format!(
                    "--divisor {d} with --max-level {l}: {d}^{l} overflows u64; lower one of them",
                    d = self.divisor,
                    l = self.max_level
                ),
            ));
        }
        if let Distribution::Sparse(k) = self.distribution {
            if k > self.paths as u64 {
                return Err((
                    ErrorKind::ValueValidation,
                    format!(
                        "--distribution sparse:{k} needs at least {k} paths (one per group), but --paths is {}",
                        self.paths
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn choice(&self) -> Choice {
        if self.compare {
            Choice::All
        } else {
            self.engine
        }
    }

    pub fn pinned(&self) -> bool {
        self.pin && !self.no_pin
    }
}

fn parse_divisor(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(divisor) if divisor >= 2 => Ok(divisor),
        Ok(_) => Err("must be at least 2".into()),
        Err(error) => Err(error.to_string()),
    }
}

fn parse_rate(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1 commit a second (leave --rate out for a closed loop)".into()),
        Ok(rate) if rate <= 1_000_000_000 => Ok(rate),
        Ok(_) => Err("must be at most 1,000,000,000 commits a second".into()),
        Err(_) => Err("must be a whole number of commits a second, e.g. 200000".into()),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("{error} (write e.g. 3s, 500ms, 1m)"))
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("must be longer than zero".into()),
        duration => Ok(duration),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        let args = Args::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        args.check().map_err(|(_, message)| message)?;
        Ok(args)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_are_a_closed_loop_of_lockstep() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.choice(), Choice::Lockstep);
        assert_eq!(args.rate, None);
        assert_eq!(args.distribution, Distribution::Uniform);
        assert!(!args.pinned());
    }

    #[test]
    fn every_documented_flag_is_accepted() {
        let args = parse(&[
            "--engine",
            "all",
            "--producers",
            "2",
            "--shards",
            "2",
            "--divisor",
            "2",
            "--max-level",
            "3",
            "--paths",
            "100",
            "--distribution",
            "zipf:1.1",
            "--parts-per-commit",
            "4",
            "--record-bytes",
            "64",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--rate",
            "200000",
            "--pin",
            "--queue-capacity",
            "256",
            "--json",
            "/tmp/x.json",
            "--hgrm",
            "/tmp/x",
            "--plot",
            "/tmp/x.svg",
        ])
        .unwrap();
        assert_eq!(args.choice(), Choice::All);
        assert_eq!(args.distribution, Distribution::Zipf(1.1));
        assert_eq!(args.duration, Duration::from_secs(2));
        assert_eq!(args.rate, Some(200_000));
        assert!(args.pinned());
        assert!(!parse(&["--pin", "--no-pin"]).unwrap().pinned());
        assert_eq!(parse(&["--compare"]).unwrap().choice(), Choice::All);
        assert_eq!(parse(&["--distribution", "sparse:2"]).unwrap().distribution, Distribution::Sparse(2));
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["--engine", "foo"][..],
            &["--distribution", "zipf:x"],
            &["--distribution", "sparse:0"],
            &["--rate", "0"],
            &["--rate", "-5"],
            &["--producers", "0"],
            &["--divisor", "1"],
            &["--duration", "0s"],
            &["--duration", "3"],
            &["--warmup", "soon"],
            &["--divisor", "10", "--max-level", "20"],
            &["--paths", "3", "--distribution", "sparse:4"],
            &["--compare", "--engine", "mutex"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
