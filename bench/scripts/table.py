#!/usr/bin/env python3
"""Prints the side-by-side results table (markdown) for one label of bench/results.jsonl."""
import json
import sys

path, label = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path) if l.strip()]
rows = [r for r in rows if r.get("label") == label]
by = {}
for r in rows:
    by[(r["scenario"], r["target"])] = r  # the last run of each wins

def get(scenario, target, *keys):
    r = by.get((scenario, target))
    for k in keys:
        if r is None:
            return None
        r = r.get(k) if isinstance(r, dict) else None
    return r

def fmt(v, unit=""):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        if abs(v) >= 1e6:
            return f"{v/1e6:.2f} M{unit}"
        if abs(v) >= 1e4:
            return f"{v/1e3:.1f} k{unit}"
        return f"{v:.2f}{unit}" if isinstance(v, float) and v < 100 else f"{v:.0f}{unit}"
    return str(v)

def ratio(a, b, lower_is_better=False):
    if not a or not b:
        return "—"
    return f"{(b / a) if lower_is_better else (a / b):.1f}×"

metrics = [
    ("idle: server bytes per idle connection", "idle", ("server_bytes_per_idle_connection",), True),
    ("idle: connections held", "idle", ("connections",), False),
    ("idle: connects/s", "idle", ("connects_per_s",), False),
    ("chat: deliveries/s (fixed rate)", "chat", ("deliveries_per_s",), False),
    ("chat: p99 latency ms (fixed rate)", "chat", ("latency", "p99_ms"), True),
    ("chat: gaps + duplicates", "chat", ("gaps",), True),
    ("sat: best deliveries/s with p99 ≤ 50 ms", "sat", ("best", "deliveries_per_s"), False),
    ("sat: p99 ms at that rate", "sat", ("best", "latency", "p99_ms"), True),
    ("sat: server CPU cores at that rate", "sat", ("best", "server_cpu_cores"), True),
    ("sat: client CPU cores at that rate", "sat", ("best", "client_cpu_cores"), True),
]
print(f"Results `{label}`\n")
print("| measure | pixelparty (WebSocket) | pixelparty (WebTransport) | socket.io | ws | pixelparty vs socket.io | pixelparty vs ws |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, scen, keys, lower in metrics:
    p, pw, s, w = (get(scen, t, *keys) for t in ("pixelparty", "pixelparty-wt", "socketio", "ws"))
    print(f"| {name} | {fmt(p)} | {fmt(pw)} | {fmt(s)} | {fmt(w)} | {ratio(p, s, lower)} | {ratio(p, w, lower)} |")
print()
print("| pixelparty only | WebSocket | WebTransport |")
print("|---|---:|---:|")
for name, scen, keys in [
    ("paint: accepted paints/s", "paint", ("accepted_per_s",)),
    ("paint: pixel deliveries/s", "paint", ("pixel_deliveries_per_s",)),
    ("paint: paint-to-screen p50 ms", "paint", ("paint_to_receipt", "p50_ms")),
    ("paint: paint-to-screen p99 ms", "paint", ("paint_to_receipt", "p99_ms")),
    ("paint: subscribers converged", "paint", ("converged",)),
    ("snapshot: requests/s", "snapshot", ("requests_per_s",)),
    ("snapshot: p99 ms", "snapshot", ("latency", "p99_ms")),
    ("snapshot: bytes per response", "snapshot", ("bytes_per_response",)),
    ("login: sign-ups + logins/s", "login", ("operations_per_s",)),
    ("login: login p99 ms", "login", ("login_latency", "p99_ms")),
    ("login: ping p99 ms during the flood", "login", ("ping_during_flood", "p99_ms")),
]:
    print(f"| {name} | {fmt(get(scen, 'pixelparty', *keys))} | {fmt(get(scen, 'pixelparty-wt', *keys))} |")
