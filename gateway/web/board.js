// Owns: the canvas feature around the drawing surface — canvas metadata and the snapshot
// load, the Replica and its tile subscriptions (visible tiles only, resumed from cursors after
// a reconnect, re-subscribed on Resync or a gap), the palette, painting with its cooldown
// countdown and the server's refusals, the pixel inspector, the zoom / coordinate readouts.

import { Geometry, MAX_TILES_PER_FRAME } from "./codec.js";
import { parseSnapshot } from "./snapshot.js";
import { Replica, chunk } from "./replica.js";
import { visibleTiles } from "./viewport.js";
import { CanvasView } from "./canvas.js";
import { remainingMs, formatCountdown } from "./clock.js";
import { h, fill, notify, describeError, formatDateTime } from "./ui.js";

const INTEREST_DEBOUNCE_MS = 120;
const LOGGED_OUT_REFRESH_MS = 10_000;

export class Board {
  /** `ctx`: {api, net, clock, state}; `net` may be replaced later (see setNet). */
  constructor(ctx) {
    this.api = ctx.api;
    this.net = ctx.net;
    this.clock = ctx.clock;
    this.state = ctx.state;
    this.meta = null;
    this.replica = null;
    this.palette = [];
    this.ready = false; // snapshot attempted: subscriptions may start
    this.interestTimer = null;
    this.cooldownTimer = null;
    this.refreshTimer = null;
    this.inspectToken = 0;
    this.inspected = null;
    this.readyAtMs = 0;
    this.cooldownMs = 0;

    this.els = {
      canvas: document.getElementById("canvas"),
      palette: document.getElementById("palette"),
      inspectTool: document.getElementById("tool-inspect"),
      cooldown: document.getElementById("cooldown"),
      cooldownText: document.getElementById("cooldown-text"),
      cooldownBar: document.getElementById("cooldown-bar"),
      inspector: document.getElementById("inspector-body"),
      coords: document.getElementById("coords"),
      zoom: document.getElementById("zoom-level"),
    };
    this.view = new CanvasView(this.els.canvas, {
      onActivate: (x, y, o) => this.activate(x, y, o),
      onViewChange: () => this.scheduleInterest(),
      onHover: (p) => {
        this.els.coords.textContent = p ? `${p.x}, ${p.y}` : "";
      },
      onZoom: (s) => {
        this.els.zoom.textContent = s >= 1 ? `${Math.round(s * 10) / 10}×` : `1/${Math.round(1 / s)}×`;
      },
    });
    document.getElementById("zoom-in").addEventListener("click", () => this.view.zoomSmooth(1.6));
    document.getElementById("zoom-out").addEventListener("click", () => this.view.zoomSmooth(1 / 1.6));
    document.getElementById("zoom-fit").addEventListener("click", () => this.view.fit());
    this.els.inspectTool.addEventListener("click", () => this.selectColour(null));
    this.state.selectedColour = null;
    this.renderCooldown();
  }

  // ---- model -----------------------------------------------------------------------------

  /** Loads `/canvas` and the snapshot. Never rejects (errors become notices). */
  async init() {
    try {
      this.meta = await this.api.canvas();
    } catch (e) {
      notify(`Canvas info unavailable: ${describeError(e)}`, "error");
      return;
    }
    const m = this.meta;
    this.setModel(new Geometry(m.width, m.height, m.bpp, m.tile_size), m.palette, m.cooldown_ms);
  }

  /** (Re)creates the replica when the geometry is new; then loads the snapshot. */
  setModel(geometry, rawPalette, cooldownMs) {
    const palette = rawPalette.map((c) => String(c).toUpperCase());
    const r = this.replica;
    const same = r && r.geometry.width === geometry.width && r.geometry.height === geometry.height && r.geometry.bpp === geometry.bpp && r.geometry.tileSize === geometry.tileSize;
    this.cooldownMs = cooldownMs ?? this.cooldownMs;
    if (same) {
      this.setPalette(palette);
      return;
    }
    this.replica = new Replica(geometry);
    this.state.geometry = geometry;
    this.ready = false;
    this.palette = palette;
    this.state.palette = palette;
    this.renderPalette();
    this.view.setModel(this.replica, palette);
    this.loadSnapshot().finally(() => {
      this.ready = true;
      this.syncSubscriptions();
    });
  }

  setPalette(rawPalette) {
    const palette = rawPalette.map((c) => String(c).toUpperCase());
    if (palette.length === this.palette.length && palette.every((c, i) => c === this.palette[i])) return;
    this.palette = palette;
    this.state.palette = palette;
    this.renderPalette();
    this.view.setPalette(palette);
  }

  async loadSnapshot() {
    const replica = this.replica;
    try {
      const bytes = await this.api.snapshot(this.meta?.snapshot_url ?? "/canvas/snapshot");
      const snap = parseSnapshot(bytes);
      if (replica !== this.replica) return;
      replica.loadSnapshot(snap);
      this.state.snapshotVersion = snap.version.toString();
      this.view.requestDraw();
    } catch (e) {
      // Subscribing with NO_CURSOR still brings every tile (as TileData).
      notify(`Snapshot not loaded (${describeError(e)}); loading tiles live`, "error");
    }
  }

  /** While nobody is logged in (no live session), refresh the picture now and then. */
  setLoggedOutRefresh(on) {
    clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    if (!on) return;
    this.refreshTimer = setInterval(() => {
      if (document.visibilityState === "visible" && this.replica && !this.net().connected) this.loadSnapshot();
    }, LOGGED_OUT_REFRESH_MS);
  }

  // ---- subscriptions ---------------------------------------------------------------------

  scheduleInterest() {
    if (this.interestTimer !== null) return;
    this.interestTimer = setTimeout(() => {
      this.interestTimer = null;
      this.syncSubscriptions();
    }, INTEREST_DEBOUNCE_MS);
  }

  /** Subscribes the visible tiles (cursors held), unsubscribes those that left the view. */
  syncSubscriptions() {
    const r = this.replica;
    if (!r || !this.view.viewport) return;
    const want = visibleTiles(this.view.viewport, r.geometry);
    const net = this.net();
    let work;
    if (this.ready && net.connected && !r.connected) {
      r.setInterest(want);
      work = r.connect();
    } else {
      work = r.setInterest(want);
    }
    this.sendSubscribe(work.subscribe);
    for (const part of chunk(work.unsubscribe, MAX_TILES_PER_FRAME)) net.send({ type: "Unsubscribe", tiles: part });
    this.state.subscribed = r.subscribed.size;
  }

  sendSubscribe(list) {
    const net = this.net();
    for (const part of chunk(list, MAX_TILES_PER_FRAME)) net.send({ type: "Subscribe", tiles: part });
  }

  onWelcome(w) {
    const g = new Geometry(w.width, w.height, w.bpp, w.tile_size);
    this.setModel(g, w.palette, w.cooldown_ms);
    this.readyAtMs = Number(w.ready_at_ms);
    this.cooldownMs = w.cooldown_ms;
    this.renderCooldown();
    if (this.replica) this.replica.disconnect(); // a fresh session holds no subscriptions
    this.syncSubscriptions();
  }

  onDisconnected() {
    this.replica?.disconnect();
    this.state.subscribed = 0;
    this.renderCooldown();
  }

  /** Canvas frames from the connection. Returns true when handled. */
  handleFrame(f) {
    const r = this.replica;
    switch (f.type) {
      case "Pixels": {
        if (!r) return true;
        const out = r.applyPixels(f);
        if (out.result === "applied") this.pixelsChanged(f);
        else if (out.subscribe.length) this.sendSubscribe(out.subscribe);
        return true;
      }
      case "TileData":
        if (r && r.applyTileData(f)) {
          this.view.requestDraw();
          if (this.inspected && r.geometry.locate(this.inspected.x, this.inspected.y)?.tile === f.tile) this.renderInspectedColour();
        }
        return true;
      case "Resync":
        if (r) this.sendSubscribe(r.resync(f.tiles));
        return true;
      case "Cooldown":
        this.readyAtMs = Number(f.ready_at_ms);
        this.cooldownMs = f.cooldown_ms;
        this.renderCooldown();
        return true;
      case "Error":
        if (f.code === "too_many_subscriptions") {
          notify("Too many tiles in view for live updates: zoom in to see changes live.", "error");
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  pixelsChanged(f) {
    this.view.requestDraw();
    const p = this.inspected;
    if (!p) return;
    const at = this.replica.geometry.locate(p.x, p.y);
    if (at && at.tile === f.tile) {
      let hit = false;
      f.updates.forEach((o) => {
        if (o === at.offset) hit = true;
      });
      if (hit) {
        this.renderInspectedColour();
        this.scheduleInspectRefresh();
      }
    }
  }

  // ---- palette and painting --------------------------------------------------------------

  renderPalette() {
    const buttons = this.palette.map((c, i) =>
      h("button", {
        type: "button",
        class: "swatch",
        dataset: { colour: String(i) },
        "aria-label": `Colour ${i} ${c}`,
        "aria-pressed": String(this.state.selectedColour === i),
        title: `${i}: ${c}`,
        style: `--swatch: ${c}`,
        onclick: () => this.selectColour(this.state.selectedColour === i ? null : i),
      }),
    );
    fill(this.els.palette, buttons);
    this.els.inspectTool.setAttribute("aria-pressed", String(this.state.selectedColour === null));
  }

  selectColour(i) {
    this.state.selectedColour = i;
    for (const b of this.els.palette.querySelectorAll("button[data-colour]")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.colour) === i));
    }
    this.els.inspectTool.setAttribute("aria-pressed", String(i === null));
    this.els.canvas.dataset.tool = i === null ? "inspect" : "paint";
  }

  /** A click, tap or Enter on pixel (x, y). */
  activate(x, y, { inspectOnly }) {
    this.inspect(x, y);
    if (inspectOnly || this.state.selectedColour === null) return;
    this.paint(x, y, this.state.selectedColour).catch(() => {}); // refusals are shown by paint()
  }

  /**
   * Paints; resolves `{seq}` (a BigInt) once the server applied it, rejects with the
   * RequestError of a refusal (also shown to the user).
   */
  async paint(x, y, colour) {
    const net = this.net();
    if (!this.state.user) {
      const e = Object.assign(new Error("log in to paint"), { code: "unauthorized" });
      notify("Log in to paint.", "error");
      throw e;
    }
    try {
      const ack = await net.request({ type: "Paint", x, y, colour });
      this.state.lastPaint = { x, y, colour, seq: ack.value.toString() };
      this.state.lastPaintError = null;
      notify(`Painted (${x}, ${y}).`);
      if (this.inspected && this.inspected.x === x && this.inspected.y === y) this.scheduleInspectRefresh(150);
      return { seq: ack.value };
    } catch (e) {
      this.state.lastPaintError = { code: e.code, message: e.message, retryAfterMs: e.retryAfterMs ?? 0 };
      if (e.code === "cooldown" && e.retryAfterMs > 0) {
        this.readyAtMs = this.clock.now() + e.retryAfterMs;
        this.renderCooldown();
      }
      notify(`Paint refused — ${describeError(e)}`, "error");
      throw e;
    }
  }

  renderCooldown() {
    clearTimeout(this.cooldownTimer);
    this.cooldownTimer = null;
    const el = this.els.cooldown;
    const left = remainingMs(this.readyAtMs, this.clock);
    this.state.cooldownRemainingMs = left;
    el.dataset.remainingMs = String(Math.round(left));
    let text;
    let ratio = 0;
    if (!this.state.user) {
      text = "Log in to paint";
      el.dataset.ready = "false";
    } else if (left <= 0) {
      text = "Ready to paint";
      el.dataset.ready = "true";
    } else {
      text = `Next pixel in ${formatCountdown(left)}`;
      el.dataset.ready = "false";
      ratio = this.cooldownMs > 0 ? Math.min(1, left / this.cooldownMs) : 1;
      this.cooldownTimer = setTimeout(() => this.renderCooldown(), left > 10_000 ? 250 : 100);
    }
    if (this.els.cooldownText.textContent !== text) this.els.cooldownText.textContent = text;
    this.els.cooldownBar.style.transform = `scaleX(${ratio})`;
  }

  // ---- inspector -------------------------------------------------------------------------

  scheduleInspectRefresh(delay = 400) {
    clearTimeout(this.inspectRefresh);
    this.inspectRefresh = setTimeout(() => {
      if (this.inspected) this.inspect(this.inspected.x, this.inspected.y);
    }, delay);
  }

  /** Shows who placed pixel (x, y) and when (GET /canvas/pixel). */
  inspect(x, y) {
    this.inspected = { x, y };
    this.view.select({ x, y });
    const token = ++this.inspectToken;
    this.renderInspector({ x, y, loading: true });
    this.api.pixel(x, y).then(
      (info) => {
        if (token === this.inspectToken) this.renderInspector({ x, y, info });
      },
      (e) => {
        if (token === this.inspectToken) this.renderInspector({ x, y, error: describeError(e) });
      },
    );
  }

  swatch(colour) {
    const css = this.palette[colour] ?? "#000000";
    return h("span", { class: "swatch-mini", style: `--swatch: ${css}`, "aria-hidden": "true" });
  }

  renderInspectedColour() {
    const el = document.getElementById("inspector-live");
    const p = this.inspected;
    if (!el || !p || !this.replica) return;
    const c = this.replica.pixel(p.x, p.y);
    fill(el, c === null ? ["not loaded"] : [this.swatch(c), ` ${c} (${this.palette[c] ?? "?"})`]);
  }

  renderInspector({ x, y, info, loading, error }) {
    const rows = [h("p", { class: "inspector-coords" }, h("strong", {}, `(${x}, ${y})`), " now: ", h("span", { id: "inspector-live" }))];
    if (loading) rows.push(h("p", { class: "muted" }, "Loading…"));
    if (error) rows.push(h("p", { class: "error-text" }, `Could not load details: ${error}`));
    if (info) {
      const who = info.user ? info.user.username : null;
      rows.push(
        h("p", { class: "inspector-who", dataset: { user: who ?? "" } },
          who ? ["Placed by ", h("strong", { class: "inspector-user" }, who), info.time_ms != null ? [" on ", h("time", { datetime: new Date(Number(info.time_ms)).toISOString() }, formatDateTime(info.time_ms))] : ""] : "Never painted",
        ),
      );
      // Newest first, whatever order the server lists them in.
      const history = Array.isArray(info.history) ? [...info.history].sort((a, b) => Number(b.seq) - Number(a.seq)).slice(0, 10) : [];
      if (history.length > 1 || (history.length === 1 && !who)) {
        rows.push(
          h("details", { class: "inspector-history" },
            h("summary", {}, `History (${history.length})`),
            h("ol", {}, history.map((e) => h("li", {}, this.swatch(e.colour), ` ${e.username ?? "?"} — ${formatDateTime(e.time_ms)}`))),
          ),
        );
      }
    }
    this.els.inspector.dataset.x = String(x);
    this.els.inspector.dataset.y = String(y);
    fill(this.els.inspector, rows);
    this.renderInspectedColour();
  }
}
