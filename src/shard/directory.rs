//! A shard's path directory: name to dense id and back, shared by its worker and every reader.
//!
//! Paths are interned once and never removed (by producers, the first time they name a path, and
//! by `Pipeline::key`, one at a time under a mutex; readers never lock), so the directory is not
//! versioned with the views: one directory serves every view of the shard, and
//! publishing costs an `Arc` clone, not a copy of anything per path. A reader may find a name
//! interned after its snapshot was cut; its batches then hold nothing for the id, and the read
//! finds nothing, as it must.
//!
//! Name to id is an open-addressing table of write-once slots, at most half full; when it would
//! be fuller, the worker builds one twice the size and swaps it in (amortized O(1) per path; the
//! old table stays readable, and complete up to the swap, for readers still holding it). Id to
//! name is an append-only list of write-once entries whose addresses never change
//! (`crate::shard::chunks`).
//!
//! # Orderings
//!
//! Every slot and entry is a [`OnceLock`]: a value set once, read by anyone after. A producer
//! sets a path's name entry, then its table slot, then pushes parts carrying the id; the worker
//! pops them (the queue's Release/Acquire orders the interning before the pop), forms batches
//! and stores the view whose batches use the id. A reader loads the view (which synchronizes
//! with that store), then the table: it sees the table current at the publish or a newer one
//! (each newer one holds every entry of the old), and every slot and name set before.

use std::hash::BuildHasher;

use crate::shard::chunks::Chunks;
use crate::sync::{Arc, ArcCell, AtomicUsize, Mutex, OnceLock, Ordering};

/// A table slot: a name and its id, set once.
type Slot = OnceLock<(Arc<str>, u32)>;

/// Name to id, open addressing with linear probing.
struct Table {
    slots: Box<[Slot]>,
}

impl Table {
    fn with_slots(slots: usize) -> Self {
        Self { slots: (0..slots).map(|_| OnceLock::new()).collect() }
    }

    /// The slot holding `name`, or the empty slot where it would go.
    fn probe(&self, hash: u64, name: &str) -> &Slot {
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = &self.slots[at];
            match slot.get() {
                Some((held, _)) if &**held != name => at = (at + 1) & mask,
                _ => return slot,
            }
        }
    }
}

/// One shard's path names and their dense ids.
pub(crate) struct Directory {
    table: ArcCell<Table>,
    names: Chunks<OnceLock<Arc<str>>>,
    /// Paths interned, read and written under `writer`.
    len: AtomicUsize,
    /// Serializes interning (readers never take it).
    writer: Mutex<()>,
    hasher: foldhash::fast::RandomState,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").field("paths", &self.len()).finish()
    }
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            table: ArcCell::new(Arc::new(Table::with_slots(64))),
            names: Chunks::default(),
            len: AtomicUsize::new(0),
            writer: Mutex::new(()),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl Directory {
    /// The id of `name`, if it was interned.
    pub(crate) fn id(&self, name: &str) -> Option<u32> {
        let table = self.table.peek();
        table.probe(self.hasher.hash_one(name), name).get().map(|&(_, id)| id)
    }

    /// The name of `id`. Every id a batch holds was interned before the batch was published.
    pub(crate) fn name(&self, id: u32) -> &Arc<str> {
        self.get(id).expect("an id is named before any batch holds it")
    }

    /// The name of `id`, if this thread can see it yet (an id counted by [`len`](Self::len)
    /// but interned after the reader's view may not be).
    pub(crate) fn get(&self, id: u32) -> Option<&Arc<str>> {
        self.names.get(id as usize).and_then(OnceLock::get)
    }

    pub(crate) fn len(&self) -> usize {
        // Relaxed: written under `writer`; a reading outside it is a statistic.
        self.len.load(Ordering::Relaxed)
    }

    /// The id of `name`, interning it if new.
    pub(crate) fn intern(&self, name: &str) -> u32 {
        let hash = self.hasher.hash_one(name);
        if let Some(&(_, id)) = self.table.peek().probe(hash, name).get() {
            return id;
        }
        let _writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let table = self.table.load();
        if let Some(&(_, id)) = table.probe(hash, name).get() {
            return id; // interned by another writer meanwhile
        }
        let name: Arc<str> = Arc::from(name);
        let id = self.len();
        // Under `writer`, each entry and slot is set once: these `set`s cannot find them taken.
        let _ = self.names.get_or_alloc(id).set(name.clone());
        let table = if (id + 1) * 2 > table.slots.len() { self.grow(&table) } else { table };
        let _ = table.probe(hash, &name).set((name, id as u32));
        // Relaxed: see `len`.
        self.len.store(id + 1, Ordering::Relaxed);
        id as u32
    }

    /// Swaps in a table twice the size holding every entry of `old`.
    #[cold]
    fn grow(&self, old: &Table) -> Arc<Table> {
        let table = Table::with_slots(old.slots.len() * 2);
        for (name, id) in old.slots.iter().filter_map(OnceLock::get) {
            let _ = table.probe(self.hasher.hash_one(&**name), name).set((name.clone(), *id));
        }
        let table = Arc::new(table);
        self.table.store(table.clone());
        table
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_survive_growth() {
        let directory = Directory::default();
        let names: Vec<Arc<str>> = (0..5_000).map(|i| Arc::from(format!("/p/{i}"))).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(directory.intern(name), i as u32);
        }
        assert_eq!(directory.intern(&names[17]), 17, "a known name keeps its id");
        for (i, name) in names.iter().enumerate() {
            assert_eq!(directory.id(name), Some(i as u32));
            assert_eq!(directory.name(i as u32), name);
        }
        assert_eq!(directory.id("/absent"), None);
    }

    /// A reader looks names up while the worker interns and the table grows under it: every name
    /// interned before the reader's look is found with its id, and every id found names its name.
    #[test]
    fn readers_find_every_name_while_the_table_grows() {
        let directory = Directory::default();
        let interned = AtomicUsize::new(0);
        let total = 20_000;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..total {
                    directory.intern(&format!("/p/{i}"));
                    // Release: publishes the interning above to the reader's Acquire below.
                    interned.store(i + 1, std::sync::atomic::Ordering::Release);
                }
            });
            let mut looked = 0;
            while looked < total {
                // Acquire: every name counted here was interned before.
                let known = interned.load(std::sync::atomic::Ordering::Acquire);
                for i in looked.saturating_sub(64)..known {
                    let id = directory.id(&format!("/p/{i}"));
                    assert_eq!(id, Some(i as u32), "name {i} not found after it was interned");
                    assert_eq!(&**directory.name(i as u32), format!("/p/{i}"));
                }
                looked = known;
            }
        });
    }
}
