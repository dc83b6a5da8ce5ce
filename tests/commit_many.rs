//! `commit_many`: batches of any size, from any number of producers, go through and end exactly
//! as the reference model says.
//!
//! A batch is numbered with one step of the counter, so one announcement covers all of its
//! commits until its parts are enqueued. A batch holding more parts for one shard than twice
//! that shard's queue once hung for good: the worker stopped popping a queue whose pending list
//! spanned two commits, while the batch's announcement pinned the frontier below them.

mod common;

use common::{bounded, concat_reads, gapless, layouts, Commits, Rng};
use lockstep::merge::Concat;
use lockstep::Pipeline;

/// Each script is one producer's batches (each batch a list of commits); every producer commits
/// its batches with `commit_many` from a thread of its own. Checks the numbers (gapless, each
/// batch consecutive) and the final layout and reads against the model.
fn run(shards: usize, queue: usize, scripts: Vec<Vec<Commits<u64>>>) {
    let (divisor, max_level) = (4, 3);
    let pipeline = Pipeline::builder(Concat::<u64>::default())
        .shards(shards)
        .divisor(divisor)
        .max_level(max_level)
        .queue_capacity(queue)
        .build()
        .expect("a valid config");
    let producers: Vec<_> = scripts.iter().map(|_| pipeline.producer().expect("a producer")).collect();
    let (numbered, last) = bounded("every batch and the shutdown", move || {
        let numbered: Vec<(u64, Vec<(String, u64)>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = producers
                .into_iter()
                .zip(scripts)
                .map(|(mut producer, batches)| {
                    scope.spawn(move || {
                        let mut numbered = Vec::new();
                        for batch in batches {
                            let numbers = producer.commit_many(batch.clone()).expect("a valid batch");
                            assert_eq!(numbers.clone().count(), batch.len(), "one number per commit");
                            numbered.extend(numbers.zip(batch));
                        }
                        numbered
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("producer thread")).collect()
        });
        (numbered, pipeline.shutdown().expect("clean shutdown"))
    });
    let commits = gapless(numbered);
    let frontier = commits.len() as u64;
    assert_eq!(last.frontier(), frontier);
    let expected = layouts(&commits, divisor, max_level, frontier);
    for (path, reads) in concat_reads(&commits, frontier) {
        assert_eq!(last.segments(&path), expected[&path], "segments of {path}");
        assert_eq!(last.read(&path), Some(reads), "records of {path}");
    }
}

/// One part per commit, `commits` commits, over `paths` paths chosen by a seeded RNG.
fn batch(rng: &mut Rng, commits: usize, paths: u64, tag: u64) -> Commits<u64> {
    (0..commits).map(|i| vec![(format!("/p{}", rng.below(paths)), tag * 1_000_000 + i as u64)]).collect()
}

#[test]
fn a_batch_many_times_the_queue_goes_through() {
    let mut rng = Rng::new(1);
    // 20,000 one-part commits into a queue of 64: over 300 queues' worth for one shard.
    run(1, 64, vec![vec![batch(&mut rng, 20_000, 1, 0)]]);
}

#[test]
fn batches_from_several_producers_over_several_shards_go_through() {
    let mut rng = Rng::new(2);
    let scripts = (0..3)
        .map(|producer| (0..4).map(|b| batch(&mut rng, 3_000, 50, producer * 10 + b)).collect())
        .collect();
    run(2, 16, scripts);
}

#[test]
fn batches_of_commits_larger_than_the_queue_go_through() {
    let mut rng = Rng::new(3);
    // Each commit has more parts for its shard than the queue holds, and the batch many more.
    let wide = |rng: &mut Rng, tag: u64| -> Commits<u64> {
        (0..50)
            .map(|i| (0..12).map(|k| (format!("/w{}", rng.below(7)), tag * 1_000 + i * 12 + k)).collect())
            .collect()
    };
    let scripts = (0..2).map(|p| vec![wide(&mut rng, p), wide(&mut rng, p + 2)]).collect();
    run(1, 8, scripts);
}
