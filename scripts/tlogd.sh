#!/usr/bin/env bash
# Quick start: installs the build's system packages if missing (scripts/deps.sh says which and why), builds the
# release tlogd and tlog (the first build compiles RocksDB's C++: 10-20 minutes on 2 cores), then runs tlogd with
# the arguments given, e.g. `scripts/tlogd.sh --data ./data`. With the packages installed,
# `cargo run --release -p tlog-server --bin tlogd -- --data ./data` does the same.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
# --workspace: the same feature set as every other build, so RocksDB is not compiled again for `tlog`.
cargo build --release --workspace --bins --locked --manifest-path "$root/Cargo.toml"
exec "${CARGO_TARGET_DIR:-$root/target}/release/tlogd" "$@"
