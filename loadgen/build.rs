//! Puts the commit loadgen is built from into `LOADGEN_COMMIT` (with `-dirty` when the library
//! or the loadgen has uncommitted changes), so every report, baseline and chart says which code
//! it measured.
//!
//! What makes this script run again: the refs that say which commit is checked out (`HEAD`, the
//! branch it points to, `packed-refs`), and the code itself (the library's and the loadgen's
//! sources and manifests), which is what can make a build dirty or clean. Never `.git/index`:
//! staging, committing and even `git status` rewrite it (status refreshes it whenever a file's
//! timestamp changed), and every such rewrite made the loadgen build again. The dirty flag is
//! therefore as fresh as the last change to the code or the refs: a change reverted by hand
//! (the file edited back) still reruns this script, since its timestamp moves.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn main() {
    let commit = git(&["rev-parse", "--short=7", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    // Only the code counts: results and notes written under perf/ do not make a build dirty.
    let code = ["--", ":/src", ":/loadgen", ":/Cargo.toml", ":/Cargo.lock"];
    let dirty = git(&[&["status", "--porcelain", "--untracked-files=no"][..], &code[..]].concat())
        .is_some_and(|s| !s.is_empty());
    println!("cargo:rustc-env=LOADGEN_COMMIT={commit}{}", if dirty { "-dirty" } else { "" });

    // The commit checked out: HEAD moves on a checkout; the branch's ref on a commit, a reset
    // or a pull; packed-refs when git packs that ref away (gc, fetch).
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for file in &watched {
        // Only the files that exist: cargo counts a missing one as changed on every build. A
        // loose ref that `git pack-refs` removes is then a change, and the next run watches
        // packed-refs, which that made.
        let path = git(&["rev-parse", "--git-path", file]).filter(|p| Path::new(p).exists());
        if let Some(path) = path {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    // The code whose changes decide the dirty flag (a directory is watched recursively).
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let root = Path::new(&manifest).join("..");
    for code in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(code).display());
    }
    for code in ["src", "build.rs", "Cargo.toml", "tests"] {
        println!("cargo:rerun-if-changed={}", Path::new(&manifest).join(code).display());
    }
}
