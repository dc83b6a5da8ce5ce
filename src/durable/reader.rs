//! Reading a shard's log back: every turn, in order, or a named reason to refuse.
//!
//! Segments are read one at a time (recovery holds one segment and one turn, not the log). A
//! frame that is not intact is classified, as RocksDB's log reader names each of its failures:
//!
//! | where                                   | outcome                                        |
//! |-----------------------------------------|------------------------------------------------|
//! | newest segment, nothing intact after it | torn tail: dropped, reported ([`TornTail`])    |
//! | newest segment, header unstarted        | torn tail: the segment holds no turn; dropped whole |
//! | segment before the newest, nothing intact after it, the newest absent or its header unstarted | torn tail, as in the newest (the log ends in this segment); the newest dropped whole |
//! | segment before the newest, the newest with a valid header starting past where this one's intact turns end: the file ends inside a frame, or at a frame boundary, or zeros from the frame on | torn tail; the newest dropped whole ([`Recovered::dropped`]) |
//! | segment before the newest, the newest with a valid header: bytes that are there but fail a checksum, or the newest not starting past this one's end | `Error::Corrupt` |
//! | followed by an intact frame             | `Error::Corrupt` (a hole, not a tail)          |
//! | in an older segment, or a header unstarted before the newest | `Error::Corrupt` (those were synced) |
//! | intact frame, payload does not decode   | `Error::Corrupt`                               |
//! | bad magic or header checksum, header of another shard or number | `Error::Corrupt`        |
//! | another format version                  | `Error::Incompatible`                          |
//! | a segment number missing, or a segment not starting where the one before ended | `Error::Corrupt` |
//!
//! Why only the two newest segments can be torn, and what the newest holds then: the writer
//! rotates without syncing, and the syncs a rotation owes (the old segment whole, the
//! directory, the new header) are done before any turn of the new segment is reported synced
//! and before the next rotation (`crate::durable::writer`). So every segment but the two newest
//! was synced whole with its header and name; and if the segment before the newest lost turns,
//! nothing of the newest was ever reported synced. Its turns follow a hole, but dropping it
//! whole with the lost turns is a suffix of the log, none of it acknowledged: the newest is
//! dropped, and its frames not read.
//!
//! A flipped bit in the last frame of the segment before the newest must not read as such a
//! tail while the newest may hold synced turns: dropping the newest would then lose
//! acknowledged turns silently. The newest's header tells which case this is. If it never
//! reached the disk, the newest holds nothing synced (its first sync covers its header), and
//! the log ends in the segment before it, which is read as a newest segment is, with the same
//! tolerance (and the same limit: a flipped bit in the log's last frame reads as a torn tail).
//! If the header is valid, it says where the segment before ended when it was written whole: a
//! tail is accepted there only if turns are missing (the newest starts past the intact end)
//! and the damage is bytes missing — the file ending inside a frame or at a frame boundary, or
//! zeros from the damaged frame to the end (`Damage::is_missing_bytes`), which a power cut
//! leaves and a flipped bit cannot; bytes that are there but fail a checksum are
//! `Error::Corrupt`. The price, on the side of refusing: a file system that leaves non-zero
//! garbage, or a frame partly zeroed, at the end of the segment before the newest after a power
//! cut, while the newest's header survived, makes a log that is refused though only turns never
//! acknowledged were at stake.

//! Telling a tail from a hole takes a scan of the bytes after the damage for an intact frame
//! (its header checksum first, so the scan is linear). Two limits, both on the side of refusing:
//! a record whose own bytes hold a whole intact frame (a log stored inside a log) makes a torn
//! tail around it read as corruption; and a file system that persists unsynced pages out of
//! order can leave, after a power cut, a damaged frame before an intact one that was never
//! synced either — refused as corrupt, though only `Durability::Written` turns were at stake.

use std::io;
use std::path::{Path, PathBuf};

#[cfg(all(test, not(loom)))]
use std::marker::PhantomData;

#[cfg(all(test, not(loom)))]
use serde::de::DeserializeOwned;

use crate::durable::format::{
    decode_tip, frame_at, next_intact_frame, u32_at, BadHeader, Damage, Header, Tip, FRAME_HEADER,
    HEADER_LEN, VERSION,
};
#[cfg(all(test, not(loom)))]
use crate::durable::format::{decode_turn, LoggedTurn};
use crate::durable::storage::Storage;
use crate::error::Error;

/// A segment's file name: `log-` and its number in 20 digits, so names sort as numbers do.
pub(crate) fn segment_name(sequence: u64) -> String {
    format!("log-{sequence:020}")
}

/// The number of a segment's file name; `None` for any other name (ignored: not ours).
fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("log-")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// The directory of shard `shard`'s log under a pipeline's directory.
pub(crate) fn shard_dir(root: &Path, shard: u32) -> PathBuf {
    root.join(format!("shard-{shard:04}"))
}

/// The end of a log that was damaged by a crash, dropped on reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TornTail {
    /// The segment where the log's intact bytes end: the newest, or the one before it when the
    /// newest is dropped whole ([`Recovered::dropped`]).
    pub(crate) file: String,
    /// Where the damage starts: the log's intact bytes end here.
    pub(crate) offset: u64,
    /// Bytes dropped from that segment.
    pub(crate) bytes: u64,
    /// What the first damaged frame looked like.
    pub(crate) damage: Damage,
}

/// What reading a shard's log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Where the log stands after its last intact turn.
    pub(crate) tip: Tip,
    /// Turns read.
    pub(crate) turns: u64,
    /// Segments read.
    pub(crate) segments: u64,
    /// The torn tail dropped, if the log had one.
    pub(crate) torn: Option<TornTail>,
    /// The last segment kept (with a header) and where its intact bytes end, for the writer's
    /// repair.
    pub(crate) newest: Option<(u64, u64)>,
    /// The newest segment, dropped whole: its header never reached the disk, or its turns
    /// follow turns the segment before it lost (see the module docs). The writer removes it.
    pub(crate) dropped: Option<u64>,
    /// Each segment kept: its number and the tip it starts from, oldest first.
    pub(crate) starts: Vec<(u64, Tip)>,
}

/// Where a frame starts: its segment's number and its offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) sequence: u64,
    pub(crate) offset: u64,
}

/// What reading does with each intact frame.
pub(crate) trait Visitor {
    /// The payload of the intact frame at `at`, where the log's tip before it is `tip`: acts
    /// on it and returns the tip after it.
    fn visit(&mut self, payload: &[u8], tip: Tip, at: Position) -> Result<Tip, Visit>;
}

/// Why a [`Visitor`] stopped the reading.
#[derive(Debug)]
pub(crate) enum Visit {
    /// The frame is intact but holds no valid turn: the log is corrupt there.
    Invalid(String),
    /// Stop with this error.
    Stop(Error),
}

/// Decodes every turn and hands it on.
#[cfg(all(test, not(loom)))]
struct Turns<R, F> {
    each: F,
    turns: PhantomData<fn() -> R>,
}

#[cfg(all(test, not(loom)))]
impl<R: DeserializeOwned, F: FnMut(LoggedTurn<R>) -> Result<(), Error>> Visitor for Turns<R, F> {
    fn visit(&mut self, payload: &[u8], tip: Tip, _at: Position) -> Result<Tip, Visit> {
        let turn = decode_turn::<R>(payload, tip).map_err(Visit::Invalid)?;
        let after = Tip { frontier: turn.frontier, names: turn.names_from + turn.names.len() as u32 };
        (self.each)(turn).map_err(Visit::Stop)?;
        Ok(after)
    }
}

/// Reads only where each turn leaves the tip.
struct Tips;

impl Visitor for Tips {
    fn visit(&mut self, payload: &[u8], tip: Tip, _at: Position) -> Result<Tip, Visit> {
        decode_tip(payload, tip).map_err(Visit::Invalid)
    }
}

/// The numbers of the log's segments in `dir`, ascending and with none missing.
fn segments<S: Storage>(storage: &S, dir: &Path) -> Result<Vec<u64>, Error> {
    let names = match storage.list(dir) {
        Ok(names) => names,
        Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(Error::io(format!("listing {}", dir.display()), &error)),
    };
    let mut numbers: Vec<u64> = names.iter().filter_map(|name| segment_number(name)).collect();
    numbers.sort_unstable();
    for pair in numbers.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(Error::Corrupt {
                file: dir.join(segment_name(pair[0] + 1)).display().to_string(),
                offset: 0,
                why: format!("missing: the log goes from segment {} to segment {}", pair[0], pair[1]),
            });
        }
    }
    Ok(numbers)
}

/// Reads shard `shard`'s log in `dir` (an empty log if the directory is missing), handing
/// each intact turn to `each` in order; changes nothing on disk. An error from `each` stops
/// the reading and is returned.
#[cfg(all(test, not(loom)))]
pub(crate) fn read_log<S: Storage, R: DeserializeOwned>(
    storage: &S,
    dir: &Path,
    shard: u32,
    each: impl FnMut(LoggedTurn<R>) -> Result<(), Error>,
) -> Result<Recovered, Error> {
    read_frames(storage, dir, shard, &mut Turns { each, turns: PhantomData })
}

/// Where shard `shard`'s log in `dir` ends, decoding no row: the first pass of recovery, which
/// cuts every shard's log at the lowest of their ends. The end is in the two newest segments
/// (the newest may be dropped whole for a torn tail of the one before it: see the module docs),
/// read from the start the older one's header gives: the older segments are left to the replay,
/// which reads and checks every one of them anyway, so each is read once.
pub(crate) fn read_tip<S: Storage>(storage: &S, dir: &Path, shard: u32) -> Result<Tip, Error> {
    let count = segments(storage, dir)?.len();
    read_frames_in(storage, dir, shard, &mut Tips, PIECE, count.saturating_sub(2))
        .map(|recovered| recovered.tip)
}

/// How much of a segment reading asks for at a time: recovery holds about two pieces and the
/// frame being read, not the whole segment.
const PIECE: usize = 1 << 18;

/// Reads shard `shard`'s log in `dir`, handing every intact frame to `visitor`.
pub(crate) fn read_frames<S: Storage>(
    storage: &S,
    dir: &Path,
    shard: u32,
    visitor: &mut impl Visitor,
) -> Result<Recovered, Error> {
    read_frames_in(storage, dir, shard, visitor, PIECE, 0)
}

/// A segment read in pieces: `bytes` holds its bytes from `base` on, as far as read.
struct Pieces<'a, S> {
    storage: &'a S,
    path: &'a Path,
    piece: usize,
    bytes: Vec<u8>,
    base: usize,
    /// `bytes` reaches the end of the file.
    end: bool,
}

impl<S: Storage> Pieces<'_, S> {
    /// Reads on until `bytes` holds `len` bytes or the file ends.
    fn fill(&mut self, len: usize) -> Result<(), Error> {
        while !self.end && self.bytes.len() < len {
            let had = self.bytes.len();
            let want = (len - had).max(self.piece);
            self.storage
                .read_at(self.path, (self.base + had) as u64, want, &mut self.bytes)
                .map_err(|error| Error::io(format!("reading {}", self.path.display()), &error))?;
            self.end = self.bytes.len() - had < want;
        }
        Ok(())
    }

    /// Reads the rest of the file: deciding what damage is takes every byte after it.
    fn rest(&mut self) -> Result<(), Error> {
        self.fill(usize::MAX)
    }

    /// Drops the bytes before file offset `at`, read and done with.
    fn drop_before(&mut self, at: usize) {
        self.bytes.drain(..at - self.base);
        self.base = at;
    }
}

/// [`read_frames`], reading `piece` bytes at a time (the tests vary it), from the segment at
/// index `from` of the log's segments on: the tip before it is the one its header gives.
pub(crate) fn read_frames_in<S: Storage>(
    storage: &S,
    dir: &Path,
    shard: u32,
    visitor: &mut impl Visitor,
    piece: usize,
    from: usize,
) -> Result<Recovered, Error> {
    let numbers = segments(storage, dir)?;
    let mut recovered = Recovered {
        tip: Tip::default(),
        turns: 0,
        segments: 0,
        torn: None,
        newest: None,
        dropped: None,
        starts: Vec::new(),
    };
    // One buffer for every segment.
    let mut buffer = Vec::new();
    for (i, &sequence) in numbers.iter().enumerate().skip(from) {
        let newest = i + 1 == numbers.len();
        let path = dir.join(segment_name(sequence));
        let file = path.display().to_string();
        buffer.clear();
        let mut read =
            Pieces { storage, path: &path, piece, bytes: std::mem::take(&mut buffer), base: 0, end: false };
        read.fill(HEADER_LEN)?;
        let corrupt =
            |offset: usize, why: String| Error::Corrupt { file: file.clone(), offset: offset as u64, why };
        recovered.segments += 1;
        let Some(header) = check_header(&read.bytes, &file, shard, sequence)? else {
            if !newest {
                let why = "the header is cut short or zeros, in a segment that is not the newest";
                return Err(corrupt(0, why.into()));
            }
            read.rest()?;
            let (bytes, damage) = (read.bytes.len() as u64, Damage::Unstarted);
            recovered.torn = Some(TornTail { file: file.clone(), offset: 0, bytes, damage });
            recovered.dropped = Some(sequence);
            break;
        };
        // Each segment starts where the one before ended: whole turns missing at the end of an
        // older segment (cut at a frame boundary) are found here.
        if i > from && header.start != recovered.tip {
            return Err(corrupt(
                0,
                format!(
                    "the segment starts at {:?}, but the one before ends at {:?}: turns are missing",
                    header.start, recovered.tip
                ),
            ));
        }
        // When this is the segment before the newest: where the newest starts (`None`: its header
        // never reached the disk), which says where this one ended when it was written whole.
        let next = match numbers.get(i + 1) {
            Some(&after) if i + 2 == numbers.len() => Some(next_start(storage, dir, shard, after)?),
            _ => None,
        };
        recovered.tip = header.start;
        recovered.starts.push((sequence, header.start));
        // `at` is an offset in the file; `at - read.base` the same byte in `read.bytes`.
        let mut at = HEADER_LEN;
        loop {
            read.fill(at - read.base + FRAME_HEADER)?;
            let local = at - read.base;
            if local >= read.bytes.len() {
                // `fill` stops short only at the end of the file.
                break;
            }
            if read.bytes.len() - local >= FRAME_HEADER {
                // The whole frame, if its length is to be believed (`frame_at` checks it).
                let len = u32_at(&read.bytes, local) as usize;
                read.fill(local.saturating_add(FRAME_HEADER).saturating_add(len))?;
            }
            let payload = match frame_at(&read.bytes, local) {
                Ok(payload) => payload,
                Err(damage) => {
                    read.rest()?;
                    let bytes = &read.bytes;
                    let zeroed = bytes[local..].iter().all(|&b| b == 0);
                    let damage = if zeroed { Damage::Zeroed } else { damage };
                    if let Some(intact) = next_intact_frame(bytes, local).filter(|_| !zeroed) {
                        let intact = read.base + intact;
                        let why =
                            format!("{}, yet an intact frame follows at byte {intact}", damage.describe());
                        return Err(corrupt(at, why));
                    }
                    // A torn tail here, or corruption: the table in the module docs.
                    let refused = match next {
                        _ if newest => None,
                        None => Some(", in a segment that is not the newest".to_owned()),
                        // The newest never got a header: the log ends in this segment.
                        Some(None) => None,
                        Some(Some(start)) if damage.is_missing_bytes() && beyond(start, recovered.tip) => {
                            None
                        }
                        Some(Some(start)) => Some(format!(
                            ", in the segment before the newest, which starts at {start:?}: not what \
                             a power cut leaves there"
                        )),
                    };
                    if let Some(why) = refused {
                        return Err(corrupt(at, format!("{}{why}", damage.describe())));
                    }
                    let dropped = (bytes.len() - local) as u64;
                    recovered.torn =
                        Some(TornTail { file: file.clone(), offset: at as u64, bytes: dropped, damage });
                    recovered.dropped = numbers.get(i + 1).copied();
                    break;
                }
            };
            let position = Position { sequence, offset: at as u64 };
            recovered.tip = match visitor.visit(payload, recovered.tip, position) {
                Ok(tip) => tip,
                Err(Visit::Invalid(why)) => {
                    return Err(corrupt(at, format!("an intact frame holds no valid turn: {why}")))
                }
                Err(Visit::Stop(error)) => return Err(error),
            };
            recovered.turns += 1;
            at += FRAME_HEADER + payload.len();
            if at - read.base >= piece {
                read.drop_before(at);
            }
        }
        let end = at.min(read.base + read.bytes.len()) as u64;
        recovered.newest = Some((sequence, end));
        if recovered.torn.is_some() {
            break;
        }
        // Whole turns missing at the end of the segment before the newest, cut at a frame
        // boundary: the newest follows a hole and goes whole (the same argument as for a torn
        // tail there). A start below this end, or beside it, is corruption, found on reading it.
        if let Some(Some(start)) = next {
            if beyond(start, recovered.tip) {
                let damage = Damage::Missing;
                recovered.torn = Some(TornTail { file: file.clone(), offset: end, bytes: 0, damage });
                recovered.dropped = numbers.get(i + 1).copied();
                break;
            }
        }
        buffer = read.bytes;
    }
    Ok(recovered)
}

/// True if a segment starting at `start` follows, with a turn or more between, a log ending
/// at `tip`: every turn moves the tip (a turn with nothing to say is never logged).
fn beyond(start: Tip, tip: Tip) -> bool {
    start.frontier >= tip.frontier && start.names >= tip.names && start != tip
}

/// Segment `sequence`'s header at the start of `bytes`, checked: `None` if it never reached the
/// disk (cut short or zeros); an error if it is not this log's.
fn check_header(bytes: &[u8], file: &str, shard: u32, sequence: u64) -> Result<Option<Header>, Error> {
    let corrupt = |why: String| Error::Corrupt { file: file.to_owned(), offset: 0, why };
    let header = match Header::decode(bytes) {
        Ok(header) => header,
        Err(BadHeader::Unstarted) => return Ok(None),
        Err(BadHeader::Magic) => return Err(corrupt("not a lockstep log segment (bad magic)".into())),
        Err(BadHeader::Checksum) => return Err(corrupt("the segment header fails its checksum".into())),
        Err(BadHeader::Version(version)) => {
            return Err(Error::Incompatible {
                file: file.to_owned(),
                why: format!("log format version {version}; this lockstep reads version {VERSION}"),
            })
        }
    };
    if header.shard != shard || header.sequence != sequence {
        return Err(corrupt(format!(
            "the header says shard {} segment {}, where shard {shard} segment {sequence} belongs",
            header.shard, header.sequence
        )));
    }
    Ok(Some(header))
}

/// Where the newest segment, number `sequence`, starts (`None`: its header never reached the
/// disk); an error if its header is not this log's.
fn next_start<S: Storage>(storage: &S, dir: &Path, shard: u32, sequence: u64) -> Result<Option<Tip>, Error> {
    let path = dir.join(segment_name(sequence));
    let mut bytes = Vec::with_capacity(HEADER_LEN);
    storage
        .read_at(&path, 0, HEADER_LEN, &mut bytes)
        .map_err(|error| Error::io(format!("reading {}", path.display()), &error))?;
    Ok(check_header(&bytes, &path.display().to_string(), shard, sequence)?.map(|header| header.start))
}
