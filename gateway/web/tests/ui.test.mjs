// Tests of the page's pure presentation logic (no DOM): colour names and number keys, the
// status wording (connection pill, paint line, zoom label, close banner), error wording
// without repetition, the view in the address bar and jump-to-coordinates, the minimap's
// geometry, the theme cycle, and the viewport's insets (floating bars never move the picture).
// Run: cd gateway/web && node --test tests/

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { colourName, paletteNames, colourShortcut, colourForKey, parseHex, luminance } from "../colours.js";
import { connectionPill, paintStatus, formatZoom, canPaintAt, closeBanner, MIN_PAINT_SCALE, PAINT_ZOOM } from "../status.js";
import { viewFromQuery, queryWithView, parseCoords, roundZoom } from "../urlstate.js";
import { minimapSize, minimapRect, minimapToCanvas, MINIMAP_MAX_PX } from "../minimap.js";
import { nextTheme, effectiveTheme } from "../theme.js";
import { describeError, joinWordAndMessage, banMessage, historyWho, Serial } from "../ui.js";
import { Viewport, MIN_SCALE, MAX_SCALE } from "../viewport.js";
import { formatCountdown } from "../clock.js";

const PLACE_2017 = ["#FFFFFF", "#E4E4E4", "#888888", "#222222", "#FFA7D1", "#E50000", "#E59500", "#A06A42",
  "#E5D900", "#94E044", "#02BE01", "#00D3DD", "#0083C7", "#0000EA", "#CF6EE4", "#820080"];

describe("colours", () => {
  test("the r/place 2017 palette has sixteen distinct hand-picked names", () => {
    const names = paletteNames(PLACE_2017);
    assert.deepEqual(names.slice(0, 6), ["white", "light grey", "grey", "black", "pink", "red"]);
    assert.equal(names[13], "dark blue");
    assert.equal(new Set(names).size, 16);
  });

  test("other colours get the nearest plain name, in any case, with or without #", () => {
    assert.equal(colourName("#1e6b2a"), "dark green");
    assert.equal(colourName("ff0000"), "red");
    assert.equal(colourName("#fefefe"), "white");
    assert.equal(colourName("#000080"), "navy");
    assert.equal(colourName("nonsense"), "nonsense");
    assert.deepEqual(parseHex("#0a0B0c"), [10, 11, 12]);
    assert.equal(parseHex("#12345"), null);
    assert.ok(luminance("#FFFFFF") > 0.99 && luminance("#000000") === 0);
  });

  test("duplicate names in a palette are numbered so every swatch can be told apart", () => {
    assert.deepEqual(paletteNames(["#000000", "#010101", "#FFFFFF"]), ["black 1", "black 2", "white"]);
    // An 8-bit grey ramp: still all unique.
    const ramp = Array.from({ length: 256 }, (_, i) => `#${i.toString(16).padStart(2, "0").repeat(3)}`);
    assert.equal(new Set(paletteNames(ramp)).size, 256);
  });

  test("number keys: 1–9 and 0 pick the first ten colours, Shift adds ten; shortcuts say so", () => {
    assert.equal(colourForKey("Digit1", false), 0);
    assert.equal(colourForKey("Digit9", false), 8);
    assert.equal(colourForKey("Digit0", false), 9);
    assert.equal(colourForKey("Digit1", true), 10);
    assert.equal(colourForKey("Digit6", true), 15);
    assert.equal(colourForKey("Numpad3", false), 2);
    assert.equal(colourForKey("KeyE", false), null);
    assert.equal(colourShortcut(0), "1");
    assert.equal(colourShortcut(9), "0");
    assert.equal(colourShortcut(10), "Shift+1");
    assert.equal(colourShortcut(19), "Shift+0");
    assert.equal(colourShortcut(20), null);
    for (let i = 0; i < 20; i++) {
      const s = colourShortcut(i);
      const digit = s.slice(-1);
      assert.equal(colourForKey(`Digit${digit}`, s.startsWith("Shift")), i, `round trip of ${i}`);
    }
  });
});

describe("status", () => {
  const user = { id: 1, username: "ann", role: "user" };

  test("the pill: a visitor is viewing, never a red disconnected; a ban says banned", () => {
    assert.deepEqual(connectionPill({ connection: "disconnected", user: null, closed: null }), { label: "viewing", tone: "neutral" });
    assert.deepEqual(connectionPill({ connection: "connecting", user: null, closed: null }), { label: "viewing", tone: "neutral" });
    assert.deepEqual(connectionPill({ connection: "connected", user: null, closed: null }), { label: "viewing live", tone: "ok" }, "a visitor session");
    assert.deepEqual(connectionPill({ connection: "connected", user, closed: null }), { label: "connected", tone: "ok" });
    assert.deepEqual(connectionPill({ connection: "connecting", user, closed: null }), { label: "connecting", tone: "busy" });
    assert.deepEqual(connectionPill({ connection: "disconnected", user, closed: null, reconnecting: true }), { label: "reconnecting", tone: "busy" });
    assert.deepEqual(connectionPill({ connection: "disconnected", user, closed: null, reconnecting: false }), { label: "disconnected", tone: "bad" });
    assert.deepEqual(connectionPill({ connection: "disconnected", user, closed: { reason: "banned" } }), { label: "banned", tone: "bad" });
  });

  test("the paint line is ready only when a paint could go through", () => {
    const st = (o) => paintStatus({ user, connection: "connected", closed: null, remainingMs: 0, ...o }, formatCountdown);
    assert.deepEqual(st({}), { text: "Ready to paint", ready: true, readOnly: false });
    assert.equal(st({ connection: "disconnected" }).ready, false);
    assert.equal(st({ connection: "disconnected" }).text, "Offline: reconnecting…");
    assert.equal(st({ connection: "connecting" }).text, "Connecting…");
    assert.deepEqual(st({ closed: { reason: "banned" } }), { text: "Banned: the canvas is read-only", ready: false, readOnly: true });
    assert.deepEqual(st({ user: null }), { text: "Log in to paint", ready: false, readOnly: true });
    assert.deepEqual(st({ remainingMs: 4200 }), { text: "Next pixel in 4.2 s", ready: false, readOnly: false });
    // A ban wins over a running cooldown; a lost connection over a finished one.
    assert.equal(st({ closed: { reason: "banned" }, remainingMs: 5000 }).readOnly, true);
  });

  test("zoom label: the real ratio, never 1/2× for 0.59", () => {
    assert.equal(formatZoom(0.59), "0.59×");
    assert.equal(formatZoom(0.0625), "0.063×");
    assert.equal(formatZoom(1), "1×");
    assert.equal(formatZoom(1.55), "1.6×");
    assert.equal(formatZoom(3.33), "3.3×");
    assert.equal(formatZoom(12.4), "12×");
    assert.equal(formatZoom(64), "64×");
    assert.equal(formatZoom(0), "–");
  });

  test("painting needs MIN_PAINT_SCALE; a click below it zooms to PAINT_ZOOM", () => {
    assert.equal(canPaintAt(0.59), false);
    assert.equal(canPaintAt(MIN_PAINT_SCALE - 0.01), false);
    assert.equal(canPaintAt(MIN_PAINT_SCALE), true);
    assert.ok(PAINT_ZOOM > MIN_PAINT_SCALE && PAINT_ZOOM <= MAX_SCALE);
  });

  test("the close banner: says why once, promises a reconnect only when one comes", () => {
    const banned = closeBanner("banned", "griefing", null);
    assert.equal(banned.text, "You are banned: griefing. The canvas and chat are read-only.");
    assert.equal(banned.tone, "bad");
    assert.ok(!closeBanner("banned", "", false).text.includes("reconnecting"));
    assert.equal(closeBanner("shutdown", "", true).text, "The server is restarting — reconnecting…");
    assert.equal(closeBanner("shutdown", "", true).tone, "busy");
    assert.equal(closeBanner("connection_lost", "", true).text, "Connection to the server lost — reconnecting…");
    assert.equal(closeBanner("unreachable", "", true).text, "Cannot reach the server — retrying…");
    assert.equal(closeBanner("kicked", "kicked", false).text, "An administrator disconnected you.");
    assert.equal(closeBanner("internal_error", "boom", true).text, "Connection closed (boom) — reconnecting…");
  });
});

describe("error wording", () => {
  test("no message says the same thing twice", () => {
    assert.equal(describeError({ code: "blocked", message: "one of you blocks the other" }), "one of you blocks the other");
    assert.equal(describeError({ code: "disconnected", message: "not connected to the server" }), "not connected to the server");
    assert.equal(describeError({ code: "not_found", message: "no such user" }), "not found: no such user");
    assert.equal(describeError({ code: "cooldown", message: "cooldown", retryAfterMs: 2100 }), "cooldown (retry in 3 s)");
    assert.equal(describeError({ code: "banned", message: "Banned." }), "banned");
    assert.equal(joinWordAndMessage("too fast", "Too fast!"), "too fast");
    assert.equal(joinWordAndMessage("not allowed", ""), "not allowed");
  });
});

describe("address bar and jumps", () => {
  test("the view is read from ?x=&y=&zoom=, clamped onto the canvas", () => {
    assert.deepEqual(viewFromQuery("?x=10&y=20&zoom=8", 256, 256), { x: 10, y: 20, zoom: 8 });
    assert.deepEqual(viewFromQuery("?transport=ws&x=10.7&y=3", 256, 256), { x: 10, y: 3, zoom: null });
    assert.deepEqual(viewFromQuery("?x=-5&y=999&zoom=1000", 256, 100), { x: 0, y: 99, zoom: MAX_SCALE });
    assert.deepEqual(viewFromQuery("?x=1&y=1&zoom=0.000001", 256, 256), { x: 1, y: 1, zoom: MIN_SCALE });
    assert.equal(viewFromQuery("?x=1", 256, 256), null);
    assert.equal(viewFromQuery("?x=a&y=1", 256, 256), null);
    assert.equal(viewFromQuery("", 256, 256), null);
  });

  test("writing the view keeps the other parameters and rounds the zoom", () => {
    assert.equal(queryWithView("?transport=ws", { x: 12.9, y: 3.2, zoom: 8.04 }), "?transport=ws&x=12&y=3&zoom=8");
    assert.equal(queryWithView("?x=1&y=2&zoom=3&transport=wt", { x: 5, y: 6, zoom: 0.5912 }), "?x=5&y=6&zoom=0.59&transport=wt");
    assert.equal(roundZoom(12.345), 12.3);
    const back = viewFromQuery(queryWithView("", { x: 100.5, y: 7.5, zoom: 12 }), 256, 256);
    assert.deepEqual(back, { x: 100, y: 7, zoom: 12 });
  });

  test("jump box: two integers on the canvas, in any of the usual spellings", () => {
    assert.deepEqual(parseCoords("12, 34", 256, 256), { x: 12, y: 34 });
    assert.deepEqual(parseCoords("(12,34)", 256, 256), { x: 12, y: 34 });
    assert.deepEqual(parseCoords("x=12 y=34", 256, 256), { x: 12, y: 34 });
    assert.deepEqual(parseCoords(" 0 255 ", 256, 256), { x: 0, y: 255 });
    assert.equal(parseCoords("12", 256, 256), null);
    assert.equal(parseCoords("1, 2, 3", 256, 256), null);
    assert.equal(parseCoords("256, 0", 256, 256), null);
    assert.equal(parseCoords("-1, 0", 256, 256), null);
  });
});

describe("minimap", () => {
  test("size keeps the aspect within MINIMAP_MAX_PX", () => {
    assert.deepEqual(minimapSize(256, 256), { w: MINIMAP_MAX_PX, h: MINIMAP_MAX_PX });
    assert.deepEqual(minimapSize(2000, 1000), { w: MINIMAP_MAX_PX, h: MINIMAP_MAX_PX / 2 });
    assert.deepEqual(minimapSize(10, 20000), { w: 1, h: MINIMAP_MAX_PX });
  });

  test("the outline is the part in view, clipped, never thinner than 2 px; clicks map back", () => {
    const vp = new Viewport(400, 200, 1000, 1000);
    vp.centreOn(500, 500, 4); // 100 × 50 canvas pixels in view
    const r = minimapRect(vp, 100, 100);
    assert.deepEqual(r, { x: 45, y: 47.5, w: 10, h: 5 });
    vp.centreOn(0, 0, 4);
    assert.deepEqual(minimapRect(vp, 100, 100), { x: 0, y: 0, w: 5, h: 2.5 });
    vp.centreOn(500, 500, 64);
    const tiny = minimapRect(vp, 100, 100);
    assert.ok(tiny.w >= 2 && tiny.h >= 2);
    vp.fit();
    const all = minimapRect(vp, 100, 100);
    assert.deepEqual([all.x, all.y, all.w, all.h], [0, 0, 100, 100]);
    assert.deepEqual(minimapToCanvas(50, 25, 100, 100, 1000, 1000), { x: 500, y: 250 });
    assert.deepEqual(minimapToCanvas(-5, 120, 100, 100, 1000, 1000), { x: 0, y: 1000 });
  });
});

describe("theme", () => {
  test("the toggle cycles system → dark → light; system follows the system", () => {
    assert.equal(nextTheme("system"), "dark");
    assert.equal(nextTheme("dark"), "light");
    assert.equal(nextTheme("light"), "system");
    assert.equal(effectiveTheme("system", true), "dark");
    assert.equal(effectiveTheme("system", false), "light");
    assert.equal(effectiveTheme("light", true), "light");
    assert.equal(effectiveTheme("dark", false), "dark");
  });
});

describe("viewport insets", () => {
  test("a floating bar moves the focus, never the picture", () => {
    const vp = new Viewport(1000, 800, 256, 256);
    vp.centreOn(100, 100, 8);
    const before = [vp.toScreen(0, 0), vp.toScreen(100, 100), vp.toScreen(255, 17)];
    vp.setInset({ top: 50, right: 380, bottom: 90 });
    const after = [vp.toScreen(0, 0), vp.toScreen(100, 100), vp.toScreen(255, 17)];
    for (let i = 0; i < 3; i++) {
      assert.ok(Math.abs(before[i].x - after[i].x) < 1e-9 && Math.abs(before[i].y - after[i].y) < 1e-9, `point ${i} stayed`);
    }
    // The focus is the centre of the uncovered part: centreOn puts things there.
    assert.equal(vp.focusX(), (1000 - 380) / 2);
    assert.equal(vp.focusY(), 50 + (800 - 50 - 90) / 2);
    vp.centreOn(10, 20);
    const p = vp.toScreen(10, 20);
    assert.deepEqual([p.x, p.y], [vp.focusX(), vp.focusY()]);
    assert.deepEqual(vp.pixelAt(p.x, p.y), { x: 10, y: 20 });
  });

  test("fit fills the uncovered part; zooming about a point keeps it", () => {
    const vp = new Viewport(1000, 800, 256, 256);
    vp.setInset({ top: 100, right: 400, bottom: 100 });
    vp.fit();
    assert.ok(Math.abs(vp.scale - (600 / 256) * 0.95) < 1e-9);
    const a = vp.toScreen(0, 0);
    const b = vp.toScreen(256, 256);
    assert.ok(a.x >= 0 && b.x <= 600 && a.y >= 100 && b.y <= 700, JSON.stringify({ a, b }));
    const q = vp.toCanvas(123, 456);
    vp.zoomAt(3, 123, 456);
    const q2 = vp.toCanvas(123, 456);
    assert.ok(Math.abs(q.x - q2.x) < 1e-9 && Math.abs(q.y - q2.y) < 1e-9);
  });
});

describe("bans and rollbacks in words", () => {
  test("a ban's end: a time, permanent, or not said", () => {
    assert.match(banMessage("spam", Date.UTC(2026, 11, 1, 14, 0)), /^spam — until .*2026/);
    assert.equal(banMessage("spam", null), "spam — permanent");
    assert.equal(banMessage("spam", undefined), "spam");
  });
  test("a history line of a rollback's restore names whose pixel it undid, not a painter", () => {
    assert.equal(historyWho({ username: "ann" }), "ann");
    assert.equal(historyWho({ username: null, restored_by_rollback_of: { id: 3, username: "griefer" } }), "restored (rollback of griefer)");
    assert.equal(historyWho({}), "?");
  });
});

test("blocking says what it ended (a block is a clean break)", async () => {
  const { blockNotice } = await import("../social.js");
  assert.match(blockNotice("bob", "friend"), /bob blocked.*no longer friends/);
  assert.match(blockNotice("bob", "incoming"), /request was declined/);
  assert.match(blockNotice("bob", "outgoing"), /request to them was withdrawn/);
  assert.equal(blockNotice("bob", null), "bob blocked: their messages are hidden.");
});

test("Serial: one read at a time; calls during a read ask for exactly one more, which sees them", async () => {
  const started = [];
  const gates = [];
  let state = 0;
  const s = new Serial(() => {
    started.push(state);
    return new Promise((resolve, reject) => gates.push({ resolve: () => resolve(state), reject }));
  });
  const first = s.run();
  await Promise.resolve();
  assert.equal(started.length, 1);
  state = 1; // changed after the first read started: it needs a second one
  const second = s.run();
  const third = s.run();
  assert.equal(second, third, "calls while a read is queued share it");
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(started.length, 1, "never two at once");
  gates[0].resolve();
  assert.equal(await first, 1);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(started, [0, 1], "the queued read runs after the first, seeing the change");
  gates[1].resolve();
  assert.equal(await second, 1);
  // A failed read does not stop the next one.
  const failing = s.run();
  await new Promise((r) => setTimeout(r, 0));
  const after = s.run();
  gates[2].reject(new Error("network"));
  await assert.rejects(failing, /network/);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(started.length, 4);
  gates[3].resolve();
  assert.equal(await after, 1);
  // Idle again: a call starts at once.
  s.run();
  assert.equal(started.length, 5);
});
