//! Times reopening a durable pipeline (issue 18's recovery targets; perf/durable.sh runs it).
//!
//! ```text
//! cargo run --release --example recover -- write DIR N [MAX_LEVEL [SHARDS]]
//! cargo run --release --example recover -- open DIR [MAX_LEVEL [SHARDS]]
//! ```
//!
//! `write` makes DIR (it must not exist: nothing of anyone's is overwritten) and commits `N`
//! commits of one `i64` part each to a durable (`Written`) pipeline with `Sum`, 1 shard (or
//! `SHARDS`, which `open` must be given too: the directory records it), paths
//! drawn uniformly from 10,000, then waits until all are durable and shuts down. It prints the
//! live pipeline's peak resident set (VmHWM, the process's own), the log's size and the rate.
//! `open` builds a pipeline on DIR, which recovers it, and prints the time `build` took, the
//! records recovered per second and the process's peak resident set. Run each in a process of
//! its own, so each peak is its own: recovery's peak over the live one is `peak_kib` of `open`
//! over `live_peak_kib` of `write`. MAX_LEVEL defaults to the library's (`-` for it, before
//! SHARDS); the divisor is the library's default too. One `key=value` line each, for scripts.

use std::path::Path;
use std::time::{Duration, Instant};

use lockstep::merge::Sum;
use lockstep::{Builder, Durability, Pipeline};

const PATHS: usize = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: recover write DIR N [MAX_LEVEL [SHARDS]] | recover open DIR [MAX_LEVEL [SHARDS]]";
    let (Some(what), Some(dir)) = (args.first(), args.get(1)) else { return Err(usage.into()) };
    let dir = Path::new(dir);
    match what.as_str() {
        "write" => {
            let n: u64 = args.get(2).ok_or(usage)?.parse()?;
            let settings = settings(&args[3..])?;
            if dir.exists() {
                return Err(format!("{} exists: write makes a fresh directory", dir.display()).into());
            }
            write(dir, n, settings)
        }
        "open" => open(dir, settings(&args[2..])?),
        _ => Err(usage.into()),
    }
}

/// The optional MAX_LEVEL (`-`: the library's) and SHARDS (default 1).
struct Settings {
    max_level: Option<u32>,
    shards: usize,
}

fn settings(args: &[String]) -> Result<Settings, Box<dyn std::error::Error>> {
    let max_level = match args.first().map(String::as_str) {
        None | Some("-") => None,
        Some(level) => Some(level.parse()?),
    };
    let shards = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1);
    Ok(Settings { max_level, shards })
}

fn builder(dir: &Path, settings: &Settings) -> Builder<Sum> {
    let Settings { max_level, shards } = *settings;
    let builder = Pipeline::builder(Sum).shards(shards).durable(dir).durability(Durability::Written);
    match max_level {
        Some(level) => builder.max_level(level),
        None => builder,
    }
}

fn write(dir: &Path, n: u64, settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let pipeline = builder(dir, &settings).build()?;
    let mut producer = pipeline.producer()?;
    let keys = (0..PATHS).map(|i| producer.key(&format!("/p/{i:08}"))).collect::<Result<Vec<_>, _>>()?;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let started = Instant::now();
    let mut last = 0;
    for _ in 0..n {
        // xorshift: a path and a value per commit, no allocation.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Values below 1,000, as the loadgen's i64 records are (counters).
        last = producer.commit([(&keys[(x % PATHS as u64) as usize], ((x >> 32) % 1000) as i64)])?;
    }
    pipeline.wait_durable(last, Duration::from_secs(600))?;
    let took = started.elapsed();
    let rss = status_kib("VmRSS:");
    drop(producer);
    pipeline.shutdown()?;
    println!(
        "write records={n} secs={:.3} records_per_sec={:.0} live_rss_kib={} live_peak_kib={} log_bytes={}",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        rss.unwrap_or(0),
        status_kib("VmHWM:").unwrap_or(0),
        tree_bytes(dir),
    );
    Ok(())
}

fn open(dir: &Path, settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let before = status_kib("VmRSS:").unwrap_or(0);
    let started = Instant::now();
    let pipeline = builder(dir, &settings).build()?;
    let took = started.elapsed();
    let records = pipeline.snapshot().frontier();
    println!(
        "open records={records} secs={:.3} records_per_sec={:.0} rss_before_kib={before} peak_kib={} rss_after_kib={}",
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64(),
        status_kib("VmHWM:").unwrap_or(0),
        status_kib("VmRSS:").unwrap_or(0),
    );
    pipeline.shutdown()?;
    Ok(())
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn tree_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => tree_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}
