#!/usr/bin/env bash
# Runs every benchmark scenario once at a tiny size (seconds) against a pixelparty server and
# the two peers, so the scenarios cannot rot. Used by .ci/run; not a measurement.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BIN=${BIN:-$ROOT/target/debug}
source bench/scripts/common.sh
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT

(cd bench/peers && npm ci --silent)
bench() { "$BIN/pixelparty-bench" --results "$RESULTS" --label ci "$@" >/dev/null; }
check() { # scenario target jq-free check: the last line must show zero errors
  python3 - "$RESULTS" "$1" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r = [x for x in rows if x["scenario"] == sys.argv[2] and x["target"] == sys.argv[3]][-1]
best = r.get("best") or r
problems = []
if r.get("errors", 0) or best.get("errors", 0): problems.append("errors")
if best.get("gaps", 0) or best.get("duplicates", 0): problems.append("gaps/duplicates")
if r["scenario"] == "paint" and not r.get("converged"): problems.append("not converged")
if r["scenario"] in ("chat",) and r["delivered"] < r["expected_deliveries"]: problems.append("missing deliveries")
print(f"{sys.argv[2]:>8} {sys.argv[3]:<10} {'ok' if not problems else 'FAILED: ' + ', '.join(problems)}")
sys.exit(1 if problems else 0)
PY
}

start_pixelparty 28080 29091 "$ROOT/target/ci-bench-data" bench/server.toml
common=(--target pixelparty --addr 127.0.0.1:28080 --server-pid "$PP_PID" --workers 2 --sources 2 --accounts 2)
bench "${common[@]}" idle --connections 50 --hold 0.5 && check idle pixelparty
bench "${common[@]}" chat --connections 20 --rooms 2 --senders 2 --rate 50 --duration 1 --drain 1 && check chat pixelparty
bench "${common[@]}" sat --connections 20 --rooms 2 --senders 2 --rate 20 --duration 1 --drain 1 --steps 2 --p99-ms 5000 && check sat pixelparty
bench "${common[@]}" paint --painters 2 --subscribers 2 --rate 100 --duration 1 && check paint pixelparty
bench "${common[@]}" snapshot --clients 2 --duration 1 && check snapshot pixelparty
bench "${common[@]}" login --users 4 --concurrency 2 && check login pixelparty
bench "${common[@]}" store --duration 1 --history 50 --pixels 50 --joiners 4 && check store pixelparty
common=(--target pixelparty --transport wt --addr 127.0.0.1:28080 --server-pid "$PP_PID" --workers 2 --accounts 2)
bench "${common[@]}" idle --connections 20 --hold 0.5 && check idle pixelparty-wt
bench "${common[@]}" chat --connections 20 --rooms 2 --senders 2 --rate 50 --duration 1 --drain 1 && check chat pixelparty-wt
bench "${common[@]}" paint --painters 2 --subscribers 2 --rate 100 --duration 1 && check paint pixelparty-wt
stop_pid "$PP_PID"

for peer in socketio ws; do
  port=$([ $peer = socketio ] && echo 28081 || echo 28082)
  start_peer "$([ $peer = socketio ] && echo socketio-server.mjs || echo ws-server.mjs)" "$port"
  common=(--target "$peer" --addr "127.0.0.1:$port" --server-pid "$PEER_PID" --workers 2)
  bench "${common[@]}" idle --connections 50 --hold 0.5 && check idle "$peer"
  bench "${common[@]}" chat --connections 20 --rooms 2 --senders 2 --rate 50 --duration 1 --drain 1 && check chat "$peer"
  stop_pid "$PEER_PID"
done
