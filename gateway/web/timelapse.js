// Owns: the timelapse player (#timelapse, opened with the Timelapse button, over the canvas) —
// the canvas's history as data (PROTOCOL.md section 12): GET /canvas/timelapse, then its
// binary chunks GET /canvas/timelapse/{n}, fetched a bounded number at a time and in order so
// playback starts before all are loaded; the updates replayed into a bitmap of its own (never
// the live replica) with a keyframe every few thousand updates so seeking back is fast; and
// the controls: play / pause, a scrubber over time, the speed (the whole history in at most a
// minute, shown as "×1440"), the moment shown, Live to close. It is not the live canvas and
// never writes to it.
//
// The pure parts — chunk decoding, the time → entry search, the keyframe choice, the speed
// rule, which chunks to load, the ordered bounded loader — are exported and tested under node
// in tests/timelapse.test.mjs; the player class is the only part that touches the DOM.

import { paletteLut } from "./replica.js";
import { h, describeError, formatDateTime } from "./ui.js";

/** The largest chunk a server may send (PROTOCOL.md section 12: 28 + 13 × 16384 bytes), with room. */
const MAX_CHUNK_BYTES = 1 << 20;

export const TIMELAPSE_MAGIC = "PXTL";
export const TIMELAPSE_FORMAT = 1;
export const CHUNK_HEADER_LEN = 28;
export const ENTRY_LEN = 13;
/** The whole history plays in at most this long, whatever its length. */
export const PLAYBACK_MAX_MS = 60_000;
/** Chunk requests in flight at once. */
export const CHUNKS_IN_FLIGHT = 3;
/** Chunks fetched ahead of the first one not yet delivered (bounds what waits for its turn). */
export const CHUNKS_AHEAD_MAX = 2 * CHUNKS_IN_FLIGHT;
/** Tries per chunk before the player gives up (a 4xx answer is not tried again). */
export const CHUNK_ATTEMPTS = 3;
export const CHUNK_RETRY_MS = 1000;
/** Updates held in memory at most (about 13 bytes each); a longer history plays its newest part. */
export const TIMELAPSE_MAX_UPDATES = 1 << 22;
/** Keyframes: one every KEYFRAME_MIN_UPDATES updates at least, at most KEYFRAMES_MAX of them,
 *  and together at most KEYFRAME_BUDGET_BYTES (one byte per canvas pixel each). */
export const KEYFRAME_MIN_UPDATES = 4096;
export const KEYFRAMES_MAX = 64;
export const KEYFRAME_BUDGET_BYTES = 64 << 20;
/** Updates applied per animation frame at most, so a long seek never freezes the page. */
export const APPLY_PER_FRAME_MAX = 200_000;

/** A chunk that does not follow PROTOCOL.md section 12. `kind`: what is wrong. */
export class TimelapseError extends Error {
  /** `kind`: "short" | "magic" | "format" | "count" | "length" | "seq" | "bounds" | "colour". */
  constructor(kind, message) {
    super(message);
    this.name = "TimelapseError";
    this.kind = kind;
  }
}

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError("expected an ArrayBuffer or a Uint8Array");
}

/**
 * Decodes chunk bytes. `limits` (from GET /canvas/timelapse): `chunkUpdates`, `width`,
 * `height`, `colours` (palette size); an entry outside them is an error, not a pixel to guess
 * at. Returns `{baseSeq, baseTimeMs, count, firstSeq, lastSeq, xs, ys, colours, times}` with
 * one typed-array element per entry; `times` are absolute (ms since the epoch), never
 * decreasing. Throws TimelapseError.
 */
export function parseChunk(input, { chunkUpdates = Infinity, width = Infinity, height = Infinity, colours = Infinity } = {}) {
  const bytes = toBytes(input);
  if (bytes.length < CHUNK_HEADER_LEN) {
    throw new TimelapseError("short", `chunk of ${bytes.length} bytes is shorter than its ${CHUNK_HEADER_LEN}-byte header`);
  }
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== TIMELAPSE_MAGIC) throw new TimelapseError("magic", `bad chunk magic ${JSON.stringify(magic)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint16(4, true);
  if (format !== TIMELAPSE_FORMAT) throw new TimelapseError("format", `unsupported chunk format ${format}`);
  const baseSeq = view.getBigUint64(8, true);
  if (baseSeq > BigInt(Number.MAX_SAFE_INTEGER)) throw new TimelapseError("seq", `base_seq ${baseSeq} is beyond 2^53`);
  const baseTimeMs = Number(view.getBigUint64(16, true));
  const count = view.getUint32(24, true);
  if (count > chunkUpdates) throw new TimelapseError("count", `chunk holds ${count} entries, at most ${chunkUpdates} allowed`);
  // The length is checked before anything is allocated for the entries.
  const expected = CHUNK_HEADER_LEN + ENTRY_LEN * count;
  if (bytes.length !== expected) throw new TimelapseError("length", `chunk is ${bytes.length} bytes, expected ${expected} for ${count} entries`);
  const xs = new Uint16Array(count);
  const ys = new Uint16Array(count);
  const cs = new Uint8Array(count);
  const times = new Float64Array(count);
  let prevOffset = 0;
  let t = baseTimeMs;
  for (let i = 0, at = CHUNK_HEADER_LEN; i < count; i++, at += ENTRY_LEN) {
    const offset = view.getUint32(at, true);
    if (offset <= prevOffset || offset > chunkUpdates) {
      throw new TimelapseError("seq", `entry ${i}: seq_offset ${offset} after ${prevOffset} (increasing, 1..=${chunkUpdates})`);
    }
    prevOffset = offset;
    const x = view.getUint16(at + 4, true);
    const y = view.getUint16(at + 6, true);
    const c = bytes[at + 8];
    if (x >= width || y >= height) throw new TimelapseError("bounds", `entry ${i}: pixel (${x}, ${y}) is outside the ${width}×${height} canvas`);
    if (c >= colours) throw new TimelapseError("colour", `entry ${i}: colour ${c} is not in the ${colours}-colour palette`);
    t += view.getUint32(at + 9, true);
    xs[i] = x;
    ys[i] = y;
    cs[i] = c;
    times[i] = t;
  }
  const base = Number(baseSeq);
  const firstOffset = count ? view.getUint32(CHUNK_HEADER_LEN, true) : 0;
  return { baseSeq: base, baseTimeMs, count, firstSeq: base + firstOffset, lastSeq: base + prevOffset, xs, ys, colours: cs, times };
}

/** The first index in `sorted[lo..hi)` (ascending) whose value is above `t` (hi when none). */
export function upperBound(sorted, t, lo = 0, hi = sorted.length) {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The loaded history: decoded chunks appended in order, addressed by a global entry index
 * (0 = the oldest loaded update). Times never decrease across it: a chunk whose first times
 * are below the previous chunk's last (the server's clock stepped back) is clamped up, so
 * the time search stays a binary search.
 */
export class Timeline {
  constructor() {
    this.chunks = [];
    this.starts = []; // global index of each chunk's first entry
    this.length = 0;
    this.lastTime = -Infinity;
  }

  append(chunk) {
    const t = chunk.times;
    for (let i = 0; i < t.length && t[i] < this.lastTime; i++) t[i] = this.lastTime;
    if (chunk.count === 0) return;
    this.chunks.push(chunk);
    this.starts.push(this.length);
    this.length += chunk.count;
    this.lastTime = t[t.length - 1];
  }

  /** The time of the oldest loaded update (null when none is loaded). */
  get firstTime() {
    return this.length ? this.chunks[0].times[0] : null;
  }

  /** Entry `i` as `{chunk, at}` (the chunk holding it and its position there). */
  locate(i) {
    const k = upperBound(this.starts, i) - 1;
    return { chunk: this.chunks[k], at: i - this.starts[k] };
  }

  timeOf(i) {
    const { chunk, at } = this.locate(i);
    return chunk.times[at];
  }

  /** How many loaded updates happened at or before `t`: the canvas at `t` is those applied. */
  countUpTo(t) {
    const c = this.chunks;
    let lo = 0;
    let hi = c.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid].times[c[mid].count - 1] <= t) lo = mid + 1;
      else hi = mid;
    }
    if (lo === c.length) return this.length;
    return this.starts[lo] + upperBound(c[lo].times, t);
  }
}

/**
 * Updates between keyframes for a history of `totalUpdates` on a canvas of `pixels`:
 * at least `minUpdates`, no more than `maxKeyframes` keyframes, and all of them within
 * `budgetBytes` (one byte per pixel each). Infinity when not even one fits the budget.
 */
export function keyframeInterval(totalUpdates, pixels, { minUpdates = KEYFRAME_MIN_UPDATES, maxKeyframes = KEYFRAMES_MAX, budgetBytes = KEYFRAME_BUDGET_BYTES } = {}) {
  const fit = Math.min(maxKeyframes, Math.floor(budgetBytes / Math.max(1, pixels)));
  if (fit < 1) return Infinity;
  return Math.max(minUpdates, Math.ceil(totalUpdates / fit));
}

/**
 * Where to start replaying to show `target` updates applied when `current` are: `current`
 * itself (go on forward: no keyframe is closer), or the nearest keyframe at or below `target`
 * (`keys`: the entry indices that have one, ascending; 0 is the blank canvas, always there).
 */
export function seekStart(keys, current, target) {
  const i = upperBound(keys, target) - 1;
  const k = i >= 0 ? keys[i] : 0;
  return current <= target && current >= k ? current : k;
}

/** Playback speed (a whole number ≥ 1): the whole `durationMs` plays in at most `maxMs`. */
export function playbackSpeed(durationMs, maxMs = PLAYBACK_MAX_MS) {
  return Math.max(1, Math.ceil(Math.max(0, durationMs) / maxMs));
}

export function formatSpeed(speed) {
  return `×${speed}`;
}

/**
 * Which chunks to load for `meta` (GET /canvas/timelapse): `{first, end, cut}` — chunks
 * `first..end`; none kept before `first_seq`; at most `maxUpdates` worth (the newest: `cut`
 * says older ones exist but are not played).
 */
export function chunkPlan(meta, maxUpdates = TIMELAPSE_MAX_UPDATES) {
  const per = Number(meta.chunk_updates);
  const firstSeq = Number(meta.first_seq);
  const chunks = Number(meta.chunks);
  if (!firstSeq || !chunks || !(per > 0)) return { first: 0, end: 0, cut: false };
  const kept = Math.min(chunks, Math.floor((firstSeq - 1) / per));
  const first = Math.max(kept, chunks - Math.max(1, Math.floor(maxUpdates / per)));
  return { first, end: chunks, cut: first > kept };
}

/**
 * The scrubber's span for `meta`: from one millisecond before the first kept update (the
 * canvas before it: blank) to the last update. `firstTimeMs` overrides the start (a cut
 * history starts at its first loaded update).
 */
export function timelineBounds(meta, firstTimeMs = Number(meta.first_time_ms)) {
  const end = Number(meta.last_time_ms);
  const start = Math.min(firstTimeMs, end) - 1;
  return { startMs: start, endMs: end };
}

/**
 * Fetches chunks `first..end` with at most `inFlight` requests at once and at most
 * `ahead` chunks past the first one not yet delivered, and delivers them to `onChunk(n,
 * bytes)` strictly in order. A chunk is tried `attempts` times (not again after a 4xx);
 * then `onError(e)` and nothing more. `onDone()` after the last chunk. `fetchChunk(n,
 * signal)` resolves the chunk's bytes; `wait(ms)` is the pause between tries. No DOM.
 */
export class ChunkLoader {
  constructor({ first, end, fetchChunk, onChunk, onError = () => {}, onDone = () => {}, inFlight = CHUNKS_IN_FLIGHT, ahead = CHUNKS_AHEAD_MAX, attempts = CHUNK_ATTEMPTS, wait = (ms) => new Promise((r) => setTimeout(r, ms)) }) {
    Object.assign(this, { first, end, fetchChunk, onChunk, onError, onDone, inFlight, ahead: Math.max(ahead, inFlight), attempts, wait });
    this.next = first; // next chunk to request
    this.deliver = first; // next chunk to deliver
    this.active = 0;
    this.held = new Map(); // arrived out of order: n → bytes
    this.stopped = false;
    this.done = first >= end;
    this.abort = typeof AbortController === "function" ? new AbortController() : null;
  }

  start() {
    if (this.done) this.onDone();
    else this.pump();
  }

  cancel() {
    this.stopped = true;
    this.held.clear();
    this.abort?.abort();
  }

  pump() {
    while (!this.stopped && this.active < this.inFlight && this.next < this.end && this.next < this.deliver + this.ahead) {
      this.load(this.next++);
    }
  }

  async load(n) {
    this.active++;
    let bytes = null;
    let error = null;
    for (let attempt = 1; attempt <= this.attempts && !this.stopped; attempt++) {
      try {
        bytes = await this.fetchChunk(n, this.abort?.signal);
        error = null;
        break;
      } catch (e) {
        error = e;
        if (e?.status >= 400 && e.status < 500) break;
        if (attempt < this.attempts) await this.wait(CHUNK_RETRY_MS * attempt);
      }
    }
    this.active--;
    if (this.stopped) return;
    if (error || bytes === null) {
      this.fail(error ?? new Error(`chunk ${n}: no data`));
      return;
    }
    this.held.set(n, bytes);
    while (this.held.has(this.deliver)) {
      const d = this.deliver++;
      const b = this.held.get(d);
      this.held.delete(d);
      try {
        this.onChunk(d, b);
      } catch (e) {
        this.fail(e);
        return;
      }
    }
    if (this.deliver === this.end) {
      this.done = true;
      this.onDone();
      return;
    }
    this.pump();
  }

  fail(e) {
    this.cancel();
    this.onError(e);
  }
}

// ---- the player (DOM) --------------------------------------------------------------------

/**
 * The player. `api`: the HTTP API (its `call` reads GET /canvas/timelapse); `fetch` fetches
 * the binary chunks (the browser undoes their gzip content encoding); `onClose()` after Live.
 * Its state is on #timelapse's data attributes (data-state, data-moment-ms, data-applied,
 * data-target, data-settled, data-start-ms, data-end-ms, data-step) for people's tools and tests.
 */
export class TimelapsePlayer {
  constructor({ api, fetch = globalThis.fetch?.bind(globalThis), onClose = () => {} }) {
    this.api = api;
    this.fetch = fetch;
    this.onClose = onClose;
    this.els = null;
    this.session = 0; // bumped by every open and close: late answers of an old one are dropped
    this.loader = null;
    this.frame = 0;
  }

  get isOpen() {
    return Boolean(this.els && !this.els.root.hidden);
  }

  build() {
    const scrub = h("input", { id: "timelapse-scrub", type: "range", min: "0", max: "0", step: "1", value: "0", disabled: true, "aria-label": "Moment shown" });
    const canvas = h("canvas", { id: "timelapse-canvas", width: 1, height: 1, role: "img", "aria-label": "The canvas at the moment shown" });
    const els = {
      scrub,
      canvas,
      play: h("button", { id: "timelapse-play", type: "button", class: "primary", disabled: true }, "Play"),
      time: h("time", { id: "timelapse-time" }, "—"),
      speed: h("span", { id: "timelapse-speed", class: "timelapse-speed", title: "Playback speed: the whole history plays in at most a minute" }),
      progress: h("span", { id: "timelapse-progress", class: "muted small" }),
      note: h("p", { id: "timelapse-note", class: "timelapse-note muted" }),
      stage: h("div", { class: "timelapse-stage" }, canvas),
      live: h("button", { id: "timelapse-live", type: "button" }, "Live"),
    };
    els.root = h("section", { id: "timelapse", class: "timelapse", role: "dialog", "aria-modal": "true", "aria-labelledby": "timelapse-title", hidden: true, dataset: { state: "closed" } },
      h("div", { class: "timelapse-head" },
        h("h2", { id: "timelapse-title" }, "Timelapse"),
        els.note,
        els.live,
      ),
      els.stage,
      h("div", { class: "timelapse-controls card" }, els.play, scrub, els.time, els.speed, els.progress),
    );
    els.live.addEventListener("click", () => this.close());
    els.play.addEventListener("click", () => this.togglePlay());
    scrub.addEventListener("input", () => this.seek(this.startMs + Number(scrub.value)));
    els.root.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        this.close();
      } else if (e.key === " " && e.target !== els.play && e.target !== els.live) {
        e.preventDefault();
        this.togglePlay();
      }
    });
    new ResizeObserver(() => this.fitCanvas()).observe(els.stage);
    document.body.append(els.root);
    this.els = els;
  }

  /** Opens the player and starts loading the history. */
  open() {
    if (!this.els) this.build();
    if (this.isOpen) return;
    this.reset();
    const session = ++this.session;
    this.els.root.hidden = false;
    this.setState("loading");
    this.els.note.textContent = "Loading the history…";
    this.els.live.focus();
    this.api.call("GET", "/canvas/timelapse").then(
      (meta) => {
        if (session === this.session) this.start(meta, session);
      },
      (e) => {
        if (session === this.session) this.fail(`The history could not be loaded: ${describeError(e)}`);
      },
    );
  }

  /** Back to the live canvas: stops loading and playing and lets the history go. */
  close() {
    if (!this.isOpen) return;
    this.session++;
    this.reset();
    this.els.root.hidden = true;
    this.setState("closed");
    this.onClose();
  }

  reset() {
    this.loader?.cancel();
    this.loader = null;
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.meta = null;
    this.timeline = new Timeline();
    this.keyframes = new Map();
    this.keyIndices = [];
    this.bitmap = null;
    this.playing = false;
    this.applied = 0;
    this.momentMs = 0;
    this.startMs = 0;
    this.endMs = 0;
    this.dirty = null;
    this.lastFrameAt = 0;
  }

  fail(text) {
    this.playing = false;
    this.setState("error");
    this.els.note.textContent = text;
    this.els.play.disabled = true;
    this.els.scrub.disabled = true; // nothing more to play: a seek would only hide the error
  }

  setState(state) {
    this.els.root.dataset.state = state;
  }

  start(meta, session) {
    const width = Number(meta.width);
    const height = Number(meta.height);
    if (!(width > 0 && height > 0 && Array.isArray(meta.palette))) {
      this.fail("The server's answer about the history is not understood.");
      return;
    }
    this.meta = meta;
    this.width = width;
    this.height = height;
    this.lut = paletteLut(meta.palette.map(String), Number(meta.bpp) || 8);
    const plan = chunkPlan(meta);
    const total = plan.first < plan.end ? Math.min(Number(meta.last_seq) - Number(meta.first_seq) + 1, (plan.end - plan.first) * Number(meta.chunk_updates)) : 0;
    this.total = total;
    this.every = keyframeInterval(total, width * height);
    this.setupCanvas();
    this.els.speed.textContent = "";
    if (plan.first >= plan.end) {
      this.setState("empty");
      this.els.note.textContent = "Nothing has been painted yet: there is no history to play.";
      this.draw();
      return;
    }
    this.cut = plan.cut;
    if (!plan.cut) this.setBounds(timelineBounds(meta));
    this.els.note.textContent = this.historyNote();
    const limits = { chunkUpdates: Number(meta.chunk_updates), width, height, colours: meta.palette.length };
    this.loader = new ChunkLoader({
      first: plan.first,
      end: plan.end,
      fetchChunk: (n, signal) => this.fetchChunk(n, signal),
      onChunk: (n, bytes) => {
        if (session !== this.session) return;
        this.timeline.append(parseChunk(bytes, limits));
        if (this.cut && this.timeline.firstTime !== null && this.els.scrub.disabled) this.setBounds(timelineBounds(meta, this.timeline.firstTime));
        this.request();
      },
      onError: (e) => {
        if (session === this.session) this.fail(`The history could not be loaded: ${describeError(e)}`);
      },
      onDone: () => {
        if (session === this.session) this.request();
      },
    });
    this.setState("paused");
    this.loader.start();
    this.request();
  }

  historyNote() {
    const m = this.meta;
    if (this.cut) return `The history is too long to play whole: it starts from a blank canvas at its newest ${this.total.toLocaleString()} updates.`;
    if (!m.complete) return `History before ${formatDateTime(m.first_time_ms)} is not kept: the timelapse starts from a blank canvas there.`;
    return "";
  }

  async fetchChunk(n, signal) {
    let res;
    try {
      res = await this.fetch(`/canvas/timelapse/${n}`, { credentials: "same-origin", signal });
    } catch (e) {
      throw Object.assign(new Error(`cannot reach the server (${e?.message ?? e})`), { code: "network", status: 0 });
    }
    if (!res.ok) throw Object.assign(new Error(`chunk ${n}: HTTP ${res.status}`), { code: `http_${res.status}`, status: res.status });
    // A chunk is at most 28 + 13 × chunk_updates bytes (213 KB): refuse anything far bigger
    // before reading it whole.
    const declared = Number(res.headers?.get?.("content-length") ?? 0);
    if (declared > MAX_CHUNK_BYTES) throw Object.assign(new Error(`chunk ${n}: ${declared} bytes`), { code: "too_large", status: 0 });
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.length > MAX_CHUNK_BYTES) throw Object.assign(new Error(`chunk ${n}: ${bytes.length} bytes`), { code: "too_large", status: 0 });
    return bytes;
  }

  /** The span the scrubber covers, the speed that plays it within a minute. */
  setBounds({ startMs, endMs }) {
    this.startMs = startMs;
    this.endMs = endMs;
    this.momentMs = endMs; // opened at the present: the picture matches the live canvas
    const span = Math.max(0, endMs - startMs);
    // At most a thousand steps; max rounded up to a whole step so the end is reachable.
    const step = Math.max(1, Math.ceil(span / 1000));
    this.step = step;
    const s = this.els.scrub;
    s.step = String(step);
    s.max = String(Math.ceil(span / step) * step);
    s.disabled = false;
    this.els.play.disabled = false;
    this.speed = playbackSpeed(span);
    this.els.speed.textContent = formatSpeed(this.speed);
    const d = this.els.root.dataset;
    d.startMs = String(startMs);
    d.endMs = String(endMs);
    d.step = String(step);
    d.speed = String(this.speed);
  }

  setupCanvas() {
    const c = this.els.canvas;
    c.width = this.width;
    c.height = this.height;
    this.ctx2d = c.getContext("2d");
    this.image = this.ctx2d.createImageData(this.width, this.height);
    this.pixels = new Uint32Array(this.image.data.buffer);
    this.bitmap = new Uint8Array(this.width * this.height);
    this.pixels.fill(this.lut[0]);
    this.dirty = { x0: 0, y0: 0, x1: this.width, y1: this.height };
    this.fitCanvas();
  }

  /** The bitmap as large as the stage allows (nearest-neighbour scaling: see style.css). */
  fitCanvas() {
    if (!this.els || !this.width) return;
    const r = this.els.stage.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return;
    const s = Math.min(r.width / this.width, r.height / this.height);
    this.els.canvas.style.width = `${Math.max(1, Math.round(this.width * s))}px`;
    this.els.canvas.style.height = `${Math.max(1, Math.round(this.height * s))}px`;
  }

  togglePlay() {
    if (!this.meta || this.els.scrub.disabled) return;
    if (this.playing) {
      this.playing = false;
    } else {
      if (this.momentMs >= this.endMs) this.seek(this.startMs);
      this.playing = true;
      this.lastFrameAt = 0;
    }
    this.request();
  }

  /** Shows the canvas as it was at `ms` (replaying from the nearest keyframe when going back). */
  seek(ms) {
    if (!this.meta) return;
    this.momentMs = Math.min(this.endMs, Math.max(this.startMs, ms));
    this.lastFrameAt = 0;
    this.request();
  }

  request() {
    if (this.frame === 0 && this.isOpen) this.frame = requestAnimationFrame((t) => this.tick(t));
  }

  tick(now) {
    this.frame = 0;
    if (!this.meta || !this.bitmap) return;
    const loading = this.loader && !this.loader.done;
    if (this.playing) {
      const dt = this.lastFrameAt ? Math.min(250, now - this.lastFrameAt) : 0;
      this.lastFrameAt = now;
      let moment = this.momentMs + dt * this.speed;
      // Never run ahead of what has arrived: wait for the next chunk at the last loaded update.
      if (loading) moment = Math.min(moment, Math.max(this.startMs, this.timeline.lastTime));
      this.momentMs = Math.min(this.endMs, moment);
      if (this.momentMs >= this.endMs && !loading) this.playing = false;
    }
    const target = this.timeline.countUpTo(this.momentMs);
    this.advance(target);
    this.draw();
    this.render(target, loading);
    if (this.playing || this.applied !== target) this.request();
  }

  /** Moves the bitmap towards `target` updates applied, at most APPLY_PER_FRAME_MAX at a time. */
  advance(target) {
    if (target === this.applied) return;
    const from = seekStart(this.keyIndices, this.applied, target);
    if (from !== this.applied) this.restore(from);
    this.apply(Math.min(target, this.applied + APPLY_PER_FRAME_MAX));
  }

  restore(k) {
    if (k === 0) this.bitmap.fill(0);
    else this.bitmap.set(this.keyframes.get(k));
    const { bitmap, pixels, lut } = this;
    for (let i = 0; i < bitmap.length; i++) pixels[i] = lut[bitmap[i]];
    this.dirty = { x0: 0, y0: 0, x1: this.width, y1: this.height };
    this.applied = k;
  }

  /** Applies updates `applied..to`, keeping a keyframe at every multiple of `every`. */
  apply(to) {
    const { bitmap, pixels, lut, width, timeline } = this;
    let d = this.dirty ?? { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    let i = this.applied;
    while (i < to) {
      const nextKey = Number.isFinite(this.every) ? (Math.floor(i / this.every) + 1) * this.every : Infinity;
      const stop = Math.min(to, nextKey);
      while (i < stop) {
        const { chunk, at } = timeline.locate(i);
        const n = Math.min(chunk.count - at, stop - i);
        const { xs, ys, colours } = chunk;
        for (let j = at; j < at + n; j++) {
          const x = xs[j];
          const y = ys[j];
          const p = y * width + x;
          bitmap[p] = colours[j];
          pixels[p] = lut[colours[j]];
          if (x < d.x0) d.x0 = x;
          if (x >= d.x1) d.x1 = x + 1;
          if (y < d.y0) d.y0 = y;
          if (y >= d.y1) d.y1 = y + 1;
        }
        i += n;
      }
      if (i === nextKey && !this.keyframes.has(i)) {
        this.keyframes.set(i, bitmap.slice());
        this.keyIndices.push(i);
        this.keyIndices.sort((a, b) => a - b);
      }
    }
    this.applied = i;
    this.dirty = d.x1 > d.x0 ? d : null;
  }

  draw() {
    const d = this.dirty;
    if (!d || !this.ctx2d) return;
    this.ctx2d.putImageData(this.image, 0, 0, d.x0, d.y0, d.x1 - d.x0, d.y1 - d.y0);
    this.dirty = null;
  }

  render(target, loading) {
    const els = this.els;
    const ds = els.root.dataset;
    let state = this.playing ? "playing" : this.momentMs >= this.endMs && !loading ? "ended" : "paused";
    if (this.playing && loading && this.momentMs >= this.timeline.lastTime) state = "buffering";
    this.setState(state);
    ds.momentMs = String(Math.round(this.momentMs));
    ds.applied = String(this.applied);
    ds.target = String(target);
    ds.loaded = String(this.timeline.length);
    ds.settled = String(this.applied === target && !(loading && this.momentMs > this.timeline.lastTime));
    els.play.textContent = this.playing ? "Pause" : "Play";
    els.play.setAttribute("aria-label", this.playing ? "Pause the timelapse" : "Play the timelapse");
    if (document.activeElement !== els.scrub || this.playing) {
      const v = Math.round((this.momentMs - this.startMs) / this.step) * this.step;
      if (els.scrub.value !== String(v)) els.scrub.value = String(v);
    }
    const when = formatDateTime(this.momentMs);
    els.time.dateTime = new Date(this.momentMs).toISOString();
    if (els.time.textContent !== when) els.time.textContent = when;
    els.scrub.setAttribute("aria-valuetext", when);
    const of = this.total ? ` of ${this.total.toLocaleString()}` : "";
    els.progress.textContent = loading ? `${this.timeline.length.toLocaleString()}${of} updates loaded…` : `${this.applied.toLocaleString()}${of} updates`;
  }
}
