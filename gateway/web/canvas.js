// Owns: the <canvas id="canvas"> element — drawing the replica's tiles through one small
// raster per tile (re-rasterised only when the tile is dirty, composited on demand in a
// requestAnimationFrame) with the selection, the reticle (where a paint would land, in the
// selected colour), the keyboard crosshair and the area being selected (Restore an area) on
// top, and every input on it: wheel / drag / pinch pan and zoom, smooth keyboard zoom,
// arrow-key panning, click / tap (paint or inspect), hover coordinates, and in the area
// selection mode a drag that draws a rectangle instead of panning. It reports what the user
// did through callbacks; board.js decides what that means. Its colours come from the page's
// theme (setTheme).

import { Viewport, visibleTiles, rectBetween } from "./viewport.js";
import { paletteLut, rasterizeTile } from "./replica.js";

const DRAG_THRESHOLD_PX = 5;

export class CanvasView {
  /**
   * Callbacks: `onActivate(x, y, {inspectOnly})` (click, tap, Enter), `onViewChange()` (pan or
   * zoom), `onHover(pixel|null)`, `onZoom(scale)`.
   */
  constructor(canvas, callbacks = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.cb = { onActivate() {}, onViewChange() {}, onHover() {}, onZoom() {}, ...callbacks };
    this.replica = null;
    this.viewport = null;
    this.lut = null;
    this.tiles = new Map(); // tile → {surface, ctx, image, pixels}
    this.stale = new Set();
    this.selected = null;
    this.keyboard = false;
    this.focused = false;
    this.frame = 0;
    this.anim = null;
    this.lastFrameAt = 0;
    this.pointers = new Map();
    this.gesture = null;
    this.pinch = null;
    this.cssWidth = 1;
    this.cssHeight = 1;
    this.dpr = 1;
    this.colours = { background: "#dde1e7", unloaded: "#c3c8d0" };
    this.hover = null; // the pixel under the mouse, or null
    this.reticle = null; // {colour: css, minScale}: show where a paint lands, or null
    this.aim = null; // touch: the pixel a tap aimed at (painted with Place), or null
    this.moved = false; // the user moved the view (until then, it follows the fit)
    this.selecting = null; // area selection mode: onSelect(rect) for each rectangle dragged, or null
    this.area = null; // the rectangle selected or being dragged ({x, y, width, height}), or null
    this.bind();
  }

  /** Shows `replica` with `palette` (a new geometry gets a new, fitted viewport). */
  setModel(replica, palette) {
    const g = replica.geometry;
    const same = this.replica && this.replica.geometry.width === g.width && this.replica.geometry.height === g.height;
    this.replica = replica;
    this.tiles.clear();
    this.stale.clear();
    this.setPalette(palette);
    if (!same || !this.viewport) {
      this.viewport = new Viewport(this.cssWidth, this.cssHeight, g.width, g.height);
      if (this.inset) {
        this.viewport.setInset(this.inset);
        this.viewport.fit();
      }
      if (this.cssWidth > 1) this.applyInitialView();
      this.cb.onZoom(this.viewport.scale);
    }
    this.requestDraw();
    this.cb.onViewChange();
  }

  setPalette(palette) {
    if (!this.replica) return;
    this.lut = paletteLut(palette, this.replica.geometry.bpp);
    for (const t of this.tiles.keys()) this.stale.add(t);
    this.requestDraw();
  }

  select(pixel) {
    this.selected = pixel;
    this.requestDraw();
  }

  /**
   * The view to open with instead of the fitted one (e.g. from the address bar):
   * `{x, y, zoom|null}` centres on canvas pixel (x, y). Used once, when the view first has a size.
   */
  setInitialView(v) {
    this.initialView = v;
    if (this.viewport && this.viewport.width > 1) {
      this.applyInitialView();
      this.viewChanged();
    }
  }

  applyInitialView() {
    const v = this.initialView;
    if (!v || !this.viewport) return;
    this.initialView = null;
    this.moved = true;
    this.viewport.centreOn(v.x + 0.5, v.y + 0.5, v.zoom ?? this.viewport.scale);
  }

  /** The parts of the element the floating bars cover (Viewport.setInset): the picture stays put. */
  setInset(inset) {
    this.inset = inset;
    if (!this.viewport) return;
    this.viewport.setInset(inset);
    // Until the user moves the view, it stays fitted to the part the bars leave uncovered.
    if (!this.moved) this.viewport.fit();
    this.viewChanged();
  }

  /** Theme colours: `{background, unloaded}` (CSS colours). */
  setTheme(colours) {
    this.colours = { ...this.colours, ...colours };
    this.requestDraw();
  }

  /** Shows the reticle in `colour` (a CSS colour) from `minScale` up; null hides it. */
  setReticle(colour, minScale = 0) {
    this.reticle = colour ? { colour, minScale } : null;
    this.requestDraw();
  }

  /** Touch: the pixel a paint would land on (null: none). */
  setAim(pixel) {
    this.aim = pixel;
    this.requestDraw();
  }

  /**
   * Area selection mode: while `onSelect` is set, a one-pointer drag (mouse button 0, a finger,
   * a pen) draws a rectangle of pixels instead of panning, and `onSelect(rect)` gets it when the
   * pointer is released; two fingers still pinch. null ends the mode and clears the rectangle.
   */
  setSelecting(onSelect) {
    this.selecting = onSelect ?? null;
    this.canvas.dataset.selecting = String(Boolean(onSelect));
    if (!onSelect) this.area = null;
    this.requestDraw();
  }

  /** Where the reticle is: the aimed pixel (touch), the hovered one (mouse), or the crosshair. */
  reticlePixel() {
    if (!this.viewport) return null;
    if (this.aim) return this.aim;
    if (this.hover) return this.hover;
    if (this.focused && this.keyboard) return this.viewport.centrePixel();
    return null;
  }

  requestDraw() {
    if (this.frame === 0) this.frame = requestAnimationFrame((t) => this.draw(t));
  }

  viewChanged() {
    this.requestDraw();
    this.cb.onViewChange();
    if (this.viewport) this.cb.onZoom(this.viewport.scale);
  }

  // ---- geometry of the element -----------------------------------------------------------

  resize(width, height) {
    this.cssWidth = Math.max(1, width);
    this.cssHeight = Math.max(1, height);
    this.dpr = Math.max(1, Math.min(3, globalThis.devicePixelRatio || 1));
    const w = Math.round(this.cssWidth * this.dpr);
    const hgt = Math.round(this.cssHeight * this.dpr);
    if (this.canvas.width !== w) this.canvas.width = w;
    if (this.canvas.height !== hgt) this.canvas.height = hgt;
    if (this.viewport) {
      const first = this.viewport.width <= 1;
      this.viewport.resize(this.cssWidth, this.cssHeight);
      if (this.inset) this.viewport.setInset(this.inset);
      if (first) {
        this.viewport.fit();
        this.applyInitialView();
      }
    }
    this.viewChanged();
  }

  /** Position of a pointer event in CSS pixels from the canvas' top left. */
  local(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  /** Client (page viewport) coordinates of the centre of canvas pixel (x, y), for tests. */
  clientPointOf(x, y) {
    const r = this.canvas.getBoundingClientRect();
    const p = this.viewport.toScreen(x + 0.5, y + 0.5);
    return { x: r.left + p.x, y: r.top + p.y };
  }

  // ---- drawing ---------------------------------------------------------------------------

  tileSurface(t) {
    let entry = this.tiles.get(t);
    const ts = this.replica.geometry.tileSize;
    if (entry === undefined) {
      const surface = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(ts, ts) : Object.assign(document.createElement("canvas"), { width: ts, height: ts });
      const ctx = surface.getContext("2d");
      const image = ctx.createImageData(ts, ts);
      entry = { surface, ctx, image, pixels: new Uint32Array(image.data.buffer) };
      this.tiles.set(t, entry);
      this.stale.add(t);
    }
    if (this.stale.has(t)) {
      rasterizeTile(this.replica.data[t], this.replica.geometry.bpp, this.lut, entry.pixels);
      entry.ctx.putImageData(entry.image, 0, 0);
      this.stale.delete(t);
    }
    return entry.surface;
  }

  stepAnimation(now) {
    const a = this.anim;
    if (!a) return;
    const dt = Math.min(100, Math.max(1, now - (this.lastFrameAt || now - 16)));
    const vp = this.viewport;
    const k = 1 - Math.exp(-dt / 70);
    let ratio = Math.pow(a.target / vp.scale, k);
    if (Math.abs(Math.log(a.target / vp.scale)) < 0.003) {
      ratio = a.target / vp.scale;
      this.anim = null;
    }
    vp.zoomAt(ratio, a.sx, a.sy);
    this.cb.onViewChange();
    this.cb.onZoom(vp.scale);
  }

  draw(now) {
    this.frame = 0;
    const ctx = this.ctx;
    const W = this.canvas.width;
    const H = this.canvas.height;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = this.colours.background;
    ctx.fillRect(0, 0, W, H);
    if (!this.replica || !this.viewport) return;
    this.stepAnimation(now);
    this.lastFrameAt = now;
    for (const t of this.replica.takeDirty()) if (this.tiles.has(t)) this.stale.add(t);

    const vp = this.viewport;
    const g = this.replica.geometry;
    const ts = g.tileSize;
    const dpr = this.dpr;
    const fx = vp.focusX();
    const fy = vp.focusY();
    const sx = (x) => Math.round(((x - vp.cx) * vp.scale + fx) * dpr);
    const sy = (y) => Math.round(((y - vp.cy) * vp.scale + fy) * dpr);
    ctx.imageSmoothingEnabled = false;

    for (const t of visibleTiles(vp, g)) {
      const x0 = (t % g.tilesX) * ts;
      const y0 = Math.floor(t / g.tilesX) * ts;
      const w = Math.min(ts, g.width - x0);
      const hgt = Math.min(ts, g.height - y0);
      const dx = sx(x0);
      const dy = sy(y0);
      const dw = sx(x0 + w) - dx;
      const dh = sy(y0 + hgt) - dy;
      if (dw <= 0 || dh <= 0) continue;
      if (this.replica.data[t] === null) {
        ctx.fillStyle = this.colours.unloaded;
        ctx.fillRect(dx, dy, dw, dh);
      } else {
        ctx.drawImage(this.tileSurface(t), 0, 0, w, hgt, dx, dy, dw, dh);
      }
    }

    // Canvas border.
    ctx.strokeStyle = "rgba(0,0,0,0.35)";
    ctx.lineWidth = 1;
    ctx.strokeRect(sx(0) - 0.5, sy(0) - 0.5, sx(g.width) - sx(0) + 1, sy(g.height) - sy(0) + 1);

    // Pixel grid when zoomed in far.
    if (vp.scale >= 12) {
      const r = vp.visibleRect();
      const x0 = Math.max(0, Math.floor(r.x0));
      const x1 = Math.min(g.width, Math.ceil(r.x1));
      const y0 = Math.max(0, Math.floor(r.y0));
      const y1 = Math.min(g.height, Math.ceil(r.y1));
      ctx.beginPath();
      for (let x = x0; x <= x1; x++) {
        ctx.moveTo(sx(x) + 0.5, sy(y0));
        ctx.lineTo(sx(x) + 0.5, sy(y1));
      }
      for (let y = y0; y <= y1; y++) {
        ctx.moveTo(sx(x0), sy(y) + 0.5);
        ctx.lineTo(sx(x1), sy(y) + 0.5);
      }
      ctx.strokeStyle = "rgba(0,0,0,0.08)";
      ctx.stroke();
    }

    const outline = (p, colour, width) => {
      const x = sx(p.x);
      const y = sy(p.y);
      const w = Math.max(3, sx(p.x + 1) - x);
      const hgt = Math.max(3, sy(p.y + 1) - y);
      ctx.lineWidth = width * dpr;
      ctx.strokeStyle = "#fff";
      ctx.strokeRect(x - width * dpr, y - width * dpr, w + 2 * width * dpr, hgt + 2 * width * dpr);
      ctx.strokeStyle = colour;
      ctx.strokeRect(x - 0.5 * width * dpr, y - 0.5 * width * dpr, w + width * dpr, hgt + width * dpr);
    };
    if (this.selected) outline(this.selected, "#111", 2);
    if (this.focused && this.keyboard) outline(vp.centrePixel(), "#e4007c", 2);
    if (this.area) this.drawArea(this.area, sx, sy);
    const at = this.reticle && vp.scale >= this.reticle.minScale ? this.reticlePixel() : null;
    if (at) this.drawReticle(at, sx, sy);

    if (this.anim) this.requestDraw();
  }

  /** The area being selected: tinted, outlined in white and dark dashes, its size on top. */
  drawArea(a, sx, sy) {
    const ctx = this.ctx;
    const dpr = this.dpr;
    const x = sx(a.x);
    const y = sy(a.y);
    const w = Math.max(2, sx(a.x + a.width) - x);
    const hgt = Math.max(2, sy(a.y + a.height) - y);
    ctx.fillStyle = "rgba(228, 0, 124, 0.14)";
    ctx.fillRect(x, y, w, hgt);
    ctx.lineWidth = 2 * dpr;
    ctx.setLineDash([]);
    ctx.strokeStyle = "#fff";
    ctx.strokeRect(x - dpr, y - dpr, w + 2 * dpr, hgt + 2 * dpr);
    ctx.setLineDash([6 * dpr, 4 * dpr]);
    ctx.strokeStyle = "#e4007c";
    ctx.strokeRect(x - dpr, y - dpr, w + 2 * dpr, hgt + 2 * dpr);
    ctx.setLineDash([]);
    const label = `${a.width} × ${a.height}`;
    ctx.font = `${12 * dpr}px system-ui, sans-serif`;
    const tw = ctx.measureText(label).width + 8 * dpr;
    const th = 18 * dpr;
    const ly = y - th - 4 * dpr >= 0 ? y - th - 4 * dpr : y + hgt + 4 * dpr;
    ctx.fillStyle = "rgba(17, 17, 17, 0.8)";
    ctx.fillRect(x, ly, tw, th);
    ctx.fillStyle = "#fff";
    ctx.textBaseline = "middle";
    ctx.fillText(label, x + 4 * dpr, ly + th / 2);
  }

  /** The reticle: the pixel filled with the selected colour, framed by four corner marks. */
  drawReticle(p, sx, sy) {
    const ctx = this.ctx;
    const dpr = this.dpr;
    const x = sx(p.x);
    const y = sy(p.y);
    const w = Math.max(4, sx(p.x + 1) - x);
    const hgt = Math.max(4, sy(p.y + 1) - y);
    ctx.globalAlpha = 0.85;
    ctx.fillStyle = this.reticle.colour;
    ctx.fillRect(x, y, w, hgt);
    ctx.globalAlpha = 1;
    const pad = Math.max(2, Math.round(w * 0.18));
    const arm = Math.max(4, Math.round(w * 0.4));
    const corners = [[x - pad, y - pad, 1, 1], [x + w + pad, y - pad, -1, 1], [x - pad, y + hgt + pad, 1, -1], [x + w + pad, y + hgt + pad, -1, -1]];
    for (const [stroke, lw] of [["#fff", 4], ["#111", 2]]) {
      ctx.strokeStyle = stroke;
      ctx.lineWidth = lw * dpr;
      ctx.beginPath();
      for (const [cx, cy, dx, dy] of corners) {
        ctx.moveTo(cx + dx * arm, cy);
        ctx.lineTo(cx, cy);
        ctx.lineTo(cx, cy + dy * arm);
      }
      ctx.stroke();
    }
  }

  // ---- input -----------------------------------------------------------------------------

  bind() {
    const c = this.canvas;
    new ResizeObserver((entries) => {
      const box = entries[entries.length - 1].contentRect;
      this.resize(box.width, box.height);
    }).observe(c);
    c.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    c.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    c.addEventListener("pointermove", (e) => this.onPointerMove(e));
    c.addEventListener("pointerup", (e) => this.onPointerUp(e, true));
    c.addEventListener("pointercancel", (e) => this.onPointerUp(e, false));
    c.addEventListener("pointerleave", (e) => {
      if (e.pointerType === "mouse" && this.pointers.size === 0) this.setHover(null);
    });
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("keydown", (e) => this.onKey(e));
    c.addEventListener("focus", () => {
      this.focused = true;
      this.requestDraw();
    });
    c.addEventListener("blur", () => {
      this.focused = false;
      this.pointers.clear();
      this.gesture = null;
      this.pinch = null;
      this.requestDraw();
    });
  }

  onWheel(e) {
    if (!this.viewport) return;
    e.preventDefault();
    let dy = e.deltaY;
    if (e.deltaMode === 1) dy *= 16;
    else if (e.deltaMode === 2) dy *= 400;
    const p = this.local(e);
    // Trackpad pinches arrive as ctrl+wheel with small deltas.
    const factor = Math.exp(-dy * (e.ctrlKey ? 0.01 : 0.0015));
    this.anim = null;
    this.moved = true;
    this.viewport.zoomAt(factor, p.x, p.y);
    this.viewChanged();
  }

  onPointerDown(e) {
    if (!this.viewport) return;
    if (e.pointerType === "mouse" && e.button !== 0 && e.button !== 2) return;
    this.keyboard = false;
    const p = this.local(e);
    try {
      this.canvas.setPointerCapture(e.pointerId);
    } catch {
      // not capturable (synthetic event): dragging still works inside the element
    }
    this.pointers.set(e.pointerId, p);
    if (this.pointers.size === 1) {
      this.gesture = { start: p, moved: false, button: e.button, shift: e.shiftKey || e.altKey, pointerType: e.pointerType };
      if (this.selecting && (e.pointerType !== "mouse" || e.button === 0)) {
        const g = this.gesture;
        g.select = true;
        g.anchor = this.viewport.clampedPixelAt(p.x, p.y);
        g.before = this.area;
        this.area = rectBetween(g.anchor, g.anchor);
        this.requestDraw();
      }
    } else {
      if (this.gesture) {
        this.gesture.moved = true; // a second finger: never a tap
        if (this.gesture.select) {
          // A pinch, not a selection: the rectangle from before comes back.
          this.gesture.select = false;
          this.area = this.gesture.before;
        }
      }
      this.pinch = this.pinchState();
    }
  }

  setHover(p) {
    const same = p === this.hover || (p && this.hover && p.x === this.hover.x && p.y === this.hover.y);
    if (same) return;
    this.hover = p;
    this.cb.onHover(p);
    if (this.reticle) this.requestDraw();
  }

  pinchState() {
    const [a, b] = [...this.pointers.values()];
    return { dist: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)), mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
  }

  onPointerMove(e) {
    if (!this.viewport) return;
    const p = this.local(e);
    if (!this.pointers.has(e.pointerId)) {
      if (e.pointerType === "mouse") this.setHover(this.viewport.pixelAt(p.x, p.y));
      return;
    }
    const prev = this.pointers.get(e.pointerId);
    this.pointers.set(e.pointerId, p);
    if (this.pointers.size === 1 && this.gesture?.select) {
      // The mode may have ended mid-drag (Escape): the rest of the gesture draws nothing.
      if (!this.selecting) return;
      this.area = rectBetween(this.gesture.anchor, this.viewport.clampedPixelAt(p.x, p.y));
      this.requestDraw();
    } else if (this.pointers.size === 1 && this.gesture) {
      const g = this.gesture;
      if (!g.moved) {
        if (Math.hypot(p.x - g.start.x, p.y - g.start.y) < DRAG_THRESHOLD_PX) return;
        g.moved = true;
        this.moved = true;
        this.anim = null;
        this.viewport.panBy(p.x - g.start.x, p.y - g.start.y);
      } else {
        this.viewport.panBy(p.x - prev.x, p.y - prev.y);
      }
      this.canvas.classList.add("dragging");
      this.viewChanged();
    } else if (this.pointers.size >= 2 && this.pinch) {
      const next = this.pinchState();
      this.anim = null;
      this.moved = true;
      this.viewport.zoomAt(next.dist / this.pinch.dist, next.mid.x, next.mid.y);
      this.viewport.panBy(next.mid.x - this.pinch.mid.x, next.mid.y - this.pinch.mid.y);
      this.pinch = next;
      this.viewChanged();
    }
  }

  onPointerUp(e, completed) {
    if (!this.pointers.has(e.pointerId)) return;
    this.pointers.delete(e.pointerId);
    this.canvas.classList.remove("dragging");
    if (this.pointers.size >= 2) {
      this.pinch = this.pinchState();
      return;
    }
    this.pinch = null;
    if (this.pointers.size === 1) return; // one finger left: the gesture is over, not a tap
    const g = this.gesture;
    this.gesture = null;
    if (g?.select) {
      if (!completed || !this.selecting) {
        // Cancelled: the rectangle from before the drag, unless the mode itself ended.
        this.area = this.selecting ? g.before : null;
        this.requestDraw();
        return;
      }
      const p = this.local(e);
      this.area = rectBetween(g.anchor, this.viewport.clampedPixelAt(p.x, p.y));
      this.requestDraw();
      this.selecting(this.area);
      return;
    }
    if (!completed || !g || g.moved || !this.viewport) return;
    const p = this.local(e);
    const px = this.viewport.pixelAt(p.x, p.y);
    if (px === null) return;
    this.cb.onActivate(px.x, px.y, { inspectOnly: g.button === 2 || g.shift, pointerType: g.pointerType, screen: p });
  }

  /** Zooms by `factor` about a screen point, animated. */
  zoomSmooth(factor, sx, sy) {
    const vp = this.viewport;
    if (!vp) return;
    sx ??= vp.focusX();
    sy ??= vp.focusY();
    const from = this.anim ? this.anim.target : vp.scale;
    const target = Math.min(vp.maxScale, Math.max(vp.minScale, from * factor));
    this.anim = { target, sx, sy };
    this.moved = true;
    this.requestDraw();
  }

  /** Zooms (animated) to `scale` about a screen point, which keeps its canvas point. */
  zoomTo(scale, sx, sy) {
    const vp = this.viewport;
    if (!vp) return;
    this.zoomSmooth(scale / (this.anim ? this.anim.target : vp.scale), sx, sy);
  }

  fit() {
    if (!this.viewport) return;
    this.anim = null;
    this.viewport.fit();
    this.viewChanged();
  }

  onKey(e) {
    const vp = this.viewport;
    if (!vp || e.ctrlKey || e.metaKey || e.altKey) return;
    const step = (vp.scale >= 4 ? vp.scale : 40) * (e.shiftKey ? 10 : 1);
    const pan = (dx, dy) => {
      if (!this.keyboard) {
        // Snap the centre onto a pixel centre so one step moves the crosshair one pixel.
        vp.cx = Math.floor(vp.cx) + 0.5;
        vp.cy = Math.floor(vp.cy) + 0.5;
      }
      this.keyboard = true;
      this.moved = true;
      vp.panBy(dx, dy);
      this.viewChanged();
    };
    let handled = true;
    switch (e.key) {
      case "ArrowLeft":
        pan(step, 0);
        break;
      case "ArrowRight":
        pan(-step, 0);
        break;
      case "ArrowUp":
        pan(0, step);
        break;
      case "ArrowDown":
        pan(0, -step);
        break;
      case "+":
      case "=":
        this.zoomSmooth(1.6);
        break;
      case "-":
      case "_":
        this.zoomSmooth(1 / 1.6);
        break;
      case "f":
      case "F":
      case "Home":
        this.fit();
        break;
      case "Enter":
      case " ": {
        this.keyboard = true;
        const p = vp.centrePixel();
        this.cb.onActivate(p.x, p.y, { inspectOnly: false, pointerType: "keyboard", screen: vp.toScreen(p.x + 0.5, p.y + 0.5) });
        this.requestDraw();
        break;
      }
      case "i":
      case "I": {
        this.keyboard = true;
        const p = vp.centrePixel();
        this.cb.onActivate(p.x, p.y, { inspectOnly: true, pointerType: "keyboard", screen: vp.toScreen(p.x + 0.5, p.y + 0.5) });
        this.requestDraw();
        break;
      }
      default:
        handled = false;
    }
    if (handled) e.preventDefault();
  }
}
