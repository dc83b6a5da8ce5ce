//! Reading a segment in pieces sees what reading it whole sees: the same frames at the same
//! places, the same torn tail, the same error, whatever the piece size and the damage.

use super::*;
use crate::durable::format::decode_tip;
use crate::durable::reader::{read_frames_in, read_tip, Position, Visit, Visitor};

/// A frame's payload, the tip before it, and where it was.
type Frame = (Vec<u8>, Tip, Position);

/// Every frame seen.
#[derive(Default)]
struct Seen(Vec<Frame>);

impl Visitor for Seen {
    fn visit(&mut self, payload: &[u8], tip: Tip, at: Position) -> Result<Tip, Visit> {
        self.0.push((payload.to_vec(), tip, at));
        decode_tip(payload, tip).map_err(Visit::Invalid)
    }
}

/// The outcome of a read, comparable: the report and the frames, or the error's words.
fn outcome(storage: &SimStorage, piece: usize) -> Result<(Recovered, Vec<Frame>), String> {
    let mut seen = Seen::default();
    read_frames_in(storage, &dir(), SHARD, &mut seen, piece, 0)
        .map(|report| (report, seen.0))
        .map_err(|e| e.to_string())
}

/// Piece sizes smaller than a header, than a frame header, around a frame, and whole.
const PIECES: [usize; 9] = [1, 2, 5, 11, 12, 13, 41, 97, 1 << 30];

fn same_in_every_piece_size(storage: &SimStorage, what: &str) {
    let whole = outcome(storage, 1 << 30);
    for piece in PIECES {
        assert_eq!(outcome(storage, piece), whole, "{what}, pieces of {piece}");
    }
}

#[test]
fn pieces_read_as_the_whole_segment_does() -> Result<(), Error> {
    let turns = random_turns(21, 40, small_i64);
    let storage = written(&turns)?;
    same_in_every_piece_size(&storage, "intact");
    let files = segment_files(&storage);
    assert!(files.len() >= 3, "several segments");
    let newest = files.last().cloned().unwrap_or_default();
    let older = files[files.len() - 2].clone();
    for file in [&newest, &older] {
        let bytes = storage.bytes(file).map_err(|e| Error::io("reading", &e))?;
        // Cut at every length, a bit flipped at every byte, zeros after the end.
        for cut in 0..bytes.len() {
            let damaged = storage.fork();
            damaged.put_bytes(file, &bytes[..cut]).map_err(|e| Error::io("writing", &e))?;
            same_in_every_piece_size(&damaged, &format!("{} cut at {cut}", name(file)));
        }
        for at in 0..bytes.len() {
            let damaged = storage.fork();
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            damaged.put_bytes(file, &flipped).map_err(|e| Error::io("writing", &e))?;
            same_in_every_piece_size(&damaged, &format!("{} flipped at {at}", name(file)));
        }
        let damaged = storage.fork();
        damaged.put_bytes(file, &[&bytes[..], &[0; 100]].concat()).map_err(|e| Error::io("writing", &e))?;
        same_in_every_piece_size(&damaged, &format!("{} with zeros after it", name(file)));
    }
    Ok(())
}

/// Where the log ends, read from its newest segment alone, is where reading it all ends,
/// whatever the newest segment's damage; damage in an older segment is left to the replay.
#[test]
fn the_tip_read_from_the_newest_segment_is_the_whole_log_s() -> Result<(), Error> {
    let turns = random_turns(22, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    assert!(files.len() >= 3, "several segments");
    let newest = files.last().cloned().unwrap_or_default();
    let bytes = storage.bytes(&newest).map_err(|e| Error::io("reading", &e))?;
    let tip = |storage: &SimStorage| read_tip(storage, &dir(), SHARD).map_err(|e| e.to_string());
    let whole = |storage: &SimStorage| outcome(storage, 1 << 30).map(|(report, _)| report.tip);
    assert_eq!(tip(&storage), whole(&storage));
    let mut variants: Vec<Vec<u8>> = (0..bytes.len()).map(|cut| bytes[..cut].to_vec()).collect();
    variants.extend((0..bytes.len()).map(|at| {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x40;
        flipped
    }));
    variants.push([&bytes[..], &[0; 100]].concat());
    for (i, variant) in variants.iter().enumerate() {
        let damaged = storage.fork();
        damaged.put_bytes(&newest, variant).map_err(|e| Error::io("writing", &e))?;
        assert_eq!(tip(&damaged), whole(&damaged), "variant {i}");
    }
    Ok(())
}

/// The two newest segments as a power cut leaves them mid-rotation: the older cut at every
/// offset of its last two frames, or a bit flipped there, with the newest absent, unstarted,
/// zeros or whole. Read in pieces of every size, the same frames, report and error; and the tip
/// pass (the two newest segments alone) ends where reading the whole log does.
#[test]
fn two_segment_shapes_read_the_same_in_pieces_and_in_the_tip_pass() -> Result<(), Error> {
    use super::damage::{two_segment_shape, NEWEST};
    let turns = random_turns(23, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    assert!(files.len() >= 3, "several segments");
    let (older, newest) = (files[files.len() - 2].clone(), files[files.len() - 1].clone());
    let io = |e: std::io::Error| Error::io("sim", &e);
    let (older_bytes, newest_bytes) =
        (storage.bytes(&older).map_err(io)?, storage.bytes(&newest).map_err(io)?);
    let older_frames = frames(&older_bytes);
    let from = older_frames[older_frames.len() - 2].0;
    let mut variants: Vec<(String, Vec<u8>)> = (from..=older_bytes.len())
        .map(|cut| (format!("cut at {cut}"), older_bytes[..cut].to_vec()))
        .collect();
    variants.extend((from..older_bytes.len()).map(|at| {
        let mut flipped = older_bytes.clone();
        flipped[at] ^= 0x40;
        (format!("flipped at {at}"), flipped)
    }));
    let tip = |storage: &SimStorage| read_tip(storage, &dir(), SHARD).map_err(|e| e.to_string());
    let (mut read, mut refused) = (0, 0);
    for (what, bytes) in &variants {
        for shape in NEWEST {
            let damaged = two_segment_shape(&storage, &older, bytes, &newest, &newest_bytes, shape)?;
            let what = format!("{} {what}, the newest {shape:?}", name(&older));
            same_in_every_piece_size(&damaged, &what);
            let whole = outcome(&damaged, 1 << 30);
            assert_eq!(
                tip(&damaged),
                whole.as_ref().map(|(report, _)| report.tip).map_err(Clone::clone),
                "{what}"
            );
            if whole.is_ok() {
                read += 1;
            } else {
                refused += 1;
            }
        }
    }
    assert!(read > 100 && refused > 10, "{read} read, {refused} refused");
    Ok(())
}
