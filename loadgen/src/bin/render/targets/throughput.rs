//! The throughput targets: a (lockstep against each engine in one process), b (16 parts per
//! commit against raw), d (1M paths against 10k, and the snapshot bench) and e (8 producers
//! against 2).

use std::path::Path;

use serde_json::Value;

use super::page::{first_command, or_none, verdict, Page, Runs};
use crate::numbers::{general, list, median, mib, plain, ratio, si, us};
use crate::results::{experiment, latency, load, number, run_of};

/// lockstep's records/s over `engine`'s, in each run.
pub fn in_run_ratios(runs: &Runs, engine: &str) -> Vec<Option<f64>> {
    runs.iter()
        .filter_map(|(_, d)| {
            let ours = run_of(d, "lockstep")?;
            let theirs = number(run_of(d, engine), "records_per_sec").filter(|&t| t > 0.0)?;
            Some(number(Some(ours), "records_per_sec").map(|o| o / theirs))
        })
        .collect()
}

/// `engine`'s records/s in the k-th run of `num` over the k-th run of `den` (run back to back).
pub fn pair_ratios(num: &Runs, den: &Runs, engine: &str) -> Vec<Option<f64>> {
    num.iter()
        .zip(den)
        .filter_map(|((_, a), (_, b))| {
            let (ra, rb) = (run_of(a, engine)?, run_of(b, engine)?);
            let below = number(Some(rb), "records_per_sec").filter(|&v| v > 0.0)?;
            Some(number(Some(ra), "records_per_sec").map(|v| v / below))
        })
        .collect()
}

/// lockstep's records/s in each run.
pub fn lockstep_rates(runs: &Runs) -> Vec<Option<f64>> {
    runs.iter().map(|(_, d)| number(run_of(d, "lockstep"), "records_per_sec")).collect()
}

/// The last level's segment count of `run`, or `?`.
fn top_level(run: Option<&Value>) -> String {
    run.and_then(|r| r["segments_per_level"].as_array()).and_then(|l| l.last()).map_or("?".to_owned(), plain)
}

/// The row of experiment a: lockstep against each engine in the same process.
pub fn a(page: &mut Page, runs: &Runs) {
    for (engine, goal) in [("mutex", 5.0), ("channel", 3.0), ("raw", 0.25)] {
        let values = in_run_ratios(runs, engine);
        let m = median(values.clone());
        page.row(
            "a",
            format!("closed loop 1p/1s/16 B/1 part/10k: lockstep ÷ {engine} records/s"),
            &format!(">= {}x", crate::numbers::float(goal)),
            ratio(m),
            verdict(m, goal, true),
            list(values, ratio),
        );
    }
    let others: Vec<String> = ["mutex", "channel", "raw"]
        .iter()
        .map(|e| {
            let rates =
                runs.iter().filter_map(|(_, d)| run_of(d, e)).map(|r| number(Some(r), "records_per_sec"));
            format!("{e}: {}", list(rates, si))
        })
        .collect();
    page.details.push(format!(
        "- a: lockstep records/s per run: {}; {}",
        list(lockstep_rates(runs), si),
        others.join("; ")
    ));
    page.commands.push(("a".to_owned(), first_command(runs)));
}

/// The row of experiment b: 16 parts per commit, against raw.
pub fn b(page: &mut Page, runs: &Runs) {
    let values = in_run_ratios(runs, "raw");
    let m = median(values.clone());
    page.row(
        "b",
        "the same, 16 parts/commit: lockstep ÷ raw records/s".to_owned(),
        ">= 0.5x",
        ratio(m),
        verdict(m, 0.5, true),
        list(values, ratio),
    );
    let raw = runs.iter().filter_map(|(_, d)| run_of(d, "raw")).map(|r| number(Some(r), "records_per_sec"));
    page.details.push(format!(
        "- b: lockstep records/s per run: {}; raw: {}; lockstep ÷ mutex {}, ÷ channel {}",
        list(lockstep_rates(runs), si),
        list(raw, si),
        list(in_run_ratios(runs, "mutex"), ratio),
        list(in_run_ratios(runs, "channel"), ratio)
    ));
    page.commands.push(("b".to_owned(), first_command(runs)));
}

/// The rows of experiment d: 1M paths against 10k, and the snapshot bench.
pub fn d(page: &mut Page, out: &Path) {
    let (d10, d1m, dfull) = (experiment(out, "d-10k"), experiment(out, "d-1M"), experiment(out, "d-1M-full"));
    let warmup = |runs: &Runs| general(runs[0].1["config"]["warmup_secs"].as_f64().unwrap_or(0.0), 6);
    if !d10.is_empty() && !d1m.is_empty() {
        let values = pair_ratios(&d1m, &d10, "lockstep");
        let m = median(values.clone());
        page.row(
            "d",
            "1M paths ÷ 10k paths, lockstep records/s (closed loop, back-to-back pairs)".to_owned(),
            ">= 0.5x",
            ratio(m),
            verdict(m, 0.5, true),
            list(values, ratio),
        );
        let rss = |runs: &Runs| {
            list(runs.iter().map(|(_, d)| number(run_of(d, "lockstep"), "peak_rss_bytes")), mib)
        };
        page.details.push(format!(
            "- d: lockstep records/s, 10k paths: {}; 1M paths: {} (warm-up {} s); peak RSS 10k {}, 1M {}; \
             segments at the top level at the end (1M): {}",
            list(lockstep_rates(&d10), si),
            list(lockstep_rates(&d1m), si),
            warmup(&d1m),
            rss(&d10),
            rss(&d1m),
            list(d1m.iter().map(|(_, d)| top_level(run_of(d, "lockstep"))), |s| s)
        ));
        page.commands.push((
            "d".to_owned(),
            Some(format!("{}  then  {}", or_none(first_command(&d10)), or_none(first_command(&d1m)))),
        ));
    }
    if !d10.is_empty() && !dfull.is_empty() {
        let full = run_of(&dfull[0].1, "lockstep");
        let base10 = median(lockstep_rates(&d10));
        let rate = number(full, "records_per_sec");
        let r = rate.zip(base10).map(|(f, b)| f / b);
        page.row(
            "d",
            format!(
                "the same with every path existing first ({} s warm-up, one run) ÷ the 10k median of d",
                warmup(&dfull)
            ),
            ">= 0.5x",
            ratio(r),
            verdict(r, 0.5, true),
            format!("{} vs {} records/s", si(rate), si(base10)),
        );
        page.details.push(format!(
            "- d (every path first): top-level segments at the end {}, peak RSS {}, commit-to-visible p50/p99 {}/{} µs",
            top_level(full),
            mib(number(full, "peak_rss_bytes")),
            us(latency(full, "visible", "p50")),
            us(latency(full, "visible", "p99"))
        ));
        page.commands.push(("d (every path first)".to_owned(), first_command(&dfull)));
    }
    let bench_path = out.join("d-bench.json");
    if let Ok(bench) = load(&bench_path) {
        let at = |paths: &str| bench["median_ns"][paths].as_f64();
        if let (Some(small), Some(large)) = (at("10000"), at("1000000")) {
            let r = large / small;
            page.row(
                "d",
                "snapshot publish, 10 paths changed, shard of 1M ÷ 10k paths (criterion medians)".to_owned(),
                "independent of path count (read: <= 2x for 100x the paths)",
                format!("{r:.2}x"),
                verdict(Some(r), 2.0, false),
                format!("{:.2} µs vs {:.2} µs", small / 1000.0, large / 1000.0),
            );
            page.commands.push(("d (bench)".to_owned(), bench["command"].as_str().map(str::to_owned)));
        }
    }
}

/// The row of experiment e: 8 producers against 2, on two shards.
pub fn e(page: &mut Page, e2: &Runs, e8: &Runs) {
    let values = pair_ratios(e8, e2, "lockstep");
    let m = median(values.clone());
    page.row(
        "e",
        "8 producers ÷ 2 producers, 2 shards, lockstep records/s (back-to-back pairs)".to_owned(),
        ">= 0.7x",
        ratio(m),
        verdict(m, 0.7, true),
        list(values, ratio),
    );
    let others: Vec<String> = ["mutex", "channel", "raw"]
        .iter()
        .map(|e| format!("{e} {}", list(pair_ratios(e8, e2, e), ratio)))
        .collect();
    page.details.push(format!(
        "- e: lockstep records/s, 2 producers: {}; 8 producers: {}; the same 8p ÷ 2p ratio for the other engines: \
         {}; lockstep ÷ mutex at 8p {}, ÷ raw at 8p {}",
        list(lockstep_rates(e2), si),
        list(lockstep_rates(e8), si),
        others.join("; "),
        list(in_run_ratios(e8, "mutex"), ratio),
        list(in_run_ratios(e8, "raw"), ratio)
    ));
    page.commands.push((
        "e".to_owned(),
        Some(format!("{}  then  {}", or_none(first_command(e2)), or_none(first_command(e8)))),
    ));
}
