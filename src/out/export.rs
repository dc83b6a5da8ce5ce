//! Writing [`Stats`] out for the tools that collect figures: Prometheus text exposition
//! ([`Stats::write_prometheus`]) and HdrHistogram percentile distributions, the `.hgrm` text
//! Java HdrHistogram's `outputPercentileDistribution` prints and HdrHistogram plotters read
//! ([`Stats::write_hgrm`]).
//!
//! Both write to any `io::Write` and check their arguments before writing anything, so a
//! refusal (an `io::ErrorKind::InvalidInput` error) leaves the output untouched.

use std::fmt::Write as _;
use std::io;

use hdrhistogram::Histogram;

use crate::out::families::{Measure, COUNTERS, FRONTIER, HISTOGRAMS};
use crate::out::stats::Stats;

/// Quantiles every summary reports (1 is the largest value recorded).
const QUANTILES: [f64; 5] = [0.5, 0.9, 0.99, 0.999, 1.0];
/// Ticks per half distance to 100% in `.hgrm` rows, as Java HdrHistogram's default: rows at 0%,
/// 10%, …, 50%, 55%, …, 75%, 77.5%, …
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The upper bounds (`le`) of every duration histogram's buckets, in nanoseconds: 1, 2.5 and 5
/// per decade from 100 ns to 10 s. Fixed, so the same bucket of every instance adds up.
pub(crate) const DURATION_BOUNDS: [u64; 25] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The upper bounds of every size histogram's buckets, in parts: powers of 4 from 1 to 2^20.
pub(crate) const PARTS_BOUNDS: [u64; 11] =
    [1, 4, 16, 64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576];

/// One histogram of [`Stats`] as a Prometheus summary and a Prometheus histogram.
struct Summary<'a> {
    name: &'static str,
    /// The histogram family's name.
    buckets_name: &'static str,
    /// Its buckets' upper bounds, in recorded units.
    bounds: &'static [u64],
    help: &'static str,
    histogram: &'a Histogram<u64>,
    /// Recorded values per unit of the metric (a division rounds to the shortest form better
    /// than a multiplication by the inverse: 369 ns prints as 0.000000369).
    per_unit: f64,
}

impl Stats {
    /// Writes every figure in the Prometheus text exposition format (version 0.0.4), each
    /// sample with `labels` (for instance, which pipeline of a process it is).
    ///
    /// Counts are counters (`lockstep_commits_total`, `lockstep_records_total`,
    /// `lockstep_sink_writes_total`, `lockstep_sink_failures_total`,
    /// `lockstep_segments_dropped_total`, `lockstep_worker_parks_total`,
    /// `lockstep_torn_tails_total`); the frontier is a gauge
    /// (`lockstep_frontier`); each histogram is written twice.
    ///
    /// - As a **summary**, with quantiles 0.5, 0.9, 0.99, 0.999 and 1 (the maximum), `_sum` and
    ///   `_count`: `lockstep_commit_duration_seconds`, `lockstep_commit_to_visible_seconds`,
    ///   `lockstep_worker_batch_parts`, `lockstep_worker_merge_seconds` and
    ///   `lockstep_worker_queue_depth_parts`. Exact for one instance, but quantiles do not add
    ///   up across instances. An empty summary's quantiles are `NaN`, as Prometheus clients
    ///   write them.
    /// - As a **histogram** with fixed buckets, which do add up (`sum by (le)` then
    ///   `histogram_quantile`): `lockstep_commit_duration_histogram_seconds`,
    ///   `lockstep_commit_to_visible_histogram_seconds`, `lockstep_worker_merge_histogram_seconds`
    ///   with `le` at 1, 2.5 and 5 per decade from 100 ns to 10 s (`1e-7`, `2.5e-7`, `5e-7`,
    ///   `1e-6`, … `10`), and `lockstep_worker_batch_histogram_parts`,
    ///   `lockstep_worker_queue_depth_histogram_parts` with `le` at the powers of 4 from 1 to
    ///   1,048,576; then `+Inf`, equal to `_count`. Buckets are cumulative. A value counts under
    ///   a bound when its whole HdrHistogram bucket lies at or below it, so a value within 1%
    ///   below a bound may count in the next bucket up, never in a lower one.
    ///
    /// Durations are in seconds. Quantiles and sums come from the histograms' buckets, so they
    /// carry their two significant digits.
    ///
    /// Label values are escaped.
    ///
    /// # Errors
    ///
    /// `io::ErrorKind::InvalidInput`, with nothing written, unless every label name is a valid
    /// Prometheus name, not reserved (`__…`), not `quantile` or `le`, and given once. Otherwise only
    /// what `out` reports: the text is built first and written with one `write_all`.
    ///
    /// ```
    /// use lockstep::{merge::Sum, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(Sum).build()?;
    /// let mut producer = pipeline.producer()?;
    /// let commit = producer.commit([("/a", 1), ("/b", 2)])?;
    /// pipeline.wait_sealed(commit, std::time::Duration::MAX)?;
    ///
    /// let mut text = Vec::new();
    /// pipeline.stats().write_prometheus(&mut text, &[("pipeline", "ingest")])?;
    /// let text = String::from_utf8(text)?;
    /// assert!(text.contains("# TYPE lockstep_commits_total counter\n"));
    /// assert!(text.contains("lockstep_commits_total{pipeline=\"ingest\"} 1\n"));
    /// assert!(text.contains("lockstep_records_total{pipeline=\"ingest\"} 2\n"));
    /// assert!(text.contains("lockstep_commit_to_visible_seconds{pipeline=\"ingest\",quantile=\"0.99\"} "));
    /// assert!(text.contains("# TYPE lockstep_commit_to_visible_histogram_seconds histogram\n"));
    /// assert!(text.contains("lockstep_commit_to_visible_histogram_seconds_bucket{pipeline=\"ingest\",le=\"0.001\"} "));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_prometheus<W: io::Write + ?Sized>(
        &self,
        out: &mut W,
        labels: &[(&str, &str)],
    ) -> io::Result<()> {
        for (i, (name, _)) in labels.iter().enumerate() {
            check_label_name(name)?;
            if labels[..i].iter().any(|(earlier, _)| earlier == name) {
                let why = format!("the label name {name:?} is given twice (a sample takes each name once)");
                return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
            }
        }
        let mut text = String::new();
        let plain = label_set(labels, None);
        for counter in &COUNTERS {
            family(&mut text, counter.name, counter.help, "counter");
            let _ = writeln!(text, "{}{plain} {}", counter.name, (counter.figure)(self));
        }
        let (name, help) = FRONTIER;
        family(&mut text, name, help, "gauge");
        let _ = writeln!(text, "{name}{plain} {}", self.frontier);
        let summaries = HISTOGRAMS.iter().map(|family| Summary {
            name: family.name,
            buckets_name: family.buckets_name,
            bounds: match family.measure {
                Measure::Duration => &DURATION_BOUNDS,
                Measure::Parts => &PARTS_BOUNDS,
            },
            help: family.help,
            histogram: (family.histogram)(self),
            per_unit: family.measure.per_unit(),
        });
        for summary in summaries {
            summary.write(&mut text, labels, &plain);
        }
        out.write_all(text.as_bytes())
    }

    /// Writes `histogram` as an HdrHistogram percentile distribution (`.hgrm`), the text Java
    /// HdrHistogram's `outputPercentileDistribution(out, 5, value_unit_ratio)` prints: a row
    /// per percentile step (value, percentile, count up to it, `1/(1-percentile)`), then the
    /// mean, standard deviation, maximum, count and layout. Values are divided by
    /// `value_unit_ratio` (1000.0 prints the nanosecond histograms in microseconds) and shown
    /// with as many decimals as the histogram has significant digits.
    ///
    /// # Errors
    ///
    /// `io::ErrorKind::InvalidInput`, with nothing written, unless `value_unit_ratio` is finite
    /// and above zero. Otherwise only what `out` reports (one `write_all`).
    ///
    /// ```
    /// use lockstep::{merge::Sum, Pipeline, Stats};
    ///
    /// let pipeline = Pipeline::builder(Sum).build()?;
    /// let mut producer = pipeline.producer()?;
    /// for i in 0..100 {
    ///     producer.commit([("/a", i)])?;
    /// }
    /// let stats = pipeline.stats();
    /// let mut hgrm = Vec::new();
    /// Stats::write_hgrm(&stats.commit_latency, 1000.0, &mut hgrm)?; // in microseconds
    /// let hgrm = String::from_utf8(hgrm)?;
    /// assert!(hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    /// assert!(hgrm.contains("#[Max     = "));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_hgrm<W: io::Write + ?Sized>(
        histogram: &Histogram<u64>,
        value_unit_ratio: f64,
        out: &mut W,
    ) -> io::Result<()> {
        if !(value_unit_ratio.is_finite() && value_unit_ratio > 0.0) {
            let why = format!("value_unit_ratio must be finite and above zero, not {value_unit_ratio}");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        let digits = usize::from(histogram.sigfig());
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "{:>12} {:>14} {:>10} {:>14}\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        let mut total = 0u64;
        for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / value_unit_ratio;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let inverse = 1.0 / (1.0 - quantile);
                let _ = writeln!(text, "{value:12.digits$} {quantile:2.12} {total:10} {inverse:14.2}");
            } else {
                // The last row: 1/(1-Percentile) is infinite, and the format leaves it out.
                let _ = writeln!(text, "{value:12.digits$} {quantile:2.12} {total:10}");
            }
        }
        let (mean, deviation, max) = if histogram.is_empty() {
            (0.0, 0.0, 0.0)
        } else {
            (histogram.mean(), histogram.stdev(), histogram.max() as f64)
        };
        let (mean, deviation, max) =
            (mean / value_unit_ratio, deviation / value_unit_ratio, max / value_unit_ratio);
        let _ = writeln!(text, "#[Mean    = {mean:12.digits$}, StdDeviation   = {deviation:12.digits$}]");
        let _ = writeln!(text, "#[Max     = {max:12.digits$}, Total count    = {:12}]", histogram.len());
        let _ = writeln!(
            text,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            histogram.buckets(),
            sub_buckets(histogram.sigfig())
        );
        out.write_all(text.as_bytes())
    }
}

impl Summary<'_> {
    fn write(&self, text: &mut String, labels: &[(&str, &str)], plain: &str) {
        let Summary { name, help, histogram, per_unit, .. } = self;
        family(text, name, help, "summary");
        for quantile in QUANTILES {
            let value = if histogram.is_empty() {
                f64::NAN
            } else {
                histogram.value_at_quantile(quantile) as f64 / per_unit
            };
            let labels = label_set(labels, Some(quantile));
            let _ = writeln!(text, "{name}{labels} {}", number(value));
        }
        // From the buckets' middle values, as the mean is: two significant digits.
        let sum =
            if histogram.is_empty() { 0.0 } else { histogram.mean() * histogram.len() as f64 / per_unit };
        let _ = writeln!(text, "{name}_sum{plain} {}", number(sum));
        let _ = writeln!(text, "{name}_count{plain} {}", histogram.len());

        // The same values in fixed buckets, cumulative. A value counts under a bound when its
        // whole HdrHistogram bucket does (the bucket's highest value is at most the bound), so
        // `le` is never exceeded; a value within 1% below a bound may count in the next one.
        let name = self.buckets_name;
        family(text, name, help, "histogram");
        let mut recorded =
            histogram.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).peekable();
        let mut below = 0u64;
        for &bound in self.bounds {
            while let Some((_, count)) = recorded.next_if(|&(value, _)| value <= bound) {
                below += count;
            }
            let le = number(bound as f64 / per_unit);
            let _ = writeln!(text, "{name}_bucket{} {below}", label_set_with(labels, ("le", &le)));
        }
        let _ = writeln!(text, "{name}_bucket{} {}", label_set_with(labels, ("le", "+Inf")), histogram.len());
        let _ = writeln!(text, "{name}_sum{plain} {}", number(sum));
        let _ = writeln!(text, "{name}_count{plain} {}", histogram.len());
    }
}

/// `{name="value",…}` for `labels` and one more pair, whose value is written as it is.
fn label_set_with(labels: &[(&str, &str)], (extra, value): (&str, &str)) -> String {
    let mut pairs: Vec<String> =
        labels.iter().map(|(name, value)| format!("{name}=\"{}\"", escape(value))).collect();
    pairs.push(format!("{extra}=\"{value}\""));
    format!("{{{}}}", pairs.join(","))
}

/// The `# HELP` and `# TYPE` lines of a metric family.
fn family(text: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
}

/// `{name="value",…}` for `labels` and an optional quantile, or nothing when both are absent.
fn label_set(labels: &[(&str, &str)], quantile: Option<f64>) -> String {
    let mut pairs: Vec<String> =
        labels.iter().map(|(name, value)| format!("{name}=\"{}\"", escape(value))).collect();
    if let Some(quantile) = quantile {
        pairs.push(format!("quantile=\"{quantile}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

/// A label value as the format quotes it: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A sample value: Rust's shortest round-trip form, which Prometheus parses (`NaN` included).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else {
        value.to_string()
    }
}

/// Refuses a label name Prometheus would reject or that would clash with the summaries'.
fn check_label_name(name: &str) -> io::Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || name.starts_with("__") || name == "quantile" || name == "le" {
        let why = format!(
            "{name:?} is not a label name lockstep can write (Prometheus names; not __…, quantile or le)"
        );
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    Ok(())
}

/// Sub-buckets per bucket for `sigfig` significant digits and a lowest value of 1, as
/// HdrHistogram computes it (the crate does not expose it).
fn sub_buckets(sigfig: u8) -> u64 {
    let largest_with_single_unit_resolution = 2 * 10u64.pow(u32::from(sigfig));
    let magnitude = (largest_with_single_unit_resolution as f64).log2().ceil() as u32;
    1 << magnitude.max(1)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn sub_buckets_match_hdrhistogram() {
        assert_eq!(sub_buckets(3), 2048);
        assert_eq!(sub_buckets(2), 256);
        assert_eq!(sub_buckets(1), 32);
    }

    #[test]
    fn label_names_are_checked_and_values_escaped() {
        for bad in ["", "1a", "a-b", "__name", "quantile", "le", "é"] {
            assert_eq!(
                check_label_name(bad).map_err(|e| e.kind()),
                Err(io::ErrorKind::InvalidInput),
                "{bad:?}"
            );
        }
        for good in ["a", "_a", "pipeline", "shard_2"] {
            assert!(check_label_name(good).is_ok(), "{good:?}");
        }
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn a_label_name_given_twice_is_refused_and_nothing_is_written() {
        let stats = crate::out::stats::Recorder::new(0).read(1, 1);
        let mut text = Vec::new();
        let twice = stats.write_prometheus(&mut text, &[("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(twice.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));
        assert!(text.is_empty(), "nothing written: {:?}", String::from_utf8_lossy(&text));
        assert!(stats.write_prometheus(&mut text, &[("a", "1"), ("b", "1")]).is_ok());
        assert!(String::from_utf8_lossy(&text).contains("lockstep_commits_total{a=\"1\",b=\"1\"} 1\n"));
        assert_eq!(label_set(&[], None), "");
        assert_eq!(label_set(&[("a", "x")], Some(0.5)), "{a=\"x\",quantile=\"0.5\"}");
    }
}
