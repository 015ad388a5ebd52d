// Owns: the minimap (#minimap) — the whole canvas at a glance, down-sampled to at most
// MINIMAP_MAX_PX on a side (so its cost does not grow with the canvas), with the part in view
// outlined; a click or drag on it centres the view there. Redrawn at most every
// MINIMAP_REDRAW_MS while pixels change; the outline follows every pan and zoom at once.
// The geometry (size, outline, minimap → canvas point) is pure and tested in tests/ui.test.mjs.

export const MINIMAP_MAX_PX = 160;
export const MINIMAP_REDRAW_MS = 500;

/** The minimap's size in CSS pixels for a `width`×`height` canvas (aspect kept). */
export function minimapSize(width, height, max = MINIMAP_MAX_PX) {
  const s = max / Math.max(width, height);
  return { w: Math.max(1, Math.round(width * s)), h: Math.max(1, Math.round(height * s)) };
}

/**
 * The viewport's outline on a `mw`×`mh` minimap: `{x, y, w, h}` in minimap pixels, clipped
 * to the minimap and at least 2 px on a side so it stays visible when zoomed far in.
 */
export function minimapRect(viewport, mw, mh) {
  const r = viewport.visibleRect();
  const sx = mw / viewport.canvasWidth;
  const sy = mh / viewport.canvasHeight;
  let x0 = Math.max(0, r.x0 * sx);
  let y0 = Math.max(0, r.y0 * sy);
  let x1 = Math.min(mw, r.x1 * sx);
  let y1 = Math.min(mh, r.y1 * sy);
  if (x1 - x0 < 2) {
    const c = Math.min(mw - 1, Math.max(1, (x0 + x1) / 2));
    x0 = c - 1;
    x1 = c + 1;
  }
  if (y1 - y0 < 2) {
    const c = Math.min(mh - 1, Math.max(1, (y0 + y1) / 2));
    y0 = c - 1;
    y1 = c + 1;
  }
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

/** The canvas point under minimap point (mx, my). */
export function minimapToCanvas(mx, my, mw, mh, width, height) {
  return {
    x: Math.min(width, Math.max(0, (mx / mw) * width)),
    y: Math.min(height, Math.max(0, (my / mh) * height)),
  };
}

export class Minimap {
  /** `onJump(x, y)`: the user picked canvas point (x, y) on the minimap. */
  constructor(canvas, { onJump }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onJump = onJump;
    this.replica = null;
    this.lut = null;
    this.viewport = null;
    this.image = null;
    this.dirty = true;
    this.timer = null;
    this.frame = 0;
    this.size = { w: 1, h: 1 };
    this.dragging = false;
    const jump = (e) => {
      const r = canvas.getBoundingClientRect();
      if (!this.replica || r.width === 0) return;
      const g = this.replica.geometry;
      const p = minimapToCanvas(e.clientX - r.left, e.clientY - r.top, r.width, r.height, g.width, g.height);
      this.onJump(p.x, p.y);
    };
    canvas.addEventListener("pointerdown", (e) => {
      this.dragging = true;
      try {
        canvas.setPointerCapture(e.pointerId);
      } catch {
        // a synthetic event: the drag still works inside the element
      }
      jump(e);
    });
    canvas.addEventListener("pointermove", (e) => {
      if (this.dragging) jump(e);
    });
    const end = () => {
      this.dragging = false;
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  /** A new replica (geometry) and its colour lookup table. */
  setModel(replica, lut) {
    this.replica = replica;
    this.lut = lut;
    const g = replica.geometry;
    this.size = minimapSize(g.width, g.height);
    const dpr = Math.max(1, Math.min(2, globalThis.devicePixelRatio || 1));
    this.dpr = dpr;
    this.canvas.width = Math.round(this.size.w * dpr);
    this.canvas.height = Math.round(this.size.h * dpr);
    this.canvas.style.width = `${this.size.w}px`;
    this.canvas.style.height = `${this.size.h}px`;
    this.image = this.ctx.createImageData(this.size.w, this.size.h);
    this.pixels = new Uint32Array(this.image.data.buffer);
    this.surface = typeof OffscreenCanvas === "function"
      ? new OffscreenCanvas(this.size.w, this.size.h)
      : Object.assign(document.createElement("canvas"), { width: this.size.w, height: this.size.h });
    this.pixelsChanged(true);
  }

  setLut(lut) {
    this.lut = lut;
    this.pixelsChanged(true);
  }

  /** Pixels changed: resample soon (at most every MINIMAP_REDRAW_MS; `now` skips the wait). */
  pixelsChanged(now = false) {
    this.dirty = true;
    if (now) {
      clearTimeout(this.timer);
      this.timer = null;
      this.request();
      return;
    }
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.request();
    }, MINIMAP_REDRAW_MS);
  }

  /** The view moved: redraw the outline. */
  viewChanged(viewport) {
    this.viewport = viewport;
    this.request();
  }

  request() {
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.draw());
  }

  resample() {
    const r = this.replica;
    const { w, h } = this.size;
    const g = r.geometry;
    const px = this.pixels;
    const unloaded = 0xffd0c8c3; // ABGR (little-endian RGBA): the canvas's "not loaded" grey
    for (let my = 0; my < h; my++) {
      const y = Math.min(g.height - 1, Math.floor(((my + 0.5) * g.height) / h));
      for (let mx = 0; mx < w; mx++) {
        const x = Math.min(g.width - 1, Math.floor(((mx + 0.5) * g.width) / w));
        const c = r.pixel(x, y);
        px[my * w + mx] = c === null || !this.lut ? unloaded : this.lut[c] ?? unloaded;
      }
    }
    this.surface.getContext("2d").putImageData(this.image, 0, 0);
    this.dirty = false;
  }

  draw() {
    this.frame = 0;
    if (!this.replica || !this.image) return;
    if (this.dirty) this.resample();
    const ctx = this.ctx;
    const dpr = this.dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, this.size.w, this.size.h);
    ctx.drawImage(this.surface, 0, 0);
    if (this.viewport) {
      const r = minimapRect(this.viewport, this.size.w, this.size.h);
      this.rect = r;
      ctx.lineWidth = 2;
      ctx.strokeStyle = "rgba(255,255,255,0.95)";
      ctx.strokeRect(r.x, r.y, r.w, r.h);
      ctx.lineWidth = 1;
      ctx.strokeStyle = "#e4007c";
      ctx.strokeRect(r.x, r.y, r.w, r.h);
    }
  }
}
