//! Baselines (`--save-baseline NAME`, `--baseline NAME`, `--fail-on-regression PCT`), as
//! criterion and rlt users know them: a run's JSON report kept under a name, and a later run
//! compared with it figure by figure.
//!
//! A baseline is the JSON report itself (see [`crate::json`]), so a saved file is also what
//! scripts read, and `loadgen compare A.json B.json` compares two of them without running
//! anything (as critcmp and `vegeta report` do). It is compared as JSON, so a baseline written by
//! an older loadgen (schema 1) still loads: a figure it lacks is shown as `-`.
//!
//! Two rules make a comparison honest:
//! - **Same workload or none.** Reports whose workload differs ([`WORKLOAD`]: the mode and rate,
//!   the geometry, the record, durability…) are refused, naming each setting that differs;
//!   when a run was taken, at which commit and for how long are not the workload.
//! - **A noise model**, as criterion has one. With `--repeat N` a report keeps every
//!   repetition's records/s; a side's figure is their median and its noise half their range. A
//!   throughput counts as regressed (or improved) only when its change exceeds both the
//!   threshold (`--fail-on-regression PCT`) and the two sides' noise added. A side with one run
//!   has no noise model: then the threshold alone decides, and the table says so.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where baselines live: `$LOADGEN_BASELINE_DIR`, else `$CARGO_TARGET_DIR/loadgen-baselines`,
/// else `target/loadgen-baselines` under the current directory.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOADGEN_BASELINE_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("loadgen-baselines")
}

pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// Reads baseline `name` from `dir`; the message says what to do when it is missing.
pub fn load(dir: &Path, name: &str) -> Result<Value, String> {
    let path = path(dir, name);
    read(&path).map_err(|error| match error {
        Unreadable::Missing => {
            format!("no baseline {name:?} at {} (save one first with --save-baseline {name})", path.display())
        }
        Unreadable::Other(why) => format!("baseline {why}"),
    })
}

/// Why a report could not be read.
#[derive(Debug)]
pub enum Unreadable {
    Missing,
    Other(String),
}

/// Reads a saved JSON report (any schema): `path` must hold one, with its `runs`.
pub fn read(path: &Path) -> Result<Value, Unreadable> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            Unreadable::Missing
        } else {
            Unreadable::Other(format!("{}: cannot read it: {error}", path.display()))
        }
    })?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|error| Unreadable::Other(format!("{} is not JSON: {error}", path.display())))?;
    if !value["runs"].is_array() {
        return Err(Unreadable::Other(format!("{} is not a loadgen report (no \"runs\")", path.display())));
    }
    Ok(value)
}

/// The settings that make the workload: two runs that differ in one measured different things,
/// and their figures do not compare (`mode` and `rate` included: a fixed-rate run moves what it
/// was asked to, a closed loop what it can). Not among them: when and at which commit the run
/// was taken, how long it measured, `--repeat`, and which engines ran (rows are matched by
/// engine).
pub const WORKLOAD: [&str; 16] = [
    "mode",
    "rate",
    "producers",
    "shards",
    "divisor",
    "max_level",
    "paths",
    "distribution",
    "parts_per_commit",
    "record",
    "record_bytes",
    "queue_capacity",
    "pin",
    "durable",
    "durability",
    "retain_all",
];

/// A setting's value in a report's config, with the defaults of reports written before the
/// setting existed (memory only, nothing retained, 16-byte records).
fn setting<'a>(config: &'a Value, key: &str) -> std::borrow::Cow<'a, Value> {
    use std::borrow::Cow;
    match (config.get(key), key) {
        (Some(value), _) => Cow::Borrowed(value),
        (None, "durable" | "retain_all" | "pin") => Cow::Owned(Value::Bool(false)),
        (None, "record_bytes") => Cow::Owned(Value::from(crate::cli::DEFAULT_RECORD_BYTES)),
        (None, _) => Cow::Owned(Value::Null),
    }
}

/// Shows a setting as its flag would take it.
fn show(key: &str, value: &Value) -> String {
    match (key, value) {
        ("durability", Value::Null) => "none (memory only)".to_owned(),
        ("rate", Value::Null) => "none (closed loop)".to_owned(),
        (_, Value::String(text)) => text.clone(),
        (_, Value::Null) => "not recorded".to_owned(),
        (_, other) => other.to_string(),
    }
}

/// Refuses to compare two reports whose workload differs; the message names every setting
/// that does, with both values. `then` names the baseline, `now` the other side.
pub fn same_workload(then: (&str, &Value), now: (&str, &Value)) -> Result<(), String> {
    let (old, new) = (&then.1["config"], &now.1["config"]);
    let differ: Vec<String> = WORKLOAD
        .iter()
        .filter(|key| setting(old, key) != setting(new, key))
        .map(|key| {
            format!(
                "{}: {} in {}, {} in {}",
                key.replace('_', "-"),
                show(key, &setting(old, key)),
                then.0,
                show(key, &setting(new, key)),
                now.0
            )
        })
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} and {} ran different workloads, so their figures do not compare ({}); \
         compare runs of the same settings",
        then.0,
        now.0,
        differ.join("; ")
    ))
}

/// One figure's samples in a report: every repetition's (`repeats`, schema 2), else the one
/// figure.
fn samples(run: &Value, pointer: &str) -> Vec<f64> {
    if pointer == "/records_per_sec" {
        if let Some(all) = run.pointer("/repeats/records_per_sec").and_then(Value::as_array) {
            let all: Vec<f64> = all.iter().filter_map(Value::as_f64).collect();
            if !all.is_empty() {
                return all;
            }
        }
    }
    run.pointer(pointer).and_then(Value::as_f64).into_iter().collect()
}

/// The median of `samples`; `None` when empty.
fn median(samples: &[f64]) -> Option<f64> {
    match samples.len() {
        0 => None,
        1 => Some(samples[0]),
        _ => crate::json::spread(samples).map(|(median, ..)| median),
    }
}

/// One figure beside its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub figure: String,
    /// The baseline's samples (one per repetition; one for a single run).
    pub baseline_samples: Vec<f64>,
    pub now_samples: Vec<f64>,
    pub baseline: Option<f64>,
    pub now: Option<f64>,
    /// Higher is better (throughput) rather than lower (latency).
    pub higher_is_better: bool,
    /// Checked by `--fail-on-regression`: an engine's throughput. The limit is shown but not
    /// checked: it measures the machine, not the code.
    pub checked: bool,
}

/// What a checked figure did, beyond the threshold and the noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Regressed,
    Improved,
    /// The change is within the threshold or the noise.
    Unchanged,
}

impl Row {
    /// The change of the medians, in percent of the baseline's.
    pub fn change(&self) -> Option<f64> {
        match (self.baseline, self.now) {
            (Some(b), Some(n)) if b != 0.0 => Some((n - b) / b * 100.0),
            _ => None,
        }
    }

    /// The noise, in percent of the baseline's median: the spread (half the range) of each
    /// side's samples, added. `None` when neither side was repeated (no noise model).
    pub fn noise(&self) -> Option<f64> {
        let base = self.baseline.filter(|&b| b > 0.0)?;
        let half_range = |samples: &[f64]| {
            crate::json::spread(samples).map(|(_, min, max, _)| (max - min) / 2.0 / base * 100.0)
        };
        match (half_range(&self.baseline_samples), half_range(&self.now_samples)) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        }
    }

    /// Regressed or improved: the change is beyond both `pct` and the noise.
    pub fn verdict(&self, pct: f64) -> Verdict {
        let Some(change) = self.change() else { return Verdict::Unchanged };
        let bar = pct.max(self.noise().unwrap_or(0.0));
        let better = if self.higher_is_better { change } else { -change };
        if better < -bar {
            Verdict::Regressed
        } else if better > bar {
            Verdict::Improved
        } else {
            Verdict::Unchanged
        }
    }

    /// Whether this is a checked throughput figure that dropped beyond `pct` and the noise.
    pub fn regressed(&self, pct: f64) -> bool {
        self.checked && self.verdict(pct) == Verdict::Regressed
    }
}

/// The comparison of a run (its JSON report) with a baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Settings that differ but leave the figures comparable (the window's length, the
    /// warm-up): `(key, baseline, now)`.
    pub differences: Vec<(String, String, String)>,
}

/// Compares `now` with `baseline` (both JSON reports), engine by engine. The workloads must be
/// the same ([`same_workload`]).
pub fn compare(baseline: &Value, now: &Value) -> Comparison {
    let mut rows = Vec::new();
    let limit = |report: &Value| report["limit"]["records_per_sec"].as_f64().into_iter().collect::<Vec<_>>();
    let (limit_then, limit_now) = (limit(baseline), limit(now));
    rows.push(Row {
        figure: "limit records/s".to_owned(),
        baseline: median(&limit_then),
        now: median(&limit_now),
        baseline_samples: limit_then,
        now_samples: limit_now,
        higher_is_better: true,
        checked: false,
    });
    let empty = Vec::new();
    let runs = |report: &Value| report["runs"].as_array().unwrap_or(&empty).clone();
    let (before, after) = (runs(baseline), runs(now));
    for run in &after {
        let Some(engine) = run["engine"].as_str() else { continue };
        let old = before.iter().find(|r| r["engine"].as_str() == Some(engine)).unwrap_or(&Value::Null);
        let mut row = |figure: &str, pointer: &str, higher_is_better: bool| {
            let (then, now) = (samples(old, pointer), samples(run, pointer));
            rows.push(Row {
                figure: format!("{engine} {figure}"),
                baseline: median(&then),
                now: median(&now),
                baseline_samples: then,
                now_samples: now,
                higher_is_better,
                checked: higher_is_better,
            });
        };
        row("records/s", "/records_per_sec", true);
        row("commit call p50 µs", "/commit_latency_us/p50", false);
        row("commit call p99 µs", "/commit_latency_us/p99", false);
        row("commit-to-visible p50 µs", "/visible_latency_us/p50", false);
        row("commit-to-visible p99 µs", "/visible_latency_us/p99", false);
    }
    let mut differences = Vec::new();
    for key in ["duration_secs", "warmup_secs"] {
        let (old, new) = (&baseline["config"][key], &now["config"][key]);
        if old != new {
            differences.push((key.to_owned(), show(key, old), show(key, new)));
        }
    }
    Comparison { rows, differences }
}

/// How many samples a report's figures stand on (its `--repeat`; 1 for older reports).
fn repeat(report: &Value) -> u64 {
    report["config"]["repeat"].as_u64().unwrap_or(1)
}

impl Comparison {
    /// The throughput figures that dropped beyond `pct` percent and beyond the noise.
    pub fn regressions(&self, pct: f64) -> Vec<&Row> {
        self.rows.iter().filter(|row| row.regressed(pct)).collect()
    }

    /// Whether some checked figure has no noise model (a side with a single sample).
    pub fn unrepeated(&self) -> bool {
        self.rows
            .iter()
            .any(|row| row.checked && (row.baseline_samples.len() < 2 || row.now_samples.len() < 2))
    }

    /// The comparison as a table: `then` names the baseline and `now` this side. `pct` is the
    /// threshold of the verdicts (`--fail-on-regression`; 0 without it: beyond the noise).
    pub fn render(&self, then: (&str, &Value), now: (&str, &Value), pct: Option<f64>) -> String {
        let mut out = String::new();
        let commit =
            |report: &Value| report["config"]["commit"].as_str().unwrap_or("unknown commit").to_owned();
        let _ = writeln!(
            out,
            "{} (at {}, {} run{}) against {} (at {}, {} run{}):",
            now.0,
            commit(now.1),
            repeat(now.1),
            if repeat(now.1) == 1 { "" } else { "s" },
            then.0,
            commit(then.1),
            repeat(then.1),
            if repeat(then.1) == 1 { "" } else { "s" },
        );
        for (key, old, new) in &self.differences {
            let _ = writeln!(out, "  ({key} was {old}, now {new}: rates compare, totals do not)");
        }
        let _ = writeln!(
            out,
            "{:<36}{:>16}{:>16}{:>10}{:>9}  verdict",
            "figure", "baseline", "this run", "change", "noise"
        );
        let show = |v: Option<f64>, samples: &[f64]| {
            let value = v.map_or("-".to_owned(), crate::format::figure);
            match crate::json::spread(samples) {
                Some((_, _, _, pct)) => format!("{value} ±{pct:.0}%"),
                None => value,
            }
        };
        let threshold = pct.unwrap_or(0.0);
        for row in &self.rows {
            let change = row.change().map_or("-".to_owned(), |c| format!("{c:+.1}%"));
            let noise = row.noise().map_or("-".to_owned(), |n| format!("±{n:.1}%"));
            let verdict = match (row.checked, row.verdict(threshold)) {
                (false, _) => "",
                (true, Verdict::Regressed) => "REGRESSED",
                (true, Verdict::Improved) => "improved",
                (true, Verdict::Unchanged) if row.change().is_none() => "",
                (true, Verdict::Unchanged) => "within threshold and noise",
            };
            let _ = writeln!(
                out,
                "{:<36}{:>16}{:>16}{:>10}{:>9}  {verdict}",
                row.figure,
                show(row.baseline, &row.baseline_samples),
                show(row.now, &row.now_samples),
                change,
                noise,
            );
        }
        let _ = writeln!(
            out,
            "  (medians of each side's runs, ±: half their range; noise: both sides' added; records/s"
        );
        let _ = writeln!(
            out,
            "   counts as regressed or improved only beyond {} and beyond the noise)",
            pct.map_or("the noise alone".to_owned(), |p| format!("--fail-on-regression {p}%"))
        );
        if self.unrepeated() {
            let _ = writeln!(
                out,
                "  note: a side with one run has no noise model; repeated runs (--repeat 5) make a gate that does not flap"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(limit: f64, lockstep: f64, raw: f64, p99: f64) -> Value {
        json!({
            "config": {"record": "i64", "producers": 1, "commit": "abc", "mode": "closed-loop", "rate": null,
                       "taken_at_unix": 1, "duration_secs": 3.0},
            "limit": {"records_per_sec": limit},
            "runs": [
                {"engine": "lockstep", "records_per_sec": lockstep,
                 "commit_latency_us": {"p50": 1.0, "p99": p99}, "visible_latency_us": null},
                {"engine": "raw", "records_per_sec": raw,
                 "commit_latency_us": {"p50": 0.1, "p99": 0.2}, "visible_latency_us": {"p50": 3.0, "p99": 9.0}},
            ],
        })
    }

    /// `report` with lockstep's records/s repeated: `samples`, their median the figure.
    fn repeated(samples: &[f64]) -> Value {
        let mut value = report(50e6, 0.0, 20e6, 1.0);
        value["config"]["repeat"] = json!(samples.len());
        value["runs"][0]["records_per_sec"] = json!(median(samples).unwrap());
        value["runs"][0]["repeats"] = json!({"records_per_sec": samples});
        value["runs"][1]["repeats"] = json!({"records_per_sec": vec![20e6; samples.len()]});
        value
    }

    fn row<'a>(comparison: &'a Comparison, figure: &str) -> &'a Row {
        comparison.rows.iter().find(|r| r.figure == figure).unwrap()
    }

    #[test]
    fn each_figure_is_shown_beside_the_baseline_with_its_change() {
        let (then, now) = (report(50e6, 2e6, 20e6, 10.0), report(50e6, 1.8e6, 21e6, 12.0));
        let comparison = compare(&then, &now);
        assert!((row(&comparison, "lockstep records/s").change().unwrap() + 10.0).abs() < 1e-9);
        assert!((row(&comparison, "raw records/s").change().unwrap() - 5.0).abs() < 1e-9);
        assert!((row(&comparison, "lockstep commit call p99 µs").change().unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(row(&comparison, "lockstep commit-to-visible p99 µs").now, None);
        assert_eq!(row(&comparison, "limit records/s").change(), Some(0.0));
        assert!(comparison.differences.is_empty());
        let table = comparison.render(("baseline \"main\"", &then), ("this run", &now), None);
        assert!(table.contains("lockstep records/s"), "{table}");
        assert!(table.contains("-10.0%"), "{table}");
        assert!(table.contains("abc"), "{table}");
        assert!(table.contains("no noise model"), "{table}");
        // When a run was taken is no setting: never a note.
        let mut later = now.clone();
        later["config"]["taken_at_unix"] = json!(999_999);
        let table = compare(&then, &later).render(("a", &then), ("b", &later), None);
        assert!(!table.contains("taken_at"), "{table}");
        // A longer window compares (rates), and says so.
        later["config"]["duration_secs"] = json!(10.0);
        let table = compare(&then, &later).render(("a", &then), ("b", &later), None);
        assert!(table.contains("duration_secs was 3.0, now 10.0"), "{table}");
    }

    #[test]
    fn only_a_throughput_drop_beyond_the_threshold_is_a_regression() {
        let comparison = compare(&report(50e6, 2e6, 20e6, 1.0), &report(50e6, 1.8e6, 21e6, 100.0));
        let names =
            |pct: f64| comparison.regressions(pct).iter().map(|r| r.figure.clone()).collect::<Vec<_>>();
        // lockstep dropped 10%; the latency got 100x worse, which is not a throughput regression.
        assert_eq!(names(5.0), ["lockstep records/s"]);
        assert!(names(10.5).is_empty());
        assert!(names(100.0).is_empty());
        // The limit measures the machine: a slower machine is not a regression of the code.
        let slower_machine = compare(&report(50e6, 2e6, 20e6, 1.0), &report(10e6, 2e6, 20e6, 1.0));
        assert!(slower_machine.regressions(5.0).is_empty());
    }

    /// The noise model: a drop is a regression only beyond the threshold and the noise (each
    /// side's half range, added), judged on the medians.
    #[test]
    fn a_drop_within_the_noise_is_no_regression() {
        // The seven identical runs, 5.3 to 11.5 M records/s: their own medians differ
        // and the noise is wide, so no threshold flags them.
        let busy = repeated(&[5.3e6, 11.5e6, 8.0e6, 9.1e6, 6.2e6, 10.4e6, 7.7e6]);
        let also_busy = repeated(&[6.1e6, 7.0e6, 5.5e6, 11.0e6, 8.8e6, 6.4e6, 7.2e6]);
        let comparison = compare(&busy, &also_busy);
        let lockstep = row(&comparison, "lockstep records/s");
        assert_eq!(lockstep.baseline, Some(8.0e6));
        assert_eq!(lockstep.now, Some(7.0e6));
        assert!(lockstep.change().unwrap() < -10.0, "the medians dropped 12.5%");
        assert!(lockstep.noise().unwrap() > 60.0, "{:?}", lockstep.noise());
        assert!(comparison.regressions(10.0).is_empty(), "a drop inside the noise flapped the gate");
        assert_eq!(lockstep.verdict(10.0), Verdict::Unchanged);

        // Tight samples, a real drop of 30%: beyond a 10% threshold and the noise.
        let quiet = repeated(&[10.0e6, 10.2e6, 9.9e6, 10.1e6, 10.0e6]);
        let slower = repeated(&[7.0e6, 7.1e6, 6.9e6, 7.0e6, 7.05e6]);
        let comparison = compare(&quiet, &slower);
        assert_eq!(comparison.regressions(10.0).len(), 1);
        // Beyond the noise but within the threshold: not a regression.
        assert!(comparison.regressions(40.0).is_empty());
        // A real gain is reported as one.
        assert_eq!(row(&compare(&slower, &quiet), "lockstep records/s").verdict(10.0), Verdict::Improved);
        let table = comparison.render(("a", &quiet), ("b", &slower), Some(10.0));
        assert!(table.contains("REGRESSED"), "{table}");
        assert!(table.contains("5 runs"), "{table}");
        assert!(!table.contains("no noise model"), "{table}");
    }

    #[test]
    fn reports_of_different_workloads_are_refused_naming_the_setting() {
        let closed = report(50e6, 2e6, 20e6, 1.0);
        let mut fixed = closed.clone();
        fixed["config"]["mode"] = json!("fixed-rate");
        fixed["config"]["rate"] = json!(100_000);
        let refused = same_workload(("baseline \"main\"", &closed), ("this run", &fixed)).unwrap_err();
        assert!(
            refused.contains("mode: closed-loop in baseline \"main\", fixed-rate in this run"),
            "{refused}"
        );
        assert!(
            refused.contains("rate: none (closed loop) in baseline \"main\", 100000 in this run"),
            "{refused}"
        );

        let mut shared = closed.clone();
        shared["config"]["record"] = json!("shared");
        let refused = same_workload(("a", &closed), ("b", &shared)).unwrap_err();
        assert!(refused.contains("record: i64 in a, shared in b"), "{refused}");

        // Durability: a baseline from before --durable was memory only.
        let mut synced = closed.clone();
        synced["config"]["durable"] = json!(true);
        synced["config"]["durability"] = json!("synced");
        let refused = same_workload(("a", &closed), ("b", &synced)).unwrap_err();
        assert!(refused.contains("durability: none (memory only) in a, synced in b"), "{refused}");

        // The time, the commit, the window and --repeat are not the workload.
        let mut later = closed.clone();
        later["config"]["taken_at_unix"] = json!(2);
        later["config"]["commit"] = json!("def");
        later["config"]["duration_secs"] = json!(10.0);
        later["config"]["repeat"] = json!(5);
        assert!(same_workload(("a", &closed), ("b", &later)).is_ok());
        // A setting an older report lacks takes its default then.
        later["config"]["retain_all"] = json!(false);
        later["config"]["record_bytes"] = json!(16);
        assert!(same_workload(("a", &closed), ("b", &later)).is_ok());
    }

    #[test]
    fn a_missing_baseline_says_how_to_make_one() {
        let dir = std::env::temp_dir().join(format!("loadgen-baseline-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = load(&dir, "nope").unwrap_err();
        assert!(missing.contains("--save-baseline nope"), "{missing}");
        std::fs::write(path(&dir, "bad"), "{not json").unwrap();
        assert!(load(&dir, "bad").unwrap_err().contains("not JSON"));
        std::fs::write(path(&dir, "other"), "{\"a\": 1}").unwrap();
        assert!(load(&dir, "other").unwrap_err().contains("not a loadgen report"));
        std::fs::write(path(&dir, "good"), report(1.0, 1.0, 1.0, 1.0).to_string()).unwrap();
        assert!(load(&dir, "good").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
