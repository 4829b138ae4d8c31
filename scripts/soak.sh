#!/usr/bin/env bash
# Soak (issue 19): the crash test (tests/crash.rs) at 1,000 SIGKILL cycles under mixed load (unary, batch and
# SubmitStream submitters, checkpoint, proof and entry readers), every acknowledged entry and every handed-out
# checkpoint checked (the whole log downloaded every 100 cycles and after the last, TLOG_CRASH_FULL_CHECK_EVERY;
# in between, each restart is proven consistent with the last check and what follows is downloaded). A
# documented command, not CI (an hour or more on a busy machine).
#
#   scripts/soak.sh                 # 1,000 cycles
#   scripts/soak.sh 200             # 200 cycles
#   TLOG_CRASH_SEED=123 scripts/soak.sh   # replay a run (each run prints its seed)
#
# The output, ending with the totals line (cycles, acknowledged entries and checkpoints checked), is also kept in
# target/soak-<time>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-1000}"
cargo build --workspace --all-targets
log="target/soak-$(date -u +%Y%m%dT%H%M%SZ).log"
TLOG_CRASH_CYCLES="$cycles" TLOG_CRASH_FULL_CHECK_EVERY="${TLOG_CRASH_FULL_CHECK_EVERY:-100}" \
  cargo test --workspace --test crash -- --nocapture 2>&1 | tee "$log"
echo "soak: output kept in $log"
