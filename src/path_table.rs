//! A shard's published paths: immutable layers of path entries, newest first, merged in tiers.
//!
//! Every publish must hand readers a table of the shard's paths that later turns never change.
//! A persistent hash map shares structure between versions, but it copies a root-to-leaf run of
//! 32-way nodes for every changed path, and with many paths the changed ones share no nodes: a
//! turn paid several node copies (and as many drops later) per record. Here a publish adds one
//! layer holding only the paths the turn changed, and the layers merge the way a path's
//! segments do: [`RATIO`] adjacent layers of one tier merge into one layer of the next, and a
//! layer at least `1/RATIO` the size of all the layers below it merges with them into the base
//! (so that a path's old versions never pile up in layers near the size of the whole table);
//! more than [`MAX_LAYERS`] layers merge into one. A change is copied about once per tier it
//! climbs, a lookup probes a handful of hash tables, and a published layer never changes, so
//! views share layers by reference.
//!
//! A merge of more than [`AT_ONCE`] entries would stall a publish (a base of a million paths
//! takes tens of milliseconds), so it advances a step per update, [`STEP_PER_CHANGE`] entries
//! per changed path, while its source layers stay published; once done, its output replaces
//! them. The layers it replaced are dropped the same way, a step per update, once no view holds
//! them: dropping a large layer at once stalled a publish for a millisecond, long enough for
//! the scheduler to take the core away on a small machine.
//!
//! Entries carry their name's hash, so merging layers rehashes nothing. A path whose segments
//! were all dropped is published as an empty entry (a tombstone); like the worker's own state
//! for the path, it stays.

use std::hash::BuildHasher;
use std::ops::Range;

use hashbrown::HashTable;
use smallvec::SmallVec;

use crate::snapshot::{History, Segment};
use crate::sync::Arc;

/// Layers of one tier that merge into one layer of the next tier.
const RATIO: usize = 4;
/// More layers than this merge into one, whatever their tiers (bounds a lookup).
const MAX_LAYERS: usize = 32;
/// The tier of a layer that holds everything older than the layers above it.
const BASE: u8 = u8::MAX;

/// One path's published segments, ascending. Merged segments all end at or below the frontier
/// of any global view holding them; level-0 segments past a view's cut are skipped when reading.
///
/// Most republishing only appends level-0 segments, so an entry is three runs shared as far as
/// they did not change: full chunks of old top-level segments (which never change again), the
/// segments up to the last merged one (which change only when the path compacts), and the
/// level-0 tail. A new entry for a path that gained a commit copies the tail and two pointers;
/// a path of at most [`INLINE`] segments keeps them all in the entry, with no other allocation.
pub(crate) struct PathEntry<O> {
    pub(crate) name: Arc<str>,
    /// `name` hashed by the table's hasher.
    hash: u64,
    /// Full chunks of the oldest top-level segments; `None` while there are none.
    history: Option<History<O>>,
    /// The later segments up to the last merged one, unless they are in `fresh`.
    settled: Option<Arc<[Segment<O>]>>,
    /// The segments after them.
    fresh: Fresh<O>,
}

/// Segments an entry holds inline.
pub(crate) const INLINE: usize = 2;

/// The unshared tail of an entry.
pub(crate) type Fresh<O> = SmallVec<[Segment<O>; INLINE]>;

impl<O> PathEntry<O> {
    pub(crate) fn new(
        name: Arc<str>,
        hash: u64,
        history: Option<History<O>>,
        settled: Option<Arc<[Segment<O>]>>,
        fresh: Fresh<O>,
    ) -> Self {
        Self { name, hash, history, settled, fresh }
    }

    /// A tombstone: the path has no segments left.
    fn is_empty(&self) -> bool {
        self.history.is_none() && self.settled().is_empty() && self.fresh.is_empty()
    }

    fn settled(&self) -> &[Segment<O>] {
        self.settled.as_deref().unwrap_or_default()
    }

    fn is(&self, other: &Self) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.name, &other.name) || self.name == other.name)
    }

    /// The first segment, if any.
    pub(crate) fn first(&self) -> Option<&Segment<O>> {
        let oldest = self.history.as_ref().and_then(|chunks| chunks.first()).and_then(|chunk| chunk.first());
        oldest.or(self.settled().first()).or(self.fresh.first())
    }

    /// The segments ending at or below `frontier` (merged ones always do), ascending.
    pub(crate) fn upto(&self, frontier: u64) -> impl Iterator<Item = &Segment<O>> {
        let inside = |run: &[Segment<O>]| run.partition_point(|s| s.info.end <= frontier);
        let (settled, fresh) = (self.settled(), &self.fresh[..]);
        let (settled, fresh) = (&settled[..inside(settled)], &fresh[..inside(fresh)]);
        self.history
            .iter()
            .flat_map(|chunks| chunks.iter())
            .flat_map(|chunk| chunk.iter())
            .chain(settled.iter())
            .chain(fresh.iter())
    }
}

/// A set of path entries, one per path, keyed by name. The entries sit in a plain list (so a
/// merge can walk it a step at a time); the hash index points into it.
struct Layer<O> {
    tier: u8,
    entries: Vec<Arc<PathEntry<O>>>,
    index: HashTable<u32>,
}

impl<O> Layer<O> {
    fn with_capacity(tier: u8, capacity: usize) -> Self {
        Self { tier, entries: Vec::with_capacity(capacity), index: HashTable::with_capacity(capacity) }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn find(&self, hash: u64, eq: impl Fn(&PathEntry<O>) -> bool) -> Option<&Arc<PathEntry<O>>> {
        let entries = &self.entries;
        self.index.find(hash, |&at| eq(&entries[at as usize])).map(|&at| &entries[at as usize])
    }

    fn holds(&self, entry: &PathEntry<O>) -> bool {
        self.find(entry.hash, |e| e.is(entry)).is_some()
    }

    /// Adds `entry`, whose path this layer does not hold yet.
    fn push(&mut self, entry: Arc<PathEntry<O>>) {
        let (hash, at) = (entry.hash, self.entries.len() as u32);
        self.entries.push(entry);
        let entries = &self.entries;
        self.index.insert_unique(hash, at, |&at| entries[at as usize].hash);
    }
}

/// The published paths of one shard, as readers see them. Cloning shares every layer.
pub(crate) struct PathTable<O> {
    hasher: foldhash::fast::RandomState,
    /// Newest first.
    layers: Vec<Arc<Layer<O>>>,
}

impl<O> Clone for PathTable<O> {
    fn clone(&self) -> Self {
        Self { hasher: self.hasher.clone(), layers: self.layers.clone() }
    }
}

impl<O> PathTable<O> {
    /// An empty table; tables that publish to the same views must share `hasher`.
    pub(crate) fn new(hasher: foldhash::fast::RandomState) -> Self {
        Self { hasher, layers: Vec::new() }
    }

    /// `name`'s hash, as entries of this table carry it.
    pub(crate) fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    /// `name`'s entry, unless the path is absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&PathEntry<O>> {
        let hash = self.hash(name);
        let entry = self.layers.iter().find_map(|layer| layer.find(hash, |e| &*e.name == name))?;
        (!entry.is_empty()).then_some(&**entry)
    }

    /// Every path's entry once, empty ones left out, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &PathEntry<O>> {
        self.layers.iter().enumerate().flat_map(move |(at, layer)| {
            let newer = &self.layers[..at];
            layer
                .entries
                .iter()
                .map(|entry| &**entry)
                .filter(move |entry| !entry.is_empty() && !newer.iter().any(|n| n.holds(entry)))
        })
    }
}

/// A shard worker's side of its table: the published layers, the merges under way, and the
/// layers merges replaced.
pub(crate) struct TableWriter<O> {
    table: PathTable<O>,
    /// Disjoint runs of layers being merged, newest run first.
    merging: Vec<Merging<O>>,
    /// Layers a finished merge replaced, dropped a step at a time once no view holds them.
    retired: Vec<Arc<Layer<O>>>,
    /// Merges of at most this many entries run at once; also the least work per update.
    at_once: usize,
    /// Entries merged (and dropped) per changed path per update.
    step: usize,
}

/// A merge under way. Its sources stay published until it is done, so readers never miss it.
struct Merging<O> {
    /// The run of layers being merged, newest first.
    sources: Vec<Arc<Layer<O>>>,
    /// The next entry to take is `sources[layer].entries[next]`.
    layer: usize,
    next: usize,
    out: Layer<O>,
}

impl<O> Merging<O> {
    fn new(sources: Vec<Arc<Layer<O>>>, tier: u8) -> Self {
        let capacity = sources.iter().map(|layer| layer.len()).sum();
        Self { sources, layer: 0, next: 0, out: Layer::with_capacity(tier, capacity) }
    }

    /// Takes up to `fuel` source entries, the newest entry of a path winning; true once done.
    fn step(&mut self, fuel: &mut usize) -> bool {
        while *fuel > 0 {
            let Some(layer) = self.sources.get(self.layer) else { return true };
            let Some(entry) = layer.entries.get(self.next) else {
                (self.layer, self.next) = (self.layer + 1, 0);
                continue;
            };
            if !self.out.holds(entry) {
                self.out.push(entry.clone());
            }
            self.next += 1;
            *fuel -= 1;
        }
        self.layer == self.sources.len()
    }
}

/// Entries merged, and entries dropped, per changed path in an update: merging outpaces what
/// comes in.
const STEP_PER_CHANGE: usize = 8;
/// Merges this small run at once, and the least work an update does on merges and drops.
const AT_ONCE: usize = 256;

impl<O> TableWriter<O> {
    pub(crate) fn new(hasher: foldhash::fast::RandomState) -> Self {
        Self::with_steps(hasher, AT_ONCE, STEP_PER_CHANGE)
    }

    fn with_steps(hasher: foldhash::fast::RandomState, at_once: usize, step: usize) -> Self {
        Self { table: PathTable::new(hasher), merging: Vec::new(), retired: Vec::new(), at_once, step }
    }

    /// The table as published now.
    pub(crate) fn table(&self) -> &PathTable<O> {
        &self.table
    }

    /// `name`'s hash, as entries carry it.
    pub(crate) fn hash(&self, name: &str) -> u64 {
        self.table.hash(name)
    }

    /// Adds the entries of paths changed since the last call (at most one per path), replacing
    /// their older entries; advances the merges under way, starts new ones (module doc), and
    /// drops part of what merges replaced.
    pub(crate) fn update(&mut self, changed: impl ExactSizeIterator<Item = PathEntry<O>>) {
        let count = changed.len();
        if count > 0 {
            let mut layer = Layer::with_capacity(0, count);
            changed.for_each(|entry| layer.push(Arc::new(entry)));
            self.table.layers.insert(0, Arc::new(layer));
        }
        let budget = count.saturating_mul(self.step).max(self.at_once);
        let mut fuel = budget;
        // Newest runs first: they are small, and finishing them keeps lookups short.
        let mut at = 0;
        while at < self.merging.len() {
            if self.merging[at].step(&mut fuel) {
                let done = self.merging.remove(at);
                self.splice(done);
            } else {
                at += 1;
            }
        }
        while let Some(run) = self.next_merge() {
            let tier = match run.end == self.table.layers.len() {
                true => BASE,
                false => self.table.layers[run.start].tier.saturating_add(1).min(BASE - 1),
            };
            let mut merging = Merging::new(self.table.layers[run].to_vec(), tier);
            let mut fuel = self.at_once;
            if merging.step(&mut fuel) {
                self.splice(merging);
            } else {
                self.merging.insert(0, merging);
                break;
            }
        }
        self.reap(budget);
    }

    /// The layers to merge next, if any, never one already being merged: the newest `RATIO`
    /// adjacent layers of one tier; else a layer at least `1/RATIO` the size of all the layers
    /// below it, with all of them (the newest such); else, with too many layers, all of them.
    fn next_merge(&self) -> Option<Range<usize>> {
        let layers = &self.table.layers;
        let busy = |layer: &Arc<Layer<O>>| {
            self.merging.iter().any(|m| m.sources.iter().any(|source| Arc::ptr_eq(source, layer)))
        };
        let mut start = 0;
        while let Some(first) = layers.get(start) {
            let run = layers[start..].iter().take_while(|l| l.tier == first.tier && !busy(l)).count();
            if first.tier != BASE && run >= RATIO {
                return Some(start..start + RATIO);
            }
            start += run.max(1);
        }
        // Tiers alone would let layers near the size of the whole table pile up (a path in
        // several of them is copied, never deduplicated), so a big layer merges downwards.
        let (mut below, mut down) = (0usize, None);
        for (at, layer) in layers.iter().enumerate().rev() {
            if busy(layer) {
                break;
            }
            if at + 1 < layers.len() && layer.len().saturating_mul(RATIO) >= below {
                down = Some(at);
            }
            below += layer.len();
        }
        if let Some(at) = down {
            return Some(at..layers.len());
        }
        (layers.len() > MAX_LAYERS && self.merging.is_empty()).then_some(0..layers.len())
    }

    /// Replaces a finished merge's sources with its output.
    fn splice(&mut self, done: Merging<O>) {
        let layers = &mut self.table.layers;
        let start = done.sources.first().and_then(|first| layers.iter().position(|l| Arc::ptr_eq(l, first)));
        debug_assert!(start.is_some(), "the sources of a merge stay published until it is done");
        if let Some(start) = start {
            layers.splice(start..start + done.sources.len(), [Arc::new(done.out)]);
            self.retired.extend(done.sources);
        }
    }

    /// Drops up to `budget` entries of replaced layers that no view holds any more, so that
    /// dropping a large layer never stalls one update. Views never drop a replaced layer
    /// themselves: this list keeps a reference until its entries are gone.
    fn reap(&mut self, mut budget: usize) {
        self.retired.retain_mut(|layer| {
            let Some(layer) = Arc::get_mut(layer).filter(|_| budget > 0) else { return true };
            let keep = layer.entries.len().saturating_sub(budget);
            budget -= layer.entries.len() - keep;
            layer.entries.truncate(keep);
            keep > 0
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::tier::SegmentInfo;

    fn names(count: usize) -> Vec<Arc<str>> {
        (0..count).map(|i| Arc::from(format!("/p/{i}"))).collect()
    }

    fn entry(writer: &TableWriter<u64>, name: &Arc<str>, value: Option<u64>) -> PathEntry<u64> {
        let fresh: Fresh<u64> = value
            .map(|value| Segment {
                info: SegmentInfo { level: 0, start: value, end: value },
                output: Arc::new(value),
            })
            .into_iter()
            .collect();
        PathEntry::new(name.clone(), writer.hash(name), None, None, fresh)
    }

    fn read(table: &PathTable<u64>, name: &str) -> Option<u64> {
        table.get(name).map(|e| *e.fresh[0].output)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the updates, and whether merges run at once or a step at a time, the table
        /// reads like a plain map of each path's newest entry, lists each live path once, and
        /// a table published earlier still reads as it did.
        #[test]
        fn reads_like_a_map(
            turns in prop::collection::vec(
                prop::collection::vec((0..300usize, prop::option::weighted(0.9, 0..1000u64)), 0..120),
                1..80,
            ),
            steps in prop_oneof![Just((AT_ONCE, STEP_PER_CHANGE)), (1..16usize, 1..4usize)],
        ) {
            let names = names(300);
            let mut writer = TableWriter::with_steps(foldhash::fast::RandomState::default(), steps.0, steps.1);
            let mut model: HashMap<usize, u64> = HashMap::new();
            let mut published = Vec::new();
            for turn in turns {
                let changed: HashMap<usize, Option<u64>> = turn.into_iter().collect();
                let entries: Vec<_> = changed.iter().map(|(&p, &value)| entry(&writer, &names[p], value)).collect();
                writer.update(entries.into_iter());
                for (path, value) in changed {
                    match value {
                        Some(value) => model.insert(path, value),
                        None => model.remove(&path),
                    };
                }
                let table = writer.table();
                if steps.0 >= 300 {
                    // Every merge ran at once.
                    prop_assert!(table.layers.len() <= MAX_LAYERS && writer.merging.is_empty());
                }
                for (path, name) in names.iter().enumerate() {
                    prop_assert_eq!(read(table, name), model.get(&path).copied(), "path {}", path);
                }
                let mut listed: Vec<&str> = table.iter().map(|e| &*e.name).collect();
                listed.sort_unstable();
                let mut expected: Vec<&str> = model.keys().map(|&path| &*names[path]).collect();
                expected.sort_unstable();
                prop_assert_eq!(listed, expected);
                published.push((table.clone(), model.clone()));
            }
            for (old, model) in &published {
                for (path, name) in names.iter().enumerate() {
                    prop_assert_eq!(read(old, name), model.get(&path).copied());
                }
            }
        }
    }

    /// Small turns over a large base: a base-sized merge runs a step per update while the
    /// lookups stay short, it finishes, and the layers it replaced are dropped.
    #[test]
    fn large_merges_run_in_steps() {
        let names = names(20_000);
        let mut writer = TableWriter::new(foldhash::fast::RandomState::default());
        writer.update(names.iter().map(|name| entry(&writer, name, Some(0))).collect::<Vec<_>>().into_iter());
        let (mut in_steps, mut deepest, mut most) = (0, 0, 0);
        for turn in 1..=20_000u64 {
            let changed: Vec<_> = (0..4)
                .map(|k| entry(&writer, &names[((turn * 4 + k) * 7919) as usize % 20_000], Some(turn)))
                .collect();
            writer.update(changed.into_iter());
            in_steps += usize::from(!writer.merging.is_empty());
            deepest = deepest.max(writer.table().layers.len());
            most = most.max(writer.table().layers.iter().map(|l| l.len()).sum::<usize>());
        }
        assert!(in_steps > 0, "no merge ran in steps");
        // With no view holding them, what merges replaced is dropped a step at a time.
        for _ in 0..1_000 {
            writer.update(std::iter::empty());
        }
        assert!(writer.merging.is_empty() && writer.retired.is_empty(), "{} retired", writer.retired.len());
        assert!(deepest <= 2 * MAX_LAYERS, "{deepest} layers");
        // Old versions of a path do not pile up in layers near the size of the whole table.
        assert!(most <= 3 * names.len(), "{most} entries for {} paths", names.len());
        assert_eq!(writer.table().iter().count(), 20_000);
        assert_eq!(read(writer.table(), &names[(20_000 * 4 * 7919) % 20_000]), Some(20_000));
    }
}
