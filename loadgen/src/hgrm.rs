//! HdrHistogram percentile-distribution files (`.hgrm`), the text format of Java
//! HdrHistogram's `outputPercentileDistribution`, which HdrHistogram plotters read.
//!
//! The Rust `hdrhistogram` crate has no printer for it, so it is built here from
//! `iter_quantiles(5)` (five ticks per half distance to 100%, as the Java default). Histograms
//! hold nanoseconds; values are written in microseconds (an output scaling ratio of 1000) with
//! three decimals, the histograms' significant digits.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::latency::SIGNIFICANT_DIGITS;

/// Ticks per half distance to 100%: rows at 0%, 10%, …, 50%, 55%, …, 75%, 77.5%, …
const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Nanoseconds per output unit (microseconds).
const SCALING_RATIO: f64 = 1000.0;

/// The file's text for `histogram` (nanoseconds), values in microseconds.
pub fn render(histogram: &Histogram<u64>) -> String {
    let digits = usize::from(SIGNIFICANT_DIGITS);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / SCALING_RATIO;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.digits$} {quantile:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - quantile)
            );
        } else {
            // The last row: 1/(1-Percentile) is infinite, and the format leaves it out.
            let _ = writeln!(out, "{value:12.digits$} {quantile:2.12} {total:10}");
        }
    }
    let (mean, deviation, max) = if histogram.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (histogram.mean(), histogram.stdev(), histogram.max() as f64)
    };
    let _ = writeln!(
        out,
        "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
        mean / SCALING_RATIO,
        deviation / SCALING_RATIO
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        max / SCALING_RATIO,
        histogram.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_buckets(histogram.sigfig())
    );
    out
}

/// Sub-buckets per bucket for `sigfig` significant digits and a lowest value of 1, as
/// HdrHistogram computes it (the crate does not expose it).
fn sub_buckets(sigfig: u8) -> u64 {
    let largest_with_single_unit_resolution = 2 * 10u64.pow(u32::from(sigfig));
    let magnitude = (largest_with_single_unit_resolution as f64).log2().ceil() as u32;
    1 << magnitude.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::histogram;

    #[test]
    fn the_format_is_hdrhistograms() {
        let mut h = histogram();
        for us in 1..=100u64 {
            h.record(us * 1000).unwrap();
        }
        let text = render(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
        assert_eq!(lines[1], "");
        assert_eq!(lines[2], "       1.000 0.000000000000          1           1.00");
        let rows: Vec<&str> =
            lines.iter().copied().filter(|l| !l.is_empty() && !l.starts_with('#')).skip(1).collect();
        // Every row: value, percentile, count, and 1/(1-p) except the last.
        for row in &rows[..rows.len() - 1] {
            let fields: Vec<f64> = row.split_whitespace().map(|f| f.parse().unwrap()).collect();
            assert_eq!(fields.len(), 4, "{row}");
            assert!((fields[3] - 1.0 / (1.0 - fields[1])).abs() < 0.01, "{row}");
        }
        let last: Vec<&str> = rows[rows.len() - 1].split_whitespace().collect();
        assert_eq!(last, ["100.031", "1.000000000000", "100"]);
        // Counts and values never go down.
        let column =
            |i: usize| rows.iter().map(move |r| r.split_whitespace().nth(i).unwrap().parse::<f64>().unwrap());
        assert!(column(0).zip(column(0).skip(1)).all(|(a, b)| a <= b));
        assert!(column(2).zip(column(2).skip(1)).all(|(a, b)| a <= b));
        let footer: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("#[")).collect();
        assert_eq!(footer.len(), 3);
        assert!(footer[0].starts_with("#[Mean    =       50.5"), "{}", footer[0]);
        assert_eq!(footer[1], "#[Max     =      100.031, Total count    =          100]");
        assert!(footer[2].ends_with("SubBuckets     =         2048]"), "{}", footer[2]);
    }

    #[test]
    fn an_empty_histogram_has_a_header_and_a_footer() {
        let text = render(&histogram());
        assert!(text.starts_with("       Value"));
        assert!(text.contains("Total count    =            0]"));
    }

    #[test]
    fn sub_buckets_match_hdrhistogram() {
        assert_eq!(sub_buckets(3), 2048);
        assert_eq!(sub_buckets(2), 256);
        assert_eq!(sub_buckets(1), 32);
    }
}
