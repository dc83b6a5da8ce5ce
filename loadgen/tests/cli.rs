//! The command line end to end: refusals come before any run, outputs go where they were asked
//! to, and baselines compare. Runs are a fraction of a second of `raw`; nothing here depends on
//! how fast anything is.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, PoisonError};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

/// One measured run at a time: two at once on a two-core machine starve each other's
/// coordinating thread, and a window timed 10% off the one asked for fails the run.
static RUNS: Mutex<()> = Mutex::new(());

fn loadgen(args: &[&str], baselines: &Path) -> Output {
    let _one_at_a_time = RUNS.lock().unwrap_or_else(PoisonError::into_inner);
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .env("LOADGEN_BASELINE_DIR", baselines)
        .output()
        .expect("the loadgen binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A short run that still measures something: `raw` for a fifth of a second.
const SHORT: [&str; 8] =
    ["--engine", "raw", "--duration", "200ms", "--warmup", "0s", "--no-limit", "--quiet"];

#[test]
fn bad_outputs_and_bounds_are_refused_before_anything_runs() {
    let dir = scratch("refusals");
    for (args, says) in [
        (&["--json", "/nonexistent/dir/x.json"][..], "/nonexistent/dir/x.json"),
        (&["--hlog", "/nonexistent/dir/x.hlog"], "/nonexistent/dir/x.hlog"),
        (&["--hgrm", "/nonexistent/dir/x"], "/nonexistent/dir/x"),
        (&["--plot", "chart.png"], ".svg"),
        (&["--duration", "18446744073709551615s"], "--duration"),
        (&["--warmup", "23h", "--duration", "2h"], "24h"),
        (&["--baseline", "missing"], "--save-baseline missing"),
        (&["--fail-on-regression", "5"], "--baseline"),
        (&["--record", "i64", "--record-bytes", "64"], "--record-bytes"),
    ] {
        let out = loadgen(args, &dir);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("measuring"), "{args:?} ran before refusing: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a report");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_to_stdout_keeps_stdout_parseable_and_the_interval_log_reads_back() {
    let dir = scratch("outputs");
    let hlog = dir.join("run.hlog");
    let plot = dir.join("run.svg");
    let mut args = SHORT.to_vec();
    let (hlog_arg, plot_arg) = (hlog.display().to_string(), plot.display().to_string());
    // Every setting a different number, so a figure reported under another's name shows.
    args.extend([
        "--record",
        "shared",
        "--record-bytes",
        "24",
        "--parts-per-commit",
        "5",
        "--producers",
        "2",
        "--shards",
        "3",
        "--divisor",
        "6",
        "--max-level",
        "7",
        "--paths",
        "100",
        "--queue-capacity",
        "64",
        "--json",
        "-",
        "--hlog",
        &hlog_arg,
        "--plot",
        &plot_arg,
        "--hlog-interval",
        "50ms",
    ]);
    let out = loadgen(&args, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report alone");
    let config = &report["config"];
    assert_eq!(config["record"], "shared");
    assert_eq!(config["mode"], "closed-loop");
    assert_eq!(config["rate"], Value::Null);
    for (key, given) in [
        ("record_bytes", 24),
        ("parts_per_commit", 5),
        ("producers", 2),
        ("shards", 3),
        ("divisor", 6),
        ("max_level", 7),
        ("paths", 100),
        ("queue_capacity", 64),
    ] {
        assert_eq!(config[key].as_u64(), Some(given), "config.{key}: {config}");
    }
    assert_eq!(config["duration_secs"].as_f64(), Some(0.2));
    assert_eq!(config["warmup_secs"].as_f64(), Some(0.0));
    assert_eq!(report["limit"], Value::Null);
    let run = &report["runs"][0];
    assert_eq!(run["engine"], "raw");
    // The figures, worked out again from the counts, the window and what each commit carried.
    let figure = |key: &str| run[key].as_f64().unwrap_or_else(|| panic!("runs[0].{key}: {run}"));
    let count = |key: &str| run[key].as_u64().unwrap_or_else(|| panic!("runs[0].{key}: {run}"));
    let (commits, records, window) = (count("commits"), count("records"), figure("window_secs"));
    assert!(commits > 0, "raw moved nothing in {window} s");
    assert_eq!(records, commits * 5, "records = commits × parts per commit");
    let near = |got: f64, want: f64| (got - want).abs() <= want.abs() * 1e-9;
    assert!(near(figure("records_per_sec"), records as f64 / window), "{run}");
    assert!(near(figure("commits_per_sec"), commits as f64 / window), "{run}");
    assert!(
        near(figure("mb_per_sec"), records as f64 * 24.0 / window / 1e6),
        "MB/s = records × 24 B / window: {run}"
    );
    // Over the whole run, every commit issued carried 5 parts and reached the consumers.
    let issued = count("issued_commits");
    assert!(issued >= commits, "{run}");
    assert_eq!(count("issued_records"), issued * 5);
    assert_eq!(run["nothing_lost"], true);
    assert_eq!(count("missed"), 0, "a closed loop misses nothing");
    assert_eq!(run["problems"], serde_json::json!([]));
    assert_eq!(run["interrupted"], false);
    assert!(count("idle_producers") <= 2);
    assert!(text(&out.stderr).contains("records/s"), "the table goes to stderr");
    assert!(!dir.join("-").exists());

    let log = std::fs::read(&hlog).unwrap();
    let tags: Vec<String> = IntervalLogIterator::new(&log)
        .filter_map(|entry| match entry.unwrap() {
            LogEntry::Interval(h) => h.tag().map(|t| t.as_str().to_owned()),
            _ => None,
        })
        .collect();
    assert!(tags.iter().any(|t| t == "raw.commit"), "{tags:?}");
    assert!(tags.iter().any(|t| t == "raw.visible"), "{tags:?}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.contains("commit-to-visible per interval"));
    assert!(svg.contains("closed loop"), "the title says the mode");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_saved_baseline_is_compared_and_a_drop_beyond_the_threshold_fails() {
    let dir = scratch("baselines");
    let mut save = SHORT.to_vec();
    save.extend(["--save-baseline", "before"]);
    let out = loadgen(&save, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let saved = dir.join("before.json");
    let mut baseline: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(baseline["runs"][0]["engine"], "raw");

    // The same baseline with a throughput no run can reach: a drop of nearly 100%.
    let rate = baseline["runs"][0]["records_per_sec"].as_f64().unwrap();
    baseline["runs"][0]["records_per_sec"] = Value::from(rate * 1e6);
    std::fs::write(dir.join("unreachable.json"), baseline.to_string()).unwrap();

    let mut compare = SHORT.to_vec();
    compare.extend(["--baseline", "unreachable"]);
    let out = loadgen(&compare, &dir);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "without --fail-on-regression a drop is only shown: {stdout}");
    assert!(stdout.contains("against baseline \"unreachable\""), "{stdout}");
    assert!(stdout.contains("raw records/s"), "{stdout}");

    compare.extend(["--fail-on-regression", "50"]);
    let out = loadgen(&compare, &dir);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("REGRESSION: raw records/s"), "{stdout}");

    // A run far above its baseline is no regression, even at a threshold of 1%: only a drop
    // counts.
    baseline["runs"][0]["records_per_sec"] = Value::from(rate * 1e-6);
    std::fs::write(dir.join("low.json"), baseline.to_string()).unwrap();
    let mut faster = SHORT.to_vec();
    faster.extend(["--baseline", "low", "--fail-on-regression", "1"]);
    let out = loadgen(&faster, &dir);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("against baseline \"low\""), "{stdout}");
    assert!(!stdout.contains("REGRESSION"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A durable lockstep run logs into a fresh subdirectory, measures the disk there, reports its
/// log and its commit-to-durable, and leaves the directory as it found it; other engines, and a
/// baseline of another durability, are refused before anything runs.
#[test]
fn a_durable_run_reports_its_log_and_leaves_the_directory_as_it_was() {
    let dir = scratch("durable");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("mine"), b"keep me").unwrap();
    let json = dir.join("run.json");
    let (data_arg, json_arg) = (data.to_str().unwrap(), json.to_str().unwrap());
    let out = loadgen(
        &[
            "--durable",
            data_arg,
            "--durability",
            "synced",
            "--rate",
            "2000",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
            "--no-limit",
            "--quiet",
            "--paths",
            "100",
            "--json",
            json_arg,
            "--save-baseline",
            "synced",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["config"]["durable"], true);
    assert_eq!(report["config"]["durability"], "synced");
    assert!(report["disk"]["fdatasyncs_per_sec"].as_f64().unwrap() > 0.0);
    let durable = &report["runs"][0]["durable"];
    assert!(durable["log_bytes"].as_u64().unwrap() > 0, "{durable}");
    assert!(durable["wait_durable_latency_us"]["samples"].as_u64().unwrap() > 0, "{durable}");
    let left: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["mine"], "the run left its directories behind");

    for (args, says) in [
        (&["--durable", data_arg, "--engine", "mutex"][..], "--engine lockstep"),
        (&["--durable", data_arg, "--baseline", "synced"], "durability: synced in baseline \"synced\", written in this run"),
        (&["--baseline", "synced"], "durability: synced in baseline \"synced\", none (memory only) in this run"),
    ] {
        let out = loadgen(args, &dir);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
