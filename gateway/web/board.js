// Owns: the canvas feature around the drawing surface — canvas metadata and the snapshot
// load, the Replica and its tile subscriptions (visible tiles only, resumed from cursors after
// a reconnect, re-subscribed on Resync or a gap), the palette (named colours, number keys,
// the eyedropper), painting with its cooldown line and the server's refusals (never below
// MIN_PAINT_SCALE: a click there zooms in; on touch a tap aims the reticle and Place paints),
// the zoom label, the minimap, jump-to-coordinates and the view in the address bar; and it
// wires the pieces that live over the canvas: the pixel inspector (inspector.js), Restore an
// area (restore.js) and the Timelapse button with its player (timelapse.js).

import { Geometry, MAX_TILES_PER_FRAME } from "./codec.js";
import { parseSnapshot } from "./snapshot.js";
import { Replica, chunk, paletteLut } from "./replica.js";
import { visibleTiles } from "./viewport.js";
import { CanvasView } from "./canvas.js";
import { Minimap } from "./minimap.js";
import { Inspector } from "./inspector.js";
import { AreaRestore } from "./restore.js";
import { TimelapsePlayer } from "./timelapse.js";
import { remainingMs, formatCountdown } from "./clock.js";
import { paletteNames, colourShortcut, colourForKey } from "./colours.js";
import { paintStatus, formatZoom, canPaintAt, MIN_PAINT_SCALE, PAINT_ZOOM } from "./status.js";
import { viewFromQuery, queryWithView, parseCoords } from "./urlstate.js";
import { h, fill, notify, clearNotice, describeError } from "./ui.js";

const INTEREST_DEBOUNCE_MS = 120;
const URL_DEBOUNCE_MS = 300;

/** Whether a key event belongs to a text field (then page shortcuts stay out of the way). */
function typing(e) {
  const t = e.target;
  if (!t || !(t instanceof Element)) return false;
  return t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || Boolean(t.closest("dialog[open]"));
}

export class Board {
  /** `ctx`: {api, net, clock, state}; `net` may be replaced later (see setNet). */
  constructor(ctx) {
    this.ctx = ctx;
    this.api = ctx.api;
    this.net = ctx.net;
    this.clock = ctx.clock;
    this.state = ctx.state;
    this.meta = null;
    this.replica = null;
    this.palette = [];
    this.names = [];
    this.tool = "inspect"; // "inspect" | "paint" | "pick"
    this.ready = false; // snapshot attempted: subscriptions may start
    this.interestTimer = null;
    this.cooldownTimer = null;
    this.urlTimer = null;
    this.readyAtMs = 0;
    this.cooldownMs = 0;
    this.wasReady = false;

    this.els = {
      canvas: document.getElementById("canvas"),
      palette: document.getElementById("palette"),
      inspectTool: document.getElementById("tool-inspect"),
      pickTool: document.getElementById("tool-pick"),
      cooldown: document.getElementById("cooldown"),
      cooldownText: document.getElementById("cooldown-text"),
      cooldownBar: document.getElementById("cooldown-bar"),
      coords: document.getElementById("coords"),
      zoom: document.getElementById("zoom-level"),
      place: document.getElementById("place"),
      jumpForm: document.getElementById("jump-form"),
      jump: document.getElementById("jump"),
      timelapseOpen: document.getElementById("timelapse-open"),
    };
    this.view = new CanvasView(this.els.canvas, {
      onActivate: (x, y, o) => this.activate(x, y, o),
      onViewChange: () => this.viewChanged(),
      onHover: (p) => {
        this.els.coords.textContent = p ? `${p.x}, ${p.y}` : "";
      },
      onZoom: (s) => this.zoomChanged(s),
    });
    this.minimap = new Minimap(document.getElementById("minimap"), {
      onJump: (x, y) => {
        this.view.moved = true;
        this.view.viewport?.centreOn(x, y);
        this.view.viewChanged();
      },
    });
    this.inspector = new Inspector(ctx, this, { onClose: () => this.view.select(null) });
    this.restore = new AreaRestore(ctx, this);
    this.timelapse = new TimelapsePlayer({ api: this.api, onClose: () => this.els.timelapseOpen.focus() });
    this.els.timelapseOpen.addEventListener("click", () => {
      this.restore.cancel();
      this.timelapse.open();
    });
    document.getElementById("zoom-in").addEventListener("click", () => this.view.zoomSmooth(1.6));
    document.getElementById("zoom-out").addEventListener("click", () => this.view.zoomSmooth(1 / 1.6));
    document.getElementById("zoom-fit").addEventListener("click", () => this.view.fit());
    document.getElementById("copy-link").addEventListener("click", () => this.copyLink());
    this.els.inspectTool.addEventListener("click", () => this.selectColour(null));
    this.els.pickTool.addEventListener("click", () => this.setTool(this.tool === "pick" ? (this.state.selectedColour === null ? "inspect" : "paint") : "pick"));
    this.els.place.addEventListener("click", () => this.placeAtAim());
    this.els.jumpForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this.jumpTo(this.els.jump.value);
    });
    document.addEventListener("keydown", (e) => this.onKey(e));
    this.state.selectedColour = null;
    this.renderCooldown();
  }

  // ---- model -----------------------------------------------------------------------------

  /** Loads `/canvas` and the snapshot. Never rejects (errors become notices). */
  async init() {
    try {
      this.meta = await this.api.canvas();
    } catch (e) {
      notify(`Canvas info unavailable: ${describeError(e)}`, "error", { topic: "connection" });
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
    this.names = paletteNames(palette);
    this.state.palette = palette;
    this.renderPalette();
    const fromUrl = viewFromQuery(location.search, geometry.width, geometry.height);
    if (fromUrl) this.view.setInitialView(fromUrl);
    this.view.setModel(this.replica, palette);
    this.minimap.setModel(this.replica, paletteLut(palette, geometry.bpp));
    this.loadSnapshot().finally(() => {
      this.ready = true;
      this.syncSubscriptions();
    });
  }

  setPalette(rawPalette) {
    const palette = rawPalette.map((c) => String(c).toUpperCase());
    if (palette.length === this.palette.length && palette.every((c, i) => c === this.palette[i])) return;
    this.palette = palette;
    this.names = paletteNames(palette);
    this.state.palette = palette;
    this.renderPalette();
    this.view.setPalette(palette);
    if (this.replica) this.minimap.setLut(paletteLut(palette, this.replica.geometry.bpp));
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
      this.minimap.pixelsChanged(true);
      if (this.inspector.open) this.inspector.renderLive();
    } catch (e) {
      // Subscribing with NO_CURSOR still brings every tile (as TileData).
      notify(`Snapshot not loaded (${describeError(e)}); loading tiles live`, "error", { topic: "connection" });
    }
  }

  // ---- the view --------------------------------------------------------------------------

  viewChanged() {
    this.scheduleInterest();
    if (this.view.viewport) this.minimap.viewChanged(this.view.viewport);
    this.scheduleUrl();
  }

  zoomChanged(scale) {
    this.els.zoom.textContent = formatZoom(scale);
    this.renderTool();
  }

  /** Keeps `?x=&y=&zoom=` in the address bar in step with the view (no history entries). */
  scheduleUrl() {
    if (this.urlTimer !== null) return;
    this.urlTimer = setTimeout(() => {
      this.urlTimer = null;
      const vp = this.view.viewport;
      if (!vp || vp.width <= 1) return;
      const search = queryWithView(location.search, { x: vp.cx, y: vp.cy, zoom: vp.scale });
      if (search !== location.search) history.replaceState(history.state, "", `${location.pathname}${search}${location.hash}`);
    }, URL_DEBOUNCE_MS);
  }

  /** A link to the view, or (with x, y) to that pixel at painting zoom; copied when possible. */
  linkTo(x, y) {
    const vp = this.view.viewport;
    const view = x === undefined ? { x: vp.cx, y: vp.cy, zoom: vp.scale } : { x: x + 0.5, y: y + 0.5, zoom: Math.max(vp.scale, PAINT_ZOOM) };
    return `${location.origin}${location.pathname}${queryWithView(location.search, view)}`;
  }

  async copyLink(x, y) {
    if (!this.view.viewport) return;
    const url = this.linkTo(x, y);
    this.state.lastLink = url;
    try {
      await navigator.clipboard.writeText(url);
      notify("Link copied: anyone who opens it sees this spot.");
    } catch {
      notify(`Link: ${url}`);
    }
  }

  /** Centres the view on "x, y" typed in the jump box, zoomed in enough to paint there. */
  jumpTo(text) {
    const g = this.replica?.geometry;
    if (!g || !this.view.viewport) return;
    const p = parseCoords(text, g.width, g.height);
    if (!p) {
      notify(`Type two numbers: x from 0 to ${g.width - 1}, y from 0 to ${g.height - 1}.`, "error", { topic: "jump" });
      this.els.jump.focus();
      return;
    }
    clearNotice("jump");
    this.view.anim = null;
    this.view.moved = true;
    this.view.viewport.centreOn(p.x + 0.5, p.y + 0.5, Math.max(this.view.viewport.scale, PAINT_ZOOM));
    this.view.viewChanged();
    this.inspect(p.x, p.y);
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

  /** The session's state changed (connection, ban, log in or out): the paint line follows. */
  statusChanged() {
    this.renderCooldown();
    this.renderTool();
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
          this.minimap.pixelsChanged();
          const p = this.inspector.at;
          if (p && r.geometry.locate(p.x, p.y)?.tile === f.tile) this.inspector.renderLive();
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
          notify("Too many tiles in view for live updates: zoom in to see changes live.", "error", { topic: "subscriptions" });
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  pixelsChanged(f) {
    this.view.requestDraw();
    this.minimap.pixelsChanged();
    const p = this.inspector.at;
    if (!p) return;
    const at = this.replica.geometry.locate(p.x, p.y);
    if (at && at.tile === f.tile) {
      let hit = false;
      f.updates.forEach((o) => {
        if (o === at.offset) hit = true;
      });
      if (hit) {
        this.inspector.renderLive();
        this.inspector.refreshSoon();
      }
    }
  }

  // ---- palette, tools and painting -------------------------------------------------------

  /** "black (colour 3)" — the name a person or a screen reader gets for colour `i`. */
  colourLabel(i) {
    return `${this.names[i] ?? `colour ${i}`} (colour ${i})`;
  }

  renderPalette() {
    const buttons = this.palette.map((c, i) => {
      const key = colourShortcut(i);
      const name = this.names[i] ?? `colour ${i}`;
      return h("button", {
        type: "button",
        class: "swatch",
        dataset: { colour: String(i), name },
        "aria-label": `${name}, colour ${i}${key ? `, key ${key}` : ""}`,
        "aria-pressed": String(this.state.selectedColour === i),
        title: `${name} (${c})${key ? ` — key ${key}` : ""}`,
        style: `--swatch: ${c}`,
        onclick: () => this.selectColour(this.state.selectedColour === i ? null : i),
      });
    });
    fill(this.els.palette, buttons);
    this.renderTool();
  }

  /** Selects colour `i` (null: none, the Inspect tool). */
  selectColour(i, { announce = false } = {}) {
    if (i !== null && (i < 0 || i >= this.palette.length)) return;
    this.state.selectedColour = i;
    for (const b of this.els.palette.querySelectorAll("button[data-colour]")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.colour) === i));
    }
    if (i === null) this.view.setAim(null);
    this.setTool(i === null ? "inspect" : "paint");
    if (announce && i !== null) notify(`Colour: ${this.colourLabel(i)}.`, "info", { topic: "colour" });
  }

  setTool(tool) {
    this.tool = tool;
    this.renderTool();
  }

  /** The tool buttons, the canvas cursor, the reticle and the Place button follow the state. */
  renderTool() {
    const i = this.state.selectedColour;
    const vp = this.view.viewport;
    const readOnly = this.readOnly();
    this.els.inspectTool.setAttribute("aria-pressed", String(this.tool === "inspect"));
    this.els.pickTool.setAttribute("aria-pressed", String(this.tool === "pick"));
    for (const b of this.els.palette.querySelectorAll("button[data-colour]")) b.disabled = this.state.closed?.reason === "banned";
    this.els.pickTool.disabled = this.state.closed?.reason === "banned";
    this.els.canvas.dataset.tool = this.tool;
    // Below painting zoom a click zooms in: the cursor says so.
    this.els.canvas.dataset.zoomFirst = String(this.tool === "paint" && Boolean(vp) && !canPaintAt(vp.scale));
    const painting = this.tool === "paint" && i !== null && !readOnly;
    this.view.setReticle(painting ? this.palette[i] : null, MIN_PAINT_SCALE);
    this.els.place.hidden = !(painting && this.view.aim);
  }

  /** Painting is impossible here until something outside the page changes (logged out, banned). */
  readOnly() {
    return !this.state.user || this.state.closed?.reason === "banned";
  }

  /** A click, tap or Enter on pixel (x, y). */
  activate(x, y, { inspectOnly = false, pointerType = "mouse", screen = null } = {}) {
    if (this.tool === "pick" && !inspectOnly) {
      this.pickAt(x, y);
      return;
    }
    this.inspect(x, y);
    if (inspectOnly || this.state.selectedColour === null) return;
    if (this.readOnly()) {
      notify(this.state.user ? "You are banned: the canvas is read-only." : "Log in to paint.", "error", { topic: "paint" });
      return;
    }
    const vp = this.view.viewport;
    if (!canPaintAt(vp.scale)) {
      // Painting blind is painting the wrong pixel: zoom in about the pointer first (the
      // pixel stays under it, so the next click lands where this one aimed).
      const at = screen ?? vp.toScreen(x + 0.5, y + 0.5);
      this.view.zoomTo(PAINT_ZOOM, at.x, at.y);
      notify("Zoomed in so you can see the pixel: click again to paint.", "info", { topic: "zoom" });
      return;
    }
    if (pointerType === "touch") {
      // A fingertip covers many pixels: aim first, confirm with Place.
      this.view.setAim({ x, y });
      this.renderTool();
      return;
    }
    this.paint(x, y, this.state.selectedColour).catch(() => {}); // refusals are shown by paint()
  }

  /** Touch: paints the aimed pixel (the Place button). */
  placeAtAim() {
    const a = this.view.aim;
    if (!a || this.state.selectedColour === null) return;
    this.paint(a.x, a.y, this.state.selectedColour).then(() => {
      this.view.setAim(null);
      this.renderTool();
    }, () => {});
  }

  /** The eyedropper: the colour of pixel (x, y) becomes the selected one. */
  pickAt(x, y) {
    const c = this.replica?.pixel(x, y);
    if (c === null || c === undefined) {
      notify("That part of the canvas is not loaded yet.", "error", { topic: "colour" });
      return;
    }
    this.selectColour(c, { announce: true });
  }

  /** Page-wide keys (not while typing): digits pick colours, E picks from the canvas, Esc deselects. */
  onKey(e) {
    if (e.defaultPrevented) return; // handled where it happened (the player, the restore bar)
    if (this.timelapse.isOpen) {
      // The player covers the canvas: its keys are its own.
      if (e.key === "Escape") {
        this.timelapse.close();
        e.preventDefault();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    const colour = colourForKey(e.code, e.shiftKey);
    if (colour !== null) {
      if (colour < this.palette.length && this.state.closed?.reason !== "banned") {
        this.selectColour(colour);
        e.preventDefault();
      }
      return;
    }
    if (e.key === "Escape") {
      if (this.restore.active) this.restore.cancel();
      else if (this.tool === "pick") this.setTool(this.state.selectedColour === null ? "inspect" : "paint");
      else if (this.view.aim) this.view.setAim(null);
      else if (this.state.selectedColour !== null) this.selectColour(null);
      else if (this.inspector.open) this.inspector.close();
      else return;
      this.renderTool();
      e.preventDefault();
    } else if ((e.key === "e" || e.key === "E") && !e.shiftKey) {
      const p = this.view.reticlePixel() ?? this.view.viewport?.centrePixel();
      if (p) this.pickAt(p.x, p.y);
      e.preventDefault();
    }
  }

  /**
   * Paints; resolves `{seq}` (a BigInt) once the server applied it, rejects with the
   * RequestError of a refusal (also shown to the user).
   */
  async paint(x, y, colour) {
    const net = this.net();
    if (!this.state.user) {
      const e = Object.assign(new Error("log in to paint"), { code: "unauthorized" });
      notify("Log in to paint.", "error", { topic: "paint" });
      throw e;
    }
    try {
      const ack = await net.request({ type: "Paint", x, y, colour });
      this.state.lastPaint = { x, y, colour, seq: ack.value.toString() };
      this.state.lastPaintError = null;
      clearNotice("paint");
      if (this.inspector.at && this.inspector.at.x === x && this.inspector.at.y === y) this.inspector.refreshSoon(150);
      return { seq: ack.value };
    } catch (e) {
      this.state.lastPaintError = { code: e.code, message: e.message, retryAfterMs: e.retryAfterMs ?? 0 };
      if (e.code === "cooldown" && e.retryAfterMs > 0) {
        this.readyAtMs = this.clock.now() + e.retryAfterMs;
        this.renderCooldown();
        notify(`Not yet: next pixel in ${formatCountdown(e.retryAfterMs)}.`, "error", { topic: "paint" });
      } else {
        notify(`Paint refused: ${describeError(e)}`, "error", { topic: "paint" });
      }
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
    const st = paintStatus({ user: this.state.user, connection: this.state.connection, closed: this.state.closed, remainingMs: left }, formatCountdown);
    let ratio = 0;
    if (left > 0 && !st.readOnly) {
      ratio = this.cooldownMs > 0 ? Math.min(1, left / this.cooldownMs) : 1;
      this.cooldownTimer = setTimeout(() => this.renderCooldown(), left > 10_000 ? 250 : 100);
    }
    el.dataset.ready = String(st.ready);
    el.dataset.readonly = String(st.readOnly);
    // A refusal ("not yet", "not connected") is about a state that just ended: take it away.
    if (st.ready && !this.wasReady) clearNotice("paint");
    this.wasReady = st.ready;
    if (this.els.cooldownText.textContent !== st.text) this.els.cooldownText.textContent = st.text;
    this.els.cooldownBar.style.transform = `scaleX(${ratio})`;
  }

  // ---- inspector -------------------------------------------------------------------------

  /** Shows who placed pixel (x, y) and when. */
  inspect(x, y) {
    this.view.select({ x, y });
    this.inspector.show(x, y);
  }
}
