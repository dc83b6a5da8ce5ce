//! A three-server JetStream cluster on loopback, the stream replicated on all three (R3): the
//! stream's leader is killed while publishers publish and a follower follows; a new leader is
//! elected, publishing and following go on, and the follower ends with every commit once, equal
//! to one in-process pipeline fed the same sequence.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, Context};
use common::{
    agrees, caught_up, free_port, publish_until, reference, sequenced, spawn_follower, Commits, Rng, Server,
    PATIENCE,
};
use lockstep_nats::{Partition, Publisher, StreamSpec};
use tokio::sync::watch;

/// Three servers `s0`, `s1`, `s2`, each with its own client port, route port and store, each
/// soliciting routes to the other two.
fn cluster(name: &str) -> Vec<Server> {
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    (0..3)
        .map(|i| {
            let dir = std::env::temp_dir().join(format!("lockstep-nats-{}-{name}-s{i}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("a temp dir");
            let others: Vec<String> =
                (0..3).filter(|&j| j != i).map(|j| format!("nats://127.0.0.1:{}", routes[j])).collect();
            let args = vec![
                "--server_name".to_owned(),
                format!("s{i}"),
                "--cluster_name".to_owned(),
                name.to_owned(),
                "--cluster".to_owned(),
                format!("nats://127.0.0.1:{}", routes[i]),
                "--routes".to_owned(),
                others.join(","),
            ];
            Server::with_args(free_port(), dir, args, true)
        })
        .collect()
}

/// The stream, once the cluster can make it: JetStream needs a meta leader elected and every
/// peer known before an R3 stream can be placed, which takes a few seconds after the servers
/// listen. Polled, never a fixed sleep.
async fn stream_when_ready(js: &Context, spec: &StreamSpec) -> jetstream::stream::Stream {
    // Asked often, each ask waiting a second (not the client's default five: a request the
    // cluster cannot answer yet goes unanswered).
    let mut js = js.clone();
    js.set_timeout(Duration::from_secs(1));
    let deadline = Instant::now() + PATIENCE;
    loop {
        match spec.get_or_create(&js).await {
            Ok(stream) => return stream,
            Err(error) => {
                assert!(Instant::now() < deadline, "the cluster never took the stream: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Kills the R3 stream's leader; publishing and following go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_stream_leader_of_a_three_server_cluster_loses_and_doubles_nothing() {
    let mut servers = cluster("lockstep-r3");
    let urls: Vec<String> = servers.iter().map(Server::url).collect();
    let client = async_nats::connect(urls).await.expect("connects to the cluster");
    let js = jetstream::new(client);
    let mut spec = StreamSpec::new("r3");
    spec.replicas = 3;
    let mut stream = stream_when_ready(&js, &spec).await;
    assert_eq!(stream.cached_info().config.num_replicas, 3);

    let pipeline = sequenced(2);
    let follower =
        lockstep_nats::Follower::new(&js, &spec, &pipeline, Partition::All).await.expect("a follower");
    let (stop_following, following) = watch::channel(false);
    let task = spawn_follower(follower, following);

    // Two publishers publish until told to stop, a commit about every millisecond each.
    let commits: Arc<Mutex<Commits>> = Arc::default();
    let (stop, stopped) = watch::channel(false);
    let publishers: Vec<_> = (0..2u64)
        .map(|p| {
            let (js, commits, stopped) = (js.clone(), Arc::clone(&commits), stopped.clone());
            let subject = spec.subject.clone();
            let publisher = Publisher::new(js, subject).patience(Duration::from_secs(50));
            tokio::spawn(publish_until(publisher, p, Rng::new(p + 11), commits, stopped))
        })
        .collect();
    let published = || commits.lock().expect("the commits").len() as u64;

    caught_up(&pipeline, 100).await;
    let info = stream.info().await.expect("the stream's info");
    let leader = info.cluster.as_ref().and_then(|c| c.leader.clone()).expect("the stream has a leader");
    let index: usize = leader.trim_start_matches('s').parse().expect("a leader named s0, s1 or s2");
    let before = published();
    tokio::task::block_in_place(|| servers[index].kill());

    // Publishing goes on (a new leader is elected; retries are deduplicated) and so does
    // following: 300 commits more than at the kill, all followed.
    let deadline = Instant::now() + PATIENCE;
    while published() < before + 300 {
        assert!(Instant::now() < deadline, "publishing stalled at {} after the kill", published());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).expect("the publishers listen");
    for publisher in publishers {
        publisher.await.expect("a publisher");
    }
    let commits = commits.lock().expect("the commits").clone();
    let last = *commits.keys().next_back().expect("commits");
    assert_eq!(
        commits.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>(),
        "gapless, once each"
    );
    caught_up(&pipeline, last).await;
    let info = stream.info().await.expect("the stream's info after the kill");
    let new_leader = info.cluster.as_ref().and_then(|c| c.leader.clone()).expect("a new leader");
    assert_ne!(new_leader, leader, "the killed server still leads");
    assert_eq!(info.state.messages, last, "the stream holds every commit once");

    stop_following.send(true).expect("the follower listens");
    let (follower, outcome) = task.await.expect("follower task");
    assert_eq!(outcome, Ok(()));
    assert_eq!(follower.next(), last + 1);
    drop(follower);
    let snapshot = pipeline.shutdown().expect("shutdown");
    agrees(&snapshot, &reference(&commits), Partition::All);
}
