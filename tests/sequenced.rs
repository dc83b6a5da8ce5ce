#![cfg(not(loom))]
//! Sequenced pipelines (`Builder::sequenced`): commits at given numbers, with gaps, against the
//! reference model and against a normal pipeline fed the same commits at the same numbers (its
//! gaps filled by a path left out of the comparison); the handle's refusals; and a durable
//! sequenced pipeline that reopens at its recovered frontier and goes on after it.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{Commits, Rng, PATIENCE};
use lockstep::merge::Concat;
use lockstep::{Error, Pipeline, SegmentInfo, Snapshot};

type M = Concat<u64>;

/// The path a normal pipeline commits to at the numbers the sequenced one skips.
const FILLER: &str = "/filler";

/// Random commits over a few paths, with about a third of the numbers skipped (empty), and a
/// last number past the last commit (an `advance_to` at the end).
fn workload(seed: u64, numbers: usize) -> Commits<u64> {
    let mut rng = Rng::new(seed);
    (0..numbers)
        .map(|_| {
            if rng.below(3) == 0 {
                return Vec::new();
            }
            let parts = 1 + rng.below(3);
            (0..parts).map(|_| (format!("/p{}", rng.below(7)), rng.next_u64() % 1000)).collect()
        })
        .collect()
}

/// Feeds `commits` through a sequencer: every non-empty number committed, the rest skipped,
/// and the end reached with `advance_to` (so a trailing gap is issued too).
fn sequenced(
    commits: &Commits<u64>,
    shards: usize,
    divisor: u64,
    max_level: u32,
    capacity: usize,
) -> Snapshot<M> {
    let pipeline = Pipeline::builder(M::default())
        .shards(shards)
        .divisor(divisor)
        .max_level(max_level)
        .queue_capacity(capacity)
        .sequenced()
        .build()
        .expect("a valid config");
    let mut sequencer = pipeline.sequencer().expect("the first sequencer");
    for (index, parts) in commits.iter().enumerate() {
        if !parts.is_empty() {
            sequencer
                .commit_at(index as u64 + 1, parts.iter().map(|(p, r)| (p.as_str(), *r)))
                .expect("commit");
        }
    }
    sequencer.advance_to(commits.len() as u64).expect("advance");
    drop(sequencer);
    pipeline.shutdown().expect("a clean shutdown")
}

/// The same commits through a normal pipeline: each skipped number is a commit to `FILLER`.
fn normal(commits: &Commits<u64>, shards: usize, divisor: u64, max_level: u32) -> Snapshot<M> {
    let pipeline = Pipeline::builder(M::default())
        .shards(shards)
        .divisor(divisor)
        .max_level(max_level)
        .build()
        .expect("a valid config");
    let mut producer = pipeline.producer().expect("a producer");
    for (index, parts) in commits.iter().enumerate() {
        let number = if parts.is_empty() {
            producer.commit([(FILLER, 0)])
        } else {
            producer.commit(parts.iter().map(|(p, r)| (p.as_str(), *r)))
        };
        assert_eq!(number, Ok(index as u64 + 1));
    }
    drop(producer);
    pipeline.shutdown().expect("a clean shutdown")
}

/// Every path's segments and read.
type Layout = BTreeMap<String, (Vec<SegmentInfo>, Option<Vec<(u64, u64)>>)>;

/// Every path but `FILLER`: its segments and its read.
fn layout(snapshot: &Snapshot<M>) -> Layout {
    snapshot
        .paths()
        .filter(|path| *path != FILLER)
        .map(|path| {
            let path = path.to_string();
            let entry = (snapshot.segments(path.as_str()), snapshot.read(path.as_str()));
            (path, entry)
        })
        .collect()
}

/// What the model says for every path.
fn model(commits: &Commits<u64>, divisor: u64, max_level: u32) -> Layout {
    let frontier = commits.len() as u64;
    let layouts = common::layouts(commits, divisor, max_level, frontier);
    let reads = common::concat_reads(commits, frontier);
    layouts
        .into_iter()
        .map(|(path, segments)| {
            let read = reads.get(&path).cloned();
            (path, (segments, read))
        })
        .collect()
}

/// Sequenced with gaps equals the model and a normal pipeline fed the same commits at the same
/// numbers, over several geometries, with queues small enough that commits wait for room.
#[test]
fn sequenced_with_gaps_equals_the_model_and_a_normal_pipeline() {
    for (seed, shards, divisor, max_level, capacity) in
        [(1, 1, 2, 3, 2), (2, 2, 4, 2, 4), (3, 3, 3, 3, 1), (4, 2, 2, 5, 64)]
    {
        let commits = workload(seed, 300);
        let frontier = commits.len() as u64;
        let given = sequenced(&commits, shards, divisor, max_level, capacity);
        let taken = normal(&commits, shards, divisor, max_level);
        assert_eq!((given.frontier(), taken.frontier()), (frontier, frontier));
        let expected = model(&commits, divisor, max_level);
        assert_eq!(layout(&given), expected, "seed {seed}: the sequenced pipeline against the model");
        assert_eq!(layout(&taken), expected, "seed {seed}: the normal pipeline against the model");
    }
}

/// A gap of any size costs nothing per number: the frontier jumps, and the layout is the
/// decomposition's blocks that hold one of the path's commits.
#[test]
fn a_huge_gap_is_one_step() -> Result<(), Error> {
    let pipeline = Pipeline::builder(M::default()).divisor(4).max_level(8).sequenced().build()?;
    let mut sequencer = pipeline.sequencer()?;
    sequencer.commit_at(1, [("/a", 1)])?;
    let far = 1u64 << 40;
    sequencer.commit_at(far, [("/a", 2)])?;
    let snapshot = pipeline.wait_sealed(far, PATIENCE)?;
    assert_eq!(snapshot.read("/a"), Some(vec![(1, 1), (far, 2)]));
    let holds = |block: &SegmentInfo| [1, far].iter().any(|c| (block.start..=block.end).contains(c));
    let expected: Vec<_> = common::decomposition(4, 8, far).into_iter().filter(holds).collect();
    assert_eq!(snapshot.segments("/a"), expected);
    drop(sequencer);
    assert_eq!(pipeline.shutdown()?.frontier(), far);
    Ok(())
}

/// Every refusal is typed, and a refused number is not issued.
#[test]
fn the_sequencer_refuses_with_typed_errors() -> Result<(), Error> {
    let normal = Pipeline::builder(M::default()).build()?;
    assert_eq!(normal.sequencer().err(), Some(Error::NotSequenced));

    let pipeline = Pipeline::builder(M::default()).max_record_bytes(4).sequenced().build()?;
    assert_eq!(pipeline.producer().err(), Some(Error::Sequenced));
    let mut sequencer = pipeline.sequencer()?;
    assert_eq!(pipeline.sequencer().err(), Some(Error::SequencerTaken));
    assert_eq!(sequencer.last(), 0);
    sequencer.commit_at(2, [("/a", 1)])?;
    assert_eq!(sequencer.commit_at(2, [("/a", 1)]), Err(Error::NotAhead { number: 2, last: 2 }));
    assert_eq!(sequencer.commit_at(1, [("/a", 1)]), Err(Error::NotAhead { number: 1, last: 2 }));
    let empty: [(&str, u64); 0] = [];
    assert_eq!(sequencer.commit_at(2, empty), Err(Error::NotAhead { number: 2, last: 2 }));
    let max = (1u64 << 63) - 2;
    assert_eq!(
        sequencer.commit_at(max + 1, [("/a", 1)]),
        Err(Error::NumberTooLarge { number: max + 1, max })
    );
    assert_eq!(sequencer.advance_to(u64::MAX), Err(Error::NumberTooLarge { number: u64::MAX, max }));
    assert_eq!(sequencer.commit_at(3, [("", 1)]), Err(Error::EmptyPath));
    assert_eq!(sequencer.last(), 2, "no refusal issued a number");
    // An advance to a number already issued changes nothing; an empty commit is a gap.
    sequencer.advance_to(1)?;
    sequencer.commit_at(3, empty)?;
    assert_eq!(sequencer.last(), 3);
    sequencer.commit_at(4, [("/a", 5)])?;
    drop(sequencer);
    assert_eq!(pipeline.sequencer().err(), Some(Error::SequencerTaken), "one per pipeline");
    let last = pipeline.shutdown()?;
    assert_eq!((last.frontier(), last.read("/a")), (4, Some(vec![(2, 1), (4, 5)])));
    Ok(())
}

/// A sequencer that outlives its pipeline is refused, as a producer is.
#[test]
fn a_sequencer_after_shutdown_is_refused() -> Result<(), Error> {
    let pipeline = Pipeline::builder(M::default()).sequenced().build()?;
    let mut sequencer = pipeline.sequencer()?;
    sequencer.commit_at(1, [("/a", 1)])?;
    assert_eq!(pipeline.shutdown()?.frontier(), 1);
    assert_eq!(sequencer.commit_at(2, [("/a", 1)]), Err(Error::Shutdown));
    assert_eq!(sequencer.advance_to(5), Err(Error::Shutdown));
    Ok(())
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("lockstep-sequenced-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A durable sequenced pipeline reopens at its recovered frontier and its sequencer goes on
/// after it; the whole equals the model of all the commits.
#[test]
fn a_durable_sequenced_pipeline_goes_on_after_its_recovered_frontier() -> Result<(), Error> {
    let dir = TempDir::new("reopen");
    let commits = workload(9, 200);
    let (divisor, max_level) = (2, 4);
    let open = || {
        Pipeline::builder(M::default())
            .shards(2)
            .divisor(divisor)
            .max_level(max_level)
            .sequenced()
            .durable(&dir.0)
            .build()
    };
    let half = 117;
    {
        let pipeline = open()?;
        let mut sequencer = pipeline.sequencer()?;
        for (index, parts) in commits.iter().enumerate().take(half) {
            sequencer.commit_at(index as u64 + 1, parts.iter().map(|(p, r)| (p.as_str(), *r)))?;
        }
        drop(sequencer);
        assert_eq!(pipeline.shutdown()?.frontier(), half as u64);
    }
    let pipeline = open()?;
    assert_eq!(pipeline.snapshot().frontier(), half as u64);
    let mut sequencer = pipeline.sequencer()?;
    assert_eq!(sequencer.last(), half as u64);
    assert_eq!(
        sequencer.commit_at(half as u64, [("/a", 1)]),
        Err(Error::NotAhead { number: half as u64, last: half as u64 })
    );
    for (index, parts) in commits.iter().enumerate().skip(half) {
        sequencer.commit_at(index as u64 + 1, parts.iter().map(|(p, r)| (p.as_str(), *r)))?;
    }
    sequencer.advance_to(commits.len() as u64)?;
    drop(sequencer);
    let last = pipeline.shutdown()?;
    assert_eq!(last.frontier(), commits.len() as u64);
    assert_eq!(layout(&last), model(&commits, divisor, max_level));
    Ok(())
}
