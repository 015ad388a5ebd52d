#!/usr/bin/env bash
# Checks the running server against its two OpenAPI documents with schemathesis (PyPI): the
# public API's and the admin endpoint's. See run.py for what it starts and which checks run.
#
#   gateway/tests/schemathesis/run.sh            (after cargo build -p pixelparty-gateway)
#
#   PIXELPARTY_BIN       server binary (default: $CARGO_TARGET_DIR or target, /debug/pixelparty)
#   SCHEMATHESIS_MAX_EXAMPLES, SCHEMATHESIS_SEED   bound and seed of the generated cases
#   SCHEMATHESIS_KEEP=1  keep the server's data directory and log
#   CI=true              a missing tool or binary fails instead of skipping
#
# schemathesis is installed (pinned) into a virtual environment under the target directory
# unless that one is there already.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${PIXELPARTY_BIN:-$TARGET/debug/pixelparty}"
VERSION="4.32.5"
VENV="$TARGET/schemathesis-venv"

skip() {
  if [ "${CI:-}" = "true" ]; then
    echo "schemathesis: FAILED: $*" >&2
    exit 1
  fi
  echo "schemathesis: skipped: $*"
  exit 0
}

command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
[ -x "$BIN" ] || skip "server binary not found at $BIN (cargo build -p pixelparty-gateway, or set PIXELPARTY_BIN)"

has_version() { $1 --version 2>/dev/null | grep -q "version $VERSION"; }
ST="$VENV/bin/python -m schemathesis.cli"
if ! has_version "$ST"; then
  echo "installing schemathesis $VERSION into $VENV"
  rm -rf "$VENV"
  if python3 -m venv "$VENV" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION" \
      || skip "pip could not install schemathesis==$VERSION"
  else
    # No venv module (Debian's python3 without python3-venv): the user's site-packages.
    ST="python3 -m schemathesis.cli"
    has_version "$ST" || python3 -m pip install --quiet --user --disable-pip-version-check "schemathesis==$VERSION" \
      || skip "python3 has neither venv nor a pip that can install schemathesis==$VERSION"
  fi
fi
has_version "$ST" || skip "schemathesis $VERSION does not run: $($ST --version 2>&1 | tail -1)"
$ST --version

args=(--bin "$BIN" --schemathesis "$ST")
[ -n "${SCHEMATHESIS_MAX_EXAMPLES:-}" ] && args+=(--max-examples "$SCHEMATHESIS_MAX_EXAMPLES")
[ -n "${SCHEMATHESIS_SEED:-}" ] && args+=(--seed "$SCHEMATHESIS_SEED")
[ "${SCHEMATHESIS_KEEP:-}" = "1" ] && args+=(--keep)
exec python3 "$(dirname "$0")/run.py" "${args[@]}"
