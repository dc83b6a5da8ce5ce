#![cfg(not(loom))]
//! The sink receives every flush-level segment exactly once, with the right output; a failing
//! sink loses nothing and is retried; retention bounds what stays in memory.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Collect, Commits, PATIENCE};
use lockstep::merge::{Concat, Sum};
use lockstep::{DiscardSink, Merge, Pipeline, Retention, SegmentInfo, Stats};

/// Polls the pipeline's stats until `done` holds, at most `PATIENCE`; returns the last reading.
fn stats_until<M: Merge>(pipeline: &Pipeline<M>, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = pipeline.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}; {stats:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Commits `count` random commits from two producers to a few paths (one sparse); returns the
/// commits as numbered.
fn workload<M: Merge>(
    pipeline: &Pipeline<M>,
    count: u64,
    record: impl Fn(u64) -> M::Record,
) -> Commits<M::Record>
where
    M::Record: Clone,
{
    let scripts = (0..2u64)
        .map(|p| {
            let mut rng = common::Rng::new(p + 100);
            (0..count / 2)
                .map(|i| {
                    let mut parts: Vec<(String, M::Record)> = Vec::new();
                    for k in 0..1 + rng.below(3) {
                        let path = ["/a", "/b", "/c"][rng.below(3) as usize];
                        parts.push((path.to_owned(), record(p << 32 | i << 4 | k)));
                    }
                    if rng.below(10) == 0 {
                        parts.push(("/sparse".to_owned(), record(i)));
                    }
                    parts
                })
                .collect()
        })
        .collect();
    common::commit_scripts(pipeline, scripts)
}

#[test]
fn every_flush_level_segment_reaches_the_sink_once() {
    for (shards, divisor, max_level, flush_level) in
        [(2, 2, 3, None), (2, 2, 3, Some(1)), (3, 3, 2, Some(0)), (1, 4, 1, None)]
    {
        let sink = Collect::<i64>::new(0);
        let mut builder =
            Pipeline::builder(Sum).shards(shards).divisor(divisor).max_level(max_level).sink(sink.clone());
        if let Some(level) = flush_level {
            builder = builder.flush_level(level);
        }
        let pipeline = builder.queue_capacity(4).build().expect("valid config");
        let commits = workload(&pipeline, 120, |r| (r % 1000) as i64 - 500);
        let flush_level = flush_level.unwrap_or(max_level);
        let expected = common::sink_writes(&commits, divisor, flush_level, |records| {
            records.iter().fold(0i64, |sum, (_, v)| sum.wrapping_add(*v))
        });
        let count: usize = expected.values().map(Vec::len).sum();
        // Compaction reaches every sealed block without a shutdown.
        pipeline.wait_sealed(commits.len() as u64, PATIENCE).expect("every commit becomes visible");
        let stats =
            stats_until(&pipeline, "every flush-level segment written", |s| s.sink_writes >= count as u64);
        assert_eq!(stats.sink_failures, 0);
        let last = pipeline.shutdown().expect("clean shutdown");
        let written = sink.by_path();
        assert_eq!(
            written, expected,
            "sink writes for {shards} shards, D={divisor}, flush level {flush_level}"
        );
        // The sink does not take data away: everything is still readable.
        for (path, sum) in common::sum_reads(&commits, last.frontier()) {
            assert_eq!(last.read(&path), Some(sum));
        }
    }
}

#[test]
fn concat_outputs_reach_the_sink_whole() {
    let sink = Collect::<Vec<(u64, u64)>>::new(0);
    let pipeline = Pipeline::builder(Concat::<u64>::default())
        .shards(2)
        .divisor(2)
        .max_level(2)
        .flush_level(2)
        .sink(sink.clone())
        .build()
        .expect("valid config");
    let commits = workload(&pipeline, 90, |r| r);
    pipeline.shutdown().expect("clean shutdown");
    assert_eq!(sink.by_path(), common::sink_writes(&commits, 2, 2, |records| records));
}

/// The first writes fail: the failures are counted, the data stays readable, and every
/// segment is written once the sink recovers (by the periodic retry or at shutdown).
#[test]
fn a_failing_sink_loses_nothing_and_is_retried() {
    let failures = 3;
    let sink = Collect::<i64>::new(failures);
    let pipeline = Pipeline::builder(Sum)
        .shards(2)
        .divisor(2)
        .max_level(2)
        .flush_level(1)
        .sink(sink.clone())
        .build()
        .expect("valid");
    let commits = workload(&pipeline, 64, |r| (r % 100) as i64);
    let stats = stats_until(&pipeline, "the failing writes", |s| s.sink_failures >= failures as u64);
    assert_eq!(stats.sink_failures, failures as u64, "only the first {failures} writes fail");
    let error = stats.last_sink_error.expect("the sink's error is kept");
    assert!(error.contains("sink unavailable"), "last_sink_error is the sink's message: {error:?}");
    let last = pipeline.shutdown().expect("clean shutdown");
    for (path, sum) in common::sum_reads(&commits, last.frontier()) {
        assert_eq!(last.read(&path), Some(sum), "{path} lost nothing");
    }
    let mut written = sink.by_path();
    for writes in written.values_mut() {
        writes.sort_by_key(|(segment, _)| *segment); // retries arrive late
    }
    let expected = common::sink_writes(&commits, 2, 1, |records| records.iter().map(|(_, v)| v).sum());
    assert_eq!(written, expected, "every segment written exactly once in the end");
    assert_eq!(
        sink.attempts.load(Ordering::SeqCst),
        expected.values().map(Vec::len).sum::<usize>() + failures
    );
}

/// A sink that refuses every write, under a window that drops the blocks from memory: shutdown
/// does not return a plain `Ok`; it hands back every flush-level segment with its output, and
/// the final snapshot with every commit.
#[test]
fn shutdown_hands_back_what_the_sink_never_took() {
    let sink = Collect::<i64>::new(usize::MAX);
    let (divisor, max_level) = (2, 2);
    let pipeline = Pipeline::builder(Sum)
        .shards(2)
        .divisor(divisor)
        .max_level(max_level)
        .flush_level(1)
        .sink(sink.clone())
        .retain(Retention::Newest(1))
        .build()
        .expect("valid");
    let commits = workload(&pipeline, 64, |r| (r % 100) as i64);
    let refused = pipeline.shutdown().expect_err("the sink took nothing");
    let expected = common::sink_writes(&commits, divisor, 1, |records| records.iter().map(|(_, v)| v).sum());
    let segments = expected.values().map(Vec::len).sum();
    assert_eq!(refused.error, lockstep::Error::Undelivered { segments });
    assert!(sink.written().is_empty());
    let mut undelivered: BTreeMap<String, Vec<(SegmentInfo, i64)>> = BTreeMap::new();
    for u in refused.undelivered {
        undelivered.entry(u.path.to_string()).or_default().push((u.segment, u.output));
    }
    for writes in undelivered.values_mut() {
        writes.sort_by_key(|(segment, _)| *segment);
    }
    assert_eq!(undelivered, expected, "every refused segment handed back, with its output");
    let last = refused.last.expect("every commit became visible");
    assert_eq!(last.frontier(), commits.len() as u64);
}

/// A sink that refuses its first writes while retention drops the blocks they came from: the
/// refused writes keep their outputs and are retried, so the sink still gets every flush-level
/// segment exactly once, while reads see only the window.
#[test]
fn retention_never_takes_a_refused_write_from_the_sink() {
    let failures = 40;
    let sink = Collect::<i64>::new(failures);
    let (divisor, max_level) = (2, 1);
    let pipeline = Pipeline::builder(Sum)
        .shards(2)
        .divisor(divisor)
        .max_level(max_level)
        .sink(sink.clone())
        .retain(Retention::Newest(1))
        .build()
        .expect("valid");
    let commits = workload(&pipeline, 120, |r| (r % 7) as i64);
    let stats = stats_until(&pipeline, "failed writes", |s| s.sink_failures >= failures as u64);
    assert_eq!(stats.sink_failures, failures as u64);
    let last = pipeline.shutdown().expect("clean shutdown");
    let mut written = sink.by_path();
    for writes in written.values_mut() {
        writes.sort_by_key(|(segment, _)| *segment); // retries arrive late
    }
    let expected =
        common::sink_writes(&commits, divisor, max_level, |records| records.iter().map(|(_, v)| v).sum());
    assert_eq!(written, expected, "every segment reached the sink exactly once");
    let from = common::window_start(divisor, max_level, Some(1), last.frontier());
    for (path, records) in common::concat_reads(&commits, last.frontier()) {
        let window: Vec<i64> = records.iter().filter(|(c, _)| *c >= from).map(|(_, v)| *v).collect();
        assert_eq!(
            last.read(&path),
            (!window.is_empty()).then(|| window.iter().sum()),
            "{path} reads the window"
        );
    }
}

/// `Retention::Newest(n)` with a sink that takes everything: every path keeps the same window,
/// the newest `n` top-level blocks (plus what is not top-level yet), and reads see that window.
#[test]
fn retention_keeps_the_same_window_for_every_path() {
    for (keep, divisor, max_level, flush_level) in
        [(2, 2, 2, None), (1, 2, 2, Some(1)), (3, 3, 0, None), (2, 4, 1, Some(0)), (0, 2, 2, None)]
    {
        let mut builder = Pipeline::builder(Concat::<u64>::default())
            .shards(2)
            .divisor(divisor)
            .max_level(max_level)
            .sink(DiscardSink)
            .retain(Retention::Newest(keep));
        if let Some(level) = flush_level {
            builder = builder.flush_level(level);
        }
        let pipeline = builder.build().expect("valid");
        let commits = workload(&pipeline, 400, |r| r);
        let stats = stats_until(&pipeline, "segments dropped", |s| s.segments_dropped > 0);
        assert!(stats.sink_writes > 0);
        let last = pipeline.shutdown().expect("clean shutdown");
        let total = last.frontier();
        let setup = format!("keep {keep}, D={divisor}, max level {max_level}, flush level {flush_level:?}");
        let from = common::window_start(divisor, max_level, Some(keep), total);
        let listed: std::collections::HashSet<&str> = last.paths().collect();
        for (path, layout) in common::layouts(&commits, divisor, max_level, total) {
            let kept: Vec<SegmentInfo> = layout.iter().filter(|s| s.start >= from).copied().collect();
            let segments = last.segments(&path);
            assert_eq!(segments, kept, "{setup}: {path} keeps the window from commit {from}");
            // A path with nothing in the window is no longer listed.
            assert_eq!(listed.contains(path.as_str()), !kept.is_empty(), "{setup}: {path} listed");
            let window: Vec<(u64, u64)> =
                common::concat_of(&commits, &path, total).into_iter().filter(|(c, _)| *c >= from).collect();
            assert_eq!(
                last.read(&path),
                (!window.is_empty()).then_some(window),
                "{setup}: {path} reads the retained window"
            );
        }
    }
}
