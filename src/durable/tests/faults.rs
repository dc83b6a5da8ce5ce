//! Faults while running: power cuts at random moments, failed writes and syncs, a full disk,
//! a record that does not encode; and the log on the real file system.

use super::*;

/// Power cuts at random moments (between any two storage operations, rotations and recovery
/// included), with kills and reopens along the way: recovery always yields a prefix of the turns
/// written that holds every turn synced, and the log goes on after it.
#[test]
fn a_power_cut_keeps_a_prefix_holding_every_synced_turn() -> Result<(), Error> {
    let cases = std::env::var("LOCKSTEP_POWER_CUTS").ok().and_then(|n| n.parse().ok()).unwrap_or(300u64);
    // How often each interesting thing happened, so the test shows it tests them.
    let (mut cut_mid_run, mut lost_unsynced, mut torn, mut kills) = (0, 0, 0, 0);
    for case in 0..cases {
        let mut rng = Rng::new(case);
        let options = LogOptions { segment_bytes: 150 + rng.up_to(600), ..LogOptions::default() };
        let storage = SimStorage::default();
        let (mut writer, ..) = open::<i64, _>(&storage, options)?;
        storage.cut_power_after(rng.up_to(150), case);
        let mut written: Vec<Owned<i64>> = Vec::new();
        let mut synced = 0;
        for _ in 0..60 {
            let turn = Owned::random(writer.tip(), &mut rng, small_i64);
            if turn.append(&mut writer).is_err() {
                break;
            }
            written.push(turn);
            if rng.up_to(3) == 0 {
                if writer.sync().is_err() {
                    break;
                }
                synced = written.len();
            }
            if rng.up_to(15) == 0 {
                // Killed: the OS keeps what was written; reopening finds all of it, synced.
                drop(writer);
                let Ok((reopened, recovered, _)) = open::<i64, _>(&storage, options) else { break };
                assert_eq!(recovered, written, "case {case}: a kill lost written turns");
                kills += 1;
                (writer, synced) = (reopened, written.len());
            }
        }
        cut_mid_run += u32::from(storage.after_power_cut().is_some());
        let mut image = storage.after_power_cut().unwrap_or_else(|| storage.crash(case));
        // Sometimes the power goes again while recovering, or right after.
        if rng.up_to(2) == 0 {
            image.cut_power_after(rng.up_to(12), case + 1);
            drop(open::<i64, _>(&image, options));
            image = image.after_power_cut().unwrap_or_else(|| image.crash(case + 1));
        }
        let (mut writer, recovered, report) = open::<i64, _>(&image, options)?;
        (lost_unsynced, torn) = (
            lost_unsynced + u32::from(recovered.len() < written.len()),
            torn + u32::from(report.torn.is_some()),
        );
        assert!(
            recovered.len() >= synced && written.starts_with(&recovered),
            "case {case}: recovered {} turns, synced {synced} of {} written",
            recovered.len(),
            written.len()
        );
        let more = Owned::random(writer.tip(), &mut rng, small_i64);
        more.append(&mut writer)?;
        writer.sync()?;
        let (after, report) = read_all::<i64, _>(&image)?;
        assert_eq!(after[..recovered.len()], recovered[..], "case {case}");
        assert_eq!((after.len(), report.torn), (recovered.len() + 1, None));
    }
    println!(
        "{cases} power cuts: {cut_mid_run} in the middle of an operation, {kills} kills on the way, \
         {lost_unsynced} lost unsynced turns, {torn} left a torn tail"
    );
    assert!(cut_mid_run > 0 && kills > 0 && lost_unsynced > 0 && torn > 0);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Faults

fn io_kind(error: &Error) -> Option<std::io::ErrorKind> {
    match error {
        Error::Io { kind, .. } => Some(*kind),
        _ => None,
    }
}

/// A failed write (ENOSPC after part of the frame, or EIO) ends the writer with a typed error
/// that every later call returns; reopening finds every turn written before it.
#[test]
fn a_failed_write_ends_the_writer_and_loses_nothing_written() -> Result<(), Error> {
    for (fault, keep) in [(Fault::NoSpace, 5), (Fault::NoSpace, 0), (Fault::Eio, 20)] {
        let storage = SimStorage::default();
        let (mut writer, ..) = open::<i64, _>(&storage, small_segments())?;
        let turns = random_turns(17, 30, small_i64);
        for turn in &turns[..20] {
            turn.append(&mut writer)?;
        }
        writer.sync()?;
        for turn in &turns[20..25] {
            turn.append(&mut writer)?;
        }
        storage.fail_next_write(fault, keep);
        let error = turns[25].append(&mut writer).err();
        let kind =
            if fault == Fault::NoSpace { std::io::ErrorKind::StorageFull } else { std::io::ErrorKind::Other };
        assert_eq!(error.as_ref().and_then(io_kind), Some(kind), "{error:?}");
        // For good: the same error from every call, nothing retried.
        assert_eq!(turns[26].append(&mut writer).err(), error);
        assert_eq!(writer.sync().err(), error);
        assert_eq!(writer.failed(), error.as_ref());
        drop(writer);
        let (mut writer, recovered, report) = open::<i64, _>(&storage, small_segments())?;
        assert_eq!(recovered, turns[..25]);
        assert_eq!(report.torn.is_some(), keep > 0, "a part-written frame is a torn tail");
        turns[25].append(&mut writer)?;
        assert_eq!(read_all::<i64, _>(&storage)?.0, turns[..26]);
    }
    Ok(())
}

/// A failed fsync ends the writer; what was written is still there on reopen, and after a power
/// cut everything synced before the failure is.
#[test]
fn a_failed_sync_ends_the_writer() -> Result<(), Error> {
    let storage = SimStorage::default();
    let (mut writer, ..) = open::<i64, _>(&storage, small_segments())?;
    let turns = random_turns(18, 30, small_i64);
    for turn in &turns[..10] {
        turn.append(&mut writer)?;
    }
    let synced = writer.sync()?;
    turns[10].append(&mut writer)?;
    storage.fail_next_sync(Fault::Eio);
    let error = writer.sync().err();
    assert!(error.as_ref().and_then(io_kind).is_some(), "{error:?}");
    assert_eq!(writer.synced(), synced);
    assert_eq!(turns[11].append(&mut writer).err(), error);
    for seed in 0..20 {
        let (_, recovered, _) = open::<i64, _>(&storage.crash(seed), small_segments())?;
        assert!(recovered.len() >= 10 && turns.starts_with(&recovered));
    }
    drop(writer);
    let (_, recovered, _) = open::<i64, _>(&storage, small_segments())?;
    assert_eq!(recovered, turns[..11]);
    // A rotation syncs nothing on the writer's thread; a sync it owes failing (done by the
    // next rotation here, with no syncing thread) ends the writer too, for good.
    let storage = SimStorage::default();
    let (mut writer, ..) =
        open::<i64, _>(&storage, LogOptions { segment_bytes: 1, ..LogOptions::default() })?;
    turns[0].append(&mut writer)?;
    turns[1].append(&mut writer)?;
    storage.fail_next_sync(Fault::Eio);
    let error = turns[2].append(&mut writer).err();
    assert!(error.as_ref().and_then(io_kind).is_some() && writer.failed() == error.as_ref(), "{error:?}");
    assert_eq!(writer.sync().err(), error);
    Ok(())
}

/// A full disk: writes fail, opening fails while it stays full (changing nothing), and works
/// again once space is freed.
#[test]
fn a_full_disk_refuses_until_space_is_freed() -> Result<(), Error> {
    let storage = SimStorage::default();
    let (mut writer, ..) = open::<i64, _>(&storage, small_segments())?;
    let turns = random_turns(19, 20, small_i64);
    for turn in &turns[..15] {
        turn.append(&mut writer)?;
    }
    storage.set_full(true);
    let error = turns[15].append(&mut writer).err();
    assert_eq!(error.as_ref().and_then(io_kind), Some(std::io::ErrorKind::StorageFull));
    drop(writer);
    let refused = open::<i64, _>(&storage, small_segments()).err();
    assert_eq!(refused.as_ref().and_then(io_kind), Some(std::io::ErrorKind::StorageFull));
    storage.set_full(false);
    let (mut writer, recovered, _) = open::<i64, _>(&storage, small_segments())?;
    assert_eq!(recovered, turns[..15]);
    turns[15].append(&mut writer)?;
    Ok(())
}

/// A record whose `Serialize` fails: the turn cannot be logged, nor skipped; the writer ends
/// with a typed error and writes nothing.
#[test]
fn a_record_that_does_not_encode_ends_the_writer() -> Result<(), Error> {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("this record refuses"))
        }
    }
    let storage = SimStorage::default();
    let (mut writer, ..) = open::<Refuses, _>(&storage, LogOptions::default())?;
    let before = segment_files(&storage).iter().map(|f| storage.bytes(f).ok()).collect::<Vec<_>>();
    let turn = Owned { frontier: 1, names: vec!["/a".into()], rows: vec![(1, 0, Refuses)] };
    let error = turn.append(&mut writer).err();
    assert_eq!(error.as_ref().and_then(io_kind), Some(std::io::ErrorKind::InvalidData), "{error:?}");
    assert_eq!(writer.sync().err(), error);
    let after = segment_files(&storage).iter().map(|f| storage.bytes(f).ok()).collect::<Vec<_>>();
    assert_eq!(before, after);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The real file system

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_log_on_disk() -> Result<(), Error> {
    let unique = format!("lockstep-durable-{}-{:?}", std::process::id(), std::thread::current().id());
    let root = TempDir(std::env::temp_dir().join(unique.replace(['(', ')'], "")));
    let dir = shard_dir(&root.0, SHARD);
    let io = |e: std::io::Error| Error::io("test", &e);
    let open_disk = || {
        let mut turns = Vec::new();
        let (writer, report) = LogWriter::open(DiskStorage, &dir, SHARD, small_segments(), |turn| {
            turns.push(Owned::<i64>::from_logged(turn));
            Ok(())
        })?;
        Ok::<_, Error>((writer, turns, report))
    };
    let turns = random_turns(20, 60, small_i64);
    let (mut writer, recovered, _) = open_disk()?;
    assert!(recovered.is_empty());
    for turn in &turns[..50] {
        turn.append(&mut writer)?;
    }
    writer.sync()?;
    drop(writer);
    let (mut writer, recovered, report) = open_disk()?;
    assert_eq!((recovered.as_slice(), report.torn), (&turns[..50], None));
    assert!(report.segments > 3);
    for turn in &turns[50..] {
        turn.append(&mut writer)?;
    }
    drop(writer);
    // A torn tail, as a crash mid-write leaves it.
    let mut names: Vec<String> = DiskStorage.list(&dir).map_err(io)?;
    names.sort();
    let newest = dir.join(names.pop().unwrap_or_default());
    let mut bytes = std::fs::read(&newest).map_err(io)?;
    let clean = bytes.len();
    bytes.extend_from_slice(&[0x2a, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&newest, &bytes).map_err(io)?;
    let (mut writer, recovered, report) = open_disk()?;
    assert_eq!(recovered, turns);
    assert_eq!(report.torn.map(|t| (t.offset, t.damage)), Some((clean as u64, Damage::ShortHeader)));
    assert_eq!(std::fs::metadata(&newest).map_err(io)?.len(), clean as u64, "the tail was cut off");
    let more = Owned::random(writer.tip(), &mut Rng::new(5), small_i64);
    more.append(&mut writer)?;
    writer.sync()?;
    let (_, recovered, _) = open_disk()?;
    assert_eq!(recovered.last(), Some(&more));
    assert_eq!(segment_name(0), "log-00000000000000000000");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rotations off the writer's thread

/// The writer and a syncing thread as a shard's worker drives them at `Durability::Synced`
/// (`crate::durable::store`), with segments of a few turns, the power cut at random moments
/// (rotations included): every turn the thread reported synced is recovered, what is recovered
/// is a prefix of the turns written, and the log goes on. The thread completes each rotation
/// (the old segment whole, the directory, the new header) before it syncs the new segment: a
/// thread that synced the new segment first would report turns that a torn old segment takes
/// back with it.
#[test]
fn a_power_cut_around_rotations_keeps_every_turn_the_sync_thread_reported() -> Result<(), Error> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use crate::durable::syncer::{Reports, Syncer};

    let cases = std::env::var("LOCKSTEP_POWER_CUTS").ok().and_then(|n| n.parse().ok()).unwrap_or(300u64);
    let (mut torn_before_newest, mut lost_reported_none, mut rotations) = (0, 0, 0);
    for case in 0..cases {
        let mut rng = Rng::new(case);
        let options = LogOptions { segment_bytes: 100 + rng.up_to(300), ..LogOptions::default() };
        let storage = SimStorage::default();
        let (mut writer, ..) = open::<i64, _>(&storage, options)?;
        let reported = Arc::new(AtomicU64::new(0));
        let theirs = reported.clone();
        // Relaxed: the thread is joined before the value is read.
        let on_synced = Box::new(move |synced: Result<u64, Error>| {
            if let Ok(frontier) = synced {
                theirs.fetch_max(frontier, Ordering::Relaxed);
            }
        });
        let handle = writer.sync_handle()?;
        let syncer = Syncer::start(0, handle, None, writer.tip().frontier, Reports::Frontier(on_synced))?;
        storage.cut_power_after(rng.up_to(250), case);
        let mut written: Vec<Owned<i64>> = Vec::new();
        let mut segment = writer.sequence();
        for _ in 0..80 {
            let turn = Owned::random(writer.tip(), &mut rng, small_i64);
            if turn.append(&mut writer).is_err() {
                break;
            }
            written.push(turn);
            let rotated = if writer.sequence() == segment {
                None
            } else {
                segment = writer.sequence();
                rotations += 1;
                Some((writer.sync_handle()?, writer.rotation()))
            };
            syncer.written(writer.tip().frontier, rotated);
            if rng.up_to(3) == 0 {
                std::thread::yield_now();
            }
        }
        drop(syncer);
        let acknowledged = reported.load(Ordering::Relaxed);
        let image = storage.after_power_cut().unwrap_or_else(|| storage.crash(case));
        let (mut reopened, recovered, report) = open::<i64, _>(&image, options)?;
        let end = recovered.last().map_or(0, |turn| turn.frontier);
        assert!(
            end >= acknowledged && written.starts_with(&recovered),
            "case {case}: recovered {} turns to {end}, {acknowledged} reported synced",
            recovered.len()
        );
        let before_newest = report.torn.as_ref().is_some_and(|t| t.damage != Damage::Unstarted);
        torn_before_newest += u32::from(report.dropped.is_some() && before_newest);
        lost_reported_none += u32::from(recovered.len() < written.len());
        let more = Owned::random(reopened.tip(), &mut rng, small_i64);
        more.append(&mut reopened)?;
        reopened.sync()?;
        let (after, _) = read_all::<i64, _>(&image)?;
        assert_eq!(after.len(), recovered.len() + 1, "case {case}");
    }
    println!(
        "{cases} power cuts, {rotations} rotations: {torn_before_newest} tore the segment before \
         the newest (the newest dropped whole), {lost_reported_none} lost unsynced turns"
    );
    assert!(torn_before_newest > 0 && lost_reported_none > 0);
    Ok(())
}

/// A rotation's sync failing on the syncing thread: reported once, as a typed error; the writer
/// returns the same error from its next sync (never retried); nothing written is lost to a
/// process that reopens.
#[test]
fn a_failed_rotation_sync_on_the_sync_thread_is_reported_and_ends_the_writer() -> Result<(), Error> {
    use crate::durable::syncer::{Reports, Syncer};

    for fault in [Fault::Eio, Fault::NoSpace] {
        let storage = SimStorage::default();
        let (mut writer, ..) =
            open::<i64, _>(&storage, LogOptions { segment_bytes: 1, ..LogOptions::default() })?;
        let (send, failures) = std::sync::mpsc::channel();
        let send = std::sync::Mutex::new(send);
        let on_failed = Box::new(move |error: Error| {
            let _ = send.lock().map(|send| send.send(error));
        });
        let handle = writer.sync_handle()?;
        let syncer = Syncer::start(0, handle, None, writer.tip().frontier, Reports::Failure(on_failed))?;
        let turns = random_turns(41, 4, small_i64);
        turns[0].append(&mut writer)?;
        storage.fail_next_dir_sync(fault);
        turns[1].append(&mut writer)?;
        assert_eq!(writer.sequence(), 1, "rotated");
        syncer.written(writer.tip().frontier, Some((writer.sync_handle()?, writer.rotation())));
        let error = failures.recv_timeout(std::time::Duration::from_secs(10)).ok();
        let kind =
            if fault == Fault::NoSpace { std::io::ErrorKind::StorageFull } else { std::io::ErrorKind::Other };
        assert_eq!(error.as_ref().and_then(io_kind), Some(kind), "{error:?}");
        drop(syncer);
        assert_eq!(writer.sync().err(), error, "the same error, not a second try");
        assert_eq!(turns[2].append(&mut writer).err(), error);
        drop(writer);
        let (_, recovered, _) = open::<i64, _>(&storage, small_segments())?;
        assert_eq!(recovered, turns[..2]);
    }
    Ok(())
}

/// Whole pipelines with segments of a few turns on a slow disk: images of what a power cut
/// would leave, taken at random moments while they run, and a real cut (every operation failing
/// from a random one on). At `Synced` every commit acknowledged before the cut survives; at
/// either durability what is lost is a suffix, never a hole. Some cuts tear the segment before
/// the newest (the test counts them, so it shows it tests them).
#[test]
fn a_power_cut_around_rotations_in_a_pipeline_loses_only_unacknowledged_commits() -> Result<(), Error> {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::pipeline::{commits_in, open_with, parts, ROOT};
    use crate::Durability;

    let cases = std::env::var("LOCKSTEP_POWER_CUTS").ok().and_then(|n| n.parse().ok()).unwrap_or(24u64);
    let (mut images, mut torn_before_newest) = (0, 0);
    for case in 0..cases {
        let durability = if case.is_multiple_of(2) { Durability::Synced } else { Durability::Written };
        let mut rng = Rng::new(case + 1000);
        // Batch files now and then (checkpoints of 16 commits) or never.
        let checkpoint_commits = if rng.up_to(1) == 0 { 16 } else { 1 << 40 };
        let options = LogOptions { segment_bytes: 120 + rng.up_to(200), checkpoint_commits };
        let storage = SimStorage::default();
        let mut issued: BTreeMap<u64, u64> = BTreeMap::new();
        // Each image with what was acknowledged before it was taken.
        let mut cut: Vec<(SimStorage, u64)> = Vec::new();
        let mut acknowledged = 0;
        {
            let pipeline = open_with(&storage, durability, options)?;
            // A slow disk: the worker writes on while a rotation's syncs are owed, so that the
            // cuts find that window.
            storage.set_sync_delay(Duration::from_micros(500));
            storage.cut_power_after(100 + rng.up_to(400), case);
            let mut producer = pipeline.producer()?;
            for value in 0..rng.up_to(200) {
                let Ok(commit) = producer.commit(parts(value)) else { break };
                issued.insert(commit, value);
                if value % 8 == 0 {
                    match pipeline.wait_durable(commit, Duration::from_secs(10)) {
                        Ok(frontier) => acknowledged = acknowledged.max(frontier),
                        Err(Error::Io { .. }) => break,
                        Err(other) => return Err(other),
                    }
                }
                if rng.up_to(15) == 0 {
                    cut.push((storage.crash(case * 1000 + value), acknowledged));
                }
            }
        }
        cut.push((storage.after_power_cut().unwrap_or_else(|| storage.crash(case)), acknowledged));
        for (image, acknowledged) in cut {
            images += 1;
            for shard in 0..2 {
                let dir = shard_dir(Path::new(ROOT), shard);
                let report = read_log(&image, &dir, shard, |_: LoggedTurn<u64>| Ok(()))?;
                let before_newest = report.torn.as_ref().is_some_and(|t| t.damage != Damage::Unstarted);
                torn_before_newest += u32::from(report.dropped.is_some() && before_newest);
            }
            let reopened = open_with(&image, durability, options)?;
            let (recovered, found) = commits_in(&reopened);
            if durability == Durability::Synced {
                assert!(
                    recovered >= acknowledged,
                    "case {case}: recovered {recovered} < acknowledged {acknowledged}"
                );
            }
            for commit in 1..=recovered {
                let value = issued.get(&commit);
                assert!(value.is_some(), "case {case}: commit {commit} never issued");
                let mut wanted = parts(value.copied().unwrap_or_default());
                wanted.sort();
                assert_eq!(found.get(&commit), Some(&wanted), "case {case}: commit {commit} not whole");
            }
            assert!(
                found.keys().all(|&commit| commit <= recovered),
                "case {case}: commits past the frontier"
            );
        }
    }
    println!(
        "{cases} pipelines, {images} power cuts: {torn_before_newest} logs torn before their newest segment"
    );
    assert!(torn_before_newest > 0);
    Ok(())
}

/// A rotation's directory sync failing on the syncing thread stops durability with a typed
/// error, at either durability (at `Written` that thread syncs nothing else); what was
/// acknowledged survives reopening.
#[test]
fn a_failed_rotation_sync_in_a_pipeline_stops_durability() -> Result<(), Error> {
    use std::time::Duration;

    use super::pipeline::{commits_in, open_with, parts};
    use crate::Durability;

    for durability in [Durability::Written, Durability::Synced] {
        for fault in [Fault::Eio, Fault::NoSpace] {
            let storage = SimStorage::default();
            // No batch files: only rotations sync the directory.
            let options = LogOptions { segment_bytes: 200, checkpoint_commits: 1 << 40 };
            let pipeline = open_with(&storage, durability, options)?;
            let mut producer = pipeline.producer()?;
            let mut last = 0;
            for value in 0..10 {
                last = producer.commit(parts(value))?;
            }
            let acknowledged = pipeline.wait_durable(last, Duration::from_secs(10))?;
            storage.fail_next_dir_sync(fault);
            let mut error = None;
            // At `Written` the frontier moves on the write: the error is seen once the thread
            // reported it, by a commit or a wait.
            for value in 10..100_000 {
                let refused = producer
                    .commit(parts(value))
                    .and_then(|commit| pipeline.wait_durable(commit, Duration::from_secs(10)));
                if let Err(refused) = refused {
                    error = Some(refused);
                    break;
                }
            }
            let kind = if fault == Fault::NoSpace {
                std::io::ErrorKind::StorageFull
            } else {
                std::io::ErrorKind::Other
            };
            assert_eq!(error.as_ref().and_then(io_kind), Some(kind), "{durability:?} {fault:?}: {error:?}");
            drop(producer);
            drop(pipeline);
            let reopened = open_with(&storage, durability, options)?;
            let (recovered, _) = commits_in(&reopened);
            assert!(recovered >= acknowledged, "recovered {recovered} < acknowledged {acknowledged}");
        }
    }
    Ok(())
}

/// While a rotation owes its syncs, the segment before it is not released to go below the
/// batch files, even if they cover it: the new segment's header may not survive a power cut
/// yet, and with the older one gone the log would lose where it starts. Once the syncs are done
/// it goes, and every power cut after its removal leaves a log reaching the files' end.
#[test]
fn a_segment_stays_while_the_rotation_after_it_owes_its_syncs() -> Result<(), Error> {
    let turns = random_turns(42, 40, small_i64);
    let storage = SimStorage::default();
    let (mut writer, ..) = open::<i64, _>(&storage, small_segments())?;
    let mut before = writer.tip();
    let mut rotated = None;
    for turn in &turns {
        let sequence = writer.sequence();
        writer.sync()?;
        turn.append(&mut writer)?;
        if writer.sequence() != sequence {
            rotated = Some(before);
            break;
        }
        before = writer.tip();
    }
    let Some(start) = rotated else { panic!("no rotation in {} turns", turns.len()) };
    let segments = segment_files(&storage).len();
    // The batch files reach where the new segment starts: everything before it is theirs. What
    // is released goes (as the saving thread removes it), and a power cut follows.
    let mut removed = 0;
    for owed in [true, false] {
        if !owed {
            // As the syncing thread does it at `Written`: the rotation's syncs and nothing more.
            writer.rotation().map_or(Ok(false), |rotation| rotation.complete())?;
        }
        let released = writer.release(start);
        crate::durable::writer::remove_segments(&storage, &released)?;
        removed += released.len();
        for seed in 0..50 {
            let image = storage.crash(seed);
            let each = |_: LoggedTurn<i64>| Ok(());
            let (_, recovered) =
                LogWriter::open_at(image, &dir(), SHARD, small_segments(), start, u64::MAX, each)?;
            assert!(
                recovered.tip.frontier >= start.frontier,
                "owed {owed}, seed {seed}: the log ends at {:?}, below the files' end at {start:?}",
                recovered.tip
            );
        }
    }
    assert_eq!(removed, segments - 1, "all but the newest go once the rotation is done");
    Ok(())
}

/// A rotation the writer completed itself (its own sync) before the syncing thread took it:
/// the thread still syncs the turns written since, before it reports them. Only syncs it did
/// itself, after it took the frontier, cover that frontier.
#[test]
fn a_rotation_completed_elsewhere_does_not_cover_later_turns() -> Result<(), Error> {
    use crate::durable::syncer::{Reports, Syncer};

    let storage = SimStorage::default();
    let (mut writer, ..) = open::<i64, _>(&storage, small_segments())?;
    let (send, reports) = std::sync::mpsc::channel();
    let send = std::sync::Mutex::new(send);
    let on_synced = Box::new(move |synced: Result<u64, Error>| {
        let _ = send.lock().map(|send| send.send(synced));
    });
    let handle = writer.sync_handle()?;
    let syncer = Syncer::start(0, handle, None, writer.tip().frontier, Reports::Frontier(on_synced))?;
    let mut turns = Vec::new();
    let mut rng = Rng::new(43);
    while writer.sequence() == 0 {
        let turn = Owned::random(writer.tip(), &mut rng, small_i64);
        turn.append(&mut writer)?;
        turns.push(turn);
    }
    let rotation = writer.rotation();
    writer.sync()?;
    assert!(rotation.as_ref().is_some_and(|rotation| rotation.is_done()), "the writer's sync did them");
    // A small turn, in the same segment.
    let last = Owned::<i64> { frontier: writer.tip().frontier + 1, names: vec![], rows: vec![] };
    last.append(&mut writer)?;
    turns.push(last);
    assert_eq!(writer.sequence(), 1);
    let frontier = writer.tip().frontier;
    syncer.written(frontier, Some((writer.sync_handle()?, rotation)));
    let reported = reports.recv_timeout(std::time::Duration::from_secs(10)).ok();
    assert_eq!(reported, Some(Ok(frontier)));
    drop(syncer);
    for seed in 0..20 {
        let (_, recovered, _) = open::<i64, _>(&storage.crash(seed), small_segments())?;
        assert_eq!(recovered, turns, "seed {seed}: a turn reported synced was lost");
    }
    Ok(())
}
