// Owns: parsing the binary HTTP canvas snapshot (`GET /canvas/snapshot`, PROTOCOL.md
// section 11) into a Geometry, the per-tile sequences and the per-tile packed bytes.
// Pure logic, no DOM: tested under node in tests/app.test.mjs.

import { Geometry } from "./codec.js";

export const SNAPSHOT_MAGIC = "PXSN";
export const SNAPSHOT_FORMAT = 1;
export const SNAPSHOT_HEADER_LEN = 40;

/** A snapshot document that does not follow PROTOCOL.md section 11. */
export class SnapshotError extends Error {
  constructor(message) {
    super(message);
    this.name = "SnapshotError";
  }
}

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError("expected an ArrayBuffer or a Uint8Array");
}

/**
 * Parses a snapshot. Returns
 * `{geometry, takenMs, version, seqs: BigInt[], tiles: Uint8Array[]}` where `tiles[t]` is a
 * view of tile `t`'s packed bytes inside `input` (copy it before mutating the input) and
 * `seqs[t]` the sequence that tile reflects. Throws SnapshotError for a bad document.
 */
export function parseSnapshot(input) {
  const bytes = toBytes(input);
  if (bytes.length < SNAPSHOT_HEADER_LEN) {
    throw new SnapshotError(`snapshot of ${bytes.length} bytes is shorter than its ${SNAPSHOT_HEADER_LEN}-byte header`);
  }
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== SNAPSHOT_MAGIC) throw new SnapshotError(`bad snapshot magic ${JSON.stringify(magic)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint16(4, true);
  if (format !== SNAPSHOT_FORMAT) throw new SnapshotError(`unsupported snapshot format ${format}`);
  const bpp = bytes[6];
  const tileSize = view.getUint16(8, true);
  const width = view.getUint32(12, true);
  const height = view.getUint32(16, true);
  const tileCount = view.getUint32(20, true);
  const takenMs = view.getBigUint64(24, true);
  const version = view.getBigUint64(32, true);
  let geometry;
  try {
    geometry = new Geometry(width, height, bpp, tileSize);
  } catch (e) {
    throw new SnapshotError(`bad snapshot geometry: ${e.message}`);
  }
  if (tileCount !== geometry.tileCount) {
    throw new SnapshotError(`snapshot says ${tileCount} tiles, its geometry has ${geometry.tileCount}`);
  }
  const expected = SNAPSHOT_HEADER_LEN + 8 * tileCount + tileCount * geometry.tileBytes;
  if (bytes.length !== expected) {
    throw new SnapshotError(`snapshot is ${bytes.length} bytes, expected ${expected}`);
  }
  const seqs = new Array(tileCount);
  for (let t = 0; t < tileCount; t++) seqs[t] = view.getBigUint64(SNAPSHOT_HEADER_LEN + 8 * t, true);
  const tiles = new Array(tileCount);
  let at = SNAPSHOT_HEADER_LEN + 8 * tileCount;
  for (let t = 0; t < tileCount; t++, at += geometry.tileBytes) tiles[t] = bytes.subarray(at, at + geometry.tileBytes);
  return { geometry, takenMs: Number(takenMs), version, seqs, tiles };
}

/** Builds a snapshot document (the inverse of parseSnapshot; used by tests and tools). */
export function buildSnapshot(geometry, seqs, tiles, { takenMs = 0, version = 0n } = {}) {
  const n = geometry.tileCount;
  const out = new Uint8Array(SNAPSHOT_HEADER_LEN + 8 * n + n * geometry.tileBytes);
  const view = new DataView(out.buffer);
  out.set([0x50, 0x58, 0x53, 0x4e], 0); // "PXSN"
  view.setUint16(4, SNAPSHOT_FORMAT, true);
  out[6] = geometry.bpp;
  view.setUint16(8, geometry.tileSize, true);
  view.setUint32(12, geometry.width, true);
  view.setUint32(16, geometry.height, true);
  view.setUint32(20, n, true);
  view.setBigUint64(24, BigInt(takenMs), true);
  view.setBigUint64(32, BigInt(version), true);
  for (let t = 0; t < n; t++) view.setBigUint64(SNAPSHOT_HEADER_LEN + 8 * t, BigInt(seqs[t] ?? 0n), true);
  let at = SNAPSHOT_HEADER_LEN + 8 * n;
  for (let t = 0; t < n; t++, at += geometry.tileBytes) if (tiles[t]) out.set(tiles[t], at);
  return out;
}
