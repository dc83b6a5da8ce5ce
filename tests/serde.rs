//! The `serde` feature: the public data types a user logs or sends round-trip through JSON, in
//! the shapes their docs state. `cargo test --features serde --test serde`.
#![cfg(feature = "serde")]

use std::time::Duration;

use lockstep::merge::Sum;
use lockstep::{DiscardSink, Durability, Pipeline, Retention, SegmentInfo, StatsReport};

type Result = std::result::Result<(), Box<dyn std::error::Error>>;

#[test]
fn segment_info_is_a_map_of_its_fields() -> Result {
    let segment = SegmentInfo { level: 2, start: 5, end: 8 };
    let json = serde_json::to_string(&segment)?;
    assert_eq!(json, r#"{"level":2,"start":5,"end":8}"#);
    assert_eq!(serde_json::from_str::<SegmentInfo>(&json)?, segment);
    Ok(())
}

#[test]
fn retention_reads_from_configuration() -> Result {
    assert_eq!(serde_json::to_string(&Retention::All)?, r#""All""#);
    assert_eq!(serde_json::to_string(&Retention::Newest(3))?, r#"{"Newest":3}"#);
    assert_eq!(serde_json::from_str::<Retention>(r#"{"Newest":3}"#)?, Retention::Newest(3));
    assert_eq!(serde_json::from_str::<Retention>(r#""All""#)?, Retention::All);
    assert!(serde_json::from_str::<Retention>(r#"{"Oldest":3}"#).is_err(), "an unknown variant is refused");
    Ok(())
}

#[test]
fn durability_reads_from_configuration() -> Result {
    assert_eq!(serde_json::to_string(&Durability::Written)?, r#""Written""#);
    assert_eq!(serde_json::to_string(&Durability::Synced)?, r#""Synced""#);
    assert_eq!(serde_json::from_str::<Durability>(r#""Synced""#)?, Durability::Synced);
    assert!(serde_json::from_str::<Durability>(r#""Flushed""#).is_err(), "an unknown level is refused");
    Ok(())
}

/// A running pipeline's figures (and a failing sink's message) survive the round trip, and the
/// JSON names every counter and each histogram's summary.
#[test]
fn a_stats_report_round_trips() -> Result {
    let pipeline = Pipeline::builder(Sum).divisor(2).max_level(1).sink(DiscardSink).build()?;
    let mut producer = pipeline.producer()?;
    let mut last = 0;
    for i in 0..64 {
        last = producer.commit([("/a", i), ("/b", i)])?;
    }
    pipeline.wait_sealed(last, Duration::MAX)?;
    drop(producer); // folds its commit timings into the shared histogram
    let report = pipeline.stats().report();
    assert_eq!((report.commits, report.records), (64, 128));
    assert_eq!(report.commit_latency.count, 4, "one call in 16 is timed");

    let json = serde_json::to_string(&report)?;
    let back: StatsReport = serde_json::from_str(&json)?;
    assert_eq!(back, report);

    let value: serde_json::Value = serde_json::from_str(&json)?;
    assert_eq!(value["commits"], 64);
    assert_eq!(value["commit_latency"]["count"], 4);
    for histogram in ["commit_latency", "visible_latency", "batch_size", "compaction", "queue_depth"] {
        for field in ["count", "min", "max", "mean", "p50", "p90", "p99", "p999"] {
            assert!(value[histogram][field].is_number(), "{histogram}.{field} in {json}");
        }
    }
    assert!(value["last_sink_error"].is_null());
    pipeline.shutdown()?;
    Ok(())
}
