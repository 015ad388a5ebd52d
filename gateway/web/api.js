// Owns: every call to the server's HTTP JSON API (same origin, the HttpOnly `pp_session`
// cookie authenticates; the token in login/signup answers is never stored), the ApiError
// shape of its `{"error", "message"}` answers, and fetching the binary canvas snapshot.
// No DOM; `fetch` is injectable for tests.

import { toSeq } from "./chatmodel.js";

export class ApiError extends Error {
  /** `code`: the API's error name ("conflict", "banned", ...) or "network"; `status`: HTTP status (0: no answer). */
  constructor(status, code, message, retryAfterMs = 0, untilMs = undefined) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
    /** For `banned`: when the ban ends (ms), `null` for a permanent ban, `undefined` when not said. */
    this.untilMs = untilMs;
  }
}

const STATUS_CODES = { 400: "invalid_argument", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 429: "rate_limited", 503: "overloaded" };

const seg = (s) => encodeURIComponent(String(s));

/** Query string from an object, skipping null/undefined values. */
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

export class Api {
  constructor(fetchImpl = globalThis.fetch?.bind(globalThis), base = "") {
    this.fetch = fetchImpl;
    this.base = base;
  }

  /** One JSON call: resolves with the parsed body (null for 204), rejects with ApiError. */
  async call(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await this.fetch(this.base + path, init);
    } catch (e) {
      throw new ApiError(0, "network", `cannot reach the server (${e?.message ?? e})`);
    }
    let data = null;
    if (res.status !== 204) {
      const text = await res.text().catch(() => "");
      if (text) {
        try {
          data = JSON.parse(text);
        } catch {
          data = null;
        }
      }
    }
    if (!res.ok) {
      const retry = Number(res.headers?.get?.("Retry-After"));
      const code = (data && typeof data.error === "string" && data.error) || STATUS_CODES[res.status] || `http_${res.status}`;
      const message = (data && typeof data.message === "string" && data.message) || `${res.status} ${res.statusText || code}`;
      const until = data && "until_ms" in data ? (data.until_ms === null ? null : Number(data.until_ms)) : undefined;
      throw new ApiError(res.status, code, message, Number.isFinite(retry) && retry > 0 ? retry * 1000 : 0, until);
    }
    return data;
  }

  // ---- account ----
  signup(username, password) {
    return this.call("POST", "/signup", { username, password });
  }
  login(username, password) {
    return this.call("POST", "/login", { username, password });
  }
  logout() {
    return this.call("POST", "/logout");
  }
  /** The logged-in account, or null when there is no session. Uses GET /session, which answers
   *  200 either way, so a logged-out page load logs no failed request. */
  async account() {
    try {
      const s = await this.call("GET", "/session");
      const acc = s && s.user;
      return acc && acc.id !== undefined && acc.id !== null ? acc : null;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return null;
      throw e;
    }
  }
  user(username) {
    return this.call("GET", `/users/${seg(username)}`);
  }

  // ---- social ----
  friends() {
    return this.call("GET", "/friends");
  }
  addFriend(username) {
    return this.call("POST", "/users/add", { username });
  }
  removeFriend(username) {
    return this.call("POST", "/users/remove", { username });
  }
  blocks() {
    return this.call("GET", "/blocks");
  }
  block(username) {
    return this.call("POST", "/users/block", { username });
  }
  unblock(username) {
    return this.call("POST", "/users/unblock", { username });
  }

  // ---- rooms and conversations ----
  rooms() {
    return this.call("GET", "/rooms");
  }
  createRoom(name) {
    return this.call("POST", "/rooms", { name });
  }
  async roomMessages(room, before = null, limit = 50) {
    const b = before === null ? null : toSeq(before).toString();
    return (await this.call("GET", `/rooms/${seg(room)}/messages${query({ before: b, limit })}`)).messages ?? [];
  }
  deleteRoomMessage(room, seq) {
    return this.call("DELETE", `/rooms/${seg(room)}/messages/${toSeq(seq)}`);
  }
  conversations() {
    return this.call("GET", "/conversations");
  }
  async directMessages(peer, before = null, limit = 50) {
    const b = before === null ? null : toSeq(before).toString();
    return (await this.call("GET", `/conversations/${seg(peer)}/messages${query({ before: b, limit })}`)).messages ?? [];
  }
  deleteDirectMessage(peer, seq) {
    return this.call("DELETE", `/conversations/${seg(peer)}/messages/${toSeq(seq)}`);
  }

  // ---- admin ----
  ban(username, reason, durationS = null) {
    const body = { username, reason };
    if (durationS !== null) body.duration_s = durationS;
    return this.call("POST", "/users/ban", body);
  }
  unban(username) {
    return this.call("POST", "/users/unban", { username });
  }
  banIp(cidr, reason, durationS = null) {
    const body = { cidr, reason };
    if (durationS !== null) body.duration_s = durationS;
    return this.call("POST", "/bans/ip", body);
  }
  unbanIp(cidr) {
    return this.call("POST", "/bans/ip/remove", { cidr });
  }
  bans() {
    return this.call("GET", "/bans");
  }
  rollback(username, fromMs, toMs) {
    return this.call("POST", "/canvas/rollback", { username, from_ms: Math.floor(fromMs), to_ms: Math.ceil(toMs) });
  }

  // ---- canvas ----
  canvas() {
    return this.call("GET", "/canvas");
  }
  pixel(x, y) {
    return this.call("GET", `/canvas/pixel${query({ x, y })}`);
  }
  /** A single-use WebTransport ticket (valid 60 s): `{ticket, url, cert_hashes}`; 404 when not offered. */
  wtTicket() {
    return this.call("POST", "/wt/ticket");
  }
  /** The snapshot document's bytes (fetch undoes the gzip content encoding). */
  async snapshot(url = "/canvas/snapshot") {
    let res;
    try {
      res = await this.fetch(this.base + url, { credentials: "same-origin" });
    } catch (e) {
      throw new ApiError(0, "network", `cannot reach the server (${e?.message ?? e})`);
    }
    if (!res.ok) throw new ApiError(res.status, STATUS_CODES[res.status] || `http_${res.status}`, `snapshot: ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}
