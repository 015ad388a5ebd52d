#!/usr/bin/env bash
# The storage backends side by side: for embedded fjall and for PostgreSQL (a fresh database),
# starts pixelparty with bench/server.toml, runs `login`, `paint` and `store`, stops it; then
# prints a Markdown table (bench/README.md keeps a copy) and checks that no scenario reported
# errors or refusals. The JSON lines are appended to bench/results.jsonl.
#
#   bench/scripts/storage-backends.sh               # full size: about 4 minutes after the build
#   SCALE=small bench/scripts/storage-backends.sh   # a quick look (3-second phases)
#
# PostgreSQL must run at $PG_SERVER (trust auth); the database is created here and dropped on
# exit. Bounded: every scenario is bounded in count and time, and each runs under `timeout`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BIN="$ROOT/target/release"
source bench/scripts/common.sh
RESULTS=${RESULTS:-bench/results.jsonl}
SCALE=${SCALE:-full}
LABEL=${LABEL:-$(date -u +%Y-%m-%dT%H:%M)-storage-$SCALE}
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}
PG_ADMIN_DB=${PG_ADMIN_DB:-test} # where CREATE / DROP DATABASE run
PG_DB="pixelparty_bench_$(date -u +%s)"
PORT=38080 ADMIN=39091 # apart from run-comparison.sh (18080) and ci-smoke.sh (28080)
DATA="$ROOT/target/bench-storage-data"
SCENARIO_TIMEOUT=300 # seconds; the largest scenario (store) needs about 80

if [ "$SCALE" = small ]; then
  USERS=40; PAINT_S=3; STORE=(--duration 3 --history 500 --pixels 500)
else
  USERS=200; PAINT_S=10; STORE=()
fi

# A server address given to the fjall run would switch it to PostgreSQL.
unset PIXELPARTY_POSTGRES_URL
PID=
cleanup() {
  if [ -n "$PID" ]; then stop_pid "$PID"; fi
  psql "$PG_SERVER/$PG_ADMIN_DB" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# CPU seconds (user + system) of every PostgreSQL process now; backends that exit take theirs
# with them, so read it before the server closes its pool.
pg_cpu_s() {
  local ticks=0 pid f
  for pid in $(pgrep -x postgres || true); do
    f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || continue
    ticks=$((ticks + ${f% *} + ${f#* }))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

cargo build --release -p pixelparty-gateway -p pixelparty-bench

bench() { timeout "$SCENARIO_TIMEOUT" "$BIN/pixelparty-bench" --results "$RESULTS" --label "$LABEL-$backend" "$@"; }

declare -A PG_CPU
for backend in fjall postgres; do
  if [ "$backend" = postgres ]; then
    psql "$PG_SERVER/$PG_ADMIN_DB" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $PG_DB"
    # The environment form of `serve --postgres-url` (start_pixelparty takes no extra flags).
    export PIXELPARTY_POSTGRES_URL="$PG_SERVER/$PG_DB"
  fi
  start_pixelparty "$PORT" "$ADMIN" "$DATA-$backend" bench/server.toml
  PID=$PP_PID
  unset PIXELPARTY_POSTGRES_URL
  cpu_before=$(pg_cpu_s)
  common=(--target pixelparty --addr "127.0.0.1:$PORT" --server-pid "$PID" --workers 2 --sources 8)
  bench "${common[@]}" login --users "$USERS" --concurrency 8
  bench "${common[@]}" paint --painters 4 --subscribers 10 --rate 2000 --duration "$PAINT_S"
  bench "${common[@]}" store "${STORE[@]}"
  PG_CPU[$backend]=$(awk -v a="$(pg_cpu_s)" -v b="$cpu_before" 'BEGIN { printf "%.1f", a - b }')
  stop_pid "$PID"
  PID=
done

PG_CPU_FJALL=${PG_CPU[fjall]} PG_CPU_POSTGRES=${PG_CPU[postgres]} python3 - "$RESULTS" "$LABEL" <<'PY'
import json, os, sys

path, label = sys.argv[1], sys.argv[2]
backends = ("fjall", "postgres")
by = {}
for line in open(path):
    if line.strip():
        r = json.loads(line)
        for b in backends:
            if r.get("label") == f"{label}-{b}":
                by[(r["scenario"], b)] = r  # the last run of each wins

def get(scenario, backend, *keys):
    r = by.get((scenario, backend))
    for k in keys:
        r = r.get(k) if isinstance(r, dict) else None
    return r

def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float) and v < 100:
        return f"{v:.2f}"
    return f"{v:,.0f}"

rows = [
    ("sign-ups + logins/s (argon2id)", "login", ("operations_per_s",)),
    ("room messages acked/s (sync, 8 senders × 16 in flight)", "store", ("room_acks", "acks", "per_s")),
    ("room message ack p50 / p99 ms", "store", ("room_acks", "acks", "latency"), ),
    ("accepted paints/s (journal appends, offered 2,000)", "paint", ("accepted_per_s",)),
    ("paint-to-ack p50 / p99 ms (paint scenario)", "paint", ("paint_to_ack",)),
    ("pixel inspector requests/s (8 clients)", "store", ("inspector", "requests", "per_s")),
    ("pixel inspector p50 / p99 ms", "store", ("inspector", "requests", "latency")),
    ("joins with history/s (32 clients)", "store", ("join_history", "join_to_history", "per_s")),
    ("join-to-history p50 / p99 ms", "store", ("join_history", "join_to_history", "latency")),
    ("paint-to-ack p50 / p99 ms, 500 paints/s, baseline", "store", ("paint_baseline", "paint_to_ack", "latency")),
    ("paint-to-ack p50 / p99 ms, 500 paints/s, during the join storm", "store",
        ("paint_during_storm", "paint_to_ack", "latency")),
    ("accepted paints/s during the join storm", "store", ("paint_during_storm", "paint_to_ack", "per_s")),
    ("joins with history/s during the storm", "store", ("paint_during_storm", "join_to_history", "per_s")),
    ("pixelparty CPU cores, room-acks phase", "store", ("room_acks", "server_cpu_cores")),
    ("pixelparty CPU cores, join phase", "store", ("join_history", "server_cpu_cores")),
]
print(f"Results `{label}-{{fjall,postgres}}`\n")
print("| measure | fjall | PostgreSQL |")
print("|---|---:|---:|")
for name, scenario, keys in rows:
    cells = []
    for b in backends:
        v = get(scenario, b, *keys)
        if isinstance(v, dict):  # a latency summary
            v = f"{fmt(v.get('p50_ms'))} / {fmt(v.get('p99_ms'))}" if v.get("count") else None
        cells.append(fmt(v) if not isinstance(v, str) else v)
    print(f"| {name} | {cells[0]} | {cells[1]} |")
cpu = [os.environ.get(f"PG_CPU_{b.upper()}", "—") for b in backends]
print(f"| PostgreSQL CPU-seconds over the backend's whole run | {cpu[0]} | {cpu[1]} |")

problems = []
for (scenario, b), r in sorted(by.items()):
    for key in ("errors", "refused"):
        if r.get(key):
            problems.append(f"{b} {scenario}: {key} {r[key]}")
    if scenario == "paint" and not r.get("converged"):
        problems.append(f"{b} paint: subscribers did not converge")
    for phase, v in r.items():
        if isinstance(v, dict) and v.get("refused", 0) + v.get("errors", 0):
            problems.append(f"{b} {scenario} {phase}: {v}")
missing = [f"{s} {b}" for s in ("login", "paint", "store") for b in backends if (s, b) not in by]
problems += [f"no result for {m}" for m in missing]
print()
print("checks: " + ("all scenarios clean (no errors, no refusals, converged)" if not problems else "PROBLEMS"))
for p in problems:
    print(f"  {p}")
sys.exit(1 if problems else 0)
PY
