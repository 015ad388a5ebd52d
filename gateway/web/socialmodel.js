// Owns: the social data model, decided without the DOM — what each pushed `Social` frame
// (PROTOCOL.md section 5, version 3) changes on the page (which lists to read again, what
// changes at once, what the user is told), the pushed changes a list read that started
// earlier cannot hold yet, the friends list's order (online first), and why a direct
// conversation takes no new message. Pure logic: tested in tests/socialmodel.test.mjs;
// social.js and chat.js act on it.

/**
 * What each Social kind means for the page:
 *   friends / blocks: read GET /friends / GET /blocks again (the lists stay the truth);
 *   ends: the friendship or request with `id` is over now (drop it at once, before the read);
 *   blocked: `id` is blocked (true) or not (false) now;
 *   online: `id` is online (true) or offline (false) now;
 *   room: room `id` named `name` exists now;
 *   toast(name): what to tell the user, or absent.
 */
const EFFECTS = Object.freeze({
  friend_request: Object.freeze({ friends: true, toast: (name) => `${name} asks to be your friend.` }),
  request_sent: Object.freeze({ friends: true }),
  friend_added: Object.freeze({ friends: true, toast: (name) => `You and ${name} are now friends.` }),
  friend_removed: Object.freeze({ friends: true, ends: true }),
  blocked: Object.freeze({ friends: true, blocks: true, ends: true, blocked: true }),
  unblocked: Object.freeze({ friends: true, blocks: true, blocked: false }),
  online: Object.freeze({ online: true }),
  offline: Object.freeze({ online: false }),
  room_created: Object.freeze({ room: true }),
});

/** The effect of a Social frame's kind (see EFFECTS), or null for a kind this page does not know. */
export function socialEffect(kind) {
  return Object.hasOwn(EFFECTS, kind) ? EFFECTS[kind] : null;
}

/**
 * Pushed changes a list read that started earlier cannot contain yet. A read takes `mark()`
 * when it starts; when its answer arrives, `since(mark)` gives the changes pushed meanwhile,
 * to apply on top of it (else a slow read would undo a newer push). Holds the last `max`.
 */
export class PushLog {
  constructor(max = 256) {
    this.max = max;
    this.seq = 0;
    this.entries = [];
  }

  mark() {
    return this.seq;
  }

  push(value) {
    this.entries.push({ seq: ++this.seq, value });
    if (this.entries.length > this.max) this.entries.shift();
  }

  /** Values pushed after `mark`, oldest first. */
  since(mark) {
    return this.entries.filter((e) => e.seq > mark).map((e) => e.value);
  }

  clear() {
    this.entries = [];
  }
}

/** Friends for the list: online ones first, then by name (a copy; `online` absent counts as offline). */
export function sortFriends(friends) {
  return [...friends].sort((a, b) => Number(Boolean(b.online)) - Number(Boolean(a.online)) || String(a.username).localeCompare(String(b.username)) || Number(a.id) - Number(b.id));
}

/**
 * Why the direct conversation with `name` takes no new message, or null when it does.
 * `known`: the friends and blocks lists have been read (before that, nothing is refused);
 * `friend`: `name` is a friend; `blocked`: this user blocks `name`.
 */
export function dmClosedReason({ name, known, friend, blocked }) {
  if (!known) return null;
  if (blocked) return `You blocked ${name}: unblock them and become friends again to send messages.`;
  if (!friend) return `You and ${name} are not friends any more: you can read this conversation but not write in it.`;
  return null;
}
