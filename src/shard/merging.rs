//! A merge or a combine in progress, as a value: made with [`Merging::new`], advanced with
//! [`Merging::work`] until it returns true, then installed by the spine (`done`: its output
//! is finished with `out.finish()`). Work is paid in fuel counted in input segments, so a big
//! merge never holds back a publish: it is put down when the fuel runs out and picked up on a
//! later turn, its inputs staying in the spine (and published) meanwhile.

use smallvec::SmallVec;

use crate::merge::{Merge, Part};
use crate::shard::batch::{Batch, BatchBuilder};
use crate::sync::Arc;

/// A merge or a combine in progress: inputs adjacent in the spine, output built path by path.
pub(crate) struct Merging<M: Merge> {
    pub(crate) inputs: Vec<Arc<Batch<M>>>,
    /// Combine (copy every segment) rather than merge (one segment per path).
    pub(crate) combine: bool,
    /// Per input, the next path index to consume.
    cursors: Vec<usize>,
    pub(crate) out: BatchBuilder<M>,
}

impl<M: Merge> Merging<M> {
    pub(crate) fn new(inputs: Vec<Arc<Batch<M>>>, combine: bool, out: BatchBuilder<M>) -> Self {
        let cursors = vec![0; inputs.len()];
        Self { inputs, combine, cursors, out }
    }

    pub(crate) fn start(&self) -> u64 {
        self.inputs[0].start
    }

    pub(crate) fn end(&self) -> u64 {
        self.inputs[self.inputs.len() - 1].end
    }

    /// Merges (or combines) paths until done (true) or the fuel, counted in input segments, is
    /// spent.
    pub(crate) fn work(&mut self, merge: &M, fuel: &mut usize) -> bool {
        let Merging { inputs, combine, cursors, out } = self;
        // Each input's next path id, `u64::MAX` once it is consumed: the smallest is the next
        // path out.
        let next =
            |batch: &Batch<M>, cursor: usize| batch.ids().get(cursor).map_or(u64::MAX, |&id| id.into());
        let mut heads: SmallVec<[u64; 8]> =
            inputs.iter().zip(cursors.iter()).map(|(b, &c)| next(b, c)).collect();
        if *combine {
            while *fuel > 0 {
                let Ok(id) = u32::try_from(heads.iter().copied().min().unwrap_or(u64::MAX)) else {
                    return true;
                };
                for ((batch, cursor), head) in inputs.iter().zip(cursors.iter_mut()).zip(heads.iter_mut()) {
                    if *head == u64::from(id) {
                        let (_, segments) = batch.path(*cursor);
                        *fuel = fuel.saturating_sub(segments.len());
                        out.copy(id, batch, segments);
                        *cursor += 1;
                        *head = next(batch, *cursor);
                    }
                }
            }
            return false;
        }
        // A merge's inputs are single blocks of one level, so path `i` of an input is its
        // segment `i`. Which inputs hold the next path is random, so every input is visited
        // without a branch on it: its part is written anyway and kept only if it matches.
        debug_assert!(inputs.iter().all(|b| b.segments() == b.paths()), "a merge's inputs are single blocks");
        let mut parts: SmallVec<[Part<'_, M::Column>; 8]> = inputs.iter().map(|b| b.part(0)).collect();
        while *fuel > 0 {
            let Ok(id) = u32::try_from(heads.iter().copied().min().unwrap_or(u64::MAX)) else { return true };
            let mut taken = 0;
            for ((batch, cursor), head) in inputs.iter().zip(cursors.iter_mut()).zip(heads.iter_mut()) {
                let hit = *head == u64::from(id);
                parts[taken] = batch.part(*cursor);
                taken += usize::from(hit);
                *cursor += usize::from(hit);
                *head = next(batch, *cursor);
            }
            *fuel = fuel.saturating_sub(taken);
            out.push(merge, id, out.end(), &parts[..taken], std::iter::empty());
        }
        false
    }
}
