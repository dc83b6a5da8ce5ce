//! One commit is one message: its parts, `(path, record)` in order, encoded with serde in
//! postcard's compact varint format, as the durable log encodes records. A path is a length
//! and its bytes; a record is whatever its `Serialize` writes.

use serde::de::DeserializeOwned;
use serde::ser::{Serialize, SerializeSeq, Serializer};
#[cfg(test)]
use serde::Deserialize;

use crate::error::Error;

/// The parts of a commit, serialized as a sequence of `(path, record)` without a copy.
struct Parts<'a, P, R>(&'a [(P, R)]);

impl<P: AsRef<str>, R: Serialize> Serialize for Parts<'_, P, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (path, record) in self.0 {
            seq.serialize_element(&(path.as_ref(), record))?;
        }
        seq.end()
    }
}

/// A commit's message payload.
pub(crate) fn encode<P: AsRef<str>, R: Serialize>(parts: &[(P, R)]) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(&Parts(parts)).map_err(|error| Error::Encode { why: error.to_string() })
}

/// A commit's parts from its message payload: `Vec<(&str, R)>` borrows each path from the
/// payload (no allocation per part), `Vec<(String, R)>` owns them.
#[cfg(test)]
pub(crate) fn decode<'a, T: Deserialize<'a>>(sequence: u64, payload: &'a [u8]) -> Result<T, Error> {
    postcard::from_bytes(payload).map_err(|error| Error::Decode { sequence, why: error.to_string() })
}

/// A commit's parts read from its payload one at a time, each path as the bytes the message
/// carries: the follower checks a path's UTF-8 only the first time it meets those bytes, and
/// keeps no `Vec` of parts per message. It reads what [`encode`] writes (postcard's wire
/// format: a sequence is its length as a varint, then its elements; a `str` is its length as a
/// varint, then its bytes); bytes after the last part are ignored, as `postcard::from_bytes`
/// ignores them.
pub(crate) struct PartsReader<'a> {
    sequence: u64,
    rest: &'a [u8],
    left: u64,
}

impl<'a> PartsReader<'a> {
    /// The parts of the message at `sequence`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the payload does not start with a sequence's length.
    pub(crate) fn new(sequence: u64, payload: &'a [u8]) -> Result<Self, Error> {
        let (left, rest) = varint(payload).ok_or_else(|| truncated(sequence, "the number of parts"))?;
        Ok(Self { sequence, rest, left })
    }

    /// The next part: its path's bytes (not yet checked to be UTF-8) and its record.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the payload ends early or a record does not decode.
    pub(crate) fn next<R: DeserializeOwned>(&mut self) -> Result<Option<(&'a [u8], R)>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        let sequence = self.sequence;
        let (len, rest) = varint(self.rest).ok_or_else(|| truncated(sequence, "a path's length"))?;
        let (path, rest) = usize::try_from(len)
            .ok()
            .and_then(|len| rest.split_at_checked(len))
            .ok_or_else(|| truncated(sequence, "a path"))?;
        let (record, rest) = postcard::take_from_bytes::<R>(rest)
            .map_err(|error| Error::Decode { sequence, why: error.to_string() })?;
        self.rest = rest;
        self.left -= 1;
        Ok(Some((path, record)))
    }
}

fn truncated(sequence: u64, what: &str) -> Error {
    Error::Decode { sequence, why: format!("the payload ends before {what}, or it is not a varint") }
}

/// A postcard varint (LEB128, seven bits a byte, low first, at most ten bytes for a `u64`) and
/// the bytes after it; `None` if the bytes end first or it overflows a `u64`.
fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        // The tenth byte holds the top bit of a u64 only.
        if index == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, bytes.get(index + 1..)?));
        }
    }
    None
}

/// Which paths a follower keeps: all of them (a replica), or those whose stable hash falls in
/// `index` of `count` partitions.
///
/// The hash is FNV-1a (64 bits) of the path's bytes, modulo `count`: fixed, so every follower
/// on every machine and version agrees on it (unlike a pipeline's shard routing, which is keyed
/// at random per pipeline).
///
/// ```
/// use lockstep_nats::Partition;
///
/// let halves = [Partition::of(0, 2)?, Partition::of(1, 2)?];
/// let path = "/a/b";
/// assert_eq!(halves.iter().filter(|half| half.keeps(path)).count(), 1);
/// assert!(Partition::All.keeps(path));
/// assert!(Partition::of(2, 2).is_err());
/// # Ok::<(), lockstep_nats::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Every path.
    All,
    /// The paths whose hash modulo `count` is `index`.
    Of {
        /// This follower's part, below `count`.
        index: u32,
        /// How many parts the paths are split into.
        count: u32,
    },
}

impl Partition {
    /// Part `index` of `count`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPartition`] unless `index < count`.
    pub fn of(index: u32, count: u32) -> Result<Self, Error> {
        if index >= count {
            return Err(Error::InvalidPartition { index, count });
        }
        Ok(Partition::Of { index, count })
    }

    /// True if a follower of this partition keeps `path`.
    pub fn keeps(&self, path: &str) -> bool {
        match *self {
            Partition::All => true,
            Partition::Of { index, count } => fnv1a(path.as_bytes()) % u64::from(count) == u64::from(index),
        }
    }
}

/// FNV-1a, 64 bits: the partition hash. Fixed by its definition, so stable everywhere.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip() -> Result<(), Error> {
        let parts = [("/a", 1u64), ("/b", 300)];
        let decoded: Vec<(String, u64)> = decode(7, &encode(&parts)?)?;
        assert_eq!(decoded, [("/a".to_string(), 1), ("/b".to_string(), 300)]);
        let encoded = encode(&parts)?;
        let borrowed: Vec<(&str, u64)> = decode(7, &encoded)?;
        assert_eq!(borrowed, [("/a", 1), ("/b", 300)]);
        let bad = decode::<Vec<(&str, u64)>>(9, &[0xff]);
        assert!(matches!(bad, Err(Error::Decode { sequence: 9, .. })));
        Ok(())
    }

    /// The varint reader agrees with postcard's encoder, and refuses what overflows a u64 or
    /// ends early.
    #[test]
    fn varint_is_postcards() -> Result<(), postcard::Error> {
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut bytes = postcard::to_allocvec(&value)?;
            bytes.push(0xaa);
            assert_eq!(varint(&bytes), Some((value, &[0xaa][..])), "{value}");
            assert_eq!(varint(&bytes[..bytes.len() - 2]), None, "{value} cut short");
        }
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert_eq!(varint(&overflow), None);
        assert_eq!(varint(&[0x80; 11]), None);
        Ok(())
    }

    /// The published FNV-1a test vectors: the hash is the standard one.
    #[test]
    fn fnv1a_is_the_standard_one() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
