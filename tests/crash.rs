//! Crash-kill: a child process commits to a durable pipeline from two producers and reports
//! each commit and each `wait_durable` acknowledgment; the parent kills it with SIGKILL at a
//! random moment, reopens the directory, and checks what came back, round after round on the
//! same directory.
//!
//! What must hold after every kill:
//! - the recovered frontier is at least every acknowledged commit, and at most the last commit
//!   issued (each producer has at most one commit it had not reported yet);
//! - every commit up to the recovered frontier is there whole, with exactly its records (a
//!   record names the commit's content: see [`parts`]), and the ones reported match;
//! - layouts and reads equal the reference model of those commits;
//! - the next commit is numbered after the recovered frontier.
//!
//! A test binary without the harness: run with `LOCKSTEP_CRASH_CHILD` set, it is the child.
//! `LOCKSTEP_CRASH_ROUNDS` sets the number of kills (default 50).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{concat_reads, layouts, Commits, Rng};
use lockstep::merge::Concat;
use lockstep::{Durability, Error, Pipeline};

const DIVISOR: u64 = 4;
const MAX_LEVEL: u32 = 3;
const SHARDS: usize = 2;
const PRODUCERS: u64 = 2;

fn open(dir: &Path, durability: Durability) -> Result<Pipeline<Concat<u64>>, Error> {
    Pipeline::builder(Concat::<u64>::default())
        .shards(SHARDS)
        .divisor(DIVISOR)
        .max_level(MAX_LEVEL)
        .queue_capacity(64)
        .durable(dir)
        .durability(durability)
        .build()
}

/// The parts of the commit whose content is `value`: 1 to 3 parts over 11 paths, each record
/// `value * 4 + k`, so any one record tells the whole commit.
fn parts(value: u64) -> Vec<(String, u64)> {
    (0..1 + value % 3).map(|k| (format!("/k{}", (value * 7 + k * 5) % 11), value * 4 + k)).collect()
}

fn main() {
    if let Ok(dir) = std::env::var("LOCKSTEP_CRASH_CHILD") {
        child(Path::new(&dir));
    }
    let rounds = std::env::var("LOCKSTEP_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(50);
    let started = Instant::now();
    let kills = parent(rounds);
    println!(
        "test crash_kill_keeps_every_acknowledged_commit ... ok ({kills} kills in {:?})",
        started.elapsed()
    );
}

/// The child: commits until killed (or, should nobody kill it, for a few seconds), printing
/// `c COMMIT VALUE` after each commit and `a FRONTIER` after each acknowledgment.
fn child(dir: &Path) {
    let round: u64 = std::env::var("LOCKSTEP_CRASH_ROUND").ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    let durability = if round.is_multiple_of(2) { Durability::Written } else { Durability::Synced };
    let pipeline = open(dir, durability).expect("the child opens the directory");
    std::thread::scope(|scope| {
        for p in 0..PRODUCERS {
            let pipeline = &pipeline;
            scope.spawn(move || {
                let mut producer = pipeline.producer().expect("a producer");
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    let value = round << 40 | p << 32 | seq;
                    seq += 1;
                    let commit = producer.commit(parts(value)).expect("a commit");
                    // Stdout is line-buffered: a line is in the pipe once printed.
                    println!("c {commit} {value}");
                    if seq.is_multiple_of(8) {
                        let frontier =
                            pipeline.wait_durable(commit, Duration::from_secs(10)).expect("durable");
                        println!("a {frontier}");
                    }
                }
            });
        }
    });
    std::process::exit(0);
}

/// What the child reported before it died.
#[derive(Default)]
struct Reported {
    /// Commit number to the value it carried.
    commits: BTreeMap<u64, u64>,
    acknowledged: u64,
}

fn parent(rounds: u64) -> u64 {
    let dir = std::env::temp_dir().join(format!("lockstep-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().expect("the test binary");
    let mut rng = Rng::new(0x5eed);
    let mut known: Commits<u64> = Vec::new();
    let mut kills = 0;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .env("LOCKSTEP_CRASH_CHILD", &dir)
            .env("LOCKSTEP_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().expect("the child's stdout");
        let (lines, received) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the child's first acknowledgment (it has recovered and is committing), then
        // let it run a random while: the kill lands anywhere in its work.
        let first = received.recv_timeout(common::PATIENCE).expect("the child commits");
        let mut all = vec![first];
        std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        child.kill().expect("SIGKILL the child");
        let status = child.wait().expect("reap the child");
        assert!(!status.success(), "round {round}: the child ended before it was killed");
        kills += 1;
        reader.join().expect("the reader thread");
        all.extend(received.try_iter());
        let mut reported = Reported::default();
        for line in &all {
            let mut words = line.split(' ');
            match (
                words.next(),
                words.next().and_then(|w| w.parse().ok()),
                words.next().and_then(|w| w.parse().ok()),
            ) {
                (Some("c"), Some(commit), Some(value)) => {
                    reported.commits.insert(commit, value);
                }
                (Some("a"), Some(frontier), None) => {
                    reported.acknowledged = reported.acknowledged.max(frontier)
                }
                _ => {} // a line cut short by the kill
            }
        }
        known = check_round(&dir, round, &reported, known);
    }
    let _ = std::fs::remove_dir_all(&dir);
    kills
}

/// Reopens the directory after a kill and checks it (module doc); returns every commit up to
/// the recovered frontier.
fn check_round(dir: &Path, round: u64, reported: &Reported, before: Commits<u64>) -> Commits<u64> {
    let pipeline = open(dir, Durability::Written).expect("reopen after the kill");
    let snapshot = pipeline.snapshot();
    let recovered = snapshot.frontier();
    assert!(
        recovered >= reported.acknowledged,
        "round {round}: recovered {recovered}, below the acknowledged {}",
        reported.acknowledged
    );
    let issued = reported.commits.keys().next_back().copied().unwrap_or(0).max(before.len() as u64);
    assert!(
        recovered <= issued + PRODUCERS,
        "round {round}: recovered {recovered}, past every commit issued ({issued})"
    );
    assert!(
        recovered >= before.len() as u64,
        "round {round}: recovered {recovered} lost commits an earlier round had"
    );

    // Every commit's records, from the snapshot itself.
    let mut found: BTreeMap<u64, Vec<(String, u64)>> = BTreeMap::new();
    for path in snapshot.paths() {
        for (commit, record) in snapshot.read(path).unwrap_or_default() {
            found.entry(commit).or_default().push((path.to_owned(), record));
        }
    }
    let mut commits = before;
    for commit in commits.len() as u64 + 1..=recovered {
        let mut got =
            found.remove(&commit).unwrap_or_else(|| panic!("round {round}: commit {commit} is missing"));
        let value = got[0].1 / 4;
        let mut wanted = parts(value);
        got.sort();
        wanted.sort();
        assert_eq!(got, wanted, "round {round}: commit {commit} is not whole");
        if let Some(&said) = reported.commits.get(&commit) {
            assert_eq!(value, said, "round {round}: commit {commit} holds another commit's records");
        }
        commits.push(parts(value));
    }
    let expected = layouts(&commits, DIVISOR, MAX_LEVEL, recovered);
    for (path, records) in concat_reads(&commits, recovered) {
        assert_eq!(snapshot.segments(&path), expected[&path], "round {round}: segments of {path}");
        assert_eq!(snapshot.read(&path), Some(records), "round {round}: records of {path}");
    }
    let mut producer = pipeline.producer().expect("a producer");
    let next = producer.commit(parts(u64::MAX / 8)).expect("a commit after recovery");
    assert_eq!(next, recovered + 1, "round {round}: numbering resumes after the recovered frontier");
    commits.push(parts(u64::MAX / 8));
    drop(producer);
    let last = pipeline.shutdown().expect("a clean shutdown after recovery");
    assert_eq!(last.frontier(), recovered + 1);
    std::io::stdout().flush().ok();
    commits
}
