//! Batch files end to end: top-level batches are saved and the log goes below them; a power cut
//! at any step of saving a file or removing a segment loses nothing acknowledged; a damaged,
//! cut or missing file is refused with a typed error naming it, never read as a shorter
//! history; a file left half-written under its temporary name is removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pipeline::{commit_acknowledging, commits_in, open_with, parts, small_segments, ROOT};
use crate::durable::reader::shard_dir;
use crate::durable::sim::SimStorage;
use crate::durable::storage::Storage;
use crate::durable::writer::LogOptions;
use crate::merge::Outputs;
use crate::{Durability, Error, Merge, Pipeline};

/// Commit number to its sorted parts.
type Found = BTreeMap<u64, Vec<(String, u64)>>;

/// Shard `shard`'s files whose names start with `prefix`, sorted.
fn files(storage: &SimStorage, shard: u32, prefix: &str) -> Vec<PathBuf> {
    let dir = shard_dir(Path::new(ROOT), shard);
    let mut names: Vec<String> = storage.list(&dir).unwrap_or_default();
    names.retain(|name| name.starts_with(prefix));
    names.sort();
    names.into_iter().map(|name| dir.join(name)).collect()
}

/// A first life shut down cleanly: `count` commits, saved to files and synced.
fn first_life(storage: &SimStorage, count: u64) -> Result<Found, Error> {
    let pipeline = open_with(storage, Durability::Written, small_segments())?;
    commit_acknowledging(&pipeline, 0..count, parts)?;
    let last = pipeline.wait_sealed(count, Duration::from_secs(10))?.frontier();
    assert_eq!(last, count);
    let (_, found) = commits_in(&pipeline);
    pipeline.shutdown().map_err(Error::from)?;
    Ok(found)
}

#[test]
fn top_level_batches_go_to_files_and_the_log_goes_below_them() -> Result<(), Error> {
    let storage = SimStorage::default();
    let before = first_life(&storage, 200)?;
    for shard in 0..2 {
        let saved = files(&storage, shard, "batch-");
        assert!(saved.len() >= 5, "shard {shard}: {} batch files after 200 commits", saved.len());
        let segments = files(&storage, shard, "log-");
        let oldest = segments.first().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        assert_ne!(
            oldest.as_deref(),
            Some("log-00000000000000000000"),
            "shard {shard}: no segment was removed"
        );
    }
    // Loaded from the files and the log above them: the same commits, each whole.
    let reopened = open_with(&storage, Durability::Written, small_segments())?;
    assert_eq!(commits_in(&reopened), (200, before.clone()));
    // And with segments of another size, and again after more commits.
    drop(reopened);
    let reopened = open_with(&storage, Durability::Synced, LogOptions::default())?;
    assert_eq!(commits_in(&reopened), (200, before));
    Ok(())
}

/// Cuts the power at every operation of a life that saves files and removes log segments, in
/// turn: each write of a temporary file, its sync, the rename, the directory's sync, each
/// removal. Every commit acknowledged at `Synced` survives, and what is lost is a suffix.
#[test]
fn a_power_cut_at_any_step_of_saving_or_removing_loses_nothing_acknowledged() -> Result<(), Error> {
    for durability in [Durability::Synced, Durability::Written] {
        let (mut ops, mut uncut) = (0, 0);
        // Files are saved on a thread of their own, so lives differ in how many operations
        // they take: the sweep ends after three lives in a row ended before their cut.
        while uncut < 3 {
            let storage = SimStorage::default();
            let first = first_life(&storage, 40)?;
            let saved_before = files(&storage, 0, "batch-").len();
            let pipeline = open_with(&storage, durability, small_segments())?;
            storage.cut_power_after(ops, ops);
            let (issued, acknowledged) = commit_acknowledging(&pipeline, 1000..1080, parts)?;
            drop(pipeline);
            ops += 1;
            let Some(after) = storage.after_power_cut() else {
                // The life ended before the cut: every operation has had its turn, and the
                // sweep covered saving files (and so removing the segments below them). The
                // listing is not to be cut: the power stays on from now.
                storage.cut_power_after(u64::MAX, 0);
                let saved = files(&storage, 0, "batch-").len();
                assert!(saved > saved_before, "{durability:?}: a life without files ({saved})");
                uncut += 1;
                continue;
            };
            uncut = 0;
            let reopened = open_with(&after, durability, small_segments())?;
            let (recovered, found) = commits_in(&reopened);
            let case = format!("{durability:?}, power cut after {} operations", ops - 1);
            assert!(recovered >= 40, "{case}: the first life's commits are lost ({recovered})");
            if durability == Durability::Synced {
                assert!(
                    recovered >= acknowledged,
                    "{case}: recovered {recovered} < acknowledged {acknowledged}"
                );
            }
            for commit in 1..=recovered {
                let wanted = match issued.get(&commit) {
                    Some(&value) => {
                        let mut wanted = parts(value);
                        wanted.sort();
                        wanted
                    }
                    None => {
                        first.get(&commit).cloned().unwrap_or_else(|| panic!("{case}: {commit} never issued"))
                    }
                };
                assert_eq!(found.get(&commit), Some(&wanted), "{case}: commit {commit} not whole");
            }
            assert!(found.keys().all(|&c| c <= recovered), "{case}: a commit past the frontier");
            assert_eq!(reopened.producer()?.commit(parts(7))?, recovered + 1, "{case}: numbering resumes");
        }
        assert!(ops > 100, "{durability:?}: only {ops} operations to cut at");
    }
    Ok(())
}

/// What opening a damaged directory gives: the error, or what it recovered.
fn open_damaged(storage: &SimStorage) -> Result<(u64, Found), Error> {
    open_with(storage, Durability::Written, small_segments()).map(|pipeline| commits_in(&pipeline))
}

#[test]
fn a_damaged_batch_file_is_refused_with_its_name() -> Result<(), Error> {
    let storage = SimStorage::default();
    let before = first_life(&storage, 120)?;
    let saved = files(&storage, 0, "batch-");
    let middle = saved[saved.len() / 2].clone();
    let name = middle.display().to_string();
    let bytes = storage.bytes(&middle).map_err(|e| Error::io("reading", &e))?;
    // Every byte flipped, in turn: corrupt (or another version, for the version's bytes).
    for at in 0..bytes.len() {
        let damaged = storage.fork();
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        damaged.put_bytes(&middle, &flipped).map_err(|e| Error::io("damaging", &e))?;
        match open_damaged(&damaged) {
            Err(Error::Corrupt { file, .. }) => assert_eq!(file, name, "byte {at}"),
            Err(Error::Incompatible { file, .. }) if (8..12).contains(&at) => assert_eq!(file, name),
            other => panic!("byte {at} flipped: {other:?}"),
        }
    }
    // Cut short at every length.
    for len in 0..bytes.len() {
        let damaged = storage.fork();
        damaged.put_bytes(&middle, &bytes[..len]).map_err(|e| Error::io("damaging", &e))?;
        match open_damaged(&damaged) {
            Err(Error::Corrupt { file, .. }) => assert_eq!(file, name, "cut to {len} bytes"),
            other => panic!("cut to {len} bytes: {other:?}"),
        }
    }
    // A file missing from the middle of the chain: the file after it names the gap.
    let damaged = storage.fork();
    damaged.remove(&middle).map_err(|e| Error::io("removing", &e))?;
    match open_damaged(&damaged) {
        Err(Error::Corrupt { why, .. }) => assert!(why.contains("missing"), "{why}"),
        other => panic!("a file missing from the chain: {other:?}"),
    }
    // The newest file missing: the log below it is gone, a hole; or, if the log still holds
    // it, everything is there. Never a shorter history.
    let damaged = storage.fork();
    let newest = saved.last().expect("files");
    damaged.remove(newest).map_err(|e| Error::io("removing", &e))?;
    match open_damaged(&damaged) {
        Err(Error::Corrupt { why, .. }) => assert!(why.contains("missing"), "{why}"),
        Ok(recovered) => assert_eq!(recovered, (120, before.clone())),
        Err(other) => panic!("the newest file missing: {other:?}"),
    }
    Ok(())
}

/// `u64` sums whose `Serialize` fails, or panics: a batch file cannot hold them.
#[derive(Debug, Clone, PartialEq)]
struct Fragile {
    sum: u64,
    panics: bool,
}

impl serde::Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        assert!(!self.panics, "a user's Serialize panicked");
        Err(serde::ser::Error::custom("this output refuses to be saved"))
    }
}

impl<'de> serde::Deserialize<'de> for Fragile {
    fn deserialize<D: serde::Deserializer<'de>>(from: D) -> Result<Self, D::Error> {
        u64::deserialize(from).map(|sum| Fragile { sum, panics: false })
    }
}

/// Sums into [`Fragile`] outputs that panic when saved if `.0`.
struct Breaks(bool);

impl Merge for Breaks {
    type Record = u64;
    type Output = Fragile;
    type Column = Outputs<Fragile>;

    fn seal(&self, records: impl Iterator<Item = (u64, u64)>) -> Fragile {
        Fragile { sum: records.map(|(_, r)| r).sum(), panics: self.0 }
    }

    fn merge(&self, outputs: &[&Fragile]) -> Fragile {
        Fragile { sum: outputs.iter().map(|o| o.sum).sum(), panics: self.0 }
    }
}

/// A batch file that cannot be saved (an output whose `Serialize` fails or panics, on the
/// saving thread) stops durability for good, as a failed log write does: a typed error from
/// `wait_durable` and every later commit, what was durable stays so, and reopening with a merge
/// that saves recovers every commit acknowledged.
#[test]
fn a_batch_file_that_cannot_be_saved_stops_durability() -> Result<(), Error> {
    for panics in [false, true] {
        let storage = SimStorage::default();
        let open = |panics| {
            Pipeline::builder(Breaks(panics))
                .shards(1)
                .divisor(2)
                .max_level(3)
                .durable_on(storage.clone(), Path::new(ROOT), small_segments())
                .durability(Durability::Synced)
                .build()
        };
        let pipeline = open(panics)?;
        let mut producer = pipeline.producer()?;
        let mut acknowledged = 0;
        // The first file (16 commits) fails; commits go on until durability says so (bounded
        // in time, not in commits: a panic's report may take the saving thread a while).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let error = (1u64..)
            .find_map(|value| {
                assert!(std::time::Instant::now() < deadline, "panics {panics}: durability never stopped");
                if value > 32 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let commit = match producer.commit([("/a", value)]) {
                    Ok(commit) => commit,
                    Err(error) => return Some(error),
                };
                match pipeline.wait_durable(commit, Duration::from_secs(10)) {
                    Ok(frontier) => acknowledged = frontier,
                    Err(error) => return Some(error),
                }
                None
            })
            .unwrap_or_else(|| unreachable!("the commits go on until the deadline"));
        let case = format!("panics {panics}: {error:?}");
        assert!(matches!(&error, Error::Io { kind: std::io::ErrorKind::InvalidData, .. }), "{case}");
        assert_eq!(producer.commit([("/a", 1)]), Err(error.clone()), "{case}: later commits are refused");
        assert_eq!(pipeline.wait_durable(1, Duration::ZERO), Ok(acknowledged), "{case}: durable stays so");
        assert!(files(&storage, 0, "batch-").is_empty(), "{case}: no file was saved");
        drop(producer);
        drop(pipeline);
        // Recovery needs no file: every acknowledged commit is in the log.
        let reopened = open(false)?;
        let snapshot = reopened.snapshot();
        assert!(snapshot.frontier() >= acknowledged, "{case}: recovered {}", snapshot.frontier());
        let sum = snapshot.read("/a").map(|o| o.sum);
        assert_eq!(sum, Some((1..=snapshot.frontier()).sum()), "{case}: every commit whole");
    }
    Ok(())
}

/// A file a crash left under its temporary name is removed on opening, whatever it holds.
#[test]
fn a_half_written_temporary_file_is_removed() -> Result<(), Error> {
    let storage = SimStorage::default();
    let before = first_life(&storage, 60)?;
    let temporary = shard_dir(Path::new(ROOT), 1).join("tmp-batch-00000000000000000065-00000000000000000072");
    let mut file = storage.create(&temporary).map_err(|e| Error::io("creating", &e))?;
    crate::durable::storage::StorageFile::append(&mut file, b"LSTP.BAT half")
        .map_err(|e| Error::io("writing", &e))?;
    drop(file);
    assert_eq!(open_damaged(&storage)?, (60, before));
    assert!(files(&storage, 1, "tmp-").is_empty(), "the temporary file is gone");
    Ok(())
}

/// A log that lost turns the batch files rely on (synced turns, which no crash takes) is
/// refused as corrupt rather than read as a shorter history with rows of lost commits in it.
#[test]
fn a_log_that_lost_synced_turns_below_the_files_is_corruption() -> Result<(), Error> {
    let storage = SimStorage::default();
    first_life(&storage, 120)?;
    // Shard 0's log loses its turns from a segment that starts below the files' end on: that
    // segment keeps its header alone, the later ones go.
    let saved = files(&storage, 0, "batch-");
    let name = saved.last().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let files_end: u64 =
        name.and_then(|n| n.rsplit('-').next().and_then(|e| e.parse().ok())).expect("a file");
    let segments = files(&storage, 0, "log-");
    let start = |path: &PathBuf| -> u64 {
        let bytes = storage.bytes(path).unwrap_or_default();
        bytes.get(24..32).map_or(u64::MAX, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let cut =
        segments.iter().rposition(|path| start(path) < files_end).expect("a segment below the files' end");
    let bytes = storage.bytes(&segments[cut]).map_err(|e| Error::io("reading", &e))?;
    storage.put_bytes(&segments[cut], &bytes[..40]).map_err(|e| Error::io("cutting", &e))?;
    for later in &segments[cut + 1..] {
        storage.remove(later).map_err(|e| Error::io("removing", &e))?;
    }
    match open_damaged(&storage) {
        Err(Error::Corrupt { why, .. }) => assert!(why.contains("batch files"), "{why}"),
        other => panic!("a log that lost synced turns was opened: {other:?}"),
    }
    Ok(())
}
