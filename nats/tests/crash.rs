//! Crash-kill of a durable follower: a child process follows a live stream into a durable
//! sequenced pipeline while two publishers keep publishing; the parent kills it with SIGKILL
//! at a random moment, reopens its directory, checks what came back, and starts it again on the
//! same directory, round after round. Finally a child follows to the end of the stream and
//! exits, and the parent checks its directory against one in-process pipeline fed the same
//! sequence.
//!
//! What must hold after every kill:
//! - the recovered frontier is at least every frontier the child reported durable
//!   (`wait_durable`), and no higher than the stream's last sequence;
//! - every path's segments and read equal the reference's cut at the recovered frontier, so
//!   nothing up to it is missing or doubled.
//!
//! And at the end, the follower restarted on that directory has every commit of the stream,
//! once: its layout and reads equal the reference's.
//!
//! A test binary without the harness: run with `LOCKSTEP_NATS_CRASH_CHILD` set, it is the
//! child. `LOCKSTEP_NATS_CRASH_ROUNDS` sets the number of kills (default 3).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{agrees, publish_until, reference, Commits, Rng, Server, TempDir, M, PATIENCE};
use lockstep::{Durability, Pipeline};
use lockstep_nats::{Follower, Partition, Publisher, StreamSpec};

const STREAM: &str = "crash";

/// The follower's pipeline: two shards, divisor 2, four levels, durable at `Written` (what
/// survives a SIGKILL: the OS has every write).
fn open(dir: &Path) -> Result<Pipeline<M>, lockstep::Error> {
    Pipeline::builder(M::default())
        .shards(2)
        .divisor(2)
        .max_level(4)
        .sequenced()
        .durable(dir)
        .durability(Durability::Written)
        .build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

fn main() {
    if let Ok(dir) = std::env::var("LOCKSTEP_NATS_CRASH_CHILD") {
        child(Path::new(&dir));
        return;
    }
    let rounds = std::env::var("LOCKSTEP_NATS_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let started = Instant::now();
    parent(rounds);
    println!(
        "test a_killed_durable_follower_restarts_and_converges ... ok ({rounds} kills in {:?})",
        started.elapsed()
    );
}

/// The child: follows the stream at `LOCKSTEP_NATS_CRASH_URL` into the durable pipeline in
/// `dir`, printing `a FRONTIER` each time its durable frontier moves. With
/// `LOCKSTEP_NATS_CRASH_UNTIL=N` it stops at frontier `N`, shuts down and exits 0; without it, it
/// follows until killed (or, should nobody kill it, for a minute, and fails).
fn child(dir: &Path) {
    let url = std::env::var("LOCKSTEP_NATS_CRASH_URL").expect("the server's url");
    let until: Option<u64> = std::env::var("LOCKSTEP_NATS_CRASH_UNTIL").ok().and_then(|n| n.parse().ok());
    let runtime = runtime();
    let pipeline = Arc::new(open(dir).expect("the child opens the directory"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = {
        let pipeline = Arc::clone(&pipeline);
        runtime.spawn(async move {
            let client = async_nats::connect(url).await.expect("the child connects");
            let js = async_nats::jetstream::new(client);
            let spec = StreamSpec::new(STREAM);
            let mut follower =
                Follower::new(&js, &spec, &pipeline, Partition::All).await.expect("a follower");
            let mut stopped = stopped;
            follower
                .run(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        })
    };
    let deadline = Instant::now() + PATIENCE;
    let mut reported = pipeline.snapshot().frontier();
    println!("a {reported}");
    loop {
        assert!(Instant::now() < deadline, "the child was never killed nor reached its end");
        assert!(!task.is_finished(), "the child's follower stopped: {:?}", runtime.block_on(task));
        let frontier = pipeline.snapshot().frontier();
        if frontier > reported {
            let durable = pipeline.wait_durable(frontier, PATIENCE).expect("durable");
            // Stdout is line-buffered: a line is in the pipe once printed.
            println!("a {durable}");
            reported = durable;
        }
        if until.is_some_and(|until| reported >= until) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.send(true).expect("the follower listens");
    runtime.block_on(task).expect("the follower's task").expect("the follower ends cleanly");
    let pipeline = Arc::into_inner(pipeline).expect("the follower let go of the pipeline");
    pipeline.shutdown().expect("shutdown");
    std::process::exit(0);
}

/// A started child and the lines it prints.
struct Running {
    child: Child,
    lines: Receiver<String>,
    /// The highest durable frontier it reported.
    durable: u64,
}

fn spawn(dir: &Path, url: &str, until: Option<u64>) -> Running {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command.env("LOCKSTEP_NATS_CRASH_CHILD", dir).env("LOCKSTEP_NATS_CRASH_URL", url);
    if let Some(until) = until {
        command.env("LOCKSTEP_NATS_CRASH_UNTIL", until.to_string());
    }
    let mut child = command.stdout(Stdio::piped()).spawn().expect("spawn the child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Running { child, lines, durable: 0 }
}

impl Running {
    /// Reads the child's lines until its durable frontier reaches `at_least`.
    fn wait_for(&mut self, at_least: u64) {
        let deadline = Instant::now() + PATIENCE;
        while self.durable < at_least {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("the child's durable frontier stayed at {} below {at_least}", self.durable)
            });
            self.take(&line);
        }
    }

    fn take(&mut self, line: &str) {
        // A line cut short by the kill parses as nothing.
        if let Some(frontier) = line.strip_prefix("a ").and_then(|n| n.parse().ok()) {
            self.durable = self.durable.max(frontier);
        }
    }

    /// SIGKILL, then every line it printed before it died.
    fn kill(mut self) -> u64 {
        self.child.kill().expect("SIGKILL the child");
        let status = self.child.wait().expect("reap the child");
        assert!(!status.success(), "the child ended before it was killed");
        // The reader thread ends at the pipe's end: every line printed is then in the channel.
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.take(&line);
        }
        self.durable
    }
}

fn parent(rounds: u64) {
    let server = Server::start("crash");
    let dir = TempDir::new("crash-follower");
    let runtime = runtime();
    let js = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.expect("connects to the test server");
        async_nats::jetstream::new(client)
    });
    runtime.block_on(StreamSpec::new(STREAM).get_or_create(&js)).expect("the stream");

    // Two publishers publish until told to stop, a commit about every millisecond each, so the
    // stream grows while the children follow it: every kill lands mid-stream.
    let commits: Arc<Mutex<Commits>> = Arc::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let publishers: Vec<_> = (0..2u64)
        .map(|p| {
            let (js, commits, stopped) = (js.clone(), Arc::clone(&commits), stopped.clone());
            runtime.spawn(publish_until(Publisher::new(js, STREAM), p, Rng::new(p + 7), commits, stopped))
        })
        .collect();

    let mut rng = Rng::new(0x5eed);
    let mut recovered = 0;
    for round in 0..rounds {
        // A backlog of 200 commits or more waits for the child when it starts.
        let _ = until_complete(&commits, recovered + 200);
        let mut running = spawn(&dir.0, &server.url(), None);
        // It has recovered and follows, through its backlog and on while the stream grows: let
        // it apply a while, then kill it anywhere.
        running.wait_for(recovered + 50);
        std::thread::sleep(Duration::from_millis(rng.below(40)));
        let durable = running.kill();
        let pipeline = open(&dir.0).expect("reopen after the kill");
        let frontier = pipeline.snapshot().frontier();
        assert!(frontier >= durable, "round {round}: recovered {frontier}, below the durable {durable}");
        assert!(frontier >= recovered, "round {round}: recovered {frontier}, below an earlier {recovered}");
        let snapshot = pipeline.shutdown().expect("shutdown");
        // Every commit up to the recovered frontier was acknowledged to its publisher by now
        // (each publisher has at most one commit outstanding, above what the child read).
        let cut = until_complete(&commits, frontier);
        agrees(&snapshot, &reference(&cut), Partition::All);
        recovered = frontier;
    }

    stop.send(true).expect("the publishers listen");
    for publisher in publishers {
        runtime.block_on(publisher).expect("a publisher");
    }
    let commits = commits.lock().expect("the commits").clone();
    let last = *commits.keys().next_back().expect("commits");
    assert_eq!(commits.keys().copied().collect::<Vec<_>>(), (1..=last).collect::<Vec<_>>(), "gapless");
    // The restarted follower goes to the end of the stream and exits.
    let mut running = spawn(&dir.0, &server.url(), Some(last));
    running.wait_for(last);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = running.child.try_wait().expect("the child's status") {
            break status;
        }
        assert!(Instant::now() < deadline, "the last child did not exit");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "the last child failed: {status}");
    let pipeline = open(&dir.0).expect("reopen at the end");
    let snapshot = pipeline.shutdown().expect("shutdown");
    assert_eq!(snapshot.frontier(), last);
    agrees(&snapshot, &reference(&commits), Partition::All);
}

/// The commits up to `frontier`, once the publishers have recorded all of them.
fn until_complete(commits: &Mutex<Commits>, frontier: u64) -> Commits {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let cut: Commits =
            commits.lock().expect("the commits").range(..=frontier).map(|(&n, p)| (n, p.clone())).collect();
        if cut.len() as u64 == frontier {
            return cut;
        }
        assert!(Instant::now() < deadline, "the publishers never recorded every commit up to {frontier}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
