// Owns: the pixel inspector (#inspector, a card floating over the canvas) — who placed a
// pixel and when (GET /canvas/pixel), its live colour by name, its recent history, and the
// actions from there: use its colour, copy a link to it, and for administrators the
// moderation a moderator wants where they are looking — ban the painter, roll back the
// painter's pixels over a time window, each behind a confirmation (dialog.js), and restore
// an area of the canvas to an earlier moment (restore.js does the selection and the call).

import { h, fill, notify, describeError, formatDateTime, historyWho } from "./ui.js";
import { confirmAction } from "./dialog.js";
import { MODERATED_EVENT } from "./restore.js";

/** Tells the admin panel that the audit log has news. */
const moderated = () => document.dispatchEvent(new CustomEvent(MODERATED_EVENT));

export class Inspector {
  /**
   * `ctx`: {api, clock, state}; `board`: colour names, palette, replica, selectColour,
   * linkTo(x, y). `onClose()`: the user closed the card.
   */
  constructor(ctx, board, { onClose }) {
    this.ctx = ctx;
    this.board = board;
    this.onClose = onClose;
    this.token = 0;
    this.at = null; // {x, y} shown, or null
    this.info = null;
    this.historyOpen = false; // kept while the same pixel is re-rendered
    this.refreshTimer = null;
    this.els = {
      card: document.getElementById("inspector"),
      body: document.getElementById("inspector-body"),
      title: document.getElementById("inspector-title"),
    };
    document.getElementById("inspector-close").addEventListener("click", () => this.close());
  }

  get open() {
    return this.at !== null;
  }

  close() {
    this.at = null;
    this.info = null;
    this.token++;
    clearTimeout(this.refreshTimer);
    this.els.card.hidden = true;
    this.onClose();
  }

  /** Shows pixel (x, y): its live colour at once, who placed it once the server answers. */
  show(x, y) {
    if (!this.at || this.at.x !== x || this.at.y !== y) this.historyOpen = false;
    this.at = { x, y };
    this.info = null;
    this.els.card.hidden = false;
    const token = ++this.token;
    this.render({ loading: true });
    this.ctx.api.pixel(x, y).then(
      (info) => {
        if (token !== this.token) return;
        this.info = info;
        this.render({});
      },
      (e) => {
        if (token === this.token) this.render({ error: describeError(e) });
      },
    );
  }

  /** The shown pixel changed (live): refresh who placed it a moment later. */
  refreshSoon(delay = 400) {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      if (this.at) this.show(this.at.x, this.at.y);
    }, delay);
  }

  swatch(colour) {
    const css = this.board.palette[colour] ?? "#000000";
    return h("span", { class: "swatch-mini", style: `--swatch: ${css}`, "aria-hidden": "true" });
  }

  /** The live colour line (from the replica, updated as Pixels arrive). */
  renderLive() {
    const el = document.getElementById("inspector-live");
    const p = this.at;
    if (!el || !p) return;
    const c = this.board.replica?.pixel(p.x, p.y) ?? null;
    el.dataset.colour = c === null ? "" : String(c);
    fill(el, c === null ? ["not loaded yet"] : [this.swatch(c), ` ${this.board.colourLabel(c)}`]);
  }

  render({ loading = false, error = null }) {
    const { x, y } = this.at;
    const info = this.info;
    this.els.title.textContent = `Pixel (${x}, ${y})`;
    const rows = [h("p", { class: "inspector-coords" }, "Colour: ", h("span", { id: "inspector-live" }))];
    if (loading) rows.push(h("p", { class: "muted" }, "Loading who placed it…"));
    if (error) rows.push(h("p", { class: "error-text" }, `Could not load details: ${error}`));
    if (info) {
      const who = info.user ? info.user.username : null;
      const undid = info.restored_by_rollback_of ? info.restored_by_rollback_of.username : null;
      const when = info.time_ms != null ? [" on ", h("time", { datetime: new Date(Number(info.time_ms)).toISOString() }, formatDateTime(info.time_ms))] : "";
      rows.push(
        h("p", { class: "inspector-who", dataset: { user: who ?? "", rollbackOf: undid ?? "" } },
          who
            ? ["Placed by ", h("strong", { class: "inspector-user" }, who), when]
            : undid
              ? ["Restored by a rollback of ", h("strong", { class: "inspector-rollback-of" }, undid), when]
              : h("span", { class: "muted" }, "Never painted: it is yours to take."),
        ),
      );
      // Newest first, whatever order the server lists them in.
      const history = Array.isArray(info.history) ? [...info.history].sort((a, b) => Number(b.seq) - Number(a.seq)).slice(0, 10) : [];
      if (history.length > 1 || (history.length === 1 && !who)) {
        rows.push(
          h("details", { class: "inspector-history", open: this.historyOpen, ontoggle: (e) => { this.historyOpen = e.target.open; } },
            h("summary", {}, `History (${history.length})`),
            h("ol", {}, history.map((e) => h("li", {}, this.swatch(e.colour), ` ${historyWho(e)} — ${formatDateTime(e.time_ms)}`))),
          ),
        );
      }
    }
    rows.push(this.actions(info));
    this.els.body.dataset.x = String(x);
    this.els.body.dataset.y = String(y);
    fill(this.els.body, rows);
    this.renderLive();
  }

  actions(info) {
    const { x, y } = this.at;
    const buttons = [
      h("button", {
        type: "button", id: "inspector-use-colour", dataset: { action: "use-colour" },
        onclick: () => {
          const c = this.board.replica?.pixel(x, y);
          if (c !== null && c !== undefined) this.board.selectColour(c, { announce: true });
        },
      }, "Use this colour"),
      h("button", { type: "button", id: "inspector-link", dataset: { action: "link" }, onclick: () => this.board.copyLink(x, y) }, "Copy link"),
    ];
    const me = this.ctx.state.user;
    const painter = info?.user ?? null;
    if (me?.role === "admin" && painter && Number(painter.id) !== me.id) {
      buttons.push(
        h("button", { type: "button", class: "danger", id: "inspector-ban", dataset: { action: "ban", username: painter.username }, onclick: () => this.ban(painter.username) }, `Ban ${painter.username}…`),
        h("button", { type: "button", class: "danger", id: "inspector-rollback", dataset: { action: "rollback", username: painter.username }, onclick: () => this.rollback(painter.username) }, "Roll back their pixels…"),
      );
    }
    if (me?.role === "admin") {
      buttons.push(h("button", {
        type: "button", class: "danger", id: "inspector-restore-area", dataset: { action: "restore-area" },
        title: "Drag a rectangle on the canvas and bring it back to an earlier moment",
        onclick: () => {
          this.close(); // out of the way of the area to select
          this.board.restore.start();
        },
      }, "Restore an area…"));
    }
    return h("div", { class: "inspector-actions" }, buttons);
  }

  async ban(username) {
    const v = await confirmAction({
      title: `Ban ${username}?`,
      text: `${username} is logged out everywhere at once and cannot paint, chat or log in until the ban ends.`,
      confirmLabel: "Ban",
      fields: [
        { name: "reason", label: "Reason (they will see it)", value: "" , placeholder: "e.g. griefing" },
        { name: "minutes", label: "Duration in minutes (empty: permanent)", type: "number", min: 1 },
      ],
    });
    if (!v) return;
    const reason = v.reason.trim() || "banned by an administrator";
    const minutes = v.minutes.trim() ? Number(v.minutes) : null;
    if (minutes !== null && !(minutes > 0)) {
      notify("The duration must be a positive number of minutes.", "error");
      return;
    }
    try {
      await this.ctx.api.ban(username, reason, minutes === null ? null : Math.round(minutes * 60));
      notify(`${username} banned${minutes ? ` for ${minutes} min` : ""}: ${reason}`);
      moderated();
    } catch (e) {
      notify(`Ban failed: ${describeError(e)}`, "error");
    }
  }

  async rollback(username) {
    const v = await confirmAction({
      title: `Roll back ${username}'s pixels?`,
      text: `Every pixel ${username} placed in the window is restored to what was there before. This cannot be undone.`,
      confirmLabel: "Roll back",
      fields: [{ name: "minutes", label: "Over the last … minutes", type: "number", min: 1, value: "60" }],
    });
    if (!v) return;
    const minutes = Number(v.minutes || "60");
    if (!(minutes > 0)) {
      notify("The window must be a positive number of minutes.", "error");
      return;
    }
    const now = this.ctx.clock.now();
    try {
      // A little past "now" so the newest pixels are inside the window despite clock error.
      const r = await this.ctx.api.rollback(username, now - minutes * 60_000, now + 2000);
      const skipped = r?.painted_over ? ` (${r.painted_over} painted over since, left alone)` : "";
      const missed = r?.not_restored ? `; ${r.not_restored} could not be restored` : "";
      notify(`Rolled back ${r?.restored ?? 0} pixel(s) by ${username} from the last ${minutes} min${skipped}${missed}.`);
      moderated();
      this.refreshSoon(300);
    } catch (e) {
      notify(`Rollback failed: ${describeError(e)}`, "error");
    }
  }
}

