// Owns: the administrator panel (#admin, shown to ADMIN users only) — ban / unban a user,
// ban / unban an address range, list the bans, and roll back a user's pixels over a time
// window. Every action is one HTTP call; the destructive ones (bans, rollback) ask for a
// confirmation first; results go to #admin-result and the notice line.

import { h, fill, notify, describeError, formatDateTime } from "./ui.js";
import { confirmAction } from "./dialog.js";

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
    };
    const on = (id, fn) => $(id).addEventListener("click", () => this.run(fn));
    on("ban", () => this.ban());
    on("unban", () => this.unban());
    on("ip-ban", () => this.banIp());
    on("ip-unban", () => this.unbanIp());
    on("rollback", () => this.rollback());
    on("refresh-bans", () => this.loadBans());
    for (const form of this.els.panel.querySelectorAll("form")) form.addEventListener("submit", (e) => e.preventDefault());
  }

  /** Shows or hides the panel for the logged-in user's role. */
  setVisible(isAdmin) {
    this.els.panel.hidden = !isAdmin;
    if (!isAdmin) {
      this.els.result.textContent = "";
      fill(this.els.bans, []);
    }
  }

  async run(fn) {
    try {
      const text = await fn();
      if (text) this.report(text);
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
