//! The matrix (`perf/run.sh`): the runs of each configuration, grouped, and the table of their
//! medians, one row per configuration and engine.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::numbers::{median, mib, ratio, si, us};
use crate::results::{config_id, json_files, latency, load, number, run_of};

/// The engines in the order every table and chart shows them; others follow by name.
pub const ENGINES: [&str; 4] = ["lockstep", "mutex", "channel", "raw"];

/// The runs of one configuration.
#[derive(Debug)]
pub struct Config {
    documents: Vec<Value>,
}

impl Config {
    fn config(&self) -> &Value {
        &self.documents[0]["config"]
    }

    /// Mode, distribution, paths, parts, bytes, shards, producers, rate: the table's order.
    fn sort_key(&self) -> (String, String, [u64; 6]) {
        let c = self.config();
        let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
        let count = |key: &str| c[key].as_u64().unwrap_or(0);
        (
            text("mode"),
            text("distribution"),
            [
                count("paths"),
                count("parts_per_commit"),
                count("record_bytes"),
                count("shards"),
                count("producers"),
                count("rate"),
            ],
        )
    }

    /// `1p 1s 10k uniform 1pt 16B`, with ` @1.41 M/s` at a fixed rate.
    pub fn label(&self) -> String {
        let c = self.config();
        let paths = c["paths"].as_u64().unwrap_or(0);
        let paths = if paths.is_multiple_of(1_000_000) {
            format!("{}M", paths / 1_000_000)
        } else if paths.is_multiple_of(1000) {
            format!("{}k", paths / 1000)
        } else {
            paths.to_string()
        };
        let mut text = format!(
            "{}p {}s {paths} {} {}pt {}B",
            c["producers"],
            c["shards"],
            c["distribution"].as_str().unwrap_or_default(),
            c["parts_per_commit"],
            c["record_bytes"]
        );
        if let Some(rate) = c["rate"].as_f64().filter(|&rate| rate != 0.0) {
            text += &format!(" @{}/s", si(Some(rate)));
        }
        text
    }

    /// The engines that ran in this configuration, in table order.
    pub fn engines(&self) -> Vec<String> {
        let seen: BTreeSet<&str> = self
            .documents
            .iter()
            .filter_map(|d| d["runs"].as_array())
            .flatten()
            .filter_map(|r| r["engine"].as_str())
            .collect();
        let known = ENGINES.iter().copied().filter(|e| seen.contains(e));
        let others = seen.iter().copied().filter(|e| !ENGINES.contains(e));
        known.chain(others).map(str::to_owned).collect()
    }

    /// Each run of `engine`, one per report it ran in.
    pub fn runs(&self, engine: &str) -> Vec<&Value> {
        self.documents.iter().filter_map(|d| run_of(d, engine)).collect()
    }

    /// The median over the runs of `engine` of the figure `get` reads.
    pub fn med(&self, engine: &str, get: impl Fn(&Value) -> Option<f64>) -> Option<f64> {
        median(self.runs(engine).into_iter().map(get))
    }

    /// The median over the reports of lockstep's records/s over `engine`'s, both from one
    /// process.
    fn ratio(&self, engine: &str) -> Option<f64> {
        median(self.documents.iter().map(|d| {
            let ours = number(run_of(d, "lockstep"), "records_per_sec")?;
            let theirs = number(run_of(d, engine), "records_per_sec").filter(|&t| t > 0.0)?;
            Some(ours / theirs)
        }))
    }
}

/// Every configuration with runs in `dir`, in table order.
pub fn load_matrix(dir: &Path) -> Vec<Config> {
    let mut groups: Vec<(String, Config)> = Vec::new();
    for path in json_files(dir) {
        let document = match load(&path) {
            Ok(document) => document,
            Err(error) => {
                eprintln!("render: skipping {error}");
                continue;
            }
        };
        if document.get("config").is_none() || document.get("runs").is_none() {
            continue;
        }
        let id = config_id(&path);
        match groups.iter_mut().find(|(of, _)| *of == id) {
            Some((_, config)) => config.documents.push(document),
            None => groups.push((id, Config { documents: vec![document] })),
        }
    }
    let mut configs: Vec<Config> = groups.into_iter().map(|(_, config)| config).collect();
    configs.sort_by_cached_key(Config::sort_key);
    configs
}

/// The table of medians, as markdown, with its legend.
pub fn table(configs: &[Config]) -> String {
    let mut lines = vec![
        "| configuration | engine | runs | records/s | commits/s | commit p50 µs | commit p99 µs \
         | visible p50 µs | visible p99 µs | visible p99.9 µs | peak RSS | aligned | lockstep ÷ engine (records/s) |"
            .to_owned(),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |".to_owned(),
    ];
    for config in configs {
        for engine in config.engines() {
            let runs = config.runs(&engine);
            let aligned: BTreeSet<Option<bool>> = runs.iter().map(|r| r["aligned"].as_bool()).collect();
            let aligned = match aligned.iter().collect::<Vec<_>>()[..] {
                [None] => "-",
                [Some(true)] => "yes",
                [Some(false)] => "no",
                _ => "mixed",
            };
            let lost = runs.iter().any(|r| r["nothing_lost"].as_bool() == Some(false));
            let lat = |kind: &'static str, key: &'static str| {
                us(config.med(&engine, |r| latency(Some(r), kind, key)))
            };
            let cells = [
                format!("`{}`", config.label()),
                engine.clone(),
                runs.len().to_string(),
                si(config.med(&engine, |r| r["records_per_sec"].as_f64())),
                si(config.med(&engine, |r| r["commits_per_sec"].as_f64())),
                lat("commit", "p50"),
                lat("commit", "p99"),
                lat("visible", "p50"),
                lat("visible", "p99"),
                lat("visible", "p999"),
                mib(config.med(&engine, |r| r["peak_rss_bytes"].as_f64())),
                format!("{aligned}{}", if lost { " (LOST DATA)" } else { "" }),
                if engine == "lockstep" { "1".to_owned() } else { ratio(config.ratio(&engine)) },
            ];
            lines.push(format!("| {} |", cells.join(" | ")));
        }
    }
    let legend = "Configuration: `<producers>p <shards>s <paths> <distribution> <parts per commit>pt \
        <record bytes>B`, closed loop unless `@rate`. Figures are medians over the runs \
        (column `runs`); the ratio is lockstep's records/s over the engine's in the same process, \
        median over the runs (above 1: lockstep moves more). \"visible\" is commit-to-visible as \
        the loadgen's observer sees it (it sleeps 50 µs between looks, ~120 µs from look to \
        look on this VM with the wake-up delay, so small values are late by up to that much). \
        Peak RSS is the process's VmHWM, reset before each engine.";
    format!("{}\n\n{legend}\n", lines.join("\n"))
}
