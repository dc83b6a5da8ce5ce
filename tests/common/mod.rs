//! A sequential reference model of what a finished pipeline holds, and checks shared by the
//! integration tests.
//!
//! The model knows nothing of the library's internals: it takes the commits (commit `i + 1` is
//! `commits[i]`, a list of `(path, record)` parts in part order) and a frontier, and computes
//! with plain loops what every path's segments and reads must be once everything up to the
//! frontier is sealed and compacted.
//!
//! Under `Retention::Newest(n)` the model keeps what the retention doc promises: a snapshot at
//! frontier `F` shows the top-level blocks ending after `F - F % D^max - n * D^max` and
//! everything after them ([`window_start`]); every layout, read and path list is the model's
//! restricted to that window, while the sink still gets every flush-level block once
//! ([`sink_writes`]).
//!
//! Also here: the shape check every snapshot must pass, a sink that collects what it is given,
//! a small seeded RNG, a [`Gate`] that holds shard workers inside `seal` so tests can fill
//! queues deterministically, and [`Blocks`], which shows a thread is blocked inside a call.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lockstep::merge::Outputs;
use lockstep::{Merge, Pipeline, SegmentInfo, Sink, SinkError};

/// A generous bound on every wait in the tests: the machine is shared and noisy, so a wait that
/// runs out means something is stuck, never that something is slow.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How far `LOCKSTEP_STRESS` pushes the stress tests (the consistent-cut runs in
/// `consistency.rs`, the cases of the reference property tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stress {
    /// Unset: what `cargo test` runs, seconds.
    Small,
    /// `LOCKSTEP_STRESS=short`: what `.ci/run` adds, about half a minute.
    Short,
    /// Any other value (`LOCKSTEP_STRESS=1`): minutes.
    Long,
}

pub fn stress() -> Stress {
    match std::env::var("LOCKSTEP_STRESS") {
        Err(_) => Stress::Small,
        Ok(value) if value == "short" => Stress::Short,
        Ok(_) => Stress::Long,
    }
}

/// Runs `f` on a thread and waits for its result, at most `PATIENCE`: a hang fails the test
/// instead of stalling the run.
pub fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("{what} did not return within {PATIENCE:?}"))
}

/// Polls `done` until it holds, at most `PATIENCE`.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Shows that a thread is blocked inside a call, with no sleep in the test: Linux counts each
/// thread's voluntary context switches (it slept, parked, or waited on a lock) in
/// `/proc/<pid>/task/<tid>/status`. A thread takes its `Blocks` and [`count`](Blocks::count),
/// hands both to the test, then makes the call (a wait for a commit, a shutdown waiting for a
/// blocked commit); once the count has grown, the thread is inside that call and has blocked
/// there, so whatever the test does next happens while it waits.
///
/// Elsewhere than Linux the count stays 0 and [`wait_beyond`](Blocks::wait_beyond) returns at
/// once: the tests then run, without that proof.
#[derive(Debug, Clone)]
pub struct Blocks {
    status: Option<std::path::PathBuf>,
}

impl Blocks {
    /// The calling thread's.
    pub fn of_this_thread() -> Self {
        if !cfg!(target_os = "linux") {
            return Self { status: None };
        }
        let task = std::fs::read_link("/proc/thread-self").expect("Linux has /proc/thread-self");
        Self { status: Some(std::path::Path::new("/proc").join(task).join("status")) }
    }

    /// The thread's voluntary context switches so far.
    pub fn count(&self) -> u64 {
        let Some(status) = &self.status else { return 0 };
        let text = std::fs::read_to_string(status)
            .unwrap_or_else(|e| panic!("{}: {e} (the thread ended instead of blocking)", status.display()));
        let line = text.lines().find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"));
        line.and_then(|count| count.trim().parse().ok()).expect("status has voluntary_ctxt_switches")
    }

    /// Waits (bounded) until the thread has blocked more than `count` times in all.
    pub fn wait_beyond(&self, count: u64, what: &str) {
        if self.status.is_some() {
            eventually(what, || self.count() > count);
        }
    }
}

/// All commits in commit order: `commits[i]` holds the parts of commit `i + 1`.
pub type Commits<R> = Vec<Vec<(String, R)>>;

/// `base^exp`, panicking on overflow (the tests only use small geometries).
pub fn pow(base: u64, exp: u32) -> u64 {
    let mut value = 1u64;
    for _ in 0..exp {
        value = value.checked_mul(base).expect("test geometries are small");
    }
    value
}

/// The base-`divisor` decomposition of `[1, frontier]`, top levels first, capped at
/// `max_level`: starting at commit 1, repeatedly take the largest aligned block that starts
/// here and still fits below the frontier.
pub fn decomposition(divisor: u64, max_level: u32, frontier: u64) -> Vec<SegmentInfo> {
    let mut blocks = Vec::new();
    let mut start = 1u64;
    while start <= frontier {
        let mut chosen = 0u32;
        for level in (0..=max_level).rev() {
            let span = pow(divisor, level);
            let aligned = (start - 1).is_multiple_of(span);
            let fits = start - 1 + span <= frontier;
            if aligned && fits {
                chosen = level;
                break;
            }
        }
        let span = pow(divisor, chosen);
        blocks.push(SegmentInfo { level: chosen, start, end: start + span - 1 });
        start += span;
    }
    blocks
}

/// Every path named by a commit at or below `frontier`.
pub fn paths<R>(commits: &[Vec<(String, R)>], frontier: u64) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for (index, parts) in commits.iter().enumerate() {
        let commit = index as u64 + 1;
        if commit > frontier {
            break;
        }
        for (path, _) in parts {
            paths.insert(path.clone());
        }
    }
    paths
}

/// The commits at or below `frontier` that wrote at least one part to `path`, ascending.
pub fn commits_of<R>(commits: &[Vec<(String, R)>], path: &str, frontier: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for (index, parts) in commits.iter().enumerate() {
        let commit = index as u64 + 1;
        if commit > frontier {
            break;
        }
        if parts.iter().any(|(p, _)| p == path) {
            out.push(commit);
        }
    }
    out
}

/// The finished layout of every path: the decomposition of `[1, frontier]` keeping only the
/// blocks holding one of the path's commits.
pub fn layouts<R>(
    commits: &[Vec<(String, R)>],
    divisor: u64,
    max_level: u32,
    frontier: u64,
) -> BTreeMap<String, Vec<SegmentInfo>> {
    let blocks = decomposition(divisor, max_level, frontier);
    let mut out = BTreeMap::new();
    for path in paths(commits, frontier) {
        let written = commits_of(commits, &path, frontier);
        let mut layout = Vec::new();
        for block in &blocks {
            if written.iter().any(|&c| c >= block.start && c <= block.end) {
                layout.push(*block);
            }
        }
        out.insert(path, layout);
    }
    out
}

/// The first commit a snapshot at `frontier` shows under `Retention::Newest(n)` (`window`), 1
/// without one: the top-level blocks (of `divisor^max_level` commits) ending after
/// `frontier - frontier % span - n * span`, and everything after them.
pub fn window_start(divisor: u64, max_level: u32, window: Option<usize>, frontier: u64) -> u64 {
    let Some(n) = window else { return 1 };
    let span = pow(divisor, max_level);
    (frontier - frontier % span).saturating_sub(span.saturating_mul(n as u64)) + 1
}

/// The commits from `from` on: what a window starting at `from` keeps of them (the commits
/// before it become empty, so commit numbers stay where they were).
pub fn from_commit<R: Clone>(commits: &[Vec<(String, R)>], from: u64) -> Commits<R> {
    commits
        .iter()
        .enumerate()
        .map(|(index, parts)| if index as u64 + 1 >= from { parts.clone() } else { Vec::new() })
        .collect()
}

/// [`layouts`] restricted to the window starting at `from`: the blocks starting at or after it
/// (an aligned block is wholly inside the window or wholly before it), and only the paths that
/// keep a block there.
pub fn windowed_layouts<R: Clone>(
    commits: &[Vec<(String, R)>],
    divisor: u64,
    max_level: u32,
    frontier: u64,
    from: u64,
) -> BTreeMap<String, Vec<SegmentInfo>> {
    let mut out = layouts(&from_commit(commits, from), divisor, max_level, frontier);
    for layout in out.values_mut() {
        layout.retain(|block| block.start >= from);
    }
    out.retain(|_, layout| !layout.is_empty());
    out
}

/// Every record of `path` at or below `frontier`, with its commit, in commit order and within
/// a commit in part order: what `Concat` reads.
pub fn concat_of<R: Clone>(commits: &[Vec<(String, R)>], path: &str, frontier: u64) -> Vec<(u64, R)> {
    let mut out = Vec::new();
    for (index, parts) in commits.iter().enumerate() {
        let commit = index as u64 + 1;
        if commit > frontier {
            break;
        }
        for (p, record) in parts {
            if p == path {
                out.push((commit, record.clone()));
            }
        }
    }
    out
}

/// What `Concat` reads for every path at `frontier`.
pub fn concat_reads<R: Clone>(
    commits: &[Vec<(String, R)>],
    frontier: u64,
) -> BTreeMap<String, Vec<(u64, R)>> {
    paths(commits, frontier).into_iter().map(|p| (p.clone(), concat_of(commits, &p, frontier))).collect()
}

/// What `Sum` reads for every path at `frontier` (wrapping, as `Sum` does).
pub fn sum_reads(commits: &[Vec<(String, i64)>], frontier: u64) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (path, records) in concat_reads(commits, frontier) {
        let mut sum = 0i64;
        for (_, value) in records {
            sum = sum.wrapping_add(value);
        }
        out.insert(path, sum);
    }
    out
}

/// What `LastWriteWins` reads for every path at `frontier`: per key, the last value written
/// and the commit that wrote it.
pub fn last_write_reads<K: Ord + Clone, V: Clone>(
    commits: &[Vec<(String, (K, V))>],
    frontier: u64,
) -> BTreeMap<String, BTreeMap<K, (u64, V)>> {
    let mut out = BTreeMap::new();
    for (path, records) in concat_reads(commits, frontier) {
        let mut state = BTreeMap::new();
        for (commit, (key, value)) in records {
            state.insert(key, (commit, value));
        }
        out.insert(path, state);
    }
    out
}

/// The level-`level` blocks with an end at or below `frontier` that hold data of `path`: what
/// a sink at that flush level receives for the path once everything is compacted.
pub fn flushed_blocks<R>(
    commits: &[Vec<(String, R)>],
    path: &str,
    divisor: u64,
    level: u32,
    frontier: u64,
) -> Vec<SegmentInfo> {
    let span = pow(divisor, level);
    let mut out = Vec::new();
    let written = commits_of(commits, path, frontier);
    let mut start = 1u64;
    while start + span - 1 <= frontier {
        let end = start + span - 1;
        if written.iter().any(|&c| c >= start && c <= end) {
            out.push(SegmentInfo { level, start, end });
        }
        start += span;
    }
    out
}

/// What a sink at `flush_level` must have received by the end, per path (paths it got nothing for
/// left out) in the order it arrives: each flush-level block holding data of the path, with `output` of the path's records inside
/// it. Retention does not change it: the sink gets every block once, window or not.
pub fn sink_writes<R: Clone, O>(
    commits: &[Vec<(String, R)>],
    divisor: u64,
    flush_level: u32,
    output: impl Fn(Vec<(u64, R)>) -> O,
) -> BTreeMap<String, Vec<(SegmentInfo, O)>> {
    let total = commits.len() as u64;
    let mut out = BTreeMap::new();
    for path in paths(commits, total) {
        let records = concat_of(commits, &path, total);
        let blocks = flushed_blocks(commits, &path, divisor, flush_level, total);
        let writes = blocks
            .into_iter()
            .map(|b| {
                let inside = records.iter().filter(|(c, _)| (b.start..=b.end).contains(c)).cloned().collect();
                (b, output(inside))
            })
            .collect::<Vec<_>>();
        // A path with no flush-level block yet (its data all in the tail) gets no write.
        if !writes.is_empty() {
            out.insert(path, writes);
        }
    }
    out
}

/// A sink that records every write it accepts, and refuses the first `fail_first` (`usize::MAX`:
/// all). Clones share what was written.
#[derive(Debug)]
pub struct Collect<O> {
    written: Arc<Mutex<Vec<(String, SegmentInfo, O)>>>,
    pub attempts: Arc<AtomicUsize>,
    fail_first: usize,
}

impl<O> Clone for Collect<O> {
    fn clone(&self) -> Self {
        Self { written: self.written.clone(), attempts: self.attempts.clone(), fail_first: self.fail_first }
    }
}

impl<O> Collect<O> {
    pub fn new(fail_first: usize) -> Self {
        Self { written: Arc::default(), attempts: Arc::default(), fail_first }
    }

    /// Every write accepted so far, in the order they came.
    pub fn written(&self) -> Vec<(String, SegmentInfo, O)>
    where
        O: Clone,
    {
        self.written.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The writes accepted so far, grouped by path, each path's in the order they came.
    pub fn by_path(&self) -> BTreeMap<String, Vec<(SegmentInfo, O)>>
    where
        O: Clone,
    {
        let mut out: BTreeMap<String, Vec<(SegmentInfo, O)>> = BTreeMap::new();
        for (path, segment, output) in self.written() {
            out.entry(path).or_default().push((segment, output));
        }
        out
    }
}

impl<O: Clone + Send + Sync + 'static> Sink<O> for Collect<O> {
    fn write(&self, path: &str, segment: SegmentInfo, output: &O) -> Result<(), SinkError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
        if attempt < self.fail_first {
            return Err(format!("sink unavailable (attempt {attempt})").into());
        }
        self.written.lock().unwrap_or_else(PoisonError::into_inner).push((
            path.to_owned(),
            segment,
            output.clone(),
        ));
        Ok(())
    }
}

/// Turns `(commit number, parts)` pairs recorded by concurrent producers into the commit list,
/// checking that the numbers are exactly `1..=n` (gapless, each once).
pub fn gapless<R>(mut numbered: Vec<(u64, Vec<(String, R)>)>) -> Commits<R> {
    numbered.sort_by_key(|(commit, _)| *commit);
    let mut commits = Vec::with_capacity(numbered.len());
    for (index, (commit, parts)) in numbered.into_iter().enumerate() {
        assert_eq!(commit, index as u64 + 1, "commit numbers must be 1, 2, 3, … with no gap or repeat");
        commits.push(parts);
    }
    commits
}

/// Commits each script from a producer thread of its own (a script is one producer's commits, in
/// order) and returns every commit by number, checked gapless.
pub fn commit_scripts<M: Merge>(
    pipeline: &Pipeline<M>,
    scripts: Vec<Commits<M::Record>>,
) -> Commits<M::Record>
where
    M::Record: Clone,
{
    let producers: Vec<_> = scripts.iter().map(|_| pipeline.producer().expect("a producer")).collect();
    let numbered = std::thread::scope(|scope| {
        let handles: Vec<_> = producers
            .into_iter()
            .zip(scripts)
            .map(|(mut producer, script)| {
                scope.spawn(move || {
                    let commit = |parts: Vec<(String, M::Record)>| {
                        (producer.commit(parts.clone()).expect("a valid commit is accepted"), parts)
                    };
                    script.into_iter().map(commit).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("producer thread")).collect()
    });
    gapless(numbered)
}

/// Checks the shape every snapshot's segments must have, running or finished: each segment
/// aligned for its level (level 0 is one commit; level `L` covers `end - D^L + 1 ..= end` with
/// `end % D^L == 0`, `L <= max_level`), ascending and disjoint, and every end at or below the
/// frontier. Returns a description of the first violation.
pub fn check_shape(
    segments: &[SegmentInfo],
    divisor: u64,
    max_level: u32,
    frontier: u64,
) -> Result<(), String> {
    let mut previous_end = 0u64;
    for segment in segments {
        if segment.level > max_level {
            return Err(format!("{segment:?} is above max_level {max_level}"));
        }
        let span = pow(divisor, segment.level);
        if segment.end % span != 0 || segment.end - segment.start + 1 != span || segment.start == 0 {
            return Err(format!("{segment:?} is not aligned for divisor {divisor}"));
        }
        if segment.start <= previous_end {
            return Err(format!("{segment:?} overlaps or precedes a segment ending at {previous_end}"));
        }
        if segment.end > frontier {
            return Err(format!("{segment:?} ends past the frontier {frontier}"));
        }
        previous_end = segment.end;
    }
    Ok(())
}

/// A small deterministic random number generator (SplitMix64), for seeded loops.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A gate a test opens and closes; shard workers wait at it inside [`Gated::seal`]. While a
/// worker waits there it drains nothing, so a test can fill queues deterministically.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    open: bool,
    waiting: usize,
}

impl Gate {
    /// A closed gate.
    pub fn closed() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn open(&self) {
        self.state().open = true;
        self.changed.notify_all();
    }

    /// Waits (bounded) until a worker waits at the gate; true if one does.
    pub fn wait_for_a_waiter(&self) -> bool {
        self.wait_for_waiters(1)
    }

    /// Waits (bounded) until `n` workers wait at the gate; true if they do.
    pub fn wait_for_waiters(&self, n: usize) -> bool {
        let guard = self.state();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, PATIENCE, |s| s.waiting < n)
            .unwrap_or_else(PoisonError::into_inner);
        guard.waiting >= n
    }

    /// Waits at the gate until it opens (bounded, so a failing test cannot hang a worker).
    fn pass(&self) {
        let mut guard = self.state();
        if guard.open {
            return;
        }
        guard.waiting += 1;
        self.changed.notify_all();
        let (mut guard, _) = self
            .changed
            .wait_timeout_while(guard, PATIENCE, |s| !s.open)
            .unwrap_or_else(PoisonError::into_inner);
        guard.waiting -= 1;
    }

    /// Opens the gate when dropped: keeps a failing test from leaving a worker stuck.
    pub fn opener(self: &Arc<Self>) -> Opener {
        Opener(self.clone())
    }
}

/// Opens its gate on drop.
#[derive(Debug)]
pub struct Opener(Arc<Gate>);

impl Drop for Opener {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// `Concat<u64>` whose `seal` first waits at a [`Gate`].
#[derive(Debug, Clone)]
pub struct Gated(pub Arc<Gate>);

impl Merge for Gated {
    type Record = u64;
    type Output = Vec<(u64, u64)>;
    type Column = Outputs<Vec<(u64, u64)>>;

    fn seal(&self, records: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
        self.0.pass();
        records.collect()
    }

    fn merge(&self, outputs: &[&Vec<(u64, u64)>]) -> Vec<(u64, u64)> {
        outputs.iter().flat_map(|o| o.iter().copied()).collect()
    }
}

/// `Sum` over `u64` that panics when it seals a record equal to its value: the one test merge
/// that stops a worker (the `Merge` trait may change shape; only this needs to follow).
#[derive(Debug, Clone, Copy)]
pub struct PanicOn(pub u64);

impl Merge for PanicOn {
    type Record = u64;
    type Output = u64;
    type Column = Outputs<u64>;

    fn seal(&self, records: impl Iterator<Item = (u64, u64)>) -> u64 {
        records.map(|(_, r)| if r == self.0 { panic!("a merge that panics on {}", self.0) } else { r }).sum()
    }

    fn merge(&self, outputs: &[&u64]) -> u64 {
        outputs.iter().copied().sum()
    }
}
