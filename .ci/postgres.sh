#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 with trust authentication for local TCP and
# has a database `test` (what the storage and gateway tests expect): starts the cluster if it
# is installed but stopped, installs it with apt if it is missing. Also needs the server
# binaries (initdb, pg_ctl) for gateway/tests/postgres_lost_and_back.rs.
set -euo pipefail

ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

if ! ready; then
  version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
    pg_createcluster "$version" main >/dev/null
  fi
  cluster="$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')"
  conf="/etc/postgresql/${cluster% *}/${cluster#* }"
  # Local test server: trust on loopback TCP only.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
  fi
  pg_ctlcluster $cluster start
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
fi
ready || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }

if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test'
fi
echo "PostgreSQL ready: $(psql -h 127.0.0.1 -U postgres -d test -tAc 'SHOW server_version')"
