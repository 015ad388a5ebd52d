// Owns: small DOM helpers shared by the page's modules — element construction (text only,
// never HTML from the server), the aria-live notice line, human wording of API / protocol
// errors, time formatting, UTF-8 length checks, the guard that turns a rejected promise
// in an event handler into a visible notice instead of an unhandled rejection, and Serial,
// which keeps a list read from running twice at once.

/** `h("li", {class: "x", dataset: {seq: "1"}, onclick}, child, "text")`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

const utf8 = new TextEncoder();
export const utf8Length = (s) => utf8.encode(s).length;

let noticeTimer = null;
let noticeTopic = null;
/**
 * Shows (and announces, via the aria-live #notice region) a short message. `topic` names the
 * state it is about ("paint", "connection", ...): clearNotice(topic) takes it away as soon as
 * that state changes, so an error never outlives its cause.
 */
export function notify(message, kind = "info", { topic = null } = {}) {
  const el = document.getElementById("notice");
  if (!el) return;
  el.textContent = message;
  el.dataset.kind = kind;
  el.dataset.topic = topic ?? "";
  noticeTopic = topic;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => hideNotice(el), kind === "error" ? 8000 : 4000);
}

function hideNotice(el) {
  clearTimeout(noticeTimer);
  noticeTimer = null;
  noticeTopic = null;
  el.textContent = "";
  el.hidden = true;
}

/** Hides the notice when it is about `topic` (or, with topic "*", when it is any error). */
export function clearNotice(topic) {
  const el = document.getElementById("notice");
  if (!el || el.hidden) return;
  if (topic === "*" ? el.dataset.kind === "error" : noticeTopic === topic) hideNotice(el);
}

/** Announces a new chat message to screen readers (the visually hidden #chat-live region). */
export function announce(text) {
  const el = document.getElementById("chat-live");
  if (el) el.textContent = text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

const WORDS = {
  unauthorized: "you are not logged in",
  forbidden: "not allowed",
  not_found: "not found",
  invalid_argument: "invalid input",
  out_of_bounds: "that pixel is outside the canvas",
  invalid_colour: "that colour is not in the palette",
  cooldown: "cooldown",
  rate_limited: "too fast",
  not_member: "you are not in that room",
  not_friends: "direct messages need friendship",
  blocked: "one of you blocks the other",
  too_many_subscriptions: "too many tiles in view for live updates; zoom in",
  room_full: "that room is full",
  too_many_rooms: "you are in too many rooms",
  overloaded: "the server is busy",
  internal: "server failure",
  unavailable: "the server cannot save anything right now; nothing was changed",
  outcome_unknown: "the server failed while saving this; check whether it went through before trying again",
  conflict: "already taken",
  banned: "banned",
  disconnected: "not connected",
  timeout: "no answer from the server",
  network: "cannot reach the server",
};

/**
 * "word: message", without saying the same thing twice: a message that repeats the word (or
 * is contained in it) is not appended, a message that already says the word replaces it.
 */
export function joinWordAndMessage(word, message) {
  const norm = (s) => String(s ?? "").toLowerCase().replace(/[.!:;,\s]+$/u, "").trim();
  const w = norm(word);
  const m = norm(message);
  if (!m || m === w || w.includes(m)) return word;
  if (m.includes(w)) return String(message).replace(/[.\s]+$/u, "");
  return `${word}: ${message}`;
}

/** One line for an ApiError / RequestError / anything thrown. */
export function describeError(e) {
  if (!e) return "unknown error";
  const code = e.code;
  const word = WORDS[code] ?? code ?? "error";
  let text = e.message && e.message !== code ? joinWordAndMessage(word, e.message) : word;
  if (e.retryAfterMs > 0 && !/\d\s*s\b/.test(text)) text += ` (retry in ${Math.ceil(e.retryAfterMs / 1000)} s)`;
  return text;
}

/** Wraps an async event handler: a rejection becomes an error notice, never unhandled. */
export function guard(fn, prefix = "") {
  return (...args) => {
    try {
      const r = fn(...args);
      if (r && typeof r.then === "function") r.catch((e) => notify(prefix + describeError(e), "error"));
    } catch (e) {
      notify(prefix + describeError(e), "error");
    }
  };
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** "14:05" today, else "12 Mar, 14:05". */
export function formatTime(ms) {
  const d = new Date(Number(ms));
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return timeFmt.format(d);
  return `${d.toLocaleDateString(undefined, { day: "numeric", month: "short" })}, ${timeFmt.format(d)}`;
}

export function formatDateTime(ms) {
  return dateTimeFmt.format(new Date(Number(ms)));
}

/** Replaces the children of `el`. */
export function fill(el, children) {
  el.replaceChildren(...children);
}

/** Whether a scrollable element is (nearly) scrolled to its bottom. */
export function atBottom(el, slack = 24) {
  return el.scrollHeight - el.scrollTop - el.clientHeight <= slack;
}

/** A ban's reason with its end ("spam — until 1 Dec 2026, 14:00", "spam — permanent"). */
export function banMessage(reason, untilMs) {
  if (untilMs === null) return `${reason} — permanent`;
  if (untilMs === undefined || !Number.isFinite(Number(untilMs))) return String(reason ?? "");
  return `${reason} — until ${formatDateTime(untilMs)}`;
}

/** Who a history line names: the painter, or the user whose pixel a rollback undid. */
export function historyWho(entry) {
  if (entry?.username) return entry.username;
  if (entry?.restored_by_rollback_of?.username) return `restored (rollback of ${entry.restored_by_rollback_of.username})`;
  return "?";
}

/**
 * Runs an async read (`fn`) at most once at a time. `run()` while a read is in flight asks for
 * exactly one more read after it (however many times it is called meanwhile), so an answer
 * never overwrites a newer one and a burst of pushed changes costs at most two reads.
 * `run()` resolves with the result of a read that started after the call.
 */
export class Serial {
  constructor(fn) {
    this.fn = fn;
    this.current = null; // the read in flight
    this.next = null; // the read queued after it
  }

  run() {
    if (this.next !== null) return this.next;
    if (this.current === null) return this.launch();
    const settled = () => {};
    this.next = this.current.then(settled, settled).then(() => {
      this.next = null;
      return this.launch();
    });
    return this.next;
  }

  launch() {
    const p = (async () => this.fn())();
    this.current = p;
    const done = () => {
      if (this.current === p) this.current = null;
    };
    p.then(done, done);
    return p;
  }
}
