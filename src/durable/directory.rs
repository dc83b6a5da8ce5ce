//! A durable pipeline's directory: who holds it, and the settings it was written with.
//!
//! - `LOCK`: an empty file holding an exclusive lock (`File::try_lock`) for the life of the
//!   pipeline; a second pipeline opening the directory gets [`Error::Locked`]. The lock goes
//!   with the process, so a crashed pipeline never leaves the directory locked.
//! - `MANIFEST`: the settings every file depends on, as text (`key value` lines), written once
//!   when the directory is made: to a temporary name, synced, renamed, and the directory synced.
//!   Reopening with other settings is [`Error::Incompatible`] naming each that differs.
//!
//! ```text
//! lockstep-manifest 1
//! divisor 4
//! max_level 8
//! shards 2
//! merge lockstep::merge::Sum
//! routing 0123456789abcdef 0123456789abcdef
//! ```
//!
//! The routing key is the pipeline's random SipHash key (`crate::ingest::router`): a reopened
//! pipeline routes every path to the shard whose log holds it.

use std::path::Path;

use crate::durable::storage::{Storage, StorageFile, StorageLock};
use crate::error::Error;

/// The manifest format this lockstep writes and reads.
const MANIFEST_VERSION: u32 = 1;

/// The settings a durable directory was written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) divisor: u64,
    pub(crate) max_level: u32,
    pub(crate) shards: usize,
    /// The merge's type name: another merge would read the records differently.
    pub(crate) merge: String,
    /// The routing key.
    pub(crate) routing: (u64, u64),
}

impl Manifest {
    fn encode(&self) -> String {
        format!(
            "lockstep-manifest {MANIFEST_VERSION}\ndivisor {}\nmax_level {}\nshards {}\nmerge {}\nrouting {:016x} {:016x}\n",
            self.divisor, self.max_level, self.shards, self.merge, self.routing.0, self.routing.1
        )
    }

    fn decode(text: &str, file: &Path) -> Result<Self, Error> {
        let corrupt = |why: String| Error::Corrupt { file: file.display().to_string(), offset: 0, why };
        let mut lines = text.lines();
        match lines.next().and_then(|line| line.strip_prefix("lockstep-manifest ")) {
            Some(version) if version == MANIFEST_VERSION.to_string() => {}
            Some(version) => {
                return Err(Error::Incompatible {
                    file: file.display().to_string(),
                    why: format!(
                        "manifest version {version}; this lockstep reads version {MANIFEST_VERSION}"
                    ),
                })
            }
            None => return Err(corrupt("not a lockstep manifest".into())),
        }
        let mut field = |name: &str| -> Result<String, Error> {
            let line = lines.next().ok_or_else(|| corrupt(format!("no `{name}` line")))?;
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| corrupt(format!("`{line}` where `{name}` belongs")))
        };
        let number = |name: &str, text: String| {
            text.parse::<u64>().map_err(|_| corrupt(format!("`{name}` is not a number: {text}")))
        };
        let divisor = number("divisor", field("divisor")?)?;
        let max_level = u32::try_from(number("max_level", field("max_level")?)?)
            .map_err(|_| corrupt("`max_level` is out of range".into()))?;
        let shards = usize::try_from(number("shards", field("shards")?)?)
            .map_err(|_| corrupt("`shards` is out of range".into()))?;
        let merge = field("merge")?;
        let routing = field("routing")?;
        let key = |hex: Option<&str>| hex.and_then(|hex| u64::from_str_radix(hex, 16).ok());
        let mut halves = routing.split(' ');
        let (Some(k0), Some(k1)) = (key(halves.next()), key(halves.next())) else {
            return Err(corrupt(format!("`routing` is not two hex words: {routing}")));
        };
        Ok(Self { divisor, max_level, shards, merge, routing: (k0, k1) })
    }

    /// Every setting of `self` (as found) that differs from `wanted` (as configured).
    fn differences(&self, wanted: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |name: &str, found: String, asked: String| {
            if found != asked {
                out.push(format!("{name} {found} in the directory, {asked} configured"));
            }
        };
        differ("divisor", self.divisor.to_string(), wanted.divisor.to_string());
        differ("max_level", self.max_level.to_string(), wanted.max_level.to_string());
        differ("shards", self.shards.to_string(), wanted.shards.to_string());
        differ("merge", self.merge.clone(), wanted.merge.clone());
        out
    }
}

/// An open durable directory: locked, its manifest checked.
#[derive(Debug)]
pub(crate) struct Directory {
    pub(crate) manifest: Manifest,
    /// Holds the lock until the pipeline is gone.
    _lock: StorageLock,
}

impl Directory {
    /// Opens (or makes) `root`: takes its lock, and reads its manifest, or writes `wanted` as
    /// the manifest of a new directory. The routing key of an existing manifest is kept.
    pub(crate) fn open<S: Storage>(storage: &S, root: &Path, wanted: Manifest) -> Result<Self, Error> {
        let shown = root.display().to_string();
        storage.create_dir(root).map_err(|e| Error::io(format!("creating {shown}"), &e))?;
        let lock = match storage.lock(root) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Err(Error::Locked { dir: shown }),
            Err(e) => return Err(Error::io(format!("locking {shown}"), &e)),
        };
        let path = root.join("MANIFEST");
        let manifest = match storage.read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| Error::Corrupt {
                    file: path.display().to_string(),
                    offset: 0,
                    why: "not UTF-8".into(),
                })?;
                let found = Manifest::decode(&text, &path)?;
                let differences = found.differences(&wanted);
                if !differences.is_empty() {
                    return Err(Error::Incompatible {
                        file: path.display().to_string(),
                        why: differences.join("; "),
                    });
                }
                found
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                write_atomically(storage, root, "MANIFEST", wanted.encode().as_bytes())?;
                wanted
            }
            Err(error) => return Err(Error::io(format!("reading {}", path.display()), &error)),
        };
        Ok(Self { manifest, _lock: lock })
    }
}

/// Writes `name` in `dir` so that a crash leaves the old file or the new one whole: a
/// temporary file, synced, renamed over it, and the directory synced.
fn write_atomically<S: Storage>(storage: &S, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let temporary = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let what = |doing: &str, path: &Path| format!("{doing} {}", path.display());
    // A temporary file a crash left behind is stale: start it again.
    let _ = storage.remove(&temporary);
    let mut file = storage.create(&temporary).map_err(|e| Error::io(what("creating", &temporary), &e))?;
    file.append(bytes).map_err(|e| Error::io(what("writing", &temporary), &e))?;
    file.sync().map_err(|e| Error::io(what("syncing", &temporary), &e))?;
    storage.rename(&temporary, &target).map_err(|e| Error::io(what("renaming", &temporary), &e))?;
    storage.sync_dir(dir).map_err(|e| Error::io(what("syncing", dir), &e))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            divisor: 4,
            max_level: 8,
            shards: 2,
            merge: "lockstep::merge::Sum".into(),
            routing: (1, u64::MAX),
        }
    }

    #[test]
    fn a_manifest_round_trips_and_names_what_differs() -> Result<(), Error> {
        let path = Path::new("MANIFEST");
        let wanted = manifest();
        assert_eq!(Manifest::decode(&wanted.encode(), path)?, wanted);
        let other = Manifest { divisor: 2, shards: 3, routing: (5, 6), ..manifest() };
        assert_eq!(
            other.differences(&wanted),
            ["divisor 2 in the directory, 4 configured", "shards 3 in the directory, 2 configured"],
            "the routing key is the directory's own, never a difference"
        );
        let newer = wanted.encode().replace("lockstep-manifest 1", "lockstep-manifest 2");
        assert!(matches!(Manifest::decode(&newer, path), Err(Error::Incompatible { .. })));
        let cut = &wanted.encode()[..40];
        assert!(matches!(Manifest::decode(cut, path), Err(Error::Corrupt { .. })));
        Ok(())
    }
}
