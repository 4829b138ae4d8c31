#!/usr/bin/env bash
# The standard end-to-end benchmark (benches/load/, see BENCHMARKS.md): builds the release tlogd and the load
# generator, then runs the suite against a freshly started tlogd on a temporary folder. A few minutes on 2 cores
# once built.
#
#   scripts/bench.sh                 # standard suite: every write mode, proof reads and mixed on a 1M-entry log
#   scripts/bench.sh --large         # proof reads on a 10M-entry log (the prefill alone takes minutes)
#   scripts/bench.sh --huge          # fill to 100M entries, fsync on: rate/RSS/disk per 10M, reads at 1M and
#                                    # 100M, restart time (about an hour; 40 GB of free disk in the temp folder)
#   scripts/bench.sh --duration 5    # any other arguments go to the load generator (`--help` lists them)
#
# Results: markdown on stdout, JSON in target/bench/load-<suite>.json.
set -euo pipefail
cd "$(dirname "$0")/.."

suite=standard
case "${1:-}" in
    --large) suite=large; shift ;;
    --huge) suite=huge; shift ;;
esac

# The build's system packages (libclang for RocksDB's bindings, a C++ compiler), installed when missing: on a
# fresh machine the build otherwise stops minutes in with bindgen's backtrace.
scripts/deps.sh

# Both builds use the release profile's artifacts (the bench profile inherits release), so RocksDB's C++ is
# compiled once. Always --workspace: a narrower build unifies features differently and rebuilds RocksDB.
cargo build --release --workspace --bins
cargo bench --workspace --bench load --no-run

mkdir -p target/bench
cargo bench --workspace --bench load -- --suite "$suite" --json="target/bench/load-$suite.json" "$@"
