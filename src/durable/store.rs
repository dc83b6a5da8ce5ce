//! A shard's log and batch files as its worker uses them: append each turn, sync, and hand the
//! batch files to save; the syncing (`crate::durable::syncer`: the rotations' syncs, and at
//! `Durability::Synced` every turn's) and the saving (`crate::durable::saver`) run on threads of
//! their own, so the worker never waits on an fsync it does not need.

use std::collections::VecDeque;

use crate::durable::checkpoint::Checkpoint;
use crate::durable::format::{Tip, Turn};
use crate::durable::recovery::Persist;
use crate::durable::saver::{File, Job, OnFailed, Saver};
use crate::durable::storage::Storage;
use crate::durable::syncer::{OnSynced, Reports, Syncer};
use crate::durable::writer::LogWriter;
use crate::error::Error;
use crate::merge::Merge;
use crate::shard::batch::Batch;
use crate::shard::sort::Row;
use crate::sync::Arc;

/// A shard's log and batch files as its worker uses them, whatever the codec and the disk.
pub(crate) trait ShardStore<M: Merge>: Send {
    /// Logs a turn: every row of the shard's commits in `(tip, frontier]`, and the path
    /// names interned since the tip (ids from `tip().names` on).
    fn append(&mut self, frontier: u64, names: &[Arc<str>], rows: &[Row<M::Record>]) -> Result<(), Error>;
    /// Syncs every turn logged; returns the frontier synced.
    fn sync(&mut self) -> Result<u64, Error>;
    /// Where the log stands.
    fn tip(&self) -> Tip;
    /// Starts the shard's background threads: the saving one, which encodes the batch files
    /// with `merge` and reports a failure to `on_failed`; and the syncing one, which does the
    /// syncs each log rotation owes and, with `on_synced`, syncs every turn appended from now on
    /// and reports each frontier synced (or the error that ended it) there; without, it reports
    /// a failure to `on_failed`.
    fn start(
        &mut self,
        shard: usize,
        merge: Arc<M>,
        on_failed: OnFailed,
        on_synced: Option<OnSynced>,
    ) -> Result<(), Error>;
    /// Where the batch files end, as last read: exactly, until the threads start (recovery).
    fn saved(&self) -> Tip;
    /// Where the batch files end and the next one ends at the least (the first multiple of the
    /// checkpoint span past the files' end: `crate::durable::checkpoint`); `None` while a file
    /// is still being saved, or before the threads start.
    fn files(&mut self) -> Option<(Tip, u64)>;
    /// Waits for a file handed over to be saved, for at most `timeout`; true if none is left
    /// being saved.
    fn wait_saved(&mut self, timeout: std::time::Duration) -> bool;
    /// Hands over the file of commits from the files' end to `end`, holding `batches` (the
    /// shard's top-level batches there) and the names interned since the files' end: the
    /// saving thread saves it, then removes the log segments the files then cover.
    ///
    /// # Panics
    ///
    /// If a file is still being saved (`files` said `None`).
    fn save(&mut self, batches: Vec<Arc<Batch<M>>>, end: u64, names: Vec<Arc<str>>);
    /// Under a retention window: the last commit of the last file that holds batches and ends
    /// before `before` (the window's start), if one does.
    fn expirable(&self, before: u64) -> Option<u64>;
    /// Hands over the replacing of every file ending at or below `through` by the names file,
    /// naming ids from 0 on with `names` (`crate::durable::checkpoint`).
    ///
    /// # Panics
    ///
    /// If a file is still being saved (`files` said `None`).
    fn expire(&mut self, through: u64, names: Vec<Arc<str>>);
    /// Where the names file ends: commits up to it left a retention window (0: none did).
    fn expired(&self) -> u64;
}

/// A shard's log and batch files on one [`Storage`].
pub(crate) struct Store<S: Storage, M: Merge> {
    log: LogWriter<S>,
    /// The files, until the saving thread takes them.
    files: Option<Checkpoint<S>>,
    saver: Option<Saver<M>>,
    /// Where the files end, as last read; a file was handed over since, and is not saved yet.
    saved: Tip,
    saving: bool,
    level: u32,
    /// Files end at multiples of it (or past, at the end of a run that crosses one).
    checkpoint_span: u64,
    /// The last commit of each file that holds batches, in order.
    ends: VecDeque<u64>,
    /// Where the names file ends (0: there is none).
    expired: u64,
    /// Syncing in the background (at `Durability::Written`, the rotations' syncs only), with the
    /// segment last handed to it.
    syncer: Option<(Syncer, u64)>,
    storage: S,
}

impl<S: Storage, M: Merge> Store<S, M> {
    pub(crate) fn new(
        log: LogWriter<S>,
        files: Checkpoint<S>,
        level: u32,
        checkpoint_span: u64,
        storage: S,
    ) -> Self {
        let saved = files.tip();
        let (ends, expired) = (files.ends().into(), files.expired());
        Self {
            ends,
            expired,
            log,
            files: Some(files),
            saver: None,
            saved,
            saving: false,
            level,
            checkpoint_span,
            syncer: None,
            storage,
        }
    }
}

impl<S: Storage, M: Persist> ShardStore<M> for Store<S, M> {
    fn append(&mut self, frontier: u64, names: &[Arc<str>], rows: &[Row<M::Record>]) -> Result<(), Error> {
        self.log.append(&Turn { frontier, names, rows })?;
        if let Some((syncer, segment)) = &mut self.syncer {
            let sequence = self.log.sequence();
            // The log rotated: the thread completes the rotation's syncs, and syncs the new
            // segment from now on.
            let rotated = if sequence == *segment {
                None
            } else {
                Some((self.log.sync_handle()?, self.log.rotation()))
            };
            *segment = sequence;
            if syncer.reports_frontiers() || rotated.is_some() {
                syncer.written(self.log.tip().frontier, rotated);
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<u64, Error> {
        self.log.sync()
    }

    fn tip(&self) -> Tip {
        self.log.tip()
    }

    fn start(
        &mut self,
        shard: usize,
        merge: Arc<M>,
        on_failed: OnFailed,
        on_synced: Option<OnSynced>,
    ) -> Result<(), Error> {
        // Both threads report a failure the same way at `Durability::Written`.
        let on_failed: std::sync::Arc<dyn Fn(Error) + Send + Sync> = std::sync::Arc::from(on_failed);
        if let Some(files) = self.files.take() {
            let storage = self.storage.clone();
            let theirs = on_failed.clone();
            let on_failed = Box::new(move |error| theirs(error));
            self.saver = Some(Saver::start(shard, files, merge, self.level, storage, on_failed)?);
        }
        // A syncing thread at every durability: at `Written` it does the rotations' syncs only.
        let reports = match on_synced {
            Some(on_synced) => Reports::Frontier(on_synced),
            None => Reports::Failure(Box::new(move |error| on_failed(error))),
        };
        let handle = self.log.sync_handle()?;
        let syncer = Syncer::start(shard, handle, self.log.rotation(), self.log.tip().frontier, reports)?;
        self.syncer = Some((syncer, self.log.sequence()));
        Ok(())
    }

    fn saved(&self) -> Tip {
        self.saved
    }

    fn files(&mut self) -> Option<(Tip, u64)> {
        // Not started: nothing can save a file yet.
        self.saver.as_ref()?;
        if self.saving {
            let (saved, busy) = self.saver.as_ref()?.saved();
            (self.saved, self.saving) = (saved, busy);
            if busy {
                return None;
            }
        }
        let span = self.checkpoint_span;
        Some((self.saved, (self.saved.frontier / span + 1).saturating_mul(span)))
    }

    fn wait_saved(&mut self, timeout: std::time::Duration) -> bool {
        match &self.saver {
            Some(saver) if self.saving => saver.wait_saved(timeout),
            _ => true,
        }
    }

    fn save(&mut self, batches: Vec<Arc<Batch<M>>>, end: u64, names: Vec<Arc<str>>) {
        // `files` said `None` before the thread started: nothing to hand over to.
        let Some(saver) = &self.saver else { return };
        let names_to = self.saved.names.saturating_add(u32::try_from(names.len()).unwrap_or(u32::MAX));
        let covered = self.log.release(Tip { frontier: end, names: names_to });
        saver.hand(Job::Save(File { batches, end, names, covered }));
        self.ends.push_back(end);
        self.saving = true;
    }

    fn expirable(&self, before: u64) -> Option<u64> {
        self.ends.iter().take_while(|&&end| end < before).last().copied()
    }

    fn expire(&mut self, through: u64, names: Vec<Arc<str>>) {
        let Some(saver) = &self.saver else { return };
        saver.hand(Job::Expire { through, names });
        while self.ends.front().is_some_and(|&end| end <= through) {
            self.ends.pop_front();
        }
        self.expired = self.expired.max(through);
        self.saving = true;
    }

    fn expired(&self) -> u64 {
        self.expired
    }
}

/// A shard's log and files as its worker holds them.
pub(crate) type ShardLog<M> = Box<dyn ShardStore<M>>;
