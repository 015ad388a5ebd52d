#!/usr/bin/env python3
"""Helpers of ops/check.sh (standard library, plus PyYAML for YAML files).

  check.py parse FILE...                  YAML (every document), JSON or TOML must parse
  check.py helm-render FILE OUT_TOML      rendered chart: every document parses, has kind and
                                          metadata.name; writes the ConfigMap's pixelparty.toml
  check.py promql-rules DASHBOARD OUT     every dashboard expression as a recording rule, for
                                          promtool check rules (PromQL parse)
  check.py server-config BIN TOML...      the server starts with each config file (addresses and
                                          data directory overridden) and answers /readyz
  check.py metrics BIN DASHBOARD ALERTS [--prometheus PROM --prometheus-config YML]
                                          starts the server, reads /metrics with the admin token
                                          from <data>/admin.token, and checks every metric name
                                          the dashboard, the alert rules and RUNBOOK.md (beside
                                          ALERTS) use; with a
                                          Prometheus binary, scrapes the server with the
                                          project's prometheus.yml and evaluates every dashboard
                                          and alert expression
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request

PROM_BUILTINS = {"up"}  # series Prometheus makes itself
METRIC_RE = re.compile(r"\b(pixelparty_[a-zA-Z0-9_]+)\b")
FUNC_ARG_RE = re.compile(r"\b(rate|irate|increase|delta|deriv|idelta|resets)\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")
COUNTER_FUNCS = {"rate", "irate", "increase", "resets"}
GAUGE_FUNCS = {"delta", "deriv", "idelta"}


def fail(msg):
    print(f"FAIL: {msg}")
    return 1


def load_yaml_all(path):
    import yaml  # PyYAML

    with open(path, encoding="utf-8") as f:
        return list(yaml.safe_load_all(f))


def cmd_parse(paths):
    bad = 0
    for p in paths:
        try:
            if p.endswith((".yml", ".yaml")):
                load_yaml_all(p)
            elif p.endswith(".json"):
                with open(p, encoding="utf-8") as f:
                    json.load(f)
            elif p.endswith(".toml"):
                with open(p, "rb") as f:
                    tomllib.load(f)
            else:
                raise ValueError("unknown file type")
            print(f"  ok {p}")
        except Exception as e:  # noqa: BLE001 - report any parse error
            bad += fail(f"{p}: {e}")
    return 1 if bad else 0


def cmd_helm_render(path, out_toml):
    docs = [d for d in load_yaml_all(path) if d is not None]
    bad = 0
    kinds = []
    toml_text = None
    for d in docs:
        if not isinstance(d, dict) or "kind" not in d or "apiVersion" not in d or not d.get("metadata", {}).get("name"):
            bad += fail(f"{path}: a document without apiVersion, kind or metadata.name: {str(d)[:120]}")
            continue
        kinds.append(d["kind"])
        if d["kind"] == "ConfigMap" and "pixelparty.toml" in d.get("data", {}):
            toml_text = d["data"]["pixelparty.toml"]
    if toml_text is None:
        bad += fail(f"{path}: no ConfigMap with pixelparty.toml")
    else:
        try:
            tomllib.loads(toml_text)
        except tomllib.TOMLDecodeError as e:
            bad += fail(f"{path}: rendered pixelparty.toml does not parse: {e}")
        with open(out_toml, "w", encoding="utf-8") as f:
            f.write(toml_text)
    print(f"  {len(docs)} documents: {', '.join(sorted(kinds))}")
    return 1 if bad else 0


def dashboard_exprs(path):
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and isinstance(q, str):
            out.append((f"variable {v['name']}", q))
    return out


def concrete(expr, rate_interval="1m"):
    """A dashboard expression with Grafana's variables replaced, so Prometheus can run it."""
    e = expr.replace("$__rate_interval", rate_interval).replace("$__interval", rate_interval)
    e = e.replace('"$job"', '".*"').replace('"$instance"', '".*"')
    return e


def alert_exprs(path):
    docs = load_yaml_all(path)
    out = []
    for doc in docs:
        for g in (doc or {}).get("groups", []):
            for r in g.get("rules", []):
                out.append((r.get("alert") or r.get("record"), r["expr"]))
    return out


def cmd_promql_rules(dashboard, out):
    import yaml

    rules = []
    for i, (title, expr) in enumerate(dashboard_exprs(dashboard)):
        if expr.startswith("label_values("):
            m = re.match(r"label_values\((.*),\s*[a-zA-Z_]+\)$", expr)
            if not m:
                return fail(f"dashboard variable query not understood: {expr}")
            expr = m.group(1)
        rules.append({"record": f"dashboard:expr_{i}", "expr": concrete(expr)})
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False)
    print(f"  {len(rules)} dashboard expressions written as recording rules")
    return 0


# --- the server ----------------------------------------------------------------------------


def free_tcp():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp():
    with socket.socket(type=socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, token=None, timeout=5):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


class Server:
    """The real binary on free loopback ports with a fresh data directory."""

    def __init__(self, binary, config=None):
        self.binary = os.path.abspath(binary)
        self.config = os.path.abspath(config) if config else None
        self.dir = tempfile.mkdtemp(prefix="pixelparty-ops-check-")
        self.data = os.path.join(self.dir, "data")
        self.proc = None

    def start(self):
        http, admin = free_tcp(), free_tcp()
        while admin == http:
            admin = free_tcp()
        self.admin_port = admin
        self.http = f"http://127.0.0.1:{http}"
        self.admin = f"http://127.0.0.1:{admin}"
        args = [self.binary, "serve"]
        if self.config:
            args += ["--config", self.config]
        args += [
            "--http", f"127.0.0.1:{http}",
            "--admin-addr", f"127.0.0.1:{admin}",
            "--wt", f"127.0.0.1:{free_udp()}",
            "--data", self.data,
            "--shards", "2",
        ]
        # The files and flags decide, not variables of the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELPARTY_")}
        env.setdefault("RUST_LOG", "warn")
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(args, cwd=self.dir, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if http_get(f"{self.admin}/readyz", timeout=1)[0] == 200:
                    return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready within 30 s: {self.log_tail()}")

    def token(self):
        with open(os.path.join(self.data, "admin.token"), encoding="utf-8") as f:
            return f.read().strip()

    def log_tail(self):
        self.log.flush()
        with open(os.path.join(self.dir, "server.log"), "rb") as f:
            return f.read()[-2000:].decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def cmd_server_config(binary, configs):
    bad = 0
    for cfg in configs:
        s = Server(binary, cfg)
        try:
            s.start()
            print(f"  ok the server starts with {cfg} and answers /readyz")
        except RuntimeError as e:
            bad += fail(f"the server refuses {cfg}: {e}")
        finally:
            s.stop()
    return 1 if bad else 0


def parse_metrics(text):
    """{series name: type} from the Prometheus text format. A histogram family `x` is its
    series `x_bucket`, `x_sum` and `x_count`, which only grow: counters for rate()."""
    types, names = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name] = kind
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    for family in [n for n, k in types.items() if k == "histogram"]:
        del types[family]
        for suffix in ("_bucket", "_sum", "_count"):
            types[family + suffix] = "counter"
    for n in names:
        types.setdefault(n, "untyped")
    return types


def histogram_family(name, exported):
    """`x` for the series `x_bucket`, `x_sum`, `x_count` of an exported histogram; else name."""
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base if f"{base}_bucket" in exported else name


def runbook_names(path):
    """The pixelparty_* names the runbook cites, with the line they are on."""
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            out += [(f"line {i}", name) for name in METRIC_RE.findall(line)]
    return out


def check_names(where, exprs, exported):
    bad = 0
    used = set()
    for title, expr in exprs:
        for name in METRIC_RE.findall(expr):
            used.add(name)
            if name not in exported:
                bad += fail(f"{where} '{title}': metric {name} is not exported by the server")
        if "up{" in expr.replace(" ", "") or re.search(r"\bup\b", expr):
            used.add("up")
        for func, name in FUNC_ARG_RE.findall(expr):
            kind = exported.get(name)
            if kind is None:
                continue
            if func in COUNTER_FUNCS and kind != "counter":
                bad += fail(f"{where} '{title}': {func}() of {name}, a {kind}")
            if func in GAUGE_FUNCS and kind == "counter":
                bad += fail(f"{where} '{title}': {func}() of {name}, a counter")
    return bad, used


def prom_query(base, expr):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        _, body = http_get(url, timeout=10)
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
    return json.loads(body)


def run_prometheus(prom, prom_config, server, exprs_dash, exprs_alert, alerts_path):
    """Scrapes the live server with the project's prometheus.yml (paths and target rewritten
    to this run) and evaluates every expression."""
    import yaml

    work = tempfile.mkdtemp(prefix="pixelparty-ops-prom-")
    proc = None
    bad = 0
    try:
        with open(prom_config, encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
        token_file = os.path.join(work, "admin.token")
        with open(token_file, "w", encoding="utf-8") as f:
            f.write(server.token())
        shutil.copy(alerts_path, os.path.join(work, "alerts.yml"))
        cfg["global"]["scrape_interval"] = "1s"
        cfg["global"]["evaluation_interval"] = "1s"
        cfg["rule_files"] = [os.path.join(work, "alerts.yml")]
        for sc in cfg["scrape_configs"]:
            if sc.get("job_name") == "pixelparty":
                sc["authorization"]["credentials_file"] = token_file
                sc["static_configs"] = [{"targets": [f"127.0.0.1:{server.admin_port}"]}]
        path = os.path.join(work, "prometheus.yml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(cfg, f)
        port = free_tcp()
        base = f"http://127.0.0.1:{port}"
        log = open(os.path.join(work, "prometheus.log"), "wb")
        proc = subprocess.Popen(
            [prom, f"--config.file={path}", f"--storage.tsdb.path={work}/tsdb",
             f"--web.listen-address=127.0.0.1:{port}"],
            cwd=work, stdout=log, stderr=subprocess.STDOUT,
        )
        # Wait for three scrapes (rates need two samples).
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                with open(os.path.join(work, "prometheus.log"), "rb") as f:
                    tail = f.read()[-1500:].decode("utf-8", "replace")
                return fail(f"prometheus exited with {proc.returncode}: {tail}")
            try:
                r = prom_query(base, 'count_over_time(up{job="pixelparty"}[1m])')
                res = r.get("data", {}).get("result", [])
                if res and float(res[0]["value"][1]) >= 3:
                    break
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            if time.time() > deadline:
                return fail("prometheus did not scrape the server three times within 60 s")
            time.sleep(0.5)
        r = prom_query(base, 'up{job="pixelparty"}')
        up = r["data"]["result"]
        if not up or up[0]["value"][1] != "1":
            bad += fail(f"prometheus could not scrape the server with prometheus.yml's bearer token: {up}")
        else:
            print("  ok a real Prometheus scraped /metrics with prometheus.yml's bearer token (up == 1)")
        empty = []
        n = 0
        for title, expr in exprs_dash:
            if expr.startswith("label_values("):
                label = re.match(r"label_values\((.*),\s*([a-zA-Z_]+)\)$", expr)
                expr = f"count by ({label.group(2)}) ({label.group(1)})"
            r = prom_query(base, concrete(expr, "5s"))
            n += 1
            if r.get("status") != "success":
                bad += fail(f"dashboard '{title}': {r.get('error')}: {expr}")
            elif not r["data"]["result"]:
                empty.append(title)
        # Quotients of idle counters (0/0) are NaN, not empty: only a missing series is empty.
        for title in empty:
            bad += fail(f"dashboard '{title}': no data from the live server")
        print(f"  ok {n - len(empty)} of {n} dashboard expressions return data from the live server")
        for name, expr in exprs_alert:
            r = prom_query(base, expr)
            if r.get("status") != "success":
                bad += fail(f"alert {name}: {r.get('error')}")
        r = prom_query(base, "ALERTS")
        rules = json.loads(http_get(f"{base}/api/v1/rules")[1])
        health = [(ru["name"], ru.get("health"), ru.get("lastError")) for g in rules["data"]["groups"] for ru in g["rules"]]
        broken = [h for h in health if h[1] != "ok"]
        for name, h, err in broken:
            bad += fail(f"alert {name}: rule health {h}: {err}")
        firing = [a["labels"]["alertname"] for a in r.get("data", {}).get("result", [])]
        print(f"  ok {len(health) - len(broken)} of {len(health)} alert rules evaluated by Prometheus without error"
              + (f"; firing on an idle server: {', '.join(sorted(set(firing)))}" if firing else "; none firing on an idle server"))
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    return bad


def cmd_metrics(binary, dashboard, alerts, prom=None, prom_config=None):
    s = Server(binary)
    bad = 0
    try:
        s.start()
        # One public request, so that the HTTP latency histogram (per route requested) has a
        # series for the dashboard and the alert rules to read.
        http_get(f"{s.http}/canvas")
        status, text = http_get(f"{s.admin}/metrics", token=s.token())
        if status != 200:
            return fail(f"/metrics answered {status}")
        try:
            http_get(f"{s.admin}/metrics")
            bad += fail("/metrics answered without the admin token")
        except urllib.error.HTTPError:
            pass
        exported = parse_metrics(text)
        print(f"  live /metrics: {len(exported)} metric names")
        for b in PROM_BUILTINS:
            exported.setdefault(b, "gauge")
        d_exprs = dashboard_exprs(dashboard)
        a_exprs = alert_exprs(alerts)
        b1, used_d = check_names(f"dashboard {os.path.basename(dashboard)}", d_exprs, exported)
        b2, used_a = check_names(f"alerts {os.path.basename(alerts)}", a_exprs, exported)
        bad += b1 + b2
        if not b1:
            print(f"  ok the dashboard's {len(d_exprs)} expressions use {len(used_d)} metric names, all exported")
        if not b2:
            print(f"  ok the {len(a_exprs)} alert rules use {len(used_a)} metric names, all exported")
        runbook = os.path.join(os.path.dirname(alerts), "RUNBOOK.md")
        cited = runbook_names(runbook)
        # Prose may name a histogram by its family: it exists when its series do.
        missing = [(w, n) for w, n in cited if n not in exported and f"{n}_bucket" not in exported]
        for where, name in missing:
            bad += fail(f"{os.path.basename(runbook)} {where}: metric {name} is not exported by the server")
        if not missing:
            print(f"  ok {os.path.basename(runbook)} cites {len({n for _, n in cited})} metric names, all exported")
        used_families = {histogram_family(n, exported) for n in used_d}
        unused = sorted(
            n for n in set(exported) - used_d - PROM_BUILTINS if histogram_family(n, exported) not in used_families
        )
        if unused:
            print(f"  note: exported but on no dashboard panel: {', '.join(unused)}")
        if prom:
            bad += run_prometheus(prom, prom_config, s, d_exprs, a_exprs, alerts)
    except RuntimeError as e:
        bad += fail(str(e))
    finally:
        s.stop()
    return 1 if bad else 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, rest = argv[1], argv[2:]
    if cmd == "parse":
        return cmd_parse(rest)
    if cmd == "helm-render":
        return cmd_helm_render(*rest)
    if cmd == "promql-rules":
        return cmd_promql_rules(*rest)
    if cmd == "server-config":
        return cmd_server_config(rest[0], rest[1:])
    if cmd == "metrics":
        prom = prom_config = None
        if "--prometheus" in rest:
            i = rest.index("--prometheus")
            prom, prom_config = rest[i + 1], rest[i + 3]
            rest = rest[:i]
        return cmd_metrics(*rest, prom=prom, prom_config=prom_config)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
