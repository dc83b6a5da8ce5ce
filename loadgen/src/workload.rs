//! The workload: path names, records, and each producer's random choice of parts.
//!
//! Everything a producer commits is generated before the clock starts: path names once for the
//! whole run, records once per producer. The hot loop only draws random indexes.

use std::sync::Arc;

/// What a producer commits to a path.
///
/// `Arc<[u8]>`, from a pool made before the run, cloned per part. A clone is one reference-count
/// increment; the payload bytes are neither allocated nor copied on the hot path. That keeps the
/// load generator from measuring the allocator instead of the pipeline, while the records still
/// have their real size: each one owns `--record-bytes` bytes on the heap, compaction keeps them
/// reachable, and readers would see them. So MB/s is payload handed over by reference, which is
/// what an embedding that already holds its data in shared buffers (`Arc<[u8]>`, `bytes::Bytes`)
/// gets; one that builds a fresh buffer per record pays an allocation and a copy on top.
/// A `Vec<u8>` would allocate per commit, and `Concat` clones records on every merge level, so it
/// would also copy every payload `max_level` times inside the workers.
pub type Record = Arc<[u8]>;

/// At most this many distinct records per producer.
const RECORD_POOL: usize = 1024;
/// At most this many payload bytes per producer's pool.
const POOL_BYTES: usize = 16 << 20;

/// SplitMix64: tiny, fast, and good enough to pick paths uniformly. One per producer, so the
/// hot loop shares nothing.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n >= 1`) by multiply-shift; the bias, at most `n / 2^64`, is nil here.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The shape of the load, shared by every producer.
#[derive(Debug)]
pub struct Workload {
    paths: Vec<String>,
    record_bytes: usize,
    parts_per_commit: usize,
}

impl Workload {
    /// `paths` names `/p/00000000`, `/p/00000001`, … (at least eight digits).
    pub fn new(paths: usize, record_bytes: usize, parts_per_commit: usize) -> Self {
        let width = paths.saturating_sub(1).to_string().len().max(8);
        let paths = (0..paths).map(|i| format!("/p/{i:0width$}")).collect();
        Self { paths, record_bytes, parts_per_commit }
    }

    /// How many paths there are.
    pub fn paths(&self) -> usize {
        self.paths.len()
    }

    pub fn parts_per_commit(&self) -> usize {
        self.parts_per_commit
    }

    pub fn record_bytes(&self) -> usize {
        self.record_bytes
    }

    /// Producer `index`'s generator: its own random stream and its own record pool.
    pub fn generator(&self, index: usize) -> Generator<'_> {
        let mut rng = Rng::new(0x5EED_0000_0000_0000 ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let pool = (POOL_BYTES / self.record_bytes.max(1)).clamp(1, RECORD_POOL);
        let records = (0..pool)
            .map(|_| (0..self.record_bytes).map(|_| rng.next_u64() as u8).collect::<Record>())
            .collect();
        Generator { paths: &self.paths, records, next_record: 0, rng, parts: self.parts_per_commit }
    }
}

/// Draws the parts of one producer's commits.
#[derive(Debug)]
pub struct Generator<'w> {
    paths: &'w [String],
    records: Vec<Record>,
    next_record: usize,
    rng: Rng,
    parts: usize,
}

impl<'w> Generator<'w> {
    /// Fills `parts` (cleared first) with one commit's parts: each names a path drawn uniformly
    /// and independently (a commit may name a path twice) and carries the pool's next record.
    pub fn fill(&mut self, parts: &mut Vec<(&'w str, Record)>) {
        parts.clear();
        for _ in 0..self.parts {
            let path = self.paths[self.rng.below(self.paths.len() as u64) as usize].as_str();
            let record = self.records[self.next_record].clone();
            self.next_record = (self.next_record + 1) % self.records.len();
            parts.push((path, record));
        }
    }

    /// The generator's random stream, for the producer's sampling decisions.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(7);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let x = rng.below(10) as usize;
            seen[x] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn parts_have_the_configured_shape() {
        let workload = Workload::new(100, 16, 3);
        let mut generator = workload.generator(0);
        let mut parts = Vec::new();
        generator.fill(&mut parts);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|(path, record)| path.len() == 11 && record.len() == 16));
        assert!(parts.iter().all(|(path, _)| path.starts_with("/p/000000")));
    }
}
