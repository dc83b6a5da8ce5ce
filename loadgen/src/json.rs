//! The report as JSON, for scripts and baselines:
//! `{"schema": 2, "interrupted": false, "config": {...}, "limit": {...}, "runs": [...],
//! "ratios": [...]}`.
//!
//! Schema 2 (this loadgen) only adds to schema 1 (reports without a `schema` field): the
//! top-level `schema` and `interrupted`, `config.repeat`, and per run `rate_kept`,
//! `overloaded` and `repeats` (every repeated sample's records/s, with `--repeat N`). A run's
//! figures are those of its median repetition. Every reader takes both.
//!
//! Latencies are in microseconds; a latency with no sample is `null`. `limit` is `null` with
//! `--no-limit`; `aligned` is `null` for `raw`, which keeps no segments; `peak_rss_bytes` is
//! `null` where the OS does not tell.

use clap::ValueEnum;
use serde::Serialize;

use crate::cli::Args;
use crate::latency::Summary;
use crate::limit;
use crate::report::{of_limit, ratios, COMMIT};
use crate::run::{Measured, Settings, SAMPLE_EVERY};
use crate::workload::Workload;

/// The version of this document's layout (module doc).
pub const SCHEMA: u32 = 2;

#[derive(Debug, Serialize)]
pub struct Document {
    /// [`SCHEMA`]; reports without it are schema 1.
    pub schema: u32,
    /// Ctrl-C ended the run early: the engines after the one interrupted did not run.
    pub interrupted: bool,
    pub config: Config,
    /// The hand-off limit measured before the engines.
    pub limit: Option<Limit>,
    /// The disk's limit in `--durable DIR`, measured before the engines; `null` when not
    /// durable.
    pub disk: Option<Disk>,
    pub runs: Vec<Run>,
    /// lockstep's figures divided by each other engine's, when lockstep ran with others.
    pub ratios: Vec<Ratio>,
}

#[derive(Debug, Serialize)]
pub struct Limit {
    /// The best of five 200 ms windows.
    pub records_per_sec: f64,
    /// The median window: far below the best, the machine was busy.
    pub median_records_per_sec: f64,
    pub window_secs: f64,
}

#[derive(Debug, Serialize)]
pub struct Disk {
    pub dir: String,
    /// Sequential 1 MiB appends, one fdatasync at the end, bytes over the time to its end.
    pub append_bytes_per_sec: f64,
    /// 4 KiB appends each followed by fdatasync.
    pub fdatasyncs_per_sec: f64,
    /// Each 4 KiB append + fdatasync.
    pub fdatasync_latency_us: Option<Summary>,
}

/// A durable run's own figures.
#[derive(Debug, Serialize)]
pub struct Durable {
    /// Bytes in the run's log directory after shutdown.
    pub log_bytes: u64,
    /// log_bytes over the records issued in the whole run (warm-up included: all are logged).
    pub log_bytes_per_record: Option<f64>,
    /// The directory, when `--keep-durable` kept it.
    pub kept_dir: Option<String>,
    /// Commit-to-durable: from a sampled commit's intended start until `wait_durable` returned
    /// for it; `null` in a closed loop (not measured).
    pub wait_durable_latency_us: Option<Summary>,
    /// Sampled commits the waiting thread had no room for (not measured).
    pub wait_durable_dropped: u64,
}

#[derive(Debug, Serialize)]
pub struct Config {
    /// The commit loadgen (and the library in its tree) was built from.
    pub commit: &'static str,
    /// Seconds since the Unix epoch when the report was made.
    pub taken_at_unix: u64,
    pub engine: String,
    /// `--record`: i64, u64, bytes or shared.
    pub record: &'static str,
    /// What is timed for the commit-call latency.
    pub commit_latency_sampled: String,
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
    /// `--durable`: lockstep logs every commit.
    pub durable: bool,
    /// `--durability` of a durable run (`written` or `synced`); `null` when memory only.
    pub durability: Option<&'static str>,
    /// lockstep keeps every segment, no sink (`--retain-all`).
    pub retain_all: bool,
    /// `--repeat`: how many times each engine ran in this process (each run's figures are its
    /// median repetition's).
    pub repeat: usize,
}

#[derive(Debug, Serialize)]
pub struct Run {
    pub engine: &'static str,
    pub window_secs: f64,
    pub asked_secs: f64,
    /// Ctrl-C cut the window short.
    pub interrupted: bool,
    /// Why the figures cannot be trusted; empty when they can.
    pub problems: Vec<String>,
    /// Producers that finished no commit in the window.
    pub idle_producers: usize,
    pub commits: u64,
    pub records: u64,
    pub records_per_sec: f64,
    /// records_per_sec divided by the limit's; `null` without a limit.
    pub records_per_limit: Option<f64>,
    pub commits_per_sec: f64,
    pub mb_per_sec: f64,
    pub commit_latency_us: Option<Summary>,
    /// Commit-to-visible, measured by the engine where a commit becomes visible (lockstep: its
    /// own `Stats::visible_latency`).
    pub visible_latency_us: Option<Summary>,
    /// What "visible" means for this engine, and where it is measured.
    pub visible_means: &'static str,
    /// Fixed rate: commits due before the end of the window that never started.
    pub missed: u64,
    /// Fixed rate: commits/s over the rate asked (1: the schedule was kept); `null` in a closed
    /// loop.
    pub rate_kept: Option<f64>,
    /// Fixed rate: the engine kept less than [`crate::report::KEPT_AT_LEAST`] of the rate asked,
    /// so its latencies are those of a growing backlog; `null` in a closed loop.
    pub overloaded: Option<bool>,
    /// With `--repeat N`, N > 1: every repetition's records/s (this run's figures are the
    /// median one's); `null` for a single run.
    pub repeats: Option<Repeats>,
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
    /// A durable run's log size and commit-to-durable; `null` when memory only.
    pub durable: Option<Durable>,
}

/// The repetitions of one engine's run (`--repeat N`).
#[derive(Debug, Serialize)]
pub struct Repeats {
    /// Each repetition's records/s, in the order they ran.
    pub records_per_sec: Vec<f64>,
    pub median_records_per_sec: f64,
    pub min_records_per_sec: f64,
    pub max_records_per_sec: f64,
    /// Half the range, in percent of the median: the noise the baseline gate allows for.
    pub spread_pct: f64,
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

/// What a whole run measured, for [`document`].
#[derive(Debug, Clone, Copy)]
pub struct Results<'a> {
    pub limit: Option<&'a limit::Limit>,
    pub disk: Option<&'a crate::durable::Disk>,
    /// Each engine's median repetition.
    pub runs: &'a [Measured],
    /// Each engine's records/s, repetition by repetition (same order as `runs`).
    pub samples: &'a [Vec<f64>],
    pub interrupted: bool,
}

/// The settings of a run, as the report states them (known before it runs: a baseline of
/// another workload is refused before anything runs).
pub fn config(args: &Args, settings: &Settings, workload: &Workload) -> Config {
    Config {
        commit: COMMIT,
        taken_at_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        engine: args.choice().to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned()),
        record: settings.record.name(),
        commit_latency_sampled: match settings.rate {
            None => format!("1 commit call in about {SAMPLE_EVERY}"),
            Some(_) => "every commit, from its intended start".to_owned(),
        },
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
        durable: args.durable.is_some(),
        durability: args.durability().map(|d| d.name()),
        retain_all: settings.engine.retain_all,
        repeat: args.repeat,
    }
}

pub fn document(args: &Args, settings: &Settings, workload: &Workload, results: Results<'_>) -> Document {
    let Results { limit, disk, runs, samples, interrupted } = results;
    let config = config(args, settings, workload);
    let bytes = settings.record.bytes_per_record(workload.record_bytes());
    let runs_json = runs
        .iter()
        .enumerate()
        .map(|(i, m)| run(m, bytes, limit, settings.rate, samples.get(i).map(Vec::as_slice)))
        .collect();
    let ratios = ratios(runs)
        .into_iter()
        .map(|r| Ratio {
            engine: r.engine.name(),
            records_per_sec: r.records_per_sec,
            visible_p99: r.visible_p99,
        })
        .collect();
    let limit = limit.map(|l| Limit {
        records_per_sec: l.records_per_sec,
        median_records_per_sec: l.median_records_per_sec,
        window_secs: l.window.as_secs_f64(),
    });
    let disk = disk.map(|d| Disk {
        dir: d.dir.display().to_string(),
        append_bytes_per_sec: d.append_bytes_per_sec,
        fdatasyncs_per_sec: d.fdatasyncs_per_sec,
        fdatasync_latency_us: Summary::of(&d.fdatasync_latency),
    });
    Document { schema: SCHEMA, interrupted, config, limit, disk, runs: runs_json, ratios }
}

/// The spread of repeated samples: `(median, min, max, half the range in % of the median)`;
/// `None` for fewer than two.
pub fn spread(samples: &[f64]) -> Option<(f64, f64, f64, f64)> {
    if samples.len() < 2 {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    let (min, max) = (sorted[0], sorted[n - 1]);
    let pct = if median > 0.0 { (max - min) / 2.0 / median * 100.0 } else { 0.0 };
    Some((median, min, max, pct))
}

fn run(
    m: &Measured,
    record_bytes: usize,
    limit: Option<&limit::Limit>,
    rate: Option<u64>,
    samples: Option<&[f64]>,
) -> Run {
    let layout = m.finish.layout.as_ref();
    let rate_kept = crate::report::rate_kept(rate, m);
    Run {
        engine: m.kind.name(),
        window_secs: m.window.as_secs_f64(),
        asked_secs: m.asked.as_secs_f64(),
        interrupted: m.interrupted,
        problems: m.problems.clone(),
        idle_producers: m.idle_producers,
        commits: m.commits,
        records: m.records,
        records_per_sec: m.records_per_sec(),
        records_per_limit: of_limit(limit, m),
        commits_per_sec: m.commits_per_sec(),
        mb_per_sec: m.records_per_sec() * record_bytes as f64 / 1e6,
        commit_latency_us: Summary::of(&m.commit_latency),
        visible_latency_us: Summary::of(&m.visible_latency),
        visible_means: m.kind.visible_means(),
        missed: m.missed,
        rate_kept,
        overloaded: rate_kept.map(|kept| kept < crate::report::KEPT_AT_LEAST),
        repeats: samples.and_then(|samples| {
            spread(samples).map(|(median, min, max, spread_pct)| Repeats {
                records_per_sec: samples.to_vec(),
                median_records_per_sec: median,
                min_records_per_sec: min,
                max_records_per_sec: max,
                spread_pct,
            })
        }),
        peak_rss_bytes: m.rss.peak,
        rss_at_start_bytes: m.rss.at_start,
        peak_rss_reset: m.rss.reset,
        segments_per_level: layout.map(|l| l.per_level.clone()),
        aligned: layout.map(|l| l.aligned()),
        segments_off_grid: layout.map(|l| l.off_grid),
        nothing_lost: m.nothing_lost(),
        issued_commits: m.issued_commits,
        issued_records: m.issued_records,
        durable: m.finish.durable.as_ref().map(|d| Durable {
            log_bytes: d.log_bytes,
            log_bytes_per_record: (m.issued_records > 0)
                .then(|| d.log_bytes as f64 / m.issued_records as f64),
            kept_dir: d.kept.as_ref().map(|p| p.display().to_string()),
            wait_durable_latency_us: d.wait_latency.as_ref().and_then(Summary::of),
            wait_durable_dropped: d.wait_dropped,
        }),
    }
}

/// `document`, pretty-printed, with a final newline.
pub fn text(document: &Document) -> Result<String, String> {
    Ok(serde_json::to_string_pretty(document).map_err(|e| e.to_string())? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Finish, Kind};
    use crate::latency::histogram;
    use crate::rss::Rss;
    use clap::Parser;
    use serde_json::Value;
    use std::time::Duration;

    /// Parts per commit, and bytes per record, of the runs below.
    const PARTS: u64 = 4;
    const BYTES: u64 = 24;

    /// The latency every run below measured: four samples, one far out.
    fn latency() -> hdrhistogram::Histogram<u64> {
        let mut latency = histogram();
        for v in [1000u64, 2000, 3000, 40_000] {
            latency.record(v).unwrap();
        }
        latency
    }

    /// A run of `commits` commits (of `PARTS` parts) in a 2 s window; over the whole run, warm-up
    /// included, 100 more were issued; `lost` of the records issued never reached the engine's
    /// end state.
    fn measured(kind: Kind, commits: u64, lost: u64) -> Measured {
        let issued_commits = commits + 100;
        let issued_records = issued_commits * PARTS;
        Measured {
            kind,
            window: Duration::from_secs(2),
            opened: std::time::SystemTime::UNIX_EPOCH,
            asked: Duration::from_millis(2100),
            commits,
            records: commits * PARTS,
            issued_commits,
            issued_records,
            commit_latency: latency(),
            visible_latency: latency(),
            missed: 7,
            idle_producers: 1,
            producers: 3,
            intervals: Vec::new(),
            problems: Vec::new(),
            interrupted: false,
            warmup_only: false,
            frontier: None,
            rss: Rss { reset: true, at_start: Some(1 << 20), peak: Some(2 << 20) },
            finish: Finish {
                final_commit: (kind != Kind::Raw).then_some(issued_commits),
                records_applied: Some(issued_records - lost),
                layout: (kind != Kind::Raw).then(|| crate::align::Layout::new(2)),
                visible_latency: latency(),
                notes: Vec::new(),
                durable: None,
            },
        }
    }

    fn close(value: &Value, expected: f64) -> bool {
        value.as_f64().is_some_and(|v| (v - expected).abs() <= expected.abs() * 1e-12)
    }

    /// Every figure by value: the settings as the run was given them (each a different number,
    /// so two swapped fields show), the counts as measured, and the rates worked out here from
    /// the counts, the window and the record size.
    #[test]
    fn the_document_holds_what_the_runs_measured() {
        let bytes = BYTES.to_string();
        let args = crate::cli::Args::try_parse_from([
            "loadgen",
            "--engine",
            "all",
            "--rate",
            "1000",
            "--record",
            "shared",
            "--record-bytes",
            &bytes,
        ])
        .unwrap();
        let workload = Workload::new(10, args.distribution, BYTES as usize, PARTS as usize);
        let settings = Settings {
            engine: crate::engine::Config {
                producers: 3,
                shards: 2,
                divisor: 5,
                max_level: 7,
                queue_capacity: 16,
                pin: false,
                retain_all: false,
                durable: None,
                nats: None,
            },
            record: args.record,
            duration: Duration::from_millis(2100),
            warmup: Duration::from_millis(1500),
            rate: args.rate,
            progress: false,
            interval: None,
        };
        let runs =
            [measured(Kind::Lockstep, 1000, 0), measured(Kind::Mutex, 500, 0), measured(Kind::Raw, 2000, 3)];
        let limit = limit::Limit {
            records_per_sec: 8000.0,
            median_records_per_sec: 7000.0,
            window: Duration::from_secs(1),
        };
        let results = |limit| Results { limit, disk: None, runs: &runs, samples: &[], interrupted: false };
        let value =
            serde_json::to_value(document(&args, &settings, &workload, results(Some(&limit)))).unwrap();
        assert_eq!(value["schema"], SCHEMA);
        assert_eq!(value["interrupted"], false);
        assert_eq!(value["limit"]["records_per_sec"].as_f64(), Some(8000.0));
        assert_eq!(value["limit"]["median_records_per_sec"].as_f64(), Some(7000.0));
        assert_eq!(value["limit"]["window_secs"].as_f64(), Some(1.0));
        let without = serde_json::to_value(document(&args, &settings, &workload, results(None))).unwrap();
        assert_eq!(without["limit"], Value::Null);
        assert_eq!(without["runs"][0]["records_per_limit"], Value::Null);

        let config = &value["config"];
        assert_eq!(config["commit"], COMMIT);
        assert_eq!(config["engine"], "all");
        assert_eq!(config["record"], "shared");
        assert_eq!(config["commit_latency_sampled"], "every commit, from its intended start");
        assert_eq!(config["mode"], "fixed-rate");
        assert_eq!(config["rate"], 1000);
        assert_eq!(config["distribution"], "uniform");
        for (key, given) in [
            ("producers", 3),
            ("shards", 2),
            ("divisor", 5),
            ("max_level", 7),
            ("paths", 10),
            ("parts_per_commit", PARTS),
            ("record_bytes", BYTES),
            ("queue_capacity", 16),
        ] {
            assert_eq!(config[key].as_u64(), Some(given), "config.{key}");
        }
        assert_eq!(config["duration_secs"].as_f64(), Some(2.1));
        assert_eq!(config["warmup_secs"].as_f64(), Some(1.5));
        assert_eq!(config["pin"], false);

        let out = value["runs"].as_array().unwrap();
        assert_eq!(out.len(), 3);
        for (run, measured) in out.iter().zip(&runs) {
            let engine = measured.kind.name();
            assert_eq!(run["engine"], engine);
            assert_eq!(run["window_secs"].as_f64(), Some(2.0), "{engine}");
            assert_eq!(run["asked_secs"].as_f64(), Some(2.1), "{engine}");
            assert_eq!(run["interrupted"], false, "{engine}");
            assert_eq!(run["problems"], serde_json::json!([]), "{engine}");
            assert_eq!(run["idle_producers"], 1, "{engine}");
            assert_eq!(run["commits"].as_u64(), Some(measured.commits), "{engine}");
            assert_eq!(run["records"].as_u64(), Some(measured.commits * PARTS), "{engine}");
            assert_eq!(run["missed"], 7, "{engine}");
            assert_eq!(run["issued_commits"].as_u64(), Some(measured.commits + 100), "{engine}");
            assert_eq!(run["issued_records"].as_u64(), Some((measured.commits + 100) * PARTS), "{engine}");
            // Rates from the counts over the 2 s window; MB/s from the record size.
            let records_per_sec = (measured.commits * PARTS) as f64 / 2.0;
            assert!(close(&run["records_per_sec"], records_per_sec), "{engine}: {}", run["records_per_sec"]);
            assert!(close(&run["commits_per_sec"], measured.commits as f64 / 2.0), "{engine}");
            let mb = (measured.commits * PARTS * BYTES) as f64 / 2.0 / 1e6;
            assert!(close(&run["mb_per_sec"], mb), "{engine}: {} MB/s, not {mb}", run["mb_per_sec"]);
            assert!(close(&run["records_per_limit"], records_per_sec / 8000.0), "{engine}");
            // Latencies in µs, each the histogram's own quantile.
            let h = latency();
            for kind in ["visible_latency_us", "commit_latency_us"] {
                let summary = &run[kind];
                assert_eq!(summary["samples"], 4, "{engine} {kind}");
                for (key, quantile) in
                    [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999), ("p9999", 0.9999)]
                {
                    let us = h.value_at_quantile(quantile) as f64 / 1000.0;
                    assert_eq!(summary[key].as_f64(), Some(us), "{engine} {kind}.{key}");
                }
                assert_eq!(summary["max"].as_f64(), Some(h.max() as f64 / 1000.0), "{engine} {kind}");
                assert!(close(&summary["mean"], h.mean() / 1000.0), "{engine} {kind}");
            }
            assert_eq!(run["visible_means"], measured.kind.visible_means());
            assert_eq!(run["peak_rss_bytes"], 2 << 20);
            assert_eq!(run["rss_at_start_bytes"], 1 << 20);
            assert_eq!(run["peak_rss_reset"], true);
        }
        let (lockstep, raw) = (&out[0], &out[2]);
        assert_eq!(lockstep["visible_latency_us"]["p50"].as_f64(), Some(2.0));
        assert_eq!(lockstep["nothing_lost"], true);
        assert_eq!(raw["nothing_lost"], false, "3 records issued never arrived");
        assert_eq!(lockstep["segments_per_level"], serde_json::json!([0, 0, 0]));
        assert_eq!(lockstep["aligned"], true);
        assert_eq!(lockstep["segments_off_grid"], 0);
        assert_eq!(raw["segments_per_level"], Value::Null);
        assert_eq!(raw["aligned"], Value::Null);

        // lockstep's records/s over each other engine's: 2,000 / 1,000 and 2,000 / 4,000.
        let ratios = value["ratios"].as_array().unwrap();
        assert_eq!(ratios.len(), 2);
        assert_eq!(ratios[0]["engine"], "mutex");
        assert_eq!(ratios[0]["records_per_sec"].as_f64(), Some(2.0));
        assert_eq!(ratios[0]["visible_p99"].as_f64(), Some(1.0));
        assert_eq!(ratios[1]["engine"], "raw");
        assert_eq!(ratios[1]["records_per_sec"].as_f64(), Some(0.5));
    }
}
