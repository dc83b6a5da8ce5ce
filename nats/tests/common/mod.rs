//! NATS servers for the tests: each on a free loopback port with JetStream in a temp dir of
//! its own, killed when dropped. The tests need `nats-server` (CI installs it); they fail, never
//! skip, without it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lockstep::merge::Concat;
use lockstep::{Pipeline, Snapshot};
use lockstep_nats::{Error, Follower, Partition, Publisher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Every wait in these tests: long enough for a slow shared machine, short enough to fail.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The tests' records: every one kept with its commit, so a record missing or doubled shows.
pub type M = Concat<u64>;

/// The server binary: `NATS_SERVER`, else `nats-server` on the path, else Debian's place.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(path);
    }
    for dir in
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default()
    {
        let candidate = dir.join("nats-server");
        if candidate.is_file() {
            return candidate;
        }
    }
    let debian = PathBuf::from("/usr/sbin/nats-server");
    assert!(debian.is_file(), "nats-server is not installed (apt-get install nats-server; .ci/run does)");
    debian
}

/// A free loopback port (free when asked: the server takes it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

/// One nats-server with JetStream.
pub struct Server {
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    owns_dir: bool,
}

impl Server {
    /// A single server with JetStream in a fresh temp dir.
    pub fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lockstep-nats-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let port = free_port();
        Self::with_args(port, dir, Vec::new(), true)
    }

    /// A server on `port` storing in `dir`, with extra arguments (a cluster's).
    pub fn with_args(port: u16, dir: PathBuf, args: Vec<String>, owns_dir: bool) -> Self {
        let mut server = Self { port, dir, args, child: None, owns_dir };
        server.launch();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let child = Command::new(binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: what it wrote to its files stays, in the OS's cache).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A temp dir removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("lockstep-nats-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small seeded generator (xorshift), so runs are repeatable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Commits by stream sequence, as the publishers got them back.
pub type Commits = BTreeMap<u64, Vec<(String, u64)>>;

/// Publishes commits of 1 to 3 parts on paths `/p0` to `/p8` (each record names publisher `p`
/// and its count), a millisecond apart, until `stopped`; records each under its sequence in
/// `commits`, and fails if a sequence is given twice.
pub async fn publish_until(
    mut publisher: Publisher,
    p: u64,
    mut rng: Rng,
    commits: Arc<Mutex<Commits>>,
    stopped: watch::Receiver<bool>,
) {
    let mut i = 0u64;
    while !*stopped.borrow() {
        let parts: Vec<(String, u64)> =
            (0..1 + rng.below(3)).map(|_| (format!("/p{}", rng.below(9)), p * 1_000_000 + i)).collect();
        let sequence = publisher.publish(&parts).await.expect("published");
        let doubled = commits.lock().expect("the commits").insert(sequence, parts);
        assert!(doubled.is_none(), "sequence {sequence} given twice");
        i += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A sequenced pipeline of `shards` shards, divisor 2, four levels.
pub fn sequenced(shards: usize) -> Pipeline<M> {
    Pipeline::builder(M::default())
        .shards(shards)
        .divisor(2)
        .max_level(4)
        .sequenced()
        .build()
        .expect("a pipeline")
}

/// The in-process pipeline fed the same sequence.
pub fn reference(commits: &BTreeMap<u64, Vec<(String, u64)>>) -> Snapshot<M> {
    let pipeline = sequenced(1);
    let mut sequencer = pipeline.sequencer().expect("the sequencer");
    for (&number, parts) in commits {
        sequencer.commit_at(number, parts.iter().map(|(p, r)| (p.as_str(), *r))).expect("commit");
    }
    drop(sequencer);
    pipeline.shutdown().expect("shutdown")
}

/// Every path `snapshot` has equals the reference's, segments and read; a replica has every
/// path, a partition exactly its own.
pub fn agrees(snapshot: &Snapshot<M>, reference: &Snapshot<M>, partition: Partition) {
    assert_eq!(snapshot.frontier(), reference.frontier());
    let expected: Vec<String> = reference.paths().filter(|p| partition.keeps(p)).map(String::from).collect();
    let mut got: Vec<String> = snapshot.paths().map(String::from).collect();
    got.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(got, expected_sorted, "{partition:?} keeps the wrong paths");
    for path in &expected {
        assert_eq!(snapshot.segments(path.as_str()), reference.segments(path.as_str()), "segments of {path}");
        assert_eq!(snapshot.read(path.as_str()), reference.read(path.as_str()), "read of {path}");
    }
}

/// Runs a follower until `stop` turns true; hands back the follower and how it ended.
pub fn spawn_follower(
    mut follower: Follower<M>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<(Follower<M>, Result<(), Error>)> {
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        let outcome = follower.run(stopped).await;
        (follower, outcome)
    })
}

/// Waits (without blocking the runtime) until the pipeline's frontier reaches `commit`.
pub async fn caught_up(pipeline: &Pipeline<M>, commit: u64) {
    tokio::time::timeout(PATIENCE, pipeline.wait_sealed_async(commit))
        .await
        .unwrap_or_else(|_| panic!("frontier {} never reached {commit}", pipeline.snapshot().frontier()))
        .expect("no worker failed");
}
