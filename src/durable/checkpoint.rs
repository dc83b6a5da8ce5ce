//! Batch files: a shard's top-level batches, saved whole in files once formed, so that recovery
//! loads them instead of replaying the log, and the log can go below them.
//!
//! A top-level batch is immutable, sorted and columnar from the moment it is formed (without a
//! retention window it is history and never changes again), so it is the file's content as it
//! stands: the path ids, each one's segments, and the segments' outputs. The files cover the
//! commits without a gap, each a *checkpoint range* of about `LogOptions::checkpoint_commits`
//! (whole top-level blocks, ending at a multiple of the checkpoint span or at the end of a run
//! of blocks formed at once that crosses it) and holding every top-level batch of the shard in
//! it: none, one or many. One file per range keeps the syncs a file costs rare, whatever the
//! geometry. A file is written whole under a temporary name, synced, renamed, and its
//! directory synced (LevelDB's and RocksDB's way with their tables), so a crash leaves either no
//! file or the whole file: any damage to a file under its final name is corruption, never a
//! torn tail.
//!
//! The *checkpoint* of a shard is where its files end: every commit up to its frontier is in
//! files, and its path ids below `names` are named in them (each file names the ids interned
//! since the file before, as a log turn does). A log segment goes once the segment after it
//! starts at or below the checkpoint.
//!
//! **Under a retention window** files leave the window as their blocks do. Their batches go,
//! but their names must stay (a path named there may have data in the window, and ids are
//! positions in the files' chain of names). So the files wholly before the window are replaced
//! by one *names file*, `names-1-E`: every name up to `E` and no batch
//! ([`expire`](Checkpoint::expire)). It is written whole under a temporary name like any file;
//! only then are the files it replaces removed. A crash between leaves files that the names
//! file covers: opening removes them, and nothing else may overlap. A window never reaches
//! back past the names file (`crate::durable::recovery` refuses to open with a wider one).
//!
//! A file is written only once every shard's log is synced past its end (the worker asks every
//! shard for that sync and waits: `crate::shard::worker`), so recovery's frontier, the lowest
//! log end over the shards, is never below a file: nothing a file holds is cut away by a power
//! cut that took a log's unsynced tail.
//!
//! The bytes are in the FORMAT section of `crate::durable`.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durable::codec::{put_record, put_varint, Cursor};
use crate::durable::format::{checksum, u32_at, u64_at, Tip};
use crate::durable::storage::{Storage, StorageFile};
use crate::error::Error;
use crate::merge::{Column, Merge, Restore};
use crate::shard::batch::{Batch, Parts};
use crate::sync::Arc;
use crate::tier::Geometry;

/// The first bytes of every batch file.
const MAGIC: [u8; 8] = *b"LSTP.BAT";
/// The batch file format this build writes and reads (another is `Error::Incompatible`).
pub(crate) const VERSION: u32 = 1;
/// Bytes in a batch file's header.
const HEADER_LEN: usize = 48;
/// Names of files still being written: removed when a shard is opened.
const TEMPORARY: &str = "tmp-";

/// What a file holds: top-level batches, or (the first file only, under a retention window)
/// the names of every file the window left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    // First: of two files over one range, the names file replaced the batch file.
    Names,
    Batches,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Names => "names-",
            Kind::Batches => "batch-",
        }
    }
}

/// A file's name: `batch-` (or `names-`), its first and last commit in 20 digits each, so
/// names sort by range.
fn file_name(kind: Kind, start: u64, end: u64) -> String {
    format!("{}{start:020}-{end:020}", kind.prefix())
}

/// What a file's name gives: its kind and range; `None` for any other name.
fn file_range(name: &str) -> Option<(Kind, u64, u64)> {
    let (kind, rest) = [Kind::Names, Kind::Batches]
        .into_iter()
        .find_map(|kind| Some((kind, name.strip_prefix(kind.prefix())?)))?;
    let (start, end) = rest.split_once('-')?;
    let number = |digits: &str| {
        (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
    };
    Some((kind, number(start)?, number(end)?))
}

/// One file of a shard, as the checkpoint keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Saved {
    kind: Kind,
    start: u64,
    end: u64,
    /// Path ids named up to the end of this file.
    names: u32,
}

/// What a batch file holds besides its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    shard: u32,
    level: u32,
    /// Path ids named before this file.
    names_from: u32,
    /// The file's first and last commit: it starts where the file before it ended.
    start: u64,
    end: u64,
}

impl Head {
    fn encode(&self, payload: &[u8]) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.shard.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.level.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.names_from.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.start.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.end.to_le_bytes());
        bytes[40..44].copy_from_slice(&checksum(payload).to_le_bytes());
        let sum = checksum(&bytes[..44]);
        bytes[44..48].copy_from_slice(&sum.to_le_bytes());
        bytes
    }
}

/// One shard's batch files: where they end, and how to add to them.
#[derive(Debug)]
pub(crate) struct Checkpoint<S> {
    storage: S,
    dir: PathBuf,
    shard: u32,
    /// Where the files end: commits up to `frontier` are in files, ids below `names` named.
    tip: Tip,
    /// Every file, in range order.
    files: VecDeque<Saved>,
    /// The file being built, kept from file to file.
    buf: Vec<u8>,
}

impl<S: Storage> Checkpoint<S> {
    /// Where the files end.
    pub(crate) fn tip(&self) -> Tip {
        self.tip
    }

    /// Where the names file ends: commits up to it left a retention window (0: none did).
    pub(crate) fn expired(&self) -> u64 {
        self.files.front().filter(|file| file.kind == Kind::Names).map_or(0, |file| file.end)
    }

    /// The last commit of each file that holds batches, in order.
    pub(crate) fn ends(&self) -> Vec<u64> {
        self.files.iter().filter(|file| file.kind == Kind::Batches).map(|file| file.end).collect()
    }

    /// Replaces every file ending at or below `through` by the names file up to the last of
    /// them, which names ids from 0 on with `names` (the shard's names, at least as many as
    /// those files name). Returns once the names file is synced and the files it replaces are
    /// removed, their removal synced.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the disk refuses (kind `InvalidData` if `names` are too few).
    pub(crate) fn expire(&mut self, through: u64, level: u32, names: &[Arc<str>]) -> Result<(), Error> {
        let count = self.files.iter().take_while(|file| file.end <= through).count();
        let Some(last) = count.checked_sub(1).map(|last| self.files[last]) else { return Ok(()) };
        if last.kind == Kind::Names {
            return Ok(()); // that one alone: nothing left the window since
        }
        let Some(names) = names.get(..last.names as usize) else {
            return Err(Error::Io {
                what: format!("saving the names of shard {} up to commit {}", self.shard, last.end),
                kind: io::ErrorKind::InvalidData,
                message: format!("{} names handed over, where the files name {}", names.len(), last.names),
            });
        };
        let head = Head { shard: self.shard, level, names_from: 0, start: 1, end: last.end };
        self.buf.clear();
        self.buf.resize(HEADER_LEN, 0);
        encode_names(&mut self.buf, names);
        put_varint(&mut self.buf, 0); // no batch
        let header = head.encode(&self.buf[HEADER_LEN..]);
        self.buf[..HEADER_LEN].copy_from_slice(&header);
        let path = self.dir.join(file_name(Kind::Names, 1, last.end));
        write_atomically(&self.storage, &self.dir, &path, &self.buf)?;
        for file in self.files.drain(..count) {
            let path = self.dir.join(file_name(file.kind, file.start, file.end));
            self.storage.remove(&path).map_err(|e| Error::io(format!("removing {}", path.display()), &e))?;
        }
        self.storage
            .sync_dir(&self.dir)
            .map_err(|e| Error::io(format!("syncing {}", self.dir.display()), &e))?;
        self.files.push_front(Saved { kind: Kind::Names, start: 1, end: last.end, names: last.names });
        Ok(())
    }

    /// Saves the file of commits from the files' end to `end`, holding `batches` (the shard's
    /// top-level batches in that range, ascending) and naming ids from the files' `names` on
    /// with `names`. Returns once the file and its name are synced.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the disk refuses (kind `InvalidData` if an output does not encode).
    pub(crate) fn save<M: Merge>(
        &mut self,
        merge: &M,
        batches: &[Arc<Batch<M>>],
        end: u64,
        level: u32,
        names: &[Arc<str>],
    ) -> Result<(), Error>
    where
        M::Output: Serialize,
    {
        let start = self.tip.frontier + 1;
        debug_assert!(end >= start, "a file holds one commit at least");
        debug_assert!(batches.iter().all(|b| b.start >= start && b.end <= end));
        let head = Head { shard: self.shard, level, names_from: self.tip.names, start, end };
        self.buf.clear();
        self.buf.resize(HEADER_LEN, 0);
        if let Err(why) = encode(&mut self.buf, merge, start, batches, names) {
            return Err(Error::Io {
                what: format!("saving commits {start}..={end} of shard {}", self.shard),
                kind: io::ErrorKind::InvalidData,
                message: format!("an output does not encode: {why}"),
            });
        }
        let header = head.encode(&self.buf[HEADER_LEN..]);
        self.buf[..HEADER_LEN].copy_from_slice(&header);
        let path = self.dir.join(file_name(Kind::Batches, start, end));
        write_atomically(&self.storage, &self.dir, &path, &self.buf)?;
        self.tip = Tip { frontier: end, names: self.tip.names + names.len() as u32 };
        self.files.push_back(Saved { kind: Kind::Batches, start, end, names: self.tip.names });
        Ok(())
    }
}

/// Bytes of a batch file written between two syncs of it.
///
/// A file is synced piece by piece so that no single sync has much to flush (RocksDB's
/// `bytes_per_sync` does the same for its tables): on a journaling file system (ext4's ordered
/// mode) the log's own fdatasync, on the sync thread, can wait for a journal commit that
/// flushes this file's data too, and the acknowledgments wait with it. Small in the unit tests,
/// so their power cuts also fall between the pieces of a file.
#[cfg(not(test))]
const SYNC_EVERY: usize = 256 << 10;
#[cfg(test)]
const SYNC_EVERY: usize = 64;

/// Writes `bytes` to `path` so that a crash leaves the whole file or none: a temporary name,
/// synced (piece by piece), renamed, and the directory synced.
fn write_atomically<S: Storage>(storage: &S, dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let temporary = dir.join(format!("{TEMPORARY}{name}"));
    let what = |doing: &str, path: &Path| format!("{doing} {}", path.display());
    match storage.remove(&temporary) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(Error::io(what("removing", &temporary), &error))
        }
        _ => {}
    }
    let mut file = storage.create(&temporary).map_err(|e| Error::io(what("creating", &temporary), &e))?;
    for piece in bytes.chunks(SYNC_EVERY) {
        file.append(piece).map_err(|e| Error::io(what("writing", &temporary), &e))?;
        file.sync().map_err(|e| Error::io(what("syncing", &temporary), &e))?;
    }
    drop(file);
    storage.rename(&temporary, path).map_err(|e| Error::io(what("renaming", &temporary), &e))?;
    storage.sync_dir(dir).map_err(|e| Error::io(what("syncing", dir), &e))
}

/// Appends the payload: the names, then each batch: its range, its paths and their segment
/// counts, its segments' ends (unless it is one block), its outputs.
fn encode<M: Merge>(
    buf: &mut Vec<u8>,
    merge: &M,
    start: u64,
    batches: &[Arc<Batch<M>>],
    names: &[Arc<str>],
) -> postcard::Result<()>
where
    M::Output: Serialize,
{
    encode_names(buf, names);
    put_varint(buf, batches.len() as u64);
    let mut from = start;
    for batch in batches {
        put_varint(buf, batch.start - from);
        put_varint(buf, batch.end - batch.start);
        from = batch.end + 1;
        put_varint(buf, batch.paths() as u64);
        let mut next = 0;
        for i in 0..batch.paths() {
            let (id, segments) = batch.path(i);
            put_varint(buf, u64::from(id - next));
            put_varint(buf, segments.len() as u64);
            next = id + 1;
        }
        buf.push(u8::from(batch.is_block()));
        if !batch.is_block() {
            for segment in 0..batch.segments() {
                put_varint(buf, batch.end_of(segment) - batch.start);
            }
        }
        for segment in 0..batch.segments() {
            put_record(buf, &M::Column::read(merge, &[batch.part(segment)]))?;
        }
    }
    Ok(())
}

/// Appends a file's names: their count, then each one's length and bytes.
fn encode_names(buf: &mut Vec<u8>, names: &[Arc<str>]) {
    put_varint(buf, names.len() as u64);
    for name in names {
        put_varint(buf, name.len() as u64);
        buf.extend_from_slice(name.as_bytes());
    }
}

/// A batch file read back: its batches and the names it adds.
pub(crate) struct Loaded<M: Merge> {
    pub(crate) batches: Vec<Batch<M>>,
    /// The file's last commit.
    pub(crate) end: u64,
    /// The names of path ids `names_from..`.
    pub(crate) names_from: u32,
    pub(crate) names: Vec<String>,
}

/// Opens shard `shard`'s batch files in `dir`: removes files left half-written by a crash,
/// checks that they follow one another without a gap, and hands each file's content to `each`
/// in order. Returns the checkpoint, to add files to.
///
/// # Errors
///
/// [`Error::Corrupt`] for a file damaged or missing, naming it; [`Error::Incompatible`] for
/// another format version; [`Error::Io`]; or what `each` returns.
pub(crate) fn open<S: Storage, M: Merge>(
    storage: S,
    dir: &Path,
    shard: u32,
    geometry: &Geometry,
    merge: &M,
    mut each: impl FnMut(Loaded<M>) -> Result<(), Error>,
) -> Result<Checkpoint<S>, Error>
where
    M::Output: DeserializeOwned,
    M::Column: Restore<M>,
{
    let names = match storage.list(dir) {
        Ok(names) => names,
        Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(Error::io(format!("listing {}", dir.display()), &error)),
    };
    for name in names.iter().filter(|name| name.starts_with(TEMPORARY)) {
        let path = dir.join(name);
        storage.remove(&path).map_err(|e| Error::io(format!("removing {}", path.display()), &e))?;
    }
    let mut ranges: Vec<(Kind, u64, u64)> = names.iter().filter_map(|name| file_range(name)).collect();
    // By start, the widest first: a names file comes before the files it replaced.
    ranges.sort_unstable_by_key(|&(kind, start, end)| (start, std::cmp::Reverse(end), kind));
    let mut tip = Tip::default();
    let mut files = VecDeque::new();
    let mut replaced = false;
    for (kind, start, end) in ranges {
        let path = dir.join(file_name(kind, start, end));
        let file = path.display().to_string();
        let expired = files.front().filter(|first: &&Saved| first.kind == Kind::Names).map_or(0, |f| f.end);
        if end <= expired {
            // Replaced by the names file, which a crash kept from removing it.
            storage.remove(&path).map_err(|e| Error::io(format!("removing {file}"), &e))?;
            replaced = true;
            continue;
        }
        if kind == Kind::Names && start != 1 {
            return Err(Error::Corrupt {
                file,
                offset: 0,
                why: "a names file that does not start at 1".into(),
            });
        }
        if start != tip.frontier + 1 {
            let what = if start <= tip.frontier { "they overlap" } else { "a batch file is missing" };
            let why = format!(
                "it starts at commit {start}, but the files before it end at {}: {what}",
                tip.frontier
            );
            return Err(Error::Corrupt { file, offset: 0, why });
        }
        let bytes = storage.read(&path).map_err(|error| Error::io(format!("reading {file}"), &error))?;
        let expected = Head { shard, level: geometry.max_level(), names_from: tip.names, start, end };
        let loaded =
            decode(&bytes, expected, geometry, merge).map_err(|refused| refused.into_error(file.clone()))?;
        if kind == Kind::Names && !loaded.batches.is_empty() {
            return Err(Error::Corrupt { file, offset: 0, why: "a names file that holds batches".into() });
        }
        tip = Tip { frontier: end, names: tip.names + loaded.names.len() as u32 };
        files.push_back(Saved { kind, start, end, names: tip.names });
        each(loaded)?;
    }
    if replaced {
        storage.sync_dir(dir).map_err(|e| Error::io(format!("syncing {}", dir.display()), &e))?;
    }
    Ok(Checkpoint { storage, dir: dir.to_path_buf(), shard, tip, files, buf: Vec::new() })
}

/// Why a file was refused: corrupt (at an offset, why) or of another version.
enum Refused {
    Corrupt(u64, String),
    Version(u32),
}

impl Refused {
    fn into_error(self, file: String) -> Error {
        match self {
            Refused::Corrupt(offset, why) => Error::Corrupt { file, offset, why },
            Refused::Version(version) => Error::Incompatible {
                file,
                why: format!("batch file format version {version}; this lockstep reads version {VERSION}"),
            },
        }
    }
}

/// Reads a batch file that must be `expected` (its name gives the range, the files before it
/// the rest).
fn decode<M: Merge>(
    bytes: &[u8],
    expected: Head,
    geometry: &Geometry,
    merge: &M,
) -> Result<Loaded<M>, Refused>
where
    M::Output: DeserializeOwned,
    M::Column: Restore<M>,
{
    let corrupt = |offset: usize, why: String| Refused::Corrupt(offset as u64, why);
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(0, format!("{} bytes, fewer than a header", bytes.len())));
    }
    if bytes[0..8] != MAGIC {
        return Err(corrupt(0, "not a lockstep batch file (bad magic)".into()));
    }
    match u32_at(bytes, 8) {
        VERSION => {}
        other => return Err(Refused::Version(other)),
    }
    if u32_at(bytes, 44) != checksum(&bytes[..44]) {
        return Err(corrupt(0, "the header fails its checksum".into()));
    }
    let head = Head {
        shard: u32_at(bytes, 12),
        level: u32_at(bytes, 16),
        names_from: u32_at(bytes, 20),
        start: u64_at(bytes, 24),
        end: u64_at(bytes, 32),
    };
    if head != expected {
        return Err(corrupt(0, format!("the header says {head:?} where {expected:?} belongs")));
    }
    let payload = &bytes[HEADER_LEN..];
    if u32_at(bytes, 40) != checksum(payload) {
        return Err(corrupt(HEADER_LEN, "the payload fails its checksum".into()));
    }
    decode_payload(payload, head, geometry, merge).map_err(|(at, why)| corrupt(HEADER_LEN + at, why))
}

/// Where a payload is refused, and why.
type Bad = (usize, String);

/// The payload of a file whose header is `head`, checked to the last byte.
fn decode_payload<M: Merge>(
    payload: &[u8],
    head: Head,
    geometry: &Geometry,
    merge: &M,
) -> Result<Loaded<M>, Bad>
where
    M::Output: DeserializeOwned,
    M::Column: Restore<M>,
{
    let mut cursor = Cursor::new(payload);
    let count = varint(&mut cursor)?;
    // Each name takes a byte at least: a count past the bytes left is damage, not an allocation.
    let mut names = Vec::with_capacity(count.min(cursor.remaining() as u64) as usize);
    for _ in 0..count {
        let len = varint(&mut cursor)?;
        let bytes = cursor.bytes(len).map_err(|why| (cursor.position(), why))?;
        let name =
            std::str::from_utf8(bytes).map_err(|_| (cursor.position(), "a path name is not UTF-8".into()))?;
        names.push(name.to_owned());
    }
    let named = u64::from(head.names_from) + names.len() as u64;
    let count = varint(&mut cursor)?;
    let mut batches = Vec::with_capacity(count.min(cursor.remaining() as u64) as usize);
    let mut from = head.start;
    for _ in 0..count {
        let batch = decode_batch(&mut cursor, from, head, named, geometry, merge)?;
        from = batch.end + 1;
        batches.push(batch);
    }
    if cursor.remaining() > 0 {
        return Err((cursor.position(), format!("{} bytes after the last batch", cursor.remaining())));
    }
    Ok(Loaded { batches, end: head.end, names_from: head.names_from, names })
}

fn varint(cursor: &mut Cursor<'_>) -> Result<u64, Bad> {
    cursor.varint().map_err(|why| (cursor.position(), why))
}

/// One batch of a file, starting at `from` or later; every path id below `named`.
fn decode_batch<M: Merge>(
    cursor: &mut Cursor<'_>,
    from: u64,
    head: Head,
    named: u64,
    geometry: &Geometry,
    merge: &M,
) -> Result<Batch<M>, Bad>
where
    M::Output: DeserializeOwned,
    M::Column: Restore<M>,
{
    let at = cursor.position();
    let start = from.checked_add(varint(cursor)?);
    let end = start.and_then(|start| start.checked_add(varint(cursor).ok()?));
    let span = geometry.span(head.level);
    let (start, end) = match (start, end) {
        (Some(start), Some(end))
            if end <= head.end && (start - 1).is_multiple_of(span) && end.is_multiple_of(span) =>
        {
            (start, end)
        }
        _ => {
            return Err((
                at,
                format!("a batch that is not a run of level-{} blocks in the file's range", head.level),
            ))
        }
    };
    let paths = varint(cursor)?;
    if paths == 0 {
        return Err((cursor.position(), "a batch without paths".into()));
    }
    let mut ids = Vec::with_capacity(paths.min(cursor.remaining() as u64) as usize);
    let (mut next, mut segments) = (0u64, 0u64);
    for _ in 0..paths {
        let id = next.saturating_add(varint(cursor)?);
        let count = varint(cursor)?;
        if id >= named {
            return Err((cursor.position(), format!("path id {id} is not named (ids below {named} are)")));
        }
        if count == 0 || count > (end - start + 1) / span {
            return Err((cursor.position(), format!("path {id} has {count} segments")));
        }
        // In range: `id < named <= u32::MAX + 1`, and `count` is at most the blocks in range.
        ids.push((id as u32, count as u32));
        segments += count;
        next = id + 1;
    }
    if segments > u64::from(u32::MAX) {
        return Err((cursor.position(), format!("{segments} segments, more than a batch holds")));
    }
    let block = match cursor.bytes(1).map_err(|why| (cursor.position(), why))? {
        [1] => true,
        [0] => false,
        other => return Err((cursor.position(), format!("{other:?} where the one-block flag belongs"))),
    };
    let ends = if block {
        if end - start + 1 != span || segments != paths {
            return Err((cursor.position(), "a one-block batch that is not one block".into()));
        }
        None
    } else {
        let mut ends = Vec::with_capacity(segments.min(cursor.remaining() as u64) as usize);
        for &(_, count) in &ids {
            let mut last = 0;
            for _ in 0..count {
                let segment_end = start.saturating_add(varint(cursor)?);
                if !segment_end.is_multiple_of(span) || segment_end <= last || segment_end > end {
                    let why = format!("a segment ends at {segment_end}, not a block end in order");
                    return Err((cursor.position(), why));
                }
                last = segment_end;
                ends.push(segment_end);
            }
        }
        Some(ends)
    };
    let mut outputs = Vec::with_capacity(segments.min(cursor.remaining() as u64) as usize);
    for _ in 0..segments {
        outputs.push(cursor.record::<M::Output>().map_err(|why| (cursor.position(), why))?);
    }
    let column = <M::Column as Restore<M>>::restore(merge, outputs);
    Ok(Batch::restore(Parts { level: head.level, start, end, paths: ids, ends, column }))
}
