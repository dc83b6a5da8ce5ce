//! HdrHistogram interval logs (`--hlog`): the text format of Java HdrHistogram's
//! `HistogramLogWriter`, which `HistogramLogProcessor`, `HistogramLogReader` and the Rust
//! crate's `IntervalLogIterator` read.
//!
//! One line per interval, engine and latency: `Tag=ENGINE.commit` or `Tag=ENGINE.visible`, the
//! interval's start in seconds since `BaseTime` (the moment the run started), its length, its
//! maximum in milliseconds (Java's default `MaxValueDivisor` for nanosecond histograms), and the
//! histogram itself, V2-encoded, deflated and base64-encoded, values in nanoseconds.

use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::run::Measured;

/// Nanoseconds per unit of the max column: milliseconds, as Java writes it.
const MAX_VALUE_DIVISOR: f64 = 1e6;

/// The log's text for every interval of every run, timed from `base` (when the run started).
pub fn render(base: SystemTime, runs: &[(SystemTime, &Measured)]) -> Result<Vec<u8>, String> {
    let mut header = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    IntervalLogWriterBuilder::new()
        .add_comment("loadgen interval log: commit-call and commit-to-visible latency, nanoseconds")
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(base)
        .with_base_time(base)
        .with_max_value_divisor(MAX_VALUE_DIVISOR)
        .begin_log_with(&mut header, &mut serializer)
        .map_err(|e| e.to_string())?;
    header.extend_from_slice(
        b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    );

    let mut body = Vec::new();
    {
        let mut writer = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(MAX_VALUE_DIVISOR)
            .begin_log_with(&mut body, &mut serializer)
            .map_err(|e| e.to_string())?;
        for (opened, measured) in runs {
            let offset = opened.duration_since(base).unwrap_or(Duration::ZERO);
            for interval in &measured.intervals {
                for (what, histogram) in [("commit", &interval.commit), ("visible", &interval.visible)] {
                    let name = format!("{}.{what}", measured.kind);
                    let tag = Tag::new(&name).ok_or_else(|| format!("{name} is not a valid tag"))?;
                    writer
                        .write_histogram(histogram, offset + interval.start, interval.length, Some(tag))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    // The second writer wrote only its divisor comment before the histograms: drop that line.
    let body = match body.iter().position(|&b| b == b'\n') {
        Some(end) if body.starts_with(b"#[MaxValueDivisor") => body[end + 1..].to_vec(),
        _ => body,
    };
    header.extend_from_slice(&body);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Finish, Kind};
    use crate::latency::histogram;
    use crate::rss::Rss;
    use crate::run::Interval;
    use base64::Engine as _;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    fn bytes(encoded: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()
    }

    fn measured(kind: Kind, intervals: Vec<Interval>) -> Measured {
        Measured {
            kind,
            window: Duration::from_secs(1),
            opened: SystemTime::UNIX_EPOCH,
            asked: Duration::from_secs(1),
            commits: 1,
            records: 1,
            issued_commits: 1,
            issued_records: 1,
            commit_latency: histogram(),
            visible_latency: histogram(),
            missed: 0,
            idle_producers: 0,
            producers: 1,
            intervals,
            problems: Vec::new(),
            interrupted: false,
            warmup_only: false,
            frontier: None,
            rss: Rss::default(),
            finish: Finish::default(),
        }
    }

    #[test]
    fn the_log_is_read_back_by_hdrhistograms_reader() {
        let interval = |start_ms: u64, value: u64| {
            let mut commit = histogram();
            commit.record(value).unwrap();
            commit.record(value * 2).unwrap();
            let mut visible = histogram();
            visible.record(value * 10).unwrap();
            Interval {
                start: Duration::from_millis(start_ms),
                length: Duration::from_millis(250),
                commit,
                visible,
            }
        };
        let lockstep = measured(Kind::Lockstep, vec![interval(0, 1000), interval(250, 3000)]);
        let raw = measured(Kind::Raw, vec![interval(0, 500)]);
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let text = render(
            base,
            &[(base + Duration::from_secs(1), &lockstep), (base + Duration::from_secs(5), &raw)],
        )
        .unwrap();
        let as_text = String::from_utf8(text.clone()).unwrap();
        assert!(as_text.contains("#[Histogram log format version 1.3]"), "{as_text}");
        assert!(as_text.contains("#[StartTime: 1700000000.000"), "{as_text}");
        assert!(as_text.contains("#[BaseTime: 1700000000.000"), "{as_text}");
        assert!(as_text.contains("\"StartTimestamp\",\"Interval_Length\""), "{as_text}");
        assert!(
            as_text.lines().any(|l| l.starts_with("Tag=lockstep.commit,1.000,0.250,0.002,HISTF")),
            "{as_text}"
        );

        let mut seen = Vec::new();
        let mut deserializer = Deserializer::new();
        for entry in IntervalLogIterator::new(&text) {
            if let LogEntry::Interval(h) = entry.unwrap() {
                let decoded: hdrhistogram::Histogram<u64> =
                    deserializer.deserialize(&mut bytes(h.encoded_histogram()).as_slice()).unwrap();
                seen.push((
                    h.tag().unwrap().as_str().to_owned(),
                    h.start_timestamp().as_secs_f64(),
                    decoded.len(),
                    decoded.max(),
                ));
            }
        }
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[0].0, "lockstep.commit");
        assert_eq!(seen[1].0, "lockstep.visible");
        assert!((seen[2].1 - 1.25).abs() < 1e-9, "{seen:?}");
        assert_eq!(seen[2].2, 2);
        assert_eq!(seen[3].3, lockstep.intervals[1].visible.max());
        assert_eq!(seen[4].0, "raw.commit");
        assert!((seen[4].1 - 5.0).abs() < 1e-9);
    }
}
