//! The command line: every flag, its default, its range, and the checks across flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};

use crate::engine::Choice;
use crate::record::RecordKind;
use crate::workload::Distribution;

/// The `--durability` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityChoice {
    /// Handed to the OS (`write` returned): survives the process, not the machine.
    Written,
    /// `fdatasync`ed: survives a power cut.
    Synced,
}

impl DurabilityChoice {
    pub fn name(self) -> &'static str {
        match self {
            DurabilityChoice::Written => "written",
            DurabilityChoice::Synced => "synced",
        }
    }

    pub fn library(self) -> lockstep::Durability {
        match self {
            DurabilityChoice::Written => lockstep::Durability::Written,
            DurabilityChoice::Synced => lockstep::Durability::Synced,
        }
    }
}

/// The longest `--duration` or `--warmup` accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// `--in-flight` when it is not given.
pub const DEFAULT_IN_FLIGHT: usize = 64;
/// `--record-bytes` when it is not given.
pub const DEFAULT_RECORD_BYTES: usize = 16;

/// Drives lockstep, and simpler designs built in the same binary, with one synthetic workload,
/// and prints throughput, latency percentiles, memory and the layout of the compacted segments.
///
/// Each producer thread commits `--parts-per-commit` parts (a path and a `--record`) per commit,
/// with paths drawn by `--distribution` from `--paths` names. Figures cover `--duration` after a
/// `--warmup`. Two modes: a closed loop (the default: each producer starts its next commit when
/// the previous one returns, for peak throughput) and a fixed rate (`--rate N` commits a second,
/// open loop, latency counted from each commit's intended start so that stalls are not hidden,
/// as wrk2 does).
///
/// Before the engines, the hand-off limit is measured for about a second: the same item `raw`
/// carries, handed between two threads through one queue. Every engine's records/s is also
/// shown divided by it.
///
/// Engines (`--engine`, run one after another with `all`): `lockstep`; `mutex`, one global
/// lock around the commit counter and a per-path index with a count-driven compaction check on
/// each insert (the commit-callback design lockstep replaces); `channel`, a thread per shard fed
/// by crossbeam channels, compacting each path by count; `raw`, lockstep's transport alone (the
/// same single-writer rings, drained and woken the same way) to consumers that only read the
/// records. Compacted top-level segments are
/// discarded, and only each path's newest stays in memory, in every engine. With `--durable`:
/// `fjall`, an embedded LSM store writing every record at the matching persist mode (not part of
/// `all`). `nats`: lockstep behind NATS JetStream, each commit one message to a stream on a
/// loopback nats-server the run starts (or --nats URL), followed into a sequenced pipeline; its
/// limit row is JetStream alone, the same messages published and consumed (not part of `all`).
///
/// What is timed: in a closed loop, one commit call in about 64 (at random gaps; two clock
/// reads per sampled call, none on the others), and the same commits are followed to
/// visibility. At a fixed rate, every commit call, from its intended start (a clock read after
/// each commit and on each wait, and an uncontended lock of the producer's own histogram per
/// commit: tens of nanoseconds a commit, which the throughput includes). Commit-to-visible is measured
/// by each engine where a commit becomes visible: lockstep's own Stats::visible_latency (1 commit
/// in 16, from taking its number to the publish that shows it); the others stamp the sampled
/// commits at the point they publish them (the report says what that is for each engine).
///
/// Ctrl-C ends the run early and still prints and writes what was measured (a second Ctrl-C
/// quits at once).
///
/// Saved reports compare offline: `loadgen compare BASELINE NEW [--fail-on-regression PCT]`.
///
/// Exit status: 0; 1 if lockstep's segments are not all on the aligned grid, if an engine ends
/// without every commit or record it was handed, if a run could not be measured as asked (the
/// report says why), on a throughput regression beyond --fail-on-regression, or on an error;
/// 2 for a bad command line (an output that cannot be written and a missing baseline included,
/// refused before anything runs); 130 after Ctrl-C.
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
    ///
    /// The default, 4, is the loadgen's own, kept so that its figures compare with every
    /// earlier run; the library defaults to 8, which merges four more levels.
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

    /// What each part carries, and so what every engine does with it.
    ///
    /// `i64`: a value summed per path (lockstep's Sum), the counters and rollups case.
    /// `u64`: a value, every record kept (`Concat<u64>`). `bytes`: a fresh owned buffer of
    /// --record-bytes per part, allocated and copied on the producer's hot path. `shared`: an
    /// `Arc<[u8]>` of --record-bytes from a pool made before the run, cloned per part (a reference
    /// count incremented by the producer and decremented wherever the record is dropped).
    #[arg(long, value_enum, default_value_t = RecordKind::I64)]
    pub record: RecordKind,

    /// Payload bytes per record, for --record bytes and shared (0 to 1,048,576; default 16).
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(0..=1 << 20))]
    pub record_bytes: Option<usize>,

    /// How long to measure each engine, after its warm-up: e.g. 3s, 500ms, 1m (at most 24h).
    #[arg(long, default_value = "3s", value_parser = parse_positive_duration)]
    pub duration: Duration,

    /// How long each engine runs before measuring (excluded from every figure): e.g. 1s, 0s
    /// (at most 24h).
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

    /// Make lockstep durable, logging under DIR (created if missing; lockstep, or the fjall
    /// peer row, only).
    ///
    /// Each run logs into a fresh subdirectory of DIR, DIR/loadgen-PID-N, which the run
    /// creates (it is never an existing one), measures and then removes (keep it with
    /// --keep-durable); nothing else in DIR is touched. Before the engines, the disk's limit is
    /// measured there too: sequential append bytes/s (1 MiB writes, one fdatasync at the end)
    /// and fdatasyncs/s (a 4 KiB append + fdatasync each). A durable pipeline keeps every segment
    /// (as --retain-all) and takes no sink. At --rate, commit-to-durable is measured: from a
    /// sampled commit's intended start until `wait_durable` returns for it, in a thread of its own.
    #[arg(long, value_name = "DIR")]
    pub durable: Option<PathBuf>,

    /// With --durable: what a commit must reach to count as durable: `written` (handed to the
    /// OS; survives the process) or `synced` (fdatasync'ed; survives the machine).
    #[arg(long, value_enum, requires = "durable", default_value_t = DurabilityChoice::Written)]
    pub durability: DurabilityChoice,

    /// With --durable: keep the run's log directory (its path is printed) instead of removing it,
    /// e.g. to time reopening it.
    #[arg(long, requires = "durable")]
    pub keep_durable: bool,

    /// lockstep keeps every segment in memory and has no sink (the default is a sink that
    /// discards compacted top-level segments and a window of the newest top-level block, on
    /// disk too with --durable).
    #[arg(long)]
    pub retain_all: bool,

    /// Skip measuring the hand-off limit before the engines (no limit row, no ÷ limit ratios).
    #[arg(long)]
    pub no_limit: bool,

    /// With --engine nats: the NATS server to use (it must have JetStream), e.g.
    /// nats://127.0.0.1:4222; without it, each run starts a `nats-server -js` of its own on a
    /// free loopback port with its store in a fresh temp dir (found as $NATS_SERVER, on the
    /// PATH, or at /usr/sbin/nats-server). Each run makes a stream of its own and removes it.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,

    /// With --engine nats: commits each producer keeps in flight, published but not yet
    /// acknowledged (1 to 65,536; default 64). One commit is one message of --parts-per-commit
    /// parts.
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    pub in_flight: Option<usize>,

    /// Also write the report as JSON to FILE; `-` writes it to stdout (the table then goes to
    /// stderr); a device such as /dev/null is written as it is.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Also write HdrHistogram percentile-distribution files (.hgrm), values in microseconds.
    ///
    /// One per engine and latency: PREFIX.ENGINE.commit.hgrm and PREFIX.ENGINE.visible.hgrm;
    /// with a directory (existing, or ending in /), DIR/ENGINE.commit.hgrm and so on; a device
    /// such as /dev/null receives them all. Only engines that were measured get files. Any
    /// HdrHistogram plotter reads them.
    #[arg(long, value_name = "PREFIX")]
    pub hgrm: Option<String>,

    /// Also draw the latency of every engine run on one SVG chart (the name must end in .svg;
    /// `-` writes it to stdout and a device such as /dev/null takes it as it is).
    ///
    /// Top: percentile curves, the x axis the percentile on a log scale of 1/(1-p), as
    /// HdrHistogram plots are; the commit call solid, commit-to-visible dashed. Bottom: p50, p99
    /// and max of each --hlog-interval over the run, so stalls show where they happened.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Also write an HdrHistogram interval log to FILE (the format HdrHistogram's
    /// HistogramLogProcessor and log readers take), values in nanoseconds; `-` writes it to
    /// stdout.
    ///
    /// One histogram per --hlog-interval, engine and latency, tagged ENGINE.commit and
    /// ENGINE.visible; interval start times are seconds since the run started.
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,

    /// The interval of --hlog and of the plot's second panel (10ms to 1h).
    #[arg(long, default_value = "250ms", value_parser = parse_interval)]
    pub hlog_interval: Duration,

    /// Keep this run's JSON report as baseline NAME, in the baseline directory.
    ///
    /// The directory is $LOADGEN_BASELINE_DIR if set, else $CARGO_TARGET_DIR/loadgen-baselines,
    /// else target/loadgen-baselines under the current directory; the file is NAME.json.
    #[arg(long, value_name = "NAME", value_parser = parse_baseline_name)]
    pub save_baseline: Option<String>,

    /// Compare this run with the saved baseline NAME: each figure beside the saved one, with
    /// the change (refused before the run when the baseline's workload differs).
    ///
    /// Two saved reports compare without a run: `loadgen compare A.json B.json` (see
    /// `loadgen compare --help`).
    #[arg(long, value_name = "NAME", value_parser = parse_baseline_name)]
    pub baseline: Option<String>,

    /// With --baseline: exit with status 1 when any engine's records/s is more than PCT percent
    /// below the baseline's (0 to 100) and more than the noise (see --repeat). The limit is shown
    /// beside its baseline but not checked: it measures the machine, not the code.
    #[arg(long, value_name = "PCT", requires = "baseline", value_parser = parse_percent)]
    pub fail_on_regression: Option<f64>,

    /// Run each engine N times in this process (1 to 100), round after round, and report each
    /// engine's median run with the spread of all N (records/s).
    ///
    /// The noise model of the baseline gate: a saved report keeps every run's records/s, and a
    /// comparison calls a regression only when the medians' change exceeds both
    /// --fail-on-regression and the spread of both sides.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=100))]
    pub repeat: usize,

    /// Show progress even when stderr is not a terminal (a file, a pipe, a CI log): there, plain
    /// lines instead of a bar, one as each engine's warm-up and measured window begin and one a
    /// second after that.
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,

    /// No progress bar and no notes on stderr (errors still go there).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl Args {
    /// Parses the command line, with the checks across flags. A bad one (and `--help` or
    /// `--version`) comes back as clap's error, for main to print and exit with (status 2 for
    /// a bad one, 0 for help and version).
    pub fn parse_checked() -> Result<Self, clap::Error> {
        let args = Self::try_parse()?;
        args.check().map_err(|(kind, message)| Self::command().error(kind, message))?;
        Ok(args)
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
        if self.record_bytes.is_some() && !self.record.has_payload() {
            return Err((
                ErrorKind::ArgumentConflict,
                format!(
                    "--record-bytes sizes the payload of --record bytes or shared; --record {} carries an 8-byte value",
                    self.record
                ),
            ));
        }
        if self.warmup + self.duration > MAX_DURATION {
            return Err((
                ErrorKind::ValueValidation,
                "--warmup and --duration together must be at most 24h".to_owned(),
            ));
        }
        if self.durable.is_some() && !matches!(self.choice(), Choice::Lockstep | Choice::Fjall) {
            return Err((
                ErrorKind::ArgumentConflict,
                format!(
                    "--durable makes the lockstep pipeline durable; --engine {} has no durable mode (use --engine lockstep, or fjall for the peer row)",
                    self.choice().to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned())
                ),
            ));
        }
        if self.choice() == Choice::Fjall && (self.durable.is_none() || self.record.has_payload()) {
            return Err((
                ErrorKind::ArgumentConflict,
                "--engine fjall is the durable peer row: it needs --durable DIR and --record i64 or u64"
                    .to_owned(),
            ));
        }
        if (self.nats.is_some() || self.in_flight.is_some()) && self.choice() != Choice::Nats {
            return Err((
                ErrorKind::ArgumentConflict,
                "--nats and --in-flight are settings of the nats engine (use --engine nats)".to_owned(),
            ));
        }
        if self.retain_all && self.choice() != Choice::Lockstep {
            return Err((
                ErrorKind::ArgumentConflict,
                "--retain-all is a setting of the lockstep engine (use --engine lockstep)".to_owned(),
            ));
        }
        let to_stdout: Vec<&str> = [("--json", &self.json), ("--plot", &self.plot), ("--hlog", &self.hlog)]
            .into_iter()
            .filter(|(_, path)| path.as_deref().is_some_and(crate::output::is_stdout))
            .map(|(flag, _)| flag)
            .collect();
        if to_stdout.len() > 1 {
            return Err((
                ErrorKind::ArgumentConflict,
                format!(
                    "{} all write to stdout (`-`); send all but one of them to a file",
                    to_stdout.join(" and ")
                ),
            ));
        }
        if self.hgrm.as_deref() == Some("-") {
            return Err((
                ErrorKind::ValueValidation,
                "--hgrm - : it writes one file per engine and latency, which stdout cannot tell apart; \
                 give a prefix, a directory, or /dev/null"
                    .to_owned(),
            ));
        }
        if let Some(plot) = &self.plot {
            // `-` and a device (`/dev/null`) take the SVG whatever their name.
            let svg = plot.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"))
                || crate::output::is_stdout(plot)
                || crate::output::is_special(plot);
            if !svg {
                return Err((
                    ErrorKind::ValueValidation,
                    format!(
                        "--plot {}: the chart is written as SVG only, so the name must end in .svg",
                        plot.display()
                    ),
                ));
            }
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

    /// The durability of the run: `None` for a memory-only one.
    pub fn durability(&self) -> Option<DurabilityChoice> {
        self.durable.as_ref().map(|_| self.durability)
    }

    pub fn record_bytes(&self) -> usize {
        self.record_bytes.unwrap_or(DEFAULT_RECORD_BYTES)
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
    let duration =
        humantime::parse_duration(text).map_err(|error| format!("{error} (write e.g. 3s, 500ms, 1m)"))?;
    if duration > MAX_DURATION {
        return Err("must be at most 24h".into());
    }
    Ok(duration)
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < Duration::from_millis(10) || duration > Duration::from_secs(3600) {
        return Err("must be between 10ms and 1h".into());
    }
    Ok(duration)
}

pub fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(pct) if (0.0..=100.0).contains(&pct) => Ok(pct),
        Ok(_) => Err("must be between 0 and 100".into()),
        Err(_) => Err("must be a number of percent, e.g. 5".into()),
    }
}

/// A baseline name becomes a file name: letters, digits, `.`, `_`, `-`, not starting with `.`.
pub fn parse_baseline_name(text: &str) -> Result<String, String> {
    let fine = !text.is_empty()
        && text.len() <= 64
        && !text.starts_with('.')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if fine {
        Ok(text.to_owned())
    } else {
        Err("must be 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' (e.g. main, before-fix)"
            .into())
    }
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
        assert_eq!(args.record, RecordKind::I64);
        assert_eq!(args.record_bytes(), DEFAULT_RECORD_BYTES);
        assert_eq!(args.repeat, 1);
        assert!(parse(&["--json", "-"]).unwrap().json.as_deref().is_some_and(crate::output::is_stdout));
        // `-` where one output can take stdout; a device wherever a file goes.
        assert!(parse(&["--plot", "-"]).is_ok());
        assert!(parse(&["--hlog", "-"]).is_ok());
        assert!(parse(&["--plot", "/dev/null"]).is_ok(), "a device needs no .svg");
        assert!(parse(&["--hgrm", "/dev/null", "--json", "/dev/null"]).is_ok());
        assert_eq!(parse(&["--repeat", "5"]).unwrap().repeat, 5);
        assert_eq!(parse(&["--record", "shared", "--record-bytes", "0"]).unwrap().record_bytes(), 0);
        assert_eq!(
            parse(&["--duration", "24h", "--warmup", "0s"]).unwrap().duration,
            Duration::from_secs(86_400)
        );
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
            "--record",
            "bytes",
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
            "/tmp/x.SVG",
            "--hlog",
            "/tmp/x.hlog",
            "--hlog-interval",
            "100ms",
            "--save-baseline",
            "new",
            "--baseline",
            "old-1.2_x",
            "--fail-on-regression",
            "5",
            "--no-limit",
            "--progress",
        ])
        .unwrap();
        assert_eq!(args.record, RecordKind::Bytes);
        assert_eq!(args.record_bytes(), 64);
        assert_eq!(args.hlog_interval, Duration::from_millis(100));
        assert_eq!(args.fail_on_regression, Some(5.0));
        assert_eq!(args.baseline.as_deref(), Some("old-1.2_x"));
        assert!(args.no_limit && args.progress && !args.quiet);
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
    fn durable_runs_are_lockstep_at_a_chosen_level() {
        assert_eq!(parse(&[]).unwrap().durability(), None);
        let args = parse(&["--durable", "/tmp/x"]).unwrap();
        assert_eq!(args.durability(), Some(DurabilityChoice::Written));
        let args = parse(&["--durable", "/tmp/x", "--durability", "synced", "--keep-durable"]).unwrap();
        assert_eq!(args.durability(), Some(DurabilityChoice::Synced));
        assert!(args.keep_durable);
        assert!(parse(&["--retain-all"]).unwrap().retain_all);
    }

    #[test]
    fn nats_runs_take_a_server_and_a_window() {
        let args = parse(&["--engine", "nats"]).unwrap();
        assert_eq!((args.nats, args.in_flight), (None, None));
        let args =
            parse(&["--engine", "nats", "--nats", "nats://127.0.0.1:4222", "--in-flight", "16"]).unwrap();
        assert_eq!(args.nats.as_deref(), Some("nats://127.0.0.1:4222"));
        assert_eq!(args.in_flight, Some(16));
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
            &["--duration", "18446744073709551615s"],
            &["--duration", "25h"],
            &["--warmup", "1000000000h"],
            &["--duration", "20h", "--warmup", "5h"],
            &["--rate", "1000000001"],
            &["--record", "f32"],
            &["--record-bytes", "64"],
            &["--record", "u64", "--record-bytes", "8"],
            &["--record", "shared", "--record-bytes", "2000000"],
            &["--plot", "x.png"],
            &["--plot", "chart"],
            &["--hlog-interval", "1ms"],
            &["--save-baseline", "../escape"],
            &["--save-baseline", ".hidden"],
            &["--baseline", "a/b"],
            &["--baseline", ""],
            &["--fail-on-regression", "5"],
            &["--baseline", "x", "--fail-on-regression", "150"],
            &["--baseline", "x", "--fail-on-regression", "lots"],
            &["--progress", "--quiet"],
            &["--json", "-", "--hlog", "-"],
            &["--json", "-", "--plot", "-"],
            &["--hgrm", "-"],
            &["--repeat", "0"],
            &["--repeat", "101"],
            &["--durability", "synced"],
            &["--keep-durable"],
            &["--durable", "/tmp/x", "--engine", "mutex"],
            &["--durable", "/tmp/x", "--compare"],
            &["--durable", "/tmp/x", "--durability", "sometimes"],
            &["--retain-all", "--engine", "raw"],
            &["--engine", "fjall"],
            &["--engine", "fjall", "--durable", "/tmp/x", "--record", "bytes"],
            &["--nats", "nats://127.0.0.1:4222"],
            &["--in-flight", "8", "--engine", "lockstep"],
            &["--engine", "nats", "--in-flight", "0"],
            &["--engine", "nats", "--durable", "/tmp/x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
