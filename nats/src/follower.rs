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

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{Config, StorageType, Stream};
use async_nats::jetstream::Context;
use futures_util::StreamExt;
use lockstep::{Merge, Pipeline, Sequencer};
use serde::de::DeserializeOwned;

use crate::codec::{decode, Partition};
use crate::error::Error;

/// Commits decoded but not yet applied, at most.
const IN_FLIGHT: usize = 1024;

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

/// Follows a stream into a sequenced pipeline: every path, or a [`Partition`] of them.
pub struct Follower<M: Merge> {
    stream: Stream,
    partition: Partition,
    /// Held between runs; a run moves it to its applying thread.
    sequencer: Option<Sequencer<M>>,
    /// The next sequence to apply.
    next: u64,
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
        Ok(Self { stream, partition, sequencer: Some(sequencer), next })
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
        let Some(mut sequencer) = self.sequencer.take() else {
            return Err(Error::Lockstep(lockstep::Error::Shutdown));
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Numbered>(IN_FLIGHT);
        let partition = self.partition;
        let applier = std::thread::Builder::new()
            .name("lockstep-nats-follower".into())
            .spawn(move || {
                while let Some((number, payload)) = rx.blocking_recv() {
                    let parts: Vec<(&str, M::Record)> = match decode(number, &payload) {
                        Ok(parts) => parts,
                        Err(error) => return (sequencer, Err(error)),
                    };
                    let kept = parts.into_iter().filter(|(path, _)| partition.keeps(path));
                    if let Err(error) = sequencer.commit_at(number, kept) {
                        return (sequencer, Err(Error::Lockstep(error)));
                    }
                }
                (sequencer, Ok(()))
            })
            .map_err(|error| Error::nats("starting the follower's thread", error))?;
        let read = self.read(&tx, stop).await;
        drop(tx);
        let joined = tokio::task::spawn_blocking(move || applier.join()).await;
        let (sequencer, applied) = match joined {
            Ok(Ok(outcome)) => outcome,
            // The applying thread runs only lockstep's sequencer, which does not panic.
            _ => return Err(Error::Lockstep(lockstep::Error::WorkerPanicked)),
        };
        // What was handed on but not applied (the pipeline refused) is read again next run.
        self.next = sequencer.last() + 1;
        self.sequencer = Some(sequencer);
        // The applying thread's error first (a refusal, a message that is not a commit): it is
        // why the channel closed.
        applied.and(read)
    }

    /// The consuming loop: reads, checks and hands on each message in order.
    async fn read(
        &mut self,
        tx: &tokio::sync::mpsc::Sender<Numbered>,
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
            loop {
                let item = tokio::select! {
                    () = &mut stop => return Ok(()),
                    item = messages.next() => item,
                    // Nothing for a while: an idle stream, or a consumer lost with its server
                    // (a cluster's stream leader killed) that the client is slow to replace
                    // (it waits for missed heartbeats, then retries with timeouts of its own;
                    // 20 s measured). The stream says which: if it holds the next sequence,
                    // the consumer is made anew from it.
                    () = tokio::time::sleep(STALL) => match self.stream.get_info().await {
                        Ok(info) if info.state.last_sequence >= self.next => break,
                        _ => continue,
                    },
                };
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
                    Err(error) => return Err(Error::nats("reading a message's sequence", error)),
                };
                if sequence < self.next {
                    // Delivered again after the consumer was made anew: applied already.
                    continue;
                }
                if sequence > self.next {
                    return Err(Error::Gap { expected: self.next, found: sequence });
                }
                if tx.send((sequence, message.message.payload)).await.is_err() {
                    // The applying thread stopped: its error says why.
                    return Ok(());
                }
                self.next = sequence + 1;
            }
        }
    }
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
