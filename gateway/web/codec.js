// pixelparty wire protocol, version 3 — the browser-side codec.
//
// This file owns the browser's encoding and decoding of frames (both directions), the
// protocol's constants, enum tables and canvas geometry / pixel-packing helpers. It mirrors
// the Rust crate `protocol/src` (`client.rs`, `server.rs`, `codec.rs`, `error.rs`,
// `types.rs`, `canvas.rs`, `limits.rs`) check for check; the normative specification is
// `protocol/PROTOCOL.md`, and both codecs are tested against the byte-exact vectors in
// `protocol/vectors/` (see `tests/codec.test.mjs`). Plain ES module, no build step, no
// dependencies.
//
// Frame objects
// -------------
// A frame is a plain object `{type, ...fields}`: `type` is the frame name of PROTOCOL.md
// ("Paint", "Welcome", ...) and the fields are named exactly as in the vector JSON files.
//   - u8/u16/u32 fields are Numbers; u64 fields (seq, cursor, before, nonce, value, prev_seq,
//     last_seq, ready_at_ms, server_time_ms, time_ms) are BigInts, on input and output.
//   - Enums are their PROTOCOL.md names: kind "browser" / "room" / "snapshot", role "user",
//     Error.code "cooldown", Closing.reason "banned", Social.kind "friend_request".
//   - Strings are JS strings (UTF-8 on the wire; limits count UTF-8 bytes).
//   - Welcome.palette is an array of "#RRGGBB" strings (decoded as upper-case hex, encoded
//     from either case) — directly usable as CSS colours; `paletteBytes()` turns it into
//     packed RGB bytes for ImageData work.
//   - TileData.data is a Uint8Array.
//   - Pixels.updates is a `PixelUpdates` view (see below); the encoder also takes a plain
//     array of `{offset, colour}`.
//   - Subscribe.tiles is an array of `{tile, cursor}`; Unsubscribe.tiles / Resync.tiles are
//     arrays of tile ids; HistoryPage.entries / Presence.entries are arrays of objects.
//
// Zero copy: decoded `TileData.data` and `Pixels.updates` are views into the bytes given to
// the decoder (no copy). A WebSocket message's ArrayBuffer is never reused, so this is safe
// there; `StreamDecoder` never writes into a buffer it has handed out either. Copy them
// (`data.slice()`, `updates.toArray()`) if you mutate or reuse the input buffer.
//
// Errors
// ------
// Decoding never throws on bad input: it returns error objects shaped exactly like the Rust
// `DecodeError` in the vectors, e.g. `{kind: "UnknownOpcode", opcode: 127}`,
// `{kind: "FrameTooLarge", len, max}`, `{kind: "TruncatedMessage", needed}`,
// `{kind: "Truncated", opcode}`, `{kind: "TrailingBytes", opcode, extra}`,
// `{kind: "StringTooLong", len, max}`, `{kind: "InvalidUtf8"}`,
// `{kind: "CountTooLarge", count, max}`, `{kind: "InvalidValue", opcode, field}`.
// Encoding throws an `EncodeError` (or a TypeError for a wrongly typed field) instead of
// producing bytes a peer would refuse.

// ---- limits (PROTOCOL.md section 2, protocol/src/limits.rs) --------------------------------

/** The version this client speaks (PROTOCOL.md section 9): 3 adds visitor sessions and `Social`. */
export const PROTOCOL_VERSION = 3;
export const FRAME_HEADER_LEN = 5;
export const MAX_FRAME_PAYLOAD = 131072;
export const MAX_TRANSPORT_MESSAGE = 262144;
export const MAX_NAME_BYTES = 32;
export const MAX_ROOM_NAME_BYTES = 64;
export const MAX_TEXT_BYTES = 2000;
export const MAX_REASON_BYTES = 256;
export const MAX_AGENT_BYTES = 64;
export const MAX_TILES_PER_FRAME = 1024;
export const MAX_HISTORY_PAGE = 50;
export const MAX_PRESENCE_ENTRIES = 512;
export const PIXEL_UPDATE_LEN = 3;
export const PIXELS_HEAD_LEN = 20;
export const MAX_PIXELS_PER_FRAME = (MAX_FRAME_PAYLOAD - PIXELS_HEAD_LEN) / PIXEL_UPDATE_LEN; // 43684
export const MAX_TILE_SIZE = 256;
export const MIN_TILE_SIZE = 8;
export const MAX_TILE_BYTES = MAX_TILE_SIZE * MAX_TILE_SIZE; // 65536
export const MAX_PALETTE = 256;
export const MAX_CANVAS_EDGE = 65535; // canvas.rs: pixel coordinates are u16 on the wire
export const STRING_PREFIX_LEN = 2;
/** Largest u64. */
export const U64_MAX = 2n ** 64n - 1n;
/** Subscribe cursor meaning "I hold nothing for this tile". */
export const NO_CURSOR = 2n ** 64n - 1n;

/** WebSocket close code for a text message (unsupported data). */
export const WS_CLOSE_UNSUPPORTED_DATA = 1003;
/** WebSocket close code for a message over MAX_TRANSPORT_MESSAGE. */
export const WS_CLOSE_MESSAGE_TOO_BIG = 1009;

// ---- opcodes (PROTOCOL.md sections 4 and 5) --------------------------------------------------

/** Client → server opcodes, by frame name. */
export const ClientOp = Object.freeze({
  Hello: 0x01,
  Subscribe: 0x02,
  Unsubscribe: 0x03,
  Paint: 0x04,
  JoinRoom: 0x05,
  LeaveRoom: 0x06,
  SendRoom: 0x07,
  SendDirect: 0x08,
  Delete: 0x09,
  History: 0x0a,
  Who: 0x0b,
  Ping: 0x0c,
});

/** Server → client opcodes, by frame name. */
export const ServerOp = Object.freeze({
  Welcome: 0x81,
  Ack: 0x82,
  Error: 0x83,
  Pixels: 0x84,
  TileData: 0x85,
  Resync: 0x86,
  RoomMessage: 0x87,
  DirectMessage: 0x88,
  Deleted: 0x89,
  HistoryPage: 0x8a,
  Presence: 0x8b,
  Cooldown: 0x8c,
  Pong: 0x8d,
  Closing: 0x8e,
  Social: 0x8f,
});

function invert(table) {
  const out = {};
  for (const [name, value] of Object.entries(table)) out[value] = name;
  return Object.freeze(out);
}

/** Client frame names, by opcode. */
export const ClientOpName = invert(ClientOp);
/** Server frame names, by opcode. */
export const ServerOpName = invert(ServerOp);

// ---- enums (PROTOCOL.md sections 1.2, 6, 7) --------------------------------------------------
// Each enum is a frozen name → value table plus a frozen value → name table (`...Name`).

export const ClientKind = Object.freeze({ browser: 0, bot: 1, bench: 2 });
export const ClientKindName = invert(ClientKind);

export const Role = Object.freeze({ user: 0, admin: 1, visitor: 2 });
export const RoleName = invert(Role);

export const ConvKind = Object.freeze({ room: 0, direct: 1 });
export const ConvKindName = invert(ConvKind);

export const PresenceKind = Object.freeze({ snapshot: 0, joined: 1, left: 2 });
export const PresenceKindName = invert(PresenceKind);

/** What a `Social` frame reports (version 3). */
export const SocialKind = Object.freeze({
  friend_request: 0,
  request_sent: 1,
  friend_added: 2,
  friend_removed: 3,
  blocked: 4,
  unblocked: 5,
  online: 6,
  offline: 7,
  room_created: 8,
});
export const SocialKindName = invert(SocialKind);

/** Error codes (u16) by name, PROTOCOL.md section 6. */
export const ErrorCode = Object.freeze({
  malformed: 1,
  unknown_opcode: 2,
  frame_too_large: 3,
  unsupported_version: 4,
  handshake_required: 5,
  unauthorized: 10,
  forbidden: 11,
  not_found: 12,
  invalid_argument: 13,
  out_of_bounds: 20,
  invalid_colour: 21,
  cooldown: 22,
  rate_limited: 23,
  not_member: 24,
  not_friends: 25,
  blocked: 26,
  too_many_subscriptions: 27,
  room_full: 28,
  too_many_rooms: 29,
  overloaded: 40,
  internal: 41,
  unavailable: 42,
  outcome_unknown: 43,
});
export const ErrorCodeName = invert(ErrorCode);

/** Close reasons (u8) by name, PROTOCOL.md section 7. */
export const CloseReason = Object.freeze({
  normal: 0,
  shutdown: 1,
  banned: 2,
  kicked: 3,
  protocol_violation: 4,
  slow_consumer: 5,
  idle_timeout: 6,
  session_revoked: 7,
  internal_error: 8,
});
export const CloseReasonName = invert(CloseReason);

/** WebSocket close code (and WebTransport application error code) by close reason name. */
export const CloseCode = Object.freeze({
  normal: 1000,
  shutdown: 1001,
  banned: 4001,
  kicked: 4002,
  protocol_violation: 1002,
  slow_consumer: 4004,
  idle_timeout: 4005,
  session_revoked: 4006,
  internal_error: 1011,
});
/** Close reason name by WebSocket close code. */
export const CloseCodeReason = invert(CloseCode);

// ---- errors ----------------------------------------------------------------------------------

/**
 * Thrown by the encoders when a frame would break a protocol limit.
 * `kind` is "StringTooLong" | "CountTooLarge" | "InvalidValue" | "FrameTooLarge" (as the Rust
 * `EncodeError`), `frame` the frame type and `field` the offending field (if any).
 */
export class EncodeError extends Error {
  constructor(kind, frame, field, message, details = {}) {
    super(`${frame}${field ? "." + field : ""}: ${message}`);
    this.name = "EncodeError";
    this.kind = kind;
    this.frame = frame;
    this.field = field;
    Object.assign(this, details);
  }
}

const hex2 = (n) => n.toString(16).padStart(2, "0");

/** A human-readable message for a decode error object (the Rust `Display` text). */
export function describeDecodeError(e) {
  switch (e.kind) {
    case "UnknownOpcode":
      return `unknown opcode 0x${hex2(e.opcode)}`;
    case "FrameTooLarge":
      return `frame payload of ${e.len} bytes exceeds the limit of ${e.max}`;
    case "TruncatedMessage":
      return `transport message ends inside a frame (need ${e.needed} more bytes)`;
    case "Truncated":
      return `frame 0x${hex2(e.opcode)} is truncated`;
    case "TrailingBytes":
      return `frame 0x${hex2(e.opcode)} has ${e.extra} trailing bytes`;
    case "StringTooLong":
      return `string of ${e.len} bytes exceeds the limit of ${e.max}`;
    case "InvalidUtf8":
      return "string is not valid UTF-8";
    case "CountTooLarge":
      return `count ${e.count} exceeds the limit of ${e.max}`;
    case "InvalidValue":
      return `frame 0x${hex2(e.opcode)}: invalid value for ${e.field}`;
    default:
      return `decode error ${e.kind}`;
  }
}

/** The wire error code name a peer reports for a decode error (`DecodeError::code`). */
export function decodeErrorCode(e) {
  if (e.kind === "UnknownOpcode") return "unknown_opcode";
  if (e.kind === "FrameTooLarge") return "frame_too_large";
  return "malformed";
}

// ---- the Pixels view -------------------------------------------------------------------------

/**
 * The updates of a decoded `Pixels` frame, read in place: decoding allocates this one object
 * and nothing per update (a frame holds up to 43684 updates). Use `count`, `offset(i)` and
 * `colour(i)` (for 0 <= i < count, unchecked) or `forEach((offset, colour, i) => ..)` in hot
 * code, `applyTo(tileBytes, bpp)` to paint them into a packed tile, and `toArray()` for plain
 * `[{offset, colour}]` (tests, debugging). Iterating with `for..of` also yields
 * `{offset, colour}` objects (one allocation per update).
 */
export class PixelUpdates {
  /** `bytes` holds `count` 3-byte records (`offset u16 LE`, `colour u8`) from `start`. */
  constructor(bytes, start, count) {
    this.bytes = bytes;
    this.start = start;
    this.count = count;
  }

  /** An owned view over an array of `{offset, colour}` (validated). */
  static from(updates) {
    if (updates instanceof PixelUpdates) return updates;
    const n = updates.length;
    const bytes = new Uint8Array(n * PIXEL_UPDATE_LEN);
    for (let i = 0, p = 0; i < n; i++, p += 3) {
      const u = updates[i];
      const offset = checkUint(u?.offset, 0xffff, "Pixels", `updates[${i}].offset`);
      bytes[p] = offset & 0xff;
      bytes[p + 1] = offset >>> 8;
      bytes[p + 2] = checkUint(u.colour, 0xff, "Pixels", `updates[${i}].colour`);
    }
    return new PixelUpdates(bytes, 0, n);
  }

  get length() {
    return this.count;
  }

  offset(i) {
    const p = this.start + i * 3;
    return this.bytes[p] | (this.bytes[p + 1] << 8);
  }

  colour(i) {
    return this.bytes[this.start + i * 3 + 2];
  }

  forEach(fn) {
    const b = this.bytes;
    for (let i = 0, p = this.start; i < this.count; i++, p += 3) fn(b[p] | (b[p + 1] << 8), b[p + 2], i);
  }

  /** Applies the updates in order (later entries for an offset win) to a packed tile. */
  applyTo(tileBytes, bpp) {
    const b = this.bytes;
    for (let i = 0, p = this.start; i < this.count; i++, p += 3) setPixel(tileBytes, bpp, b[p] | (b[p + 1] << 8), b[p + 2]);
  }

  /** The raw wire records (a view, `3 * count` bytes). */
  raw() {
    return new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + this.start, this.count * 3);
  }

  toArray() {
    const out = new Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = { offset: this.offset(i), colour: this.colour(i) };
    return out;
  }

  *[Symbol.iterator]() {
    for (let i = 0; i < this.count; i++) yield { offset: this.offset(i), colour: this.colour(i) };
  }
}

// ---- decoding --------------------------------------------------------------------------------

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Internal: carries a decode error out of the field reader. */
class Failure {
  constructor(error) {
    this.error = error;
  }
}

/** Walks one frame's payload; every read checks the remaining length first (codec.rs Reader). */
class Reader {
  constructor(bytes, view, pos, end, opcode) {
    this.bytes = bytes;
    this.view = view;
    this.pos = pos;
    this.end = end;
    this.opcode = opcode;
  }

  need(n) {
    if (n > this.end - this.pos) throw new Failure({ kind: "Truncated", opcode: this.opcode });
  }

  remaining() {
    return this.end - this.pos;
  }

  u8() {
    this.need(1);
    return this.bytes[this.pos++];
  }

  u16() {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32() {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64() {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** `n` bytes as a plain Uint8Array view (no copy). */
  bytesView(n) {
    this.need(n);
    const out = new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + this.pos, n);
    this.pos += n;
    return out;
  }

  str(max) {
    const len = this.u16();
    if (len > max) throw new Failure({ kind: "StringTooLong", len, max });
    this.need(len);
    if (len === 0) return "";
    const start = this.pos;
    this.pos += len;
    try {
      return utf8Decoder.decode(this.bytes.subarray(start, start + len));
    } catch {
      throw new Failure({ kind: "InvalidUtf8" });
    }
  }

  count(max) {
    const count = this.u16();
    if (count > max) throw new Failure({ kind: "CountTooLarge", count, max });
    return count;
  }

  /** An enum byte (or u16 for Error.code) mapped to its name, else InvalidValue. */
  name(table, value, field) {
    const name = table[value];
    if (name === undefined) throw this.invalid(field);
    return name;
  }

  invalid(field) {
    return new Failure({ kind: "InvalidValue", opcode: this.opcode, field });
  }

  finish() {
    if (this.pos !== this.end) {
      throw new Failure({ kind: "TrailingBytes", opcode: this.opcode, extra: this.end - this.pos });
    }
  }
}

function tileList(r, count) {
  r.need(count * 4);
  const tiles = new Array(count);
  for (let i = 0; i < count; i++) tiles[i] = r.u32();
  return tiles;
}

const clientDecoders = {
  [ClientOp.Hello](r) {
    const version = r.u16();
    const kind = r.name(ClientKindName, r.u8(), "kind");
    return { type: "Hello", version, kind, agent: r.str(MAX_AGENT_BYTES) };
  },
  [ClientOp.Subscribe](r) {
    const count = r.count(MAX_TILES_PER_FRAME);
    r.need(count * 12);
    const tiles = new Array(count);
    for (let i = 0; i < count; i++) tiles[i] = { tile: r.u32(), cursor: r.u64() };
    return { type: "Subscribe", tiles };
  },
  [ClientOp.Unsubscribe](r) {
    return { type: "Unsubscribe", tiles: tileList(r, r.count(MAX_TILES_PER_FRAME)) };
  },
  [ClientOp.Paint](r) {
    r.need(9);
    return { type: "Paint", req: r.u32(), x: r.u16(), y: r.u16(), colour: r.u8() };
  },
  [ClientOp.JoinRoom]: (r) => ({ type: "JoinRoom", req: r.u32(), room: r.u32() }),
  [ClientOp.LeaveRoom]: (r) => ({ type: "LeaveRoom", req: r.u32(), room: r.u32() }),
  [ClientOp.Who]: (r) => ({ type: "Who", req: r.u32(), room: r.u32() }),
  [ClientOp.SendRoom]: (r) => ({ type: "SendRoom", req: r.u32(), room: r.u32(), text: r.str(MAX_TEXT_BYTES) }),
  [ClientOp.SendDirect]: (r) => ({ type: "SendDirect", req: r.u32(), to: r.u32(), text: r.str(MAX_TEXT_BYTES) }),
  [ClientOp.Delete](r) {
    const req = r.u32();
    const kind = r.name(ConvKindName, r.u8(), "kind");
    return { type: "Delete", req, kind, conv: r.u32(), seq: r.u64() };
  },
  [ClientOp.History](r) {
    const req = r.u32();
    const kind = r.name(ConvKindName, r.u8(), "kind");
    const conv = r.u32();
    const before = r.u64();
    const limit = r.u16();
    if (limit > MAX_HISTORY_PAGE) throw new Failure({ kind: "CountTooLarge", count: limit, max: MAX_HISTORY_PAGE });
    return { type: "History", req, kind, conv, before, limit };
  },
  [ClientOp.Ping]: (r) => ({ type: "Ping", nonce: r.u64() }),
};

const serverDecoders = {
  [ServerOp.Welcome](r) {
    const version = r.u16();
    const user = r.u32();
    const role = r.name(RoleName, r.u8(), "role");
    const width = r.u32();
    const height = r.u32();
    const bpp = r.u8();
    if (!validBpp(bpp)) throw r.invalid("bpp");
    const tile_size = r.u16();
    if (!validTileSize(tile_size)) throw r.invalid("tile_size");
    const cooldown_ms = r.u32();
    const ready_at_ms = r.u64();
    const server_time_ms = r.u64();
    const name = r.str(MAX_NAME_BYTES);
    const colours = r.count(Math.min(1 << bpp, MAX_PALETTE));
    r.need(colours * 3);
    const palette = new Array(colours);
    const b = r.bytes;
    for (let i = 0; i < colours; i++, r.pos += 3) {
      palette[i] = "#" + (((b[r.pos] << 16) | (b[r.pos + 1] << 8) | b[r.pos + 2]) >>> 0).toString(16).padStart(6, "0").toUpperCase();
    }
    return {
      type: "Welcome", version, user, role, name, width, height, bpp, tile_size,
      cooldown_ms, ready_at_ms, server_time_ms, palette,
    };
  },
  [ServerOp.Ack]: (r) => ({ type: "Ack", req: r.u32(), value: r.u64() }),
  [ServerOp.Error](r) {
    const req = r.u32();
    const code = r.name(ErrorCodeName, r.u16(), "code");
    const retry_after_ms = r.u32();
    return { type: "Error", req, code, retry_after_ms, message: r.str(MAX_REASON_BYTES) };
  },
  [ServerOp.Pixels](r) {
    // The hot frame: a fixed head, then the updates left in place (see PixelUpdates).
    r.need(PIXELS_HEAD_LEN);
    const tile = r.u32();
    const prev_seq = r.u64();
    const last_seq = r.u64();
    const rest = r.remaining();
    if (rest % PIXEL_UPDATE_LEN !== 0) throw new Failure({ kind: "Truncated", opcode: r.opcode });
    const updates = new PixelUpdates(r.bytes, r.pos, rest / PIXEL_UPDATE_LEN);
    r.pos = r.end;
    return { type: "Pixels", tile, prev_seq, last_seq, updates };
  },
  [ServerOp.TileData](r) {
    const tile = r.u32();
    const seq = r.u64();
    const len = r.u32();
    if (len > MAX_TILE_BYTES) throw new Failure({ kind: "CountTooLarge", count: len, max: MAX_TILE_BYTES });
    return { type: "TileData", tile, seq, data: r.bytesView(len) };
  },
  [ServerOp.Resync](r) {
    return { type: "Resync", tiles: tileList(r, r.count(MAX_TILES_PER_FRAME)) };
  },
  [ServerOp.RoomMessage]: (r) => ({
    type: "RoomMessage", room: r.u32(), seq: r.u64(), author: r.u32(), time_ms: r.u64(),
    author_name: r.str(MAX_NAME_BYTES), text: r.str(MAX_TEXT_BYTES),
  }),
  [ServerOp.DirectMessage]: (r) => ({
    type: "DirectMessage", from: r.u32(), to: r.u32(), seq: r.u64(), time_ms: r.u64(),
    from_name: r.str(MAX_NAME_BYTES), text: r.str(MAX_TEXT_BYTES),
  }),
  [ServerOp.Deleted](r) {
    const kind = r.name(ConvKindName, r.u8(), "kind");
    return { type: "Deleted", kind, conv: r.u32(), seq: r.u64() };
  },
  [ServerOp.HistoryPage](r) {
    const req = r.u32();
    const kind = r.name(ConvKindName, r.u8(), "kind");
    const conv = r.u32();
    const count = r.count(MAX_HISTORY_PAGE);
    const entries = new Array(count);
    for (let i = 0; i < count; i++) {
      entries[i] = {
        seq: r.u64(), author: r.u32(), time_ms: r.u64(),
        author_name: r.str(MAX_NAME_BYTES), text: r.str(MAX_TEXT_BYTES),
      };
    }
    return { type: "HistoryPage", req, kind, conv, entries };
  },
  [ServerOp.Presence](r) {
    const room = r.u32();
    const kind = r.name(PresenceKindName, r.u8(), "kind");
    const count = r.count(MAX_PRESENCE_ENTRIES);
    const entries = new Array(count);
    for (let i = 0; i < count; i++) entries[i] = { user: r.u32(), name: r.str(MAX_NAME_BYTES) };
    return { type: "Presence", room, kind, entries };
  },
  [ServerOp.Cooldown]: (r) => ({ type: "Cooldown", ready_at_ms: r.u64(), cooldown_ms: r.u32() }),
  [ServerOp.Pong]: (r) => ({ type: "Pong", nonce: r.u64(), server_time_ms: r.u64() }),
  [ServerOp.Closing](r) {
    const reason = r.name(CloseReasonName, r.u8(), "reason");
    return { type: "Closing", reason, message: r.str(MAX_REASON_BYTES) };
  },
  [ServerOp.Social](r) {
    const kind = r.name(SocialKindName, r.u8(), "kind");
    return { type: "Social", kind, id: r.u32(), name: r.str(MAX_ROOM_NAME_BYTES) };
  },
};

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError("expected a Uint8Array, ArrayBuffer or ArrayBufferView");
}

function decodersFor(direction) {
  if (direction === "client") return clientDecoders;
  if (direction === "server") return serverDecoders;
  throw new TypeError(`direction must be "client" or "server", not ${String(direction)}`);
}

function decodeAt(bytes, view, offset, decoders) {
  const available = bytes.length - offset;
  if (available < FRAME_HEADER_LEN) return { incomplete: FRAME_HEADER_LEN - available };
  const opcode = bytes[offset];
  const len = view.getUint32(offset + 1, true);
  // Decided from the header alone, before waiting for the payload (PROTOCOL.md section 1).
  if (len > MAX_FRAME_PAYLOAD) return { error: { kind: "FrameTooLarge", len, max: MAX_FRAME_PAYLOAD } };
  const total = FRAME_HEADER_LEN + len;
  if (available < total) return { incomplete: total - available };
  const decode = Object.hasOwn(decoders, opcode) ? decoders[opcode] : undefined;
  if (decode === undefined) return { error: { kind: "UnknownOpcode", opcode } };
  const start = offset + FRAME_HEADER_LEN;
  const r = new Reader(bytes, view, start, start + len, opcode);
  try {
    const frame = decode(r);
    r.finish();
    return { frame, len: total };
  } catch (e) {
    if (e instanceof Failure) return { error: e.error };
    throw e;
  }
}

/**
 * Decodes the frame starting at `offset` in `bytes`. `direction` names who sent it:
 * "client" (client → server frames) or "server" (server → client frames). Returns exactly
 * one of
 *   - `{frame, len}`: a whole frame; `len` bytes were used, header included;
 *   - `{incomplete: needed}`: only the start of a frame is there; at least `needed` more
 *     bytes are required (a declared length over the limit is an error, never incomplete);
 *   - `{error}`: a decode error object (see the top of this file).
 * Never throws for bad bytes (only for a bad `direction` or input type).
 */
export function decodeOne(bytes, offset, direction) {
  bytes = toBytes(bytes);
  const decoders = decodersFor(direction);
  if (!Number.isInteger(offset) || offset < 0 || offset > bytes.length) {
    throw new RangeError(`offset ${offset} is outside 0..=${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return decodeAt(bytes, view, offset, decoders);
}

function decodeMessage(input, decoders) {
  const bytes = toBytes(input);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames = [];
  let offset = 0;
  while (offset < bytes.length) {
    const out = decodeAt(bytes, view, offset, decoders);
    if (out.frame !== undefined) {
      frames.push(out.frame);
      offset += out.len;
    } else if (out.incomplete !== undefined) {
      return { frames, error: { kind: "TruncatedMessage", needed: out.incomplete } };
    } else {
      return { frames, error: out.error };
    }
  }
  return { frames, error: null };
}

/**
 * Decodes every frame of one transport message (e.g. a binary WebSocket message) sent by a
 * client. Returns `{frames, error}`: decoding stops at the first error, which is returned with
 * the frames decoded before it; a message ending inside a frame is `TruncatedMessage`.
 */
export function decodeClientFrames(bytes) {
  return decodeMessage(bytes, clientDecoders);
}

/** As `decodeClientFrames`, for frames sent by the server (what the browser receives). */
export function decodeServerFrames(bytes) {
  return decodeMessage(bytes, serverDecoders);
}

/**
 * Reassembles frames from a byte stream whose chunk boundaries mean nothing (the WebTransport
 * bidirectional stream). `push(chunk)` returns `{frames, error}` with every frame completed by
 * that chunk; after an error the decoder is dead and every further push returns the same
 * error. `buffered` is the number of bytes held waiting for the rest of a frame.
 * Pushed chunks must not be mutated afterwards (decoded frames may view them).
 */
export class StreamDecoder {
  constructor(direction = "server") {
    this.decoders = decodersFor(direction);
    this.chunks = [];
    this.buffered = 0;
    this.wanted = 0; // bytes needed before decoding is worth trying again
    this.error = null;
  }

  push(chunk) {
    if (this.error) return { frames: [], error: this.error };
    chunk = toBytes(chunk);
    if (chunk.length === 0) return { frames: [], error: null };
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.wanted) return { frames: [], error: null };
    // Join the pending chunks into a fresh buffer (never one handed out before).
    let bytes;
    if (this.chunks.length === 1) {
      bytes = this.chunks[0];
    } else {
      bytes = new Uint8Array(this.buffered);
      let at = 0;
      for (const c of this.chunks) {
        bytes.set(c, at);
        at += c.length;
      }
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const frames = [];
    let offset = 0;
    this.chunks = [];
    this.buffered = 0;
    this.wanted = 0;
    while (offset < bytes.length) {
      const out = decodeAt(bytes, view, offset, this.decoders);
      if (out.frame !== undefined) {
        frames.push(out.frame);
        offset += out.len;
      } else if (out.incomplete !== undefined) {
        const rest = bytes.subarray(offset);
        this.chunks.push(rest);
        this.buffered = rest.length;
        this.wanted = rest.length + out.incomplete;
        break;
      } else {
        this.error = out.error;
        return { frames, error: out.error };
      }
    }
    return { frames, error: null };
  }
}

// ---- encoding --------------------------------------------------------------------------------

function checkUint(value, max, frame, field) {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${frame}.${field}: expected an integer Number, got ${typeof value === "bigint" ? "a BigInt" : String(value)}`);
  }
  if (value < 0 || value > max) {
    throw new EncodeError("InvalidValue", frame, field, `${value} is outside 0..=${max}`);
  }
  return value;
}

function checkU64(value, frame, field) {
  if (typeof value !== "bigint") {
    throw new TypeError(`${frame}.${field}: u64 fields must be BigInt, got ${typeof value}`);
  }
  if (value < 0n || value > U64_MAX) {
    throw new EncodeError("InvalidValue", frame, field, `${value} is outside the u64 range`);
  }
  return value;
}

function checkEnum(table, name, frame, field) {
  if (typeof name !== "string" || !Object.hasOwn(table, name)) {
    throw new EncodeError("InvalidValue", frame, field, `unknown value ${JSON.stringify(name)} (expected one of ${Object.keys(table).join(", ")})`);
  }
  return table[name];
}

function checkStr(value, max, frame, field) {
  if (typeof value !== "string") throw new TypeError(`${frame}.${field}: expected a string`);
  if (value.isWellFormed !== undefined ? !value.isWellFormed() : /\p{Cs}/u.test(value)) {
    throw new EncodeError("InvalidValue", frame, field, "string holds a lone surrogate (not encodable as UTF-8)");
  }
  // Cheap reject before encoding: every UTF-16 unit is at least one UTF-8 byte.
  if (value.length > max) {
    const len = utf8Encoder.encode(value).length;
    throw new EncodeError("StringTooLong", frame, field, `string of ${len} bytes exceeds the limit of ${max}`, { len, max });
  }
  const bytes = utf8Encoder.encode(value);
  if (bytes.length > max) {
    throw new EncodeError("StringTooLong", frame, field, `string of ${bytes.length} bytes exceeds the limit of ${max}`, { len: bytes.length, max });
  }
  return bytes;
}

function checkList(list, max, frame, field) {
  if (list == null || typeof list.length !== "number") throw new TypeError(`${frame}.${field}: expected an array`);
  if (list.length > max) {
    throw new EncodeError("CountTooLarge", frame, field, `count ${list.length} exceeds the limit of ${max}`, { count: list.length, max });
  }
  return list;
}

/** Writes one frame into a buffer sized exactly for it. */
class Writer {
  constructor(frame, opcode, payloadLen) {
    if (payloadLen > MAX_FRAME_PAYLOAD) {
      throw new EncodeError("FrameTooLarge", frame, null, `payload of ${payloadLen} bytes exceeds the frame limit`, { len: payloadLen });
    }
    this.out = new Uint8Array(FRAME_HEADER_LEN + payloadLen);
    this.view = new DataView(this.out.buffer);
    this.pos = 0;
    this.u8(opcode);
    this.u32(payloadLen);
  }

  u8(v) {
    this.out[this.pos++] = v;
  }

  u16(v) {
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }

  u32(v) {
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  u64(v) {
    this.view.setBigUint64(this.pos, v, true);
    this.pos += 8;
  }

  bytes(b) {
    this.out.set(b, this.pos);
    this.pos += b.length;
  }

  str(b) {
    this.u16(b.length);
    this.bytes(b);
  }

  done() {
    if (this.pos !== this.out.length) throw new Error(`codec bug: wrote ${this.pos} of ${this.out.length} bytes`);
    return this.out;
  }
}

const U8 = 0xff;
const U16 = 0xffff;
const U32 = 0xffffffff;

function tileIds(f, frame) {
  const tiles = checkList(f.tiles, MAX_TILES_PER_FRAME, frame, "tiles");
  const ids = new Array(tiles.length);
  for (let i = 0; i < tiles.length; i++) ids[i] = checkUint(tiles[i], U32, frame, `tiles[${i}]`);
  return ids;
}

function roomRequest(f) {
  const req = checkUint(f.req, U32, f.type, "req");
  const room = checkUint(f.room, U32, f.type, "room");
  const w = new Writer(f.type, ClientOp[f.type], 8);
  w.u32(req);
  w.u32(room);
  return w.done();
}

const clientEncoders = {
  Hello(f) {
    const version = checkUint(f.version, U16, "Hello", "version");
    const kind = checkEnum(ClientKind, f.kind, "Hello", "kind");
    const agent = checkStr(f.agent, MAX_AGENT_BYTES, "Hello", "agent");
    const w = new Writer("Hello", ClientOp.Hello, 3 + 2 + agent.length);
    w.u16(version);
    w.u8(kind);
    w.str(agent);
    return w.done();
  },
  Subscribe(f) {
    const tiles = checkList(f.tiles, MAX_TILES_PER_FRAME, "Subscribe", "tiles");
    const ids = new Array(tiles.length);
    const cursors = new Array(tiles.length);
    for (let i = 0; i < tiles.length; i++) {
      ids[i] = checkUint(tiles[i]?.tile, U32, "Subscribe", `tiles[${i}].tile`);
      cursors[i] = checkU64(tiles[i].cursor, "Subscribe", `tiles[${i}].cursor`);
    }
    const w = new Writer("Subscribe", ClientOp.Subscribe, 2 + 12 * ids.length);
    w.u16(ids.length);
    for (let i = 0; i < ids.length; i++) {
      w.u32(ids[i]);
      w.u64(cursors[i]);
    }
    return w.done();
  },
  Unsubscribe(f) {
    const ids = tileIds(f, "Unsubscribe");
    const w = new Writer("Unsubscribe", ClientOp.Unsubscribe, 2 + 4 * ids.length);
    w.u16(ids.length);
    for (const t of ids) w.u32(t);
    return w.done();
  },
  Paint(f) {
    const req = checkUint(f.req, U32, "Paint", "req");
    const x = checkUint(f.x, U16, "Paint", "x");
    const y = checkUint(f.y, U16, "Paint", "y");
    const colour = checkUint(f.colour, U8, "Paint", "colour");
    const w = new Writer("Paint", ClientOp.Paint, 9);
    w.u32(req);
    w.u16(x);
    w.u16(y);
    w.u8(colour);
    return w.done();
  },
  JoinRoom: roomRequest,
  LeaveRoom: roomRequest,
  Who: roomRequest,
  SendRoom(f) {
    const req = checkUint(f.req, U32, "SendRoom", "req");
    const room = checkUint(f.room, U32, "SendRoom", "room");
    const text = checkStr(f.text, MAX_TEXT_BYTES, "SendRoom", "text");
    const w = new Writer("SendRoom", ClientOp.SendRoom, 8 + 2 + text.length);
    w.u32(req);
    w.u32(room);
    w.str(text);
    return w.done();
  },
  SendDirect(f) {
    const req = checkUint(f.req, U32, "SendDirect", "req");
    const to = checkUint(f.to, U32, "SendDirect", "to");
    const text = checkStr(f.text, MAX_TEXT_BYTES, "SendDirect", "text");
    const w = new Writer("SendDirect", ClientOp.SendDirect, 8 + 2 + text.length);
    w.u32(req);
    w.u32(to);
    w.str(text);
    return w.done();
  },
  Delete(f) {
    const req = checkUint(f.req, U32, "Delete", "req");
    const kind = checkEnum(ConvKind, f.kind, "Delete", "kind");
    const conv = checkUint(f.conv, U32, "Delete", "conv");
    const seq = checkU64(f.seq, "Delete", "seq");
    const w = new Writer("Delete", ClientOp.Delete, 17);
    w.u32(req);
    w.u8(kind);
    w.u32(conv);
    w.u64(seq);
    return w.done();
  },
  History(f) {
    const req = checkUint(f.req, U32, "History", "req");
    const kind = checkEnum(ConvKind, f.kind, "History", "kind");
    const conv = checkUint(f.conv, U32, "History", "conv");
    const before = checkU64(f.before, "History", "before");
    const limit = checkUint(f.limit, U16, "History", "limit");
    if (limit > MAX_HISTORY_PAGE) {
      throw new EncodeError("CountTooLarge", "History", "limit", `count ${limit} exceeds the limit of ${MAX_HISTORY_PAGE}`, { count: limit, max: MAX_HISTORY_PAGE });
    }
    const w = new Writer("History", ClientOp.History, 19);
    w.u32(req);
    w.u8(kind);
    w.u32(conv);
    w.u64(before);
    w.u16(limit);
    return w.done();
  },
  Ping(f) {
    const nonce = checkU64(f.nonce, "Ping", "nonce");
    const w = new Writer("Ping", ClientOp.Ping, 8);
    w.u64(nonce);
    return w.done();
  },
};

const RGB_RE = /^#[0-9A-Fa-f]{6}$/;

const serverEncoders = {
  Welcome(f) {
    const F = "Welcome";
    const version = checkUint(f.version, U16, F, "version");
    const user = checkUint(f.user, U32, F, "user");
    const role = checkEnum(Role, f.role, F, "role");
    const width = checkUint(f.width, U32, F, "width");
    const height = checkUint(f.height, U32, F, "height");
    const bpp = checkUint(f.bpp, U8, F, "bpp");
    if (!validBpp(bpp)) throw new EncodeError("InvalidValue", F, "bpp", `bits per pixel must be 1, 2, 4 or 8, not ${bpp}`);
    const tileSize = checkUint(f.tile_size, U16, F, "tile_size");
    if (!validTileSize(tileSize)) {
      throw new EncodeError("InvalidValue", F, "tile_size", `tile size must be a power of two in ${MIN_TILE_SIZE}..=${MAX_TILE_SIZE}, not ${tileSize}`);
    }
    const cooldown = checkUint(f.cooldown_ms, U32, F, "cooldown_ms");
    const readyAt = checkU64(f.ready_at_ms, F, "ready_at_ms");
    const now = checkU64(f.server_time_ms, F, "server_time_ms");
    const name = checkStr(f.name, MAX_NAME_BYTES, F, "name");
    const palette = checkList(f.palette, Math.min(1 << bpp, MAX_PALETTE), F, "palette");
    const rgb = paletteBytes(palette);
    const w = new Writer(F, ServerOp.Welcome, 38 + 2 + name.length + 2 + rgb.length);
    w.u16(version);
    w.u32(user);
    w.u8(role);
    w.u32(width);
    w.u32(height);
    w.u8(bpp);
    w.u16(tileSize);
    w.u32(cooldown);
    w.u64(readyAt);
    w.u64(now);
    w.str(name);
    w.u16(palette.length);
    w.bytes(rgb);
    return w.done();
  },
  Ack(f) {
    const req = checkUint(f.req, U32, "Ack", "req");
    const value = checkU64(f.value, "Ack", "value");
    const w = new Writer("Ack", ServerOp.Ack, 12);
    w.u32(req);
    w.u64(value);
    return w.done();
  },
  Error(f) {
    const req = checkUint(f.req, U32, "Error", "req");
    const code = checkEnum(ErrorCode, f.code, "Error", "code");
    const retry = checkUint(f.retry_after_ms, U32, "Error", "retry_after_ms");
    const message = checkStr(f.message, MAX_REASON_BYTES, "Error", "message");
    const w = new Writer("Error", ServerOp.Error, 10 + 2 + message.length);
    w.u32(req);
    w.u16(code);
    w.u32(retry);
    w.str(message);
    return w.done();
  },
  Pixels(f) {
    const tile = checkUint(f.tile, U32, "Pixels", "tile");
    const prev = checkU64(f.prev_seq, "Pixels", "prev_seq");
    const last = checkU64(f.last_seq, "Pixels", "last_seq");
    const list = checkList(f.updates, MAX_PIXELS_PER_FRAME, "Pixels", "updates");
    const updates = PixelUpdates.from(list);
    const w = new Writer("Pixels", ServerOp.Pixels, PIXELS_HEAD_LEN + PIXEL_UPDATE_LEN * updates.count);
    w.u32(tile);
    w.u64(prev);
    w.u64(last);
    w.bytes(updates.raw());
    return w.done();
  },
  TileData(f) {
    const tile = checkUint(f.tile, U32, "TileData", "tile");
    const seq = checkU64(f.seq, "TileData", "seq");
    if (!(f.data instanceof Uint8Array)) throw new TypeError("TileData.data: expected a Uint8Array");
    checkList(f.data, MAX_TILE_BYTES, "TileData", "data");
    const w = new Writer("TileData", ServerOp.TileData, 16 + f.data.length);
    w.u32(tile);
    w.u64(seq);
    w.u32(f.data.length);
    w.bytes(f.data);
    return w.done();
  },
  Resync(f) {
    const ids = tileIds(f, "Resync");
    const w = new Writer("Resync", ServerOp.Resync, 2 + 4 * ids.length);
    w.u16(ids.length);
    for (const t of ids) w.u32(t);
    return w.done();
  },
  RoomMessage(f) {
    const F = "RoomMessage";
    const room = checkUint(f.room, U32, F, "room");
    const seq = checkU64(f.seq, F, "seq");
    const author = checkUint(f.author, U32, F, "author");
    const time = checkU64(f.time_ms, F, "time_ms");
    const name = checkStr(f.author_name, MAX_NAME_BYTES, F, "author_name");
    const text = checkStr(f.text, MAX_TEXT_BYTES, F, "text");
    const w = new Writer(F, ServerOp.RoomMessage, 24 + 2 + name.length + 2 + text.length);
    w.u32(room);
    w.u64(seq);
    w.u32(author);
    w.u64(time);
    w.str(name);
    w.str(text);
    return w.done();
  },
  DirectMessage(f) {
    const F = "DirectMessage";
    const from = checkUint(f.from, U32, F, "from");
    const to = checkUint(f.to, U32, F, "to");
    const seq = checkU64(f.seq, F, "seq");
    const time = checkU64(f.time_ms, F, "time_ms");
    const name = checkStr(f.from_name, MAX_NAME_BYTES, F, "from_name");
    const text = checkStr(f.text, MAX_TEXT_BYTES, F, "text");
    const w = new Writer(F, ServerOp.DirectMessage, 24 + 2 + name.length + 2 + text.length);
    w.u32(from);
    w.u32(to);
    w.u64(seq);
    w.u64(time);
    w.str(name);
    w.str(text);
    return w.done();
  },
  Deleted(f) {
    const kind = checkEnum(ConvKind, f.kind, "Deleted", "kind");
    const conv = checkUint(f.conv, U32, "Deleted", "conv");
    const seq = checkU64(f.seq, "Deleted", "seq");
    const w = new Writer("Deleted", ServerOp.Deleted, 13);
    w.u8(kind);
    w.u32(conv);
    w.u64(seq);
    return w.done();
  },
  HistoryPage(f) {
    const F = "HistoryPage";
    const req = checkUint(f.req, U32, F, "req");
    const kind = checkEnum(ConvKind, f.kind, F, "kind");
    const conv = checkUint(f.conv, U32, F, "conv");
    const list = checkList(f.entries, MAX_HISTORY_PAGE, F, "entries");
    let len = 11;
    const entries = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      if (e == null) throw new TypeError(`${F}.entries[${i}]: expected an object`);
      entries[i] = {
        seq: checkU64(e.seq, F, `entries[${i}].seq`),
        author: checkUint(e.author, U32, F, `entries[${i}].author`),
        time: checkU64(e.time_ms, F, `entries[${i}].time_ms`),
        name: checkStr(e.author_name, MAX_NAME_BYTES, F, `entries[${i}].author_name`),
        text: checkStr(e.text, MAX_TEXT_BYTES, F, `entries[${i}].text`),
      };
      len += 20 + 2 + entries[i].name.length + 2 + entries[i].text.length;
    }
    const w = new Writer(F, ServerOp.HistoryPage, len);
    w.u32(req);
    w.u8(kind);
    w.u32(conv);
    w.u16(entries.length);
    for (const e of entries) {
      w.u64(e.seq);
      w.u32(e.author);
      w.u64(e.time);
      w.str(e.name);
      w.str(e.text);
    }
    return w.done();
  },
  Presence(f) {
    const F = "Presence";
    const room = checkUint(f.room, U32, F, "room");
    const kind = checkEnum(PresenceKind, f.kind, F, "kind");
    const list = checkList(f.entries, MAX_PRESENCE_ENTRIES, F, "entries");
    let len = 7;
    const entries = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      if (e == null) throw new TypeError(`${F}.entries[${i}]: expected an object`);
      entries[i] = {
        user: checkUint(e.user, U32, F, `entries[${i}].user`),
        name: checkStr(e.name, MAX_NAME_BYTES, F, `entries[${i}].name`),
      };
      len += 4 + 2 + entries[i].name.length;
    }
    const w = new Writer(F, ServerOp.Presence, len);
    w.u32(room);
    w.u8(kind);
    w.u16(entries.length);
    for (const e of entries) {
      w.u32(e.user);
      w.str(e.name);
    }
    return w.done();
  },
  Cooldown(f) {
    const readyAt = checkU64(f.ready_at_ms, "Cooldown", "ready_at_ms");
    const cooldown = checkUint(f.cooldown_ms, U32, "Cooldown", "cooldown_ms");
    const w = new Writer("Cooldown", ServerOp.Cooldown, 12);
    w.u64(readyAt);
    w.u32(cooldown);
    return w.done();
  },
  Pong(f) {
    const nonce = checkU64(f.nonce, "Pong", "nonce");
    const now = checkU64(f.server_time_ms, "Pong", "server_time_ms");
    const w = new Writer("Pong", ServerOp.Pong, 16);
    w.u64(nonce);
    w.u64(now);
    return w.done();
  },
  Closing(f) {
    const reason = checkEnum(CloseReason, f.reason, "Closing", "reason");
    const message = checkStr(f.message, MAX_REASON_BYTES, "Closing", "message");
    const w = new Writer("Closing", ServerOp.Closing, 1 + 2 + message.length);
    w.u8(reason);
    w.str(message);
    return w.done();
  },
  Social(f) {
    const kind = checkEnum(SocialKind, f.kind, "Social", "kind");
    const id = checkUint(f.id, U32, "Social", "id");
    const name = checkStr(f.name, MAX_ROOM_NAME_BYTES, "Social", "name");
    const w = new Writer("Social", ServerOp.Social, 5 + 2 + name.length);
    w.u8(kind);
    w.u32(id);
    w.str(name);
    return w.done();
  },
};

function encodeWith(encoders, frame, direction) {
  if (frame == null || typeof frame !== "object") throw new TypeError("expected a frame object");
  const encode = typeof frame.type === "string" && Object.hasOwn(encoders, frame.type) ? encoders[frame.type] : undefined;
  if (encode === undefined) throw new TypeError(`unknown ${direction} frame type ${JSON.stringify(frame.type)}`);
  return encode(frame);
}

/** Encodes one client → server frame (header included). Throws EncodeError / TypeError. */
export function encodeClient(frame) {
  return encodeWith(clientEncoders, frame, "client");
}

/** Encodes one server → client frame (header included). Throws EncodeError / TypeError. */
export function encodeServer(frame) {
  return encodeWith(serverEncoders, frame, "server");
}

// ---- palette helpers -------------------------------------------------------------------------

/** Packs a palette of "#RRGGBB" strings into RGB bytes (3 per colour). Throws on a bad entry. */
export function paletteBytes(palette) {
  const out = new Uint8Array(palette.length * 3);
  for (let i = 0; i < palette.length; i++) {
    const c = palette[i];
    if (typeof c !== "string" || !RGB_RE.test(c)) {
      throw new EncodeError("InvalidValue", "Welcome", `palette[${i}]`, `expected "#RRGGBB", got ${JSON.stringify(c)}`);
    }
    const v = parseInt(c.slice(1), 16);
    out[i * 3] = v >>> 16;
    out[i * 3 + 1] = (v >>> 8) & 0xff;
    out[i * 3 + 2] = v & 0xff;
  }
  return out;
}

// ---- canvas geometry and packing (PROTOCOL.md "Welcome", protocol/src/canvas.rs) -------------

/** Whether `bpp` is a supported bits-per-pixel value (1, 2, 4 or 8). */
export function validBpp(bpp) {
  return bpp === 1 || bpp === 2 || bpp === 4 || bpp === 8;
}

/** Whether `size` is a supported tile edge (a power of two in 8..=256). */
export function validTileSize(size) {
  return Number.isInteger(size) && size >= MIN_TILE_SIZE && size <= MAX_TILE_SIZE && (size & (size - 1)) === 0;
}

/**
 * The shape of a canvas: size, depth and tiling. The constructor validates like
 * `Geometry::new` (throws RangeError). All values stay below 2^31, so plain Number arithmetic
 * is exact.
 */
export class Geometry {
  constructor(width, height, bpp, tileSize) {
    if (!validBpp(bpp)) throw new RangeError(`bits per pixel must be 1, 2, 4 or 8, not ${bpp}`);
    if (!validTileSize(tileSize)) {
      throw new RangeError(`tile size must be a power of two between ${MIN_TILE_SIZE} and ${MAX_TILE_SIZE}, not ${tileSize}`);
    }
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > MAX_CANVAS_EDGE || height > MAX_CANVAS_EDGE) {
      throw new RangeError(`canvas edges must be between 1 and ${MAX_CANVAS_EDGE}, not ${width}x${height}`);
    }
    this.width = width;
    this.height = height;
    this.bpp = bpp;
    this.tileSize = tileSize;
    this.tilesX = Math.ceil(width / tileSize);
    this.tilesY = Math.ceil(height / tileSize);
    this.tileCount = this.tilesX * this.tilesY;
    this.tilePixels = tileSize * tileSize;
    this.tileBytes = (this.tilePixels * bpp) / 8;
    this.colours = 1 << bpp;
    Object.freeze(this);
  }

  /** The geometry a decoded `Welcome` frame announces. */
  static fromWelcome(welcome) {
    return new Geometry(welcome.width, welcome.height, welcome.bpp, welcome.tile_size);
  }

  /** Whether `(x, y)` is on the canvas. */
  contains(x, y) {
    return x >= 0 && y >= 0 && x < this.width && y < this.height;
  }

  /** `{tile, offset}` of an on-canvas pixel, or null when `(x, y)` is off the canvas. */
  locate(x, y) {
    if (!Number.isInteger(x) || !Number.isInteger(y) || !this.contains(x, y)) return null;
    const ts = this.tileSize;
    return {
      tile: Math.floor(y / ts) * this.tilesX + Math.floor(x / ts),
      offset: (y % ts) * ts + (x % ts),
    };
  }

  /** `{x, y}` of `offset` in `tile` (may be off the canvas in edge tiles). */
  coordinates(tile, offset) {
    const ts = this.tileSize;
    const tx = tile % this.tilesX;
    const ty = Math.floor(tile / this.tilesX);
    return { x: tx * ts + (offset % ts), y: ty * ts + Math.floor(offset / ts) };
  }

  /** A dense id for an on-canvas pixel: `y * width + x`. */
  pixelId(x, y) {
    return y * this.width + x;
  }
}

/** The colour at `offset` in a packed tile of depth `bpp` (LSB first). Out of range reads 0. */
export function getPixel(tileBytes, bpp, offset) {
  const bit = offset * bpp;
  const i = bit >>> 3;
  if (i >= tileBytes.length) return 0;
  return (tileBytes[i] >>> (bit & 7)) & ((1 << bpp) - 1);
}

/**
 * Writes `colour` at `offset` into a packed tile of depth `bpp` (LSB first); bits above the
 * depth are ignored, out-of-range offsets are ignored.
 */
export function setPixel(tileBytes, bpp, offset, colour) {
  const bit = offset * bpp;
  const i = bit >>> 3;
  if (i >= tileBytes.length) return;
  const mask = (1 << bpp) - 1;
  const shift = bit & 7;
  tileBytes[i] = (tileBytes[i] & ~(mask << shift)) | ((colour & mask) << shift);
}
