// Owns: the page's shareable address — the view in the query string (`?x=&y=&zoom=`: the
// canvas pixel at the centre and CSS pixels per canvas pixel), read at load and written back
// (replaceState, no history entries) as the user pans and zooms, keeping every other
// parameter (e.g. `?transport=`); and the "x, y" text of the jump-to-coordinates box.
// Pure logic, no DOM: tested in tests/ui.test.mjs.

import { MIN_SCALE, MAX_SCALE } from "./viewport.js";

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/**
 * The view a query string asks for on a `width`×`height` canvas: `{x, y, zoom}` (zoom null
 * when absent), or null when x/y are missing or not numbers. Coordinates are clamped onto the
 * canvas, the zoom into [MIN_SCALE, MAX_SCALE].
 */
export function viewFromQuery(search, width, height) {
  const q = new URLSearchParams(search);
  const num = (k) => {
    const raw = q.get(k);
    if (raw === null || raw.trim() === "") return null;
    const v = Number(raw);
    return Number.isFinite(v) ? v : null;
  };
  const x = num("x");
  const y = num("y");
  if (x === null || y === null) return null;
  const z = num("zoom");
  return {
    x: clamp(Math.floor(x), 0, width - 1),
    y: clamp(Math.floor(y), 0, height - 1),
    zoom: z === null || z <= 0 ? null : clamp(z, MIN_SCALE, MAX_SCALE),
  };
}

/** Rounds a zoom for the address bar: 2 significant digits below 1, 1 decimal above. */
export function roundZoom(z) {
  if (z >= 1) return Math.round(z * 10) / 10;
  return Number(z.toPrecision(2));
}

/** `search` with x, y and zoom set to `view` (other parameters kept, in order). */
export function queryWithView(search, view) {
  const q = new URLSearchParams(search);
  q.set("x", String(Math.floor(view.x)));
  q.set("y", String(Math.floor(view.y)));
  q.set("zoom", String(roundZoom(view.zoom)));
  return `?${q.toString()}`;
}

/**
 * "12, 34", "12 34", "(12,34)", "x=12 y=34" → {x: 12, y: 34}; null when it is not two
 * integers or they lie off a `width`×`height` canvas.
 */
export function parseCoords(text, width, height) {
  const nums = String(text).match(/-?\d+/g);
  if (!nums || nums.length !== 2) return null;
  const [x, y] = nums.map(Number);
  if (x < 0 || y < 0 || x >= width || y >= height) return null;
  return { x, y };
}
