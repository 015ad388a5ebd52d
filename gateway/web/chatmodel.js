// Owns: the chat data model shared by rooms and direct messages — one normalised message
// shape whatever its source (WebSocket frames or HTTP JSON), an ordered, de-duplicated
// message log per conversation with its paging state, and room presence (snapshot frames
// spanning several Presence frames, joined, left). Pure logic, no DOM: tested in
// tests/app.test.mjs.

/** A u64 from a frame (BigInt) or from JSON (number or decimal string) as a BigInt. */
export function toSeq(value) {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === "string" && /^\d+$/.test(value)) return BigInt(value);
  throw new TypeError(`not a sequence number: ${String(value)}`);
}

/**
 * A message as the UI uses it: `{seq: BigInt, author: Number, authorName, timeMs: Number,
 * text}`. Accepts HistoryPage entries and HTTP JSON messages (`seq, author, author_name,
 * time_ms, text`), RoomMessage frames and DirectMessage frames (`from, from_name`).
 */
export function normalizeMessage(m) {
  const author = m.author ?? m.from;
  return {
    seq: toSeq(m.seq),
    author: Number(author),
    authorName: String(m.author_name ?? m.from_name ?? m.authorName ?? ""),
    timeMs: Number(m.time_ms ?? m.timeMs ?? 0),
    text: String(m.text ?? ""),
  };
}

/** The other party of a direct message, seen from user `me`. */
export function dmPeer(frame, me) {
  return frame.from === me ? frame.to : frame.from;
}

/** The messages of one conversation, ascending by seq, each seq at most once. */
export class MessageLog {
  constructor() {
    this.messages = [];
    this.seqs = new Set();
    /** No older messages exist (an empty page came back). */
    this.exhausted = false;
    /** An older page is being fetched. */
    this.loading = false;
  }

  get size() {
    return this.messages.length;
  }

  has(seq) {
    return this.seqs.has(toSeq(seq).toString());
  }

  /** Index of the first message with a seq >= `seq`. */
  indexOf(seq) {
    let lo = 0;
    let hi = this.messages.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.messages[mid].seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Adds a normalised message; false if that seq is already there. */
  add(msg) {
    const key = msg.seq.toString();
    if (this.seqs.has(key)) return false;
    this.seqs.add(key);
    const last = this.messages.length - 1;
    if (last < 0 || this.messages[last].seq < msg.seq) this.messages.push(msg);
    else this.messages.splice(this.indexOf(msg.seq), 0, msg);
    return true;
  }

  /** Adds many; returns how many were new. */
  addAll(list) {
    let added = 0;
    for (const m of list) if (this.add(m)) added++;
    return added;
  }

  /**
   * Merges the page of the most recent messages sent on (re)joining a room. When it does not
   * reach back to what the log holds (more messages were missed than one page holds), the log
   * is replaced by the page, so it never shows a silent hole; older pages load on scroll.
   * Returns "merged" or "replaced".
   */
  mergeLatest(page) {
    if (page.length > 0 && this.messages.length > 0 && page[0].seq > this.newestSeq() + 1n) {
      this.clear();
      this.addAll(page);
      return "replaced";
    }
    this.addAll(page);
    return "merged";
  }

  remove(seq) {
    const s = toSeq(seq);
    const key = s.toString();
    if (!this.seqs.has(key)) return false;
    this.seqs.delete(key);
    const i = this.indexOf(s);
    this.messages.splice(i, 1);
    return true;
  }

  /** Removes every message by `author` (a user just blocked); returns how many. */
  removeAuthor(author) {
    const before = this.messages.length;
    this.messages = this.messages.filter((m) => {
      if (m.author !== author) return true;
      this.seqs.delete(m.seq.toString());
      return false;
    });
    return before - this.messages.length;
  }

  oldestSeq() {
    return this.messages.length ? this.messages[0].seq : null;
  }

  newestSeq() {
    return this.messages.length ? this.messages[this.messages.length - 1].seq : null;
  }

  clear() {
    this.messages = [];
    this.seqs.clear();
    this.exhausted = false;
    this.loading = false;
  }
}

/** Who is in each room, from Presence frames. */
export class PresenceModel {
  constructor() {
    this.rooms = new Map(); // room → Map(user → name)
    this.openSnapshot = new Set(); // rooms whose last frame was a snapshot (the next one extends it)
  }

  /** Applies a decoded Presence frame. */
  apply(frame) {
    const room = frame.room;
    let members = this.rooms.get(room);
    if (frame.kind === "snapshot") {
      if (!this.openSnapshot.has(room) || members === undefined) {
        members = new Map();
        this.rooms.set(room, members);
      }
      for (const e of frame.entries) members.set(e.user, e.name);
      this.openSnapshot.add(room);
      return;
    }
    this.openSnapshot.delete(room);
    if (members === undefined) {
      members = new Map();
      this.rooms.set(room, members);
    }
    for (const e of frame.entries) {
      if (frame.kind === "joined") members.set(e.user, e.name);
      else members.delete(e.user);
    }
  }

  /** Any other frame of `room` ends a multi-frame snapshot. */
  otherFrame(room) {
    this.openSnapshot.delete(room);
  }

  /** `[{user, name}]` sorted by name. */
  members(room) {
    const m = this.rooms.get(room);
    if (!m) return [];
    return [...m].map(([user, name]) => ({ user, name })).sort((a, b) => a.name.localeCompare(b.name) || a.user - b.user);
  }

  forget(room) {
    this.rooms.delete(room);
    this.openSnapshot.delete(room);
  }

  clear() {
    this.rooms.clear();
    this.openSnapshot.clear();
  }
}
