//! A worker thread the system will not start is an I/O error naming what failed, not a
//! configuration error and not a panic.
//!
//! Its own binary without the test harness: the default stack size of new threads is read once
//! per process from `RUST_MIN_STACK`, so it is set here before any thread starts, to a size no
//! thread can get (32 TiB), and every spawn fails as it would when the system is out of
//! threads or memory.

use lockstep::merge::Sum;
use lockstep::{Error, Pipeline};

fn main() {
    // Before any thread is spawned in this process (there is no harness to spawn one).
    std::env::set_var("RUST_MIN_STACK", (1u64 << 45).to_string());
    match Pipeline::builder(Sum).shards(2).build() {
        Err(Error::Io { what, kind, message }) => {
            assert!(what.contains("worker thread of shard 0"), "names what failed: {what:?}");
            assert!(!message.is_empty(), "carries the system's message ({kind:?})");
            println!("test a_worker_that_cannot_start_is_an_io_error ... ok");
        }
        Err(other) => panic!("refused with {other:?}, not Error::Io"),
        Ok(_) => panic!("started although no thread can be spawned"),
    }
}
