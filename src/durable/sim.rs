//! An in-memory [`Storage`] that remembers what was synced, for tests.
//!
//! A power cut ([`SimStorage::crash`]) keeps what a real disk must keep and a random share of
//! the rest, as Pebble's crash-clone file system does: every file keeps its synced bytes and a
//! prefix of random length of what was written after (a torn tail); names created, removed or
//! renamed since their directory's last sync keep a random prefix of those changes (a journaling
//! file system applies them in order), so a file whose directory was never synced may vanish.
//! Rewrites after a sync (only a truncation, here) survive whole or not at all. Directories
//! themselves are taken to last once made.
//!
//! Faults are inputs: the next write or sync can fail with ENOSPC or EIO, a write can stop
//! short, the disk can be full until freed, and the power can go off after a given number of
//! operations, which fail from then on (the image of that moment is kept for the test).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use crate::durable::storage::{Storage, StorageFile, StorageLock, SyncHandle};
use crate::sync::{Arc, Mutex, MutexGuard};

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// No space left on the device (ENOSPC).
    NoSpace,
    /// An I/O error (EIO).
    Eio,
}

impl Fault {
    fn error(self) -> io::Error {
        match self {
            Fault::NoSpace => {
                io::Error::new(io::ErrorKind::StorageFull, "no space left on device (simulated)")
            }
            Fault::Eio => io::Error::other("input/output error (simulated)"),
        }
    }
}

/// A small seeded generator (SplitMix64): crashes are reproducible from their seed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`.
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            self.next_u64()
        } else {
            self.next_u64() % (max + 1)
        }
    }
}

/// An in-memory file system; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimStorage {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Clone, Default)]
struct State {
    /// File contents by inode; never removed (an open handle outlives its name).
    inodes: Vec<Inode>,
    /// Names as a listing sees them now.
    names: BTreeMap<PathBuf, usize>,
    /// Names as of each directory's last sync.
    durable: BTreeMap<PathBuf, usize>,
    /// Name changes not yet synced, in order.
    pending: Vec<NameChange>,
    dirs: BTreeSet<PathBuf>,
    /// Directories locked (by a process that is alive: a crash lets them go).
    locks: BTreeSet<PathBuf>,
    faults: Faults,
    power: Power,
    /// Every sync sleeps this long before it starts (a slow disk: a wider window between a
    /// write and the sync that covers it).
    sync_delay: std::time::Duration,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug, Clone)]
enum NameChange {
    Link(PathBuf, usize),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl NameChange {
    fn dir(&self) -> Option<&Path> {
        match self {
            NameChange::Link(path, _) | NameChange::Unlink(path) | NameChange::Rename(_, path) => {
                path.parent()
            }
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, usize>) {
        match self {
            NameChange::Link(path, inode) => {
                names.insert(path.clone(), *inode);
            }
            NameChange::Unlink(path) => {
                names.remove(path);
            }
            NameChange::Rename(from, to) => {
                if let Some(inode) = names.remove(from) {
                    names.insert(to.clone(), inode);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Faults {
    /// The next write fails with this after writing at most the given bytes.
    write: Option<(Fault, usize)>,
    /// The next sync fails with this.
    sync: Option<Fault>,
    /// The next sync of a directory fails with this.
    dir_sync: Option<Fault>,
    /// Every write fails with ENOSPC (after what fits: nothing).
    full: bool,
}

#[derive(Debug, Clone, Default)]
enum Power {
    #[default]
    On,
    /// Goes off before the operation after `ops` more.
    CutAfter { ops: u64, seed: u64 },
    /// Off: every operation fails; the image of the moment it went off.
    Off(Box<State>),
}

impl Inode {
    /// What a power cut leaves of this file.
    fn after_crash(&self, rng: &mut Rng) -> Inode {
        let data = match self.data.strip_prefix(&self.synced[..]) {
            Some(unsynced) => {
                let kept = rng.up_to(unsynced.len() as u64) as usize;
                [&self.synced[..], &unsynced[..kept]].concat()
            }
            None if rng.up_to(1) == 0 => self.synced.clone(),
            None => self.data.clone(),
        };
        Inode { synced: data.clone(), data }
    }
}

impl State {
    fn crash(&self, seed: u64) -> State {
        let mut rng = Rng::new(seed);
        let mut names = self.durable.clone();
        let kept = rng.up_to(self.pending.len() as u64) as usize;
        for change in &self.pending[..kept] {
            change.apply(&mut names);
        }
        State {
            inodes: self.inodes.iter().map(|inode| inode.after_crash(&mut rng)).collect(),
            durable: names.clone(),
            names,
            pending: Vec::new(),
            dirs: self.dirs.clone(),
            locks: BTreeSet::new(),
            faults: Faults::default(),
            power: Power::On,
            sync_delay: std::time::Duration::ZERO,
        }
    }

    /// Counts an operation against a power cut; fails it once the power is off.
    fn op(&mut self) -> io::Result<()> {
        match &mut self.power {
            Power::On => Ok(()),
            &mut Power::CutAfter { ops: 0, seed } => {
                let image = self.crash(seed);
                self.power = Power::Off(Box::new(image));
                Err(Self::off())
            }
            Power::CutAfter { ops, .. } => {
                *ops -= 1;
                Ok(())
            }
            Power::Off(_) => Err(Self::off()),
        }
    }

    fn off() -> io::Error {
        io::Error::other("the power is off (simulated)")
    }

    fn inode(&self, path: &Path) -> io::Result<usize> {
        self.names.get(path).copied().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file (simulated)", path.display()))
        })
    }

    fn change(&mut self, change: NameChange) {
        change.apply(&mut self.names);
        self.pending.push(change);
    }
}

impl SimStorage {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding it has failed already; its state is still sound.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn from_state(state: State) -> Self {
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// What a power cut now leaves, as a new file system (this one is untouched).
    pub(crate) fn crash(&self, seed: u64) -> SimStorage {
        Self::from_state(self.state().crash(seed))
    }

    /// What a process killed now leaves: every byte handed over, unsynced ones included, and
    /// no lock (the kernel lets a dead process's locks go), as a new file system.
    pub(crate) fn kill(&self) -> SimStorage {
        let mut state = self.state().clone();
        state.locks.clear();
        Self::from_state(state)
    }

    /// An independent copy of the file system as it is now, unsynced bytes included.
    pub(crate) fn fork(&self) -> SimStorage {
        Self::from_state(self.state().clone())
    }

    /// Cuts the power before the operation after `ops` more (every call counts, reads too);
    /// from then on every operation fails.
    pub(crate) fn cut_power_after(&self, ops: u64, seed: u64) {
        self.state().power = Power::CutAfter { ops, seed };
    }

    /// What the power cut left, once it has happened.
    pub(crate) fn after_power_cut(&self) -> Option<SimStorage> {
        match &self.state().power {
            Power::Off(image) => Some(Self::from_state((**image).clone())),
            _ => None,
        }
    }

    /// The next write fails with `fault`, after writing at most `keep` of its bytes.
    pub(crate) fn fail_next_write(&self, fault: Fault, keep: usize) {
        self.state().faults.write = Some((fault, keep));
    }

    /// The next sync (of a file or a directory) fails with `fault`.
    pub(crate) fn fail_next_sync(&self, fault: Fault) {
        self.state().faults.sync = Some(fault);
    }

    /// The next sync of a directory fails with `fault` (file syncs go on working): a log
    /// rotation's own sync, where nothing else syncs the directory.
    pub(crate) fn fail_next_dir_sync(&self, fault: Fault) {
        self.state().faults.dir_sync = Some(fault);
    }

    /// Every sync (of a file or a directory) sleeps `delay` before it starts, outside the
    /// file system's lock: other threads go on writing meanwhile, as they would on a slow disk.
    pub(crate) fn set_sync_delay(&self, delay: std::time::Duration) {
        self.state().sync_delay = delay;
    }

    /// Sleeps the sync delay, if one is set.
    fn delay_sync(&self) {
        let delay = self.state().sync_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }

    /// Fills the disk (every write fails with ENOSPC, creating a file too) or frees it.
    pub(crate) fn set_full(&self, full: bool) {
        self.state().faults.full = full;
    }

    /// A file's bytes, as a reader sees them now.
    pub(crate) fn bytes(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state();
        Ok(state.inodes[state.inode(path)?].data.clone())
    }

    /// Replaces a file's bytes, durably (what a damaged disk would hold).
    pub(crate) fn put_bytes(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        let inode = state.inode(path)?;
        state.inodes[inode] = Inode { data: bytes.to_vec(), synced: bytes.to_vec() };
        Ok(())
    }
}

impl Storage for SimStorage {
    type File = SimFile;

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.op()?;
        state.dirs.extend(dir.ancestors().map(Path::to_path_buf));
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<SimFile> {
        let mut state = self.state();
        state.op()?;
        if state.faults.full {
            return Err(Fault::NoSpace.error());
        }
        if state.names.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists (simulated)"));
        }
        if !path.parent().is_some_and(|dir| state.dirs.contains(dir)) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory (simulated)"));
        }
        let inode = state.inodes.len();
        state.inodes.push(Inode::default());
        state.change(NameChange::Link(path.to_path_buf(), inode));
        Ok(SimFile { state: self.clone(), inode })
    }

    fn open(&self, path: &Path) -> io::Result<SimFile> {
        let mut state = self.state();
        state.op()?;
        Ok(SimFile { state: self.clone(), inode: state.inode(path)? })
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut state = self.state();
        state.op()?;
        if !state.dirs.contains(dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory (simulated)"));
        }
        let names = state.names.keys().filter(|path| path.parent() == Some(dir));
        Ok(names.filter_map(|path| path.file_name()?.to_str().map(str::to_owned)).collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.state();
        state.op()?;
        Ok(state.inodes[state.inode(path)?].data.clone())
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut state = self.state();
        state.op()?;
        let data = &state.inodes[state.inode(path)?].data;
        let from = usize::try_from(offset).map_or(data.len(), |offset| offset.min(data.len()));
        buf.extend_from_slice(&data[from..from + len.min(data.len() - from)]);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.op()?;
        state.inode(path)?;
        state.change(NameChange::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.op()?;
        state.inode(from)?;
        state.change(NameChange::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn lock(&self, dir: &Path) -> io::Result<Option<StorageLock>> {
        let mut state = self.state();
        state.op()?;
        if !state.locks.insert(dir.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(StorageLock(Box::new(SimLock { state: self.state.clone(), dir: dir.to_path_buf() }))))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.delay_sync();
        let mut state = self.state();
        state.op()?;
        if let Some(fault) = state.faults.sync.take().or_else(|| state.faults.dir_sync.take()) {
            return Err(fault.error());
        }
        let (here, elsewhere) =
            std::mem::take(&mut state.pending).into_iter().partition::<Vec<_>, _>(|c| c.dir() == Some(dir));
        for change in here {
            change.apply(&mut state.durable);
        }
        state.pending = elsewhere;
        Ok(())
    }
}

/// A file of [`SimStorage`].
#[derive(Debug)]
pub(crate) struct SimFile {
    state: SimStorage,
    inode: usize,
}

/// Syncs an inode: its bytes now are what a crash keeps.
fn sync_inode(storage: &SimStorage, inode: usize) -> io::Result<()> {
    storage.delay_sync();
    let mut state = storage.state();
    state.op()?;
    if let Some(fault) = state.faults.sync.take() {
        return Err(fault.error());
    }
    let inode = &mut state.inodes[inode];
    inode.synced.clone_from(&inode.data);
    Ok(())
}

impl StorageFile for SimFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state.state();
        state.op()?;
        let (fault, keep) = match state.faults.write.take() {
            Some((fault, keep)) => (Some(fault), keep.min(bytes.len())),
            None if state.faults.full => (Some(Fault::NoSpace), 0),
            None => (None, bytes.len()),
        };
        state.inodes[self.inode].data.extend_from_slice(&bytes[..keep]);
        fault.map_or(Ok(()), |fault| Err(fault.error()))
    }

    fn sync(&mut self) -> io::Result<()> {
        sync_inode(&self.state, self.inode)
    }

    fn sync_handle(&self) -> io::Result<SyncHandle> {
        let (storage, inode) = (self.state.clone(), self.inode);
        Ok(SyncHandle::new(move || sync_inode(&storage, inode)))
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.state.state();
        state.op()?;
        let inode = &mut state.inodes[self.inode];
        inode.data.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        inode.synced.clone_from(&inode.data);
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn write(storage: &SimStorage, path: &Path, bytes: &[u8], sync: bool) -> io::Result<SimFile> {
        let mut file = storage.create(path)?;
        file.append(bytes)?;
        if sync {
            file.sync()?;
        }
        Ok(file)
    }

    #[test]
    fn a_crash_keeps_synced_bytes_and_a_prefix_of_the_rest() -> io::Result<()> {
        let dir = Path::new("/d");
        let path = dir.join("f");
        let storage = SimStorage::default();
        storage.create_dir(dir)?;
        let mut file = write(&storage, &path, b"synced", true)?;
        storage.sync_dir(dir)?;
        file.append(b"-unsynced")?;
        let mut seen = BTreeSet::new();
        for seed in 0..200 {
            let bytes = storage.crash(seed).bytes(&path)?;
            assert!(b"synced-unsynced".starts_with(&bytes) && bytes.starts_with(b"synced"), "{bytes:?}");
            seen.insert(bytes.len());
        }
        assert!(seen.len() > 5, "tails of many lengths: {seen:?}");
        Ok(())
    }

    #[test]
    fn names_last_once_their_directory_is_synced() -> io::Result<()> {
        let dir = Path::new("/d");
        let storage = SimStorage::default();
        storage.create_dir(dir)?;
        write(&storage, &dir.join("a"), b"a", true)?;
        let (mut kept, mut lost) = (0, 0);
        for seed in 0..100 {
            match storage.crash(seed).list(dir)?.len() {
                0 => lost += 1,
                _ => kept += 1,
            }
        }
        assert!(kept > 0 && lost > 0, "an unsynced name may go either way: {kept} kept, {lost} lost");
        storage.sync_dir(dir)?;
        storage.rename(&dir.join("a"), &dir.join("b"))?;
        storage.remove(&dir.join("b"))?;
        for seed in 0..100 {
            let names = storage.crash(seed).list(dir)?;
            assert!(
                names == ["a"] || names == ["b"] || names.is_empty(),
                "a prefix of the changes: {names:?}"
            );
        }
        storage.sync_dir(dir)?;
        assert!(storage.crash(0).list(dir)?.is_empty());
        Ok(())
    }

    #[test]
    fn faults_fail_the_next_write_or_sync() -> io::Result<()> {
        let dir = Path::new("/d");
        let storage = SimStorage::default();
        storage.create_dir(dir)?;
        let mut file = write(&storage, &dir.join("f"), b"ok", false)?;
        storage.fail_next_write(Fault::NoSpace, 2);
        let error = file.append(b"abcd").err().map(|e| e.kind());
        assert_eq!(error, Some(io::ErrorKind::StorageFull));
        assert_eq!(storage.bytes(&dir.join("f"))?, b"okab", "cut short");
        storage.fail_next_sync(Fault::Eio);
        assert!(file.sync().is_err());
        file.sync()?;
        storage.set_full(true);
        assert!(file.append(b"x").is_err() && storage.create(&dir.join("g")).is_err());
        storage.set_full(false);
        file.append(b"x")?;
        storage.cut_power_after(1, 7);
        file.append(b"y")?;
        assert!(storage.after_power_cut().is_none());
        assert!(file.sync().is_err() && file.append(b"z").is_err(), "off for good");
        let image = storage.after_power_cut().map(|image| image.bytes(&dir.join("f")));
        assert!(image.is_some_and(|bytes| bytes.is_ok_and(|b| b"okabxy".starts_with(&b))));
        Ok(())
    }
}

/// A held lock of a [`SimStorage`] directory.
#[derive(Debug)]
struct SimLock {
    state: Arc<Mutex<State>>,
    dir: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.locks.remove(&self.dir);
    }
}
