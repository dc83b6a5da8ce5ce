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
    // A sync failing inside a rotation ends the writer too.
    let storage = SimStorage::default();
    let (mut writer, ..) =
        open::<i64, _>(&storage, LogOptions { segment_bytes: 1, ..LogOptions::default() })?;
    turns[0].append(&mut writer)?;
    storage.fail_next_sync(Fault::Eio);
    assert!(turns[1].append(&mut writer).is_err() && writer.failed().is_some());
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
