// Tests of gateway/web/codec.js against the byte-exact vectors in protocol/vectors/ and the
// normative PROTOCOL.md, mirroring protocol/tests/vectors.rs and the Rust unit tests.
// Run: cd gateway/web && node --test tests/

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

import * as codec from "../codec.js";
import {
  encodeClient, encodeServer, decodeClientFrames, decodeServerFrames, decodeOne, StreamDecoder,
  PixelUpdates, Geometry, getPixel, setPixel, EncodeError, NO_CURSOR, U64_MAX,
  ClientOp, ServerOp, ClientOpName, ServerOpName, ErrorCode, ErrorCodeName, CloseReason,
  CloseReasonName, CloseCode, CloseCodeReason, ClientKind, Role, ConvKind, PresenceKind, SocialKind, SocialKindName,
  MAX_FRAME_PAYLOAD, MAX_PIXELS_PER_FRAME, MAX_TILE_BYTES, describeDecodeError, decodeErrorCode,
  paletteBytes,
} from "../codec.js";

const PROTOCOL_DIR = new URL("../../../protocol/", import.meta.url);
const SPEC = readFileSync(new URL("PROTOCOL.md", PROTOCOL_DIR), "utf8");

// ---- vector loading and JSON <-> frame conversion --------------------------------------------

function loadVectors(kind) {
  const dir = new URL(`vectors/${kind}/`, PROTOCOL_DIR);
  const names = readdirSync(fileURLToPath(dir)).filter((n) => n.endsWith(".json")).sort();
  assert.ok(names.length > 0, `no vectors in ${kind}`);
  return names.map((n) => {
    const stem = n.slice(0, -5);
    return {
      name: stem,
      desc: JSON.parse(readFileSync(new URL(n, dir), "utf8")),
      bin: new Uint8Array(readFileSync(new URL(`${stem}.bin`, dir))),
    };
  });
}

const VALID = loadVectors("valid");
const INVALID = loadVectors("invalid");

// u64 fields are decimal strings in the vector JSON (PROTOCOL.md section 10).
const U64_FIELDS = new Set([
  "seq", "cursor", "before", "nonce", "value", "prev_seq", "last_seq", "ready_at_ms",
  "server_time_ms", "time_ms",
]);

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
function unhex(s) {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Vector JSON fields -> codec field values (strings -> BigInt for u64, hex -> bytes). */
function fromJson(value, key) {
  if (Array.isArray(value)) return value.map((v) => fromJson(v));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromJson(v, k)]));
  }
  if (typeof value === "string" && U64_FIELDS.has(key)) return BigInt(value);
  if (typeof value === "string" && key === "data") return unhex(value);
  return value;
}

/** Decoded codec values -> vector JSON form, generically (no per-field knowledge). */
function toJson(value) {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof PixelUpdates) return value.toArray().map(toJson);
  if (value instanceof Uint8Array) return hex(value);
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value;
}

function frameFromDesc(desc) {
  return { type: desc.frame, ...fromJson(desc.fields) };
}

function splitFrame(frame) {
  const { type, ...fields } = frame;
  return { type, fields: toJson(fields) };
}

const encodeFor = (direction) => (direction === "client" ? encodeClient : encodeServer);
const decodeFor = (direction) => (direction === "client" ? decodeClientFrames : decodeServerFrames);

// ---- byte helpers for hand-built frames ------------------------------------------------------

function le(value, size) {
  const out = new Uint8Array(size);
  let v = BigInt(value);
  for (let i = 0; i < size; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}
const u16 = (v) => le(v, 2);
const u32 = (v) => le(v, 4);
const u64 = (v) => le(v, 8);
const u8 = (v) => new Uint8Array([v]);
function cat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const frame = (opcode, ...payload) => {
  const body = cat(...payload);
  return cat(u8(opcode), u32(body.length), body);
};
const strBytes = (s) => {
  const b = new TextEncoder().encode(s);
  return cat(u16(b.length), b);
};

// Deterministic PRNG (mulberry32) for the fuzz-style tests.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- the vectors -----------------------------------------------------------------------------

describe("valid vectors", () => {
  for (const { name, desc, bin } of VALID) {
    test(`${name}: encodes byte-exact`, () => {
      const encoded = encodeFor(desc.direction)(frameFromDesc(desc));
      assert.equal(hex(encoded), hex(bin));
    });

    test(`${name}: decodes to its description`, () => {
      const { frames, error } = decodeFor(desc.direction)(bin);
      assert.equal(error, null);
      assert.equal(frames.length, 1);
      const { type, fields } = splitFrame(frames[0]);
      assert.equal(type, desc.frame);
      assert.deepEqual(fields, desc.fields);
    });

    test(`${name}: decodeOne and re-encode are canonical`, () => {
      const out = decodeOne(bin, 0, desc.direction);
      assert.equal(out.len, bin.length);
      assert.equal(hex(encodeFor(desc.direction)(out.frame)), hex(bin));
      // Every strict prefix is incomplete, with the exact number of missing bytes (up to the
      // header, then up to the whole frame).
      for (let n = 0; n < bin.length; n++) {
        const part = decodeOne(bin.subarray(0, n), 0, desc.direction);
        const expected = n < 5 ? 5 - n : bin.length - n;
        assert.deepEqual(part, { incomplete: expected }, `prefix of ${n} bytes`);
      }
    });
  }
});

describe("invalid vectors", () => {
  for (const { name, desc, bin } of INVALID) {
    test(`${name}: ${desc.frames_before_error} frame(s), then ${desc.error.kind}`, () => {
      const { frames, error } = decodeFor(desc.direction)(bin);
      assert.equal(frames.length, desc.frames_before_error);
      assert.deepEqual(error, desc.error);
      assert.equal(typeof describeDecodeError(error), "string");
    });
  }
});

test("vectors use only known directions, frame names and error kinds", () => {
  for (const { name, desc } of VALID) {
    assert.ok(["client", "server"].includes(desc.direction), name);
    const table = desc.direction === "client" ? ClientOp : ServerOp;
    assert.ok(Object.hasOwn(table, desc.frame), `${name}: unknown frame ${desc.frame}`);
  }
  const kinds = ["UnknownOpcode", "FrameTooLarge", "TruncatedMessage", "Truncated", "TrailingBytes", "StringTooLong", "InvalidUtf8", "CountTooLarge", "InvalidValue"];
  for (const { name, desc } of INVALID) assert.ok(kinds.includes(desc.error.kind), name);
});

// ---- PROTOCOL.md cross-checks ----------------------------------------------------------------

function specSection(number) {
  const start = SPEC.indexOf(`\n## ${number}. `);
  assert.ok(start >= 0, `section ${number} missing`);
  const end = SPEC.indexOf("\n## ", start + 1);
  return SPEC.slice(start, end < 0 ? undefined : end);
}

/** `{opcode: name}` from the `### 0xNN Name[, 0xNN Name]` headings of a section. */
function specFrames(number) {
  const out = {};
  for (const line of specSection(number).split("\n")) {
    if (!line.startsWith("### ")) continue;
    for (const m of line.matchAll(/0x([0-9A-Fa-f]{2}) ([A-Za-z]+)/g)) out[parseInt(m[1], 16)] = m[2];
  }
  return out;
}

test("every frame type of PROTOCOL.md has a vector, and the opcode tables match the spec", () => {
  const client = specFrames(4);
  const server = specFrames(5);
  assert.equal(Object.keys(client).length, 12);
  assert.equal(Object.keys(server).length, 15);
  assert.deepEqual({ ...ClientOpName }, client);
  assert.deepEqual({ ...ServerOpName }, server);
  const described = new Set(VALID.map(({ desc }) => `${desc.direction}:${desc.frame}`));
  for (const name of Object.values(client)) assert.ok(described.has(`client:${name}`), `no vector for client frame ${name}`);
  for (const name of Object.values(server)) assert.ok(described.has(`server:${name}`), `no vector for server frame ${name}`);
});

test("limits match PROTOCOL.md section 2", () => {
  let rows = 0;
  for (const m of specSection(2).matchAll(/^\| `(\w+)`(?: \/ `(\w+)`)? \| ([\d ]+?)(?: \/ (\d+))? \|/gm)) {
    assert.equal(codec[m[1]], Number(m[3]), m[1]);
    if (m[2]) assert.equal(codec[m[2]], Number(m[4]), m[2]);
    rows++;
  }
  assert.equal(rows, 14);
  assert.equal(MAX_PIXELS_PER_FRAME, 43684);
  assert.equal(NO_CURSOR, 2n ** 64n - 1n);
  assert.equal(NO_CURSOR, U64_MAX);
  assert.equal(codec.PROTOCOL_VERSION, 3);
  assert.match(SPEC, /^# pixelparty wire protocol, version 3$/m, "the client speaks the version the spec describes");
});

test("enums match PROTOCOL.md section 1.2", () => {
  const tables = { ClientKind, Role, ConvKind, PresenceKind, SocialKind };
  const seen = [];
  for (const m of specSection(1).matchAll(/^\| `(\w+)` \(u8\) \| (.*) \|$/gm)) {
    if (!Object.hasOwn(tables, m[1])) continue;
    const spec = {};
    const cell = m[2].replace(/\([^)]*\)/g, ""); // drop "(conv = room id)" notes
    for (const [, value, name] of cell.matchAll(/(\d+) (\w+)/g)) spec[name] = Number(value);
    assert.deepEqual({ ...tables[m[1]] }, spec, m[1]);
    seen.push(m[1]);
  }
  assert.deepEqual(seen.sort(), Object.keys(tables).sort());
});

test("error codes match PROTOCOL.md section 6", () => {
  const spec = {};
  for (const m of specSection(6).matchAll(/^\| (\d+) \| `(\w+)` \|/gm)) spec[m[2]] = Number(m[1]);
  assert.equal(Object.keys(spec).length, 23);
  assert.deepEqual({ ...ErrorCode }, spec);
  for (const [name, value] of Object.entries(spec)) assert.equal(ErrorCodeName[value], name);
});

test("close reasons and close codes match PROTOCOL.md section 7", () => {
  const reasons = {};
  const codes = {};
  for (const m of specSection(7).matchAll(/^\| (\d+) \| `(\w+)` \| (\d+) \|/gm)) {
    reasons[m[2]] = Number(m[1]);
    codes[m[2]] = Number(m[3]);
  }
  assert.equal(Object.keys(reasons).length, 9);
  assert.deepEqual({ ...CloseReason }, reasons);
  assert.deepEqual({ ...CloseCode }, codes);
  for (const [name, code] of Object.entries(codes)) {
    assert.equal(CloseCodeReason[code], name);
    assert.equal(CloseReasonName[reasons[name]], name);
  }
  assert.equal(codec.WS_CLOSE_UNSUPPORTED_DATA, 1003);
  assert.equal(codec.WS_CLOSE_MESSAGE_TOO_BIG, 1009);
});

// ---- round trips and encoder limits ----------------------------------------------------------

function roundTrip(direction, f) {
  const bytes = encodeFor(direction)(f);
  const { frames, error } = decodeFor(direction)(bytes);
  assert.equal(error, null);
  assert.equal(frames.length, 1);
  assert.deepEqual(toJson(frames[0]), toJson(f));
  assert.equal(hex(encodeFor(direction)(frames[0])), hex(bytes), "re-encoding is canonical");
  return { bytes, frame: frames[0] };
}

function assertEncodeError(fn, kind, field) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof EncodeError, `expected EncodeError, got ${e}`);
    assert.equal(e.kind, kind);
    if (field !== undefined) assert.equal(e.field, field);
    assert.match(e.message, /\S/);
    return true;
  });
}

const welcome = (over = {}) => ({
  type: "Welcome", version: 1, user: 1, role: "user", name: "n", width: 64, height: 64, bpp: 4,
  tile_size: 16, cooldown_ms: 0, ready_at_ms: 0n, server_time_ms: 0n, palette: ["#000000"], ...over,
});

describe("string limits (exactly at the limit encodes, one byte over throws)", () => {
  const cases = [
    ["client", (s) => ({ type: "Hello", version: 1, kind: "bot", agent: s }), 64, "agent"],
    ["client", (s) => ({ type: "SendRoom", req: 1, room: 2, text: s }), 2000, "text"],
    ["client", (s) => ({ type: "SendDirect", req: 1, to: 2, text: s }), 2000, "text"],
    ["server", (s) => ({ type: "Error", req: 1, code: "internal", retry_after_ms: 0, message: s }), 256, "message"],
    ["server", (s) => ({ type: "Closing", reason: "kicked", message: s }), 256, "message"],
    ["server", (s) => welcome({ name: s }), 32, "name"],
    ["server", (s) => ({ type: "RoomMessage", room: 1, seq: 1n, author: 1, time_ms: 1n, author_name: s, text: "x" }), 32, "author_name"],
    ["server", (s) => ({ type: "RoomMessage", room: 1, seq: 1n, author: 1, time_ms: 1n, author_name: "a", text: s }), 2000, "text"],
    ["server", (s) => ({ type: "DirectMessage", from: 1, to: 2, seq: 1n, time_ms: 1n, from_name: s, text: "x" }), 32, "from_name"],
    ["server", (s) => ({ type: "Presence", room: 1, kind: "joined", entries: [{ user: 1, name: s }] }), 32, "entries[0].name"],
    ["server", (s) => ({ type: "HistoryPage", req: 1, kind: "room", conv: 1, entries: [{ seq: 1n, author: 1, time_ms: 1n, author_name: "a", text: s }] }), 2000, "entries[0].text"],
    // Social.name holds a user name or a room name: the room-name limit.
    ["server", (s) => ({ type: "Social", kind: "room_created", id: 7, name: s }), 64, "name"],
  ];
  for (const [direction, build, max, field] of cases) {
    test(`${build("").type}.${field} <= ${max} bytes`, () => {
      roundTrip(direction, build("a".repeat(max)));
      roundTrip(direction, build(""));
      // Multi-byte: limits count UTF-8 bytes, not UTF-16 units.
      roundTrip(direction, build("é".repeat(Math.floor(max / 2))));
      assertEncodeError(() => encodeFor(direction)(build("a".repeat(max + 1))), "StringTooLong", field);
      assertEncodeError(() => encodeFor(direction)(build("a".repeat(max - 1) + "é")), "StringTooLong", field);
    });
  }
});

test("lone surrogates are refused instead of being silently replaced", () => {
  assertEncodeError(() => encodeClient({ type: "SendRoom", req: 1, room: 1, text: "a\ud800b" }), "InvalidValue", "text");
  roundTrip("client", { type: "SendRoom", req: 1, room: 1, text: "ok 👋 \u{10FFFF}" });
});

test("count limits: exactly at the limit encodes, one over throws", () => {
  const tiles = (n) => Array.from({ length: n }, (_, i) => i);
  roundTrip("client", { type: "Subscribe", tiles: tiles(1024).map((t) => ({ tile: t, cursor: NO_CURSOR - BigInt(t) })) });
  assertEncodeError(() => encodeClient({ type: "Subscribe", tiles: tiles(1025).map((t) => ({ tile: t, cursor: 0n })) }), "CountTooLarge", "tiles");
  roundTrip("client", { type: "Unsubscribe", tiles: tiles(1024) });
  assertEncodeError(() => encodeClient({ type: "Unsubscribe", tiles: tiles(1025) }), "CountTooLarge", "tiles");
  roundTrip("server", { type: "Resync", tiles: tiles(1024) });
  assertEncodeError(() => encodeServer({ type: "Resync", tiles: tiles(1025) }), "CountTooLarge", "tiles");

  roundTrip("client", { type: "History", req: 1, kind: "direct", conv: 2, before: U64_MAX, limit: 50 });
  assertEncodeError(() => encodeClient({ type: "History", req: 1, kind: "direct", conv: 2, before: 0n, limit: 51 }), "CountTooLarge", "limit");

  const entry = (i) => ({ seq: BigInt(i), author: i, time_ms: 1700000000000n + BigInt(i), author_name: "n".repeat(32), text: "t".repeat(2000) });
  const full = { type: "HistoryPage", req: 9, kind: "room", conv: 2, entries: Array.from({ length: 50 }, (_, i) => entry(i)) };
  roundTrip("server", full); // the largest page still fits one frame
  assertEncodeError(() => encodeServer({ ...full, entries: Array.from({ length: 51 }, (_, i) => entry(i)) }), "CountTooLarge", "entries");

  const people = (n) => Array.from({ length: n }, (_, i) => ({ user: i, name: "p".repeat(32) }));
  roundTrip("server", { type: "Presence", room: 1, kind: "snapshot", entries: people(512) });
  assertEncodeError(() => encodeServer({ type: "Presence", room: 1, kind: "snapshot", entries: people(513) }), "CountTooLarge", "entries");

  roundTrip("server", { type: "TileData", tile: 3, seq: 7n, data: new Uint8Array(MAX_TILE_BYTES).fill(0xa5) });
  assertEncodeError(() => encodeServer({ type: "TileData", tile: 3, seq: 7n, data: new Uint8Array(MAX_TILE_BYTES + 1) }), "CountTooLarge", "data");

  const updates = (n) => Array.from({ length: n }, (_, i) => ({ offset: i & 0xffff, colour: i & 0xff }));
  const { bytes } = roundTrip("server", { type: "Pixels", tile: 0, prev_seq: 0n, last_seq: 1n, updates: updates(MAX_PIXELS_PER_FRAME) });
  assert.equal(bytes.length, 5 + MAX_FRAME_PAYLOAD, "a full Pixels frame is exactly the largest frame");
  assertEncodeError(() => encodeServer({ type: "Pixels", tile: 0, prev_seq: 0n, last_seq: 1n, updates: updates(MAX_PIXELS_PER_FRAME + 1) }), "CountTooLarge", "updates");
});

test("Welcome: palette, bpp and tile_size limits", () => {
  for (const bpp of [1, 2, 4, 8]) {
    const palette = Array.from({ length: 1 << bpp }, (_, i) => "#" + ((i * 0x010203) & 0xffffff).toString(16).padStart(6, "0").toUpperCase());
    roundTrip("server", welcome({ bpp, palette }));
    assertEncodeError(() => encodeServer(welcome({ bpp, palette: [...palette, "#FFFFFF"] })), "CountTooLarge", "palette");
  }
  roundTrip("server", welcome({ palette: [] }));
  for (const bpp of [0, 3, 5, 16]) assertEncodeError(() => encodeServer(welcome({ bpp })), "InvalidValue", "bpp");
  for (const tile_size of [8, 16, 32, 64, 128, 256]) roundTrip("server", welcome({ tile_size }));
  for (const tile_size of [0, 4, 12, 100, 512]) assertEncodeError(() => encodeServer(welcome({ tile_size })), "InvalidValue", "tile_size");
  assertEncodeError(() => encodeServer(welcome({ palette: ["#12345"] })), "InvalidValue", "palette[0]");
  assertEncodeError(() => encodeServer(welcome({ palette: [[1, 2, 3]] })), "InvalidValue", "palette[0]");
  // Lower-case input is accepted; decoding gives the canonical upper case.
  const { frames } = decodeServerFrames(encodeServer(welcome({ palette: ["#abcdef"] })));
  assert.deepEqual(frames[0].palette, ["#ABCDEF"]);
  assert.deepEqual(Array.from(paletteBytes(["#FF8000", "#000001"])), [255, 128, 0, 0, 0, 1]);
});

test("encoders refuse wrongly typed or out-of-range fields", () => {
  assert.throws(() => encodeClient({ type: "Ping", nonce: 5 }), TypeError, "u64 must be BigInt");
  assertEncodeError(() => encodeClient({ type: "Ping", nonce: 2n ** 64n }), "InvalidValue", "nonce");
  assertEncodeError(() => encodeClient({ type: "Ping", nonce: -1n }), "InvalidValue", "nonce");
  assertEncodeError(() => encodeClient({ type: "Paint", req: 2 ** 32, x: 0, y: 0, colour: 0 }), "InvalidValue", "req");
  assertEncodeError(() => encodeClient({ type: "Paint", req: 1, x: 65536, y: 0, colour: 0 }), "InvalidValue", "x");
  assertEncodeError(() => encodeClient({ type: "Paint", req: 1, x: 0, y: -1, colour: 0 }), "InvalidValue", "y");
  assertEncodeError(() => encodeClient({ type: "Paint", req: 1, x: 0, y: 0, colour: 256 }), "InvalidValue", "colour");
  assert.throws(() => encodeClient({ type: "Paint", req: 1, x: 0.5, y: 0, colour: 0 }), TypeError);
  assert.throws(() => encodeClient({ type: "Paint", req: 1, x: 0, y: 0 }), TypeError);
  assertEncodeError(() => encodeClient({ type: "Hello", version: 1, kind: "robot", agent: "" }), "InvalidValue", "kind");
  assertEncodeError(() => encodeClient({ type: "Hello", version: 1, kind: "toString", agent: "" }), "InvalidValue", "kind");
  assertEncodeError(() => encodeServer({ type: "Error", req: 0, code: "nope", retry_after_ms: 0, message: "" }), "InvalidValue", "code");
  assertEncodeError(() => encodeServer({ type: "Closing", reason: "bye", message: "" }), "InvalidValue", "reason");
  assertEncodeError(() => encodeServer({ type: "Presence", room: 1, kind: "room", entries: [] }), "InvalidValue", "kind");
  assertEncodeError(() => encodeServer({ type: "Social", kind: "poked", id: 1, name: "" }), "InvalidValue", "kind");
  assertEncodeError(() => encodeServer({ type: "Social", kind: "online", id: 2 ** 32, name: "" }), "InvalidValue", "id");
  assertEncodeError(() => encodeServer(welcome({ role: "guest" })), "InvalidValue", "role");
  assertEncodeError(() => encodeServer({ type: "Pixels", tile: 0, prev_seq: 0n, last_seq: 0n, updates: [{ offset: 65536, colour: 0 }] }), "InvalidValue", "updates[0].offset");
  assert.throws(() => encodeServer({ type: "TileData", tile: 0, seq: 0n, data: [1, 2] }), TypeError);
  assert.throws(() => encodeClient({ type: "Welcome" }), TypeError, "server frame in the client encoder");
  assert.throws(() => encodeServer({ type: "Paint" }), TypeError, "client frame in the server encoder");
  assert.throws(() => encodeClient({ type: "constructor" }), TypeError);
  assert.throws(() => encodeClient(null), TypeError);
});

test("hand-built frames of every kind round-trip", () => {
  const client = [
    { type: "Hello", version: 65535, kind: "bench", agent: "bench/1 ☃" },
    { type: "Subscribe", tiles: [{ tile: 0xffffffff, cursor: 0n }] },
    { type: "Unsubscribe", tiles: [] },
    { type: "Paint", req: 0xffffffff, x: 65535, y: 0, colour: 255 },
    { type: "JoinRoom", req: 0, room: 0xffffffff },
    { type: "LeaveRoom", req: 1, room: 1 },
    { type: "Who", req: 1, room: 1 },
    { type: "SendRoom", req: 1, room: 1, text: "\ufeffleading BOM is kept" },
    { type: "SendDirect", req: 1, to: 1, text: "" },
    { type: "Delete", req: 1, kind: "direct", conv: 1, seq: U64_MAX },
    { type: "History", req: 1, kind: "room", conv: 1, before: 1n, limit: 0 },
    { type: "Ping", nonce: 0n },
  ];
  const server = [
    welcome({ role: "admin", ready_at_ms: U64_MAX, server_time_ms: 1n }),
    { type: "Ack", req: 7, value: 0n },
    { type: "Error", req: 0, code: "too_many_subscriptions", retry_after_ms: 0xffffffff, message: "x" },
    { type: "Pixels", tile: 1, prev_seq: 5n, last_seq: 5n, updates: [] },
    { type: "TileData", tile: 1, seq: 0n, data: new Uint8Array(0) },
    { type: "Resync", tiles: [7] },
    { type: "RoomMessage", room: 1, seq: 1n, author: 2, time_ms: 3n, author_name: "", text: "" },
    { type: "DirectMessage", from: 1, to: 2, seq: 3n, time_ms: 4n, from_name: "ü", text: "日本語" },
    { type: "Deleted", kind: "direct", conv: 9, seq: 1n },
    { type: "HistoryPage", req: 0, kind: "direct", conv: 9, entries: [] },
    { type: "Presence", room: 2, kind: "joined", entries: [{ user: 5, name: "x" }] },
    { type: "Cooldown", ready_at_ms: 1n, cooldown_ms: 0 },
    { type: "Pong", nonce: U64_MAX, server_time_ms: 0n },
    { type: "Closing", reason: "session_revoked", message: "" },
    welcome({ version: 3, user: 0, role: "visitor", name: "" }),
    ...Object.keys(SocialKind).map((kind, i) => ({ type: "Social", kind, id: 0xffffffff - i, name: i % 2 ? "" : `n${i} ☃` })),
  ];
  for (const f of client) roundTrip("client", f);
  for (const f of server) roundTrip("server", f);
  // A transport message with every frame back to back.
  const message = cat(...server.map(encodeServer));
  const { frames, error } = decodeServerFrames(message);
  assert.equal(error, null);
  assert.deepEqual(frames.map(toJson), server.map(toJson));
});

test("a Pixels frame with 1000 updates: view accessors, plain arrays and applyTo", () => {
  const r = rng(1000);
  const updates = Array.from({ length: 1000 }, () => ({ offset: Math.floor(r() * 65536), colour: Math.floor(r() * 16) }));
  const f = { type: "Pixels", tile: 42, prev_seq: 1000n, last_seq: 2999n, updates };
  const bytes = encodeServer(f);
  assert.equal(bytes.length, 25 + 3 * 1000);
  const { frames, error } = decodeServerFrames(bytes);
  assert.equal(error, null);
  const p = frames[0];
  assert.ok(p.updates instanceof PixelUpdates);
  assert.equal(p.updates.count, 1000);
  assert.equal(p.updates.length, 1000);
  assert.equal(p.updates.raw().buffer, bytes.buffer, "updates are read in place, not copied");
  for (let i = 0; i < 1000; i++) {
    assert.equal(p.updates.offset(i), updates[i].offset);
    assert.equal(p.updates.colour(i), updates[i].colour);
  }
  let seen = 0;
  p.updates.forEach((offset, colour, i) => {
    assert.equal(offset, updates[i].offset);
    assert.equal(colour, updates[i].colour);
    seen++;
  });
  assert.equal(seen, 1000);
  assert.deepEqual(p.updates.toArray(), updates);
  assert.deepEqual([...p.updates], updates);
  // applyTo: later entries for the same offset win.
  const tile = new Uint8Array((256 * 256 * 4) / 8);
  p.updates.applyTo(tile, 4);
  const expected = new Map(updates.map((u) => [u.offset, u.colour]));
  for (const [offset, colour] of expected) assert.equal(getPixel(tile, 4, offset), colour);
  // A decoded view re-encodes without conversion.
  assert.equal(hex(encodeServer(p)), hex(bytes));
});

// ---- decoder limits on hand-built bytes ------------------------------------------------------

describe("decoder checks", () => {
  const dc = (b) => decodeClientFrames(b);
  const ds = (b) => decodeServerFrames(b);

  test("the frame length is checked from the 5-byte header alone", () => {
    assert.deepEqual(dc(cat(u8(0x0c), u32(MAX_FRAME_PAYLOAD + 1))).error, { kind: "FrameTooLarge", len: MAX_FRAME_PAYLOAD + 1, max: MAX_FRAME_PAYLOAD });
    assert.deepEqual(decodeOne(cat(u8(0x7f), u32(0xffffffff)), 0, "server"), { error: { kind: "FrameTooLarge", len: 0xffffffff, max: MAX_FRAME_PAYLOAD } });
    // At the limit it is merely incomplete (and an unknown opcode waits for its payload too).
    assert.deepEqual(decodeOne(cat(u8(0x7f), u32(MAX_FRAME_PAYLOAD)), 0, "client"), { incomplete: MAX_FRAME_PAYLOAD });
    assert.deepEqual(dc(cat(u8(0x7f), u32(3), u8(0))).error, { kind: "TruncatedMessage", needed: 2 });
  });

  test("opcodes of the other direction are unknown", () => {
    assert.deepEqual(dc(frame(0x81)).error, { kind: "UnknownOpcode", opcode: 0x81 });
    assert.deepEqual(ds(frame(0x01)).error, { kind: "UnknownOpcode", opcode: 0x01 });
    assert.deepEqual(dc(frame(0x00)).error, { kind: "UnknownOpcode", opcode: 0 });
    assert.deepEqual(dc(frame(0x8f)).error, { kind: "UnknownOpcode", opcode: 0x8f });
    assert.deepEqual(ds(frame(0x90)).error, { kind: "UnknownOpcode", opcode: 0x90 });
  });

  test("truncated fields and trailing bytes", () => {
    assert.deepEqual(dc(frame(0x0c, u32(0))).error, { kind: "Truncated", opcode: 0x0c });
    assert.deepEqual(dc(frame(0x04, u32(1), u16(2), u16(3), u8(4), u8(0), u8(0))).error, { kind: "TrailingBytes", opcode: 4, extra: 2 });
    assert.deepEqual(dc(frame(0x02, u16(2), u32(1), u64(2))).error, { kind: "Truncated", opcode: 2 });
    assert.deepEqual(dc(frame(0x03, u16(1), u32(1), u8(9))).error, { kind: "TrailingBytes", opcode: 3, extra: 1 });
    assert.deepEqual(ds(frame(0x84, u32(1), u64(2), u8(0))).error, { kind: "Truncated", opcode: 0x84 });
    assert.deepEqual(ds(frame(0x84, u32(1), u64(2), u64(3), u16(1))).error, { kind: "Truncated", opcode: 0x84 }, "ragged updates");
    assert.deepEqual(ds(frame(0x85, u32(1), u64(2), u32(4), u8(1), u8(2), u8(3))).error, { kind: "Truncated", opcode: 0x85 });
    assert.deepEqual(ds(frame(0x85, u32(1), u64(2), u32(1), u8(1), u8(2))).error, { kind: "TrailingBytes", opcode: 0x85, extra: 1 });
    assert.deepEqual(ds(frame(0x8a, u32(1), u8(0), u32(2), u16(1), u64(1))).error, { kind: "Truncated", opcode: 0x8a });
  });

  test("strings: the limit is checked before the bytes, then UTF-8 strictly", () => {
    // Declared 33 bytes for a 32-byte name, and no bytes present: StringTooLong, not Truncated.
    assert.deepEqual(ds(frame(0x8b, u32(1), u8(0), u16(1), u32(5), u16(33))).error, { kind: "StringTooLong", len: 33, max: 32 });
    assert.deepEqual(dc(frame(0x07, u32(1), u32(1), u16(2001))).error, { kind: "StringTooLong", len: 2001, max: 2000 });
    assert.deepEqual(ds(frame(0x8e, u8(0), u16(257))).error, { kind: "StringTooLong", len: 257, max: 256 });
    assert.deepEqual(dc(frame(0x07, u32(1), u32(1), u16(3), u8(0x61))).error, { kind: "Truncated", opcode: 7 });
    const bad = [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80]];
    for (const b of bad) {
      assert.deepEqual(dc(frame(0x07, u32(1), u32(1), u16(b.length), new Uint8Array(b))).error, { kind: "InvalidUtf8" }, hex(b));
    }
    // A leading BOM is content, not stripped (decoding stays canonical).
    const bom = frame(0x07, u32(1), u32(1), strBytes("\ufeffhi"));
    assert.equal(dc(bom).frames[0].text, "\ufeffhi");
    assert.equal(hex(encodeClient(dc(bom).frames[0])), hex(bom));
  });

  test("counts and enum values", () => {
    assert.deepEqual(dc(frame(0x03, u16(1025))).error, { kind: "CountTooLarge", count: 1025, max: 1024 });
    assert.deepEqual(ds(frame(0x86, u16(1025))).error, { kind: "CountTooLarge", count: 1025, max: 1024 });
    assert.deepEqual(dc(frame(0x0a, u32(1), u8(0), u32(1), u64(0), u16(51))).error, { kind: "CountTooLarge", count: 51, max: 50 });
    assert.deepEqual(ds(frame(0x8a, u32(1), u8(0), u32(2), u16(51))).error, { kind: "CountTooLarge", count: 51, max: 50 });
    assert.deepEqual(ds(frame(0x8b, u32(1), u8(0), u16(513))).error, { kind: "CountTooLarge", count: 513, max: 512 });
    assert.deepEqual(ds(frame(0x85, u32(1), u64(2), u32(65537))).error, { kind: "CountTooLarge", count: 65537, max: 65536 });
    assert.deepEqual(dc(frame(0x09, u32(1), u8(2), u32(1), u64(1))).error, { kind: "InvalidValue", opcode: 9, field: "kind" });
    assert.deepEqual(dc(frame(0x0a, u32(1), u8(2), u32(1), u64(1), u16(1))).error, { kind: "InvalidValue", opcode: 10, field: "kind" });
    assert.deepEqual(ds(frame(0x83, u32(1), u16(6), u32(0), u16(0))).error, { kind: "InvalidValue", opcode: 0x83, field: "code" });
    assert.deepEqual(ds(frame(0x83, u32(1), u16(0), u32(0), u16(0))).error, { kind: "InvalidValue", opcode: 0x83, field: "code" });
    assert.deepEqual(ds(frame(0x89, u8(9), u32(1), u64(1))).error, { kind: "InvalidValue", opcode: 0x89, field: "kind" });
    assert.deepEqual(ds(frame(0x8a, u32(1), u8(2), u32(1), u16(0))).error, { kind: "InvalidValue", opcode: 0x8a, field: "kind" });
    assert.deepEqual(ds(frame(0x8b, u32(1), u8(3), u16(0))).error, { kind: "InvalidValue", opcode: 0x8b, field: "kind" });
    assert.deepEqual(ds(frame(0x8e, u8(9), u16(0))).error, { kind: "InvalidValue", opcode: 0x8e, field: "reason" });
  });

  test("Social: every kind of PROTOCOL.md section 5 decodes, the next value does not; name is str(64)", () => {
    for (const [name, value] of Object.entries(SocialKind)) {
      const { frames, error } = ds(frame(0x8f, u8(value), u32(9), strBytes("bo")));
      assert.equal(error, null, name);
      assert.deepEqual(frames[0], { type: "Social", kind: name, id: 9, name: "bo" });
      assert.equal(SocialKindName[value], name);
    }
    // The kind table of section 5 lists the same names under the same numbers.
    const section5 = specSection(5);
    const kinds = {};
    for (const m of section5.slice(section5.indexOf("### 0x8F Social")).matchAll(/^\| (\d+) `(\w+)` \|/gm)) kinds[m[2]] = Number(m[1]);
    assert.deepEqual(kinds, { ...SocialKind });
    assert.deepEqual(ds(frame(0x8f, u8(9), u32(1), u16(0))).error, { kind: "InvalidValue", opcode: 0x8f, field: "kind" });
    assert.deepEqual(ds(frame(0x8f, u8(0), u32(1), u16(65))).error, { kind: "StringTooLong", len: 65, max: 64 });
    assert.deepEqual(ds(frame(0x8f, u8(0), u32(1))).error, { kind: "Truncated", opcode: 0x8f });
    assert.deepEqual(ds(frame(0x8f, u8(6), u32(1), u16(0), u8(0))).error, { kind: "TrailingBytes", opcode: 0x8f, extra: 1 });
  });

  test("Welcome: role, bpp, tile_size and palette size", () => {
    const w = ({ role = 0, bpp = 4, ts = 16, colours = 0 } = {}) =>
      frame(0x81, u16(1), u32(1), u8(role), u32(64), u32(64), u8(bpp), u16(ts), u32(0), u64(0), u64(0), strBytes("a"), u16(colours), new Uint8Array(3 * colours));
    assert.equal(ds(w()).error, null);
    assert.equal(ds(w({ role: 2 })).frames[0].role, "visitor", "version 3: a logged-out visitor");
    assert.deepEqual(ds(w({ role: 3 })).error, { kind: "InvalidValue", opcode: 0x81, field: "role" });
    for (const bpp of [0, 3, 5, 7, 9, 255]) assert.deepEqual(ds(w({ bpp })).error, { kind: "InvalidValue", opcode: 0x81, field: "bpp" });
    for (const ts of [0, 1, 4, 24, 512, 65535]) assert.deepEqual(ds(w({ ts })).error, { kind: "InvalidValue", opcode: 0x81, field: "tile_size" });
    for (const bpp of [1, 2, 4, 8]) {
      assert.equal(ds(w({ bpp, colours: 1 << bpp })).error, null);
      assert.deepEqual(ds(w({ bpp, colours: (1 << bpp) + 1 })).error, { kind: "CountTooLarge", count: (1 << bpp) + 1, max: 1 << bpp });
    }
  });

  test("decoding stops at the first error and keeps the frames before it", () => {
    const ping = encodeClient({ type: "Ping", nonce: 1n });
    const message = cat(ping, ping, frame(0x7f), ping);
    const { frames, error } = dc(message);
    assert.equal(frames.length, 2);
    assert.deepEqual(error, { kind: "UnknownOpcode", opcode: 0x7f });
    assert.deepEqual(dc(new Uint8Array(0)), { frames: [], error: null });
    // ArrayBuffer and other views are accepted too.
    assert.equal(dc(message.slice(0, 26).buffer).frames.length, 2);
    assert.equal(dc(new DataView(message.buffer, 13, 13)).frames.length, 1);
  });

  test("error helpers", () => {
    assert.equal(describeDecodeError({ kind: "UnknownOpcode", opcode: 127 }), "unknown opcode 0x7f");
    assert.equal(decodeErrorCode({ kind: "UnknownOpcode", opcode: 127 }), "unknown_opcode");
    assert.equal(decodeErrorCode({ kind: "FrameTooLarge", len: 1, max: 0 }), "frame_too_large");
    assert.equal(decodeErrorCode({ kind: "InvalidUtf8" }), "malformed");
    assert.equal(decodeErrorCode({ kind: "TruncatedMessage", needed: 1 }), "malformed");
  });
});

// ---- streaming -------------------------------------------------------------------------------

describe("streaming", () => {
  const server = VALID.filter((v) => v.desc.direction === "server");
  const stream = cat(...server.map((v) => v.bin));

  test("decodeOne walks a buffer frame by frame", () => {
    let offset = 0;
    let count = 0;
    while (offset < stream.length) {
      const out = decodeOne(stream, offset, "server");
      assert.ok(out.frame, `frame at ${offset}`);
      assert.equal(out.frame.type, server[count].desc.frame);
      offset += out.len;
      count++;
    }
    assert.equal(count, server.length);
    assert.deepEqual(decodeOne(stream, stream.length, "server"), { incomplete: 5 });
    assert.throws(() => decodeOne(stream, 0, "sideways"), TypeError);
    assert.throws(() => decodeOne(stream, stream.length + 1, "server"), RangeError);
  });

  for (const size of [1, 2, 5, 7, 64, 1000]) {
    test(`StreamDecoder reassembles frames from ${size}-byte chunks`, () => {
      const d = new StreamDecoder("server");
      const frames = [];
      for (let at = 0; at < stream.length; at += size) {
        // Copy each chunk: the decoder must not depend on chunk identity.
        const out = d.push(stream.slice(at, at + size));
        assert.equal(out.error, null);
        frames.push(...out.frames);
      }
      assert.equal(d.buffered, 0);
      assert.deepEqual(frames.map(toJson), server.map((v) => toJson(frameFromDesc(v.desc))));
    });
  }

  test("StreamDecoder: random chunking, views stay valid, errors are sticky", () => {
    const r = rng(7);
    const d = new StreamDecoder("server");
    const frames = [];
    for (let at = 0; at < stream.length;) {
      const n = 1 + Math.floor(r() * 40);
      frames.push(...d.push(stream.slice(at, at + n)).frames);
      at += n;
    }
    // Earlier frames' zero-copy views were not overwritten by later pushes.
    assert.deepEqual(frames.map(toJson), server.map((v) => toJson(frameFromDesc(v.desc))));

    const c = new StreamDecoder("client");
    assert.deepEqual(c.push(cat(u8(0x0c), u32(8))), { frames: [], error: null });
    assert.equal(c.buffered, 5);
    const bad = c.push(cat(u64(1), frame(0x99)));
    assert.equal(bad.frames.length, 1);
    assert.deepEqual(bad.error, { kind: "UnknownOpcode", opcode: 0x99 });
    assert.deepEqual(c.push(encodeClient({ type: "Ping", nonce: 0n })), { frames: [], error: bad.error });
    const big = new StreamDecoder("client");
    assert.deepEqual(big.push(cat(u8(0x01), u32(MAX_FRAME_PAYLOAD + 1))).error, { kind: "FrameTooLarge", len: MAX_FRAME_PAYLOAD + 1, max: MAX_FRAME_PAYLOAD });
  });
});

// ---- fuzz-style properties (mirrors the Rust fuzz targets) -----------------------------------

test("mutated vectors never throw, and whatever decodes re-encodes to the same bytes", () => {
  const r = rng(42);
  let decoded = 0;
  for (const { desc, bin } of VALID) {
    const decode = decodeFor(desc.direction);
    const encode = encodeFor(desc.direction);
    for (let round = 0; round < 300; round++) {
      let bytes = bin.slice();
      const edits = 1 + Math.floor(r() * 3);
      for (let e = 0; e < edits; e++) {
        const what = r();
        if (what < 0.6 && bytes.length > 0) bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256);
        else if (what < 0.8) bytes = bytes.slice(0, Math.floor(r() * (bytes.length + 1)));
        else bytes = cat(bytes, Uint8Array.from({ length: 1 + Math.floor(r() * 4) }, () => Math.floor(r() * 256)));
      }
      const { frames, error } = decode(bytes);
      let offset = 0;
      for (const f of frames) {
        const again = encode(f);
        assert.equal(hex(again), hex(bytes.subarray(offset, offset + again.length)));
        offset += again.length;
        decoded++;
      }
      if (error === null) assert.equal(offset, bytes.length);
      else assert.equal(typeof describeDecodeError(error), "string");
    }
  }
  assert.ok(decoded > 100, `only ${decoded} mutated frames decoded`);
});

test("random bytes never throw", () => {
  const r = rng(99);
  for (let round = 0; round < 2000; round++) {
    const n = Math.floor(r() * 64);
    const bytes = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
    if (n >= 5) {
      bytes[0] = [0x01, 0x02, 0x07, 0x0a, 0x81, 0x84, 0x8a, 0x8b, 0x8f][Math.floor(r() * 9)];
      bytes.set(u32(Math.floor(r() * (n - 4))), 1);
    }
    for (const decode of [decodeClientFrames, decodeServerFrames]) {
      const out = decode(bytes);
      assert.ok(Array.isArray(out.frames));
    }
  }
});

// ---- canvas geometry and packing (canvas.rs tests) -------------------------------------------

describe("canvas", () => {
  test("locate and back", () => {
    const g = new Geometry(1000, 1000, 4, 256);
    assert.equal(g.tilesX, 4);
    assert.equal(g.tilesY, 4);
    assert.equal(g.tileCount, 16);
    assert.equal(g.tileBytes, 32 * 1024);
    assert.equal(g.locate(300, 1025), null, "y beyond height");
    const loc = g.locate(300, 999);
    assert.equal(loc.tile, 3 * 4 + 1);
    assert.equal(loc.offset, (999 % 256) * 256 + (300 % 256));
    assert.deepEqual(g.coordinates(loc.tile, loc.offset), { x: 300, y: 999 });
    assert.equal(g.locate(1000, 0), null);
    assert.equal(g.locate(-1, 0), null);
  });

  test("every pixel of an odd-sized canvas maps to a distinct (tile, offset) and back", () => {
    const g = new Geometry(37, 21, 2, 8);
    assert.equal(g.tilesX, 5);
    assert.equal(g.tilesY, 3);
    assert.equal(g.tileBytes, 16);
    const seen = new Set();
    for (let y = 0; y < g.height; y++) {
      for (let x = 0; x < g.width; x++) {
        const { tile, offset } = g.locate(x, y);
        assert.ok(tile < g.tileCount && offset < g.tilePixels);
        assert.deepEqual(g.coordinates(tile, offset), { x, y });
        seen.add(tile * g.tilePixels + offset);
      }
    }
    assert.equal(seen.size, 37 * 21);
  });

  test("geometry from the Welcome vector", () => {
    const v = VALID.find((x) => x.name === "server_welcome");
    const g = Geometry.fromWelcome(decodeServerFrames(v.bin).frames[0]);
    assert.equal(g.tileCount, 16);
    assert.equal(g.colours, 16);
  });

  test("packing round-trips at every depth", () => {
    for (const bpp of [1, 2, 4, 8]) {
      const g = new Geometry(64, 64, bpp, 16);
      const tile = new Uint8Array(g.tileBytes);
      for (let o = 0; o < g.tilePixels; o++) setPixel(tile, bpp, o, (o * 7) & 0xff);
      for (let o = 0; o < g.tilePixels; o++) assert.equal(getPixel(tile, bpp, o), ((o * 7) & 0xff) & ((1 << bpp) - 1));
      // Out-of-range offsets read 0 and are not written.
      assert.equal(getPixel(tile, bpp, g.tilePixels), 0);
      const before = tile.slice();
      setPixel(tile, bpp, g.tilePixels, 1);
      assert.deepEqual(tile, before);
    }
  });

  test("4 bpp: even offsets are the low nibble; LSB first at every depth", () => {
    const t = new Uint8Array(1);
    setPixel(t, 4, 0, 0xa);
    setPixel(t, 4, 1, 0x5);
    assert.equal(t[0], 0x5a);
    const one = new Uint8Array(1);
    setPixel(one, 1, 0, 1);
    setPixel(one, 1, 7, 1);
    assert.equal(one[0], 0b1000_0001);
    const two = new Uint8Array(1);
    setPixel(two, 2, 1, 3);
    assert.equal(two[0], 0b0000_1100);
    setPixel(two, 2, 1, 0x1f); // bits above the depth are ignored
    assert.equal(two[0], 0b0000_1100);
  });

  test("TileData vector unpacks as PROTOCOL.md says (4 bpp, low nibble first)", () => {
    const v = VALID.find((x) => x.name === "server_tile_data");
    const data = decodeServerFrames(v.bin).frames[0].data;
    assert.equal(getPixel(data, 4, 0), 0x1);
    assert.equal(getPixel(data, 4, 1), 0x0);
    assert.equal(getPixel(data, 4, 2), 0x3);
    assert.equal(getPixel(data, 8, 1), 0x23);
  });

  test("rejects bad geometry", () => {
    assert.throws(() => new Geometry(10, 10, 3, 16), RangeError);
    assert.throws(() => new Geometry(10, 10, 4, 100), RangeError);
    assert.throws(() => new Geometry(0, 10, 4, 16), RangeError);
    assert.throws(() => new Geometry(65536, 10, 4, 16), RangeError);
    assert.doesNotThrow(() => new Geometry(65535, 65535, 8, 256));
  });
});
