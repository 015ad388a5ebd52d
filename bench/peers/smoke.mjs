// Smoke test of both peer servers, spoken to with a raw WebSocket client (`ws`), not
// socket.io-client, so that it checks the exact wire dialect README.md documents.
//
//   npm run smoke        (exit 0 = every check passed)
//
// Starts each server on an ephemeral port (argument 0, port read from its "listening <port>"
// line), runs the checks, sends SIGTERM, and expects exit code 0. Then two socket.io servers
// with REDIS_URL on a redis-server of its own (skipped when redis-server is missing): a
// broadcast crosses between them. Whole run: a few seconds;
// a watchdog fails it at 18 s.
import { spawn, spawnSync } from "node:child_process";
import { createServer as createNetServer, connect as connectNet } from "node:net";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import assert from "node:assert/strict";
import WebSocket from "ws";

const HERE = dirname(fileURLToPath(import.meta.url));
const PING_INTERVAL = 300;
const PING_TIMEOUT = 300;
const children = new Set();
let passed = 0;

function ok(what) {
  passed++;
  console.log(`  ok ${what}`);
}

const watchdog = setTimeout(() => fail(new Error("smoke test took longer than 18 s")), 18_000);

function fail(err) {
  console.error(`FAIL: ${err?.stack ?? err}`);
  for (const child of children) child.kill("SIGKILL");
  process.exit(1);
}
process.on("unhandledRejection", fail);
process.on("uncaughtException", fail);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Start a server script on port 0; resolve {port, child, lines} after "listening <port>". */
function startServer(script, env = {}) {
  const child = spawn(process.execPath, [join(HERE, script), "0"], {
    cwd: HERE,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  const server = { child, stdout: "", stderr: "", port: 0 };
  child.stderr.on("data", (d) => (server.stderr += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${script}: no "listening" line in 5 s`)), 5000);
    child.on("exit", (code) =>
      reject(new Error(`${script} exited early (${code}): ${server.stderr}`)),
    );
    child.stdout.on("data", (d) => {
      server.stdout += d;
      const m = /^listening (\d+)\n/.exec(server.stdout);
      if (m && server.port === 0) {
        clearTimeout(t);
        server.port = Number(m[1]);
        resolve(server);
      }
    });
  });
}

/** SIGTERM a server; assert it exits 0 and printed nothing but its one line. */
async function stopServer(name, server) {
  const code = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name}: still running 3 s after SIGTERM`)), 3000);
    server.child.on("exit", (code, signal) => {
      clearTimeout(t);
      resolve(signal ?? code);
    });
    server.child.kill("SIGTERM");
  });
  assert.equal(code, 0, `${name}: exit status after SIGTERM`);
  ok(`${name}: SIGTERM -> exit 0`);
  assert.equal(server.stdout, `listening ${server.port}\n`, `${name}: stdout`);
  assert.equal(server.stderr, "", `${name}: stderr`);
  ok(`${name}: stdout was exactly "listening ${server.port}\\n", stderr empty`);
}

/** A raw WebSocket client that queues every text frame it receives. */
class Raw {
  constructor(url, { answerPings = false } = {}) {
    this.frames = []; // every text frame received, in order
    this.queue = []; // not yet consumed by next()
    this.waiters = [];
    this.pings = 0;
    this.closed = false;
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws.on("message", (data, isBinary) => {
      assert.equal(isBinary, false, "server sent a binary frame");
      const text = data.toString();
      this.frames.push(text);
      if (answerPings && text === "2") {
        this.pings++;
        this.ws.send("3");
        return;
      }
      this.queue.push(text);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.ws.on("close", () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    this.ws.on("error", () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("error", reject);
    });
  }
  send(text) {
    this.ws.send(text);
  }
  /** Next queued frame, within ms. */
  async next(ms = 2000) {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      if (this.closed) throw new Error("connection closed while waiting for a frame");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.queue.shift();
  }
  /** Assert nothing arrives for ms. */
  async quiet(ms) {
    await sleep(ms);
    assert.deepEqual(this.queue, [], "unexpected frame(s)");
  }
  close() {
    this.ws.close();
  }
}

// ---------------------------------------------------------------- socket.io
async function smokeSocketIO() {
  console.log("socket.io server:");
  const server = await startServer("socketio-server.mjs", {
    PING_INTERVAL_MS: String(PING_INTERVAL),
    PING_TIMEOUT_MS: String(PING_TIMEOUT),
  });
  ok(`started, "listening ${server.port}"`);
  const url = `ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`;

  /** Connect and do the Engine.IO open + socket.io CONNECT handshake. */
  async function connect(opts) {
    const c = new Raw(url, opts);
    await c.opened;
    const open = await c.next();
    assert.match(open, /^0\{/, "Engine.IO open packet");
    const o = JSON.parse(open.slice(1));
    assert.equal(typeof o.sid, "string");
    assert.deepEqual(o.upgrades, []);
    assert.equal(o.pingInterval, PING_INTERVAL);
    assert.equal(o.pingTimeout, PING_TIMEOUT);
    assert.equal(typeof o.maxPayload, "number");
    c.open = open;
    c.send("40");
    const connected = await c.next();
    assert.match(connected, /^40\{"sid":"[^"]+"\}$/, "socket.io CONNECT reply");
    assert.notEqual(JSON.parse(connected.slice(2)).sid, o.sid, "namespace sid != engine sid");
    c.connected = connected;
    return c;
  }

  const a = await connect({ answerPings: true });
  ok(`handshake: got ${a.open}; sent 40; got ${a.connected}`);
  const b = await connect({ answerPings: true });
  const c = await connect({ answerPings: true });

  // join with an ack (id 0): ack 430[{"room":..}] and the "joined" event.
  a.send('420["join","room1"]');
  assert.equal(await a.next(), '430[{"room":"room1"}]');
  assert.equal(await a.next(), '42["joined",{"room":"room1"}]');
  ok('join with ack: sent 420["join","room1"]; got 430[{"room":"room1"}] then 42["joined",{"room":"room1"}]');

  // join without an ack: only the event.
  b.send('42["join","room1"]');
  assert.equal(await b.next(), '42["joined",{"room":"room1"}]');
  c.send('427["join","other"]');
  assert.equal(await c.next(), '437[{"room":"other"}]');
  assert.equal(await c.next(), '42["joined",{"room":"other"}]');
  await b.quiet(100);
  ok('join without ack: sent 42["join","room1"]; got only 42["joined",{"room":"room1"}]');

  const msg1 = '42["msg",{"room":"room1","body":"hello","ts":1712345678901234,"seq":1}]';
  a.send(msg1);
  assert.equal(await a.next(), msg1);
  assert.equal(await b.next(), msg1);
  await c.quiet(150);
  ok(`broadcast: sender and the other member got ${msg1} unchanged; other room got nothing`);

  // The payload is parsed and re-serialized (JSON.stringify): key order kept, whitespace
  // dropped, numbers normalized. An ack id on "msg" gets no ack.
  a.send('421["msg", {"seq": 4, "room": "room1", "ts": 1.50, "body": "x"}]');
  const norm = '42["msg",{"seq":4,"room":"room1","ts":1.5,"body":"x"}]';
  assert.equal(await a.next(), norm);
  assert.equal(await b.next(), norm);
  await a.quiet(100);
  ok(`broadcast re-serializes: 421["msg", {"seq": 4, ..., "ts": 1.50, ...}] -> ${norm}, no ack`);

  // Heartbeat: the server pings ("2"); the client answers "3" and stays connected.
  const t0 = Date.now();
  while (a.pings < 2 || b.pings < 2) {
    assert.ok(Date.now() - t0 < 3000, "no two pings within 3 s");
    await sleep(50);
  }
  // A client that never answers is dropped after pingInterval + pingTimeout.
  const mute = await connect({ answerPings: false });
  const pingFrame = await mute.next(PING_INTERVAL + 1000);
  assert.equal(pingFrame, "2", "server ping packet");
  const t1 = Date.now();
  while (!mute.closed) {
    assert.ok(Date.now() - t1 < PING_TIMEOUT + 1500, "silent client not dropped");
    await sleep(20);
  }
  assert.ok(!a.closed && !b.closed && !c.closed);
  const msg2 = '42["msg",{"room":"room1","body":{"nested":[1,2]},"ts":2,"seq":2}]';
  b.send(msg2);
  assert.equal(await a.next(), msg2);
  assert.equal(await b.next(), msg2);
  ok(
    `heartbeat: ${a.pings}/${b.pings} pings "2" answered "3", still connected; ` +
      "a client that does not answer is closed",
  );

  // Protocol errors close the connection: a client-sent ping "2" (EIO4 pings go server ->
  // client only), and an event before the "40" CONNECT.
  const pinger = await connect({ answerPings: true });
  pinger.send("2");
  const early = new Raw(url);
  await early.opened;
  assert.match(await early.next(), /^0\{/);
  early.send('42["join","room1"]');
  const t2 = Date.now();
  while (!pinger.closed || !early.closed) {
    assert.ok(Date.now() - t2 < 1000, "protocol error did not close the connection");
    await sleep(20);
  }
  assert.deepEqual(pinger.queue, []);
  assert.deepEqual(early.queue, []);
  ok('client-sent "2", or an event before "40": server closes the connection');

  // Leaving: close b; a message still reaches a, and the server stays healthy.
  b.close();
  await sleep(100);
  const msg3 = '42["msg",{"room":"room1","body":"after","ts":3,"seq":3}]';
  a.send(msg3);
  assert.equal(await a.next(), msg3);
  ok("member closed: broadcast goes on to the rest");

  a.close();
  c.close();
  await stopServer("socket.io", server);
}

// ------------------------------------------------ socket.io with the Redis adapter
/** A free TCP port on 127.0.0.1 (the kernel's pick, released at once). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Two socket.io processes sharing a Redis of their own (REDIS_URL): a broadcast sent on one
 * reaches the room's members on both, and no other room. Skipped without redis-server. */
async function smokeSocketIORedis() {
  console.log("socket.io server, two processes with @socket.io/redis-adapter:");
  const which = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" });
  if (which.status !== 0) {
    console.log("  skipped: no redis-server on PATH");
    return;
  }
  const redisPort = await freePort();
  const redis = spawn("redis-server", ["--bind", "127.0.0.1", "--port", String(redisPort), "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  children.add(redis);
  redis.on("exit", () => children.delete(redis));
  try {
    const t0 = Date.now();
    for (;;) {
      const up = await new Promise((resolve) => {
        const s = connectNet(redisPort, "127.0.0.1");
        s.once("connect", () => s.end("PING\r\n"));
        s.once("data", (d) => resolve(String(d).startsWith("+PONG")));
        s.once("error", () => resolve(false));
      });
      if (up) break;
      assert.ok(Date.now() - t0 < 5000, "redis-server not up within 5 s");
      await sleep(50);
    }
    const env = { REDIS_URL: `redis://127.0.0.1:${redisPort}/0`, REDIS_KEY: `smoke-${process.pid}` };
    const one = await startServer("socketio-server.mjs", env);
    const two = await startServer("socketio-server.mjs", env);
    ok(`two servers on one Redis, "listening ${one.port}" and "listening ${two.port}"`);
    const connect = async (port) => {
      const c = new Raw(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { answerPings: true });
      await c.opened;
      assert.match(await c.next(), /^0\{/);
      c.send("40");
      assert.match(await c.next(), /^40\{/);
      return c;
    };
    const a = await connect(one.port);
    const b = await connect(two.port);
    const c = await connect(two.port);
    a.send('42["join","room1"]');
    b.send('42["join","room1"]');
    c.send('42["join","other"]');
    for (const x of [a, b]) assert.equal(await x.next(), '42["joined",{"room":"room1"}]');
    assert.equal(await c.next(), '42["joined",{"room":"other"}]');
    const msg = '42["msg",{"room":"room1","body":"across","ts":1,"seq":1}]';
    a.send(msg);
    assert.equal(await a.next(), msg);
    assert.equal(await b.next(), msg);
    const back = '42["msg",{"room":"room1","body":"back","ts":2,"seq":2}]';
    b.send(back);
    assert.equal(await b.next(), back);
    assert.equal(await a.next(), back);
    await c.quiet(150);
    ok("a broadcast on either process reaches the room's members on both; the other room gets nothing");
    for (const x of [a, b, c]) x.close();
    await stopServer("socket.io (Redis adapter) 1", one);
    await stopServer("socket.io (Redis adapter) 2", two);
  } finally {
    redis.kill("SIGTERM");
  }
}

// ---------------------------------------------------------------- ws
async function smokeWs() {
  console.log("ws server:");
  const server = await startServer("ws-server.mjs");
  ok(`started, "listening ${server.port}"`);
  const url = `ws://127.0.0.1:${server.port}/`;
  const connect = async () => {
    const c = new Raw(url);
    await c.opened;
    return c;
  };
  const a = await connect();
  const b = await connect();
  const c = await connect();

  a.send('{"t":"join","room":"room1"}');
  assert.equal(await a.next(), '{"t":"joined","room":"room1"}');
  b.send('{"t":"join","room":"room1"}');
  assert.equal(await b.next(), '{"t":"joined","room":"room1"}');
  c.send('{"t":"join","room":"other"}');
  assert.equal(await c.next(), '{"t":"joined","room":"other"}');
  ok('join: sent {"t":"join","room":"room1"}; got {"t":"joined","room":"room1"}');

  const msg1 = '{"t":"msg","room":"room1","body":"hello","ts":1712345678901234,"seq":1}';
  a.send(msg1);
  assert.equal(await a.next(), msg1);
  assert.equal(await b.next(), msg1);
  await c.quiet(150);
  ok(`broadcast: sender and the other member got ${msg1} byte for byte; other room got nothing`);

  // Spacing and key order are kept: the server forwards the frame, it does not re-encode it.
  const msg2 = '{ "seq": 2, "t": "msg", "ts": 2.5, "body": {"x": [1, 2]}, "room": "room1" }';
  b.send(msg2);
  assert.equal(await a.next(), msg2);
  assert.equal(await b.next(), msg2);
  ok("broadcast forwards the received text unchanged (spacing, key order)");

  // Bad input is ignored silently, connection stays.
  a.send("not json");
  a.send('{"t":"msg"}');
  a.send('{"t":"msg","room":"nobody-here","body":1,"ts":1,"seq":1}');
  await a.quiet(100);
  ok("invalid JSON / no room / empty room: ignored, no reply");

  b.close();
  await sleep(100);
  const msg3 = '{"t":"msg","room":"room1","body":"after","ts":3,"seq":3}';
  a.send(msg3);
  assert.equal(await a.next(), msg3);
  ok("member closed: broadcast goes on to the rest");

  a.close();
  c.close();
  await stopServer("ws", server);
}

const started = Date.now();
try {
  await smokeSocketIO();
  await smokeSocketIORedis();
  await smokeWs();
} catch (err) {
  fail(err);
}
clearTimeout(watchdog);
console.log(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`smoke: ${passed} passed, 0 failed`);
