// End-to-end tests of the timelapse player and of moderation where the moderator looks
// (issue 16): the player replays the canvas's history (GET /canvas/timelapse and its chunks)
// in a bitmap of its own — scrubbed to before some paints they are absent from its picture,
// at the end present, played through to the end — while the live canvas stays as it is; an
// administrator selects a rectangle on the canvas and restores it to an earlier moment
// (POST /canvas/rewind) and another user's page gets the pixels back live; the audit log
// lists the rewind and a ban. Real server, real page, headless Chromium, 1280×900.
// Run: gateway/web/e2e/run.sh   (or: cd gateway/web/e2e && npm ci && node --test tests/timelapse.test.mjs)

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";

import {
  Server, Browser, signUp, loggedInAs, WEB_FROM_DISK, screenshot, docScreenshot, uniqueName, missingRequirement, gate, until, withPages,
} from "../lib/harness.mjs";
import { playbackSpeed, formatSpeed } from "../../timelapse.js";

const TEST_TIMEOUT_MS = 90_000;
const missing = missingRequirement();

let server = null;
let browser = null;
/** Pages on which a ban was expected (their WebSocket / WebTransport console errors are allowed). */
const bannedPages = new Map(); // label → since (ms)

/** Runs `body(pages)` with fresh pages; screenshots the last page (or the one chosen) as `name`. */
const pointOf = (page, x, y) => page.evaluate(([px, py]) => window.pixelparty.clientPointOf(px, py), [x, y]);

async function waitReady(page) {
  await page.waitForFunction(() => document.getElementById("cooldown").dataset.ready === "true");
}

/**
 * Paints through the test hook once the cooldown allows (the page's estimate of the server's
 * clock can be a little early: a cooldown refusal moves its paint line on, and it waits again).
 */
async function paint(page, x, y, colour) {
  let r = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    await waitReady(page);
    r = await page.evaluate(([px, py, c]) => window.pixelparty.paint(px, py, c), [x, y, colour]);
    if (r.ok || r.code !== "cooldown") break;
  }
  assert.equal(r.ok, true, `paint (${x}, ${y}) ${colour}: ${JSON.stringify(r)}`);
  return r.seq;
}

/** When the server says pixel (x, y) was last painted (ms since the epoch). */
async function paintedAt(x, y) {
  const r = await fetch(`${server.base}/canvas/pixel?x=${x}&y=${y}`);
  assert.equal(r.status, 200);
  const info = await r.json();
  assert.ok(Number.isFinite(Number(info.time_ms)), `time of (${x}, ${y}): ${JSON.stringify(info)}`);
  return Number(info.time_ms);
}

/**
 * The colour index the player's picture shows at (x, y): its canvas pixel read back and
 * matched against the palette (-1 when it matches none).
 */
function playerColour(page, x, y) {
  return page.evaluate(([px, py]) => {
    const c = document.getElementById("timelapse-canvas");
    const [r, g, b] = c.getContext("2d").getImageData(px, py, 1, 1).data;
    const hex = `#${[r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("")}`.toUpperCase();
    return window.pixelparty.state.palette.indexOf(hex);
  }, [x, y]);
}

const playerData = (page) => page.evaluate(() => ({ ...document.getElementById("timelapse").dataset }));

/**
 * Waits until the player shows the moment `ms` (while playing: that moment or a later one)
 * with every update up to it applied.
 */
async function waitShown(page, ms, { playing = false } = {}) {
  await page.waitForFunction(([m, moving]) => {
    const d = document.getElementById("timelapse").dataset;
    return d.settled === "true" && (moving ? Number(d.momentMs) >= m : Number(d.momentMs) === m);
  }, [Math.round(ms), playing]);
}

/** Moves the scrubber to the moment `ms` like a person would (the value is a step multiple). */
async function scrubTo(page, ms, { playing = false } = {}) {
  const d = await playerData(page);
  const step = Number(d.step);
  const start = Number(d.startMs);
  const end = Number(d.endMs);
  const value = Math.round((ms - start) / step) * step;
  await page.fill("#timelapse-scrub", String(value));
  const shown = Math.min(end, Math.max(start, start + value));
  await waitShown(page, shown, { playing });
  return shown;
}

/** A datetime-local value (to the second) for `ms`, in the page's time zone. */
function localInput(page, ms) {
  return page.evaluate((t) => {
    const d = new Date(t);
    const p = (n, w = 2) => String(n).padStart(w, "0");
    return `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }, ms);
}

describe("timelapse and area restore", { concurrency: 1 }, () => {
  before(async () => {
    if (missing) return;
    server = await new Server({ name: "server-timelapse" }).start();
    browser = await new Browser(server).start();
    if (WEB_FROM_DISK) console.log("web client served from gateway/web/ on disk (PIXELPARTY_E2E_WEB_FROM_DISK=1)");
  });

  after(async () => {
    await browser?.stop();
    await server?.stop();
  });

  test("1 the player replays the history in its own bitmap: scrubbed before paints they are absent, at the end present, played to the end", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "t1-timelapse", ["A"], async ([a]) => {
      await signUp(a, uniqueName("tlA"));
      const px = [[40, 40, 5], [41, 40, 9], [42, 40, 12]];
      for (const [x, y, c] of px) await paint(a, x, y, c);
      const times = [];
      for (const [x, y] of px) times.push(await paintedAt(x, y));
      assert.ok(times[0] < times[1] && times[1] < times[2], `one after the other (1 s cooldown): ${times}`);
      await a.waitForFunction(([x, y, c]) => window.pixelparty.pixelAt(x, y) === c, px[2]);

      // Opened at the present: every paint is in the picture.
      await a.click("#timelapse-open");
      await a.locator("#timelapse").waitFor({ state: "visible" });
      await a.locator('#timelapse[data-state="ended"][data-settled="true"]').waitFor();
      const d = await playerData(a);
      assert.equal(Number(d.endMs), times[2], "the scrubber ends at the last update");
      assert.ok(Number(d.startMs) < times[0], "and starts before the first");
      assert.equal(await a.textContent("#timelapse-speed"), formatSpeed(playbackSpeed(Number(d.endMs) - Number(d.startMs))));
      assert.equal(await a.textContent("#timelapse-note"), "", "a complete history: nothing to warn about");
      for (const [x, y, c] of px) assert.equal(await playerColour(a, x, y), c, `(${x}, ${y}) at the end`);

      // Before every paint: none of them. The live canvas is not the player's: it keeps them.
      await a.focus("#timelapse-scrub");
      await a.keyboard.press("Home");
      await waitShown(a, Number(d.startMs));
      for (const [x, y] of px) assert.equal(await playerColour(a, x, y), 0, `(${x}, ${y}) before it was painted`);
      for (const [x, y, c] of px) assert.equal(await a.evaluate(([qx, qy]) => window.pixelparty.pixelAt(qx, qy), [x, y]), c, "the live replica is untouched");
      assert.match(await a.textContent("#timelapse-time"), /\d/, "the moment shown is labelled");

      // Between the first and the second paint: only the first.
      await scrubTo(a, (times[0] + times[1]) / 2);
      assert.deepEqual([await playerColour(a, 40, 40), await playerColour(a, 41, 40), await playerColour(a, 42, 40)], [5, 0, 0]);

      // Forward to the end: all of them again; back from the end: replayed, not guessed.
      await a.keyboard.press("End");
      await waitShown(a, times[2]);
      for (const [x, y, c] of px) assert.equal(await playerColour(a, x, y), c, `(${x}, ${y}) after scrubbing to the end`);
      await scrubTo(a, (times[1] + times[2]) / 2);
      assert.deepEqual([await playerColour(a, 40, 40), await playerColour(a, 41, 40), await playerColour(a, 42, 40)], [5, 9, 0]);

      // Play from the start: it plays and reaches the end by itself.
      await a.keyboard.press("Home");
      await waitShown(a, Number(d.startMs));
      await a.click("#timelapse-play");
      await a.locator('#timelapse[data-state="playing"]').waitFor();
      assert.equal(await a.textContent("#timelapse-play"), "Pause");
      const span = Number(d.endMs) - Number(d.startMs);
      await a.waitForFunction(() => {
        const ds = document.getElementById("timelapse").dataset;
        return ds.state === "ended" && ds.settled === "true";
      }, null, { timeout: span / Number(d.speed) + 15_000 });
      assert.equal(Number((await playerData(a)).momentMs), Number(d.endMs));
      for (const [x, y, c] of px) assert.equal(await playerColour(a, x, y), c, `(${x}, ${y}) after playing`);
      assert.equal(await a.textContent("#timelapse-play"), "Play");

      // Live closes it; Escape too.
      await a.click("#timelapse-live");
      await a.locator("#timelapse").waitFor({ state: "hidden" });
      await a.click("#timelapse-open");
      await a.locator('#timelapse[data-state="ended"]').waitFor();
      await a.keyboard.press("Escape");
      await a.locator("#timelapse").waitFor({ state: "hidden" });
    });
  });

  test("2 an admin restores a selected area to a moment: another user's page gets the pixels back live; the audit log lists it and a ban", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "t2-restore-area", ["admin", "B", "C"], async ([adm, b, c], shoot) => {
      shoot(adm);
      const [nadm, nb, nc] = [uniqueName("mod"), uniqueName("painter"), uniqueName("vandal")];
      await signUp(adm, nadm);
      await signUp(b, nb);
      await signUp(c, nc);
      await server.promote(nadm);
      await adm.reload();
      await loggedInAs(adm, nadm);
      await adm.locator("#admin").waitFor({ state: "visible" });

      // B paints (100, 100) before the moment; C paints over it and next to it after.
      await paint(b, 100, 100, 5);
      const before = await paintedAt(100, 100);
      const moment = (Math.floor(before / 1000) + 1) * 1000; // whole seconds: datetime-local's step
      await until(() => Date.now() > moment + 100, { what: "the moment to pass" });
      await paint(c, 100, 100, 9);
      await paint(c, 101, 101, 9);
      assert.ok((await paintedAt(100, 100)) > moment && (await paintedAt(101, 101)) > moment);
      await b.waitForFunction(() => window.pixelparty.pixelAt(100, 100) === 9 && window.pixelparty.pixelAt(101, 101) === 9);

      // From the inspector: Restore an area, a rectangle dragged on the canvas.
      await adm.evaluate(() => window.pixelparty.centreOn(100, 100, 12));
      const p = await pointOf(adm, 100, 100);
      await adm.mouse.click(p.x, p.y);
      await adm.locator("#inspector-restore-area").click();
      await adm.locator("#restore-bar").waitFor({ state: "visible" });
      assert.equal(await adm.getAttribute("#canvas", "data-selecting"), "true");
      assert.equal(await adm.isDisabled("#restore-go"), true, "nothing to restore before an area is selected");
      const from = await pointOf(adm, 99, 99);
      const to = await pointOf(adm, 102, 102);
      await adm.mouse.move(from.x, from.y);
      await adm.mouse.down();
      await adm.mouse.move(to.x, to.y, { steps: 6 });
      await adm.mouse.up();
      await adm.waitForFunction(() => document.getElementById("restore-hint").dataset.area === "99,99,4,4");
      assert.match(await adm.textContent("#restore-hint"), /4 × 4 pixels \(16 in all\) from \(99, 99\) to \(102, 102\)/);
      assert.equal(await adm.evaluate(() => window.pixelparty.view().scale), 12, "the drag selected, it did not pan");
      await screenshot(adm, "t2-restore-selected");

      // The moment (ten minutes ago by default), then the confirmation says how big and to when.
      const proposed = await adm.inputValue("#restore-at");
      // Chromium leaves out ":00" seconds from a datetime-local value (1 run in 60 had them).
      assert.match(proposed, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/);
      await adm.fill("#restore-at", await localInput(adm, moment));
      await adm.click("#restore-go");
      await adm.locator("#confirm-dialog[open]").waitFor();
      const text = await adm.textContent("#confirm-text");
      assert.match(text, /^4 × 4 pixels \(16 in all\) from \(99, 99\) to \(102, 102\) go back to how they were at /);
      assert.ok(text.includes(await adm.evaluate((m) => new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" }).format(new Date(m)), moment)), text);
      await adm.click("#confirm-ok");

      // B's page: the pixels go back live (B's own paint returns, the other is blank again).
      await b.waitForFunction(() => window.pixelparty.pixelAt(100, 100) === 5 && window.pixelparty.pixelAt(101, 101) === 0);
      await adm.waitForFunction(() => /^Restored 2 pixels to how they were at /.test(document.getElementById("notice").textContent));
      await adm.locator("#restore-bar").waitFor({ state: "hidden" });
      assert.equal(await adm.getAttribute("#canvas", "data-selecting"), "false");
      assert.equal((await (await fetch(`${server.base}/canvas/pixel?x=101&y=101`)).json()).colour, 0);

      // Escape leaves the selection mode.
      await adm.mouse.click(p.x, p.y);
      await adm.locator("#inspector-restore-area").click();
      await adm.locator("#restore-bar").waitFor({ state: "visible" });
      await adm.keyboard.press("Escape");
      await adm.locator("#restore-bar").waitFor({ state: "hidden" });
      assert.equal(await adm.getAttribute("#canvas", "data-selecting"), "false");

      // A ban from the admin panel; the audit log (refreshed after the admin's own actions)
      // lists it and the rewind, by the admin's name, newest first.
      const reason = `vandalism ${Date.now()}`;
      await adm.fill("#ban-user", nc);
      await adm.fill("#ban-reason", reason);
      await adm.click("#ban");
      await adm.locator("#confirm-dialog[open]").waitFor();
      bannedPages.set(c.label, Date.now());
      await adm.click("#confirm-ok");
      const ban = adm.locator('#audit-rows tr[data-action="ban_user"]').filter({ hasText: reason });
      await ban.waitFor();
      assert.match(await ban.textContent(), new RegExp(nadm));
      // The server records a rewind of the target "canvas" ("to <time> (<ms>) of 4x4 at (99, 99): …").
      const rewind = adm.locator('#audit-rows tr[data-action="rewind"]').filter({ hasText: "4x4 at (99, 99)" });
      await rewind.first().waitFor();
      assert.match(await rewind.first().textContent(), new RegExp(nadm));
      const seqs = await adm.$$eval("#audit-rows tr", (rows) => rows.map((r) => Number(r.dataset.seq)));
      assert.deepEqual(seqs, [...seqs].sort((x, y) => y - x), "newest first");
    });
  });

  test("screenshot of the player mid-playback for the README, and no console errors on any page", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    // A heart, painted by four people at once (each at the 1 s cooldown).
    const HEART = [
      "..XXX...XXX..",
      ".XXXXX.XXXXX.",
      "XXXXXXXXXXXXX",
      "XXXXXXXXXXXXX",
      "XXXXXXXXXXXXX",
      ".XXXXXXXXXXX.",
      "..XXXXXXXXX..",
      "...XXXXXXX...",
      "....XXXXX....",
      ".....XXX.....",
      "......X......",
    ];
    const pixels = [];
    HEART.forEach((row, y) => [...row].forEach((ch, x) => {
      if (ch === "X") pixels.push([122 + x, 118 + y, x + y < 6 ? 4 : 5]); // pink highlight, red
    }));
    await withPages(browser, "t-doc-timelapse", ["p0", "p1", "p2", "p3"], async (painters, shoot) => {
      const viewer = painters[0];
      shoot(viewer);
      for (const p of painters) await signUp(p, uniqueName("heart"));
      const started = Date.now();
      await Promise.all(painters.map(async (p, i) => {
        for (const [x, y, c] of pixels.filter((_, k) => k % painters.length === i)) await paint(p, x, y, c);
      }));
      const finished = Date.now();
      await viewer.waitForFunction((list) => list.every(([x, y, c]) => window.pixelparty.pixelAt(x, y) === c), pixels);

      await viewer.click("#timelapse-open");
      await viewer.locator('#timelapse[data-state="ended"][data-settled="true"]').waitFor();
      await viewer.click("#timelapse-play");
      await viewer.locator('#timelapse[data-state="playing"]').waitFor();
      // Into the middle of the heart's painting, still playing.
      await scrubTo(viewer, started + (finished - started) * 0.6, { playing: true });
      await viewer.locator('#timelapse[data-state="playing"]').waitFor();
      await docScreenshot(viewer, "timelapse");
    });
    const allowed = (e) => e.kind === "console" && bannedPages.has(e.page) && e.atMs >= bannedPages.get(e.page) && /WebSocket|WebTransport/.test(e.text);
    for (const e of browser.errors) console.log(`${allowed(e) ? "allowed" : "ERROR"} [${e.page}] ${e.kind}: ${e.text} ${e.location}`);
    assert.deepEqual(browser.errors.filter((e) => !allowed(e)), [], "console errors / page errors");
  });
});
