//! Puts the commit loadgen is built from into `LOADGEN_COMMIT` (with `-dirty` when the library
//! or the loadgen has uncommitted changes), so every report, baseline and chart says which code
//! it measured.

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
    // Rebuilt when HEAD moves (a commit, a checkout) or the index changes (staging, committing).
    for file in ["HEAD", "index"] {
        if let Some(path) = git(&["rev-parse", "--git-path", file]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &head]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
