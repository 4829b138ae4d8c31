#!/usr/bin/env bash
# The project's one test command (README "Tests"; CI's .ci/run calls it). Installs the system packages the build
# and the tests need when they are missing (scripts/deps.sh --tests), then runs the format check, clippy, every
# test in the workspace and a short fuzzing pass, printing how long each step took. Extra arguments go to `cargo test`
# (e.g. `scripts/test.sh --test api`).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step_started=$SECONDS
step_name=""
# Closes the running step (prints its duration) and opens the next one.
step() {
  if [ -n "$step_name" ]; then
    echo "== $step_name: $((SECONDS - step_started)) s"
  fi
  step_name="$1"
  step_started=$SECONDS
  [ -z "$step_name" ] || echo "== $step_name"
}

step "system packages (scripts/deps.sh --tests)"
scripts/deps.sh --tests
step "cargo fmt --check"
cargo fmt --all -- --check
# clippy and test share every dependency build (RocksDB's C++ included; see [profile.dev.build-override] in
# Cargo.toml): clippy pays for the compile, test reuses it.
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The offline verifier (tlog-client without its transports) is a supported build of its own: it must compile and
# lint clean without tokio, tonic or reqwest (tests/no_transport.rs checks the dependency tree).
step "cargo clippy -p tlog-client --no-default-features"
cargo clippy -p tlog-client --no-default-features --all-targets --locked -- -D warnings
step "cargo test"
cargo test --workspace --locked "$@"
# Short fuzzing of every cargo-fuzz target (fuzz/, its own workspace: no RocksDB build). TLOG_FUZZ_SECONDS sets
# the time per target (default 20; 0 skips the step).
fuzz_seconds="${TLOG_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" != 0 ]; then
  step "fuzz (${fuzz_seconds}s per target)"
  scripts/fuzz.sh "$fuzz_seconds"
fi
step ""
echo "== scripts/test.sh: all steps passed in $((SECONDS - started)) s"
