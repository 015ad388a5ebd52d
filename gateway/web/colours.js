// Owns: human names for palette colours (shown in tooltips, the inspector and screen-reader
// labels). The r/place 2017 palette (the server's default) has hand-picked names; any other
// colour gets the nearest of a small set of plain names, so a custom palette still reads
// "dark green" rather than "#1E6B2A". Pure logic, no DOM: tested in tests/ui.test.mjs.

/** Exact names for the r/place 2017 palette. */
const KNOWN = new Map([
  ["#FFFFFF", "white"],
  ["#E4E4E4", "light grey"],
  ["#888888", "grey"],
  ["#222222", "black"],
  ["#FFA7D1", "pink"],
  ["#E50000", "red"],
  ["#E59500", "orange"],
  ["#A06A42", "brown"],
  ["#E5D900", "yellow"],
  ["#94E044", "lime"],
  ["#02BE01", "green"],
  ["#00D3DD", "cyan"],
  ["#0083C7", "blue"],
  ["#0000EA", "dark blue"],
  ["#CF6EE4", "magenta"],
  ["#820080", "purple"],
  ["#000000", "black"],
]);

/** Reference colours for everything else (nearest wins). */
const NEAREST = [
  ["white", 255, 255, 255], ["light grey", 200, 200, 200], ["grey", 136, 136, 136], ["dark grey", 72, 72, 72],
  ["black", 20, 20, 20], ["red", 220, 20, 20], ["dark red", 120, 0, 0], ["pink", 255, 160, 200],
  ["orange", 240, 140, 0], ["brown", 140, 90, 50], ["beige", 230, 210, 170], ["yellow", 240, 220, 0],
  ["lime", 150, 230, 60], ["green", 20, 180, 20], ["dark green", 0, 90, 30], ["teal", 0, 130, 130],
  ["cyan", 0, 210, 220], ["light blue", 140, 200, 250], ["blue", 0, 120, 210], ["dark blue", 0, 0, 200],
  ["navy", 0, 0, 110], ["purple", 130, 0, 130], ["magenta", 210, 100, 230], ["violet", 150, 90, 220],
];

/** "#RRGGBB" (any case, with or without #) → [r, g, b], or null. */
export function parseHex(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(String(hex).trim());
  if (!m) return null;
  const v = parseInt(m[1], 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** A short English name for a colour. */
export function colourName(hex) {
  const key = `#${String(hex).replace(/^#/, "").toUpperCase()}`;
  const known = KNOWN.get(key);
  if (known) return known;
  const rgb = parseHex(hex);
  if (!rgb) return String(hex);
  let best = NEAREST[0];
  let bestD = Infinity;
  for (const c of NEAREST) {
    // Weighted RGB distance ("redmean"): cheap and close enough to perception for naming.
    const rm = (rgb[0] + c[1]) / 2;
    const dr = rgb[0] - c[1];
    const dg = rgb[1] - c[2];
    const db = rgb[2] - c[3];
    const d = (2 + rm / 256) * dr * dr + 4 * dg * dg + (2 + (255 - rm) / 256) * db * db;
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best[0];
}

/**
 * Names for a whole palette, unique within it: a second "green" becomes "green 2", so a
 * screen-reader user can tell every swatch apart.
 */
export function paletteNames(palette) {
  const seen = new Map();
  const names = palette.map((c) => colourName(c));
  const total = new Map();
  for (const n of names) total.set(n, (total.get(n) ?? 0) + 1);
  return names.map((n) => {
    if (total.get(n) === 1) return n;
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return `${n} ${k}`;
  });
}

/** The keyboard shortcut that picks colour `i` (1–9, 0, then ⇧1–⇧0), or null past 20. */
export function colourShortcut(i) {
  if (i < 0 || i >= 20) return null;
  const digit = String((i % 10) + 1).slice(-1);
  return i < 10 ? digit : `Shift+${digit}`;
}

/**
 * The colour a digit key picks: `code` is KeyboardEvent.code ("Digit1".."Digit0", or
 * "Numpad1".."Numpad0"), `shift` whether Shift was held. Null when the key is not a digit.
 */
export function colourForKey(code, shift) {
  const m = /^(?:Digit|Numpad)([0-9])$/.exec(code);
  if (!m) return null;
  const d = Number(m[1]);
  const i = d === 0 ? 9 : d - 1;
  return shift ? i + 10 : i;
}

/** Relative luminance (0 black … 1 white), for picking a readable outline on a swatch. */
export function luminance(hex) {
  const rgb = parseHex(hex);
  if (!rgb) return 0;
  const lin = rgb.map((v) => {
    const s = v / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
}
