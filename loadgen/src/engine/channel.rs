//! Baseline: a thread per shard, fed by crossbeam channels, compacting each path by count.
//!
//! A commit takes its number from one atomic counter, then sends each part (commit, producer,
//! path, record) into the bounded channel of the shard that owns its path (`hash(path) %
//! shards`, a fixed hash: lockstep keys its own per pipeline); a full channel blocks the producer. One consumer thread per
//! shard owns that shard's `HashMap<String, Tiers>` outright (no lock) and inserts each part
//! with the same count-driven compaction check as the `mutex` engine. Each channel holds
//! `queue_capacity × producers` parts, the same total buffering as lockstep's per-(producer,
//! shard) queues.
//!
//! Visible: there is no frontier. Each consumer publishes, after every batch it applies, the
//! last commit it has applied from each producer (a producer's parts reach a channel in the
//! order it sent them, so that is a true watermark). A commit counts as visible once every
//! shard it touched has applied it; the last of those shards records a sampled commit's
//! commit-to-visible right after it publishes (see [`super::stamps`]). That is per commit, not a
//! consistent cut: with several producers or shards a later commit can be visible before an
//! earlier one, and a reader can see half of a multi-shard commit. lockstep promises more, so
//! this figure flatters the baseline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{self, Receiver, Sender};
use crossbeam::utils::CachePadded;
use hdrhistogram::Histogram;

use super::stamps::{Resolver, Stamps};
use super::tiers::{self, Tiers};
use super::{pin_current, shard_of, Committer, Config, Engine, Failure, Finish, Touched, Watermarks};
use crate::record::Kind;
use crate::workload::Part;

/// Parts a consumer applies before it publishes its watermarks.
const BATCH: usize = 1024;

/// One part on its way to its shard.
#[derive(Debug)]
struct Message<R> {
    commit: u64,
    producer: u32,
    path: &'static str,
    record: R,
}

/// What a consumer holds when its channel closes.
#[derive(Debug)]
struct Shard<K: Kind> {
    paths: HashMap<String, Tiers<K>>,
    records: u64,
}

#[derive(Debug)]
pub struct ChannelEngine<K: Kind> {
    counter: Arc<CachePadded<AtomicU64>>,
    stamps: Arc<Stamps>,
    senders: Vec<Sender<Message<K::Record>>>,
    consumers: Vec<JoinHandle<Shard<K>>>,
    divisor: u64,
    max_level: u32,
}

#[derive(Debug)]
pub struct ChannelCommitter<K: Kind> {
    counter: Arc<CachePadded<AtomicU64>>,
    stamps: Arc<Stamps>,
    senders: Vec<Sender<Message<K::Record>>>,
    producer: usize,
    touched: Touched,
}

impl<K: Kind> Engine<K> for ChannelEngine<K> {
    type Committer = ChannelCommitter<K>;

    fn build(config: &Config) -> Result<Self, Failure> {
        let divisor = usize::try_from(config.divisor).map_err(|_| "divisor does not fit a usize")?;
        let marks = Arc::new(Watermarks::new(config.shards, config.producers));
        let stamps = Arc::new(Stamps::new(config.shards, config.producers));
        let mut engine = Self {
            counter: Arc::new(CachePadded::new(AtomicU64::new(0))),
            stamps: stamps.clone(),
            senders: Vec::with_capacity(config.shards),
            consumers: Vec::with_capacity(config.shards),
            divisor: config.divisor,
            max_level: config.max_level,
        };
        let capacity = config.queue_capacity.saturating_mul(config.producers);
        for shard in 0..config.shards {
            let (sender, receiver) = channel::bounded(capacity);
            let (marks, stamps, producers, shards, pin) =
                (marks.clone(), stamps.clone(), config.producers, config.shards, config.pin);
            let max_level = config.max_level as usize;
            let spawned =
                std::thread::Builder::new().name(format!("channel-shard-{shard}")).spawn(move || {
                    pin_current(pin, shard, shards);
                    consume::<K>(shard, receiver, &marks, &stamps, producers, divisor, max_level)
                });
            // On failure, dropping `engine` closes the channels of the consumers already started.
            engine.consumers.push(spawned.map_err(|e| format!("cannot start a consumer thread: {e}"))?);
            engine.senders.push(sender);
        }
        Ok(engine)
    }

    fn committer(&self, index: usize) -> Result<ChannelCommitter<K>, Failure> {
        Ok(ChannelCommitter {
            counter: self.counter.clone(),
            stamps: self.stamps.clone(),
            senders: self.senders.clone(),
            producer: index,
            touched: Touched::new(self.senders.len()),
        })
    }

    fn visible(&self) -> Histogram<u64> {
        self.stamps.visible()
    }

    fn progress(&self) -> Option<String> {
        let queued: usize = self.senders.iter().map(Sender::len).sum();
        Some(format!("{queued} parts waiting in the channels"))
    }

    fn finish(mut self) -> Result<Finish, Failure> {
        // Every committer is gone; dropping the last senders lets each consumer drain its
        // channel and return.
        self.senders.clear();
        let mut all = HashMap::new();
        let mut records = 0;
        for consumer in self.consumers.drain(..) {
            let shard = consumer.join().map_err(|_| "a channel consumer panicked")?;
            records += shard.records;
            // Each path lives on one shard only: no key collides.
            all.extend(shard.paths);
        }
        // Relaxed: every producer has been joined.
        let issued = self.counter.load(Ordering::Relaxed);
        let layout = tiers::layout(&all, self.divisor, self.max_level, issued);
        Ok(Finish {
            final_commit: None,
            records_applied: Some(records),
            layout: Some(layout),
            visible_latency: self.stamps.visible(),
            notes: Vec::new(),
            durable: None,
        })
    }
}

/// One shard's consumer: applies parts in arrival order until every sender is gone.
fn consume<K: Kind>(
    shard: usize,
    receiver: Receiver<Message<K::Record>>,
    marks: &Watermarks,
    stamps: &Stamps,
    producers: usize,
    divisor: usize,
    max_level: usize,
) -> Shard<K> {
    let mut state = Shard { paths: HashMap::new(), records: 0 };
    let mut resolver = Resolver::new(shard, producers);
    let mut applied = vec![0u64; producers];
    let mut changed = vec![false; producers];
    // `recv` parks the thread while the channel is empty: an idle consumer burns no core.
    while let Ok(first) = receiver.recv() {
        let batch = std::iter::once(first).chain(receiver.try_iter().take(BATCH - 1));
        for Message { commit, producer, path, record } in batch {
            state.records += 1;
            match state.paths.get_mut(path) {
                Some(tiers) => tiers.insert(commit, record, divisor, max_level),
                None => {
                    let mut tiers = Tiers::<K>::default();
                    tiers.insert(commit, record, divisor, max_level);
                    state.paths.insert(path.to_owned(), tiers);
                }
            }
            applied[producer as usize] = commit;
            changed[producer as usize] = true;
        }
        let mut now = None;
        for producer in 0..producers {
            if std::mem::take(&mut changed[producer]) {
                marks.set(shard, producer, applied[producer]);
                resolver.published(stamps, producer, applied[producer], &mut now);
            }
        }
    }
    state
}

impl<K: Kind> Committer<K> for ChannelCommitter<K> {
    fn commit(&mut self, parts: &mut Vec<Part<K::Record>>, stamp: Option<Instant>) -> Result<(), Failure> {
        // Relaxed: the number only has to be unique and ascending per producer.
        let commit = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let shards = self.senders.len();
        if let Some(start) = stamp {
            // The stamp goes first, so it is there by the time a shard publishes the commit.
            self.touched.clear();
            for (path, _) in parts.iter() {
                self.touched.add(shard_of(path.name(), shards));
            }
            self.stamps.stamp(self.producer, commit, self.touched.list(), start);
        }
        for (path, record) in parts.drain(..) {
            let path = path.name();
            let shard = shard_of(path, shards);
            let message = Message { commit, producer: self.producer as u32, path, record };
            self.senders[shard].send(message).map_err(|_| "a channel consumer is gone")?;
        }
        Ok(())
    }
}
