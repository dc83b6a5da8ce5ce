//! The log end to end: round trips through every codec type, torn tails cut at every offset,
//! rotten bytes, power cuts at random moments, injected write and sync failures, and the real
//! file system.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::durable::format::{frame_at, Damage, LoggedTurn, Tip, Turn, FRAME_HEADER, HEADER_LEN};
use crate::durable::reader::{read_log, segment_name, shard_dir, Recovered};
use crate::durable::sim::{Fault, Rng, SimStorage};
use crate::durable::storage::{DiskStorage, Storage};
use crate::durable::writer::{LogOptions, LogWriter};
use crate::merge::{Concat, LastWriteWins, Merge, Sum};
use crate::shard::sort::Row;
use crate::Error;

const SHARD: u32 = 3;

fn dir() -> PathBuf {
    shard_dir(Path::new("/db"), SHARD)
}

fn small_segments() -> LogOptions {
    LogOptions { segment_bytes: 400 }
}

/// A record type the tests can make, clone and compare.
trait Record: Serialize + DeserializeOwned + Clone + PartialEq + Debug {}
impl<R: Serialize + DeserializeOwned + Clone + PartialEq + Debug> Record for R {}

/// A turn as the tests hold it.
#[derive(Debug, Clone, PartialEq)]
struct Owned<R> {
    frontier: u64,
    names: Vec<String>,
    rows: Vec<(u64, u32, R)>,
}

impl<R: Record> Owned<R> {
    fn append<S: Storage>(&self, writer: &mut LogWriter<S>) -> Result<(), Error> {
        let rows: Vec<Row<R>> = self
            .rows
            .iter()
            .map(|(commit, id, record)| Row { commit: *commit, id: *id, record: record.clone() })
            .collect();
        writer.append(&Turn { frontier: self.frontier, names: &self.names, rows: &rows })
    }

    fn from_logged(turn: LoggedTurn<R>) -> Self {
        let rows = turn.rows.into_iter().map(|row| (row.commit, row.id, row.record)).collect();
        Owned { frontier: turn.frontier, names: turn.names, rows }
    }

    /// A random turn after `tip`: a few new names (at least one while none exist), rows of
    /// random sealed commits and named paths, in no particular order. Never a turn with nothing
    /// to say (the writer skips those).
    fn random(tip: Tip, rng: &mut Rng, record: fn(&mut Rng) -> R) -> Self {
        let frontier = tip.frontier + rng.up_to(6);
        let new = rng.up_to(2) as u32 + u32::from(tip.names == 0 || frontier == tip.frontier);
        let names = (tip.names..tip.names + new).map(|id| format!("/path/{id}")).collect();
        let paths = u64::from(tip.names + new);
        let rows = if frontier == tip.frontier {
            Vec::new()
        } else {
            let span = frontier - tip.frontier - 1;
            let count = rng.up_to(10);
            (0..count)
                .map(|_| (tip.frontier + 1 + rng.up_to(span), rng.up_to(paths - 1) as u32, record(rng)))
                .collect()
        };
        Owned { frontier, names, rows }
    }

    fn tip_after(&self, tip: Tip) -> Tip {
        Tip { frontier: self.frontier, names: tip.names + self.names.len() as u32 }
    }
}

/// `count` random turns from the start of a log.
fn random_turns<R: Record>(seed: u64, count: usize, record: fn(&mut Rng) -> R) -> Vec<Owned<R>> {
    let mut rng = Rng::new(seed);
    let mut tip = Tip::default();
    (0..count)
        .map(|_| {
            let turn = Owned::random(tip, &mut rng, record);
            tip = turn.tip_after(tip);
            turn
        })
        .collect()
}

fn small_i64(rng: &mut Rng) -> i64 {
    rng.up_to(200) as i64 - 100
}

/// Every turn of the log, read without changing it.
fn read_all<R: Record, S: Storage>(storage: &S) -> Result<(Vec<Owned<R>>, Recovered), Error> {
    let mut turns = Vec::new();
    let recovered = read_log(storage, &dir(), SHARD, |turn| {
        turns.push(Owned::from_logged(turn));
        Ok(())
    })?;
    Ok((turns, recovered))
}

/// An opened log: the writer, every turn recovered, and the report.
type Opened<S, R> = (LogWriter<S>, Vec<Owned<R>>, Recovered);

/// Opens the log.
fn open<R: Record, S: Storage>(storage: &S, options: LogOptions) -> Result<Opened<S, R>, Error> {
    let mut turns = Vec::new();
    let (writer, recovered) = LogWriter::open(storage.clone(), &dir(), SHARD, options, |turn| {
        turns.push(Owned::from_logged(turn));
        Ok(())
    })?;
    Ok((writer, turns, recovered))
}

/// A log of `turns` written with small segments, synced at the end.
fn written(turns: &[Owned<i64>]) -> Result<SimStorage, Error> {
    let storage = SimStorage::default();
    let (mut writer, ..) = open::<i64, _>(&storage, small_segments())?;
    for turn in turns {
        turn.append(&mut writer)?;
    }
    writer.sync()?;
    Ok(storage)
}

/// The log's segment files, oldest first.
fn segment_files(storage: &SimStorage) -> Vec<PathBuf> {
    let mut names = storage.list(&dir()).unwrap_or_default();
    names.sort();
    names.into_iter().map(|name| dir().join(name)).collect()
}

/// The (start, end) of each intact frame of a segment.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut at = HEADER_LEN;
    let mut frames = Vec::new();
    while let Ok(payload) = frame_at(bytes, at) {
        frames.push((at, at + FRAME_HEADER + payload.len()));
        at += FRAME_HEADER + payload.len();
    }
    frames
}

fn corrupt_at(result: Result<impl Debug, Error>) -> Option<(String, u64)> {
    match result {
        Err(Error::Corrupt { file, offset, .. }) => Some((file, offset)),
        _ => None,
    }
}

fn name(path: &Path) -> String {
    path.display().to_string()
}

// ---------------------------------------------------------------------------------------------
// Round trips

fn round_trip<R: Record>(record: fn(&mut Rng) -> R) -> Result<(), Error> {
    let turns = random_turns(7, 200, record);
    let storage = SimStorage::default();
    let (mut writer, recovered, _) = open::<R, _>(&storage, small_segments())?;
    assert!(recovered.is_empty());
    for (i, turn) in turns.iter().enumerate() {
        turn.append(&mut writer)?;
        if i % 7 == 0 {
            assert_eq!(writer.sync()?, turn.frontier);
        }
    }
    let (back, report) = read_all::<R, _>(&storage)?;
    assert_eq!(back, turns);
    assert!(report.segments > 3, "rotated: {} segments", report.segments);
    assert_eq!((report.torn, report.tip), (None, writer.tip()));
    for file in segment_files(&storage) {
        let bytes = storage.bytes(&file).map_err(|e| Error::io("reading", &e))?;
        let frames = frames(&bytes);
        assert!(bytes.len() as u64 <= small_segments().segment_bytes || frames.len() == 1, "{}", name(&file));
    }
    // Opened again, it goes on where it stopped.
    drop(writer);
    let (mut writer, again, report) = open::<R, _>(&storage, small_segments())?;
    assert_eq!(again, back);
    let more = Owned::random(report.tip, &mut Rng::new(99), record);
    more.append(&mut writer)?;
    let (all, _) = read_all::<R, _>(&storage)?;
    assert_eq!(all.last(), Some(&more));
    assert_eq!(all.len(), back.len() + 1);
    Ok(())
}

/// A user's own record type: a derive is all it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    value: f64,
    tags: Vec<u16>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Gauge,
    Counter { reset: bool },
}

#[test]
fn every_codec_type_round_trips_across_rotations() -> Result<(), Error> {
    round_trip::<<Sum as Merge>::Record>(small_i64)?;
    round_trip::<<Sum as Merge>::Record>(|rng| rng.next_u64() as i64)?;
    round_trip::<<Concat<u64> as Merge>::Record>(|rng| rng.next_u64() >> rng.up_to(63))?;
    round_trip::<<Concat<Vec<u8>> as Merge>::Record>(|rng| {
        vec![rng.up_to(255) as u8; rng.up_to(20) as usize]
    })?;
    round_trip::<<Concat<String> as Merge>::Record>(|rng| "é".repeat(rng.up_to(5) as usize))?;
    round_trip::<<LastWriteWins<String, u64> as Merge>::Record>(|rng| {
        (format!("k{}", rng.up_to(9)), rng.up_to(1000))
    })?;
    round_trip::<()>(|_| ())?;
    round_trip::<Reading>(|rng| Reading {
        sensor: format!("s{}", rng.up_to(3)),
        value: rng.up_to(1000) as f64 / 7.0,
        tags: (0..rng.up_to(3)).map(|t| t as u16).collect(),
        kind: if rng.up_to(1) == 0 { Kind::Gauge } else { Kind::Counter { reset: rng.up_to(1) == 0 } },
    })
}

#[test]
fn empty_turns_write_nothing_and_names_alone_are_logged() -> Result<(), Error> {
    let storage = SimStorage::default();
    let (mut writer, ..) = open::<i64, _>(&storage, LogOptions::default())?;
    let before =
        segment_files(&storage).iter().map(|f| storage.bytes(f).map(|b| b.len())).sum::<Result<usize, _>>();
    Owned::<i64> { frontier: 0, names: vec![], rows: vec![] }.append(&mut writer)?;
    let after =
        segment_files(&storage).iter().map(|f| storage.bytes(f).map(|b| b.len())).sum::<Result<usize, _>>();
    assert_eq!(before.ok(), after.ok());
    let names = Owned::<i64> { frontier: 0, names: vec!["/a".into(), "/b".into()], rows: vec![] };
    names.append(&mut writer)?;
    assert_eq!(writer.tip(), Tip { frontier: 0, names: 2 });
    assert_eq!(read_all::<i64, _>(&storage)?.0, [names]);
    Ok(())
}

/// The target: at most 8 log bytes per record for `Sum` records, one part per commit,
/// with 10,000 paths, in a turn of 4,096 commits.
#[test]
fn log_bytes_per_record() -> Result<(), Error> {
    const PATHS: u32 = 10_000;
    const COMMITS: u64 = 4_096;
    let storage = SimStorage::default();
    let (mut writer, ..) = open::<i64, _>(&storage, LogOptions::default())?;
    let segment = segment_files(&storage).pop().unwrap_or_default();
    let size = || storage.bytes(&segment).map(|b| b.len()).map_err(|e| Error::io("reading", &e));
    let names: Vec<String> = (0..PATHS).map(|id| format!("/sensors/{id:05}")).collect();
    let mut rng = Rng::new(1);
    let mut measure = |producers: u64, names: &[String], writer: &mut LogWriter<SimStorage>| {
        let base = writer.tip().frontier;
        // Each producer's queue holds its commits in order; the worker drains queue by queue.
        let rows: Vec<Row<i64>> = (0..producers)
            .flat_map(|p| (base + 1 + p..=base + COMMITS).step_by(producers as usize))
            .map(|commit| Row {
                commit,
                id: rng.up_to(u64::from(PATHS) - 1) as u32,
                record: small_i64(&mut rng),
            })
            .collect();
        let before = size()?;
        writer.append(&Turn { frontier: base + COMMITS, names, rows: &rows })?;
        Ok::<_, Error>((size()? - before) as f64 / COMMITS as f64)
    };
    let first = measure(1, &names, &mut writer)?;
    let one = measure(1, &[], &mut writer)?;
    let four = measure(4, &[], &mut writer)?;
    let sixteen = measure(16, &[], &mut writer)?;
    println!(
        "log bytes per record (Sum, {PATHS} paths, {COMMITS} commits a turn, 1 part a commit): \
         {one:.3} (1 producer), {four:.3} (4), {sixteen:.3} (16); {first:.3} in the turn naming all paths"
    );
    for figure in [one, four, sixteen] {
        assert!(figure <= 8.0, "{figure:.3} log bytes per record, over the target of 8");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Torn tails

/// The newest segment cut at every offset of its last two frames (and of its header): recovery
/// yields exactly the turns before the cut, reports the torn tail, and the log goes on.
#[test]
fn a_tail_cut_at_every_offset_leaves_the_turns_before_it() -> Result<(), Error> {
    let turns = random_turns(11, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    let newest = files.last().cloned().unwrap_or_default();
    let bytes = storage.bytes(&newest).map_err(|e| Error::io("reading", &e))?;
    let frames = frames(&bytes);
    assert!(frames.len() >= 2, "the newest segment holds two turns");
    let (older, _) = read_all::<i64, _>(&storage)?;
    let before_newest = older.len() - frames.len();
    let from = frames[frames.len() - 2].0;
    let cuts = (0..HEADER_LEN).chain(from..bytes.len());
    for cut in cuts {
        let storage = storage.fork();
        storage.put_bytes(&newest, &bytes[..cut]).map_err(|e| Error::io("writing", &e))?;
        let whole = frames.iter().filter(|&&(_, end)| end <= cut).count();
        let expected = if cut < HEADER_LEN { before_newest } else { before_newest + whole };
        let (read, report) = read_all::<i64, _>(&storage)?;
        assert_eq!(read, older[..expected], "cut at {cut}");
        let boundary = cut == HEADER_LEN || frames.iter().any(|&(_, end)| end == cut);
        match &report.torn {
            None => assert!(boundary, "cut at {cut}: a torn tail not reported"),
            Some(torn) => {
                assert!(!boundary, "cut at {cut}: a clean end reported torn");
                assert_eq!(torn.file, name(&newest));
                assert_eq!(torn.offset + torn.bytes, cut as u64);
                let expected_damage = if cut < HEADER_LEN { Damage::Unstarted } else { torn.damage };
                assert_eq!(torn.damage, expected_damage);
            }
        }
        // Opening cuts the tail off and goes on.
        let (mut writer, recovered, _) = open::<i64, _>(&storage, small_segments())?;
        assert_eq!(recovered, read);
        let more = Owned::random(writer.tip(), &mut Rng::new(cut as u64), small_i64);
        more.append(&mut writer)?;
        writer.sync()?;
        let (after, report) = read_all::<i64, _>(&storage)?;
        assert_eq!(
            (after.len(), after.last(), report.torn),
            (expected + 1, Some(&more), None),
            "cut at {cut}"
        );
    }
    Ok(())
}

#[test]
fn a_zero_filled_tail_is_dropped() -> Result<(), Error> {
    let turns = random_turns(12, 30, small_i64);
    let storage = written(&turns)?;
    let (all, _) = read_all::<i64, _>(&storage)?;
    let newest = segment_files(&storage).pop().unwrap_or_default();
    let bytes = storage.bytes(&newest).map_err(|e| Error::io("reading", &e))?;
    for zeros in [1, FRAME_HEADER - 1, FRAME_HEADER, 100, 4096] {
        let storage = storage.fork();
        storage
            .put_bytes(&newest, &[&bytes[..], &vec![0; zeros]].concat())
            .map_err(|e| Error::io("w", &e))?;
        let (read, report) = read_all::<i64, _>(&storage)?;
        assert_eq!(read, all);
        let torn = report.torn.map(|t| (t.offset, t.bytes, t.damage));
        assert_eq!(torn, Some((bytes.len() as u64, zeros as u64, Damage::Zeroed)));
        let (_, recovered, _) = open::<i64, _>(&storage, small_segments())?;
        assert_eq!(recovered, all);
    }
    // Half a frame, then zeros (a page written in part): the half frame goes too.
    let (start, end) = frames(&bytes).pop().unwrap_or_default();
    let half = [&bytes[..(start + end) / 2], &vec![0; 512]].concat();
    storage.put_bytes(&newest, &half).map_err(|e| Error::io("writing", &e))?;
    let (read, report) = read_all::<i64, _>(&storage)?;
    assert_eq!(read, all[..all.len() - 1]);
    assert_eq!(report.torn.map(|t| t.offset), Some(start as u64));
    Ok(())
}

/// One flipped bit anywhere in the newest segment's last frame: that turn is a torn tail.
#[test]
fn a_flipped_bit_in_the_last_frame_is_a_torn_tail() -> Result<(), Error> {
    let turns = random_turns(13, 30, small_i64);
    let storage = written(&turns)?;
    let (all, _) = read_all::<i64, _>(&storage)?;
    let newest = segment_files(&storage).pop().unwrap_or_default();
    let bytes = storage.bytes(&newest).map_err(|e| Error::io("reading", &e))?;
    let (start, end) = frames(&bytes).pop().unwrap_or_default();
    for at in start..end {
        let mut flipped = bytes.clone();
        flipped[at] ^= 1 << (at % 8);
        let storage = storage.fork();
        storage.put_bytes(&newest, &flipped).map_err(|e| Error::io("writing", &e))?;
        let (read, report) = read_all::<i64, _>(&storage)?;
        assert_eq!(read, all[..all.len() - 1], "flip at {at}");
        assert_eq!(report.torn.map(|t| t.offset), Some(start as u64), "flip at {at}");
    }
    Ok(())
}

/// One flipped bit in any earlier frame of the newest segment, or anywhere in an older segment:
/// corrupt, naming the file and the frame (or header) it hit.
#[test]
fn a_flipped_bit_anywhere_else_is_corruption() -> Result<(), Error> {
    let turns = random_turns(14, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    assert!(files.len() >= 3);
    for (i, file) in files.iter().enumerate() {
        let newest = i + 1 == files.len();
        let bytes = storage.bytes(file).map_err(|e| Error::io("reading", &e))?;
        let frames = frames(&bytes);
        let frames = if newest { &frames[..frames.len() - 1] } else { &frames[..] };
        let header = (0..HEADER_LEN).map(|at| (at, 0));
        let hits =
            header.chain(frames.iter().flat_map(|&(start, end)| (start..end).map(move |at| (at, start))));
        for (at, offset) in hits {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << (at % 8);
            let storage = storage.fork();
            storage.put_bytes(file, &flipped).map_err(|e| Error::io("writing", &e))?;
            let result = read_all::<i64, _>(&storage);
            if (8..12).contains(&at) {
                // The version field: another version, as far as anyone can tell.
                assert!(matches!(result, Err(Error::Incompatible { .. })), "flip at {at} of {}", name(file));
            } else {
                assert_eq!(
                    corrupt_at(result),
                    Some((name(file), offset as u64)),
                    "flip at {at} of {}",
                    name(file)
                );
            }
            // Opening refuses too, and changes nothing.
            assert!(open::<i64, _>(&storage, small_segments()).is_err());
            assert_eq!(storage.bytes(file).ok(), Some(flipped));
        }
    }
    Ok(())
}

#[test]
fn missing_or_foreign_segments_are_corruption() -> Result<(), Error> {
    let turns = random_turns(15, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    assert!(files.len() >= 4);
    let io = |e: std::io::Error| Error::io("sim", &e);

    // A segment deleted from the middle.
    let gap = storage.fork();
    gap.remove(&files[1]).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&gap)), Some((name(&files[1]), 0)));
    assert!(open::<i64, _>(&gap, small_segments()).is_err());

    // An older segment that lost whole turns at its end (cut at a frame boundary): the next
    // segment does not start where it ends.
    let short = storage.fork();
    let bytes = short.bytes(&files[1]).map_err(io)?;
    let (last, _) = frames(&bytes).pop().unwrap_or_default();
    short.put_bytes(&files[1], &bytes[..last]).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&short)), Some((name(&files[2]), 0)));

    // Another shard's segment, or one under another number.
    let foreign = storage.fork();
    let second = foreign.bytes(&files[2]).map_err(io)?;
    foreign.put_bytes(&files[1], &second).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&foreign)), Some((name(&files[1]), 0)));
    let other_shard = read_log(&storage, &dir(), SHARD + 1, |_: LoggedTurn<i64>| Ok(()));
    assert_eq!(corrupt_at(other_shard), Some((name(&files[0]), 0)));

    // Not a log segment at all, and another format version.
    let magic = storage.fork();
    magic.put_bytes(&files[0], &[b"not a log, just text".repeat(3)].concat()).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&magic)), Some((name(&files[0]), 0)));
    let version = storage.fork();
    let mut bytes = version.bytes(&files[0]).map_err(io)?;
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    version.put_bytes(&files[0], &bytes).map_err(io)?;
    let refused = read_all::<i64, _>(&version).err();
    assert!(
        matches!(&refused, Some(Error::Incompatible { file, why }) if *file == name(&files[0]) && why.contains("version 2"))
    );

    // An older segment whose header is gone is no torn tail either.
    let unstarted = storage.fork();
    unstarted.put_bytes(&files[1], &[]).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&unstarted)), Some((name(&files[1]), 0)));

    // Other files are not the log's business.
    let others = storage.fork();
    for stranger in ["notes.txt", "log-1", "log-0000000000000000000x", "batch-0001"] {
        others.create(&dir().join(stranger)).map_err(io)?;
    }
    assert_eq!(read_all::<i64, _>(&others)?.0, read_all::<i64, _>(&storage)?.0);
    Ok(())
}

/// A payload under a good checksum that is not a valid turn is corruption, even at the tail.
#[test]
fn an_intact_frame_that_does_not_decode_is_corruption() -> Result<(), Error> {
    let storage = written(&random_turns(16, 5, small_i64))?;
    let newest = segment_files(&storage).pop().unwrap_or_default();
    let bytes = storage.bytes(&newest).map_err(|e| Error::io("reading", &e))?;
    // Payloads (frontier step, names, rows: commit step, id, record) that break a rule each.
    let payloads: [(&str, &[u8]); 6] = [
        ("a path id never named", &[1, 0, 1, 2, 0xe8, 0x07, 2]),
        ("a commit above the turn's frontier", &[1, 0, 1, 4, 0, 2]),
        ("a commit at the tip's frontier (sealed before)", &[1, 0, 1, 0, 0, 2]),
        ("a name that is not UTF-8", &[1, 1, 1, 0xff, 0]),
        ("bytes after the rows", &[1, 0, 0, 9]),
        ("a record cut short", &[1, 0, 1, 2, 0, 0x80]),
    ];
    for (why, payload) in payloads {
        let mut frame = Vec::new();
        let start = crate::durable::format::open_frame(&mut frame);
        frame.extend_from_slice(payload);
        assert_eq!(crate::durable::format::seal_frame(&mut frame, start), Ok(()));
        let storage = storage.fork();
        storage.put_bytes(&newest, &[&bytes[..], &frame].concat()).map_err(|e| Error::io("writing", &e))?;
        assert_eq!(
            corrupt_at(read_all::<i64, _>(&storage)),
            Some((name(&newest), bytes.len() as u64)),
            "{why}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Power cuts and kills

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
        let options = LogOptions { segment_bytes: 150 + rng.up_to(600) };
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
    let (mut writer, ..) = open::<i64, _>(&storage, LogOptions { segment_bytes: 1 })?;
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
