#!/usr/bin/env bash
# A local pixelparty cluster in one command: Redis (its own, nothing on disk), PostgreSQL (the
# one on 127.0.0.1:5432 if it answers with trust authentication, else a throwaway instance),
# N nodes (separate processes, node1..nodeN) and HAProxy in front of them for HTTP and
# WebSocket on one port. Prints the addresses, then waits; Ctrl-C or SIGTERM stops everything
# it started. See ops/README.md, "Local cluster", and README.md, "Cluster".
#
#   ops/cluster/run.sh                 # http://127.0.0.1:8080/
#   ops/cluster/run.sh --port 9000 --nodes 4 --reset-db
#
# Binary: ${PIXELPARTY_BIN:-target/release/pixelparty} (relative to the repository root);
# the default is built with `cargo build --release -p pixelparty-gateway` when missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

usage() {
  cat <<'EOF'
Usage: ops/cluster/run.sh [options]

  --port N          HAProxy's public port: web client, HTTP API, WebSocket (default 8080,
                    or $PIXELPARTY_CLUSTER_PORT; 0 = a free port)
  --listen ADDR     address HAProxy binds (default 127.0.0.1; 0.0.0.0 to share on a LAN)
  --stats-port N    HAProxy's stats page and /ready (default: a free port; always 127.0.0.1)
  --nodes N         number of nodes, 1..16 (default 3)
  --redis-port N    port of the Redis this script starts (default: a free port)
  --prefix P        Redis key prefix of the cluster (default pixelparty)
  --db NAME         database name (default pixelparty_cluster); an existing one is reused
  --reset-db        drop the database first if it exists (its canvas, accounts and chat)
  --drop-db         drop the database when stopping
  --own-postgres    start a throwaway PostgreSQL even if 127.0.0.1:5432 answers
  --dir DIR         state directory: configs, logs, cluster.env (default: a new temporary
                    directory, removed at exit)
  --keep            keep the state directory at exit
  --start-timeout S seconds to wait for each piece to come up (default 120)
  --node-config F   a TOML fragment merged into every node's config (e.g. [limits] and
                    [canvas] settings for a benchmark): each `key = value` line replaces the
                    same key of the same table, or is added to it; a new table is appended.
                    One line per key; the node's place (addresses, data, storage, cluster)
                    comes from run.sh and cannot be set here
  -h, --help        this text

Environment: PIXELPARTY_BIN (the binary), PIXELPARTY_ADMIN_TOKEN (the nodes' shared admin
token; default: random, written to <dir>/admin.token), RUST_LOG, and any PIXELPARTY_* server
setting that is not about a node's own place (PIXELPARTY_SHARDS, PIXELPARTY_COOLDOWN_MS,
PIXELPARTY_WIDTH, PIXELPARTY_HEIGHT, PIXELPARTY_LOG_FORMAT) reaches every node.
EOF
}

say() { printf 'cluster: %s\n' "$*"; }
die() {
  printf 'cluster: error: %s\n' "$*" >&2
  exit 1
}

PORT="${PIXELPARTY_CLUSTER_PORT:-8080}"
LISTEN=127.0.0.1
STATS_PORT=""
NODES=3
REDIS_PORT=""
PREFIX=pixelparty
DB=pixelparty_cluster
RESET_DB=0
DROP_DB=0
OWN_PG=0
STATE_DIR=""
KEEP=0
START_TIMEOUT=120
NODE_CONFIG=""

while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="${2:?--port needs a value}"; shift 2 ;;
    --listen) LISTEN="${2:?--listen needs a value}"; shift 2 ;;
    --stats-port) STATS_PORT="${2:?--stats-port needs a value}"; shift 2 ;;
    --nodes) NODES="${2:?--nodes needs a value}"; shift 2 ;;
    --redis-port) REDIS_PORT="${2:?--redis-port needs a value}"; shift 2 ;;
    --prefix) PREFIX="${2:?--prefix needs a value}"; shift 2 ;;
    --db) DB="${2:?--db needs a value}"; shift 2 ;;
    --reset-db) RESET_DB=1; shift ;;
    --drop-db) DROP_DB=1; shift ;;
    --own-postgres) OWN_PG=1; shift ;;
    --dir) STATE_DIR="${2:?--dir needs a value}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --start-timeout) START_TIMEOUT="${2:?--start-timeout needs a value}"; shift 2 ;;
    --node-config) NODE_CONFIG="${2:?--node-config needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$PORT" && [ "$PORT" -le 65535 ] || die "--port must be a port number, not $PORT"
[ -z "$STATS_PORT" ] || { is_uint "$STATS_PORT" && [ "$STATS_PORT" -le 65535 ]; } || die "bad --stats-port $STATS_PORT"
[ -z "$REDIS_PORT" ] || { is_uint "$REDIS_PORT" && [ "$REDIS_PORT" -le 65535 ]; } || die "bad --redis-port $REDIS_PORT"
is_uint "$NODES" && [ "$NODES" -ge 1 ] && [ "$NODES" -le 16 ] || die "--nodes must be 1..16, not $NODES"
is_uint "$START_TIMEOUT" && [ "$START_TIMEOUT" -ge 1 ] || die "bad --start-timeout $START_TIMEOUT"
[[ "$DB" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "--db must be a lower-case SQL identifier, not $DB"
[[ "$PREFIX" =~ ^[A-Za-z0-9_.:-]+$ ]] || die "--prefix must be letters, digits and _ . : -, not $PREFIX"
[[ "$LISTEN" =~ ^[0-9.]+$ ]] || die "--listen must be an IPv4 address, not $LISTEN"
[ -z "$NODE_CONFIG" ] || [ -f "$NODE_CONFIG" ] || die "--node-config $NODE_CONFIG is not a file"

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1

# --- tools -------------------------------------------------------------------------------

APT_UPDATED=0
# need <command> <Debian package>: installs the package with apt-get when the command is
# missing and we are root, else says what to install.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$IS_ROOT" = 1 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $2 (apt-get)"
    if [ "$APT_UPDATED" = 0 ]; then
      apt-get update -qq >/dev/null || die "apt-get update failed"
      APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || die "apt-get install $2 failed"
    command -v "$1" >/dev/null 2>&1 || die "$2 is installed but $1 is not on PATH"
  else
    die "$1 is missing: install the Debian package $2 (apt-get install $2)"
  fi
}
need curl curl
need perl perl-base
need redis-server redis-server
need haproxy haproxy
command -v setsid >/dev/null 2>&1 || die "setsid is missing (util-linux)"

BIN="${PIXELPARTY_BIN:-target/release/pixelparty}"
if [ ! -x "$BIN" ]; then
  if [ -z "${PIXELPARTY_BIN:-}" ]; then
    say "no $BIN: building it (cargo build --release -p pixelparty-gateway)"
    cargo build --release -p pixelparty-gateway || die "the build failed"
  fi
  [ -x "$BIN" ] || die "PIXELPARTY_BIN=$BIN is not an executable file"
fi
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac

# --- ports -------------------------------------------------------------------------------

TAKEN=" "
FREE=""
# Sets FREE to a port the kernel calls free (tcp or udp on 127.0.0.1) that this run has not
# handed out before.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p="$(perl -MIO::Socket::INET -e '
      my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Proto => $ARGV[0],
                                    ($ARGV[0] eq "tcp" ? (Listen => 1) : ())) or exit 1;
      print $s->sockport;' "$1")" || continue
    case "$TAKEN" in *" $p "*) continue ;; esac
    TAKEN="$TAKEN$p "
    FREE="$p"
    return 0
  done
  die "no free $1 port"
}
# Whether <addr> <port> can be bound now (TCP).
can_bind() {
  perl -MIO::Socket::INET -e '
    exit(IO::Socket::INET->new(LocalAddr => $ARGV[0], LocalPort => $ARGV[1], Proto => "tcp",
                               Listen => 1, ReuseAddr => 1) ? 0 : 1)' "$1" "$2"
}
claim_port() { # <addr> <port> <what>
  can_bind "$1" "$2" || die "$3 port $1:$2 is in use (pick another with the option for it, see --help)"
  TAKEN="$TAKEN$2 "
}

if [ "$PORT" = 0 ]; then free_port tcp && PORT="$FREE"; else claim_port "$LISTEN" "$PORT" "HAProxy's (--port)"; fi
if [ -z "$STATS_PORT" ] || [ "$STATS_PORT" = 0 ]; then free_port tcp && STATS_PORT="$FREE"; else claim_port 127.0.0.1 "$STATS_PORT" "the stats (--stats-port)"; fi
if [ -z "$REDIS_PORT" ] || [ "$REDIS_PORT" = 0 ]; then free_port tcp && REDIS_PORT="$FREE"; else claim_port 127.0.0.1 "$REDIS_PORT" "Redis's (--redis-port)"; fi

# --- state and cleanup -------------------------------------------------------------------

OWN_STATE=0
if [ -z "$STATE_DIR" ]; then
  STATE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pixelparty-cluster.XXXXXX")"
  OWN_STATE=1
else
  mkdir -p "$STATE_DIR"
  STATE_DIR="$(cd "$STATE_DIR" && pwd)"
fi
LOGS="$STATE_DIR/logs"
mkdir -p "$LOGS" "$STATE_DIR/redis"
rm -f "$STATE_DIR/cluster.env"

HAPROXY_PID=""
REDIS_PID=""
NODE_PID=()
NODE_HTTP=()
NODE_ADMIN=()
NODE_WT=()
PG_KIND=""     # system | own
PG_PORT=""
PG_DIR=""      # own instance: its directory (owned by postgres when we are root)
PG_BIN=""
PSQL=""
DB_READY=0
CLEANING=0

# Stops <pid> with SIGTERM, waits up to <seconds>, then SIGKILL.
stop_pid() {
  local pid="$1" what="$2" secs="$3" i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$what (pid $pid) did not stop within ${secs}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}

as_postgres() {
  if [ "$IS_ROOT" = 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

psql_admin() { # SQL on the maintenance database
  PGCONNECT_TIMEOUT=5 "$PSQL" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -w -v ON_ERROR_STOP=1 -qtAX "$@"
}

cleanup() {
  local rc=$? i pids=()
  [ "$CLEANING" = 1 ] && return
  CLEANING=1
  trap '' INT TERM
  set +e
  say "stopping"
  stop_pid "$HAPROXY_PID" haproxy 5
  # Every node at once (each shuts down in order: sessions, snapshots, flush), then wait.
  for i in "${!NODE_PID[@]}"; do
    [ -n "${NODE_PID[$i]}" ] && kill -0 "${NODE_PID[$i]}" 2>/dev/null && kill -TERM "${NODE_PID[$i]}" && pids+=("$i")
  done
  for i in "${pids[@]}"; do stop_pid "${NODE_PID[$i]}" "node$((i + 1))" 20; done
  stop_pid "$REDIS_PID" redis-server 5
  if [ "$DROP_DB" = 1 ] && [ "$DB_READY" = 1 ]; then
    psql_admin -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 && say "dropped database $DB" ||
      say "could not drop database $DB"
  fi
  if [ "$PG_KIND" = own ] && [ -n "$PG_DIR" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      say "the throwaway PostgreSQL did not stop cleanly (see $PG_DIR/data/log)"
  fi
  if [ "$KEEP" = 0 ]; then
    [ -n "$PG_DIR" ] && rm -rf "$PG_DIR"
    if [ "$OWN_STATE" = 1 ]; then rm -rf "$STATE_DIR"; else rm -f "$STATE_DIR/cluster.env"; fi
  else
    say "kept $STATE_DIR${PG_DIR:+ and $PG_DIR}"
  fi
  say "stopped"
  exit "$rc"
}
trap cleanup EXIT
# A requested stop is a normal end.
trap 'exit 0' INT TERM

# Waits until `<command...>` succeeds, at most START_TIMEOUT seconds; fails early when
# process $WATCH_PID (if set) is gone.
WATCH_PID=""
wait_for() { # <what> <log> <command...>
  local what="$1" log="$2" deadline=$((SECONDS + START_TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ -n "$WATCH_PID" ] && ! kill -0 "$WATCH_PID" 2>/dev/null; then
      [ -n "$log" ] && tail -n 30 "$log" >&2
      die "$what: the process ended (log: $log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      [ -n "$log" ] && tail -n 30 "$log" >&2
      die "$what: not up within ${START_TIMEOUT}s (log: $log)"
    fi
    sleep 0.2
  done
}

# --- PostgreSQL --------------------------------------------------------------------------

pg_server_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/bin /usr/local/pgsql/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

PSQL="$(command -v psql || true)"
if [ -z "$PSQL" ] && PG_BIN="$(pg_server_bin)" && [ -x "$PG_BIN/psql" ]; then PSQL="$PG_BIN/psql"; fi

system_pg_answers() {
  [ -n "$PSQL" ] || return 1
  [ "$(PGCONNECT_TIMEOUT=3 "$PSQL" -h 127.0.0.1 -p 5432 -U postgres -d postgres -w -qtAX -c 'SELECT 1' 2>/dev/null)" = 1 ]
}

if [ "$OWN_PG" = 0 ] && system_pg_answers; then
  PG_KIND=system
  PG_PORT=5432
  say "PostgreSQL: the server on 127.0.0.1:5432 (trust authentication), database $DB"
else
  PG_BIN="$(pg_server_bin)" ||
    die "no PostgreSQL answers on 127.0.0.1:5432 with trust authentication, and there are no server binaries (initdb, pg_ctl) to start one: apt-get install postgresql (or run .ci/postgres.sh)"
  [ -x "$PG_BIN/psql" ] && PSQL="$PG_BIN/psql"
  [ -n "$PSQL" ] || die "psql is missing (apt-get install postgresql-client)"
  if [ "$IS_ROOT" = 1 ]; then
    id postgres >/dev/null 2>&1 || die "running as root, and there is no user postgres to run PostgreSQL as (it refuses root)"
  fi
  PG_KIND=own
  free_port tcp && PG_PORT="$FREE"
  PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pixelparty-cluster-pg.XXXXXX")"
  [ "$IS_ROOT" = 1 ] && chown postgres: "$PG_DIR"
  say "PostgreSQL: a throwaway instance ($PG_BIN) on 127.0.0.1:$PG_PORT in $PG_DIR"
  as_postgres "$PG_BIN/initdb" -A trust -U postgres -E UTF8 --no-sync -D "$PG_DIR/data" >"$LOGS/initdb.log" 2>&1 ||
    { tail -n 20 "$LOGS/initdb.log" >&2; die "initdb failed (log: $LOGS/initdb.log)"; }
  # In a session of its own, so a Ctrl-C in the terminal reaches only this script, which
  # then stops everything in order.
  if [ "$IS_ROOT" = 1 ]; then
    pg_start=(setsid -w runuser -u postgres -- "$PG_BIN/pg_ctl")
  else
    pg_start=(setsid -w "$PG_BIN/pg_ctl")
  fi
  "${pg_start[@]}" -w -t "$START_TIMEOUT" -D "$PG_DIR/data" -l "$PG_DIR/data/log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DIR/data" start >/dev/null 2>&1 ||
    { tail -n 20 "$PG_DIR/data/log" >&2; die "the throwaway PostgreSQL did not start (log: $PG_DIR/data/log)"; }
  ln -sf "$PG_DIR/data/log" "$LOGS/postgres.log"
fi

exists="$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" || die "cannot query PostgreSQL on port $PG_PORT"
if [ "$exists" = 1 ] && [ "$RESET_DB" = 1 ]; then
  psql_admin -c "DROP DATABASE \"$DB\" WITH (FORCE)" || die "could not drop database $DB"
  say "dropped database $DB (--reset-db)"
  exists=""
fi
if [ "$exists" = 1 ]; then
  say "reusing database $DB (its canvas, accounts and chat; --reset-db starts empty)"
else
  psql_admin -c "CREATE DATABASE \"$DB\"" || die "could not create database $DB"
  say "created database $DB"
fi
DB_READY=1
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/$DB"

# --- Redis -------------------------------------------------------------------------------

redis_ping() {
  # shellcheck disable=SC2094
  (
    exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || exit 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 line <&3 || exit 1
    [[ "$line" == "+PONG"* ]]
  )
}
setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --dir "$STATE_DIR/redis" >"$LOGS/redis.log" 2>&1 &
REDIS_PID=$!
WATCH_PID=$REDIS_PID wait_for "Redis on 127.0.0.1:$REDIS_PORT" "$LOGS/redis.log" redis_ping
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
say "Redis: $REDIS_URL (pid $REDIS_PID, nothing on disk)"

# --- nodes -------------------------------------------------------------------------------

ADMIN_TOKEN="${PIXELPARTY_ADMIN_TOKEN:-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')}"
[[ "$ADMIN_TOKEN" =~ ^[A-Za-z0-9._~+/=-]+$ ]] || die "PIXELPARTY_ADMIN_TOKEN has characters a config file cannot hold as is"
(umask 077 && printf '%s\n' "$ADMIN_TOKEN" >"$STATE_DIR/admin.token")

# render <template> <output> KEY=VALUE...: replaces every @KEY@.
render() {
  local text kv key
  text="$(cat "$1")"
  local out="$2"
  shift 2
  for kv in "$@"; do
    key="${kv%%=*}"
    text="${text//@"$key"@/"${kv#*=}"}"
  done
  case "$text" in *@[A-Z_]*@*) die "unfilled placeholder in $out" ;; esac
  printf '%s\n' "$text" >"$out"
}

# merge_config <fragment> <config>: merges --node-config into a rendered node config, in
# place (see --help). Keys that place the node in the cluster are refused.
merge_config() {
  perl -e '
    use strict; use warnings;
    my ($frag, $conf) = @ARGV;
    my %fixed = map { $_ => 1 } qw(server.http server.admin server.admin_token server.data_dir
      server.trusted_proxies storage.backend storage.postgres_url webtransport.bind
      cluster.redis_url cluster.node_id cluster.key_prefix);
    open my $f, "<", $frag or die "cannot read $frag: $!\n";
    my ($table, @edits) = ("");
    while (my $line = <$f>) {
      chomp $line;
      next if $line =~ /^\s*(#.*)?$/;
      if ($line =~ /^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$/) { $table = $1; next; }
      $line =~ /^\s*([A-Za-z0-9_-]+)\s*=\s*\S/ or die "$frag: not a one-line key = value: $line\n";
      my $key = $1;
      (my $bare = $line) =~ s/"(?:[^"\\]|\\.)*"|\x27[^\x27]*\x27//g;
      $bare =~ s/#.*//;
      die "$frag: not a one-line key = value: $line\n" if ($bare =~ tr/[{//) != ($bare =~ tr/]}//);
      die "$frag: $table.$key is set by run.sh\n" if $fixed{"$table.$key"};
      push @edits, [$table, $key, $line];
    }
    open my $c, "<", $conf or die "cannot read $conf: $!\n";
    my @lines = <$c>;
    chomp @lines;
    for my $e (@edits) {
      my ($t, $key, $line) = @$e;
      # $at: after the last line of the table that is not blank or a comment.
      my ($cur, $at, $hit) = ("", ($t eq "" ? 0 : -1), -1);
      for my $i (0 .. $#lines) {
        if ($lines[$i] =~ /^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]/) {
          last if $cur eq $t && $at >= 0;
          $cur = $1;
          $at = $i + 1 if $cur eq $t;
          next;
        }
        next unless $cur eq $t && $at >= 0;
        $at = $i + 1 if $lines[$i] !~ /^\s*(#.*)?$/;
        $hit = $i if $lines[$i] =~ /^\s*\Q$key\E\s*=/;
      }
      if ($hit >= 0) { $lines[$hit] = $line; }
      elsif ($at >= 0) { splice @lines, $at, 0, $line; }
      else { push @lines, "", "[$t]", $line; }
    }
    open my $o, ">", $conf or die "cannot write $conf: $!\n";
    print $o map { "$_\n" } @lines;
  ' "$1" "$2"
}

# The node's place in the cluster comes from its config file; these would override it. Its
# log goes to a file: no colours.
NODE_ENV_UNSET=(-u PIXELPARTY_CONFIG -u PIXELPARTY_HTTP -u PIXELPARTY_ADMIN -u PIXELPARTY_WT -u PIXELPARTY_DATA
  -u PIXELPARTY_POSTGRES_URL -u PIXELPARTY_REDIS_URL -u PIXELPARTY_NODE_ID -u PIXELPARTY_CLUSTER_PREFIX
  -u PIXELPARTY_ADMIN_TOKEN)

for ((i = 1; i <= NODES; i++)); do
  free_port tcp && NODE_HTTP+=("$FREE")
  free_port tcp && NODE_ADMIN+=("$FREE")
  free_port udp && NODE_WT+=("$FREE")
  mkdir -p "$STATE_DIR/node$i"
  render "$HERE/node.toml.template" "$STATE_DIR/node$i.toml" \
    HTTP_PORT="${NODE_HTTP[i - 1]}" ADMIN_PORT="${NODE_ADMIN[i - 1]}" WT_PORT="${NODE_WT[i - 1]}" \
    ADMIN_TOKEN="$ADMIN_TOKEN" DATA_DIR="$STATE_DIR/node$i" POSTGRES_URL="$PG_URL" \
    REDIS_URL="$REDIS_URL" NODE_ID="node$i" PREFIX="$PREFIX"
  if [ -n "$NODE_CONFIG" ]; then
    merge_config "$NODE_CONFIG" "$STATE_DIR/node$i.toml" || die "could not merge --node-config $NODE_CONFIG"
  fi
  setsid env "${NODE_ENV_UNSET[@]}" NO_COLOR=1 "$BIN" serve --config "$STATE_DIR/node$i.toml" >"$LOGS/node$i.log" 2>&1 &
  NODE_PID+=("$!")
done
node_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/readyz")" = 200 ]; }
for ((i = 1; i <= NODES; i++)); do
  WATCH_PID="${NODE_PID[i - 1]}" wait_for "node$i" "$LOGS/node$i.log" node_ready "${NODE_ADMIN[i - 1]}"
  say "node$i: ready (pid ${NODE_PID[i - 1]})"
done

# --- HAProxy -----------------------------------------------------------------------------

SERVERS=""
for ((i = 1; i <= NODES; i++)); do
  SERVERS+="    server node$i 127.0.0.1:${NODE_HTTP[i - 1]} port ${NODE_ADMIN[i - 1]}"$'\n'
done
render "$HERE/haproxy.cfg.template" "$STATE_DIR/haproxy.cfg" \
  LISTEN="$LISTEN" PORT="$PORT" STATS_PORT="$STATS_PORT" SERVERS="${SERVERS%$'\n'}"
haproxy -c -q -f "$STATE_DIR/haproxy.cfg" >"$LOGS/haproxy-check.log" 2>&1 ||
  { cat "$LOGS/haproxy-check.log" >&2; die "haproxy refused $STATE_DIR/haproxy.cfg"; }
setsid haproxy -db -f "$STATE_DIR/haproxy.cfg" >"$LOGS/haproxy.log" 2>&1 &
HAPROXY_PID=$!
all_up() { [ "$(curl -s --max-time 2 "http://127.0.0.1:$STATS_PORT/ready")" = "ready $NODES" ]; }
WATCH_PID=$HAPROXY_PID wait_for "HAProxy (every node up)" "$LOGS/haproxy.log" all_up

# --- ready -------------------------------------------------------------------------------

{
  printf '# The local cluster run.sh started (pid %s). Sourceable.\n' "$$"
  printf 'RUN_PID=%q\nSTATE_DIR=%q\nPUBLIC_URL=%q\nSTATS_URL=%q\nREADY_URL=%q\n' "$$" "$STATE_DIR" \
    "http://127.0.0.1:$PORT" "http://127.0.0.1:$STATS_PORT/stats" "http://127.0.0.1:$STATS_PORT/ready"
  printf 'HAPROXY_PID=%q\nREDIS_PID=%q\nREDIS_URL=%q\nPREFIX=%q\nPG_KIND=%q\nPG_URL=%q\nPG_DIR=%q\n' \
    "$HAPROXY_PID" "$REDIS_PID" "$REDIS_URL" "$PREFIX" "$PG_KIND" "$PG_URL" "$PG_DIR"
  printf 'ADMIN_TOKEN_FILE=%q\nNODES=%q\n' "$STATE_DIR/admin.token" "$NODES"
  for ((i = 1; i <= NODES; i++)); do
    printf 'NODE%d_PID=%q\nNODE%d_HTTP=%q\nNODE%d_ADMIN=%q\nNODE%d_WT=%q\nNODE%d_LOG=%q\n' \
      "$i" "${NODE_PID[i - 1]}" "$i" "http://127.0.0.1:${NODE_HTTP[i - 1]}" "$i" "http://127.0.0.1:${NODE_ADMIN[i - 1]}" \
      "$i" "127.0.0.1:${NODE_WT[i - 1]}" "$i" "$LOGS/node$i.log"
  done
  printf 'READY=1\n'
} >"$STATE_DIR/cluster.env.tmp"
mv "$STATE_DIR/cluster.env.tmp" "$STATE_DIR/cluster.env"

shown_listen="$LISTEN"
[ "$LISTEN" = 0.0.0.0 ] && shown_listen=127.0.0.1
cat <<EOF

pixelparty cluster: $NODES nodes behind HAProxy, Redis, PostgreSQL ($PG_KIND)

  web client, HTTP API   http://$shown_listen:$PORT/      (HAProxy bound to $LISTEN:$PORT)
  WebSocket              ws://$shown_listen:$PORT/ws
  HAProxy stats          http://127.0.0.1:$STATS_PORT/stats   (ready: /ready)
EOF
for ((i = 1; i <= NODES; i++)); do
  printf '  node%-2d  http://127.0.0.1:%-5s  admin http://127.0.0.1:%-5s  WebTransport udp/%-5s  pid %s\n' \
    "$i" "${NODE_HTTP[i - 1]}" "${NODE_ADMIN[i - 1]}" "${NODE_WT[i - 1]}" "${NODE_PID[i - 1]}"
done
cat <<EOF
  Redis                  $REDIS_URL  (key prefix $PREFIX; redis-cli -p $REDIS_PORT)
  PostgreSQL             $PG_URL
  admin token            $STATE_DIR/admin.token
                         e.g. $BIN admin stats --url http://127.0.0.1:${NODE_ADMIN[0]} --token "\$(cat $STATE_DIR/admin.token)"
  logs                   $LOGS/
  addresses and pids     $STATE_DIR/cluster.env

Ctrl-C (or SIGTERM to pid $$) stops everything.
EOF

# --- wait --------------------------------------------------------------------------------

NODE_GONE=()
REDIS_GONE=0
while true; do
  sleep 1 &
  # (Quiet: bash would report a node killed by a signal here; the loop says it below.)
  { wait $! || true; } 2>/dev/null
  for ((i = 1; i <= NODES; i++)); do
    [ -n "${NODE_GONE[i]:-}" ] && continue
    if ! kill -0 "${NODE_PID[i - 1]}" 2>/dev/null; then
      st=0
      wait "${NODE_PID[i - 1]}" 2>/dev/null || st=$?
      NODE_GONE[i]=1
      say "node$i (pid ${NODE_PID[i - 1]}) exited with status $st; HAProxy routes around it (log: $LOGS/node$i.log)"
    fi
  done
  if [ "$REDIS_GONE" = 0 ] && ! kill -0 "$REDIS_PID" 2>/dev/null; then
    REDIS_GONE=1
    say "redis-server exited: the nodes refuse writes and turn not ready (log: $LOGS/redis.log)"
  fi
  if ! kill -0 "$HAPROXY_PID" 2>/dev/null; then
    tail -n 20 "$LOGS/haproxy.log" >&2
    die "haproxy exited (log: $LOGS/haproxy.log)"
  fi
done
