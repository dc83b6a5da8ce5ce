//! The clock's loom models: the frontier never passes an unfinished commit, batches advance it,
//! and closing is exact.

use super::*;
use loom::sync::Arc;
use loom::thread;

/// Bounded preemptions keep the models to seconds; the bugs they target (a missing
/// Release, a wrong load order, a race with the close) need only a few preemptions to show.
fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(body);
}

/// Commits `commits` times on `slot`, marking each commit's "parts" (Relaxed on purpose:
/// only the clock's orderings may make them visible). Returns how many were taken.
fn commit(clock: &Clock, parts: &[AtomicBool], slot: usize, commits: usize) -> u64 {
    let mut taken = 0;
    for _ in 0..commits {
        let Ok(commit) = clock.begin(slot) else { break };
        parts[commit as usize - 1].store(true, Ordering::Relaxed);
        clock.retire(slot);
        taken += 1;
    }
    taken
}

/// True if every commit `1..=up_to` has its parts visible here (Relaxed on purpose: seen
/// only if the clock's Acquire loads carried them).
fn enqueued(parts: &[AtomicBool], up_to: u64) -> bool {
    (1..=up_to).all(|commit| parts[commit as usize - 1].load(Ordering::Relaxed))
}

/// Producers commit `commits[i]` times each while a reader thread takes two readings of the
/// frontier: every commit at or below a reading was fully enqueued. Sets `went_back` if
/// some execution read the frontier going back.
fn frontier_model(commits: &'static [usize], went_back: &'static std::sync::atomic::AtomicBool) {
    model(move || {
        let clock = Arc::new(Clock::new(commits.len()));
        // parts[c - 1] stands for "commit c's parts are in the queue".
        let parts = Arc::new([AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(false)]);
        let total: usize = commits.iter().sum();
        let producers: Vec<_> = commits
            .iter()
            .map(|&commits| {
                let slot = clock.claim().expect("free slot");
                let (clock, parts) = (clock.clone(), parts.clone());
                thread::spawn(move || commit(&clock, &parts[..], slot, commits))
            })
            .collect();
        // A thread of its own: loom does not preempt the model's main thread before its
        // first access, so a reader there never reads after a whole commit.
        let reader = {
            let (clock, parts) = (clock.clone(), parts.clone());
            thread::spawn(move || {
                let mut kept = 0;
                for _ in 0..2 {
                    let frontier = clock.frontier();
                    assert!(
                        enqueued(&parts[..], frontier),
                        "frontier {frontier} passes an unfinished commit"
                    );
                    if frontier < kept {
                        went_back.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    kept = kept.max(frontier);
                }
            })
        };
        for producer in producers {
            producer.join().expect("producer thread");
        }
        reader.join().expect("reader thread");
        assert_eq!(clock.frontier(), total as u64);
    });
}

/// One producer commits twice, reusing its slot: a reading that sees the second
/// announcement in place of the first retire must still see the first commit's parts.
#[test]
fn loom_frontier_never_passes_an_unfinished_commit() {
    static WENT_BACK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    frontier_model(&[2], &WENT_BACK);
}

/// Two producers commit once each: readings are safe, and some execution reads the
/// frontier going back (a stale announcement after a reading, module doc), so the model
/// explores that interleaving; keeping the maximum is safe because each reading is.
#[test]
fn loom_frontier_goes_back_but_stays_safe() {
    static WENT_BACK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    frontier_model(&[1, 1], &WENT_BACK);
    assert!(
        WENT_BACK.load(std::sync::atomic::Ordering::Relaxed),
        "no execution read the frontier going back: the model misses that interleaving"
    );
}

/// One producer takes a batch of two numbers and advances past the first once its parts
/// are enqueued, as a batch waiting for room does, while a reader takes two readings: no
/// reading passes the second commit before its parts, and some execution reads the
/// frontier at the first commit while the batch is still in flight (the advance is what
/// lets a waiting batch's earlier commits be sealed).
#[test]
fn loom_a_batch_advances_the_frontier_commit_by_commit() {
    static MID_BATCH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    model(|| {
        let clock = Arc::new(Clock::new(1));
        let parts = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let done = Arc::new(AtomicBool::new(false));
        let slot = clock.claim().expect("free slot");
        let producer = {
            let (clock, parts, done) = (clock.clone(), parts.clone(), done.clone());
            thread::spawn(move || {
                let first = clock.begin_many(slot, 2).expect("open");
                parts[0].store(true, Ordering::Relaxed);
                clock.advance(slot, first + 1);
                parts[1].store(true, Ordering::Relaxed);
                clock.retire(slot);
                // Relaxed: only this model's own bookkeeping.
                done.store(true, Ordering::Relaxed);
            })
        };
        let reader = {
            let (clock, parts, done) = (clock.clone(), parts.clone(), done.clone());
            thread::spawn(move || {
                for _ in 0..2 {
                    let frontier = clock.frontier();
                    assert!(
                        enqueued(&parts[..], frontier),
                        "frontier {frontier} passes an unfinished commit"
                    );
                    if frontier == 1 && !done.load(Ordering::Relaxed) {
                        MID_BATCH.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        };
        producer.join().expect("producer thread");
        reader.join().expect("reader thread");
        assert_eq!(clock.frontier(), 2);
    });
    assert!(
        MID_BATCH.load(std::sync::atomic::Ordering::Relaxed),
        "no execution read the frontier inside the batch: the advance is never seen"
    );
}

/// Two producers (one committing twice) race `close`: the number `close` returns is exactly
/// the commits taken, none is taken after it, and once `all_idle` holds the closer sees
/// every issued commit's parts.
#[test]
fn loom_close_is_exact() {
    model(|| {
        let clock = Arc::new(Clock::new(2));
        let parts = Arc::new([AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(false)]);
        let producers: Vec<_> = [2, 1]
            .into_iter()
            .map(|commits| {
                let (clock, parts) = (clock.clone(), parts.clone());
                thread::spawn(move || {
                    let slot = clock.claim().expect("a free slot");
                    commit(&clock, &parts[..], slot, commits)
                })
            })
            .collect();
        let last = clock.close();
        while !clock.all_idle() {
            thread::yield_now();
        }
        assert!(enqueued(&parts[..], last), "all_idle before commit {last} was enqueued");
        assert_eq!(clock.issued(), last);
        let taken: u64 = producers.into_iter().map(|p| p.join().expect("producer thread")).sum();
        assert_eq!(taken, last, "a commit was taken after the close, or a taken one not counted");
        assert_eq!((clock.issued(), clock.frontier()), (last, last));
    });
}

/// Two closers race a producer: both return the same final count, which is what was taken.
#[test]
fn loom_racing_closers_agree() {
    model(|| {
        let clock = Arc::new(Clock::new(1));
        let producer = {
            let clock = clock.clone();
            thread::spawn(move || {
                let slot = clock.claim().expect("a free slot");
                let taken = clock.begin(slot).is_ok();
                if taken {
                    clock.retire(slot);
                }
                u64::from(taken)
            })
        };
        let closer = {
            let clock = clock.clone();
            thread::spawn(move || clock.close())
        };
        let here = clock.close();
        let there = closer.join().expect("closer thread");
        let taken = producer.join().expect("producer thread");
        assert_eq!((here, there), (taken, taken), "closers disagree, or miscount");
        assert_eq!(clock.issued(), taken);
    });
}

/// The clock's only taker commits at given numbers with gaps (2 and 4: 1 and 3 hold nothing),
/// retiring each, then advances to 5, while a reader takes two readings: no reading passes a
/// given commit before its parts, and some execution reads the frontier inside a gap (so the
/// model does explore readings between the takes).
#[test]
fn loom_given_numbers_never_pass_an_unfinished_commit() {
    static IN_GAP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    model(|| {
        let clock = Arc::new(Clock::new(1));
        // parts[c - 1]: commit c's parts are in the queue; 1, 3 and 5 have none, so are set.
        let parts = Arc::new([
            AtomicBool::new(true),
            AtomicBool::new(false),
            AtomicBool::new(true),
            AtomicBool::new(false),
            AtomicBool::new(true),
        ]);
        let slot = clock.claim().expect("free slot");
        let taker = {
            let (clock, parts) = (clock.clone(), parts.clone());
            thread::spawn(move || {
                for number in [2u64, 4] {
                    clock.begin_at(slot, number).expect("open, and ahead");
                    parts[number as usize - 1].store(true, Ordering::Relaxed);
                    clock.retire(slot);
                }
                clock.advance_to(5).expect("open");
            })
        };
        let reader = {
            let (clock, parts) = (clock.clone(), parts.clone());
            thread::spawn(move || {
                for _ in 0..2 {
                    let frontier = clock.frontier();
                    assert!(
                        enqueued(&parts[..], frontier),
                        "frontier {frontier} passes an unfinished commit"
                    );
                    if frontier == 1 || frontier == 3 {
                        IN_GAP.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        };
        taker.join().expect("taker thread");
        reader.join().expect("reader thread");
        assert_eq!((clock.issued(), clock.frontier()), (5, 5));
    });
    assert!(
        IN_GAP.load(std::sync::atomic::Ordering::Relaxed),
        "no execution read the frontier at a given commit's gap"
    );
}

/// A closer races the taker of given numbers: the number `close` returns is the last number
/// issued (a take the close beat is refused and not issued), and once `all_idle` holds the
/// closer sees the parts of every commit at or below it.
#[test]
fn loom_close_is_exact_with_given_numbers() {
    model(|| {
        let clock = Arc::new(Clock::new(1));
        let parts = Arc::new([AtomicBool::new(true), AtomicBool::new(false), AtomicBool::new(true)]);
        let slot = clock.claim().expect("free slot");
        let taker = {
            let (clock, parts) = (clock.clone(), parts.clone());
            thread::spawn(move || match clock.begin_at(slot, 2) {
                Ok(()) => {
                    parts[1].store(true, Ordering::Relaxed);
                    clock.retire(slot);
                    clock.advance_to(3).map_or(2, |()| 3)
                }
                Err(refused) => {
                    assert_eq!(refused, Given::Closed);
                    assert_eq!(clock.advance_to(3), Err(Given::Closed));
                    0
                }
            })
        };
        let last = clock.close();
        while !clock.all_idle() {
            thread::yield_now();
        }
        assert!(enqueued(&parts[..], last), "all_idle before commit {last} was enqueued");
        let issued = taker.join().expect("taker thread");
        assert_eq!((issued, clock.issued(), clock.frontier()), (last, last, last));
    });
}
