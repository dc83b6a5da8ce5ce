//! Reading the stream into a sequenced pipeline.
//!
//! The follower reads with an ordered consumer from the pipeline's last number + 1. Each
//! message's stream sequence is its commit number: its parts this follower keeps are committed
//! at it, and a message with none is a number with nothing for this pipeline (the frontier
//! passes it all the same, so every follower's frontier is the last sequence it applied). A
//! sequence other than the next one expected is a gap nothing explains on a stream that denies
//! deletes and purges: the follower stops with [`Error::Gap`].
//!
//! The consumer lives on the async side; the sequencer, which may wait for room in a full queue
//! (a thread park), lives on a thread of its own, fed through a bounded channel, so no task
//! ever blocks its runtime's thread.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{Config, StorageType, Stream};
use async_nats::jetstream::Context;
use futures_util::{FutureExt, StreamExt};
use lockstep::{Merge, PathKey, Pipeline, Sequencer};
use serde::de::DeserializeOwned;

use crate::codec::{Partition, PartsReader};
use crate::error::Error;

/// Messages handed on together to the applying thread, at most: every message the consumer
/// has ready goes in one hand-over (one channel send, at most one wake of the thread).
const BATCH: usize = 64;

/// Hand-overs read but not yet applied, at most (so `BATCH` times as many messages).
const IN_FLIGHT: usize = 16;

/// The longest a pull for messages waits on the server (see [`consume`]).
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// With no message for this long, the follower asks the stream whether it has the next one
/// (see [`Follower::run`]'s loop).
const STALL: Duration = Duration::from_secs(2);

/// How long the follower keeps trying to (re)create its consumer before it gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// A commit on its way to the applying thread: its number and its message's payload, decoded
/// there (so the thread that reads the connection only reads it, and each path is borrowed
/// from the payload rather than allocated).
type Numbered = (u64, bytes::Bytes);

/// Messages handed on together, in sequence order.
type Batch = Vec<Numbered>;

/// The stream a follower reads (and creates if missing).
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// The stream's name.
    pub name: String,
    /// The subject publishers publish to (the stream's one subject).
    pub subject: String,
    /// Replicas of the stream (1 on one server, 3 on a cluster of three).
    pub replicas: usize,
    /// Follow the stream even if it exists already without `deny_delete` or `deny_purge`
    /// (made by someone else). Off by default: a [`Follower`] refuses such a stream with
    /// [`Error::Unguarded`], because on it a deleted or purged message is a hole that no
    /// follower started later can fill: it would stop at the hole with [`Error::Gap`] (and a
    /// follower already past it would hold data the later one never can), so followers of one
    /// stream could no longer all reach the same frontier. Opt in where deletes are a known,
    /// accepted risk; a hole then still stops the follower with [`Error::Gap`], never a
    /// silent misalignment.
    pub accept_unguarded: bool,
}

impl StreamSpec {
    /// A stream `name` of subject `name`, one replica.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self { subject: name.clone(), name, replicas: 1, accept_unguarded: false }
    }

    /// The stream's config: file storage, and `deny_delete` and `deny_purge`, so no message
    /// can leave a gap behind a follower.
    pub fn config(&self) -> Config {
        Config {
            name: self.name.clone(),
            subjects: vec![self.subject.clone()],
            storage: StorageType::File,
            num_replicas: self.replicas,
            deny_delete: true,
            deny_purge: true,
            ..Config::default()
        }
    }

    /// Gets the stream, creating it with [`config`](Self::config) if missing (an existing
    /// stream is used as it is).
    ///
    /// # Errors
    ///
    /// [`Error::Nats`] if the server refuses.
    pub async fn get_or_create(&self, js: &Context) -> Result<Stream, Error> {
        js.get_or_create_stream(self.config())
            .await
            .map_err(|error| Error::nats("creating the stream", error))
    }
}

/// Follows a stream into a sequenced pipeline: every path, or a [`Partition`] of them. It is
/// `Send` but not `Sync` (it holds the pipeline's [`Sequencer`](lockstep::Sequencer)), and
/// [`run`](Follower::run)'s future is `Send`, so it can be spawned.
pub struct Follower<M: Merge> {
    stream: Stream,
    partition: Partition,
    /// Held between runs; a run moves it to its applying thread.
    sequencer: Option<Sequencer<M>>,
    /// The next sequence to apply.
    next: u64,
    /// The paths met so far, kept between runs; a run moves them to its applying thread.
    known: Known,
}

/// The paths a follower has met, by the bytes a message carries them as: each one's key, or
/// `None` for a path outside the follower's partition. A path met again costs one hash of its
/// bytes and one probe: no UTF-8 check, no partition hash, no lookup by name in the sequencer.
/// A short name is held in the table's entry itself and its key beside it, so a probe that
/// hits reads one place in memory, not three (the entry, the name's allocation, the key).
type Known = HashMap<Name, Option<PathKey>, foldhash::fast::RandomState>;

/// Names up to this many bytes are held inline (most paths are short); the rest are boxed.
const SHORT: usize = 22;

/// A path's bytes, as a key of [`Known`]: hashed and compared as the `[u8]` it holds, so the
/// table is probed with the bytes borrowed from a message.
enum Name {
    Short { len: u8, bytes: [u8; SHORT] },
    Long(Box<[u8]>),
}

impl Name {
    fn new(path: &[u8]) -> Self {
        let mut bytes = [0; SHORT];
        match (u8::try_from(path.len()), bytes.get_mut(..path.len())) {
            (Ok(len), Some(inline)) => {
                inline.copy_from_slice(path);
                Name::Short { len, bytes }
            }
            _ => Name::Long(path.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            // `len` is at most SHORT by construction: the fallback is never taken.
            Name::Short { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            Name::Long(bytes) => bytes,
        }
    }
}

impl std::borrow::Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// `Hash` and `Eq` as the bytes', as `Borrow` requires.
impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

/// The applying thread's state: the sequencer and the paths it knows, and an empty `Vec` kept
/// for its allocation, in which each message's kept parts are staged.
struct Applier<M: Merge> {
    sequencer: Sequencer<M>,
    partition: Partition,
    known: Known,
    spare: Vec<(&'static PathKey, M::Record)>,
}

impl<M> Applier<M>
where
    M: Merge,
    M::Record: DeserializeOwned,
{
    fn new(sequencer: Sequencer<M>, partition: Partition, known: Known) -> Self {
        Self { sequencer, partition, known, spare: Vec::new() }
    }

    /// Commits the kept parts of the message at `number` (none: the frontier passes it).
    ///
    /// Its parts are staged with their keys borrowed from the known paths, which a path met for
    /// the first time would change: then every new path of the message is learned first and
    /// the message is read again (so a message is read at most twice, and only while new paths
    /// still come).
    fn apply(&mut self, number: u64, payload: &[u8]) -> Result<(), Error> {
        // Every message is applied, kept parts or not, so numbers come one by one: a number
        // skipped here would be a message lost between the reading task and this thread.
        let expected = self.sequencer.last() + 1;
        if number != expected {
            return Err(Error::Gap { expected, found: number });
        }
        for _ in 0..2 {
            let mut staged = recycle(std::mem::take(&mut self.spare));
            let mut parts = PartsReader::new(number, payload)?;
            let mut complete = true;
            while let Some((path, record)) = parts.next::<M::Record>()? {
                match self.known.get(path) {
                    Some(Some(key)) => staged.push((key, record)),
                    Some(None) => {}
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                let committed = self.sequencer.commit_at(number, staged.drain(..));
                self.spare = recycle(staged);
                return committed.map_err(Error::Lockstep);
            }
            staged.clear();
            self.spare = recycle(staged);
            self.learn(number, payload)?;
        }
        // Not reached: the second reading meets only paths that `learn` has just remembered.
        Err(Error::Decode { sequence: number, why: "a path was not remembered once learned".into() })
    }

    /// Learns every path of the message not yet known: checked (UTF-8, then the sequencer's
    /// checks), hashed to its partition, and remembered with its key.
    fn learn(&mut self, number: u64, payload: &[u8]) -> Result<(), Error> {
        let mut parts = PartsReader::new(number, payload)?;
        while let Some((path, _)) = parts.next::<M::Record>()? {
            if self.known.contains_key(path) {
                continue;
            }
            let name = std::str::from_utf8(path)
                .map_err(|error| Error::Decode { sequence: number, why: format!("a path: {error}") })?;
            let key = if self.partition.keeps(name) {
                Some(self.sequencer.key(name).map_err(Error::Lockstep)?)
            } else {
                None
            };
            self.known.insert(Name::new(path), key);
        }
        Ok(())
    }

    fn into_parts(self, outcome: Result<(), Error>) -> (Sequencer<M>, Known, Result<(), Error>) {
        (self.sequencer, self.known, outcome)
    }
}

/// An empty `Vec` of parts whose keys are borrowed for another lifetime, in the same
/// allocation: collecting a `Vec`'s own iterator into a `Vec` of an element of the same size
/// and alignment reuses its buffer (and if it did not, this would only allocate).
// `filter_map` because the element's type changes (the lifetime); it keeps none.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b, R>(parts: Vec<(&PathKey, R)>) -> Vec<(&'b PathKey, R)> {
    parts.into_iter().filter_map(|_| None).collect()
}

impl<M: Merge> std::fmt::Debug for Follower<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("partition", &self.partition).field("next", &self.next).finish()
    }
}

impl<M> Follower<M>
where
    M: Merge + Send + Sync + 'static,
    M::Record: DeserializeOwned + Send + 'static,
{
    /// A follower of `spec`'s stream (created if missing) into `pipeline`, which must be
    /// sequenced ([`lockstep::Builder::sequenced`]); it takes the pipeline's sequencer and
    /// reads from its last number + 1 (a durable pipeline's recovered frontier + 1).
    ///
    /// # Errors
    ///
    /// [`lockstep::Error::NotSequenced`] or [`lockstep::Error::SequencerTaken`] (as
    /// [`Error::Lockstep`]); [`Error::Nats`] if the stream cannot be had;
    /// [`Error::Unguarded`] if the stream exists without `deny_delete` or `deny_purge` and
    /// `spec` does not [accept](StreamSpec::accept_unguarded) that.
    pub async fn new(
        js: &Context,
        spec: &StreamSpec,
        pipeline: &Pipeline<M>,
        partition: Partition,
    ) -> Result<Self, Error> {
        let stream = spec.get_or_create(js).await?;
        let config = &stream.cached_info().config;
        if !(spec.accept_unguarded || config.deny_delete && config.deny_purge) {
            return Err(Error::Unguarded {
                stream: config.name.clone(),
                deny_delete: config.deny_delete,
                deny_purge: config.deny_purge,
            });
        }
        // Taken last: a refused follower leaves the pipeline's sequencer for the next try.
        let sequencer = pipeline.sequencer()?;
        let next = sequencer.last() + 1;
        Ok(Self { stream, partition, sequencer: Some(sequencer), next, known: Known::default() })
    }

    /// The next sequence this follower applies: one past its pipeline's frontier once what it
    /// has read is visible.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Reads the stream into the pipeline until `stop` completes (then `Ok`) or something
    /// stops it for good. A lost connection or a server restart is waited out (the consumer is
    /// made again from the next sequence) for up to a minute. Run it again after `Ok` to go on.
    ///
    /// # Errors
    ///
    /// [`Error::Gap`] on a skipped sequence; [`Error::Decode`] on a message that is not a
    /// commit of this pipeline's records; [`Error::Lockstep`] if the pipeline refuses (it shut
    /// down, a worker failed); [`Error::Nats`] if the consumer cannot be made for a minute.
    pub async fn run(&mut self, stop: impl Future<Output = ()>) -> Result<(), Error> {
        let Some(sequencer) = self.sequencer.take() else {
            return Err(Error::Lockstep(lockstep::Error::Shutdown));
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(IN_FLIGHT);
        let partition = self.partition;
        let known = std::mem::take(&mut self.known);
        let applier = std::thread::Builder::new()
            .name("lockstep-nats-follower".into())
            .spawn(move || {
                let mut applier = Applier::new(sequencer, partition, known);
                while let Some(batch) = rx.blocking_recv() {
                    for (number, payload) in batch {
                        if let Err(error) = applier.apply(number, &payload) {
                            return applier.into_parts(Err(error));
                        }
                    }
                }
                applier.into_parts(Ok(()))
            })
            .map_err(|error| Error::nats("starting the follower's thread", error))?;
        let read = self.read(&tx, stop).await;
        drop(tx);
        let joined = tokio::task::spawn_blocking(move || applier.join()).await;
        let (sequencer, known, applied) = match joined {
            Ok(Ok(outcome)) => outcome,
            // The applying thread runs only lockstep's sequencer, which does not panic.
            _ => return Err(Error::Lockstep(lockstep::Error::WorkerPanicked)),
        };
        // What was handed on but not applied (the pipeline refused) is read again next run.
        self.next = sequencer.last() + 1;
        self.sequencer = Some(sequencer);
        self.known = known;
        // The applying thread's error first (a refusal, a message that is not a commit): it is
        // why the channel closed.
        applied.and(read)
    }

    /// The consuming loop: reads and checks each message in order, and hands them on in
    /// batches.
    async fn read(
        &mut self,
        tx: &tokio::sync::mpsc::Sender<Batch>,
        stop: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        tokio::pin!(stop);
        let mut failing_since: Option<Instant> = None;
        loop {
            let messages = match consume(&self.stream, self.next).await {
                Ok(messages) => messages,
                Err(error) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > PATIENCE {
                        return Err(error);
                    }
                    tokio::select! {
                        () = &mut stop => return Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            };
            tokio::pin!(messages);
            // One timer for the consumer, moved on only when it fires, rather than a timer
            // registered with the runtime and dropped again for every message.
            let stall = tokio::time::sleep(STALL);
            tokio::pin!(stall);
            let mut heard = tokio::time::Instant::now();
            // Read, checked, and not yet handed on: `self.next` is past them.
            let mut batch = Batch::with_capacity(BATCH);
            loop {
                // A message the consumer has ready joins the batch; the batch is handed on
                // before the task waits for more, and when it is full.
                let ready = match batch.len() {
                    0 | BATCH.. => None,
                    _ => messages.next().now_or_never(),
                };
                let item = if let Some(item) = ready {
                    item
                } else {
                    if !hand_on(tx, &mut batch).await {
                        return Ok(());
                    }
                    tokio::select! {
                        () = &mut stop => return Ok(()),
                        item = messages.next() => item,
                        // Nothing for a while: an idle stream, or a consumer lost with its server
                        // (a cluster's stream leader killed) that the client is slow to replace
                        // (it waits for missed heartbeats, then retries with timeouts of its own;
                        // 20 s measured). The stream says which: if it holds the next sequence,
                        // the consumer is made anew from it.
                        () = &mut stall => {
                            if heard.elapsed() < STALL {
                                // Messages came since it was set: a stall is counted from the last.
                                stall.as_mut().reset(heard + STALL);
                                continue;
                            }
                            stall.as_mut().reset(tokio::time::Instant::now() + STALL);
                            match self.stream.get_info().await {
                                Ok(info) if info.state.last_sequence >= self.next => break,
                                _ => continue,
                            }
                        }
                    }
                };
                heard = tokio::time::Instant::now();
                // The ordered consumer ended or failed: make it again from the next sequence,
                // after a pause (a server restarting refuses for a while).
                let Some(Ok(message)) = item else {
                    tokio::select! {
                        () = &mut stop => return Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(100)) => break,
                    }
                };
                failing_since = None;
                let sequence = match message.info() {
                    Ok(info) => info.stream_sequence,
                    Err(error) => {
                        hand_on(tx, &mut batch).await;
                        return Err(Error::nats("reading a message's sequence", error));
                    }
                };
                if sequence < self.next {
                    // Delivered again after the consumer was made anew: applied already.
                    continue;
                }
                if sequence > self.next {
                    // What came before the gap is applied: the frontier stops right at it.
                    hand_on(tx, &mut batch).await;
                    return Err(Error::Gap { expected: self.next, found: sequence });
                }
                batch.push((sequence, message.message.payload));
                self.next = sequence + 1;
            }
            // The consumer is made again from `self.next`: what was read before it is handed
            // on first, or the applying thread would see those numbers skipped.
            if !hand_on(tx, &mut batch).await {
                return Ok(());
            }
        }
    }
}

/// Hands the batch on to the applying thread (nothing if it is empty), leaving it empty.
/// False if that thread has stopped (its error says why).
async fn hand_on(tx: &tokio::sync::mpsc::Sender<Batch>, batch: &mut Batch) -> bool {
    if batch.is_empty() {
        return true;
    }
    let full = std::mem::replace(batch, Batch::with_capacity(BATCH));
    tx.send(full).await.is_ok()
}

/// An ordered consumer of `stream` from `next`. (A function of its own: a borrow of the whole
/// follower across its awaits would need the follower to be `Sync`, which a sequencer is not.)
async fn consume(
    stream: &Stream,
    next: u64,
) -> Result<async_nats::jetstream::consumer::pull::Ordered, Error> {
    let config = OrderedConfig {
        deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: next },
        // Each pull waits at most this long, and the server's idle heartbeat is half of it:
        // the client recreates a consumer after two missed heartbeats, so a consumer lost with
        // its server (a cluster's leader killed) is noticed within seconds, not after the
        // client's default of two 15 s heartbeats.
        max_expires: PULL_EXPIRES,
        ..OrderedConfig::default()
    };
    let consumer =
        stream.create_consumer(config).await.map_err(|error| Error::nats("creating a consumer", error))?;
    consumer.messages().await.map_err(|error| Error::nats("consuming", error))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lockstep::merge::Concat;

    use super::*;
    use crate::codec::encode;

    type M = Concat<u64>;

    fn applier(pipeline: &Pipeline<M>, partition: Partition) -> Applier<M> {
        let sequencer = pipeline.sequencer().expect("a sequenced pipeline's sequencer");
        Applier::new(sequencer, partition, Known::default())
    }

    fn reads(pipeline: &Pipeline<M>, frontier: u64, paths: &[&str]) -> Vec<Option<Vec<(u64, u64)>>> {
        let snapshot = pipeline.wait_sealed(frontier, Duration::from_secs(30)).expect("sealed");
        paths.iter().map(|path| snapshot.read(path)).collect()
    }

    /// Messages applied through the path cache read exactly as the same parts committed by
    /// name: repeated paths within a message and across messages, a message with nothing for
    /// a partition, and records in order.
    #[test]
    fn applies_as_commits_by_name() -> Result<(), Error> {
        let messages: Vec<Vec<(&str, u64)>> = vec![
            vec![("/a", 1), ("/b", 2), ("/a", 3)],
            vec![("/c", 4)],
            vec![("/b", 5), ("/a", 6), ("/c", 7), ("/b", 8)],
            vec![("/d", 9), ("/a", 10)],
        ];
        let paths = ["/a", "/b", "/c", "/d"];
        for partition in [Partition::All, Partition::of(0, 2)?, Partition::of(1, 2)?] {
            let followed = Pipeline::builder(Concat::<u64>::default()).sequenced().build()?;
            let by_name = Pipeline::builder(Concat::<u64>::default()).sequenced().build()?;
            let mut applier = applier(&followed, partition);
            let mut sequencer = by_name.sequencer()?;
            for (index, parts) in messages.iter().enumerate() {
                let number = index as u64 + 1;
                applier.apply(number, &encode(parts)?)?;
                let kept = parts.iter().filter(|(path, _)| partition.keeps(path)).copied();
                sequencer.commit_at(number, kept.collect::<Vec<_>>())?;
            }
            let last = messages.len() as u64;
            assert_eq!(applier.sequencer.last(), last, "every message moves the frontier");
            assert_eq!(reads(&followed, last, &paths), reads(&by_name, last, &paths), "{partition:?}");
            // Each distinct path is learned once, whatever the partition keeps.
            assert_eq!(applier.known.len(), paths.len());
        }
        Ok(())
    }

    /// A message the cache cannot read is refused with a typed error, and commits nothing:
    /// a truncated payload, a path that is not UTF-8 (met first, or after a good one), a path
    /// the pipeline refuses, a number that is not the next one.
    #[test]
    fn refuses_what_it_cannot_read() -> Result<(), Error> {
        let pipeline = Pipeline::builder(Concat::<u64>::default()).sequenced().build()?;
        let mut applier = applier(&pipeline, Partition::All);
        let good = encode(&[("/a", 1u64), ("/b", 2)])?;
        for cut in 0..good.len() {
            let refused = applier.apply(1, &good[..cut]);
            assert!(matches!(refused, Err(Error::Decode { sequence: 1, .. })), "cut at {cut}: {refused:?}");
        }
        // "/a" as the bytes b"/\xff": same length, not UTF-8.
        let mut bad = good.clone();
        let at = bad.iter().position(|&byte| byte == b'a').expect("the path's byte");
        bad[at] = 0xff;
        assert!(matches!(applier.apply(1, &bad), Err(Error::Decode { sequence: 1, .. })));
        // A varint that overflows a u64 as the number of parts.
        assert!(matches!(applier.apply(1, &[0xff; 11]), Err(Error::Decode { .. })));
        let empty = encode(&[("/a", 1u64), ("", 2)])?;
        assert!(matches!(applier.apply(1, &empty), Err(Error::Lockstep(lockstep::Error::EmptyPath))));
        // A number skipped: a message lost on its way to the thread.
        assert_eq!(applier.apply(2, &good), Err(Error::Gap { expected: 1, found: 2 }));
        assert_eq!(applier.sequencer.last(), 0, "nothing refused was committed");
        applier.apply(1, &good)?;
        assert_eq!(reads(&pipeline, 1, &["/a", "/b"]), [Some(vec![(1, 1)]), Some(vec![(1, 2)])]);
        // The bad bytes after a good path's were learned: still refused.
        let mut later = encode(&[("/a", 7u64), ("/c", 8)])?;
        let at = later.iter().rposition(|&byte| byte == b'c').expect("the path's byte");
        later[at] = 0xfe;
        assert!(matches!(applier.apply(2, &later), Err(Error::Decode { sequence: 2, .. })));
        assert_eq!(applier.apply(3, &good), Err(Error::Gap { expected: 2, found: 3 }));
        Ok(())
    }

    /// The staging `Vec` keeps its allocation from message to message.
    #[test]
    fn recycle_keeps_the_allocation() -> Result<(), Error> {
        let pipeline = Pipeline::builder(Concat::<u64>::default()).sequenced().build()?;
        let key = pipeline.key("/a")?;
        let mut parts: Vec<(&PathKey, u64)> = Vec::with_capacity(64);
        parts.push((&key, 1));
        let capacity = parts.capacity();
        let recycled: Vec<(&PathKey, u64)> = recycle(parts);
        assert!(recycled.is_empty());
        assert_eq!(recycled.capacity(), capacity);
        Ok(())
    }
}
