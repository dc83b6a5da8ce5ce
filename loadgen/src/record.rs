//! What a part carries (`--record`), and the work every engine does with it.
//!
//! Four kinds, so that a ratio compares like with like:
//!
//! - `i64`: an `i64` per part, summed per path (lockstep's `Sum`): counters and rollups. The
//!   record is a plain value; nothing is allocated or shared per record anywhere.
//! - `u64`: a `u64` per part, every record kept with its commit (`Concat<u64>`).
//! - `bytes`: a fresh owned buffer of `--record-bytes` per part (`Box<[u8]>`), allocated and
//!   copied on the producer's hot path and freed wherever the engine drops it: what an embedding
//!   that copies its data into the pipeline pays.
//! - `shared`: an `Arc<[u8]>` from a pool made before the run, cloned per part (one reference
//!   count increment on the producer's core, the decrement on whichever core drops it): what an
//!   embedding that already holds its data in shared buffers pays.
//!
//! Each producer draws its records from a small pool made before the run (random values or
//! random payloads), so every engine is handed exactly the same records; [`Kind::make`] is the
//! per-part cost the kind stands for (a copy of a value, an allocation and a copy, or a
//! reference count increment).

use std::fmt;
use std::sync::Arc;

use clap::ValueEnum;
use lockstep::merge::{Concat, Merge, Restore, Sum};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::rng::Rng;

/// The `--record` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordKind {
    /// An i64 per part, summed per path (lockstep's Sum).
    I64,
    /// A u64 per part, every record kept (`Concat<u64>`).
    U64,
    /// A fresh owned buffer of --record-bytes per part, allocated and copied on the hot path.
    Bytes,
    /// An `Arc<[u8]>` of --record-bytes from a pool, cloned (reference counted) per part.
    Shared,
}

impl RecordKind {
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::I64 => "i64",
            RecordKind::U64 => "u64",
            RecordKind::Bytes => "bytes",
            RecordKind::Shared => "shared",
        }
    }

    /// Whether the kind carries `--record-bytes` of payload (the value kinds are 8 bytes).
    pub fn has_payload(self) -> bool {
        matches!(self, RecordKind::Bytes | RecordKind::Shared)
    }

    /// Payload bytes per record, for MB/s: the value kinds count their 8 bytes.
    pub fn bytes_per_record(self, record_bytes: usize) -> usize {
        if self.has_payload() {
            record_bytes
        } else {
            8
        }
    }

    /// What the engines do with this kind, in one line for the report.
    pub fn work(self) -> &'static str {
        match self {
            RecordKind::I64 => "each path's i64s summed (lockstep: Sum)",
            RecordKind::U64 => "every u64 kept with its commit (lockstep: Concat<u64>)",
            RecordKind::Bytes => {
                "every buffer kept with its commit (lockstep: Concat<Box<[u8]>>); a fresh allocation and copy per part"
            }
            RecordKind::Shared => {
                "every buffer kept with its commit (lockstep: Concat<Arc<[u8]>>); a reference count per part"
            }
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One record kind, as the engines see it.
pub trait Kind: Send + Sync + 'static {
    /// What a part carries; serializable, so that a durable pipeline can log it (`--durable`).
    type Record: Clone + Send + Sync + fmt::Debug + Serialize + DeserializeOwned + 'static;
    /// What a baseline engine keeps per segment of a path: a sum, or every record with its
    /// commit.
    type Segment: Default + Send + fmt::Debug;
    /// lockstep's merge for this kind; its outputs and column can be saved, for `--durable`.
    type Merge: Merge<Record = Self::Record, Output: Serialize + DeserializeOwned, Column: Restore<Self::Merge>>
        + fmt::Debug;

    const KIND: RecordKind;

    fn merge() -> Self::Merge;

    /// A record for the pool made before the run: random, `bytes` long where the kind has a
    /// payload.
    fn pooled(rng: &mut Rng, bytes: usize) -> Self::Record;

    /// The per-part cost the kind stands for: copies a value, allocates and copies a buffer, or
    /// increments a reference count.
    #[inline]
    fn make(pooled: &Self::Record) -> Self::Record {
        pooled.clone()
    }

    /// Adds a record of `commit` to a segment.
    fn push(segment: &mut Self::Segment, commit: u64, record: Self::Record);

    /// Joins a later segment into an earlier one (compaction).
    fn absorb(into: &mut Self::Segment, from: Self::Segment);

    /// A cheap look at a record that the compiler cannot drop (its value, or its length), so a
    /// consumer that keeps nothing still reads what it was handed.
    fn touch(record: &Self::Record) -> u64;
}

/// `--record i64`.
#[derive(Debug)]
pub struct I64;
/// `--record u64`.
#[derive(Debug)]
pub struct U64;
/// `--record bytes`.
#[derive(Debug)]
pub struct Bytes;
/// `--record shared`.
#[derive(Debug)]
pub struct Shared;

impl Kind for I64 {
    type Record = i64;
    type Segment = i64;
    type Merge = Sum;
    const KIND: RecordKind = RecordKind::I64;

    fn merge() -> Sum {
        Sum
    }

    fn pooled(rng: &mut Rng, _bytes: usize) -> i64 {
        // Small values, as counters are; the sums cannot overflow in any run.
        (rng.next_u64() % 1000) as i64
    }

    #[inline]
    fn push(segment: &mut i64, _commit: u64, record: i64) {
        *segment = segment.wrapping_add(record);
    }

    #[inline]
    fn absorb(into: &mut i64, from: i64) {
        *into = into.wrapping_add(from);
    }

    #[inline]
    fn touch(record: &i64) -> u64 {
        *record as u64
    }
}

impl Kind for U64 {
    type Record = u64;
    type Segment = Vec<(u64, u64)>;
    type Merge = Concat<u64>;
    const KIND: RecordKind = RecordKind::U64;

    fn merge() -> Concat<u64> {
        Concat::default()
    }

    fn pooled(rng: &mut Rng, _bytes: usize) -> u64 {
        rng.next_u64()
    }

    #[inline]
    fn push(segment: &mut Self::Segment, commit: u64, record: u64) {
        segment.push((commit, record));
    }

    #[inline]
    fn absorb(into: &mut Self::Segment, from: Self::Segment) {
        into.extend(from);
    }

    #[inline]
    fn touch(record: &u64) -> u64 {
        *record
    }
}

fn payload(rng: &mut Rng, bytes: usize) -> Vec<u8> {
    (0..bytes).map(|_| rng.next_u64() as u8).collect()
}

impl Kind for Bytes {
    type Record = Box<[u8]>;
    type Segment = Vec<(u64, Box<[u8]>)>;
    type Merge = Concat<Box<[u8]>>;
    const KIND: RecordKind = RecordKind::Bytes;

    fn merge() -> Self::Merge {
        Concat::default()
    }

    fn pooled(rng: &mut Rng, bytes: usize) -> Box<[u8]> {
        payload(rng, bytes).into_boxed_slice()
    }

    #[inline]
    fn push(segment: &mut Self::Segment, commit: u64, record: Box<[u8]>) {
        segment.push((commit, record));
    }

    #[inline]
    fn absorb(into: &mut Self::Segment, from: Self::Segment) {
        into.extend(from);
    }

    #[inline]
    fn touch(record: &Box<[u8]>) -> u64 {
        record.len() as u64
    }
}

impl Kind for Shared {
    type Record = Arc<[u8]>;
    type Segment = Vec<(u64, Arc<[u8]>)>;
    type Merge = Concat<Arc<[u8]>>;
    const KIND: RecordKind = RecordKind::Shared;

    fn merge() -> Self::Merge {
        Concat::default()
    }

    fn pooled(rng: &mut Rng, bytes: usize) -> Arc<[u8]> {
        Arc::from(payload(rng, bytes))
    }

    #[inline]
    fn push(segment: &mut Self::Segment, commit: u64, record: Arc<[u8]>) {
        segment.push((commit, record));
    }

    #[inline]
    fn absorb(into: &mut Self::Segment, from: Self::Segment) {
        into.extend(from);
    }

    #[inline]
    fn touch(record: &Arc<[u8]>) -> u64 {
        record.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_lists_compact_alike() {
        let (mut a, mut b) = (0i64, 0i64);
        I64::push(&mut a, 1, 5);
        I64::push(&mut b, 2, 7);
        I64::absorb(&mut a, b);
        assert_eq!(a, 12);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        U64::push(&mut a, 1, 5);
        U64::push(&mut b, 2, 7);
        U64::absorb(&mut a, b);
        assert_eq!(a, [(1, 5), (2, 7)]);
    }

    #[test]
    fn payload_kinds_have_the_asked_size_and_bytes_copies() {
        let mut rng = Rng::new(1);
        let pooled = Bytes::pooled(&mut rng, 32);
        let made = Bytes::make(&pooled);
        assert_eq!(made.len(), 32);
        assert_eq!(made, pooled);
        assert_ne!(made.as_ptr(), pooled.as_ptr(), "bytes must be a fresh buffer");
        let shared = Shared::pooled(&mut rng, 32);
        let made = Shared::make(&shared);
        assert!(Arc::ptr_eq(&made, &shared), "shared must be the pooled buffer");
        assert_eq!(RecordKind::I64.bytes_per_record(256), 8);
        assert_eq!(RecordKind::Shared.bytes_per_record(256), 256);
    }
}
