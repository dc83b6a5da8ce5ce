//! Waiting for a frontier to reach a commit: the sealed one (`Pipeline::wait_sealed`) and the
//! durable one (`Pipeline::wait_durable`), blocking or as futures.
//!
//! A wait looks at its outcome first (the frontier, then the failures that end it), spins
//! briefly if it is blocking (a commit often becomes visible within microseconds, sooner than a
//! parked thread wakes), then registers in the frontier's [`Watch`] and sleeps until a ring
//! reaches its commit or a failure rings everyone (`crate::read::watch` states the handshake).
//! Nothing polls: a blocked thread parks without a timeout unless the caller gave a deadline,
//! and a future returns `Pending` until its waker is woken.
//!
//! The futures borrow the pipeline, as the blocking waits do, so shutdown cannot run while one
//! is alive; they have no timeout (a runtime's own timer composes with them) and a dropped one
//! takes its place out of the list ([`Watch::cancel`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossbeam::utils::Backoff;

use crate::durable::frontier::DurableState;
use crate::error::Error;
use crate::merge::Merge;
use crate::read::snapshot::Snapshot;
use crate::read::watch::{Ticket, Watch};
use crate::shared::Shared;

/// The sealed wait's outcome now, if it has one: the snapshot once it covers `commit` (even
/// after a failure: a published snapshot is sound), else the failure that ends the wait.
fn sealed<M: Merge>(shared: &Shared<M>, commit: u64) -> Option<Result<Snapshot<M>, Error>> {
    let view = shared.views.global();
    if view.frontier >= commit {
        return Some(Ok(Snapshot::new(view, shared.merge.clone())));
    }
    shared.lifecycle.has_failed().then_some(Err(Error::WorkerPanicked))
}

/// The durable wait's outcome now, if it has one: the durable frontier once it reaches
/// `commit`, else the log error or the worker failure that ends the wait.
fn durable<M: Merge>(shared: &Shared<M>, state: &DurableState, commit: u64) -> Option<Result<u64, Error>> {
    let frontier = state.frontier();
    if frontier >= commit {
        return Some(Ok(frontier));
    }
    if let Some(error) = state.error() {
        return Some(Err(error));
    }
    shared.lifecycle.has_failed().then_some(Err(Error::WorkerPanicked))
}

/// Blocks until `outcome` has one, or `timeout` passes ([`Error::Timeout`] with `frontier()`
/// then). A timeout past what `Instant` represents waits without a deadline.
fn block<T>(
    watch: &Watch,
    commit: u64,
    timeout: Duration,
    mut outcome: impl FnMut() -> Option<Result<T, Error>>,
    frontier: impl FnOnce() -> u64,
) -> Result<T, Error> {
    let deadline = Instant::now().checked_add(timeout);
    let backoff = Backoff::new();
    while !backoff.is_completed() {
        if let Some(done) = outcome() {
            return done;
        }
        backoff.snooze();
    }
    let mut found = None;
    let ready = || {
        found = outcome();
        found.is_some()
    };
    let park = || match deadline {
        None => {
            std::thread::park();
            true
        }
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::park_timeout(left);
            true
        }
    };
    watch.block(commit, std::thread::current(), ready, park);
    found.unwrap_or_else(|| Err(Error::Timeout { commit, frontier: frontier() }))
}

/// `Pipeline::wait_sealed`.
pub(crate) fn wait_sealed<M: Merge>(
    shared: &Shared<M>,
    commit: u64,
    timeout: Duration,
) -> Result<Snapshot<M>, Error> {
    let outcome = || sealed(shared, commit);
    block(shared.views.sealed(), commit, timeout, outcome, || shared.views.frontier())
}

/// `Pipeline::wait_durable`.
pub(crate) fn wait_durable<M: Merge>(
    shared: &Shared<M>,
    commit: u64,
    timeout: Duration,
) -> Result<u64, Error> {
    let Some(state) = &shared.durable else { return Err(Error::NotDurable) };
    let outcome = || durable(shared, state, commit);
    block(state.watch(), commit, timeout, outcome, || state.frontier())
}

/// `Pipeline::wait_sealed_async`'s future.
pub(crate) struct WaitSealed<'a, M: Merge> {
    shared: &'a Shared<M>,
    commit: u64,
    /// Its place in the waiter list while it has one.
    ticket: Option<Ticket>,
}

impl<'a, M: Merge> WaitSealed<'a, M> {
    pub(crate) fn new(shared: &'a Shared<M>, commit: u64) -> Self {
        Self { shared, commit, ticket: None }
    }
}

impl<M: Merge> Future for WaitSealed<'_, M> {
    type Output = Result<Snapshot<M>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let (shared, commit) = (this.shared, this.commit);
        let mut found = None;
        let ready = || {
            found = sealed(shared, commit);
            found.is_some()
        };
        shared.views.sealed().poll(&mut this.ticket, commit, cx.waker(), ready);
        found.map_or(Poll::Pending, Poll::Ready)
    }
}

impl<M: Merge> Drop for WaitSealed<'_, M> {
    fn drop(&mut self) {
        self.shared.views.sealed().cancel(&mut self.ticket);
    }
}

/// `Pipeline::wait_durable_async`'s future.
pub(crate) struct WaitDurable<'a, M: Merge> {
    shared: &'a Shared<M>,
    commit: u64,
    /// Its place in the waiter list while it has one.
    ticket: Option<Ticket>,
}

impl<'a, M: Merge> WaitDurable<'a, M> {
    pub(crate) fn new(shared: &'a Shared<M>, commit: u64) -> Self {
        Self { shared, commit, ticket: None }
    }
}

impl<M: Merge> Future for WaitDurable<'_, M> {
    type Output = Result<u64, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let (shared, commit) = (this.shared, this.commit);
        let Some(state) = &shared.durable else { return Poll::Ready(Err(Error::NotDurable)) };
        let mut found = None;
        let ready = || {
            found = durable(shared, state, commit);
            found.is_some()
        };
        state.watch().poll(&mut this.ticket, commit, cx.waker(), ready);
        found.map_or(Poll::Pending, Poll::Ready)
    }
}

impl<M: Merge> Drop for WaitDurable<'_, M> {
    fn drop(&mut self) {
        if let Some(state) = &self.shared.durable {
            state.watch().cancel(&mut self.ticket);
        }
    }
}
