//! Durability: each shard's log of sealed turns, and its top-level batches in files.
//!
//! A shard worker's turn is a sealed, complete unit: every part of every commit up to the
//! turn's frontier for that shard. Logged as one record, it makes a write-ahead log that only
//! the shard's own worker writes, sequentially, and that producers never touch. A top-level
//! batch is immutable, sorted and columnar once formed: saved whole to a file of its own, it
//! is the checkpoint the log is cut below (`checkpoint`). This module is the record format
//! (`format`, `codec`), the log's writer (`writer`: append, group-commit sync, rotation,
//! removal below the files, and opening after a crash) and reader (`reader`: every turn in
//! order, or a named reason to refuse), the batch files (`checkpoint`), recovery (`recovery`),
//! and the seam to the disk (`storage`, with an in-memory file system for tests in `sim`).
//!
//! # What survives
//!
//! - A turn is *written* once [`LogWriter::append`](writer::LogWriter::append) returned `Ok`:
//!   its frame was handed to the OS in one write. It survives the process (a `kill -9`), not
//!   the machine.
//! - A turn is *synced* once a [`LogWriter::sync`](writer::LogWriter::sync) that started after
//!   it returned `Ok`, or the syncing thread reported it (fdatasync of the segment, after the
//!   syncs the last rotation owes: the segment before it whole, the directory, the new header;
//!   a rotation itself syncs nothing on the worker). It survives a power cut.
//! - After a crash, the log reads back as a prefix of the turns written that holds every turn
//!   synced: the torn tail of the newest segment (cut short, zeros, checksums failing, with no
//!   intact frame after it) is dropped and reported; so is a torn tail of the segment before
//!   it, cut by a power cut while the rotation's syncs were owed, and the newest is then dropped
//!   whole (none of it was synced: `reader` states the rules, and how a flipped bit there is
//!   told from a tail). Damage anywhere else is [`Error::Corrupt`](crate::Error::Corrupt)
//!   naming the file and offset, never a shorter history read as if whole.
//! - A failed write or sync ends the writer for good, with a typed error that every later call
//!   returns: nothing already written or synced is lost, and opening the log again (after
//!   freeing space, say) continues it.
//!
//! # FORMAT
//!
//! Version 1. A shard's log is the files `shard-NNNN/log-SSSSSSSSSSSSSSSSSSSS` of the pipeline's
//! directory: its segments, numbered from 0 without a gap (`S`: the number in 20 digits). Other
//! file names are ignored. All fixed-size integers are little-endian. A *checksum* is CRC32C
//! masked as LevelDB and RocksDB mask theirs: `rotate_right(crc, 15) + 0xa282ead8` (mod 2^32).
//!
//! A segment is a header, then frames, one per turn; a frame never spans segments.
//!
//! ```text
//! header (40 bytes)
//!   0  8  magic        "LSTP.LOG"
//!   8  4  version      u32 = 1   (any other: Error::Incompatible; magic and version stay here
//!                                 in every version)
//!  12  4  shard        u32
//!  16  8  sequence     u64       (the number in the file's name)
//!  24  8  frontier     u64       the shard's frontier before the segment's first turn
//!  32  4  names        u32       path ids named before the segment's first turn
//!  36  4  checksum     u32       of bytes 0..36
//!
//! frame (12 bytes + payload)
//!   0  4  length       u32       of the payload; never 0
//!   4  4  checksum     u32       of the payload
//!   8  4  header sum   u32       of bytes 0..8 (so a damaged length is told from a torn one,
//!                                 and a scan for a later intact frame is linear)
//!  12  length          payload   one turn
//! ```
//!
//! A turn's payload is written relative to the log's *tip* before it (the frontier and names
//! after the turn before, or the segment header's for its first turn). Every integer in it is a
//! LEB128 varint (7 bits a byte, least significant first, high bit on all but the last), signed
//! ones zigzag-mapped first — postcard's integer encoding:
//!
//! ```text
//! frontier step     varint    the turn's frontier minus the tip's
//! name count        varint    paths named in the turn: ids tip.names, tip.names + 1, …
//!   name            varint length, then that many bytes of UTF-8
//! row count         varint
//!   commit step     zigzag varint   the row's commit minus the row before's (the tip's
//!                                   frontier for the first row); every commit is in
//!                                   (tip frontier, turn frontier]
//!   path id         varint          below tip.names + name count
//!   record          the record in postcard's format (serde)
//! ```
//!
//! Rows keep the worker's order (runs of ascending commits, one per queue): most commit steps
//! are 0 or 1, one byte. With `Sum` and 10,000 paths, a row costs about 4 bytes, the frame and
//! the turn's own fields a few bytes per turn (`tests::log_bytes_per_record`).
//!
//! Segments go from the oldest, once the segment after one starts at or below the end of the
//! shard's batch files (frontier and names both): the log may start at any number, and starts
//! at or below the files' end (a log starting above it is `Error::Corrupt`: segments are
//! missing).
//!
//! ## Batch files
//!
//! Version 1, separate from the log's. The files `shard-NNNN/batch-AAAAAAAAAAAAAAAAAAAA-BBBBBBBBBBBBBBBBBBBB`
//! hold the shard's top-level batches covering commits `A..=B` (20 digits each); files named
//! `tmp-…` were being written when a crash came and are removed on opening. Files *chain*:
//! each starts where the one before ended (`A` is the previous `B` + 1; 1 for the first), so a
//! file missing between two is found; a stretch where the shard had no data is a file with no
//! batch. Under a retention window the first file may be the *names file*
//! `names-00000000000000000001-BBBBBBBBBBBBBBBBBBBB`: the same layout with every name up to `B`
//! and no batch, in place of the files the window left. A batch file it covers is one a crash
//! kept from being removed after it, and is removed on opening; any other overlap is
//! `Error::Corrupt`.
//!
//! ```text
//! header (48 bytes)
//!   0  8  magic        "LSTP.BAT"
//!   8  4  version      u32 = 1   (any other: Error::Incompatible)
//!  12  4  shard        u32
//!  16  4  level        u32       the top level
//!  20  4  names from   u32       path ids named in the files before it (0 for a names file)
//!  24  8  start        u64       A
//!  32  8  end          u64       B
//!  40  4  checksum     u32       of the payload
//!  44  4  header sum   u32       of bytes 0..44
//!
//! payload (to the end of the file)
//!   name count     varint   ids names from, names from + 1, …
//!     name         varint length, then that many bytes of UTF-8
//!   batch count    varint   0: no batch, and nothing follows
//!   per batch, in range order:
//!     start step   varint   its first commit minus the end of the batch before plus one (A first)
//!     length       varint   its last commit minus its first: a run of whole top-level blocks
//!     path count   varint   at least 1
//!       id step    varint   the path id minus the one before plus one (the first: its id)
//!       segments   varint   at least 1, at most the blocks in the batch
//!     one block    u8       1: the batch is one block, each path has one segment ending at
//!                           its end; 0: each segment's end follows
//!       end        varint   per segment (path by path), its block's end minus the batch's start
//!     output       per segment, the merge's output in postcard's format (serde)
//! ```
//!
//! A file is written to its temporary name, synced, renamed, and the directory synced: under
//! its final name it is whole, and any damage is `Error::Corrupt` naming it.

/// Batch files: each shard's top-level batches saved whole, the log's checkpoint.
pub(crate) mod checkpoint;
/// Integers and records as bytes: varints, zigzag, serde records through postcard.
pub(crate) mod codec;
/// The directory: its lock and its manifest.
pub(crate) mod directory;
/// The bytes on disk: segment headers, frames, turns.
pub(crate) mod format;
/// The durable frontier, per shard and for the pipeline.
pub(crate) mod frontier;
/// Reading a shard's log back, naming every way it can be damaged.
pub(crate) mod reader;
/// Opening a durable pipeline: every shard's log cut at one frontier and replayed.
pub(crate) mod recovery;
/// A shard's batch files saved, and the log below them removed, on a thread of its own.
pub(crate) mod saver;
/// What the log needs from a directory; the real file system.
pub(crate) mod storage;
/// A shard's log and batch files as its worker uses them.
pub(crate) mod store;
/// A shard's log synced on a thread of its own (at `Durability::Written`, its rotations only).
pub(crate) mod syncer;
/// Writing a shard's log: append, sync, rotate; opening after a crash.
pub(crate) mod writer;

/// An in-memory file system that forgets what was not synced, with faults to inject.
#[cfg(all(test, not(loom)))]
pub(crate) mod sim;
#[cfg(all(test, not(loom)))]
mod tests;
