// Owns: the administrator panel (#admin, shown to ADMIN users only) — ban / unban a user,
// ban / unban an address range, list the bans, roll back a user's pixels over a time window,
// and the audit log (GET /audit, newest first, 50 at a time with Older; refreshed after the
// administrator's own actions here and in the inspector). Every action is one HTTP call; the
// destructive ones (bans, rollback) ask for a confirmation first; results go to #admin-result
// and the notice line. The audit log's wording is pure and tested in tests/moderation.test.mjs.

import { h, fill, notify, describeError, formatDateTime } from "./ui.js";
import { confirmAction } from "./dialog.js";
import { MODERATED_EVENT } from "./restore.js";

/** Audit entries per page. */
export const AUDIT_PAGE = 50;

const AUDIT_ACTIONS = {
  ban_user: "ban",
  unban_user: "unban",
  ban_net: "address ban",
  unban_net: "address unban",
  set_role: "role change",
  kick: "kick",
  rollback: "rollback",
  delete_message: "message deleted",
  rewind: "area restored",
};

/** The words for an audit action name (an unknown one is shown as it is). */
export function auditActionLabel(action) {
  return AUDIT_ACTIONS[action] ?? String(action ?? "?").replace(/_/g, " ");
}

/**
 * One audit entry `{seq, time_ms, actor, actor_name, action, target, target_name?, detail}` as the table's
 * cells: `{time, who, action, target, detail}` (strings). Actor 0 is the operator's admin
 * endpoint, not a user.
 */
export function auditCells(e) {
  const actor = Number(e?.actor ?? 0);
  const who = e?.actor_name ? String(e.actor_name) : actor === 0 ? "operator (admin endpoint)" : `user #${actor}`;
  return {
    time: e?.time_ms != null ? formatDateTime(e.time_ms) : "",
    who,
    action: auditActionLabel(e?.action),
    // A user target comes with its name; an id without one is shown as such.
    target: e?.target_name ? String(e.target_name) : /^\d+$/.test(String(e?.target ?? "")) ? `user #${e.target}` : String(e?.target ?? ""),
    detail: String(e?.detail ?? ""),
  };
}

/** The `before` for the next (older) page after `entries` (newest first), or null when there is none. */
export function auditOlderCursor(entries, limit = AUDIT_PAGE) {
  if (!Array.isArray(entries) || entries.length < limit) return null;
  const oldest = entries[entries.length - 1]?.seq;
  return oldest === undefined || oldest === null ? null : String(oldest);
}

export class Admin {
  /** `ctx`: {api, clock, state} */
  constructor(ctx) {
    this.ctx = ctx;
    const $ = (id) => document.getElementById(id);
    this.els = {
      panel: $("admin"),
      user: $("ban-user"),
      reason: $("ban-reason"),
      duration: $("ban-duration"),
      ip: $("ban-ip"),
      rbUser: $("rollback-user"),
      rbMinutes: $("rollback-minutes"),
      result: $("admin-result"),
      bans: $("bans"),
      audit: $("audit-rows"),
      auditOlder: $("audit-older"),
      auditStatus: $("audit-status"),
    };
    this.auditBefore = null; // cursor of the next older page, or null
    this.auditToken = 0;
    this.visible = false;
    const on = (id, fn) => $(id).addEventListener("click", () => this.run(fn));
    on("ban", () => this.ban());
    on("unban", () => this.unban());
    on("ip-ban", () => this.banIp());
    on("ip-unban", () => this.unbanIp());
    on("rollback", () => this.rollback());
    on("refresh-bans", () => this.loadBans());
    on("refresh-audit", () => this.loadAudit());
    on("audit-older", () => this.loadAudit({ older: true }));
    document.addEventListener(MODERATED_EVENT, () => {
      if (this.visible) this.loadAudit().catch((e) => this.auditFailed(e));
    });
    for (const form of this.els.panel.querySelectorAll("form")) form.addEventListener("submit", (e) => e.preventDefault());
  }

  /** Shows or hides the panel for the logged-in user's role. */
  setVisible(isAdmin) {
    const was = this.visible;
    this.visible = isAdmin;
    this.els.panel.hidden = !isAdmin;
    if (!isAdmin) {
      this.els.result.textContent = "";
      fill(this.els.bans, []);
      this.auditToken++;
      this.auditBefore = null;
      fill(this.els.audit, []);
      this.els.auditOlder.hidden = true;
      this.els.auditStatus.textContent = "";
    } else if (!was) {
      this.loadAudit().catch((e) => this.auditFailed(e));
    }
  }

  async run(fn) {
    try {
      const text = await fn();
      if (text) {
        this.report(text);
        this.loadAudit().catch((e) => this.auditFailed(e));
      }
    } catch (e) {
      this.report(`Failed — ${describeError(e)}`, true);
    }
  }

  report(text, error = false) {
    this.els.result.textContent = text;
    this.els.result.dataset.kind = error ? "error" : "ok";
    notify(text, error ? "error" : "info");
  }

  required(input, what) {
    const v = input.value.trim();
    if (!v) {
      input.focus();
      throw Object.assign(new Error(`enter ${what}`), { code: "invalid_argument" });
    }
    return v;
  }

  durationS() {
    const raw = this.els.duration.value.trim();
    if (!raw) return null; // permanent
    const minutes = Number(raw);
    if (!Number.isFinite(minutes) || minutes <= 0) throw Object.assign(new Error("duration must be a positive number of minutes"), { code: "invalid_argument" });
    return Math.round(minutes * 60);
  }

  async ban() {
    const user = this.required(this.els.user, "a user name");
    const reason = this.els.reason.value.trim() || "banned by an administrator";
    const d = this.durationS();
    const ok = await confirmAction({
      title: `Ban ${user}?`,
      text: `${user} is logged out everywhere at once and sees: “${reason}”. Duration: ${d ? `${Math.round(d / 60)} min` : "permanent"}.`,
      confirmLabel: "Ban",
    });
    if (!ok) return "";
    await this.ctx.api.ban(user, reason, d);
    this.loadBans().catch(() => {});
    return `${user} banned${d ? ` for ${Math.round(d / 60)} min` : ""}: ${reason}`;
  }

  async unban() {
    const user = this.required(this.els.user, "a user name");
    await this.ctx.api.unban(user);
    this.loadBans().catch(() => {});
    return `${user} unbanned`;
  }

  async banIp() {
    const cidr = this.required(this.els.ip, "an address or CIDR range");
    const reason = this.els.reason.value.trim() || "banned by an administrator";
    const d = this.durationS();
    const ok = await confirmAction({
      title: `Ban ${cidr}?`,
      text: `New connections from ${cidr} are refused. Duration: ${d ? `${Math.round(d / 60)} min` : "permanent"}.`,
      confirmLabel: "Ban address",
    });
    if (!ok) return "";
    await this.ctx.api.banIp(cidr, reason, d);
    this.loadBans().catch(() => {});
    return `${cidr} banned: ${reason}`;
  }

  async unbanIp() {
    const cidr = this.required(this.els.ip, "an address or CIDR range");
    await this.ctx.api.unbanIp(cidr);
    this.loadBans().catch(() => {});
    return `${cidr} unbanned`;
  }

  async rollback() {
    const user = this.required(this.els.rbUser, "a user name");
    const minutes = Number(this.els.rbMinutes.value || "60");
    if (!Number.isFinite(minutes) || minutes <= 0) throw Object.assign(new Error("minutes must be positive"), { code: "invalid_argument" });
    const ok = await confirmAction({
      title: `Roll back ${user}'s pixels?`,
      text: `Every pixel ${user} placed in the last ${minutes} min is restored to what was there before. This cannot be undone.`,
      confirmLabel: "Roll back",
    });
    if (!ok) return "";
    const now = this.ctx.clock.now();
    // A little past "now" so the newest pixels are inside the window despite clock error.
    const r = await this.ctx.api.rollback(user, now - minutes * 60_000, now + 2000);
    return `Rolled back ${r?.restored ?? 0} pixel(s) by ${user} from the last ${minutes} min`;
  }

  /** The newest page of the audit log (replacing what is shown), or with `older` the next page. */
  async loadAudit({ older = false } = {}) {
    if (older && this.auditBefore === null) return "";
    const token = ++this.auditToken;
    const q = new URLSearchParams({ limit: String(AUDIT_PAGE) });
    if (older) q.set("before", this.auditBefore);
    this.els.auditStatus.textContent = "Loading…";
    const answer = await this.ctx.api.call("GET", `/audit?${q}`);
    if (token !== this.auditToken) return "";
    const entries = Array.isArray(answer?.entries) ? answer.entries : [];
    const rows = entries.map((e) => {
      const c = auditCells(e);
      return h("tr", { dataset: { seq: String(e.seq ?? ""), action: String(e.action ?? "") } },
        h("td", { class: "audit-time" }, h("time", { datetime: e.time_ms != null ? new Date(Number(e.time_ms)).toISOString() : null }, c.time)),
        h("td", {}, c.who),
        h("td", {}, c.action),
        h("td", {}, c.target),
        h("td", { class: "audit-detail" }, c.detail),
      );
    });
    if (older) this.els.audit.append(...rows);
    else fill(this.els.audit, rows);
    this.auditBefore = auditOlderCursor(entries);
    this.els.auditOlder.hidden = this.auditBefore === null;
    const shown = this.els.audit.children.length;
    this.els.auditStatus.textContent = shown ? "" : "Nothing in the audit log yet.";
    return "";
  }

  auditFailed(e) {
    this.els.auditStatus.textContent = `The audit log could not be loaded: ${describeError(e)}`;
  }

  async loadBans() {
    const { users = [], ips = [] } = (await this.ctx.api.bans()) ?? {};
    const line = (label, b) => {
      const until = b.until_ms ?? b.expires_ms ?? null;
      return h("li", {}, h("strong", {}, label), b.reason ? ` — ${b.reason}` : "", until ? ` (until ${formatDateTime(until)})` : "");
    };
    const items = [
      ...users.map((b) => line(b.username ?? b.user ?? `user ${b.id ?? "?"}`, b)),
      ...ips.map((b) => line(b.cidr ?? b.ip ?? "?", b)),
    ];
    fill(this.els.bans, items.length ? items : [h("li", { class: "muted" }, "No bans")]);
    return "";
  }
}
