//! Torn and rotten bytes: tails cut at every offset, zero-filled tails, flipped bits in the
//! tail, mid-log and in headers, missing segments, frames that do not decode.

use super::*;

/// The newest segment cut at every offset of its last two frames (and of its header): recovery
/// yields exactly the turns before the cut, reports the torn tail, and the log goes on.
#[test]
fn a_tail_cut_at_every_offset_leaves_the_turns_before_it() -> Result<(), Error> {
    let turns = random_turns(11, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    let newest = files.last().cloned().unwrap_or_default();
    let bytes = storage.bytes(&newest).map_err(|e| Error::io("reading", &e))?;
    let frames = frames(&bytes);
    assert!(frames.len() >= 2, "the newest segment holds two turns");
    let (older, _) = read_all::<i64, _>(&storage)?;
    let before_newest = older.len() - frames.len();
    let from = frames[frames.len() - 2].0;
    let cuts = (0..HEADER_LEN).chain(from..bytes.len());
    for cut in cuts {
        let storage = storage.fork();
        storage.put_bytes(&newest, &bytes[..cut]).map_err(|e| Error::io("writing", &e))?;
        let whole = frames.iter().filter(|&&(_, end)| end <= cut).count();
        let expected = if cut < HEADER_LEN { before_newest } else { before_newest + whole };
        let (read, report) = read_all::<i64, _>(&storage)?;
        assert_eq!(read, older[..expected], "cut at {cut}");
        let boundary = cut == HEADER_LEN || frames.iter().any(|&(_, end)| end == cut);
        match &report.torn {
            None => assert!(boundary, "cut at {cut}: a torn tail not reported"),
            Some(torn) => {
                assert!(!boundary, "cut at {cut}: a clean end reported torn");
                assert_eq!(torn.file, name(&newest));
                assert_eq!(torn.offset + torn.bytes, cut as u64);
                let expected_damage = if cut < HEADER_LEN { Damage::Unstarted } else { torn.damage };
                assert_eq!(torn.damage, expected_damage);
            }
        }
        // Opening cuts the tail off and goes on.
        let (mut writer, recovered, _) = open::<i64, _>(&storage, small_segments())?;
        assert_eq!(recovered, read);
        let more = Owned::random(writer.tip(), &mut Rng::new(cut as u64), small_i64);
        more.append(&mut writer)?;
        writer.sync()?;
        let (after, report) = read_all::<i64, _>(&storage)?;
        assert_eq!(
            (after.len(), after.last(), report.torn),
            (expected + 1, Some(&more), None),
            "cut at {cut}"
        );
    }
    Ok(())
}

#[test]
fn a_zero_filled_tail_is_dropped() -> Result<(), Error> {
    let turns = random_turns(12, 30, small_i64);
    let storage = written(&turns)?;
    let (all, _) = read_all::<i64, _>(&storage)?;
    let newest = segment_files(&storage).pop().unwrap_or_default();
    let bytes = storage.bytes(&newest).map_err(|e| Error::io("reading", &e))?;
    for zeros in [1, FRAME_HEADER - 1, FRAME_HEADER, 100, 4096] {
        let storage = storage.fork();
        storage
            .put_bytes(&newest, &[&bytes[..], &vec![0; zeros]].concat())
            .map_err(|e| Error::io("w", &e))?;
        let (read, report) = read_all::<i64, _>(&storage)?;
        assert_eq!(read, all);
        let torn = report.torn.map(|t| (t.offset, t.bytes, t.damage));
        assert_eq!(torn, Some((bytes.len() as u64, zeros as u64, Damage::Zeroed)));
        let (_, recovered, _) = open::<i64, _>(&storage, small_segments())?;
        assert_eq!(recovered, all);
    }
    // Half a frame, then zeros (a page written in part): the half frame goes too.
    let (start, end) = frames(&bytes).pop().unwrap_or_default();
    let half = [&bytes[..(start + end) / 2], &vec![0; 512]].concat();
    storage.put_bytes(&newest, &half).map_err(|e| Error::io("writing", &e))?;
    let (read, report) = read_all::<i64, _>(&storage)?;
    assert_eq!(read, all[..all.len() - 1]);
    assert_eq!(report.torn.map(|t| t.offset), Some(start as u64));
    Ok(())
}

/// One flipped bit anywhere in the newest segment's last frame: that turn is a torn tail.
#[test]
fn a_flipped_bit_in_the_last_frame_is_a_torn_tail() -> Result<(), Error> {
    let turns = random_turns(13, 30, small_i64);
    let storage = written(&turns)?;
    let (all, _) = read_all::<i64, _>(&storage)?;
    let newest = segment_files(&storage).pop().unwrap_or_default();
    let bytes = storage.bytes(&newest).map_err(|e| Error::io("reading", &e))?;
    let (start, end) = frames(&bytes).pop().unwrap_or_default();
    for at in start..end {
        let mut flipped = bytes.clone();
        flipped[at] ^= 1 << (at % 8);
        let storage = storage.fork();
        storage.put_bytes(&newest, &flipped).map_err(|e| Error::io("writing", &e))?;
        let (read, report) = read_all::<i64, _>(&storage)?;
        assert_eq!(read, all[..all.len() - 1], "flip at {at}");
        assert_eq!(report.torn.map(|t| t.offset), Some(start as u64), "flip at {at}");
    }
    Ok(())
}

/// One flipped bit in any earlier frame of the newest segment, or anywhere in an older segment:
/// corrupt, naming the file and the frame (or header) it hit.
#[test]
fn a_flipped_bit_anywhere_else_is_corruption() -> Result<(), Error> {
    let turns = random_turns(14, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    assert!(files.len() >= 3);
    for (i, file) in files.iter().enumerate() {
        let newest = i + 1 == files.len();
        let bytes = storage.bytes(file).map_err(|e| Error::io("reading", &e))?;
        let frames = frames(&bytes);
        let frames = if newest { &frames[..frames.len() - 1] } else { &frames[..] };
        let header = (0..HEADER_LEN).map(|at| (at, 0));
        let hits =
            header.chain(frames.iter().flat_map(|&(start, end)| (start..end).map(move |at| (at, start))));
        for (at, offset) in hits {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << (at % 8);
            let storage = storage.fork();
            storage.put_bytes(file, &flipped).map_err(|e| Error::io("writing", &e))?;
            let result = read_all::<i64, _>(&storage);
            if (8..12).contains(&at) {
                // The version field: another version, as far as anyone can tell.
                assert!(matches!(result, Err(Error::Incompatible { .. })), "flip at {at} of {}", name(file));
            } else {
                assert_eq!(
                    corrupt_at(result),
                    Some((name(file), offset as u64)),
                    "flip at {at} of {}",
                    name(file)
                );
            }
            // Opening refuses too, and changes nothing.
            assert!(open::<i64, _>(&storage, small_segments()).is_err());
            assert_eq!(storage.bytes(file).ok(), Some(flipped));
        }
    }
    Ok(())
}

#[test]
fn missing_or_foreign_segments_are_corruption() -> Result<(), Error> {
    let turns = random_turns(15, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    assert!(files.len() >= 4);
    let io = |e: std::io::Error| Error::io("sim", &e);

    // A segment deleted from the middle.
    let gap = storage.fork();
    gap.remove(&files[1]).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&gap)), Some((name(&files[1]), 0)));
    assert!(open::<i64, _>(&gap, small_segments()).is_err());

    // An older segment that lost whole turns at its end (cut at a frame boundary): the next
    // segment does not start where it ends.
    let short = storage.fork();
    let bytes = short.bytes(&files[1]).map_err(io)?;
    let (last, _) = frames(&bytes).pop().unwrap_or_default();
    short.put_bytes(&files[1], &bytes[..last]).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&short)), Some((name(&files[2]), 0)));

    // Another shard's segment, or one under another number.
    let foreign = storage.fork();
    let second = foreign.bytes(&files[2]).map_err(io)?;
    foreign.put_bytes(&files[1], &second).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&foreign)), Some((name(&files[1]), 0)));
    let other_shard = read_log(&storage, &dir(), SHARD + 1, |_: LoggedTurn<i64>| Ok(()));
    assert_eq!(corrupt_at(other_shard), Some((name(&files[0]), 0)));

    // Not a log segment at all, and another format version.
    let magic = storage.fork();
    magic.put_bytes(&files[0], &[b"not a log, just text".repeat(3)].concat()).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&magic)), Some((name(&files[0]), 0)));
    let version = storage.fork();
    let mut bytes = version.bytes(&files[0]).map_err(io)?;
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    version.put_bytes(&files[0], &bytes).map_err(io)?;
    let refused = read_all::<i64, _>(&version).err();
    assert!(
        matches!(&refused, Some(Error::Incompatible { file, why }) if *file == name(&files[0]) && why.contains("version 2"))
    );

    // An older segment whose header is gone is no torn tail either.
    let unstarted = storage.fork();
    unstarted.put_bytes(&files[1], &[]).map_err(io)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&unstarted)), Some((name(&files[1]), 0)));

    // Other files are not the log's business.
    let others = storage.fork();
    for stranger in ["notes.txt", "log-1", "log-0000000000000000000x", "batch-0001"] {
        others.create(&dir().join(stranger)).map_err(io)?;
    }
    assert_eq!(read_all::<i64, _>(&others)?.0, read_all::<i64, _>(&storage)?.0);
    Ok(())
}

/// A payload under a good checksum that is not a valid turn is corruption, even at the tail.
#[test]
fn an_intact_frame_that_does_not_decode_is_corruption() -> Result<(), Error> {
    let storage = written(&random_turns(16, 5, small_i64))?;
    let newest = segment_files(&storage).pop().unwrap_or_default();
    let bytes = storage.bytes(&newest).map_err(|e| Error::io("reading", &e))?;
    // Payloads (frontier step, names, rows: commit step, id, record) that break a rule each.
    let payloads: [(&str, &[u8]); 6] = [
        ("a path id never named", &[1, 0, 1, 2, 0xe8, 0x07, 2]),
        ("a commit above the turn's frontier", &[1, 0, 1, 4, 0, 2]),
        ("a commit at the tip's frontier (sealed before)", &[1, 0, 1, 0, 0, 2]),
        ("a name that is not UTF-8", &[1, 1, 1, 0xff, 0]),
        ("bytes after the rows", &[1, 0, 0, 9]),
        ("a record cut short", &[1, 0, 1, 2, 0, 0x80]),
    ];
    for (why, payload) in payloads {
        let mut frame = Vec::new();
        let start = crate::durable::format::open_frame(&mut frame);
        frame.extend_from_slice(payload);
        assert_eq!(crate::durable::format::seal_frame(&mut frame, start), Ok(()));
        let storage = storage.fork();
        storage.put_bytes(&newest, &[&bytes[..], &frame].concat()).map_err(|e| Error::io("writing", &e))?;
        assert_eq!(
            corrupt_at(read_all::<i64, _>(&storage)),
            Some((name(&newest), bytes.len() as u64)),
            "{why}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Power cuts and kills

// ---------------------------------------------------------------------------------------------
// The segment before the newest: what a power cut leaves while a rotation owes its syncs

/// What a power cut can leave of the newest segment while the rotation to it owes its syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Newest {
    /// Its name never reached the disk.
    Absent,
    /// This many bytes of its header (fewer than a header).
    Unstarted(usize),
    /// Zeros where its header should be.
    Zeros,
    /// As written: a valid header, and its frames.
    Frames,
}

pub(super) const NEWEST: [Newest; 5] =
    [Newest::Absent, Newest::Unstarted(0), Newest::Unstarted(17), Newest::Zeros, Newest::Frames];

/// A copy of `storage` whose segment before the newest (`older`) holds `older_bytes` and whose
/// newest (`newest`, holding `newest_bytes` as written) is left as `shape` says.
pub(super) fn two_segment_shape(
    storage: &SimStorage,
    older: &Path,
    older_bytes: &[u8],
    newest: &Path,
    newest_bytes: &[u8],
    shape: Newest,
) -> Result<SimStorage, Error> {
    let io = |e: std::io::Error| Error::io("sim", &e);
    let damaged = storage.fork();
    damaged.put_bytes(older, older_bytes).map_err(io)?;
    match shape {
        Newest::Absent => damaged.remove(newest).map_err(io)?,
        Newest::Unstarted(kept) => damaged.put_bytes(newest, &newest_bytes[..kept]).map_err(io)?,
        Newest::Zeros => damaged.put_bytes(newest, &[0; 64]).map_err(io)?,
        Newest::Frames => damaged.put_bytes(newest, newest_bytes).map_err(io)?,
    }
    // The shape is what the disk holds: a power cut later keeps it.
    damaged.sync_dir(&dir()).map_err(io)?;
    Ok(damaged)
}

/// The segment before the newest cut at every offset of its last two frames, with the newest
/// absent, unstarted, zeros or whole: recovery keeps exactly the turns before the cut, drops
/// the newest whole (its turns follow a hole) and reports where the log's intact bytes end;
/// opening repairs the log, and a power cut at any step of the repair is repaired again.
#[test]
fn a_torn_segment_before_the_newest_drops_the_newest_whole() -> Result<(), Error> {
    let turns = random_turns(31, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    assert!(files.len() >= 3, "several segments");
    let (older, newest) = (files[files.len() - 2].clone(), files[files.len() - 1].clone());
    let io = |e: std::io::Error| Error::io("sim", &e);
    let (older_bytes, newest_bytes) =
        (storage.bytes(&older).map_err(io)?, storage.bytes(&newest).map_err(io)?);
    let (older_frames, newest_frames) = (frames(&older_bytes), frames(&newest_bytes));
    assert!(older_frames.len() >= 2 && !newest_frames.is_empty());
    let (all, _) = read_all::<i64, _>(&storage)?;
    let before = all.len() - older_frames.len() - newest_frames.len();
    let (mut repairs, mut cut_mid_repair) = (0, 0);
    for cut in older_frames[older_frames.len() - 2].0..=older_bytes.len() {
        for shape in NEWEST {
            let what = format!("{} cut at {cut}, the newest {shape:?}", name(&older));
            let damaged =
                two_segment_shape(&storage, &older, &older_bytes[..cut], &newest, &newest_bytes, shape)?;
            let whole = older_frames.iter().filter(|&&(_, end)| end <= cut).count();
            let boundary = older_frames.iter().any(|&(_, end)| end == cut);
            let intact = cut == older_bytes.len();
            let kept =
                before + whole + if intact && shape == Newest::Frames { newest_frames.len() } else { 0 };
            let (read, report) = read_all::<i64, _>(&damaged)?;
            assert_eq!(read, all[..kept], "{what}");
            let dropped = match shape {
                Newest::Absent => None,
                Newest::Frames if intact => None,
                _ => Some(files.len() as u64 - 1),
            };
            assert_eq!(report.dropped, dropped, "{what}");
            let torn = report.torn.as_ref().map(|t| (t.file.clone(), t.offset + t.bytes, t.damage));
            let expected = match shape {
                Newest::Absent | Newest::Frames if intact => None,
                Newest::Absent if boundary => None,
                Newest::Unstarted(_) | Newest::Zeros if boundary => {
                    let bytes = match shape {
                        Newest::Unstarted(kept) => kept as u64,
                        _ => 64,
                    };
                    Some((name(&newest), bytes, Damage::Unstarted))
                }
                Newest::Frames if boundary => Some((name(&older), cut as u64, Damage::Missing)),
                _ => Some((
                    name(&older),
                    cut as u64,
                    report.torn.as_ref().map_or(Damage::Header, |t| t.damage),
                )),
            };
            assert_eq!(torn, expected, "{what}");
            if let Some(torn) = report.torn.as_ref().filter(|t| t.file == name(&older) && !boundary) {
                assert!(torn.damage.is_missing_bytes(), "{what}: {:?}", torn.damage);
                assert_eq!(torn.offset, older_frames[whole].0 as u64, "{what}");
            }

            // Opening repairs it and goes on; the newest's number is taken again.
            let (mut writer, recovered, _) = open::<i64, _>(&damaged, small_segments())?;
            assert_eq!(recovered, read, "{what}");
            let more = Owned::random(writer.tip(), &mut Rng::new(cut as u64), small_i64);
            more.append(&mut writer)?;
            writer.sync()?;
            drop(writer);
            let (after, report) = read_all::<i64, _>(&damaged)?;
            assert_eq!((after.len(), after.last(), &report.torn), (kept + 1, Some(&more), &None), "{what}");
            let numbers = segment_files(&damaged).len();
            assert!(numbers == files.len() || numbers == files.len() + 1, "{what}: {numbers} segments");
            repairs += 1;

            // A power cut at every step of the repair: read as before, and repaired again.
            for ops in 0..12 {
                let again =
                    two_segment_shape(&storage, &older, &older_bytes[..cut], &newest, &newest_bytes, shape)?;
                again.cut_power_after(ops, cut as u64 * 7 + ops);
                let _ = open::<i64, _>(&again, small_segments());
                let Some(image) = again.after_power_cut() else { continue };
                cut_mid_repair += 1;
                assert_eq!(read_all::<i64, _>(&image)?.0, read, "{what}, power cut after {ops} operations");
                let (_, recovered, _) = open::<i64, _>(&image, small_segments())?;
                assert_eq!(recovered, read, "{what}, reopened after the power cut after {ops}");
                assert_eq!(read_all::<i64, _>(&image)?.1.torn, None, "{what}, repaired after {ops}");
            }
        }
    }
    assert!(repairs > 50 && cut_mid_repair > 100, "{repairs} repairs, {cut_mid_repair} cut mid-repair");
    Ok(())
}

/// Bytes that are there but fail a checksum in the last frame of the segment before the newest
/// (a flipped bit), while the newest's header survived (its turns may be synced): corruption,
/// naming the file and the frame. With the newest holding nothing (absent, or its header never
/// written) the log ends in that segment, and the damage is its torn tail, as in a newest
/// segment. Zeros from the frame on, or the file ending inside it, are a power cut's: a tail.
#[test]
fn damage_before_the_newest_is_corruption_unless_bytes_are_missing() -> Result<(), Error> {
    let turns = random_turns(32, 40, small_i64);
    let storage = written(&turns)?;
    let files = segment_files(&storage);
    let (older, newest) = (files[files.len() - 2].clone(), files[files.len() - 1].clone());
    let io = |e: std::io::Error| Error::io("sim", &e);
    let (older_bytes, newest_bytes) =
        (storage.bytes(&older).map_err(io)?, storage.bytes(&newest).map_err(io)?);
    let older_frames = frames(&older_bytes);
    let (all, _) = read_all::<i64, _>(&storage)?;
    let before = all.len() - older_frames.len() - frames(&newest_bytes).len();
    let (start, end) = older_frames[older_frames.len() - 1];
    for at in start..end {
        let mut flipped = older_bytes.clone();
        flipped[at] ^= 1 << (at % 8);
        for shape in NEWEST {
            let what = format!("flip at {at}, the newest {shape:?}");
            let damaged = two_segment_shape(&storage, &older, &flipped, &newest, &newest_bytes, shape)?;
            let result = read_all::<i64, _>(&damaged);
            if shape == Newest::Frames {
                assert_eq!(corrupt_at(result), Some((name(&older), start as u64)), "{what}");
                assert!(open::<i64, _>(&damaged, small_segments()).is_err(), "{what}");
                assert_eq!(
                    damaged.bytes(&older).ok().as_deref(),
                    Some(&flipped[..]),
                    "{what}: changed nothing"
                );
            } else {
                let (read, report) = result?;
                assert_eq!(read, all[..before + older_frames.len() - 1], "{what}");
                assert_eq!(
                    report.torn.map(|t| (t.file, t.offset)),
                    Some((name(&older), start as u64)),
                    "{what}"
                );
            }
        }
    }
    // Zeros from the last frame on (pages never written), the newest whole: a torn tail.
    let zeroed = [&older_bytes[..start], &vec![0; end - start]].concat();
    let damaged = two_segment_shape(&storage, &older, &zeroed, &newest, &newest_bytes, Newest::Frames)?;
    let (read, report) = read_all::<i64, _>(&damaged)?;
    assert_eq!(read, all[..before + older_frames.len() - 1]);
    assert_eq!(report.torn.map(|t| (t.offset, t.damage)), Some((start as u64, Damage::Zeroed)));
    // Zeros after a whole segment: bytes the writer never wrote, where no turn is missing.
    let longer = [&older_bytes[..], &[0; 100]].concat();
    let damaged = two_segment_shape(&storage, &older, &longer, &newest, &newest_bytes, Newest::Frames)?;
    assert_eq!(corrupt_at(read_all::<i64, _>(&damaged)), Some((name(&older), older_bytes.len() as u64)));
    // The newest starting below where the cut one ends (or beside it): corruption, not a tail.
    let cut = &older_bytes[..end - 3];
    let tip = read_all::<i64, _>(&two_segment_shape(
        &storage,
        &older,
        cut,
        &newest,
        &newest_bytes,
        Newest::Absent,
    )?)?
    .1
    .tip;
    let sequence = files.len() as u64 - 1;
    for start in [
        Tip { frontier: tip.frontier.saturating_sub(1), ..tip },
        tip,
        Tip { names: tip.names + 1, frontier: tip.frontier.saturating_sub(1) },
    ] {
        let header = crate::durable::format::Header { shard: SHARD, sequence, start }.encode();
        let bytes = [&header[..], &newest_bytes[HEADER_LEN..]].concat();
        let damaged = two_segment_shape(&storage, &older, cut, &newest, &bytes, Newest::Frames)?;
        assert_eq!(
            corrupt_at(read_all::<i64, _>(&damaged)),
            Some((name(&older), start_of_last(&older_frames))),
            "{start:?}"
        );
    }
    Ok(())
}

fn start_of_last(frames: &[(usize, usize)]) -> u64 {
    frames.last().map_or(0, |&(start, _)| start as u64)
}
