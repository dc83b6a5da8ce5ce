//! The terminal report: throughput, latency percentiles, memory, segment layout, ratios and
//! checks, one table each, one row per engine.

use std::fmt::Write as _;

use crate::durable::Disk;
use crate::engine::Kind;
use crate::format::{group, mib, micros, ratio};
use crate::json::Results;
use crate::latency::{Summary, QUANTILES};
use crate::limit::Limit;
use crate::run::{Measured, Settings, SAMPLE_EVERY};
use crate::workload::Workload;

/// The commit (of this tree) the binary was built from, with `-dirty` for uncommitted changes.
pub const COMMIT: &str = env!("LOADGEN_COMMIT");

/// lockstep compared with one other engine.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioRow {
    pub engine: Kind,
    /// lockstep's records/s divided by the engine's.
    pub records_per_sec: f64,
    /// lockstep's commit-to-visible p99 divided by the engine's.
    pub visible_p99: Option<f64>,
}

/// lockstep against every other engine that ran, if lockstep ran.
pub fn ratios(runs: &[Measured]) -> Vec<RatioRow> {
    let Some(lockstep) = runs.iter().find(|m| m.kind == Kind::Lockstep) else {
        return Vec::new();
    };
    let p99 = |m: &Measured| Summary::of(&m.visible_latency).map(|s| s.p99);
    runs.iter()
        .filter(|m| m.kind != Kind::Lockstep)
        .map(|other| RatioRow {
            engine: other.kind,
            records_per_sec: lockstep.records_per_sec() / other.records_per_sec(),
            visible_p99: p99(lockstep).zip(p99(other)).map(|(a, b)| a / b),
        })
        .collect()
}

/// At a fixed rate, an engine that keeps less than this share of the rate asked is overloaded:
/// the commits pile up behind the schedule, and its latencies measure that backlog.
pub const KEPT_AT_LEAST: f64 = 0.9;

/// At a fixed rate: the commits/s the engine kept over the rate asked; `None` in a closed loop.
pub fn rate_kept(rate: Option<u64>, m: &Measured) -> Option<f64> {
    rate.filter(|&r| r > 0).map(|r| m.commits_per_sec() / r as f64)
}

/// The warnings of a fixed-rate run that asked more than an engine could take, one per such
/// engine: printed in the report and, loudly, on stderr.
pub fn overload_warnings(settings: &Settings, runs: &[Measured]) -> Vec<String> {
    let Some(rate) = settings.rate else { return Vec::new() };
    runs.iter()
        .filter_map(|m| {
            let kept = rate_kept(Some(rate), m)?;
            (kept < KEPT_AT_LEAST).then(|| {
                let due = m.commits + m.missed;
                format!(
                    "WARNING: {} could not keep --rate {}: it made {} commits/s ({:.1}% of the rate); {} of {} commits due \
                     in the window never started. Its latencies measure the backlog, not the engine: lower --rate \
                     (a closed loop, without --rate, finds what it can take)",
                    m.kind.name(),
                    group(rate),
                    group(m.commits_per_sec() as u64),
                    kept * 100.0,
                    group(m.missed),
                    group(due),
                )
            })
        })
        .collect()
}

/// Each engine's records/s divided by the limit's.
pub fn of_limit(limit: Option<&Limit>, m: &Measured) -> Option<f64> {
    limit.filter(|l| l.records_per_sec > 0.0).map(|l| m.records_per_sec() / l.records_per_sec)
}

/// The whole report, ready to print.
pub fn render(settings: &Settings, workload: &Workload, results: &Results<'_>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, settings, workload, results);
    out
}

/// What the run was, in one line (the plot's title uses it too).
pub fn workload_line(settings: &Settings, workload: &Workload) -> String {
    let config = &settings.engine;
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let record = if settings.record.has_payload() {
        format!("{} records of {} B", settings.record, workload.record_bytes())
    } else {
        format!("{} records", settings.record)
    };
    format!(
        "{}, {}, {} paths ({}), {}/commit, {record}",
        plural(config.producers, "producer", "producers"),
        plural(config.shards, "shard", "shards"),
        group(workload.paths() as u64),
        workload.distribution(),
        plural(workload.parts_per_commit(), "part", "parts"),
    )
}

/// The mode, in a few words.
pub fn mode_line(settings: &Settings) -> String {
    match settings.rate {
        None => "closed loop".to_owned(),
        Some(rate) => format!("fixed rate {} commits/s", group(rate)),
    }
}

fn write_report(
    out: &mut String,
    settings: &Settings,
    workload: &Workload,
    results: &Results<'_>,
) -> std::fmt::Result {
    let (limit, disk, runs) = (results.limit, results.disk, results.runs);
    let config = &settings.engine;
    writeln!(
        out,
        "loadgen at {COMMIT}: {}, divisor {}, max level {}, queue {}, {}",
        workload_line(settings, workload),
        config.divisor,
        config.max_level,
        config.queue_capacity,
        if config.pin { "workers pinned" } else { "workers not pinned" },
    )?;
    writeln!(out, "record {}: {}", settings.record, settings.record.work())?;
    match &config.durable {
        Some(durable) => writeln!(
            out,
            "durable ({}): logs into a fresh subdirectory of {}{}; {}",
            durable.durability.name(),
            durable.dir.display(),
            if durable.keep { ", kept after the run" } else { ", removed after the run" },
            if config.retain_all {
                "lockstep keeps every segment, no sink (--retain-all)"
            } else {
                "a sink and a window of the newest top-level block, on disk too (the files it left \
                 are replaced by a names file: the directory's size is not all that was written)"
            },
        )?,
        None if config.retain_all => {
            writeln!(out, "memory only; lockstep keeps every segment, no sink (--retain-all)")?
        }
        None => {}
    }
    let mode = match settings.rate {
        None => format!(
            "closed loop (each producer commits as fast as it can; 1 commit call in about {SAMPLE_EVERY} timed)"
        ),
        Some(rate) => format!(
            "fixed rate {} commits/s ({:.0} per producer), latency from each commit's intended start",
            group(rate),
            rate as f64 / config.producers as f64
        ),
    };
    let repeat = if results.samples.iter().any(|s| s.len() > 1) {
        let n = results.samples.iter().map(Vec::len).max().unwrap_or(1);
        format!(", {n} times each (the figures below are each engine's median run)")
    } else {
        String::new()
    };
    writeln!(
        out,
        "{mode}; each engine asked {:.2} s after a {:.2} s warm-up{repeat}",
        settings.duration.as_secs_f64(),
        settings.warmup.as_secs_f64()
    )?;
    // The real windows, when one differs from the asked (Ctrl-C, a late coordinator).
    let asked = settings.duration.as_secs_f64();
    let off: Vec<String> = runs
        .iter()
        .filter(|m| m.interrupted || (m.window.as_secs_f64() - asked).abs() > asked * 0.01)
        .map(|m| {
            let why = if m.interrupted { ", cut short by Ctrl-C" } else { "" };
            format!("{} {:.2} s{why}", m.kind.name(), m.window.as_secs_f64())
        })
        .collect();
    if !off.is_empty() {
        writeln!(out, "measured: {}", off.join("; "))?;
    }
    if results.interrupted {
        writeln!(out, "INTERRUPTED by Ctrl-C: only what was measured before it is reported")?;
    }
    writeln!(out)?;
    throughput(out, settings, workload, limit, runs)?;
    if results.samples.iter().any(|s| s.len() > 1) {
        writeln!(out)?;
        repeats(out, runs, results.samples)?;
    }
    writeln!(out)?;
    if let Some(disk) = disk {
        durable(out, disk, runs)?;
        writeln!(out)?;
    }
    latencies(out, runs)?;
    writeln!(out)?;
    layouts(out, settings, workload, runs)?;
    let ratios = ratios(runs);
    if !ratios.is_empty() {
        writeln!(out)?;
        writeln!(out, "{:<20}{:>12}{:>24}", "lockstep ÷ engine", "records/s", "commit-to-visible p99")?;
        for row in &ratios {
            let visible = row.visible_p99.map_or("-".to_owned(), |r| format!("{}x", ratio(r)));
            writeln!(
                out,
                "{:<20}{:>12}{:>24}",
                row.engine.name(),
                format!("{}x", ratio(row.records_per_sec)),
                visible
            )?;
        }
        writeln!(out, "  (records/s above 1x: lockstep moves more; latency below 1x: lockstep is quicker)")?;
    }
    writeln!(out)?;
    checks(out, runs)?;
    let warnings = overload_warnings(settings, runs);
    if !warnings.is_empty() {
        writeln!(out)?;
        for warning in warnings {
            writeln!(out, "{warning}")?;
        }
    }
    Ok(())
}

/// Each engine's repetitions: the median, the range and the spread the baseline gate allows for.
fn repeats(out: &mut String, runs: &[Measured], samples: &[Vec<f64>]) -> std::fmt::Result {
    writeln!(
        out,
        "{:<10}{:>8}{:>14}{:>14}{:>14}{:>10}",
        "repeats", "runs", "median", "min", "max", "spread"
    )?;
    for (m, samples) in runs.iter().zip(samples) {
        let Some((median, min, max, pct)) = crate::json::spread(samples) else { continue };
        writeln!(
            out,
            "{:<10}{:>8}{:>14}{:>14}{:>14}{:>10}",
            m.kind.name(),
            samples.len(),
            group(median as u64),
            group(min as u64),
            group(max as u64),
            format!("±{pct:.1}%")
        )?;
    }
    writeln!(out, "  (records/s of each repetition; spread: half the range, in % of the median)")
}

fn throughput(
    out: &mut String,
    settings: &Settings,
    workload: &Workload,
    limit: Option<&Limit>,
    runs: &[Measured],
) -> std::fmt::Result {
    let fixed = settings.rate.is_some();
    let bytes = settings.record.bytes_per_record(workload.record_bytes()) as f64;
    // At a fixed rate an engine moves what the schedule asks, not what it can: its share of the
    // limit says nothing, the share of the rate it kept does.
    write!(
        out,
        "{:<10}{:>14}{:>10}{:>14}{:>10}{:>12}",
        "engine",
        "records/s",
        if fixed { "÷ rate" } else { "÷ limit" },
        "commits/s",
        "MB/s",
        "peak RSS"
    )?;
    if fixed {
        write!(out, "{:>12}", "missed")?;
    }
    writeln!(out)?;
    if let Some(limit) = limit {
        writeln!(
            out,
            "{:<10}{:>14}{:>10}{:>14}{:>10.1}{:>12}",
            "limit",
            group(limit.records_per_sec as u64),
            if fixed { "-" } else { "1x" },
            "-",
            limit.records_per_sec * bytes / 1e6,
            "-"
        )?;
    }
    for m in runs {
        let megabytes = m.records_per_sec() * bytes / 1e6;
        let rss = m.rss.peak.map_or("-".to_owned(), mib);
        let share = if fixed {
            rate_kept(settings.rate, m).map_or("-".to_owned(), |r| format!("{}x", ratio(r)))
        } else {
            of_limit(limit, m).map_or("-".to_owned(), |r| format!("{}x", ratio(r)))
        };
        write!(
            out,
            "{:<10}{:>14}{:>10}{:>14}{:>10.1}{:>12}",
            m.kind.name(),
            group(m.records_per_sec() as u64),
            share,
            group(m.commits_per_sec() as u64),
            megabytes,
            rss
        )?;
        if fixed {
            write!(out, "{:>12}", group(m.missed))?;
        }
        writeln!(out)?;
    }
    if limit.is_some() && settings.engine.nats.is_some() {
        writeln!(
            out,
            "  (limit: JetStream alone: the same messages published the same way to a bare stream on a server of the same kind"
        )?;
        writeln!(
            out,
            "   and read by an ordered consumer that only counts them, before the engine; the best of five 400 ms windows;"
        )?;
        writeln!(
            out,
            "   their median {} records/s{})",
            group(limit.map_or(0.0, |l| l.median_records_per_sec) as u64),
            if limit.is_some_and(|l| l.median_records_per_sec < 0.8 * l.records_per_sec) {
                ": far below the best, the machine was busy"
            } else {
                ""
            }
        )?;
    } else if limit.is_some() {
        writeln!(
            out,
            "  (limit: the same {} items handed between two threads through one queue before the engines; the best of",
            settings.record,
        )?;
        writeln!(
            out,
            "   five 200 ms windows; their median {} records/s{})",
            group(limit.map_or(0.0, |l| l.median_records_per_sec) as u64),
            if limit.is_some_and(|l| l.median_records_per_sec < 0.8 * l.records_per_sec) {
                ": far below the best, the machine was busy"
            } else {
                ""
            }
        )?;
    }
    if fixed {
        writeln!(
            out,
            "  (÷ rate: commits/s over the {} asked, 1x when the schedule was kept; missed: commits due",
            group(settings.rate.unwrap_or(0))
        )?;
        writeln!(out, "   before the end that never started, in the commit latency at their lower bound)")?;
    }
    Ok(())
}

fn latencies(out: &mut String, runs: &[Measured]) -> std::fmt::Result {
    write!(out, "{:<29}{:>11}", "latency (µs)", "samples")?;
    for (name, _) in QUANTILES {
        write!(out, "{name:>9}")?;
    }
    writeln!(out, "{:>10}", "max")?;
    for m in runs {
        latency_row(out, m.kind.name(), "commit call", Summary::of(&m.commit_latency))?;
        latency_row(out, "", "commit-to-visible", Summary::of(&m.visible_latency))?;
        if let Some(waited) = m.finish.durable.as_ref().and_then(|d| d.wait_latency.as_ref()) {
            latency_row(out, "", "commit-to-durable", Summary::of(waited))?;
        }
    }
    writeln!(
        out,
        "  (commit-to-visible: measured by each engine where a commit becomes visible; see below)"
    )?;
    Ok(())
}

/// The disk's limit, and what each durable run wrote.
fn durable(out: &mut String, disk: &Disk, runs: &[Measured]) -> std::fmt::Result {
    let sync = Summary::of(&disk.fdatasync_latency);
    writeln!(
        out,
        "disk in {}: appends {} MiB/s; 4 KiB append + fdatasync {}/s (p50 {} µs, p99 {} µs)",
        disk.dir.display(),
        crate::format::figure(disk.append_bytes_per_sec / (1 << 20) as f64),
        group(disk.fdatasyncs_per_sec as u64),
        sync.as_ref().map_or("-".to_owned(), |s| micros(s.p50)),
        sync.as_ref().map_or("-".to_owned(), |s| micros(s.p99)),
    )?;
    for m in runs {
        let Some(durable) = &m.finish.durable else { continue };
        let per_record = if m.issued_records > 0 {
            format!("{:.2}", durable.log_bytes as f64 / m.issued_records as f64)
        } else {
            "-".to_owned()
        };
        writeln!(
            out,
            "{}: log {} for {} records issued: {per_record} bytes per record{}",
            m.kind.name(),
            mib(durable.log_bytes),
            group(m.issued_records),
            durable.kept.as_ref().map_or(String::new(), |p| format!("; kept in {}", p.display())),
        )?;
        if durable.wait_dropped > 0 {
            writeln!(
                out,
                "  ({} sampled commits were not waited for: the commit-to-durable queue was full)",
                group(durable.wait_dropped)
            )?;
        }
    }
    writeln!(
        out,
        "  (commit-to-durable, at a fixed rate only: from a sampled commit's intended start until wait_durable returned)"
    )
}

fn latency_row(out: &mut String, engine: &str, what: &str, summary: Option<Summary>) -> std::fmt::Result {
    write!(out, "{engine:<10}{what:<19}")?;
    let Some(summary) = summary else {
        write!(out, "{:>11}", 0)?;
        for _ in QUANTILES {
            write!(out, "{:>9}", "-")?;
        }
        return writeln!(out, "{:>10}", "-");
    };
    write!(out, "{:>11}", group(summary.samples))?;
    let columns = summary.columns();
    for value in &columns[..QUANTILES.len()] {
        write!(out, "{:>9}", micros(*value))?;
    }
    writeln!(out, "{:>10}", micros(columns[QUANTILES.len()]))
}

fn layouts(
    out: &mut String,
    settings: &Settings,
    workload: &Workload,
    runs: &[Measured],
) -> std::fmt::Result {
    // Every level of the geometry, L0 to --max-level, empty ones included: the same columns for
    // the same geometry, run after run (a level an engine went past is added).
    let levels = runs
        .iter()
        .filter_map(|m| m.finish.layout.as_ref())
        .map(|l| l.per_level.len())
        .fold(settings.engine.max_level as usize + 1, usize::max);
    write!(out, "{:<20}", "segments per level")?;
    for level in 0..levels {
        write!(out, "{:>10}", format!("L{level}"))?;
    }
    writeln!(out, "  aligned")?;
    let mut fewer_paths = false;
    for m in runs {
        write!(out, "{:<20}", m.kind.name())?;
        let Some(layout) = &m.finish.layout else {
            for _ in 0..levels {
                write!(out, "{:>10}", "-")?;
            }
            writeln!(out, "  - (keeps no segments)")?;
            continue;
        };
        for level in 0..levels {
            write!(out, "{:>10}", group(layout.per_level.get(level).copied().unwrap_or(0)))?;
        }
        let paths = if layout.paths < workload.paths() as u64 {
            fewer_paths = true;
            format!("{} of {} paths hold segments*", group(layout.paths), group(workload.paths() as u64))
        } else {
            format!("{} paths", group(layout.paths))
        };
        let verdict = if layout.aligned() {
            format!("yes ({paths}, {} segments on the grid)", group(layout.segments))
        } else {
            let why = if m.kind == Kind::Lockstep { "FAILED" } else { "count-driven compaction; expected" };
            format!(
                "no: {} of {} segments off the grid ({why}; {paths})",
                group(layout.off_grid),
                group(layout.segments)
            )
        };
        writeln!(out, "  {verdict}")?;
    }
    if fewer_paths {
        if settings.engine.retain_all {
            writeln!(out, "  (* at the end: with --retain-all every segment stays, so a path without one was never drawn)")?;
        } else {
            writeln!(out, "  (* at the end: a path holds no segment when the run never drew it, or when all its records")?;
            writeln!(
                out,
                "   lie in compacted top-level segments, which the sink took and discarded (it keeps only each"
            )?;
            writeln!(out, "   path's newest); --retain-all keeps every segment)")?;
        }
    }
    Ok(())
}

fn checks(out: &mut String, runs: &[Measured]) -> std::fmt::Result {
    for m in runs {
        writeln!(out, "{}", m.kind.name())?;
        let mut facts = Vec::new();
        if let Some(last) = m.finish.final_commit {
            let what = if m.kind == Kind::Lockstep { "final frontier" } else { "final visible commit" };
            facts.push(equal(what, last, "commits issued", m.issued_commits));
        }
        if let Some(applied) = m.finish.records_applied {
            let what = if m.kind == Kind::Raw { "records popped" } else { "records indexed" };
            facts.push(equal(what, applied, "records sent", m.issued_records));
        }
        writeln!(out, "  {}: {}", facts.join("; "), if m.nothing_lost() { "ok" } else { "LOST DATA" })?;
        writeln!(out, "  visible: {}", m.kind.visible_means())?;
        writeln!(
            out,
            "  window: {:.3} s measured ({:.3} s asked){}",
            m.window.as_secs_f64(),
            m.asked.as_secs_f64(),
            if m.interrupted { ", cut short by Ctrl-C" } else { "" }
        )?;
        if let Some((before, after)) = m.frontier {
            writeln!(
                out,
                "  frontier: {} when the window opened, {} when it closed",
                group(before),
                group(after)
            )?;
        }
        if m.visible_latency.is_empty() && m.commits > 0 {
            writeln!(out, "  no commit-to-visible sample was recorded in the window")?;
        }
        if m.idle_producers > 0 {
            writeln!(
                out,
                "  {} of {} producers finished no commit in the window (more producer threads than the cores can run)",
                group(m.idle_producers as u64),
                group(m.issued_producers() as u64)
            )?;
        }
        for problem in &m.problems {
            writeln!(out, "  NOT MEASURED AS ASKED: {problem}")?;
        }
        if let Some(layout) = &m.finish.layout {
            if m.kind == Kind::Lockstep {
                for problem in &layout.listed {
                    writeln!(out, "  off the grid: {problem}")?;
                }
            }
        }
        for note in &m.finish.notes {
            writeln!(out, "  {note}")?;
        }
    }
    let starts: Vec<String> = runs
        .iter()
        .filter_map(|m| m.rss.at_start.map(|bytes| format!("{} {}", m.kind.name(), mib(bytes))))
        .collect();
    if runs.iter().all(|m| m.rss.reset) {
        writeln!(
            out,
            "peak RSS: VmHWM, reset before each engine (/proc/self/clear_refs), after the allocator"
        )?;
        writeln!(
            out,
            "  returned freed memory; it includes what the process held at the start: {}",
            starts.join(", ")
        )?;
    } else {
        writeln!(
            out,
            "peak RSS: the process's VmHWM since it started (it could not be reset between engines,"
        )?;
        writeln!(out, "  so a later engine shows at least an earlier one's peak)")?;
    }
    Ok(())
}

fn equal(what: &str, got: u64, against: &str, expected: u64) -> String {
    let sign = if got == expected { "==" } else { "!=" };
    format!("{what} {} {sign} {against} {}", group(got), group(expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(rate: Option<u64>) -> Settings {
        Settings {
            engine: crate::engine::Config {
                producers: 1,
                shards: 1,
                divisor: 4,
                max_level: 4,
                queue_capacity: 16,
                pin: false,
                retain_all: false,
                durable: None,
                nats: None,
            },
            record: crate::record::RecordKind::I64,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            rate,
            progress: false,
            interval: None,
        }
    }

    fn table(settings: &Settings, runs: &[Measured]) -> String {
        let workload = Workload::new(10_000, crate::workload::Distribution::Uniform, 16, 1);
        let results = Results { limit: None, disk: None, runs, samples: &[], interrupted: false };
        render(settings, &workload, &results)
    }

    /// The same geometry shows the same columns, empty levels included, and a path count below
    /// the workload's says why.
    #[test]
    fn every_level_of_the_geometry_is_a_column_and_missing_paths_are_explained() {
        let mut lockstep = Measured::example(Kind::Lockstep);
        let mut layout = crate::align::Layout::new(4);
        layout.per_level[4] = 7;
        layout.paths = 440;
        layout.segments = 7;
        lockstep.finish.layout = Some(layout);
        let text = table(&settings(None), &[lockstep]);
        let header = text.lines().find(|l| l.starts_with("segments per level")).unwrap();
        for level in ["L0", "L1", "L2", "L3", "L4"] {
            assert!(header.contains(level), "{header}");
        }
        assert!(text.contains("440 of 10,000 paths hold segments*"), "{text}");
        assert!(text.contains("which the sink took and discarded"), "{text}");
    }

    /// At a fixed rate the share of the limit means nothing: the share of the rate kept is shown,
    /// and an engine far below the rate gets a warning.
    #[test]
    fn a_fixed_rate_shows_the_rate_kept_and_warns_when_overloaded() {
        // 1,000 commits in 1 s against 100,000 asked.
        let runs = [Measured::example(Kind::Raw)];
        let text = table(&settings(Some(100_000)), &runs);
        assert!(text.contains("÷ rate") && !text.contains("÷ limit"), "{text}");
        assert!(text.contains("0.01x"), "{text}");
        assert!(text.contains("WARNING: raw could not keep --rate 100,000"), "{text}");
        assert_eq!(rate_kept(Some(100_000), &runs[0]), Some(0.01));
        // Kept: no warning.
        assert!(overload_warnings(&settings(Some(1_000)), &runs).is_empty());
        assert!(!table(&settings(None), &runs).contains("÷ rate"));
    }
}
