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
    LogOptions { segment_bytes: 400, ..LogOptions::default() }
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

mod damage;
mod faults;
mod files;
mod pieces;
mod pipeline;
mod sink;
mod window;

/// The turns a log cut at `cut` must hold: those up to it, then the first past it keeping its
/// rows up to `cut` (as a turn ending at `cut`, with its names), if it has anything left to say.
fn cut_turns(turns: &[Owned<i64>], cut: u64) -> Vec<Owned<i64>> {
    let mut kept: Vec<Owned<i64>> = turns.iter().take_while(|t| t.frontier <= cut).cloned().collect();
    if let Some(next) = turns.get(kept.len()) {
        let before = kept.last().map_or(0, |t| t.frontier);
        let rows: Vec<_> = next.rows.iter().filter(|(c, ..)| *c <= cut).cloned().collect();
        if cut > before || !next.names.is_empty() || !rows.is_empty() {
            kept.push(Owned { frontier: cut.max(before), names: next.names.clone(), rows });
        }
    }
    kept
}

/// Cutting a log at every frontier it passes (recovery cuts every shard at the lowest end):
/// what is handed over, what stays on disk and what comes after are exactly the log cut there,
/// and a power cut anywhere during the cut's own writes recovers to the same cut, or to the
/// log as it was (which the next recovery cuts again).
#[test]
fn a_log_cut_at_any_frontier_holds_exactly_the_turns_up_to_it() -> Result<(), Error> {
    let turns = random_turns(11, 40, small_i64);
    let end = turns.last().map_or(0, |t| t.frontier);
    for cut in 0..=end {
        let storage = written(&turns)?;
        let wanted = cut_turns(&turns, cut);
        let mut handed = Vec::new();
        let (mut writer, recovered) = LogWriter::open_at(
            storage.clone(),
            &dir(),
            SHARD,
            small_segments(),
            Tip::default(),
            cut,
            |turn| {
                handed.push(Owned::from_logged(turn));
                Ok(())
            },
        )?;
        assert_eq!(handed, wanted, "handed over, cut at {cut}");
        assert_eq!(recovered.tip.frontier, cut.min(end).max(wanted.last().map_or(0, |t| t.frontier)));
        // The next turn continues from the cut, and the log reads as cut, then continued.
        let next = Owned { frontier: cut + 3, names: vec!["/after".into()], rows: vec![(cut + 1, 0, 7)] };
        next.append(&mut writer)?;
        writer.sync()?;
        let (read, _) = read_all::<i64, _>(&storage)?;
        let mut expected = wanted.clone();
        expected.push(next);
        assert_eq!(read, expected, "on disk after the cut at {cut} and one more turn");

        // A power cut during the cut's own removals, truncation and writes.
        for ops in 0..8 {
            let storage = written(&turns)?;
            storage.cut_power_after(ops, cut * 31 + ops);
            let _ = LogWriter::open_at(
                storage.clone(),
                &dir(),
                SHARD,
                small_segments(),
                Tip::default(),
                cut,
                |_: LoggedTurn<i64>| Ok(()),
            );
            let Some(after) = storage.after_power_cut() else { continue };
            let (read, _) = read_all::<i64, _>(&after)?;
            assert!(
                read == wanted || read == turns,
                "a power cut during the cut at {cut} after {ops} operations left {} turns",
                read.len()
            );
            let mut again = Vec::new();
            LogWriter::open_at(after, &dir(), SHARD, small_segments(), Tip::default(), cut, |turn| {
                again.push(Owned::from_logged(turn));
                Ok(())
            })?;
            assert_eq!(again, wanted, "cutting again after the power cut at {cut}");
        }
    }
    Ok(())
}
