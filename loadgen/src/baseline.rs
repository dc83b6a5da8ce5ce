//! Baselines (`--save-baseline NAME`, `--baseline NAME`, `--fail-on-regression PCT`), as
//! criterion and rlt users know them: a run's JSON report kept under a name, and a later run
//! compared with it figure by figure.
//!
//! A baseline is the JSON report itself (see [`crate::json`]), so a saved file is also what
//! scripts read. It is compared as JSON, so a baseline written by an older loadgen still loads:
//! a figure it lacks is shown as `-`.

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
    let text = std::fs::read_to_string(&path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            format!("no baseline {name:?} at {} (save one first with --save-baseline {name})", path.display())
        } else {
            format!("cannot read baseline {}: {error}", path.display())
        }
    })?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|error| format!("baseline {} is not JSON: {error}", path.display()))?;
    if !value["runs"].is_array() {
        return Err(format!("baseline {} is not a loadgen report (no \"runs\")", path.display()));
    }
    Ok(value)
}

/// Refuses a baseline taken at another durability than `now` (`None`: memory only): a durable
/// run's throughput is not a regression of a memory-only one, nor the reverse. A baseline from
/// before `--durable` has no `durability` and was memory only.
pub fn same_durability(name: &str, baseline: &Value, now: Option<&str>) -> Result<(), String> {
    let then = baseline["config"]["durability"].as_str();
    if then == now {
        return Ok(());
    }
    let say = |d: Option<&str>| d.map_or("memory only".to_owned(), |d| format!("durable, {d}"));
    Err(format!(
        "baseline {name:?} was taken {}, this run is {}: their figures do not compare \
         (save a baseline with the same --durable/--durability)",
        say(then),
        say(now)
    ))
}

/// One figure beside its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub figure: String,
    pub baseline: Option<f64>,
    pub now: Option<f64>,
    /// Higher is better (throughput) rather than lower (latency).
    pub higher_is_better: bool,
    /// Checked by `--fail-on-regression`: an engine's throughput. The limit is shown but not
    /// checked: it measures the machine, not the code.
    pub checked: bool,
}

impl Row {
    /// The change in percent of the baseline.
    pub fn change(&self) -> Option<f64> {
        match (self.baseline, self.now) {
            (Some(b), Some(n)) if b != 0.0 => Some((n - b) / b * 100.0),
            _ => None,
        }
    }

    /// Whether this is a throughput figure that dropped by more than `pct` percent.
    pub fn regressed(&self, pct: f64) -> bool {
        self.checked && self.higher_is_better && self.change().is_some_and(|change| change < -pct)
    }
}

/// The comparison of a run (its JSON report) with a baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Settings that differ between the two runs: `(key, baseline, now)`.
    pub differences: Vec<(String, String, String)>,
}

/// Compares `now` with `baseline` (both JSON reports), engine by engine.
pub fn compare(baseline: &Value, now: &Value) -> Comparison {
    let mut rows = Vec::new();
    rows.push(Row {
        figure: "limit records/s".to_owned(),
        baseline: baseline["limit"]["records_per_sec"].as_f64(),
        now: now["limit"]["records_per_sec"].as_f64(),
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
            rows.push(Row {
                figure: format!("{engine} {figure}"),
                baseline: old.pointer(pointer).and_then(Value::as_f64),
                now: run.pointer(pointer).and_then(Value::as_f64),
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
    if let (Some(old), Some(new)) = (baseline["config"].as_object(), now["config"].as_object()) {
        for (key, value) in new {
            let previous = old.get(key).unwrap_or(&Value::Null);
            if previous != value && key != "commit" {
                differences.push((key.clone(), previous.to_string(), value.to_string()));
            }
        }
    }
    Comparison { rows, differences }
}

impl Comparison {
    /// The throughput figures that dropped by more than `pct` percent.
    pub fn regressions(&self, pct: f64) -> Vec<&Row> {
        self.rows.iter().filter(|row| row.regressed(pct)).collect()
    }

    /// The comparison as a table.
    pub fn render(&self, name: &str, baseline: &Value) -> String {
        let mut out = String::new();
        let commit = baseline["config"]["commit"].as_str().unwrap_or("unknown commit");
        let _ = writeln!(out, "against baseline {name:?} (taken at {commit}):");
        for (key, old, new) in &self.differences {
            let _ = writeln!(out, "  note: {key} was {old}, now {new}: the figures may not compare");
        }
        let _ = writeln!(out, "{:<36}{:>14}{:>14}{:>10}", "figure", "baseline", "this run", "change");
        let show = |v: Option<f64>| v.map_or("-".to_owned(), crate::format::figure);
        for row in &self.rows {
            let change = row.change().map_or("-".to_owned(), |c| format!("{c:+.1}%"));
            let _ = writeln!(
                out,
                "{:<36}{:>14}{:>14}{:>10}",
                row.figure,
                show(row.baseline),
                show(row.now),
                change
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
            "config": {"record": "i64", "producers": 1, "commit": "abc"},
            "limit": {"records_per_sec": limit},
            "runs": [
                {"engine": "lockstep", "records_per_sec": lockstep,
                 "commit_latency_us": {"p50": 1.0, "p99": p99}, "visible_latency_us": null},
                {"engine": "raw", "records_per_sec": raw,
                 "commit_latency_us": {"p50": 0.1, "p99": 0.2}, "visible_latency_us": {"p50": 3.0, "p99": 9.0}},
            ],
        })
    }

    #[test]
    fn each_figure_is_shown_beside_the_baseline_with_its_change() {
        let comparison = compare(&report(50e6, 2e6, 20e6, 10.0), &report(50e6, 1.8e6, 21e6, 12.0));
        let row = |figure: &str| comparison.rows.iter().find(|r| r.figure == figure).unwrap().clone();
        assert!((row("lockstep records/s").change().unwrap() + 10.0).abs() < 1e-9);
        assert!((row("raw records/s").change().unwrap() - 5.0).abs() < 1e-9);
        assert!((row("lockstep commit call p99 µs").change().unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(row("lockstep commit-to-visible p99 µs").now, None);
        assert_eq!(row("limit records/s").change(), Some(0.0));
        assert!(comparison.differences.is_empty());
        let table = comparison.render("main", &report(1.0, 1.0, 1.0, 1.0));
        assert!(table.contains("lockstep records/s"), "{table}");
        assert!(table.contains("-10.0%"), "{table}");
        assert!(table.contains("abc"), "{table}");
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

    #[test]
    fn a_baseline_of_another_durability_is_refused() {
        let memory = report(50e6, 2e6, 20e6, 1.0);
        let mut written = memory.clone();
        written["config"]["durable"] = json!(true);
        written["config"]["durability"] = json!("written");
        let mut synced = written.clone();
        synced["config"]["durability"] = json!("synced");
        assert!(same_durability("m", &memory, None).is_ok());
        assert!(same_durability("w", &written, Some("written")).is_ok());
        let refused = same_durability("m", &memory, Some("synced")).unwrap_err();
        assert!(refused.contains("memory only") && refused.contains("durable, synced"), "{refused}");
        assert!(same_durability("w", &written, None).is_err());
        assert!(same_durability("s", &synced, Some("written")).is_err());
    }

    #[test]
    fn differing_settings_are_noted_and_a_missing_baseline_says_how_to_make_one() {
        let mut other = report(50e6, 2e6, 20e6, 1.0);
        other["config"]["record"] = json!("shared");
        let comparison = compare(&report(50e6, 2e6, 20e6, 1.0), &other);
        assert_eq!(
            comparison.differences,
            [("record".to_owned(), "\"i64\"".to_owned(), "\"shared\"".to_owned())]
        );

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
