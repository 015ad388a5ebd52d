// Owns: the chat-room feature — the room list (read when the session (re)connects, a room
// another user creates added as its `Social` frame arrives: never polled; create, join,
// leave, unread badges), the active room's message list (history on join, older pages on
// scroll, live messages, deleting), sending, and the room's presence list; rejoining the
// joined rooms after a reconnect; reopening the room that was open before a reload
// (remembered per user in localStorage). Also exports MessageListView, the message-list
// renderer social.js reuses for direct messages.

import { MessageLog, PresenceModel, normalizeMessage } from "./chatmodel.js";
import { U64_MAX, MAX_TEXT_BYTES } from "./codec.js";
import { h, fill, notify, describeError, guard, formatTime, formatDateTime, atBottom, utf8Length, announce, Serial } from "./ui.js";
import { PushLog } from "./socialmodel.js";
import { unreadLabel } from "./attention.js";

/** Renders a MessageLog into a scrollable <ul>, reconciling by seq and keeping the scroll place. */
export class MessageListView {
  /** `opts`: {canDelete(msg) → bool, onDelete(msg), onNearTop(), isMine(msg) → bool}. */
  constructor(ul, opts) {
    this.ul = ul;
    this.opts = opts;
    this.items = new Map(); // seq string → li
    this.log = null;
    ul.addEventListener("scroll", () => {
      if (this.log && ul.scrollTop < 48 && ul.scrollHeight > ul.clientHeight) this.opts.onNearTop?.();
    }, { passive: true });
  }

  /** Shows another log (or none), scrolled to its newest message. */
  show(log) {
    this.log = log;
    this.items.clear();
    this.ul.replaceChildren();
    this.render({ bottom: true });
  }

  item(m) {
    const mine = this.opts.isMine(m);
    const li = h("li", { class: mine ? "message mine" : "message", dataset: { seq: m.seq.toString(), author: String(m.author) } },
      h("div", { class: "meta" },
        h("span", { class: "author" }, m.authorName || `user ${m.author}`),
        " ",
        h("time", { datetime: new Date(m.timeMs).toISOString(), title: formatDateTime(m.timeMs) }, formatTime(m.timeMs)),
      ),
      h("p", { class: "text" }, m.text),
    );
    if (this.opts.canDelete(m)) {
      li.append(h("button", {
        type: "button", class: "delete link-button", dataset: { action: "delete" },
        "aria-label": `Delete message ${m.seq} by ${m.authorName}`,
        onclick: guard(() => this.opts.onDelete(m), "Delete failed — "),
      }, "Delete"));
    }
    return li;
  }

  /** Brings the list in line with the log. `bottom`: scroll to the newest message. */
  render({ bottom = false } = {}) {
    const ul = this.ul;
    const log = this.log;
    const wasBottom = atBottom(ul);
    const prevHeight = ul.scrollHeight;
    const prevTop = ul.scrollTop;
    const prevFirst = ul.firstElementChild?.dataset.seq ?? null;
    const want = log ? log.messages : [];
    const keys = new Set(want.map((m) => m.seq.toString()));
    for (const [key, li] of this.items) {
      if (!keys.has(key)) {
        li.remove();
        this.items.delete(key);
      }
    }
    for (let i = 0; i < want.length; i++) {
      const key = want[i].seq.toString();
      let li = this.items.get(key);
      if (li === undefined) {
        li = this.item(want[i]);
        this.items.set(key, li);
      }
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] ?? null);
    }
    const first = ul.firstElementChild?.dataset.seq ?? null;
    if (bottom || wasBottom) ul.scrollTop = ul.scrollHeight;
    else if (prevFirst !== null && first !== prevFirst) ul.scrollTop = prevTop + (ul.scrollHeight - prevHeight);
  }
}

export class Chat {
  /** `ctx`: {api, net(), clock, state, history(kind, conv, before), social, alerts} */
  constructor(ctx) {
    this.ctx = ctx;
    this.rooms = new Map(); // id → {id, name, created_by, created_ms}
    this.joined = new Map(); // id → {log: MessageLog, lastSeq}
    this.joinReqs = new Map(); // JoinRoom req → room id (its HistoryPage follows the Ack)
    this.presence = new PresenceModel();
    this.active = null;
    this.roomsRead = new Serial(() => this.readRooms());
    this.created = new PushLog(); // rooms pushed while GET /rooms was on its way
    this.roomsLoaded = false;
    this.pendingRestore = null; // room id to reopen once the rooms are known and the session is up
    this.els = {
      rooms: document.getElementById("rooms"),
      newRoomForm: document.getElementById("new-room-form"),
      newRoom: document.getElementById("new-room"),
      title: document.getElementById("room-title"),
      leave: document.getElementById("leave-room"),
      messages: document.getElementById("messages"),
      older: document.getElementById("load-older"),
      form: document.getElementById("message-form"),
      input: document.getElementById("message"),
      presence: document.getElementById("presence"),
      presenceCount: document.getElementById("presence-count"),
    };
    this.view = new MessageListView(this.els.messages, {
      isMine: (m) => m.author === this.ctx.state.user?.id,
      canDelete: (m) => m.author === this.ctx.state.user?.id || this.ctx.state.user?.role === "admin",
      onDelete: (m) => this.deleteMessage(m),
      onNearTop: () => this.loadOlder().catch((e) => notify(`Older messages: ${describeError(e)}`, "error")),
    });
    this.els.newRoomForm.addEventListener("submit", (e) => {
      e.preventDefault();
      guard(() => this.createRoom(), "Create room failed — ")();
    });
    this.els.form.addEventListener("submit", (e) => {
      e.preventDefault();
      guard(() => this.send(), "Message not sent — ")();
    });
    this.els.leave.addEventListener("click", guard(() => this.leave(), "Leave failed — "));
    this.els.older.addEventListener("click", guard(() => this.loadOlder(), "Older messages: "));
    document.getElementById("refresh-rooms").addEventListener("click", guard(() => this.loadRooms(), "Rooms: "));
    this.renderRoom();
  }

  get net() {
    return this.ctx.net();
  }

  get me() {
    return this.ctx.state.user;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** localStorage key of the room this user had open. */
  storageKey() {
    return this.me ? `pixelparty.room.${this.me.id}` : null;
  }

  rememberRoom(id) {
    const key = this.storageKey();
    if (!key) return;
    try {
      if (id === null) localStorage.removeItem(key);
      else localStorage.setItem(key, String(id));
    } catch {
      // storage disabled: nothing to reopen after a reload
    }
  }

  savedRoom() {
    const key = this.storageKey();
    try {
      const v = key ? localStorage.getItem(key) : null;
      return v !== null && /^\d+$/.test(v) ? Number(v) : null;
    } catch {
      return null;
    }
  }

  /** Reopens the remembered room once the room list is loaded and the session is live. */
  tryRestore() {
    const id = this.pendingRestore;
    if (id === null || !this.roomsLoaded || !this.net.connected) return;
    this.pendingRestore = null;
    if (!this.rooms.has(id)) {
      this.rememberRoom(null);
      return;
    }
    if (this.active === null) this.open(id).catch(() => {});
  }

  /** Logged in: the room list at once (over HTTP); the session's Welcome reads it again. */
  async onLogin() {
    this.pendingRestore = this.savedRoom();
    await this.loadRooms();
    this.tryRestore();
  }

  onLogout() {
    this.rooms.clear();
    this.created.clear();
    this.joined.clear();
    this.joinReqs.clear();
    this.presence.clear();
    this.active = null;
    this.roomsLoaded = false;
    this.pendingRestore = null;
    this.renderRooms();
    this.renderRoom();
  }

  /**
   * A new session: read the room list again (rooms created while there was no session were
   * not pushed) and join again every room we were in (history merges, presence refreshes).
   */
  onWelcome() {
    if (!this.me) return;
    this.loadRooms().then(() => this.tryRestore(), (e) => notify(`Rooms: ${describeError(e)}`, "error"));
    for (const id of [...this.joined.keys()]) {
      this.join(id, { rejoin: true }).catch((e) => {
        this.joined.delete(id);
        if (this.active === id) this.active = null;
        this.renderRooms();
        this.renderRoom();
        notify(`Could not rejoin ${this.roomName(id)}: ${describeError(e)}`, "error");
      });
    }
    this.tryRestore();
  }

  onDisconnected() {
    this.joinReqs.clear();
    this.presence.openSnapshot.clear(); // the next session's snapshot replaces the list
  }

  // ---- rooms -------------------------------------------------------------------------------

  roomName(id) {
    return this.rooms.get(id)?.name ?? `room ${id}`;
  }

  /** Reads the room list (one read at a time: see Serial). */
  loadRooms() {
    return this.roomsRead.run();
  }

  async readRooms() {
    const mark = this.created.mark();
    const me = this.me;
    const { rooms } = await this.ctx.api.rooms();
    if (this.me !== me) return; // logged out (or in as someone else) meanwhile
    this.rooms.clear();
    for (const r of rooms ?? []) this.rooms.set(Number(r.id), { ...r, id: Number(r.id) });
    for (const r of this.created.since(mark)) if (!this.rooms.has(r.id)) this.rooms.set(r.id, r);
    this.roomsLoaded = true;
    this.renderRooms();
    this.renderRoom();
  }

  /** A room someone created (a pushed `Social` room_created): listed at once. */
  roomCreated(id, name) {
    const room = { id, name };
    this.created.push(room);
    if (this.rooms.has(id)) return;
    this.rooms.set(id, room);
    this.renderRooms();
  }

  async createRoom() {
    const name = this.els.newRoom.value.trim();
    if (!name) {
      notify("Enter a room name.", "error");
      this.els.newRoom.focus();
      return;
    }
    if (utf8Length(name) > 64) {
      notify("Room names are at most 64 bytes.", "error");
      return;
    }
    const room = await this.ctx.api.createRoom(name);
    this.els.newRoom.value = "";
    const id = Number(room.id);
    this.rooms.set(id, { ...room, id });
    this.renderRooms();
    notify(`Room “${room.name}” created.`);
    await this.open(id);
  }

  /** Joins (if needed) and shows room `id`. */
  async open(id) {
    if (!this.joined.has(id)) await this.join(id);
    this.active = id;
    this.rememberRoom(id);
    this.ctx.alerts.seen("room", id);
    this.renderRooms();
    this.renderRoom({ switched: true });
  }

  async join(id, { rejoin = false } = {}) {
    const net = this.net;
    const isNew = !this.joined.has(id);
    if (isNew) this.joined.set(id, { log: new MessageLog(), lastSeq: 0n });
    const req = net.nextReq();
    this.joinReqs.set(req, id);
    this.presence.otherFrame(id); // the snapshot answering this join replaces the list
    try {
      const ack = await net.request({ type: "JoinRoom", req, room: id });
      const entry = this.joined.get(id);
      if (entry) entry.lastSeq = ack.value;
    } catch (e) {
      this.joinReqs.delete(req);
      if (isNew && !rejoin) this.joined.delete(id);
      throw e;
    }
    this.renderRooms();
  }

  async leave() {
    const id = this.active;
    if (id === null) return;
    try {
      await this.net.request({ type: "LeaveRoom", room: id });
    } catch (e) {
      if (e.code !== "not_member") throw e;
    }
    this.joined.delete(id);
    this.presence.forget(id);
    this.ctx.alerts.seen("room", id);
    this.active = null;
    this.rememberRoom(null);
    this.renderRooms();
    this.renderRoom({ switched: true });
    notify(`Left ${this.roomName(id)}.`);
  }

  // ---- frames ------------------------------------------------------------------------------

  handleFrame(f) {
    switch (f.type) {
      case "RoomMessage": {
        this.presence.otherFrame(f.room);
        const entry = this.joined.get(f.room);
        if (!entry || this.ctx.social.isBlocked(f.author)) return true;
        if (entry.log.add(normalizeMessage(f))) {
          if (f.seq > entry.lastSeq) entry.lastSeq = f.seq;
          const me = this.me;
          const mine = f.author === me?.id;
          const open = this.active === f.room;
          if (open) {
            this.view.render();
            if (!mine) announce(`${f.author_name}: ${f.text}`);
          }
          // Read only if its panel is on screen too (a phone on the paint sheet is not looking).
          const seen = open && (this.ctx.shown?.("room") ?? true);
          this.ctx.alerts.message({
            kind: "room", conv: f.room, mine, open: seen, authorName: f.author_name, text: f.text,
            roomName: this.roomName(f.room), myName: me?.username ?? "",
          }); // a message that counts redraws the badges (app.js: alerts' onChange)
        }
        return true;
      }
      case "Deleted":
        if (f.kind !== "room") return false;
        this.presence.otherFrame(f.conv);
        if (this.joined.get(f.conv)?.log.remove(f.seq) && this.active === f.conv) this.view.render();
        return true;
      case "HistoryPage": {
        if (f.kind !== "room") return false;
        this.presence.otherFrame(f.conv);
        const room = this.joinReqs.get(f.req);
        if (room === undefined) return true; // an answer to our own History request
        this.joinReqs.delete(f.req);
        const entry = this.joined.get(room);
        if (!entry) return true;
        const page = f.entries.filter((e) => !this.ctx.social.isBlocked(e.author)).map(normalizeMessage);
        entry.log.mergeLatest(page);
        if (this.active === room) this.view.render({ bottom: true });
        return true;
      }
      case "Presence":
        this.presence.apply(f);
        if (this.active === f.room) this.renderPresence();
        return true;
      case "Social":
        if (f.kind !== "room_created") return false;
        if (this.me) this.roomCreated(f.id, f.name);
        return true;
      default:
        return false;
    }
  }

  /** A user was blocked: their messages disappear from every room. */
  purgeAuthor(userId) {
    for (const entry of this.joined.values()) entry.log.removeAuthor(userId);
    this.view.render();
  }

  // ---- messages ----------------------------------------------------------------------------

  async send() {
    const id = this.active;
    const input = this.els.input;
    const text = input.value;
    if (id === null) {
      notify("Join a room first.", "error");
      return;
    }
    if (!text.trim()) return;
    if (utf8Length(text) > MAX_TEXT_BYTES) {
      notify(`Messages are at most ${MAX_TEXT_BYTES} bytes.`, "error");
      return;
    }
    const ack = await this.net.request({ type: "SendRoom", room: id, text });
    if (input.value === text) input.value = "";
    const entry = this.joined.get(id);
    const me = this.me;
    if (entry && me) {
      // The RoomMessage echo carries the same seq; the log keeps one.
      entry.log.add({ seq: ack.value, author: me.id, authorName: me.username, timeMs: this.ctx.clock.now(), text });
      if (this.active === id) this.view.render({ bottom: true });
    }
  }

  async deleteMessage(m) {
    const id = this.active;
    if (id === null) return;
    if (this.net.connected) await this.net.request({ type: "Delete", kind: "room", conv: id, seq: m.seq });
    else await this.ctx.api.deleteRoomMessage(id, m.seq);
    if (this.joined.get(id)?.log.remove(m.seq) && this.active === id) this.view.render();
  }

  async loadOlder() {
    const id = this.active;
    const entry = id === null ? null : this.joined.get(id);
    if (!entry || entry.log.loading || entry.log.exhausted) return;
    const log = entry.log;
    log.loading = true;
    this.els.older.disabled = true;
    try {
      const msgs = await this.ctx.history("room", id, log.oldestSeq() ?? U64_MAX);
      if (msgs.length === 0) log.exhausted = true;
      else log.addAll(msgs.filter((m) => !this.ctx.social.isBlocked(m.author)));
      if (this.active === id) this.view.render();
    } finally {
      log.loading = false;
      this.renderOlderButton();
    }
  }

  // ---- rendering ---------------------------------------------------------------------------

  renderRooms() {
    const items = [...this.rooms.values()]
      .sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id)
      .map((r) => {
        const entry = this.joined.get(r.id);
        const label = [h("span", { class: "room-name" }, r.name)];
        if (entry) label.push(h("span", { class: "badge joined-badge" }, "joined"));
        const unread = this.ctx.alerts.count("room", r.id);
        if (unread > 0) label.push(h("span", { class: "badge unread", "aria-label": `${unread} unread` }, unreadLabel(unread)));
        return h("li", {},
          h("button", {
            type: "button", class: "room", dataset: { roomId: String(r.id), joined: entry ? "true" : "false" },
            "aria-pressed": String(this.active === r.id),
            onclick: guard(() => this.open(r.id), `Could not join ${r.name} — `),
          }, label),
        );
      });
    if (items.length === 0) items.push(h("li", { class: "muted" }, this.me ? "No rooms yet: name one below and press Create." : "Log in to see the rooms."));
    fill(this.els.rooms, items);
  }

  renderRoom({ switched = false } = {}) {
    const id = this.active;
    const entry = id === null ? null : this.joined.get(id);
    this.els.title.textContent = entry ? `# ${this.roomName(id)}` : "No room selected";
    this.els.messages.dataset.roomId = entry ? String(id) : "";
    this.els.messages.dataset.empty = entry ? `No messages in # ${this.roomName(id)} yet: say hello!` : "Pick a room above, or create one, to start chatting.";
    this.els.leave.disabled = !entry;
    this.els.input.disabled = !entry;
    document.getElementById("send").disabled = !entry;
    if (switched || !entry) this.view.show(entry ? entry.log : null);
    else this.view.render();
    this.renderOlderButton();
    this.renderPresence();
  }

  renderOlderButton() {
    const entry = this.active === null ? null : this.joined.get(this.active);
    this.els.older.hidden = !entry || entry.log.exhausted;
    this.els.older.disabled = !entry || entry.log.loading;
  }

  renderPresence() {
    const id = this.active;
    const members = id === null ? [] : this.presence.members(id);
    this.els.presenceCount.textContent = id === null ? "" : `(${members.length})`;
    const me = this.me;
    fill(this.els.presence, members.map((m) => {
      const li = h("li", { dataset: { userId: String(m.user), username: m.name } }, h("span", { class: "who" }, m.name));
      if (me && m.user !== me.id) {
        li.append(
          h("button", { type: "button", class: "link-button", dataset: { action: "add-friend" }, "aria-label": `Add ${m.name} as a friend`, onclick: guard(() => this.ctx.social.addFriend(m.name), "Friend request failed — ") }, "Add friend"),
          h("button", { type: "button", class: "link-button danger", dataset: { action: "block" }, "aria-label": `Block ${m.name}`, onclick: guard(() => this.ctx.social.block(m.name), "Block failed — ") }, "Block"),
        );
      } else if (me) {
        li.append(h("span", { class: "muted" }, " (you)"));
      }
      return li;
    }));
  }
}
