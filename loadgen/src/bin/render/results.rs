//! Reading what the perf scripts wrote: each run's JSON report (the loadgen's `--json`) and
//! the `.txt` beside it, whose first line is the command that ran it.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A run's JSON report, or why it cannot be read.
pub fn load(path: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("{} is not JSON: {error}", path.display()))
}

/// The `.json` files of `dir`, by name.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_some_and(|e| e == "json") && path.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The file's name without `.json`.
pub fn stem(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.strip_suffix(".json").unwrap_or(&name).to_owned()
}

/// `k` of a repeat's name `<name>.r<k>`, and `<name>`.
pub fn repeat(stem: &str) -> Option<(&str, u64)> {
    let (name, k) = stem.rsplit_once(".r")?;
    let k = k.parse().ok().filter(|_| k.bytes().all(|b| b.is_ascii_digit()))?;
    Some((name, k))
}

/// The configuration a run belongs to: `x.r2.json` and `x.json` are both runs of `x`.
pub fn config_id(path: &Path) -> String {
    let stem = stem(path);
    repeat(&stem).map_or_else(|| stem.clone(), |(name, _)| name.to_owned())
}

/// The runs of one experiment of `dir`, `<name>.r1.json`, `<name>.r2.json`, …, in run order,
/// with their paths; a file that cannot be read is reported and left out.
pub fn experiment(dir: &Path, name: &str) -> Vec<(PathBuf, Value)> {
    let mut runs: Vec<(u64, PathBuf)> = json_files(dir)
        .into_iter()
        .filter_map(|path| {
            let stem = stem(&path);
            let (of, k) = repeat(&stem)?;
            (of == name).then_some((k, path))
        })
        .collect();
    runs.sort();
    runs.into_iter()
        .filter_map(|(_, path)| match load(&path) {
            Ok(document) => Some((path, document)),
            Err(error) => {
                eprintln!("render: skipping {error}");
                None
            }
        })
        .collect()
}

/// The run of `engine` in a report, if it ran.
pub fn run_of<'a>(document: &'a Value, engine: &str) -> Option<&'a Value> {
    document["runs"].as_array()?.iter().find(|run| run["engine"].as_str() == Some(engine))
}

/// A run's figure at `key`, if it has one.
pub fn number(run: Option<&Value>, key: &str) -> Option<f64> {
    run?.get(key)?.as_f64()
}

/// One figure of a run's latency summary: `kind` is `commit`, `visible` or `own_visible`,
/// `key` a percentile (`p99`) or `max`.
pub fn latency(run: Option<&Value>, kind: &str, key: &str) -> Option<f64> {
    run?.get(format!("{kind}_latency_us"))?.get(key)?.as_f64()
}

/// The `.txt` beside a run's JSON report.
pub fn report_text(json: &Path) -> Option<String> {
    std::fs::read_to_string(json.with_extension("txt")).ok()
}

/// The command recorded on the first line of a run's `.txt` (`$ cargo run …`).
pub fn command_of(json: &Path) -> Option<String> {
    let text = report_text(json)?;
    let first = text.lines().next()?.trim();
    first.strip_prefix("$ ").map(str::to_owned)
}
