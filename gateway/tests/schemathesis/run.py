#!/usr/bin/env python3
"""Checks the running server against its OpenAPI documents with schemathesis.

Starts the real `pixelparty serve` binary on free loopback ports with a fresh data directory
and a config made for the run (below), creates an administrator and a second user through the
API, then runs schemathesis against the public document (`GET /openapi.json`) and the admin
endpoint's (`GET /openapi.json` on the admin listener). Exits non-zero when a check fails, the
server dies, or its log shows a panic. Standard library only; schemathesis is a command.

  run.py --bin target/debug/pixelparty --schemathesis "python3 -m schemathesis.cli" [--max-examples N] [--seed S]

The config differs from the defaults where the defaults would make the run test something
else: login, sign-up and room-creation rate limits are lifted (schemathesis sends thousands of
requests from one address and would see mostly 429), argon2 runs at a tiny cost (a sign-up per
generated body), durability is `none` (no fsync per write), the canvas is small, and
WebTransport listens on a free UDP port so that `POST /wt/ticket` can succeed.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ADMIN_TOKEN = "schemathesis-admin-token"
PASSWORD = "correct horse battery"

# The checks that apply to both documents. Left out: positive_data_acceptance (a valid body
# naming a user that does not exist is rightly a 404), use_after_free and
# ensure_resource_availability (they need OpenAPI links, which the documents do not declare),
# object_level_authorization (needs a second identity per operation).
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
    "unsupported_method",
    "allow_header_conformance",
]
# The admin endpoint answers a known path with another method by 405 and `Allow`, like the
# public API: every check applies to it.
ADMIN_EXCLUDED: set = set()


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None, token=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Server:
    """The binary on free loopback ports, with its own data directory and config file."""

    def __init__(self, binary):
        self.binary = os.path.abspath(binary)
        self.dir = tempfile.mkdtemp(prefix="pixelparty-schemathesis-")
        self.proc = None

    def start(self):
        http, admin = free_port(), free_port()
        while admin == http:
            admin = free_port()
        self.http = f"http://127.0.0.1:{http}"
        self.admin = f"http://127.0.0.1:{admin}"
        config = os.path.join(self.dir, "pixelparty.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(
                "\n".join(
                    [
                        "[server]",
                        f'http = "127.0.0.1:{http}"',
                        f'admin = "127.0.0.1:{admin}"',
                        f'admin_token = "{ADMIN_TOKEN}"',
                        f"data_dir = {json.dumps(os.path.join(self.dir, 'data'))}",
                        "shards = 2",
                        "",
                        "[canvas]",
                        "width = 256",
                        "height = 256",
                        "tile_size = 64",
                        "",
                        "[auth]",
                        "login_per_ip_per_min = 1000000",
                        "login_per_account_per_min = 1000000",
                        "signup_per_ip_per_hour = 1000000",
                        "argon2_m_kib = 64",
                        "argon2_t = 1",
                        "",
                        "[limits]",
                        "room_creates_per_user_per_hour = 1000000",
                        "",
                        "[storage]",
                        'durability = "none"',
                        "",
                        "[webtransport]",
                        f'bind = "127.0.0.1:{free_port(socket.SOCK_DGRAM)}"',
                        "",
                    ]
                )
            )
        # The config file decides, not variables of the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELPARTY_")}
        env.setdefault("RUST_LOG", "warn")
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", config], cwd=self.dir, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.admin}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready within 30 s: {self.log_tail()}")

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self):
        return self.log_text()[-3000:]

    def stop(self, keep=False):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        if keep:
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def user(server, name, admin=False):
    """Signs a user up (and promotes it): its session token."""
    status, body = call("POST", f"{server.http}/signup", {"username": name, "password": PASSWORD})
    if status != 201:
        raise RuntimeError(f"sign-up of {name}: {status} {body}")
    if admin:
        # The role is read on every request: the token of the sign-up is an admin's from now.
        status, answer = call("POST", f"{server.admin}/users/role", {"username": name, "role": "admin"}, ADMIN_TOKEN)
        if status != 200:
            raise RuntimeError(f"promoting {name}: {status} {answer}")
    return body["token"]


def schemathesis(command, title, schema_url, auth, extra, args, workdir, excluded=()):
    """Runs schemathesis; `auth` is `(security scheme, token)`: given to schemathesis per scheme
    (not as a fixed header) so that its `ignored_auth` check can take it away again."""
    scheme, token = auth
    config = os.path.join(workdir, f"schemathesis-{scheme}.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"[auth.openapi.{scheme}]\nbearer = {json.dumps(token)}\n")
    checks = ",".join(c for c in CHECKS if c not in excluded)
    cmd = [
        *command,
        "--config-file",
        config,
        "run",
        schema_url,
        "--checks",
        checks,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        "--workers",
        "1",
        "--request-timeout",
        "15",
        "--generation-database",
        "none",
        *extra,
    ]
    print(f"\n--- {title}: {' '.join(shlex.quote(c) for c in cmd[len(command) :])}", flush=True)
    started = time.time()
    # In the run's directory: schemathesis and hypothesis leave caches where they run.
    code = subprocess.run(cmd, check=False, cwd=workdir).returncode
    print(f"--- {title}: exit {code} in {time.time() - started:.0f} s", flush=True)
    return code


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the pixelparty binary")
    ap.add_argument("--schemathesis", required=True, help="command that runs the schemathesis CLI")
    ap.add_argument("--max-examples", type=int, default=50, help="examples per operation and phase (default 50)")
    ap.add_argument("--seed", type=int, default=20260101, help="hypothesis seed (default fixed)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory and server log")
    args = ap.parse_args()
    command = shlex.split(args.schemathesis)

    server = Server(args.bin)
    failed, passed = [], 0
    try:
        server.start()
        admin = user(server, "st_admin", admin=True)
        leaving = user(server, "st_leaving")
        # Something for the history and inspector routes to find.
        call("POST", f"{server.http}/rooms", {"name": "lobby"}, admin)

        runs = [
            # Everything but logout, as an administrator (so moderation routes answer more than 403).
            ("public API", f"{server.http}/openapi.json", ("bearer", admin), ["--exclude-path", "/logout"], ()),
            # Logout ends the session it is sent with: its own user, last.
            ("public API, logout", f"{server.http}/openapi.json", ("bearer", leaving), ["--include-path", "/logout"], ()),
            ("admin API", f"{server.admin}/openapi.json", ("admin_token", ADMIN_TOKEN), [], ADMIN_EXCLUDED),
        ]
        for title, url, auth, extra, excluded in runs:
            if schemathesis(command, title, url, auth, extra, args, server.dir, excluded) != 0:
                failed.append(title)
            else:
                passed += 1
            if server.proc.poll() is not None:
                failed.append(f"server exited with {server.proc.returncode} during {title}")
                break
        log = server.log_text()
        if "panicked" in log:
            failed.append("the server log shows a panic")
            print(log[-3000:])
    except RuntimeError as e:
        failed.append(str(e))
    finally:
        server.stop(keep=args.keep or bool(failed))

    print(f"\nschemathesis runs: {passed} passed, {len(failed)} failed")
    if failed:
        print(f"schemathesis: FAILED: {'; '.join(failed)}")
        return 1
    print("schemathesis: every check passed on both documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
