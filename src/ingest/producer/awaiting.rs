//! [`Producer::commit_async`]'s future: awaits room for every part of the commit, then takes
//! its number and enqueues it in one go.
//!
//! **Cancel safety.** A commit number taken with only some parts enqueued would hold the sealed
//! frontier back forever (every later commit waits for it). So nothing is taken while the
//! future can still be dropped: it waits until each shard's queue has room for all of the
//! commit's parts for that shard, and since this producer is the only writer of its queues,
//! the room it saw is still there when it takes the number and pushes, synchronously, within
//! the same poll. A commit with more parts for a shard than its queue holds is refused when it
//! is made ([`Error::CommitTooLarge`]): room for all of it never comes.
//!
//! **Waking.** A future that finds a queue short of room registers its task's waker in its
//! producer slot's place in [`Waiters`](crate::ingest::bell::Waiters), the same place a parked
//! `commit` takes, and the worker that drains the queue wakes it (`crate::ingest::bell`,
//! "Tasks"). A worker failure and shutdown wake every waiting producer. A dropped future clears
//! its place; the place is this producer's alone, so no other waiter's wake-up goes with it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::{Producer, Wait};
use crate::error::Error;
use crate::merge::Merge;

/// The future [`Producer::commit_async`] returns (module doc).
pub(super) struct CommitAsync<'a, M: Merge> {
    producer: &'a mut Producer<M>,
    /// What validating the parts refused, given on the first poll.
    refused: Option<Error>,
    /// The parts are counted per shard in the producer's `need`.
    tallied: bool,
    /// When the call started, if it is one of the timed ones.
    started: Option<Instant>,
    /// The waker is registered in the producer slot's place.
    waiting: bool,
}

impl<'a, M: Merge> CommitAsync<'a, M> {
    pub(super) fn new(
        producer: &'a mut Producer<M>,
        refused: Option<Error>,
        tallied: bool,
        started: Option<Instant>,
    ) -> Self {
        Self { producer, refused, tallied, started, waiting: false }
    }

    /// The commit's outcome: the staged parts are gone (enqueued or dropped), the call timed.
    fn finish(&mut self, outcome: Result<u64, Error>) -> Poll<Result<u64, Error>> {
        self.producer.staged.clear();
        self.producer.end_call(self.started.take());
        Poll::Ready(outcome)
    }

    /// True once there is room for every part; or an error that ends the wait, with nothing
    /// taken.
    fn room(&mut self) -> Result<bool, Error> {
        if self.producer.fits_at_once() {
            return Ok(true);
        }
        if !self.tallied {
            // No more parts than a queue holds: none too many for one shard.
            self.producer.tally_staged()?;
            self.tallied = true;
        }
        let producer = &*self.producer;
        if producer.fits() {
            return Ok(true);
        }
        let shared = &*producer.shared;
        if shared.lifecycle.has_failed() {
            return Err(Error::WorkerPanicked);
        }
        if shared.clock.is_closed() {
            return Err(Error::Shutdown);
        }
        Ok(false)
    }

    /// Registers the task and looks for room once more (the handshake of `Waiters`); false if
    /// the future is to return `Pending`.
    #[cold]
    fn wait(&mut self, cx: &mut Context<'_>) -> bool {
        let producer = &*self.producer;
        let shared = &*producer.shared;
        // A parked worker is woken by every commit; this is only insurance that the queues
        // this task waits on are being drained.
        shared.bells.ring_sleepers();
        let stop = || producer.fits() || shared.lifecycle.has_failed() || shared.clock.is_closed();
        let ready = shared.waiters.poll(producer.slot, cx.waker(), stop);
        // `poll` took the registration back if ready.
        self.waiting = !ready;
        ready
    }
}

impl<M: Merge> CommitAsync<'_, M> {
    /// Takes the number and enqueues every part: there is room for all of them.
    #[inline]
    fn commit_now(&mut self) -> Poll<Result<u64, Error>> {
        let producer = &mut *self.producer;
        let outcome = producer.take_number().and_then(|commit| {
            let mut staged = std::mem::take(&mut producer.staged);
            // Every part fits (checked by the caller): `Refuse` never meets a full queue here.
            let enqueued = producer.enqueue(commit, staged.drain(..), Wait::Refuse);
            producer.staged = staged;
            enqueued
        });
        self.finish(outcome)
    }

    /// Everything but a first poll with room at hand: a refusal to give, a wait for room, a
    /// poll after a wake-up.
    #[cold]
    #[inline(never)]
    fn poll_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<u64, Error>> {
        if let Some(error) = self.refused.take() {
            return self.finish(Err(error));
        }
        if self.producer.staged.is_empty() {
            // Polled again after it finished: there is nothing left to commit.
            return Poll::Ready(Err(Error::EmptyCommit));
        }
        loop {
            match self.room() {
                Ok(true) => break,
                Ok(false) if self.wait(cx) => continue,
                Ok(false) => return Poll::Pending,
                Err(error) => return self.finish(Err(error)),
            }
        }
        if self.waiting {
            // Room came between a wake-up and this poll.
            self.producer.shared.waiters.cancel(self.producer.slot);
            self.waiting = false;
        }
        self.commit_now()
    }
}

impl<M: Merge> Future for CommitAsync<'_, M> {
    type Output = Result<u64, Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // The hot path, with room at hand: nothing refused, nothing waited for, every part fits.
        if this.refused.is_none()
            && !this.waiting
            && !this.producer.staged.is_empty()
            && this.producer.fits_at_once()
        {
            return this.commit_now();
        }
        this.poll_slow(cx)
    }
}

impl<M: Merge> Drop for CommitAsync<'_, M> {
    fn drop(&mut self) {
        if self.waiting {
            self.producer.shared.waiters.cancel(self.producer.slot);
        }
        // A commit dropped unfinished: its records go now, not with the next call.
        self.producer.staged.clear();
    }
}
