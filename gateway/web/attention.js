// Owns: what deserves the user's attention, decided without the DOM — the unread count of
// each conversation (a message counts when it arrived while the page was hidden or while its
// conversation was not the open one; looking at the conversation clears it), the tab title
// that carries their total ("(3) pixelparty"), what a mention is (@name in a room message,
// any case), and whether a message becomes a browser notification. Pure logic: tested in
// tests/attention.test.mjs; alerts.js puts it on the page.

/** Above this many unread messages the title and badges say "99+". */
export const UNREAD_SHOWN_MAX = 99;
/** Notification bodies are cut to this many characters (the whole text is in the page). */
export const NOTIFICATION_BODY_MAX = 140;
/** Characters a user name may hold (the server's rule: 3–32 of these). */
const NAME_CHAR = "A-Za-z0-9_.-";

/** The key of a conversation: `room:<id>` or `direct:<the other user's id>`. */
export function convKey(kind, conv) {
  return `${kind}:${conv}`;
}

/** Unread counts per conversation (keys from convKey). */
export class Unread {
  constructor() {
    this.counts = new Map();
  }

  /**
   * A message arrived in conversation `key`. It counts unless it is the user's own, or its
   * conversation is open on a page the user can see. Returns whether it counted.
   */
  arrived(key, { mine = false, open = false, hidden = false } = {}) {
    if (mine || (open && !hidden)) return false;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    return true;
  }

  /** The user looked at conversation `key`: nothing there is unread. Returns whether it changed. */
  seen(key) {
    return this.counts.delete(key);
  }

  count(key) {
    return this.counts.get(key) ?? 0;
  }

  /** Unread messages in every conversation, or in those of one kind ("room" | "direct"). */
  total(kind = null) {
    let n = 0;
    for (const [key, c] of this.counts) if (kind === null || key.startsWith(`${kind}:`)) n += c;
    return n;
  }

  clear() {
    this.counts.clear();
  }
}

/** A count as a badge or the title shows it: "3", "99+"; "" for none. */
export function unreadLabel(n) {
  if (!(n > 0)) return "";
  return n > UNREAD_SHOWN_MAX ? `${UNREAD_SHOWN_MAX}+` : String(n);
}

/** The tab title: "(3) pixelparty" with unread messages, the plain title without. */
export function unreadTitle(base, total) {
  const label = unreadLabel(total);
  return label ? `(${label}) ${base}` : base;
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");

/**
 * Whether `text` mentions user `name`: "@name" in any case, not inside a longer name or an
 * address ("@ann" is not in "@anna", "@ann.b" or "x@ann"); a full stop right after the name
 * ends the sentence ("thanks @ann.").
 */
export function isMention(text, name) {
  if (typeof text !== "string" || typeof name !== "string" || name === "") return false;
  const re = new RegExp(`(?:^|[^@${NAME_CHAR}])@${escapeRe(name)}(?![A-Za-z0-9_-])(?!\\.[${NAME_CHAR}])`, "i");
  return re.test(text);
}

/**
 * Whether a message becomes a browser notification: the user switched them on and the browser
 * allows them, the page is hidden (a visible page shows the message itself), it is someone
 * else's, and it is a direct message or mentions the user.
 * `m`: {enabled, permission ("granted" | "denied" | "default"), hidden, mine, direct, mention}.
 */
export function shouldNotify(m) {
  return Boolean(m.enabled && m.permission === "granted" && m.hidden && !m.mine && (m.direct || m.mention));
}

/** `{title, body, tag}` of the notification for a message (one tag per conversation: a newer message replaces the older one). */
export function notificationText({ direct, conv, authorName, roomName, text }) {
  const t = String(text ?? "").replace(/\s+/g, " ").trim();
  return {
    title: direct ? `${authorName} (direct message)` : `${authorName} mentioned you in # ${roomName}`,
    body: t.length > NOTIFICATION_BODY_MAX ? `${t.slice(0, NOTIFICATION_BODY_MAX - 1)}…` : t,
    tag: `pixelparty-${convKey(direct ? "direct" : "room", conv)}`,
  };
}
