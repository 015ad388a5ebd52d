// Owns: the WebSocket session with the server — Hello first, frames batched into one
// transport message per turn, request ids and their Ack / Error / HistoryPage answers,
// keepalive Pings (which also feed the server clock), the Closing reason, and reconnecting
// with exponential backoff except after banned / kicked / session_revoked. It knows nothing
// of the canvas or chat: every other frame goes to `onFrame`. No DOM; the WebSocket class
// and the timers are injectable, so tests/app.test.mjs drives it with a fake socket.

import {
  encodeClient, decodeServerFrames, describeDecodeError, CloseCodeReason, MAX_TRANSPORT_MESSAGE,
  PROTOCOL_VERSION,
} from "./codec.js";
import { ServerClock } from "./clock.js";

export const AGENT = "pixelparty-web/0.1";
/** Close reasons after which the client must not reconnect on its own. */
export const NO_RECONNECT = Object.freeze(new Set(["banned", "kicked", "session_revoked"]));
export const PING_INTERVAL_MS = 25_000;
export const REQUEST_TIMEOUT_MS = 15_000;
export const MAX_BACKOFF_MS = 30_000;

/** Whether a session that ended with `reason` (a CloseReason name or null) may be resumed. */
export function shouldReconnect(reason) {
  return !NO_RECONNECT.has(reason);
}

/** Delay before reconnect attempt `attempt` (0-based): 0.5 s doubling to 30 s, with jitter. */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.5 + 0.5 * random()));
}

/** Concatenates encoded frames into as few transport messages (≤ `max` bytes) as possible. */
export function joinFrames(frames, max = MAX_TRANSPORT_MESSAGE) {
  const out = [];
  let batch = [];
  let size = 0;
  const flush = () => {
    if (batch.length === 0) return;
    if (batch.length === 1) out.push(batch[0]);
    else {
      const msg = new Uint8Array(size);
      let at = 0;
      for (const f of batch) {
        msg.set(f, at);
        at += f.length;
      }
      out.push(msg);
    }
    batch = [];
    size = 0;
  };
  for (const f of frames) {
    if (size + f.length > max) flush();
    batch.push(f);
    size += f.length;
  }
  flush();
  return out;
}

/** The ws:// or wss:// URL of `path` on the page's origin. */
export function webSocketUrl(path, pageUrl) {
  const u = new URL(path, pageUrl);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

/** A request the server refused (an Error frame), or one that could not complete. */
export class RequestError extends Error {
  constructor(code, message, retryAfterMs = 0, req = 0) {
    super(message || code);
    this.name = "RequestError";
    this.code = code;
    this.retryAfterMs = retryAfterMs;
    this.req = req;
  }
}

export class Connection {
  /**
   * Options: `url` (ws URL), `onFrame(frame)`, `onState(state)` with state "connecting" |
   * "connected" | "disconnected", `onWelcome(welcome)`, `onClose(info)` with
   * `{reason, message, code, welcomed, reconnectInMs}` (reconnectInMs null: not reconnecting),
   * `WebSocketImpl`, `timers` ({setTimeout, clearTimeout, setInterval, clearInterval, now}),
   * `random`.
   */
  constructor(opts) {
    this.url = opts.url;
    this.onFrame = opts.onFrame ?? (() => {});
    this.onState = opts.onState ?? (() => {});
    this.onWelcome = opts.onWelcome ?? (() => {});
    this.onClose = opts.onClose ?? (() => {});
    this.WebSocketImpl = opts.WebSocketImpl ?? globalThis.WebSocket;
    const g = globalThis;
    this.timers = {
      setTimeout: g.setTimeout.bind(g), clearTimeout: g.clearTimeout.bind(g),
      setInterval: g.setInterval.bind(g), clearInterval: g.clearInterval.bind(g), now: () => Date.now(),
      ...(opts.timers ?? {}),
    };
    this.random = opts.random ?? Math.random;
    this.pingIntervalMs = opts.pingIntervalMs ?? PING_INTERVAL_MS;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.clock = opts.clock ?? new ServerClock();

    this.state = "disconnected";
    this.ws = null;
    this.wanted = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.welcome = null;
    this.closing = null;
    this.queue = [];
    this.flushScheduled = false;
    this.lastReq = 0;
    this.pending = new Map(); // req → {resolve, reject, timer, type}
    this.pings = new Map(); // nonce string → local send time
    this.nonce = 0n;
  }

  /** Connects, and keeps reconnecting until stop() or a final close. */
  start() {
    this.wanted = true;
    this.attempt = 0;
    if (this.ws === null && this.retryTimer === null) this.open();
  }

  /** Closes (code 1000) and stays disconnected. */
  stop() {
    this.wanted = false;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const ws = this.ws;
    if (ws !== null) {
      this.detach(ws);
      try {
        ws.close(1000, "bye");
      } catch {
        // already closing
      }
      this.ended({ reason: "normal", message: "", code: 1000, welcomed: this.welcome !== null }, false);
    } else {
      this.setState("disconnected");
    }
  }

  /** While waiting to reconnect: try now (the network came back, the tab became visible). */
  retryNow() {
    if (!this.wanted || this.retryTimer === null) return;
    this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.open();
  }

  get connected() {
    return this.state === "connected";
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }

  open() {
    this.retryTimer = null;
    this.welcome = null;
    this.closing = null;
    this.setState("connecting");
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url);
    } catch (e) {
      this.ended({ reason: null, message: String(e?.message ?? e), code: 0, welcomed: false }, true);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.queue.unshift(encodeClient({ type: "Hello", version: PROTOCOL_VERSION, kind: "browser", agent: AGENT }));
      this.flush();
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onerror = () => {}; // a close event follows; its code tells what happened
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.detach(ws);
      const closing = this.closing;
      const reason = closing?.reason ?? CloseCodeReason[ev.code] ?? null;
      this.ended({ reason, message: closing?.message ?? ev.reason ?? "", code: ev.code, welcomed: this.welcome !== null }, true);
    };
  }

  detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {};
    if (this.ws === ws) this.ws = null;
    if (this.pingTimer !== null) {
      this.timers.clearInterval(this.pingTimer);
      this.pingTimer = null;
    }
    this.queue = [];
    this.pings.clear();
  }

  ended(info, mayReconnect) {
    for (const [req, p] of this.pending) {
      this.timers.clearTimeout(p.timer);
      p.reject(new RequestError("disconnected", "the connection to the server was lost", 0, req));
    }
    this.pending.clear();
    const reconnect = mayReconnect && this.wanted && shouldReconnect(info.reason);
    let delay = null;
    if (reconnect) {
      delay = backoffDelay(this.attempt++, this.random);
      this.retryTimer = this.timers.setTimeout(() => this.open(), delay);
    } else if (mayReconnect) {
      this.wanted = false;
    }
    this.setState("disconnected");
    this.onClose({ ...info, reconnectInMs: delay });
  }

  receive(data) {
    if (typeof data === "string") return; // the server sends binary messages only
    const { frames, error } = decodeServerFrames(data);
    for (const f of frames) {
      try {
        this.handle(f);
      } catch (e) {
        // One bad handler must not stop the frames after it.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
    if (error && this.ws) {
      // The server broke the protocol: drop this session and resume on a fresh one.
      this.closing = { reason: "protocol_violation", message: describeDecodeError(error) };
      const ws = this.ws;
      this.detach(ws);
      try {
        ws.close(4000, "malformed");
      } catch {
        // ignore
      }
      this.ended({ ...this.closing, code: 4000, welcomed: this.welcome !== null }, true);
    }
  }

  handle(f) {
    switch (f.type) {
      case "Welcome":
        this.welcome = f;
        this.attempt = 0;
        this.clock.sample(f.server_time_ms, this.timers.now());
        this.setState("connected");
        this.onWelcome(f);
        this.ping();
        this.pingTimer = this.timers.setInterval(() => this.ping(), this.pingIntervalMs);
        return;
      case "Ack":
        if (this.settle(f.req, f, null)) return;
        break;
      case "Error":
        if (f.req !== 0 && this.settle(f.req, null, new RequestError(f.code, f.message, f.retry_after_ms, f.req))) return;
        break;
      case "HistoryPage":
        this.settle(f.req, f, null); // the page sent on JoinRoom follows the Ack: not pending then
        break;
      case "Pong": {
        const key = f.nonce.toString();
        const sent = this.pings.get(key);
        if (sent !== undefined) {
          this.pings.delete(key);
          this.clock.pong(f.server_time_ms, sent, this.timers.now());
        }
        return;
      }
      case "Closing":
        this.closing = f;
        break;
      default:
        break;
    }
    this.onFrame(f);
  }

  settle(req, value, error) {
    const p = this.pending.get(req);
    if (p === undefined) return false;
    this.pending.delete(req);
    this.timers.clearTimeout(p.timer);
    if (error) p.reject(error);
    else p.resolve(value);
    return true;
  }

  ping() {
    this.nonce++;
    this.pings.set(this.nonce.toString(), this.timers.now());
    this.send({ type: "Ping", nonce: this.nonce });
  }

  /** A fresh request id (u32, never 0). */
  nextReq() {
    this.lastReq = this.lastReq >= 0xffffffff ? 1 : this.lastReq + 1;
    return this.lastReq;
  }

  /** Queues a frame for the next transport message; false when not connected (dropped). */
  send(frame) {
    if (this.ws === null || this.state !== "connected") return false;
    this.queue.push(encodeClient(frame));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return true;
  }

  flush() {
    if (this.ws === null || this.queue.length === 0) return;
    const frames = this.queue;
    this.queue = [];
    for (const msg of joinFrames(frames)) this.ws.send(msg);
  }

  /**
   * Sends a request frame (its `req` is filled in unless given) and resolves with the Ack (or
   * the HistoryPage answering a History); rejects with a RequestError for an Error frame, a
   * lost connection or no answer in time. Encoding errors reject too (never throw).
   */
  request(frame) {
    if (this.state !== "connected") {
      return Promise.reject(new RequestError("disconnected", "not connected to the server"));
    }
    const req = frame.req ?? this.nextReq();
    const full = { ...frame, req };
    return new Promise((resolve, reject) => {
      try {
        this.send(full);
      } catch (e) {
        reject(new RequestError("invalid_argument", e.message));
        return;
      }
      const timer = this.timers.setTimeout(() => {
        if (this.pending.delete(req)) reject(new RequestError("timeout", "the server did not answer in time", 0, req));
      }, this.requestTimeoutMs);
      this.pending.set(req, { resolve, reject, timer, type: frame.type });
    });
  }
}
