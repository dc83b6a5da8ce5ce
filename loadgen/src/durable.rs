//! `--durable DIR`: the fresh directory each durable run logs into, and the disk's limit
//! measured in DIR before the engines (as [`crate::limit`] measures the hand-off's).
//!
//! **Whose data.** The loadgen never writes into DIR itself, and never removes anything it did
//! not create: each use takes a new subdirectory `DIR/loadgen-PID-N` (made with `create_dir`,
//! which fails rather than reuse an existing one), and removes that subdirectory afterwards
//! unless `--keep-durable` asks to keep it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::engine::Failure;
use crate::latency::{self, histogram, nanos};

/// Subdirectories taken by this process so far (their names' N).
static TAKEN: AtomicU32 = AtomicU32::new(0);

/// A subdirectory of DIR this process created, and removes when asked.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates DIR if missing, then a new `DIR/loadgen-PID-N`.
    pub fn new(dir: &Path) -> Result<Self, Failure> {
        fs::create_dir_all(dir)
            .map_err(|error| format!("--durable {}: cannot create it: {error}", dir.display()))?;
        let n = TAKEN.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("loadgen-{}-{n}", std::process::id()));
        fs::create_dir(&path).map_err(|error| {
            format!("--durable: cannot create the fresh directory {}: {error}", path.display())
        })?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in every file below it.
    pub fn bytes(&self) -> u64 {
        tree_bytes(&self.path)
    }

    /// Removes it and everything in it (all written by this run).
    pub fn remove(self) -> Result<(), Failure> {
        fs::remove_dir_all(&self.path)
            .map_err(|error| format!("cannot remove {}: {error}", self.path.display()).into())
    }
}

/// Bytes in every file below `path`.
pub fn tree_bytes(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => tree_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// The disk's limit in DIR.
#[derive(Debug, Clone)]
pub struct Disk {
    /// Where it was measured (DIR).
    pub dir: PathBuf,
    /// Sequential appends of 1 MiB, then one fdatasync: bytes over the time to the end of the
    /// sync.
    pub append_bytes_per_sec: f64,
    /// 4 KiB appends each followed by fdatasync, one after another.
    pub fdatasyncs_per_sec: f64,
    /// Each 4 KiB append + fdatasync, nanoseconds.
    pub fdatasync_latency: Histogram<u64>,
}

/// How long each half of the disk limit runs.
pub const DISK_FOR: Duration = Duration::from_millis(700);
/// The largest file the append half writes (it stops at DISK_FOR or this, whichever first).
const APPEND_AT_MOST: u64 = 512 << 20;

/// Measures the disk in a fresh subdirectory of `dir`, removed afterwards.
pub fn measure_disk(dir: &Path) -> Result<Disk, Failure> {
    let scratch = Scratch::new(dir)?;
    let result = measure_in(scratch.path());
    scratch.remove()?;
    let (append_bytes_per_sec, fdatasyncs_per_sec, fdatasync_latency) = result?;
    Ok(Disk { dir: dir.to_path_buf(), append_bytes_per_sec, fdatasyncs_per_sec, fdatasync_latency })
}

fn measure_in(dir: &Path) -> Result<(f64, f64, Histogram<u64>), Failure> {
    let open = |name: &str| OpenOptions::new().create_new(true).append(true).open(dir.join(name));
    // Sequential appends, synced once at the end: what the disk takes in a stream.
    let mut file: File = open("append")?;
    let chunk = vec![0x5au8; 1 << 20];
    let started = Instant::now();
    let mut written = 0u64;
    while started.elapsed() < DISK_FOR && written < APPEND_AT_MOST {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    file.sync_data()?;
    let append = written as f64 / started.elapsed().as_secs_f64().max(1e-9);
    drop(file);
    fs::remove_file(dir.join("append"))?;

    // 4 KiB appends, each fdatasync'ed: a log's group commit at its smallest.
    let mut file = open("sync")?;
    let page = vec![0xa5u8; 4096];
    let mut latency = histogram();
    let started = Instant::now();
    let mut syncs = 0u64;
    while started.elapsed() < DISK_FOR {
        let at = Instant::now();
        file.write_all(&page)?;
        file.sync_data()?;
        latency::record(&mut latency, nanos(at.elapsed()));
        syncs += 1;
    }
    let syncs_per_sec = syncs as f64 / started.elapsed().as_secs_f64().max(1e-9);
    drop(file);
    fs::remove_file(dir.join("sync"))?;
    Ok((append, syncs_per_sec, latency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_directories_are_fresh_and_removed_alone() {
        let dir = std::env::temp_dir().join(format!("loadgen-durable-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // Someone's data in DIR stays.
        fs::write(dir.join("keep"), b"mine").unwrap();
        let a = Scratch::new(&dir).unwrap();
        let b = Scratch::new(&dir).unwrap();
        assert_ne!(a.path(), b.path());
        fs::create_dir(a.path().join("shard-0000")).unwrap();
        fs::write(a.path().join("shard-0000").join("log"), [0u8; 100]).unwrap();
        assert_eq!(a.bytes(), 100);
        a.remove().unwrap();
        b.remove().unwrap();
        assert_eq!(fs::read(dir.join("keep")).unwrap(), b"mine");
        let disk = measure_disk(&dir).unwrap();
        assert!(disk.append_bytes_per_sec > 0.0 && disk.fdatasyncs_per_sec > 0.0);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only the user's file is left");
        fs::remove_dir_all(&dir).unwrap();
    }
}
