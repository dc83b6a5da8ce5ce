//! lockstep behind NATS JetStream (`--engine nats`): each producer publishes its commits to a
//! stream through a `lockstep_nats::Publisher`, one commit a message (`--parts-per-commit`
//! parts in it), and a `Follower` reads the stream into a sequenced pipeline. The stream's
//! sequence is the commit number.
//!
//! The server is a `nats-server -js` the engine starts on a free loopback port with its store
//! in a fresh temp dir (file storage, one replica), or the one `--nats URL` names. Each run
//! uses a stream of its own, removed (with the temp dir, or from the named server) when the
//! run ends.
//!
//! - **Publishing.** A producer keeps up to `--in-flight` commits in flight
//!   (`Publisher::send`) and waits for the oldest acknowledgment beyond that. A commit counts
//!   as issued when it is handed to the connection; every one is acknowledged before the run
//!   ends (a committer waits for its last ones when it is dropped).
//! - **End to end.** A producer whose acknowledged commits run more than [`LAG`] ahead of the
//!   follower's frontier waits for the follower, as a full queue holds back a lockstep
//!   producer: over the window, commits issued and commits made visible differ by at most that
//!   backlog, so records/s is the end-to-end rate, publish to visible.
//! - **Visible.** A sampled commit's latency runs from the producer's stamp, before the
//!   publish, until the follower's pipeline shows it (`wait_sealed` of its sequence, called by a
//!   thread of its own that takes the samples in turn; its lateness only adds to the figure).
//!   The sequence is known once the acknowledgment is in, which the producer takes at its next
//!   commit at the latest: at a low fixed rate, up to one interval between commits is added.
//! - **Ingest.** After the window, the run's messages are read again from the stream twice: by
//!   a bare ordered consumer that only counts them, and by a follower into a fresh pipeline of
//!   the same shape. The ratio of the two rates is the follower's share of the rate at which
//!   JetStream delivers those same messages (in the report's notes).
//!
//! The `limit` row of a nats run ([`measure_limit`]) is JetStream alone: the same producers
//! publish the same messages the same way to a bare stream on a server of the same kind, and an
//! ordered consumer reads them; no pipeline.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::Context;
use crossbeam::channel::{bounded, Sender};
use futures_util::{FutureExt, StreamExt};
use hdrhistogram::Histogram;
use lockstep::{DiscardSink, Pipeline, Retention};
use lockstep_nats::{Follower, Partition, Publisher, StreamSpec};

use super::{Committer, Config, Engine, Failure, Finish};
use crate::align::Layout;
use crate::format::group;
use crate::limit::Limit;
use crate::record::Kind;
use crate::workload::{Part, Workload};

/// How far (in commits) a producer's acknowledged commits may run ahead of the follower's
/// frontier before it waits for the follower.
pub const LAG: u64 = 8192;

/// Every wait on the server or the follower: long enough for a slow shared machine, short
/// enough that a stuck run ends with an error.
const PATIENCE: Duration = Duration::from_secs(60);

/// Sampled commits waiting for the visible-latency thread; beyond this, samples are dropped.
const SAMPLES: usize = 1 << 16;

/// The limit's warm-up, and its windows (as `crate::limit`, longer: a publish round trip is
/// tens of microseconds, not tens of nanoseconds).
const LIMIT_WARM_UP: Duration = Duration::from_millis(500);
const LIMIT_WINDOWS: u32 = 5;
const LIMIT_WINDOW: Duration = Duration::from_millis(400);
/// How long the limit is measured, for the note before it.
pub const LIMIT_FOR: Duration = Duration::from_millis(2500);

/// `--nats` and `--in-flight`.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// An existing server; `None` starts one per run.
    pub url: Option<String>,
    /// Commits each producer keeps in flight.
    pub in_flight: usize,
    /// Parts in each message (`--parts-per-commit`), for the ingest figures in records.
    pub parts_per_commit: usize,
}

/// A `nats-server -js` on a free loopback port with its store in a fresh temp dir, killed and
/// removed when dropped.
#[derive(Debug)]
struct Server {
    child: Child,
    dir: PathBuf,
    url: String,
}

/// Run count in this process, for names of temp dirs and streams.
static RUNS: AtomicU64 = AtomicU64::new(0);

fn unique(what: &str) -> String {
    // Relaxed: a counter for names.
    format!("loadgen-{what}-{}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed))
}

/// The server binary: `NATS_SERVER`, else `nats-server` on the path, else Debian's place.
fn binary() -> Result<PathBuf, Failure> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "--engine nats: nats-server was not found (install it: apt-get install nats-server; or set \
             NATS_SERVER, or give --nats URL)"
                .into()
        })
}

impl Server {
    fn start() -> Result<Self, Failure> {
        let binary = binary()?;
        let dir = std::env::temp_dir().join(unique("nats"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let server = Self { child, dir, url: format!("nats://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("nats-server did not listen on port {port} within 10 s").into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server (started, or named by `--nats`), a runtime for the client, and a fresh stream on it.
#[derive(Debug)]
struct Setup {
    runtime: tokio::runtime::Runtime,
    js: Context,
    spec: StreamSpec,
    /// Killed (and its store removed) last: fields drop in order, the client's runtime first.
    server: Option<Server>,
}

impl Setup {
    fn new(config: &NatsConfig) -> Result<Self, Failure> {
        // Two threads: the client's connection and the follower's reading share them; the
        // producers' threads run their own publishing (`block_on`).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("loadgen-nats")
            .enable_all()
            .build()?;
        let server = match &config.url {
            Some(_) => None,
            None => Some(Server::start()?),
        };
        let url = config.url.clone().or_else(|| server.as_ref().map(|s| s.url.clone())).unwrap_or_default();
        let spec = StreamSpec::new(unique("stream"));
        let js = runtime.block_on(async {
            let client = async_nats::connect(url.as_str())
                .await
                .map_err(|e| format!("cannot connect to NATS at {url}: {e}"))?;
            let js = async_nats::jetstream::new(client);
            // A server just started may not serve JetStream for a moment: asked again until
            // it does.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match spec.get_or_create(&js).await {
                    Ok(_) => return Ok::<_, Failure>(js),
                    Err(error) if Instant::now() > deadline => return Err(error.into()),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })?;
        Ok(Self { runtime, js, spec, server })
    }

    /// The stream's last sequence.
    fn last(&self) -> Result<u64, Failure> {
        self.runtime.block_on(async {
            let stream = self.js.get_stream(&self.spec.name).await?;
            Ok(stream.get_info().await?.state.last_sequence)
        })
    }

    /// Removes the stream from a server this run did not start (a started one goes whole).
    fn remove(self) -> Result<(), Failure> {
        if self.server.is_none() {
            self.runtime.block_on(self.js.delete_stream(&self.spec.name))?;
        }
        Ok(())
    }
}

/// A commit in flight: its acknowledgment (the sequence), waited for by `InFlight::acked`.
type Acked = Pin<Box<dyn Future<Output = Result<u64, lockstep_nats::Error>> + Send>>;

/// One producer's publishing: a publisher and its commits in flight.
struct Publishing<R> {
    handle: tokio::runtime::Handle,
    publisher: Publisher,
    in_flight: VecDeque<(Acked, Option<Instant>)>,
    window: usize,
    /// The parts of the commit being published, by path name: reused, one allocation a run.
    named: Vec<(&'static str, R)>,
}

impl<R: serde::Serialize> Publishing<R> {
    fn new(setup: &Setup, window: usize) -> Self {
        Self {
            handle: setup.runtime.handle().clone(),
            publisher: Publisher::new(setup.js.clone(), setup.spec.subject.clone()),
            in_flight: VecDeque::with_capacity(window + 1),
            window: window.max(1),
            named: Vec::new(),
        }
    }

    /// Hands one commit to the connection, after taking the acknowledgments already in (the
    /// oldest first); waits for the oldest when the window is full. Calls `acked` with the
    /// sequence and stamp of each commit acknowledged: a sampled commit is handed on as soon as
    /// its producer sees the acknowledgment, at its next commit at the latest, never a whole
    /// window later.
    fn send(
        &mut self,
        parts: &mut Vec<Part<R>>,
        stamp: Option<Instant>,
        mut acked: impl FnMut(u64, Option<Instant>) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        {
            // Polled once each, inside the runtime (their timers need it).
            let _runtime = self.handle.enter();
            while let Some((front, _)) = self.in_flight.front_mut() {
                let Some(sequence) = front.as_mut().now_or_never() else { break };
                let (_, stamp) = self.in_flight.pop_front().ok_or("no commit in flight")?;
                acked(sequence?, stamp)?;
            }
        }
        self.named.clear();
        self.named.extend(parts.drain(..).map(|(path, record)| (path.name(), record)));
        let sent = self.handle.block_on(self.publisher.send(&self.named))?;
        self.in_flight.push_back((Box::pin(sent.acked()), stamp));
        if self.in_flight.len() > self.window {
            let (sequence, stamp) = self.settle()?;
            acked(sequence, stamp)?;
        }
        Ok(())
    }

    /// Waits for the oldest commit in flight.
    fn settle(&mut self) -> Result<(u64, Option<Instant>), Failure> {
        let (oldest, stamp) = self.in_flight.pop_front().ok_or("no commit in flight")?;
        Ok((self.handle.block_on(oldest)?, stamp))
    }

    /// Waits for every commit in flight.
    fn flush(&mut self) -> Result<(), Failure> {
        while !self.in_flight.is_empty() {
            self.settle()?;
        }
        Ok(())
    }
}

/// The follower on its task, and how to stop it.
type Following<M> = (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<(Follower<M>, Result<(), lockstep_nats::Error>)>,
);

fn follow<M>(setup: &Setup, pipeline: &Pipeline<M>) -> Result<Following<M>, Failure>
where
    M: lockstep::merge::Merge,
    M::Record: serde::de::DeserializeOwned,
{
    let mut follower =
        setup.runtime.block_on(Follower::new(&setup.js, &setup.spec, pipeline, Partition::All))?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = setup.runtime.spawn(async move {
        let outcome = follower
            .run(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await;
        (follower, outcome)
    });
    Ok((stop, task))
}

/// Stops a follower and hands back how it ended.
fn unfollow<M: lockstep::merge::Merge>(setup: &Setup, (stop, task): Following<M>) -> Result<(), Failure> {
    let _ = stop.send(true);
    let (follower, outcome) = setup.runtime.block_on(task)?;
    drop(follower);
    Ok(outcome?)
}

fn sequenced<K: Kind>(config: &Config) -> Result<Pipeline<K::Merge>, Failure> {
    let mut builder = super::lockstep::builder::<K>(config).sequenced();
    if !config.retain_all {
        builder = builder.sink(DiscardSink).retain(Retention::Newest(1));
    }
    Ok(builder.build()?)
}

/// The visible-latency thread: where sampled commits go (sequence, stamp), and the thread.
type Sampler = (Sender<(u64, Instant)>, JoinHandle<Result<(), lockstep::Error>>);

/// The engine.
#[derive(Debug)]
pub struct NatsEngine<K: Kind> {
    setup: Setup,
    pipeline: Arc<Pipeline<K::Merge>>,
    following: Option<Following<K::Merge>>,
    /// Publish-to-visible of the measured window.
    visible: Arc<Mutex<Histogram<u64>>>,
    sampler: Option<Sampler>,
    /// The first failure a committer met where it could not return it (when dropped).
    failure: Arc<Mutex<Option<String>>>,
    config: Config,
    in_flight: usize,
}

/// A producer's handle: its publishing, and the follower's pipeline to wait for.
#[derive(Debug)]
pub struct NatsCommitter<K: Kind> {
    publishing: Publishing<K::Record>,
    pipeline: Arc<Pipeline<K::Merge>>,
    samples: Sender<(u64, Instant)>,
    failure: Arc<Mutex<Option<String>>>,
}

impl<R> std::fmt::Debug for Publishing<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publishing").field("in_flight", &self.in_flight.len()).finish_non_exhaustive()
    }
}

impl<K: Kind> Engine<K> for NatsEngine<K> {
    type Committer = NatsCommitter<K>;

    fn build(config: &Config) -> Result<Self, Failure> {
        let nats = config.nats.clone().ok_or("--engine nats without its settings")?;
        let setup = Setup::new(&nats)?;
        let pipeline = Arc::new(sequenced::<K>(config)?);
        let following = follow(&setup, &pipeline)?;
        let visible = Arc::new(Mutex::new(crate::latency::histogram()));
        let (samples, taken) = bounded::<(u64, Instant)>(SAMPLES);
        let thread = {
            let (pipeline, visible) = (Arc::clone(&pipeline), Arc::clone(&visible));
            std::thread::Builder::new().name("loadgen-nats-visible".into()).spawn(move || {
                // Ends when every sender is gone: the committers and the engine's own.
                for (sequence, stamp) in taken {
                    pipeline.wait_sealed(sequence, PATIENCE)?;
                    let nanos = crate::latency::nanos(stamp.elapsed());
                    if let Ok(mut visible) = visible.lock() {
                        crate::latency::record(&mut visible, nanos);
                    }
                }
                Ok(())
            })?
        };
        Ok(Self {
            setup,
            pipeline,
            following: Some(following),
            visible,
            sampler: Some((samples, thread)),
            failure: Arc::default(),
            config: config.clone(),
            in_flight: nats.in_flight,
        })
    }

    fn committer(&self, _index: usize) -> Result<NatsCommitter<K>, Failure> {
        let samples = self.sampler.as_ref().map(|(s, _)| s.clone()).ok_or("the engine is finished")?;
        Ok(NatsCommitter {
            publishing: Publishing::new(&self.setup, self.in_flight),
            pipeline: Arc::clone(&self.pipeline),
            samples,
            failure: Arc::clone(&self.failure),
        })
    }

    fn measuring(&self) {
        if let Ok(mut visible) = self.visible.lock() {
            visible.reset();
        }
    }

    fn visible(&self) -> Histogram<u64> {
        self.visible.lock().map(|v| v.clone()).unwrap_or_else(|_| crate::latency::histogram())
    }

    fn frontier(&self) -> Option<u64> {
        Some(self.pipeline.snapshot().frontier())
    }

    fn progress(&self) -> Option<String> {
        Some(format!("the follower's frontier at {}", group(self.pipeline.snapshot().frontier())))
    }

    fn finish(mut self) -> Result<Finish, Failure> {
        if let Some(failure) = self.failure.lock().ok().and_then(|mut f| f.take()) {
            return Err(failure.into());
        }
        // Every committer is dropped, so every commit is acknowledged: the stream's last
        // sequence is the last commit.
        let last = self.setup.last()?;
        self.pipeline.wait_sealed(last, PATIENCE)?;
        if let Some(following) = self.following.take() {
            unfollow(&self.setup, following)?;
        }
        if let Some((samples, thread)) = self.sampler.take() {
            drop(samples);
            thread.join().map_err(|_| "the visible-latency thread panicked")??;
        }
        let visible_latency = self.visible();
        let pipeline = Arc::try_unwrap(self.pipeline).map_err(|_| "the pipeline is still shared")?;
        let snapshot = pipeline.shutdown()?;
        let mut layout = Layout::new(self.config.max_level);
        for path in snapshot.paths() {
            layout.add_path(path, &snapshot.segments(path), self.config.divisor, snapshot.frontier());
        }
        drop(snapshot);
        let mut notes = vec![format!(
            "{} commits published ({} in flight per producer, the follower at most {} commits behind)",
            group(last),
            self.in_flight,
            group(LAG),
        )];
        notes.extend(ingest::<K>(&self.setup, &self.config, last)?);
        self.setup.remove()?;
        Ok(Finish {
            final_commit: Some(last),
            layout: Some(layout),
            visible_latency,
            notes,
            ..Finish::default()
        })
    }
}

/// The run's messages read again from the stream: by a bare ordered consumer, then by a
/// follower into a fresh pipeline; their rates and ratio, as notes.
fn ingest<K: Kind>(setup: &Setup, config: &Config, last: u64) -> Result<Vec<String>, Failure> {
    if last == 0 {
        return Ok(Vec::new());
    }
    let (bare, records) = setup.runtime.block_on(async {
        let started = Instant::now();
        let stream = setup.js.get_stream(&setup.spec.name).await?;
        let consumer = stream.create_consumer(OrderedConfig::default()).await?;
        let mut messages = consumer.messages().await?;
        let (mut read, mut bytes) = (0u64, 0u64);
        while read < last {
            let message = tokio::time::timeout(PATIENCE, messages.next())
                .await
                .map_err(|_| "the bare consumer stalled")?
                .ok_or("the bare consumer ended")??;
            bytes += message.payload.len() as u64;
            read += 1;
        }
        std::hint::black_box(bytes);
        Ok::<_, Failure>((started.elapsed(), read))
    })?;
    let pipeline = sequenced::<K>(config)?;
    let started = Instant::now();
    let following = follow(setup, &pipeline)?;
    pipeline.wait_sealed(last, PATIENCE)?;
    let followed = started.elapsed();
    unfollow(setup, following)?;
    pipeline.shutdown()?;
    let rate = |d: Duration| last as f64 / d.as_secs_f64().max(1e-9);
    let parts = config_parts(config);
    Ok(vec![
        format!(
            "ingest, the run's {} messages read again from the stream: bare ordered consumer {} messages/s ({} records/s); follower into a fresh pipeline {} messages/s ({} records/s): {:.2}x the bare consume rate",
            group(records),
            group(rate(bare) as u64),
            group((rate(bare) * parts) as u64),
            group(rate(followed) as u64),
            group((rate(followed) * parts) as u64),
            bare.as_secs_f64() / followed.as_secs_f64().max(1e-9),
        ),
    ])
}

/// Parts per message, as the config carries it.
fn config_parts(config: &Config) -> f64 {
    config.nats.as_ref().map_or(1, |nats| nats.parts_per_commit) as f64
}

impl<K: Kind> Committer<K> for NatsCommitter<K> {
    fn commit(&mut self, parts: &mut Vec<Part<K::Record>>, stamp: Option<Instant>) -> Result<(), Failure> {
        let (samples, pipeline) = (&self.samples, &self.pipeline);
        self.publishing.send(parts, stamp, |sequence, stamp| {
            if let Some(stamp) = stamp {
                // Dropped when the sampling thread is that far behind (a figure, not a commit).
                let _ = samples.try_send((sequence, stamp));
            }
            // The end-to-end bound: never more than LAG commits ahead of the follower.
            if sequence > LAG && pipeline.snapshot().frontier() < sequence - LAG {
                pipeline.wait_sealed(sequence - LAG, PATIENCE)?;
            }
            Ok(())
        })
    }
}

impl<K: Kind> Drop for NatsCommitter<K> {
    fn drop(&mut self) {
        // Every commit issued is acknowledged before the run's figures are taken.
        if let Err(error) = self.publishing.flush() {
            if let Ok(mut failure) = self.failure.lock() {
                failure.get_or_insert_with(|| format!("a producer's last commits: {error}"));
            }
        }
    }
}

/// The `limit` row of a nats run: JetStream alone. `config.producers` threads publish the
/// workload's messages as the engine's producers do (same encoding, ids and window) to a bare
/// stream on a fresh server (or `--nats`), with the same bound on how far they may run ahead of
/// the reader; an ordered consumer reads them and only counts them. The rate is records read a
/// second: the best of five 400 ms windows after a warm-up, with their median.
pub fn measure_limit<K: Kind>(
    config: &Config,
    workload: &Workload,
    interrupted: &AtomicBool,
) -> Result<Limit, Failure> {
    let nats = config.nats.clone().ok_or("--engine nats without its settings")?;
    let setup = Setup::new(&nats)?;
    let read = Arc::new(AtomicU64::new(0));
    let (stop_reading, mut reading_stopped) = tokio::sync::watch::channel(false);
    let reader = {
        let (js, name, read) = (setup.js.clone(), setup.spec.name.clone(), Arc::clone(&read));
        setup.runtime.spawn(async move {
            let stream = js.get_stream(&name).await?;
            let consumer = stream.create_consumer(OrderedConfig::default()).await?;
            let mut messages = consumer.messages().await?;
            let mut bytes = 0u64;
            loop {
                tokio::select! {
                    _ = reading_stopped.wait_for(|stop| *stop) => break,
                    message = messages.next() => {
                        let message = message.ok_or("the consumer ended")??;
                        bytes += message.payload.len() as u64;
                        // Relaxed: a count, read for the figures and for the producers' pacing;
                        // nothing is published through it.
                        read.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            std::hint::black_box(bytes);
            Ok::<_, Failure>(())
        })
    };
    let stop = AtomicBool::new(false);
    let parts = workload.parts_per_commit() as f64;
    let result = std::thread::scope(|scope| -> Result<Limit, Failure> {
        let mut producers = Vec::new();
        for index in 0..config.producers {
            let (setup, stop, read) = (&setup, &stop, &read);
            let mut generator = workload.generator::<K>(index);
            let mut publishing = Publishing::<K::Record>::new(setup, nats.in_flight);
            producers.push(std::thread::Builder::new().name(format!("loadgen-limit-{index}")).spawn_scoped(
                scope,
                move || -> Result<(), Failure> {
                    let mut parts = Vec::new();
                    // Relaxed: a stop flag, polled.
                    while !stop.load(Ordering::Relaxed) {
                        generator.fill(&mut parts);
                        publishing.send(&mut parts, None, |sequence, _| {
                            // The engine's bound on running ahead of the reader.
                            while sequence > LAG + read.load(Ordering::Relaxed)
                                && !stop.load(Ordering::Relaxed)
                            {
                                std::thread::sleep(Duration::from_micros(200));
                            }
                            Ok(())
                        })?;
                    }
                    publishing.flush()
                },
            )?);
        }
        let wait = |d: Duration| {
            let until = Instant::now() + d;
            // Relaxed: the Ctrl-C flag, polled.
            while Instant::now() < until && !interrupted.load(Ordering::Relaxed) {
                std::thread::sleep(
                    Duration::from_millis(10).min(until.saturating_duration_since(Instant::now())),
                );
            }
        };
        wait(LIMIT_WARM_UP);
        let mut rates = Vec::new();
        let (mut count, mut at) = (read.load(Ordering::Relaxed), Instant::now());
        let first = at;
        for _ in 0..LIMIT_WINDOWS {
            wait(LIMIT_WINDOW);
            let (next, next_at) = (read.load(Ordering::Relaxed), Instant::now());
            rates.push((next - count) as f64 * parts / (next_at - at).as_secs_f64().max(1e-9));
            (count, at) = (next, next_at);
            if interrupted.load(Ordering::Relaxed) {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for producer in producers {
            producer.join().map_err(|_| "a limit producer panicked")??;
        }
        rates.sort_by(f64::total_cmp);
        Ok(Limit {
            records_per_sec: rates.last().copied().unwrap_or(0.0),
            median_records_per_sec: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            window: at - first,
        })
    });
    let _ = stop_reading.send(true);
    setup.runtime.block_on(reader)??;
    setup.remove()?;
    result
}

/// [`measure_limit`] for the kind `--record` names.
pub fn measure_limit_record(
    record: crate::record::RecordKind,
    config: &Config,
    workload: &Workload,
    interrupted: &AtomicBool,
) -> Result<Limit, Failure> {
    use crate::record::{Bytes, RecordKind, Shared, I64, U64};
    match record {
        RecordKind::I64 => measure_limit::<I64>(config, workload, interrupted),
        RecordKind::U64 => measure_limit::<U64>(config, workload, interrupted),
        RecordKind::Bytes => measure_limit::<Bytes>(config, workload, interrupted),
        RecordKind::Shared => measure_limit::<Shared>(config, workload, interrupted),
    }
}
