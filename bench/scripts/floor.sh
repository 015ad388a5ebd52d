#!/usr/bin/env bash
# pixelparty's fan-out against the floor, in one run: for each subscriber count and paint rate,
# the `paint` scenario (S subscribers of one tile, 2 painters) against pixelparty
# (bench/server.toml), then the same scenario against `pixelparty-bench floor` (the same
# pre-encoded message written to every subscriber per tick, nothing else; bench/src/floor.rs),
# with the same load client. Prints paint-to-screen p50/p99 for both and the ratio, and appends
# every record to bench/results.jsonl (label floor-<time>).
#   SUBSCRIBERS="1000 10000"   RATES="5 20 100"   DURATION=10   (defaults)
#   BIN=target/release (built when missing or older than the sources; BUILD=0 to skip)
# Bounded: every run is DURATION seconds plus set-up; traffic stays on 127.0.0.0/8.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BIN="${BIN:-$ROOT/target/release}"
SUBSCRIBERS="${SUBSCRIBERS:-1000 10000}"
RATES="${RATES:-5 20 100}"
DURATION="${DURATION:-10}"
LABEL="floor-$(date -u +%Y-%m-%dT%H:%M)"
RESULTS="${RESULTS:-$ROOT/bench/results.jsonl}"
# shellcheck source=bench/scripts/common.sh
source "$ROOT/bench/scripts/common.sh"

if [ "${BUILD:-1}" = 1 ]; then
  cargo build --release -p pixelparty-gateway -p pixelparty-bench --bins
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PORT=18180
ADMIN=18191
DATA="$ROOT/target/floor-bench-data"
run_paint() { # target addr pid subscribers rate -> the JSON record on stdout
  local target=$1 addr=$2 pid=$3 subs=$4 rate=$5 out
  out=$(mktemp)
  "$BIN/pixelparty-bench" --target "$target" --addr "$addr" --server-pid "$pid" --sources 8 --workers 2 \
    --accounts 4 --results "$out" --label "$LABEL" \
    paint --painters 2 --subscribers "$subs" --viewport 1 --rate "$rate" --duration "$DURATION" >&2
  tail -n 1 "$out"
  tail -n 1 "$out" >>"$RESULTS"
  rm -f "$out"
}

printf '%-12s %-6s %-24s %-24s %s\n' subscribers rate "pixelparty p50/p99 ms" "floor p50/p99 ms" "p99 ratio"
for subs in $SUBSCRIBERS; do
  for rate in $RATES; do
    start_pixelparty "$PORT" "$ADMIN" "$DATA" "$ROOT/bench/server.toml"
    pp=$(run_paint pixelparty "127.0.0.1:$PORT" "$PP_PID" "$subs" "$rate")
    stop_pid "$PP_PID"
    floor_log=$(mktemp)
    "$BIN/pixelparty-bench" --addr "127.0.0.1:$((PORT + 1))" floor --width 2048 --height 2048 --tile 256 \
      --tick-ms 5 --seconds $((DURATION + 120)) >"$floor_log" 2>&1 &
    FLOOR_PID=$!
    for _ in $(seq 1 100); do grep -q "^floor listening" "$floor_log" && break; sleep 0.1; done
    fl=$(run_paint floor "127.0.0.1:$((PORT + 1))" "$FLOOR_PID" "$subs" "$rate")
    stop_pid "$FLOOR_PID"
    rm -f "$floor_log"
    python3 - "$subs" "$rate" "$pp" "$fl" <<'EOF'
import json, sys
subs, rate, pp, fl = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
a, b = pp["paint_to_receipt"], fl["paint_to_receipt"]
ratio = a["p99_ms"] / b["p99_ms"] if b["p99_ms"] else float("nan")
print(f"{subs:<12} {rate:<6} {a['p50_ms']:>8.1f} / {a['p99_ms']:<12.1f} {b['p50_ms']:>8.1f} / {b['p99_ms']:<12.1f} {ratio:.2f}")
EOF
  done
done
