// Owns: putting what deserves attention on the page — the tab title with the unread total
// ("(3) pixelparty"), the unread badges of the phone's bottom bar (Chat: rooms, Friends:
// direct messages), the "Notify me of direct messages and mentions" switch (remembered in
// localStorage; switching it on asks the browser's permission) and the browser notifications
// themselves (only while the page is hidden; a click focuses the window and opens the
// conversation). What counts and what notifies is decided by attention.js.

import { Unread, convKey, unreadTitle, unreadLabel, isMention, shouldNotify, notificationText } from "./attention.js";
import { notify } from "./ui.js";

const NOTIFY_KEY = "pixelparty.notify";

export class Alerts {
  /**
   * `onOpen(kind, conv)`: show that conversation (its notification was clicked);
   * `onChange()`: unread counts changed (the lists redraw their badges).
   */
  constructor({ onOpen, onChange }) {
    this.unread = new Unread();
    this.onOpen = onOpen;
    this.onChange = onChange;
    this.baseTitle = document.title || "pixelparty";
    const $ = (id) => document.getElementById(id);
    this.els = { toggle: $("notify-toggle"), chatBadge: $("chat-unread"), friendsBadge: $("friends-unread") };
    // Switched on earlier, and the browser still allows it.
    this.enabled = this.saved() && this.permission() === "granted";
    this.els.toggle.checked = this.enabled;
    this.els.toggle.addEventListener("change", () => {
      this.setEnabled(this.els.toggle.checked).catch(() => {});
    });
    this.render();
  }

  get hidden() {
    return document.visibilityState === "hidden";
  }

  /** The browser's notification permission, or "unsupported". */
  permission() {
    const N = globalThis.Notification;
    return typeof N === "function" ? N.permission : "unsupported";
  }

  /**
   * A message arrived. It counts as unread unless the user sees it, and becomes a notification
   * when attention.js says so. `m`: {kind: "room" | "direct", conv, mine, open, authorName,
   * text, roomName, myName}. Returns whether it counted.
   */
  message(m) {
    const hidden = this.hidden;
    const direct = m.kind === "direct";
    const counted = this.unread.arrived(convKey(m.kind, m.conv), { mine: m.mine, open: m.open, hidden });
    const mention = !direct && isMention(m.text, m.myName);
    if (shouldNotify({ enabled: this.enabled, permission: this.permission(), hidden, mine: m.mine, direct, mention })) this.show(m);
    if (counted) this.changed();
    return counted;
  }

  show(m) {
    const t = notificationText({ direct: m.kind === "direct", conv: m.conv, authorName: m.authorName, roomName: m.roomName, text: m.text });
    let n;
    try {
      n = new Notification(t.title, { body: t.body, tag: t.tag });
    } catch {
      // Some browsers (Chrome on Android) show notifications only through a service worker:
      // the unread count in the title still tells.
      return;
    }
    n.onclick = (e) => {
      e?.preventDefault?.();
      globalThis.focus?.();
      n.close?.();
      this.onOpen(m.kind, m.conv);
    };
  }

  /** Unread messages in a conversation. */
  count(kind, conv) {
    return this.unread.count(convKey(kind, conv));
  }

  /** The user looked at a conversation (opened it, or came back to the page with it open). */
  seen(kind, conv) {
    if (conv !== null && conv !== undefined && this.unread.seen(convKey(kind, conv))) this.changed();
  }

  /** Logged out: nothing is unread any more. */
  reset() {
    this.unread.clear();
    this.changed();
  }

  changed() {
    this.render();
    this.onChange();
  }

  render() {
    document.title = unreadTitle(this.baseTitle, this.unread.total());
    this.badge(this.els.chatBadge, this.unread.total("room"));
    this.badge(this.els.friendsBadge, this.unread.total("direct"));
  }

  badge(el, n) {
    if (!el) return;
    el.textContent = unreadLabel(n);
    el.hidden = n === 0;
    if (n > 0) el.setAttribute("aria-label", `${n} unread`);
    else el.removeAttribute("aria-label");
  }

  saved() {
    try {
      return localStorage.getItem(NOTIFY_KEY) === "on";
    } catch {
      return false;
    }
  }

  save(on) {
    try {
      if (on) localStorage.setItem(NOTIFY_KEY, "on");
      else localStorage.removeItem(NOTIFY_KEY);
    } catch {
      // storage disabled: the switch holds for this page only
    }
  }

  /** The switch: on asks the browser's permission first; a refusal leaves it off and says why. */
  async setEnabled(on) {
    const toggle = this.els.toggle;
    if (!on) {
      this.enabled = false;
      this.save(false);
      return;
    }
    const N = globalThis.Notification;
    let permission = "unsupported";
    if (typeof N === "function") {
      // Asks only when the user has not decided yet; otherwise it answers the decision at once.
      try {
        permission = await N.requestPermission();
      } catch {
        permission = N.permission;
      }
    }
    if (permission !== "granted") {
      this.enabled = false;
      toggle.checked = false;
      this.save(false);
      const why = permission === "unsupported"
        ? "This browser cannot show notifications."
        : "Notifications are blocked for this site: allow them in the browser's site settings, then switch this on again.";
      notify(why, "error", { topic: "notifications" });
      return;
    }
    this.enabled = toggle.checked; // switched off again while the browser asked
    this.save(this.enabled);
    if (this.enabled) notify("You will be notified of direct messages and mentions while this page is hidden.", "info", { topic: "notifications" });
  }
}
