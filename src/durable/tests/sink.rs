//! A durable pipeline's sink: every flush-level segment reaches it at least once across a
//! crash, with the right content; what it still refuses at shutdown is handed back and kept,
//! and the next open delivers it; no batch file is saved over a segment the sink has not taken.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::pipeline::{builder, commits_in, parts, small_segments};
use crate::durable::checkpoint;
use crate::durable::reader::shard_dir;
use crate::durable::sim::{Rng, SimStorage};
use crate::merge::Concat;
use crate::tier::Geometry;
use crate::{Durability, Error, SegmentInfo, Sink, SinkError};

/// What a sink was given: path, segment, output.
type Delivered = Vec<(String, SegmentInfo, Vec<(u64, u64)>)>;

/// Records every write it takes; refuses every write while `refusing` (its process is dead, or
/// its destination is down), or once the power of `powered` is cut (its process died with it).
#[derive(Clone, Default)]
struct Recording {
    taken: Arc<Mutex<Delivered>>,
    refusing: Arc<AtomicBool>,
    powered: Option<SimStorage>,
}

impl Sink<Vec<(u64, u64)>> for Recording {
    fn write(&self, path: &str, segment: SegmentInfo, output: &Vec<(u64, u64)>) -> Result<(), SinkError> {
        // The lock first: a write is taken or refused whole, before or after `refusing` is set.
        let mut taken = self.taken.lock().map_err(|_| "poisoned")?;
        let dead = self.powered.as_ref().is_some_and(|storage| storage.after_power_cut().is_some());
        if self.refusing.load(Ordering::SeqCst) || dead {
            return Err("refused (test)".into());
        }
        taken.push((path.to_owned(), segment, output.clone()));
        Ok(())
    }
}

impl Recording {
    fn refuse(&self, refusing: bool) {
        let _guard = self.taken.lock();
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    fn taken(&self) -> Delivered {
        self.taken.lock().map(|taken| taken.clone()).unwrap_or_default()
    }
}

/// Checks `delivered` against the commits `found` up to `frontier`: every top-level block (8
/// commits) up to the last whole one, of every path with data there, delivered at least once,
/// and every delivery holding exactly its path's records of its range.
fn check(delivered: &Delivered, found: &BTreeMap<u64, Vec<(String, u64)>>, frontier: u64, case: &str) {
    let mut wanted: BTreeMap<(String, u64), Vec<(u64, u64)>> = BTreeMap::new();
    for (&commit, parts) in found {
        for (path, record) in parts {
            wanted.entry((path.clone(), (commit - 1) / 8 * 8 + 1)).or_default().push((commit, *record));
        }
    }
    let mut seen = BTreeSet::new();
    for (path, segment, output) in delivered {
        assert_eq!(segment.level, 3, "{case}: flush-level segments only");
        let mut output = output.clone();
        output.sort();
        let mut expected = wanted.get(&(path.clone(), segment.start)).cloned().unwrap_or_default();
        expected.sort();
        assert_eq!(output, expected, "{case}: {path} {segment:?} delivered with other content");
        seen.insert((path.clone(), segment.start));
    }
    let whole = frontier / 8 * 8;
    for (path, start) in wanted.keys().filter(|(_, start)| start + 7 <= whole) {
        assert!(seen.contains(&(path.clone(), *start)), "{case}: {path} at {start} never delivered");
    }
}

/// The process dies (the sink with it) at a random moment: the file system keeps what was
/// written; the next process delivers what the dead one may not have.
#[test]
fn every_flush_level_segment_reaches_the_sink_at_least_once_across_a_kill() -> Result<(), Error> {
    for case in 0..12u64 {
        let mut rng = Rng::new(case);
        let storage = SimStorage::default();
        let sink = Recording::default();
        let durability = if case % 2 == 0 { Durability::Written } else { Durability::Synced };
        let pipeline = builder(&storage, durability, small_segments()).sink(sink.clone()).build()?;
        let mut producer = pipeline.producer()?;
        let kill_at = 20 + rng.up_to(150);
        let mut issued = Vec::new();
        for value in 0..kill_at {
            issued.push(producer.commit(parts(value))?);
        }
        // Some of it made visible (and handed to the sink) before the kill, the rest racing it.
        let seen = issued[rng.up_to(kill_at - 1) as usize];
        pipeline.wait_sealed(seen, Duration::from_secs(10))?;
        // The kill: the sink takes nothing more, and the disk is what the process left.
        sink.refuse(true);
        let disk = storage.kill();
        drop(producer);
        drop(pipeline);
        let second = Recording { taken: sink.taken.clone(), ..Recording::default() };
        let reopened = builder(&disk, durability, small_segments()).sink(second.clone()).build()?;
        let mut producer = reopened.producer()?;
        let mut last = reopened.snapshot().frontier();
        for value in 1000..1000 + rng.up_to(60) {
            last = producer.commit(parts(value))?;
        }
        drop(producer);
        reopened.wait_sealed(last, Duration::from_secs(10))?;
        let (_, found) = commits_in(&reopened);
        let last = reopened.shutdown().map_err(Error::from)?.frontier();
        check(&second.taken(), &found, last, &format!("case {case}, killed after {kill_at} commits"));
    }
    Ok(())
}

/// A sink that refuses every write: shutdown hands the segments back, no batch file is saved
/// over them (the log keeps them), and the next open delivers every one.
#[test]
fn what_the_sink_refused_at_shutdown_is_handed_back_and_delivered_after_reopening() -> Result<(), Error> {
    let storage = SimStorage::default();
    let sink = Recording::default();
    sink.refuse(true);
    let pipeline = builder(&storage, Durability::Written, small_segments()).sink(sink.clone()).build()?;
    let mut producer = pipeline.producer()?;
    for value in 0..100 {
        producer.commit(parts(value))?;
    }
    drop(producer);
    // Turn after turn of retries, each a chance to save a file over what was refused.
    pipeline.wait_sealed(100, Duration::from_secs(10))?;
    let started = std::time::Instant::now();
    while pipeline.stats().sink_failures < 200 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let Err(refused) = pipeline.shutdown() else { panic!("a refusing sink's shutdown returned Ok") };
    assert!(refused.undelivered.len() >= 12, "{} handed back", refused.undelivered.len());
    // No batch file holds a segment: every one was refused. (A shard the routing gave no path
    // to saves empty files, which is right.)
    let geometry = Geometry::new(2, 3).expect("the tests' geometry");
    for shard in 0..2 {
        let dir = shard_dir(std::path::Path::new(super::pipeline::ROOT), shard);
        let merge = Concat::<u64>::default();
        checkpoint::open(storage.clone(), &dir, shard, &geometry, &merge, |loaded| {
            assert!(loaded.batches.is_empty(), "shard {shard}: a batch file saved over undelivered segments");
            Ok(())
        })?;
    }
    sink.refuse(false);
    let reopened = builder(&storage, Durability::Written, small_segments()).sink(sink.clone()).build()?;
    let (_, found) = commits_in(&reopened);
    let last = reopened.shutdown().map_err(Error::from)?.frontier();
    assert_eq!(last, 100);
    check(&sink.taken(), &found, last, "after reopening");
    Ok(())
}

/// At `Synced`, a power cut at a random moment: the sink was never handed a segment of commits
/// the cut took back (their numbers are issued again with other records, so such a segment
/// would read differently from the recovered state), and after reopening every segment reaches
/// it.
#[test]
fn at_synced_a_sink_never_holds_what_a_power_cut_takes_back() -> Result<(), Error> {
    for case in 0..40u64 {
        let mut rng = Rng::new(100 + case);
        let storage = SimStorage::default();
        let sink = Recording { powered: Some(storage.clone()), ..Recording::default() };
        let pipeline = builder(&storage, Durability::Synced, small_segments()).sink(sink.clone()).build()?;
        storage.cut_power_after(20 + rng.up_to(200), case);
        let mut producer = pipeline.producer()?;
        for value in 0..150 {
            if producer.commit(parts(value)).is_err() {
                break;
            }
        }
        drop(producer);
        drop(pipeline);
        let after = storage.after_power_cut().unwrap_or_else(|| storage.crash(case));
        let second = Recording { taken: sink.taken.clone(), ..Recording::default() };
        let reopened = builder(&after, Durability::Synced, small_segments()).sink(second.clone()).build()?;
        let mut producer = reopened.producer()?;
        let mut last = reopened.snapshot().frontier();
        for value in 1000..1040 {
            last = producer.commit(parts(value))?;
        }
        drop(producer);
        reopened.wait_sealed(last, Duration::from_secs(10))?;
        let (_, found) = commits_in(&reopened);
        let last = reopened.shutdown().map_err(Error::from)?.frontier();
        check(&second.taken(), &found, last, &format!("case {case}"));
    }
    Ok(())
}
