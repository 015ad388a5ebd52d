#!/usr/bin/env bash
# ops/deb/check.sh: the Debian package, end to end, on this machine.
#
#   1. cargo-deb (installed with `cargo install cargo-deb --locked` when missing);
#   2. `cargo deb` from the debug binary CI already built (no release build), into a temp dir;
#   3. `dpkg -i`; checks files, conffile, system user, data directory, enablement, the unit
#      (`systemd-analyze verify`, and the same service as ops/pixelparty.service);
#   4. starts the service THE WAY ITS UNIT WOULD (this machine has no systemd as PID 1, so
#      `systemctl start` cannot work): the unit's ExecStart, as its User/Group, with its
#      Environment=, LimitNOFILE=, NoNewPrivileges=, working directory and StateDirectory=
#      variables, read from the installed unit file; then /healthz on the admin port, a real
#      sign-up on the public port, the admin token and /metrics, and SIGTERM (KillSignal);
#   5. reinstalls over a locally edited conffile (the upgrade path), starts again and logs in
#      with the account made before; `dpkg -r` (data, config and user stay), `dpkg --purge`
#      (everything goes) and checks what is left.
#
# Needs root and dpkg: otherwise it prints why and exits 0, or fails with CI=true. It refuses
# to run over an existing pixelparty installation, user or /var/lib/pixelparty (it would purge
# them), and fails clearly when the packaged ports (TCP 8080, TCP 9091, UDP 8443) are taken.
#
# Environment:
#   PIXELPARTY_DEB          test this .deb instead of building one (e.g. a release package)
#   PIXELPARTY_DEB_PROFILE  dev (default: package target/debug/pixelparty, no build) or a
#                           Cargo profile such as release (cargo deb builds it)
#   PIXELPARTY_DEB_OUT      keep the built .deb in this directory (default: a temp dir, removed)
#   CARGO_DEB_VERSION       cargo-deb version to install when missing (default 3.8.0)
set -uo pipefail

START=$SECONDS
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IN_CI=$([ "${CI:-}" = true ] && echo true || echo false)
PROFILE=${PIXELPARTY_DEB_PROFILE:-dev}
CARGO_DEB_VERSION=${CARGO_DEB_VERSION-3.8.0}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

PKG=pixelparty
UNIT_PATH=/lib/systemd/system/pixelparty.service
CONF=/etc/pixelparty/pixelparty.toml
DATA=/var/lib/pixelparty
PUBLIC_PORT=8080
ADMIN_PORT=9091
WT_PORT=8443
HEALTH_TIMEOUT=60

passed=0 failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
step() { printf '\n--- %s (%ds)\n' "$*" "$((SECONDS - START))"; }
# check DESCRIPTION COMMAND...: ok, or FAIL with the command's output.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what"; else
    bad "$what"
    [ -n "$out" ] && printf '%s\n' "$out" | tail -20 | sed 's/^/     /'
  fi
  return 0
}
summary() {
  printf '\n%d passed, %d failed in %ds\n' "$passed" "$failed" "$((SECONDS - START))"
}
# skip REASON: exit 0 with the reason, or fail under CI=true.
skip() {
  if [ "$IN_CI" = true ]; then
    echo "FAIL $* (CI=true: the Debian package must be checked)"
    exit 1
  fi
  echo "SKIP the Debian package check: $*"
  exit 0
}
# die REASON: a failure after which nothing else can be checked.
die() {
  bad "$*"
  summary
  exit 1
}

[ "$(id -u)" = 0 ] || skip "needs root (dpkg -i, a system user). To only build the package: cargo deb -p pixelparty-gateway"
command -v dpkg >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || skip "dpkg not found (not a Debian-like system)"
command -v cargo >/dev/null 2>&1 || skip "cargo not found"
# Tools, with their Debian packages: installed when missing under CI=true (as ops/check.sh
# does for its tools), else a skip with the reason.
for tool_pkg in curl:curl setpriv:util-linux ss:iproute2 python3:python3; do
  tool=${tool_pkg%%:*} pkg=${tool_pkg##*:}
  if ! command -v "$tool" >/dev/null 2>&1 && [ "$IN_CI" = true ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $tool (Debian package $pkg)"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 "$pkg" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 "$pkg" >/dev/null 2>&1; }; } ||
      echo "apt-get install $pkg failed"
  fi
  command -v "$tool" >/dev/null 2>&1 || skip "$tool not found (Debian package $pkg)"
done

WORK=$(mktemp -d /tmp/pixelparty-deb-check.XXXXXX)
INSTALLED=0 # set once dpkg -i ran: the exit trap purges the package
SVC_PID=""

# dpkg with a bounded wait for its lock (apt-get may run elsewhere on the machine).
dpkg_locked() {
  local deadline=$((SECONDS + 180)) out rc
  while :; do
    out=$(DEBIAN_FRONTEND=noninteractive dpkg "$@" 2>&1)
    rc=$?
    if [ "$rc" != 0 ] && grep -qE 'frontend lock|database is locked|lock was locked' <<<"$out" && [ "$SECONDS" -lt "$deadline" ]; then
      sleep 2
      continue
    fi
    printf '%s\n' "$out"
    return "$rc"
  done
}

stop_service() { # stop_service TIMEOUT_S: SIGTERM, bounded wait, SIGKILL. Sets STOP_RC.
  local timeout=$1 deadline
  STOP_RC=""
  [ -n "$SVC_PID" ] || return 0
  kill -TERM "$SVC_PID" 2>/dev/null
  deadline=$((SECONDS + timeout))
  while kill -0 "$SVC_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$SVC_PID" 2>/dev/null; then
    kill -KILL "$SVC_PID" 2>/dev/null
    wait "$SVC_PID" 2>/dev/null
    STOP_RC=killed
  else
    wait "$SVC_PID" 2>/dev/null
    STOP_RC=$?
  fi
  SVC_PID=""
}

cleanup() {
  stop_service 30
  if [ "$INSTALLED" = 1 ] && dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
    echo "cleanup: dpkg --purge $PKG"
    dpkg_locked --purge "$PKG" >/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "ops/deb/check.sh: the Debian package (profile $PROFILE) on $(. /etc/os-release && echo "$PRETTY_NAME"), CI=$IN_CI"

# --- refuse to touch an existing installation ----------------------------------------------

step "this machine has no pixelparty installation, user or data, and the packaged ports are free"
status=$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || true)
if [ -n "$status" ] && [ "$status" != not-installed ]; then
  die "package $PKG is already on this machine (status: $status); this check would purge it with its data. Remove it first: dpkg --purge $PKG"
fi
if getent passwd pixelparty >/dev/null || getent group pixelparty >/dev/null || [ -e "$DATA" ] || [ -e /etc/pixelparty ]; then
  die "a pixelparty user/group, $DATA or /etc/pixelparty already exists; this check would delete them (purge). Remove them first"
fi
busy=""
for spec in "-t:$PUBLIC_PORT" "-t:$ADMIN_PORT" "-u:$WT_PORT"; do
  proto=${spec%%:*} port=${spec##*:}
  if [ "$proto" = -t ]; then holders=$(ss -Hlntp "sport = :$port" 2>/dev/null); else holders=$(ss -Hlnup "sport = :$port" 2>/dev/null); fi
  [ -n "$holders" ] && busy+="$([ "$proto" = -t ] && echo TCP || echo UDP) $port is taken by: $holders"$'\n'
done
if [ -n "$busy" ]; then
  printf '%s' "$busy" | sed 's/^/     /'
  die "the packaged config binds TCP $PUBLIC_PORT, TCP 127.0.0.1:$ADMIN_PORT and UDP $WT_PORT; stop what holds them and run again"
fi
ok "no previous installation; TCP $PUBLIC_PORT, TCP $ADMIN_PORT and UDP $WT_PORT are free"

# --- cargo-deb and the package -------------------------------------------------------------

step "cargo-deb"
if ! cargo deb --version >/dev/null 2>&1; then
  t0=$SECONDS
  version_args=()
  [ -n "$CARGO_DEB_VERSION" ] && version_args=(--version "$CARGO_DEB_VERSION")
  echo "installing cargo-deb: cargo install cargo-deb --locked ${version_args[*]}"
  if ! cargo install cargo-deb --locked "${version_args[@]}" >"$WORK/cargo-install.log" 2>&1; then
    tail -20 "$WORK/cargo-install.log" | sed 's/^/     /'
    die "cargo install cargo-deb failed"
  fi
  echo "cargo-deb installed in $((SECONDS - t0)) s"
fi
ok "$(cargo deb --version 2>&1 | head -1)"

step "the package"
OUT=${PIXELPARTY_DEB_OUT:-$WORK/out}
mkdir -p "$OUT"
if [ -n "${PIXELPARTY_DEB:-}" ]; then
  DEB=$PIXELPARTY_DEB
  [ -f "$DEB" ] || die "PIXELPARTY_DEB=$DEB: no such file"
  echo "testing the given package $DEB (not built here)"
else
  deb_args=(-p pixelparty-gateway -o "$OUT/")
  if [ "$PROFILE" = dev ]; then
    BIN="$TARGET_DIR/debug/pixelparty"
    if [ ! -x "$BIN" ]; then
      [ "$IN_CI" = true ] && die "$BIN not found: .ci/run builds it first (cargo build -p pixelparty-gateway)"
      skip "$BIN not found: cargo build -p pixelparty-gateway first (or PIXELPARTY_DEB_PROFILE=release)"
    fi
    echo "packaging the debug binary $BIN (built $(date -r "$BIN" '+%F %T'); git HEAD $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), stripped, fast compression"
    echo "(cargo-deb warns that the dev profile is unsupported for releases: expected, this package is for the check)"
    deb_args+=(--profile dev --no-build --strip --fast)
  else
    echo "building a $PROFILE package (cargo deb builds the binary)"
    deb_args+=(--profile "$PROFILE")
  fi
  t0=$SECONDS
  if ! (cd "$ROOT" && cargo deb "${deb_args[@]}") >"$WORK/cargo-deb.log" 2>&1; then
    tail -30 "$WORK/cargo-deb.log" | sed 's/^/     /'
    die "cargo deb ${deb_args[*]} failed"
  fi
  sed 's/^/     /' "$WORK/cargo-deb.log"
  DEB=$(find "$OUT" -maxdepth 1 -name 'pixelparty_*.deb' -newer "$WORK" | head -1)
  [ -n "$DEB" ] || die "cargo deb wrote no pixelparty_*.deb into $OUT"
  ok "cargo deb ${deb_args[*]} -> $(basename "$DEB") ($(du -h "$DEB" | cut -f1), $((SECONDS - t0)) s)"
fi
dpkg-deb --field "$DEB" Package Version Architecture Depends Section | sed 's/^/     /'
SCRIPTS=("$ROOT/ops/deb/postinst" "$ROOT/ops/deb/prerm" "$ROOT/ops/deb/postrm")
check "maintainer scripts pass sh -n" bash -c 'for f; do sh -n "$f" || exit 1; done' _ "${SCRIPTS[@]}"
if command -v shellcheck >/dev/null 2>&1; then
  check "maintainer scripts and this script pass shellcheck -S warning" shellcheck -S warning "${SCRIPTS[@]}" "$ROOT/ops/deb/check.sh"
fi
check "the package is named pixelparty and depends on libc6" bash -c \
  "[ \"\$(dpkg-deb --field '$DEB' Package)\" = $PKG ] && dpkg-deb --field '$DEB' Depends | grep -q libc6"

# --- install -------------------------------------------------------------------------------

step "dpkg -i"
INSTALLED=1
if out=$(dpkg_locked -i "$DEB"); then ok "dpkg -i $(basename "$DEB")"; else
  printf '%s\n' "$out" | sed 's/^/     /'
  die "dpkg -i failed"
fi
check "dpkg status: install ok installed" bash -c "[ \"\$(dpkg-query -W -f='\${Status}' $PKG)\" = 'install ok installed' ]"
missing_files=()
for f in /usr/bin/pixelparty "$UNIT_PATH" "$CONF" /usr/share/doc/pixelparty/README.md \
  /usr/share/doc/pixelparty/ops/README.md /usr/share/doc/pixelparty/RUNBOOK.md \
  /usr/share/doc/pixelparty/PROTOCOL.md /usr/share/doc/pixelparty/copyright; do
  [ -f "$f" ] || missing_files+=("$f")
done
if [ "${#missing_files[@]}" = 0 ]; then
  ok "installed: /usr/bin/pixelparty, $UNIT_PATH, $CONF, /usr/share/doc/pixelparty/ (README, ops/README, RUNBOOK, PROTOCOL, copyright)"
else
  bad "not installed: ${missing_files[*]}"
fi
check "/usr/bin/pixelparty runs: $(/usr/bin/pixelparty --version 2>&1)" /usr/bin/pixelparty --version
if [ "$PROFILE" = dev ] && [ -z "${PIXELPARTY_DEB:-}" ] && command -v readelf >/dev/null 2>&1; then
  build_id() { readelf -n "$1" 2>/dev/null | awk '/Build ID/ {print $3}'; }
  check "the packaged binary is the debug build (same GNU build-id as $BIN, stripped)" \
    bash -c "[ -n '$(build_id "$BIN")' ] && [ '$(build_id "$BIN")' = '$(build_id /usr/bin/pixelparty)' ]"
fi
check "$CONF is a conffile" bash -c "dpkg-query -W -f='\${Conffiles}' $PKG | grep -q '^ $CONF '"
check "$CONF is the packaged config (ops/deb/pixelparty.toml)" cmp "$CONF" "$ROOT/ops/deb/pixelparty.toml"
check "$UNIT_PATH is ops/deb/pixelparty.service" cmp "$UNIT_PATH" "$ROOT/ops/deb/pixelparty.service"
# The packaged unit is ops/pixelparty.service with the package's paths (and two lines more):
# catch one being changed without the other.
norm() { grep -vE '^[[:space:]]*(#|$)' "$1" | grep -vE '^(Documentation|StateDirectoryMode)='; }
check "ops/deb/pixelparty.service = ops/pixelparty.service with /usr/bin and /etc/pixelparty/ paths (+ Documentation=, StateDirectoryMode=)" \
  diff <(norm "$ROOT/ops/pixelparty.service" | sed -e 's#/usr/local/bin/pixelparty#/usr/bin/pixelparty#' -e 's#/etc/pixelparty\.toml#/etc/pixelparty/pixelparty.toml#') \
  <(norm "$ROOT/ops/deb/pixelparty.service")
check "the config binds the admin endpoint to 127.0.0.1:$ADMIN_PORT, public HTTP to 0.0.0.0:$PUBLIC_PORT, data in $DATA" python3 - "$CONF" <<PY
import sys, tomllib
s = tomllib.load(open(sys.argv[1], "rb"))["server"]
assert s["admin"] == "127.0.0.1:$ADMIN_PORT", s["admin"]
assert s["http"] == "0.0.0.0:$PUBLIC_PORT", s["http"]
assert s["data_dir"] == "$DATA", s["data_dir"]
assert "admin_token" not in s, "a token in a world-readable file"
PY

IFS=: read -r _ _ SVC_UID SVC_GID _ SVC_HOME SVC_SHELL < <(getent passwd pixelparty)
check "system user pixelparty (uid ${SVC_UID:-?} < 1000, group pixelparty, home $DATA, shell /usr/sbin/nologin)" bash -c \
  "[ -n '${SVC_UID:-}' ] && [ '${SVC_UID:-1000}' -lt 1000 ] && [ '$(getent group pixelparty | cut -d: -f3)' = '${SVC_GID:-x}' ] && [ '${SVC_HOME:-}' = '$DATA' ] && [ '${SVC_SHELL:-}' = /usr/sbin/nologin ]"
check "$DATA: pixelparty:pixelparty, mode 750" bash -c "[ \"\$(stat -c '%U:%G %a' $DATA)\" = 'pixelparty:pixelparty 750' ]"
WANTS=/etc/systemd/system/multi-user.target.wants/pixelparty.service
if command -v deb-systemd-helper >/dev/null 2>&1; then
  check "enabled for the next systemd boot (deb-systemd-helper: $WANTS -> $UNIT_PATH)" \
    bash -c "[ \"\$(readlink $WANTS)\" = $UNIT_PATH ]"
else
  echo "note: no deb-systemd-helper (init-system-helpers): postinst enables the unit only under a running systemd"
fi

SYSTEMD_ANALYZE=$(command -v systemd-analyze || true)
if [ -z "$SYSTEMD_ANALYZE" ] && [ "$IN_CI" = true ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing systemd-analyze (Debian package systemd), as ops/check.sh does"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 systemd >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 systemd >/dev/null 2>&1; }; } ||
    echo "apt-get install systemd failed"
  SYSTEMD_ANALYZE=$(command -v systemd-analyze || true)
fi
if [ -n "$SYSTEMD_ANALYZE" ]; then
  # verify exits 0 on unknown keys: any line naming the unit is a finding.
  out=$("$SYSTEMD_ANALYZE" verify "$UNIT_PATH" 2>&1 | grep -F pixelparty.service || true)
  if [ -z "$out" ]; then ok "systemd-analyze verify $UNIT_PATH (the installed unit, ExecStart present)"; else
    bad "systemd-analyze verify $UNIT_PATH"
    printf '%s\n' "$out" | sed 's/^/     /'
  fi
elif [ "$IN_CI" = true ]; then
  bad "systemd-analyze missing (Debian package systemd)"
else
  echo "SKIP systemd-analyze verify: not installed (Debian package systemd)"
fi

# --- the unit, read as systemd would ---------------------------------------------------------

step "reading the installed unit's [Service] section"
declare -A U=()
U_ENV=()
unsupported=()
not_emulated=()
section=""
while IFS= read -r line || [ -n "$line" ]; do
  line="${line#"${line%%[![:space:]]*}"}"
  case "$line" in '' | '#'* | ';'*) continue ;; '['*) section=$line; continue ;; esac
  [ "$section" = "[Service]" ] || continue
  key=${line%%=*} value=${line#*=}
  case "$key" in
    Environment)
      [[ "$value" == *[\"\'\\%\$]* ]] && unsupported+=("$line (quoting/specifiers)")
      read -ra parts <<<"$value"
      U_ENV+=("${parts[@]}")
      ;;
    ExecStart | User | Group | WorkingDirectory | StateDirectory | StateDirectoryMode | LimitNOFILE | NoNewPrivileges | KillSignal | TimeoutStopSec | Type)
      U[$key]=$value
      ;;
    # Sandboxing and supervision this check cannot reproduce without systemd.
    ProtectSystem | ProtectHome | PrivateTmp | ReadWritePaths | Restart) not_emulated+=("$line") ;;
    *) unsupported+=("$line") ;;
  esac
done <"$UNIT_PATH"
[ "${U[Type]:-simple}" = simple ] || unsupported+=("Type=${U[Type]}")
[ "${U[KillSignal]:-SIGTERM}" = SIGTERM ] || unsupported+=("KillSignal=${U[KillSignal]}")
[[ "${U[ExecStart]:-}" == *[\"\'\\%\$]* || "${U[ExecStart]:-}" == [-@:+!]* ]] && unsupported+=("ExecStart=${U[ExecStart]} (prefixes, quoting, specifiers)")
[ -n "${U[ExecStart]:-}" ] && [ -n "${U[User]:-}" ] || unsupported+=("no ExecStart= or no User=")
if [ "${#unsupported[@]}" != 0 ]; then
  printf '     %s\n' "${unsupported[@]}"
  die "the unit uses settings this check does not emulate: teach ops/deb/check.sh about them"
fi
read -ra EXEC <<<"${U[ExecStart]}"
SVC_USER=${U[User]}
SVC_GROUP=${U[Group]:-$SVC_USER}
WORKDIR=${U[WorkingDirectory]:-/}
NOFILE=${U[LimitNOFILE]:-}
STATE_DIR=""
[ -n "${U[StateDirectory]:-}" ] && STATE_DIR=/var/lib/${U[StateDirectory]}
STOP_TIMEOUT=${U[TimeoutStopSec]:-90}
STOP_TIMEOUT=${STOP_TIMEOUT%s}
ok "ExecStart=${U[ExecStart]}"
echo "     emulated: User=$SVC_USER Group=$SVC_GROUP, Environment=${U_ENV[*]:-}, working directory $WORKDIR, LimitNOFILE=${NOFILE:-inherited}, NoNewPrivileges=${U[NoNewPrivileges]:-no}, StateDirectory=${STATE_DIR:-none}, KillSignal=SIGTERM, TimeoutStopSec=$STOP_TIMEOUT"
echo "     not emulated (need a running systemd): ${not_emulated[*]:-none}; journald (output goes to a file here)"

# start_service LOG: runs ExecStart as the unit would, in the background; sets SVC_PID.
start_service() {
  local log=$1
  # StateDirectory=: systemd creates it if missing (owned by User/Group, StateDirectoryMode)
  # and sets $STATE_DIRECTORY. The package already made it: nothing is created if it exists.
  if [ -n "$STATE_DIR" ] && [ ! -d "$STATE_DIR" ]; then
    install -d -o "$SVC_USER" -g "$SVC_GROUP" -m "${U[StateDirectoryMode]:-0755}" "$STATE_DIR"
  fi
  local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    HOME="$SVC_HOME" USER="$SVC_USER" LOGNAME="$SVC_USER" SHELL="$SVC_SHELL")
  [ -n "$STATE_DIR" ] && env+=(STATE_DIRECTORY="$STATE_DIR")
  env+=("${U_ENV[@]}")
  local nnp=()
  case "${U[NoNewPrivileges]:-no}" in true | yes | 1 | on) nnp=(--no-new-privs) ;; esac
  (
    cd "$WORKDIR" || exit 1
    if [ -n "$NOFILE" ]; then ulimit -n "$NOFILE" || exit 1; fi
    exec setpriv --reuid="$SVC_USER" --regid="$SVC_GROUP" --init-groups "${nnp[@]}" -- \
      env -i "${env[@]}" "${EXEC[@]}"
  ) </dev/null >"$log" 2>&1 &
  SVC_PID=$!
}

# wait_healthy LOG: bounded polling of /healthz on the admin port; sets HEALTHY_SECS.
wait_healthy() {
  local log=$1 t0=$SECONDS rc
  while :; do
    if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$ADMIN_PORT/healthz" 2>/dev/null; then
      HEALTHY_SECS=$((SECONDS - t0))
      return 0
    fi
    if ! kill -0 "$SVC_PID" 2>/dev/null; then
      wait "$SVC_PID" 2>/dev/null
      rc=$?
      SVC_PID=""
      echo "the service exited (status $rc) before answering /healthz; its output:"
      tail -30 "$log" | sed 's/^/     /'
      return 1
    fi
    if [ $((SECONDS - t0)) -ge "$HEALTH_TIMEOUT" ]; then
      echo "no /healthz answer on 127.0.0.1:$ADMIN_PORT within ${HEALTH_TIMEOUT}s; output:"
      tail -30 "$log" | sed 's/^/     /'
      return 1
    fi
    sleep 0.2
  done
}

# http METHOD URL [BODY] [AUTH]: prints "<status> <body>".
http() {
  local args=(-sS -m 30 -o "$WORK/body" -w '%{http_code}' -X "$1" "$2")
  [ -n "${3:-}" ] && args+=(-H 'content-type: application/json' --data "$3")
  [ -n "${4:-}" ] && args+=(-H "authorization: Bearer $4")
  local code
  code=$(curl "${args[@]}" 2>"$WORK/curl.err") || code="curl-failed($(cat "$WORK/curl.err"))"
  printf '%s %s' "$code" "$(cat "$WORK/body" 2>/dev/null)"
}
json_field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); [d := d[k] for k in sys.argv[2:]]; print(d)' "$@" 2>/dev/null; }

# Traffic goes to loopback only (this workplace's rule for tests: 127.0.0.0/8). The binds
# themselves (public on 0.0.0.0, admin on 127.0.0.1 only) are proved from the socket table.
PUBLIC_HOST=127.0.0.1

# --- first start ---------------------------------------------------------------------------

step "start 1: as the unit would"
start_service "$WORK/service1.log"
if wait_healthy "$WORK/service1.log"; then ok "GET http://127.0.0.1:$ADMIN_PORT/healthz answered 200, ${HEALTHY_SECS}s after start"; else die "the service did not become healthy"; fi
NNP_EXPECTED=$(case "${U[NoNewPrivileges]:-no}" in true | yes | 1 | on) echo 1 ;; *) echo 0 ;; esac)
check "the process runs as $SVC_USER:$SVC_GROUP in $WORKDIR, NoNewPrivs $NNP_EXPECTED, open files ${NOFILE:-inherited}" bash -c "
  grep -Eq '^Uid:[[:space:]]+$(id -u "$SVC_USER")([[:space:]]+$(id -u "$SVC_USER")){3}\$' /proc/$SVC_PID/status &&
    grep -Eq '^Gid:[[:space:]]+$(getent group "$SVC_GROUP" | cut -d: -f3)([[:space:]]+$(getent group "$SVC_GROUP" | cut -d: -f3)){3}\$' /proc/$SVC_PID/status ||
    { grep -E '^(Uid|Gid):' /proc/$SVC_PID/status; exit 1; }
  [ \"\$(readlink /proc/$SVC_PID/cwd)\" = '$WORKDIR' ] || { echo cwd; exit 1; }
  grep -Eq '^NoNewPrivs:[[:space:]]+$NNP_EXPECTED\$' /proc/$SVC_PID/status || { grep NoNewPrivs /proc/$SVC_PID/status; exit 1; }
  [ -z '$NOFILE' ] || grep -Eq '^Max open files +$NOFILE +$NOFILE ' /proc/$SVC_PID/limits || { grep 'open files' /proc/$SVC_PID/limits; exit 1; }"
listeners=$(ss -Hlntp 2>/dev/null | grep "pid=$SVC_PID," | awk '{print $4}' | sort -u | tr '\n' ' ')
udp=$(ss -Hlnup 2>/dev/null | grep "pid=$SVC_PID," | awk '{print $4}' | sort -u | tr '\n' ' ')
echo "     the service's sockets: TCP $listeners; UDP $udp"
check "TCP listeners exactly 0.0.0.0:$PUBLIC_PORT (public) and 127.0.0.1:$ADMIN_PORT (admin); UDP 0.0.0.0:$WT_PORT (WebTransport)" \
  bash -c "[ '$listeners' = '0.0.0.0:$PUBLIC_PORT 127.0.0.1:$ADMIN_PORT ' ] && [ '$udp' = '0.0.0.0:$WT_PORT ' ]"

USERNAME="debcheck_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
PASSWORD="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
CREDS="{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}"
resp=$(http POST "http://$PUBLIC_HOST:$PUBLIC_PORT/signup" "$CREDS")
TOKEN=$(json_field "${resp#* }" token)
if [ "${resp%% *}" = 201 ] && [ -n "$TOKEN" ]; then
  ok "POST http://$PUBLIC_HOST:$PUBLIC_PORT/signup ($USERNAME): 201 with a session token"
else
  bad "POST http://$PUBLIC_HOST:$PUBLIC_PORT/signup: $resp"
fi
resp=$(http GET "http://$PUBLIC_HOST:$PUBLIC_PORT/account" "" "$TOKEN")
check "GET /account with that token: 200, the new user" bash -c "[ '${resp%% *}' = 200 ] && [ '$(json_field "${resp#* }" username)' = '$USERNAME' ] || { echo '$resp'; exit 1; }"
check "$DATA/admin.token generated: pixelparty, mode 600" bash -c "[ \"\$(stat -c '%U %a' $DATA/admin.token)\" = 'pixelparty 600' ]"
ADMIN_TOKEN=$(tr -d '[:space:]' <"$DATA/admin.token" 2>/dev/null)
resp=$(http GET "http://127.0.0.1:$ADMIN_PORT/metrics")
check "GET /metrics without the token: 401" bash -c "[ '${resp%% *}' = 401 ]"
resp=$(http GET "http://127.0.0.1:$ADMIN_PORT/metrics" "" "$ADMIN_TOKEN")
check "GET /metrics with the generated token: 200, pixelparty_signups_total 1" bash -c \
  "[ '${resp%% *}' = 200 ] && grep -qE '^pixelparty_signups_total(\{\})? 1\$' '$WORK/body'"
check "pixelparty admin stats --data $DATA (the CLI finds the service and its token)" \
  /usr/bin/pixelparty admin stats --data "$DATA"

stop_service "$STOP_TIMEOUT"
check "SIGTERM: the service stopped within TimeoutStopSec=${STOP_TIMEOUT}s, exit status 0" bash -c "[ '$STOP_RC' = 0 ] || { echo 'status: $STOP_RC'; tail -20 '$WORK/service1.log'; exit 1; }"

# --- upgrade path: reinstall over an edited conffile, start again ----------------------------

step "reinstall over an edited conffile (the upgrade path), start 2"
echo "# local edit by ops/deb/check.sh" >>"$CONF"
uid_before=$SVC_UID
if out=$(dpkg_locked -i "$DEB"); then ok "dpkg -i again (postinst configure with the old version)"; else
  printf '%s\n' "$out" | sed 's/^/     /'
  die "dpkg -i (reinstall) failed"
fi
check "the local edit to the conffile survived" grep -q '^# local edit by ops/deb/check.sh$' "$CONF"
check "same pixelparty user (uid $uid_before), data kept ($DATA/admin.token), $DATA still 750" bash -c \
  "[ \"\$(id -u pixelparty)\" = '$uid_before' ] && [ -f $DATA/admin.token ] && [ \"\$(stat -c '%U:%G %a' $DATA)\" = 'pixelparty:pixelparty 750' ]"
start_service "$WORK/service2.log"
if wait_healthy "$WORK/service2.log"; then ok "healthy again after ${HEALTHY_SECS}s"; else die "the service did not become healthy after the reinstall"; fi
resp=$(http POST "http://$PUBLIC_HOST:$PUBLIC_PORT/login" "$CREDS")
check "POST /login as $USERNAME: 200 (the account outlived the restart and the reinstall)" bash -c "[ '${resp%% *}' = 200 ] || { echo '$resp'; exit 1; }"
stop_service "$STOP_TIMEOUT"
check "stopped again, exit status 0" bash -c "[ '$STOP_RC' = 0 ] || { echo 'status: $STOP_RC'; tail -20 '$WORK/service2.log'; exit 1; }"

# --- remove, then purge --------------------------------------------------------------------

step "dpkg -r (remove): program gone, data, config and user kept"
if out=$(dpkg_locked -r "$PKG"); then ok "dpkg -r $PKG"; else printf '%s\n' "$out" | sed 's/^/     /'; bad "dpkg -r failed"; fi
check "status config-files; /usr/bin/pixelparty and the unit gone" bash -c \
  "[ \"\$(dpkg-query -W -f='\${db:Status-Status}' $PKG)\" = config-files ] && [ ! -e /usr/bin/pixelparty ] && [ ! -e $UNIT_PATH ]"
check "kept: $CONF, $DATA (with admin.token), the pixelparty user" bash -c \
  "[ -f $CONF ] && [ -f $DATA/admin.token ] && getent passwd pixelparty >/dev/null"

step "dpkg --purge: everything gone"
if out=$(dpkg_locked --purge "$PKG"); then ok "dpkg --purge $PKG"; else printf '%s\n' "$out" | sed 's/^/     /'; bad "dpkg --purge failed"; fi
INSTALLED=0
left=()
status=$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || left+=("dpkg status $status")
for p in /usr/bin/pixelparty "$UNIT_PATH" /etc/pixelparty "$DATA" /usr/share/doc/pixelparty "$WANTS" \
  /etc/systemd/system/pixelparty.service /var/lib/systemd/deb-systemd-helper-enabled/pixelparty.service \
  /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/pixelparty.service \
  /var/lib/systemd/deb-systemd-helper-masked/pixelparty.service; do
  { [ -e "$p" ] || [ -L "$p" ]; } && left+=("$p")
done
getent passwd pixelparty >/dev/null && left+=("user pixelparty")
getent group pixelparty >/dev/null && left+=("group pixelparty")
if [ "${#left[@]}" = 0 ]; then
  ok "nothing left: package, files, /etc/pixelparty, $DATA, enablement and mask links, user and group"
else
  bad "left after purge: ${left[*]}"
fi

summary
[ "$failed" = 0 ]
