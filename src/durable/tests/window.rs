//! A retention window on a durable pipeline: the files the window left give way to one names
//! file, so disk stays bounded as memory does; reopening shows exactly the window, with every
//! path's name; a window wider than what is left is refused; and a power cut at any step of
//! replacing files loses nothing acknowledged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pipeline::{builder, commit_acknowledging, commits_in, parts, small_segments, ROOT};
use crate::durable::reader::shard_dir;
use crate::durable::sim::SimStorage;
use crate::durable::storage::Storage;
use crate::merge::Concat;
use crate::{DiscardSink, Durability, Error, Pipeline, Retention};

/// Commit number to its sorted parts.
type Found = BTreeMap<u64, Vec<(String, u64)>>;
/// Commit number to the value its parts were made of.
type Issued = BTreeMap<u64, u64>;

/// The tests' pipeline (top-level blocks of 8 commits, files of 16) with a window of
/// `window` top-level blocks.
fn open(storage: &SimStorage, durability: Durability, window: usize) -> Result<Pipeline<Concat<u64>>, Error> {
    builder(storage, durability, small_segments()).sink(DiscardSink).retain(Retention::Newest(window)).build()
}

/// Shard `shard`'s file names starting with `prefix`, sorted.
fn names(storage: &SimStorage, shard: u32, prefix: &str) -> Vec<String> {
    let dir = shard_dir(Path::new(ROOT), shard);
    let mut names: Vec<String> = storage.list(&dir).unwrap_or_default();
    names.retain(|name| name.starts_with(prefix));
    names.sort();
    names
}

/// A path that commit 1 names first (its name is then in the oldest file, which the window
/// leaves) and that has data again every 200 values.
const RARE: &str = "/rare";

/// The parts of the commit of `value`: the pipeline tests' own, and [`RARE`] now and then.
fn parts_of(value: u64) -> Vec<(String, u64)> {
    let mut parts = parts(value);
    if matches!(value % 200, 0 | 199) {
        parts.push((RARE.to_owned(), value));
    }
    parts
}

/// Commits `values`' parts (see [`commit_acknowledging`]).
fn run(pipeline: &Pipeline<Concat<u64>>, values: std::ops::Range<u64>) -> Result<(Issued, u64), Error> {
    commit_acknowledging(pipeline, values, parts_of)
}

/// The commits a window of `window` blocks of 8 shows at `frontier`, of `issued`: commit number
/// to its sorted parts.
fn shown(issued: &Issued, window: u64, frontier: u64) -> Found {
    let from = (frontier / 8 * 8).saturating_sub(8 * window) + 1;
    let sorted = |value: u64| {
        let mut parts = parts_of(value);
        parts.sort();
        parts
    };
    issued.range(from..=frontier).map(|(&commit, &value)| (commit, sorted(value))).collect()
}

#[test]
fn a_window_leaves_one_names_file_and_reopens_as_it_was() -> Result<(), Error> {
    let storage = SimStorage::default();
    let pipeline = open(&storage, Durability::Written, 2)?;
    let (issued, _) = run(&pipeline, 0..400)?;
    assert_eq!(pipeline.wait_sealed(400, Duration::from_secs(10))?.frontier(), 400);
    let before = commits_in(&pipeline);
    assert_eq!(before, (400, shown(&issued, 2, 400)), "the live window");
    let paths: Vec<String> = pipeline.snapshot().paths().map(str::to_owned).collect();
    pipeline.shutdown().map_err(Error::from)?;
    for shard in 0..2 {
        let kept = names(&storage, shard, "names-");
        assert_eq!(kept.len(), 1, "shard {shard}: {kept:?}");
        assert!(kept[0].starts_with("names-00000000000000000001-"), "{kept:?}");
        // 400 commits make 25 files of 16; the window's 16 commits and the files not yet
        // replaced (one job at a time) stay.
        let batches = names(&storage, shard, "batch-");
        assert!(batches.len() <= 4, "shard {shard}: {batches:?}");
    }
    // Reopened: the window as it was, every path named (the rare one's name is in the names
    // file only), and it goes on.
    let reopened = open(&storage, Durability::Written, 2)?;
    assert_eq!(commits_in(&reopened), before);
    let again: Vec<String> = reopened.snapshot().paths().map(str::to_owned).collect();
    assert_eq!(again, paths);
    let (more, _) = run(&reopened, 400..480)?;
    assert_eq!(reopened.wait_sealed(480, Duration::from_secs(10))?.frontier(), 480);
    let all: Issued = issued.into_iter().chain(more).collect();
    let live = commits_in(&reopened);
    assert_eq!(live, (480, shown(&all, 2, 480)));
    reopened.shutdown().map_err(Error::from)?;
    assert_eq!(commits_in(&open(&storage, Durability::Synced, 2)?), live);
    Ok(())
}

#[test]
fn a_wider_window_is_refused_and_a_narrower_one_opens() -> Result<(), Error> {
    let storage = SimStorage::default();
    let pipeline = open(&storage, Durability::Written, 2)?;
    let (issued, _) = run(&pipeline, 0..200)?;
    pipeline.wait_sealed(200, Duration::from_secs(10))?;
    pipeline.shutdown().map_err(Error::from)?;
    let every = builder(&storage, Durability::Written, small_segments()).build();
    assert!(
        matches!(&every, Err(Error::Incompatible { why, .. }) if why.contains("retention window dropped")),
        "{every:?}"
    );
    let wider = open(&storage, Durability::Written, 8);
    assert!(matches!(wider, Err(Error::Incompatible { .. })), "{wider:?}");
    // Refused without a change: the same window opens it still, and so does a narrower one.
    drop(open(&storage, Durability::Written, 2)?);
    let narrower = open(&storage, Durability::Written, 1)?;
    assert_eq!(commits_in(&narrower), (200, shown(&issued, 1, 200)));
    Ok(())
}

/// Cuts the power at every operation of a life whose files leave the window, in turn: every
/// commit acknowledged at `Synced` survives, the window reopens whole (never refused as wider
/// than what is left, never a hole), and files the names file replaced but a cut left behind
/// are removed on opening.
#[test]
fn a_power_cut_at_any_step_of_replacing_files_loses_nothing_acknowledged() -> Result<(), Error> {
    let mut leftovers = 0;
    for durability in [Durability::Synced, Durability::Written] {
        let (mut ops, mut uncut) = (0, 0);
        // Lives differ in how many operations they take (files are saved on a thread of
        // their own): the sweep ends after three lives in a row ended before their cut.
        while uncut < 3 {
            let storage = SimStorage::default();
            let first = open(&storage, Durability::Written, 2)?;
            let (mut issued, _) = run(&first, 0..60)?;
            first.wait_sealed(60, Duration::from_secs(10))?;
            first.shutdown().map_err(Error::from)?;
            let pipeline = open(&storage, durability, 2)?;
            storage.cut_power_after(ops, ops);
            let (second, acknowledged) = run(&pipeline, 1000..1060)?;
            issued.extend(second);
            drop(pipeline);
            ops += 1;
            let Some(after) = storage.after_power_cut() else {
                uncut += 1;
                continue;
            };
            uncut = 0;
            let case = format!("{durability:?}, power cut after {} operations", ops - 1);
            leftovers += u64::from(replaced_left_behind(&after));
            let reopened = open(&after, durability, 2).unwrap_or_else(|e| panic!("{case}: {e}"));
            let (recovered, found) = commits_in(&reopened);
            assert!(recovered >= 60, "{case}: the first life's commits are lost ({recovered})");
            if durability == Durability::Synced {
                assert!(
                    recovered >= acknowledged,
                    "{case}: recovered {recovered} < acknowledged {acknowledged}"
                );
            }
            assert_eq!(found, shown(&issued, 2, recovered), "{case}");
            // After the shutdown: the reopened pipeline may be replacing files of its own.
            reopened.shutdown().map_err(Error::from)?;
            assert!(!replaced_left_behind(&after), "{case}: what the names file replaced is left");
        }
    }
    assert!(leftovers > 0, "no cut fell between a names file and the removals it allows");
    Ok(())
}

/// True if a shard holds a batch file that its names file covers (a cut came between writing
/// the names file and removing what it replaced).
fn replaced_left_behind(storage: &SimStorage) -> bool {
    let end = |name: &str| name.rsplit('-').next().and_then(|end| end.parse::<u64>().ok());
    (0..2).any(|shard| {
        let expired = names(storage, shard, "names-").iter().filter_map(|name| end(name)).max().unwrap_or(0);
        names(storage, shard, "batch-").iter().filter_map(|name| end(name)).any(|end| end <= expired)
    })
}

/// A damaged names file is refused naming it, as any batch file is.
#[test]
fn a_damaged_names_file_is_refused() -> Result<(), Error> {
    let storage = SimStorage::default();
    let pipeline = open(&storage, Durability::Written, 2)?;
    run(&pipeline, 0..200)?;
    pipeline.wait_sealed(200, Duration::from_secs(10))?;
    pipeline.shutdown().map_err(Error::from)?;
    let name = names(&storage, 1, "names-").pop().expect("a names file");
    let path: PathBuf = shard_dir(Path::new(ROOT), 1).join(&name);
    let mut bytes = storage.bytes(&path).map_err(|e| Error::io("reading", &e))?;
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    storage.put_bytes(&path, &bytes).map_err(|e| Error::io("writing", &e))?;
    let refused = open(&storage, Durability::Written, 2);
    assert!(matches!(&refused, Err(Error::Corrupt { file, .. }) if file.ends_with(&name)), "{refused:?}");
    Ok(())
}
