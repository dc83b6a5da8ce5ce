//! The sequencer: the one feeding handle of a sequenced pipeline, whose commit numbers are given
//! (by a replicated log's sequence, say) instead of taken from the clock's counter.
//!
//! A sequenced pipeline is a pipeline like any other downstream of its queues: the same shards,
//! batches, snapshots, sink and durable directory. Only where numbers come from differs. The
//! sequencer is the clock's only taker (`crate::ingest::clock`, "Given numbers"): it commits at
//! a number strictly above the last one issued, and every number it skips is a commit with
//! nothing in it, which the frontier passes as soon as a later number is issued. Two instances
//! fed the same numbered commits (or each a subset of every commit's parts) cut the same aligned
//! ranges, because ranges are arithmetic on commit numbers.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use rtrb::PushError;

use crate::durable::frontier::DurableState;
use crate::error::Error;
use crate::ingest::clock::{Given, MAX_GIVEN};
use crate::ingest::key::{AsPath, PathKey, PathRef};
use crate::ingest::queue::{QueuedPart, Sender};
use crate::ingest::room::push_waiting;
use crate::merge::Merge;
use crate::shared::Shared;
use crate::sync::Arc;

/// Feeds a sequenced pipeline ([`Builder::sequenced`](crate::Builder::sequenced)) commits at
/// given numbers. There is one per pipeline ([`Pipeline::sequencer`](crate::Pipeline::sequencer));
/// it is `Send` but not `Sync`.
///
/// Numbers strictly increase. A number skipped is a commit with nothing for this pipeline: the
/// frontier passes it once a later number is committed, or once
/// [`advance_to`](Sequencer::advance_to) names it. A durable sequenced pipeline reopens at its
/// recovered frontier, and its sequencer goes on after it ([`last`](Sequencer::last)).
///
/// ```
/// use lockstep::{merge::Sum, Error, Pipeline};
///
/// let pipeline = Pipeline::builder(Sum).sequenced().build()?;
/// let mut sequencer = pipeline.sequencer()?;
/// sequencer.commit_at(3, [("/a", 1), ("/b", 2)])?;
/// sequencer.commit_at(7, [("/a", 4)])?;
/// assert_eq!(sequencer.commit_at(7, [("/a", 1)]), Err(Error::NotAhead { number: 7, last: 7 }));
/// sequencer.advance_to(10)?; // 8 to 10 hold nothing for this pipeline
/// let snapshot = pipeline.wait_sealed(10, std::time::Duration::from_secs(10))?;
/// assert_eq!((snapshot.read("/a"), snapshot.read("/b")), (Some(5), Some(2)));
/// assert_eq!(pipeline.producer().err(), Some(Error::Sequenced));
/// drop(sequencer);
/// assert_eq!(pipeline.shutdown()?.frontier(), 10);
/// # Ok::<(), Error>(())
/// ```
///
/// ```compile_fail
/// fn shared<T: Sync>(_: &T) {}
/// let pipeline = lockstep::Pipeline::builder(lockstep::merge::Sum).sequenced().build().unwrap();
/// let sequencer = pipeline.sequencer().unwrap();
/// shared(&sequencer); // a Sequencer is not Sync
/// ```
pub struct Sequencer<M: Merge> {
    shared: Arc<Shared<M>>,
    slot: usize,
    /// The slot's queues, one per shard: only this handle pushes to them.
    senders: Box<[Sender<M::Record>]>,
    /// Path name to its shard and id there, for commits by name (seeded per map, as the
    /// producer's is, so crafted paths cannot pick the buckets).
    ids: HashMap<Box<str>, (u32, u32), foldhash::fast::RandomState>,
    /// The commit being assembled: shard, path id and record.
    staged: Vec<(u32, u32, M::Record)>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<M: Merge> fmt::Debug for Sequencer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequencer").field("last", &self.last()).field("paths", &self.ids.len()).finish()
    }
}

impl<M: Merge> Sequencer<M> {
    /// The pipeline's sequencer; the pipeline hands out one (`Pipeline::sequencer`).
    pub(crate) fn new(shared: Arc<Shared<M>>) -> Result<Self, Error> {
        if shared.clock.is_closed() {
            return Err(Error::Shutdown);
        }
        if shared.lifecycle.has_failed() {
            return Err(Error::WorkerPanicked);
        }
        let max = shared.config.max_producers;
        let slot = shared.clock.claim().ok_or(Error::TooManyProducers { max })?;
        let senders = shared.lanes.take_senders(slot);
        Ok(Self {
            shared,
            slot,
            senders,
            ids: HashMap::default(),
            staged: Vec::new(),
            _not_sync: PhantomData,
        })
    }

    /// The last number issued: the last committed at or advanced to, or, before either, the
    /// frontier the pipeline started at (0, or a durable pipeline's recovered frontier). The
    /// next commit must be above it.
    pub fn last(&self) -> u64 {
        self.shared.clock.issued()
    }

    /// Commits every part as the commit `number`, which must be above [`last`](Self::last);
    /// the numbers between are commits with nothing for this pipeline. With no parts it is one
    /// of them: the frontier may pass `number` at once.
    ///
    /// A path may appear more than once; its records keep their order. While it waits for room
    /// in a full queue it holds the frontier below `number`. On error nothing is enqueued and
    /// the number is not issued (except [`Error::WorkerPanicked`] from a wait for room, as for
    /// [`Producer::commit`](crate::Producer::commit)).
    ///
    /// # Errors
    ///
    /// - a bad part: [`Error::EmptyPath`], [`Error::PathTooLong`], [`Error::RecordTooLarge`],
    ///   [`Error::ForeignKey`];
    /// - [`Error::NotAhead`] for a number at or below [`last`](Self::last);
    ///   [`Error::NumberTooLarge`] past 2^63 - 2;
    /// - [`Error::Shutdown`], [`Error::WorkerPanicked`], and a durable pipeline's
    ///   [`Error::Io`], as for [`Producer::commit`](crate::Producer::commit).
    pub fn commit_at<P: AsPath>(
        &mut self,
        number: u64,
        parts: impl IntoIterator<Item = (P, M::Record)>,
    ) -> Result<(), Error> {
        let result = self.stage(parts).and_then(|()| self.enqueue(number));
        self.staged.clear();
        result
    }

    /// Issues every number up to `number` as a commit with nothing for this pipeline, so the
    /// frontier may pass them. A number at or below [`last`](Self::last) changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::NumberTooLarge`] past 2^63 - 2; [`Error::Shutdown`] once the pipeline is
    /// shutting down; [`Error::WorkerPanicked`]; a durable pipeline's [`Error::Io`].
    pub fn advance_to(&mut self, number: u64) -> Result<(), Error> {
        self.check(number)?;
        self.shared.clock.advance_to(number).map_err(|_| Error::Shutdown)?;
        // Parked workers wake to the new frontier.
        self.shared.bells.ring_sleepers();
        Ok(())
    }

    /// Resolves `path` once, as [`Pipeline::key`](crate::Pipeline::key) does.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyPath`] for `""`; [`Error::PathTooLong`] past
    /// [`Builder::max_path_len`](crate::Builder::max_path_len) bytes.
    pub fn key(&self, path: &str) -> Result<PathKey, Error> {
        self.shared.router.key(path)
    }

    /// What refuses any number before the clock is touched.
    fn check(&self, number: u64) -> Result<(), Error> {
        if number > MAX_GIVEN {
            return Err(Error::NumberTooLarge { number, max: MAX_GIVEN });
        }
        let shared = &*self.shared;
        // Nothing becomes visible after a worker failed, nor durable after a log failure:
        // refused before a number is issued (as `Producer::take_numbers` argues).
        if shared.lifecycle.has_failed() {
            return Err(Error::WorkerPanicked);
        }
        if let Some(error) = shared.durable.as_ref().and_then(DurableState::error) {
            return Err(error);
        }
        Ok(())
    }

    /// Validates every part and resolves its route; touches nothing shared.
    fn stage<P: AsPath>(&mut self, parts: impl IntoIterator<Item = (P, M::Record)>) -> Result<(), Error> {
        self.staged.clear();
        for (path, record) in parts {
            let (shard, id) = self.resolve(path.as_path(), &record)?;
            self.staged.push((shard, id, record));
        }
        Ok(())
    }

    /// Validates one part and resolves its path: a key directly, a name through this handle's
    /// map (the first time, through the shard's directory).
    fn resolve(&mut self, path: PathRef<'_>, record: &M::Record) -> Result<(u32, u32), Error> {
        let shared = &*self.shared;
        if let (Some(max), Some(bytes)) = (shared.config.max_record_bytes, shared.merge.record_bytes(record))
        {
            if bytes > max {
                return Err(Error::RecordTooLarge { bytes, max });
            }
        }
        match path {
            PathRef::Key(key) => shared.router.resolve(key),
            PathRef::Name(name) => match self.ids.get(name) {
                Some(&route) => Ok(route),
                None => {
                    let key = shared.router.key(name)?;
                    self.ids.insert(name.into(), (key.shard, key.id));
                    Ok((key.shard, key.id))
                }
            },
        }
    }

    /// Issues `number` and enqueues the staged parts under it, then retires it.
    fn enqueue(&mut self, number: u64) -> Result<(), Error> {
        if self.staged.is_empty() {
            let last = self.last();
            if number <= last {
                return Err(Error::NotAhead { number, last });
            }
            return self.advance_to(number);
        }
        self.check(number)?;
        let shared = &*self.shared;
        match shared.clock.begin_at(self.slot, number) {
            Ok(()) => {}
            Err(Given::Behind { last }) => return Err(Error::NotAhead { number, last }),
            Err(Given::Closed) => return Err(Error::Shutdown),
        }
        shared.stats.stamp(number);
        let mut failed = false;
        for (shard, path, record) in self.staged.drain(..) {
            let queue = &mut self.senders[shard as usize];
            if let Err(PushError::Full(part)) = queue.push(QueuedPart { commit: number, path, record }) {
                if !push_waiting(shared, self.slot, queue, shard as usize, part) {
                    failed = true;
                    break;
                }
            }
        }
        shared.clock.retire(self.slot);
        shared.bells.ring_sleepers();
        if failed {
            return Err(Error::WorkerPanicked);
        }
        Ok(())
    }
}

impl<M: Merge> Drop for Sequencer<M> {
    fn drop(&mut self) {
        let senders = std::mem::take(&mut self.senders);
        self.shared.lanes.put_back(self.slot, senders);
        self.shared.clock.release(self.slot);
    }
}
