// Owns: the live session with the server — Hello first, frames batched into one
// transport message per turn, request ids and their Ack / Error / HistoryPage answers,
// keepalive Pings (which also feed the server clock), the Closing reason, and reconnecting
// with exponential backoff except after banned / kicked / session_revoked. It knows nothing
// of the canvas or chat: every other frame goes to `onFrame`.
//
// The session runs over a *transport* (PROTOCOL.md section 1): a WebSocket (`/ws`, one
// binary message per batch of whole frames) or a WebTransport session (HTTP/3, one
// bidirectional stream carrying frames back to back). Both look the same to `Connection`:
//
//   dial(handlers) → transport {kind, send(bytes), close(code, reason)}
//   handlers: onOpen(), onFrames(frames, decodeError | null), onClose({code, reason, opened, failure?})
//
// `kind` is "websocket" | "webtransport". A dialer never calls a handler from inside
// `dial()`, calls `onClose` at most once, and calls nothing after `close()`. `failure` (only
// when the transport never opened) says why: "unavailable" (no WebTransport here or on the
// server), "unreachable" (handshake failed or timed out), "ticket" (POST /wt/ticket failed).
// `TransportPicker` chooses per attempt: WebTransport when the browser has it and the server
// advertises it, else (or once WebTransport failed to connect, remembered for the page's
// lifetime) the WebSocket; `?transport=ws` / `?transport=wt` force one (no fallback).
//
// A logged-out page watches the canvas over a *visitor session* (PROTOCOL.md section 3,
// version 3): the same Connection, dialled as a WebSocket to `visitorUrl(url)` — no cookie,
// no ticket — and welcomed with role "visitor"; it may subscribe to tiles and nothing else.
//
// No DOM; the WebSocket and WebTransport classes and the timers are injectable, so
// tests/app.test.mjs drives it all with fakes.

import {
  encodeClient, decodeServerFrames, describeDecodeError, CloseCodeReason, MAX_TRANSPORT_MESSAGE,
  PROTOCOL_VERSION, StreamDecoder,
} from "./codec.js";
import { ServerClock } from "./clock.js";

export const AGENT = "pixelparty-web/0.1";
/** Close reasons after which the client must not reconnect on its own. */
export const NO_RECONNECT = Object.freeze(new Set(["banned", "kicked", "session_revoked"]));
export const PING_INTERVAL_MS = 25_000;
export const REQUEST_TIMEOUT_MS = 15_000;
export const MAX_BACKOFF_MS = 30_000;
/** Transport kinds. */
export const WEBSOCKET = "websocket";
export const WEBTRANSPORT = "webtransport";
/** A WebTransport session not ready (with its stream) within this long counts as unreachable. */
export const WT_CONNECT_TIMEOUT_MS = 5_000;
/** After the server ends the stream, how long to wait for the session close before giving up. */
export const WT_CLOSE_GRACE_MS = 2_000;

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

/** The URL of a visitor session: the WebSocket URL `wsUrl` with `visitor=1` (other parameters kept). */
export function visitorUrl(wsUrl) {
  const u = new URL(wsUrl);
  u.searchParams.set("visitor", "1");
  return u.toString();
}

/**
 * The transport the page's query string asks for: `?transport=ws` → "websocket",
 * `?transport=wt` → "webtransport" (each without fallback), anything else → "auto".
 */
export function transportMode(search) {
  let v = null;
  try {
    v = new URLSearchParams(search ?? "").get("transport");
  } catch {
    v = null;
  }
  if (v === "ws" || v === WEBSOCKET) return WEBSOCKET;
  if (v === "wt" || v === WEBTRANSPORT) return WEBTRANSPORT;
  return "auto";
}

/** `serverCertificateHashes` from the published SHA-256 hashes (hex); malformed ones are skipped. */
export function certificateHashes(hexes) {
  const out = [];
  for (const h of hexes ?? []) {
    if (typeof h !== "string" || !/^[0-9a-fA-F]{64}$/.test(h)) continue;
    const value = new Uint8Array(32);
    for (let i = 0; i < 32; i++) value[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
    out.push({ algorithm: "sha-256", value });
  }
  return out;
}

/**
 * Dials WebSockets: `url` (a string, or a function read at every dial) and `WebSocketImpl`
 * (default: the global WebSocket, read at every dial).
 */
export function webSocketDialer({ url, WebSocketImpl = null }) {
  return (h) => {
    const Impl = WebSocketImpl ?? globalThis.WebSocket;
    const ws = new Impl(typeof url === "function" ? url() : url);
    ws.binaryType = "arraybuffer";
    let opened = false;
    const detach = () => {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = () => {};
    };
    ws.onopen = () => {
      opened = true;
      h.onOpen();
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") return; // the server sends binary messages only
      const { frames, error } = decodeServerFrames(ev.data);
      h.onFrames(frames, error);
    };
    ws.onerror = () => {}; // a close event follows; its code tells what happened
    ws.onclose = (ev) => {
      detach();
      h.onClose({ code: ev.code, reason: ev.reason ?? "", opened });
    };
    return {
      kind: WEBSOCKET,
      send: (bytes) => ws.send(bytes),
      close(code, reason) {
        detach();
        try {
          ws.close(code, reason);
        } catch {
          // already closing
        }
      },
    };
  };
}

/** One WebTransport session with its single bidirectional stream (see webTransportDialer). */
class WebTransportSession {
  constructor(h, o) {
    this.kind = WEBTRANSPORT;
    this.h = h;
    this.o = o;
    this.done = false; // onClose delivered, or close() called: no more handlers
    this.opened = false;
    this.readEnded = false;
    this.closeInfo = null; // the session's close, held until the stream is read to its end
    this.wt = null;
    this.writer = null;
    this.timer = null;
    this.start();
  }

  async start() {
    let t;
    try {
      t = await this.o.ticket();
    } catch (e) {
      // 404: this server does not offer WebTransport (any more).
      const failure = e?.status === 404 ? "unavailable" : "ticket";
      return this.fail(failure, `WebTransport ticket: ${e?.message ?? e}`);
    }
    if (this.done) return;
    const Impl = this.o.WebTransportImpl ?? globalThis.WebTransport;
    if (typeof Impl !== "function") return this.fail("unavailable", "this browser has no WebTransport");
    if (!t || typeof t.url !== "string" || typeof t.ticket !== "string") return this.fail("unavailable", "no WebTransport URL from the server");
    let wt;
    try {
      wt = new Impl(`${t.url}?ticket=${encodeURIComponent(t.ticket)}`, { serverCertificateHashes: certificateHashes(t.cert_hashes) });
    } catch (e) {
      return this.fail("unreachable", `WebTransport: ${e?.message ?? e}`);
    }
    this.wt = wt;
    wt.ready?.catch?.(() => {}); // the failure is handled below
    Promise.resolve(wt.closed).then(
      (info) => this.sessionClosed(Number(info?.closeCode ?? 0), String(info?.reason ?? "")),
      (e) => this.sessionClosed(0, String(e?.message ?? e ?? "")),
    );
    const ms = this.o.connectTimeoutMs;
    this.timer = this.o.timers.setTimeout(() => {
      this.timer = null;
      this.abort("unreachable", `WebTransport: no session within ${ms} ms`);
    }, ms);
    let stream;
    try {
      await wt.ready;
      if (this.done) return;
      stream = await wt.createBidirectionalStream();
      if (this.done) return;
      this.writer = stream.writable.getWriter();
    } catch (e) {
      if (this.done) return;
      return this.abort("unreachable", `WebTransport: ${e?.message ?? e}`);
    }
    this.clearTimer();
    this.opened = true;
    this.h.onOpen();
    if (!this.done) this.read(stream.readable.getReader());
  }

  async read(reader) {
    const decoder = new StreamDecoder("server");
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (this.done) return;
        if (done) break;
        const { frames, error } = decoder.push(value);
        this.h.onFrames(frames, error);
        if (error || this.done) return; // the Connection closes on a decode error
      }
    } catch {
      // the stream was reset or the session closed
    }
    if (this.done) return;
    this.readEnded = true;
    if (this.closeInfo) return this.report(this.closeInfo);
    // The server finished the stream (after a Closing frame): its session close follows.
    this.clearTimer();
    this.timer = this.o.timers.setTimeout(() => {
      this.timer = null;
      this.quietClose(1000, "");
      this.report({ code: 0, reason: "the server ended the stream" });
    }, this.o.closeGraceMs);
  }

  sessionClosed(code, reason) {
    if (this.done) return;
    if (!this.opened) return this.fail("unreachable", `WebTransport: ${reason || "the session closed before it was ready"}`);
    // Bytes may still wait in the stream (the Closing frame): report once they are read.
    this.closeInfo = { code, reason };
    if (this.readEnded) return this.report(this.closeInfo);
    if (this.timer === null) {
      this.timer = this.o.timers.setTimeout(() => {
        this.timer = null;
        this.report(this.closeInfo);
      }, this.o.closeGraceMs);
    }
  }

  clearTimer() {
    if (this.timer !== null) {
      this.o.timers.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  report(info) {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
    this.h.onClose({ code: info.code, reason: info.reason, opened: true });
  }

  fail(failure, message) {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
    this.h.onClose({ code: 0, reason: message, opened: false, failure });
  }

  abort(failure, message) {
    this.quietClose(1000, "");
    this.fail(failure, message);
  }

  quietClose(code, reason) {
    try {
      this.wt?.close({ closeCode: code, reason });
    } catch {
      // already closed
    }
  }

  send(bytes) {
    if (this.done || this.writer === null) return;
    this.writer.write(bytes).catch(() => {}); // a broken stream shows as the session's close
  }

  close(code, reason) {
    this.done = true;
    this.clearTimer();
    this.quietClose(code, reason);
  }
}

/**
 * Dials WebTransport sessions: for every attempt a fresh single-use ticket from `ticket()`
 * (POST /wt/ticket → {ticket, url, cert_hashes}), then `new WebTransport(url?ticket=…,
 * {serverCertificateHashes})`, `ready`, and one bidirectional stream; the transport opens when
 * that stream exists (within `connectTimeoutMs`). Incoming bytes are reassembled into frames
 * with StreamDecoder. The server's Closing frame arrives before the session closes; the
 * session close's code and reason (when the browser reports them) are passed on as they are.
 */
export function webTransportDialer({ ticket, WebTransportImpl = null, timers = null, connectTimeoutMs = WT_CONNECT_TIMEOUT_MS, closeGraceMs = WT_CLOSE_GRACE_MS }) {
  const g = globalThis;
  const o = {
    ticket,
    WebTransportImpl,
    connectTimeoutMs,
    closeGraceMs,
    timers: timers ?? { setTimeout: g.setTimeout.bind(g), clearTimeout: g.clearTimeout.bind(g) },
  };
  return (h) => new WebTransportSession(h, o);
}

/**
 * Chooses the transport of every connection attempt. `mode` "auto" (default): WebTransport
 * when `available` (the browser has it) and `offered()` (GET /canvas advertises it) and it has
 * not failed before on this page, else the WebSocket; a WebTransport that fails to connect
 * (`failure` set: handshake refused or timed out, no ticket) hands the same attempt over to a
 * WebSocket at once, and — unless only the ticket request failed — every later attempt uses
 * the WebSocket too (`fallback` holds why). `mode` "websocket" / "webtransport": that one
 * only, no fallback. `onFallback(info)` is told each time WebTransport is given up.
 */
export class TransportPicker {
  constructor({ mode = "auto", webSocket, webTransport, available = false, offered = () => true, onFallback = () => {} }) {
    this.mode = mode;
    this.webSocket = webSocket;
    this.webTransport = webTransport;
    this.available = available;
    this.offered = offered;
    this.onFallback = onFallback;
    this.fallback = null;
  }

  /** The transport the next attempt tries first. */
  choice() {
    if (this.mode === WEBSOCKET || this.mode === WEBTRANSPORT) return this.mode;
    return this.available && this.fallback === null && this.offered() ? WEBTRANSPORT : WEBSOCKET;
  }

  /** A dialer (handlers → transport) for Connection's `dial` option. */
  dial(h) {
    if (this.choice() === WEBSOCKET) return this.webSocket(h);
    if (this.mode === WEBTRANSPORT) return this.webTransport(h);
    const proxy = {
      kind: WEBTRANSPORT,
      inner: null,
      send: (bytes) => proxy.inner.send(bytes),
      close: (code, reason) => proxy.inner.close(code, reason),
    };
    proxy.inner = this.webTransport({
      onOpen: () => h.onOpen(),
      onFrames: (frames, error) => h.onFrames(frames, error),
      onClose: (info) => {
        if (info.opened) return h.onClose(info);
        if (info.failure !== "ticket") this.fallback = info.reason || "WebTransport failed";
        this.onFallback(info);
        proxy.kind = WEBSOCKET;
        try {
          proxy.inner = this.webSocket(h);
        } catch (e) {
          proxy.inner = { kind: WEBSOCKET, send() {}, close() {} };
          h.onClose({ code: 0, reason: String(e?.message ?? e), opened: false });
        }
      },
    });
    return proxy;
  }
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
   * Options: `dial(handlers)` (a transport dialer, see the top of this file; default: a
   * WebSocket to `url` with `WebSocketImpl`), `url` (ws URL), `onFrame(frame)`,
   * `onState(state)` with state "connecting" | "connected" | "disconnected",
   * `onTransport(kind)` when a transport opens ("websocket" | "webtransport"),
   * `onWelcome(welcome)`, `onClose(info)` with `{reason, message, code, welcomed,
   * reconnectInMs}` (reconnectInMs null: not reconnecting), `WebSocketImpl`, `timers`
   * ({setTimeout, clearTimeout, setInterval, clearInterval, now}), `random`.
   */
  constructor(opts) {
    this.url = opts.url;
    this.onFrame = opts.onFrame ?? (() => {});
    this.onState = opts.onState ?? (() => {});
    this.onTransport = opts.onTransport ?? (() => {});
    this.onWelcome = opts.onWelcome ?? (() => {});
    this.onClose = opts.onClose ?? (() => {});
    this.WebSocketImpl = opts.WebSocketImpl ?? globalThis.WebSocket;
    this.dial = opts.dial ?? webSocketDialer({ url: () => this.url, WebSocketImpl: this.WebSocketImpl });
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
    this.transport = null; // the current transport, open or opening
    this.transportKind = null; // kind of the last transport that opened
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
    if (this.transport === null && this.retryTimer === null) this.open();
  }

  /** Closes (code 1000) and stays disconnected. */
  stop() {
    this.wanted = false;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const t = this.transport;
    if (t !== null) {
      this.detach();
      t.close(1000, "bye");
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
    let t = null;
    const live = () => t !== null && this.transport === t;
    const handlers = {
      onOpen: () => {
        if (!live()) return;
        this.transportKind = t.kind;
        this.onTransport(t.kind);
        this.queue.unshift(encodeClient({ type: "Hello", version: PROTOCOL_VERSION, kind: "browser", agent: AGENT }));
        this.flush();
      },
      onFrames: (frames, error) => {
        if (live()) this.receive(frames, error);
      },
      onClose: (ev) => {
        if (!live()) return;
        this.detach();
        const closing = this.closing;
        const reason = closing?.reason ?? CloseCodeReason[ev.code] ?? null;
        this.ended({ reason, message: closing?.message ?? ev.reason ?? "", code: ev.code, welcomed: this.welcome !== null }, true);
      },
    };
    try {
      t = this.dial(handlers);
    } catch (e) {
      this.ended({ reason: null, message: String(e?.message ?? e), code: 0, welcomed: false }, true);
      return;
    }
    this.transport = t;
  }

  /** Forgets the current transport (its handlers are ignored from now on) and its session state. */
  detach() {
    this.transport = null;
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

  /** Frames decoded by the transport, and the decode error that ended them (or null). */
  receive(frames, error) {
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
    if (error && this.transport) {
      // The server broke the protocol: drop this session and resume on a fresh one.
      this.closing = { reason: "protocol_violation", message: describeDecodeError(error) };
      const t = this.transport;
      this.detach();
      t.close(4000, "malformed");
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
    if (this.transport === null || this.state !== "connected") return false;
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
    if (this.transport === null || this.queue.length === 0) return;
    const frames = this.queue;
    this.queue = [];
    for (const msg of joinFrames(frames)) this.transport.send(msg);
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
