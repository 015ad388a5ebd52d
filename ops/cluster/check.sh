#!/usr/bin/env bash
# CI check of the local cluster (ops/cluster/run.sh): starts it in the background (3 nodes,
# its own Redis, a fresh database on PostgreSQL, HAProxy on a free port), then, through
# HAProxy only unless said otherwise:
#
#   - HAProxy reports every node up; every node's admin /readyz and /healthz answer 200;
#   - POST /signup answers 201 with a token, which GET /account accepts, through HAProxy and
#     on every node directly (one PostgreSQL); GET /canvas answers the geometry;
#   - GET /ws upgrades to a WebSocket (101) through HAProxy;
#   - HAProxy spreads requests over every node (its stats);
#   - client addresses: an address ban made on node1 reaches node2, which applies it to the
#     X-Forwarded-For of a request from 127.0.0.1 (a trusted proxy), while HAProxy drops the
#     X-Forwarded-For a client sends (the same header through it is not banned);
#   - one node SIGKILLed: sign-ups through HAProxy keep working at once (retried on another
#     node) and after its health check marks it down; run.sh reports the node's end;
#   - SIGTERM to run.sh stops everything it started (no process left, the database dropped)
#     and it exits 0.
#
# Every wait is bounded; everything is on 127.0.0.1; the state directory and the database are
# removed at exit (CLUSTER_CHECK_KEEP=1 keeps the state directory after a failure).
#
#   bash ops/cluster/check.sh       # PIXELPARTY_BIN, default target/debug/pixelparty
#
# CLUSTER_CHECK_OWN_POSTGRES=1 makes run.sh start a throwaway PostgreSQL even if
# 127.0.0.1:5432 answers. Without redis-server, haproxy or curl (and no root to install them)
# or without any PostgreSQL it is skipped with the reason, and fails under CI=true.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

BIN="${PIXELPARTY_BIN:-target/debug/pixelparty}"
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
export PIXELPARTY_BIN="$BIN"

PASSED=0
RUN_PID=""
STATE_DIR=""
START_TIMEOUT=240 # debug binary, a schema migration, a loaded CI machine
ok() {
  PASSED=$((PASSED + 1))
  printf 'ok %2d - %s\n' "$PASSED" "$*"
}
fail() {
  printf '\ncluster check: FAILED: %s\n' "$*" >&2
  exit 1
}

# What run.sh needs and cannot install itself: without it, skipped with the reason (failed
# under CI=true), as the project's tests that need PostgreSQL or Redis do.
skip_or_fail() {
  [ "${CI:-}" = true ] && fail "$1"
  echo "cluster check: skipped: $1"
  exit 0
}
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
for tool in curl:curl redis-server:redis-server haproxy:haproxy; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || can_install ||
    skip_or_fail "${tool%%:*} is missing and cannot be installed here (apt-get install ${tool#*:}, as root)"
done
if ! { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; } &&
  ! ls /usr/lib/postgresql/*/bin/initdb /usr/local/bin/initdb >/dev/null 2>&1; then
  skip_or_fail "no PostgreSQL on 127.0.0.1:5432 and no server binaries to start one (bash .ci/postgres.sh)"
fi
[ -x "$BIN" ] || fail "no executable $BIN (cargo build -p pixelparty-gateway, or set PIXELPARTY_BIN)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pixelparty-cluster-check.XXXXXX")"
STATE_DIR="$WORK/state"
DB="pixelparty_cluster_check_$$"
BODY="$WORK/body"

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Waits for <pid> to end, at most <seconds>; its status in WAITED (255: still running).
wait_pid() {
  local pid="$1" secs="$2" i
  WAITED=255
  for ((i = 0; i < secs * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  alive "$pid" && return 1
  WAITED=0
  wait "$pid" 2>/dev/null || WAITED=$?
  return 0
}

cleanup() {
  local rc=$? f pid
  set +e
  trap '' INT TERM
  if alive "$RUN_PID"; then
    kill -TERM "$RUN_PID"
    if ! wait_pid "$RUN_PID" 60; then
      echo "cluster check: run.sh did not stop within 60 s: SIGKILL to it and what it started" >&2
      kill -KILL "$RUN_PID"
    fi
  fi
  # Whatever is still running of what run.sh started (after a SIGKILL of run.sh).
  if [ -f "$STATE_DIR/cluster.env" ]; then
    for pid in $(sed -n 's/^\(NODE[0-9]*\|REDIS\|HAPROXY\)_PID=//p' "$STATE_DIR/cluster.env"); do
      alive "$pid" && kill -KILL "$pid"
    done
  fi
  if [ "$rc" != 0 ]; then
    echo "--- run.sh output" >&2
    tail -n 40 "$WORK/run.log" >&2 2>/dev/null
    for f in "$STATE_DIR"/logs/*.log; do
      [ -f "$f" ] || continue
      echo "--- $f (last 15 lines)" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [ "$rc" != 0 ] && [ "${CLUSTER_CHECK_KEEP:-0}" = 1 ]; then
    echo "cluster check: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# http <curl args...>: the status code (000 when nothing answered); the body in $BODY.
http() { curl -s -o "$BODY" -w '%{http_code}' --max-time 10 "$@" || true; }
json_field() { grep -o "\"$1\":\"[^\"]*\"" "$BODY" | head -n1 | sed 's/^[^:]*:"//; s/"$//'; }

# Polls `<command...>` until it succeeds, at most <seconds>.
until_true() { # <seconds> <command...>
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

signup() { # <name>: 201 and a token through HAProxy, else fails the check
  local code
  code="$(http -X POST "$PUBLIC_URL/signup" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"correct horse battery\"}")"
  [ "$code" = 201 ] || fail "POST /signup ($1) through HAProxy answered $code: $(head -c 300 "$BODY")"
  TOKEN="$(json_field token)"
  [ -n "$TOKEN" ] || fail "POST /signup ($1) answered 201 without a token: $(head -c 300 "$BODY")"
  [ "$(json_field username)" = "$1" ] || fail "POST /signup ($1) answered another user: $(head -c 300 "$BODY")"
}

# --- start -------------------------------------------------------------------------------

echo "cluster check: starting ops/cluster/run.sh (binary $BIN, database $DB)"
run_args=(--port 0 --dir "$STATE_DIR" --db "$DB" --reset-db --drop-db --start-timeout 180)
[ "${CLUSTER_CHECK_OWN_POSTGRES:-0}" = 1 ] && run_args+=(--own-postgres)
bash "$HERE/run.sh" "${run_args[@]}" >"$WORK/run.log" 2>&1 &
RUN_PID=$!

cluster_ready() {
  alive "$RUN_PID" || fail "run.sh ended before the cluster was up"
  grep -qx 'READY=1' "$STATE_DIR/cluster.env" 2>/dev/null
}
until_true "$START_TIMEOUT" cluster_ready || fail "the cluster was not up within ${START_TIMEOUT}s"
# shellcheck disable=SC1091
. "$STATE_DIR/cluster.env"
[ "$NODES" = 3 ] || fail "run.sh started $NODES nodes, not 3"
ok "run.sh started Redis, PostgreSQL ($PG_KIND), 3 nodes and HAProxy on $PUBLIC_URL"

haproxy_ready() { [ "$(curl -s --max-time 2 "$READY_URL" || true)" = "ready $1" ]; }
until_true 30 haproxy_ready 3 || fail "HAProxy does not report 3 nodes up ($READY_URL: $(curl -s --max-time 2 "$READY_URL"))"
ok "HAProxy reports every node up (health checks on /readyz)"

for i in 1 2 3; do
  admin_var="NODE${i}_ADMIN"
  for route in readyz healthz; do
    code="$(http "${!admin_var}/$route")"
    [ "$code" = 200 ] || fail "node$i ${!admin_var}/$route answered $code"
  done
done
ok "every node's admin /readyz and /healthz answer 200"

# --- through HAProxy ---------------------------------------------------------------------

signup checker
FIRST_TOKEN="$TOKEN"
ok "POST /signup through HAProxy: 201 with a token"

code="$(http "$PUBLIC_URL/account" -H "authorization: Bearer $FIRST_TOKEN")"
[ "$code" = 200 ] && grep -q '"username":"checker"' "$BODY" || fail "GET /account through HAProxy answered $code: $(head -c 300 "$BODY")"
for i in 1 2 3; do
  http_var="NODE${i}_HTTP"
  code="$(http "${!http_var}/account" -H "authorization: Bearer $FIRST_TOKEN")"
  [ "$code" = 200 ] || fail "GET /account on node$i directly answered $code (the session should be in the shared PostgreSQL)"
done
ok "the session works through HAProxy and on every node directly (GET /account)"

code="$(http "$PUBLIC_URL/canvas")"
[ "$code" = 200 ] && grep -q '"width":' "$BODY" && grep -q '"ws_url":"/ws"' "$BODY" ||
  fail "GET /canvas through HAProxy answered $code: $(head -c 300 "$BODY")"
ok "GET /canvas through HAProxy: 200 with the geometry"

# The upgrade only: curl cannot speak WebSocket, so it is cut after the 101 by --max-time.
curl -s -o /dev/null -D "$WORK/ws.headers" --http1.1 --max-time 3 \
  -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
  -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H "Authorization: Bearer $FIRST_TOKEN" \
  "$PUBLIC_URL/ws" || true
head -n1 "$WORK/ws.headers" 2>/dev/null | grep -q '^HTTP/1.1 101' ||
  fail "GET /ws through HAProxy did not upgrade: $(head -n1 "$WORK/ws.headers" 2>/dev/null)"
ok "GET /ws through HAProxy: 101 Switching Protocols"

for _ in $(seq 1 9); do
  code="$(http "$PUBLIC_URL/canvas")"
  [ "$code" = 200 ] || fail "GET /canvas through HAProxy answered $code"
done
# stats CSV: pxname,svname,qcur,qmax,scur,smax,slim,stot,...
stats_csv() { curl -s --max-time 5 "${STATS_URL};csv" || true; }
for i in 1 2 3; do
  stot="$(stats_csv | awk -F, -v s="node$i" '$1 == "nodes" && $2 == s { print $8 }')"
  [ -n "$stot" ] && [ "$stot" -gt 0 ] || fail "HAProxy sent node$i no request (sessions: ${stot:-none})"
done
ok "HAProxy spreads requests over every node (balance leastconn)"

# --- client addresses --------------------------------------------------------------------

ADMIN_TOKEN="$(cat "$ADMIN_TOKEN_FILE")"
code="$(http -X POST "$NODE1_ADMIN/bans/ip" -H "authorization: Bearer $ADMIN_TOKEN" \
  -H 'content-type: application/json' -d '{"cidr":"203.0.113.7","reason":"cluster check"}')"
[ "$code" = 200 ] || fail "POST /bans/ip on node1's admin endpoint answered $code: $(head -c 300 "$BODY")"
banned_on_node2() {
  [ "$(http "$NODE2_HTTP/canvas" -H 'X-Forwarded-For: 203.0.113.7')" = 403 ] && grep -q '"banned"' "$BODY"
}
until_true 15 banned_on_node2 ||
  fail "node2 did not apply node1's ban of 203.0.113.7 to a request from 127.0.0.1 with that X-Forwarded-For (is 127.0.0.1 in server.trusted_proxies? did the ban reach node2?)"
ok "a ban made on node1 applies on node2 to the client named by a trusted proxy's X-Forwarded-For"
for _ in 1 2 3; do
  code="$(http "$PUBLIC_URL/canvas" -H 'X-Forwarded-For: 203.0.113.7')"
  [ "$code" = 200 ] || fail "through HAProxy, a client claiming X-Forwarded-For 203.0.113.7 got $code (HAProxy should drop the claim)"
done
ok "HAProxy drops the X-Forwarded-For a client sends (the claimed, banned address is not believed)"

# --- one node SIGKILLed ------------------------------------------------------------------

kill -KILL "$NODE2_PID"
for n in 1 2 3; do signup "during$n"; done
ok "node2 SIGKILLed: sign-ups through HAProxy at once still answer 201 (retried on another node)"

until_true 15 haproxy_ready 2 || fail "HAProxy did not mark node2 down within 15 s ($(curl -s --max-time 2 "$READY_URL"))"
status="$(stats_csv | awk -F, '$1 == "nodes" && $2 == "node2" { print $18 }')"
[[ "$status" == DOWN* ]] || fail "HAProxy's stats say node2 is ${status:-missing}, not DOWN"
ok "HAProxy marks node2 DOWN (health check), 2 nodes left"

for n in 1 2 3; do signup "after$n"; done
code="$(http "$PUBLIC_URL/canvas")"
[ "$code" = 200 ] || fail "GET /canvas through HAProxy answered $code with node2 down"
for i in 1 3; do
  admin_var="NODE${i}_ADMIN"
  code="$(http "${!admin_var}/readyz")"
  [ "$code" = 200 ] || fail "node$i /readyz answered $code after node2 died"
done
ok "with node2 down: sign-ups and GET /canvas through HAProxy work, node1 and node3 are ready"

run_saw_it() { grep -q "node2 (pid $NODE2_PID) exited" "$WORK/run.log"; }
until_true 10 run_saw_it || fail "run.sh did not report node2's end"
alive "$RUN_PID" || fail "run.sh ended when node2 died"
ok "run.sh reports node2's end and keeps the rest running"

# --- stop --------------------------------------------------------------------------------

kill -TERM "$RUN_PID"
wait_pid "$RUN_PID" 60 || fail "run.sh did not stop within 60 s of SIGTERM"
RUN_PID=""
[ "$WAITED" = 0 ] || fail "run.sh exited with status $WAITED after SIGTERM"
left=""
for pid in "$HAPROXY_PID" "$REDIS_PID" "$NODE1_PID" "$NODE2_PID" "$NODE3_PID"; do
  alive "$pid" && left="$left $pid"
done
[ -z "$left" ] || fail "still running after run.sh stopped:$left"
if [ "$PG_KIND" = system ] && command -v psql >/dev/null 2>&1; then
  gone="$(PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -U postgres -d postgres -w -qtAX \
    -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" || fail "cannot ask PostgreSQL whether $DB is gone"
  [ "$gone" = 0 ] || fail "database $DB is still there after run.sh stopped (--drop-db)"
fi
[ ! -e "$STATE_DIR/cluster.env" ] || fail "run.sh left $STATE_DIR/cluster.env"
[ -z "$PG_DIR" ] || [ ! -e "$PG_DIR" ] || fail "run.sh left the throwaway PostgreSQL's directory $PG_DIR"
ok "SIGTERM: run.sh stopped HAProxy, the nodes, Redis$([ "$PG_KIND" = own ] && echo ' and its PostgreSQL'), dropped $DB, exited 0"

echo "cluster check: all $PASSED checks passed"
