//! Room in a full queue: what `try_commit` says when there is none, and how `commit` waits for
//! it (spin, yield, then park until the worker that drains the queue wakes it).

use std::time::Duration;

use crossbeam::utils::Backoff;
use rtrb::PushError;

use crate::error::Error;
use crate::ingest::queue::{QueuedPart, Sender};
use crate::merge::Merge;
use crate::shared::Shared;

/// How long a producer waiting for room parks before it looks again unwoken (a safety net: the
/// worker that drains its queue wakes it).
const ROOM_PARK: Duration = Duration::from_millis(5);

/// A queue is full: `Full`, unless its worker is gone and it will never drain.
#[cold]
pub(crate) fn full_or_failed<M: Merge>(shared: &Shared<M>) -> Error {
    if shared.lifecycle.has_failed() {
        Error::WorkerPanicked
    } else {
        Error::Full
    }
}

/// Waits for room in a full queue: spin, then yield, then sleep briefly. False only if the
/// worker that drains it is gone.
///
/// First it advances this producer's announcement to `part`'s commit: parts go in commit
/// order, so every earlier commit of a `commit_many` batch is fully enqueued, and the frontier
/// may pass them. A batch that held them back while it waited would wait for good once its
/// queue's pending list spans two commits (`crate::shard::worker`, "Producers ahead wait").
#[cold]
pub(crate) fn push_waiting<M: Merge>(
    shared: &Shared<M>,
    slot: usize,
    queue: &mut Sender<M::Record>,
    shard: usize,
    mut part: QueuedPart<M::Record>,
) -> bool {
    shared.clock.advance(slot, part.commit);
    // The frontier may have moved for every shard, not only this one.
    shared.bells.ring_sleepers();
    let backoff = Backoff::new();
    loop {
        shared.bells.ring(shard);
        if backoff.is_completed() {
            if shared.lifecycle.has_failed() {
                return false;
            }
            // Until the worker pops from this queue and wakes us; the timeout is a safety net.
            let room = || queue.slots() > 0 || shared.lifecycle.has_failed();
            shared.waiters.wait(slot, std::thread::current(), room, || std::thread::park_timeout(ROOM_PARK));
        } else {
            backoff.snooze();
        }
        match queue.push(part) {
            Ok(()) => return true,
            Err(PushError::Full(back)) => part = back,
        }
    }
}
