//! Resident memory, from `/proc/self/status` (Linux; elsewhere every figure is `None`).
//!
//! `VmHWM` is the peak of the whole process, so with `--engine all` a later engine would
//! inherit an earlier one's peak. Before each engine the peak is reset by writing `5` to
//! `/proc/self/clear_refs` (Linux 4.0 and later), so each engine's figure is the highest
//! resident set seen while it ran, its own threads, queues and index included. It still counts
//! what the process held when the engine started (the workload's paths and record pools, and
//! memory the allocator kept from earlier engines), which `at_start` shows.

/// One engine's memory figures, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// Whether the peak was reset before the engine started; if not, `peak` is the process's
    /// peak since it started.
    pub reset: bool,
    /// Resident set when the engine started.
    pub at_start: Option<u64>,
    /// Peak resident set (`VmHWM`) after the engine finished.
    pub peak: Option<u64>,
}

/// Hands memory the allocator keeps for reuse back to the OS, so the next engine starts from
/// what the process really needs. mimalloc (the binary's allocator) returns freed pages only
/// after a delay and only when it next gets round to it; without this, an engine's freed index
/// would stay resident and count in the next engine's figures.
pub fn release_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Resets the process's peak resident set to its current one. False where that is not possible.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The current resident set (`VmRSS`).
pub fn current() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// The peak resident set (`VmHWM`).
pub fn peak() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_plausible_where_the_os_tells() {
        if let (Some(now), Some(peak)) = (current(), peak()) {
            assert!(now > 0 && peak >= now / 2, "rss {now}, peak {peak}");
        }
    }
}
