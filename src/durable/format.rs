//! The bytes on disk: a segment's header, the frame around each turn, and a turn's payload.
//! The layout is stated once, in the FORMAT section of `crate::durable`; this file is it in code.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durable::codec::{put_record, put_varint, unzigzag, zigzag, Cursor};
use crate::shard::sort::Row;

/// The first bytes of every log segment.
pub(crate) const MAGIC: [u8; 8] = *b"LSTP.LOG";
/// The format version this build writes and reads. Any change to the bytes below bumps it; a
/// segment of another version is refused with `Error::Incompatible`, never guessed at.
pub(crate) const VERSION: u32 = 1;
/// Bytes in a segment header.
pub(crate) const HEADER_LEN: usize = 40;
/// Bytes in a frame header: length, payload checksum, header checksum.
pub(crate) const FRAME_HEADER: usize = 12;

/// Added to a rotated CRC before it is stored, as LevelDB and RocksDB mask theirs: a payload may
/// hold frames of its own (a user's records can be any bytes), and the CRC of a run of bytes
/// that embeds its own CRC is weak; masked, zeros never check out either (the CRC of nothing is
/// 0, its mask is not).
const MASK_DELTA: u32 = 0xa282_ead8;

/// The masked CRC32C of `bytes`.
pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes).rotate_right(15).wrapping_add(MASK_DELTA)
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut le = [0; 4];
    le.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(le)
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut le = [0; 8];
    le.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(le)
}

/// Where a shard's log stands: its frontier, and how many path names it holds. Each turn is
/// encoded relative to the tip before it; each segment's header holds the tip it starts from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tip {
    /// Every commit `<=` it of the shard is in the log.
    pub(crate) frontier: u64,
    /// Path ids `0..names` are named in the log.
    pub(crate) names: u32,
}

/// A segment's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The shard whose log this is.
    pub(crate) shard: u32,
    /// The segment's number, also its file name.
    pub(crate) sequence: u64,
    /// The tip before the segment's first turn: where the previous segment ended.
    pub(crate) start: Tip,
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadHeader {
    /// Fewer bytes than a header, or only zeros: a segment created whose header never reached
    /// the disk.
    Unstarted,
    /// Not a lockstep log segment.
    Magic,
    /// Another format version: the number it holds.
    Version(u32),
    /// The header fails its checksum.
    Checksum,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.shard.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.sequence.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.start.frontier.to_le_bytes());
        bytes[32..36].copy_from_slice(&self.start.names.to_le_bytes());
        let sum = checksum(&bytes[..36]);
        bytes[36..40].copy_from_slice(&sum.to_le_bytes());
        bytes
    }

    /// The header at the start of `bytes`. Magic and version are read first and stay where
    /// they are in every version, so another version is named as such even if the rest of its
    /// header is laid out differently.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Header, BadHeader> {
        let head = &bytes[..bytes.len().min(HEADER_LEN)];
        if head.len() < HEADER_LEN || head.iter().all(|&b| b == 0) {
            return Err(BadHeader::Unstarted);
        }
        if head[0..8] != MAGIC {
            return Err(BadHeader::Magic);
        }
        match u32_at(head, 8) {
            VERSION => {}
            other => return Err(BadHeader::Version(other)),
        }
        if u32_at(head, 36) != checksum(&head[..36]) {
            return Err(BadHeader::Checksum);
        }
        Ok(Header {
            shard: u32_at(head, 12),
            sequence: u64_at(head, 16),
            start: Tip { frontier: u64_at(head, 24), names: u32_at(head, 32) },
        })
    }
}

/// Starts a frame at the end of `buf`: room for its header, filled in by [`seal_frame`] once
/// the payload after it is written. Returns where the frame starts.
pub(crate) fn open_frame(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER]);
    start
}

/// Fills in the header of the frame opened at `start`; the payload is everything after it.
/// Refuses (with the payload's size) a payload whose length does not fit the header.
pub(crate) fn seal_frame(buf: &mut [u8], start: usize) -> Result<(), usize> {
    let payload = buf.len() - start - FRAME_HEADER;
    let len = u32::try_from(payload).map_err(|_| payload)?;
    let sum = checksum(&buf[start + FRAME_HEADER..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&sum.to_le_bytes());
    let head = checksum(&buf[start..start + 8]);
    buf[start + 8..start + 12].copy_from_slice(&head.to_le_bytes());
    Ok(())
}

/// How a frame can be damaged, each with its name (as RocksDB's log reader names its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The newest segment's header never reached the disk (fewer bytes than a header, or
    /// zeros): a crash between creating the segment and syncing it.
    Unstarted,
    /// Fewer bytes are left than a frame header holds.
    ShortHeader,
    /// A frame header fails its checksum (its length cannot be trusted).
    Header,
    /// A frame's length runs past the end of the file: the frame was cut short.
    PastEnd,
    /// A frame's payload fails its checksum.
    Checksum,
    /// Only zeros from the frame to the end of the file (preallocated or never-written pages).
    Zeroed,
    /// The segment before the newest ends at a frame boundary, short of where the newest one's
    /// header says it ended: its last turns never reached the disk (a power cut before the
    /// rotation's syncs were done).
    Missing,
}

impl Damage {
    /// True for damage that is bytes missing (cut short, or zeros where a frame or a header
    /// should start), which a power cut leaves and a flipped bit does not; false for bytes that
    /// are there but fail a checksum.
    pub(crate) fn is_missing_bytes(self) -> bool {
        match self {
            Damage::Unstarted | Damage::ShortHeader | Damage::PastEnd | Damage::Zeroed | Damage::Missing => {
                true
            }
            Damage::Header | Damage::Checksum => false,
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Damage::Unstarted => "the segment's header never reached the disk",
            Damage::ShortHeader => "the file ends inside a frame header",
            Damage::Header => "a frame header fails its checksum",
            Damage::PastEnd => "a frame runs past the end of the file",
            Damage::Checksum => "a frame's payload fails its checksum",
            Damage::Zeroed => "zeros from here to the end of the file",
            Damage::Missing => "the segment ends short of where the next one starts",
        }
    }
}

/// The payload of the intact frame at byte `at` of `bytes`, or how it is damaged.
pub(crate) fn frame_at(bytes: &[u8], at: usize) -> Result<&[u8], Damage> {
    let rest = &bytes[at..];
    if rest.len() < FRAME_HEADER {
        return Err(Damage::ShortHeader);
    }
    let len = u32_at(rest, 0);
    // A turn is never empty (its frontier is always there), so a zero length is damage too.
    if u32_at(rest, 8) != checksum(&rest[..8]) || len == 0 {
        return Err(Damage::Header);
    }
    let payload = match usize::try_from(len) {
        Ok(len) if len <= rest.len() - FRAME_HEADER => &rest[FRAME_HEADER..FRAME_HEADER + len],
        _ => return Err(Damage::PastEnd),
    };
    if u32_at(rest, 4) != checksum(payload) {
        return Err(Damage::Checksum);
    }
    Ok(payload)
}

/// The first intact frame starting after byte `after`, if any: a damaged frame followed by an
/// intact one is corruption, not a torn tail. The header's own checksum makes each candidate
/// offset cost a checksum of 8 bytes, so the scan is linear in the bytes left.
pub(crate) fn next_intact_frame(bytes: &[u8], after: usize) -> Option<usize> {
    (after + 1..bytes.len().saturating_sub(FRAME_HEADER - 1)).find(|&at| frame_at(bytes, at).is_ok())
}

/// One sealed turn of a shard, to be logged.
#[derive(Debug)]
pub(crate) struct Turn<'a, R, N> {
    /// The shard's frontier after the turn: every commit `<=` it is in the log once the turn is.
    pub(crate) frontier: u64,
    /// The path names interned since the last turn, in id order: ids `names..names + len` of
    /// the log's tip before the turn.
    pub(crate) names: &'a [N],
    /// The turn's rows, in the order the worker holds them (kept: rows of one path and commit
    /// keep their order, which a merge may depend on). Commits are in `(tip.frontier, frontier]`.
    pub(crate) rows: &'a [Row<R>],
}

/// A turn read back from the log.
#[derive(Debug)]
pub(crate) struct LoggedTurn<R> {
    /// The shard's frontier after the turn.
    pub(crate) frontier: u64,
    /// The id of the first of `names`.
    pub(crate) names_from: u32,
    /// The path names the turn interned, in id order.
    pub(crate) names: Vec<String>,
    /// The turn's rows, in the order they were logged.
    pub(crate) rows: Vec<Row<R>>,
}

/// Appends the payload of `turn` to `buf`; `tip` is the log's tip before it. Returns the tip
/// after it.
///
/// # Panics
///
/// If the turn breaks the worker's invariants: a frontier below the tip's, a row's commit
/// outside `(tip.frontier, frontier]`, or a row naming an id not yet named. Logging such a turn
/// would make a log that recovery refuses as corrupt; the shard's spine asserts the same.
pub(crate) fn encode_turn<R: Serialize, N: AsRef<str>>(
    buf: &mut Vec<u8>,
    tip: Tip,
    turn: &Turn<'_, R, N>,
) -> postcard::Result<Tip> {
    assert!(turn.frontier >= tip.frontier, "a shard's frontier never goes back");
    let names = u32::try_from(turn.names.len())
        .ok()
        .and_then(|new| tip.names.checked_add(new))
        .expect("path ids are u32 (the directory's)");
    put_varint(buf, turn.frontier - tip.frontier);
    put_varint(buf, turn.names.len() as u64);
    for name in turn.names {
        let name = name.as_ref().as_bytes();
        put_varint(buf, name.len() as u64);
        buf.extend_from_slice(name);
    }
    put_varint(buf, turn.rows.len() as u64);
    let mut last = tip.frontier;
    for row in turn.rows {
        assert!(
            row.commit > tip.frontier && row.commit <= turn.frontier && row.id < names,
            "a turn's rows are of its sealed commits and named paths"
        );
        // Rows come in runs of ascending commits (one per queue): mostly a step of 0 or 1.
        put_varint(buf, zigzag(row.commit.wrapping_sub(last) as i64));
        last = row.commit;
        put_varint(buf, u64::from(row.id));
        put_record(buf, &row.record)?;
    }
    Ok(Tip { frontier: turn.frontier, names })
}

/// Reads back a payload [`encode_turn`] wrote after `tip`; refuses, with a reason, a payload
/// that does not decode or breaks the invariants `encode_turn` asserts.
pub(crate) fn decode_turn<R: DeserializeOwned>(payload: &[u8], tip: Tip) -> Result<LoggedTurn<R>, String> {
    let mut cursor = Cursor::new(payload);
    let (after, count) = decode_head(&mut cursor, tip)?;
    let (frontier, names_after) = (after.frontier, after.names);
    // Every name takes a byte at least: a count above the bytes left is refused before any
    // allocation it would size.
    if count > cursor.remaining() as u64 {
        return Err(format!("{count} names in {} bytes", cursor.remaining()));
    }
    let mut names = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = cursor.varint()?;
        let at = cursor.position();
        let name = std::str::from_utf8(cursor.bytes(len)?)
            .map_err(|_| format!("the path name at byte {at} is not UTF-8"))?;
        names.push(name.to_owned());
    }
    let count = cursor.varint()?;
    // Every row takes two bytes at least (a step and an id).
    if count > cursor.remaining() as u64 / 2 {
        return Err(format!("{count} rows in {} bytes", cursor.remaining()));
    }
    let mut rows = Vec::with_capacity(count as usize);
    let mut last = tip.frontier;
    for _ in 0..count {
        let at = cursor.position();
        let commit = last.wrapping_add(unzigzag(cursor.varint()?) as u64);
        if commit <= tip.frontier || commit > frontier {
            return Err(format!(
                "the row at byte {at} has commit {commit}, outside the turn's ({}, {frontier}]",
                tip.frontier
            ));
        }
        last = commit;
        let id = cursor.varint_u32()?;
        if id >= names_after {
            return Err(format!("the row at byte {at} names path id {id}, of {names_after} named"));
        }
        rows.push(Row { commit, id, record: cursor.record()? });
    }
    if cursor.remaining() > 0 {
        return Err(format!("{} bytes left over after the turn's rows", cursor.remaining()));
    }
    Ok(LoggedTurn { frontier, names_from: tip.names, names, rows })
}

/// The tip after the turn whose payload is `payload`, read from its head alone (its frontier
/// step and its names), without decoding its rows: what recovery needs to find where every
/// shard's log ends before it replays any. The frame's checksum has vouched for the rest.
pub(crate) fn decode_tip(payload: &[u8], tip: Tip) -> Result<Tip, String> {
    decode_head(&mut Cursor::new(payload), tip).map(|(after, _)| after)
}

/// A turn's head: the tip after it (its frontier step and name count read), and the count of
/// names that follow.
fn decode_head(cursor: &mut Cursor<'_>, tip: Tip) -> Result<(Tip, u64), String> {
    let step = cursor.varint()?;
    let frontier = tip
        .frontier
        .checked_add(step)
        .ok_or_else(|| format!("the frontier {} + {step} overflows", tip.frontier))?;
    let count = cursor.varint()?;
    let names = u32::try_from(count)
        .ok()
        .and_then(|count| tip.names.checked_add(count))
        .ok_or_else(|| format!("{count} new names after {} overflow a path id", tip.names))?;
    Ok((Tip { frontier, names }, count))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_names_each_way_to_fail() {
        let header = Header { shard: 3, sequence: 42, start: Tip { frontier: 1 << 40, names: 7 } };
        let bytes = header.encode();
        assert_eq!(Header::decode(&bytes), Ok(header));
        assert_eq!(Header::decode(&bytes[..HEADER_LEN - 1]), Err(BadHeader::Unstarted));
        assert_eq!(Header::decode(&[0; HEADER_LEN]), Err(BadHeader::Unstarted));
        let mut other = bytes;
        other[0] ^= 1;
        assert_eq!(Header::decode(&other), Err(BadHeader::Magic));
        let mut other = bytes;
        other[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(Header::decode(&other), Err(BadHeader::Version(2)));
        for at in 12..HEADER_LEN {
            let mut other = bytes;
            other[at] ^= 0x10;
            assert_eq!(Header::decode(&other), Err(BadHeader::Checksum), "byte {at}");
        }
    }

    #[test]
    fn frames_name_their_damage() {
        let mut buf = Vec::new();
        let start = open_frame(&mut buf);
        buf.extend_from_slice(b"payload");
        assert_eq!(seal_frame(&mut buf, start), Ok(()));
        assert_eq!(frame_at(&buf, 0), Ok(&b"payload"[..]));
        assert_eq!(frame_at(&buf[..FRAME_HEADER - 1], 0), Err(Damage::ShortHeader));
        assert_eq!(frame_at(&buf[..buf.len() - 1], 0), Err(Damage::PastEnd));
        let mut bad = buf.clone();
        bad[0] ^= 1;
        assert_eq!(frame_at(&bad, 0), Err(Damage::Header));
        let mut bad = buf.clone();
        bad[FRAME_HEADER] ^= 1;
        assert_eq!(frame_at(&bad, 0), Err(Damage::Checksum));
        assert_eq!(frame_at(&[0; 64], 0), Err(Damage::Header), "zeros are no frame");
        // The scan for a later intact frame finds one behind damage, and none in damage alone.
        let mut two = bad.clone();
        two.extend_from_slice(&buf);
        assert_eq!(next_intact_frame(&two, 0), Some(buf.len()));
        assert_eq!(next_intact_frame(&bad, 0), None);
    }

    #[test]
    fn a_turn_round_trips() -> Result<(), String> {
        let rows = vec![
            Row { commit: 11, id: 0, record: -5i64 },
            Row { commit: 11, id: 2, record: 7 },
            Row { commit: 13, id: 1, record: 0 },
            Row { commit: 12, id: 0, record: i64::MIN },
        ];
        let names = ["/new".to_owned(), "/é".to_owned()];
        let tip = Tip { frontier: 10, names: 1 };
        let turn = Turn { frontier: 14, names: &names, rows: &rows };
        let mut buf = Vec::new();
        let after = encode_turn(&mut buf, tip, &turn).map_err(|e| e.to_string())?;
        assert_eq!(after, Tip { frontier: 14, names: 3 });
        let back: LoggedTurn<i64> = decode_turn(&buf, tip)?;
        assert_eq!((back.frontier, back.names_from, &back.names[..]), (14, 1, &names[..]));
        let rows = |rows: &[Row<i64>]| rows.iter().map(|r| (r.commit, r.id, r.record)).collect::<Vec<_>>();
        assert_eq!(rows(&back.rows), rows(turn.rows));
        // Read after fewer names, the same bytes name a path not yet named: refused, not misread.
        assert!(decode_turn::<i64>(&buf, Tip { frontier: 10, names: 0 }).is_err());
        let mut longer = buf.clone();
        longer.push(0);
        assert!(decode_turn::<i64>(&longer, tip).is_err(), "bytes left over");
        for len in 0..buf.len() {
            assert!(decode_turn::<i64>(&buf[..len], tip).is_err(), "cut at {len}");
        }
        Ok(())
    }
}
