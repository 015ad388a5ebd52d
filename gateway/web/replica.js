// Owns: the client's replica of the canvas — one packed Uint8Array and one cursor per tile —
// and the tile-subscription state machine of PROTOCOL.md (Subscribe cursors, Pixels
// prev_seq/last_seq rules, TileData, Resync, resuming after a reconnect), plus the palette →
// RGBA rasterisation of a tile. Pure logic, no DOM and no I/O: every method returns the
// Subscribe / Unsubscribe work for the caller to send. Tested in tests/app.test.mjs.

import { NO_CURSOR, MAX_TILES_PER_FRAME, getPixel, paletteBytes } from "./codec.js";

/** How long a gap-triggered re-Subscribe suppresses further ones for the same tile. */
export const RESUBSCRIBE_HOLD_MS = 5000;

/** Splits `list` into arrays of at most `size` entries (Subscribe/Unsubscribe frames). */
export function chunk(list, size = MAX_TILES_PER_FRAME) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

export class Replica {
  constructor(geometry) {
    this.geometry = geometry;
    /** Packed tile bytes, or null when the tile is not held. */
    this.data = new Array(geometry.tileCount).fill(null);
    /** Per-tile cursor (BigInt): the seq the held bytes reflect, NO_CURSOR when not held. */
    this.cursors = new Array(geometry.tileCount).fill(NO_CURSOR);
    /** Tiles the view wants (visible ones). */
    this.interest = new Set();
    /** Tiles subscribed on the current connection. */
    this.subscribed = new Set();
    /** Tile → local time until which a gap re-Subscribe is in flight. */
    this.resubscribing = new Map();
    /** Tiles changed since the renderer last looked. */
    this.dirty = new Set();
    this.connected = false;
    /** Counters, for the status line and tests. */
    this.stats = { applied: 0, ignored: 0, gaps: 0, tileData: 0, resyncs: 0 };
  }

  validTile(tile) {
    return Number.isInteger(tile) && tile >= 0 && tile < this.geometry.tileCount;
  }

  cursorOf(tile) {
    return this.validTile(tile) ? this.cursors[tile] : NO_CURSOR;
  }

  holds(tile) {
    return this.validTile(tile) && this.data[tile] !== null;
  }

  /** The colour index at (x, y), or null when off the canvas or the tile is not held. */
  pixel(x, y) {
    const at = this.geometry.locate(x, y);
    if (at === null) return null;
    const bytes = this.data[at.tile];
    return bytes === null ? null : getPixel(bytes, this.geometry.bpp, at.offset);
  }

  /**
   * Loads a parsed snapshot (snapshot.js). A tile is replaced when the replica does not hold
   * it or holds an older seq, so loading a snapshot that is older than live data is harmless.
   * Returns the number of tiles replaced. Throws if the geometry differs.
   */
  loadSnapshot(snap) {
    const g = snap.geometry;
    const mine = this.geometry;
    if (g.width !== mine.width || g.height !== mine.height || g.bpp !== mine.bpp || g.tileSize !== mine.tileSize) {
      throw new RangeError("snapshot geometry differs from the canvas geometry");
    }
    let replaced = 0;
    for (let t = 0; t < g.tileCount; t++) {
      const seq = snap.seqs[t];
      if (this.data[t] === null || seq > this.cursors[t]) {
        this.data[t] = snap.tiles[t].slice();
        this.cursors[t] = seq;
        this.dirty.add(t);
        replaced++;
      }
    }
    return replaced;
  }

  /**
   * Sets the tiles the view wants. Returns `{subscribe: [{tile, cursor}], unsubscribe:
   * [tile]}` to send now (both empty while disconnected: `connect()` subscribes later).
   * Tiles that leave the view keep their bytes and cursor for when they come back.
   */
  setInterest(tiles) {
    const want = new Set();
    for (const t of tiles) if (this.validTile(t)) want.add(t);
    this.interest = want;
    const subscribe = [];
    const unsubscribe = [];
    if (!this.connected) return { subscribe, unsubscribe };
    for (const t of want) {
      if (!this.subscribed.has(t)) {
        this.subscribed.add(t);
        subscribe.push({ tile: t, cursor: this.cursors[t] });
      }
    }
    for (const t of this.subscribed) {
      if (!want.has(t)) unsubscribe.push(t);
    }
    for (const t of unsubscribe) {
      this.subscribed.delete(t);
      this.resubscribing.delete(t);
    }
    subscribe.sort((a, b) => a.tile - b.tile);
    unsubscribe.sort((a, b) => a - b);
    return { subscribe, unsubscribe };
  }

  /** A (re)connected session holds no subscriptions: subscribe every wanted tile with the cursors held. */
  connect() {
    this.connected = true;
    this.subscribed.clear();
    this.resubscribing.clear();
    return this.setInterest([...this.interest]);
  }

  /** The transport went away: the server forgot our subscriptions; bytes and cursors stay. */
  disconnect() {
    this.connected = false;
    this.subscribed.clear();
    this.resubscribing.clear();
  }

  /**
   * Applies a decoded `Pixels` frame. Returns `{result, subscribe}` where result is
   * "applied" (prev_seq == cursor), "ignored" (last_seq <= cursor: already reflected),
   * "resubscribe" (a gap: `subscribe` holds the re-Subscribe to send) or "gap" (a gap while a
   * re-Subscribe is already in flight, or for a tile no longer subscribed: the server replays
   * it on the next Subscribe).
   */
  applyPixels(frame, now = Date.now()) {
    const t = frame.tile;
    if (!this.validTile(t)) return { result: "ignored", subscribe: [] };
    const cursor = this.cursors[t];
    if (frame.prev_seq === cursor && this.data[t] !== null) {
      frame.updates.applyTo(this.data[t], this.geometry.bpp);
      this.cursors[t] = frame.last_seq;
      this.resubscribing.delete(t);
      this.dirty.add(t);
      this.stats.applied++;
      return { result: "applied", subscribe: [] };
    }
    // With NO_CURSOR (nothing held) this is always true: the TileData answering our Subscribe
    // comes before any Pixels of the tile, so there is nothing to apply them to yet.
    if (frame.last_seq <= cursor) {
      this.stats.ignored++;
      return { result: "ignored", subscribe: [] };
    }
    this.stats.gaps++;
    if (!this.connected || !this.subscribed.has(t)) return { result: "gap", subscribe: [] };
    const until = this.resubscribing.get(t);
    if (until !== undefined && until > now) return { result: "gap", subscribe: [] };
    this.resubscribing.set(t, now + RESUBSCRIBE_HOLD_MS);
    return { result: "resubscribe", subscribe: [{ tile: t, cursor }] };
  }

  /** Applies a decoded `TileData` frame: replaces the tile and its cursor. False if refused. */
  applyTileData(frame) {
    const t = frame.tile;
    if (!this.validTile(t) || frame.data.length !== this.geometry.tileBytes) return false;
    this.data[t] = frame.data.slice(); // the frame's bytes are a view into the message
    this.cursors[t] = frame.seq;
    this.resubscribing.delete(t);
    this.dirty.add(t);
    this.stats.tileData++;
    return true;
  }

  /** A `Resync`: re-Subscribe the listed tiles we are subscribed to, with the cursors held. */
  resync(tiles, now = Date.now()) {
    this.stats.resyncs++;
    const subscribe = [];
    const seen = new Set();
    for (const t of tiles) {
      if (seen.has(t) || !this.subscribed.has(t)) continue;
      seen.add(t);
      this.resubscribing.set(t, now + RESUBSCRIBE_HOLD_MS);
      subscribe.push({ tile: t, cursor: this.cursors[t] });
    }
    return subscribe;
  }

  /** Returns and clears the set of tiles changed since the last call. */
  takeDirty() {
    const out = this.dirty;
    this.dirty = new Set();
    return out;
  }
}

/**
 * A lookup table palette index → RGBA packed as a Uint32 in the platform's byte order, ready
 * to write into an ImageData's `Uint32Array` view. Entries past the palette are transparent
 * black; `bpp` sizes the table.
 */
export function paletteLut(palette, bpp = 8) {
  const rgb = paletteBytes(palette);
  const lut = new Uint32Array(1 << bpp);
  const bytes = new Uint8Array(lut.buffer);
  for (let i = 0; i < palette.length && i < lut.length; i++) {
    bytes[4 * i] = rgb[3 * i];
    bytes[4 * i + 1] = rgb[3 * i + 1];
    bytes[4 * i + 2] = rgb[3 * i + 2];
    bytes[4 * i + 3] = 255;
  }
  return lut;
}

/**
 * Writes a packed tile as RGBA pixels (one Uint32 each, from `paletteLut`) into `out`
 * (`tileSize²` entries, row-major, e.g. `new Uint32Array(imageData.data.buffer)`).
 */
export function rasterizeTile(bytes, bpp, lut, out) {
  const n = out.length;
  if (bpp === 8) {
    for (let i = 0; i < n; i++) out[i] = lut[bytes[i]];
    return out;
  }
  if (bpp === 4) {
    for (let i = 0, o = 0; o < n; i++, o += 2) {
      const b = bytes[i];
      out[o] = lut[b & 15];
      out[o + 1] = lut[b >>> 4];
    }
    return out;
  }
  for (let o = 0; o < n; o++) out[o] = lut[getPixel(bytes, bpp, o)];
  return out;
}
