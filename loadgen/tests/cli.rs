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

/// [`loadgen`] with `TMPDIR` set to `tmp`.
fn loadgen_in(tmp: &Path, args: &[&str]) -> Output {
    let _one_at_a_time = RUNS.lock().unwrap_or_else(PoisonError::into_inner);
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .env("TMPDIR", tmp)
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
    assert!(svg.contains("2 producers, 3 shards, 100 paths (uniform), 5 parts/commit"), "and the workload");
    assert!(svg.contains("divisor 6, max level 7"), "and the geometry");
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
        (
            &["--durable", data_arg, "--baseline", "synced"],
            "durability: synced in baseline \"synced\", written in this run",
        ),
        (
            &["--baseline", "synced"],
            "durability: synced in baseline \"synced\", none (memory only) in this run",
        ),
    ] {
        let out = loadgen(args, &dir);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--engine nats` end to end: a nats-server started by the run (CI installs it), the limit row
/// measured on JetStream alone, lockstep behind the stream with every commit accounted for, the
/// ingest note, and nothing left in the temp dir.
#[test]
fn a_nats_run_publishes_follows_and_measures_its_limit() {
    let dir = scratch("nats");
    let json = dir.join("run.json");
    // The server's store goes in the temp dir: a fresh one, to see that the run removed it.
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = loadgen_in(
        &tmp,
        &[
            "--engine",
            "nats",
            "--producers",
            "2",
            "--parts-per-commit",
            "8",
            "--in-flight",
            "16",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--paths",
            "100",
            "--quiet",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    assert!(stdout.contains("limit: JetStream alone"), "{stdout}");
    assert!(stdout.contains("x the bare consume rate"), "{stdout}");
    assert!(stdout.contains("final visible commit"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &report["runs"][0];
    assert_eq!(run["engine"], "nats");
    assert!(run["records_per_sec"].as_f64().unwrap() > 0.0, "{run}");
    assert!(report["limit"]["records_per_sec"].as_f64().unwrap() > 0.0, "{report}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a run left a nats-server store behind: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs the loadgen with `args`, sends it SIGINT once a line of its stderr contains `when`, and
/// returns its exit status and everything it printed on stderr.
fn interrupted(args: &[&str], baselines: &Path, when: &str) -> (Option<i32>, String, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let _one_at_a_time = RUNS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .env("LOADGEN_BASELINE_DIR", baselines)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the loadgen binary runs");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the loadgen ended before printing {when:?}: {seen}");
        }
        seen.push_str(&line);
        if line.contains(when) {
            break;
        }
    }
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    stderr.read_to_string(&mut seen).unwrap();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    (child.wait().unwrap().code(), stdout, seen)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Ctrl-C in the warm-up: it says so, reports no figure and writes no file (no empty `.hgrm`,
/// no empty chart, no baseline).
#[test]
fn ctrl_c_in_the_warm_up_writes_nothing_and_says_it_was_interrupted() {
    let dir = scratch("ctrl-c-warmup");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (json, plot, prefix) =
        (out.join("run.json"), out.join("run.svg"), out.join("run").display().to_string());
    let (json, plot) = (json.display().to_string(), plot.display().to_string());
    let args = [
        "--engine",
        "all",
        "--warmup",
        "20s",
        "--duration",
        "1s",
        "--no-limit",
        "--progress",
        "--json",
        &json,
        "--plot",
        &plot,
        "--hgrm",
        &prefix,
        "--save-baseline",
        "cut",
    ];
    let (code, stdout, stderr) = interrupted(&args, &dir, "warm-up");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted by Ctrl-C: not measured: lockstep, mutex, channel, raw"),
        "{stderr}"
    );
    assert!(stderr.contains("no engine was measured"), "{stderr}");
    assert!(!stderr.contains("did not keep up"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
    assert!(!dir.join("cut.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Ctrl-C in the first engine's window: that engine is reported with the window it really
/// measured, files are written for it alone, and the others are named as not run.
#[test]
fn ctrl_c_in_the_window_reports_the_real_window_and_only_the_engines_that_ran() {
    let dir = scratch("ctrl-c-window");
    let prefix = dir.join("run").display().to_string();
    let json = dir.join("run.json").display().to_string();
    let args = [
        "--engine",
        "all",
        "--warmup",
        "0s",
        "--duration",
        "20s",
        "--no-limit",
        "--progress",
        "--paths",
        "100",
        "--hgrm",
        &prefix,
        "--json",
        &json,
    ];
    let (code, stdout, stderr) = interrupted(&args, &dir, "lockstep measuring");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("not measured: mutex, channel, raw"), "{stderr}");
    assert!(stdout.contains("INTERRUPTED by Ctrl-C"), "{stdout}");
    assert!(stdout.contains("cut short by Ctrl-C"), "{stdout}");
    assert!(stdout.contains("each engine asked 20.00 s"), "{stdout}");
    let measured = stdout.split("measured: lockstep ").nth(1).expect("the real window is printed");
    let seconds: f64 = measured.split(' ').next().unwrap().parse().unwrap();
    assert!(seconds < 15.0, "{stdout}");
    assert_eq!(
        files_in(&dir),
        ["run.json", "run.lockstep.commit.hgrm", "run.lockstep.visible.hgrm"],
        "files for the engines that did not run"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["runs"].as_array().unwrap().len(), 1);
    assert!(report["runs"][0]["window_secs"].as_f64().unwrap() < 15.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `/dev/null` is a fine destination for every output, `-` sends one of them to stdout, and
/// nothing named `/dev/null.*` is made.
#[test]
fn devices_and_stdout_are_accepted_as_outputs() {
    let dir = scratch("devices");
    let before = files_in(Path::new("/dev"));
    let mut args = SHORT.to_vec();
    args.extend(["--json", "/dev/null", "--hgrm", "/dev/null", "--hlog", "/dev/null", "--plot", "-"]);
    let out = loadgen(&args, &dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(text(&out.stdout).starts_with("<svg"), "stdout holds the chart alone");
    assert!(stderr.contains("records/s"), "the table goes to stderr");
    let made: Vec<String> = files_in(Path::new("/dev")).into_iter().filter(|f| !before.contains(f)).collect();
    assert!(made.iter().all(|f| !f.starts_with("null.")), "{made:?}");

    // --hgrm into a directory names the files by engine.
    let mut args = SHORT.to_vec();
    let inside = format!("{}/", dir.join("hgrm").display());
    std::fs::create_dir_all(dir.join("hgrm")).unwrap();
    args.extend(["--hgrm", &inside]);
    assert_eq!(loadgen(&args, &dir).status.code(), Some(0));
    assert_eq!(files_in(&dir.join("hgrm")), ["raw.commit.hgrm", "raw.visible.hgrm"]);

    // Refused before the run: two outputs on stdout, --hgrm -, one file for two outputs.
    let same = dir.join("same.out").display().to_string();
    for (args, says) in [
        (&["--json", "-", "--hlog", "-"][..], "stdout"),
        (&["--hgrm", "-"], "--hgrm"),
        (&["--json", &same, "--hlog", &same], "would both write"),
        (&["--json", "/"], "is a directory"),
    ] {
        let out = loadgen(args, &dir);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!Path::new(&same).exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--progress` with stderr a pipe: plain lines, not a bar that draws nothing.
#[test]
fn progress_into_a_pipe_is_plain_lines() {
    let dir = scratch("progress");
    let out = loadgen(
        &["--engine", "raw", "--duration", "300ms", "--warmup", "200ms", "--no-limit", "--progress"],
        &dir,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("loadgen: raw warm-up ")), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("loadgen: raw measuring ") && l.ends_with("commits/s")),
        "{stderr}"
    );
    assert!(!stderr.contains('\r') && !stderr.contains('\u{1b}'), "no terminal control: {stderr:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--repeat N` keeps every run's records/s; `loadgen compare` reads two saved reports without
/// running anything, refuses different workloads, and gates on the threshold and the noise.
#[test]
fn repeated_runs_and_offline_comparison() {
    let dir = scratch("compare");
    let first = dir.join("first.json").display().to_string();
    let mut args = SHORT.to_vec();
    args.extend(["--repeat", "3", "--json", &first]);
    let out = loadgen(&args, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("3 times each"), "{}", text(&out.stdout));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&first).unwrap()).unwrap();
    assert_eq!(report["schema"], 2);
    assert_eq!(report["config"]["repeat"], 3);
    let samples = report["runs"][0]["repeats"]["records_per_sec"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    let mut sorted: Vec<f64> = samples.iter().map(|v| v.as_f64().unwrap()).collect();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(
        report["runs"][0]["records_per_sec"].as_f64(),
        Some(sorted[1]),
        "the median run stands for raw"
    );

    let compare = |a: &str, b: &str, extra: &[&str]| {
        let mut args = vec!["compare", a, b];
        args.extend(extra);
        loadgen(&args, &dir)
    };
    // The same report: nothing changed, status 0, without running (no engine note).
    let out = compare(&first, &first, &["--fail-on-regression", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("raw records/s"), "{}", text(&out.stdout));

    // A far slower copy with tight samples: a regression beyond threshold and noise.
    let mut slower = report.clone();
    let scaled: Vec<f64> = sorted.iter().map(|v| v * 0.01).collect();
    slower["runs"][0]["records_per_sec"] = Value::from(scaled[1]);
    slower["runs"][0]["repeats"]["records_per_sec"] = serde_json::json!(scaled);
    let slower_path = dir.join("slower.json").display().to_string();
    std::fs::write(&slower_path, slower.to_string()).unwrap();
    let out = compare(&first, &slower_path, &["--fail-on-regression", "10"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("REGRESSION: raw records/s"), "{}", text(&out.stdout));

    // A schema-1 report (no schema, no repeats) of another workload: refused, naming it.
    let mut old = report.clone();
    for key in ["schema", "interrupted"] {
        old.as_object_mut().unwrap().remove(key);
    }
    old["config"].as_object_mut().unwrap().remove("repeat");
    old["runs"][0].as_object_mut().unwrap().remove("repeats");
    old["config"]["mode"] = Value::from("fixed-rate");
    old["config"]["rate"] = Value::from(100_000);
    let old_path = dir.join("old.json").display().to_string();
    std::fs::write(&old_path, old.to_string()).unwrap();
    let out = compare(&old_path, &first, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mode: fixed-rate in") && stderr.contains("closed-loop in"), "{stderr}");
    // The same schema-1 report of the same workload compares.
    old["config"]["mode"] = Value::from("closed-loop");
    old["config"]["rate"] = Value::Null;
    std::fs::write(&old_path, old.to_string()).unwrap();
    let out = compare(&old_path, &first, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 run)"), "{}", text(&out.stdout));

    // A missing side says so.
    let out = compare("nope.json", &first, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope.json"), "{}", text(&out.stderr));

    // A live run against a baseline of another workload is refused before it runs.
    std::fs::copy(&first, dir.join("closed.json")).unwrap();
    let mut args = SHORT.to_vec();
    args.extend(["--rate", "100000", "--baseline", "closed"]);
    let out = loadgen(&args, &dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mode: closed-loop in baseline \"closed\", fixed-rate in this run"), "{stderr}");
    assert!(out.stdout.is_empty(), "it ran before refusing");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A rate far above what the engine can take: a loud warning, on stderr even with --quiet, and
/// in the JSON; the throughput column shows the share of the rate kept, not of the limit.
#[test]
fn a_rate_above_capacity_warns_and_is_in_the_json() {
    let dir = scratch("overload");
    let out = loadgen(
        &[
            "--engine",
            "raw",
            "--duration",
            "200ms",
            "--warmup",
            "0s",
            "--quiet",
            "--rate",
            "1000000000",
            "--json",
            "-",
        ],
        &dir,
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("WARNING: raw could not keep --rate 1,000,000,000"), "{stderr}");
    assert!(stderr.contains("÷ rate"), "{stderr}");
    assert!(!stderr.contains("÷ limit"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &report["runs"][0];
    assert_eq!(run["overloaded"], true, "{run}");
    assert!(run["rate_kept"].as_f64().unwrap() < 0.9, "{run}");
    std::fs::remove_dir_all(&dir).unwrap();
}
