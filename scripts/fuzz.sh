#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 20, the CI setting), starting from the committed
# seeds in fuzz/corpus/<target>. Exits non-zero if any target crashes, fails an assertion, leaks, times out or
# cannot be built; the crashing input is left in fuzz/artifacts/<target>/ (reproduce with
# `cargo fuzz run <target> fuzz/artifacts/<target>/<file>` from the repository root).
#
# Works on a fresh machine: installs cargo-fuzz if missing, uses a nightly toolchain when rustup has one and
# otherwise stable with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly-only sanitizer flags). The fuzz crate has its
# own workspace and target dir (fuzz/target) and does not depend on RocksDB, so this builds no C++.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "scripts/fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac

command -v cargo >/dev/null 2>&1 || { echo "scripts/fuzz.sh: cargo not found; install Rust (rustup) first" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

toolchain=()
if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  # cargo-fuzz passes -Zsanitizer and friends; stable rustc accepts them only with this override.
  export RUSTC_BOOTSTRAP=1
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=(note_parse checkpoint_parse verify_inclusion verify_consistency receipt_decode request_handlers evidence_parse)
fi

# Debug assertions on, so integer overflow panics instead of wrapping; 16 codegen units build much faster on small
# machines, which matters more than a few percent of executions in short runs.
build_flags=(--debug-assertions --codegen-units 16 --fuzz-dir fuzz)
echo "== cargo fuzz build (${toolchain[*]:-stable with RUSTC_BOOTSTRAP=1})"
if [ $# -gt 0 ]; then
  for t in "${targets[@]}"; do cargo "${toolchain[@]}" fuzz build "${build_flags[@]}" "$t"; done
else
  cargo "${toolchain[@]}" fuzz build "${build_flags[@]}"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds}s"
  mkdir -p "$work/$t" "fuzz/corpus/$t"
  # New inputs go to the scratch corpus (first folder); the committed seeds are only read.
  if ! cargo "${toolchain[@]}" fuzz run "${build_flags[@]}" "$t" "$work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$work/$t.log" 2>&1; then
    failed+=("$t")
    # The panic message first (the sanitizer's stack dump that follows it is long), then the end of the log.
    grep -A 4 'panicked at' "$work/$t.log" >&2 || true
    tail -n 40 "$work/$t.log" >&2
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^Done ' "$work/$t.log" | tr '\n' ' ' || true
  echo
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "scripts/fuzz.sh: all ${#targets[@]} targets ran ${seconds}s each without a failure"
