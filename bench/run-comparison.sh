#!/usr/bin/env bash
# Runs the whole side-by-side comparison on this machine: pixelparty, socket.io 4 and Node ws
# through the same scenarios, then prints the results table (bench/README.md keeps a copy).
#
#   bench/run-comparison.sh            # full size (about 10 minutes)
#   SCALE=small bench/run-comparison.sh   # a quick look
#
# Results are appended to bench/results.jsonl; the table is printed by bench/scripts/table.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/target/release"
source bench/scripts/common.sh
RESULTS=${RESULTS:-bench/results.jsonl}
SCALE=${SCALE:-full}
LABEL=${LABEL:-$(date -u +%Y-%m-%dT%H:%M)-$SCALE}

if [ "$SCALE" = small ]; then
  IDLE=2000; CHAT_CONN=500; CHAT_ROOMS=5; CHAT_SENDERS=5; SAT_START=200; STEP=3; SAT_STEPS=6
  PAINT_SUBS=20; SNAP_CLIENTS=16
else
  IDLE=19000; CHAT_CONN=2000; CHAT_ROOMS=20; CHAT_SENDERS=20; SAT_START=500; STEP=5; SAT_STEPS=12
  PAINT_SUBS=100; SNAP_CLIENTS=64
fi

cargo build --release -p pixelparty-gateway -p pixelparty-bench
(cd bench/peers && npm ci --silent)

bench() { "$BIN/pixelparty-bench" --results "$RESULTS" --label "$LABEL" "$@"; }

for target in pixelparty pixelparty-wt socketio ws; do
  transport=ws
  case $target in
    pixelparty) start_pixelparty 18080 19091 "$ROOT/target/bench-data" bench/server.toml; PID=$PP_PID; ADDR=127.0.0.1:18080 ;;
    pixelparty-wt) start_pixelparty 18080 19091 "$ROOT/target/bench-data" bench/server.toml; PID=$PP_PID; ADDR=127.0.0.1:18080; transport=wt ;;
    socketio) start_peer socketio-server.mjs 18081; PID=$PEER_PID; ADDR=127.0.0.1:18081 ;;
    ws) start_peer ws-server.mjs 18082; PID=$PEER_PID; ADDR=127.0.0.1:18082 ;;
  esac
  common=(--target "${target%-wt}" --transport "$transport" --addr "$ADDR" --server-pid "$PID" --workers 2 --sources 8)
  bench "${common[@]}" idle --connections "$IDLE" --hold 5
  bench "${common[@]}" chat --connections "$CHAT_CONN" --rooms "$CHAT_ROOMS" --senders "$CHAT_SENDERS" --rate "$((SAT_START * 4))" --duration 10
  bench "${common[@]}" sat --connections "$CHAT_CONN" --rooms "$CHAT_ROOMS" --senders "$CHAT_SENDERS" --rate "$SAT_START" --duration "$STEP" --steps "$SAT_STEPS" --p99-ms 50
  if [ "${target%-wt}" = pixelparty ]; then
    bench "${common[@]}" paint --painters 10 --subscribers "$PAINT_SUBS" --rate 5000 --duration 10
    bench "${common[@]}" snapshot --clients "$SNAP_CLIENTS" --duration 10
    bench "${common[@]}" login --users 100 --concurrency 8
  fi
  stop_pid "$PID"
done
python3 bench/scripts/table.py "$RESULTS" "$LABEL"
