//! The one place atomics and the published-view cell come from.
//!
//! Normally these are `std` and `arc-swap`; under `--cfg loom` they are loom's, so the loom
//! models in [`crate::clock`] and [`crate::snapshot`] exercise the real protocol code rather
//! than a copy of it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

// Data is shared through `std::sync::Arc` in both builds: the models check orderings on the
// atomics and the cell, not reference counting.
pub(crate) use std::sync::Arc;

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
