// Owns: the page's entry point — the shared state object, the session lifecycle (GET /session
// at load, sign up / log in / log out), the one Connection — a visitor session while nobody
// is logged in (read-only, live canvas, WebSocket only), the user's session once logged in
// (over WebTransport or WebSocket, chosen by net.js's TransportPicker; `?transport=ws|wt`
// forces one) — and the routing of its frames to the board, chat and social modules, the
// connection-state indicator (with the transport in use as #conn-state's data-transport;
// status.js words it), the #closed-reason banner (over the canvas, never moving it), the
// read-only page of a banned user, unread counts and notifications (alerts.js) and when the
// user has looked, and the `window.pixelparty` test hook.

import { Api } from "./api.js";
import {
  Connection, webSocketUrl, NO_RECONNECT, TransportPicker, webSocketDialer, webTransportDialer, transportMode, visitorUrl,
} from "./net.js";
import { ServerClock } from "./clock.js";
import { Board } from "./board.js";
import { Chat } from "./chat.js";
import { Social } from "./social.js";
import { Admin } from "./admin.js";
import { normalizeMessage } from "./chatmodel.js";
import { U64_MAX } from "./codec.js";
import { notify, clearNotice, describeError, guard, utf8Length, banMessage } from "./ui.js";
import { connectionPill, closeBanner } from "./status.js";
import { Theme } from "./theme.js";
import { Layout } from "./layout.js";
import { Alerts } from "./alerts.js";

const USERNAME_RE = /^[A-Za-z0-9_.-]{3,32}$/;

/** Everything the test hook exposes as `window.pixelparty.state` (kept current). */
const state = {
  connection: "disconnected",
  transport: null, // "webtransport" | "websocket": of the last session that opened
  transportMode: "auto", // from ?transport=ws|wt
  transportFallback: null, // why WebTransport is not used any more on this page, or null
  visitor: false, // the live session is a logged-out visitor's (read-only)
  user: null, // {id, username, role}
  geometry: null,
  palette: [],
  selectedColour: null,
  subscribed: 0,
  cooldownRemainingMs: 0,
  closed: null, // {reason, message} of the last session end that was not a normal close
  reconnecting: false, // the live session is gone and a new attempt is scheduled
  lastPaint: null,
  lastPaintError: null,
  snapshotVersion: null,
};

const api = new Api();
const clock = new ServerClock();
const $ = (id) => document.getElementById(id);

const TRANSPORT_NAMES = { webtransport: "WebTransport", websocket: "WebSocket" };

/**
 * #conn-state: data-state is the connection's state, the text and data-tone what it means to
 * this user (a logged-out visitor is "viewing", not "disconnected"); data-transport and the
 * tooltip tell the transport.
 */
function renderConnState() {
  const el = $("conn-state");
  const pill = connectionPill(state);
  el.textContent = pill.label;
  el.dataset.state = state.connection;
  el.dataset.tone = pill.tone;
  if (state.transport) el.dataset.transport = state.transport;
  else delete el.dataset.transport;
  let title = state.transport && state.connection === "connected" ? `${pill.label} (${TRANSPORT_NAMES[state.transport]})` : pill.label;
  if (!state.user) {
    title = state.connection === "connected"
      ? "Watching the canvas live: log in to paint and chat"
      : "Viewing the canvas (not live while reconnecting): log in to paint and chat";
  }
  if (state.transportFallback) title += ` — WebTransport not used: ${state.transportFallback}`;
  el.title = title;
}

state.transportMode = transportMode(location.search);
const transports = new TransportPicker({
  mode: state.transportMode,
  webSocket: webSocketDialer({ url: () => net.url }),
  webTransport: webTransportDialer({ ticket: () => api.wtTicket() }),
  available: typeof globalThis.WebTransport === "function",
  offered: () => Boolean(board.meta?.webtransport),
  onFallback: (info) => {
    state.transportFallback = transports.fallback;
    console.info(`pixelparty: WebTransport failed (${info.reason}); using the WebSocket`);
    renderConnState();
  },
});

// A logged-out page's session: the visitor WebSocket (PROTOCOL.md section 3), no cookie needed.
const visitorDial = webSocketDialer({ url: () => visitorUrl(net.url) });

const net = new Connection({
  url: webSocketUrl("/ws", location.href),
  dial: (h) => (state.user ? transports.dial(h) : visitorDial(h)),
  clock,
  onState: (s) => {
    state.connection = s;
    if (s === "connected") state.reconnecting = false;
    renderConnState();
    board.statusChanged();
  },
  onTransport: (kind) => {
    state.transport = kind;
    renderConnState();
  },
  onWelcome: (w) => onWelcome(w),
  onFrame: (f) => onFrame(f),
  onClose: (info) => onClose(info),
});

/** Newest-first paging of a conversation: over the live session when connected, else over HTTP. */
async function history(kind, conv, before) {
  const overHttp = async () => {
    const b = before === U64_MAX ? null : before;
    const list = kind === "room" ? await api.roomMessages(conv, b) : await api.directMessages(conv, b);
    return list.map(normalizeMessage);
  };
  if (!net.connected) return overHttp();
  try {
    const page = await net.request({ type: "History", kind, conv, before, limit: 50 });
    return page.entries.map(normalizeMessage);
  } catch (e) {
    // A past conversation with someone no longer a friend: the HTTP history may still serve it.
    if (kind === "direct" && (e.code === "not_friends" || e.code === "disconnected")) {
      try {
        return await overHttp();
      } catch {
        throw e;
      }
    }
    if (e.code === "disconnected") return overHttp();
    throw e;
  }
}

const theme = new Theme($("theme-toggle"));
const layout = new Layout();
const alerts = new Alerts({
  onOpen: (kind, conv) => openConversation(kind, conv),
  onChange: () => {
    chat.renderRooms();
    social.renderConversations();
  },
});
/**
 * Whether the panel of a conversation kind is on screen: the phone's sheet for it, or the
 * desktop's side panel. A message in the active conversation of a hidden panel is unread.
 */
function panelShown(kind) {
  if (layout.isPhone) return layout.sheet === (kind === "direct" ? "friends" : "chat");
  return document.body.dataset.sidebar !== "closed";
}

/** The open conversations' messages are read once their panel shows. */
function panelsChanged() {
  if (document.visibilityState !== "visible") return;
  if (panelShown("room")) alerts.seen("room", chat.active);
  if (panelShown("direct")) alerts.seen("direct", social.active);
}

const ctx = { api, clock, state, net: () => net, history, alerts, shown: panelShown };
const board = new Board(ctx);
const social = new Social({ ...ctx, onBlocked: (id) => chat.purgeAuthor(id) });
const chat = new Chat({ ...ctx, social });
const admin = new Admin(ctx);

/** The canvas takes its background colours from the theme. */
function themeCanvas() {
  const css = getComputedStyle(document.documentElement);
  board.view.setTheme({
    background: css.getPropertyValue("--canvas-bg").trim() || "#dde1e7",
    unloaded: css.getPropertyValue("--canvas-unloaded").trim() || "#c3c8d0",
  });
}
theme.onChange(themeCanvas);
themeCanvas();
layout.onInsets((inset) => board.view.setInset(inset));

// ---- connection events ---------------------------------------------------------------------

function onWelcome(w) {
  failedOpens = 0;
  if (!state.user && w.role !== "visitor") {
    // Still logged in after all (a logout whose request failed left a valid cookie, which the
    // server checks before a visitor's ?visitor=1): take the account back instead of showing
    // a user's session as "viewing".
    net.stop();
    api.account().then((acc) => (acc && !state.user ? loggedIn(acc) : watch()), () => watch());
    return;
  }
  state.visitor = w.role === "visitor";
  if (state.user) {
    state.user.id = w.user;
    state.user.role = w.role;
    state.user.username = w.name;
    renderAccount();
  }
  if (state.closed && !NO_RECONNECT.has(state.closed.reason)) hideBanner();
  clearNotice("*"); // errors from before this session are about a state that is over
  board.onWelcome(w);
  chat.onWelcome();
  social.onWelcome();
}

function onFrame(f) {
  if (board.handleFrame(f) || chat.handleFrame(f) || social.handleFrame(f)) return;
  switch (f.type) {
    case "Error":
      notify(`Server: ${describeError({ code: f.code, message: f.message, retryAfterMs: f.retry_after_ms })}`, "error");
      break;
    case "Closing":
      // The transport close follows. A visitor's pill says enough ("viewing", not live).
      if (state.user) showBanner(f.reason, f.message, null);
      break;
    default:
      break;
  }
}

let failedOpens = 0; // consecutive sessions that ended before a Welcome

function onClose(info) {
  state.visitor = false;
  board.onDisconnected();
  chat.onDisconnected();
  const reason = info.reason;
  state.reconnecting = info.reconnectInMs !== null && info.reconnectInMs !== undefined;
  renderConnState();
  if (reason !== "normal" && state.user) {
    showBanner(reason ?? (info.welcomed ? "connection_lost" : "unreachable"), info.message, info.reconnectInMs);
    if (reason === "session_revoked") {
      loggedOut();
      return;
    }
    if (reason === "banned") {
      enterReadOnly();
      // The closing frame carries the reason; the API also says until when.
      api.account().catch((e) => {
        if (e.code === "banned" && state.closed?.reason === "banned") showBanner("banned", banMessage(e.message, e.untilMs), null);
      });
    }
  }
  failedOpens = info.welcomed ? 0 : failedOpens + 1;
  if (!info.welcomed && !state.user && failedOpens === 1) {
    // A visitor refused before any frame: a stale session cookie (which the page cannot remove
    // itself) makes every upgrade a 401; GET /session clears it, so the next attempt works.
    api.account().then((acc) => {
      if (acc && !state.user) loggedIn(acc);
    }, () => {});
  }
  if (!info.welcomed && info.reconnectInMs !== null && state.user) {
    // Refused before any frame: maybe the session is gone (expired, logged out elsewhere).
    api.account().then((acc) => {
      if (acc === null && state.user) {
        loggedOut();
        notify("Your session ended: log in again.", "error");
      }
    }, (e) => {
      if (e.code === "banned") {
        net.stop();
        showBanner("banned", banMessage(e.message, e.untilMs), null);
        enterReadOnly();
      }
    });
  }
}

/** The banner over the canvas that says why the live session ended (status.js words it). */
function showBanner(reason, message, reconnectInMs) {
  state.closed = { reason, message: message ?? "" };
  const reconnecting = reconnectInMs !== null && reconnectInMs !== undefined;
  const b = closeBanner(reason, message, reconnecting);
  const el = $("closed-reason");
  $("closed-reason-text").textContent = b.text;
  el.dataset.reason = reason;
  el.dataset.tone = b.tone;
  $("reconnect").hidden = !(reason === "kicked" && state.user);
  el.hidden = false;
  renderConnState();
  board.statusChanged();
}

function hideBanner() {
  $("closed-reason").hidden = true;
  $("closed-reason-text").textContent = "";
  state.closed = null;
  renderConnState();
  board.statusChanged();
}

/**
 * A banned user's page drops to read-only at once: no palette, no forms; what is on the page
 * stays readable (the server refuses everything anyway — this only stops the page pretending).
 */
function enterReadOnly() {
  document.body.dataset.readonly = "true";
  for (const el of document.querySelectorAll("#sidebar input, #sidebar button, #place, #tool-pick")) el.disabled = true;
  board.selectColour(null);
  board.statusChanged();
}

/** The read-only state of a banned user's page ends with their session (they logged out). */
function leaveReadOnly() {
  if (document.body.dataset.readonly !== "true") return;
  delete document.body.dataset.readonly;
  for (const el of document.querySelectorAll("#sidebar input, #sidebar button, #place, #tool-pick")) el.disabled = false;
  board.statusChanged();
}

// ---- account -------------------------------------------------------------------------------

function renderAccount() {
  const u = state.user;
  $("auth-form").hidden = !!u;
  $("whoami").hidden = !u;
  $("me-name").textContent = u ? u.username : "";
  $("me-role").textContent = u && u.role === "admin" ? "admin" : "";
  $("me-role").hidden = !(u && u.role === "admin");
  document.body.dataset.auth = u ? "in" : "out";
  for (const el of document.querySelectorAll("[data-needs-login]")) el.hidden = !u;
  for (const el of document.querySelectorAll("[data-logged-out-only]")) el.hidden = !!u;
  admin.setVisible(!!u && u.role === "admin");
  layout.setAdmin(!!u && u.role === "admin");
  layout.setAccountLabel(u ? u.username : "Log in");
  renderConnState();
  board.statusChanged();
}

async function loggedIn(user) {
  state.user = { id: Number(user.id), username: user.username, role: user.role };
  // The visitor session (if any) gives way to the user's own.
  net.stop();
  renderAccount();
  layout.setAccountOpen(false);
  board.renderCooldown();
  if (state.closed && state.closed.reason === "session_revoked") hideBanner();
  net.start();
  const results = await Promise.allSettled([chat.onLogin(), social.onLogin()]);
  for (const r of results) if (r.status === "rejected") notify(describeError(r.reason), "error");
}

function loggedOut() {
  net.stop();
  state.user = null;
  chat.onLogout();
  social.onLogout();
  alerts.reset();
  renderAccount();
  board.renderCooldown();
  watch();
}

/** Logged out: watch the canvas live over a visitor session (not on a banned user's page). */
function watch() {
  if (!state.user && state.closed?.reason !== "banned") net.start();
}

/** Shows a conversation (a notification was clicked): its panel open, the conversation in it. */
function openConversation(kind, conv) {
  if (!state.user) return;
  if (layout.isPhone) layout.setSheet(kind === "direct" ? "friends" : "chat");
  else if (document.body.dataset.sidebar === "closed") layout.setSidebar(true);
  const open = kind === "direct" ? social.openDm(conv) : chat.open(conv);
  open.catch((e) => notify(describeError(e), "error"));
}

function credentials(forSignup) {
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) throw Object.assign(new Error("enter a user name and a password"), { code: "invalid_argument" });
  if (forSignup) {
    if (!USERNAME_RE.test(username)) throw Object.assign(new Error("user names are 3–32 letters, digits, _ . or -"), { code: "invalid_argument" });
    const n = utf8Length(password);
    if (n < 8 || n > 256) throw Object.assign(new Error("passwords are 8–256 bytes"), { code: "invalid_argument" });
  }
  return { username, password };
}

function authError(e) {
  const el = $("auth-error");
  let text;
  if (e.code === "unauthorized") text = "Wrong user name or password.";
  else if (e.code === "conflict") text = "That user name is taken.";
  else if (e.code === "banned") text = `banned: ${e.message}`;
  else if (e.code === "rate_limited") text = `Too many attempts${e.retryAfterMs ? `: try again in ${Math.ceil(e.retryAfterMs / 1000)} s` : ""}.`;
  else text = describeError(e);
  el.textContent = text;
  el.hidden = false;
  if (e.code === "banned") showBanner("banned", banMessage(e.message, e.untilMs), null);
}

async function authenticate(kind) {
  $("auth-error").hidden = true;
  let creds;
  try {
    creds = credentials(kind === "signup");
  } catch (e) {
    authError(e);
    return;
  }
  for (const b of [$("login"), $("signup")]) b.disabled = true;
  try {
    // The answer also holds the session token: it is deliberately not kept (the cookie is).
    const { user } = kind === "signup" ? await api.signup(creds.username, creds.password) : await api.login(creds.username, creds.password);
    $("password").value = "";
    notify(kind === "signup" ? `Welcome, ${user.username}!` : `Logged in as ${user.username}.`);
    const focusLost = $("auth-form").contains(document.activeElement);
    const done = loggedIn(user);
    if (focusLost) $("logout").focus(); // the form that held the focus is hidden now
    await done;
  } catch (e) {
    authError(e);
  } finally {
    for (const b of [$("login"), $("signup")]) b.disabled = false;
  }
}

$("auth-form").addEventListener("submit", (e) => {
  e.preventDefault();
  authenticate("login");
});
$("signup").addEventListener("click", () => authenticate("signup"));
$("logout").addEventListener("click", guard(async () => {
  net.stop(); // a normal close first, so the session_revoked that logout causes is not news
  try {
    await api.logout();
  } finally {
    // The banner first: a banned user who logs out watches live like any visitor.
    hideBanner();
    leaveReadOnly();
    loggedOut();
    notify("Logged out.");
    $("username").focus();
  }
}, "Logout: "));
$("reconnect").addEventListener("click", () => {
  hideBanner();
  if (state.user) net.start();
});
$("dismiss-banner").addEventListener("click", () => hideBanner());

addEventListener("online", () => net.retryNow());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible") return;
  net.retryNow();
  // The user is looking again: what the open conversations on screen hold is read.
  panelsChanged();
});
layout.onSheet(() => panelsChanged());
layout.onSidebar(() => panelsChanged());

// ---- test hook -----------------------------------------------------------------------------

window.pixelparty = {
  state,
  /**
   * Paints like a click would. Resolves `{ok: true, seq}` (seq a decimal string) once the
   * server applied it, or `{ok: false, code, message, retryAfterMs}` when refused.
   */
  async paint(x, y, colour) {
    try {
      const { seq } = await board.paint(x, y, colour);
      return { ok: true, seq: seq.toString() };
    } catch (e) {
      return { ok: false, code: e.code ?? "error", message: e.message, retryAfterMs: e.retryAfterMs ?? 0 };
    }
  },
  /** The colour index the replica holds at (x, y), or null (off the canvas / tile not held). */
  pixelAt: (x, y) => board.replica?.pixel(x, y) ?? null,
  /** The cursor held for a tile, as a decimal string (NO_CURSOR = "18446744073709551615"). */
  tileCursor: (tile) => (board.replica ? board.replica.cursorOf(tile).toString() : null),
  /** Ids of the tiles subscribed on the current session. */
  subscribedTiles: () => (board.replica ? [...board.replica.subscribed].sort((a, b) => a - b) : []),
  /** Centres the view on canvas pixel (x, y) at `scale` CSS pixels per canvas pixel. */
  centreOn(x, y, scale) {
    board.view.moved = true;
    board.view.anim = null;
    board.view.viewport?.centreOn(x + 0.5, y + 0.5, scale);
    board.view.viewChanged();
  },
  /** Page (client) coordinates of the centre of pixel (x, y), e.g. for mouse.click. */
  clientPointOf: (x, y) => board.view.clientPointOf(x, y),
  /** The view: `{x, y, scale}` (x, y: the canvas point at the centre), or null before the canvas loads. */
  view: () => (board.view.viewport ? { x: board.view.viewport.cx, y: board.view.viewport.cy, scale: board.view.viewport.scale } : null),
  /** Where the reticle is (`{x, y}`) while it is shown, else null. */
  reticle: () => {
    const v = board.view;
    return v.reticle && v.viewport && v.viewport.scale >= v.reticle.minScale ? v.reticlePixel() : null;
  },
  /** The pixel the inspector shows, or null. */
  inspected: () => board.inspector.at,
  /** The minimap's viewport outline in minimap pixels, or null. */
  minimapRect: () => board.minimap.rect ?? null,
  /** Unread messages: `{total, title}` (what the tab title counts). */
  unread: () => ({ total: alerts.unread.total(), title: document.title }),
  /** Resolves once the live session (WebTransport or WebSocket) is welcomed (or after `timeoutMs`, with false). */
  whenConnected(timeoutMs = 10_000) {
    return new Promise((resolve) => {
      const start = Date.now();
      const poll = () => {
        if (net.connected && (!board.replica || board.replica.connected)) resolve(true);
        else if (Date.now() - start > timeoutMs) resolve(false);
        else setTimeout(poll, 50);
      };
      poll();
    });
  },
};

// ---- boot ----------------------------------------------------------------------------------

async function boot() {
  renderAccount();
  const accountP = api.account().catch((e) => {
    if (e.code === "banned") showBanner("banned", banMessage(e.message, e.untilMs), null);
    else notify(`Server unreachable: ${describeError(e)}`, "error");
    return null;
  });
  await board.init();
  if (board.meta?.ws_url) net.url = webSocketUrl(board.meta.ws_url, location.href);
  const account = await accountP;
  if (account) await loggedIn(account);
  else watch();
}

boot().catch((e) => notify(describeError(e), "error"));
