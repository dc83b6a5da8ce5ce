//! Batch files: a shard's top-level batches, each saved whole in a file of its own once formed,
//! so that recovery loads them instead of replaying the log, and the log can go below them.
//!
//! A top-level batch is immutable, sorted and columnar from the moment it is formed (without a
//! retention window it is history and never changes again), so it is the file's content as it
//! stands: the path ids, each one's segments, and the segments' outputs. A file is written
//! whole under a temporary name, synced, renamed, and its directory synced (LevelDB's and
//! RocksDB's way with their tables), so a crash leaves either no file or the whole file: any
//! damage to a file under its final name is corruption, never a torn tail.
//!
//! Files *chain*: each names the end of the one before it (`after`), and starts after it. A
//! shard with nothing in some top-level blocks has no batch, hence no file, for them; the chain
//! says that the gap is empty rather than lost. A shard that goes long without data would keep
//! its log whole, so when an old log segment waits only on a file, the worker saves an empty
//! file (no paths) that carries the chain across the gap. The *checkpoint* of a shard is where
//! its chain ends: every commit up to its `end` is in files, and its path ids below `names` are
//! named in them (each file names the ids interned since the file before, as a log turn does).
//! A log segment goes once the segment after it starts at or below the checkpoint.
//!
//! A file is written only once every shard's log is synced past its end (the worker waits for
//! the durable frontier, and a turn crossing a top-level boundary is synced before it counts:
//! `crate::shard::worker`), so recovery's frontier, the lowest log end over the shards, is never
//! below a file: nothing a file holds is ever cut away by a power cut that took a log's tail.
//!
//! The bytes are in the FORMAT section of `crate::durable`.

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
const HEADER_LEN: usize = 56;
/// Names of files still being written: removed when a shard is opened.
const TEMPORARY: &str = "tmp-";

/// A batch file's name: `batch-`, its first and last commit in 20 digits each, so names sort by
/// range.
fn file_name(start: u64, end: u64) -> String {
    format!("batch-{start:020}-{end:020}")
}

/// The range a batch file's name gives; `None` for any other name.
fn file_range(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("batch-")?;
    let (start, end) = rest.split_once('-')?;
    let number = |digits: &str| {
        (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
    };
    Some((number(start)?, number(end)?))
}

/// What a batch file holds besides its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    shard: u32,
    level: u32,
    /// Path ids named before this file.
    names_from: u32,
    /// The end of the file before it in the chain (0 for the first).
    after: u64,
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
        bytes[24..32].copy_from_slice(&self.after.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.start.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.end.to_le_bytes());
        bytes[48..52].copy_from_slice(&checksum(payload).to_le_bytes());
        let sum = checksum(&bytes[..52]);
        bytes[52..56].copy_from_slice(&sum.to_le_bytes());
        bytes
    }
}

/// One shard's batch files: where its chain ends, and how to add to it.
#[derive(Debug)]
pub(crate) struct Checkpoint<S> {
    storage: S,
    dir: PathBuf,
    shard: u32,
    /// Where the chain ends: commits up to `frontier` are in files, ids below `names` named.
    tip: Tip,
    /// The file being built, kept from file to file.
    buf: Vec<u8>,
}

impl<S: Storage> Checkpoint<S> {
    /// Where the chain ends.
    pub(crate) fn tip(&self) -> Tip {
        self.tip
    }

    /// Saves `batch` (a top-level batch starting after the chain's end; `None`: an empty file
    /// carrying the chain to `end`), naming ids from the chain's `names` on with `names`.
    /// Returns once the file and its name are synced.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the disk refuses (kind `InvalidData` if an output does not encode).
    pub(crate) fn save<M: Merge>(
        &mut self,
        merge: &M,
        batch: Option<&Batch<M>>,
        end: u64,
        level: u32,
        names: &[Arc<str>],
    ) -> Result<(), Error>
    where
        M::Output: Serialize,
    {
        let after = self.tip.frontier;
        let start = batch.map_or(after + 1, |b| b.start);
        debug_assert!(start > after && end >= start, "a file starts after the chain's end");
        let head = Head { shard: self.shard, level, names_from: self.tip.names, after, start, end };
        self.buf.clear();
        self.buf.resize(HEADER_LEN, 0);
        if let Err(why) = encode(&mut self.buf, merge, batch, names) {
            return Err(Error::Io {
                what: format!("saving batch {start}..={end} of shard {}", self.shard),
                kind: io::ErrorKind::InvalidData,
                message: format!("an output does not encode: {why}"),
            });
        }
        let header = head.encode(&self.buf[HEADER_LEN..]);
        self.buf[..HEADER_LEN].copy_from_slice(&header);
        let path = self.dir.join(file_name(start, end));
        write_atomically(&self.storage, &self.dir, &path, &self.buf)?;
        self.tip = Tip { frontier: end, names: self.tip.names + names.len() as u32 };
        Ok(())
    }
}

/// Writes `bytes` to `path` so that a crash leaves the whole file or none: a temporary name,
/// synced, renamed, and the directory synced.
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
    file.append(bytes).map_err(|e| Error::io(what("writing", &temporary), &e))?;
    file.sync().map_err(|e| Error::io(what("syncing", &temporary), &e))?;
    drop(file);
    storage.rename(&temporary, path).map_err(|e| Error::io(what("renaming", &temporary), &e))?;
    storage.sync_dir(dir).map_err(|e| Error::io(what("syncing", dir), &e))
}

/// Appends the payload: the names, the paths and their segment counts, the segments' ends
/// (unless the batch is one block), the outputs.
fn encode<M: Merge>(
    buf: &mut Vec<u8>,
    merge: &M,
    batch: Option<&Batch<M>>,
    names: &[Arc<str>],
) -> postcard::Result<()>
where
    M::Output: Serialize,
{
    put_varint(buf, names.len() as u64);
    for name in names {
        put_varint(buf, name.len() as u64);
        buf.extend_from_slice(name.as_bytes());
    }
    let Some(batch) = batch else {
        put_varint(buf, 0);
        return Ok(());
    };
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
    Ok(())
}

/// A batch file read back: its batch (`None` for an empty one) and the names it adds.
pub(crate) struct Loaded<M: Merge> {
    pub(crate) batch: Option<Batch<M>>,
    /// The file's last commit.
    pub(crate) end: u64,
    /// The names of path ids `names_from..`.
    pub(crate) names_from: u32,
    pub(crate) names: Vec<String>,
}

/// Opens shard `shard`'s batch files in `dir`: removes files left half-written by a crash,
/// checks the chain, and hands each file's content to `each` in order. Returns the
/// checkpoint, to add files to.
///
/// # Errors
///
/// [`Error::Corrupt`] for a file damaged or missing from the chain, naming it;
/// [`Error::Incompatible`] for another format version; [`Error::Io`]; or what `each` returns.
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
    let mut ranges: Vec<(u64, u64)> = names.iter().filter_map(|name| file_range(name)).collect();
    ranges.sort_unstable();
    let mut tip = Tip::default();
    for (start, end) in ranges {
        let path = dir.join(file_name(start, end));
        let file = path.display().to_string();
        let bytes = storage.read(&path).map_err(|error| Error::io(format!("reading {file}"), &error))?;
        let expected = Head {
            shard,
            level: geometry.max_level(),
            names_from: tip.names,
            after: tip.frontier,
            start,
            end,
        };
        let loaded = decode(&bytes, expected, geometry, merge).map_err(|refused| refused.into_error(file))?;
        tip = Tip { frontier: end, names: tip.names + loaded.names.len() as u32 };
        each(loaded)?;
    }
    Ok(Checkpoint { storage, dir: dir.to_path_buf(), shard, tip, buf: Vec::new() })
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

/// Reads a batch file that must be `expected` (its name gives the range, the chain the rest).
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
    if u32_at(bytes, 52) != checksum(&bytes[..52]) {
        return Err(corrupt(0, "the header fails its checksum".into()));
    }
    let head = Head {
        shard: u32_at(bytes, 12),
        level: u32_at(bytes, 16),
        names_from: u32_at(bytes, 20),
        after: u64_at(bytes, 24),
        start: u64_at(bytes, 32),
        end: u64_at(bytes, 40),
    };
    if head.start <= head.after || head.end < head.start {
        return Err(corrupt(
            0,
            format!("the range {}..={} does not follow {}", head.start, head.end, head.after),
        ));
    }
    if head != expected {
        let why = if head.after != expected.after {
            format!(
                "it follows the file ending at {}, but the chain ends at {} here: a batch file is missing",
                head.after, expected.after
            )
        } else {
            format!("the header says {head:?} where {expected:?} belongs")
        };
        return Err(corrupt(0, why));
    }
    let payload = &bytes[HEADER_LEN..];
    if u32_at(bytes, 48) != checksum(payload) {
        return Err(corrupt(HEADER_LEN, "the payload fails its checksum".into()));
    }
    decode_payload(payload, head, geometry, merge).map_err(|(at, why)| corrupt(HEADER_LEN + at, why))
}

/// The payload of a file whose header is `head`, checked to the last byte.
fn decode_payload<M: Merge>(
    payload: &[u8],
    head: Head,
    geometry: &Geometry,
    merge: &M,
) -> Result<Loaded<M>, (usize, String)>
where
    M::Output: DeserializeOwned,
    M::Column: Restore<M>,
{
    let mut cursor = Cursor::new(payload);
    let at = |cursor: &Cursor<'_>, why: String| (cursor.position(), why);
    let count = cursor.varint().map_err(|why| at(&cursor, why))?;
    // Each name takes a byte at least: a count past the bytes left is damage, not an allocation.
    let mut names = Vec::with_capacity(count.min(cursor.remaining() as u64) as usize);
    for _ in 0..count {
        let len = cursor.varint().map_err(|why| at(&cursor, why))?;
        let bytes = cursor.bytes(len).map_err(|why| at(&cursor, why))?;
        let name = std::str::from_utf8(bytes).map_err(|_| at(&cursor, "a path name is not UTF-8".into()))?;
        names.push(name.to_owned());
    }
    let named = u64::from(head.names_from) + names.len() as u64;
    let paths = cursor.varint().map_err(|why| at(&cursor, why))?;
    if paths == 0 {
        if cursor.remaining() > 0 {
            return Err(at(&cursor, "bytes after an empty batch".into()));
        }
        return Ok(Loaded { batch: None, end: head.end, names_from: head.names_from, names });
    }
    let span = geometry.span(head.level);
    if !(head.start - 1).is_multiple_of(span) || !head.end.is_multiple_of(span) {
        return Err(at(
            &cursor,
            format!("{}..={} is not a run of level-{} blocks", head.start, head.end, head.level),
        ));
    }
    let mut ids = Vec::with_capacity(paths.min(cursor.remaining() as u64) as usize);
    let (mut next, mut segments) = (0u64, 0u64);
    for _ in 0..paths {
        let id = next + cursor.varint().map_err(|why| at(&cursor, why))?;
        let count = cursor.varint().map_err(|why| at(&cursor, why))?;
        if id >= named {
            return Err(at(&cursor, format!("path id {id} is not named (ids below {named} are)")));
        }
        if count == 0 || count > head.end - head.start + 1 {
            return Err(at(&cursor, format!("path {id} has {count} segments")));
        }
        // In range: `id < named <= u32::MAX + 1` and `count` is at most the range.
        ids.push((id as u32, u32::try_from(count).map_err(|_| at(&cursor, "too many segments".into()))?));
        segments += count;
        next = id + 1;
    }
    if segments > u64::from(u32::MAX) {
        return Err(at(&cursor, format!("{segments} segments, more than a batch holds")));
    }
    let block = match cursor.bytes(1).map_err(|why| at(&cursor, why))? {
        [1] => true,
        [0] => false,
        other => return Err(at(&cursor, format!("{other:?} where the one-block flag belongs"))),
    };
    let ends = if block {
        let aligned = head.end.is_multiple_of(span) && head.end - head.start + 1 == span;
        if !aligned || segments != paths {
            return Err(at(&cursor, "a one-block batch that is not one aligned block".into()));
        }
        None
    } else {
        let mut ends = Vec::with_capacity(segments.min(cursor.remaining() as u64) as usize);
        let mut offset = 0;
        for &(_, count) in &ids {
            let mut last = 0;
            for _ in 0..count {
                let delta = cursor.varint().map_err(|why| at(&cursor, why))?;
                let end = head.start.saturating_add(delta);
                if !end.is_multiple_of(span) || end <= last || end > head.end {
                    return Err(at(
                        &cursor,
                        format!("segment {offset} ends at {end}, not a block end in order"),
                    ));
                }
                (last, offset) = (end, offset + 1);
                ends.push(end);
            }
        }
        Some(ends)
    };
    let mut outputs = Vec::with_capacity(segments.min(cursor.remaining() as u64) as usize);
    for _ in 0..segments {
        outputs.push(cursor.record::<M::Output>().map_err(|why| at(&cursor, why))?);
    }
    if cursor.remaining() > 0 {
        return Err(at(&cursor, format!("{} bytes after the last output", cursor.remaining())));
    }
    let column = <M::Column as Restore<M>>::restore(merge, outputs);
    let parts = Parts { level: head.level, start: head.start, end: head.end, paths: ids, ends, column };
    Ok(Loaded { batch: Some(Batch::restore(parts)), end: head.end, names_from: head.names_from, names })
}
