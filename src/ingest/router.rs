//! Which shard owns a path, and what it is called there: routing, path validation and the
//! shards' directories behind one type.
//!
//! A path goes to shard `hash(path) % shards`, always the same one for a pipeline, and is
//! interned in that shard's [`Directory`] to a dense id, which is what travels to the worker.
//! Producers resolve a name once and keep its route; readers resolve names through the same
//! router.

use std::hash::{BuildHasher, Hasher};

use siphasher::sip::SipHasher13;

use crate::error::Error;
use crate::ingest::key::{PathKey, PathRef};
use crate::shard::directory::Directory;
use crate::sync::Arc;

/// Numbers pipelines, so a key is refused by every pipeline but its own. A plain std atomic: a
/// static, outside every loom model, and only its uniqueness matters.
static NEXT_PIPELINE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Routes, validates and names the paths of one pipeline.
///
/// The hash is SipHash-1-3 keyed with 128 random bits drawn when the pipeline starts: paths
/// from untrusted clients cannot be crafted to land on one shard (the key is never shown, and
/// SipHash is built to keep it so), and no two pipelines route alike. Each producer hashes a
/// name once and keeps its route, so the hash's cost is paid once per path per producer, and
/// once per read by name. With one shard nothing is hashed.
#[derive(Debug)]
pub(crate) struct Router {
    /// This pipeline's number in the process: the keys it makes carry it.
    pipeline: u64,
    key: (u64, u64),
    max_path_len: usize,
    directories: Box<[Arc<Directory>]>,
}

impl Router {
    /// A router over `shards` shards with a fresh random key and empty directories.
    pub(crate) fn new(shards: usize, max_path_len: usize) -> Self {
        // std's RandomState is SipHash keyed from the OS's randomness; two of its outputs make
        // a key nobody outside this process can know.
        let random = std::collections::hash_map::RandomState::new();
        Self::with_key(shards, max_path_len, (random.hash_one(0u8), random.hash_one(1u8)))
    }

    /// A router with a given key: a durable pipeline reopened routes as it did before.
    pub(crate) fn with_key(shards: usize, max_path_len: usize, key: (u64, u64)) -> Self {
        Self {
            // Relaxed: only uniqueness matters.
            pipeline: NEXT_PIPELINE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            key,
            max_path_len,
            directories: (0..shards).map(|_| Arc::default()).collect(),
        }
    }

    /// The routing key (kept in a durable pipeline's manifest).
    pub(crate) fn routing_key(&self) -> (u64, u64) {
        self.key
    }

    pub(crate) fn shards(&self) -> usize {
        self.directories.len()
    }

    /// The shard that owns `path`.
    pub(crate) fn shard_of(&self, path: &str) -> usize {
        let shards = self.shards();
        if shards == 1 {
            return 0; // no hash to pay for
        }
        let mut hasher = SipHasher13::new_with_keys(self.key.0, self.key.1);
        hasher.write(path.as_bytes());
        (hasher.finish() % shards as u64) as usize
    }

    /// Shard `shard`'s directory.
    pub(crate) fn directory(&self, shard: usize) -> &Arc<Directory> {
        &self.directories[shard]
    }

    /// Every shard's directory, by shard.
    pub(crate) fn directories(&self) -> &[Arc<Directory>] {
        &self.directories
    }

    /// Validates `path` and resolves it to its shard and id there, interning it if new.
    pub(crate) fn key(&self, path: &str) -> Result<PathKey, Error> {
        if path.is_empty() {
            return Err(Error::EmptyPath);
        }
        let max = self.max_path_len;
        if path.len() > max {
            return Err(Error::PathTooLong { len: path.len(), max });
        }
        let shard = self.shard_of(path);
        let directory = &self.directories[shard];
        let id = directory.intern(path);
        let name = directory.name(id).clone();
        Ok(PathKey { pipeline: self.pipeline, shard: shard as u32, id, name })
    }

    /// The shard and id `key` names, if it is a key of this pipeline.
    pub(crate) fn resolve(&self, key: &PathKey) -> Result<(u32, u32), Error> {
        if key.pipeline != self.pipeline {
            return Err(Error::ForeignKey);
        }
        Ok((key.shard, key.id))
    }

    /// The shard and id of the path `path` names, if it is one of this pipeline's interned
    /// paths (never another pipeline's key).
    pub(crate) fn locate(&self, path: PathRef<'_>) -> Option<(usize, u32)> {
        match path {
            PathRef::Key(key) => self.resolve(key).ok().map(|(shard, id)| (shard as usize, id)),
            PathRef::Name(name) => {
                let shard = self.shard_of(name);
                self.directories[shard].id(name).map(|id| (shard, id))
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The same path always goes to the same shard of a pipeline; 1,000 paths spread over
    /// every shard; and another pipeline's router (another key) routes them otherwise.
    #[test]
    fn routing_is_stable_spreads_and_is_keyed_per_pipeline() {
        let shards = 4;
        let (router, other) = (Router::new(shards, 64), Router::new(shards, 64));
        let paths: Vec<String> = (0..1000).map(|i| format!("/p/{i}")).collect();
        let first: Vec<usize> = paths.iter().map(|path| router.shard_of(path)).collect();
        let again: Vec<usize> = paths.iter().map(|path| router.shard_of(path)).collect();
        assert_eq!(first, again, "a path's shard never changes within a pipeline");
        let mut seen = [0usize; 4];
        for &shard in &first {
            seen[shard] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "uneven routing: {seen:?}");
        let moved = paths.iter().zip(&first).filter(|&(path, &shard)| other.shard_of(path) != shard).count();
        // Independent keys move about three in four paths; a fixed key would move none.
        assert!(moved > 500, "only {moved} of 1000 paths route differently under another key");
        let one = Router::new(1, 64);
        assert!(paths.iter().all(|path| one.shard_of(path) == 0));
    }

    #[test]
    fn keys_are_validated_interned_and_located() -> Result<(), Error> {
        let router = Router::new(3, 8);
        assert_eq!(router.key(""), Err(Error::EmptyPath));
        assert_eq!(router.key("/too/long"), Err(Error::PathTooLong { len: 9, max: 8 }));
        let key = router.key("/a")?;
        assert_eq!(router.key("/a")?, key);
        let at = Some((key.shard as usize, key.id));
        assert_eq!(router.resolve(&key), Ok((key.shard, key.id)));
        assert_eq!(router.locate(PathRef::Name("/a")), at);
        assert_eq!(router.locate(PathRef::Key(&key)), at);
        assert_eq!(router.locate(PathRef::Name("/b")), None, "never interned");
        let foreign = Router::new(3, 8).key("/a")?;
        assert_eq!(router.resolve(&foreign), Err(Error::ForeignKey));
        assert_eq!(router.locate(PathRef::Key(&foreign)), None);
        Ok(())
    }
}
