#![cfg(not(loom))]
//! Stats out: the Prometheus text parses (with a small parser of the exposition format written
//! here, and the histograms with the `prometheus-parse` crate) and says what `Stats` says; `.hgrm` output has HdrHistogram's layout; bad arguments
//! are refused before anything is written.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};

use common::PATIENCE;
use lockstep::hdrhistogram::Histogram;
use lockstep::merge::Sum;
use lockstep::{Pipeline, Stats};

/// One sample line: `name{label="value",…} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: `# HELP` and `# TYPE` per family, and the samples in order.
#[derive(Debug, Default)]
struct Exposition {
    help: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> =
            labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut found = self.samples.iter().filter(|s| s.name == name && s.labels == wanted);
        let sample = found.next()?;
        assert!(found.next().is_none(), "{name} {labels:?} appears twice");
        Some(sample.value)
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the text exposition format 0.0.4 strictly enough to catch what Prometheus refuses:
/// names, label syntax and escapes, float values, one `# TYPE` per family before its samples,
/// and sample names that belong to their family's type.
fn parse(text: &str) -> Result<Exposition, String> {
    if !text.ends_with('\n') {
        return Err("the text does not end with a line feed".into());
    }
    let mut exposition = Exposition::default();
    for (number, line) in text.lines().enumerate() {
        let at = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (keyword, name, rest) = (words.next(), words.next(), words.next().unwrap_or(""));
            let name = name.filter(|n| is_name(n)).ok_or_else(|| at("a comment without a metric name"))?;
            match keyword {
                Some("HELP") => {
                    if exposition.help.insert(name.into(), rest.into()).is_some() {
                        return Err(at("a second HELP"));
                    }
                }
                Some("TYPE") => {
                    if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&rest) {
                        return Err(at("an unknown type"));
                    }
                    if exposition.samples.iter().any(|s| family_of(&s.name, &exposition.types) == name) {
                        return Err(at("TYPE after the family's samples"));
                    }
                    if exposition.types.insert(name.into(), rest.into()).is_some() {
                        return Err(at("a second TYPE"));
                    }
                }
                _ => return Err(at("a comment that is neither HELP nor TYPE")),
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value"))?;
        let name = &line[..name_end];
        if !is_name(name) {
            return Err(at("a bad metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let close;
            loop {
                let start = chars.peek().map(|&(i, _)| i).ok_or_else(|| at("an unclosed label set"))?;
                if inner[start..].starts_with('}') {
                    close = start;
                    break;
                }
                let eq = inner[start..].find('=').ok_or_else(|| at("a label without ="))? + start;
                let label = &inner[start..eq];
                if !is_name(label) || label.contains(':') {
                    return Err(at("a bad label name"));
                }
                while chars.peek().is_some_and(|&(i, _)| i <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(at("an unquoted label value"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().map(|(_, c)| c) {
                        Some('"') => break,
                        Some('\\') => match chars.next().map(|(_, c)| c) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            _ => return Err(at("a bad escape")),
                        },
                        Some('\n') | None => return Err(at("an unterminated label value")),
                        Some(c) => value.push(c),
                    }
                }
                if labels.insert(label.to_string(), value).is_some() {
                    return Err(at("a label twice"));
                }
                match chars.peek().map(|&(_, c)| c) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    _ => return Err(at("labels not separated by commas")),
                }
            }
            rest = &inner[close + 1..];
        }
        let value = rest.strip_prefix(' ').ok_or_else(|| at("no space before the value"))?;
        let mut fields = value.split(' ');
        let value = fields.next().unwrap_or("");
        let value: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| at("a value that is not a float"))?,
        };
        if let Some(timestamp) = fields.next() {
            timestamp.parse::<i64>().map_err(|_| at("a bad timestamp"))?;
        }
        let family = family_of(name, &exposition.types);
        let kind = exposition.types.get(family).ok_or_else(|| at("a sample before its TYPE"))?;
        let suffix = &name[family.len()..];
        let fits = match kind.as_str() {
            "summary" => match suffix {
                "" => labels.contains_key("quantile"),
                "_sum" | "_count" => !labels.contains_key("quantile"),
                _ => false,
            },
            "histogram" => match suffix {
                "_bucket" => labels.contains_key("le"),
                "_sum" | "_count" => !labels.contains_key("le"),
                _ => false,
            },
            "counter" => suffix.is_empty() && name.ends_with("_total"),
            _ => suffix.is_empty(),
        };
        if !fits {
            return Err(at("a sample that does not fit its family's type"));
        }
        exposition.samples.push(Sample { name: name.into(), labels, value });
    }
    Ok(exposition)
}

/// The family a sample name belongs to: itself, or without `_sum` / `_count` for a summary
/// (and `_bucket` for a histogram).
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    for suffix in ["_sum", "_count", "_bucket"] {
        if let Some(base) = name.strip_suffix(suffix) {
            let kind = types.get(base).map(String::as_str);
            if kind == Some("histogram") || (kind == Some("summary") && suffix != "_bucket") {
                return base;
            }
        }
    }
    name
}

/// A pipeline that has done some work of every kind: commits, drains, merges, publishes.
fn busy_stats() -> Stats {
    let pipeline = Pipeline::builder(Sum).shards(2).divisor(2).max_level(3).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    let mut last = 0;
    for i in 0..400 {
        last = producer.commit([("/a", i), ("/b", 1)]).expect("accepted");
    }
    drop(producer); // folds its commit-latency samples in
    pipeline.wait_sealed(last, PATIENCE).expect("visible");
    // A worker records commit-to-visible samples just after its publish, so a reader woken by
    // that publish can read the figures a moment before them (all 400 commits may become
    // visible in one publish): wait for them, bounded.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = pipeline.stats();
        if !stats.visible_latency.is_empty() || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn the_prometheus_text_parses_and_says_what_stats_says() {
    let stats = busy_stats();
    let tricky = "a \"quoted\" \\ value\nover two lines";
    let labels = [("pipeline", "ingest"), ("note", tricky)];
    let mut out = Vec::new();
    stats.write_prometheus(&mut out, &labels).expect("written");
    let text = String::from_utf8(out).expect("UTF-8");
    let exposition = parse(&text).unwrap_or_else(|why| panic!("{why}\n{text}"));

    let counters = [
        ("lockstep_commits_total", stats.commits),
        ("lockstep_records_total", stats.records),
        ("lockstep_sink_writes_total", stats.sink_writes),
        ("lockstep_sink_failures_total", stats.sink_failures),
        ("lockstep_segments_dropped_total", stats.segments_dropped),
        ("lockstep_worker_parks_total", stats.worker_parks),
        ("lockstep_torn_tails_total", stats.torn_tails),
    ];
    for (name, value) in counters {
        assert_eq!(exposition.types.get(name).map(String::as_str), Some("counter"), "{name}");
        assert!(exposition.help.get(name).is_some_and(|h| !h.is_empty()), "{name} has no help");
        assert_eq!(exposition.value(name, &labels), Some(value as f64), "{name}");
    }
    assert_eq!(stats.commits, 400);
    assert_eq!(stats.records, 800);
    assert_eq!(exposition.types.get("lockstep_frontier").map(String::as_str), Some("gauge"));
    assert_eq!(exposition.value("lockstep_frontier", &labels), Some(stats.frontier as f64));

    let summaries = [
        ("lockstep_commit_duration_seconds", &stats.commit_latency, 1e9),
        ("lockstep_commit_to_visible_seconds", &stats.visible_latency, 1e9),
        ("lockstep_worker_batch_parts", &stats.batch_size, 1.0),
        ("lockstep_worker_merge_seconds", &stats.compaction, 1e9),
        ("lockstep_worker_queue_depth_parts", &stats.queue_depth, 1.0),
    ];
    for (name, histogram, per_unit) in summaries {
        assert_eq!(exposition.types.get(name).map(String::as_str), Some("summary"), "{name}");
        assert!(!histogram.is_empty(), "{name}: the workload should have recorded something");
        let mut previous = f64::NEG_INFINITY;
        for quantile in ["0.5", "0.9", "0.99", "0.999", "1"] {
            let with_quantile = [labels[0], labels[1], ("quantile", quantile)];
            let value = exposition.value(name, &with_quantile).unwrap_or_else(|| panic!("{name} {quantile}"));
            let q: f64 = quantile.parse().expect("a float");
            let expected = histogram.value_at_quantile(q) as f64 / per_unit;
            assert_eq!(value, expected, "{name} quantile {quantile}");
            assert!(value >= previous, "{name}: quantiles go down at {quantile}");
            previous = value;
        }
        assert_eq!(previous, histogram.max() as f64 / per_unit);
        let count = exposition.value(&format!("{name}_count"), &labels).expect("a count");
        assert_eq!(count, histogram.len() as f64, "{name}_count");
        let sum = exposition.value(&format!("{name}_sum"), &labels).expect("a sum");
        let exact: f64 =
            histogram.iter_recorded().map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64).sum();
        let exact = exact / per_unit;
        assert!((sum - exact).abs() <= 0.01 * exact, "{name}_sum {sum} vs {exact}");
    }
    // Every sample carries the caller's labels, the tricky value unescaped intact.
    assert!(exposition.samples.iter().all(|s| s.labels.get("note").map(String::as_str) == Some(tricky)));
    // 7 counters and a gauge; summaries: 5 quantiles, sum and count; histograms: each bound,
    // +Inf, sum and count.
    assert_eq!(exposition.samples.len(), 7 + 1 + 5 * 7 + 3 * (25 + 3) + 2 * (11 + 3));
}

/// The histograms, read by a Prometheus parser that is not ours (the `prometheus-parse`
/// crate): every family is there with its fixed bounds, the counts are cumulative (monotone),
/// `+Inf` equals `_count` and the histogram's own count, each bucket holds what the
/// HdrHistogram holds at or below its bound, and the labels come through.
#[test]
fn the_prometheus_histograms_parse_with_a_real_parser() {
    use prometheus_parse::{Scrape, Value};

    let stats = busy_stats();
    let mut out = Vec::new();
    stats.write_prometheus(&mut out, &[("pipeline", "ingest")]).expect("written");
    let text = String::from_utf8(out).expect("UTF-8");
    let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("parses");

    let durations: Vec<f64> =
        [1.0, 2.5, 5.0].iter().flat_map(|k| (-7..=0).map(move |e| k * 10f64.powi(e))).chain([10.0]).collect();
    let mut durations = durations;
    durations.sort_by(f64::total_cmp);
    let parts: Vec<f64> = (0..=10).map(|e| 4f64.powi(e)).collect();
    let histograms = [
        ("lockstep_commit_duration_histogram_seconds", &stats.commit_latency, 1e9, &durations),
        ("lockstep_commit_to_visible_histogram_seconds", &stats.visible_latency, 1e9, &durations),
        ("lockstep_worker_batch_histogram_parts", &stats.batch_size, 1.0, &parts),
        ("lockstep_worker_merge_histogram_seconds", &stats.compaction, 1e9, &durations),
        ("lockstep_worker_queue_depth_histogram_parts", &stats.queue_depth, 1.0, &parts),
    ];
    let count_of = |name: &str| {
        let sample = scrape.samples.iter().find(|s| s.metric == name).unwrap_or_else(|| panic!("{name}"));
        match sample.value {
            Value::Untyped(v) | Value::Counter(v) | Value::Gauge(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    for (name, histogram, per_unit, bounds) in histograms {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && matches!(s.value, Value::Histogram(_)))
            .unwrap_or_else(|| panic!("no histogram {name} in\n{text}"));
        assert_eq!(sample.labels.get("pipeline"), Some("ingest"), "{name}");
        let Value::Histogram(buckets) = &sample.value else { unreachable!("matched above") };
        assert!(!histogram.is_empty(), "{name}: the workload should have recorded something");
        let les: Vec<f64> = buckets.iter().map(|b| b.less_than).collect();
        let mut expected_les: Vec<f64> = bounds.to_vec();
        expected_les.push(f64::INFINITY);
        assert_eq!(les.len(), expected_les.len(), "{name}: {les:?}");
        for (le, expected) in les.iter().zip(&expected_les) {
            assert!(
                (le - expected).abs() <= 1e-12 * expected.abs().max(1.0) || le == expected,
                "{name}: {les:?}"
            );
        }
        let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{name}: not monotone: {counts:?}");
        let inf = *counts.last().expect("a +Inf bucket");
        assert_eq!(inf, count_of(&format!("{name}_count")), "{name}: +Inf is not _count");
        assert_eq!(inf, histogram.len() as f64, "{name}");
        for (bucket, &bound) in buckets.iter().zip(bounds.iter()) {
            let bound = (bound * per_unit).round() as u64;
            let held: u64 = histogram
                .iter_recorded()
                .filter(|v| v.value_iterated_to() <= bound)
                .map(|v| v.count_at_value())
                .sum();
            assert_eq!(bucket.count, held as f64, "{name} le {}", bucket.less_than);
        }
        let sum = count_of(&format!("{name}_sum"));
        let summary_sum = count_of(&format!("{}_sum", name.replace("_histogram", "")));
        assert_eq!(sum, summary_sum, "{name}: the histogram's sum is the summary's");
    }
}

#[test]
fn without_labels_and_without_data_the_text_still_parses() {
    let pipeline = Pipeline::builder(Sum).build().expect("valid");
    let stats = pipeline.stats();
    let mut out = Vec::new();
    stats.write_prometheus(&mut out, &[]).expect("written");
    let text = String::from_utf8(out).expect("UTF-8");
    let exposition = parse(&text).unwrap_or_else(|why| panic!("{why}\n{text}"));
    assert_eq!(exposition.value("lockstep_commits_total", &[]), Some(0.0));
    let median = exposition.value("lockstep_commit_to_visible_seconds", &[("quantile", "0.5")]);
    assert!(median.is_some_and(f64::is_nan), "an empty summary's quantiles are NaN");
    assert_eq!(exposition.value("lockstep_commit_to_visible_seconds_count", &[]), Some(0.0));
    assert!(text.contains("lockstep_commits_total 0\n"), "no empty braces without labels");
}

#[test]
fn bad_label_names_are_refused_before_anything_is_written() {
    let stats = Pipeline::builder(Sum).build().expect("valid").stats();
    for bad in ["", "9lives", "has-dash", "__reserved", "quantile", "naïve"] {
        let mut out = Vec::new();
        let result = stats.write_prometheus(&mut out, &[("pipeline", "ok"), (bad, "x")]);
        assert_eq!(result.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput), "{bad:?}");
        assert!(out.is_empty(), "{bad:?}: something was written");
    }
}

/// The layout of Java HdrHistogram's `outputPercentileDistribution`: a header and a blank line;
/// rows of `%12.{d}f %2.12f %10d %14.2f` (the last without the fourth column); a three-line
/// footer.
#[test]
fn the_hgrm_layout_is_hdrhistograms() {
    // The Stats histograms' layout: 1 ns to an hour, two significant digits.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid bounds");
    for us in 1..=100u64 {
        histogram.record(us * 1000).expect("in range");
    }
    let mut out = Vec::new();
    Stats::write_hgrm(&histogram, 1000.0, &mut out).expect("written");
    let text = String::from_utf8(out).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "        1.00 0.000000000000          1           1.00");
    let rows: Vec<&str> = lines[2..].iter().copied().take_while(|l| !l.starts_with('#')).collect();
    assert!(rows.len() > 20, "{text}");
    for row in &rows {
        assert!(row.len() >= 12 + 1 + 14 + 1 + 10, "{row:?}");
        assert_eq!(&row[12..13], " ", "{row:?}");
        let value = &row[..12];
        assert_eq!(value.trim().split('.').nth(1).map(str::len), Some(2), "two decimals: {row:?}");
    }
    for row in &rows[..rows.len() - 1] {
        let fields: Vec<f64> = row.split_whitespace().map(|f| f.parse().expect("a number")).collect();
        assert_eq!(fields.len(), 4, "{row}");
        assert_eq!(row.len(), 12 + 1 + 14 + 1 + 10 + 1 + 14, "{row:?}");
        assert!((fields[3] - 1.0 / (1.0 - fields[1])).abs() < 0.01, "{row}");
    }
    let last: Vec<&str> = rows[rows.len() - 1].split_whitespace().collect();
    let max = format!("{:.2}", histogram.highest_equivalent(100_000) as f64 / 1000.0);
    assert_eq!(last, [max.as_str(), "1.000000000000", "100"]);
    let column =
        |i: usize| rows.iter().map(move |r| r.split_whitespace().nth(i).and_then(|f| f.parse::<f64>().ok()));
    assert!(column(0).zip(column(0).skip(1)).all(|(a, b)| a <= b), "values go down");
    assert!(column(2).zip(column(2).skip(1)).all(|(a, b)| a <= b), "counts go down");
    let footer: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("#[")).collect();
    assert_eq!(footer.len(), 3);
    assert_eq!(lines.len(), 2 + rows.len() + 3, "{text}");
    let mean = format!("{:12.2}", histogram.mean() / 1000.0);
    let stdev = format!("{:12.2}", histogram.stdev() / 1000.0);
    assert_eq!(footer[0], format!("#[Mean    = {mean}, StdDeviation   = {stdev}]"));
    assert_eq!(footer[1], format!("#[Max     = {max:>12}, Total count    = {:>12}]", 100));
    assert_eq!(footer[2], format!("#[Buckets = {:>12}, SubBuckets     = {:>12}]", histogram.buckets(), 256));
}

#[test]
fn an_empty_hgrm_has_a_header_and_a_footer_and_bad_ratios_are_refused() {
    let stats = Pipeline::builder(Sum).build().expect("valid").stats();
    let mut out = Vec::new();
    Stats::write_hgrm(&stats.visible_latency, 1.0, &mut out).expect("written");
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n#[Mean"), "{text}");
    assert!(text.contains("Total count    =            0]"));
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut out = Vec::new();
        let result = Stats::write_hgrm(&stats.visible_latency, bad, &mut out);
        assert_eq!(result.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput), "{bad}");
        assert!(out.is_empty());
    }
}
