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
