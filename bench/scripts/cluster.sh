#!/usr/bin/env bash
# The cluster benchmark: pixelparty on 3 nodes behind HAProxy (Redis + PostgreSQL, started by
# ops/cluster/run.sh), and beside it in the same run socket.io with @socket.io/redis-adapter on
# 3 Node processes behind an HAProxy of the same configuration and the same Redis.
#
#   bench/scripts/cluster.sh               # full size: about 10 minutes after the build
#   SCALE=small bench/scripts/cluster.sh   # a quick look (tiny sizes, every step once)
#
# What it runs, with target/release/pixelparty-bench (bench/README.md, "Cluster", has the
# figures and how to read them):
#   a. chat `sat` through HAProxy (2,000 connections in 20 rooms, 20 senders, 40 msgs/s × 1.25
#      per 5 s step until p99 > 50 ms, after a 5 s warm-up chat that is not recorded), then
#      `chat` at a fixed 400 msgs/s (40,000 deliveries/s), pixelparty then socket.io. The CPU
#      of the 3 nodes (summed), HAProxy, Redis, PostgreSQL, the client and the whole machine
#      is sampled from /proc every 0.25 s and attached to every step;
#   b. `paint` through HAProxy (painters and subscribers land on different nodes);
#   c. `idle` straight to each node's own port (one client process per node, 127.0.0.1-8 as
#      source addresses): HAProxy takes 2 file descriptors per proxied connection and every
#      process here may open 20,000, so through one HAProxy ~9.9 k is the most;
#   d. catch-up: under a paint load on node1 and node3, node2 is SIGKILLed, started again
#      after CU_DOWN seconds, and timed until its applied canvas sequence reaches node1's.
# Raw JSON lines go to $RESULTS (default bench/results.jsonl), each with the cluster's CPU;
# a Markdown table is printed at the end.
#
# Environment: BIN (directory of pixelparty and pixelparty-bench; default target/release,
# built when missing), COMMIT and DIRTY (what the result lines say the binaries were built
# from; default: this checkout's HEAD and whether it has changes), SCALE (full|small),
# RESULTS, LABEL, OWN_POSTGRES (1: a throwaway PostgreSQL of run.sh's, whose CPU is then ours
# alone; default 1 for full, 0 for small), WAIT_FOR_BUILDS (1: before each measurement wait,
# up to 15 minutes, until no cargo or rustc runs and the machine is quiet, under QUIET_CORES =
# 0.4 cores busy; default 1 for full), IDLE_TOTAL (connections for `idle`, split over the 3
# nodes; default 50000), CLUSTER_BENCH_KEEP=1 (keep the work directory after a failure).
#
# Not in bench/scripts/ci-smoke.sh: SCALE=small takes about 40 s here with release binaries,
# CI has debug ones (three debug nodes and argon2 sign-ups), and it needs PostgreSQL, Redis,
# HAProxy and Node at once; ops/cluster/check.sh covers the cluster in CI.
#
# Bounded: every scenario runs under `timeout`, every wait has a deadline, all traffic goes to
# 127.0.0.0/8, and everything started here (the cluster, the socket.io processes, the second
# HAProxy, the restarted node, the sampler) is stopped at exit, on failure too.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BIN=${BIN:-$ROOT/target/release}
SCALE=${SCALE:-full}
RESULTS=${RESULTS:-bench/results.jsonl}
LABEL=${LABEL:-$(date -u +%Y-%m-%dT%H:%M)-cluster-$SCALE}
STATS="$ROOT/bench/scripts/cluster_stats.py"

if [ "$SCALE" = small ]; then
  SAT=(--connections 60 --rooms 3 --senders 3 --rate 30 --duration 1 --drain 1 --steps 2 --p99-ms 5000)
  SAT_STEP_S=2
  CHAT=(--connections 60 --rooms 3 --senders 3 --rate 30 --duration 1 --drain 1)
  WARM=(--connections 60 --rooms 3 --senders 3 --rate 30 --duration 1 --drain 1)
  PAINT=(--painters 2 --subscribers 4 --rate 100 --duration 1)
  IDLE_TOTAL=${IDLE_TOTAL:-150}
  IDLE_HOLD=0.5
  CU_RATE=100 CU_WARM=1 CU_DOWN=1 CU_DURATION=8 CU_MAX=30
  OWN_POSTGRES=${OWN_POSTGRES:-0}
  WAIT_FOR_BUILDS=${WAIT_FOR_BUILDS:-0}
  SCENARIO_TIMEOUT=60
else
  # The single-node shape (bench/run-comparison.sh), from a lower rate in finer steps: through
  # HAProxy and 3 nodes on 2 cores, both servers pass p99 50 ms at 500 msgs/s already, and
  # socket.io's p99 sits at 30-57 ms from 4 k deliveries/s on.
  SAT=(--connections 2000 --rooms 20 --senders 20 --rate 40 --factor 1.25 --duration 5 --steps 16 --p99-ms 50)
  SAT_STEP_S=7 # --duration 5 and the default --drain 2
  # Both at one fixed rate: 400 msgs/s, 40,000 deliveries/s offered.
  CHAT=(--connections 2000 --rooms 20 --senders 20 --rate 400 --duration 10)
  # Not recorded: before `sat`, so that its first step does not measure a cold start (fresh
  # Node processes gave p99 56-71 ms at 4-10 k deliveries/s cold, 23-43 ms warm).
  WARM=(--connections 2000 --rooms 20 --senders 20 --rate 200 --duration 5)
  PAINT=(--painters 10 --subscribers 100 --rate 5000 --duration 10)
  IDLE_TOTAL=${IDLE_TOTAL:-50000}
  IDLE_HOLD=10
  CU_RATE=1000 CU_WARM=8 CU_DOWN=10 CU_DURATION=50 CU_MAX=120
  OWN_POSTGRES=${OWN_POSTGRES:-1}
  WAIT_FOR_BUILDS=${WAIT_FOR_BUILDS:-1}
  SCENARIO_TIMEOUT=600
fi
# One client process per node for `idle`; each below the 20,000 open files of a process.
IDLE_PER_NODE=(
  $(((IDLE_TOTAL + 2) / 3))
  $(((IDLE_TOTAL + 1) / 3))
  $((IDLE_TOTAL / 3))
)

say() { printf 'cluster-bench: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}
now_ms() { date +%s%3N; }

if [ "$BIN" = "$ROOT/target/release" ] && { [ ! -x "$BIN/pixelparty" ] || [ ! -x "$BIN/pixelparty-bench" ]; }; then
  cargo build --release -p pixelparty-gateway -p pixelparty-bench
fi
[ -x "$BIN/pixelparty" ] && [ -x "$BIN/pixelparty-bench" ] || die "no pixelparty and pixelparty-bench in $BIN"
(cd bench/peers && npm ci --silent)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pixelparty-cluster-bench.XXXXXX")
STATE_DIR="$WORK/state"
RAW="$WORK/raw.jsonl"
mkdir -p "$WORK/pids"
DB="pixelparty_cluster_bench_$$"
RUN_PID="" SAMPLER_PID="" HAPROXY2_PID="" NODE2_NEW=""
SIO_PIDS=() BG_PIDS=()

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
stop() { # <pid> <seconds>: SIGTERM, then SIGKILL after <seconds>
  local pid=$1 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $2 * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid
  set +e
  trap '' INT TERM
  for pid in "${BG_PIDS[@]}"; do alive "$pid" && kill -KILL "$pid"; done
  for pid in "${SIO_PIDS[@]}"; do stop "$pid" 5; done
  stop "$HAPROXY2_PID" 5
  stop "$NODE2_NEW" 20
  if alive "$RUN_PID"; then
    stop "$RUN_PID" 60
    # What run.sh started, if it had to be killed.
    if [ -f "$STATE_DIR/cluster.env" ]; then
      for pid in $(sed -n 's/^\(NODE[0-9]*\|REDIS\|HAPROXY\)_PID=//p' "$STATE_DIR/cluster.env"); do
        alive "$pid" && kill -KILL "$pid"
      done
    fi
  fi
  touch "$WORK/stop"
  stop "$SAMPLER_PID" 5
  if [ "$rc" != 0 ]; then
    say "failed (status $rc); the last lines of the logs:"
    tail -n 20 "$WORK/run.log" >&2 2>/dev/null
    for f in "$STATE_DIR"/logs/*.log "$WORK"/*.err "$WORK"/*.out "$WORK"/*.log; do
      [ -f "$f" ] || continue
      echo "--- $f" >&2
      tail -n 8 "$f" >&2
    done
  fi
  if [ "$rc" != 0 ] && [ "${CLUSTER_BENCH_KEEP:-0}" = 1 ]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BUILD_OVERLAP=0
busy_cores() { # the machine's busy CPU cores over 5 seconds (/proc/stat; steal included)
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat)
  sleep 5
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat)
  awk -v a="$a" -v b="$b" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz / 5 }'
}
# Before a measurement: until no cargo or rustc runs and the machine is quiet (under
# QUIET_CORES busy over 5 s, what is left of ours when idle included), at most 15 minutes;
# then it measures anyway and says so in the result lines. Every result line also carries
# the CPU of everything else during its own window (`others`).
QUIET_CORES=${QUIET_CORES:-0.4}
wait_for_builds() {
  [ "$WAIT_FOR_BUILDS" = 1 ] || return 0
  local waited=0 busy
  while true; do
    if ! pgrep -x 'cargo|rustc' >/dev/null; then
      busy=$(busy_cores)
      awk -v b="$busy" -v q="$QUIET_CORES" 'BEGIN { exit !(b < q) }' && return 0
    else
      busy="a build"
      sleep 5
    fi
    if [ "$waited" -ge 900 ]; then
      say "the machine is still busy after 15 minutes ($busy): measuring anyway (recorded)"
      BUILD_OVERLAP=1
      return 0
    fi
    [ "$waited" = 0 ] && say "waiting for the machine to be quiet: no cargo or rustc, under $QUIET_CORES cores busy (now: $busy)"
    sleep 15
    waited=$((waited + 20))
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The commit the binaries were built from (COMMIT to say it when they come from elsewhere).
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
if [ -z "${DIRTY:-}" ]; then
  DIRTY=false
  [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && DIRTY=true
fi
meta() { # the cluster's description stored with every result line
  printf '{"nodes":3,"scale":"%s","commit":"%s","dirty":%s,"build_overlap":%s,"own_postgres":%s,"phase":"%s"}' \
    "$SCALE" "$COMMIT" "$DIRTY" "$([ "$BUILD_OVERLAP" = 1 ] && echo true || echo false)" \
    "$([ "$OWN_POSTGRES" = 1 ] && echo true || echo false)" "$1"
}
record() { # <kind> <phase> <args...>
  local kind=$1 phase=$2
  shift 2
  CLUSTER_META="$(meta "$phase")" python3 "$STATS" record "$kind" "$WORK" "$RAW" "$RESULTS" "$@"
}

bench() { timeout "$SCENARIO_TIMEOUT" "$BIN/pixelparty-bench" --results "$RAW" --label "$LABEL" "$@"; }
# stamped <name> <bench args...>: stdout to <name>.out, stderr (progress) stamped to <name>.err
stamped() {
  local name=$1
  shift
  bench "$@" 2>&1 >"$WORK/$name.out" | python3 "$STATS" stamp >"$WORK/$name.err"
}

# chat_phases <target> <addr> <tag>: a warm-up chat (not recorded), then sat and a fixed-rate
# chat through HAProxy, each after waiting for a quiet machine.
chat_phases() {
  local target=$1 addr=$2 tag=$3
  wait_for_builds
  say "a. sat, $target, through HAProxy (after a warm-up chat, not recorded)"
  timeout "$SCENARIO_TIMEOUT" "$BIN/pixelparty-bench" --results "$WORK/warm.jsonl" --target "$target" --addr "$addr" \
    --workers 2 --sources 8 chat "${WARM[@]}" >"$WORK/warm-$tag.out" 2>&1
  stamped "sat-$tag" --target "$target" --addr "$addr" --workers 2 --sources 8 sat "${SAT[@]}"
  record sat "sat through haproxy" "$WORK/sat-$tag.err" "$SAT_STEP_S"
  wait_for_builds
  stamped "chat-$tag" --target "$target" --addr "$addr" --workers 2 --sources 8 chat "${CHAT[@]}"
  record chat "chat through haproxy" "$WORK/chat-$tag.err"
}

python3 "$STATS" sample "$WORK" &
SAMPLER_PID=$!

# --- the pixelparty cluster --------------------------------------------------------------

cat >"$WORK/node-bench.toml" <<'EOF'
# Merged into every node's config (run.sh --node-config): as bench/server.toml, no paint
# cooldown, no chat slow mode, login limits lifted, room for ~19,000 connections per node.
[server]
max_connections = 19000
max_connections_per_ip = 20000
idle_timeout_ms = 600000

[canvas]
width = 2048
height = 2048
tile_size = 256
cooldown_ms = 0

[auth]
login_per_ip_per_min = 1000000
login_per_account_per_min = 1000000
signup_per_ip_per_hour = 1000000
hash_queue = 4096

[limits]
chat_burst = 1000000
chat_interval_ms = 0
max_room_members = 20000
room_creates_per_user_per_hour = 1000000
EOF

run_args=(--port 0 --dir "$STATE_DIR" --db "$DB" --reset-db --drop-db --node-config "$WORK/node-bench.toml" --start-timeout 180)
[ "$OWN_POSTGRES" = 1 ] && run_args+=(--own-postgres)
say "starting ops/cluster/run.sh ${run_args[*]}"
env -u PIXELPARTY_COOLDOWN_MS -u PIXELPARTY_WIDTH -u PIXELPARTY_HEIGHT -u PIXELPARTY_SHARDS \
  PIXELPARTY_BIN="$BIN/pixelparty" bash ops/cluster/run.sh "${run_args[@]}" >"$WORK/run.log" 2>&1 &
RUN_PID=$!
deadline=$((SECONDS + 240))
until grep -qx 'READY=1' "$STATE_DIR/cluster.env" 2>/dev/null; do
  alive "$RUN_PID" || die "run.sh ended before the cluster was up"
  [ "$SECONDS" -lt "$deadline" ] || die "the cluster was not up within 240 s"
  sleep 0.2
done
# shellcheck disable=SC1091
. "$STATE_DIR/cluster.env"
ADMIN_TOKEN=$(cat "$ADMIN_TOKEN_FILE")
PUBLIC=${PUBLIC_URL#http://}
NODE_PIDS=("$NODE1_PID" "$NODE2_PID" "$NODE3_PID")
NODE_ADDRS=("${NODE1_HTTP#http://}" "${NODE2_HTTP#http://}" "${NODE3_HTTP#http://}")
echo "${NODE_PIDS[*]}" >"$WORK/pids/nodes"
echo "$REDIS_PID" >"$WORK/pids/redis"
say "cluster up: HAProxy $PUBLIC_URL, nodes ${NODE_ADDRS[*]} (pids ${NODE_PIDS[*]}), Redis $REDIS_URL, PostgreSQL $PG_KIND"

metric() { # <admin url> <name>: the value of one metric of a node (empty if it does not answer)
  # awk reads all of it: quitting early would fail curl's write (status 23, under pipefail).
  { curl -s --max-time 1 -H "authorization: Bearer $ADMIN_TOKEN" "$1/metrics" 2>/dev/null || true; } |
    awk -v m="$2" '($1 == m || index($1, m "{") == 1) && v == "" { v = $2 } END { print v }'
}
applied() { metric "$1" pixelparty_cluster_canvas_applied_seq; }
haproxy_sessions() { # <stats url> -> "node1=N node2=N ..." (sessions since start)
  curl -s --max-time 5 "$1;csv" | awk -F, '$1 == "nodes" && $2 != "BACKEND" { printf "%s=%s ", $2, $8 }'
}
node_fds() { # total open files of the node pids
  local n=0 pid
  for pid in $(cat "$WORK/pids/nodes"); do
    n=$((n + $(ls "/proc/$pid/fd" 2>/dev/null | wc -l)))
  done
  echo "$n"
}

# idle_direct <target> <phase> <addr...>: one `idle` process per node, straight to its port
idle_direct() {
  local target=$1 phase=$2 i t0 t1 base pids=()
  shift 2
  local addrs=("$@") spids
  read -r -a spids <"$WORK/pids/nodes"
  touch "$WORK/count-fds"
  sleep 0.5
  base=$(node_fds)
  t0=$(now_ms)
  for i in 0 1 2; do
    bench --target "$target" --addr "${addrs[i]}" --server-pid "${spids[i]}" --workers 2 --sources 8 \
      idle --connections "${IDLE_PER_NODE[i]}" --hold "$IDLE_HOLD" >"$WORK/idle-$target-$i.out" 2>&1 &
    pids+=($!)
  done
  BG_PIDS=("${pids[@]}")
  local failed=0
  for i in 0 1 2; do wait "${pids[i]}" || failed=1; done
  BG_PIDS=()
  t1=$(now_ms)
  rm -f "$WORK/count-fds"
  [ "$failed" = 0 ] || die "an idle client process failed (see $WORK/idle-$target-*.out)"
  record idle "$phase" 3 "$t0" "$t1" "$base"
}

# a. chat saturation through HAProxy
chat_phases pixelparty "$PUBLIC" pp

# b. paint through HAProxy: the painters and subscribers spread over the nodes (leastconn)
wait_for_builds
say "b. paint, pixelparty, through HAProxy"
before=$(haproxy_sessions "$STATS_URL")
stamped paint-pp --target pixelparty --addr "$PUBLIC" --workers 2 --sources 8 paint "${PAINT[@]}"
say "HAProxy sessions per node before / after paint: $before/ $(haproxy_sessions "$STATS_URL")"
record paint "paint through haproxy; haproxy sessions before: $before; after: $(haproxy_sessions "$STATS_URL")" "$WORK/paint-pp.err"

# c. connections held, straight to the nodes
wait_for_builds
say "c. idle, pixelparty, ${IDLE_PER_NODE[*]} connections straight to the 3 nodes"
idle_direct pixelparty "idle straight to each node" "${NODE_ADDRS[@]}"

# d. catch-up after a SIGKILL, under a paint load on node1 and node3 (not through HAProxy, so
# that the kill does not end the load)
wait_for_builds
say "d. catch-up: paint load on node1 and node3, node2 SIGKILLed and started again"
cu_pids=()
for i in 0 2; do
  bench --target pixelparty --addr "${NODE_ADDRS[i]}" --workers 1 \
    paint --painters 4 --subscribers 0 --rate "$CU_RATE" --duration "$CU_DURATION" >"$WORK/catchup-paint-$i.out" 2>&1 &
  cu_pids+=($!)
done
BG_PIDS=("${cu_pids[@]}")
# The load runs once node1's head moves.
h0=$(applied "$NODE1_ADMIN")
deadline=$((SECONDS + 60))
until [ "$(applied "$NODE1_ADMIN")" != "$h0" ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "the catch-up paint load did not start within 60 s"
  sleep 0.2
done
sleep "$CU_WARM"
node2_before=$(applied "$NODE2_ADMIN")
head_at_kill=$(applied "$NODE1_ADMIN")
kill -KILL "$NODE2_PID"
t_kill=$(now_ms)
sleep "$CU_DOWN"
head_at_restart=$(applied "$NODE1_ADMIN")
# As run.sh starts a node (its place comes from its config file).
env -u PIXELPARTY_CONFIG -u PIXELPARTY_HTTP -u PIXELPARTY_ADMIN -u PIXELPARTY_WT -u PIXELPARTY_DATA \
  -u PIXELPARTY_POSTGRES_URL -u PIXELPARTY_REDIS_URL -u PIXELPARTY_NODE_ID -u PIXELPARTY_CLUSTER_PREFIX \
  -u PIXELPARTY_ADMIN_TOKEN -u PIXELPARTY_COOLDOWN_MS -u PIXELPARTY_WIDTH -u PIXELPARTY_HEIGHT -u PIXELPARTY_SHARDS \
  NO_COLOR=1 "$BIN/pixelparty" serve --config "$STATE_DIR/node2.toml" >"$WORK/node2-restart.log" 2>&1 &
NODE2_NEW=$!
t_start=$(now_ms)
echo "$NODE1_PID $NODE2_NEW $NODE3_PID" >"$WORK/pids/nodes"
ready_ms="" caught_ms="" head_caught="" deadline=$((SECONDS + CU_MAX))
while [ "$SECONDS" -lt "$deadline" ]; do
  alive "$NODE2_NEW" || die "the restarted node2 exited (see $WORK/node2-restart.log)"
  if [ -z "$ready_ms" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$NODE2_ADMIN/readyz")" = 200 ]; then
    ready_ms=$(($(now_ms) - t_start))
  fi
  h1=$(applied "$NODE1_ADMIN")
  h2=$(applied "$NODE2_ADMIN")
  if [ -n "$h1" ] && [ -n "$h2" ] && [ "$h2" -ge "$h1" ] && [ "$h2" -gt 0 ]; then
    caught_ms=$(($(now_ms) - t_start))
    head_caught=$h2
    break
  fi
  sleep 0.05
done
[ -n "$caught_ms" ] || die "the restarted node2 did not reach node1's head within ${CU_MAX}s"
gap_fill=$(metric "$NODE2_ADMIN" pixelparty_cluster_gap_fill_updates_total)
rebuilds=$(metric "$NODE2_ADMIN" pixelparty_cluster_canvas_rebuilds_total)
still_running=0
for pid in "${cu_pids[@]}"; do alive "$pid" && still_running=$((still_running + 1)); done
for pid in "${cu_pids[@]}"; do wait "$pid" || die "a catch-up paint process failed (see $WORK/catchup-paint-*.out)"; done
BG_PIDS=()
recovered=$(grep -m1 'canvas recovered' "$WORK/node2-restart.log" || true)
replayed=$(sed -n 's/.*replayed=\([0-9]*\).*/\1/p' <<<"$recovered")
last_seq=$(sed -n 's/.*last_seq=\([0-9]*\).*/\1/p' <<<"$recovered")
record raw "catch-up paint load on node1 and node3" 2 # the two paint records, as they are
catchup=$(python3 -c '
import json, sys
a = sys.argv[1:]
n = lambda s: int(s) if s else None
print(json.dumps({
    "scenario": "cluster-catchup", "target": "pixelparty", "label": a[0], "time_ms": n(a[1]),
    "paint_load_offered_per_s": 2 * float(a[2]), "down_s": float(a[3]),
    "node2_applied_before_kill": n(a[4]), "head_at_kill": n(a[5]), "head_at_restart": n(a[6]),
    "missed_updates": (n(a[6]) - n(a[4])) if a[4] and a[6] else None,
    "ready_s": n(a[7]) / 1000 if a[7] else None, "caught_up_s": n(a[8]) / 1000,
    "head_when_caught_up": n(a[9]), "recovered_last_seq": n(a[10]), "replayed_at_start": n(a[11]),
    "gap_fill_updates": n(a[12]), "load_still_running_when_caught_up": a[13] != "0",
    "canvas_rebuilds": n(a[14]),
}))' "$LABEL" "$t_kill" "$CU_RATE" "$CU_DOWN" "$node2_before" "$head_at_kill" "$head_at_restart" \
  "$ready_ms" "$caught_ms" "$head_caught" "$last_seq" "$replayed" "$gap_fill" "$still_running" "$rebuilds")
record json "catch-up after SIGKILL" "$catchup" "$((t_kill - CU_WARM * 1000))" "$((t_start + caught_ms))"
say "catch-up: $catchup"

# The pixelparty nodes stop here: the socket.io processes get the machine alone, with the same
# Redis (run.sh's, still running) and an HAProxy of the same configuration.
for pid in "$NODE1_PID" "$NODE3_PID" "$NODE2_NEW"; do alive "$pid" && kill -TERM "$pid"; done
for pid in "$NODE1_PID" "$NODE3_PID" "$NODE2_NEW"; do stop "$pid" 20; done
NODE2_NEW=""

# --- the socket.io cluster ---------------------------------------------------------------

SIO_ADDRS=()
for i in 1 2 3; do
  REDIS_URL="$REDIS_URL" REDIS_KEY="socket.io-bench-$$" node bench/peers/socketio-server.mjs 0 >"$WORK/sio$i.log" 2>&1 &
  SIO_PIDS+=($!)
  deadline=$((SECONDS + 30))
  until grep -q '^listening' "$WORK/sio$i.log" 2>/dev/null; do
    alive "${SIO_PIDS[-1]}" || die "socket.io process $i exited: $(cat "$WORK/sio$i.log")"
    [ "$SECONDS" -lt "$deadline" ] || die "socket.io process $i did not listen within 30 s"
    sleep 0.1
  done
  SIO_ADDRS+=("127.0.0.1:$(awk '/^listening/ { print $2; exit }' "$WORK/sio$i.log")")
done
echo "${SIO_PIDS[*]}" >"$WORK/pids/nodes"
SIO_PORT=$(free_port)
SIO_STATS=$(free_port)
servers=""
for i in 1 2 3; do
  port=${SIO_ADDRS[i - 1]#127.0.0.1:}
  servers+="    server node$i 127.0.0.1:$port port $port"$'\n'
done
python3 - "$ROOT/ops/cluster/haproxy.cfg.template" "$WORK/haproxy-socketio.cfg" \
  "LISTEN=127.0.0.1" "PORT=$SIO_PORT" "STATS_PORT=$SIO_STATS" "SERVERS=${servers%$'\n'}" <<'PY'
import sys
text = open(sys.argv[1]).read()
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1)
    text = text.replace(f"@{k}@", v)
open(sys.argv[2], "w").write(text)
PY
haproxy -c -q -f "$WORK/haproxy-socketio.cfg" || die "haproxy refused $WORK/haproxy-socketio.cfg"
haproxy -db -f "$WORK/haproxy-socketio.cfg" >"$WORK/haproxy-socketio.log" 2>&1 &
HAPROXY2_PID=$!
deadline=$((SECONDS + 30))
until [ "$(curl -s --max-time 2 "http://127.0.0.1:$SIO_STATS/ready")" = "ready 3" ]; do
  alive "$HAPROXY2_PID" || die "the socket.io HAProxy exited"
  [ "$SECONDS" -lt "$deadline" ] || die "the socket.io HAProxy did not see 3 processes up within 30 s"
  sleep 0.2
done
say "socket.io cluster up: HAProxy 127.0.0.1:$SIO_PORT, processes ${SIO_ADDRS[*]} (pids ${SIO_PIDS[*]}), Redis $REDIS_URL"

chat_phases socketio "127.0.0.1:$SIO_PORT" sio

wait_for_builds
say "c. idle, socket.io, ${IDLE_PER_NODE[*]} connections straight to the 3 processes"
idle_direct socketio "idle straight to each node" "${SIO_ADDRS[@]}"

for pid in "${SIO_PIDS[@]}"; do stop "$pid" 5; done
SIO_PIDS=()
stop "$HAPROXY2_PID" 5
HAPROXY2_PID=""
stop "$RUN_PID" 60
RUN_PID=""

echo
echo "Results \`$LABEL\` (appended to $RESULTS)"
echo
python3 "$STATS" table "$RESULTS" "$LABEL"
