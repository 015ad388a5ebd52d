// End-to-end harness: starts the real `pixelparty` server binary on free loopback ports (TCP
// for HTTP/WebSocket, UDP for WebTransport) with a fresh data directory and a temporary TOML
// config, launches Debian's Chromium through playwright-core, opens one browser context
// (separate cookies) per user, records every console error and page error of every page and
// every WebSocket and WebTransport session a page opens, and tears everything down again.
//
// Environment:
//   PIXELPARTY_BIN      server binary (default: <repo>/target/debug/pixelparty)
//   CHROMIUM_PATH       Chromium executable (default: /usr/bin/chromium)
//   CI=true             a missing Chromium or server binary fails the tests instead of skipping
//   PIXELPARTY_E2E_KEEP=1  keep the temporary data directory and config after the run
//   PIXELPARTY_E2E_WEB_FROM_DISK=1  serve the web client's files (/, *.html, *.js, *.css) from
//                       gateway/web/ on disk instead of the copy embedded in the binary at
//                       build time: tests client changes without rebuilding the server
//   PIXELPARTY_E2E_DOCS=1  also write the README's screenshots (desktop, phone, dark,
//                       timelapse) to gateway/web/e2e/screenshots/

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { readdirSync, readFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync, closeSync, accessSync, constants } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = resolve(E2E_DIR, "../../..");
export const SERVER_BIN = resolve(E2E_DIR, process.env.PIXELPARTY_BIN || "../../../target/debug/pixelparty");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const SCREENSHOT_DIR = join(REPO_ROOT, "target", "e2e-screenshots");
export const LOG_DIR = join(REPO_ROOT, "target", "e2e-logs");
export const ADMIN_TOKEN = "e2e-token";
/** Upper bound for any single wait on the page or the server. */
export const WAIT_MS = 15_000;
export const PASSWORD = "correct horse battery";
export const WEB_DIR = resolve(E2E_DIR, "..");
export const WEB_FROM_DISK = process.env.PIXELPARTY_E2E_WEB_FROM_DISK === "1";
/** Where the README's screenshots go (PIXELPARTY_E2E_DOCS=1); outside web/'s embedded files. */
export const DOC_SCREENSHOT_DIR = join(E2E_DIR, "screenshots");
export const WRITE_DOCS = process.env.PIXELPARTY_E2E_DOCS === "1";
/** The phone the layout is tested on (an iPhone 12-sized screen, touch). */
export const PHONE = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 1 };

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** Only for the default browser (new Browser(server)); `{quic: true}` leaves QUIC on. */
const NO_QUIC_ARGS = ["--disable-quic"];

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * What is missing to run the suite: null when everything is there, else a reason. With
 * CI=true a missing piece is an error (the caller fails), otherwise the tests are skipped.
 */
export function missingRequirement() {
  if (!executable(CHROMIUM)) {
    return `Chromium not found at ${CHROMIUM} (install it: apt-get install -y chromium, or set CHROMIUM_PATH)`;
  }
  if (!executable(SERVER_BIN)) {
    return `server binary not found at ${SERVER_BIN} (build it: cargo build -p pixelparty-gateway --bin pixelparty, or set PIXELPARTY_BIN)`;
  }
  return null;
}

export const IN_CI = process.env.CI === "true";

/** Skips (locally) or fails (CI=true) test `t` when Chromium or the server binary is missing; true when skipped. */
export function gate(t) {
  const missing = missingRequirement();
  if (!missing) return false;
  if (IN_CI) throw new Error(`e2e prerequisites missing in CI: ${missing}`);
  t.skip(missing);
  return true;
}

/** A port that was free a moment ago (bind 0, read it, close). */
export function freePort() {
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

/** A UDP port on 127.0.0.1 that was free a moment ago (bind a datagram socket to 0, read it, close). */
export function freeUdpPort() {
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

/** Polls `check` (async → truthy when done) every `everyMs` until `timeoutMs`; throws `what` on timeout. */
export async function until(check, { timeoutMs = WAIT_MS, everyMs = 50, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      if (e.fatal) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((res) => {
    const timer = setTimeout(() => res(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      res(true);
    });
  });
}

/** The real server on free ports, with its own data directory and config file. */
export class Server {
  /** `name`: prefix of its log files in target/e2e-logs/ (several servers may run at once). */
  constructor({ name = "server" } = {}) {
    this.name = name;
  }

  async start() {
    this.dir = mkdtempSync(join(tmpdir(), "pixelparty-e2e-"));
    this.dataDir = join(this.dir, "data");
    this.httpPort = await freePort();
    this.adminPort = await freePort();
    while (this.adminPort === this.httpPort) this.adminPort = await freePort();
    this.wtPort = await freeUdpPort();
    this.base = `http://127.0.0.1:${this.httpPort}`;
    this.adminBase = `http://127.0.0.1:${this.adminPort}`;
    this.configPath = join(this.dir, "pixelparty.toml");
    writeFileSync(
      this.configPath,
      [
        "[server]",
        `http = "127.0.0.1:${this.httpPort}"`,
        `admin = "127.0.0.1:${this.adminPort}"`,
        `admin_token = "${ADMIN_TOKEN}"`,
        `data_dir = ${JSON.stringify(this.dataDir)}`,
        "shards = 2",
        "snapshot_refresh_ms = 200",
        "",
        "[canvas]",
        "width = 256",
        "height = 256",
        "tile_size = 64",
        "cooldown_ms = 1000",
        "",
        "[limits]",
        "chat_interval_ms = 0",
        "",
        "[auth]",
        "login_per_ip_per_min = 10000",
        "signup_per_ip_per_hour = 10000",
        "argon2_m_kib = 4096",
        "argon2_t = 1",
        "",
        "[webtransport]",
        `bind = "127.0.0.1:${this.wtPort}"`,
        "",
      ].join("\n"),
    );
    mkdirSync(LOG_DIR, { recursive: true });
    this.stderrPath = join(LOG_DIR, `${this.name}.stderr.log`);
    this.stdoutPath = join(LOG_DIR, `${this.name}.stdout.log`);
    const errFd = openSync(this.stderrPath, "w");
    const outFd = openSync(this.stdoutPath, "w");
    const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || "info" };
    // The config file must decide: variables of the same keys would override it.
    for (const k of Object.keys(env)) if (k.startsWith("PIXELPARTY_") && k !== "PIXELPARTY_BIN") delete env[k];
    this.child = spawn(SERVER_BIN, ["serve", "--config", this.configPath], {
      cwd: this.dir,
      env,
      stdio: ["ignore", outFd, errFd],
    });
    closeSync(errFd);
    closeSync(outFd);
    this.exited = null;
    this.child.once("exit", (code, signal) => {
      this.exited = { code, signal };
    });
    this.killOnExit = () => {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // already gone
      }
    };
    process.once("exit", this.killOnExit);
    await until(async () => {
      if (this.exited) throw Object.assign(new Error(`server exited early (${JSON.stringify(this.exited)}); see ${this.stderrPath}`), { fatal: true });
      const r = await fetch(`${this.base}/canvas`);
      return r.ok;
    }, { timeoutMs: 20_000, everyMs: 100, what: `the server to answer GET /canvas on ${this.base} (stderr: ${this.stderrPath})` }).catch((e) => {
      this.stopSync();
      throw e;
    });
    return this;
  }

  /**
   * Web client files whose bytes, as served by the binary (embedded at build time), differ
   * from gateway/web/ on disk: a stale binary tests an older client.
   */
  async staleAssets() {
    const webDir = WEB_DIR;
    const names = readdirSync(webDir).filter((f) => /\.(html|js|css)$/.test(f));
    const stale = [];
    for (const f of names) {
      const r = await fetch(`${this.base}/${f}`);
      const served = Buffer.from(await r.arrayBuffer());
      if (!r.ok || !served.equals(readFileSync(join(webDir, f)))) stale.push(f);
    }
    return stale;
  }

  /** POST to the admin endpoint with the admin token. */
  async admin(path, body) {
    const r = await fetch(`${this.adminBase}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`admin ${path} ${JSON.stringify(body)}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  promote(username) {
    return this.admin("/users/role", { username, role: "admin" });
  }

  stopSync() {
    this.killOnExit?.();
  }

  /** SIGTERM, then SIGKILL when it has not exited within `graceMs`. */
  async stop(graceMs = 5000) {
    if (!this.child) return;
    if (this.exited === null) {
      this.child.kill("SIGTERM");
      if (!(await waitExit(this.child, graceMs))) {
        this.child.kill("SIGKILL");
        await waitExit(this.child, graceMs);
      }
    }
    process.removeListener("exit", this.killOnExit);
    if (process.env.PIXELPARTY_E2E_KEEP !== "1") rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Chromium through playwright-core. playwright's `launch` always runs the browser with a
 * fresh temporary profile (its own --user-data-dir, removed at close; it refuses a
 * --user-data-dir in `args`), and every `newUser` gets its own browser context.
 */
export class Browser {
  /** `quic`: leave QUIC on (no --disable-quic), e.g. for the WebTransport test. */
  constructor(server, { quic = false } = {}) {
    this.server = server;
    this.quic = quic;
    this.errors = []; // {page, kind, text, location, atMs}
    this.pages = [];
    this.contexts = [];
  }

  async start() {
    let chromium;
    try {
      ({ chromium } = await import("playwright-core"));
    } catch (e) {
      throw new Error(`playwright-core is not installed (run npm ci in ${E2E_DIR}, or run.sh): ${e.message}`);
    }
    this.browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // A document fulfilled by a route has no address space of its own, so Chromium's
      // local network access checks would block its WebSocket to 127.0.0.1.
      args: [
        ...CHROMIUM_ARGS,
        ...(this.quic ? [] : NO_QUIC_ARGS),
        ...(WEB_FROM_DISK ? ["--disable-features=LocalNetworkAccessChecks"] : []),
      ],
      timeout: 30_000,
    });
    return this;
  }

  /**
   * A new browser context (own cookies) with one page on the web client. Recorded on the
   * page: `sockets` (WebSockets opened), `webTransports` (WebTransport sessions created, from
   * the DevTools protocol's Network.webTransportCreated: Playwright has no event for them),
   * `failedResponses` (HTTP status >= 400), `inflight` (requests not finished); console errors
   * and page errors go to `this.errors`. `clock: true` installs Playwright's controllable clock
   * (time flows normally until the test moves it, e.g. `page.clock.fastForward`). `query` is
   * appended to the page's URL (e.g. "?transport=wt"). `setup(context)` runs before the page
   * opens (e.g. to add routes). `context` adds browser-context options (e.g. PHONE, or
   * `{colorScheme: "dark"}`); the default is a 1280×900 desktop window.
   */
  async newPage(label, { clock = false, query = "", setup = null, context: contextOptions = {} } = {}) {
    const context = await this.browser.newContext({ viewport: { width: 1280, height: 900 }, ...contextOptions });
    context.setDefaultTimeout(WAIT_MS);
    this.contexts.push(context);
    if (WEB_FROM_DISK) await serveWebFromDisk(context, this.server.base);
    if (setup) await setup(context);
    if (clock) await context.clock.install();
    const page = await context.newPage();
    page.label = label;
    page.webTransports = [];
    const cdp = await context.newCDPSession(page);
    cdp.on("Network.webTransportCreated", (e) => page.webTransports.push({ url: e.url, openedMs: Date.now() }));
    await cdp.send("Network.enable");
    page.sockets = [];
    page.failedResponses = [];
    page.inflight = new Set();
    page.on("request", (r) => page.inflight.add(r));
    page.on("requestfinished", (r) => page.inflight.delete(r));
    page.on("requestfailed", (r) => page.inflight.delete(r));
    page.on("response", (r) => {
      if (r.status() >= 400) page.failedResponses.push({ url: r.url(), status: r.status(), atMs: Date.now() });
    });
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const loc = msg.location();
      this.errors.push({ page: label, kind: "console", text: msg.text(), location: loc?.url ? `${loc.url}:${loc.lineNumber}` : "", atMs: Date.now() });
    });
    page.on("pageerror", (err) => {
      this.errors.push({ page: label, kind: "pageerror", text: String(err?.stack || err), location: "", atMs: Date.now() });
    });
    page.on("websocket", (ws) => page.sockets.push({ url: ws.url(), openedMs: Date.now() }));
    this.pages.push(page);
    await page.goto(this.server.base + "/" + query);
    await page.waitForFunction(() => window.pixelparty && window.pixelparty.state.palette.length > 0);
    return page;
  }

  async stop() {
    for (const c of this.contexts) await c.close().catch(() => {});
    if (this.browser) {
      let timer;
      await Promise.race([this.browser.close(), new Promise((r) => {
        timer = setTimeout(r, 10_000);
      })]);
      clearTimeout(timer);
    }
  }
}

const CONTENT_TYPES = { html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" };

/** Routes the web client's own files to gateway/web/ on disk (see PIXELPARTY_E2E_WEB_FROM_DISK). */
async function serveWebFromDisk(context, base) {
  const origin = new URL(base).origin;
  const fileOf = (url) => {
    if (url.origin !== origin) return null;
    const name = url.pathname === "/" ? "index.html" : url.pathname.slice(1);
    const m = /^[A-Za-z0-9_.-]+\.(html|js|css)$/.exec(name);
    if (!m) return null;
    try {
      return { body: readFileSync(join(WEB_DIR, name)), type: CONTENT_TYPES[m[1]] };
    } catch {
      return null;
    }
  };
  await context.route((url) => fileOf(url) !== null, async (route) => {
    const f = fileOf(new URL(route.request().url()));
    await route.fulfill({
      status: 200,
      headers: {
        "content-type": f.type,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss: https:; style-src 'self' 'unsafe-inline'",
      },
      body: f.body,
    });
  });
}

/**
 * Waits until the page has had no HTTP request in flight for `quietMs` (bounded by WAIT_MS):
 * the requests started by timers a test just fired have been answered.
 */
export async function networkQuiet(page, quietMs = 300) {
  let since = Date.now();
  await until(() => {
    if (page.inflight.size > 0) since = Date.now();
    return Date.now() - since >= quietMs;
  }, { everyMs: 25, what: `${page.label}: no request in flight for ${quietMs} ms` });
}

let counter = 0;
/** A fresh valid user name: `<prefix>_<pid base36><counter>`, at most 32 characters. */
export function uniqueName(prefix) {
  counter++;
  return `${prefix}_${process.pid.toString(36)}${counter}`.slice(0, 32);
}

/** Fills the page's auth form and waits until the live session is welcomed. */
export async function signUp(page, username, password = PASSWORD) {
  await page.fill("#username", username);
  await page.fill("#password", password);
  await page.click("#signup");
  await loggedInAs(page, username);
}

export async function logIn(page, username, password = PASSWORD) {
  await page.fill("#username", username);
  await page.fill("#password", password);
  await page.click("#login");
  await loggedInAs(page, username);
}

export async function loggedInAs(page, username) {
  await page.waitForFunction((name) => document.getElementById("me-name").textContent === name && !document.getElementById("whoami").hidden, username);
  await page.waitForFunction(() => window.pixelparty.state.connection === "connected");
  const ok = await page.evaluate((ms) => window.pixelparty.whenConnected(ms), WAIT_MS);
  if (!ok) throw new Error(`${username}: the live session (WebTransport or WebSocket) was not welcomed in time`);
}

/**
 * Runs `body(pages, shoot)` with fresh pages on `browser` (one browser context each; a label
 * may be `{label, browser, ...newPage options}` to use another browser or options); then, pass
 * or fail, screenshots the page chosen with `shoot(page, selectorToScrollIntoView?)` (default:
 * the last) as `name` and closes the pages.
 */
export async function withPages(browser, name, labels, body) {
  const pages = [];
  let shot = null;
  try {
    for (const l of labels) {
      const { label, browser: br = browser, ...opts } = typeof l === "string" ? { label: l } : l;
      pages.push(await br.newPage(`${name}/${label}`, opts));
    }
    await body(pages, (page, selector = null) => {
      shot = { page, selector };
    });
  } finally {
    const target = shot ?? { page: pages[pages.length - 1], selector: null };
    if (target.page) {
      try {
        if (target.selector) await target.page.locator(target.selector).scrollIntoViewIfNeeded({ timeout: 2000 });
        await screenshot(target.page, name);
      } catch (e) {
        console.log(`screenshot ${name} failed: ${e.message}`);
      }
    }
    for (const p of pages) await p.context().close().catch(() => {});
  }
}

/** Creates a room through the form; resolves its id once the page has opened it. */
export async function createRoom(page, name) {
  await page.fill("#new-room", name);
  await page.click("#create-room");
  const button = page.locator("#rooms button[data-joined='true']").filter({ hasText: name });
  await button.waitFor();
  const id = await button.getAttribute("data-room-id");
  await page.locator(`#messages[data-room-id="${id}"]`).waitFor({ state: "attached" });
  await page.waitForFunction(() => !document.getElementById("message").disabled);
  return id;
}

/** Saves a screenshot (the viewport) to target/e2e-screenshots/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, timeout: WAIT_MS });
  return path;
}

/**
 * A screenshot for the README: to target/e2e-screenshots/doc-<name>.png always, and to
 * gateway/web/e2e/screenshots/<name>.png with PIXELPARTY_E2E_DOCS=1.
 */
export async function docScreenshot(page, name) {
  const path = await screenshot(page, `doc-${name}`);
  if (WRITE_DOCS) {
    mkdirSync(DOC_SCREENSHOT_DIR, { recursive: true });
    writeFileSync(join(DOC_SCREENSHOT_DIR, `${name}.png`), readFileSync(path));
  }
  return path;
}
