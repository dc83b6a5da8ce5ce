//! Where the results go, checked before anything runs: every destination is tried up front, so
//! one that cannot be written is refused at once, not after the run. Nothing is created or
//! emptied before there is something to put in it: a run that measures nothing (Ctrl-C during
//! the warm-up) leaves no empty file behind, and an existing file keeps its contents until it is
//! replaced.
//!
//! What a destination may be:
//! - a file: created, or replaced when the results are written;
//! - `-`: stdout (`--json`, `--plot`, `--hlog`; one of them at most), and the table then goes to
//!   stderr so stdout holds that output alone;
//! - a device or a pipe, e.g. `/dev/null` or `/dev/stderr`: written to as it is, never
//!   truncated; a `--hgrm` prefix that names one receives every `.hgrm` (so `--hgrm /dev/null`
//!   discards them and creates no `/dev/null.*` file);
//! - for `--hgrm`, a directory (existing, or written with a trailing `/`): the files go inside it,
//!   named ENGINE.LATENCY.hgrm.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::baseline;
use crate::cli::Args;
use crate::engine::Kind;

/// What a path names on this machine now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Missing,
    Regular,
    Directory,
    /// A device, a pipe, a socket: written to as it is.
    Special,
}

fn found(path: &Path) -> Found {
    match std::fs::metadata(path) {
        Err(_) => Found::Missing,
        Ok(meta) if meta.is_file() => Found::Regular,
        Ok(meta) if meta.is_dir() => Found::Directory,
        Ok(_) => Found::Special,
    }
}

/// Whether `path` is `-` (stdout).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Whether `path` names a device or a pipe (e.g. `/dev/null`), which is written as it is.
pub fn is_special(path: &Path) -> bool {
    found(path) == Found::Special
}

/// One output file, known to be writable; created or replaced only when written.
#[derive(Debug)]
pub struct Target {
    pub path: PathBuf,
    /// A device or a pipe: opened for writing, never truncated.
    special: bool,
}

impl Target {
    /// Checks that `path` can be written, without leaving anything behind: an existing file is
    /// opened for writing and left as it is; a missing one is created and removed again.
    pub fn open(path: &Path, what: &str) -> Result<Self, String> {
        let refuse = |why: String| format!("cannot write the {what} to {}: {why}", path.display());
        let kind = found(path);
        match kind {
            Found::Directory => return Err(refuse("it is a directory".to_owned())),
            // Opening a pipe for writing would wait for its reader: it is taken as it is.
            Found::Special => {}
            Found::Regular => {
                OpenOptions::new().write(true).open(path).map_err(|e| refuse(e.to_string()))?;
            }
            Found::Missing => {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(|e| refuse(e.to_string()))?;
                std::fs::remove_file(path).map_err(|e| refuse(e.to_string()))?;
            }
        }
        Ok(Self { path: path.to_owned(), special: kind == Found::Special })
    }

    /// Replaces the file's contents with `bytes` (a device or a pipe just receives them).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(!self.special)
            .truncate(!self.special)
            .open(&self.path)
            .map_err(|e| e.to_string())?;
        file.write_all(bytes).map_err(|e| e.to_string())?;
        file.flush().map_err(|e| e.to_string())
    }
}

/// Where one output goes.
#[derive(Debug)]
pub enum Dest {
    Stdout,
    File(Target),
}

impl Dest {
    fn open(path: &Path, what: &str) -> Result<Self, String> {
        if is_stdout(path) {
            Ok(Dest::Stdout)
        } else {
            Target::open(path, what).map(Dest::File)
        }
    }

    /// Writes `bytes` there.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Dest::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| e.to_string())
            }
            Dest::File(target) => target.write(bytes),
        }
    }

    /// Where it goes, for the notes.
    pub fn describe(&self) -> String {
        match self {
            Dest::Stdout => "stdout".to_owned(),
            Dest::File(target) => target.path.display().to_string(),
        }
    }
}

/// Every output a command line asks for.
#[derive(Debug)]
pub struct Outputs {
    pub json: Option<Dest>,
    /// (engine, latency, file) for `--hgrm`.
    pub hgrm: Vec<(Kind, &'static str, Target)>,
    pub plot: Option<Dest>,
    pub hlog: Option<Dest>,
    pub save_baseline: Option<Target>,
    /// The baseline to compare with: its name and its report.
    pub baseline: Option<(String, serde_json::Value)>,
}

/// The `.hgrm` file of `kind`'s `latency` for `--hgrm PREFIX`.
pub fn hgrm_path(prefix: &str, kind: Kind, latency: &str) -> PathBuf {
    let path = Path::new(prefix);
    match found(path) {
        // Every file goes to the device (`/dev/null` discards them all).
        Found::Special => path.to_owned(),
        Found::Directory => path.join(format!("{kind}.{latency}.hgrm")),
        _ if prefix.ends_with('/') => path.join(format!("{kind}.{latency}.hgrm")),
        _ => PathBuf::from(format!("{prefix}.{kind}.{latency}.hgrm")),
    }
}

impl Outputs {
    /// Opens every output of `args` for the engines `kinds`; the message says which one failed.
    pub fn open(args: &Args, kinds: &[Kind]) -> Result<Self, String> {
        let json = args.json.as_deref().map(|p| Dest::open(p, "JSON report")).transpose()?;
        let mut hgrm = Vec::new();
        if let Some(prefix) = &args.hgrm {
            for &kind in kinds {
                for latency in ["commit", "visible"] {
                    let path = hgrm_path(prefix, kind, latency);
                    hgrm.push((kind, latency, Target::open(&path, "percentile distribution")?));
                }
            }
        }
        let plot = args.plot.as_deref().map(|p| Dest::open(p, "latency chart")).transpose()?;
        let hlog = args.hlog.as_deref().map(|p| Dest::open(p, "interval log")).transpose()?;
        let save_baseline = match &args.save_baseline {
            None => None,
            Some(name) => {
                let dir = baseline::dir();
                std::fs::create_dir_all(&dir).map_err(|error| {
                    format!("cannot make the baseline directory {}: {error}", dir.display())
                })?;
                Some(Target::open(&baseline::path(&dir, name), "baseline")?)
            }
        };
        // Its workload is checked against this run's by main, before the run.
        let baseline = match &args.baseline {
            None => None,
            Some(name) => Some((name.clone(), baseline::load(&baseline::dir(), name)?)),
        };
        let outputs = Self { json, hgrm, plot, hlog, save_baseline, baseline };
        outputs.distinct()?;
        Ok(outputs)
    }

    /// Whether one of the outputs goes to stdout (the table then goes to stderr).
    pub fn stdout_taken(&self) -> bool {
        [&self.json, &self.plot, &self.hlog].iter().any(|d| matches!(d, Some(Dest::Stdout)))
    }

    /// Refuses two outputs written to one regular file: the second would replace the first.
    fn distinct(&self) -> Result<(), String> {
        let dests = [("--json", &self.json), ("--plot", &self.plot), ("--hlog", &self.hlog)];
        let files: Vec<(&str, &Path)> = dests
            .into_iter()
            .filter_map(|(what, dest)| match dest {
                Some(Dest::File(target)) => Some((what, target)),
                _ => None,
            })
            .chain(self.hgrm.iter().map(|(_, _, target)| ("--hgrm", target)))
            .chain(self.save_baseline.iter().map(|target| ("--save-baseline", target)))
            .filter(|(_, target)| !target.special)
            .map(|(what, target)| (what, target.path.as_path()))
            .collect();
        // Compared as written and as resolved (a missing file's directory is resolved).
        let resolve = |path: &Path| -> PathBuf {
            let name = path.file_name().map(PathBuf::from).unwrap_or_default();
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::canonicalize(dir).map_or_else(|_| path.to_owned(), |dir| dir.join(name))
        };
        for (i, (what, path)) in files.iter().enumerate() {
            for (other, other_path) in &files[i + 1..] {
                if path == other_path || resolve(path) == resolve(other_path) {
                    return Err(format!(
                        "{what} and {other} would both write {}: give each its own file",
                        path.display()
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("loadgen-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn checking_a_destination_leaves_nothing_behind_and_writing_replaces() {
        let dir = scratch("target");
        let missing = dir.join("new.json");
        let mut target = Target::open(&missing, "JSON report").unwrap();
        assert!(!missing.exists(), "checked, not created");
        target.write(b"first, longer").unwrap();
        target.write(b"second").unwrap();
        assert_eq!(std::fs::read(&missing).unwrap(), b"second");

        let kept = dir.join("kept.json");
        std::fs::write(&kept, b"old").unwrap();
        Target::open(&kept, "JSON report").unwrap();
        assert_eq!(std::fs::read(&kept).unwrap(), b"old", "an existing file is left as it is");

        let refused = Target::open(&dir, "JSON report").unwrap_err();
        assert!(refused.contains("is a directory"), "{refused}");
        assert!(Target::open(&dir.join("no/such/dir/x"), "JSON report").is_err());

        // A device takes the bytes as they are: no truncation (which /dev/null refuses).
        let mut null = Target::open(Path::new("/dev/null"), "JSON report").unwrap();
        null.write(b"gone").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_hgrm_prefix_may_be_a_device_or_a_directory() {
        let dir = scratch("hgrm");
        assert_eq!(hgrm_path("/dev/null", Kind::Raw, "commit"), Path::new("/dev/null"));
        let inside = dir.display().to_string();
        assert_eq!(hgrm_path(&inside, Kind::Lockstep, "visible"), dir.join("lockstep.visible.hgrm"));
        assert_eq!(hgrm_path("out/", Kind::Raw, "commit"), Path::new("out/raw.commit.hgrm"));
        assert_eq!(hgrm_path(&format!("{inside}/run"), Kind::Raw, "commit"), dir.join("run.raw.commit.hgrm"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
