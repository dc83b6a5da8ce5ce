//! The one place atomics, locks, write-once cells and the published-view cell come from.
//!
//! Normally these are `std` and `arc-swap`; under `--cfg loom` they are loom's (or, for
//! `OnceLock` and the cells, built on loom's), so the loom models exercise the real protocol
//! code rather than a copy of it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

// Data is shared through `std::sync::Arc` in both builds: the models check orderings on the
// atomics and the cell, not reference counting.
pub(crate) use std::sync::Arc;

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::OnceLock;

/// Under loom, a `std::sync::OnceLock` whose publication goes through a loom atomic, so the
/// models see a value set once and read by others after as the Release/Acquire hand-off it is.
/// (std's own synchronization inside is invisible to loom; nothing here yields to loom while
/// std's lock is held: the value is made before `set`.)
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct OnceLock<T> {
    ready: AtomicBool,
    value: std::sync::OnceLock<T>,
}

#[cfg(loom)]
impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(loom)]
impl<T> OnceLock<T> {
    pub(crate) fn new() -> Self {
        Self { ready: AtomicBool::new(false), value: std::sync::OnceLock::new() }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        // Acquire: pairs with the Release in `set`.
        self.ready.load(Ordering::Acquire).then(|| self.value.get()).flatten()
    }

    pub(crate) fn set(&self, value: T) -> Result<(), T> {
        self.value.set(value)?;
        // Release: a reader that sees it sees the value and what was written before it.
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Unlike std's, `f` may run in two racing threads; one value is kept.
    pub(crate) fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        if self.get().is_none() && self.set(f()).is_err() {
            // Another thread set it and is about to publish it.
            while !self.ready.load(Ordering::Acquire) {
                loom::thread::yield_now();
            }
        }
        self.get().expect("set above or by the thread just waited for")
    }
}

/// A cell holding an `Arc<T>` that readers load without a lock and writers replace by
/// compare-and-swap: `arc_swap::ArcSwap` normally, a loom mutex under loom (arc-swap's
/// internals are not loom-aware; the protocol built on the cell is what the models check).
#[cfg(not(loom))]
pub(crate) struct ArcCell<T>(arc_swap::ArcSwap<T>);

#[cfg(not(loom))]
impl<T> ArcCell<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Self(arc_swap::ArcSwap::new(value))
    }

    pub(crate) fn load(&self) -> Arc<T> {
        self.0.load_full()
    }

    /// A cheap borrow for a quick look (no reference count touched).
    pub(crate) fn peek(&self) -> arc_swap::Guard<Arc<T>> {
        self.0.load()
    }

    pub(crate) fn store(&self, value: Arc<T>) {
        self.0.store(value);
    }

    /// Replaces `current` with `new` if the cell still holds `current`; true on success.
    pub(crate) fn compare_and_swap(&self, current: &Arc<T>, new: Arc<T>) -> bool {
        let previous = self.0.compare_and_swap(current, new);
        Arc::ptr_eq(&previous, current)
    }
}

#[cfg(loom)]
pub(crate) struct ArcCell<T>(loom::sync::Mutex<Arc<T>>);

#[cfg(loom)]
impl<T> ArcCell<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    pub(crate) fn load(&self) -> Arc<T> {
        self.0.lock().expect("loom mutex is never poisoned").clone()
    }

    pub(crate) fn peek(&self) -> Arc<T> {
        self.load()
    }

    pub(crate) fn store(&self, value: Arc<T>) {
        *self.0.lock().expect("loom mutex is never poisoned") = value;
    }

    pub(crate) fn compare_and_swap(&self, current: &Arc<T>, new: Arc<T>) -> bool {
        let mut guard = self.0.lock().expect("loom mutex is never poisoned");
        if Arc::ptr_eq(&guard, current) {
            *guard = new;
            true
        } else {
            false
        }
    }
}

impl<T> std::fmt::Debug for ArcCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArcCell { .. }")
    }
}

/// A cell that is empty or holds an `Arc<T>`, loaded without a lock and replaced by one writer:
/// `arc_swap::ArcSwapOption` normally, a loom mutex under loom (as [`ArcCell`]).
#[cfg(not(loom))]
pub(crate) struct ArcSlot<T>(arc_swap::ArcSwapOption<T>);

#[cfg(not(loom))]
impl<T> Default for ArcSlot<T> {
    fn default() -> Self {
        Self(arc_swap::ArcSwapOption::empty())
    }
}

#[cfg(not(loom))]
impl<T> ArcSlot<T> {
    /// A cheap borrow for a quick look (no reference count touched).
    pub(crate) fn peek(&self) -> arc_swap::Guard<Option<Arc<T>>> {
        self.0.load()
    }

    pub(crate) fn store(&self, value: Arc<T>) {
        self.0.store(Some(value));
    }
}

#[cfg(loom)]
pub(crate) struct ArcSlot<T>(loom::sync::Mutex<Option<Arc<T>>>);

#[cfg(loom)]
impl<T> Default for ArcSlot<T> {
    fn default() -> Self {
        Self(loom::sync::Mutex::new(None))
    }
}

#[cfg(loom)]
impl<T> ArcSlot<T> {
    pub(crate) fn peek(&self) -> Option<Arc<T>> {
        self.0.lock().expect("loom mutex is never poisoned").clone()
    }

    pub(crate) fn store(&self, value: Arc<T>) {
        *self.0.lock().expect("loom mutex is never poisoned") = Some(value);
    }
}
