//! Where the results go, checked before anything runs: every file is opened (created if need
//! be) up front, so a path that cannot be written is refused at once, not after the run.

use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use crate::baseline;
use crate::cli::Args;
use crate::engine::Kind;

/// One output file, open for writing; emptied when it is written.
#[derive(Debug)]
pub struct Target {
    pub path: PathBuf,
    file: File,
}

impl Target {
    pub fn open(path: &Path, what: &str) -> Result<Self, String> {
        // No truncation yet: a file is only replaced once there is something to put in it.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|error| format!("cannot write the {what} to {}: {error}", path.display()))?;
        Ok(Self { path: path.to_owned(), file })
    }

    /// Replaces the file's contents with `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let file = &mut self.file;
        file.set_len(0).map_err(|e| e.to_string())?;
        file.rewind().map_err(|e| e.to_string())?;
        file.write_all(bytes).map_err(|e| e.to_string())?;
        file.flush().map_err(|e| e.to_string())
    }
}

/// Where the JSON report goes.
#[derive(Debug)]
pub enum Json {
    Stdout,
    File(Target),
}

/// Every output a command line asks for.
#[derive(Debug)]
pub struct Outputs {
    pub json: Option<Json>,
    /// (engine, latency, file) for `--hgrm`.
    pub hgrm: Vec<(Kind, &'static str, Target)>,
    pub plot: Option<Target>,
    pub hlog: Option<Target>,
    pub save_baseline: Option<Target>,
    /// The baseline to compare with: its name and its report.
    pub baseline: Option<(String, serde_json::Value)>,
}

impl Outputs {
    /// Opens every output of `args` for the engines `kinds`; the message says which one failed.
    pub fn open(args: &Args, kinds: &[Kind]) -> Result<Self, String> {
        let json = match &args.json {
            None => None,
            Some(_) if args.json_to_stdout() => Some(Json::Stdout),
            Some(path) => Some(Json::File(Target::open(path, "JSON report")?)),
        };
        let mut hgrm = Vec::new();
        if let Some(prefix) = &args.hgrm {
            for &kind in kinds {
                for latency in ["commit", "visible"] {
                    let path = PathBuf::from(format!("{prefix}.{kind}.{latency}.hgrm"));
                    hgrm.push((kind, latency, Target::open(&path, "percentile distribution")?));
                }
            }
        }
        let plot = args.plot.as_deref().map(|p| Target::open(p, "latency chart")).transpose()?;
        let hlog = args.hlog.as_deref().map(|p| Target::open(p, "interval log")).transpose()?;
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
        let baseline = match &args.baseline {
            None => None,
            Some(name) => {
                let saved = baseline::load(&baseline::dir(), name)?;
                baseline::same_durability(name, &saved, args.durability().map(|d| d.name()))?;
                Some((name.clone(), saved))
            }
        };
        Ok(Self { json, hgrm, plot, hlog, save_baseline, baseline })
    }
}
