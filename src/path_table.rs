//! A shard's published paths: a base table of every path, and while readers hold old tables,
//! immutable layers of newer entries above it.
//!
//! Every publish must hand readers a table of the shard's paths that later turns never change,
//! yet a turn changes only some paths. The writer keeps two full tables: the published base,
//! and a spare, the base before it. A publish brings the spare up to date in place (the entries
//! it lacks: those of the last publish, and this one's) and publishes it as the new base; the
//! old base becomes the spare. A changed path thus costs two hash-table writes and one entry,
//! whatever the number of paths, and a lookup probes one table. Mutating the spare is safe
//! because the writer does it only through `Arc::get_mut`: only when no view, and so no reader,
//! holds it any more.
//!
//! While a reader still holds the spare (it keeps a snapshot from two publishes ago), a publish
//! instead adds a layer holding only the paths it changed, above the base; the spare's lag
//! grows by the same entries. The layers merge the way a path's segments do: [`RATIO`] adjacent
//! layers of one tier merge into one layer of the next, and a layer at least `1/RATIO` the size
//! of all the layers below it merges with them (so that a path's old versions never pile up in
//! layers near the size of the whole table); more than [`MAX_LAYERS`] layers merge into one.
//! Once the reader lets go, the spare catches up a step per update and everything folds into it.
//! If it lags behind by more than it would cost to copy the base, the spare is dropped and the
//! layers merge into the base too; the base that merge replaces becomes the spare.
//!
//! A merge, a catch-up or a drop of more than [`AT_ONCE`] entries would stall a publish (a base
//! of a million paths takes tens of milliseconds), so each advances a step per update,
//! [`STEP_PER_CHANGE`] entries per changed path, while a merge's source layers stay published.
//! Layers no longer published are dropped the same way, a step per update, once no view holds
//! them: dropping a large layer at once stalled a publish for a millisecond, long enough for the
//! scheduler to take the core away on a small machine.
//!
//! Entries carry their name's hash, so merging layers rehashes nothing. A path whose segments
//! were all dropped is published as an empty entry (a tombstone); like the worker's own state
//! for the path, it stays.

use std::collections::VecDeque;
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
    /// The path's number in its shard (the worker's dense index): where a base keeps it.
    slot: u32,
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
        slot: u32,
        history: Option<History<O>>,
        settled: Option<Arc<[Segment<O>]>>,
        fresh: Fresh<O>,
    ) -> Self {
        Self { name, hash, slot, history, settled, fresh }
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

/// A set of path entries, one per path, keyed by name, with a hash index into a plain list.
/// Layers above the base list their entries in the order they were added (so a merge can walk
/// them a step at a time); a base (tier [`BASE`]) keeps each entry at its slot, so the writer
/// replaces a path's entry without a lookup, and leaves the slots of absent paths empty.
struct Layer<O> {
    tier: u8,
    entries: Vec<Option<Arc<PathEntry<O>>>>,
    index: HashTable<u32>,
}

impl<O> Layer<O> {
    fn with_capacity(tier: u8, capacity: usize) -> Self {
        Self { tier, entries: Vec::with_capacity(capacity), index: HashTable::with_capacity(capacity) }
    }

    /// Entries held, or for a base, slots (a base has few empty ones).
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn at(&self, at: u32) -> Option<&Arc<PathEntry<O>>> {
        self.entries.get(at as usize).and_then(Option::as_ref)
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<PathEntry<O>>> {
        self.entries.iter().flatten()
    }

    fn find(&self, hash: u64, eq: impl Fn(&PathEntry<O>) -> bool) -> Option<&Arc<PathEntry<O>>> {
        self.index.find(hash, |&at| self.at(at).is_some_and(|e| eq(e))).and_then(|&at| self.at(at))
    }

    fn holds(&self, entry: &PathEntry<O>) -> bool {
        match self.tier {
            BASE => self.at(entry.slot).is_some(),
            _ => self.find(entry.hash, |e| e.is(entry)).is_some(),
        }
    }

    /// Adds `entry`, whose path this layer does not hold yet.
    fn push(&mut self, entry: Arc<PathEntry<O>>) {
        if self.tier == BASE {
            return self.put(entry);
        }
        let (hash, at) = (entry.hash, self.entries.len() as u32);
        self.entries.push(Some(entry));
        self.index_at(hash, at);
    }

    /// Adds `entry` to a base at its slot, replacing its path's entry if the base holds one.
    fn put(&mut self, entry: Arc<PathEntry<O>>) {
        debug_assert_eq!(self.tier, BASE, "only a base keeps entries at their slots");
        let (hash, slot) = (entry.hash, entry.slot as usize);
        if self.entries.len() <= slot {
            self.entries.resize_with(slot + 1, || None);
        }
        match &mut self.entries[slot] {
            Some(old) => {
                debug_assert!(old.is(&entry), "one slot, one path");
                *old = entry;
            }
            empty => {
                *empty = Some(entry);
                self.index_at(hash, slot as u32);
            }
        }
    }

    fn index_at(&mut self, hash: u64, at: u32) {
        let entries = &self.entries;
        let hash_of = |&at: &u32| entries[at as usize].as_ref().map_or(0, |e| e.hash);
        self.index.insert_unique(hash, at, hash_of);
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
                .iter()
                .map(|entry| &**entry)
                .filter(move |entry| !entry.is_empty() && !newer.iter().any(|n| n.holds(entry)))
        })
    }
}

/// A shard worker's side of its table: the published layers, the spare base, the merges under
/// way, and the layers folds and merges replaced.
pub(crate) struct TableWriter<O> {
    /// Never empty: the last layer is the base.
    table: PathTable<O>,
    /// The base before the current one, while it is kept.
    spare: Option<Spare<O>>,
    /// The entries published since the base held the whole table, in order: what the base will
    /// lack once it is the spare. `None` once that is more than folding it would be worth.
    since_base: Option<Vec<Arc<PathEntry<O>>>>,
    /// Disjoint runs of layers being merged, newest run first.
    merging: Vec<Merging<O>>,
    /// Layers no longer published, dropped a step at a time once no view holds them.
    retired: Vec<Arc<Layer<O>>>,
    /// Merges of at most this many entries run at once; also the least work per update.
    at_once: usize,
    /// Entries merged (and dropped) per changed path per update.
    step: usize,
}

/// A former base and what it lacks: applied in order, `lag` makes `layer` the whole table.
struct Spare<O> {
    layer: Arc<Layer<O>>,
    lag: VecDeque<Arc<PathEntry<O>>>,
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
            let Some(slot) = layer.entries.get(self.next) else {
                (self.layer, self.next) = (self.layer + 1, 0);
                continue;
            };
            if let Some(entry) = slot.as_ref().filter(|entry| !self.out.holds(entry)) {
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
        let empty = || Arc::new(Layer::with_capacity(BASE, 0));
        let mut table = PathTable::new(hasher);
        table.layers.push(empty());
        Self {
            table,
            spare: Some(Spare { layer: empty(), lag: VecDeque::new() }),
            since_base: Some(Vec::new()),
            merging: Vec::new(),
            retired: Vec::new(),
            at_once,
            step,
        }
    }

    /// The table as published now.
    pub(crate) fn table(&self) -> &PathTable<O> {
        &self.table
    }

    /// `name`'s hash, as entries carry it.
    pub(crate) fn hash(&self, name: &str) -> u64 {
        self.table.hash(name)
    }

    fn base(&self) -> &Arc<Layer<O>> {
        self.table.layers.last().expect("the table always has a base")
    }

    /// More lag than this makes a spare not worth keeping: folding it would cost more than
    /// copying the base.
    fn most_lag(&self) -> usize {
        2 * self.base().len().max(self.at_once)
    }

    /// Adds the entries of paths changed since the last call (at most one per path), replacing
    /// their older entries (module doc): folded into the spare base if no view holds it any more
    /// and it has caught up, else published as a new layer above the base, with merges
    /// advanced and started. Then drops part of what was replaced.
    pub(crate) fn update(&mut self, changed: impl ExactSizeIterator<Item = PathEntry<O>>) {
        let count = changed.len();
        let budget = count.saturating_mul(self.step).max(self.at_once);
        let changed: Vec<_> = changed.map(Arc::new).collect();
        let mut fuel = budget;
        let caught_up = self.catch_up(&mut fuel);
        if caught_up && (count > 0 || self.table.layers.len() > 1) {
            self.fold(changed);
        } else if count > 0 || !self.merging.is_empty() || self.table.layers.len() > 1 {
            self.add_layer(changed);
            self.merge(fuel);
        }
        self.reap(budget);
    }

    /// Applies up to `fuel` entries of the spare's lag, if no view holds the spare any more;
    /// true if it has none left.
    fn catch_up(&mut self, fuel: &mut usize) -> bool {
        let Some(spare) = &mut self.spare else { return false };
        // Unpublished and no view holds it: no reader can reach it until it is published again.
        let Some(layer) = Arc::get_mut(&mut spare.layer) else { return false };
        while *fuel > 0 {
            let Some(entry) = spare.lag.pop_front() else { break };
            layer.put(entry);
            *fuel -= 1;
        }
        spare.lag.is_empty()
    }

    /// Publishes the spare, caught up and with `changed` applied, as the whole table; the base
    /// becomes the spare.
    fn fold(&mut self, changed: Vec<Arc<PathEntry<O>>>) {
        // Neither `else` is reached (`catch_up` has just found the spare unheld); they lose
        // nothing regardless.
        let Some(mut spare) = self.spare.take() else { return self.add_layer(changed) };
        let Some(layer) = Arc::get_mut(&mut spare.layer) else {
            self.spare = Some(spare);
            return self.add_layer(changed);
        };
        for entry in &changed {
            layer.put(entry.clone());
        }
        let mut layers = std::mem::replace(&mut self.table.layers, vec![spare.layer]);
        let base = layers.pop().expect("the table always has a base");
        // The layers above the old base, and the merges among them, are in the spare now.
        self.retired.extend(layers);
        self.retired.extend(self.merging.drain(..).map(|merging| Arc::new(merging.out)));
        match self.since_base.replace(Vec::new()) {
            Some(mut lag) => {
                lag.extend(changed);
                self.spare = Some(Spare { layer: base, lag: lag.into() });
            }
            None => self.retired.push(base),
        }
    }

    /// Publishes `changed` as a new layer above the others, and notes it in what the spare and
    /// the base lack.
    fn add_layer(&mut self, changed: Vec<Arc<PathEntry<O>>>) {
        if changed.is_empty() {
            return;
        }
        let most = self.most_lag();
        let mut layer = Layer::with_capacity(0, changed.len());
        for entry in &changed {
            layer.push(entry.clone());
        }
        self.table.layers.insert(0, Arc::new(layer));
        if let Some(log) = &mut self.since_base {
            log.extend(changed.iter().cloned());
            if log.len() > most {
                self.since_base = None;
            }
        }
        if let Some(spare) = &mut self.spare {
            spare.lag.extend(changed);
            if spare.lag.len() > most {
                let spare = self.spare.take().map(|spare| spare.layer);
                self.retired.extend(spare);
            }
        }
    }

    /// Advances the merges under way and starts new ones, with `fuel` entries of work at least.
    fn merge(&mut self, mut fuel: usize) {
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
                false => self.table.layers[run.clone()]
                    .iter()
                    .map(|l| l.tier)
                    .max()
                    .unwrap_or(0)
                    .saturating_add(1)
                    .min(BASE - 1),
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
    }

    /// The layers to merge next, if any, never one already being merged: the newest `RATIO`
    /// adjacent layers of one tier; else a layer at least `1/RATIO` the size of all the layers
    /// below it, with all of them (the newest such); else, with too many layers, all of them.
    /// While there is a spare, the base stays as it is: only the layers above it merge.
    fn next_merge(&self) -> Option<Range<usize>> {
        let layers = match self.spare {
            Some(_) => &self.table.layers[..self.table.layers.len() - 1],
            None => &self.table.layers[..],
        };
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

    /// Replaces a finished merge's sources with its output. A merge into the base leaves the
    /// base it replaced as the spare, lacking the other sources and the layers above them.
    fn splice(&mut self, done: Merging<O>) {
        let layers = &mut self.table.layers;
        let start = done.sources.first().and_then(|first| layers.iter().position(|l| Arc::ptr_eq(l, first)));
        debug_assert!(start.is_some(), "the sources of a merge stay published until it is done");
        let Some(start) = start else { return };
        let Merging { mut sources, out, .. } = done;
        layers.splice(start..start + sources.len(), [Arc::new(out)]);
        if start + 1 == layers.len() {
            // A new base. Applied oldest first, the entries of the layers above it make the whole
            // table: a path's newest entry is in the newest layer that holds it.
            let above = |layers: &[Arc<Layer<O>>]| -> Vec<Arc<PathEntry<O>>> {
                layers.iter().rev().flat_map(|layer| layer.iter().cloned()).collect()
            };
            let since = above(&layers[..start]);
            let most = self.most_lag();
            if self.spare.is_none() {
                let base = sources.pop().expect("a merge has sources");
                let mut lag: VecDeque<_> = above(&sources).into();
                lag.extend(since.iter().cloned());
                match lag.len() <= most {
                    true => self.spare = Some(Spare { layer: base, lag }),
                    false => self.retired.push(base),
                }
            }
            self.since_base = (since.len() <= most).then_some(since);
        }
        self.retired.extend(sources);
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

    /// Path `slot` of `names` holding one segment of `value`, or a tombstone.
    fn entry(
        writer: &TableWriter<u64>,
        names: &[Arc<str>],
        slot: usize,
        value: Option<u64>,
    ) -> PathEntry<u64> {
        let name = &names[slot];
        let fresh: Fresh<u64> = value
            .map(|value| Segment {
                info: SegmentInfo { level: 0, start: value, end: value },
                output: Arc::new(value),
            })
            .into_iter()
            .collect();
        PathEntry::new(name.clone(), writer.hash(name), slot as u32, None, None, fresh)
    }

    fn read(table: &PathTable<u64>, name: &str) -> Option<u64> {
        table.get(name).map(|e| *e.fresh[0].output)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the updates, whether merges run at once or a step at a time, and whichever
        /// published tables readers keep (none: every update folds into the spare; all: the
        /// spare never frees, merges do the work; some), the table reads like a plain map of
        /// each path's newest entry, lists each live path once, and a table kept from earlier
        /// still reads as it did.
        #[test]
        fn reads_like_a_map(
            turns in prop::collection::vec(
                prop::collection::vec((0..300usize, prop::option::weighted(0.9, 0..1000u64)), 0..120),
                1..80,
            ),
            steps in prop_oneof![Just((AT_ONCE, STEP_PER_CHANGE)), (1..16usize, 1..4usize)],
            keep_every in prop_oneof![Just(Some(1usize)), Just(Some(3)), Just(None)],
        ) {
            let names = names(300);
            let mut writer = TableWriter::with_steps(foldhash::fast::RandomState::default(), steps.0, steps.1);
            let mut model: HashMap<usize, u64> = HashMap::new();
            let mut published = Vec::new();
            for (at, turn) in turns.into_iter().enumerate() {
                let changed: HashMap<usize, Option<u64>> = turn.into_iter().collect();
                let entries: Vec<_> = changed.iter().map(|(&p, &value)| entry(&writer, &names, p, value)).collect();
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
                    prop_assert!(table.layers.len() <= MAX_LAYERS + 1 && writer.merging.is_empty());
                }
                for (path, name) in names.iter().enumerate() {
                    prop_assert_eq!(read(table, name), model.get(&path).copied(), "path {}", path);
                }
                let mut listed: Vec<&str> = table.iter().map(|e| &*e.name).collect();
                listed.sort_unstable();
                let mut expected: Vec<&str> = model.keys().map(|&path| &*names[path]).collect();
                expected.sort_unstable();
                prop_assert_eq!(listed, expected);
                if keep_every.is_some_and(|every| at % every == 0) {
                    published.push((table.clone(), model.clone()));
                }
            }
            for (old, model) in &published {
                for (path, name) in names.iter().enumerate() {
                    prop_assert_eq!(read(old, name), model.get(&path).copied());
                }
            }
        }
    }

    /// With no view holding an old table, every update folds into the spare: the table stays
    /// one layer, nothing merges and nothing waits to be dropped.
    #[test]
    fn unheld_updates_fold_into_one_layer() {
        let names = names(1_000);
        let mut writer = TableWriter::new(foldhash::fast::RandomState::default());
        for turn in 0..500u64 {
            let changed: Vec<_> = (0..7)
                .map(|k| entry(&writer, &names, ((turn * 7 + k) * 31) as usize % 1_000, Some(turn)))
                .collect();
            writer.update(changed.into_iter());
            let table = writer.table().clone();
            assert_eq!(table.layers.len(), 1, "turn {turn}");
            assert!(writer.merging.is_empty() && writer.retired.is_empty(), "turn {turn}");
            assert_eq!(read(&table, &names[((turn * 7) * 31) as usize % 1_000]), Some(turn));
        }
    }

    /// Small turns over a large base while a reader keeps an old table: the spare cannot be
    /// folded, so layers pile up above the base and base-sized merges run a step per update
    /// while lookups stay short. Once the reader lets go, the spare catches up a step at a time
    /// and everything folds back into one layer, and what was replaced is dropped.
    #[test]
    fn large_merges_run_in_steps() {
        let names = names(20_000);
        let mut writer = TableWriter::new(foldhash::fast::RandomState::default());
        writer.update(
            (0..names.len()).map(|p| entry(&writer, &names, p, Some(0))).collect::<Vec<_>>().into_iter(),
        );
        let (mut held, mut at_ten) = (None, vec![0; names.len()]);
        let (mut in_steps, mut deepest, mut most) = (0, 0, 0);
        for turn in 1..=20_000u64 {
            let paths: Vec<usize> = (0..4).map(|k| ((turn * 4 + k) * 7919) as usize % 20_000).collect();
            writer.update(
                paths.iter().map(|&p| entry(&writer, &names, p, Some(turn))).collect::<Vec<_>>().into_iter(),
            );
            if turn <= 10 {
                paths.iter().for_each(|&p| at_ten[p] = turn);
            }
            if turn == 10 {
                held = Some(writer.table().clone());
            }
            in_steps += usize::from(!writer.merging.is_empty());
            deepest = deepest.max(writer.table().layers.len());
            most = most.max(writer.table().layers.iter().map(|l| l.len()).sum::<usize>());
        }
        assert!(in_steps > 0, "no merge ran in steps");
        let held = held.expect("kept at turn 10");
        for (path, name) in names.iter().enumerate() {
            assert_eq!(read(&held, name), Some(at_ten[path]), "{name} as of turn 10");
        }
        drop(held);
        for _ in 0..1_000 {
            writer.update(std::iter::empty());
        }
        assert_eq!(writer.table().layers.len(), 1, "not folded back into one layer");
        assert!(writer.merging.is_empty() && writer.retired.is_empty(), "{} retired", writer.retired.len());
        assert!(deepest <= 2 * MAX_LAYERS, "{deepest} layers");
        // Old versions of a path do not pile up in layers near the size of the whole table.
        assert!(most <= 3 * names.len(), "{most} entries for {} paths", names.len());
        assert_eq!(writer.table().iter().count(), 20_000);
        assert_eq!(read(writer.table(), &names[(20_000 * 4 * 7919) % 20_000]), Some(20_000));
    }
}
