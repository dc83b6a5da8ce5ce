//! Publishers and followers on a real nats-server (started by the tests on a free loopback
//! port, JetStream in a temp dir): followers agree with an in-process pipeline fed the same
//! sequence; a server restart mid-publish loses and doubles nothing; a deleted message stops a
//! follower with its typed error; a durable follower goes on after its recovered frontier.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, Context};
use common::{agrees, caught_up, reference, sequenced, spawn_follower, Rng, Server, TempDir, M, PATIENCE};
use lockstep::Pipeline;
use lockstep_nats::{Error, Follower, Partition, Publisher, StreamSpec};
use tokio::sync::watch;

async fn connect(server: &Server) -> Context {
    let client = async_nats::connect(server.url()).await.expect("connects to the test server");
    jetstream::new(client)
}

/// `publishers` tasks publish `each` random commits each; returns every commit by sequence.
/// The odd ones keep up to eight commits in flight (`Publisher::send`), the even ones one.
async fn publish(
    js: &Context,
    subject: &str,
    publishers: u64,
    each: u64,
) -> BTreeMap<u64, Vec<(String, u64)>> {
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let mut publisher = Publisher::new(js.clone(), subject).patience(Duration::from_secs(50));
            tokio::spawn(async move {
                let mut rng = Rng::new(p + 1);
                let window = if p % 2 == 1 { 8 } else { 1 };
                let mut in_flight = std::collections::VecDeque::new();
                let mut sent = Vec::new();
                for i in 0..each {
                    let parts: Vec<(String, u64)> = (0..1 + rng.below(3))
                        .map(|_| (format!("/p{}", rng.below(9)), p * 1_000_000 + i))
                        .collect();
                    in_flight.push_back((publisher.send(&parts).await.expect("sent"), parts));
                    if in_flight.len() == window {
                        let (commit, parts) = in_flight.pop_front().expect("in flight");
                        sent.push((commit.acked().await.expect("published"), parts));
                    }
                }
                for (commit, parts) in in_flight {
                    sent.push((commit.acked().await.expect("published"), parts));
                }
                sent
            })
        })
        .collect();
    let mut all = BTreeMap::new();
    for task in tasks {
        for (sequence, parts) in task.await.expect("publisher task") {
            assert!(all.insert(sequence, parts).is_none(), "sequence {sequence} given twice");
        }
    }
    all
}

/// Two replicas and one partition, fed by four publishers on two runtime threads, agree with
/// one in-process pipeline fed the same sequence on every path they keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_agree_with_one_pipeline_fed_the_same_sequence() {
    let server = Server::start("agree");
    let js = connect(&server).await;
    let spec = StreamSpec::new("agree");
    let (stop, stopped) = watch::channel(false);
    let partitions = [Partition::All, Partition::All, Partition::of(0, 2).expect("a partition")];
    let mut running = Vec::new();
    for (shards, partition) in [1, 2, 3].into_iter().zip(partitions) {
        let pipeline = sequenced(shards);
        let follower = Follower::new(&js, &spec, &pipeline, partition).await.expect("a follower");
        running.push((pipeline, partition, spawn_follower(follower, stopped.clone())));
    }
    let commits = publish(&js, &spec.subject, 4, 150).await;
    let last = *commits.keys().last().expect("commits");
    assert_eq!(commits.keys().copied().collect::<Vec<_>>(), (1..=last).collect::<Vec<_>>(), "gapless");
    let reference = reference(&commits);
    for (pipeline, _, _) in &running {
        caught_up(pipeline, last).await;
    }
    stop.send(true).expect("followers listen");
    for (pipeline, partition, task) in running {
        let (follower, outcome) = task.await.expect("follower task");
        assert_eq!(outcome, Ok(()));
        assert_eq!(follower.next(), last + 1);
        drop(follower);
        let snapshot = pipeline.shutdown().expect("shutdown");
        agrees(&snapshot, &reference, partition);
    }
}

/// The server restarts while publishers publish: they retry, the stream holds every commit
/// once (deduplicated by message id), and the follower continues and has every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_publish_loses_and_doubles_nothing() {
    let mut server = Server::start("restart");
    let js = connect(&server).await;
    let spec = StreamSpec::new("restart");
    let (stop, stopped) = watch::channel(false);
    let pipeline = sequenced(2);
    let follower = Follower::new(&js, &spec, &pipeline, Partition::All).await.expect("a follower");
    let task = spawn_follower(follower, stopped);
    let (publishers, each) = (3u64, 600u64);
    let publishing = {
        let (js, subject) = (js.clone(), spec.subject.clone());
        tokio::spawn(async move { publish(&js, &subject, publishers, each).await })
    };
    // Mid-publish: once the follower has seen some commits, and before the publishers finish.
    caught_up(&pipeline, 100).await;
    assert!(!publishing.is_finished(), "the publishers finished before the restart");
    tokio::task::block_in_place(|| server.restart());
    let commits = publishing.await.expect("publishers");
    let total = publishers * each;
    assert_eq!(commits.len() as u64, total);
    assert_eq!(*commits.keys().last().expect("commits"), total, "no commit stored twice");
    caught_up(&pipeline, total).await;
    stop.send(true).expect("the follower listens");
    let (_, outcome) = task.await.expect("follower task");
    assert_eq!(outcome, Ok(()));
    let snapshot = pipeline.shutdown().expect("shutdown");
    let mut records: Vec<u64> =
        snapshot.paths().flat_map(|p| snapshot.read(p).unwrap_or_default()).map(|(_, r)| r).collect();
    let mut sent: Vec<u64> = commits.values().flatten().map(|(_, r)| *r).collect();
    records.sort_unstable();
    sent.sort_unstable();
    assert_eq!(records, sent, "every record once");
    agrees(&snapshot, &reference(&commits), Partition::All);
}

/// A stream that allows deletes or purges is refused with `Error::Unguarded` by default (and
/// the pipeline's sequencer stays free for the next try); opted in, the follower reads it, and a
/// message deleted from it stops the follower with `Error::Gap`, at the sequence it expected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_stops_the_follower_with_a_gap() {
    let server = Server::start("gap");
    let js = connect(&server).await;
    let mut spec = StreamSpec::new("gap");
    let pipeline = sequenced(1);
    for (deny_delete, deny_purge) in [(false, true), (true, false), (false, false)] {
        let mut config = spec.config();
        config.name = format!("unguarded-{deny_delete}-{deny_purge}");
        config.subjects = vec![config.name.clone()];
        config.deny_delete = deny_delete;
        config.deny_purge = deny_purge;
        js.create_stream(config.clone()).await.expect("an unguarded stream");
        let unguarded = StreamSpec::new(config.name.clone());
        let refused = Follower::new(&js, &unguarded, &pipeline, Partition::All).await;
        assert_eq!(
            refused.map(|_| ()),
            Err(Error::Unguarded { stream: config.name.clone(), deny_delete, deny_purge })
        );
    }
    let mut config = spec.config();
    config.deny_delete = false;
    let stream = js.create_stream(config).await.expect("a stream that allows deletes");
    let mut publisher = Publisher::new(js.clone(), &spec.subject);
    for i in 0..5u64 {
        publisher.publish(&[("/a", i)]).await.expect("published");
    }
    assert!(stream.delete_message(3).await.expect("deleted"));
    spec.accept_unguarded = true;
    let mut follower = Follower::new(&js, &spec, &pipeline, Partition::All).await.expect("a follower");
    let outcome = tokio::time::timeout(PATIENCE, follower.run(std::future::pending())).await.expect("stops");
    assert_eq!(outcome, Err(Error::Gap { expected: 3, found: 4 }));
    caught_up(&pipeline, 2).await;
    assert_eq!(pipeline.snapshot().read("/a"), Some(vec![(1, 0), (2, 1)]));
}

/// A durable follower stopped and rebuilt on its directory reads on from its recovered
/// frontier + 1, and ends equal to the in-process pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_follower_goes_on_after_its_recovered_frontier() {
    let server = Server::start("durable");
    let dir = TempDir::new("durable-follower");
    let js = connect(&server).await;
    let spec = StreamSpec::new("durable");
    let open = || {
        Pipeline::builder(M::default()).shards(2).divisor(2).max_level(4).sequenced().durable(&dir.0).build()
    };
    spec.get_or_create(&js).await.expect("the stream");
    let mut commits = publish(&js, &spec.subject, 2, 60).await;
    {
        let pipeline = open().expect("a durable pipeline");
        let (stop, stopped) = watch::channel(false);
        let follower = Follower::new(&js, &spec, &pipeline, Partition::All).await.expect("a follower");
        let task = spawn_follower(follower, stopped);
        caught_up(&pipeline, 120).await;
        stop.send(true).expect("the follower listens");
        let (follower, outcome) = task.await.expect("follower task");
        assert_eq!(outcome, Ok(()));
        drop(follower);
        pipeline.shutdown().expect("shutdown");
    }
    commits.extend(publish(&js, &spec.subject, 2, 40).await);
    let pipeline = open().expect("reopened");
    assert_eq!(pipeline.snapshot().frontier(), 120);
    let (stop, stopped) = watch::channel(false);
    let follower = Follower::new(&js, &spec, &pipeline, Partition::All).await.expect("a follower");
    assert_eq!(follower.next(), 121);
    let task = spawn_follower(follower, stopped);
    caught_up(&pipeline, 200).await;
    stop.send(true).expect("the follower listens");
    let (follower, outcome) = task.await.expect("follower task");
    assert_eq!(outcome, Ok(()));
    drop(follower);
    agrees(&pipeline.shutdown().expect("shutdown"), &reference(&commits), Partition::All);
}
