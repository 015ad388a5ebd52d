// Tests of the timelapse player's pure parts (timelapse.js): chunk decoding against
// PROTOCOL.md section 12 (chunks built here byte by byte, not with code under test), the
// time → entry search across chunks, keyframe spacing and choice, the speed rule, which
// chunks to load, the scrubber's span, and the ordered loader with a bounded number of
// requests in flight.
// Run: cd gateway/web && node --test tests/

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import {
  parseChunk, TimelapseError, upperBound, Timeline, keyframeInterval, seekStart, playbackSpeed, formatSpeed,
  chunkPlan, timelineBounds, ChunkLoader, CHUNK_HEADER_LEN, ENTRY_LEN, PLAYBACK_MAX_MS, KEYFRAME_MIN_UPDATES,
  KEYFRAMES_MAX, CHUNKS_IN_FLIGHT,
} from "../timelapse.js";

/**
 * A chunk as section 12 lays it out: "PXTL", format u16, reserved u16, base_seq u64,
 * base_time_ms u64, count u32, then per entry seq_offset u32, x u16, y u16, colour u8,
 * dt_ms u32 — all little-endian. `entries`: [seqOffset, x, y, colour, dtMs].
 */
function chunkBytes({ baseSeq = 0, baseTimeMs = 0, entries = [], format = 1, magic = "PXTL", count = entries.length }) {
  const out = new Uint8Array(28 + 13 * entries.length);
  for (let i = 0; i < 4; i++) out[i] = magic.charCodeAt(i);
  out[4] = format & 0xff;
  out[5] = format >> 8;
  // 6..8 reserved: 0
  const u64 = (at, v) => {
    let b = BigInt(v);
    for (let i = 0; i < 8; i++, b >>= 8n) out[at + i] = Number(b & 0xffn);
  };
  const u32 = (at, v) => {
    for (let i = 0; i < 4; i++) out[at + i] = (v >>> (8 * i)) & 0xff;
  };
  const u16 = (at, v) => {
    out[at] = v & 0xff;
    out[at + 1] = v >> 8;
  };
  u64(8, baseSeq);
  u64(16, baseTimeMs);
  u32(24, count);
  entries.forEach(([off, x, y, c, dt], i) => {
    const at = 28 + 13 * i;
    u32(at, off);
    u16(at + 4, x);
    u16(at + 6, y);
    out[at + 8] = c;
    u32(at + 9, dt);
  });
  return out;
}

const T0 = 1_760_000_000_000; // ms since the epoch, beyond 2^32: the u64 fields matter

describe("chunk decoding (PROTOCOL.md section 12)", () => {
  test("the header and entries decode; times are base_time_ms plus the running dt_ms", () => {
    const bytes = chunkBytes({
      baseSeq: 16384,
      baseTimeMs: T0,
      entries: [[1, 3, 4, 5, 0], [2, 255, 0, 15, 1500], [7, 0, 255, 0, 0], [9, 10, 11, 2, 70_000]],
    });
    assert.equal(bytes.length, CHUNK_HEADER_LEN + 4 * ENTRY_LEN);
    const c = parseChunk(bytes, { chunkUpdates: 16384, width: 256, height: 256, colours: 16 });
    assert.equal(c.baseSeq, 16384);
    assert.equal(c.baseTimeMs, T0);
    assert.equal(c.count, 4);
    assert.equal(c.firstSeq, 16385);
    assert.equal(c.lastSeq, 16393);
    assert.deepEqual([...c.xs], [3, 255, 0, 10]);
    assert.deepEqual([...c.ys], [4, 0, 255, 11]);
    assert.deepEqual([...c.colours], [5, 15, 0, 2]);
    assert.deepEqual([...c.times], [T0, T0 + 1500, T0 + 1500, T0 + 71_500]);
  });

  test("an empty chunk (every entry gone, or none yet) is 28 bytes and holds nothing", () => {
    const c = parseChunk(chunkBytes({ baseSeq: 0 }), { chunkUpdates: 16384 });
    assert.equal(c.count, 0);
    assert.equal(c.xs.length, 0);
  });

  test("a chunk may start above base_seq + 1 (entries no longer kept are absent)", () => {
    const c = parseChunk(chunkBytes({ baseSeq: 32768, baseTimeMs: T0, entries: [[500, 1, 1, 1, 0], [16384, 2, 2, 2, 5]] }), { chunkUpdates: 16384 });
    assert.equal(c.firstSeq, 32768 + 500);
    assert.equal(c.lastSeq, 49152);
  });

  test("dt_ms is unsigned 32-bit: the largest step is 2^32 − 1 ms", () => {
    const c = parseChunk(chunkBytes({ baseTimeMs: T0, entries: [[1, 0, 0, 0, 0], [2, 0, 0, 0, 0xffffffff]] }));
    assert.equal(c.times[1] - c.times[0], 4294967295);
  });

  test("bad documents are refused with what is wrong", () => {
    const ok = chunkBytes({ entries: [[1, 0, 0, 1, 0]] });
    const kind = (bytes, limits) => {
      try {
        parseChunk(bytes, limits);
      } catch (e) {
        assert.ok(e instanceof TimelapseError, String(e));
        return e.kind;
      }
      return "accepted";
    };
    assert.equal(kind(ok.subarray(0, 27)), "short");
    assert.equal(kind(chunkBytes({ magic: "PXSN" })), "magic");
    assert.equal(kind(chunkBytes({ format: 2 })), "format");
    assert.equal(kind(ok.subarray(0, ok.length - 1)), "length");
    assert.equal(kind(new Uint8Array([...ok, 0])), "length", "trailing bytes");
    // A count that promises more than the bytes hold is refused before anything is allocated.
    assert.equal(kind(chunkBytes({ count: 0xffffffff })), "length");
    assert.equal(kind(chunkBytes({ count: 3, entries: [[1, 0, 0, 0, 0], [2, 0, 0, 0, 0], [3, 0, 0, 0, 0]] }), { chunkUpdates: 2 }), "count");
    assert.equal(kind(chunkBytes({ entries: [[2, 0, 0, 0, 0], [2, 0, 0, 0, 0]] })), "seq", "offsets increase");
    assert.equal(kind(chunkBytes({ entries: [[0, 0, 0, 0, 0]] })), "seq", "offsets start at 1");
    assert.equal(kind(chunkBytes({ entries: [[5, 0, 0, 0, 0]] }), { chunkUpdates: 4 }), "seq", "offsets end at chunk_updates");
    assert.equal(kind(chunkBytes({ entries: [[1, 256, 0, 0, 0]] }), { width: 256, height: 256 }), "bounds");
    assert.equal(kind(chunkBytes({ entries: [[1, 0, 256, 0, 0]] }), { width: 256, height: 256 }), "bounds");
    assert.equal(kind(chunkBytes({ entries: [[1, 0, 0, 16, 0]] }), { colours: 16 }), "colour");
    assert.equal(kind(chunkBytes({ baseSeq: 2n ** 60n })), "seq", "base_seq beyond 2^53");
    assert.equal(kind(ok, { chunkUpdates: 16384, width: 1, height: 1, colours: 2 }), "accepted");
  });

  test("an ArrayBuffer and a view into a larger buffer decode the same", () => {
    const bytes = chunkBytes({ baseTimeMs: T0, entries: [[1, 9, 8, 7, 0]] });
    const padded = new Uint8Array(bytes.length + 10);
    padded.set(bytes, 5);
    assert.deepEqual([...parseChunk(padded.subarray(5, 5 + bytes.length)).xs], [9]);
    assert.deepEqual([...parseChunk(bytes.buffer).ys], [8]);
  });
});

describe("time → entry search", () => {
  test("upperBound: the first index above t", () => {
    const a = [1, 2, 2, 2, 5, 9];
    assert.equal(upperBound(a, 0), 0);
    assert.equal(upperBound(a, 2), 4);
    assert.equal(upperBound(a, 4), 4);
    assert.equal(upperBound(a, 9), 6);
    assert.equal(upperBound([], 3), 0);
  });

  const chunk = (baseSeq, baseTimeMs, entries) => parseChunk(chunkBytes({ baseSeq, baseTimeMs, entries }));

  test("countUpTo: how many updates happened at or before a moment, across chunks", () => {
    const tl = new Timeline();
    tl.append(chunk(0, 1000, [[1, 0, 0, 1, 0], [2, 1, 0, 1, 100], [3, 2, 0, 1, 100]])); // 1000, 1100, 1200
    tl.append(chunk(3, 0, [])); // empty chunks are skipped
    tl.append(chunk(6, 1200, [[1, 3, 0, 1, 0], [2, 4, 0, 1, 300]])); // 1200, 1500
    assert.equal(tl.length, 5);
    assert.equal(tl.firstTime, 1000);
    assert.equal(tl.countUpTo(999), 0);
    assert.equal(tl.countUpTo(1000), 1);
    assert.equal(tl.countUpTo(1199), 2);
    assert.equal(tl.countUpTo(1200), 4, "both updates at 1200, one in each chunk");
    assert.equal(tl.countUpTo(1499), 4);
    assert.equal(tl.countUpTo(1500), 5);
    assert.equal(tl.countUpTo(Infinity), 5);
    assert.deepEqual([0, 2, 3, 4].map((i) => tl.timeOf(i)), [1000, 1200, 1200, 1500]);
    const { chunk: c, at } = tl.locate(3);
    assert.equal(c.xs[at], 3);
  });

  test("a chunk whose times go back (the server's clock stepped back) is clamped: the search stays sorted", () => {
    const tl = new Timeline();
    tl.append(chunk(0, 5000, [[1, 0, 0, 1, 0], [2, 0, 0, 1, 1000]])); // 5000, 6000
    tl.append(chunk(2, 4000, [[1, 0, 0, 1, 0], [2, 0, 0, 1, 3000]])); // 4000 → 6000, 7000
    assert.deepEqual([0, 1, 2, 3].map((i) => tl.timeOf(i)), [5000, 6000, 6000, 7000]);
    assert.equal(tl.countUpTo(6000), 3);
    assert.equal(tl.countUpTo(6999), 3);
    assert.equal(tl.countUpTo(7000), 4);
  });

  test("an empty timeline counts nothing", () => {
    const tl = new Timeline();
    assert.equal(tl.countUpTo(Infinity), 0);
    assert.equal(tl.firstTime, null);
  });
});

describe("keyframes", () => {
  test("interval: at least the minimum, at most KEYFRAMES_MAX of them, within the memory budget", () => {
    assert.equal(keyframeInterval(1000, 256 * 256), KEYFRAME_MIN_UPDATES, "a short history: the minimum");
    assert.equal(keyframeInterval(1 << 22, 256 * 256), (1 << 22) / KEYFRAMES_MAX, "a long one: KEYFRAMES_MAX of them");
    // 4096² pixels is 16 MiB a keyframe: four fit in 64 MiB.
    assert.equal(keyframeInterval(1 << 20, 4096 * 4096), (1 << 20) / 4);
    assert.equal(keyframeInterval(1 << 20, 10_000 * 10_000), Infinity, "not one fits: none are kept");
    assert.equal(keyframeInterval(100, 4, { minUpdates: 10, maxKeyframes: 3, budgetBytes: 1000 }), 34);
  });

  test("seekStart: forward from where it is unless a keyframe is closer; back from the nearest keyframe", () => {
    const keys = [4096, 8192, 12288];
    assert.equal(seekStart(keys, 100, 200), 100, "forward, no keyframe in between");
    assert.equal(seekStart(keys, 100, 9000), 8192, "forward past keyframes: jump to the last one before the target");
    assert.equal(seekStart(keys, 8500, 9000), 8500, "forward, already past the keyframe");
    assert.equal(seekStart(keys, 9000, 8500), 8192, "back: the keyframe below");
    assert.equal(seekStart(keys, 9000, 8192), 8192, "back onto a keyframe");
    assert.equal(seekStart(keys, 9000, 100), 0, "back before every keyframe: the blank canvas");
    assert.equal(seekStart([], 500, 10), 0);
    assert.equal(seekStart([], 10, 500), 10);
    assert.equal(seekStart(keys, 300, 300), 300, "already there");
  });
});

describe("speed", () => {
  test("the whole history plays in at most a minute: a day at ×1440", () => {
    const day = 24 * 3600 * 1000;
    assert.equal(playbackSpeed(day), 1440);
    assert.ok(day / playbackSpeed(day) <= PLAYBACK_MAX_MS);
    assert.equal(formatSpeed(playbackSpeed(day)), "×1440");
    for (const d of [1, 59_999, 60_001, 3_600_000 + 7, 31 * day + 12_345]) {
      const s = playbackSpeed(d);
      assert.ok(Number.isInteger(s) && d / s <= PLAYBACK_MAX_MS, `${d} ms at ×${s}`);
      assert.ok(s === 1 || d / (s - 1) > PLAYBACK_MAX_MS, `×${s} is the slowest that fits for ${d} ms`);
    }
  });

  test("a history shorter than a minute plays in real time, never slower", () => {
    assert.equal(playbackSpeed(5000), 1);
    assert.equal(playbackSpeed(0), 1);
    assert.equal(playbackSpeed(-5), 1);
  });
});

describe("what to load and the scrubber's span", () => {
  const meta = (o) => ({ first_seq: 1, last_seq: 40_000, first_time_ms: T0, last_time_ms: T0 + 9000, complete: true, chunk_updates: 16384, chunks: 3, ...o });

  test("chunks from the first kept sequence to the last chunk", () => {
    assert.deepEqual(chunkPlan(meta({})), { first: 0, end: 3, cut: false });
    // first_seq 16385 is chunk 1's first; 16384 is still chunk 0's last.
    assert.deepEqual(chunkPlan(meta({ first_seq: 16385, complete: false })), { first: 1, end: 3, cut: false });
    assert.deepEqual(chunkPlan(meta({ first_seq: 16384, complete: false })), { first: 0, end: 3, cut: false });
    assert.deepEqual(chunkPlan(meta({ first_seq: 0, last_seq: 0, chunks: 0 })), { first: 0, end: 0, cut: false }, "an empty journal");
  });

  test("a history too long to hold plays its newest chunks", () => {
    assert.deepEqual(chunkPlan(meta({ chunks: 10, last_seq: 160_000 }), 4 * 16384), { first: 6, end: 10, cut: true });
    assert.deepEqual(chunkPlan(meta({ chunks: 10, last_seq: 160_000 }), 1), { first: 9, end: 10, cut: true }, "at least one chunk");
  });

  test("the span starts just before the first update (the blank canvas) and ends at the last", () => {
    assert.deepEqual(timelineBounds(meta({})), { startMs: T0 - 1, endMs: T0 + 9000 });
    assert.deepEqual(timelineBounds(meta({}), T0 + 500), { startMs: T0 + 499, endMs: T0 + 9000 });
  });
});

describe("ChunkLoader", () => {
  /** A fake server: every request waits until the test answers it. */
  function fakeFetch() {
    const pending = new Map();
    let inFlight = 0;
    let maxInFlight = 0;
    const calls = [];
    const fetchChunk = (n) => {
      calls.push(n);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise((resolve, reject) => {
        pending.set(n, {
          resolve: (v) => { inFlight--; pending.delete(n); resolve(v); },
          reject: (e) => { inFlight--; pending.delete(n); reject(e); },
        });
      });
    };
    return { fetchChunk, pending, calls, max: () => maxInFlight };
  }
  const settle = () => new Promise((r) => setImmediate(r));

  test("a bounded number in flight, delivered in order whatever order they arrive in", async () => {
    const f = fakeFetch();
    const got = [];
    let done = false;
    const l = new ChunkLoader({ first: 2, end: 12, fetchChunk: f.fetchChunk, onChunk: (n, b) => got.push([n, b[0]]), onDone: () => { done = true; } });
    l.start();
    assert.deepEqual([...f.pending.keys()], [2, 3, 4]);
    // Answer the later ones first: nothing is delivered until chunk 2 is there.
    f.pending.get(4).resolve(new Uint8Array([4]));
    f.pending.get(3).resolve(new Uint8Array([3]));
    await settle();
    assert.deepEqual(got, []);
    assert.ok(f.pending.size <= CHUNKS_IN_FLIGHT);
    // Answer whatever is asked for, newest first, until everything is in.
    for (let guard = 0; guard < 100 && !done; guard++) {
      const keys = [...f.pending.keys()].sort((a, b) => b - a);
      for (const n of keys) f.pending.get(n)?.resolve(new Uint8Array([n]));
      await settle();
    }
    assert.equal(done, true);
    assert.deepEqual(got.map(([n]) => n), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(got.map(([, b]) => b), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "each chunk with its own bytes");
    assert.equal(f.max(), CHUNKS_IN_FLIGHT);
    assert.deepEqual([...f.calls].sort((a, b) => a - b), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "each fetched once");
  });

  test("a slow chunk holds back at most `ahead` chunks behind it", async () => {
    const f = fakeFetch();
    const l = new ChunkLoader({ first: 0, end: 100, fetchChunk: f.fetchChunk, onChunk: () => {}, inFlight: 2, ahead: 4 });
    l.start();
    for (let round = 0; round < 10; round++) {
      for (const n of [...f.pending.keys()]) if (n !== 0) f.pending.get(n).resolve(new Uint8Array(1));
      await settle();
    }
    assert.deepEqual(f.calls, [0, 1, 2, 3], "chunk 0 outstanding: nothing past 0 + 4 is asked for");
    l.cancel();
  });

  test("a failing chunk is tried again; after the last try the loader stops and says why", async () => {
    let tries = 0;
    const waits = [];
    const errors = [];
    const got = [];
    const l = new ChunkLoader({
      first: 0, end: 2, inFlight: 1, attempts: 3,
      fetchChunk: async (n) => {
        if (n === 1) {
          tries++;
          throw Object.assign(new Error("server down"), { status: 503 });
        }
        return new Uint8Array([n]);
      },
      onChunk: (n) => got.push(n),
      onError: (e) => errors.push(e.message),
      wait: async (ms) => { waits.push(ms); },
    });
    l.start();
    for (let i = 0; i < 20; i++) await settle();
    assert.deepEqual(got, [0]);
    assert.equal(tries, 3);
    assert.deepEqual(waits, [1000, 2000]);
    assert.deepEqual(errors, ["server down"]);
    assert.equal(l.done, false);
  });

  test("a 4xx answer is not tried again; an onChunk that throws (a bad chunk) stops the loader", async () => {
    let tries = 0;
    const errors = [];
    const l = new ChunkLoader({
      first: 0, end: 3,
      fetchChunk: async () => {
        tries++;
        throw Object.assign(new Error("404"), { status: 404 });
      },
      onChunk: () => {},
      onError: (e) => errors.push(e.message),
      wait: async () => {},
    });
    l.start();
    for (let i = 0; i < 10; i++) await settle();
    assert.equal(errors.length, 1, "one error, then nothing more");
    assert.ok(tries <= 3, `each chunk tried once (${tries})`);

    const bad = [];
    const l2 = new ChunkLoader({
      first: 0, end: 5, inFlight: 1,
      fetchChunk: async (n) => new Uint8Array([n]),
      onChunk: (n) => {
        if (n === 1) throw new TimelapseError("magic", "bad chunk magic");
      },
      onError: (e) => bad.push(e.kind),
    });
    l2.start();
    for (let i = 0; i < 10; i++) await settle();
    assert.deepEqual(bad, ["magic"]);
    assert.equal(l2.deliver, 2, "nothing delivered after the bad chunk");
  });

  test("nothing to load: done at once; cancel drops late answers", async () => {
    let done = 0;
    new ChunkLoader({ first: 3, end: 3, fetchChunk: () => assert.fail("no fetch"), onChunk: () => {}, onDone: () => { done++; } }).start();
    assert.equal(done, 1);

    const f = fakeFetch();
    const got = [];
    const l = new ChunkLoader({ first: 0, end: 2, fetchChunk: f.fetchChunk, onChunk: (n) => got.push(n) });
    l.start();
    l.cancel();
    f.pending.get(0).resolve(new Uint8Array(1));
    await settle();
    assert.deepEqual(got, []);
  });
});
