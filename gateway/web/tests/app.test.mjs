// Tests of the web client's pure logic (no DOM): snapshot parsing, the replica's cursor /
// subscription state machine, viewport → tile math, the server clock, the chat model, and
// the Connection driven through a fake WebSocket and a fake WebTransport, and the transport
// selection (WebTransport first, WebSocket fallback remembered, ?transport=ws|wt).
// Run: cd gateway/web && node --test tests/

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import {
  Geometry, NO_CURSOR, U64_MAX, encodeServer, decodeServerFrames, decodeClientFrames, getPixel, setPixel,
  MAX_TILES_PER_FRAME,
} from "../codec.js";
import { parseSnapshot, buildSnapshot, SnapshotError } from "../snapshot.js";
import { Replica, chunk, paletteLut, rasterizeTile, RESUBSCRIBE_HOLD_MS } from "../replica.js";
import { Viewport, visibleTiles } from "../viewport.js";
import { ServerClock, remainingMs, formatCountdown } from "../clock.js";
import { MessageLog, PresenceModel, normalizeMessage, toSeq, dmPeer } from "../chatmodel.js";
import {
  Connection, shouldReconnect, backoffDelay, joinFrames, webSocketUrl, RequestError, AGENT, TransportPicker, webSocketDialer,
  webTransportDialer, transportMode, certificateHashes, WT_CONNECT_TIMEOUT_MS, WT_CLOSE_GRACE_MS, visitorUrl,
} from "../net.js";
import { Api, ApiError } from "../api.js";

/** Decodes one server frame from its encoding (so tests use the real frame shapes). */
function serverFrame(f) {
  const { frames, error } = decodeServerFrames(encodeServer(f));
  assert.equal(error, null);
  assert.equal(frames.length, 1);
  return frames[0];
}

function tileOf(g, fill = 0) {
  const t = new Uint8Array(g.tileBytes);
  for (let o = 0; o < g.tilePixels; o++) setPixel(t, g.bpp, o, fill);
  return t;
}

// ---- snapshot --------------------------------------------------------------------------------

describe("snapshot", () => {
  const g = new Geometry(20, 10, 4, 8); // 3 x 2 tiles, edge tiles partly off the canvas
  const seqs = [1n, 2n, 3n, 4n, 5n, 2n ** 63n];
  const tiles = seqs.map((_, i) => tileOf(g, i + 1));

  test("round trip of header, seqs and tiles", () => {
    const doc = buildSnapshot(g, seqs, tiles, { takenMs: 1700000000123, version: 42n });
    assert.equal(doc.length, 40 + 8 * 6 + 6 * 32);
    const s = parseSnapshot(doc.buffer);
    assert.deepEqual([s.geometry.width, s.geometry.height, s.geometry.bpp, s.geometry.tileSize], [20, 10, 4, 8]);
    assert.equal(s.takenMs, 1700000000123);
    assert.equal(s.version, 42n);
    assert.deepEqual(s.seqs, seqs);
    for (let t = 0; t < 6; t++) assert.deepEqual([...s.tiles[t]], [...tiles[t]]);
    assert.equal(String.fromCharCode(...doc.subarray(0, 4)), "PXSN");
  });

  test("hand-built header is read little-endian at the documented offsets", () => {
    const g1 = new Geometry(8, 8, 8, 8);
    const doc = new Uint8Array(40 + 8 + 64);
    const v = new DataView(doc.buffer);
    doc.set([0x50, 0x58, 0x53, 0x4e]);
    v.setUint16(4, 1, true);
    doc[6] = 8;
    v.setUint16(8, 8, true);
    v.setUint32(12, 8, true);
    v.setUint32(16, 8, true);
    v.setUint32(20, 1, true);
    v.setBigUint64(24, 5n, true);
    v.setBigUint64(32, 6n, true);
    v.setBigUint64(40, 77n, true);
    doc[48 + 9] = 3; // pixel (1, 1)
    const s = parseSnapshot(doc);
    assert.equal(s.seqs[0], 77n);
    assert.equal(s.version, 6n);
    const r = new Replica(g1);
    r.loadSnapshot(s);
    assert.equal(r.pixel(1, 1), 3);
    assert.equal(r.pixel(0, 0), 0);
  });

  test("rejects bad magic, format, geometry, tile count and length", () => {
    const good = buildSnapshot(g, seqs, tiles);
    const bad = (mutate, re) => {
      const d = good.slice();
      mutate(d, new DataView(d.buffer));
      assert.throws(() => parseSnapshot(d), (e) => e instanceof SnapshotError && re.test(e.message));
    };
    bad((d) => (d[0] = 0x51), /magic/);
    bad((d, v) => v.setUint16(4, 2, true), /format/);
    bad((d) => (d[6] = 3), /geometry/);
    bad((d, v) => v.setUint16(8, 12, true), /geometry/);
    bad((d, v) => v.setUint32(20, 5, true), /tiles/);
    assert.throws(() => parseSnapshot(good.subarray(0, good.length - 1)), /bytes, expected/);
    assert.throws(() => parseSnapshot(new Uint8Array(10)), /shorter/);
  });
});

// ---- replica ---------------------------------------------------------------------------------

describe("replica", () => {
  const g = new Geometry(32, 32, 4, 16); // 2 x 2 tiles
  const pixels = (tile, prev, last, updates) => serverFrame({ type: "Pixels", tile, prev_seq: prev, last_seq: last, updates });

  function loaded() {
    const r = new Replica(g);
    r.loadSnapshot(parseSnapshot(buildSnapshot(g, [10n, 20n, 30n, 40n], [tileOf(g, 1), tileOf(g, 2), tileOf(g, 3), tileOf(g, 4)])));
    r.takeDirty();
    return r;
  }

  test("snapshot fills tiles and cursors; an older snapshot does not overwrite newer tiles", () => {
    const r = loaded();
    assert.equal(r.pixel(0, 0), 1);
    assert.equal(r.pixel(31, 31), 4);
    assert.equal(r.cursorOf(2), 30n);
    r.applyTileData(serverFrame({ type: "TileData", tile: 0, seq: 15n, data: tileOf(g, 9) }));
    const n = r.loadSnapshot(parseSnapshot(buildSnapshot(g, [12n, 25n, 30n, 40n], [tileOf(g, 5), tileOf(g, 6), tileOf(g, 7), tileOf(g, 8)])));
    assert.equal(n, 1); // only tile 1 (20 → 25)
    assert.equal(r.pixel(0, 0), 9);
    assert.equal(r.pixel(16, 0), 6);
    assert.equal(r.cursorOf(0), 15n);
    assert.equal(r.pixel(32, 0), null);
  });

  test("a snapshot of another geometry is refused", () => {
    const r = new Replica(g);
    const other = new Geometry(32, 32, 8, 16);
    assert.throws(() => r.loadSnapshot(parseSnapshot(buildSnapshot(other, [1n, 1n, 1n, 1n], []))), RangeError);
    assert.equal(r.holds(0), false);
  });

  test("interest while disconnected subscribes nothing; connect subscribes with held cursors", () => {
    const r = new Replica(g);
    r.loadSnapshot(parseSnapshot(buildSnapshot(g, [10n, 20n, 30n, 40n], [tileOf(g), tileOf(g), tileOf(g), tileOf(g)])));
    r.data[3] = null; // pretend tile 3 is not held
    r.cursors[3] = NO_CURSOR;
    assert.deepEqual(r.setInterest([0, 3, 99]), { subscribe: [], unsubscribe: [] });
    const work = r.connect();
    assert.deepEqual(work.subscribe, [{ tile: 0, cursor: 10n }, { tile: 3, cursor: NO_CURSOR }]);
    assert.deepEqual(work.unsubscribe, []);
    const next = r.setInterest([0, 1]);
    assert.deepEqual(next, { subscribe: [{ tile: 1, cursor: 20n }], unsubscribe: [3] });
    assert.deepEqual([...r.subscribed].sort(), [0, 1]);
  });

  test("Pixels: applied when prev_seq == cursor, ignored when old, re-subscribe on a gap", () => {
    const r = loaded();
    r.connect();
    r.setInterest([0, 1]);
    let out = r.applyPixels(pixels(0, 10n, 13n, [{ offset: 0, colour: 7 }, { offset: 17, colour: 8 }, { offset: 0, colour: 9 }]), 1000);
    assert.equal(out.result, "applied");
    assert.equal(r.pixel(0, 0), 9); // later entries for an offset win
    assert.equal(r.pixel(1, 1), 8);
    assert.equal(r.cursorOf(0), 13n);
    assert.deepEqual([...r.takeDirty()], [0]);
    out = r.applyPixels(pixels(0, 10n, 13n, [{ offset: 0, colour: 1 }]), 1000);
    assert.equal(out.result, "ignored");
    assert.equal(r.applyPixels(pixels(0, 11n, 12n, [{ offset: 0, colour: 1 }]), 1000).result, "ignored");
    assert.equal(r.pixel(0, 0), 9);
    out = r.applyPixels(pixels(0, 14n, 15n, [{ offset: 0, colour: 1 }]), 1000);
    assert.deepEqual(out, { result: "resubscribe", subscribe: [{ tile: 0, cursor: 13n }] });
    assert.equal(r.pixel(0, 0), 9, "a gap is not applied");
    // While the re-Subscribe is in flight, further gaps do not send another one...
    assert.equal(r.applyPixels(pixels(0, 15n, 16n, []), 1000 + 10).result, "gap");
    // ...until the hold expires.
    assert.equal(r.applyPixels(pixels(0, 16n, 17n, []), 1000 + RESUBSCRIBE_HOLD_MS + 1).result, "resubscribe");
    // The replay (prev_seq = the cursor we sent) applies and clears the hold.
    assert.equal(r.applyPixels(pixels(0, 13n, 17n, [{ offset: 0, colour: 2 }]), 1000).result, "applied");
    assert.equal(r.resubscribing.has(0), false);
    assert.equal(r.cursorOf(0), 17n);
  });

  test("a gap on a tile no longer subscribed is left for the next Subscribe", () => {
    const r = loaded();
    r.connect();
    r.setInterest([1]);
    assert.equal(r.applyPixels(pixels(0, 11n, 12n, []), 0).result, "gap");
    r.disconnect();
    assert.equal(r.applyPixels(pixels(1, 21n, 22n, []), 0).result, "gap");
  });

  test("nothing held (NO_CURSOR): Pixels are ignored until TileData arrives", () => {
    const r = new Replica(g);
    r.setInterest([0]);
    assert.deepEqual(r.connect().subscribe, [{ tile: 0, cursor: NO_CURSOR }]);
    assert.equal(r.applyPixels(pixels(0, 5n, 6n, [{ offset: 0, colour: 3 }])).result, "ignored");
    assert.equal(r.pixel(0, 0), null);
    const data = tileOf(g, 5);
    assert.equal(r.applyTileData(serverFrame({ type: "TileData", tile: 0, seq: 6n, data })), true);
    assert.equal(r.pixel(0, 0), 5);
    assert.equal(r.cursorOf(0), 6n);
    assert.equal(r.applyPixels(pixels(0, 6n, 9n, [{ offset: 1, colour: 3 }])).result, "applied");
    assert.equal(r.pixel(1, 0), 3);
    // A TileData of the wrong size is refused; the tile is untouched.
    assert.equal(r.applyTileData(serverFrame({ type: "TileData", tile: 0, seq: 99n, data: new Uint8Array(3) })), false);
    assert.equal(r.cursorOf(0), 9n);
    // TileData replaces even with an older seq (the server's state went back).
    assert.equal(r.applyTileData(serverFrame({ type: "TileData", tile: 0, seq: 2n, data: tileOf(g, 1) })), true);
    assert.equal(r.cursorOf(0), 2n);
  });

  test("TileData bytes are copied out of the message buffer", () => {
    const r = new Replica(g);
    const msg = encodeServer({ type: "TileData", tile: 1, seq: 3n, data: tileOf(g, 4) });
    const f = decodeServerFrames(msg).frames[0];
    r.applyTileData(f);
    msg.fill(0);
    assert.equal(r.pixel(16, 0), 4);
  });

  test("Resync re-subscribes the subscribed tiles with the cursors held", () => {
    const r = loaded();
    r.setInterest([0, 1, 2]);
    r.connect();
    r.applyPixels(pixels(1, 20n, 21n, []));
    const f = serverFrame({ type: "Resync", tiles: [1, 3, 2, 1] });
    assert.deepEqual(r.resync(f.tiles), [{ tile: 1, cursor: 21n }, { tile: 2, cursor: 30n }]);
  });

  test("a reconnect resumes from the cursors: bytes and cursors survive the drop", () => {
    const r = loaded();
    r.setInterest([0, 1]);
    r.connect();
    r.applyPixels(pixels(0, 10n, 11n, [{ offset: 0, colour: 6 }]));
    r.disconnect();
    assert.equal(r.subscribed.size, 0);
    r.setInterest([0, 2]); // the view moved while offline
    const work = r.connect();
    assert.deepEqual(work.subscribe, [{ tile: 0, cursor: 11n }, { tile: 2, cursor: 30n }]);
    assert.equal(r.pixel(0, 0), 6);
  });

  test("chunk splits lists at MAX_TILES_PER_FRAME", () => {
    const list = Array.from({ length: 2500 }, (_, i) => i);
    const parts = chunk(list);
    assert.deepEqual(parts.map((p) => p.length), [MAX_TILES_PER_FRAME, MAX_TILES_PER_FRAME, 2500 - 2 * MAX_TILES_PER_FRAME]);
    assert.deepEqual(chunk([]), []);
  });

  test("rasterizeTile matches getPixel through the LUT at every depth", () => {
    const palette = ["#000000", "#FF0000", "#00FF00", "#0000FF", "#FFFFFF", "#123456", "#ABCDEF", "#FEDCBA"];
    for (const bpp of [1, 2, 4, 8]) {
      const gg = new Geometry(8, 8, bpp, 8);
      const lut = paletteLut(palette, bpp);
      const bytes = new Uint8Array(gg.tileBytes);
      for (let o = 0; o < 64; o++) setPixel(bytes, bpp, o, (o * 7 + 3) % Math.min(8, 1 << bpp));
      const out = rasterizeTile(bytes, bpp, lut, new Uint32Array(64));
      const rgba = new Uint8Array(out.buffer);
      for (let o = 0; o < 64; o++) {
        const c = getPixel(bytes, bpp, o);
        const hex = palette[c];
        const want = [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16), 255];
        assert.deepEqual([...rgba.subarray(4 * o, 4 * o + 4)], want, `bpp ${bpp} offset ${o}`);
      }
    }
  });
});

// ---- viewport --------------------------------------------------------------------------------

describe("viewport", () => {
  test("starts fitted and centred", () => {
    const v = new Viewport(800, 600, 1000, 500);
    assert.equal(v.cx, 500);
    assert.equal(v.cy, 250);
    assert.ok(Math.abs(v.scale - 0.76) < 1e-9); // min(0.8, 1.2) * 0.95
  });

  test("toCanvas and toScreen are inverse; pixelAt floors and refuses off-canvas points", () => {
    const v = new Viewport(800, 600, 1000, 1000);
    v.centreOn(100, 200, 4);
    const p = v.toCanvas(123, 456);
    const s = v.toScreen(p.x, p.y);
    assert.ok(Math.abs(s.x - 123) < 1e-9 && Math.abs(s.y - 456) < 1e-9);
    assert.deepEqual(v.pixelAt(400, 300), { x: 100, y: 200 });
    assert.deepEqual(v.pixelAt(403.9, 299.9), { x: 100, y: 199 });
    v.centreOn(0, 0, 4);
    assert.equal(v.pixelAt(0, 0), null);
  });

  test("zoomAt keeps the point under the cursor fixed and clamps the scale", () => {
    const v = new Viewport(800, 600, 1000, 1000);
    v.centreOn(500, 500, 2);
    const before = v.toCanvas(100, 50);
    v.zoomAt(3, 100, 50);
    const after = v.toCanvas(100, 50);
    assert.ok(Math.abs(before.x - after.x) < 1e-9 && Math.abs(before.y - after.y) < 1e-9);
    assert.equal(v.scale, 6);
    v.zoomAt(1e9);
    assert.equal(v.scale, v.maxScale);
    v.zoomAt(1e-12);
    assert.equal(v.scale, v.minScale);
  });

  test("panBy moves the content with the pointer and keeps the centre on the canvas", () => {
    const v = new Viewport(800, 600, 1000, 1000);
    v.centreOn(500, 500, 2);
    v.panBy(100, -50);
    assert.equal(v.cx, 450);
    assert.equal(v.cy, 525);
    v.panBy(1e6, 1e6);
    assert.deepEqual([v.cx, v.cy], [0, 0]);
  });

  test("visibleTiles lists exactly the tiles the view intersects", () => {
    const g = new Geometry(1000, 600, 4, 64); // 16 x 10 tiles
    const v = new Viewport(640, 320, 1000, 600);
    v.centreOn(320, 160, 1); // view covers x 0..640, y 0..320
    const t = visibleTiles(v, g);
    assert.equal(t.length, 10 * 5);
    assert.equal(t[0], 0);
    assert.equal(t[t.length - 1], 4 * 16 + 9);
    v.centreOn(321, 161, 1); // x 1..641 → tiles 0..10, y 1..321 → rows 0..5
    assert.equal(visibleTiles(v, g).length, 11 * 6);
    v.fit();
    assert.equal(visibleTiles(v, g).length, g.tileCount);
    v.centreOn(999, 599, 64);
    assert.deepEqual(visibleTiles(v, g), [9 * 16 + 15]);
    v.centreOn(320, 160, 1);
    const withMargin = visibleTiles(v, g, 1);
    assert.equal(withMargin.length, 11 * 6); // clamped at the canvas' top-left edge
  });
});

// ---- clock -----------------------------------------------------------------------------------

describe("clock", () => {
  test("Welcome sample and Pong round trips", () => {
    const c = new ServerClock();
    c.sample(10_000n, 4_000);
    assert.equal(c.now(5_000), 11_000);
    c.pong(20_100n, 14_000, 14_200); // rtt 200: the server read its clock at ~14_100
    assert.equal(c.offsetMs, 6_000);
    c.pong(99_999n, 15_000, 16_000); // a slower round trip does not replace a better one
    assert.equal(c.offsetMs, 6_000);
    c.pong(22_050n, 16_000, 16_100); // a faster one does
    assert.equal(c.offsetMs, 22_050 - 16_050);
  });

  test("remainingMs corrects for skew and never goes negative", () => {
    const c = new ServerClock();
    c.sample(1_000_000n, 999_000); // server 1 s ahead
    assert.equal(remainingMs(1_005_000n, c, 999_000), 5_000);
    assert.equal(remainingMs(1_005_000n, c, 1_000_000), 4_000);
    assert.equal(remainingMs(1_000_000, c, 1_000_000), 0);
    assert.equal(remainingMs(null, c), 0);
  });

  test("formatCountdown", () => {
    assert.equal(formatCountdown(0), "0 s");
    assert.equal(formatCountdown(4_210), "4.3 s");
    assert.equal(formatCountdown(42_000), "42 s");
    assert.equal(formatCountdown(65_000), "1:05");
  });
});

// ---- chat model ------------------------------------------------------------------------------

describe("chat model", () => {
  const msg = (seq, author = 1, text = `m${seq}`) => normalizeMessage({ seq: BigInt(seq), author, author_name: `u${author}`, time_ms: 1000n + BigInt(seq), text });

  test("normalizeMessage accepts frames, history entries and HTTP JSON", () => {
    assert.deepEqual(normalizeMessage({ seq: 5, author: 2, author_name: "bo", time_ms: 7, text: "hi" }), { seq: 5n, author: 2, authorName: "bo", timeMs: 7, text: "hi" });
    assert.deepEqual(normalizeMessage({ seq: "18446744073709551614", author: 2, author_name: "bo", time_ms: 7, text: "" }).seq, 18446744073709551614n);
    const dm = serverFrame({ type: "DirectMessage", from: 3, to: 4, seq: 9n, time_ms: 12n, from_name: "cy", text: "yo" });
    assert.deepEqual(normalizeMessage(dm), { seq: 9n, author: 3, authorName: "cy", timeMs: 12, text: "yo" });
    assert.equal(dmPeer(dm, 3), 4);
    assert.equal(dmPeer(dm, 4), 3);
    assert.throws(() => toSeq(-1));
    assert.throws(() => toSeq("x"));
  });

  test("MessageLog keeps seq order, de-duplicates, removes", () => {
    const log = new MessageLog();
    assert.equal(log.add(msg(5)), true);
    assert.equal(log.add(msg(3)), true);
    assert.equal(log.add(msg(9)), true);
    assert.equal(log.add(msg(5)), false);
    assert.equal(log.addAll([msg(1), msg(4), msg(9)]), 2);
    assert.deepEqual(log.messages.map((m) => m.seq), [1n, 3n, 4n, 5n, 9n]);
    assert.equal(log.oldestSeq(), 1n);
    assert.equal(log.newestSeq(), 9n);
    assert.equal(log.remove(4n), true);
    assert.equal(log.remove(4n), false);
    assert.equal(log.has(4n), false);
    log.add(msg(6, 2));
    log.add(msg(7, 2));
    assert.equal(log.removeAuthor(2), 2);
    assert.deepEqual(log.messages.map((m) => m.seq), [1n, 3n, 5n, 9n]);
    assert.equal(log.add(msg(6, 2)), true, "a removed seq can come back");
  });

  test("mergeLatest merges an overlapping page and replaces after a hole", () => {
    const log = new MessageLog();
    log.addAll([msg(1), msg(2), msg(3)]);
    assert.equal(log.mergeLatest([msg(3), msg(4)]), "merged");
    assert.equal(log.mergeLatest([msg(5)]), "merged");
    log.exhausted = true;
    assert.equal(log.mergeLatest([msg(60), msg(61)]), "replaced");
    assert.deepEqual(log.messages.map((m) => m.seq), [60n, 61n]);
    assert.equal(log.exhausted, false, "older pages can be fetched again");
    assert.equal(log.mergeLatest([]), "merged");
    assert.equal(log.size, 2);
  });

  test("Presence: multi-frame snapshots, joined, left", () => {
    const p = new PresenceModel();
    p.apply(serverFrame({ type: "Presence", room: 7, kind: "snapshot", entries: [{ user: 1, name: "zed" }, { user: 2, name: "amy" }] }));
    p.apply(serverFrame({ type: "Presence", room: 7, kind: "snapshot", entries: [{ user: 3, name: "bob" }] }));
    assert.deepEqual(p.members(7).map((m) => m.name), ["amy", "bob", "zed"]);
    p.apply(serverFrame({ type: "Presence", room: 7, kind: "joined", entries: [{ user: 4, name: "cat" }] }));
    p.apply(serverFrame({ type: "Presence", room: 7, kind: "left", entries: [{ user: 1, name: "zed" }] }));
    assert.deepEqual(p.members(7).map((m) => m.user), [2, 3, 4]);
    // A snapshot after another frame of the room starts a new list.
    p.apply(serverFrame({ type: "Presence", room: 7, kind: "snapshot", entries: [{ user: 9, name: "eve" }] }));
    assert.deepEqual(p.members(7).map((m) => m.user), [9]);
    p.otherFrame(7);
    p.apply(serverFrame({ type: "Presence", room: 7, kind: "snapshot", entries: [{ user: 8, name: "dan" }] }));
    assert.deepEqual(p.members(7).map((m) => m.user), [8]);
    assert.deepEqual(p.members(8), []);
  });
});

// ---- net -------------------------------------------------------------------------------------

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = null;
    this.readyState = 0;
    FakeSocket.all.push(this);
  }
  send(data) {
    this.sent.push(data);
  }
  close(code, reason) {
    this.closed = { code, reason };
  }
  // server side helpers
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  deliver(...frames) {
    const parts = frames.map((f) => encodeServer(f));
    const msg = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      msg.set(p, at);
      at += p.length;
    }
    this.onmessage?.({ data: msg.buffer });
  }
  drop(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** Client frames sent so far, decoded. */
  frames() {
    return this.sent.flatMap((m) => {
      const { frames, error } = decodeClientFrames(m);
      assert.equal(error, null);
      return frames;
    });
  }
}

function fakeTimers() {
  let now = 1_000;
  let id = 0;
  const timeouts = new Map();
  return {
    timeouts,
    now: () => now,
    setTimeout: (fn, ms) => {
      timeouts.set(++id, { fn, at: now + ms, ms });
      return id;
    },
    clearTimeout: (t) => timeouts.delete(t),
    setInterval: () => ++id,
    clearInterval: () => {},
    advance(ms) {
      now += ms;
      for (const [k, t] of [...timeouts]) {
        if (t.at <= now) {
          timeouts.delete(k);
          t.fn();
        }
      }
    },
  };
}

const WELCOME = {
  type: "Welcome", version: 1, user: 42, role: "admin", name: "ada", width: 64, height: 64, bpp: 4, tile_size: 32,
  cooldown_ms: 5000, ready_at_ms: 0n, server_time_ms: 5_000n, palette: ["#000000", "#FFFFFF"],
};

const tick = () => new Promise((r) => setTimeout(r, 0));

function connection(extra = {}) {
  FakeSocket.all = [];
  const timers = fakeTimers();
  const events = { states: [], frames: [], closes: [], welcomes: [] };
  const c = new Connection({
    url: "ws://x/ws", WebSocketImpl: FakeSocket, timers, random: () => 1,
    onState: (s) => events.states.push(s), onFrame: (f) => events.frames.push(f),
    onClose: (i) => events.closes.push(i), onWelcome: (w) => events.welcomes.push(w), ...extra,
  });
  return { c, timers, events, sock: () => FakeSocket.all[FakeSocket.all.length - 1] };
}

describe("net", () => {
  test("policy helpers", () => {
    assert.equal(shouldReconnect("banned"), false);
    assert.equal(shouldReconnect("kicked"), false);
    assert.equal(shouldReconnect("session_revoked"), false);
    for (const r of ["shutdown", "idle_timeout", "slow_consumer", "internal_error", "protocol_violation", null]) assert.equal(shouldReconnect(r), true);
    assert.equal(backoffDelay(0, () => 1), 500);
    assert.equal(backoffDelay(0, () => 0), 250);
    assert.equal(backoffDelay(3, () => 1), 4000);
    assert.equal(backoffDelay(30, () => 1), 30_000);
    assert.equal(webSocketUrl("/ws", "https://example.test/a/b"), "wss://example.test/ws");
    assert.equal(webSocketUrl("/ws", "http://localhost:8080/"), "ws://localhost:8080/ws");
    assert.equal(visitorUrl("ws://localhost:8080/ws"), "ws://localhost:8080/ws?visitor=1");
    assert.equal(visitorUrl("wss://h/ws?node=2&visitor=0"), "wss://h/ws?node=2&visitor=1", "other parameters kept");
  });

  test("a visitor session: a WebSocket to ?visitor=1, Hello version 3, welcomed as a visitor, subscribes", async () => {
    const { c, events, sock } = connection({ dial: webSocketDialer({ url: () => visitorUrl("ws://x/ws"), WebSocketImpl: FakeSocket }) });
    c.start();
    const s = sock();
    assert.equal(s.url, "ws://x/ws?visitor=1");
    s.open();
    assert.deepEqual(s.frames(), [{ type: "Hello", version: 3, kind: "browser", agent: AGENT }]);
    s.deliver({ ...WELCOME, version: 3, user: 0, role: "visitor", name: "", ready_at_ms: 0n });
    assert.equal(c.state, "connected");
    assert.equal(events.welcomes[0].role, "visitor");
    await tick();
    s.sent.length = 0;
    c.send({ type: "Subscribe", tiles: [{ tile: 0, cursor: NO_CURSOR }] });
    await tick();
    assert.deepEqual(s.frames().map((f) => f.type), ["Subscribe"]);
    // A Social frame (never sent to visitors, but decodable) is forwarded like any other.
    s.deliver({ type: "Social", kind: "online", id: 5, name: "bo" });
    assert.deepEqual(events.frames.at(-1), { type: "Social", kind: "online", id: 5, name: "bo" });
  });

  test("joinFrames batches up to the transport limit", () => {
    const a = new Uint8Array(100).fill(1);
    const b = new Uint8Array(200).fill(2);
    const out = joinFrames([a, b, a], 300);
    assert.deepEqual(out.map((m) => m.length), [300, 100]);
    assert.equal(out[0][99], 1);
    assert.equal(out[0][100], 2);
    assert.deepEqual(joinFrames([]), []);
  });

  test("Hello first, Welcome connects, requests resolve by req, frames batch into one message", async () => {
    const { c, events, sock } = connection();
    c.start();
    assert.deepEqual(events.states, ["connecting"]);
    const s = sock();
    assert.equal(s.url, "ws://x/ws");
    assert.equal(s.binaryType, "arraybuffer");
    s.open();
    assert.deepEqual(s.frames(), [{ type: "Hello", version: 3, kind: "browser", agent: AGENT }]);
    await assert.rejects(c.request({ type: "Paint", x: 1, y: 1, colour: 1 }), (e) => e instanceof RequestError && e.code === "disconnected");
    s.deliver(WELCOME);
    assert.equal(c.state, "connected");
    assert.equal(events.welcomes.length, 1);
    assert.equal(c.clock.now(1_000), 5_000);
    await tick();
    s.sent.length = 0;

    const p1 = c.request({ type: "Paint", x: 3, y: 4, colour: 1 });
    const p2 = c.request({ type: "Paint", x: 5, y: 6, colour: 1 });
    c.send({ type: "Subscribe", tiles: [{ tile: 0, cursor: NO_CURSOR }] });
    await tick();
    assert.equal(s.sent.length, 1, "one transport message per turn");
    const sent = s.frames();
    assert.deepEqual(sent.map((f) => f.type), ["Paint", "Paint", "Subscribe"]);
    const [r1, r2] = [sent[0].req, sent[1].req];
    assert.notEqual(r1, r2);
    s.deliver(
      { type: "Error", req: r2, code: "cooldown", retry_after_ms: 4000, message: "wait" },
      { type: "Ack", req: r1, value: 77n },
      { type: "Cooldown", ready_at_ms: 10_000n, cooldown_ms: 5000 },
    );
    assert.deepEqual(await p1, { type: "Ack", req: r1, value: 77n });
    await assert.rejects(p2, (e) => e.code === "cooldown" && e.retryAfterMs === 4000 && e.message === "wait");
    assert.deepEqual(events.frames.map((f) => f.type), ["Cooldown"], "settled answers are not forwarded");
  });

  test("History resolves with its HistoryPage; the JoinRoom page after the Ack is forwarded", async () => {
    const { c, events, sock } = connection();
    c.start();
    sock().open();
    sock().deliver(WELCOME);
    const hist = c.request({ type: "History", kind: "room", conv: 3, before: U64_MAX, limit: 50 });
    const joinReq = c.nextReq();
    const join = c.request({ type: "JoinRoom", req: joinReq, room: 3 });
    await tick();
    const [h] = sock().frames().filter((f) => f.type === "History");
    const page = (req) => ({ type: "HistoryPage", req, kind: "room", conv: 3, entries: [{ seq: 1n, author: 2, time_ms: 3n, author_name: "b", text: "t" }] });
    sock().deliver(page(h.req), { type: "Ack", req: joinReq, value: 1n }, page(joinReq), { type: "Presence", room: 3, kind: "snapshot", entries: [] });
    assert.equal((await hist).entries.length, 1);
    assert.equal((await join).value, 1n);
    assert.deepEqual(events.frames.map((f) => [f.type, f.req ?? null]), [["HistoryPage", h.req], ["HistoryPage", joinReq], ["Presence", null]]);
  });

  test("Closing banned: no reconnect, pending requests rejected, reason reported", async () => {
    const { c, events, sock, timers } = connection();
    c.start();
    sock().open();
    sock().deliver(WELCOME);
    const p = c.request({ type: "Paint", x: 1, y: 1, colour: 0 });
    sock().deliver({ type: "Closing", reason: "banned", message: "spamming" });
    sock().drop(4001, "banned");
    await assert.rejects(p, (e) => e.code === "disconnected");
    assert.equal(c.state, "disconnected");
    assert.equal(events.closes.length, 1);
    assert.deepEqual({ ...events.closes[0] }, { reason: "banned", message: "spamming", code: 4001, welcomed: true, reconnectInMs: null });
    assert.equal(events.frames.at(-1).type, "Closing");
    timers.advance(120_000);
    assert.equal(FakeSocket.all.length, 1, "never reconnects");
  });

  test("a close code alone (no Closing frame) still maps to its reason", () => {
    const { c, events, sock } = connection();
    c.start();
    sock().open();
    sock().deliver(WELCOME);
    sock().drop(4006, "session_revoked");
    assert.equal(events.closes[0].reason, "session_revoked");
    assert.equal(events.closes[0].reconnectInMs, null);
  });

  test("other closes reconnect with growing backoff, reset by a Welcome", () => {
    const { c, events, sock, timers } = connection();
    c.start();
    sock().open();
    sock().deliver(WELCOME);
    sock().drop(1006);
    assert.equal(events.closes[0].reconnectInMs, 500);
    assert.equal(c.state, "disconnected");
    timers.advance(499);
    assert.equal(FakeSocket.all.length, 1);
    timers.advance(1);
    assert.equal(FakeSocket.all.length, 2);
    assert.equal(c.state, "connecting");
    sock().drop(1006); // refused before opening
    assert.equal(events.closes[1].reconnectInMs, 1000);
    assert.equal(events.closes[1].welcomed, false);
    timers.advance(1000);
    sock().open();
    sock().deliver(WELCOME);
    sock().deliver({ type: "Closing", reason: "shutdown", message: "restart" });
    sock().drop(1001);
    assert.equal(events.closes[2].reason, "shutdown");
    assert.equal(events.closes[2].reconnectInMs, 500, "the Welcome reset the backoff");
    c.stop();
    timers.advance(10_000);
    assert.equal(FakeSocket.all.length, 3, "stop() cancels the pending reconnect");
    assert.equal(c.state, "disconnected");
  });

  test("retryNow skips the wait; stop() closes with 1000 and does not reconnect", () => {
    const { c, sock, events } = connection();
    c.start();
    sock().drop(1006);
    c.retryNow();
    assert.equal(FakeSocket.all.length, 2);
    sock().open();
    sock().deliver(WELCOME);
    c.stop();
    assert.deepEqual(sock().closed, { code: 1000, reason: "bye" });
    assert.equal(events.closes.at(-1).reason, "normal");
    assert.equal(c.state, "disconnected");
  });

  test("a malformed server message ends the session and reconnects", () => {
    const { c, events, sock } = connection();
    c.start();
    sock().open();
    sock().deliver(WELCOME);
    sock().onmessage({ data: new Uint8Array([0x7f, 0, 0, 0, 0]).buffer });
    assert.equal(sock().closed.code, 4000);
    assert.equal(events.closes[0].reason, "protocol_violation");
    assert.notEqual(events.closes[0].reconnectInMs, null);
  });

  test("Pong refines the server clock", () => {
    const { c, sock, timers } = connection();
    c.start();
    sock().open();
    sock().deliver(WELCOME);
    const ping = () => sock().frames().filter((f) => f.type === "Ping").at(-1);
    return tick().then(() => {
      const p = ping();
      assert.ok(p, "a Ping follows the Welcome");
      timers.advance(100);
      sock().deliver({ type: "Pong", nonce: p.nonce, server_time_ms: 9_050n });
      assert.equal(c.clock.offsetMs, 9_050 - 1_050);
    });
  });

  test("request timeout rejects", async () => {
    const { c, sock, timers } = connection({ requestTimeoutMs: 50 });
    c.start();
    sock().open();
    sock().deliver(WELCOME);
    const p = c.request({ type: "JoinRoom", room: 1 });
    timers.advance(50);
    await assert.rejects(p, (e) => e.code === "timeout");
  });
});

// ---- transports (WebTransport, selection and fallback) ---------------------------------------

const HASH = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/** A fake browser WebTransport: the test plays the server (accept, deliver, finish, lose...). */
class FakeWebTransport {
  static all = [];
  constructor(url, opts) {
    this.url = url;
    this.opts = opts;
    this.closedWith = null;
    this.written = [];
    this.streams = 0;
    this.reads = [];
    this.chunks = [];
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.closed = new Promise((res, rej) => {
      this.resolveClosed = res;
      this.rejectClosed = rej;
    });
    FakeWebTransport.all.push(this);
  }
  async createBidirectionalStream() {
    this.streams++;
    return {
      writable: { getWriter: () => ({ write: async (b) => void this.written.push(Uint8Array.from(b)) }) },
      readable: { getReader: () => ({ read: () => this.nextRead() }) },
    };
  }
  close(info) {
    this.closedWith = info;
    this.rejectReady(new Error("aborted"));
    this.resolveClosed(info);
    this.emit({ error: new Error("The session is closed.") });
  }
  nextRead() {
    const c = this.chunks.shift();
    if (c) return c.error ? Promise.reject(c.error) : Promise.resolve(c);
    return new Promise((res, rej) => this.reads.push({ res, rej }));
  }
  emit(c) {
    const r = this.reads.shift();
    if (!r) this.chunks.push(c);
    else if (c.error) r.rej(c.error);
    else r.res(c);
  }
  // server side helpers
  accept() {
    this.resolveReady();
  }
  refuse(msg = "Opening handshake failed.") {
    const e = new Error(msg);
    this.rejectReady(e);
    this.rejectClosed(e);
  }
  push(bytes) {
    this.emit({ value: bytes, done: false });
  }
  deliver(...frames) {
    const parts = frames.map((f) => encodeServer(f));
    const msg = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      msg.set(p, at);
      at += p.length;
    }
    this.push(msg);
  }
  /** The server finishes its side of the stream (FIN). */
  finish() {
    this.emit({ value: undefined, done: true });
  }
  /** The session ends the way Chromium reports a server-closed QUIC connection. */
  lose(msg = "Connection lost.") {
    this.rejectClosed(Object.assign(new Error(msg), { name: "WebTransportError", source: "session", streamErrorCode: null }));
  }
  frames() {
    const all = new Uint8Array(this.written.reduce((n, w) => n + w.length, 0));
    let at = 0;
    for (const w of this.written) {
      all.set(w, at);
      at += w.length;
    }
    const { frames, error } = decodeClientFrames(all);
    assert.equal(error, null);
    return frames;
  }
}

/** A Connection dialing through a TransportPicker over fakes; `tickets` records every ticket handed out. */
function wtConnection({ mode = "auto", available = true, offered = true, ticket = null, extra = {} } = {}) {
  FakeSocket.all = [];
  FakeWebTransport.all = [];
  const timers = fakeTimers();
  const tickets = [];
  const ticketFn = ticket ?? (async () => {
    const t = { ticket: `t${tickets.length + 1}`, url: "https://127.0.0.1:4433/wt", cert_hashes: [HASH] };
    tickets.push(t);
    return t;
  });
  const fallbacks = [];
  const picker = new TransportPicker({
    mode,
    available,
    offered: () => offered,
    webSocket: webSocketDialer({ url: "ws://x/ws", WebSocketImpl: FakeSocket }),
    webTransport: webTransportDialer({ ticket: ticketFn, WebTransportImpl: FakeWebTransport, timers }),
    onFallback: (info) => fallbacks.push(info),
  });
  const events = { states: [], frames: [], closes: [], welcomes: [], transports: [] };
  const c = new Connection({
    dial: (h) => picker.dial(h), timers, random: () => 1,
    onState: (s) => events.states.push(s), onFrame: (f) => events.frames.push(f), onTransport: (k) => events.transports.push(k),
    onClose: (i) => events.closes.push(i), onWelcome: (w) => events.welcomes.push(w), ...extra,
  });
  return {
    c, picker, timers, events, tickets, fallbacks,
    wt: () => FakeWebTransport.all[FakeWebTransport.all.length - 1],
    sock: () => FakeSocket.all[FakeSocket.all.length - 1],
  };
}

/** Lets every pending promise chain run (several microtask turns). */
const settle = async () => {
  for (let i = 0; i < 3; i++) await tick();
};

/** The newest WebTransport session accepts and says Welcome. */
async function acceptAndWelcome(wt) {
  wt().accept();
  await settle();
  wt().deliver(WELCOME);
  await settle();
}

/** A started WebTransport connection whose first session is welcomed. */
async function welcomedWt(options) {
  const t = wtConnection(options);
  t.c.start();
  await settle();
  await acceptAndWelcome(t.wt);
  return t;
}

describe("transports", () => {
  test("transportMode reads ?transport=ws|wt; certificateHashes decodes the published hex", () => {
    assert.equal(transportMode("?transport=ws"), "websocket");
    assert.equal(transportMode("?x=1&transport=wt"), "webtransport");
    assert.equal(transportMode("?transport=websocket"), "websocket");
    assert.equal(transportMode("?transport=quic"), "auto");
    assert.equal(transportMode(""), "auto");
    assert.equal(transportMode(undefined), "auto");
    const [h, ...rest] = certificateHashes([HASH, "zz", 7, HASH.slice(2)]);
    assert.equal(rest.length, 0, "malformed hashes are skipped");
    assert.equal(h.algorithm, "sha-256");
    assert.ok(h.value instanceof Uint8Array);
    assert.deepEqual([...h.value.subarray(0, 4)], [0x00, 0x11, 0x22, 0x33]);
    assert.equal(h.value.length, 32);
    assert.equal(h.value[31], 0xff);
  });

  test("WebTransport: fresh ticket, certificate hashes, Hello on the one stream, frames reassembled across chunks", async () => {
    const { c, events, wt, tickets } = wtConnection();
    c.start();
    assert.deepEqual(events.states, ["connecting"]);
    await settle();
    assert.equal(tickets.length, 1);
    assert.equal(wt().url, "https://127.0.0.1:4433/wt?ticket=t1");
    assert.deepEqual(wt().opts.serverCertificateHashes, certificateHashes([HASH]));
    assert.deepEqual(wt().written, [], "nothing before the session is ready");
    wt().accept();
    await settle();
    assert.equal(wt().streams, 1, "exactly one bidirectional stream");
    assert.deepEqual(wt().frames(), [{ type: "Hello", version: 3, kind: "browser", agent: AGENT }]);
    assert.deepEqual(events.transports, ["webtransport"]);
    assert.equal(c.transportKind, "webtransport");
    assert.equal(FakeSocket.all.length, 0, "no WebSocket");

    // The Welcome byte by byte, then an Ack and a Cooldown in one chunk split mid-frame.
    const welcome = encodeServer(WELCOME);
    for (const b of welcome) wt().push(Uint8Array.of(b));
    await settle();
    assert.equal(c.state, "connected");
    assert.equal(events.welcomes.length, 1);
    wt().written.length = 0;
    const p = c.request({ type: "Paint", x: 3, y: 4, colour: 1 });
    await tick();
    const [paint] = wt().frames().filter((f) => f.type === "Paint");
    const ack = encodeServer({ type: "Ack", req: paint.req, value: 9n });
    const cd = encodeServer({ type: "Cooldown", ready_at_ms: 10_000n, cooldown_ms: 5000 });
    const both = new Uint8Array(ack.length + cd.length);
    both.set(ack);
    both.set(cd, ack.length);
    wt().push(both.subarray(0, ack.length + 3));
    wt().push(both.subarray(ack.length + 3));
    assert.deepEqual(await p, { type: "Ack", req: paint.req, value: 9n });
    await settle();
    assert.deepEqual(events.frames.map((f) => f.type), ["Cooldown"]);
  });

  test("WebTransport: Closing banned, stream end, then the lost session: no reconnect", async () => {
    const { c, events, wt, timers } = await welcomedWt();
    // Chromium may report the session's end before the last stream bytes are read: the Closing
    // frame must still decide the reason.
    wt().lose();
    await settle();
    assert.equal(events.closes.length, 0, "waits for the stream's end");
    wt().deliver({ type: "Closing", reason: "banned", message: "spamming" });
    wt().finish();
    await settle();
    assert.equal(events.closes.length, 1);
    assert.deepEqual({ ...events.closes[0] }, { reason: "banned", message: "spamming", code: 0, welcomed: true, reconnectInMs: null });
    assert.equal(c.state, "disconnected");
    timers.advance(120_000);
    await settle();
    assert.equal(FakeWebTransport.all.length, 1, "never reconnects");
  });

  test("WebTransport: the session's close code alone maps to its reason; other ends reconnect on a fresh ticket", async () => {
    const { c, events, wt, timers, tickets } = await welcomedWt();
    wt().resolveClosed({ closeCode: 4005, reason: "idle_timeout" });
    wt().finish();
    await settle();
    assert.equal(events.closes[0].reason, "idle_timeout");
    assert.equal(events.closes[0].code, 4005);
    assert.equal(events.closes[0].reconnectInMs, 500, "the same backoff as the WebSocket");
    timers.advance(500);
    await settle();
    assert.equal(FakeWebTransport.all.length, 2);
    assert.equal(tickets.length, 2);
    assert.equal(wt().url, "https://127.0.0.1:4433/wt?ticket=t2", "a new ticket for every connect");
    await acceptAndWelcome(wt);
    wt().resolveClosed({ closeCode: 4006, reason: "session_revoked" });
    wt().finish();
    await settle();
    assert.equal(events.closes[1].reason, "session_revoked");
    assert.equal(events.closes[1].reconnectInMs, null);
  });

  test("WebTransport: stop() closes the session with 1000; a malformed stream closes with 4000 and resumes", async () => {
    const { c, events, wt, timers } = await welcomedWt();
    wt().push(new Uint8Array([0x7f, 0, 0, 0, 0]));
    await settle();
    assert.deepEqual(wt().closedWith, { closeCode: 4000, reason: "malformed" });
    assert.equal(events.closes[0].reason, "protocol_violation");
    assert.notEqual(events.closes[0].reconnectInMs, null);
    timers.advance(events.closes[0].reconnectInMs);
    await settle();
    assert.equal(FakeWebTransport.all.length, 2);
    wt().accept();
    await settle();
    wt().deliver(WELCOME);
    await settle();
    assert.equal(c.state, "connected");
    c.stop();
    assert.deepEqual(wt().closedWith, { closeCode: 1000, reason: "bye" });
    await settle();
    assert.equal(events.closes.at(-1).reason, "normal");
    assert.equal(events.closes.length, 2, "the session's own close event is not reported again");
  });

  test("WebTransport: a stream the server ended without closing the session ends it after a grace period", async () => {
    const { c, events, wt, timers } = wtConnection();
    c.start();
    await settle();
    wt().accept();
    await settle();
    wt().deliver(WELCOME);
    wt().finish();
    await settle();
    assert.equal(events.closes.length, 0);
    timers.advance(WT_CLOSE_GRACE_MS);
    await settle();
    assert.equal(events.closes.length, 1);
    assert.notEqual(events.closes[0].reconnectInMs, null);
    assert.notEqual(wt().closedWith, null, "the session was closed");
  });

  test("auto: a WebTransport that fails to connect hands over to a WebSocket at once, remembered for later attempts", async () => {
    const { c, events, wt, sock, timers, tickets, picker, fallbacks } = wtConnection();
    assert.equal(picker.choice(), "webtransport");
    c.start();
    await settle();
    wt().refuse(); // e.g. UDP blocked, or the handshake refused
    await settle();
    assert.equal(events.closes.length, 0, "the Connection sees no close: the same attempt goes on");
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(sock().url, "ws://x/ws");
    assert.equal(fallbacks.length, 1);
    assert.match(picker.fallback, /Opening handshake failed/);
    sock().open();
    assert.deepEqual(sock().frames(), [{ type: "Hello", version: 3, kind: "browser", agent: AGENT }]);
    sock().deliver(WELCOME);
    assert.equal(c.state, "connected");
    assert.deepEqual(events.transports, ["websocket"]);
    assert.equal(c.transportKind, "websocket");
    // The next session (after a drop) skips WebTransport: no ticket, no handshake to wait for.
    sock().drop(1006);
    assert.equal(events.closes[0].reconnectInMs, 500, "backoff as before");
    timers.advance(500);
    await settle();
    assert.equal(FakeSocket.all.length, 2);
    assert.equal(FakeWebTransport.all.length, 1);
    assert.equal(tickets.length, 1);
    assert.equal(picker.choice(), "websocket");
  });

  test("auto: a handshake that never completes falls back after WT_CONNECT_TIMEOUT_MS", async () => {
    const { c, wt, sock, timers, picker } = wtConnection();
    c.start();
    await settle();
    timers.advance(WT_CONNECT_TIMEOUT_MS - 1);
    await settle();
    assert.equal(FakeSocket.all.length, 0);
    timers.advance(1);
    await settle();
    assert.notEqual(wt().closedWith, null, "the pending session is abandoned");
    assert.equal(FakeSocket.all.length, 1);
    assert.match(picker.fallback, /no session within/);
    sock().open();
    sock().deliver(WELCOME);
    assert.equal(c.state, "connected");
    // A late 'ready' of the abandoned session changes nothing.
    wt().accept();
    await settle();
    assert.equal(wt().streams, 0);
    assert.equal(c.transportKind, "websocket");
  });

  test("auto: WebSocket when the browser lacks WebTransport or the server does not advertise it", async () => {
    for (const opts of [{ available: false }, { offered: false }]) {
      const { c, picker, events, sock, tickets } = wtConnection(opts);
      assert.equal(picker.choice(), "websocket");
      c.start();
      await settle();
      assert.equal(FakeWebTransport.all.length, 0);
      assert.equal(tickets.length, 0);
      sock().open();
      sock().deliver(WELCOME);
      assert.deepEqual(events.transports, ["websocket"]);
    }
  });

  test("auto: a failed ticket request falls back once; a 404 (not offered) is remembered", async () => {
    let fail = { status: 503, code: "overloaded", message: "busy" };
    const ticket = async () => {
      if (fail) throw Object.assign(new Error(fail.message), fail);
      return { ticket: "ok", url: "https://h:1/wt", cert_hashes: [HASH] };
    };
    const { c, picker, sock, timers } = wtConnection({ ticket });
    c.start();
    await settle();
    assert.equal(FakeWebTransport.all.length, 0);
    assert.equal(FakeSocket.all.length, 1, "this attempt goes on over the WebSocket");
    assert.equal(picker.fallback, null, "not remembered: the QUIC path was never tried");
    assert.equal(picker.choice(), "webtransport");
    sock().drop(1006);
    fail = null;
    timers.advance(500);
    await settle();
    assert.equal(FakeWebTransport.all.length, 1, "WebTransport again on the next attempt");

    const second = wtConnection({ ticket: async () => { throw Object.assign(new Error("WebTransport is not enabled"), { status: 404 }); } });
    second.c.start();
    await settle();
    assert.equal(FakeSocket.all.length, 1);
    assert.match(second.picker.fallback, /not enabled/);
    assert.equal(second.picker.choice(), "websocket");
  });

  test("?transport=wt: no fallback — a failed WebTransport is a failed attempt with the usual backoff", async () => {
    const { c, events, wt, timers, picker } = wtConnection({ mode: "webtransport" });
    c.start();
    await settle();
    wt().refuse();
    await settle();
    assert.equal(FakeSocket.all.length, 0);
    assert.equal(events.closes.length, 1);
    assert.equal(events.closes[0].welcomed, false);
    assert.equal(events.closes[0].reconnectInMs, 500);
    assert.match(events.closes[0].message, /Opening handshake failed/);
    assert.equal(picker.fallback, null);
    timers.advance(500);
    await settle();
    assert.equal(FakeWebTransport.all.length, 2, "retries WebTransport");
    assert.equal(FakeSocket.all.length, 0);

    // Forced, but the browser has none: the attempt fails (and is retried), still no WebSocket.
    const none = wtConnection({ mode: "webtransport", available: false });
    const d = new Connection({
      dial: (h) => new TransportPicker({ mode: "webtransport", webSocket: webSocketDialer({ url: "ws://x/ws", WebSocketImpl: FakeSocket }), webTransport: webTransportDialer({ ticket: async () => ({ ticket: "t", url: "https://h/wt", cert_hashes: [] }), timers: none.timers }) }).dial(h),
      timers: none.timers, random: () => 1, onClose: (i) => none.events.closes.push(i),
    });
    const saved = globalThis.WebTransport;
    delete globalThis.WebTransport;
    try {
      d.start();
      await settle();
    } finally {
      if (saved !== undefined) globalThis.WebTransport = saved;
    }
    assert.equal(none.events.closes.length, 1);
    assert.match(none.events.closes[0].message, /no WebTransport/);
    assert.equal(FakeSocket.all.length, 0);
  });

  test("?transport=ws: the WebSocket even when WebTransport is there", async () => {
    const { c, picker, sock, tickets, events } = wtConnection({ mode: "websocket" });
    assert.equal(picker.choice(), "websocket");
    c.start();
    await settle();
    assert.equal(tickets.length, 0);
    assert.equal(FakeWebTransport.all.length, 0);
    sock().open();
    sock().deliver(WELCOME);
    assert.deepEqual(events.transports, ["websocket"]);
  });

  test("stop() while the ticket is on its way opens nothing", async () => {
    let release;
    const ticket = () => new Promise((res) => {
      release = () => res({ ticket: "late", url: "https://h:1/wt", cert_hashes: [HASH] });
    });
    const { c, events } = wtConnection({ ticket });
    c.start();
    c.stop();
    release();
    await settle();
    assert.equal(FakeWebTransport.all.length, 0);
    assert.equal(FakeSocket.all.length, 0);
    assert.equal(c.state, "disconnected");
    assert.equal(events.closes.length, 1);
    assert.equal(events.closes[0].reason, "normal");
  });
});

// ---- api -------------------------------------------------------------------------------------

describe("api", () => {
  function fakeFetch(routes) {
    const calls = [];
    const f = async (url, init = {}) => {
      calls.push({ url, init });
      const r = routes(url, init);
      return {
        ok: r.status >= 200 && r.status < 300,
        status: r.status,
        statusText: "",
        headers: { get: (k) => (r.headers ?? {})[k] ?? null },
        text: async () => (r.body === undefined ? "" : JSON.stringify(r.body)),
        arrayBuffer: async () => r.bytes.buffer,
      };
    };
    f.calls = calls;
    return f;
  }

  test("JSON calls, error shapes, 204, Retry-After, account() → null when logged out", async () => {
    const fetch = fakeFetch((url, init) => {
      if (url === "/login") return { status: 429, body: { error: "rate_limited", message: "slow down" }, headers: { "Retry-After": "3" } };
      if (url === "/signup") return { status: 409, body: { error: "conflict", message: "taken" } };
      if (url === "/logout") return { status: 204 };
      if (url === "/session") return { status: 200, body: { user: null } };
      if (url.startsWith("/rooms/5/messages")) return { status: 200, body: { messages: [{ seq: 3, author: 1, author_name: "a", time_ms: 9, text: "x" }] } };
      if (url === "/users/ban") return { status: 204 };
      return { status: 500 };
    });
    const api = new Api(fetch);
    await assert.rejects(api.login("a", "b"), (e) => e instanceof ApiError && e.code === "rate_limited" && e.retryAfterMs === 3000 && e.status === 429);
    await assert.rejects(api.signup("a", "b"), (e) => e.code === "conflict" && e.message === "taken");
    assert.equal(await api.logout(), null);
    assert.equal(await api.account(), null);
    const msgs = await api.roomMessages(5, 10n, 20);
    assert.equal(msgs.length, 1);
    assert.equal(fetch.calls.at(-1).url, "/rooms/5/messages?before=10&limit=20");
    await api.roomMessages(5);
    assert.equal(fetch.calls.at(-1).url, "/rooms/5/messages?limit=50");
    await api.ban("eve", "spam");
    assert.deepEqual(JSON.parse(fetch.calls.at(-1).init.body), { username: "eve", reason: "spam" });
    await api.ban("eve", "spam", 60);
    assert.deepEqual(JSON.parse(fetch.calls.at(-1).init.body), { username: "eve", reason: "spam", duration_s: 60 });
    await assert.rejects(api.rooms(), (e) => e.status === 500 && e.code === "http_500");
  });

  test("a banned answer carries the ban's end (until_ms, null for permanent)", async () => {
    let until = 1_800_000_000_000;
    const api = new Api(fakeFetch(() => ({ status: 403, body: { error: "banned", message: "spam", until_ms: until } })));
    await assert.rejects(api.friends(), (e) => e.code === "banned" && e.message === "spam" && e.untilMs === 1_800_000_000_000);
    until = null;
    await assert.rejects(api.friends(), (e) => e.code === "banned" && e.untilMs === null);
    const other = new Api(fakeFetch(() => ({ status: 404, body: { error: "not_found", message: "x" } })));
    await assert.rejects(other.friends(), (e) => e.untilMs === undefined);
    // GET /session answers 200 for a banned session too; account() turns it into the error.
    const session = new Api(fakeFetch(() => ({ status: 200, body: { user: null, banned: { reason: "spam", until_ms: 5 } } })));
    await assert.rejects(session.account(), (e) => e.code === "banned" && e.status === 403 && e.message === "spam" && e.untilMs === 5);
  });

  test("a network failure is an ApiError with status 0", async () => {
    const api = new Api(async () => {
      throw new TypeError("Failed to fetch");
    });
    await assert.rejects(api.friends(), (e) => e instanceof ApiError && e.status === 0 && e.code === "network");
  });
});
