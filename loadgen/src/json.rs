//! The report as JSON, for scripts: `{"config": {...}, "runs": [...], "ratios": [...]}`.
//!
//! Latencies are in microseconds; a latency with no sample is `null`. `aligned` is `null` for
//! `raw`, which keeps no segments; `peak_rss_bytes` is `null` where the OS does not tell.

use std::path::Path;

use clap::ValueEnum;
use serde::Serialize;

use crate::cli::Args;
use crate::latency::Summary;
use crate::report::ratios;
use crate::run::{Measured, Settings};
use crate::workload::Workload;

#[derive(Debug, Serialize)]
pub struct Document {
    pub config: Config,
    pub runs: Vec<Run>,
    /// lockstep's figures divided by each other engine's, when lockstep ran with others.
    pub ratios: Vec<Ratio>,
}

#[derive(Debug, Serialize)]
pub struct Config {
    pub engine: String,
    pub mode: &'static str,
    /// Commits per second, all producers together; `null` in a closed loop.
    pub rate: Option<u64>,
    pub producers: usize,
    pub shards: usize,
    pub divisor: u64,
    pub max_level: u32,
    pub paths: usize,
    pub distribution: String,
    pub parts_per_commit: usize,
    pub record_bytes: usize,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub pin: bool,
    pub queue_capacity: usize,
}

#[derive(Debug, Serialize)]
pub struct Run {
    pub engine: &'static str,
    pub window_secs: f64,
    pub commits: u64,
    pub records: u64,
    pub records_per_sec: f64,
    pub commits_per_sec: f64,
    pub mb_per_sec: f64,
    pub commit_latency_us: Option<Summary>,
    pub visible_latency_us: Option<Summary>,
    /// What "visible" means for this engine.
    pub visible_means: &'static str,
    /// The engine's own commit-to-visible over the measured window, where it keeps one:
    /// lockstep's `Stats::visible_latency`, one commit in 16, from taking the commit number to
    /// the publish that shows it (exact, where `visible_latency_us` is late by up to the time
    /// between two looks of the observer; at a fixed rate it does not count a commit's delay
    /// behind its intended start).
    pub own_visible_latency_us: Option<Summary>,
    pub visible_unresolved: u64,
    /// Fixed rate: commits due before the end of the window that never started.
    pub missed: u64,
    pub peak_rss_bytes: Option<u64>,
    pub rss_at_start_bytes: Option<u64>,
    /// Whether the peak was reset before this engine (else it is the process's peak so far).
    pub peak_rss_reset: bool,
    /// Segments per level at the end, index = level; `null` for raw.
    pub segments_per_level: Option<Vec<u64>>,
    pub aligned: Option<bool>,
    pub segments_off_grid: Option<u64>,
    /// The engine ended with every commit and record it was handed.
    pub nothing_lost: bool,
    pub issued_commits: u64,
    pub issued_records: u64,
}

#[derive(Debug, Serialize)]
pub struct Ratio {
    /// The engine lockstep is compared with.
    pub engine: &'static str,
    /// lockstep's records/s divided by this engine's: above 1, lockstep moves more.
    pub records_per_sec: f64,
    /// lockstep's commit-to-visible p99 divided by this engine's: below 1, lockstep is faster.
    pub visible_p99: Option<f64>,
}

pub fn document(args: &Args, settings: &Settings, workload: &Workload, runs: &[Measured]) -> Document {
    let config = Config {
        engine: args.choice().to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned()),
        mode: if settings.rate.is_some() { "fixed-rate" } else { "closed-loop" },
        rate: settings.rate,
        producers: settings.engine.producers,
        shards: settings.engine.shards,
        divisor: settings.engine.divisor,
        max_level: settings.engine.max_level,
        paths: workload.paths(),
        distribution: workload.distribution().to_string(),
        parts_per_commit: workload.parts_per_commit(),
        record_bytes: workload.record_bytes(),
        duration_secs: settings.duration.as_secs_f64(),
        warmup_secs: settings.warmup.as_secs_f64(),
        pin: settings.engine.pin,
        queue_capacity: settings.engine.queue_capacity,
    };
    let runs_json = runs.iter().map(|m| run(m, workload.record_bytes())).collect();
    let ratios = ratios(runs)
        .into_iter()
        .map(|r| Ratio {
            engine: r.engine.name(),
            records_per_sec: r.records_per_sec,
            visible_p99: r.visible_p99,
        })
        .collect();
    Document { config, runs: runs_json, ratios }
}

fn run(m: &Measured, record_bytes: usize) -> Run {
    let layout = m.finish.layout.as_ref();
    Run {
        engine: m.kind.name(),
        window_secs: m.window.as_secs_f64(),
        commits: m.commits,
        records: m.records,
        records_per_sec: m.records_per_sec(),
        commits_per_sec: m.commits_per_sec(),
        mb_per_sec: m.records_per_sec() * record_bytes as f64 / 1e6,
        commit_latency_us: Summary::of(&m.commit_latency),
        visible_latency_us: Summary::of(&m.visible_latency),
        visible_means: m.kind.visible_means(),
        own_visible_latency_us: m.finish.own_visible_latency.as_ref().and_then(Summary::of),
        visible_unresolved: m.visible_unresolved,
        missed: m.missed,
        peak_rss_bytes: m.rss.peak,
        rss_at_start_bytes: m.rss.at_start,
        peak_rss_reset: m.rss.reset,
        segments_per_level: layout.map(|l| l.per_level.clone()),
        aligned: layout.map(|l| l.aligned()),
        segments_off_grid: layout.map(|l| l.off_grid),
        nothing_lost: m.nothing_lost(),
        issued_commits: m.issued_commits,
        issued_records: m.issued_records,
    }
}

/// Writes `document` to `path`, pretty-printed.
pub fn write(path: &Path, document: &Document) -> Result<(), String> {
    let text = serde_json::to_string_pretty(document).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Finish, Kind};
    use crate::latency::histogram;
    use crate::rss::Rss;
    use clap::Parser;
    use std::time::Duration;

    fn measured(kind: Kind, records: u64) -> Measured {
        let mut latency = histogram();
        for v in [1000u64, 2000, 3000] {
            latency.record(v).unwrap();
        }
        Measured {
            kind,
            window: Duration::from_secs(2),
            commits: records,
            records,
            issued_commits: records,
            issued_records: records,
            commit_latency: latency.clone(),
            visible_latency: latency,
            visible_unresolved: 0,
            poll_mean: Duration::ZERO,
            poll_max: Duration::ZERO,
            missed: 0,
            rss: Rss { reset: true, at_start: Some(1 << 20), peak: Some(2 << 20) },
            finish: Finish {
                final_commit: None,
                records_applied: Some(records),
                layout: (kind != Kind::Raw).then(|| crate::align::Layout::new(2)),
                own_visible_latency: (kind == Kind::Lockstep).then(|| {
                    let mut own = histogram();
                    own.record(7000).unwrap();
                    own
                }),
                notes: Vec::new(),
            },
        }
    }

    #[test]
    fn the_document_has_the_promised_shape() {
        let args =
            crate::cli::Args::try_parse_from(["loadgen", "--engine", "all", "--rate", "1000"]).unwrap();
        let workload = Workload::new(10, args.distribution, 16, 1);
        let settings = Settings {
            engine: crate::engine::Config {
                producers: 1,
                shards: 1,
                divisor: 4,
                max_level: 2,
                queue_capacity: 16,
                pin: false,
            },
            duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            rate: args.rate,
            progress: false,
        };
        let runs = [measured(Kind::Lockstep, 4000), measured(Kind::Mutex, 2000), measured(Kind::Raw, 8000)];
        let value = serde_json::to_value(document(&args, &settings, &workload, &runs)).unwrap();

        let config = &value["config"];
        assert_eq!(config["engine"], "all");
        assert_eq!(config["mode"], "fixed-rate");
        assert_eq!(config["rate"], 1000);
        assert_eq!(config["distribution"], "uniform");
        for key in
            ["producers", "shards", "divisor", "max_level", "paths", "parts_per_commit", "record_bytes"]
        {
            assert!(config[key].is_u64(), "config.{key}");
        }

        let runs = value["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 3);
        let lockstep = &runs[0];
        assert_eq!(lockstep["engine"], "lockstep");
        assert_eq!(lockstep["records_per_sec"].as_f64(), Some(2000.0));
        assert_eq!(lockstep["commits_per_sec"].as_f64(), Some(2000.0));
        for kind in ["visible_latency_us", "commit_latency_us"] {
            for key in ["p50", "p99", "p999", "max"] {
                assert!(lockstep[kind][key].is_f64(), "{kind}.{key}");
            }
        }
        assert_eq!(lockstep["visible_latency_us"]["p50"].as_f64(), Some(2.0));
        let own_p99 = lockstep["own_visible_latency_us"]["p99"].as_f64().unwrap();
        assert!((own_p99 - 7.0).abs() < 0.01, "{own_p99}");
        assert_eq!(runs[1]["own_visible_latency_us"], serde_json::Value::Null);
        assert_eq!(lockstep["peak_rss_bytes"], 2 << 20);
        assert_eq!(lockstep["aligned"], true);
        assert_eq!(runs[2]["aligned"], serde_json::Value::Null);

        let ratios = value["ratios"].as_array().unwrap();
        assert_eq!(ratios.len(), 2);
        assert_eq!(ratios[0]["engine"], "mutex");
        assert_eq!(ratios[0]["records_per_sec"].as_f64(), Some(2.0));
        assert_eq!(ratios[1]["engine"], "raw");
        assert_eq!(ratios[1]["records_per_sec"].as_f64(), Some(0.5));
    }
}
