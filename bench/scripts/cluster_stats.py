#!/usr/bin/env python3
"""Helpers of bench/scripts/cluster.sh (not run by hand).

  cluster_stats.py sample DIR          CPU sampler: every 0.25 s appends one JSON line to
                                       DIR/samples.jsonl (see `sample` below) until DIR/stop
  cluster_stats.py stamp               copies stdin to stdout, each line prefixed with the
                                       Unix time in ms (the bench's progress lines)
  cluster_stats.py record ...          enriches the bench's last JSON line(s) with the
                                       cluster's CPU and appends it to the results file
  cluster_stats.py table RESULTS LABEL prints the Markdown table of a run

CPU is read from /proc/<pid>/stat (utime + stime) per process, keyed by (pid, start time),
so that a process that exits keeps what it used and a pid reused is a new process. Groups:
  nodes     the pids listed in DIR/pids/nodes (pixelparty nodes or socket.io processes)
  haproxy   every process named haproxy
  redis     the pids in DIR/pids/redis
  postgres  every process named postgres (backends that come and go included)
  client    every process named pixelparty-bench
  machine   the whole machine's busy CPU (/proc/stat; steal included), and steal alone;
            a window's `others` is the machine less the groups above
  builds    (a count, not CPU) processes named cargo or rustc: a build during a measurement
"""
import json
import os
import sys
import time

TICK = 0.25
HZ = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """(comm, start_ticks, cpu_seconds) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1 : s.rindex(")")]
    fields = s[s.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, starttime 22.
    return comm, int(fields[19]), (int(fields[11]) + int(fields[12])) / HZ


def read_pids(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split() if x.isdigit()]
    except OSError:
        return []


def sample(d):
    boot_ticks_now = None
    seen = {}  # group -> {(pid, start): [first, last]}
    started = time.time()
    # Processes that started after the sampler count from zero, not from their first sight.
    with open("/proc/uptime") as f:
        sampler_start_ticks = float(f.read().split()[0]) * HZ
    out = open(os.path.join(d, "samples.jsonl"), "a", buffering=1)
    n = 0
    while not os.path.exists(os.path.join(d, "stop")) and time.time() - started < 4 * 3600:
        t = time.time()
        by_group = {"nodes": [], "redis": [], "haproxy": [], "postgres": [], "client": []}
        for p in read_pids(os.path.join(d, "pids", "nodes")):
            by_group["nodes"].append(p)
        for p in read_pids(os.path.join(d, "pids", "redis")):
            by_group["redis"].append(p)
        builds = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm == "haproxy":
                by_group["haproxy"].append(int(name))
            elif comm == "postgres":
                by_group["postgres"].append(int(name))
            elif comm.startswith("pixelparty-benc"):
                by_group["client"].append(int(name))
            elif comm in ("cargo", "rustc"):
                builds += 1
        cpu = {}
        for g, pids in by_group.items():
            table = seen.setdefault(g, {})
            for p in pids:
                st = proc_stat(p)
                if st is None:
                    continue
                key = (p, st[1])
                if key not in table:
                    first = 0.0 if st[1] > sampler_start_ticks else st[2]
                    table[key] = [first, st[2]]
                table[key][1] = st[2]
            cpu[g] = round(sum(last - first for first, last in table.values()), 3)
        # The whole machine: busy (everything but idle and iowait, steal included) and what
        # the hypervisor took (steal), in CPU seconds since boot.
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        cpu["machine"] = round((v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / HZ, 3)
        cpu["steal"] = round(v[7] / HZ, 3)
        fds = None
        if os.path.exists(os.path.join(d, "count-fds")):
            fds = {}
            for p in by_group["nodes"]:
                try:
                    fds[str(p)] = len(os.listdir(f"/proc/{p}/fd"))
                except OSError:
                    pass
        out.write(json.dumps({"t": round(t * 1000), "cpu": cpu, "builds": builds, "fds": fds}) + "\n")
        n += 1
        time.sleep(max(0.0, TICK - (time.time() - t)))


def stamp():
    for line in sys.stdin:
        sys.stdout.write(f"{round(time.time() * 1000)} {line}")
        sys.stdout.flush()


def load_samples(d):
    rows = []
    with open(os.path.join(d, "samples.jsonl")) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass  # a line being written
    return rows


def at(rows, t, group):
    """The group's CPU seconds at time t (ms), interpolated between samples."""
    prev = None
    for r in rows:
        if r["t"] >= t:
            if prev is None:
                return r["cpu"].get(group, 0.0)
            a, b = prev["cpu"].get(group, 0.0), r["cpu"].get(group, 0.0)
            span = r["t"] - prev["t"]
            return a + (b - a) * ((t - prev["t"]) / span if span else 1.0)
        prev = r
    return prev["cpu"].get(group, 0.0) if prev else 0.0


def window(d, t0, t1):
    """CPU cores of each group between t0 and t1 (ms), and whether a build ran."""
    rows = load_samples(d)
    secs = max((t1 - t0) / 1000, 1e-3)
    groups = ("nodes", "haproxy", "redis", "postgres", "client", "machine", "steal")
    cores = {g: round((at(rows, t1, g) - at(rows, t0, g)) / secs, 2) for g in groups}
    # Whatever else ran: the machine's busy cores less the groups (less the sampler itself).
    cores["others"] = round(max(cores["machine"] - sum(cores[g] for g in groups[:5]), 0.0), 2)
    builds = max((r["builds"] for r in rows if t0 <= r["t"] <= t1), default=0)
    return {"window_s": round(secs, 2), "cores": cores, "build_processes_seen": builds}


def max_fds(d, t0, t1):
    """Most file descriptors the nodes held together between t0 and t1, and per node."""
    best, per = 0, {}
    for r in load_samples(d):
        if t0 <= r["t"] <= t1 and r.get("fds"):
            s = sum(r["fds"].values())
            if s > best:
                best, per = s, r["fds"]
    return best, per


def first_send_ms(stamps, tag, rate):
    """When sending started (ms): from the first stamped progress line of `tag` that shows
    something sent, its time less sent / offered `rate`; None when no line does."""
    with open(stamps) as f:
        for line in f:
            t, _, text = line.partition(" ")
            if text.startswith(tag) and " sent " in text:
                sent = int(text.split(" sent ")[1].split()[0])
                if sent > 0:
                    return int(t) - 1000 * sent / rate
    return None


def last_lines(path, n):
    with open(path) as f:
        lines = [l for l in f if l.strip()]
    return [json.loads(l) for l in lines[-n:]]


def append(results, record):
    with open(results, "a") as f:
        f.write(json.dumps(record, separators=(",", ":")) + "\n")


def record(argv):
    """record KIND DIR RAW RESULTS [args]: see cluster.sh."""
    kind, d, raw, results = argv[:4]
    rest = argv[4:]
    meta = json.loads(os.environ.get("CLUSTER_META", "{}"))
    if kind == "sat":
        # rest: stamp file, seconds per step (duration + drain)
        stamps, step_s = rest[0], float(rest[1])
        r = last_lines(raw, 1)[0]
        steps = []
        with open(stamps) as f:
            for line in f:
                t, _, text = line.partition(" ")
                if text.startswith("[sat] offered"):
                    steps.append(int(t))
        for s, t in zip(r.get("steps", []), steps):
            s["cluster_cpu"] = window(d, t - step_s * 1000, t)
        best = [s for s in r.get("steps", []) if s.get("sustained")]
        r["cluster_cpu_best"] = best[-1].get("cluster_cpu") if best else None
        r["cluster"] = meta
        append(results, r)
        print(json.dumps({"best_deliveries_per_s": (r.get("best") or {}).get("deliveries_per_s"), "cpu": r["cluster_cpu_best"]}))
    elif kind == "paint":
        # rest: stamp file; the window is estimated from the first progress line that shows
        # paints sent (its time minus sent / offered rate) and the duration
        r = last_lines(raw, 1)[0]
        t_start = first_send_ms(rest[0], "[paint]", r["offered_paints_per_s"])
        if t_start is not None:
            dur = r["accepted"] / max(r["accepted_per_s"], 1e-9) if r["accepted_per_s"] else 0
            r["cluster_cpu"] = window(d, t_start, t_start + 1000 * dur)
        r["cluster"] = meta
        append(results, r)
    elif kind == "chat":
        # rest: stamp file; the sending window is estimated as for paint, from the first
        # progress line that shows messages sent
        r = last_lines(raw, 1)[0]
        t_start = first_send_ms(rest[0], "[chat]", r["offered_msgs_per_s"])
        if t_start is not None:
            r["cluster_cpu"] = window(d, t_start, t_start + 1000 * r["sent"] / r["offered_msgs_per_s"])
        r["cluster"] = meta
        append(results, r)
    elif kind == "idle":
        # rest: processes, t0, t1 (ms), baseline fds of the nodes
        n, t0, t1, base = int(rest[0]), int(rest[1]), int(rest[2]), int(rest[3])
        rs = last_lines(raw, n)
        for i, r in enumerate(rs):
            r["cluster"] = dict(meta, process=i + 1, processes=n)
            append(results, r)
        held, per = max_fds(d, t0, t1)
        total = {
            "scenario": "cluster-idle",
            "target": rs[0]["target"] if rs else None,
            "label": rs[0]["label"] if rs else None,
            "time_ms": round(time.time() * 1000),
            "processes": n,
            "connections_opened": sum(r["connections"] for r in rs),
            "errors": sum(r["errors"] for r in rs),
            "connect_seconds_max": max((r["connect_seconds"] for r in rs), default=None),
            "connects_per_s": round(sum(r["connections"] for r in rs) / max(max((r["connect_seconds"] for r in rs), default=1), 1e-6), 2),
            "held_at_once_by_fds": max(held - base, 0),
            "node_fds_at_peak": per,
            "node_fds_baseline": base,
            "server_bytes_per_idle_connection_by_node": [r.get("server_bytes_per_idle_connection") for r in rs],
            "server_rss_held_mib_by_node": [r.get("server_rss_held_mib") for r in rs],
            "client_cpu_cores_by_process": [r.get("client_cpu_cores") for r in rs],
            "cluster_cpu": window(d, t0, t1),
            "cluster": meta,
        }
        append(results, total)
        print(json.dumps({k: total[k] for k in ("connections_opened", "errors", "held_at_once_by_fds", "connects_per_s")}))
    elif kind == "raw":
        # rest: how many of the last records to append as they are
        for r in last_lines(raw, int(rest[0])):
            r["cluster"] = meta
            append(results, r)
    elif kind == "json":
        # rest: one JSON object to append (the catch-up result) [, t0, t1: its CPU window]
        r = json.loads(rest[0])
        if len(rest) >= 3:
            r["cluster_cpu"] = window(d, int(rest[1]), int(rest[2]))
        r["cluster"] = meta
        append(results, r)
    else:
        sys.exit(f"unknown kind {kind}")


def fmt(v, digits=2):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return str(v)


def ratio(a, b, higher_is_better=True):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not a or not b:
        return "—"
    return f"{(a / b if higher_is_better else b / a):.1f}×"


def table(results, label):
    rows = [json.loads(l) for l in open(results) if l.strip()]
    rows = [r for r in rows if r.get("label") == label]

    def last(scenario, target, phase=""):
        m = [
            r
            for r in rows
            if r.get("scenario") == scenario
            and r.get("target") == target
            and str((r.get("cluster") or {}).get("phase", "")).startswith(phase)
        ]
        return m[-1] if m else None

    out = []
    pp_sat, io_sat = last("sat", "pixelparty"), last("sat", "socketio")
    pp_idle, io_idle = last("cluster-idle", "pixelparty"), last("cluster-idle", "socketio")

    def sat_fields(r):
        if not r:
            return {}
        b = r.get("best") or {}
        c = (r.get("cluster_cpu_best") or {}).get("cores", {})
        first = (r.get("steps") or [{}])[0]
        return {
            # No step sustained: below the first step's rate, with its p99.
            "rate": b.get("deliveries_per_s") if b else f"< {fmt(first.get('deliveries_per_s'))}",
            "p99": (b.get("latency") or {}).get("p99_ms") if b else f"({fmt(first.get('p99_ms'))} at that rate)",
            "nodes": c.get("nodes"),
            "haproxy": c.get("haproxy"),
            "redis": c.get("redis"),
            "postgres": c.get("postgres"),
            "client": b.get("client_cpu_cores"),
            "others": c.get("others"),
            "gaps": (b.get("gaps", 0) or 0) + (b.get("duplicates", 0) or 0) if b else None,
            "build": (r.get("cluster_cpu_best") or {}).get("build_processes_seen"),
        }

    def idle_fields(r):
        if not r:
            return {}
        per = [x for x in r.get("server_bytes_per_idle_connection_by_node") or [] if x is not None]
        return {
            "opened": r.get("connections_opened"),
            "held": r.get("held_at_once_by_fds"),
            "errors": r.get("errors"),
            "cps": r.get("connects_per_s"),
            "bytes": sum(per) / len(per) if per else None,
        }

    ps, ios = sat_fields(pp_sat), sat_fields(io_sat)
    pi, ioi = idle_fields(pp_idle), idle_fields(io_idle)
    pp_chat, io_chat = last("chat", "pixelparty"), last("chat", "socketio")

    def chat_fields(r):
        if not r:
            return {}
        c = (r.get("cluster_cpu") or {}).get("cores", {})
        return {
            "rate": r.get("deliveries_per_s"),
            "p50": (r.get("latency") or {}).get("p50_ms"),
            "p99": (r.get("latency") or {}).get("p99_ms"),
            "sent": r.get("sent"),
            "nodes": c.get("nodes"),
            "haproxy": c.get("haproxy"),
            "client": c.get("client"),
            "others": c.get("others"),
            "gaps": (r.get("gaps") or 0) + (r.get("duplicates") or 0),
        }

    pc, ioc = chat_fields(pp_chat), chat_fields(io_chat)
    offered = (pp_chat or io_chat or {}).get("offered_msgs_per_s")
    out.append("| measure | pixelparty cluster | socket.io cluster | pixelparty vs socket.io |")
    out.append("|---|---:|---:|---:|")
    lines = [
        ("sat: best deliveries/s with p99 ≤ 50 ms", ps.get("rate"), ios.get("rate"), True),
        ("sat: p99 ms at that rate", ps.get("p99"), ios.get("p99"), False),
        ("sat: server CPU cores at that rate (3 nodes summed)", ps.get("nodes"), ios.get("nodes"), False),
        ("sat: HAProxy CPU cores", ps.get("haproxy"), ios.get("haproxy"), False),
        ("sat: Redis CPU cores", ps.get("redis"), ios.get("redis"), False),
        ("sat: PostgreSQL CPU cores", ps.get("postgres"), ios.get("postgres"), False),
        ("sat: client CPU cores (one process)", ps.get("client"), ios.get("client"), False),
        ("sat: CPU cores of anything else on the machine", ps.get("others"), ios.get("others"), None),
        ("sat: gaps + duplicates at that rate", ps.get("gaps"), ios.get("gaps"), None),
        (f"chat at {fmt(offered)} msgs/s offered: deliveries/s", pc.get("rate"), ioc.get("rate"), True),
        ("chat: messages sent (of the offered)", pc.get("sent"), ioc.get("sent"), True),
        ("chat: p50 ms", pc.get("p50"), ioc.get("p50"), False),
        ("chat: p99 ms", pc.get("p99"), ioc.get("p99"), False),
        ("chat: server CPU cores (3 nodes summed)", pc.get("nodes"), ioc.get("nodes"), False),
        ("chat: HAProxy CPU cores", pc.get("haproxy"), ioc.get("haproxy"), False),
        ("chat: client CPU cores", pc.get("client"), ioc.get("client"), False),
        ("chat: CPU cores of anything else on the machine", pc.get("others"), ioc.get("others"), None),
        ("chat: gaps + duplicates", pc.get("gaps"), ioc.get("gaps"), None),
        ("idle: connections opened (3 client processes, straight to the 3 nodes)", pi.get("opened"), ioi.get("opened"), True),
        ("idle: connections held at once (the nodes' open files, less their baseline)", pi.get("held"), ioi.get("held"), True),
        ("idle: connect errors", pi.get("errors"), ioi.get("errors"), None),
        ("idle: connects/s (all processes)", pi.get("cps"), ioi.get("cps"), True),
        ("idle: server bytes per idle connection (mean of the nodes)", pi.get("bytes"), ioi.get("bytes"), False),
    ]
    for name, a, b, hib in lines:
        out.append(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio(a, b, hib) if hib is not None else '—'} |")
    paint = last("paint", "pixelparty", "paint through haproxy")
    catch = last("cluster-catchup", "pixelparty")
    out.append("")
    out.append("| pixelparty cluster only | value |")
    out.append("|---|---:|")
    if paint:
        c = (paint.get("cluster_cpu") or {}).get("cores", {})
        lat = paint.get("paint_to_receipt") or {}
        out.append(f"| paint: accepted paints/s (offered {fmt(paint.get('offered_paints_per_s'))}) | {fmt(paint.get('accepted_per_s'))} |")
        out.append(f"| paint: pixel deliveries/s | {fmt(paint.get('pixel_deliveries_per_s'))} |")
        out.append(f"| paint: paint-to-screen p50 / p99 ms (subscribers on every node) | {fmt(lat.get('p50_ms'))} / {fmt(lat.get('p99_ms'))} |")
        ack = paint.get("paint_to_ack") or {}
        out.append(f"| paint: paint-to-ack p50 / p99 ms | {fmt(ack.get('p50_ms'))} / {fmt(ack.get('p99_ms'))} |")
        out.append(f"| paint: subscribers converged | {fmt(paint.get('converged'))} |")
        out.append(f"| paint: CPU cores, nodes / HAProxy / Redis / PostgreSQL / client / anything else | {fmt(c.get('nodes'))} / {fmt(c.get('haproxy'))} / {fmt(c.get('redis'))} / {fmt(c.get('postgres'))} / {fmt(c.get('client'))} / {fmt(c.get('others'))} |")
    if catch:
        out.append(f"| catch-up: node SIGKILLed under {fmt(catch.get('paint_load_offered_per_s'))} paints/s, down {fmt(catch.get('down_s'))} s; restart to ready, s | {fmt(catch.get('ready_s'))} |")
        out.append(f"| catch-up: restart to canvas at the cluster's head, s | {fmt(catch.get('caught_up_s'))} |")
        out.append(f"| catch-up: updates replayed from the journal at start / filled from PostgreSQL after | {fmt(catch.get('replayed_at_start'))} / {fmt(catch.get('gap_fill_updates'))} |")
        out.append(f"| catch-up: head moved while it was down (updates) | {fmt(catch.get('missed_updates'))} |")
    builds = [x.get("build") for x in (ps, ios) if x]
    print("\n".join(out))
    print()
    print("build processes seen during the best sat steps: " + ", ".join(fmt(b) for b in builds))


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "sample":
        sample(sys.argv[2])
    elif cmd == "stamp":
        stamp()
    elif cmd == "record":
        record(sys.argv[2:])
    elif cmd == "table":
        table(sys.argv[2], sys.argv[3])
    elif cmd == "window":
        print(json.dumps(window(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
