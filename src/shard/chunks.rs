//! An append-only list whose entries never move: chunks that double in size, each allocated
//! once, so readers index it without a lock while its one writer grows it.
//!
//! Chunk `k` holds `FIRST << k` entries, allocated whole (every entry at its default) the first
//! time an index in it is asked for; 27 chunks give room for more than `u32::MAX` entries. The
//! entries are whatever the user makes them (a [`OnceLock`] set once, a cell swapped by one
//! writer): this type only keeps their addresses fixed.

use crate::sync::OnceLock;

/// Entries in the first chunk; chunk `k` holds `FIRST << k`.
const FIRST: usize = 64;
/// Chunks: room for `FIRST * (2^CHUNKS - 1)` entries, past `u32::MAX`.
const CHUNKS: usize = 27;

/// A list of `T` indexed from 0, grown a chunk at a time.
pub(crate) struct Chunks<T> {
    chunks: Box<[OnceLock<Box<[T]>>]>,
}

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Self { chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect() }
    }
}

/// The chunk and index in it of entry `index`.
fn place(index: usize) -> (usize, usize) {
    let chunk = (index / FIRST + 1).ilog2() as usize;
    (chunk, index - FIRST * ((1 << chunk) - 1))
}

impl<T: Default> Chunks<T> {
    /// Entry `index`, if its chunk was allocated.
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        let (chunk, at) = place(index);
        self.chunks.get(chunk)?.get().map(|entries| &entries[at])
    }

    /// Entry `index`, allocating its chunk if it is new.
    ///
    /// # Panics
    /// Past `FIRST * (2^CHUNKS - 1)` entries (more than `u32::MAX`; ids are `u32`).
    pub(crate) fn get_or_alloc(&self, index: usize) -> &T {
        let (chunk, at) = place(index);
        let entries = self.chunks[chunk].get_or_init(|| (0..FIRST << chunk).map(|_| T::default()).collect());
        &entries[at]
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn entries_land_in_doubling_chunks_and_stay_put() {
        assert_eq!(place(0), (0, 0));
        assert_eq!(place(FIRST - 1), (0, FIRST - 1));
        assert_eq!(place(FIRST), (1, 0));
        assert_eq!(place(3 * FIRST - 1), (1, 2 * FIRST - 1));
        assert_eq!(place(3 * FIRST), (2, 0));
        assert!(place(u32::MAX as usize).0 < CHUNKS);
        let list = Chunks::<OnceLock<u32>>::default();
        assert!(list.get(5).is_none(), "nothing allocated yet");
        let first = list.get_or_alloc(5) as *const _;
        let _ = list.get_or_alloc(5).set(7);
        for i in 0..1_000 {
            let _ = list.get_or_alloc(i).set(i as u32);
        }
        assert_eq!(list.get(5).and_then(OnceLock::get), Some(&7));
        assert_eq!(list.get(999).and_then(OnceLock::get), Some(&999));
        assert!(std::ptr::eq(first, list.get_or_alloc(5)), "an entry never moves");
    }
}
