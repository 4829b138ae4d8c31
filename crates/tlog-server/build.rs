//! Names the git commit tlogd was built from (`TLOG_GIT_COMMIT`, shown by `tlogd --version`), or `unknown`
//! outside a git checkout (a source tarball, a registry download) or without git.
//!
//! The script reruns only when the checkout's HEAD moves (the `HEAD` file, the branch's ref file, `packed-refs`),
//! not on every source change; outside a checkout it runs once.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    if commit.is_some() {
        // In a worktree, HEAD is in the worktree's git dir and the refs in the common one.
        let git_dir = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from);
        let common =
            git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]).map(PathBuf::from);
        if let Some(dir) = &git_dir {
            println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        }
        if let Some(common) = common.or(git_dir) {
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                println!("cargo:rerun-if-changed={}", common.join(branch).display());
            }
            println!(
                "cargo:rerun-if-changed={}",
                common.join("packed-refs").display()
            );
        }
    }
    println!(
        "cargo:rustc-env=TLOG_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
