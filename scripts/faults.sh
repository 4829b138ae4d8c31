#!/usr/bin/env bash
# The fault tests (issue 19), the same that `cargo test --workspace` runs in CI: disk full (a small tmpfs; needs
# root), a failing and a slow disk and power cuts (an LD_PRELOAD shim, tests/faultfs/iofault.c, built with cc),
# and the clock stepping back and forth (crates/tlog-server/tests/clock.rs). The SIGKILL soak is scripts/soak.sh.
#
#   scripts/faults.sh              # every case, printing what each saw (p99 of the slow disk, bytes a cut dropped)
#   scripts/faults.sh power_cut    # the cases whose names contain "power_cut"
#
# Builds the whole workspace first (the tests run the tlogd binary, which a narrow test run does not rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --all-targets
cargo test --workspace --test faults --test clock -- --nocapture "$@"
