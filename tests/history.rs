#![cfg(not(loom))]
//! A path with a long history: old top-level segments move into shared chunks, and reads,
//! layouts and retention see them exactly as before.

use lockstep::merge::Concat;
use lockstep::{DiscardSink, Pipeline, Retention, SegmentInfo};

fn top_blocks(first: u64, last: u64) -> Vec<SegmentInfo> {
    (first..=last).step_by(2).map(|start| SegmentInfo { level: 1, start, end: start + 1 }).collect()
}

#[test]
fn a_long_history_reads_whole_and_in_order() {
    let pipeline = Pipeline::builder(Concat::<u64>::default())
        .shards(1)
        .divisor(2)
        .max_level(1)
        .build()
        .expect("valid config");
    let mut producer = pipeline.producer().expect("a producer");
    for commit in 1..=1001u64 {
        producer.commit([("/hot", commit)]).expect("commit");
    }
    let last = pipeline.shutdown().expect("shutdown");
    let mut expected = top_blocks(1, 1000);
    expected.push(SegmentInfo { level: 0, start: 1001, end: 1001 });
    assert_eq!(last.segments("/hot"), expected, "500 top-level segments (7 full chunks), then commit 1001");
    let records: Vec<(u64, u64)> = (1..=1001).map(|c| (c, c)).collect();
    assert_eq!(last.read("/hot"), Some(records));
}

#[test]
fn retention_cuts_through_history_chunks() {
    let pipeline = Pipeline::builder(Concat::<u64>::default())
        .shards(1)
        .divisor(2)
        .max_level(1)
        .sink(DiscardSink)
        .retain(Retention::Newest(150))
        .build()
        .expect("valid config");
    let mut producer = pipeline.producer().expect("a producer");
    for commit in 1..=1000u64 {
        producer.commit([("/hot", commit)]).expect("commit");
    }
    let stats = pipeline.stats();
    let last = pipeline.shutdown().expect("shutdown");
    assert_eq!(last.segments("/hot"), top_blocks(701, 1000), "the newest 150 blocks of two commits");
    let records: Vec<(u64, u64)> = (701..=1000).map(|c| (c, c)).collect();
    assert_eq!(last.read("/hot"), Some(records));
    assert!(stats.segments_dropped <= 350);
}
