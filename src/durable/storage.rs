//! What the log needs from a directory, and the real file system's answer.
//!
//! The log reaches the disk only through [`Storage`], so tests can hand it a file system that
//! forgets what was not synced, or fails the next write (`crate::durable::sim`). The seam is
//! small on purpose: whole files in and out, appends, two kinds of sync, and names.

use std::fmt;
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

/// A directory tree the log keeps its files in.
///
/// What survives a power cut is what was synced: a file's bytes once [`StorageFile::sync`]
/// returned, its name (creation, removal, rename) once [`sync_dir`](Storage::sync_dir) of its
/// directory returned. A process that dies keeps everything that was handed over.
pub(crate) trait Storage: Clone + fmt::Debug + Send + Sync + 'static {
    /// An open file, written at its end.
    type File: StorageFile;

    /// Creates `dir` and its parents if missing, and syncs its parent so the new entry lasts.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;

    /// Creates a new, empty file (an error if `path` exists).
    fn create(&self, path: &Path) -> io::Result<Self::File>;

    /// Opens an existing file; writes go to its end.
    fn open(&self, path: &Path) -> io::Result<Self::File>;

    /// The names of the files in `dir` (an error of kind `NotFound` if it is missing).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// A whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Appends to `buf` up to `len` bytes of the file at `path` from byte `offset`: fewer only
    /// where the file ends (none at or past its end). Recovery reads a log segment in pieces
    /// with it, so it holds a piece at a time rather than the whole segment.
    fn read_at(&self, path: &Path, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()>;

    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Renames a file, replacing `to` if it exists; atomic across a crash.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the names in `dir` durable (fsync of the directory: Linux does not persist a
    /// file's directory entry when the file is synced).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Takes `dir`'s exclusive lock, held until the returned guard is dropped (or the process
    /// ends); `Ok(None)` if someone else holds it.
    fn lock(&self, dir: &Path) -> io::Result<Option<StorageLock>>;
}

/// A held directory lock; dropping it lets the lock go.
#[derive(Debug)]
pub(crate) struct StorageLock(
    #[allow(dead_code, reason = "held for its Drop")] pub(crate) Box<dyn fmt::Debug + Send + Sync>,
);

/// A file open for appending.
pub(crate) trait StorageFile: fmt::Debug + Send {
    /// Writes all of `bytes` at the end of the file (handed to the OS: survives the process).
    /// On an error, a prefix of `bytes` may have been written.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Makes the bytes written so far durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;

    /// Cuts the file to `len` bytes, durably.
    fn truncate(&mut self, len: u64) -> io::Result<()>;

    /// A handle that syncs this file from another thread while this one appends: each sync
    /// makes durable every byte appended before it started.
    fn sync_handle(&self) -> io::Result<SyncHandle>;
}

/// Syncs one file (`fdatasync`), from any thread.
pub(crate) struct SyncHandle(Box<dyn Fn() -> io::Result<()> + Send + Sync>);

impl SyncHandle {
    pub(crate) fn new(sync: impl Fn() -> io::Result<()> + Send + Sync + 'static) -> Self {
        Self(Box::new(sync))
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        (self.0)()
    }
}

impl fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncHandle")
    }
}

/// The real file system, through `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DiskStorage;

/// A file of [`DiskStorage`].
#[derive(Debug)]
pub(crate) struct DiskFile(fs::File);

impl Storage for DiskStorage {
    type File = DiskFile;

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => self.sync_dir(parent),
            _ => Ok(()),
        }
    }

    fn create(&self, path: &Path) -> io::Result<DiskFile> {
        fs::OpenOptions::new().append(true).create_new(true).open(path).map(DiskFile)
    }

    fn open(&self, path: &Path) -> io::Result<DiskFile> {
        fs::OpenOptions::new().append(true).open(path).map(DiskFile)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                // A name that is not UTF-8 is none of ours.
                names.extend(entry.file_name().into_string().ok());
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut file = fs::File::open(path)?;
        file.seek(io::SeekFrom::Start(offset))?;
        file.take(len as u64).read_to_end(buf).map(drop)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fs::File::open(dir)?.sync_all()
    }

    /// `flock` on the file `LOCK` in `dir` (std's `File::try_lock`): the kernel lets it go
    /// when the process ends, so a crashed pipeline never leaves its directory locked.
    fn lock(&self, dir: &Path) -> io::Result<Option<StorageLock>> {
        let file = fs::File::options().create(true).truncate(false).write(true).open(dir.join("LOCK"))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StorageLock(Box::new(file)))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

impl StorageFile for DiskFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        // All, not data: the new length is metadata.
        self.0.sync_all()
    }

    fn sync_handle(&self) -> io::Result<SyncHandle> {
        // A second descriptor of the same open file: fdatasync on it covers every byte written
        // through either.
        let file = self.0.try_clone()?;
        Ok(SyncHandle::new(move || file.sync_data()))
    }
}
