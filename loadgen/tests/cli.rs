//! The command line end to end: refusals come before any run, outputs go where they were asked
//! to, and baselines compare. Runs are a fraction of a second of `raw`; nothing here depends on
//! how fast anything is.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

fn loadgen(args: &[&str], baselines: &Path) -> Output {
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
    args.extend([
        "--record",
        "u64",
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
    assert_eq!(report["config"]["record"], "u64");
    assert_eq!(report["limit"], Value::Null);
    assert_eq!(report["runs"][0]["engine"], "raw");
    assert!(report["runs"][0]["records_per_sec"].as_f64().unwrap() > 0.0);
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

    // Against itself at 100%, nothing can regress.
    let mut same = SHORT.to_vec();
    same.extend(["--baseline", "before", "--fail-on-regression", "100"]);
    let out = loadgen(&same, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    std::fs::remove_dir_all(&dir).unwrap();
}
