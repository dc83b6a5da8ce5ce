#![cfg(not(loom))]
//! The concurrent pipeline against the sequential reference model in `common`: random workloads
//! from several producer threads, every geometry the tests care about, and after `shutdown` the
//! frontier, the paths, every path's segments and every read must equal the model's.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use common::{Commits, PATIENCE};
use lockstep::merge::{Concat, LastWriteWins, Sum};
use lockstep::{Builder, Merge, Pipeline, SegmentInfo, Snapshot};
use proptest::prelude::*;

/// The settings a workload runs under.
#[derive(Debug, Clone, Copy)]
struct Setup {
    shards: usize,
    divisor: u64,
    max_level: u32,
    queue_capacity: usize,
    merge_budget: usize,
}

impl Setup {
    fn builder<M: Merge>(&self, merge: M) -> Builder<M> {
        Pipeline::builder(merge)
            .shards(self.shards)
            .divisor(self.divisor)
            .max_level(self.max_level)
            .queue_capacity(self.queue_capacity)
            .merge_budget(self.merge_budget)
    }
}

/// The parts of one commit.
type Parts<R> = Vec<(String, R)>;

/// One producer's commits.
type Script<R> = Vec<Parts<R>>;

/// What a run produced: the commits as numbered by the pipeline, the snapshot sealed at the
/// last commit before shutdown, and the final snapshot of `shutdown`.
struct Run<M: Merge> {
    commits: Commits<M::Record>,
    sealed: Snapshot<M>,
    last: Snapshot<M>,
}

/// Runs every script on its own producer thread, records each commit under the number `commit`
/// returned, then checks what holds for every merge: gapless numbering, the statistics, the
/// frontier, the paths and the segments (while running: shape; after shutdown: the model's
/// layout exactly).
fn run<M>(setup: Setup, merge: M, scripts: Vec<Script<M::Record>>) -> Run<M>
where
    M: Merge,
    M::Record: Clone + Debug,
{
    let pipeline = setup.builder(merge).build().expect("valid setup");
    let commits = common::commit_scripts(&pipeline, scripts);
    let total = commits.len() as u64;
    let parts: usize = commits.iter().map(Vec::len).sum();

    let sealed = pipeline.wait_sealed(total, PATIENCE).expect("every commit becomes visible");
    assert_eq!(sealed.frontier(), total, "the frontier never passes the last commit issued");
    let stats = pipeline.stats();
    assert_eq!(stats.commits, total, "stats count every commit");
    assert_eq!(stats.frontier, total);
    assert!(stats.records <= parts as u64, "more records counted than committed");
    // A worker counts what it drained before publishing it, so once the frontier covers every
    // commit the count is complete; the loop is only a bounded guard.
    let deadline = std::time::Instant::now() + PATIENCE;
    while pipeline.stats().records != parts as u64 {
        assert!(std::time::Instant::now() < deadline, "stats never counted all {parts} parts");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    for path in common::paths(&commits, total) {
        let segments = sealed.segments(&path);
        common::check_shape(&segments, setup.divisor, setup.max_level, total)
            .unwrap_or_else(|why| panic!("{path} while running: {why}; {segments:?}"));
    }

    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), total, "the final frontier is the last commit issued");
    let expected_paths = common::paths(&commits, total);
    let actual_paths: BTreeSet<String> = last.paths().map(str::to_owned).collect();
    assert_eq!(actual_paths, expected_paths, "paths()");
    let layouts = common::layouts(&commits, setup.divisor, setup.max_level, total);
    for (path, layout) in &layouts {
        assert_eq!(&last.segments(path), layout, "finished layout of {path} under {setup:?}");
    }
    assert!(last.read("/never-written").is_none());
    assert!(last.segments("/never-written").is_empty());
    Run { commits, sealed, last }
}

/// Checks `Concat` reads against the model: every read, and every segment's own output (the
/// records of exactly its range).
fn check_concat<T: Clone + PartialEq + Debug + Send + Sync + 'static>(run: &Run<Concat<T>>) {
    for (path, expected) in common::concat_reads(&run.commits, run.last.frontier()) {
        assert_eq!(run.sealed.read(&path).as_ref(), Some(&expected), "read of {path} while running");
        assert_eq!(run.last.read(&path).as_ref(), Some(&expected), "read of {path} after shutdown");
        for (segment, output) in run.last.segment_outputs(&path) {
            let inside: Vec<(u64, T)> =
                expected.iter().filter(|(c, _)| (segment.start..=segment.end).contains(c)).cloned().collect();
            assert_eq!(output, inside, "output of {path} {segment:?}");
        }
    }
}

const PATHS: [&str; 6] = ["/a", "/b", "/c/d", "/e/f/g", "/h", "/sparse"];

/// A path, `/sparse` much rarer than the others.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![12 => (0..PATHS.len() - 1).prop_map(|i| PATHS[i].to_owned()), 1 => Just("/sparse".to_owned())]
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1usize..=3,
        2u64..=4,
        prop::sample::select(vec![0u32, 1, 3]),
        prop::sample::select(vec![1usize, 2, 5, 64]),
        prop::sample::select(vec![1usize, 3, 4096]),
    )
        .prop_map(|(shards, divisor, max_level, queue_capacity, merge_budget)| Setup {
            shards,
            divisor,
            max_level,
            queue_capacity,
            merge_budget,
        })
}

/// 1–3 producers, each with up to 40 commits of 1–4 parts (a path may repeat within a commit).
fn shapes() -> impl Strategy<Value = Vec<Vec<Vec<String>>>> {
    prop::collection::vec(prop::collection::vec(prop::collection::vec(path(), 1..=4), 0..40), 1..=3)
}

/// Gives every part a record unique in the whole workload, so order and loss both show.
fn number(shapes: Vec<Vec<Vec<String>>>) -> Vec<Script<u64>> {
    shapes
        .into_iter()
        .enumerate()
        .map(|(producer, script)| {
            script
                .into_iter()
                .enumerate()
                .map(|(commit, parts)| {
                    parts
                        .into_iter()
                        .enumerate()
                        .map(|(part, path)| {
                            (path, (producer as u64) << 32 | (commit as u64) << 8 | part as u64)
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn concat_matches_the_model(setup in setup(), shapes in shapes()) {
        let run = run(setup, Concat::<u64>::default(), number(shapes));
        check_concat(&run);
    }

    #[test]
    fn sum_matches_the_model(setup in setup(), shapes in shapes(), seed in any::<u64>()) {
        let mut rng = common::Rng::new(seed);
        let scripts: Vec<Script<i64>> = shapes
            .into_iter()
            .map(|script| {
                script
                    .into_iter()
                    .map(|parts| {
                        parts
                            .into_iter()
                            .map(|path| {
                                // Mostly small values, now and then one near the edge to wrap.
                                let value = match rng.below(8) {
                                    0 => i64::MAX - rng.below(4) as i64,
                                    1 => i64::MIN + rng.below(4) as i64,
                                    _ => rng.below(2001) as i64 - 1000,
                                };
                                (path, value)
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let run = run(setup, Sum, scripts);
        for (path, expected) in common::sum_reads(&run.commits, run.last.frontier()) {
            prop_assert_eq!(run.sealed.read(&path), Some(expected), "sum of {} while running", path);
            prop_assert_eq!(run.last.read(&path), Some(expected), "sum of {} after shutdown", path);
        }
    }

    #[test]
    fn last_write_wins_matches_the_model(setup in setup(), shapes in shapes(), seed in any::<u64>()) {
        let mut rng = common::Rng::new(seed);
        let scripts: Vec<Script<(u8, u32)>> = shapes
            .into_iter()
            .map(|script| {
                script
                    .into_iter()
                    .map(|parts| {
                        parts.into_iter().map(|path| (path, (rng.below(4) as u8, rng.below(1000) as u32))).collect()
                    })
                    .collect()
            })
            .collect();
        let run = run(setup, LastWriteWins::<u8, u32>::default(), scripts);
        for (path, expected) in common::last_write_reads(&run.commits, run.last.frontier()) {
            prop_assert_eq!(run.sealed.read(&path), Some(expected.clone()), "state of {} while running", path);
            prop_assert_eq!(run.last.read(&path), Some(expected), "state of {} after shutdown", path);
        }
    }
}

/// The seed case: `/every` written at commits 1..=13, `/odd` at the odd ones.
fn seed_script() -> Script<u64> {
    (1..=13u64)
        .map(|c| {
            let mut parts = vec![("/every".to_owned(), c)];
            if c % 2 == 1 {
                parts.push(("/odd".to_owned(), c));
            }
            parts
        })
        .collect()
}

/// The design's seed case: a path written only at odd commits is cut at the same boundaries as
/// one written at every commit, on every shard count and geometry.
#[test]
fn seed_case_odd_commits_align_with_every_commit() {
    for shards in 1..=3 {
        for (divisor, max_level) in [(2, 3), (3, 1), (4, 3), (2, 0)] {
            let setup = Setup { shards, divisor, max_level, queue_capacity: 4, merge_budget: 4096 };
            let run = run(setup, Concat::<u64>::default(), vec![seed_script()]);
            check_concat(&run);
            let (odd, every) = (run.last.segments("/odd"), run.last.segments("/every"));
            if max_level == 0 {
                // Without merging, every commit is its own segment: the odd path has every
                // other one of the dense path's segments.
                assert!(odd.iter().all(|s| every.contains(s)), "{setup:?}: {odd:?} vs {every:?}");
                assert_eq!(odd.len(), 7);
            } else {
                assert_eq!(odd, every, "{setup:?}");
            }
            if (divisor, max_level) == (2, 3) {
                assert_eq!(
                    run.last.segments("/odd"),
                    [
                        SegmentInfo { level: 3, start: 1, end: 8 },
                        SegmentInfo { level: 2, start: 9, end: 12 },
                        SegmentInfo { level: 0, start: 13, end: 13 },
                    ]
                );
            }
        }
    }
}

/// A path written once, at a commit in the middle of a top-level block, still sits in that
/// block's segment, while paths written nowhere near it have no segment there.
#[test]
fn a_single_sparse_write_lands_in_its_aligned_block() {
    let script: Script<u64> = (1..=40u64)
        .map(|c| {
            let mut parts = vec![("/dense".to_owned(), c)];
            if c == 22 {
                parts.push(("/once".to_owned(), c));
            }
            if c <= 3 {
                parts.push(("/early".to_owned(), c));
            }
            parts
        })
        .collect();
    let setup = Setup { shards: 2, divisor: 3, max_level: 2, queue_capacity: 2, merge_budget: 1 };
    let run = run(setup, Concat::<u64>::default(), vec![script]);
    check_concat(&run);
    // [1,9] [10,18] [19,27] [28,36] [37,39] [40]
    assert_eq!(run.last.segments("/once"), [SegmentInfo { level: 2, start: 19, end: 27 }]);
    assert_eq!(run.last.segments("/early"), [SegmentInfo { level: 2, start: 1, end: 9 }]);
    assert_eq!(run.last.segments("/dense").len(), 6);
}

/// Several producers, each committing to its own paths and to shared ones: the final layouts
/// of all paths line up (identical or disjoint ranges), and shared paths hold every producer's
/// records in commit order.
#[test]
fn concurrent_producers_line_up_across_paths() {
    for seed in 0..4u64 {
        let mut rng = common::Rng::new(seed);
        let scripts: Vec<Script<u64>> = (0..3u64)
            .map(|producer| {
                (0..60u64)
                    .map(|i| {
                        let mut parts = vec![(format!("/own/{producer}"), producer << 32 | i)];
                        if rng.below(3) == 0 {
                            parts.push(("/shared".to_owned(), producer << 32 | i << 8 | 1));
                        }
                        parts
                    })
                    .collect()
            })
            .collect();
        let setup = Setup { shards: 3, divisor: 2, max_level: 3, queue_capacity: 3, merge_budget: 2 };
        let run = run(setup, Concat::<u64>::default(), scripts);
        check_concat(&run);
        let all: Vec<SegmentInfo> = run
            .last
            .paths()
            .flat_map(|p| run.last.segments(p))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for a in &all {
            for b in &all {
                let disjoint = a.end < b.start || b.end < a.start;
                assert!(a == b || disjoint, "{a:?} and {b:?} overlap without being the same range");
            }
        }
    }
}

/// The model is itself checked on the examples the design names.
#[test]
fn the_model_matches_the_documented_examples() {
    let seed: Commits<u64> = seed_script();
    let layouts = common::layouts(&seed, 2, 3, 13);
    let expected = vec![
        SegmentInfo { level: 3, start: 1, end: 8 },
        SegmentInfo { level: 2, start: 9, end: 12 },
        SegmentInfo { level: 0, start: 13, end: 13 },
    ];
    assert_eq!(layouts["/every"], expected);
    assert_eq!(layouts["/odd"], expected);
    assert_eq!(common::concat_of(&seed, "/odd", 13).len(), 7);
    assert_eq!(
        common::decomposition(3, 1, 7),
        [
            SegmentInfo { level: 1, start: 1, end: 3 },
            SegmentInfo { level: 1, start: 4, end: 6 },
            SegmentInfo { level: 0, start: 7, end: 7 },
        ]
    );
    assert_eq!(common::decomposition(4, 0, 2).len(), 2);
    assert!(common::decomposition(2, 3, 0).is_empty());
    assert_eq!(common::flushed_blocks(&seed, "/odd", 2, 2, 13).len(), 3);
    assert!(common::check_shape(&expected, 2, 3, 13).is_ok());
    assert!(common::check_shape(&expected, 2, 3, 12).is_err());
    let sums: BTreeMap<String, i64> = common::sum_reads(
        &[vec![("/x".to_owned(), i64::MAX)], vec![("/x".to_owned(), 1), ("/y".to_owned(), -2)]],
        2,
    );
    assert_eq!(sums["/x"], i64::MIN);
    assert_eq!(sums["/y"], -2);
}

/// Pinning workers (possible or not on this machine) changes nothing in the result.
#[test]
fn pinned_workers_match_the_model() {
    for shards in 1..=3 {
        let pipeline = Pipeline::builder(Concat::<u64>::default())
            .shards(shards)
            .divisor(2)
            .max_level(3)
            .pin_workers(true)
            .build()
            .expect("valid setup");
        let mut producer = pipeline.producer().expect("a producer");
        let mut commits: Commits<u64> = Vec::new();
        for c in 1..=37u64 {
            let parts = vec![(format!("/p{}", c % 4), c), ("/all".to_owned(), c)];
            assert_eq!(producer.commit(parts.clone()), Ok(c));
            commits.push(parts);
        }
        drop(producer);
        let last = pipeline.shutdown().expect("clean shutdown");
        assert_eq!(last.frontier(), 37);
        for (path, layout) in common::layouts(&commits, 2, 3, 37) {
            assert_eq!(last.segments(&path), layout, "{shards} pinned shards: {path}");
        }
        for (path, records) in common::concat_reads(&commits, 37) {
            assert_eq!(last.read(&path), Some(records), "{shards} pinned shards: {path}");
        }
    }
}
