//! Opening a durable pipeline: the directory, every shard's log cut at the same frontier, and
//! the shards' spines rebuilt from it exactly as a live pipeline builds them.
//!
//! Recovery reads where every shard's log ends (frames checked, rows not decoded), takes the
//! lowest of those ends as the recovered frontier `R` (a commit above it is missing from some
//! shard's log: it was never durable, and its number is issued again), then replays each
//! shard's log cut at `R` turn by turn into a fresh spine, as the shard's worker would have
//! sealed those turns. The layout is a function of commit numbers alone, so the spine equals
//! the one that would have been built without the crash; memory stays what the spine holds
//! plus one turn.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durable::directory::{Directory, Manifest};
use crate::durable::format::{LoggedTurn, Tip, Turn};
use crate::durable::reader::{read_tip, shard_dir, TornTail};
use crate::durable::storage::{DiskStorage, Storage};
use crate::durable::writer::{LogOptions, LogWriter};
use crate::error::Error;
use crate::ingest::router::Router;
use crate::merge::Merge;
use crate::shard::policy;
use crate::shard::sort::Row;
use crate::shard::spine::Spine;
use crate::sync::Arc;

/// What survives a crash, and so what [`Pipeline::wait_durable`](crate::Pipeline::wait_durable)
/// waits for.
///
/// A commit is durable once every shard's log holds its turn (the pipeline's durable frontier
/// is the lowest of the shards', as the visible cut is). After any crash the recovered
/// frontier is at least every commit `wait_durable` returned `Ok` for at a level that covers
/// that crash, and the state equals that of exactly the commits up to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Durable once its turn was handed to the operating system (`write` returned): it
    /// survives the process being killed, not the machine crashing or losing power. The
    /// default.
    #[default]
    Written,
    /// Durable once its turn was `fdatasync`ed, with every file and directory entry it depends
    /// on: it survives a power cut. A commit becomes visible only once it is synced.
    Synced,
}

/// A shard's log as its worker uses it, whatever the records' codec.
pub(crate) trait TurnLog<R>: Send {
    /// Logs a turn: every row of the shard's commits in `(tip, frontier]`, and the path
    /// names interned since the tip (ids from `tip().names` on).
    fn append(&mut self, frontier: u64, names: &[Arc<str>], rows: &[Row<R>]) -> Result<(), Error>;
    /// Syncs every turn logged; returns the frontier synced.
    fn sync(&mut self) -> Result<u64, Error>;
    /// Where the log stands.
    fn tip(&self) -> Tip;
}

impl<R: Serialize, S: Storage> TurnLog<R> for LogWriter<S> {
    fn append(&mut self, frontier: u64, names: &[Arc<str>], rows: &[Row<R>]) -> Result<(), Error> {
        LogWriter::append(self, &Turn { frontier, names, rows })
    }

    fn sync(&mut self) -> Result<u64, Error> {
        LogWriter::sync(self)
    }

    fn tip(&self) -> Tip {
        LogWriter::tip(self)
    }
}

/// A shard's log as its worker holds it.
pub(crate) type ShardLog<M> = Box<dyn TurnLog<<M as Merge>::Record>>;

/// A shard's log opened: the log to continue, and the torn tail dropped, if any.
type Opened<R> = (Box<dyn TurnLog<R>>, Option<TornTail>);

/// The files of a durable pipeline, on some [`Storage`], with the codec bound to the record
/// type: what recovery opens.
trait Files<R>: Send + Sync {
    fn directory(&self, root: &Path, wanted: Manifest) -> Result<Directory, Error>;
    fn tip(&self, dir: &Path, shard: u32) -> Result<Tip, Error>;
    fn open(
        &self,
        dir: &Path,
        shard: u32,
        options: LogOptions,
        cut: u64,
        each: &mut dyn FnMut(LoggedTurn<R>) -> Result<(), Error>,
    ) -> Result<Opened<R>, Error>;
}

/// [`Files`] on a [`Storage`].
struct On<S>(S);

impl<S: Storage, R: Serialize + DeserializeOwned + Send + 'static> Files<R> for On<S> {
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
        each: &mut dyn FnMut(LoggedTurn<R>) -> Result<(), Error>,
    ) -> Result<Opened<R>, Error> {
        let (writer, recovered) = LogWriter::open_at(self.0.clone(), dir, shard, options, cut, each)?;
        Ok((Box::new(writer), recovered.torn))
    }
}

/// What `Builder::durable` asked for, with the codec bound to the record type there.
pub(crate) struct DurableSpec<R> {
    pub(crate) root: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) options: LogOptions,
    files: Box<dyn Files<R>>,
}

impl<R> std::fmt::Debug for DurableSpec<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableSpec").field("root", &self.root).field("durability", &self.durability).finish()
    }
}

impl<R: Serialize + DeserializeOwned + Send + 'static> DurableSpec<R> {
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
    spec: &DurableSpec<M::Record>,
    manifest: Manifest,
    router: impl FnOnce((u64, u64)) -> Arc<Router>,
    spine: impl Fn() -> Spine<M>,
    merge: &M,
    budget: usize,
) -> Result<(Recovered<M>, Arc<Router>), Error> {
    let directory = spec.files.directory(&spec.root, manifest)?;
    let router = router(directory.manifest.routing);
    let shards = router.shards() as u32;
    let mut frontier = u64::MAX;
    for shard in 0..shards {
        frontier = frontier.min(spec.files.tip(&shard_dir(&spec.root, shard), shard)?.frontier);
    }
    let mut recovered = Recovered { directory, frontier, shards: Vec::new(), torn_tails: 0 };
    for shard in 0..shards {
        let dir = shard_dir(&spec.root, shard);
        let names = router.directory(shard as usize);
        let mut spine = spine();
        let mut rows = Vec::new();
        let mut replay = |turn: LoggedTurn<M::Record>| -> Result<(), Error> {
            for (i, name) in turn.names.iter().enumerate() {
                let id = turn.names_from + i as u32;
                let interned = names.intern(name);
                if interned != id {
                    return Err(Error::Corrupt {
                        file: dir.display().to_string(),
                        offset: 0,
                        why: format!("the log names {name:?} as path {id}, but it is path {interned} here"),
                    });
                }
            }
            rows.clear();
            rows.extend(turn.rows);
            let drained = rows.len();
            // The turn as its worker sealed it; every other shard reaches `frontier` too, so
            // the turn's own frontier bounds forming (rule 1 of `crate::read::view`).
            spine.seal(merge, &mut rows, turn.frontier, turn.frontier);
            let mut fuel = policy::fuel(budget, drained);
            spine.work(merge, &mut fuel);
            Ok(())
        };
        let (log, torn) = spec.files.open(&dir, shard, spec.options, frontier, &mut replay)?;
        recovered.torn_tails += u64::from(torn.is_some());
        // Shards whose log ends at `frontier` without a turn of their own there still move to it.
        spine.seal(merge, &mut Vec::new(), frontier, frontier);
        let mut fuel = usize::MAX;
        spine.work(merge, &mut fuel);
        recovered.shards.push((spine, log));
    }
    Ok((recovered, router))
}
