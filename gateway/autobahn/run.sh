#!/usr/bin/env bash
# WebSocket conformance: runs the Autobahn test cases (through kosoku, from PyPI) against the
# gateway's WebSocket code, served by the `ws_echo` example on 127.0.0.1 and a free port, and
# checks every case against expected.txt (what differs from a pass by design, and why).
#
# Exits non-zero on any unexpected outcome. When a tool is missing (python3, pip, kosoku from
# PyPI) it prints why and skips with status 0, unless CI=true, where a skip is a failure.
# The whole suite (517 cases, the 9.* performance cases included) takes seconds.
#
# Usage: gateway/autobahn/run.sh [extra kosoku arguments, e.g. -i '7.*']
# Reports: $AUTOBAHN_REPORTS (default: target/autobahn), index.html for a browser.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

KOSOKU_VERSION=0.1.0

skip() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "autobahn: FAILED: $*" >&2
    exit 1
  fi
  echo "autobahn: SKIPPED: $*"
  exit 0
}

command -v cargo >/dev/null 2>&1 || skip "cargo not found"
command -v python3 >/dev/null 2>&1 || skip "python3 not found"
if ! python3 -c "import kosoku, importlib.metadata as m; assert m.version('kosoku') == '$KOSOKU_VERSION'" 2>/dev/null; then
  echo "autobahn: installing kosoku $KOSOKU_VERSION (pip)"
  python3 -m pip install --quiet --disable-pip-version-check "kosoku==$KOSOKU_VERSION" \
    || skip "could not install kosoku $KOSOKU_VERSION from PyPI"
fi
command -v kosoku >/dev/null 2>&1 || skip "kosoku installed but not on PATH"

echo "autobahn: building the echo server (example ws_echo)"
cargo build --quiet -p pixelparty-gateway --example ws_echo
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
echo_bin="$target_dir/debug/examples/ws_echo"
reports="${AUTOBAHN_REPORTS:-$target_dir/autobahn}"
rm -rf "$reports"
mkdir -p "$reports"

"$echo_bin" 127.0.0.1:0 >"$reports/echo.log" 2>&1 &
echo_pid=$!
trap 'kill "$echo_pid" 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 100); do
  addr="$(sed -n 's|^listening on ws://||p' "$reports/echo.log")"
  [[ -n "$addr" ]] && break
  kill -0 "$echo_pid" 2>/dev/null || { cat "$reports/echo.log" >&2; echo "autobahn: echo server died" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$addr" ]] || { echo "autobahn: echo server did not start" >&2; exit 1; }
echo "autobahn: echo server on ws://$addr; running the cases"

# kosoku exits 1 whenever a case does not pass, including the refusals that are by design:
# the verdict is check.py's. Bounded in time (the suite takes seconds here).
set +e
timeout 600 kosoku "ws://$addr" -p 2 -o "$reports" "$@" >"$reports/kosoku.log" 2>&1
status=$?
set -e
if [[ ! -f "$reports/index.json" ]]; then
  cat "$reports/kosoku.log" >&2
  echo "autobahn: kosoku wrote no report (exit $status)" >&2
  exit 1
fi
if [[ $# -gt 0 ]]; then
  # A selection: report without the whole-suite count check.
  python3 "$here/check.py" "$reports/index.json" "$here/expected.txt" --partial
else
  python3 "$here/check.py" "$reports/index.json" "$here/expected.txt"
fi
