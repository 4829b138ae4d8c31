//! The `tlog` binary starts and names its version.
//!
//! This file also makes `cargo test --workspace` build the binary: cargo builds a package's binaries only for that
//! package's own integration tests, and the end-to-end CLI tests in the workspace's `tests/` (package `tlog-suite`)
//! start `tlog` from `target/<profile>/`. Without a test here those tests would find no binary on a fresh checkout,
//! or a stale one on an old checkout.

use std::process::Command;

#[test]
fn tlog_version_names_the_package_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_tlog"))
        .arg("--version")
        .output()
        .expect("run tlog --version");
    assert!(out.status.success(), "tlog --version failed: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("tlog {}\n", env!("CARGO_PKG_VERSION"))
    );
}
