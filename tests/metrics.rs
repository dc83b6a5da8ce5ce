//! The `metrics` feature: `MetricsExport` records lockstep's figures through the `metrics`
//! facade, checked with metrics-util's debugging recorder. `cargo test --features metrics --test
//! metrics`.
#![cfg(all(feature = "metrics", not(loom)))]

mod common;

use std::collections::HashMap;

use common::PATIENCE;
use lockstep::merge::Sum;
use lockstep::{MetricsExport, Pipeline, Stats};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

/// What the recorder holds per (kind, name): the labels and the value.
type Taken = HashMap<(MetricKind, String), (Vec<(String, String)>, DebugValue)>;

fn take(snapshotter: &Snapshotter) -> Taken {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            ((kind, key.name().to_owned()), (labels, value))
        })
        .collect()
}

fn histogram_values(taken: &Taken, name: &str) -> Vec<f64> {
    match taken.get(&(MetricKind::Histogram, name.to_owned())) {
        Some((_, DebugValue::Histogram(values))) => values.iter().map(|v| v.into_inner()).collect(),
        other => panic!("{name}: {other:?}"),
    }
}

fn commit_some(pipeline: &Pipeline<Sum>, commits: i64) -> u64 {
    let mut producer = pipeline.producer().expect("a producer");
    let mut last = 0;
    for i in 0..commits {
        last = producer.commit([("/a", i), ("/b", 1)]).expect("accepted");
    }
    drop(producer); // folds its commit timings in
    pipeline.wait_sealed(last, PATIENCE).expect("visible");
    last
}

/// Counters are set to their totals, the frontier gauge follows, and each histogram gets every
/// value exactly once over two exports: the second records only what came after the first.
#[test]
fn counters_gauge_and_histograms_go_through_the_facade() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let pipeline = Pipeline::builder(Sum).shards(2).divisor(2).max_level(3).build().expect("valid");
    let mut export = MetricsExport::with_labels(&[("pipeline", "ingest")]);

    commit_some(&pipeline, 320);
    let first: Stats = pipeline.stats();
    metrics::with_local_recorder(&recorder, || export.record(&first));
    let taken = take(&snapshotter);
    let counter = |taken: &Taken, name: &str| match taken.get(&(MetricKind::Counter, name.to_owned())) {
        Some((labels, DebugValue::Counter(value))) => {
            assert_eq!(labels, &[("pipeline".to_owned(), "ingest".to_owned())], "{name}");
            *value
        }
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(counter(&taken, "lockstep_commits_total"), 320);
    assert_eq!(counter(&taken, "lockstep_records_total"), 640);
    assert_eq!(counter(&taken, "lockstep_worker_parks_total"), first.worker_parks);
    match taken.get(&(MetricKind::Gauge, "lockstep_frontier".to_owned())) {
        Some((_, DebugValue::Gauge(frontier))) => assert_eq!(frontier.into_inner(), first.frontier as f64),
        other => panic!("lockstep_frontier: {other:?}"),
    }
    let commit_seconds = histogram_values(&taken, "lockstep_commit_duration_seconds");
    assert_eq!(commit_seconds.len() as u64, first.commit_latency.len(), "one value per timed call");
    assert_eq!(commit_seconds.len(), 20, "one call in 16 of 320");
    assert!(commit_seconds.iter().all(|&s| s > 0.0 && s < 60.0), "in seconds: {commit_seconds:?}");
    let batches = histogram_values(&taken, "lockstep_worker_batch_parts");
    assert_eq!(batches.len() as u64, first.batch_size.len());
    let parts: f64 = batches.iter().sum();
    assert!((parts - 640.0).abs() <= 6.4, "every drained part, at two significant digits: {parts}");

    commit_some(&pipeline, 160);
    let second = pipeline.stats();
    metrics::with_local_recorder(&recorder, || export.record(&second));
    let taken = take(&snapshotter);
    assert_eq!(counter(&taken, "lockstep_commits_total"), 480, "a total, not an increment");
    let commit_seconds = histogram_values(&taken, "lockstep_commit_duration_seconds");
    assert_eq!(commit_seconds.len(), 10, "only the 10 timed calls since the first export");
    for (name, of) in [
        ("lockstep_commit_to_visible_seconds", (|s| &s.visible_latency) as fn(&Stats) -> &_),
        ("lockstep_worker_batch_parts", |s| &s.batch_size),
        ("lockstep_worker_merge_seconds", |s| &s.compaction),
        ("lockstep_worker_queue_depth_parts", |s| &s.queue_depth),
    ] {
        let values = histogram_values(&taken, name);
        assert_eq!(values.len() as u64, of(&second).len() - of(&first).len(), "{name}");
    }
    pipeline.shutdown().expect("clean");
}

/// Nothing is recorded without a recorder, and nothing panics: the facade's no-op default.
#[test]
fn without_a_recorder_it_is_a_no_op() {
    let pipeline = Pipeline::builder(Sum).build().expect("valid");
    commit_some(&pipeline, 10);
    let mut export = MetricsExport::new();
    export.record(&pipeline.stats());
    export.record(&pipeline.stats());
}
