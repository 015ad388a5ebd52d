// Owns: the view transform of the canvas (which canvas point is at the centre of the screen,
// and how many CSS pixels one canvas pixel spans), its pan / zoom / fit operations, the
// viewport → visible tiles computation that drives tile subscriptions, and the rectangle a
// drag selects (Restore an area). Insets (the parts of the view that floating bars cover)
// move the view's focus — where fit and centreOn put things, where the keyboard crosshair
// sits — but never the picture: changing them keeps every canvas point where it is on the
// screen. Pure logic, no DOM: tested in tests/app.test.mjs and tests/moderation.test.mjs.

export const MIN_SCALE = 1 / 16;
export const MAX_SCALE = 64;

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

export class Viewport {
  /**
   * `width`/`height`: the view's size in CSS pixels; `canvasWidth`/`canvasHeight`: the canvas
   * size in canvas pixels. The view starts fitted.
   */
  constructor(width, height, canvasWidth, canvasHeight, { minScale = MIN_SCALE, maxScale = MAX_SCALE } = {}) {
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
    this.canvasWidth = canvasWidth;
    this.canvasHeight = canvasHeight;
    this.minScale = minScale;
    this.maxScale = maxScale;
    this.cx = canvasWidth / 2;
    this.cy = canvasHeight / 2;
    this.scale = 1;
    this.inset = { top: 0, right: 0, bottom: 0, left: 0 };
    this.fit();
  }

  /** Screen point of the focus: the centre of the uncovered part of the view. */
  focusX() {
    const { left, right } = this.inset;
    return left + Math.max(1, this.width - left - right) / 2;
  }

  focusY() {
    const { top, bottom } = this.inset;
    return top + Math.max(1, this.height - top - bottom) / 2;
  }

  /**
   * The parts of the view covered by floating bars, in CSS pixels. The picture stays put:
   * the centre is moved to whatever canvas point is now under the new focus.
   */
  setInset({ top = 0, right = 0, bottom = 0, left = 0 }) {
    const clampInset = (v, size) => Math.max(0, Math.min(size * 0.8, v));
    const next = { top: clampInset(top, this.height), right: clampInset(right, this.width), bottom: clampInset(bottom, this.height), left: clampInset(left, this.width) };
    const old = this.inset;
    if (next.top === old.top && next.right === old.right && next.bottom === old.bottom && next.left === old.left) return;
    const fx = next.left + Math.max(1, this.width - next.left - next.right) / 2;
    const fy = next.top + Math.max(1, this.height - next.top - next.bottom) / 2;
    const p = this.toCanvas(fx, fy);
    this.inset = next;
    this.cx = p.x;
    this.cy = p.y;
  }

  /** The view element changed size (the centre stays). */
  resize(width, height) {
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
  }

  /** The uncovered part of the view: its width and height in CSS pixels. */
  freeSize() {
    const { top, right, bottom, left } = this.inset;
    return { w: Math.max(1, this.width - left - right), h: Math.max(1, this.height - top - bottom) };
  }

  /** Shows the whole canvas, centred. */
  fit() {
    const free = this.freeSize();
    const s = Math.min(free.w / this.canvasWidth, free.h / this.canvasHeight) * 0.95;
    this.scale = clamp(s, this.minScale, this.maxScale);
    this.cx = this.canvasWidth / 2;
    this.cy = this.canvasHeight / 2;
  }

  /** Canvas coordinates (fractional) of a screen point (CSS pixels from the view's top left). */
  toCanvas(sx, sy) {
    return { x: this.cx + (sx - this.focusX()) / this.scale, y: this.cy + (sy - this.focusY()) / this.scale };
  }

  /** Screen point (CSS pixels) of canvas coordinates. */
  toScreen(x, y) {
    return { x: (x - this.cx) * this.scale + this.focusX(), y: (y - this.cy) * this.scale + this.focusY() };
  }

  /** The integer pixel under a screen point, or null when that point is off the canvas. */
  pixelAt(sx, sy) {
    const p = this.toCanvas(sx, sy);
    const x = Math.floor(p.x);
    const y = Math.floor(p.y);
    if (x < 0 || y < 0 || x >= this.canvasWidth || y >= this.canvasHeight) return null;
    return { x, y };
  }

  /** The pixel under a screen point, clamped onto the canvas (a drag past its edge keeps the edge). */
  clampedPixelAt(sx, sy) {
    const p = this.toCanvas(sx, sy);
    return {
      x: clamp(Math.floor(p.x), 0, this.canvasWidth - 1),
      y: clamp(Math.floor(p.y), 0, this.canvasHeight - 1),
    };
  }

  /** The pixel at the centre of the view (the keyboard crosshair), clamped onto the canvas. */
  centrePixel() {
    return {
      x: clamp(Math.floor(this.cx), 0, this.canvasWidth - 1),
      y: clamp(Math.floor(this.cy), 0, this.canvasHeight - 1),
    };
  }

  /** Moves the content by a screen delta (drag: the content follows the pointer). */
  panBy(dx, dy) {
    this.cx -= dx / this.scale;
    this.cy -= dy / this.scale;
    this.clampCentre();
  }

  /** Multiplies the scale by `factor`, keeping the canvas point under (sx, sy) in place. */
  zoomAt(factor, sx = this.focusX(), sy = this.focusY()) {
    const p = this.toCanvas(sx, sy);
    this.scale = clamp(this.scale * factor, this.minScale, this.maxScale);
    this.cx = p.x - (sx - this.focusX()) / this.scale;
    this.cy = p.y - (sy - this.focusY()) / this.scale;
    this.clampCentre();
  }

  /** Centres the view on canvas point (x, y), optionally at a given scale. */
  centreOn(x, y, scale = this.scale) {
    this.scale = clamp(scale, this.minScale, this.maxScale);
    this.cx = x;
    this.cy = y;
    this.clampCentre();
  }

  /** Keeps the centre of the view on the canvas, so the canvas can never be lost off-screen. */
  clampCentre() {
    this.cx = clamp(this.cx, 0, this.canvasWidth);
    this.cy = clamp(this.cy, 0, this.canvasHeight);
  }

  /** The visible part of the canvas in canvas coordinates: `{x0, y0, x1, y1}` (fractional). */
  visibleRect() {
    const a = this.toCanvas(0, 0);
    const b = this.toCanvas(this.width, this.height);
    return { x0: a.x, y0: a.y, x1: b.x, y1: b.y };
  }
}

/** The rectangle whose opposite corner pixels are `a` and `b` (both inside it): `{x, y, width, height}`. */
export function rectBetween(a, b) {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, width: Math.abs(a.x - b.x) + 1, height: Math.abs(a.y - b.y) + 1 };
}

/**
 * The ids of the tiles of `geometry` that intersect the view, sorted, with `margin` extra
 * tiles on each side (prefetch).
 */
export function visibleTiles(viewport, geometry, margin = 0) {
  const r = viewport.visibleRect();
  const ts = geometry.tileSize;
  const tx0 = clamp(Math.floor(r.x0 / ts) - margin, 0, geometry.tilesX - 1);
  const ty0 = clamp(Math.floor(r.y0 / ts) - margin, 0, geometry.tilesY - 1);
  const tx1 = clamp(Math.ceil(r.x1 / ts) - 1 + margin, 0, geometry.tilesX - 1);
  const ty1 = clamp(Math.ceil(r.y1 / ts) - 1 + margin, 0, geometry.tilesY - 1);
  if (r.x1 <= 0 || r.y1 <= 0 || r.x0 >= geometry.width || r.y0 >= geometry.height) return [];
  const out = [];
  for (let ty = ty0; ty <= ty1; ty++) for (let tx = tx0; tx <= tx1; tx++) out.push(ty * geometry.tilesX + tx);
  return out;
}
