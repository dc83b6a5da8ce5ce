#![cfg(not(loom))]
//! The concurrent pipeline against the sequential reference model in `common`: random workloads
//! from several producer threads, every geometry the tests care about, with or without a sink
//! (at any flush level) and a retention window, and after `shutdown` the frontier, the paths,
//! every path's segments and every read must equal the model's restricted to the window, and
//! the sink must have received every flush-level block once, in order.

mod common;
#[path = "common/saved.rs"]
mod saved;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use common::{Collect, Commits, PATIENCE};
use lockstep::merge::{Concat, LastWriteWins, Sum};
use lockstep::{Builder, Merge, Pipeline, Retention, SegmentInfo, Snapshot};
use proptest::prelude::*;

/// The settings a workload runs under.
#[derive(Debug, Clone, Copy)]
struct Setup {
    shards: usize,
    divisor: u64,
    max_level: u32,
    queue_capacity: usize,
    merge_budget: usize,
    /// A sink that collects every write (needed by `window`).
    sink: bool,
    /// The sink's level, if not the top one.
    flush_level: Option<u32>,
    /// `Retention::Newest(n)`.
    window: Option<usize>,
}

impl Setup {
    /// Retention::All, no sink.
    fn plain(
        shards: usize,
        divisor: u64,
        max_level: u32,
        queue_capacity: usize,
        merge_budget: usize,
    ) -> Self {
        Self {
            shards,
            divisor,
            max_level,
            queue_capacity,
            merge_budget,
            sink: false,
            flush_level: None,
            window: None,
        }
    }

    fn builder<M: Merge>(&self, merge: M, sink: &Collect<M::Output>) -> Builder<M>
    where
        M::Output: Clone,
    {
        let mut builder = Pipeline::builder(merge)
            .shards(self.shards)
            .divisor(self.divisor)
            .max_level(self.max_level)
            .queue_capacity(self.queue_capacity)
            .merge_budget(self.merge_budget);
        if self.sink {
            builder = builder.sink(sink.clone());
        }
        if let Some(level) = self.flush_level {
            builder = builder.flush_level(level);
        }
        if let Some(n) = self.window {
            builder = builder.retain(Retention::Newest(n));
        }
        builder
    }
}

/// The parts of one commit.
type Parts<R> = Vec<(String, R)>;

/// One producer's commits.
type Script<R> = Vec<Parts<R>>;

/// What a run produced: the commits as numbered by the pipeline, the snapshot sealed at the
/// last commit before shutdown, the final snapshot of `shutdown`, and the first commit inside
/// the window at the last commit (1 without one).
struct Run<M: Merge> {
    commits: Commits<M::Record>,
    sealed: Snapshot<M>,
    last: Snapshot<M>,
    from: u64,
}

impl<M: Merge> Run<M>
where
    M::Record: Clone,
{
    /// The commits as the window keeps them: those before it emptied.
    fn windowed(&self) -> Commits<M::Record> {
        common::from_commit(&self.commits, self.from)
    }
}

/// Runs every script on its own producer thread, records each commit under the number `commit`
/// returned, then checks what holds for every merge: gapless numbering, the statistics, the
/// frontier, the paths and the segments (while running: shape; after shutdown: the model's
/// layout restricted to the window, exactly), and what the sink got (`output` makes a block's
/// output from its records, as the merge does).
fn run<M>(
    setup: Setup,
    merge: M,
    scripts: Vec<Script<M::Record>>,
    output: impl Fn(Vec<(u64, M::Record)>) -> M::Output,
) -> Run<M>
where
    M: Merge,
    M::Record: Clone + Debug,
    M::Output: Clone + PartialEq + Debug,
{
    let sink = Collect::<M::Output>::new(0);
    let pipeline = setup.builder(merge, &sink).build().expect("valid setup");
    let commits = common::commit_scripts(&pipeline, scripts);
    let total = commits.len() as u64;
    let parts: usize = commits.iter().map(Vec::len).sum();
    let from = common::window_start(setup.divisor, setup.max_level, setup.window, total);

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
        assert!(segments.iter().all(|s| s.start >= from), "{path} while running: {segments:?} before {from}");
    }

    let last = pipeline.shutdown().expect("clean shutdown");
    assert_eq!(last.frontier(), total, "the final frontier is the last commit issued");
    let layouts = common::windowed_layouts(&commits, setup.divisor, setup.max_level, total, from);
    let expected_paths: BTreeSet<String> = layouts.keys().cloned().collect();
    for (snapshot, when) in [(&sealed, "while running"), (&last, "after shutdown")] {
        let mut listed: Vec<String> = snapshot.paths().map(str::to_owned).collect();
        listed.sort();
        let unique = listed.len();
        let listed: BTreeSet<String> = listed.into_iter().collect();
        assert_eq!(unique, listed.len(), "paths() {when} lists a path twice under {setup:?}");
        assert_eq!(listed, expected_paths, "paths() {when} under {setup:?}, window from {from}");
    }
    for (path, layout) in &layouts {
        assert_eq!(&last.segments(path), layout, "finished layout of {path} under {setup:?}");
    }
    // A path written only before the window: nothing left of it.
    for path in common::paths(&commits, total).difference(&expected_paths) {
        for snapshot in [&sealed, &last] {
            assert!(snapshot.segments(path).is_empty(), "{path} kept segments before the window from {from}");
            assert!(snapshot.read(path).is_none(), "{path} reads data from before the window from {from}");
        }
    }
    assert!(last.read("/never-written").is_none());
    assert!(last.segments("/never-written").is_empty());

    if setup.sink {
        let level = setup.flush_level.unwrap_or(setup.max_level);
        let expected = common::sink_writes(&commits, setup.divisor, level, output);
        let count: usize = expected.values().map(Vec::len).sum();
        assert_eq!(sink.by_path(), expected, "sink writes (flush level {level}) under {setup:?}");
        assert_eq!(sink.written().len(), count);
    } else {
        assert!(sink.written().is_empty());
    }
    Run { commits, sealed, last, from }
}

/// Checks `Concat` reads against the model in the window: every read, and every segment's own
/// output (the records of exactly its range).
fn check_concat<T: Clone + PartialEq + Debug + Send + Sync + 'static>(run: &Run<Concat<T>>) {
    for (path, expected) in common::concat_reads(&run.windowed(), run.last.frontier()) {
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

/// Any shard count and geometry (max level 2 included), with a sink at any flush level or none,
/// and a retention window of 0 to 2 top-level blocks or none.
fn setup() -> impl Strategy<Value = Setup> {
    (
        (
            1usize..=3,
            2u64..=4,
            prop::sample::select(vec![0u32, 1, 2, 3]),
            prop::sample::select(vec![1usize, 2, 5, 64]),
            prop::sample::select(vec![1usize, 3, 4096]),
        ),
        (any::<bool>(), prop::option::of(0u32..4), prop::option::of(0usize..3)),
    )
        .prop_map(
            |((shards, divisor, max_level, queue_capacity, merge_budget), (sink, flush, window))| Setup {
                shards,
                divisor,
                max_level,
                queue_capacity,
                merge_budget,
                // A window needs a sink to hand what it drops to; a flush level is the sink's.
                sink: sink || flush.is_some() || window.is_some(),
                flush_level: flush.map(|level| level.min(max_level)),
                window,
            },
        )
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

/// What `Sum` makes of a block's records: their wrapping sum.
fn sum(records: &[(u64, i64)]) -> i64 {
    records.iter().fold(0i64, |sum, (_, value)| sum.wrapping_add(*value))
}

/// What `LastWriteWins` makes of a block's records: per key, the last value and its commit.
fn last_write(records: &[(u64, (u8, u32))]) -> BTreeMap<u8, (u64, u32)> {
    records.iter().map(|&(commit, (key, value))| (key, (commit, value))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: match common::stress() {
            common::Stress::Small => 48,
            common::Stress::Short => 256,
            common::Stress::Long => 2048,
        },
        ..ProptestConfig::default()
    })]

    #[test]
    fn concat_matches_the_model(setup in setup(), shapes in shapes()) {
        let run = run(setup, Concat::<u64>::default(), number(shapes), |records| records);
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
        let run = run(setup, Sum, scripts, |records| sum(&records));
        for (path, expected) in common::sum_reads(&run.windowed(), run.last.frontier()) {
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
        let run = run(setup, LastWriteWins::<u8, u32>::default(), scripts, |records| last_write(&records));
        for (path, expected) in common::last_write_reads(&run.windowed(), run.last.frontier()) {
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
            let setup = Setup::plain(shards, divisor, max_level, 4, 4096);
            let run = run(setup, Concat::<u64>::default(), vec![seed_script()], |records| records);
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
    let setup = Setup::plain(2, 3, 2, 2, 1);
    let run = run(setup, Concat::<u64>::default(), vec![script], |records| records);
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
        let setup = Setup::plain(3, 2, 3, 3, 2);
        let run = run(setup, Concat::<u64>::default(), scripts, |records| records);
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

/// Checks a `Concat` snapshot against the model at its own frontier, restricted to the window
/// of that frontier: the paths it lists (each once), every read, and every path's segments (the
/// model's layout exactly once everything is compacted, `finished`; before that, their shape).
fn matches_the_model_at_its_frontier(
    snapshot: &Snapshot<Concat<u64>>,
    commits: &Commits<u64>,
    setup: Setup,
    finished: bool,
) {
    let frontier = snapshot.frontier();
    let from = common::window_start(setup.divisor, setup.max_level, setup.window, frontier);
    let layouts = common::windowed_layouts(commits, setup.divisor, setup.max_level, frontier, from);
    let mut listed: Vec<&str> = snapshot.paths().collect();
    listed.sort_unstable();
    let expected: Vec<&str> = layouts.keys().map(String::as_str).collect();
    assert_eq!(listed, expected, "paths() at frontier {frontier} under {setup:?}");
    let reads = common::concat_reads(&common::from_commit(commits, from), frontier);
    for path in common::paths(commits, frontier) {
        let at = format!("{path} at frontier {frontier} under {setup:?}");
        assert_eq!(snapshot.read(&path), reads.get(&path).cloned(), "read of {at}");
        let segments = snapshot.segments(&path);
        if finished {
            assert_eq!(segments, layouts.get(&path).cloned().unwrap_or_default(), "layout of {at}");
        } else {
            common::check_shape(&segments, setup.divisor, setup.max_level, frontier)
                .unwrap_or_else(|why| panic!("{at}: {why}; {segments:?}"));
            assert!(segments.iter().all(|s| s.start >= from), "{at}: {segments:?} before {from}");
        }
    }
}

/// The case `proptest-regressions/path_table.txt` saved for the per-shard path table that the
/// directory and the batches replaced (see `saved`), replayed through the pipeline. Turn `t` is
/// commit `t + 1`, whose parts are the turn's `Some` updates in order (path `/p/<index>`, so 300
/// names grow each shard's directory several times); a `None` update writes nothing, since
/// removing a path is no longer a thing a caller does: a retention window does it to every path
/// with nothing left inside it, which the windowed run covers. As the saved case's reader kept
/// every third table, a reader keeps the snapshot of every third turn; at the end each kept
/// snapshot still lists, lays out and reads exactly what the model says at its frontier, and so
/// does the final one. Two shards, a merge budget as small as the saved merge steps.
#[test]
fn saved_path_table_case_reads_like_the_model() {
    for window in [None, Some(1)] {
        let setup = Setup { sink: window.is_some(), window, ..Setup::plain(2, 2, 1, 16, 2) };
        let sink = Collect::new(0);
        let pipeline = setup.builder(Concat::<u64>::default(), &sink).build().expect("valid setup");
        let mut producer = pipeline.producer().expect("a producer");
        let mut commits: Commits<u64> = Vec::new();
        let mut kept = Vec::new();
        for (turn, updates) in saved::PATH_TABLE_TURNS.iter().enumerate() {
            let parts: Parts<u64> =
                updates.iter().filter_map(|&(path, value)| Some((format!("/p/{path}"), value?))).collect();
            let commit = producer.commit(parts.clone()).expect("a valid commit is accepted");
            assert_eq!(commit, turn as u64 + 1);
            commits.push(parts);
            if turn % 3 == 0 {
                kept.push(pipeline.wait_sealed(commit, PATIENCE).expect("the turn becomes visible"));
            }
        }
        drop(producer);
        let last = pipeline.shutdown().expect("clean shutdown");
        assert_eq!(last.frontier(), commits.len() as u64);
        for snapshot in &kept {
            matches_the_model_at_its_frontier(snapshot, &commits, setup, false);
        }
        matches_the_model_at_its_frontier(&last, &commits, setup, true);
        if window.is_some() {
            // The removals the window stands in for did happen: paths written early are gone.
            assert!(last.paths().count() < common::paths(&commits, last.frontier()).len());
        }
    }
}

/// The case `proptest-regressions/tier.txt` saved for the compaction policy the spine replaced
/// (`divisor = 2, max_level = 2, keep = 0, commits = {121, 123, 125}, bounds = [128]`), through
/// the pipeline: a path written only at commits 121, 123 and 125 (every other commit writes
/// another path), a sink at level 0 (`keep`: every block of that level is built and handed
/// over), and 128 commits. The sink gets the three single commits, the path ends as the two
/// top-level blocks `[121, 124]` and `[125, 128]`; under a window of one block, only the second.
#[test]
fn saved_tier_case_through_the_pipeline() {
    let script: Script<u64> = (1..=128u64)
        .map(|c| vec![((if [121, 123, 125].contains(&c) { "/sparse" } else { "/dense" }).to_owned(), c)])
        .collect();
    for shards in [1, 2] {
        for window in [None, Some(1)] {
            let setup =
                Setup { sink: true, flush_level: Some(0), window, ..Setup::plain(shards, 2, 2, 4, 1) };
            let run = run(setup, Concat::<u64>::default(), vec![script.clone()], |records| records);
            check_concat(&run);
            let top = |start| SegmentInfo { level: 2, start, end: start + 3 };
            let expected = if window.is_some() { vec![top(125)] } else { vec![top(121), top(125)] };
            assert_eq!(run.last.segments("/sparse"), expected, "{setup:?}");
        }
    }
}
