// End-to-end tests of the web client as a product (issue 16): the canvas never moves under the
// pointer, status that never contradicts itself, painting only at a zoom that shows the
// pixel, the view and the open room surviving a reload, canvas-first tools (reticle, number
// keys, Escape, eyedropper, colour names, minimap, jump, shareable address), the phone layout
// with touch, dark mode, and moderation from the inspector. Real server, real page, headless
// Chromium; desktop 1280×900 and phone 390×844 (touch). See README.md.
// Run: gateway/web/e2e/run.sh   (or: cd gateway/web/e2e && npm ci && node --test tests/)

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";

import {
  Server, Browser, signUp, loggedInAs, WEB_FROM_DISK, screenshot, docScreenshot, uniqueName, missingRequirement, IN_CI, gate, PHONE, until, withPages, createRoom,
} from "../lib/harness.mjs";
import { formatZoom, MIN_PAINT_SCALE, PAINT_ZOOM } from "../../status.js";

const TEST_TIMEOUT_MS = 60_000;
const missing = missingRequirement();


let server = null;
let browser = null;
/** Pages on which a ban was expected (their WebSocket / WebTransport console errors are allowed). */
const bannedPages = new Map(); // label → since (ms)

/** Runs `body(pages)` with fresh pages; screenshots the last page (or the one chosen) as `name`. */
const canvasBox = (page) => page.locator("#canvas").boundingBox();
const view = (page) => page.evaluate(() => window.pixelparty.view());
const pointOf = (page, x, y) => page.evaluate(([px, py]) => window.pixelparty.clientPointOf(px, py), [x, y]);

/** The canvas keeps its box, and canvas pixel (x, y) stays at the same place on the screen. */
async function assertStill(page, box, x, y, point, what) {
  assert.deepEqual(await canvasBox(page), box, `${what}: the canvas's box did not change`);
  const now = await pointOf(page, x, y);
  assert.ok(Math.abs(now.x - point.x) < 0.01 && Math.abs(now.y - point.y) < 0.01, `${what}: pixel (${x}, ${y}) stayed under the pointer (${JSON.stringify(point)} → ${JSON.stringify(now)})`);
}

async function waitReady(page) {
  await page.waitForFunction(() => document.getElementById("cooldown-text").textContent === "Ready to paint");
}

async function waitPainted(page, x, y, colour) {
  await page.waitForFunction(([px, py, c]) => {
    const p = window.pixelparty.state.lastPaint;
    return p && p.x === px && p.y === py && p.colour === c;
  }, [x, y, colour]);
}

/** Visible buttons and inputs that the notice covers (ids or labels); [] when none. */
function noticeOverlaps(page) {
  return page.evaluate(() => {
    const n = document.getElementById("notice");
    if (n.hidden) return null;
    const r = n.getBoundingClientRect();
    const hits = [];
    for (const el of document.querySelectorAll("button, input, summary, #minimap, #palette")) {
      if (el.closest("#overlay-top")) continue;
      const b = el.getBoundingClientRect();
      if (b.width === 0 || b.height === 0 || getComputedStyle(el).visibility === "hidden") continue;
      if (b.left < r.right && b.right > r.left && b.top < r.bottom && b.bottom > r.top) hits.push(el.id || el.getAttribute("aria-label") || el.textContent.trim().slice(0, 24));
    }
    return hits;
  });
}

describe("web client as a product", { concurrency: 1 }, () => {
  before(async () => {
    if (missing) return;
    server = await new Server({ name: "server-product" }).start();
    browser = await new Browser(server).start();
    if (WEB_FROM_DISK) console.log("web client served from gateway/web/ on disk (PIXELPARTY_E2E_WEB_FROM_DISK=1)");
  });

  after(async () => {
    await browser?.stop();
    await server?.stop();
  });

  test("1 the canvas never moves: first paint, inspector history, ban banner, server-down banner", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "p1-canvas-still", ["A"], async ([a]) => {
      const na = uniqueName("stillA");
      await signUp(a, na);
      const box = await canvasBox(a);
      assert.deepEqual(box, { x: 0, y: 0, width: 1280, height: 900 }, "the canvas fills the window");
      const [x, y] = [60, 60];
      await a.evaluate(([px, py]) => window.pixelparty.centreOn(px, py, 8), [x, y]);
      const point = await pointOf(a, x, y);

      // First paint: the inspector opens with who placed it.
      await a.click('#palette button[data-colour="5"]');
      await a.mouse.click(point.x, point.y);
      await waitPainted(a, x, y, 5);
      await a.locator("#inspector .inspector-who").waitFor();
      await assertStill(a, box, x, y, point, "first paint");

      // A second paint of the same pixel, then its history opened.
      await waitReady(a);
      await a.click('#palette button[data-colour="9"]');
      await a.mouse.click(point.x, point.y);
      await waitPainted(a, x, y, 9);
      const summary = a.locator("#inspector .inspector-history summary");
      await summary.waitFor();
      await summary.click();
      await a.locator("#inspector .inspector-history[open]").waitFor();
      await assertStill(a, box, x, y, point, "history opened");

      // The ban banner.
      bannedPages.set(a.label, Date.now());
      await server.admin("/bans/user", { username: na, reason: "layout check" });
      await a.locator("#closed-reason").waitFor({ state: "visible" });
      await assertStill(a, box, x, y, point, "ban banner");
    });

    // The server-down banner: a server of its own, stopped under the page.
    const down = await new Server({ name: "server-down" }).start();
    const downBrowser = await new Browser(down).start();
    try {
      const p = await downBrowser.newPage("p1-server-down/A");
      await signUp(p, uniqueName("downA"));
      const box = await canvasBox(p);
      await p.evaluate(() => window.pixelparty.centreOn(20, 20, 8));
      const point = await pointOf(p, 20, 20);
      await down.stop();
      await p.locator("#closed-reason").waitFor({ state: "visible" });
      const text = await p.textContent("#closed-reason-text");
      assert.match(text, /restarting|lost|reach/, `banner: ${text}`);
      assert.match(text, /reconnecting|retrying/, `the banner says it reconnects: ${text}`);
      await p.waitForFunction(() => document.getElementById("cooldown-text").textContent !== "Ready to paint");
      assert.notEqual(await p.getAttribute("#conn-state", "data-tone"), "ok");
      await assertStill(p, box, 20, 20, point, "server-down banner");
      await screenshot(p, "p1-server-down");
    } finally {
      await downBrowser.stop();
      await down.stop();
    }
  });

  test("2 status never contradicts itself: a visitor is viewing; a refusal leaves with its cause; toasts cover no control", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "p2-status", ["visitor", "A"], async ([v, a], shoot) => {
      shoot(a);
      await v.waitForFunction(() => window.pixelparty.state.snapshotVersion !== null);
      // A logged-out visitor watches live (a visitor session), never told they are disconnected.
      await v.waitForFunction(() => document.getElementById("conn-state").textContent === "viewing live");
      assert.equal(await v.getAttribute("#conn-state", "data-tone"), "ok");
      assert.equal(await v.textContent("#cooldown-text"), "Log in to paint");

      await signUp(a, uniqueName("statusA"));
      assert.equal(await a.textContent("#conn-state"), "connected");
      assert.equal(await a.getAttribute("#conn-state", "data-tone"), "ok");
      await waitReady(a);
      const r1 = await a.evaluate(() => window.pixelparty.paint(5, 5, 3));
      assert.equal(r1.ok, true);
      const r2 = await a.evaluate(() => window.pixelparty.paint(6, 5, 3));
      assert.equal(r2.ok, false);
      assert.equal(r2.code, "cooldown");
      await a.locator('#notice[data-topic="paint"][data-kind="error"]').waitFor();
      const toast = await a.textContent("#notice");
      assert.match(toast, /^Not yet: next pixel in \d/, `one clear sentence: ${toast}`);
      assert.ok(!/cooldown.*cooldown/i.test(toast), `no repetition: ${toast}`);
      assert.deepEqual(await noticeOverlaps(a), [], "the toast covers no control (desktop)");
      assert.match(await a.textContent("#cooldown-text"), /^Next pixel in/);
      // Once the cooldown is over the refusal is old news: it goes with it.
      await waitReady(a);
      await a.locator("#notice").waitFor({ state: "hidden" });
    });
  });

  test("4 zoom: no painting blind (a click zooms in, keeping the pixel under the pointer), a true zoom label, reload keeps view and room", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "p4-zoom-reload", ["A"], async ([a]) => {
      const na = uniqueName("zoomA");
      await signUp(a, na);
      const v0 = await view(a);
      assert.ok(v0.scale < MIN_PAINT_SCALE, `the fitted 256×256 canvas is below painting zoom (${v0.scale})`);
      assert.equal(await a.textContent("#zoom-level"), formatZoom(v0.scale));
      await a.click('#palette button[data-colour="7"]');
      assert.equal(await a.getAttribute("#canvas", "data-tool"), "paint");
      assert.equal(await a.getAttribute("#canvas", "data-zoom-first"), "true", "the cursor says a click zooms");
      const [x, y] = [128, 128];
      const point = await pointOf(a, x, y);
      await a.mouse.click(point.x, point.y);
      await a.waitForFunction((z) => Math.abs(window.pixelparty.view().scale - z) < 0.01, PAINT_ZOOM);
      assert.equal(await a.evaluate(() => window.pixelparty.state.lastPaint), null, "nothing painted at 1/3 zoom");
      const after = await pointOf(a, x, y);
      assert.ok(Math.abs(after.x - point.x) < PAINT_ZOOM / 2 && Math.abs(after.y - point.y) < PAINT_ZOOM / 2, `pixel still under the pointer: ${JSON.stringify({ point, after })}`);
      assert.equal(await a.getAttribute("#canvas", "data-zoom-first"), "false");
      await a.mouse.click(point.x, point.y);
      await waitPainted(a, x, y, 7);

      await a.evaluate(() => window.pixelparty.centreOn(10, 10, 0.59));
      await a.waitForFunction(() => document.getElementById("zoom-level").textContent === "0.59×");

      // The view goes to the address bar; the open room is remembered; a reload brings both back.
      await a.evaluate(() => window.pixelparty.centreOn(50, 60, 8));
      await a.waitForFunction(() => {
        const q = new URLSearchParams(location.search);
        return q.get("x") === "50" && q.get("y") === "60" && q.get("zoom") === "8";
      });
      const roomId = await createRoom(a, uniqueName("keep"));
      await a.reload();
      await loggedInAs(a, na);
      await a.waitForFunction(() => window.pixelparty.view()?.scale === 8);
      const v = await view(a);
      assert.ok(Math.floor(v.x) === 50 && Math.floor(v.y) === 60, `the view came back to pixel (50, 60): ${JSON.stringify(v)}`);
      await a.locator(`#messages[data-room-id="${roomId}"]`).waitFor({ state: "attached" });
      await a.locator(`#rooms button[data-room-id="${roomId}"][aria-pressed="true"]`).waitFor();
    });
  });

  test("5 canvas first: full window, side panel over it, keys, reticle, Escape, eyedropper, names, minimap, jump, shareable address", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "p5-canvas-first", ["A"], async ([a], shoot) => {
      shoot(a);
      await signUp(a, uniqueName("firstA"));
      const box = await canvasBox(a);
      assert.deepEqual(box, { x: 0, y: 0, width: 1280, height: 900 });
      await a.evaluate(() => window.pixelparty.centreOn(100, 100, 10));
      const point = await pointOf(a, 100, 100);

      // The side panel hides and comes back over the canvas, which keeps its box and picture.
      await a.click("#sidebar-toggle");
      await a.locator("#sidebar").waitFor({ state: "hidden" });
      await assertStill(a, box, 100, 100, point, "side panel hidden");
      await a.click("#sidebar-toggle");
      await a.locator("#sidebar").waitFor({ state: "visible" });
      await assertStill(a, box, 100, 100, point, "side panel shown");

      // Number keys pick colours; every swatch has a name for people and screen readers.
      await a.locator("#canvas").focus();
      await a.keyboard.press("4");
      assert.equal(await a.evaluate(() => window.pixelparty.state.selectedColour), 3);
      assert.equal(await a.getAttribute('#palette button[data-colour="3"]', "aria-pressed"), "true");
      assert.equal(await a.getAttribute('#palette button[data-colour="3"]', "aria-label"), "black, colour 3, key 4");
      await a.keyboard.press("Shift+Digit1");
      assert.equal(await a.evaluate(() => window.pixelparty.state.selectedColour), 10);
      assert.match(await a.getAttribute('#palette button[data-colour="10"]', "aria-label"), /^green, colour 10, key Shift\+1$/);

      // The reticle sits on the pixel under the mouse, at painting zoom only.
      await a.mouse.move(point.x, point.y);
      await a.waitForFunction(() => JSON.stringify(window.pixelparty.reticle()) === JSON.stringify({ x: 100, y: 100 }));
      await a.evaluate(() => window.pixelparty.centreOn(100, 100, 1));
      assert.equal(await a.evaluate(() => window.pixelparty.reticle()), null, "no reticle when zoomed out");

      // Escape deselects.
      await a.keyboard.press("Escape");
      assert.equal(await a.evaluate(() => window.pixelparty.state.selectedColour), null);
      assert.equal(await a.getAttribute("#canvas", "data-tool"), "inspect");

      // Eyedropper: the Pick tool, then a click, takes a pixel's colour; so does E over a pixel.
      await waitReady(a);
      assert.equal((await a.evaluate(() => window.pixelparty.paint(100, 100, 12))).ok, true);
      await a.waitForFunction(() => window.pixelparty.pixelAt(100, 100) === 12);
      await a.evaluate(() => window.pixelparty.centreOn(100, 100, 10));
      await a.click("#tool-pick");
      assert.equal(await a.getAttribute("#canvas", "data-tool"), "pick");
      await a.mouse.click(point.x, point.y);
      await a.waitForFunction(() => window.pixelparty.state.selectedColour === 12);
      assert.equal(await a.getAttribute("#tool-pick", "aria-pressed"), "false", "back to painting");
      const next = await pointOf(a, 101, 100);
      await a.mouse.move(next.x, next.y);
      await a.keyboard.press("e");
      await a.waitForFunction(() => window.pixelparty.state.selectedColour === 0);
      await a.keyboard.press("Escape");

      // The minimap outlines the view; a click on it moves the view there.
      await a.waitForFunction(() => window.pixelparty.minimapRect() !== null);
      const mm = await a.locator("#minimap").boundingBox();
      await a.mouse.click(mm.x + mm.width / 2, mm.y + mm.height / 2);
      await a.waitForFunction(() => Math.abs(window.pixelparty.view().x - 128) < 2 && Math.abs(window.pixelparty.view().y - 128) < 2);

      // Jump to coordinates: centred there at painting zoom, inspected.
      await a.fill("#jump", "200, 30");
      await a.press("#jump", "Enter");
      await a.waitForFunction(() => Math.floor(window.pixelparty.view().x) === 200 && Math.floor(window.pixelparty.view().y) === 30);
      assert.ok((await view(a)).scale >= PAINT_ZOOM);
      assert.deepEqual(await a.evaluate(() => window.pixelparty.inspected()), { x: 200, y: 30 });
      assert.equal(await a.textContent("#inspector-title"), "Pixel (200, 30)");

      // The address is shareable: another visitor opening it sees the same spot.
      await a.waitForFunction(() => new URLSearchParams(location.search).get("x") === "200");
      const search = new URL(a.url()).search;
      const b = await browser.newPage("p5-canvas-first/B", { query: search });
      try {
        await b.waitForFunction(() => window.pixelparty.view()?.scale >= 12);
        const vb = await view(b);
        assert.deepEqual([Math.floor(vb.x), Math.floor(vb.y), vb.scale], [200, 30, (await view(a)).scale], "the same spot");
      } finally {
        await b.context().close();
      }
    });
  });

  test("7 phone 390×844 with touch: full-screen canvas, bottom bar and sheets, aim then Place, toasts cover no control", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "p7-phone", [{ label: "phone", context: PHONE }], async ([m]) => {
      const box = await canvasBox(m);
      assert.deepEqual(box, { x: 0, y: 0, width: 390, height: 844 }, "the canvas is the whole screen");
      assert.ok(await m.evaluate(() => document.documentElement.scrollHeight <= innerHeight), "one screen, no stacked page");
      for (const s of ["paint", "chat", "friends"]) await m.locator(`#bottombar button[data-sheet="${s}"]`).waitFor({ state: "visible" });
      assert.equal(await m.isHidden('#bottombar button[data-sheet="admin"]'), true, "admin only for admins");
      assert.equal(await m.isHidden("#auth-form"), true, "the log-in form waits behind the account button");

      await m.tap("#account-toggle");
      await m.locator("#auth-form").waitFor({ state: "visible" });
      await m.fill("#username", uniqueName("phone"));
      await m.fill("#password", "correct horse battery");
      await m.tap("#signup");
      await m.waitForFunction(() => window.pixelparty.state.connection === "connected" && window.pixelparty.state.user);
      await m.locator("#auth-form").waitFor({ state: "hidden" });

      // Sheets: one panel at a time over the canvas, which keeps its box.
      await m.tap('#bottombar button[data-sheet="chat"]');
      await m.locator("#chat-panel").waitFor({ state: "visible" });
      assert.equal(await m.isHidden("#dock"), true);
      assert.deepEqual(await canvasBox(m), box);
      await m.tap('#bottombar button[data-sheet="friends"]');
      await m.locator("#social-panel").waitFor({ state: "visible" });
      assert.equal(await m.isHidden("#chat-panel"), true);
      await m.tap('#bottombar button[data-sheet="paint"]');
      await m.locator("#dock").waitFor({ state: "visible" });
      assert.equal(await m.isHidden("#sidebar"), true);
      assert.deepEqual(await canvasBox(m), box);

      // Touch painting: a tap aims (the reticle shows where), Place paints.
      await m.tap('#palette button[data-colour="4"]');
      await m.evaluate(() => window.pixelparty.centreOn(80, 90, 12));
      const p = await pointOf(m, 80, 90);
      await m.touchscreen.tap(p.x, p.y);
      await m.waitForFunction(() => JSON.stringify(window.pixelparty.reticle()) === JSON.stringify({ x: 80, y: 90 }));
      await m.locator("#place").waitFor({ state: "visible" });
      assert.equal(await m.evaluate(() => window.pixelparty.state.lastPaint), null, "a tap alone does not paint");
      await docScreenshot(m, "phone");
      await m.tap("#place");
      await waitPainted(m, 80, 90, 4);
      await m.locator("#place").waitFor({ state: "hidden" });

      // A toast (a refused paint) covers no control.
      await m.evaluate(() => window.pixelparty.paint(81, 90, 4));
      await m.locator('#notice[data-kind="error"]').waitFor();
      assert.deepEqual(await noticeOverlaps(m), [], "the toast covers no control (phone)");
      await m.tap('#bottombar button[data-sheet="chat"]');
      assert.deepEqual(await noticeOverlaps(m), [], "nor with the chat sheet open");
    });
  });

  test("8 dark mode follows the system and is switchable; empty states say what to do", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "p8-dark", [{ label: "dark", context: { colorScheme: "dark" } }], async ([d]) => {
      const lum = () => d.evaluate(() => {
        const [r, g, b] = getComputedStyle(document.querySelector(".sidebar")).backgroundColor.match(/\d+(\.\d+)?/g).map(Number);
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
      });
      assert.equal(await d.getAttribute("html", "data-effective-theme"), "dark");
      assert.ok((await lum()) < 0.25, "a dark panel under a dark system");
      await d.locator("#chat-panel .empty-state").filter({ hasText: "Log in or sign up" }).waitFor();

      await signUp(d, uniqueName("darkA"));
      assert.equal(await d.getAttribute("#messages", "data-empty"), "Pick a room above, or create one, to start chatting.");
      assert.match(await d.textContent("#friends"), /No friends yet: add someone by name above/);
      await createRoom(d, uniqueName("lounge"));
      assert.match(await d.getAttribute("#messages", "data-empty"), /yet: say hello!$/);
      await d.fill("#message", "hello in the dark");
      await d.click("#send");
      await d.locator("#messages li[data-seq]").first().waitFor();
      await d.evaluate(() => window.pixelparty.centreOn(70, 70, 6));
      await d.click('#palette button[data-colour="13"]');
      await docScreenshot(d, "dark");

      // system → dark → light (remembered across a reload) → system.
      await d.click("#theme-toggle");
      assert.equal(await d.getAttribute("#theme-toggle", "data-choice"), "dark");
      await d.click("#theme-toggle");
      assert.equal(await d.getAttribute("html", "data-effective-theme"), "light");
      await until(async () => (await lum()) > 0.8, { what: "a light panel" });
      await d.reload();
      await d.waitForFunction(() => window.pixelparty?.state.palette.length > 0);
      assert.equal(await d.getAttribute("html", "data-theme"), "light", "the choice survives a reload");
      await d.click("#theme-toggle");
      assert.equal(await d.getAttribute("html", "data-effective-theme"), "dark", "back to the system's");
    });
  });

  test("10 moderation from the inspector: ban the painter (read-only at once, reason shown), roll back their pixels, both confirmed", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "p10-moderation", ["admin", "B"], async ([adm, b], shoot) => {
      shoot(adm);
      const [nadm, nb] = [uniqueName("mod"), uniqueName("griefer")];
      await signUp(adm, nadm);
      await signUp(b, nb);
      await server.promote(nadm);
      await adm.reload();
      await loggedInAs(adm, nadm);
      await adm.locator("#admin").waitFor({ state: "visible" });

      const [x, y] = [30, 40];
      assert.equal((await b.evaluate(([px, py]) => window.pixelparty.paint(px, py, 9), [x, y])).ok, true);
      await adm.waitForFunction(([px, py]) => window.pixelparty.pixelAt(px, py) === 9, [x, y]);
      await adm.evaluate(([px, py]) => window.pixelparty.centreOn(px, py, 10), [x, y]);
      const point = await pointOf(adm, x, y);
      await adm.mouse.click(point.x, point.y); // the Inspect tool is the default
      await adm.locator(`#inspector .inspector-user`).filter({ hasText: nb }).waitFor();

      // Ban, confirmed with a reason and a duration.
      const reason = `griefing ${Date.now()}`;
      await adm.click("#inspector-ban");
      await adm.locator("#confirm-dialog[open]").waitFor();
      await adm.fill("#confirm-reason", reason);
      await adm.fill("#confirm-minutes", "60");
      bannedPages.set(b.label, Date.now());
      await adm.click("#confirm-ok");
      await adm.locator("#confirm-dialog[open]").waitFor({ state: "detached" });

      // B: told why, and read-only at once.
      await b.locator("#closed-reason").waitFor({ state: "visible" });
      await b.waitForFunction((why) => document.getElementById("closed-reason-text").textContent.includes(why), reason);
      assert.match(await b.textContent("#closed-reason-text"), /^You are banned: /);
      await b.waitForFunction(() => document.getElementById("conn-state").textContent === "banned");
      // The session's end and the account's ban state arrive separately: wait for both.
      await b.waitForFunction(() => document.body.dataset.readonly === "true");
      assert.equal(await b.textContent("#cooldown-text"), "Banned: the canvas is read-only");
      assert.equal(await b.isDisabled('#palette button[data-colour="3"]'), true);
      assert.equal(await b.isDisabled("#message"), true);
      assert.equal(await b.isDisabled("#new-room"), true);

      // Roll back B's pixels from the same card, confirmed.
      await adm.click("#inspector-rollback");
      await adm.locator("#confirm-dialog[open]").waitFor();
      await adm.click("#confirm-ok");
      await adm.waitForFunction(([px, py]) => window.pixelparty.pixelAt(px, py) === 0, [x, y]);
      const r = await fetch(`${server.base}/canvas/pixel?x=${x}&y=${y}`);
      assert.equal((await r.json()).colour, 0);

      // Cancel does nothing.
      await adm.fill("#ban-user", nb);
      await adm.click("#ban");
      await adm.locator("#confirm-dialog[open]").waitFor();
      await adm.click("#confirm-cancel");
      await adm.locator("#confirm-dialog[open]").waitFor({ state: "detached" });
      assert.equal(await adm.textContent("#admin-result"), "");
    });
  });

  test("screenshots for the README and no console errors on any page", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "p-desktop", ["A"], async ([a]) => {
      await signUp(a, uniqueName("painter"));
      await createRoom(a, "general");
      await a.fill("#message", "Who wants to draw a heart at (60, 60)?");
      await a.click("#send");
      await a.locator("#messages li[data-seq]").first().waitFor();
      await a.evaluate(() => window.pixelparty.centreOn(60, 60, 9));
      await a.click('#palette button[data-colour="5"]');
      const p = await pointOf(a, 62, 61);
      await a.mouse.move(p.x, p.y);
      await docScreenshot(a, "desktop");
    });
    const allowed = (e) => e.kind === "console" && bannedPages.has(e.page) && e.atMs >= bannedPages.get(e.page) && /WebSocket|WebTransport/.test(e.text);
    for (const e of browser.errors) console.log(`${allowed(e) ? "allowed" : "ERROR"} [${e.page}] ${e.kind}: ${e.text} ${e.location}`);
    assert.deepEqual(browser.errors.filter((e) => !allowed(e)), [], "console errors / page errors");
  });
});
