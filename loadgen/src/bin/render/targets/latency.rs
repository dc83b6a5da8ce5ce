//! The latency target, c: commit-to-visible at a fixed rate of half lockstep's peak in a.

use std::path::Path;

use serde_json::Value;

use super::page::{first_command, verdict, Page, Runs};
use crate::numbers::{general, list, median, plain, si, us};
use crate::results::{latency, number, report_text, run_of};

/// (mean, max) of the old loadgen observer's look interval, from a run's report, in µs.
fn observer_note(path: &Path) -> Option<(u64, u64)> {
    let text = report_text(path)?;
    ["observer looked every ", "observer: a look every "].iter().find_map(|lead| {
        let rest = &text[text.find(lead)? + lead.len()..];
        let (mean, rest) = rest.split_once(" µs on average (max ")?;
        let (max, _) = rest.split_once(" µs)")?;
        Some((mean.parse().ok()?, max.parse().ok()?))
    })
}

/// The rows of experiment c: commit-to-visible at a fixed rate, half of a's peak.
pub fn c(page: &mut Page, runs: &Runs, out: &Path) {
    let peak: Option<u64> =
        std::fs::read_to_string(out.join("c.peak")).ok().and_then(|t| t.trim().parse().ok());
    let rate = format!(
        "{} commits/s{}",
        si(runs[0].1["config"]["rate"].as_f64()),
        peak.map_or(String::new(), |p| format!(" of {}", si(Some(p as f64))))
    );
    // The loadgen reports lockstep's commit-to-visible from the library's own histogram (from
    // taking the commit number, 1 commit in 16) as `visible_latency_us`; results from loadgens
    // before issue 9 carry an observer's figure there and the library's as
    // `own_visible_latency_us`.
    let lockstep: Vec<Option<&Value>> = runs.iter().map(|(_, d)| run_of(d, "lockstep")).collect();
    let old = lockstep
        .iter()
        .any(|r| r.and_then(|r| r.get("own_visible_latency_us")).is_some_and(|v| !v.is_null()));
    let measures: &[(&str, &str)] = if old {
        &[("visible", "loadgen observer"), ("own_visible", "library's own")]
    } else {
        &[("visible", "library's own")]
    };
    for &(kind, how) in measures {
        for (key, name, goal) in [("p99", "p99", 20.0), ("p999", "p99.9", 200.0)] {
            let values: Vec<Option<f64>> = lockstep.iter().map(|&r| latency(r, kind, key)).collect();
            let m = median(values.clone());
            page.row(
                "c",
                format!("fixed rate at half of lockstep's peak ({rate}): commit-to-visible {name}, {how}"),
                &format!("<= {} µs", general(goal, 6)),
                format!("{} µs", us(m)),
                verdict(m, goal, false),
                list(values, us),
            );
        }
    }
    let own = measures[measures.len() - 1].0;
    let each = |kind: &str, key: &str| list(lockstep.iter().map(|&r| latency(r, kind, key)), us);
    let notes = runs.iter().map(|(path, _)| observer_note(path));
    page.details.push(format!(
        "- c: commit-to-visible p50 per run {} µs, max {} µs; commit call p99 {} µs; commits/s achieved {}, \
         missed starts {}; observer look interval mean/max (µs): {}; the library's own commit-to-visible p50 per \
         run (µs, 1 commit in 16, measured window): {}, max {}",
        each("visible", "p50"),
        each("visible", "max"),
        each("commit", "p99"),
        list(lockstep.iter().map(|&r| number(r, "commits_per_sec")), si),
        list(lockstep.iter().map(|&r| r.and_then(|r| r.get("missed")).map_or("0".to_owned(), plain)), |s| s),
        list(notes, |n| n.map_or("?".to_owned(), |(mean, max)| format!("{mean}/{max}"))),
        each(own, "p50"),
        each(own, "max")
    ));
    if let Ok(jitter) = std::fs::read_to_string(out.join("c.jitter.txt")) {
        let lines: Vec<String> = jitter.trim().lines().map(|line| format!("      {line}")).collect();
        page.details.push(format!(
            "- c: the machine's own stalls just before the runs (the first line is the command):\n\n{}",
            lines.join("\n")
        ));
    }
    page.commands.push(("c".to_owned(), first_command(runs)));
}
