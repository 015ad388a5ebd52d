// Owns: the social feature — friends (send, accept, decline, cancel, remove requests; the
// friends list with each friend's online dot, online first), blocks (block / unblock, the
// blocked-ids set the chat filters with, purging a blocked user's messages), direct messages
// (conversation list with unread badges, one open conversation with history and older pages,
// live DirectMessage / Deleted frames, sending, deleting; a conversation with someone who is
// no longer a friend, or is blocked, takes no new message and says why), and acting on the
// pushed `Social` frames (socialmodel.js says what each means). The lists are read over HTTP
// when the session (re)connects and again when a Social frame says they changed: never polled.

import { MessageLog, normalizeMessage, dmPeer } from "./chatmodel.js";
import { MessageListView } from "./chat.js";
import { U64_MAX, MAX_TEXT_BYTES } from "./codec.js";
import { h, fill, notify, describeError, guard, utf8Length, formatTime, announce, Serial } from "./ui.js";
import { socialEffect, PushLog, sortFriends, dmClosedReason } from "./socialmodel.js";
import { unreadLabel } from "./attention.js";

export class Social {
  /** `ctx`: {api, net(), clock, state, history(kind, conv, before), onBlocked(userId), alerts} */
  constructor(ctx) {
    this.ctx = ctx;
    this.friends = []; // [{id, username, online}]
    this.incoming = [];
    this.outgoing = [];
    this.blocks = [];
    this.blockedIds = new Set();
    this.known = { friends: false, blocks: false }; // read at least once since the login
    this.names = new Map(); // user id → username
    this.convs = new Map(); // peer id → {peer, username, log, loaded, lastMs}
    this.active = null;
    this.presence = new PushLog(); // online / offline pushed while GET /friends was on its way
    this.reads = {
      friends: new Serial(() => this.readFriends()),
      blocks: new Serial(() => this.readBlocks()),
      conversations: new Serial(() => this.readConversations()),
    };
    const $ = (id) => document.getElementById(id);
    this.els = {
      friendForm: $("friend-form"),
      friendName: $("friend-name"),
      friends: $("friends"),
      incoming: $("incoming"),
      outgoing: $("outgoing"),
      blockForm: $("block-form"),
      blockName: $("block-name"),
      blocks: $("blocks"),
      convs: $("conversations"),
      dmTitle: $("dm-title"),
      dmMessages: $("dm-messages"),
      dmOlder: $("dm-load-older"),
      dmForm: $("dm-form"),
      dmInput: $("dm-input"),
      dmSend: $("dm-send"),
      dmClosed: $("dm-closed"),
    };
    this.view = new MessageListView(this.els.dmMessages, {
      isMine: (m) => m.author === this.ctx.state.user?.id,
      canDelete: (m) => m.author === this.ctx.state.user?.id,
      onDelete: (m) => this.deleteMessage(m),
      onNearTop: () => this.loadOlder().catch((e) => notify(`Older messages: ${describeError(e)}`, "error")),
    });
    this.els.friendForm.addEventListener("submit", (e) => {
      e.preventDefault();
      guard(async () => {
        const name = this.els.friendName.value.trim();
        if (!name) return;
        await this.addFriend(name);
        this.els.friendName.value = "";
      }, "Friend request failed — ")();
    });
    this.els.blockForm.addEventListener("submit", (e) => {
      e.preventDefault();
      guard(async () => {
        const name = this.els.blockName.value.trim();
        if (!name) return;
        await this.block(name);
        this.els.blockName.value = "";
      }, "Block failed — ")();
    });
    this.els.dmForm.addEventListener("submit", (e) => {
      e.preventDefault();
      guard(() => this.send(), "Message not sent — ")();
    });
    this.els.dmOlder.addEventListener("click", guard(() => this.loadOlder(), "Older messages: "));
    $("refresh-social").addEventListener("click", guard(() => this.refresh(), "Refresh failed — "));
    this.renderDm();
  }

  get net() {
    return this.ctx.net();
  }

  get me() {
    return this.ctx.state.user;
  }

  isBlocked(userId) {
    return this.blockedIds.has(userId);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Logged in: the lists at once (over HTTP); the session's Welcome reads them again. */
  async onLogin() {
    await this.refresh();
  }

  onLogout() {
    this.friends = [];
    this.incoming = [];
    this.outgoing = [];
    this.blocks = [];
    this.blockedIds.clear();
    this.known = { friends: false, blocks: false };
    this.presence.clear();
    this.convs.clear();
    this.names.clear();
    this.active = null;
    this.render();
    this.renderDm({ switched: true });
  }

  /**
   * A new session: what changed while there was none was not pushed, so read the lists again,
   * and the newest page of every loaded conversation.
   */
  onWelcome() {
    if (!this.me) return;
    this.refresh().catch((e) => notify(`Friends: ${describeError(e)}`, "error"));
    for (const c of this.convs.values()) {
      if (!c.loaded) continue;
      this.ctx.history("direct", c.peer, U64_MAX).then((msgs) => {
        c.log.mergeLatest(msgs.filter((m) => !this.isBlocked(m.author)));
        if (this.active === c.peer) this.view.render();
      }, () => {});
    }
  }

  /** Reloads friends, requests, blocks and conversations. */
  async refresh() {
    await Promise.all([this.reads.friends.run(), this.reads.blocks.run(), this.reads.conversations.run()]);
  }

  /** GET /friends; online / offline pushed while it was on its way are applied on top. */
  async readFriends() {
    const mark = this.presence.mark();
    const me = this.me;
    const fr = await this.ctx.api.friends();
    if (this.me !== me) return; // logged out (or in as someone else) meanwhile
    const id = (u) => ({ ...u, id: Number(u.id) });
    this.friends = (fr.friends ?? []).map(id);
    this.incoming = (fr.incoming ?? []).map(id);
    this.outgoing = (fr.outgoing ?? []).map(id);
    for (const p of this.presence.since(mark)) this.setOnline(p.id, p.online);
    for (const list of [this.friends, this.incoming, this.outgoing]) for (const u of list) this.names.set(u.id, u.username);
    this.known.friends = true;
    this.render();
    this.renderDm();
  }

  async readBlocks() {
    const me = this.me;
    const bl = await this.ctx.api.blocks();
    if (this.me !== me) return; // logged out (or in as someone else) meanwhile
    this.blocks = (bl.blocks ?? []).map((u) => ({ ...u, id: Number(u.id) }));
    for (const u of this.blocks) this.names.set(u.id, u.username);
    this.setBlocked(new Set(this.blocks.map((b) => b.id)));
    this.known.blocks = true;
    this.render();
    this.renderDm();
  }

  async readConversations() {
    const me = this.me;
    const cv = await this.ctx.api.conversations();
    if (this.me !== me) return; // logged out (or in as someone else) meanwhile
    for (const c of cv.conversations ?? []) {
      const peer = Number(c.peer);
      this.names.set(peer, c.username);
      const conv = this.conv(peer, c.username);
      conv.lastMs = Math.max(conv.lastMs, Number(c.last_ms ?? 0));
    }
    this.renderConversations();
  }

  /** The blocked set is now `ids`: the messages of the newly blocked disappear. */
  setBlocked(ids) {
    const before = this.blockedIds;
    this.blockedIds = ids;
    for (const id of ids) {
      if (before.has(id)) continue;
      this.purge(id);
      // Their conversation leaves the list: nothing could clear its unread count any more.
      this.ctx.alerts.seen("direct", id);
    }
  }

  setOnline(id, online) {
    const f = this.friends.find((u) => u.id === id);
    if (f) f.online = online;
  }

  conv(peer, username) {
    let c = this.convs.get(peer);
    if (!c) {
      c = { peer, username: username ?? this.names.get(peer) ?? `user ${peer}`, log: new MessageLog(), loaded: false, lastMs: 0 };
      this.convs.set(peer, c);
    } else if (username) {
      c.username = username;
    }
    return c;
  }

  // ---- friends and blocks ------------------------------------------------------------------

  async addFriend(username) {
    const r = await this.ctx.api.addFriend(username);
    notify(r?.status === "friends" ? `You and ${username} are now friends.` : `Friend request sent to ${username}.`);
    await this.refresh();
  }

  async removeFriend(username, what = "removed") {
    await this.ctx.api.removeFriend(username);
    notify(`${username}: ${what}.`);
    await this.refresh();
  }

  async block(username) {
    const r = await this.ctx.api.block(username);
    notify(blockNotice(username, r?.ended ?? null));
    await this.refresh();
  }

  async unblock(username) {
    await this.ctx.api.unblock(username);
    notify(`${username} unblocked.`);
    await this.refresh();
  }

  purge(userId) {
    for (const c of this.convs.values()) c.log.removeAuthor(userId);
    this.view.render();
    this.ctx.onBlocked(userId);
  }

  // ---- direct messages ---------------------------------------------------------------------

  async openDm(peer, username) {
    const c = this.conv(peer, username);
    this.active = peer;
    this.ctx.alerts.seen("direct", peer);
    this.render();
    this.renderDm({ switched: true });
    if (!c.loaded) {
      c.log.loading = true;
      try {
        const msgs = await this.ctx.history("direct", peer, U64_MAX);
        c.log.addAll(msgs.filter((m) => !this.isBlocked(m.author)));
        c.loaded = true;
        if (msgs.length === 0) c.log.exhausted = true;
      } finally {
        c.log.loading = false;
      }
      if (this.active === peer) this.renderDm({ switched: true });
    }
    this.els.dmInput.focus();
  }

  async loadOlder() {
    const c = this.active === null ? null : this.convs.get(this.active);
    if (!c || !c.loaded || c.log.loading || c.log.exhausted) return;
    c.log.loading = true;
    this.els.dmOlder.disabled = true;
    try {
      const msgs = await this.ctx.history("direct", c.peer, c.log.oldestSeq() ?? U64_MAX);
      if (msgs.length === 0) c.log.exhausted = true;
      else c.log.addAll(msgs.filter((m) => !this.isBlocked(m.author)));
      if (this.active === c.peer) this.view.render();
    } finally {
      c.log.loading = false;
      this.renderOlderButton();
    }
  }

  async send() {
    const peer = this.active;
    const input = this.els.dmInput;
    const text = input.value;
    if (peer === null) {
      notify("Choose a friend to message first.", "error");
      return;
    }
    const closed = this.closedReason(peer);
    if (closed !== null) {
      notify(closed, "error");
      return;
    }
    if (!text.trim()) return;
    if (utf8Length(text) > MAX_TEXT_BYTES) {
      notify(`Messages are at most ${MAX_TEXT_BYTES} bytes.`, "error");
      return;
    }
    const ack = await this.net.request({ type: "SendDirect", to: peer, text });
    if (input.value === text) input.value = "";
    const me = this.me;
    const c = this.conv(peer);
    if (me) {
      c.log.add({ seq: ack.value, author: me.id, authorName: me.username, timeMs: this.ctx.clock.now(), text });
      c.lastMs = Date.now();
      if (this.active === peer) this.view.render({ bottom: true });
    }
  }

  async deleteMessage(m) {
    const peer = this.active;
    if (peer === null) return;
    if (this.net.connected) await this.net.request({ type: "Delete", kind: "direct", conv: peer, seq: m.seq });
    else await this.ctx.api.deleteDirectMessage(peer, m.seq);
    if (this.convs.get(peer)?.log.remove(m.seq) && this.active === peer) this.view.render();
  }

  handleFrame(f) {
    switch (f.type) {
      case "DirectMessage": {
        const me = this.me;
        if (!me) return true;
        const peer = dmPeer(f, me.id);
        if (this.isBlocked(f.from)) return true;
        if (f.from !== me.id) this.names.set(f.from, f.from_name);
        const c = this.conv(peer, f.from !== me.id ? f.from_name : undefined);
        c.lastMs = Math.max(c.lastMs, Number(f.time_ms));
        if (c.log.add(normalizeMessage(f))) {
          const mine = f.from === me.id;
          const open = this.active === peer;
          if (open) {
            this.view.render();
            if (!mine) announce(`${f.from_name} (direct): ${f.text}`);
          } else if (!mine) {
            notify(`New message from ${f.from_name}.`);
          }
          const seen = open && (this.ctx.shown?.("direct") ?? true);
          this.ctx.alerts.message({ kind: "direct", conv: peer, mine, open: seen, authorName: f.from_name, text: f.text, myName: me.username });
          this.renderConversations();
        }
        return true;
      }
      case "Deleted":
        if (f.kind !== "direct") return false;
        if (this.convs.get(f.conv)?.log.remove(f.seq) && this.active === f.conv) this.view.render();
        return true;
      case "HistoryPage":
        return f.kind === "direct"; // answers to our History requests: handled where requested
      case "Social":
        return this.onSocial(f);
      default:
        return false;
    }
  }

  /**
   * A pushed change to this user's friends or blocks: shown at once where the frame says
   * enough, then the lists it touches are read again (they stay the truth).
   */
  onSocial(f) {
    const effect = socialEffect(f.kind);
    if (effect === null || effect.room) return false;
    if (!this.me) return true;
    if (f.name) this.names.set(f.id, f.name);
    if (effect.online !== undefined) {
      this.presence.push({ id: f.id, online: effect.online });
      this.setOnline(f.id, effect.online);
    }
    if (effect.ends) {
      const other = (u) => u.id !== f.id;
      this.friends = this.friends.filter(other);
      this.incoming = this.incoming.filter(other);
      this.outgoing = this.outgoing.filter(other);
    }
    if (effect.blocked === true) this.setBlocked(new Set([...this.blockedIds, f.id]));
    if (effect.blocked === false) this.setBlocked(new Set([...this.blockedIds].filter((id) => id !== f.id)));
    if (effect.toast) notify(effect.toast(f.name));
    const fail = (e) => notify(`Friends: ${describeError(e)}`, "error");
    if (effect.friends) this.reads.friends.run().catch(fail);
    if (effect.blocks) this.reads.blocks.run().catch(fail);
    this.render();
    this.renderDm();
    return true;
  }

  /** Why the conversation with `peer` takes no new message, or null. */
  closedReason(peer) {
    return dmClosedReason({
      name: this.convs.get(peer)?.username ?? this.names.get(peer) ?? `user ${peer}`,
      known: this.known.friends && this.known.blocks,
      friend: this.friends.some((u) => u.id === peer),
      blocked: this.isBlocked(peer),
    });
  }

  // ---- rendering ---------------------------------------------------------------------------

  render() {
    this.renderFriends();
    this.renderConversations();
  }

  userButton(label, action, username, fn, extra = {}) {
    return h("button", { type: "button", class: `link-button ${extra.class ?? ""}`, dataset: { action, username }, "aria-label": `${label} ${username}`, onclick: guard(fn, `${label} failed — `) }, extra.text ?? label);
  }

  renderFriends() {
    const row = (u, ...buttons) => h("li", { dataset: { userId: String(u.id), username: u.username } }, h("span", { class: "who" }, u.username), h("span", { class: "actions" }, buttons));
    // A friend's row starts with the online dot; screen readers hear "online" after the name.
    const friendRow = (u, ...buttons) => {
      const online = Boolean(u.online);
      return h("li", { dataset: { userId: String(u.id), username: u.username, online: String(online) } },
        h("span", { class: "online-dot", dataset: { online: String(online) }, title: online ? "online" : "offline", "aria-hidden": "true" }),
        h("span", { class: "who" }, u.username),
        online ? h("span", { class: "sr-only" }, " online") : null,
        h("span", { class: "actions" }, buttons));
    };
    fill(this.els.incoming, this.incoming.length ? this.incoming.map((u) => row(u,
      this.userButton("Accept", "accept", u.username, () => this.addFriend(u.username), { class: "accept" }),
      this.userButton("Decline", "decline", u.username, () => this.removeFriend(u.username, "request declined"), { class: "decline" }),
    )) : [h("li", { class: "muted" }, "No requests")]);
    fill(this.els.outgoing, this.outgoing.length ? this.outgoing.map((u) => row(u,
      this.userButton("Cancel request to", "cancel", u.username, () => this.removeFriend(u.username, "request cancelled"), { text: "Cancel" }),
    )) : [h("li", { class: "muted" }, "None pending")]);
    fill(this.els.friends, this.friends.length ? sortFriends(this.friends).map((u) => friendRow(u,
      this.userButton("Message", "dm", u.username, () => this.openDm(Number(u.id), u.username)),
      this.userButton("Remove friend", "unfriend", u.username, () => this.removeFriend(u.username, "unfriended"), { text: "Remove" }),
      this.userButton("Block", "block", u.username, () => this.block(u.username), { class: "danger" }),
    )) : [h("li", { class: "muted" }, "No friends yet: add someone by name above, or from a room's member list.")]);
    fill(this.els.blocks, this.blocks.length ? this.blocks.map((u) => row(u,
      this.userButton("Unblock", "unblock", u.username, () => this.unblock(u.username), { class: "unblock" }),
    )) : [h("li", { class: "muted" }, "Nobody blocked")]);
  }

  renderConversations() {
    const list = [...this.convs.values()].filter((c) => !this.isBlocked(c.peer)).sort((a, b) => b.lastMs - a.lastMs || a.username.localeCompare(b.username));
    fill(this.els.convs, list.length ? list.map((c) => h("li", {},
      h("button", { type: "button", class: "conversation", dataset: { userId: String(c.peer), username: c.username }, "aria-pressed": String(this.active === c.peer), onclick: guard(() => this.openDm(c.peer, c.username), "Conversation: ") },
        h("span", { class: "room-name" }, c.username),
        c.lastMs ? h("span", { class: "muted small" }, ` ${formatTime(c.lastMs)}`) : null,
        this.unreadBadge(c.peer),
      ),
    )) : [h("li", { class: "muted" }, "No conversations yet: press Message next to a friend.")]);
  }

  unreadBadge(peer) {
    const n = this.ctx.alerts.count("direct", peer);
    return n ? h("span", { class: "badge unread", "aria-label": `${n} unread` }, unreadLabel(n)) : null;
  }

  renderDm({ switched = false } = {}) {
    const c = this.active === null ? null : this.convs.get(this.active);
    const closed = c ? this.closedReason(c.peer) : null;
    this.els.dmTitle.textContent = c ? `Messages with ${c.username}` : "Direct messages";
    this.els.dmMessages.dataset.userId = c ? String(c.peer) : "";
    this.els.dmMessages.dataset.empty = c ? `No messages with ${c.username} yet: say hi!` : "Open a conversation: Message a friend from the list above.";
    this.els.dmInput.disabled = !c || closed !== null;
    this.els.dmSend.disabled = !c || closed !== null;
    this.els.dmForm.dataset.closed = String(closed !== null);
    this.els.dmClosed.textContent = closed ?? "";
    this.els.dmClosed.hidden = closed === null;
    if (switched) this.view.show(c ? c.log : null);
    else this.view.render();
    this.renderOlderButton();
  }

  renderOlderButton() {
    const c = this.active === null ? null : this.convs.get(this.active);
    this.els.dmOlder.hidden = !c || !c.loaded || c.log.exhausted;
    this.els.dmOlder.disabled = !c || c.log.loading;
  }
}

/**
 * What blocking someone did, in words: a block also ends a friendship or a pending request
 * between the two (the server says which in `ended`), and unblocking does not bring it back.
 */
export function blockNotice(username, ended) {
  const base = `${username} blocked: their messages are hidden.`;
  switch (ended) {
    case "friend": return `${base} You are no longer friends (unblocking will not change that).`;
    case "incoming": return `${base} Their friend request was declined.`;
    case "outgoing": return `${base} Your friend request to them was withdrawn.`;
    default: return base;
  }
}
