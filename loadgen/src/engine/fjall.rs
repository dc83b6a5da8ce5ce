//! A peer row for durable runs: fjall (a pure-Rust LSM tree with a journal), writing every
//! record as a key of its own, at the persist mode matching `--durability`.
//!
//! Each commit is one fjall write batch of its parts (key: the path's name, then the producer
//! and its commit count, big-endian, so every record is kept; value: the record's 8 bytes),
//! committed with `PersistMode::Buffer` for `written` (the journal handed to the OS, as lockstep
//! `Written`) or `PersistMode::SyncData` for `synced` (fdatasync'ed, as `Synced`). Its own
//! flush and compaction threads run as they would in an embedding (fjall's defaults). Only with
//! `--durable` and the value kinds (`i64`, `u64`): fjall keys the bytes it is given, and these are
//! the records lockstep's durable targets are measured with.
//!
//! Visible: a batch is readable once `commit` returns; stamped in the committing thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fjall::{Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};
use hdrhistogram::Histogram;

use super::{Committer, Config, DurableFinish, Engine, Failure, Finish};
use crate::cli::DurabilityChoice;
use crate::durable::Scratch;
use crate::latency::{histogram, nanos};
use crate::record::Kind;
use crate::workload::Part;

pub struct FjallEngine<K: Kind> {
    /// Dropped before the directory is measured and removed.
    store: Option<(Keyspace, PartitionHandle)>,
    scratch: Scratch,
    keep: bool,
    mode: PersistMode,
    records: Arc<AtomicU64>,
    /// Commit-to-visible of each producer's sampled commits, nanoseconds.
    figures: Arc<[Mutex<Histogram<u64>>]>,
    kind: std::marker::PhantomData<K>,
}

pub struct FjallCommitter<K: Kind> {
    keyspace: Keyspace,
    partition: PartitionHandle,
    mode: PersistMode,
    producer: u64,
    commits: u64,
    records: Arc<AtomicU64>,
    figures: Arc<[Mutex<Histogram<u64>>]>,
    key: Vec<u8>,
    kind: std::marker::PhantomData<K>,
}

impl<K: Kind> std::fmt::Debug for FjallEngine<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallEngine").field("dir", &self.scratch.path()).finish_non_exhaustive()
    }
}

impl<K: Kind> std::fmt::Debug for FjallCommitter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallCommitter").field("producer", &self.producer).finish_non_exhaustive()
    }
}

impl<K: Kind> FjallEngine<K> {
    fn all_figures(&self) -> Histogram<u64> {
        let mut all = histogram();
        for figures in self.figures.iter() {
            if let Ok(figures) = figures.lock() {
                let _ = all.add(&*figures);
            }
        }
        all
    }
}

impl<K: Kind> Engine<K> for FjallEngine<K> {
    type Committer = FjallCommitter<K>;

    fn build(config: &Config) -> Result<Self, Failure> {
        let Some(durable) = &config.durable else {
            return Err("the fjall engine writes to disk: give it --durable DIR".into());
        };
        if K::KIND.has_payload() {
            return Err("the fjall engine takes the value records (--record i64 or u64)".into());
        }
        let scratch = Scratch::new(&durable.dir)?;
        let keyspace = fjall::Config::new(scratch.path()).open()?;
        let partition = keyspace.open_partition("records", PartitionCreateOptions::default())?;
        let mode = match durable.durability {
            DurabilityChoice::Written => PersistMode::Buffer,
            DurabilityChoice::Synced => PersistMode::SyncData,
        };
        Ok(Self {
            store: Some((keyspace, partition)),
            scratch,
            keep: durable.keep,
            mode,
            records: Arc::default(),
            figures: (0..config.producers).map(|_| Mutex::new(histogram())).collect(),
            kind: std::marker::PhantomData,
        })
    }

    fn committer(&self, index: usize) -> Result<FjallCommitter<K>, Failure> {
        let (keyspace, partition) = self.store.as_ref().ok_or("the store is closed")?;
        Ok(FjallCommitter {
            keyspace: keyspace.clone(),
            partition: partition.clone(),
            mode: self.mode,
            producer: index as u64,
            commits: 0,
            records: self.records.clone(),
            figures: self.figures.clone(),
            key: Vec::with_capacity(32),
            kind: std::marker::PhantomData,
        })
    }

    fn visible(&self) -> Histogram<u64> {
        self.all_figures()
    }

    fn finish(mut self) -> Result<Finish, Failure> {
        let visible_latency = self.all_figures();
        if let Some((keyspace, partition)) = self.store.take() {
            keyspace.persist(PersistMode::SyncAll)?;
            drop(partition);
            drop(keyspace);
        }
        let log_bytes = self.scratch.bytes();
        let kept = if self.keep {
            Some(self.scratch.path().to_path_buf())
        } else {
            self.scratch.remove()?;
            None
        };
        Ok(Finish {
            // Relaxed: the committers are gone.
            records_applied: Some(self.records.load(Ordering::Relaxed)),
            visible_latency,
            durable: Some(DurableFinish { log_bytes, kept, wait_latency: None, wait_dropped: 0 }),
            ..Finish::default()
        })
    }
}

impl<K: Kind> Committer<K> for FjallCommitter<K> {
    fn commit(&mut self, parts: &mut Vec<Part<K::Record>>, stamp: Option<Instant>) -> Result<(), Failure> {
        self.commits += 1;
        let mut batch = self.keyspace.batch().durability(Some(self.mode));
        let count = parts.len() as u64;
        for (i, (path, record)) in parts.drain(..).enumerate() {
            self.key.clear();
            self.key.extend_from_slice(path.name().as_bytes());
            self.key.extend_from_slice(&(self.producer << 48 | self.commits).to_be_bytes());
            self.key.extend_from_slice(&(i as u32).to_be_bytes());
            batch.insert(&self.partition, self.key.as_slice(), K::touch(&record).to_le_bytes());
        }
        batch.commit()?;
        // Relaxed: a count read after the committers are gone.
        self.records.fetch_add(count, Ordering::Relaxed);
        if let Some(stamp) = stamp {
            if let Ok(mut figures) = self.figures[self.producer as usize].lock() {
                crate::latency::record(&mut figures, nanos(stamp.elapsed()));
            }
        }
        Ok(())
    }
}
