//! Opening a durable pipeline: the directory, every shard's batch files and log cut at the same
//! frontier, and the shards' spines rebuilt from them exactly as a live pipeline builds them.
//!
//! Recovery reads where every shard's log ends (the two newest segments' frames checked, rows
//! not decoded; the replay checks the rest), takes the lowest of those ends as the recovered frontier `R` (a commit above it is missing from some
//! shard's log: it was never durable, and its number is issued again); shard 0's end is found
//! by its replay instead, so a pipeline of one shard reads its log once. Then, per shard, it
//! loads the batch files (`crate::durable::checkpoint`: the top-level batches, whole, up to
//! the files' end `C <= R`) into a fresh spine, and replays the log cut at `R` without the rows
//! at or below `C`, sealing the rows of many turns at once. The layout is a function of commit
//! numbers alone, so the spine holds the same segments as the one built without the crash;
//! memory stays what the spine holds plus one file or a few turns.
//!
//! Under a retention window the first file may be the names file of the commits the window
//! left (`crate::durable::checkpoint`): it names paths and holds no batch, and a pipeline whose
//! window would reach back into it is refused (`Error::Incompatible`), never shown an empty
//! past.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durable::checkpoint::{self, Loaded};
use crate::durable::directory::{Directory, Manifest};
use crate::durable::format::{LoggedTurn, Tip};
use crate::durable::reader::{read_tip, shard_dir, TornTail};
use crate::durable::storage::{DiskStorage, Storage};
use crate::durable::store::{ShardLog, Store};
use crate::durable::writer::{LogOptions, LogWriter};
use crate::error::Error;
use crate::ingest::router::Router;
use crate::merge::{Merge, Restore};
use crate::shard::policy;
use crate::shard::spine::Spine;
use crate::sync::Arc;
use crate::tier::Geometry;

/// About how many rows recovery gathers from the log before it seals them: a few turns' worth
/// at most in memory, and large seals. Small in the unit tests, so their logs take several.
#[cfg(not(test))]
const REPLAY_ROWS: usize = 1 << 16;
#[cfg(test)]
const REPLAY_ROWS: usize = 16;

/// Where recovery seals rows gathered up to the log's `pending` frontier, when the spine
/// stands at `frontier`: the last multiple, at or below `pending`, of the largest block span
/// that has one above `frontier`. A seal ending mid-block forms the blocks of every level
/// below it, and each of them is merged up again once the block fills; a seal ending on a
/// boundary of level `L` forms level-`L` blocks only (and the levels above merge from those),
/// so the same layout costs a fraction of the merging.
fn seal_end(geometry: &Geometry, frontier: u64, pending: u64) -> u64 {
    (1..=geometry.max_level())
        .rev()
        .map(|level| pending / geometry.span(level) * geometry.span(level))
        .find(|&end| end > frontier)
        .unwrap_or(pending)
        .max(frontier)
}

/// What survives a crash, and so what [`Pipeline::wait_durable`](crate::Pipeline::wait_durable)
/// waits for.
///
/// A commit is durable once every shard's log holds its turn (the pipeline's durable frontier
/// is the lowest of the shards', as the visible cut is). After any crash the recovered
/// frontier is at least every commit `wait_durable` returned `Ok` for at a level that covers
/// that crash, and the state equals that of exactly the commits up to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Durability {
    /// Durable once its turn was handed to the operating system (`write` returned): it
    /// survives the process being killed, not the machine crashing or losing power. The
    /// default.
    #[default]
    Written,
    /// Durable once its turn was `fdatasync`ed, with every file and directory entry it depends
    /// on: it survives a power cut. The sync runs on a thread of its own, one fdatasync for
    /// every turn written meanwhile, so the shard's worker goes on draining and publishing: a
    /// commit may be visible to snapshots before it is durable (a power cut can then take it
    /// back), and [`Pipeline::wait_durable`](crate::Pipeline::wait_durable) is the
    /// acknowledgment. A sink is handed a segment only once every commit in it is synced.
    Synced,
}

/// A merge whose records and outputs go to disk: serde types both, and a column that can be
/// rebuilt from outputs. Every durable pipeline's merge is one.
pub(crate) trait Persist:
    Merge<Record: Serialize + DeserializeOwned, Output: Serialize + DeserializeOwned, Column: Restore<Self>>
{
}

impl<M> Persist for M where
    M: Merge<Record: Serialize + DeserializeOwned, Output: Serialize + DeserializeOwned, Column: Restore<M>>
{
}

/// A shard's store opened: the store to continue, and the log's torn tail dropped, if any.
type Opened<M> = (ShardLog<M>, Option<TornTail>);

/// What recovery hands each file's batch and each logged turn to, and what it needs to read
/// the files.
pub(crate) struct Replay<'a, M: Merge> {
    pub(crate) geometry: &'a Geometry,
    pub(crate) merge: &'a M,
    pub(crate) file: &'a mut dyn FnMut(Loaded<M>) -> Result<(), Error>,
    pub(crate) turn: &'a mut dyn FnMut(LoggedTurn<M::Record>) -> Result<(), Error>,
}

/// The files of a durable pipeline, on some [`Storage`], with the codecs bound to the merge:
/// what recovery opens.
trait Files<M: Merge>: Send + Sync {
    fn directory(&self, root: &Path, wanted: Manifest) -> Result<Directory, Error>;
    fn tip(&self, dir: &Path, shard: u32) -> Result<Tip, Error>;
    fn open(
        &self,
        dir: &Path,
        shard: u32,
        options: LogOptions,
        cut: u64,
        replay: Replay<'_, M>,
    ) -> Result<Opened<M>, Error>;
}

/// [`Files`] on a [`Storage`].
struct On<S>(S);

impl<S: Storage, M: Persist> Files<M> for On<S> {
    fn directory(&self, root: &Path, wanted: Manifest) -> Result<Directory, Error> {
        Directory::open(&self.0, root, wanted)
    }

    fn tip(&self, dir: &Path, shard: u32) -> Result<Tip, Error> {
        read_tip(&self.0, dir, shard)
    }

    fn open(
        &self,
        dir: &Path,
        shard: u32,
        options: LogOptions,
        cut: u64,
        replay: Replay<'_, M>,
    ) -> Result<Opened<M>, Error> {
        let Replay { geometry, merge, file, turn } = replay;
        let files = checkpoint::open(self.0.clone(), dir, shard, geometry, merge, file)?;
        let saved = files.tip();
        if saved.frontier > cut {
            return Err(files_past_cut(dir, saved.frontier, cut));
        }
        let (log, recovered) = LogWriter::open_at(self.0.clone(), dir, shard, options, saved, cut, turn)?;
        let top = geometry.span(geometry.max_level());
        let checkpoint_span = options.checkpoint_commits.div_ceil(top).max(1).saturating_mul(top);
        let store = Store::new(log, files, geometry.max_level(), checkpoint_span, self.0.clone());
        Ok((Box::new(store), recovered.torn))
    }
}

/// The error for batch files of the shard in `dir` that reach commit `saved`, past `cut`, the
/// lowest end of the shards' logs.
fn files_past_cut(dir: &Path, saved: u64, cut: u64) -> Error {
    Error::Corrupt {
        file: dir.display().to_string(),
        offset: 0,
        why: format!("the batch files reach commit {saved}, past the end of some shard's log at {cut}"),
    }
}

/// What `Builder::durable` asked for, with the codecs bound to the merge.
pub(crate) struct DurableSpec<M> {
    pub(crate) root: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) options: LogOptions,
    files: Box<dyn Files<M>>,
}

impl<M> std::fmt::Debug for DurableSpec<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableSpec").field("root", &self.root).field("durability", &self.durability).finish()
    }
}

impl<M: Persist> DurableSpec<M> {
    /// On the real file system.
    pub(crate) fn new(root: PathBuf) -> Self {
        Self::on(DiskStorage, root)
    }

    /// On `storage` (tests hand it a file system that forgets what was not synced).
    pub(crate) fn on<S: Storage>(storage: S, root: PathBuf) -> Self {
        let files = Box::new(On(storage));
        Self { root, durability: Durability::default(), options: LogOptions::default(), files }
    }
}

/// A durable pipeline, opened: its directory (locked), the routing key, the recovered
/// frontier, and per shard the rebuilt spine and the log to continue.
pub(crate) struct Recovered<M: Merge> {
    pub(crate) directory: Directory,
    pub(crate) frontier: u64,
    pub(crate) shards: Vec<(Spine<M>, ShardLog<M>)>,
    /// Torn tails dropped, over every shard.
    pub(crate) torn_tails: u64,
}

/// Opens `spec.root` for a pipeline with these settings and recovers what it holds.
pub(crate) fn recover<M: Merge>(
    spec: &DurableSpec<M>,
    manifest: Manifest,
    router: impl FnOnce((u64, u64)) -> Arc<Router>,
    spine: impl Fn() -> Spine<M>,
    merge: &M,
    budget: usize,
) -> Result<(Recovered<M>, Arc<Router>), Error> {
    let directory = spec.files.directory(&spec.root, manifest)?;
    let router = router(directory.manifest.routing);
    let shards = router.shards() as u32;
    // The cut is the lowest end of the shards' logs. Shard 0's end is not read ahead: its
    // replay is cut at the lowest end of the others (with one shard, nowhere), so it stops at
    // the cut either way and its log is read once; its end then lowers the cut for the rest.
    let mut frontier = u64::MAX;
    for shard in 1..shards {
        frontier = frontier.min(spec.files.tip(&shard_dir(&spec.root, shard), shard)?.frontier);
    }
    let mut recovered = Recovered { directory, frontier, shards: Vec::new(), torn_tails: 0 };
    for shard in 0..shards {
        let dir = shard_dir(&spec.root, shard);
        let names = router.directory(shard as usize);
        let spine = RefCell::new(spine().saving());
        let name = |id: u32, name: &str| -> Result<(), Error> {
            let interned = names.intern(name);
            if interned != id {
                return Err(Error::Corrupt {
                    file: dir.display().to_string(),
                    offset: 0,
                    why: format!("{name:?} is named path {id}, but it is path {interned} here"),
                });
            }
            Ok(())
        };
        let mut file = |loaded: Loaded<M>| -> Result<(), Error> {
            for (i, path) in loaded.names.iter().enumerate() {
                name(loaded.names_from + i as u32, path)?;
            }
            spine.borrow_mut().restore(loaded.batches, loaded.end);
            Ok(())
        };
        // Rows of several turns sealed at once: the layout is a function of commit numbers
        // alone, so fewer, larger seals build the same segments with far less merging (forming
        // builds the higher levels directly). Each seal ends on a block boundary (see
        // `seal_end`); the rows past it wait in `carry` for the next one.
        let mut rows = Vec::new();
        let mut carry = Vec::new();
        let mut pending = 0;
        // The frontier of the turn before: a turn's rows are all above it.
        let mut before = 0;
        let mut turn = |mut turn: LoggedTurn<M::Record>| -> Result<(), Error> {
            for (i, path) in turn.names.iter().enumerate() {
                name(turn.names_from + i as u32, path)?;
            }
            let mut spine = spine.borrow_mut();
            // Turns (or their first rows) the batch files already hold.
            let saved = spine.frontier();
            let previous = std::mem::replace(&mut before, turn.frontier);
            if turn.frontier <= saved {
                return Ok(());
            }
            if previous >= saved {
                // Moved whole, not row by row.
                rows.append(&mut turn.rows);
            } else {
                rows.extend(turn.rows.into_iter().filter(|row| row.commit > saved));
            }
            pending = turn.frontier;
            if rows.len() >= REPLAY_ROWS {
                let end = seal_end(spine.geometry(), spine.frontier(), pending);
                // Rows keep their order on both sides: a merge may depend on the order of one
                // path's parts within a commit.
                carry.extend(rows.extract_if(.., |row| row.commit > end));
                let drained = rows.len();
                // Every other shard reaches `pending`, and so `end`, too, so it bounds forming
                // (rule 1 of `crate::read::view`).
                spine.seal(merge, &mut rows, end, end);
                debug_assert!(rows.is_empty(), "a seal takes every row");
                rows.append(&mut carry);
                let mut fuel = policy::fuel(budget, drained);
                spine.work(merge, &mut fuel);
            }
            Ok(())
        };
        let geometry = spine.borrow().geometry().clone();
        let replay = Replay { geometry: &geometry, merge, file: &mut file, turn: &mut turn };
        let (log, torn) = spec.files.open(&dir, shard, spec.options, frontier, replay)?;
        recovered.torn_tails += u64::from(torn.is_some());
        if shard == 0 {
            // Replayed up to the others' lowest end or its own, whichever is lower: the cut.
            frontier = frontier.min(log.tip().frontier);
            recovered.frontier = frontier;
            let saved = log.saved().frontier;
            if saved > frontier {
                return Err(files_past_cut(&dir, saved, frontier));
            }
        }
        let mut spine = spine.into_inner();
        // The rows left, and the frontier moved to the cut (a shard whose log ends there without
        // a turn of its own moves too).
        debug_assert!(pending <= frontier);
        spine.seal(merge, &mut rows, frontier, frontier);
        let mut fuel = usize::MAX;
        spine.work(merge, &mut fuel);
        spine.release_buffers();
        recovered.shards.push((spine, log));
    }
    for (shard, (spine, log)) in recovered.shards.iter().enumerate() {
        // The names file holds no batch: a window that shows a commit it covers would show it
        // empty, and a read would silently miss what was there.
        let expired = log.expired();
        if expired > 0 && spine.window_start(recovered.frontier) <= expired {
            return Err(Error::Incompatible {
                file: shard_dir(&spec.root, shard as u32).display().to_string(),
                why: format!(
                    "a retention window dropped commits up to {expired}, and this pipeline's retention \
                     would show them (it shows from commit {} at the recovered frontier {})",
                    spine.window_start(recovered.frontier),
                    recovered.frontier
                ),
            });
        }
    }
    Ok((recovered, router))
}
