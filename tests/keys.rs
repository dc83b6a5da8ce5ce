#![cfg(not(loom))]
//! Path keys: a commit by key lands where the same commit by name does, reads take either, a
//! key of another pipeline is refused, and iterating a snapshot returns what reads return.

mod common;

use std::collections::BTreeMap;

use lockstep::merge::{Concat, Sum};
use lockstep::{Error, PathKey, Pipeline};

#[test]
fn keys_and_names_are_the_same_paths() {
    let pipeline =
        Pipeline::builder(Concat::<u64>::default()).shards(3).divisor(2).max_level(3).build().expect("valid");
    let names: Vec<String> = (0..20).map(|i| format!("/k/{i}")).collect();
    let keys: Vec<PathKey> = names.iter().map(|n| pipeline.key(n).expect("a valid path")).collect();
    let mut producer = pipeline.producer().expect("a producer");
    let mut commits: common::Commits<u64> = Vec::new();
    let mut rng = common::Rng::new(7);
    for i in 0..300u64 {
        let a = rng.below(20) as usize;
        let b = rng.below(20) as usize;
        // Half by key, half by name, mixed within a commit.
        if i % 2 == 0 {
            producer.commit([(&keys[a], i), (&keys[b], i + 1)]).expect("accepted");
        } else {
            producer.commit([(names[a].as_str(), i), (names[b].as_str(), i + 1)]).expect("accepted");
        }
        commits.push(vec![(names[a].clone(), i), (names[b].clone(), i + 1)]);
    }
    let other = producer.key("/k/3").expect("a valid path");
    assert_eq!(other, keys[3], "a producer's key is the pipeline's key");
    let last = pipeline.shutdown().expect("shutdown");
    let total = last.frontier();
    for (path, records) in common::concat_reads(&commits, total) {
        let i: usize = path[3..].parse().expect("a number");
        assert_eq!(last.read(&keys[i]), Some(records.clone()), "{path} by key");
        assert_eq!(last.read(&path), Some(records), "{path} by name");
        assert_eq!(last.segments(&keys[i]), last.segments(&path));
    }
    let all: BTreeMap<String, Vec<(u64, u64)>> = last.iter().map(|(p, o)| (p.to_owned(), o)).collect();
    assert_eq!(all, common::concat_reads(&commits, total), "iter returns every path's read");
    let ones: Vec<&str> = last.iter_prefix("/k/1").map(|(p, _)| p).collect();
    assert!(ones.iter().all(|p| p.starts_with("/k/1")) && !ones.is_empty());
}

#[test]
fn a_key_of_another_pipeline_is_refused() {
    let one = Pipeline::builder(Sum).build().expect("valid");
    let two = Pipeline::builder(Sum).build().expect("valid");
    let key = one.key("/a").expect("valid");
    let mut producer = two.producer().expect("a producer");
    assert_eq!(producer.commit([(&key, 1)]), Err(Error::ForeignKey));
    let refused = producer.try_commit([(key.clone(), 1)]).expect_err("refused");
    assert_eq!((refused.error, refused.parts.len()), (Error::ForeignKey, 1));
    assert_eq!(two.stats().commits, 0, "a refusal takes no number");
    producer.commit([("/a", 5)]).expect("accepted");
    let last = two.shutdown().expect("shutdown");
    assert_eq!(last.read(&key), None, "another pipeline's key reads nothing");
    assert_eq!(last.read("/a"), Some(5));
}

#[test]
fn commit_many_numbers_consecutively_and_refuses_whole() {
    let pipeline = Pipeline::builder(Concat::<u64>::default()).shards(2).build().expect("valid");
    let mut producer = pipeline.producer().expect("a producer");
    assert_eq!(producer.commit([("/a", 0)]), Ok(1));
    let numbers = producer
        .commit_many((0..50u64).map(|i| vec![("/a".to_owned(), i), (format!("/b/{}", i % 3), i)]))
        .expect("accepted");
    assert_eq!(numbers, 2..=51);
    // One empty commit, or one bad path, refuses the whole call and takes no number.
    let with_empty: Vec<Vec<(&str, u64)>> = vec![vec![("/a", 1)], vec![]];
    assert_eq!(producer.commit_many(with_empty), Err(Error::EmptyCommit));
    assert_eq!(producer.commit_many([[("/a", 1)], [("", 2)]]), Err(Error::EmptyPath));
    let none: [[(&str, u64); 1]; 0] = [];
    assert_eq!(producer.commit_many(none), Err(Error::EmptyCommit));
    assert_eq!(producer.commit([("/a", 99)]), Ok(52), "the refusals took no number");
    let last = pipeline.shutdown().expect("shutdown");
    let mut expected = vec![(1, 0)];
    expected.extend((0..50).map(|i| (i + 2, i)));
    expected.push((52, 99));
    assert_eq!(last.read("/a"), Some(expected));
    assert_eq!(last.read("/b/1").map(|r| r.len()), Some(17));
}
