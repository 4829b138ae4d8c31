#!/usr/bin/env bash
# Installs Debian's headless browser and its WebDriver server when missing: `chromium` and `chromium-driver`
# (the `chromedriver` binary). tests/browser.rs drives the web explorer in them. Called by `scripts/deps.sh --tests`;
# prints nothing when both are there. Without apt, it names what is missing and stops.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
echo "scripts/chromium.sh: installing ${need[*]} with apt-get (tests/browser.rs runs the web explorer in headless Chromium)"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "scripts/chromium.sh: apt-get not found; install Chromium and its chromedriver (same version) and retry" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
