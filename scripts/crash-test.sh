#!/usr/bin/env bash
# Crash test: SIGKILLs the real tlogd at random moments under concurrent submitters, restarts it, and checks after
# every cycle that no acknowledged entry or handed-out checkpoint was lost or contradicted (tests/crash.rs).
#
#   scripts/crash-test.sh            # 50 cycles
#   scripts/crash-test.sh 200        # 200 cycles
#   TLOG_CRASH_SEED=123 scripts/crash-test.sh   # replay a run (each run prints its seed)
#
# Builds the whole workspace first (the test runs the tlogd binary, which a narrow test run does not rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-50}"
cargo build --workspace --all-targets
TLOG_CRASH_CYCLES="$cycles" cargo test --workspace --test crash -- --nocapture
