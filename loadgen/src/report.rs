//! Prints a run's figures as a compact table.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::run::{Outcome, Settings};
use crate::workload::Workload;

const QUANTILES: [(&str, f64); 4] = [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999)];

/// The whole report, ready to print.
pub fn render(settings: &Settings, workload: &Workload, outcome: &Outcome) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, settings, workload, outcome);
    out
}

fn write_report(
    out: &mut String,
    settings: &Settings,
    workload: &Workload,
    outcome: &Outcome,
) -> std::fmt::Result {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    writeln!(
        out,
        "lockstep loadgen: {}, {}, divisor {}, max level {}, {} paths, {}/commit, {}-byte records, queue {}, workers {}",
        plural(settings.producers, "producer", "producers"),
        plural(settings.shards, "shard", "shards"),
        settings.divisor,
        settings.max_level,
        group(workload.paths() as u64),
        plural(workload.parts_per_commit(), "part", "parts"),
        workload.record_bytes(),
        settings.queue_capacity,
        if settings.pin { "pinned" } else { "not pinned" },
    )?;
    let seconds = outcome.window.as_secs_f64();
    writeln!(out, "measured {seconds:.2} s after a {:.2} s warm-up", settings.warmup.as_secs_f64())?;
    writeln!(out)?;

    let per_second = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
    let megabytes = per_second(outcome.records) * workload.record_bytes() as f64 / 1e6;
    writeln!(out, "{:>14} {:>14} {:>10}", "records/s", "commits/s", "MB/s")?;
    writeln!(
        out,
        "{:>14} {:>14} {:>10.1}",
        group(per_second(outcome.records) as u64),
        group(per_second(outcome.commits) as u64),
        megabytes
    )?;
    writeln!(out)?;

    write!(out, "{:<19}{:>12}", "latency (µs)", "samples")?;
    for (name, _) in QUANTILES {
        write!(out, "{name:>9}")?;
    }
    writeln!(out, "{:>10}", "max")?;
    latency_row(out, "commit call", &outcome.commit_latency)?;
    latency_row(out, "commit-to-visible", &outcome.visible_latency)?;
    // The library's own figure: from taking the commit number to the publish that covered it,
    // for one commit in 16, warm-up included. A cross-check of the row above.
    latency_row(out, "  (library's view)", &outcome.stats.visible_latency)?;
    writeln!(
        out,
        "  (commit-to-visible figures are late by at most the observer's time between looks: mean {}, max {} µs)",
        micros(nanos(outcome.poll_mean)),
        micros(nanos(outcome.poll_max))
    )?;
    if outcome.visible_unresolved > 0 {
        writeln!(
            out,
            "  ({} followed commits were not seen visible within 1 s of the deadline; not in the figures)",
            outcome.visible_unresolved
        )?;
    }
    writeln!(out)?;

    let frontier_ok = outcome.final_frontier == outcome.issued;
    writeln!(
        out,
        "final frontier {} {} commits issued ({}): {}",
        group(outcome.final_frontier),
        if frontier_ok { "==" } else { "!=" },
        group(outcome.issued),
        if frontier_ok { "ok" } else { "MISMATCH" }
    )?;
    let alignment = &outcome.alignment;
    let levels = alignment
        .per_level
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(level, n)| format!("L{level}: {}", group(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    writeln!(
        out,
        "alignment: {}: {} paths, {} segments ({levels})",
        if alignment.ok() { "ok" } else { "FAILED" },
        group(alignment.paths),
        group(alignment.segments),
    )?;
    for problem in &alignment.listed {
        writeln!(out, "  {problem}")?;
    }
    if alignment.problems > alignment.listed.len() as u64 {
        writeln!(out, "  … {} problems in all", group(alignment.problems))?;
    }

    let stats = &outcome.stats;
    writeln!(
        out,
        "pipeline (whole run): worker batch p50 {} / p99 {} parts; merge time per turn p50 {} / p99 {} / max {} µs",
        stats.batch_size.value_at_quantile(0.5),
        stats.batch_size.value_at_quantile(0.99),
        micros(stats.compaction.value_at_quantile(0.5)),
        micros(stats.compaction.value_at_quantile(0.99)),
        micros(stats.compaction.max()),
    )?;
    write!(
        out,
        "sink writes {}, segments dropped by retention {}, sink failures {}",
        group(stats.sink_writes),
        group(stats.segments_dropped),
        group(stats.sink_failures)
    )?;
    match outcome.peak_rss {
        Some(bytes) => writeln!(out, "; peak RSS {:.1} MiB", bytes as f64 / (1 << 20) as f64)?,
        None => writeln!(out)?,
    }
    Ok(())
}

fn latency_row(out: &mut String, name: &str, histogram: &Histogram<u64>) -> std::fmt::Result {
    write!(out, "{name:<19}{:>12}", group(histogram.len()))?;
    if histogram.is_empty() {
        for _ in QUANTILES {
            write!(out, "{:>9}", "-")?;
        }
        return writeln!(out, "{:>10}", "-");
    }
    for (_, quantile) in QUANTILES {
        write!(out, "{:>9}", micros(histogram.value_at_quantile(quantile)))?;
    }
    writeln!(out, "{:>10}", micros(histogram.max()))
}

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds as microseconds, with about three significant digits.
fn micros(nanos: u64) -> String {
    let us = nanos as f64 / 1000.0;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn micros_keeps_three_digits() {
        assert_eq!(micros(123), "0.12");
        assert_eq!(micros(12_345), "12.3");
        assert_eq!(micros(1_234_567), "1235");
    }
}
