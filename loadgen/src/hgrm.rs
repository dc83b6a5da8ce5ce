//! HdrHistogram percentile-distribution files (`.hgrm`), the text format of Java
//! HdrHistogram's `outputPercentileDistribution`, which HdrHistogram plotters read: lockstep's
//! own printer ([`lockstep::Stats::write_hgrm`]), with values in microseconds.

use hdrhistogram::Histogram;

/// Nanoseconds per output unit (microseconds).
const SCALING_RATIO: f64 = 1000.0;

/// The file's text for `histogram` (nanoseconds), values in microseconds.
pub fn render(histogram: &Histogram<u64>) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and the ratio is a valid one.
    let _ = lockstep::Stats::write_hgrm(histogram, SCALING_RATIO, &mut out);
    String::from_utf8_lossy(&out).into_owned()
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
        // Every row against the histogram's own figures: the value (µs, to the nanosecond) is
        // the top of one of its buckets; the count is every sample at or below it; and that
        // bucket is where the cumulative count crosses the row's percentile: the samples below it
        // fall short of it, the samples up to it reach it.
        let total = h.len() as f64;
        for row in &rows {
            let fields: Vec<f64> = row.split_whitespace().map(|f| f.parse().unwrap()).collect();
            let (value, quantile, count) = ((fields[0] * 1000.0).round() as u64, fields[1], fields[2] as u64);
            assert_eq!(h.highest_equivalent(value), value, "{row}: not a bucket's top");
            assert!(h.count_at(value) > 0, "{row}: no sample in its bucket");
            assert_eq!(count, h.count_between(0, value), "{row}: the samples at or below its value");
            let below = (count - h.count_at(value)) as f64 / total;
            assert!(below <= quantile + 1e-9 && count as f64 / total >= quantile - 1e-9, "{row}");
        }
        assert_eq!(rows.len(), h.iter_quantiles(5).count(), "one row per step of the quantile iteration");
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
}
