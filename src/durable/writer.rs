//! Writing a shard's log: append a turn, sync, rotate; and open it again after a crash.
//!
//! One writer per shard, owned by its worker: nothing here is shared but a rotation's owed
//! syncs ([`Rotation`], a mutex taken once per rotation and per sync).
//!
//! - [`append`](LogWriter::append) encodes the turn into the writer's buffer (no allocation
//!   once it has grown) and hands the frame to the OS in one write: the turn is *written*.
//! - [`sync`](LogWriter::sync) completes the last rotation's syncs if they are owed, then
//!   fdatasyncs the current segment, once for every turn written since the last (group
//!   commit): those turns are *synced*.
//! - A turn that would take the segment past its bound goes to a new segment (*rotation*). The
//!   worker only creates the new segment and writes its header; the syncs a rotation needs are
//!   owed ([`Rotation`]) and done off the worker, in this order: the old segment fdatasynced
//!   whole, the directory fsynced (the new segment's name), the new segment fdatasynced (its
//!   header). At `Durability::Synced` the syncing thread does them before it syncs anything of
//!   the new segment (`crate::durable::syncer`); at `Written` the same thread does them and
//!   nothing else; without a thread (before it starts, in tests) the writer's next sync or
//!   rotation does them. At most one rotation is owed: a rotation first completes the one
//!   before it (waiting for the thread, which has usually long finished: a segment holds many
//!   turns), so every segment but the two newest is synced whole, and a segment's header and
//!   name are durable before the segment after it is created.
//!
//!   Why this order, and what it costs the reader (`crate::durable::reader`): nothing of the
//!   new segment is ever reported synced before the old one is synced whole and the new name is
//!   durable. So after a power cut, if the segment before the newest lost turns (a torn tail,
//!   or whole frames), nothing in the newest was synced either, and dropping the newest whole
//!   loses a suffix of turns never acknowledged, never a hole. The new header's sync is part
//!   of the rotation (not left to the next sync of the new segment) because at `Written`
//!   nothing else syncs it, and the reader takes a segment before the newest with no header
//!   for corruption; the order among the three syncs does not matter to the argument (all are
//!   done before anything of the new segment is reported synced), the old segment goes first
//!   as it holds the turns waiting for an acknowledgment. The alternatives cost more: syncing
//!   inline (three fsyncs on the worker every segment, what this replaces), or preallocating
//!   the next segment (a synced empty file kept ready: the worker would still write its header
//!   and the reader would still meet a newest segment whose turns follow a hole, so it saves
//!   nothing the reader must not handle anyway).
//! - While a rotation is owed, the segment before it is not released to go below the batch
//!   files ([`release`](LogWriter::release)): the new segment's header may not last a power
//!   cut yet, and the log would lose where it starts.
//! - A failed write or sync ends the writer (PostgreSQL's fsyncgate: after a failed fsync the
//!   kernel may have dropped the dirty pages and marked them clean, so a retry that succeeds
//!   proves nothing). Every later call returns the same error; nothing is retried.
//!
//! [`open`](LogWriter::open) reads the log, removes a newest segment the reader dropped whole
//! (the removal synced), cuts the torn tail off, syncs the newest segment kept and the one
//! before it (a process killed while a rotation was owed left it unsynced) and starts a new one
//! (its header and the directory synced before it is used: opening is not the worker's hot
//! path). Each step leaves a log that reads as the one before it did, so a crash during the
//! repair is repaired again on the next open. Syncing matters: a process killed after a write
//! left turns the OS holds but never synced; the turns the new process syncs go in a newer
//! segment, and a power cut could otherwise keep those and lose the older ones — a hole. A new segment (RocksDB and
//! Prometheus start one on open too) keeps each file written by one process, so nothing is ever
//! appended after bytes a crash left behind, and its header records exactly where recovery cut.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durable::format::{
    decode_tip, decode_turn, encode_turn, open_frame, seal_frame, Header, LoggedTurn, Tip, Turn, HEADER_LEN,
};
use crate::durable::reader::{read_frames, segment_name, Position, Recovered, Visit, Visitor};
use crate::durable::storage::{Storage, StorageFile, SyncHandle};
use crate::error::Error;

/// A log's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogOptions {
    /// A segment is cut when the next turn would take it past this many bytes. A turn larger
    /// than that alone gets a segment of its own: a turn never spans segments.
    pub(crate) segment_bytes: u64,
    /// About how many commits a batch file covers (whole top-level blocks, at least one): the
    /// syncs a file costs are paid once per that many commits, and the log above the files
    /// holds about that many at most, besides its newest segment.
    pub(crate) checkpoint_commits: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        // Large enough that rotation's fsyncs are rare; small enough that a segment is a
        // modest read at recovery (it is read whole) and goes soon after the batch files cover
        // it, so the log above the files stays a segment or two.
        Self { segment_bytes: 8 << 20, checkpoint_commits: 1 << 20 }
    }
}

/// The writer of one shard's log.
#[derive(Debug)]
pub(crate) struct LogWriter<S: Storage> {
    storage: S,
    dir: PathBuf,
    shard: u32,
    options: LogOptions,
    /// The current segment: its number, path, file and length.
    sequence: u64,
    path: PathBuf,
    file: S::File,
    len: u64,
    /// After the last turn written.
    tip: Tip,
    /// The frontier of the last turn synced.
    synced: u64,
    /// Turns were written since the last sync.
    dirty: bool,
    /// The frame being written, kept from turn to turn.
    buf: Vec<u8>,
    /// The error that ended the writer, returned by every call after it.
    failed: Option<Error>,
    /// Every segment on disk, oldest first: its number and the tip it starts from.
    segments: VecDeque<(u64, Tip)>,
    /// The syncs of the last rotation, while they may be owed (`None` once seen done).
    rotation: Option<Arc<Rotation>>,
}

impl<S: Storage> LogWriter<S> {
    /// Opens shard `shard`'s log in `dir` (made if missing), handing every turn it holds to
    /// `each` in order; repairs a torn tail and starts a new segment for what comes next.
    /// Returns the writer and what was found.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn open<R: Serialize + DeserializeOwned>(
        storage: S,
        dir: &Path,
        shard: u32,
        options: LogOptions,
        each: impl FnMut(LoggedTurn<R>) -> Result<(), Error>,
    ) -> Result<(Self, Recovered), Error> {
        Self::open_at(storage, dir, shard, options, Tip::default(), u64::MAX, each)
    }

    /// As [`open`](Self::open), for a log that the shard's batch files cover up to `from`
    /// (its older segments may be gone), cut at `cut`: turns up to it are handed to
    /// `each`; the first turn past it keeps only its rows up to `cut` (logged again as a turn
    /// ending at `cut`, and handed to `each` as such); every later turn is removed.
    ///
    /// Recovery cuts every shard's log at the lowest end among them: commits above it are not
    /// in every shard's log, so none of them was ever durable, and their numbers are issued
    /// again. Each step of the cut leaves a valid log that reads as this one cut at `cut` or
    /// later, so a crash during it is recovered by cutting again: later segments go first
    /// (newest first), then the cut segment is truncated at the straddling turn and synced,
    /// then the new segment takes what the straddling turn kept.
    pub(crate) fn open_at<R: Serialize + DeserializeOwned>(
        storage: S,
        dir: &Path,
        shard: u32,
        options: LogOptions,
        from: Tip,
        cut: u64,
        each: impl FnMut(LoggedTurn<R>) -> Result<(), Error>,
    ) -> Result<(Self, Recovered), Error> {
        storage.create_dir(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), &e))?;
        let mut visitor = Cut { cut, each, straddle: None };
        let mut recovered = read_frames(&storage, dir, shard, &mut visitor)?;
        // The log must start where the batch files end or before: anything between is lost.
        let first = recovered.starts.first().copied();
        let start = first.map_or(Tip::default(), |(_, start)| start);
        if start.frontier > from.frontier || start.names > from.names {
            let sequence = first.map_or(0, |(sequence, _)| sequence);
            return Err(Error::Corrupt {
                file: dir.join(segment_name(sequence)).display().to_string(),
                offset: 0,
                why: format!(
                    "the log starts at {start:?}, but the batch files end at {from:?}: segments are missing"
                ),
            });
        }
        let Cut { mut each, straddle, .. } = visitor;
        if let Some(straddle) = straddle {
            let newest = recovered
                .dropped
                .or(recovered.newest.map(|(sequence, _)| sequence))
                .unwrap_or(straddle.at.sequence);
            let kept = recovered.starts.iter().filter(|(sequence, _)| *sequence <= straddle.at.sequence);
            let segments = kept.copied().collect();
            let mut writer = Self::cut_at(storage, dir, shard, options, newest, &straddle, segments)?;
            let kept = straddle.turn;
            writer.append(&Turn { frontier: kept.frontier, names: &kept.names, rows: &kept.rows })?;
            writer.sync()?;
            recovered.tip = writer.tip;
            recovered.torn = None;
            let says =
                kept.frontier > straddle.before.frontier || !kept.names.is_empty() || !kept.rows.is_empty();
            if says {
                each(kept)?;
            }
            return Ok((writer, recovered));
        }
        // The newest segment, dropped whole (its header never reached the disk, or its turns
        // follow a hole): removed first, and the removal synced, so a crash later in the repair
        // finds the log reading as it reads now.
        if let Some(dropped) = recovered.dropped {
            remove_segments(&storage, &[dir.join(segment_name(dropped))])?;
        }
        let sequence = match recovered.newest {
            // Numbers stay without a gap: a dropped segment's is taken again.
            None => recovered.dropped.unwrap_or(0),
            Some((sequence, intact)) => {
                let path = dir.join(segment_name(sequence));
                let what = |doing: &str| format!("{doing} {}", path.display());
                let mut file = storage.open(&path).map_err(|e| Error::io(what("opening"), &e))?;
                if recovered.torn.is_some() {
                    file.truncate(intact).map_err(|e| Error::io(what("cutting the torn tail of"), &e))?;
                }
                file.sync().map_err(|e| Error::io(what("syncing"), &e))?;
                // The one before it, too: a process killed before its rotation's syncs were
                // done left it unsynced.
                sync_previous(&storage, dir, &recovered.starts, sequence)?;
                sequence + 1
            }
        };
        let header = Header { shard, sequence, start: recovered.tip };
        let (path, file) = create_segment(&storage, dir, &header)?;
        let mut segments: VecDeque<(u64, Tip)> = recovered.starts.iter().copied().collect();
        segments.push_back((sequence, header.start));
        let writer = Self {
            storage,
            dir: dir.to_path_buf(),
            shard,
            options,
            sequence,
            path,
            file,
            len: HEADER_LEN as u64,
            tip: recovered.tip,
            // Recovered turns were synced above.
            synced: recovered.tip.frontier,
            dirty: false,
            buf: Vec::new(),
            failed: None,
            segments,
            rotation: None,
        };
        Ok((writer, recovered))
    }

    /// Removes what follows the straddling turn (segments after its own, newest first; then
    /// its own segment from the turn on) and starts the next segment where the turn began.
    fn cut_at(
        storage: S,
        dir: &Path,
        shard: u32,
        options: LogOptions,
        newest: u64,
        straddle: &Straddle<impl Sized>,
        mut segments: VecDeque<(u64, Tip)>,
    ) -> Result<Self, Error> {
        let at = straddle.at;
        for sequence in (at.sequence + 1..=newest).rev() {
            let path = dir.join(segment_name(sequence));
            storage.remove(&path).map_err(|e| Error::io(format!("removing {}", path.display()), &e))?;
            storage.sync_dir(dir).map_err(|e| Error::io(format!("syncing {}", dir.display()), &e))?;
        }
        let path = dir.join(segment_name(at.sequence));
        let what = |doing: &str| format!("{doing} {}", path.display());
        let mut file = storage.open(&path).map_err(|e| Error::io(what("opening"), &e))?;
        file.truncate(at.offset).map_err(|e| Error::io(what("cutting"), &e))?;
        file.sync().map_err(|e| Error::io(what("syncing"), &e))?;
        let kept: Vec<(u64, Tip)> = segments.iter().copied().collect();
        sync_previous(&storage, dir, &kept, at.sequence)?;
        let header = Header { shard, sequence: at.sequence + 1, start: straddle.before };
        let (path, file) = create_segment(&storage, dir, &header)?;
        segments.push_back((header.sequence, header.start));
        Ok(Self {
            storage,
            dir: dir.to_path_buf(),
            shard,
            options,
            sequence: header.sequence,
            path,
            file,
            len: HEADER_LEN as u64,
            tip: straddle.before,
            synced: straddle.before.frontier,
            dirty: false,
            buf: Vec::new(),
            failed: None,
            segments,
            rotation: None,
        })
    }

    /// Where the log stands after the last turn written: its frontier, and the path names it
    /// holds (a turn's `names` start at this id).
    pub(crate) fn tip(&self) -> Tip {
        self.tip
    }

    /// The number of the segment being written (it changes when the log rotates).
    pub(crate) fn sequence(&self) -> u64 {
        self.sequence
    }

    /// A handle that syncs the segment being written from another thread. The segments before
    /// it are synced whole once [`rotation`](Self::rotation)'s syncs are done.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the OS refuses a second handle of the file.
    pub(crate) fn sync_handle(&self) -> Result<SyncHandle, Error> {
        self.file
            .sync_handle()
            .map_err(|e| Error::io(format!("opening {} to sync it", self.path.display()), &e))
    }

    /// The syncs the last rotation owes, if they may not be done yet: a thread that syncs the
    /// segment being written must [`complete`](Rotation::complete) them before it says a turn
    /// of this segment is synced.
    pub(crate) fn rotation(&self) -> Option<Arc<Rotation>> {
        self.rotation.clone()
    }

    /// The frontier of the last turn synced.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn synced(&self) -> u64 {
        self.synced
    }

    /// The error that ended the writer, if one did.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn failed(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// Writes `turn` (hands it to the OS); it survives the process once this returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the write fails, or the rotation before it (ENOSPC is kind
    /// `StorageFull`), or if the turn cannot be logged at all (a record whose `Serialize`
    /// fails, a turn over 4 GiB: kind `InvalidData`). Any of them ends the writer: this and
    /// every later call return the same error.
    ///
    /// # Panics
    ///
    /// If the turn breaks the worker's invariants (`crate::durable::format::encode_turn`).
    pub(crate) fn append<R: Serialize, N: AsRef<str>>(&mut self, turn: &Turn<'_, R, N>) -> Result<(), Error> {
        self.check()?;
        if turn.frontier == self.tip.frontier && turn.names.is_empty() && turn.rows.is_empty() {
            return Ok(()); // nothing to say
        }
        self.buf.clear();
        let start = open_frame(&mut self.buf);
        // A turn that cannot be logged cannot be skipped either (that would be a hole): both
        // failures below end the writer, as a failed write does.
        let tip = match encode_turn(&mut self.buf, self.tip, turn) {
            Ok(tip) => tip,
            Err(error) => return self.fail(self.unloggable(format!("a record does not encode: {error}"))),
        };
        if let Err(bytes) = seal_frame(&mut self.buf, start) {
            let why = format!("a turn of {bytes} bytes is over the frame limit of 4 GiB");
            return self.fail(self.unloggable(why));
        }
        let len = self.buf.len() as u64;
        if self.len > HEADER_LEN as u64 && self.len + len > self.options.segment_bytes {
            self.rotate()?;
        }
        if let Err(error) = self.file.append(&self.buf) {
            return self.fail(Error::io(format!("appending a turn to {}", self.path.display()), &error));
        }
        self.len += len;
        self.tip = tip;
        self.dirty = true;
        Ok(())
    }

    /// Syncs every turn written so far (one fdatasync for all of them, none if nothing was
    /// written since the last; the last rotation's syncs first, if they are owed); they survive a
    /// power cut once this returns. Returns the frontier synced.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if an fsync fails; it ends the writer, as in [`append`](Self::append).
    pub(crate) fn sync(&mut self) -> Result<u64, Error> {
        self.check()?;
        self.complete_rotation()?;
        if self.dirty {
            if let Err(error) = self.file.sync() {
                return self.fail(Error::io(format!("syncing {}", self.path.display()), &error));
            }
        }
        (self.synced, self.dirty) = (self.tip.frontier, false);
        Ok(self.synced)
    }

    /// Waits for the last rotation's syncs (doing them here if no other thread has taken them).
    fn complete_rotation(&mut self) -> Result<(), Error> {
        let Some(rotation) = &self.rotation else { return Ok(()) };
        if let Err(error) = rotation.complete() {
            return self.fail(error);
        }
        self.rotation = None;
        Ok(())
    }

    /// Ends the current segment and starts the next, syncing neither: the rotation's syncs (the
    /// old segment whole, the directory, the new segment's header) are owed, for a thread that
    /// syncs the log to do ([`rotation`](Self::rotation)), or for the next sync or rotation here.
    /// One rotation is owed at most: the one before is completed first (waited for, usually;
    /// done here if no thread took it), so only the two newest segments can ever be unsynced.
    fn rotate(&mut self) -> Result<(), Error> {
        self.complete_rotation()?;
        let header = Header { shard: self.shard, sequence: self.sequence + 1, start: self.tip };
        let path = self.dir.join(segment_name(header.sequence));
        let what = |doing: &str| format!("{doing} {}", path.display());
        let mut file = match self.storage.create(&path) {
            Ok(file) => file,
            Err(error) => return self.fail(Error::io(what("creating"), &error)),
        };
        if let Err(error) = file.append(&header.encode()) {
            return self.fail(Error::io(what("writing the header of"), &error));
        }
        let handles = self.file.sync_handle().and_then(|old| Ok((old, file.sync_handle()?)));
        let (old, new) = match handles {
            Ok(handles) => handles,
            Err(error) => {
                return self.fail(Error::io(what("opening handles to sync the rotation to"), &error))
            }
        };
        let storage = self.storage.clone();
        let dir = self.dir.clone();
        let job = Job {
            old: (old, self.path.clone()),
            dir: (SyncHandle::new(move || storage.sync_dir(&dir)), self.dir.clone()),
            new: (new, path.clone()),
        };
        self.rotation = Some(Arc::new(Rotation::owed(job)));
        (self.sequence, self.path, self.file, self.len) = (header.sequence, path, file, HEADER_LEN as u64);
        self.segments.push_back((header.sequence, header.start));
        Ok(())
    }

    /// Where the second-oldest segment starts: what the batch files must cover for the oldest
    /// to go (`None`: one segment, the one being written, which stays).
    fn next_start(&self) -> Option<Tip> {
        self.segments.get(1).map(|&(_, start)| start)
    }

    /// Takes the oldest segments off the writer's list while the one after each starts at or
    /// below `saved` (the batch files ending there hold everything before it), oldest first, and
    /// returns their paths: [`remove_segments`] removes them once those files are synced.
    ///
    /// The segment before the one being written stays while the rotation between them owes its
    /// syncs: until then the newest's header and name may not survive a power cut, and with the
    /// older one gone the log would lose its start.
    pub(crate) fn release(&mut self, saved: Tip) -> Vec<PathBuf> {
        let mut released = Vec::new();
        let owed = self.rotation.as_ref().is_some_and(|rotation| !rotation.is_done());
        while let Some(next) = self.next_start() {
            if next.frontier > saved.frontier || next.names > saved.names {
                break;
            }
            if owed && self.segments.get(1).is_some_and(|&(sequence, _)| sequence == self.sequence) {
                break;
            }
            let Some((sequence, _)) = self.segments.pop_front() else { break };
            released.push(self.dir.join(segment_name(sequence)));
        }
        released
    }

    fn unloggable(&self, why: String) -> Error {
        Error::Io {
            what: format!("logging a turn of shard {} (frontier {})", self.shard, self.tip.frontier),
            kind: std::io::ErrorKind::InvalidData,
            message: why,
        }
    }

    fn check(&self) -> Result<(), Error> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    #[cold]
    fn fail<T>(&mut self, error: Error) -> Result<T, Error> {
        self.failed = Some(error.clone());
        Err(error)
    }
}

/// The first turn past a cut: where its frame starts, the tip before it, and what it keeps.
struct Straddle<R> {
    at: Position,
    before: Tip,
    turn: LoggedTurn<R>,
}

/// Reads a log that is to be cut at `cut` (see [`LogWriter::open_at`]).
struct Cut<R, F> {
    cut: u64,
    each: F,
    straddle: Option<Straddle<R>>,
}

impl<R: DeserializeOwned, F: FnMut(LoggedTurn<R>) -> Result<(), Error>> Visitor for Cut<R, F> {
    fn visit(&mut self, payload: &[u8], tip: Tip, at: Position) -> Result<Tip, Visit> {
        if self.straddle.is_some() {
            // Past the cut: to be removed; its frames are checked, its rows not decoded.
            return decode_tip(payload, tip).map_err(Visit::Invalid);
        }
        let mut turn = decode_turn::<R>(payload, tip).map_err(Visit::Invalid)?;
        let after = Tip { frontier: turn.frontier, names: turn.names_from + turn.names.len() as u32 };
        if turn.frontier <= self.cut {
            (self.each)(turn).map_err(Visit::Stop)?;
        } else {
            turn.rows.retain(|row| row.commit <= self.cut);
            turn.frontier = self.cut.max(tip.frontier);
            self.straddle = Some(Straddle { at, before: tip, turn });
        }
        Ok(after)
    }
}

/// Removes log segments `paths`, oldest first, each removal synced (its directory) before the
/// next: a power cut leaves the segments without a gap.
///
/// # Errors
///
/// [`Error::Io`] if a removal or a directory sync fails.
pub(crate) fn remove_segments<S: Storage>(storage: &S, paths: &[PathBuf]) -> Result<(), Error> {
    for path in paths {
        storage.remove(path).map_err(|e| Error::io(format!("removing {}", path.display()), &e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        storage.sync_dir(dir).map_err(|e| Error::io(format!("syncing {}", dir.display()), &e))?;
    }
    Ok(())
}

/// Creates the segment `header` names, with its header written and synced and its name made
/// durable, so no turn is ever appended to a segment a crash can lose whole.
fn create_segment<S: Storage>(storage: &S, dir: &Path, header: &Header) -> Result<(PathBuf, S::File), Error> {
    let path = dir.join(segment_name(header.sequence));
    let what = |doing: &str| format!("{doing} {}", path.display());
    let mut file = storage.create(&path).map_err(|e| Error::io(what("creating"), &e))?;
    file.append(&header.encode()).map_err(|e| Error::io(what("writing the header of"), &e))?;
    file.sync().map_err(|e| Error::io(what("syncing"), &e))?;
    storage.sync_dir(dir).map_err(|e| Error::io(format!("syncing {}", dir.display()), &e))?;
    Ok((path, file))
}

/// Syncs the segment before `sequence`, if the log holds it (`starts`: the segments kept).
fn sync_previous<S: Storage>(
    storage: &S,
    dir: &Path,
    starts: &[(u64, Tip)],
    sequence: u64,
) -> Result<(), Error> {
    let Some(previous) = sequence.checked_sub(1) else { return Ok(()) };
    if !starts.iter().any(|&(kept, _)| kept == previous) {
        return Ok(());
    }
    let path = dir.join(segment_name(previous));
    let what = |doing: &str| format!("{doing} {}", path.display());
    let mut file = storage.open(&path).map_err(|e| Error::io(what("opening"), &e))?;
    file.sync().map_err(|e| Error::io(what("syncing"), &e))
}

/// The syncs a rotation owes, in order; each with what it syncs, for the error.
struct Job {
    /// The segment rotated from, synced whole.
    old: (SyncHandle, PathBuf),
    /// The directory: the new segment's name.
    dir: (SyncHandle, PathBuf),
    /// The new segment: its header, and the turns written to it so far.
    new: (SyncHandle, PathBuf),
}

impl Job {
    fn run(self) -> Result<(), Error> {
        for (handle, path) in [self.old, self.dir, self.new] {
            handle.sync().map_err(|e| Error::io(format!("syncing {} (a rotation)", path.display()), &e))?;
        }
        Ok(())
    }
}

/// A rotation's syncs, owed until some thread completes them: the syncing thread
/// (`crate::durable::syncer`) as soon as it sees the rotation, the writer at its next sync or
/// rotation otherwise. Whoever comes first does them; the others wait for the outcome. A
/// failure is kept and returned to everyone: never retried (see the module docs).
pub(crate) struct Rotation {
    state: Mutex<Syncs>,
    done: Condvar,
}

/// Where a rotation's syncs stand.
enum Syncs {
    Owed(Job),
    Running,
    Done,
    Failed(Error),
}

impl std::fmt::Debug for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &*self.lock() {
            Syncs::Owed(_) => "owed",
            Syncs::Running => "running",
            Syncs::Done => "done",
            Syncs::Failed(_) => "failed",
        };
        f.debug_tuple("Rotation").field(&state).finish()
    }
}

impl Rotation {
    fn owed(job: Job) -> Self {
        Self { state: Mutex::new(Syncs::Owed(job)), done: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Syncs> {
        // A panic while holding it (none can: nothing runs under it but moves) leaves a state
        // that is still one of the four.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True once the syncs are done (and succeeded).
    pub(crate) fn is_done(&self) -> bool {
        matches!(*self.lock(), Syncs::Done)
    }

    /// Does the syncs, or waits for the thread doing them; true if this call did them (so they
    /// started after it was called: the new segment's sync covers every byte written to it
    /// before the call).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if one of them failed, here or on the thread that did them.
    pub(crate) fn complete(&self) -> Result<bool, Error> {
        let mut state = self.lock();
        loop {
            match std::mem::replace(&mut *state, Syncs::Running) {
                Syncs::Owed(job) => {
                    drop(state);
                    let outcome = job.run();
                    *self.lock() = match &outcome {
                        Ok(()) => Syncs::Done,
                        Err(error) => Syncs::Failed(error.clone()),
                    };
                    self.done.notify_all();
                    return outcome.map(|()| true);
                }
                Syncs::Running => state = self.done.wait(state).unwrap_or_else(PoisonError::into_inner),
                Syncs::Done => {
                    *state = Syncs::Done;
                    return Ok(false);
                }
                Syncs::Failed(error) => {
                    *state = Syncs::Failed(error.clone());
                    return Err(error);
                }
            }
        }
    }
}
