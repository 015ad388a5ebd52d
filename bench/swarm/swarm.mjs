// Browser swarm: N real headless Chromium pages (playwright-core, Debian's /usr/bin/chromium)
// paint and chat through the real web client against the real server binary, with
// human-shaped timing, and what the pages saw is measured on the pages. See README.md.
//
// Run through run.sh (it installs what is missing and picks the binary):
//   bench/swarm/run.sh --pages 25 --duration 60
//   SWARM_SMOKE=1 bench/swarm/run.sh          # 3 pages, 10 s, asserts that paints and
//                                             # messages crossed between pages (exit 1 if not)
//
// Environment: PIXELPARTY_BIN (server binary, required), CHROMIUM_PATH (default
// /usr/bin/chromium), SWARM_SMOKE=1.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync, openSync, closeSync, appendFileSync, existsSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../..");
const SMOKE = process.env.SWARM_SMOKE === "1";
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const PASSWORD = "correct horse battery";
const ADMIN_TOKEN = "swarm-admin-token";
const BLOCK = 8; // each painter owns an 8×8 block (64 pixels)

const HELP = `usage: run.sh [options]          (SWARM_SMOKE=1: 3 pages, 10 s, with assertions)
  --pages N                pages, one user and one browser context each (default 10; smoke 3)
  --duration S             measured window in seconds (default 60; smoke 10)
  --paint-every S          mean seconds between a page's paints, jitter ±50% (default 4; smoke 2)
  --chat-every S           mean seconds between a page's messages, jitter ±50% (default 15; smoke 2.5)
  --room-size R            pages per chat room (default 10)
  --contexts-per-browser C browser contexts (pages) per Chromium process (default 10)
  --cooldown-ms MS         server paint cooldown (default 1000)
  --transport auto|ws|wt   the page's transport (?transport=; default auto: WebTransport when it connects)
  --viewport WxH           page size in CSS pixels (default 1280x900)
  --canvas PX              canvas edge in pixels, tiles of 64 (default 256)
  --settle S               wait after the window before reading the pages (default 3)
  --setup-parallel P       pages set up at once (default 4)
  --setup-timeout S        bound on opening all pages (default 600; smoke 120)
  --action-timeout S       bound on one click or key press (default 15)
  --wait-quiet S           first wait up to S seconds for a quiet machine (no cargo/rustc/clippy,
                           under 0.3 cores busy for 10 s in a row; default 0: do not wait, warn)
  --label TEXT             label in the result line
  --results FILE           append the JSON result line here (default bench/results.jsonl)
  --keep                   keep the temporary directory (server data, config, logs)
  --no-blur                diagnostic: a style tag turns the client's backdrop-filter blurs off
                           (what they cost Chromium's software compositor; not the real client)`;

// ---- options ---------------------------------------------------------------------------------

function options() {
  let values;
  try {
    ({ values } = parseArgs({
    options: {
      pages: { type: "string" },
      duration: { type: "string" },
      "paint-every": { type: "string" },
      "chat-every": { type: "string" },
      "room-size": { type: "string" },
      "contexts-per-browser": { type: "string" },
      "cooldown-ms": { type: "string" },
      transport: { type: "string" },
      viewport: { type: "string" },
      canvas: { type: "string" },
      settle: { type: "string" },
      "setup-parallel": { type: "string" },
      "setup-timeout": { type: "string" },
      "action-timeout": { type: "string" },
      "wait-quiet": { type: "string" },
      label: { type: "string" },
      results: { type: "string" },
      keep: { type: "boolean" },
      "no-blur": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    }));
  } catch (e) {
    console.error(`${e.message}\n${HELP}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const num = (k, d, { min = 0, int = false } = {}) => {
    const v = values[k] === undefined ? d : Number(values[k]);
    if (!Number.isFinite(v) || v < min || (int && !Number.isInteger(v))) {
      console.error(`--${k}: ${values[k]} is not a ${int ? "whole " : ""}number ≥ ${min}\n${HELP}`);
      process.exit(2);
    }
    return v;
  };
  const [vw, vh] = (values.viewport ?? "1280x900").split("x").map(Number);
  if (!(vw >= 320 && vh >= 320)) {
    console.error(`--viewport: ${values.viewport} is not WxH (at least 320x320)`);
    process.exit(2);
  }
  const transport = values.transport ?? "auto";
  if (!["auto", "ws", "wt"].includes(transport)) {
    console.error(`--transport: auto, ws or wt, not ${transport}`);
    process.exit(2);
  }
  const o = {
    pages: num("pages", SMOKE ? 3 : 10, { min: 2, int: true }),
    duration: num("duration", SMOKE ? 10 : 60, { min: 1 }),
    paintEvery: num("paint-every", SMOKE ? 2 : 4, { min: 0.1 }),
    chatEvery: num("chat-every", SMOKE ? 2.5 : 15, { min: 0.1 }),
    roomSize: num("room-size", 10, { min: 2, int: true }),
    perBrowser: num("contexts-per-browser", 10, { min: 1, int: true }),
    cooldownMs: num("cooldown-ms", 1000, { int: true }),
    transport,
    viewport: { width: vw, height: vh },
    canvas: num("canvas", 256, { min: 64, int: true }),
    settle: num("settle", SMOKE ? 2 : 3),
    setupParallel: num("setup-parallel", 4, { min: 1, int: true }),
    setupTimeout: num("setup-timeout", SMOKE ? 120 : 600, { min: 10 }),
    actionTimeout: num("action-timeout", 15, { min: 1 }),
    waitQuiet: num("wait-quiet", 0),
    label: values.label ?? `${new Date().toISOString().slice(0, 16)}-swarm${SMOKE ? "-smoke" : ""}`,
    results: values.results ?? join(REPO, "bench", "results.jsonl"),
    keep: Boolean(values.keep),
    noBlur: Boolean(values["no-blur"]),
  };
  if (o.canvas % 64 !== 0) {
    console.error("--canvas must be a multiple of 64");
    process.exit(2);
  }
  const grid = Math.ceil(Math.sqrt(o.pages));
  if (grid * BLOCK > o.canvas) {
    console.error(`--pages ${o.pages}: their 8×8 blocks do not fit a ${o.canvas}-pixel canvas (raise --canvas)`);
    process.exit(2);
  }
  return o;
}

// ---- small helpers ---------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => console.log(`[swarm ${new Date().toISOString().slice(11, 19)}] ${s}`);

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

function freeUdpPort() {
  return new Promise((res, rej) => {
    const sock = createSocket("udp4");
    sock.unref();
    sock.on("error", rej);
    sock.bind(0, "127.0.0.1", () => {
      const { port } = sock.address();
      sock.close(() => res(port));
    });
  });
}

/** Runs `fn(item, index)` over `items`, at most `n` at once; resolves their results (settled). */
async function pool(items, n, fn) {
  const out = new Array(items.length);
  let i = 0;
  const worker = async () => {
    while (i < items.length) {
      const k = i++;
      try {
        out[k] = { ok: true, value: await fn(items[k], k) };
      } catch (e) {
        out[k] = { ok: false, error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

function stats(values) {
  if (values.length === 0) return { count: 0 };
  const v = Float64Array.from(values).sort();
  const q = (p) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))];
  return { count: v.length, p50_ms: q(0.5), p95_ms: q(0.95), p99_ms: q(0.99), max_ms: v[v.length - 1] };
}

const fmtLat = (s) => (s.count ? `p50 ${s.p50_ms} / p95 ${s.p95_ms} / p99 ${s.p99_ms} / max ${s.max_ms} ms (n=${s.count})` : "none");
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// ---- /proc -----------------------------------------------------------------------------------

const CLK_TCK = 100;
const PAGE_KIB = 4;

/** pid → {ppid, ticks (utime+stime), rssKib, comm} for every process. */
function processTable() {
  const t = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, "utf8");
      const close = s.lastIndexOf(")");
      const comm = s.slice(s.indexOf("(") + 1, close);
      const f = s.slice(close + 2).split(" ");
      // f[0] is field 3 (state): field n is f[n - 3].
      t.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), rssKib: Number(f[21]) * PAGE_KIB, comm });
    } catch {
      // gone meanwhile
    }
  }
  return t;
}

function descendants(table, root) {
  const kids = new Map();
  for (const [pid, p] of table) {
    if (!kids.has(p.ppid)) kids.set(p.ppid, []);
    kids.get(p.ppid).push(pid);
  }
  const out = [];
  const stack = [...(kids.get(root) ?? [])];
  while (stack.length) {
    const pid = stack.pop();
    out.push(pid);
    stack.push(...(kids.get(pid) ?? []));
  }
  return out;
}

function machineTicks() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] || 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

function pssKib(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** "browser", "renderer", "gpu-process", "utility", "zygote", ... (Chromium's --type=). */
function processKind(pid, comm) {
  try {
    // Chromium rewrites its children's command lines (arguments joined by spaces).
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
    const t = /--type=(\S+)/.exec(cmd);
    if (t) {
      const sub = /--utility-sub-type=(\S+)/.exec(cmd);
      return t[1] + (sub ? `:${sub[1].split(".").pop()}` : "");
    }
    return /chrom/.test(comm) ? "browser" : comm;
  } catch {
    return comm;
  }
}

function buildRunning(t = processTable()) {
  return [...t.values()].some((p) => ["rustc", "cargo", "clippy-driver", "cargo-clippy", "rustdoc"].includes(p.comm));
}

/** Waits until no build runs and the machine is under 0.3 cores busy for 10 s in a row. */
async function waitQuiet(maxS) {
  const deadline = Date.now() + maxS * 1000;
  let quietSince = null;
  let prev = machineTicks();
  let said = false;
  while (Date.now() < deadline) {
    await sleep(1000);
    const now = machineTicks();
    const busy = ((now.busy - prev.busy) / Math.max(1, now.total - prev.total)) * cpus().length;
    prev = now;
    if (!buildRunning() && busy < 0.3) {
      quietSince ??= Date.now();
      if (Date.now() - quietSince >= 10_000) {
        if (said) log("the machine is quiet");
        return;
      }
    } else {
      quietSince = null;
      if (!said) log(`waiting (at most ${maxS} s) for a quiet machine: ${buildRunning() ? "a build is running" : `${busy.toFixed(2)} cores busy`}`);
      said = true;
    }
  }
  log("WARNING: the machine did not become quiet: the figures of this run are noise");
}

// ---- the server ------------------------------------------------------------------------------

class Server {
  constructor(bin, o) {
    this.bin = bin;
    this.o = o;
  }

  async start() {
    this.dir = mkdtempSync(join(tmpdir(), "pixelparty-swarm-"));
    this.httpPort = await freePort();
    do this.adminPort = await freePort(); while (this.adminPort === this.httpPort);
    this.wtPort = await freeUdpPort();
    this.base = `http://127.0.0.1:${this.httpPort}`;
    this.configPath = join(this.dir, "pixelparty.toml");
    // Like gateway/web/e2e's config (small canvas, cheap argon2, WebTransport on a free UDP
    // port) with bench/server.toml's lifted limits: every page comes from 127.0.0.1.
    writeFileSync(this.configPath, [
      "[server]",
      `http = "127.0.0.1:${this.httpPort}"`,
      `admin = "127.0.0.1:${this.adminPort}"`,
      `admin_token = "${ADMIN_TOKEN}"`,
      `data_dir = ${JSON.stringify(join(this.dir, "data"))}`,
      "shards = 2",
      "max_connections = 19000",
      "max_connections_per_ip = 100000",
      "idle_timeout_ms = 600000",
      "",
      "[canvas]",
      `width = ${this.o.canvas}`,
      `height = ${this.o.canvas}`,
      "tile_size = 64",
      `cooldown_ms = ${this.o.cooldownMs}`,
      "",
      "[auth]",
      "login_per_ip_per_min = 1000000",
      "login_per_account_per_min = 1000000",
      "signup_per_ip_per_hour = 1000000",
      "hash_queue = 4096",
      "argon2_m_kib = 4096",
      "argon2_t = 1",
      "",
      "[limits]",
      "chat_burst = 1000000",
      "chat_interval_ms = 0",
      "max_room_members = 20000",
      "room_creates_per_user_per_hour = 1000000",
      "",
      "[webtransport]",
      `bind = "127.0.0.1:${this.wtPort}"`,
      "",
    ].join("\n"));
    this.stderrPath = join(this.dir, "server.stderr.log");
    const err = openSync(this.stderrPath, "w");
    const out = openSync(join(this.dir, "server.stdout.log"), "w");
    const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" };
    for (const k of Object.keys(env)) if (k.startsWith("PIXELPARTY_")) delete env[k];
    this.child = spawn(this.bin, ["serve", "--config", this.configPath], { cwd: this.dir, env, stdio: ["ignore", out, err] });
    closeSync(err);
    closeSync(out);
    this.exited = null;
    this.child.once("exit", (code, signal) => {
      this.exited = { code, signal };
    });
    this.pid = this.child.pid;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.exited) throw new Error(`server exited at start (${JSON.stringify(this.exited)}): ${this.tail()}`);
      try {
        if ((await fetch(`${this.base}/canvas`)).ok) break;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`server did not answer GET /canvas within 30 s: ${this.tail()}`);
      await sleep(100);
    }
    return this;
  }

  tail() {
    try {
      return readFileSync(this.stderrPath, "utf8").split("\n").slice(-15).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** Web client files the binary serves that differ from gateway/web/ on disk. */
  async staleAssets() {
    const web = join(REPO, "gateway", "web");
    const stale = [];
    for (const f of readdirSync(web).filter((n) => /\.(html|js|css)$/.test(n))) {
      const r = await fetch(`${this.base}/${f}`);
      const served = Buffer.from(await r.arrayBuffer());
      if (!r.ok || !served.equals(readFileSync(join(web, f)))) stale.push(f);
    }
    return stale;
  }

  killSync() {
    if (this.child && this.exited === null) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // gone
      }
    }
  }

  async stop() {
    if (this.child && this.exited === null) {
      this.child.kill("SIGTERM");
      const t0 = Date.now();
      while (this.exited === null && Date.now() - t0 < 5000) await sleep(50);
      if (this.exited === null) this.child.kill("SIGKILL");
      while (this.exited === null && Date.now() - t0 < 10_000) await sleep(50);
    }
    if (!this.o.keep && this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

async function api(base, method, path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.cookie = `pp_session=${token}`;
  const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// ---- the plan --------------------------------------------------------------------------------

function blocksFor(o) {
  const grid = Math.ceil(Math.sqrt(o.pages));
  const side = grid * BLOCK;
  const ox = Math.floor((o.canvas - side) / 2 / BLOCK) * BLOCK;
  const oy = ox;
  return Array.from({ length: o.pages }, (_, i) => [ox + (i % grid) * BLOCK, oy + Math.floor(i / grid) * BLOCK]);
}

const WORDS = ["hello", "nice", "who", "is", "painting", "the", "red", "corner", "over", "there", "lol", "brb", "looks", "great", "left", "of", "mine", "help", "us", "fix", "that", "line", "gg", "wow"];
function chatText(i, k) {
  const n = 2 + Math.floor(Math.random() * 8);
  const words = Array.from({ length: n }, () => WORDS[Math.floor(Math.random() * WORDS.length)]);
  return `swarm ${i}.${k} ${words.join(" ")}`;
}

/** A wait of `meanS` ± 50% (uniform), cut short by `stop`. */
function jitterWait(meanS, stop) {
  const ms = meanS * 1000 * (0.5 + Math.random());
  return Promise.race([sleep(ms), stop]);
}

// ---- main ------------------------------------------------------------------------------------

/** Set by main: stops everything it started (one promise, however often it is called). */
let activeCleanup = null;

async function main() {
  const o = options();
  const bin = process.env.PIXELPARTY_BIN;
  if (!bin || !existsSync(bin)) throw new Error(`PIXELPARTY_BIN is not a file: ${bin} (run through run.sh)`);
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (e) {
    throw new Error(`playwright-core is not installed (npm ci in ${HERE}, or run.sh): ${e.message}`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}`);
  if (o.waitQuiet > 0) await waitQuiet(o.waitQuiet);
  else if (buildRunning()) log("WARNING: a cargo/rustc build is running: the figures of this run are noise");

  const agentSource = readFileSync(join(HERE, "agent.js"), "utf8");
  const server = new Server(bin, o);
  const browsers = [];
  const pages = [];
  const chromePids = new Set();
  const cleanupSync = () => {
    server.killSync();
    if (!o.keep && server.dir) rmSync(server.dir, { recursive: true, force: true });
    for (const pid of chromePids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  };
  process.once("exit", cleanupSync);
  let cleaning = null;
  const cleanup = () => (cleaning ??= doCleanup());
  activeCleanup = cleanup;
  const doCleanup = async () => {
    // Remember the browsers' processes first: a close that hangs is followed by SIGKILL.
    const table = processTable();
    for (const pid of descendants(table, process.pid)) if (pid !== server.pid) chromePids.add(pid);
    await Promise.all(browsers.map((b) => Promise.race([b.close().catch(() => {}), sleep(10_000)])));
    const after = processTable();
    for (const pid of chromePids) {
      if (after.has(pid) && /chrom/.test(after.get(pid).comm)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    chromePids.clear();
    await server.stop();
  };
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.once(sig, () => {
      log(`${sig}: stopping`);
      cleanup().finally(() => process.exit(130));
    });
  }
  // Bounded in time whatever happens: setup, window, settle, reading the pages, teardown.
  const hardLimitMs = (o.setupTimeout + o.duration + o.settle + 180) * 1000;
  const watchdog = setTimeout(() => {
    log(`hard time limit (${Math.round(hardLimitMs / 1000)} s) reached: stopping`);
    cleanup().finally(() => process.exit(3));
  }, hardLimitMs);
  watchdog.unref();

  try {
    return await run(o, chromium, agentSource, server, browsers, pages);
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
}

async function run(o, chromium, agentSource, server, browsers, pages) {
  const bin = process.env.PIXELPARTY_BIN;
  await server.start();
  log(`server ${server.base} (pid ${server.pid}, binary ${bin}), data in ${server.dir}${o.keep ? " (kept)" : ""}`);
  const stale = await server.staleAssets();
  if (stale.length) log(`WARNING: the binary embeds a web client that differs from gateway/web/ on disk (${stale.join(", ")}): the swarm drives the embedded one`);
  const meta = await (await fetch(`${server.base}/canvas`)).json();
  const colours = meta.palette.length;

  // Accounts and rooms over HTTP (sign-up is not what this measures).
  const runId = Date.now().toString(36).slice(-5);
  const users = (await pool(Array.from({ length: o.pages }, (_, i) => i), 8, async (i) => {
    const username = `swarm_${runId}_${i}`;
    const r = await api(server.base, "POST", "/signup", { username, password: PASSWORD });
    return { username, token: r.token };
  })).map((r) => {
    if (!r.ok) throw r.error;
    return r.value;
  });
  const roomCount = Math.ceil(o.pages / o.roomSize);
  const rooms = [];
  for (let r = 0; r < roomCount; r++) {
    const room = await api(server.base, "POST", "/rooms", { name: `swarm-${runId}-room-${r}` }, users[r * o.roomSize].token);
    rooms.push(Number(room.id));
  }
  const blocks = blocksFor(o);
  log(`${o.pages} users signed up, ${roomCount} rooms; blocks from ${blocks[0]} to ${blocks[blocks.length - 1]} on a ${o.canvas}² canvas, ${colours} colours`);

  // Browsers: one Chromium per `perBrowser` pages (each page has its own browser context).
  const nBrowsers = Math.ceil(o.pages / o.perBrowser);
  const t0Launch = Date.now();
  for (let b = 0; b < nBrowsers; b++) {
    browsers.push(await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      timeout: 60_000,
      // swarm.mjs stops the browsers itself (and the server, and removes its directory).
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    }));
  }
  log(`${nBrowsers} Chromium process${nBrowsers > 1 ? "es" : ""} launched in ${((Date.now() - t0Launch) / 1000).toFixed(1)} s`);

  const query = o.transport === "auto" ? "" : `?transport=${o.transport}`;
  const setupDeadline = Date.now() + o.setupTimeout * 1000;
  const t0Setup = Date.now();
  let ready = 0;
  const setups = await pool(Array.from({ length: o.pages }, (_, i) => i), o.setupParallel, async (i) => {
    if (Date.now() > setupDeadline) throw new Error("setup time limit reached");
    const p = { i, user: users[i], room: rooms[Math.floor(i / o.roomSize)], block: blocks[i], errors: [], crashed: false, attempts: [], sendsDriver: [], actionErrors: [] };
    pages[i] = p;
    const context = await browsers[Math.floor(i / o.perBrowser)].newContext({ viewport: o.viewport, deviceScaleFactor: 1 });
    p.context = context;
    context.setDefaultTimeout(o.actionTimeout * 1000);
    await context.addCookies([{ name: "pp_session", value: p.user.token, url: server.base }]);
    await context.addInitScript({ content: agentSource });
    const page = await context.newPage();
    p.page = page;
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      const url = m.location()?.url;
      p.errors.push({ kind: "console", text: url ? `${m.text()} (${url})` : m.text(), atMs: Date.now() });
    });
    page.on("pageerror", (e) => p.errors.push({ kind: "pageerror", text: String(e?.stack || e), atMs: Date.now() }));
    page.on("crash", () => {
      p.crashed = true;
    });
    const setupMs = Math.max(5000, setupDeadline - Date.now());
    await page.goto(`${server.base}/${query}`, { timeout: setupMs });
    if (o.noBlur) await page.addStyleTag({ content: "* { backdrop-filter: none !important; -webkit-backdrop-filter: none !important; }" });
    // Logged in by the cookie: the page's own GET /session, then its live session.
    await page.waitForFunction(() => window.pixelparty?.state.user && window.pixelparty.state.connection === "connected", null, { timeout: setupMs });
    if (!(await page.evaluate((ms) => window.pixelparty.whenConnected(ms), Math.min(setupMs, 30_000)))) throw new Error(`page ${i}: live session not welcomed`);
    // Join the room through the room list, as a person would.
    const button = page.locator(`#rooms button[data-room-id="${p.room}"]`);
    if ((await button.count()) === 0) await page.click("#refresh-rooms");
    await button.click();
    await page.locator(`#messages[data-room-id="${p.room}"]`).waitFor({ state: "attached" });
    await page.waitForFunction(() => !document.getElementById("message").disabled);
    // Go to the own block with the jump box (it zooms to painting zoom).
    const [bx, by] = p.block;
    await page.fill("#jump", `${bx + BLOCK / 2}, ${by + BLOCK / 2}`);
    await page.press("#jump", "Enter");
    await page.waitForFunction(() => (window.pixelparty.view()?.scale ?? 0) >= 4);
    // ...and leaves the box, as a person turning to the canvas would. (A focused text field
    // blinks its caret: with the client's backdrop-filter blurs every blink recomposites the
    // page in software, about 0.07 cores per page: idle pages waiting in a focused box would
    // slow the setup of the others; see README.md.)
    await page.locator("#jump").blur();
    // Where to click: the palette's swatches and the block's 64 pixels (the view stays put).
    const geo = await page.evaluate(([bx0, by0, n]) => {
      const pp = window.pixelparty;
      const swatches = [...document.querySelectorAll("#palette button[data-colour]")].map((b) => {
        const r = b.getBoundingClientRect();
        return { colour: Number(b.dataset.colour), x: r.x + r.width / 2, y: r.y + r.height / 2 };
      });
      const points = [];
      const covered = [];
      for (let j = 0; j < n * n; j++) {
        const x = bx0 + (j % n);
        const y = by0 + Math.floor(j / n);
        const pt = pp.clientPointOf(x, y);
        points.push(pt);
        if (document.elementFromPoint(pt.x, pt.y)?.id !== "canvas") covered.push([x, y]);
      }
      const swatchCovered = swatches.filter((s) => !document.elementFromPoint(s.x, s.y)?.closest?.(`#palette button[data-colour="${s.colour}"]`)).length;
      return { swatches, points, covered, swatchCovered };
    }, [bx, by, BLOCK]);
    if (geo.covered.length) throw new Error(`page ${i}: ${geo.covered.length} block pixels are covered by something else than the canvas`);
    if (geo.swatchCovered || geo.swatches.length < colours) throw new Error(`page ${i}: palette swatches not clickable (${geo.swatches.length} found, ${geo.swatchCovered} covered)`);
    p.swatches = new Map(geo.swatches.map((s) => [s.colour, s]));
    p.points = geo.points;
    await page.evaluate((plan) => window.__swarm.start(plan), { me: i, blocks, colours });
    ready++;
    if (ready % 10 === 0 || ready === o.pages) log(`${ready}/${o.pages} pages ready (${((Date.now() - t0Setup) / 1000).toFixed(1)} s)`);
    return p;
  });
  const setupS = (Date.now() - t0Setup) / 1000;
  const live = [];
  const setupErrors = [];
  setups.forEach((r, i) => {
    if (r.ok) live.push(r.value);
    else setupErrors.push(`page ${i}: ${r.error?.message?.split("\n")[0]}`);
  });
  for (const e of setupErrors.slice(0, 5)) log(`setup failed: ${e}`);
  if (setupErrors.length > 5) log(`... and ${setupErrors.length - 5} more setup failures`);
  log(`${live.length}/${o.pages} pages ready in ${setupS.toFixed(1)} s; measuring for ${o.duration} s`);
  if (live.length < 2) throw new Error("fewer than 2 pages ready: nothing to measure");

  // ---- the measured window ----
  let stopNow;
  const stop = new Promise((r) => {
    stopNow = r;
  });
  let stopping = false;
  const colourOf = (k) => 1 + (k % (colours - 1));
  const sampler = startSampler(server.pid);
  const tStart = Date.now();
  const locks = new Map(live.map((p) => [p.i, Promise.resolve()]));
  /** One hand per user: a page's clicks and key presses never interleave. */
  const act = (p, what, fn) => {
    const run = locks.get(p.i).then(async () => {
      if (p.crashed) return;
      try {
        await fn();
      } catch (e) {
        p.actionErrors.push({ what, message: e.message.split("\n")[0], atMs: Date.now() });
      }
    });
    locks.set(p.i, run);
    return run;
  };
  const paintLoop = async (p) => {
    await Promise.race([sleep(Math.random() * o.paintEvery * 1000), stop]);
    for (let k = 0; !stopping; k++) {
      await act(p, "paint", async () => {
        const colour = colourOf(k);
        const j = k % 64;
        const sw = p.swatches.get(colour);
        const pt = p.points[j];
        await p.page.mouse.click(sw.x, sw.y);
        const tClick = Date.now();
        await p.page.mouse.click(pt.x, pt.y);
        p.attempts.push({ k, x: p.block[0] + (j % BLOCK), y: p.block[1] + Math.floor(j / BLOCK), colour, tClick, pt });
      });
      await jitterWait(o.paintEvery, stop);
    }
  };
  const chatLoop = async (p) => {
    await Promise.race([sleep(Math.random() * o.chatEvery * 1000), stop]);
    for (let k = 0; !stopping; k++) {
      await act(p, "chat", async () => {
        const text = chatText(p.i, k);
        await p.page.fill("#message", text);
        p.sendsDriver.push({ k, t: Date.now() });
        await p.page.press("#message", "Enter");
      });
      await jitterWait(o.chatEvery, stop);
    }
  };
  const loops = live.flatMap((p) => [paintLoop(p), chatLoop(p)]);
  let lastReport = tStart;
  while (Date.now() - tStart < o.duration * 1000) {
    await sleep(Math.min(1000, o.duration * 1000 - (Date.now() - tStart)));
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      const att = live.reduce((a, p) => a + p.attempts.length, 0);
      const snt = live.reduce((a, p) => a + p.sendsDriver.length, 0);
      log(`t+${Math.round((Date.now() - tStart) / 1000)} s: ${att} paint clicks, ${snt} messages typed, ${live.filter((p) => p.crashed).length} crashed`);
    }
  }
  stopping = true;
  stopNow();
  const windowS = (Date.now() - tStart) / 1000;
  const usage = sampler.stop(windowS);
  await Promise.race([Promise.all(loops), sleep(o.actionTimeout * 2000)]);
  log(`window over (${windowS.toFixed(1)} s); settling ${o.settle} s`);
  await sleep(o.settle * 1000);

  // ---- read the pages ----
  const dumps = await pool(live, 8, async (p) => {
    if (p.crashed) throw new Error("crashed");
    return Promise.race([
      p.page.evaluate(() => window.__swarm.dump()),
      sleep(20_000).then(() => {
        throw new Error("no answer in 20 s");
      }),
    ]);
  });
  live.forEach((p, n) => {
    p.dump = dumps[n].ok ? dumps[n].value : null;
    p.dumpError = dumps[n].ok ? null : dumps[n].error.message;
  });
  return { ...analyse(o, live, { setupS, windowS, usage, colours, setupErrors, bin, nBrowsers, runId }), resultsPath: o.results };
}

// ---- resource sampler ------------------------------------------------------------------------

function startSampler(serverPid) {
  const first = processTable();
  const m0 = machineTicks();
  const me0 = first.get(process.pid)?.ticks ?? 0;
  const srv0 = first.get(serverPid)?.ticks ?? 0;
  const chrome0 = new Map();
  for (const pid of descendants(first, process.pid)) if (pid !== serverPid) chrome0.set(pid, first.get(pid).ticks);
  let peakServerRss = 0;
  let peakChromeRss = 0;
  let buildSamples = 0;
  let last = first;
  const sample = () => {
    const t = processTable();
    last = t;
    if (buildRunning(t)) buildSamples++;
    peakServerRss = Math.max(peakServerRss, t.get(serverPid)?.rssKib ?? 0);
    let rss = 0;
    for (const pid of descendants(t, process.pid)) if (pid !== serverPid) rss += t.get(pid).rssKib;
    peakChromeRss = Math.max(peakChromeRss, rss);
  };
  sample();
  const timer = setInterval(sample, 1000);
  return {
    stop(windowS) {
      clearInterval(timer);
      sample();
      const t = last;
      const m1 = machineTicks();
      const chromePids = descendants(t, process.pid).filter((pid) => pid !== serverPid);
      let chromeTicks = 0;
      let chromeRss = 0;
      let chromePss = 0;
      const kinds = {};
      for (const pid of chromePids) {
        const p = t.get(pid);
        chromeTicks += p.ticks - (chrome0.get(pid) ?? 0);
        chromeRss += p.rssKib;
        chromePss += pssKib(pid);
        const kind = processKind(pid, p.comm);
        const k = (kinds[kind] ??= { processes: 0, cpu_cores: 0, rss_mib: 0 });
        k.processes++;
        k.cpu_cores += (p.ticks - (chrome0.get(pid) ?? 0)) / CLK_TCK / windowS;
        k.rss_mib += p.rssKib / 1024;
      }
      for (const k of Object.values(kinds)) {
        k.cpu_cores = round(k.cpu_cores);
        k.rss_mib = round(k.rss_mib, 0);
      }
      const cores = (ticks) => round(ticks / CLK_TCK / windowS);
      const server = t.get(serverPid);
      let serverHwm = 0;
      try {
        serverHwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${serverPid}/status`, "utf8"))[1]);
      } catch {
        // gone
      }
      const machineCores = round(((m1.busy - m0.busy) / (m1.total - m0.total)) * cpus().length, 2);
      const serverCores = cores((server?.ticks ?? 0) - srv0);
      const browserCores = cores(chromeTicks);
      const driverCores = cores((t.get(process.pid)?.ticks ?? 0) - me0);
      return {
        server_cpu_cores: serverCores,
        server_rss_mib: round((server?.rssKib ?? 0) / 1024, 1),
        server_rss_peak_mib: round(Math.max(peakServerRss, serverHwm) / 1024, 1),
        browser_processes: chromePids.length,
        browser_by_kind: kinds,
        browser_cpu_cores: browserCores,
        browser_rss_mib: round(chromeRss / 1024, 0),
        browser_rss_peak_mib: round(peakChromeRss / 1024, 0),
        browser_pss_mib: round(chromePss / 1024, 0),
        driver_cpu_cores: driverCores,
        machine_cpu_cores: machineCores,
        build_seen_in_window_samples: buildSamples,
        others_cpu_cores: round(Math.max(0, machineCores - serverCores - browserCores - driverCores), 2),
      };
    },
  };
}

// ---- analysis --------------------------------------------------------------------------------

function analyse(o, live, { setupS, windowS, usage, colours, setupErrors, bin, nBrowsers, runId }) {
  const byIndex = new Map(live.map((p) => [p.i, p]));
  const tileOf = (x, y) => Math.floor(y / 64) * (o.canvas / 64) + Math.floor(x / 64);
  const held = live.filter((p) => !p.crashed && p.dump && p.dump.state.connection === "connected" && !p.dump.state.closed);
  const transports = {};
  for (const p of live) {
    const t = p.dump?.state.transport ?? "unknown";
    transports[t] = (transports[t] ?? 0) + 1;
  }
  // Reconnects: a page whose connection left "connected" during the window.
  const reconnected = live.filter((p) => p.dump && p.dump.conn.some(([, s]) => s !== "connected")).length;

  // Paints: the driver's click, the page's pointerdown on the canvas, the client's ack.
  const paints = new Map(); // "painter:k" → record
  let attempted = 0;
  let acked = 0;
  let refused = 0;
  const refusalCodes = {};
  const clickToAck = [];
  const inputDelay = [];
  for (const p of live) {
    attempted += p.attempts.length;
    if (!p.dump) continue;
    refused += p.dump.refusals.length;
    for (const [code] of p.dump.refusals) refusalCodes[code] = (refusalCodes[code] ?? 0) + 1;
    let d = 0;
    const downs = p.dump.downs;
    const acks = new Map();
    for (const a of p.dump.acks) {
      const key = `${a[0]},${a[1]},${a[2]}`;
      if (!acks.has(key)) acks.set(key, []);
      acks.get(key).push(a[4]);
    }
    for (const a of p.attempts) {
      while (d < downs.length && !(downs[d][0] >= a.tClick - 2 && Math.abs(downs[d][1] - a.pt.x) <= 1.5 && Math.abs(downs[d][2] - a.pt.y) <= 1.5)) d++;
      const tDown = d < downs.length ? downs[d][0] : null;
      if (tDown !== null) d++;
      const origin = tDown ?? a.tClick;
      const tAck = (acks.get(`${a.x},${a.y},${a.colour}`) ?? []).find((t) => t >= origin) ?? null;
      const rec = { painter: p.i, k: a.k, x: a.x, y: a.y, tile: tileOf(a.x, a.y), tClick: a.tClick, tDown, tAck };
      paints.set(`${p.i}:${a.k}`, rec);
      if (tDown !== null) inputDelay.push(tDown - a.tClick);
      if (tAck !== null) {
        acked++;
        clickToAck.push(tAck - origin);
      }
    }
  }

  // Paint to screen: a page sees another page's pixel in a frame (or its 500 ms check).
  // Screen: the frame that drew it; replica: the first check that found it (frame or timer).
  const toOther = [];
  const toOtherReplica = [];
  const toSelf = [];
  let viaTimer = 0;
  let noFrame = 0;
  const seenPairs = new Set();
  for (const w of live) {
    if (!w.dump) continue;
    for (const [painter, k, t, since, tFrame] of w.dump.seen) {
      const rec = paints.get(`${painter}:${k}`);
      if (!rec) continue;
      const origin = rec.tDown ?? rec.tClick;
      if (since > origin) continue; // the tile came into view after the click
      if (painter === w.i) {
        if (tFrame !== null) toSelf.push(tFrame - origin);
        continue;
      }
      toOtherReplica.push(t - origin);
      if (tFrame !== null) toOther.push(tFrame - origin);
      else noFrame++;
      if (tFrame !== t) viaTimer++;
      seenPairs.add(`${w.i}:${painter}:${k}`);
    }
  }
  // Expected: every acked paint, on every other held page that held the paint's tile since before the click.
  let expectedPairs = 0;
  let missedPairs = 0;
  const sinceOf = new Map(held.map((w) => [w.i, new Map(w.dump.since)]));
  for (const rec of paints.values()) {
    if (rec.tAck === null) continue;
    const origin = rec.tDown ?? rec.tClick;
    for (const w of held) {
      if (w.i === rec.painter) continue;
      const s = sinceOf.get(w.i).get(rec.tile);
      if (s === undefined || s > origin) continue;
      expectedPairs++;
      if (!seenPairs.has(`${w.i}:${rec.painter}:${rec.k}`)) missedPairs++;
    }
  }
  const paintersSeenByOthers = new Set([...seenPairs].map((s) => s.split(":")[1])).size;

  // Chat: submit on the sender's page → the message's first appearance on each page.
  let typed = 0;
  let sent = 0;
  const sends = new Map(); // "sender:k" → tSubmit
  const re = /^swarm (\d+)\.(\d+) /;
  for (const p of live) {
    typed += p.sendsDriver.length;
    if (!p.dump) continue;
    for (const [t, text] of p.dump.sends) {
      const m = re.exec(text);
      if (!m) continue;
      sent++;
      sends.set(`${m[1]}:${m[2]}`, t);
    }
  }
  const chatOther = [];
  const chatOwn = [];
  const delivered = new Set();
  for (const w of live) {
    if (!w.dump) continue;
    const first = new Map();
    for (const [s, k, t] of w.dump.chat) {
      const key = `${s}:${k}`;
      if (!first.has(key)) first.set(key, t);
    }
    for (const [key, t] of first) {
      const t0 = sends.get(key);
      if (t0 === undefined) continue;
      const sender = Number(key.split(":")[0]);
      if (sender === w.i) chatOwn.push(t - t0);
      else {
        chatOther.push(t - t0);
        delivered.add(`${w.i}:${key}`);
      }
    }
  }
  let expectedMsgs = 0;
  let missedMsgs = 0;
  for (const key of sends.keys()) {
    const sender = byIndex.get(Number(key.split(":")[0]));
    for (const w of held) {
      if (w.i === sender.i || w.room !== sender.room) continue;
      expectedMsgs++;
      if (!delivered.has(`${w.i}:${key}`)) missedMsgs++;
    }
  }
  const sendersSeenByOthers = new Set([...delivered].map((s) => s.split(":")[1])).size;

  const consoleErrors = live.reduce((a, p) => a + p.errors.filter((e) => e.kind === "console").length, 0);
  const pageErrors = live.reduce((a, p) => a + p.errors.filter((e) => e.kind === "pageerror").length, 0);
  const actionErrors = live.reduce((a, p) => a + p.actionErrors.length, 0);
  const frames = live.reduce((a, p) => a + (p.dump?.frames ?? 0), 0);

  const r = {
    scenario: "swarm",
    label: o.label,
    time_ms: Date.now(),
    smoke: SMOKE,
    binary: bin,
    binary_profile: /\/release\//.test(bin) ? "release" : /\/debug\//.test(bin) ? "debug" : "other",
    pages: o.pages,
    pages_ready: live.length,
    pages_held: held.length,
    pages_crashed: live.filter((p) => p.crashed).length,
    pages_unreadable: live.filter((p) => !p.dump).length,
    pages_reconnected: reconnected,
    setup_failures: setupErrors.length,
    setup_s: round(setupS, 1),
    browsers: nBrowsers,
    contexts_per_browser: o.perBrowser,
    viewport: `${o.viewport.width}x${o.viewport.height}`,
    no_blur: o.noBlur,
    canvas: o.canvas,
    colours,
    transport_mode: o.transport,
    transports,
    duration_s: round(windowS, 1),
    paint_every_s: o.paintEvery,
    chat_every_s: o.chatEvery,
    room_size: o.roomSize,
    cooldown_ms: o.cooldownMs,
    paints: {
      clicked: attempted,
      acked,
      refused,
      refusal_codes: refusalCodes,
      acked_per_s: round(acked / windowS),
      offered_per_s: round(live.length / o.paintEvery),
      click_to_ack: stats(clickToAck),
      driver_click_to_pointerdown: stats(inputDelay),
      to_own_screen: stats(toSelf),
      to_other_screens: stats(toOther),
      to_other_replicas: stats(toOtherReplica),
      other_screens_seen: toOtherReplica.length,
      seen_without_frame: noFrame,
      other_screens_expected: expectedPairs,
      other_screens_missed: missedPairs,
      seen_before_frame: viaTimer,
      painters_seen_by_others: paintersSeenByOthers,
    },
    chat: {
      typed,
      sent,
      sent_per_s: round(sent / windowS),
      offered_per_s: round(live.length / o.chatEvery),
      send_to_own_display: stats(chatOwn),
      send_to_other_display: stats(chatOther),
      deliveries: chatOther.length,
      deliveries_per_s: round(chatOther.length / windowS),
      deliveries_expected: expectedMsgs,
      deliveries_missed: missedMsgs,
      senders_seen_by_others: sendersSeenByOthers,
    },
    frames_observed: frames,
    console_errors: consoleErrors,
    console_error_kinds: errorKinds(live),
    page_errors: pageErrors,
    action_errors: actionErrors,
    action_error_kinds: live.reduce((k, p) => {
      for (const e of p.actionErrors) {
        const key = `${e.what}: ${e.message.replace(/\d+/g, "N")}`.slice(0, 160);
        k[key] = (k[key] ?? 0) + 1;
      }
      return k;
    }, {}),
    ...usage,
    browser_rss_mib_per_page: round(usage.browser_rss_mib / live.length, 1),
    browser_pss_mib_per_page: round(usage.browser_pss_mib / live.length, 1),
    run_id: runId,
  };
  return { r, live };
}

/** Console and page errors grouped by their text with numbers and ids taken out, with counts. */
function errorKinds(live) {
  const kinds = {};
  for (const p of live) {
    for (const e of p.errors) {
      const key = `${e.kind}: ${e.text.split("\n")[0].replace(/\?.*\)$/, ")").replace(/\d+/g, "N")}`.slice(0, 200);
      kinds[key] = (kinds[key] ?? 0) + 1;
    }
  }
  return kinds;
}

function report({ r }) {
  const P = r.paints;
  const C = r.chat;
  const lines = [
    "",
    `browser swarm ${r.label}: ${r.pages} pages (${r.browsers} Chromium × ${r.contexts_per_browser} contexts, ${r.viewport}${r.no_blur ? ", backdrop blur OFF (diagnostic)" : ""}), ${r.duration_s} s, binary ${r.binary_profile} (${r.binary})`,
    `  pages: ${r.pages_ready} ready in ${r.setup_s} s, ${r.pages_held} held to the end, ${r.pages_crashed} crashed, ${r.pages_reconnected} lost their session at some point, ${r.setup_failures} failed to set up; transports ${JSON.stringify(r.transports)}`,
    `  paints: ${P.clicked} clicked, ${P.acked} acked (${P.acked_per_s}/s of ${P.offered_per_s}/s planned), ${P.refused} refused${P.refused ? ` ${JSON.stringify(P.refusal_codes)}` : ""}`,
    `    click → ack (same page):         ${fmtLat(P.click_to_ack)}`,
    `    click → own screen:              ${fmtLat(P.to_own_screen)}`,
    `    click → other pages' screens:    ${fmtLat(P.to_other_screens)}`,
    `    click → other pages' replicas:   ${fmtLat(P.to_other_replicas)}  (the frame is applied, not yet drawn)`,
    `    other pages that saw it: ${P.other_screens_seen} of ${P.other_screens_expected} expected (missed ${P.other_screens_missed}; ${P.seen_before_frame} found on arrival before their frame, ${P.seen_without_frame} never drawn by a frame), ${P.painters_seen_by_others} painters seen by others`,
    `    driver click → page pointerdown: ${fmtLat(P.driver_click_to_pointerdown)}`,
    `  chat: ${C.typed} typed, ${C.sent} sent (${C.sent_per_s}/s of ${C.offered_per_s}/s planned), ${C.deliveries} shown on other pages (${C.deliveries_per_s}/s), missed ${C.deliveries_missed} of ${C.deliveries_expected}`,
    `    send → own list:                 ${fmtLat(C.send_to_own_display)}`,
    `    send → other pages' lists:       ${fmtLat(C.send_to_other_display)}`,
    `  server: ${r.server_cpu_cores} cores, RSS ${r.server_rss_mib} MiB (peak ${r.server_rss_peak_mib})`,
    `  browsers: ${r.browser_processes} processes, ${r.browser_cpu_cores} cores, RSS ${r.browser_rss_mib} MiB (peak ${r.browser_rss_peak_mib}), PSS ${r.browser_pss_mib} MiB (${r.browser_pss_mib_per_page} MiB/page)`,
    `    by kind: ${Object.entries(r.browser_by_kind).map(([k, v]) => `${k} ${v.processes}× ${v.cpu_cores} cores ${v.rss_mib} MiB`).join("; ")}`,
    `  driver (node + Playwright): ${r.driver_cpu_cores} cores; whole machine ${r.machine_cpu_cores} of 2 cores; others ${r.others_cpu_cores}`,
    ...(r.build_seen_in_window_samples ? [`  WARNING: a cargo/rustc build ran during ${r.build_seen_in_window_samples} of the 1 s samples: noise`] : []),
    `  errors: ${r.console_errors} console, ${r.page_errors} page, ${r.action_errors} actions failed or timed out`,
  ];
  for (const [k, n] of Object.entries(r.console_error_kinds).sort((a, b) => b[1] - a[1]).slice(0, 8)) lines.push(`    ${n}× ${k}`);
  for (const [k, n] of Object.entries(r.action_error_kinds).sort((a, b) => b[1] - a[1]).slice(0, 5)) lines.push(`    ${n}× ${k}`);
  console.log(lines.join("\n"));
}

function smokeProblems(r) {
  const problems = [];
  if (r.pages_held !== r.pages) problems.push(`${r.pages_held} of ${r.pages} pages held`);
  if (r.paints.acked === 0) problems.push("no paint acked");
  if (r.paints.painters_seen_by_others < r.pages) problems.push(`only ${r.paints.painters_seen_by_others} of ${r.pages} painters' pixels were seen on another page`);
  if (r.paints.other_screens_missed > 0) problems.push(`${r.paints.other_screens_missed} paints not seen on a page that held the tile`);
  if (r.chat.sent === 0) problems.push("no message sent");
  if (r.chat.senders_seen_by_others < r.pages) problems.push(`only ${r.chat.senders_seen_by_others} of ${r.pages} senders' messages were shown on another page`);
  if (r.chat.deliveries_missed > 0) problems.push(`${r.chat.deliveries_missed} messages not shown to a room member`);
  if (r.page_errors > 0) problems.push(`${r.page_errors} uncaught page errors`);
  if (r.console_errors > 0) problems.push(`${r.console_errors} console errors`);
  return problems;
}

main().then(async (res) => {
  await activeCleanup?.();
  report(res);
  const { r } = res;
  try {
    // The smoke run's line is not a measurement: it goes nowhere near bench/results.jsonl.
    if (!r.smoke) {
      appendFileSync(res.resultsPath, `${JSON.stringify(r)}\n`);
      log(`result line appended to ${res.resultsPath}`);
    }
  } catch (e) {
    log(`could not write the result line: ${e.message}`);
  }
  if (SMOKE) {
    const problems = smokeProblems(r);
    if (problems.length) {
      console.log(`SWARM SMOKE FAILED: ${problems.join("; ")}`);
      process.exit(1);
    }
    console.log(`SWARM SMOKE OK: ${r.pages} pages held; paints crossed (${r.paints.other_screens_seen} seen on other pages), messages crossed (${r.chat.deliveries} shown on other pages)`);
  }
  process.exit(0);
}, async (e) => {
  await activeCleanup?.();
  console.error(`swarm failed: ${e.stack || e}`);
  process.exit(1);
});
