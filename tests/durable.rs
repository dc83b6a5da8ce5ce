//! Durable pipelines: reopening recovers exactly the reference model of the commits up to the
//! recovered frontier, numbering resumes after it, many runs equal one long run, shards' logs
//! are cut at the lowest end among them, and a directory is refused when it is locked or was
//! made with other settings.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{commit_scripts, concat_reads, layouts, sum_reads, Commits, Rng};
use lockstep::merge::{Concat, Sum};
use lockstep::{Durability, Error, Merge, Pipeline};

/// A directory of its own under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("lockstep-durable-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const DIVISOR: u64 = 2;
const MAX_LEVEL: u32 = 3;

fn concat(dir: &Path, shards: usize) -> Result<Pipeline<Concat<u64>>, Error> {
    Pipeline::builder(Concat::<u64>::default())
        .shards(shards)
        .divisor(DIVISOR)
        .max_level(MAX_LEVEL)
        .durable(dir)
        .build()
}

/// `count` commits from each of `producers` scripts over `paths` paths, records tagged by `tag`.
fn scripts(seed: u64, producers: u64, count: u64, paths: u64, tag: u64) -> Vec<Commits<u64>> {
    let mut rng = Rng::new(seed);
    (0..producers)
        .map(|p| {
            (0..count)
                .map(|i| {
                    (0..1 + rng.below(3))
                        .map(|k| (format!("/p{}", rng.below(paths)), tag << 40 | p << 32 | i << 4 | k))
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Commits each script from a thread of its own; returns the commits in number order, checked
/// to be numbered `after + 1, after + 2, …` without a gap.
fn commit_after(pipeline: &Pipeline<Concat<u64>>, after: u64, scripts: Vec<Commits<u64>>) -> Commits<u64> {
    let producers: Vec<_> = scripts.iter().map(|_| pipeline.producer().expect("a producer")).collect();
    let mut numbered: Vec<(u64, Vec<(String, u64)>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = producers
            .into_iter()
            .zip(scripts)
            .map(|(mut producer, script)| {
                scope.spawn(move || {
                    script
                        .into_iter()
                        .map(|parts| (producer.commit(parts.clone()).expect("a valid commit"), parts))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("producer thread")).collect()
    });
    numbered.sort_by_key(|(commit, _)| *commit);
    for (i, (commit, _)) in numbered.iter().enumerate() {
        assert_eq!(*commit, after + 1 + i as u64, "numbers go on after {after} without a gap");
    }
    numbered.into_iter().map(|(_, parts)| parts).collect()
}

/// Checks a snapshot of a `Concat` pipeline against the model of `commits` up to its frontier.
fn check<M: Merge<Output = Vec<(u64, u64)>>>(
    snapshot: &lockstep::Snapshot<M>,
    commits: &[Vec<(String, u64)>],
) {
    let frontier = snapshot.frontier();
    let expected = layouts(commits, DIVISOR, MAX_LEVEL, frontier);
    let mut paths: Vec<&str> = snapshot.paths().collect();
    paths.sort_unstable();
    assert_eq!(paths, expected.keys().map(String::as_str).collect::<Vec<_>>(), "paths at {frontier}");
    for (path, records) in concat_reads(commits, frontier) {
        assert_eq!(snapshot.segments(&path), expected[&path], "segments of {path} at {frontier}");
        assert_eq!(snapshot.read(&path), Some(records), "records of {path} at {frontier}");
    }
}

/// Closing and reopening between runs changes nothing: after each reopen the snapshot is the
/// model of every commit so far, the numbers go on from there, and the end equals one long run.
#[test]
fn run_close_reopen_continue_equals_one_long_run() -> Result<(), Error> {
    let dir = TempDir::new("cycles");
    let mut all: Commits<u64> = Vec::new();
    for round in 0..6u64 {
        let pipeline = concat(&dir.0, 2)?;
        let reopened = pipeline.snapshot();
        assert_eq!(reopened.frontier(), all.len() as u64, "round {round}: recovered everything");
        check(&reopened, &all);
        all.extend(commit_after(&pipeline, all.len() as u64, scripts(round, 2, 40 + 7 * round, 9, round)));
        let last = pipeline.shutdown().map_err(Error::from)?;
        assert_eq!(last.frontier(), all.len() as u64);
        check(&last, &all);
    }
    Ok(())
}

/// A `Sum` pipeline with `Durability::Synced`: `wait_durable` acknowledges, and what it
/// acknowledged is there after reopening.
#[test]
fn synced_commits_are_acknowledged_and_reopen() -> Result<(), Error> {
    let dir = TempDir::new("synced");
    let build = || Pipeline::builder(Sum).shards(2).durable(&dir.0).durability(Durability::Synced).build();
    let pipeline = build()?;
    let mut producer = pipeline.producer()?;
    let mut commits: Commits<i64> = Vec::new();
    let mut last = 0;
    for i in 0..200i64 {
        let parts = vec![(format!("/s{}", i % 5), i), ("/total".to_owned(), 1)];
        last = producer.commit(parts.clone())?;
        commits.push(parts);
        if i % 50 == 49 {
            let durable = pipeline.wait_durable(last, common::PATIENCE)?;
            assert!(durable >= last && pipeline.durable_frontier() >= last);
        }
    }
    drop(producer);
    pipeline.shutdown().map_err(Error::from)?;
    let reopened = build()?;
    assert_eq!(reopened.durable_frontier(), last, "everything recovered is durable");
    let snapshot = reopened.snapshot();
    assert_eq!(snapshot.frontier(), last);
    for (path, sum) in sum_reads(&commits, last) {
        assert_eq!(snapshot.read(&path), Some(sum), "{path}");
    }
    assert_eq!(reopened.producer()?.commit([("/total", 1)])?, last + 1, "numbering resumes");
    Ok(())
}

/// Only durable pipelines wait for durability, a durability level needs a directory, and a
/// durable pipeline keeps what its retention window shows, across a reopening too.
#[test]
fn durability_is_a_setting_of_durable_pipelines() -> Result<(), Error> {
    let pipeline = Pipeline::builder(Sum).build()?;
    assert_eq!(pipeline.wait_durable(1, Duration::ZERO), Err(Error::NotDurable));
    assert_eq!(pipeline.durable_frontier(), 0);
    let refused = Pipeline::builder(Sum).durability(Durability::Synced).build();
    assert!(matches!(refused, Err(Error::InvalidConfig(why)) if why.contains("durable(dir)")));
    let dir = TempDir::new("window");
    let windowed = || {
        Pipeline::builder(Sum)
            .divisor(2)
            .max_level(2)
            .durable(&dir.0)
            .sink(lockstep::DiscardSink)
            .retain(lockstep::Retention::Newest(2))
            .build()
    };
    let pipeline = windowed()?;
    let mut producer = pipeline.producer()?;
    for value in 1..=30 {
        producer.commit([("/a", value)])?;
    }
    drop(producer);
    // Blocks of 4 commits, 2 of them: the window at 30 shows commits 21 to 30.
    let shown = pipeline.wait_sealed(30, Duration::from_secs(10))?.read("/a");
    assert_eq!(shown, Some((21..=30).sum()));
    pipeline.shutdown().map_err(Error::from)?;
    assert_eq!(windowed()?.snapshot().read("/a"), shown);
    // A sink with every segment kept is fine.
    let all = TempDir::new("all");
    Pipeline::builder(Sum).durable(&all.0).sink(lockstep::DiscardSink).build()?;
    Ok(())
}

/// A directory is held by one pipeline at a time, and keeps the settings it was made with.
#[test]
fn a_directory_is_locked_and_keeps_its_settings() -> Result<(), Error> {
    let dir = TempDir::new("settings");
    let first = concat(&dir.0, 2)?;
    match concat(&dir.0, 2) {
        Err(Error::Locked { dir: locked }) => assert!(locked.contains("settings")),
        other => panic!("a second open of a held directory: {:?}", other.map(|_| ())),
    }
    first.shutdown().map_err(Error::from)?;
    let incompatible = |result: Result<(), Error>, names: &[&str]| match result {
        Err(Error::Incompatible { why, .. }) => {
            for name in names {
                assert!(why.contains(name), "{why:?} names {name}");
            }
        }
        other => panic!("reopened with other settings: {other:?}"),
    };
    incompatible(concat(&dir.0, 3).map(|_| ()), &["shards 2 in the directory, 3 configured"]);
    let other_geometry =
        Pipeline::builder(Concat::<u64>::default()).shards(2).divisor(4).max_level(2).durable(&dir.0);
    incompatible(other_geometry.build().map(|_| ()), &["divisor", "max_level"]);
    incompatible(
        Pipeline::builder(Sum)
            .shards(2)
            .divisor(DIVISOR)
            .max_level(MAX_LEVEL)
            .durable(&dir.0)
            .build()
            .map(|_| ()),
        &["merge"],
    );
    // The refusals changed nothing: it opens with its own settings.
    concat(&dir.0, 2)?;
    Ok(())
}

/// A shard's log segments, oldest first; with `written`, only those holding a turn (opening
/// starts a new, empty one).
fn segments(dir: &Path, shard: u32, written: bool) -> Vec<PathBuf> {
    let shard_dir = dir.join(format!("shard-{shard:04}"));
    let mut segments: Vec<PathBuf> = fs::read_dir(&shard_dir)
        .expect("the shard's log directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("log-")))
        .filter(|path| !written || fs::metadata(path).map(|m| m.len() > 40).unwrap_or(false))
        .collect();
    segments.sort();
    segments
}

/// Bytes a crash left half-written at the end of a shard's newest segment are dropped,
/// counted, and cut off, and nothing before them is lost.
#[test]
fn a_torn_tail_is_dropped_and_counted() -> Result<(), Error> {
    let dir = TempDir::new("torn");
    let pipeline = concat(&dir.0, 1)?;
    let commits = commit_scripts(&pipeline, scripts(7, 1, 60, 5, 0));
    pipeline.shutdown().map_err(Error::from)?;
    let newest = segments(&dir.0, 0, false).pop().expect("a segment");
    // A frame header promising more bytes than follow: what a write cut short leaves.
    fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .and_then(|mut f| f.write_all(&[9, 0, 0, 0, 1, 2, 3]))
        .expect("append to the segment");
    let reopened = concat(&dir.0, 1)?;
    assert_eq!(reopened.stats().torn_tails, 1);
    check(&reopened.snapshot(), &commits);
    reopened.shutdown().map_err(Error::from)?;
    let again = concat(&dir.0, 1)?;
    assert_eq!(again.stats().torn_tails, 0, "the tail was cut off on the first reopen");
    check(&again.snapshot(), &commits);
    Ok(())
}

/// 8 paths per commit, so both shards hold rows of nearly every commit, numbered from `from`.
fn wide(from: u64, count: u64, tag: u64) -> Commits<u64> {
    (from..from + count).map(|c| (0..8).map(|p| (format!("/q{p}"), tag + c * 10 + p)).collect()).collect()
}

/// Commits `commits` from one producer, waiting for durability every 10.
fn commit_durably(pipeline: &Pipeline<Concat<u64>>, commits: &Commits<u64>) -> Result<(), Error> {
    let mut producer = pipeline.producer()?;
    for (i, parts) in commits.iter().enumerate() {
        let commit = producer.commit(parts.clone())?;
        if i % 10 == 9 {
            pipeline.wait_durable(commit, common::PATIENCE)?;
        }
    }
    Ok(())
}

/// Cuts the second half of the turns off shard 0's newest segment that holds any.
fn cut_shard_zero(dir: &Path) {
    let segment = segments(dir, 0, true).pop().expect("a segment with turns");
    let len = fs::metadata(&segment).map(|m| m.len()).expect("segment length");
    fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|f| f.set_len(40 + (len - 40) / 2))
        .expect("cut");
}

/// When one shard's log ends before another's (it lost its last turns), recovery cuts every
/// shard at the lowest end: the state is the model of exactly the commits up to it, the next
/// commit is numbered after it, and the other shard's cut-off rows never come back.
#[test]
fn shards_are_cut_at_the_lowest_end_among_them() -> Result<(), Error> {
    let dir = TempDir::new("cut");
    // A first run, saved to batch files up to its last top-level block.
    let mut commits = wide(0, 120, 0);
    let pipeline = concat(&dir.0, 2)?;
    commit_durably(&pipeline, &commits)?;
    pipeline.shutdown().map_err(Error::from)?;
    // A second run that stays inside the next top-level block: only the logs hold it.
    let second = wide(120, 7, 0);
    let pipeline = concat(&dir.0, 2)?;
    commit_durably(&pipeline, &second)?;
    pipeline.shutdown().map_err(Error::from)?;
    commits.extend(second);
    // Shard 0 loses the second half of the second run's segment: a torn tail, and turns.
    cut_shard_zero(&dir.0);
    let reopened = concat(&dir.0, 2)?;
    let recovered = reopened.snapshot().frontier();
    assert!(recovered < commits.len() as u64, "shard 0 lost commits: recovered {recovered}");
    assert!(recovered >= 120, "the batch files and the first run's logs hold 120: {recovered}");
    check(&reopened.snapshot(), &commits);
    // New commits take the lost numbers, with new records.
    let mut next: Commits<u64> = commits[..recovered as usize].to_vec();
    let mut producer = reopened.producer()?;
    for c in 0..20u64 {
        let parts: Vec<(String, u64)> = (0..8).map(|p| (format!("/q{p}"), 1_000_000 + c * 10 + p)).collect();
        assert_eq!(producer.commit(parts.clone())?, next.len() as u64 + 1);
        next.push(parts);
    }
    drop(producer);
    let last = reopened.shutdown().map_err(Error::from)?;
    check(&last, &next);
    let again = concat(&dir.0, 2)?;
    assert_eq!(again.snapshot().frontier(), next.len() as u64);
    check(&again.snapshot(), &next);
    Ok(())
}
