# Shared helpers of the benchmark scripts: start and stop the servers under test.
# Sourced, not run. Expects ROOT (the repository) and BIN (directory of pixelparty binaries).

start_pixelparty() { # port admin_port data_dir config -> sets PP_PID
  local port=$1 admin=$2 data=$3 config=$4
  rm -rf "$data"
  "$BIN/pixelparty" serve --config "$config" --http "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin" \
    --wt "127.0.0.1:$((port + 363))" --data "$data" \
    >"$data.log" 2>&1 &
  PP_PID=$!
  for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$port/canvas" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$PP_PID" 2>/dev/null; then echo "pixelparty exited; see $data.log" >&2; return 1; fi
    sleep 0.1
  done
  echo "pixelparty did not become ready; see $data.log" >&2
  return 1
}

start_peer() { # script port -> sets PEER_PID (waits for its "listening" line)
  local script=$1 port=$2 log
  log=$(mktemp)
  node "$ROOT/bench/peers/$script" "$port" >"$log" 2>&1 &
  PEER_PID=$!
  for _ in $(seq 1 300); do
    if grep -q "^listening" "$log"; then return 0; fi
    if ! kill -0 "$PEER_PID" 2>/dev/null; then cat "$log" >&2; return 1; fi
    sleep 0.1
  done
  echo "$script did not start" >&2
  return 1
}

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
