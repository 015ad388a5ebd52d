#!/usr/bin/env bash
# End-to-end tests of the web client in headless Chromium against the real server binary.
# Installs what they need (npm packages; Debian's chromium when missing and we are root with
# apt), then runs them and exits with their status. Works from any directory.
#   PIXELPARTY_BIN   server binary (default: <repo>/target/debug/pixelparty; build it first,
#                    e.g. with `cargo test --workspace`)
#   CHROMIUM_PATH    Chromium (default: /usr/bin/chromium)
#   CI=true          a missing Chromium or server binary fails instead of skipping
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$chromium" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium (apt-get)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
      echo "warning: could not install chromium; the tests will report it" >&2
    fi
  else
    echo "warning: $chromium is missing and cannot be installed here (not root or no apt-get)" >&2
  fi
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: node and npm are needed (Node.js >= 20)" >&2
  exit 1
fi

echo "==> npm ci ($(pwd))"
npm ci --no-audit --no-fund --loglevel=error

echo "==> node --test tests/"
exec node --test tests/
