#![cfg(not(loom))]
//! Idle workers look for work for `Builder::idle_spin`, then park; `Stats::worker_parks` counts
//! the parks.

mod common;

use std::time::Duration;

use common::{eventually, PATIENCE};
use lockstep::merge::Sum;
use lockstep::Pipeline;

#[test]
fn with_no_spin_an_idle_worker_parks_and_still_serves_every_commit() {
    let pipeline = Pipeline::builder(Sum).shards(1).idle_spin(Duration::ZERO).build().unwrap();
    eventually("the idle worker parks", || pipeline.stats().worker_parks > 0);
    let mut producer = pipeline.producer().unwrap();
    for commit in 1..=3 {
        let parks = pipeline.stats().worker_parks;
        producer.commit([("/a", 1)]).unwrap();
        pipeline.wait_sealed(commit, PATIENCE).unwrap();
        eventually("the worker parks again", || pipeline.stats().worker_parks > parks);
    }
    drop(producer);
    assert_eq!(pipeline.shutdown().unwrap().read("/a"), Some(3));
}

#[test]
fn a_worker_spinning_longer_than_the_gaps_never_parks() {
    let pipeline = Pipeline::builder(Sum).shards(1).idle_spin(Duration::from_secs(3600)).build().unwrap();
    let mut producer = pipeline.producer().unwrap();
    for commit in 1..=3 {
        producer.commit([("/a", 1)]).unwrap();
        pipeline.wait_sealed(commit, PATIENCE).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pipeline.stats().worker_parks, 0);
    drop(producer);
    assert_eq!(pipeline.shutdown().unwrap().read("/a"), Some(3));
}
