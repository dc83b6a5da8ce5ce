#![cfg(not(loom))]
//! Async commits and waits: `commit_async` through full queues from many tasks, cancellation
//! (futures dropped mid-wait leave nothing taken and nobody unwoken), `wait_sealed_async` and
//! `wait_durable_async`, a worker failure and a shutdown ending waits, all under tokio's
//! multi-threaded runtime, and the same under a dozen-line executor of our own, which shows
//! the futures need no runtime.
//!
//! Every wait here is made certain by construction, never by timing: a [`Gate`] holds the shard
//! worker inside `seal`, so nothing drains until the test opens it, and [`noting_pending`]
//! records that a future did return `Pending` (it waited) before the test lets it go on.

mod common;

use std::future::{poll_fn, Future};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{eventually, Gate, Gated, PATIENCE};
use lockstep::merge::{Outputs, Sum};
use lockstep::{Error, Merge, Pipeline};

/// Polls `future` to its end, noting in `waited` whether it ever returned `Pending`.
async fn noting_pending<F: Future>(future: F, waited: &AtomicBool) -> F::Output {
    let mut future = pin!(future);
    poll_fn(|cx| {
        let poll = future.as_mut().poll(cx);
        if poll.is_pending() {
            // Relaxed: read by the test after it has seen the effect it waits for.
            waited.store(true, Ordering::Relaxed);
        }
        poll
    })
    .await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("a runtime")
}

/// Waits (bounded) inside a task, without blocking the runtime, until `done`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}"));
}

/// The records of one path of a `Gated` pipeline's snapshot.
fn records(snapshot: &lockstep::Snapshot<Gated>, path: &str) -> Vec<(u64, u64)> {
    snapshot.read(path).unwrap_or_default()
}

/// Sixteen tasks, each with its own producer, commit 40 commits of two parts through queues of
/// two. By construction every task meets a full queue: the worker is held at the gate, each
/// task's first commit fills its queue, and its second waits; the test sees all sixteen
/// waiting, and exactly one commit of each in, before it opens the gate. Then every commit
/// goes through, with every number once, and the sums are what was committed.
#[test]
fn many_tasks_commit_async_through_full_queues() -> Result<(), Error> {
    const TASKS: u64 = 16;
    const COMMITS: u64 = 40;
    let gate = Gate::closed();
    let _opener = gate.opener();
    let pipeline = Arc::new(Pipeline::builder(Gated(gate.clone())).shards(1).queue_capacity(2).build()?);
    let mut warm = pipeline.producer()?;
    assert_eq!(warm.commit([("/warm", 0)])?, 1);
    assert!(gate.wait_for_a_waiter(), "the worker holds commit 1 at the gate");

    let waited: Arc<Vec<AtomicBool>> = Arc::new((0..TASKS).map(|_| AtomicBool::new(false)).collect());
    runtime().block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (pipeline, waited) = (pipeline.clone(), waited.clone());
                tokio::spawn(async move {
                    let mut producer = pipeline.producer()?;
                    let mut numbers = Vec::new();
                    for i in 1..=COMMITS {
                        let parts = [("/sum".to_owned(), i), (format!("/task/{task}"), 1)];
                        numbers.push(
                            noting_pending(producer.commit_async(parts), &waited[task as usize]).await?,
                        );
                    }
                    Ok::<_, Error>(numbers)
                })
            })
            .collect();
        until("every task waits for room", || waited.iter().all(|w| w.load(Ordering::Relaxed))).await;
        assert_eq!(pipeline.stats().commits, 1 + TASKS, "one commit of each task fits, no more");
        gate.open();

        let mut numbers = Vec::new();
        for task in tasks {
            numbers.extend(task.await.expect("the task ran")?);
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (2..=1 + TASKS * COMMITS).collect::<Vec<_>>(), "every number once");
        let last = 1 + TASKS * COMMITS;
        let snapshot = pipeline.wait_sealed_async(last).await?;
        assert_eq!(snapshot.frontier(), last);
        let sum: u64 = records(&snapshot, "/sum").iter().map(|&(_, r)| r).sum();
        assert_eq!(sum, TASKS * COMMITS * (COMMITS + 1) / 2);
        for task in 0..TASKS {
            assert_eq!(records(&snapshot, &format!("/task/{task}")).len() as u64, COMMITS);
        }
        Ok(())
    })
}

/// Futures dropped while they wait — by a timeout, by `select!`, by plain drop — take no
/// commit number and enqueue nothing, and the waiters not dropped are still woken: the
/// pipeline then reaches every commit made after them.
#[test]
fn cancelled_futures_take_nothing_and_every_commit_is_reached() -> Result<(), Error> {
    let gate = Gate::closed();
    let _opener = gate.opener();
    let pipeline = Arc::new(Pipeline::builder(Gated(gate.clone())).shards(1).queue_capacity(2).build()?);
    let mut producer = pipeline.producer()?;
    assert_eq!(producer.commit([("/a", 0)])?, 1);
    assert!(gate.wait_for_a_waiter());

    runtime().block_on(async {
        // Fills the queue (the worker took commit 1 before it stopped at the gate).
        assert_eq!(producer.commit_async([("/a", 1), ("/a", 2)]).await?, 2);
        // A waiter that is not cancelled, for the commit the next successful call will take.
        let patient = {
            let pipeline = pipeline.clone();
            tokio::spawn(async move { pipeline.wait_sealed_async(3).await.map(|s| s.frontier()) })
        };

        // Dropped by a timeout: the queue stays full while the gate is closed.
        let timed_out =
            tokio::time::timeout(Duration::from_millis(20), producer.commit_async([("/a", 3)])).await;
        assert!(timed_out.is_err(), "no room while the worker is held");
        // Dropped by `select!` after one poll (`biased`: the commit is polled first).
        let waited = AtomicBool::new(false);
        tokio::select! {
            biased;
            _ = noting_pending(producer.commit_async([("/a", 4)]), &waited) => unreachable!("no room"),
            () = std::future::ready(()) => {}
        }
        assert!(waited.load(Ordering::Relaxed), "the commit was waiting when it was dropped");
        // Dropped before it was ever polled.
        drop(producer.commit_async([("/a", 5)]));
        // Sealed waits dropped while they wait.
        let timed_out = tokio::time::timeout(Duration::from_millis(20), pipeline.wait_sealed_async(2)).await;
        assert!(timed_out.is_err(), "commit 2 is held at the gate");
        tokio::select! {
            biased;
            _ = pipeline.wait_sealed_async(1_000) => unreachable!("never issued"),
            () = std::future::ready(()) => {}
        }

        assert_eq!(pipeline.stats().commits, 2, "a dropped commit took a number");
        gate.open();
        assert_eq!(producer.commit_async([("/a", 6)]).await?, 3, "numbering goes on where it was");
        assert_eq!(patient.await.expect("the waiter ran")?, 3, "the waiter not dropped was woken");
        let snapshot = pipeline.wait_sealed_async(3).await?;
        assert_eq!(snapshot.read("/a"), Some(vec![(1, 0), (2, 1), (2, 2), (3, 6)]));
        Ok::<_, Error>(())
    })?;
    drop(producer);
    let pipeline = Arc::into_inner(pipeline).expect("the last handle");
    assert_eq!(pipeline.shutdown()?.frontier(), 3);
    Ok(())
}

/// A directory of its own under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("lockstep-async-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A durable pipeline: tasks commit with `commit_async`, `wait_durable_async` gives a durable
/// frontier at or past each task's last commit, and a reopened pipeline holds every commit.
#[test]
fn wait_durable_async_covers_every_commit() -> Result<(), Error> {
    const TASKS: i64 = 4;
    const COMMITS: i64 = 50;
    let dir = TempDir::new("durable");
    let pipeline = Arc::new(Pipeline::builder(Sum).shards(2).durable(&dir.0).build()?);
    let last = runtime().block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let pipeline = pipeline.clone();
                tokio::spawn(async move {
                    let mut producer = pipeline.producer()?;
                    let mut last = 0;
                    for i in 1..=COMMITS {
                        last = producer.commit_async([("/sum", i), (&format!("/task/{task}"), 1)]).await?;
                    }
                    let durable = pipeline.wait_durable_async(last).await?;
                    assert!(durable >= last, "durable frontier {durable} below {last}");
                    Ok::<_, Error>(last)
                })
            })
            .collect();
        let mut last = 0;
        for task in tasks {
            last = last.max(task.await.expect("the task ran")?);
        }
        assert_eq!(last as i64, TASKS * COMMITS);
        let snapshot = pipeline.wait_sealed_async(last).await?;
        assert_eq!(snapshot.read("/sum"), Some(TASKS * COMMITS * (COMMITS + 1) / 2));
        assert!(pipeline.wait_durable_async(last).await? >= last);
        Ok::<_, Error>(last)
    })?;
    let pipeline = Arc::into_inner(pipeline).expect("the last handle");
    drop(pipeline.shutdown()?);
    let reopened = Pipeline::builder(Sum).shards(2).durable(&dir.0).build()?;
    let snapshot = reopened.snapshot();
    assert_eq!(snapshot.frontier(), last);
    assert_eq!(snapshot.read("/task/3"), Some(COMMITS));
    Ok(())
}

/// A merge that waits at a gate in `seal`, then panics on the record 13: the worker fails
/// with whatever the test has set up in the meantime still waiting.
struct PanicAfterGate {
    open: Arc<(Mutex<bool>, Condvar)>,
    entered: Arc<AtomicBool>,
}

impl Merge for PanicAfterGate {
    type Record = u64;
    type Output = u64;
    type Column = Outputs<u64>;

    fn seal(&self, records: impl Iterator<Item = (u64, u64)>) -> u64 {
        // Relaxed: the test polls it, then relies on the gate for everything else.
        self.entered.store(true, Ordering::Relaxed);
        let (lock, opened) = &*self.open;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let _open = opened.wait_timeout_while(guard, PATIENCE, |open| !*open);
        records.map(|(_, r)| if r == 13 { panic!("the test's worker failure") } else { r }).sum()
    }

    fn merge(&self, outputs: &[&u64]) -> u64 {
        outputs.iter().copied().sum()
    }
}

/// A worker that fails while a task awaits room and another awaits a commit ends both waits
/// with `WorkerPanicked`: only the failure's wake-up can end them (the queue never drains).
#[test]
fn a_worker_failure_ends_async_waits() -> Result<(), Error> {
    let open = Arc::new((Mutex::new(false), Condvar::new()));
    let entered = Arc::new(AtomicBool::new(false));
    let merge = PanicAfterGate { open: open.clone(), entered: entered.clone() };
    let pipeline = Arc::new(Pipeline::builder(merge).shards(1).queue_capacity(2).build()?);
    let mut producer = pipeline.producer()?;
    assert_eq!(producer.commit([("/boom", 13)])?, 1);
    eventually("the worker is in seal", || entered.load(Ordering::Relaxed));
    runtime().block_on(async {
        assert_eq!(producer.commit_async([("/a", 1), ("/a", 2)]).await?, 2);
        let sealed = {
            let pipeline = pipeline.clone();
            tokio::spawn(async move { pipeline.wait_sealed_async(2).await.map(|s| s.frontier()) })
        };
        let waited = AtomicBool::new(false);
        let commit = noting_pending(producer.commit_async([("/a", 3)]), &waited);
        let release = async {
            until("the commit waits for room", || waited.load(Ordering::Relaxed)).await;
            *open.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
            open.1.notify_all();
        };
        let (committed, ()) = tokio::join!(commit, release);
        assert_eq!(committed, Err(Error::WorkerPanicked));
        assert_eq!(sealed.await.expect("the waiter ran"), Err(Error::WorkerPanicked));
        Ok::<_, Error>(())
    })?;
    assert_eq!(pipeline.stats().commits, 2, "the refused commit took no number");
    Ok(())
}

/// Shutdown while a task awaits room: the task gets `Shutdown` (it had taken nothing), and the
/// shutdown's final snapshot holds every commit that was acknowledged.
#[test]
fn shutdown_ends_a_commit_awaiting_room() -> Result<(), Error> {
    let gate = Gate::closed();
    let _opener = gate.opener();
    let pipeline = Pipeline::builder(Gated(gate.clone())).shards(1).queue_capacity(2).build()?;
    let mut producer = pipeline.producer()?;
    assert_eq!(producer.commit([("/a", 1), ("/a", 2)])?, 1);
    assert!(gate.wait_for_a_waiter());
    assert_eq!(producer.commit([("/a", 3), ("/a", 4)])?, 2);
    let waited = Arc::new(AtomicBool::new(false));
    let runtime = runtime();
    let task = {
        let waited = waited.clone();
        runtime.spawn(async move { noting_pending(producer.commit_async([("/a", 5)]), &waited).await })
    };
    eventually("the commit waits for room", || waited.load(Ordering::Relaxed));
    let shutdown = std::thread::spawn(move || pipeline.shutdown().map(|last| last.read("/a")));
    let outcome = runtime.block_on(task).expect("the task ran");
    assert_eq!(outcome, Err(Error::Shutdown));
    gate.open();
    let last = shutdown.join().expect("the shutdown thread").map_err(Error::from)?;
    assert_eq!(last, Some(vec![(1, 1), (1, 2), (2, 3), (2, 4)]));
    Ok(())
}

/// The smallest executor there is: polls on this thread, parks it while the future is pending,
/// and is woken through a waker that unparks it.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// No runtime: under `block_on` above, a commit awaiting room and a wait for a commit held at
/// the gate both return `Pending` and are woken by the worker alone.
#[test]
fn the_futures_need_no_runtime() -> Result<(), Error> {
    let gate = Gate::closed();
    let _opener = gate.opener();
    let pipeline = Pipeline::builder(Gated(gate.clone())).shards(1).queue_capacity(2).build()?;
    let mut producer = pipeline.producer()?;
    assert_eq!(block_on(producer.commit_async([("/a", 1)]))?, 1);
    assert!(gate.wait_for_a_waiter());
    assert_eq!(block_on(producer.commit_async([("/a", 2), ("/a", 3)]))?, 2);

    // A commit awaiting room: the gate opens only once the future has returned `Pending`.
    let waited = Arc::new(AtomicBool::new(false));
    let helper = open_once_pending(gate.clone(), waited.clone());
    assert_eq!(block_on(noting_pending(producer.commit_async([("/a", 4)]), &waited))?, 3);
    helper.join().expect("the opener");
    let snapshot = block_on(pipeline.wait_sealed_async(3))?;
    assert_eq!(snapshot.read("/a"), Some(vec![(1, 1), (2, 2), (2, 3), (3, 4)]));

    // A wait for a commit its worker holds at the gate before publishing it.
    let held_gate = Gate::closed();
    let _held_opener = held_gate.opener();
    let held = Pipeline::builder(Gated(held_gate.clone())).shards(1).build()?;
    let mut writer = held.producer()?;
    assert_eq!(writer.commit([("/b", 7)])?, 1);
    assert!(held_gate.wait_for_a_waiter());
    let waited = Arc::new(AtomicBool::new(false));
    let helper = open_once_pending(held_gate.clone(), waited.clone());
    let snapshot = block_on(noting_pending(held.wait_sealed_async(1), &waited))?;
    helper.join().expect("the opener");
    assert_eq!(snapshot.read("/b"), Some(vec![(1, 7)]));
    Ok(())
}

/// Opens `gate` from another thread once `waited` says a future returned `Pending`.
fn open_once_pending(gate: Arc<Gate>, waited: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        eventually("the future waits", || waited.load(Ordering::Relaxed));
        gate.open();
    })
}

/// The README's "Async" example is `Pipeline::wait_sealed_async`'s doc example, word for word,
/// so `cargo test --doc` runs what the README shows.
#[test]
fn the_readme_async_example_is_a_doc_test() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = readme.split("### Async\n").nth(1).expect("an Async section");
    let block =
        section.split("```rust\n").nth(1).and_then(|rest| rest.split("```\n").next()).expect("a block");
    let doc: String = block
        .lines()
        .map(|line| if line.is_empty() { "    ///\n".to_owned() } else { format!("    /// {line}\n") })
        .collect();
    let source = std::fs::read_to_string(root.join("src/pipeline.rs")).expect("src/pipeline.rs");
    assert!(source.contains(&doc), "the README's Async example differs from wait_sealed_async's:\n{doc}");
}
