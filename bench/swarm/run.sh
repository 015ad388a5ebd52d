#!/usr/bin/env bash
# Browser swarm: N real headless Chromium pages paint and chat through the real web client
# against the real server binary (see README.md). Installs what is missing (npm packages;
# Debian's chromium when missing and we are root with apt), picks the binary, then runs
# swarm.mjs with the arguments given (--help lists them). Works from any directory.
#   PIXELPARTY_BIN  server binary (default: <repo>/target/release/pixelparty, else
#                   <repo>/target/debug/pixelparty with a warning)
#   CHROMIUM_PATH   Chromium (default: /usr/bin/chromium)
#   SWARM_SMOKE=1   3 pages for 10 s; exits 1 unless paints and messages crossed between pages
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$chromium" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "error: $chromium is missing and cannot be installed here (not root or no apt-get); set CHROMIUM_PATH" >&2
    exit 1
  fi
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: node and npm are needed (Node.js >= 20)" >&2
  exit 1
fi

if [ -z "${PIXELPARTY_BIN:-}" ]; then
  if [ -x "$repo/target/release/pixelparty" ]; then
    PIXELPARTY_BIN="$repo/target/release/pixelparty"
  elif [ -x "$repo/target/debug/pixelparty" ]; then
    PIXELPARTY_BIN="$repo/target/debug/pixelparty"
    echo "warning: no release binary; using the debug one ($PIXELPARTY_BIN): its server figures are not release figures" >&2
  else
    echo "error: no server binary (build one: cargo build --release -p pixelparty-gateway --bin pixelparty, or set PIXELPARTY_BIN)" >&2
    exit 1
  fi
fi
case "$PIXELPARTY_BIN" in /*) ;; *) PIXELPARTY_BIN="$(pwd)/$PIXELPARTY_BIN" ;; esac
export PIXELPARTY_BIN CHROMIUM_PATH="$chromium"

if [ ! -d node_modules/playwright-core ]; then
  echo "==> npm ci ($here)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# swarm.mjs stops the server and every Chromium it started, on success, failure, SIGINT and
# SIGTERM, and within a hard time limit.
exec node swarm.mjs "$@"
