#!/usr/bin/env python3
"""Helpers of ops/check.sh (standard library, plus PyYAML for YAML files).

  check.py parse FILE...                  YAML (every document), JSON or TOML must parse
  check.py helm-render FILE OUT_TOML      rendered chart: every document parses, has kind and
                                          metadata.name; writes the ConfigMap's pixelparty.toml
                                          (cluster mode: its first pod's <pod>.toml)
  check.py promql-rules DASHBOARD OUT     every dashboard expression as a recording rule, for
                                          promtool check rules (PromQL parse)
  check.py compose-mounts COMPOSE...     every file a compose file mounts exists (relative to it;
                                          admin.token excepted: the operator makes it)
  check.py compose-cluster COMPOSE CLUSTER_DIR
                                          the cluster compose file, its node configs, HAProxy
                                          config and Prometheus config agree with each other and
                                          with ops/cluster's templates (see cmd_compose_cluster)
  check.py compose-cluster-tls COMPOSE CLUSTER_DIR
                                          the same on a copy switched to TLS as ops/README.md
                                          says; broken copies (CA not mounted, a Redis CA on
                                          redis://) must fail it
  check.py helm-tls FILE [SECRET PG_KEY REDIS_KEY]
                                          a cluster-mode render's TLS settings: the CA files
                                          from SECRET named in every config and mounted at
                                          /etc/pixelparty/ca; without SECRET, none
  check.py helm-cluster FILE REPLICAS     a cluster-mode render: REPLICAS pods, node id from the
                                          pod name, the URLs from a Secret, no volume claim, no
                                          WebTransport; one config per pod, mounted by the pod's
                                          name, differing only in the backup target
  check.py helm-backup FILE [--target T] [--interval N] [--retain N] [--endpoint E]
                        [--region R] [--allow-http] [--secret NAME [--session-token]]
                                          [backup] of every rendered config is what the values
                                          asked for (cluster mode: the target per pod,
                                          T/<pod name>), and the S3 credentials come from the
                                          Secret NAME as AWS_* variables (or no AWS_* at all)
  check.py backends                       whether cluster-mode nodes can be started here: a
                                          redis-server to run and a PostgreSQL to make a
                                          database in (prints the reason when not)
  check.py server-config BIN TOML... [--cluster TOML...]
                                          the server starts with each config file (addresses and
                                          data directory overridden) and answers /readyz; those
                                          after --cluster in cluster mode, on a Redis of their
                                          own and a fresh PostgreSQL database (URLs overridden)
  check.py metrics BIN DASHBOARD ALERTS [--cluster] [--prometheus PROM --prometheus-config YML]
                                          starts the server, takes one backup (POST /backup) and
                                          checks the backup metrics say so, reads /metrics with
                                          the admin token from <data>/admin.token, and checks
                                          every metric name
                                          the dashboard, the alert rules and RUNBOOK.md (beside
                                          ALERTS) use; with --cluster, also a node in cluster
                                          mode (Redis and PostgreSQL as above), whose
                                          pixelparty_cluster_* series only it exports, and the
                                          names are checked against both; without it, the
                                          pixelparty_cluster_* names are left unchecked (said
                                          so). With a Prometheus binary, scrapes the server(s)
                                          with the project's prometheus.yml and evaluates every
                                          dashboard and alert expression
"""

import ipaddress
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
CLUSTER_PREFIX = "pixelparty_cluster_"  # exported only by a node in cluster mode
# Names only a node in cluster mode (or on PostgreSQL) exports: unchecked without one.
CLUSTER_ONLY_RE = re.compile(r"^pixelparty_(cluster|storage_pg)_")
# PostgreSQL admin connections tried for a throwaway database, as the Rust tests do
# (storage/src/testing.rs; PIXELPARTY_PG_ADMIN_URL overrides).
PG_ADMIN_URLS = ["postgres://postgres@127.0.0.1:5432/test", "postgres://root@127.0.0.1:5432/test"]
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
        configs = config_files(d)
        if configs:
            # One node: pixelparty.toml; cluster mode: the first pod's file (every one is
            # parsed by helm-cluster and helm-backup).
            name = "pixelparty.toml" if "pixelparty.toml" in configs else sorted(configs)[0]
            toml_text = configs[name]
            print(f"  config: the ConfigMap's {name}")
    if toml_text is None:
        bad += fail(f"{path}: no ConfigMap with pixelparty.toml or <pod>.toml")
    else:
        try:
            tomllib.loads(toml_text)
        except tomllib.TOMLDecodeError as e:
            bad += fail(f"{path}: rendered pixelparty.toml does not parse: {e}")
        with open(out_toml, "w", encoding="utf-8") as f:
            f.write(toml_text)
    print(f"  {len(docs)} documents: {', '.join(sorted(kinds))}")
    return 1 if bad else 0


def config_files(doc):
    """{key: TOML text} of a rendered ConfigMap's server configs (pixelparty.toml, or one
    <pod name>.toml per pod in cluster mode); {} for any other document."""
    if doc.get("kind") != "ConfigMap":
        return {}
    return {k: v for k, v in (doc.get("data") or {}).items() if k.endswith(".toml")}


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


# --- compose ---------------------------------------------------------------------------------


def cmd_compose_mounts(paths):
    import yaml

    bad = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            c = yaml.safe_load(f)
        base = os.path.dirname(path)
        n = 0
        for name, svc in c["services"].items():
            for v in svc.get("volumes", []):
                src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
                if not src.startswith("."):
                    continue
                n += 1
                if not src.endswith("admin.token") and not os.path.exists(os.path.join(base, src)):
                    bad += fail(f"{path}: service {name} mounts {src}, which does not exist")
        print(f"  {path}: {n} mounted files and directories")
    return 1 if bad else 0


def networks_of(svc):
    """{network: its settings} of a compose service (list or map form)."""
    n = svc.get("networks", {})
    if isinstance(n, list):
        return {k: {} for k in n}
    return {k: (v or {}) for k, v in n.items()}


def published(svc):
    """(host address, host port, container port, protocol) of a service's published ports."""
    out = []
    for p in svc.get("ports", []):
        spec, proto = (str(p).split("/") + ["tcp"])[:2]
        parts = spec.split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        host, cont = (parts[-2], parts[-1]) if len(parts) >= 2 else ("", parts[0])
        out.append((host_ip, int(host) if host else None, int(cont), proto))
    return out


def haproxy_sections(path):
    """{'global' | 'defaults' | 'frontend public' | ...: [lines]} with comments and blank
    lines dropped, whitespace normalized."""
    sections, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
            if not line.strip():
                continue
            words = line.split()
            if not raw[0].isspace():
                cur = " ".join(words[:2]) if words[0] in ("frontend", "backend", "listen") else words[0]
                sections[cur] = []
            elif cur is not None:
                sections[cur].append(" ".join(words))
    return sections


def url_host_port(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


def cmd_compose_cluster(compose_path, cluster_dir):
    """The cluster compose file agrees with itself and with ops/cluster/ (what CI runs):

    - networking: `private` is internal; Redis, PostgreSQL and Prometheus are only on it and
      publish nothing; nothing publishes an admin port; Grafana publishes on 127.0.0.1 only;
    - the nodes (services mounting a config as /etc/pixelparty.toml): node_id is the service
      name; the admin endpoint binds the node's fixed private address; trusted_proxies is
      exactly HAProxy's private address; PostgreSQL backend with the URL (and password) from
      PIXELPARTY_POSTGRES_URL at the postgres service; Redis at the redis service; the
      WebTransport bind port is the one published and public_url names the host port; every
      node config is the same but for the per-node keys; the key prefix is ops/cluster's
      (run.sh's default) and storage.backend and webtransport.enabled are the template's;
      each node's backup target is its own (it names the node: one node's retention must
      never remove another's backups) and, for a directory, on a volume the node mounts;
      TLS allowed (ops/README.md, "Compose (cluster)": rediss://, ?sslmode=require): a CA
      file the config names (storage.postgres_ca_file, cluster.redis_ca_file) is mounted
      into the node, and redis_ca_file comes with rediss:// only (the server refuses it
      with redis://);
    - HAProxy: every line of the template's global, defaults, "frontend public" and "backend
      nodes" sections (but bind and the placeholders) is in the compose config's same section;
      one `server` per node, at its private address and HTTP port, health-checked on its
      admin port; the public bind port is the one published;
    - Prometheus: job pixelparty scrapes every node's admin port, with the mounted token.
    """
    import yaml

    bad = 0
    oks = []
    base = os.path.dirname(compose_path)
    with open(compose_path, encoding="utf-8") as f:
        c = yaml.safe_load(f)
    svcs, nets = c["services"], c.get("networks", {})

    # Networking.
    private = nets.get("private") or {}
    if not private.get("internal"):
        bad += fail("network private is not internal")
    try:
        subnet = ipaddress.ip_network(private["ipam"]["config"][0]["subnet"])
    except (KeyError, IndexError, ValueError) as e:
        return fail(f"network private has no subnet: {e}")
    for name in ("redis", "postgres", "prometheus"):
        svc = svcs.get(name)
        if svc is None:
            bad += fail(f"no service {name}")
        elif set(networks_of(svc)) != {"private"} or svc.get("ports"):
            bad += fail(f"service {name} must be on the private network only, publishing nothing")
    for name, svc in svcs.items():
        for host_ip, _, cont, proto in published(svc):
            if name == "grafana" and host_ip != "127.0.0.1":
                bad += fail("grafana publishes its port beyond 127.0.0.1")
    oks.append("private network internal; Redis, PostgreSQL, Prometheus only there; Grafana on 127.0.0.1 only")

    # The nodes and their configs.
    def mounted(svc, target):
        for v in svc.get("volumes", []):
            parts = v.split(":")
            if len(parts) >= 2 and parts[1] == target:
                return os.path.normpath(os.path.join(base, parts[0]))
        return None

    nodes = {n: svc for n, svc in svcs.items() if mounted(svc, "/etc/pixelparty.toml")}
    if len(nodes) < 2:
        return fail(f"{len(nodes)} node(s) mount /etc/pixelparty.toml: a cluster needs at least two")
    haproxy = svcs.get("haproxy")
    if haproxy is None:
        return fail("no service haproxy")
    proxy_ip = networks_of(haproxy).get("private", {}).get("ipv4_address")
    if not proxy_ip or ipaddress.ip_address(proxy_ip) not in subnet:
        return fail(f"haproxy has no fixed address in {subnet} (it is the nodes' trusted proxy)")

    with open(os.path.join(cluster_dir, "node.toml.template"), encoding="utf-8") as f:
        template = tomllib.loads(re.sub(r"@[A-Z_]+@", "0", f.read()))
    with open(os.path.join(cluster_dir, "run.sh"), encoding="utf-8") as f:
        m = re.search(r"^PREFIX=([A-Za-z0-9_.:-]+)\s*$", f.read(), re.M)
    cluster_prefix = m.group(1) if m else None
    if cluster_prefix is None:
        bad += fail("ops/cluster/run.sh: no default PREFIX= found")

    PER_NODE = {("server", "admin"), ("cluster", "node_id"), ("webtransport", "public_url"), ("backup", "target")}
    configs, admin_port, http_port = {}, None, None
    for name, svc in sorted(nodes.items()):
        path = mounted(svc, "/etc/pixelparty.toml")
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
        configs[name] = cfg
        where = f"{name} ({os.path.relpath(path)})"
        ip = networks_of(svc).get("private", {}).get("ipv4_address")
        srv, st, cl, wt = (cfg.get(k, {}) for k in ("server", "storage", "cluster", "webtransport"))
        if cl.get("node_id") != name:
            bad += fail(f"{where}: cluster.node_id is {cl.get('node_id')!r}, not the service name")
        a_host, _, a_port = srv.get("admin", "").rpartition(":")
        if not ip or a_host != ip:
            bad += fail(f"{where}: server.admin {srv.get('admin')!r} is not bound to the node's fixed private address {ip}")
        if admin_port not in (None, a_port):
            bad += fail(f"{where}: admin port {a_port}, another node's is {admin_port}")
        admin_port = a_port
        h_port = srv.get("http", "").rpartition(":")[2]
        if http_port not in (None, h_port):
            bad += fail(f"{where}: HTTP port {h_port}, another node's is {http_port}")
        http_port = h_port
        if srv.get("trusted_proxies") != [proxy_ip]:
            bad += fail(f"{where}: server.trusted_proxies is {srv.get('trusted_proxies')}, not [HAProxy's {proxy_ip}]")
        if "postgres_url" in st:
            bad += fail(f"{where}: storage.postgres_url in the file (the password belongs in the environment)")
        env = svc.get("environment", {})
        pg = env.get("PIXELPARTY_POSTGRES_URL", "")
        m = re.search(r"^postgres(?:ql)?://.*@([A-Za-z0-9_.-]+)(?::[0-9]+)?/[A-Za-z0-9_]+(\?sslmode=(?:disable|prefer|require))?$", pg)
        if not m or m.group(1) != "postgres":
            bad += fail(f"{name}: PIXELPARTY_POSTGRES_URL does not name the postgres service: {pg!r}")
        # TLS: the CA files the config names are mounted into the node; a Redis CA only with
        # rediss:// (the server refuses redis_ca_file with a redis:// URL).
        targets = [v.split(":")[1] for v in svc.get("volumes", []) if isinstance(v, str) and len(v.split(":")) >= 2]
        for sect, key in (("storage", "postgres_ca_file"), ("cluster", "redis_ca_file")):
            ca = cfg.get(sect, {}).get(key)
            if ca and not any(ca == t or ca.startswith(t.rstrip("/") + "/") for t in targets):
                bad += fail(f"{where}: {sect}.{key} {ca!r} is on no file or volume the node mounts ({targets})")
        if cl.get("redis_ca_file") and not cl.get("redis_url", "").startswith("rediss://"):
            bad += fail(f"{where}: cluster.redis_ca_file with {cl.get('redis_url')!r}: a Redis CA needs rediss://")
        if st.get("postgres_ca_file") and not (m and m.group(2) == "?sslmode=require"):
            bad += fail(f"{where}: storage.postgres_ca_file, but PIXELPARTY_POSTGRES_URL does not say sslmode=require (the file would be ignored)")
        if "PIXELPARTY_ADMIN_TOKEN" not in env:
            bad += fail(f"{name}: no PIXELPARTY_ADMIN_TOKEN (every node and Prometheus need the same token)")
        r_host, _ = url_host_port(cl.get("redis_url", ""))
        if r_host not in svcs or "private" not in networks_of(svcs[r_host]):
            bad += fail(f"{where}: cluster.redis_url {cl.get('redis_url')!r} names no service on the private network")
        for sect, key in (("storage", "backend"), ("webtransport", "enabled")):
            if cfg.get(sect, {}).get(key) != template.get(sect, {}).get(key):
                bad += fail(f"{where}: {sect}.{key} = {cfg.get(sect, {}).get(key)!r}, ops/cluster's template has {template.get(sect, {}).get(key)!r}")
        if cl.get("key_prefix", "pixelparty") != cluster_prefix:
            bad += fail(f"{where}: cluster.key_prefix {cl.get('key_prefix')!r}, ops/cluster's is {cluster_prefix!r}")
        # Backups: a target of the node's own, naming it; a directory on a mounted volume.
        target = cfg.get("backup", {}).get("target", "")
        if not target or not target.rstrip("/").endswith("/" + name):
            bad += fail(f"{where}: backup.target {target!r} does not end with the node's name (each node needs a target of its own)")
        elif not target.startswith("s3://"):
            vols = [v.split(":")[1] for v in svc.get("volumes", []) if isinstance(v, str) and len(v.split(":")) >= 2]
            if not any(target == v or target.startswith(v.rstrip("/") + "/") for v in vols):
                bad += fail(f"{where}: backup.target {target!r} is on no volume the node mounts ({vols})")
        missing_sections = set(template) - set(cfg)
        if missing_sections:
            bad += fail(f"{where}: sections of ops/cluster's template missing: {sorted(missing_sections)}")
        # WebTransport: the bind port is published (UDP), public_url names the host port.
        wt_port = int(wt.get("bind", "0:8443").rpartition(":")[2])
        udp = [(hp, cp) for _, hp, cp, proto in published(svc) if proto == "udp"]
        if wt.get("enabled", True):
            if [cp for _, cp in udp] != [wt_port]:
                bad += fail(f"{where}: WebTransport binds {wt_port}, the service publishes UDP {udp}")
            elif url_host_port(wt.get("public_url", ""))[1] != udp[0][0]:
                bad += fail(f"{where}: public_url {wt.get('public_url')!r} does not name the published port {udp[0][0]}")
        for _, _, cp, proto in published(svc):
            if proto != "udp":
                bad += fail(f"{name}: publishes TCP {cp}: HTTP goes through HAProxy, the admin port stays private")

    # The same settings on every node but the per-node keys.
    def shared(cfg):
        return {(s, k): v for s, t in cfg.items() for k, v in t.items() if (s, k) not in PER_NODE}

    first_name, first = next(iter(configs.items()))
    for name, cfg in configs.items():
        a, b = shared(first), shared(cfg)
        diff = sorted(f"{s}.{k}" for s, k in set(a) | set(b) if a.get((s, k)) != b.get((s, k)))
        if diff:
            bad += fail(f"{name}'s config differs from {first_name}'s in {', '.join(diff)} (only {sorted('.'.join(k) for k in PER_NODE)} may)")
    oks.append(f"{len(nodes)} node configs: node_id = service name, admin on the private address, trusted_proxies = [HAProxy {proxy_ip}], "
               f"PostgreSQL and Redis services, key prefix {cluster_prefix!r} and storage/webtransport as ops/cluster, "
               f"a backup target per node on a mounted volume, the same but per-node keys, CA files (if any) mounted")

    # HAProxy.
    cfg_path = mounted(haproxy, "/usr/local/etc/haproxy/haproxy.cfg")
    if not cfg_path:
        return fail("haproxy mounts no /usr/local/etc/haproxy/haproxy.cfg")
    tmpl = haproxy_sections(os.path.join(cluster_dir, "haproxy.cfg.template"))
    ours = haproxy_sections(cfg_path)
    for sect in ("global", "defaults", "frontend public", "backend nodes"):
        for line in tmpl.get(sect, []):
            if "@" in line or line.startswith("bind "):
                continue
            if line not in ours.get(sect, []):
                bad += fail(f"{os.path.relpath(cfg_path)} [{sect}]: missing `{line}` (ops/cluster/haproxy.cfg.template has it)")
    servers = [l.split() for l in ours.get("backend nodes", []) if l.startswith("server ")]
    want = {n: f"{networks_of(s)['private'].get('ipv4_address')}:{http_port}" for n, s in nodes.items()}
    got = {w[1]: w[2] for w in servers}
    if got != want:
        bad += fail(f"haproxy servers {got}, the nodes are {want}")
    for w in servers:
        if "port" not in w or w[w.index("port") + 1] != admin_port:
            bad += fail(f"haproxy server {w[1]}: not health-checked on the admin port {admin_port} (`port {admin_port}`)")
    binds = [l.split()[1] for l in ours.get("frontend public", []) if l.startswith("bind ")]
    pub = [cp for _, _, cp, proto in published(haproxy) if proto == "tcp"]
    if [b.rpartition(":")[2] for b in binds] != [str(p) for p in pub]:
        bad += fail(f"haproxy binds {binds}, the service publishes {pub}")
    oks.append(f"haproxy.cfg has every line of ops/cluster/haproxy.cfg.template's global, defaults, frontend public and backend nodes; "
               f"{len(servers)} servers = the nodes, checked on admin port {admin_port}")

    # Prometheus.
    prom_path = mounted(svcs["prometheus"], "/etc/prometheus/prometheus.yml")
    with open(prom_path, encoding="utf-8") as f:
        prom = yaml.safe_load(f)
    jobs = {sc["job_name"]: sc for sc in prom.get("scrape_configs", [])}
    sc = jobs.get("pixelparty")
    if not sc:
        bad += fail(f"{prom_path}: no job pixelparty (the alert rules select it)")
    else:
        targets = {t for st in sc.get("static_configs", []) for t in st.get("targets", [])}
        if targets != {f"{n}:{admin_port}" for n in nodes}:
            bad += fail(f"{prom_path}: targets {sorted(targets)}, the nodes' admin endpoints are {sorted(f'{n}:{admin_port}' for n in nodes)}")
        cred = sc.get("authorization", {}).get("credentials_file")
        if not cred or not mounted(svcs["prometheus"], cred):
            bad += fail(f"{prom_path}: credentials_file {cred} is not mounted into the prometheus service")
        for rf in prom.get("rule_files", []):
            if not mounted(svcs["prometheus"], rf):
                bad += fail(f"{prom_path}: rule file {rf} is not mounted")
    oks.append("prometheus.yml scrapes every node's admin endpoint with the mounted token and loads the mounted rules")
    if not bad:
        for o in oks:
            print(f"  ok {o}")
    return 1 if bad else 0


def compose_tls_copy(compose_path, out_dir, mount_ca=True, redis_scheme="rediss"):
    """A copy of the cluster compose directory switched to TLS as ops/README.md ("Compose
    (cluster)", "TLS") says: the nodes' PostgreSQL URL with ?sslmode=require, the CA mounted
    into each node at /etc/pixelparty/ca.pem (unless not mount_ca) and named in node<N>.toml
    as storage.postgres_ca_file and cluster.redis_ca_file, redis_url rediss://; Redis and
    PostgreSQL get the certificates (./tls) and their TLS flags. Returns the copy's compose
    file."""
    import yaml

    src = os.path.dirname(os.path.abspath(compose_path))
    shutil.copytree(src, out_dir, dirs_exist_ok=True)
    os.makedirs(os.path.join(out_dir, "tls"), exist_ok=True)
    for f in ("ca.pem", "server.pem", "server.key"):
        open(os.path.join(out_dir, "tls", f), "w").close()
    path = os.path.join(out_dir, os.path.basename(compose_path))
    with open(path, encoding="utf-8") as f:
        c = yaml.safe_load(f)  # merge keys (<<: *node) resolved
    c.pop("x-node", None)
    # The nodes share x-node's mappings (one object each after the merge): copy them apart.
    c["services"] = {n: json.loads(json.dumps(svc)) for n, svc in c["services"].items()}
    for name, svc in c["services"].items():
        vols = svc.get("volumes", [])
        if any(isinstance(v, str) and v.split(":")[1:2] == ["/etc/pixelparty.toml"] for v in vols):
            env = svc["environment"]
            env["PIXELPARTY_POSTGRES_URL"] += "?sslmode=require"
            if mount_ca:
                vols.append("./tls/ca.pem:/etc/pixelparty/ca.pem:ro")
            toml_path = os.path.normpath(os.path.join(out_dir, vols[0].split(":")[0]))
            with open(toml_path, encoding="utf-8") as f:
                text = f.read()
            text = text.replace('redis_url = "redis://', f'redis_url = "{redis_scheme}://')
            text = text.replace("[cluster]\n", '[cluster]\nredis_ca_file = "/etc/pixelparty/ca.pem"\n')
            text = text.replace("[storage]\n", '[storage]\npostgres_ca_file = "/etc/pixelparty/ca.pem"\n')
            with open(toml_path, "w", encoding="utf-8") as f:
                f.write(text)
    c["services"]["redis"]["command"] += ["--port", "0", "--tls-port", "6379", "--tls-cert-file", "/tls/server.pem",
                                          "--tls-key-file", "/tls/server.key", "--tls-ca-cert-file", "/tls/ca.pem",
                                          "--tls-auth-clients", "no"]
    c["services"]["postgres"]["command"] = ["postgres", "-c", "ssl=on", "-c", "ssl_cert_file=/tls/server.pem",
                                            "-c", "ssl_key_file=/tls/server.key"]
    c["services"]["redis"]["healthcheck"]["test"] = ["CMD", "redis-cli", "--tls", "--cacert", "/tls/ca.pem", "ping"]
    for name in ("redis", "postgres"):
        c["services"][name].setdefault("volumes", []).append("./tls:/tls:ro")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(c, f, sort_keys=False)
    return path


def cmd_compose_cluster_tls(compose_path, cluster_dir):
    """The cluster compose file switched to TLS as ops/README.md says (a copy) still agrees
    (cmd_compose_cluster), and the same switch with the CA not mounted, or with a Redis CA
    but a redis:// URL, does not."""
    bad = 0
    with tempfile.TemporaryDirectory(prefix="pixelparty-compose-tls-") as tmp:
        ok_copy = compose_tls_copy(compose_path, os.path.join(tmp, "tls"))
        out = subprocess.run([sys.executable, __file__, "compose-cluster", ok_copy, cluster_dir], capture_output=True, text=True)
        if out.returncode != 0:
            bad += fail(f"the compose cluster switched to TLS does not agree:\n{out.stdout}{out.stderr}")
        for what, kw in (("the CA not mounted", {"mount_ca": False}), ("a Redis CA with redis://", {"redis_scheme": "redis"})):
            broken = compose_tls_copy(compose_path, os.path.join(tmp, what.replace(" ", "-")), **kw)
            out = subprocess.run([sys.executable, __file__, "compose-cluster", broken, cluster_dir], capture_output=True, text=True)
            if out.returncode == 0:
                bad += fail(f"the compose cluster switched to TLS with {what} passes the agreement check")
    if not bad:
        print("  ok switched to TLS (rediss://, sslmode=require, the CA mounted and named): agrees; "
              "with the CA not mounted, or a Redis CA on redis://: refused")
    return 1 if bad else 0


def cmd_helm_tls(path, ca_secret=None, pg_key=None, redis_key=None):
    """TLS to the backends in a cluster-mode render: with CA_SECRET, every pod's config names
    /etc/pixelparty/ca/PG_KEY as storage.postgres_ca_file and /etc/pixelparty/ca/REDIS_KEY as
    cluster.redis_ca_file, and the pod mounts the Secret there read-only; the URLs of a
    chart-made Secret are rediss:// and sslmode=require. Without: no CA file, no such
    volume."""
    import base64

    docs = [d for d in load_yaml_all(path) if d]
    bad = 0
    sts = [d for d in docs if d["kind"] == "StatefulSet"]
    if len(sts) != 1:
        return fail(f"{len(sts)} StatefulSets")
    pod = sts[0]["spec"]["template"]["spec"]
    files = {}
    for d in docs:
        files.update(config_files(d))
    want_pg = f"/etc/pixelparty/ca/{pg_key}" if ca_secret and pg_key else None
    want_redis = f"/etc/pixelparty/ca/{redis_key}" if ca_secret and redis_key else None
    for key, text in sorted(files.items()):
        cfg = tomllib.loads(text)
        got = (cfg.get("storage", {}).get("postgres_ca_file"), cfg.get("cluster", {}).get("redis_ca_file"))
        if got != (want_pg, want_redis):
            bad += fail(f"{key}: (storage.postgres_ca_file, cluster.redis_ca_file) = {got}, expected {(want_pg, want_redis)}")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in pod["containers"][0].get("volumeMounts", [])}
    ca_vols = [v for v in vols.values() if v.get("secret", {}).get("secretName") == ca_secret] if ca_secret else []
    if ca_secret:
        if len(ca_vols) != 1:
            bad += fail(f"no single volume from the Secret {ca_secret}: {sorted(vols)}")
        else:
            m = mounts.get(ca_vols[0]["name"], {})
            if m.get("mountPath") != "/etc/pixelparty/ca" or not m.get("readOnly"):
                bad += fail(f"the CA Secret is not mounted read-only at /etc/pixelparty/ca: {m}")
        secrets = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-cluster")]
        for d in secrets:
            urls = {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
            if not urls.get("redis-url", "").startswith("rediss://") or "sslmode=require" not in urls.get("postgres-url", ""):
                bad += fail(f"the chart's Secret does not ask for TLS: {sorted(urls)}")
    elif "backends-ca" in vols or any(m.get("mountPath") == "/etc/pixelparty/ca" for m in mounts.values()):
        bad += fail("a CA volume without cluster.tls.caSecret")
    if not bad:
        if ca_secret:
            print(f"  ok {len(files)} configs name the CA files under /etc/pixelparty/ca, mounted read-only from the Secret {ca_secret}; "
                  f"the chart's Secret has rediss:// and sslmode=require")
        else:
            print(f"  ok {len(files)} configs without CA files, no CA volume")
    return 1 if bad else 0


def cmd_helm_cluster(path, replicas):
    """A cluster-mode render: the StatefulSet runs REPLICAS pods, each named by its pod name
    (PIXELPARTY_NODE_ID from metadata.name), the Redis and PostgreSQL URLs from a Secret, no
    volume claim (the data is in PostgreSQL), WebTransport off (not balanced across pods) and
    no UDP port on the public Service; a PodDisruptionBudget."""
    docs = [d for d in load_yaml_all(path) if d]
    bad = 0
    sts = [d for d in docs if d["kind"] == "StatefulSet"]
    if len(sts) != 1:
        return fail(f"{len(sts)} StatefulSets")
    spec = sts[0]["spec"]
    if spec.get("replicas") != replicas:
        bad += fail(f"replicas {spec.get('replicas')}, expected {replicas}")
    if spec.get("volumeClaimTemplates"):
        bad += fail("a volume claim per pod in cluster mode (the data is in PostgreSQL)")
    env = {e["name"]: e for e in spec["template"]["spec"]["containers"][0].get("env", [])}
    if env.get("PIXELPARTY_NODE_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        bad += fail("PIXELPARTY_NODE_ID is not the pod's name")
    for var in ("PIXELPARTY_REDIS_URL", "PIXELPARTY_POSTGRES_URL"):
        if "secretKeyRef" not in env.get(var, {}).get("valueFrom", {}):
            bad += fail(f"{var} does not come from a Secret")
    # One config per pod, <pod name>.toml, mounted by the pod's name; the same but for the
    # backup target (each pod's own prefix).
    name = sts[0]["metadata"]["name"]
    files = {}
    for d in docs:
        files.update(config_files(d))
    pods = {f"{name}-{i}.toml" for i in range(replicas)}
    if set(files) != pods:
        bad += fail(f"configs {sorted(files)}, expected one per pod: {sorted(pods)}")
    mounts = spec["template"]["spec"]["containers"][0].get("volumeMounts", [])
    mount = [m for m in mounts if m.get("name") == "config"]
    if not mount or mount[0].get("subPathExpr") != "$(PIXELPARTY_NODE_ID).toml" or "subPath" in mount[0]:
        bad += fail(f"the config is not mounted by the pod's name (subPathExpr $(PIXELPARTY_NODE_ID).toml): {mount}")
    parsed = {k: tomllib.loads(v) for k, v in files.items()}
    def without_target(c):
        c = json.loads(json.dumps(c))
        c.get("backup", {}).pop("target", None)
        return c
    if len({json.dumps(without_target(c), sort_keys=True) for c in parsed.values()}) > 1:
        bad += fail("the pods' configs differ in more than backup.target")
    targets = [c.get("backup", {}).get("target") for c in parsed.values()]
    if any(targets) and len(set(targets)) != len(targets):
        bad += fail(f"pods share a backup target (their retention would remove each other's backups): {targets}")
    cfg = parsed.get(f"{name}-0.toml", {})
    if cfg.get("storage", {}).get("backend") != "postgres":
        bad += fail("the config does not set storage.backend = \"postgres\"")
    if cfg.get("webtransport", {}).get("enabled", True):
        bad += fail("WebTransport is on in cluster mode (one Service cannot send a client's QUIC to the pod that issued its ticket)")
    svc = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == sts[0]["metadata"]["name"]]
    if svc and any(p.get("protocol") == "UDP" for p in svc[0]["spec"]["ports"]):
        bad += fail("the public Service carries UDP in cluster mode")
    if not [d for d in docs if d["kind"] == "PodDisruptionBudget"]:
        bad += fail("no PodDisruptionBudget")
    if not bad:
        print(f"  ok {replicas} pods, node id = pod name, URLs from a Secret, no volume claim, WebTransport off, a PodDisruptionBudget, "
              f"one config per pod mounted by its name (differing in the backup target only)")
    return 1 if bad else 0


def cmd_helm_backup(path, args):
    """[backup] of every config a render holds is what the values asked for; the S3
    credentials are environment variables from the named Secret, or absent."""
    opts = {"target": None, "interval": "0", "retain": "7", "endpoint": None, "region": None, "secret": None}
    allow_http = "--allow-http" in args
    session = "--session-token" in args
    args = [a for a in args if a not in ("--allow-http", "--session-token")]
    for k, v in zip(args[::2], args[1::2]):
        opts[k.lstrip("-")] = v
    docs = [d for d in load_yaml_all(path) if d]
    bad = 0
    sts = [d for d in docs if d["kind"] == "StatefulSet"]
    if len(sts) != 1:
        return fail(f"{len(sts)} StatefulSets")
    cluster = False
    files = {}
    for d in docs:
        files.update(config_files(d))
    if not files:
        return fail("no config in the render")
    for key, text in sorted(files.items()):
        b = tomllib.loads(text).get("backup")
        if b is None:
            bad += fail(f"{key}: no [backup]")
            continue
        node = "" if key == "pixelparty.toml" else key[: -len(".toml")]
        cluster = cluster or bool(node)
        want = {"interval_s": int(opts["interval"]), "retain": int(opts["retain"])}
        if opts["target"]:
            want["target"] = f"{opts['target'].rstrip('/')}/{node}" if node else opts["target"]
        if opts["endpoint"]:
            want["s3_endpoint"] = opts["endpoint"]
        if opts["region"]:
            want["s3_region"] = opts["region"]
        if allow_http:
            want["s3_allow_http"] = True
        if b != want:
            bad += fail(f"{key}: [backup] is {b}, expected {want}")
    env = {e["name"]: e for e in sts[0]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    aws = {n: e for n, e in env.items() if n.startswith("AWS_")}
    want_vars = set()
    if opts["secret"]:
        want_vars = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} | ({"AWS_SESSION_TOKEN"} if session else set())
    if set(aws) != want_vars:
        bad += fail(f"AWS_* variables {sorted(aws)}, expected {sorted(want_vars)}")
    for n, e in aws.items():
        ref = e.get("valueFrom", {}).get("secretKeyRef", {})
        if "value" in e or ref.get("name") != opts["secret"]:
            bad += fail(f"{n} does not come from the Secret {opts['secret']}: {e}")
    if not bad:
        where = f"{len(files)} per-pod configs, targets <target>/<pod name>" if cluster else "the config"
        creds = f"credentials from the Secret {opts['secret']} ({', '.join(sorted(aws))})" if opts["secret"] else "no AWS_* variables"
        print(f"  ok [backup] as asked in {where}; {creds}")
    return 1 if bad else 0


# --- the server ----------------------------------------------------------------------------


def free_tcp():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp():
    with socket.socket(type=socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, token=None, timeout=5, method="GET"):
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


class Server:
    """The real binary on free loopback ports with a fresh data directory."""

    def __init__(self, binary, config=None, extra_args=(), extra_env=None):
        self.binary = os.path.abspath(binary)
        self.config = os.path.abspath(config) if config else None
        self.extra_args = list(extra_args)
        self.extra_env = dict(extra_env or {})
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
        ] + self.extra_args
        # The files and flags decide, not variables of the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELPARTY_")}
        env.setdefault("RUST_LOG", "warn")
        env.update(self.extra_env)
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


class Backends:
    """What a node in cluster mode needs, private to this run: a redis-server of its own on a
    free loopback port (nothing on disk) and a fresh database on the local PostgreSQL (made
    through an admin URL, dropped at the end)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pixelparty-ops-backends-")
        self.redis = None
        self.admin_url = None
        self.db = f"pp_ops_check_{os.getpid()}_{int(time.time() * 1000) % 10**9}"

    @staticmethod
    def unavailable():
        """Why cluster-mode nodes cannot run here, or None."""
        if not shutil.which("redis-server"):
            return "redis-server not installed (Debian package redis-server)"
        if not shutil.which("psql"):
            return "psql not installed (Debian package postgresql-client; and a PostgreSQL on 127.0.0.1:5432)"
        if Backends.pg_admin_url() is None:
            return f"no PostgreSQL answers at {' or '.join(Backends.pg_admin_urls())} (.ci/postgres.sh starts one)"
        return None

    @staticmethod
    def pg_admin_urls():
        url = os.environ.get("PIXELPARTY_PG_ADMIN_URL")
        return [url] if url else PG_ADMIN_URLS

    @staticmethod
    def psql(url, sql, timeout=30):
        return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-tAc", sql],
                              capture_output=True, text=True, timeout=timeout)

    @staticmethod
    def pg_admin_url():
        for url in Backends.pg_admin_urls():
            try:
                if Backends.psql(url, "SELECT 1", timeout=10).returncode == 0:
                    return url
            except (OSError, subprocess.TimeoutExpired):
                pass
        return None

    def start(self):
        why = self.unavailable()
        if why:
            raise RuntimeError(why)
        port = free_tcp()
        self.redis_log = open(os.path.join(self.dir, "redis.log"), "wb")
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=self.redis_log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while True:
            if self.redis.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.redis.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("redis-server did not answer within 20 s")
            time.sleep(0.1)
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.admin_url = self.pg_admin_url()
        r = self.psql(self.admin_url, f"CREATE DATABASE {self.db}")
        if r.returncode != 0:
            self.admin_url = None
            raise RuntimeError(f"could not create database {self.db}: {r.stderr.strip()}")
        self.postgres_url = f"{self.admin_url.rsplit('/', 1)[0]}/{self.db}"
        return self

    def node_args(self, node_id=None):
        args = ["--postgres-url", self.postgres_url, "--redis-url", self.redis_url]
        return args + (["--node-id", node_id] if node_id else [])

    def stop(self):
        if self.redis and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(10)
            except subprocess.TimeoutExpired:
                self.redis.kill()
                self.redis.wait()
        if self.redis:
            self.redis_log.close()
        if self.admin_url:
            r = self.psql(self.admin_url, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
            if r.returncode != 0:
                print(f"  note: could not drop database {self.db}: {r.stderr.strip()}")
        shutil.rmtree(self.dir, ignore_errors=True)


def cmd_backends():
    why = Backends.unavailable()
    if why:
        print(why)
        return 1
    print(f"redis-server and PostgreSQL ({Backends.pg_admin_url()}) available")
    return 0


def cmd_server_config(binary, configs, cluster_configs=()):
    bad = 0
    backends = None
    try:
        if cluster_configs:
            try:
                backends = Backends().start()
            except RuntimeError as e:
                return fail(f"cluster backends: {e}")
        for cfg, cluster in [(c, False) for c in configs] + [(c, True) for c in cluster_configs]:
            dropped = []
            if cluster:
                # The run's plain Redis and PostgreSQL replace the config's URLs, and with them
                # go the CA files of TLS to those services (a Redis CA needs rediss://, a
                # PostgreSQL CA sslmode=require).
                with open(cfg, encoding="utf-8") as f:
                    lines = f.read().splitlines(keepends=True)
                ca_re = re.compile(r"^\s*(postgres_ca_file|redis_ca_file)\s*=")
                dropped = [l.split("=")[0].strip() for l in lines if ca_re.match(l)]
                if dropped:
                    cfg_run = os.path.join(tempfile.mkdtemp(prefix="pixelparty-ops-cfg-"), os.path.basename(cfg))
                    with open(cfg_run, "w", encoding="utf-8") as f:
                        f.writelines(l for l in lines if not ca_re.match(l))
            s = Server(binary, cfg_run if dropped else cfg, extra_args=backends.node_args() if cluster else ())
            try:
                s.start()
                mode = " in cluster mode (Redis and PostgreSQL URLs of this run" if cluster else ""
                mode += f"; without {', '.join(dropped)})" if dropped else (")" if cluster else "")
                print(f"  ok the server starts with {cfg}{mode} and answers /readyz")
            except RuntimeError as e:
                bad += fail(f"the server refuses {cfg}: {e}")
            finally:
                s.stop()
                if dropped:
                    shutil.rmtree(os.path.dirname(cfg_run), ignore_errors=True)
    finally:
        if backends:
            backends.stop()
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


def check_names(where, exprs, exported, unchecked=frozenset()):
    bad = 0
    used = set()
    for title, expr in exprs:
        for name in METRIC_RE.findall(expr):
            used.add(name)
            if name not in exported and name not in unchecked:
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


def run_prometheus(prom, prom_config, servers, exprs_dash, exprs_alert, alerts_path, unchecked=frozenset()):
    """Scrapes the live servers (one job, one target each, all with the first one's admin
    token) with the project's prometheus.yml (paths and targets rewritten to this run) and
    evaluates every expression."""
    import yaml

    work = tempfile.mkdtemp(prefix="pixelparty-ops-prom-")
    proc = None
    bad = 0
    try:
        with open(prom_config, encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
        token_file = os.path.join(work, "admin.token")
        with open(token_file, "w", encoding="utf-8") as f:
            f.write(servers[0].token())
        shutil.copy(alerts_path, os.path.join(work, "alerts.yml"))
        cfg["global"]["scrape_interval"] = "1s"
        cfg["global"]["evaluation_interval"] = "1s"
        cfg["rule_files"] = [os.path.join(work, "alerts.yml")]
        for sc in cfg["scrape_configs"]:
            if sc.get("job_name") == "pixelparty":
                sc["authorization"]["credentials_file"] = token_file
                sc["static_configs"] = [{"targets": [f"127.0.0.1:{s.admin_port}" for s in servers]}]
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
        # Wait for three scrapes of each server (rates need two samples).
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                with open(os.path.join(work, "prometheus.log"), "rb") as f:
                    tail = f.read()[-1500:].decode("utf-8", "replace")
                return fail(f"prometheus exited with {proc.returncode}: {tail}")
            try:
                r = prom_query(base, 'count_over_time(up{job="pixelparty"}[1m])')
                res = r.get("data", {}).get("result", [])
                if len(res) == len(servers) and all(float(x["value"][1]) >= 3 for x in res):
                    break
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            if time.time() > deadline:
                return fail(f"prometheus did not scrape the {len(servers)} server(s) three times within 60 s")
            time.sleep(0.5)
        r = prom_query(base, 'up{job="pixelparty"}')
        up = r["data"]["result"]
        if len(up) != len(servers) or any(x["value"][1] != "1" for x in up):
            bad += fail(f"prometheus could not scrape every server with prometheus.yml's bearer token: {up}")
        else:
            print(f"  ok a real Prometheus scraped /metrics of {len(servers)} server(s) with prometheus.yml's bearer token (up == 1)")
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
        # Panels of names no server here exports (cluster mode not run) cannot have data.
        skipped = {t for t, e in exprs_dash if set(METRIC_RE.findall(e)) and set(METRIC_RE.findall(e)) <= unchecked}
        for title in empty:
            if title not in skipped:
                bad += fail(f"dashboard '{title}': no data from the live server")
        if skipped:
            print(f"  note: NOT evaluated with data (no node in cluster mode): {', '.join(sorted(skipped))}")
        print(f"  ok {n - len(empty)} of {n} dashboard expressions return data from the live server(s)")
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
              + (f"; firing on idle servers: {', '.join(sorted(set(firing)))}" if firing else "; none firing on idle servers"))
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


def cmd_metrics(binary, dashboard, alerts, prom=None, prom_config=None, cluster=False):
    s = Server(binary)
    node = backends = None
    bad = 0
    try:
        s.start()
        # One public request, so that the HTTP latency histogram (per route requested) has a
        # series for the dashboard and the alert rules to read.
        http_get(f"{s.http}/canvas")
        # One backup through the admin endpoint (to the default <data>/backups), so that the
        # backup series have real values: this node's last success above 0, while the
        # cluster-mode node below has taken none (its gauge at 0), as after a start.
        status, body = http_get(f"{s.admin}/backup", token=s.token(), timeout=60, method="POST")
        manifest = json.loads(body)
        status, text = http_get(f"{s.admin}/metrics", token=s.token())
        if status != 200:
            return fail(f"/metrics answered {status}")
        values = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(pixelparty_backups?_[a-z_]+) (\S+)$", text, re.M)}
        want = {"pixelparty_backups_completed_total": 1, "pixelparty_backups_failed_total": 0,
                "pixelparty_backup_last_bytes": manifest["bytes"] if "bytes" in manifest else sum(f["bytes"] for f in manifest["files"]),
                "pixelparty_backup_last_success_timestamp_seconds": manifest["created_ms"] / 1000, "pixelparty_backup_interval_seconds": 0}
        wrong = {k: (values.get(k), v) for k, v in want.items() if values.get(k) != v}
        if wrong or not values.get("pixelparty_backup_last_duration_seconds", -1) >= 0:
            bad += fail(f"after POST /backup ({manifest['id']}), the backup metrics (got, expected): {wrong or values}")
        else:
            print(f"  ok POST /backup took backup {manifest['id']} ({int(want['pixelparty_backup_last_bytes'])} bytes, "
                  f"{values['pixelparty_backup_last_duration_seconds']} s); the backup metrics say so")
        try:
            http_get(f"{s.admin}/metrics")
            bad += fail("/metrics answered without the admin token")
        except urllib.error.HTTPError:
            pass
        exported = parse_metrics(text)
        print(f"  live /metrics: {len(exported)} metric names")
        if any(n.startswith(CLUSTER_PREFIX) for n in exported):
            bad += fail(f"the one-node server exports {CLUSTER_PREFIX}* series")
        if cluster:
            # A node in cluster mode, with the same admin token (one Prometheus job scrapes
            # both): its pixelparty_cluster_* series, and whatever else only that mode exports.
            backends = Backends().start()
            node = Server(binary, extra_args=backends.node_args("ops-check"),
                          extra_env={"PIXELPARTY_ADMIN_TOKEN": s.token()})
            node.start()
            http_get(f"{node.http}/canvas")
            status, text = http_get(f"{node.admin}/metrics", token=s.token())
            if status != 200:
                return fail(f"/metrics of the cluster-mode node answered {status}")
            node_exported = parse_metrics(text)
            names = sorted(n for n in node_exported if n.startswith(CLUSTER_PREFIX))
            print(f"  live /metrics of a node in cluster mode: {len(node_exported)} metric names, "
                  f"{len(names)} of them {CLUSTER_PREFIX}*")
            if not names:
                bad += fail(f"the cluster-mode node exports no {CLUSTER_PREFIX}* series")
            for n, kind in node_exported.items():
                if exported.get(n, kind) != kind:
                    bad += fail(f"{n} is a {exported[n]} on one node and a {kind} in cluster mode")
                exported.setdefault(n, kind)
        for b in PROM_BUILTINS:
            exported.setdefault(b, "gauge")
        d_exprs = dashboard_exprs(dashboard)
        a_exprs = alert_exprs(alerts)
        unchecked = set()
        if not cluster:
            # Without a cluster-mode node these names cannot be checked: say so, do not fail.
            def keep(exprs):
                for _, e in exprs:
                    unchecked.update(n for n in METRIC_RE.findall(e) if CLUSTER_ONLY_RE.match(n))
            keep(d_exprs)
            keep(a_exprs)
            keep(runbook_names(os.path.join(os.path.dirname(alerts), "RUNBOOK.md")))
        b1, used_d = check_names(f"dashboard {os.path.basename(dashboard)}", d_exprs, exported, unchecked)
        b2, used_a = check_names(f"alerts {os.path.basename(alerts)}", a_exprs, exported, unchecked)
        bad += b1 + b2
        if unchecked:
            print(f"  note: NOT checked (no node in cluster mode in this run, which alone exports them): {', '.join(sorted(unchecked))}")
        if not b1:
            print(f"  ok the dashboard's {len(d_exprs)} expressions use {len(used_d)} metric names, all exported" + (f" (but {len(used_d & unchecked)} not checked: above)" if used_d & unchecked else ""))
        if not b2:
            print(f"  ok the {len(a_exprs)} alert rules use {len(used_a)} metric names, all exported" + (f" (but {len(used_a & unchecked)} not checked: above)" if used_a & unchecked else ""))
        runbook = os.path.join(os.path.dirname(alerts), "RUNBOOK.md")
        cited = runbook_names(runbook)
        # Prose may name a histogram by its family: it exists when its series do.
        missing = [(w, n) for w, n in cited if n not in exported and f"{n}_bucket" not in exported and n not in unchecked]
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
            bad += run_prometheus(prom, prom_config, [s] + ([node] if node else []), d_exprs, a_exprs, alerts, unchecked)
    except RuntimeError as e:
        bad += fail(str(e))
    finally:
        if node:
            node.stop()
        if backends:
            backends.stop()
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
    if cmd == "compose-mounts":
        return cmd_compose_mounts(rest)
    if cmd == "compose-cluster":
        return cmd_compose_cluster(*rest)
    if cmd == "compose-cluster-tls":
        return cmd_compose_cluster_tls(*rest)
    if cmd == "helm-cluster":
        return cmd_helm_cluster(rest[0], int(rest[1]))
    if cmd == "helm-tls":
        return cmd_helm_tls(*rest)
    if cmd == "helm-backup":
        return cmd_helm_backup(rest[0], rest[1:])
    if cmd == "backends":
        return cmd_backends()
    if cmd == "server-config":
        cluster = []
        if "--cluster" in rest:
            i = rest.index("--cluster")
            rest, cluster = rest[:i], rest[i + 1:]
        return cmd_server_config(rest[0], rest[1:], cluster)
    if cmd == "metrics":
        prom = prom_config = None
        cluster = "--cluster" in rest
        rest = [a for a in rest if a != "--cluster"]
        if "--prometheus" in rest:
            i = rest.index("--prometheus")
            prom, prom_config = rest[i + 1], rest[i + 3]
            rest = rest[:i]
        return cmd_metrics(*rest, prom=prom, prom_config=prom_config, cluster=cluster)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
