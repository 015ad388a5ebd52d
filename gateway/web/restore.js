// Owns: "Restore an area" for administrators, started from the pixel inspector — the
// selection mode's bar over the canvas (#restore-bar, at the top of the message stack: what
// to do, the size of the area, the moment to go back to as a datetime-local input defaulting
// to ten minutes ago, Restore… and Cancel), the rectangle dragged on the canvas (canvas.js
// draws it; Escape or Cancel ends the mode), the confirmation (dialog.js) saying how big the
// area is and to when, POST /canvas/rewind and its result in a notice. It changes no pixel
// itself: the restored pixels arrive over the live session like any paint. The wording and
// the datetime-local conversions are pure and tested in tests/moderation.test.mjs.

import { h, notify, describeError, formatDateTime } from "./ui.js";
import { confirmAction } from "./dialog.js";

/** The moment the bar proposes: this long before now. */
export const RESTORE_DEFAULT_AGO_MS = 10 * 60_000;
/** Sent with moderation that changes what the audit log shows (admin.js refreshes it). */
export const MODERATED_EVENT = "pixelparty:moderated";

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** `ms` as a datetime-local value in the browser's time zone, to the second ("2025-03-01T14:05:09"). */
export function toLocalInput(ms) {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  return `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A datetime-local value (seconds optional) as ms since the epoch, or null when it is not a real moment. */
export function fromLocalInput(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(String(value ?? "").trim());
  if (!m) return null;
  const [year, month, day, hour, minute, second = 0] = m.slice(1, 7).map((v) => Number(v ?? 0));
  const ms = m[7] ? Number(m[7].padEnd(3, "0")) : 0;
  const d = new Date(year, month - 1, day, hour, minute, second, ms);
  // Date rolls 31 February over into March: such a value is not a moment.
  if (d.getFullYear() !== year || d.getMonth() !== month - 1 || d.getDate() !== day || d.getHours() !== hour || d.getMinutes() !== minute) return null;
  return d.getTime();
}

/** "12 × 8 pixels (96 in all) from (30, 40) to (41, 47)", or "the pixel at (3, 4)". */
export function describeArea(r) {
  if (r.width === 1 && r.height === 1) return `the pixel at (${r.x}, ${r.y})`;
  const n = r.width * r.height;
  return `${r.width} × ${r.height} pixels (${n.toLocaleString("en")} in all) from (${r.x}, ${r.y}) to (${r.x + r.width - 1}, ${r.y + r.height - 1})`;
}

const pixels = (n) => `${n} pixel${n === 1 ? "" : "s"}`;

/** The notice for a rewind's answer `{planned, restored, painted_over, not_restored, outcome_unknown}`. */
export function rewindOutcome(r, whenText) {
  const restored = Number(r?.restored ?? 0);
  const planned = Number(r?.planned ?? restored);
  const paintedOver = Number(r?.painted_over ?? 0);
  const notRestored = Number(r?.not_restored ?? 0);
  const unknown = Number(r?.outcome_unknown ?? 0);
  if (planned === 0) return `Nothing to restore: the area already looks as it did at ${whenText}.`;
  const parts = [`Restored ${pixels(restored)} to how they were at ${whenText}.`];
  if (paintedOver) parts.push(`${pixels(paintedOver)} painted again meanwhile ${paintedOver === 1 ? "was" : "were"} left alone.`);
  if (notRestored) parts.push(`${pixels(notRestored)} could not be restored.`);
  if (unknown) parts.push(`For ${pixels(unknown)} the server could not tell whether the restore was saved: check them in the inspector.`);
  return parts.join(" ");
}

/** The notice for a refused rewind. */
export function rewindRefusal(e) {
  if (e?.status === 409 || e?.code === "conflict") return "Another restore is running: try again when it has finished.";
  if (e?.status === 400) return `That moment cannot be restored to: ${describeError(e)}.`;
  return `Restore failed: ${describeError(e)}`;
}

export class AreaRestore {
  /** `ctx`: {api, clock, state}; `board`: its `view` (CanvasView) draws and reports the rectangle. */
  constructor(ctx, board) {
    this.ctx = ctx;
    this.board = board;
    this.rect = null;
    this.busy = false;
    this.els = null;
  }

  get active() {
    return Boolean(this.els && !this.els.bar.hidden);
  }

  build() {
    const at = h("input", { id: "restore-at", type: "datetime-local", step: "1", required: true });
    const els = {
      at,
      hint: h("p", { id: "restore-hint", class: "restore-hint" }),
      go: h("button", { id: "restore-go", type: "button", class: "danger-solid", disabled: true, onclick: () => this.confirm() }, "Restore…"),
      cancel: h("button", { id: "restore-cancel", type: "button", onclick: () => this.cancel() }, "Cancel"),
    };
    els.bar = h("div", { id: "restore-bar", class: "restore-bar card", role: "region", "aria-label": "Restore an area", hidden: true },
      els.hint,
      h("div", { class: "restore-row" }, h("label", { for: "restore-at" }, "Back to"), at, els.go, els.cancel),
    );
    els.bar.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        this.cancel();
      }
    });
    const stack = document.getElementById("overlay-top");
    stack.prepend(els.bar);
    this.els = els;
  }

  /** Enters the selection mode (administrators only: the server refuses anyone else anyway). */
  start() {
    if (this.ctx.state.user?.role !== "admin") return;
    if (!this.els) this.build();
    this.rect = null;
    this.els.at.value = toLocalInput(this.ctx.clock.now() - RESTORE_DEFAULT_AGO_MS);
    this.els.bar.hidden = false;
    this.render();
    this.board.view.setSelecting((rect) => {
      this.rect = rect;
      this.render();
    });
    this.board.els.canvas.focus();
  }

  /** Leaves the selection mode (Escape, Cancel, or after a restore). */
  cancel() {
    if (!this.els) return;
    this.els.bar.hidden = true;
    this.rect = null;
    this.board.view.setSelecting(null);
  }

  render() {
    const { hint, go } = this.els;
    hint.textContent = this.busy
      ? "Restoring…"
      : this.rect
        ? `Area: ${describeArea(this.rect)}. Drag again to change it.`
        : "Drag over the area to restore. Esc cancels.";
    hint.dataset.area = this.rect ? `${this.rect.x},${this.rect.y},${this.rect.width},${this.rect.height}` : "";
    go.disabled = this.busy || !this.rect;
  }

  async confirm() {
    const rect = this.rect;
    if (!rect || this.busy) return;
    const atMs = fromLocalInput(this.els.at.value);
    if (atMs === null) {
      notify("Pick the date and time to go back to.", "error", { topic: "restore" });
      this.els.at.focus();
      return;
    }
    if (atMs > this.ctx.clock.now()) {
      notify("That moment is in the future: pick one before now.", "error", { topic: "restore" });
      this.els.at.focus();
      return;
    }
    const when = formatDateTime(atMs);
    const ok = await confirmAction({
      title: "Restore this area?",
      text: `${capitalise(describeArea(rect))} go${rect.width * rect.height === 1 ? "es" : ""} back to how ${rect.width * rect.height === 1 ? "it was" : "they were"} at ${when}. Whatever was painted there since is replaced. This cannot be undone.`,
      confirmLabel: "Restore",
    });
    if (!ok || !this.active) return;
    this.busy = true;
    this.render();
    try {
      const r = await this.ctx.api.call("POST", "/canvas/rewind", { at_ms: atMs, rect: { x: rect.x, y: rect.y, width: rect.width, height: rect.height } });
      notify(rewindOutcome(r, when), "info", { topic: "restore" });
      this.busy = false;
      this.cancel();
      document.dispatchEvent(new CustomEvent(MODERATED_EVENT));
    } catch (e) {
      notify(rewindRefusal(e), "error", { topic: "restore" });
      this.busy = false;
      if (this.els) this.render();
    }
  }
}

const capitalise = (s) => s.charAt(0).toUpperCase() + s.slice(1);
