// End-to-end tests of "live for everyone" (issue 16): a logged-out page watches the canvas
// over a visitor session, and friends, blocks, online status and new rooms are pushed to the
// pages (Social frames, protocol version 3) instead of polled; unread counts in the tab title;
// browser notifications for direct messages and mentions. The real server binary, the real
// page in headless Chromium, one browser context per user. See ../README.md.
// Run: cd gateway/web/e2e && node --test tests/live.test.mjs   (or run.sh for every file)

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";

import {
  Server, Browser, signUp, loggedInAs, WEB_FROM_DISK, screenshot, uniqueName, missingRequirement, IN_CI, gate, SCREENSHOT_DIR, until, withPages, createRoom,
} from "../lib/harness.mjs";

const TEST_TIMEOUT_MS = 60_000;
/**
 * How long a pushed change may take to show. Well under the polling periods this replaces
 * (10 s canvas snapshot, 15 s friends, 30 s rooms), so a page that still polled would fail.
 */
const LIVE_MS = 5_000;
/** The server tells "offline" only after a user has had no session this long (a reload tells nothing). */
const OFFLINE_GRACE_MS = 3_000;

const missing = missingRequirement();
if (missing && !IN_CI) console.log(`e2e tests skipped: ${missing}`);

let server = null;
let browser = null;

/** A sends B a friend request through the form; B accepts it in its list (pushed, no Refresh). */
async function befriend(a, na, b, nb) {
  await a.fill("#friend-name", nb);
  await a.click("#add-friend");
  const accept = b.locator(`#incoming button[data-action="accept"][data-username="${na}"]`);
  await accept.waitFor({ timeout: LIVE_MS });
  await accept.click();
  await a.locator(`#friends li[data-username="${nb}"]`).waitFor({ timeout: LIVE_MS });
  await b.locator(`#friends li[data-username="${na}"]`).waitFor();
}

/** Opens the conversation with `name` from the friends list; resolves once it takes input. */
async function openDm(page, name) {
  await page.click(`#friends button[data-action="dm"][data-username="${name}"]`);
  await page.waitForFunction((n) => document.getElementById("dm-title").textContent === `Messages with ${n}` && !document.getElementById("dm-input").disabled, name);
}

/** Sends a direct message in the open conversation and waits for the server's answer. */
async function sendDm(page, text) {
  await page.fill("#dm-input", text);
  await page.click("#dm-send");
  await page.locator("#dm-messages li[data-seq]").filter({ hasText: text }).waitFor();
}

async function sendRoomMessage(page, text) {
  await page.fill("#message", text);
  await page.click("#send");
  await page.locator("#messages li[data-seq]").filter({ hasText: text }).waitFor();
}

/** `#friends` row of `name` on `page`: its data-online once it is `online` ("true" | "false"). */
async function friendOnline(page, name, online) {
  const timeout = LIVE_MS + (String(online) === "false" ? OFFLINE_GRACE_MS : 0);
  await page.locator(`#friends li[data-username="${name}"][data-online="${online}"]`).waitFor({ timeout });
}

describe("live for everyone", { concurrency: 1 }, () => {
  before(async () => {
    if (missing) return;
    server = await new Server({ name: "server-live" }).start();
    browser = await new Browser(server).start();
    const stale = await server.staleAssets();
    if (WEB_FROM_DISK) console.log("web client served from gateway/web/ on disk (PIXELPARTY_E2E_WEB_FROM_DISK=1)");
    else if (stale.length) console.log(`WARNING: the server binary embeds a web client that differs from gateway/web/ on disk (${stale.join(", ")}): rebuild it to test the current client`);
    console.log(`server ${server.base}, logs in ${server.stderrPath}, screenshots in ${SCREENSHOT_DIR}`);
  });

  after(async () => {
    await browser?.stop();
    await server?.stop();
  });

  test("1 visitor: a logged-out page sees another user's paint live, without a second snapshot; logging in replaces the visitor session", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    const snapshots = [];
    const sockets = [];
    const record = async (context) => {
      context.on("request", (r) => {
        if (new URL(r.url()).pathname === "/canvas/snapshot") snapshots.push(Date.now());
      });
      context.on("page", (p) => p.on("websocket", (ws) => {
        const s = { url: ws.url(), closed: false };
        sockets.push(s);
        ws.on("close", () => {
          s.closed = true;
        });
      }));
    };
    await withPages(browser, "1-visitor", [{ label: "visitor", setup: record }, "A"], async ([v, a]) => {
      // The visitor's session: a WebSocket that asks for a visitor session, welcomed read-only.
      await v.waitForFunction(() => window.pixelparty.state.visitor && window.pixelparty.state.connection === "connected", null, { timeout: LIVE_MS });
      await v.waitForFunction(() => window.pixelparty.state.subscribed > 0);
      assert.equal(sockets.length, 1, `one session: ${JSON.stringify(sockets)}`);
      assert.equal(new URL(sockets[0].url).searchParams.get("visitor"), "1");
      assert.equal(v.webTransports.length, 0, "a visitor session is a WebSocket");
      assert.equal(await v.textContent("#conn-state"), "viewing live");
      assert.equal(await v.getAttribute("#conn-state", "data-tone"), "ok");
      // Paint and chat stay logged out.
      assert.equal(await v.textContent("#cooldown-text"), "Log in to paint");
      assert.equal(await v.isVisible("#auth-form"), true);
      assert.equal(await v.isHidden("#chat-panel .chat"), true);
      assert.equal(await v.isHidden("#social-panel .social"), true);
      const refused = await v.evaluate(() => window.pixelparty.paint(1, 1, 2));
      assert.equal(refused.ok, false);
      assert.equal(refused.code, "unauthorized");

      await signUp(a, uniqueName("liveA"));
      const [x, y, colour] = [123, 45, 7];
      assert.equal(await v.evaluate(([px, py]) => window.pixelparty.pixelAt(px, py), [x, y]), 0);
      const started = Date.now();
      const r = await a.evaluate(([px, py, c]) => window.pixelparty.paint(px, py, c), [x, y, colour]);
      assert.equal(r.ok, true, `A's paint: ${JSON.stringify(r)}`);
      await v.waitForFunction(([px, py, c]) => window.pixelparty.pixelAt(px, py) === c, [x, y, colour], { timeout: LIVE_MS });
      console.log(`the visitor saw the pixel ${Date.now() - started} ms after the paint`);
      assert.equal(snapshots.length, 1, "the visitor loaded the snapshot once and never polled it");

      // Logging in: the visitor session ends and the user's own session takes over.
      const name = uniqueName("liveV");
      await signUp(v, name);
      assert.equal(await v.evaluate(() => window.pixelparty.state.visitor), false);
      assert.equal(await v.textContent("#conn-state"), "connected");
      await v.waitForFunction(() => window.pixelparty.state.subscribed > 0);
      await until(() => sockets[0].closed, { timeoutMs: LIVE_MS, what: "the visitor WebSocket to close" });
      const userSessions = sockets.slice(1).filter((s) => !new URL(s.url).searchParams.has("visitor")).length + v.webTransports.length;
      assert.ok(userSessions >= 1, `a session of the user's own: ${JSON.stringify({ sockets, wt: v.webTransports })}`);
      const painted = await v.evaluate(([px, py]) => window.pixelparty.paint(px, py, 3), [x + 1, y]);
      assert.equal(painted.ok, true, `the logged-in page paints: ${JSON.stringify(painted)}`);
      await a.waitForFunction(([px, py]) => window.pixelparty.pixelAt(px, py) === 3, [x + 1, y]);
      assert.equal(snapshots.length, 1, "still one snapshot request");

      // Logging out: back to watching live over a new visitor session (the cookie is gone).
      const before = sockets.length;
      await v.click("#logout");
      await v.waitForFunction(() => window.pixelparty.state.visitor && window.pixelparty.state.connection === "connected", null, { timeout: LIVE_MS });
      assert.equal(await v.textContent("#conn-state"), "viewing live");
      assert.equal(sockets.slice(before).filter((s) => new URL(s.url).searchParams.get("visitor") === "1").length, 1);
      await a.waitForFunction(() => document.getElementById("cooldown").dataset.ready === "true"); // A's 1 s cooldown
      const r2 = await a.evaluate(([px, py]) => window.pixelparty.paint(px, py, 9), [x + 2, y]);
      assert.equal(r2.ok, true, `A's paint: ${JSON.stringify(r2)}`);
      await v.waitForFunction(([px, py]) => window.pixelparty.pixelAt(px, py) === 9, [x + 2, y], { timeout: LIVE_MS });
    });
  });

  test("2 friends: a request appears on the other page without Refresh, and its acceptance on the requester's", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "2-friend-request", ["A", "B"], async ([a, b]) => {
      const [na, nb] = [uniqueName("reqA"), uniqueName("reqB")];
      await signUp(a, na);
      await signUp(b, nb);
      await a.fill("#friend-name", nb);
      await a.click("#add-friend");
      // B: the request is listed and a toast says so, pushed (no Refresh clicked).
      await b.locator(`#incoming li[data-username="${na}"]`).waitFor({ timeout: LIVE_MS });
      await b.waitForFunction((n) => document.getElementById("notice").textContent === `${n} asks to be your friend.`, na, { timeout: LIVE_MS });
      await a.locator(`#outgoing li[data-username="${nb}"]`).waitFor();

      await b.click(`#incoming button[data-action="accept"][data-username="${na}"]`);
      // A: B is a friend now (with a Message button), the request is gone, and a toast says so.
      await a.locator(`#friends button[data-action="dm"][data-username="${nb}"]`).waitFor({ timeout: LIVE_MS });
      await a.locator(`#outgoing li[data-username="${nb}"]`).waitFor({ state: "detached", timeout: LIVE_MS });
      await a.waitForFunction((n) => document.getElementById("notice").textContent === `You and ${n} are now friends.`, nb, { timeout: LIVE_MS });
      // Both are online, so each sees the other's green dot.
      await friendOnline(a, nb, "true");
      await friendOnline(b, na, "true");
    });
  });

  test("3 block: the blocked user's friend entry and Message button go; both open conversations stop taking input", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "3-block", ["A", "B"], async ([a, b]) => {
      const [na, nb] = [uniqueName("blkA"), uniqueName("blkB")];
      await signUp(a, na);
      await signUp(b, nb);
      await befriend(a, na, b, nb);
      await openDm(a, nb);
      await openDm(b, na);
      await sendDm(b, `before the block, ${na}`);

      // A blocks B from the friends list.
      await a.click(`#friends button[data-action="block"][data-username="${nb}"]`);
      await a.locator(`#blocks li[data-username="${nb}"]`).waitFor();
      // A (the blocker): the open conversation takes no input and says why.
      await a.waitForFunction(() => document.getElementById("dm-input").disabled && document.getElementById("dm-send").disabled);
      assert.match(await a.textContent("#dm-closed"), new RegExp(`^You blocked ${nb}`));
      assert.equal(await a.isVisible("#dm-closed"), true);
      await a.locator(`#friends li[data-username="${nb}"]`).waitFor({ state: "detached", timeout: LIVE_MS });

      // B (the blocked): A's entry and Message button disappear, pushed; the conversation closes.
      await b.locator(`#friends li[data-username="${na}"]`).waitFor({ state: "detached", timeout: LIVE_MS });
      assert.equal(await b.locator(`button[data-action="dm"][data-username="${na}"]`).count(), 0, "no Message button");
      await b.waitForFunction(() => document.getElementById("dm-input").disabled, null, { timeout: LIVE_MS });
      assert.match(await b.textContent("#dm-closed"), new RegExp(`^You and ${na} are not friends any more`));
      // The old messages stay readable.
      assert.equal(await b.locator("#dm-messages li[data-seq]").filter({ hasText: "before the block" }).count(), 1);
    });
  });

  test("4 online: a friend's dot turns on when they open a page and off when they close it; online friends first", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "4-online", ["A", "B", "C"], async ([a, b, c]) => {
      // C's name sorts before B's: only the online-first order puts B above C.
      const [na, nb, nc] = [uniqueName("onA"), uniqueName("zonB"), uniqueName("aoffC")];
      await signUp(a, na);
      await signUp(b, nb);
      await signUp(c, nc);
      await befriend(a, na, b, nb);
      await befriend(a, na, c, nc);
      await friendOnline(a, nb, "true");
      await friendOnline(a, nc, "true");

      await c.goto("about:blank");
      await friendOnline(a, nc, "false");
      const order = () => a.$$eval("#friends li[data-username]", (els) => els.map((e) => e.dataset.username));
      assert.deepEqual(await order(), [nb, nc], "online friends first");
      assert.equal(await a.textContent(`#friends li[data-username="${nb}"] .sr-only`), " online", "screen readers hear it");
      assert.equal(await a.locator(`#friends li[data-username="${nc}"] .sr-only`).count(), 0);

      await b.goto("about:blank");
      await friendOnline(a, nb, "false");
      await b.goto(`${server.base}/`);
      await loggedInAs(b, nb);
      await friendOnline(a, nb, "true");
      await c.goto(`${server.base}/`);
      await loggedInAs(c, nc);
      await friendOnline(a, nc, "true");
      assert.deepEqual(await order(), [nc, nb], "both online: by name");
    });
  });

  test("5 unread: a direct message while another conversation is open counts in the tab title until it is opened", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "5-unread", ["A", "B", "C"], async ([a, b, c]) => {
      const [na, nb, nc] = [uniqueName("unA"), uniqueName("unB"), uniqueName("unC")];
      await signUp(a, na);
      await signUp(b, nb);
      await signUp(c, nc);
      await befriend(a, na, b, nb);
      await befriend(a, na, c, nc);
      await openDm(a, nc);
      assert.equal(await a.title(), "pixelparty");

      await openDm(b, na);
      await sendDm(b, `one for you, ${na}`);
      await a.waitForFunction(() => document.title === "(1) pixelparty", null, { timeout: LIVE_MS });
      const conv = a.locator(`#conversations button[data-username="${nb}"]`);
      assert.equal(await conv.locator(".badge.unread").textContent(), "1");
      assert.equal(await a.textContent("#friends-unread"), "1", "the phone's Friends button counts too");
      await sendDm(b, `and another, ${na}`);
      await a.waitForFunction(() => document.title === "(2) pixelparty", null, { timeout: LIVE_MS });

      // A message in the open conversation does not count.
      await openDm(c, na);
      await sendDm(c, `hi ${na}`);
      await a.locator("#dm-messages li[data-seq]").filter({ hasText: `hi ${na}` }).waitFor();
      assert.equal(await a.title(), "(2) pixelparty");

      // Opening the conversation is looking at it.
      await conv.click();
      await a.waitForFunction(() => document.title === "pixelparty");
      await a.locator("#dm-messages li[data-seq]").filter({ hasText: "and another" }).waitFor();
      assert.equal(await conv.locator(".badge.unread").count(), 0);
      assert.equal(await a.isHidden("#friends-unread"), true);

      // The open conversation is read only while its panel shows: with the side panel hidden,
      // a message there counts until the panel is shown again.
      await a.click("#sidebar-toggle");
      await a.waitForFunction(() => document.body.dataset.sidebar === "closed");
      await sendDm(b, `while hidden, ${na}`);
      await a.waitForFunction(() => document.title === "(1) pixelparty", null, { timeout: LIVE_MS });
      await a.click("#sidebar-toggle");
      await a.waitForFunction(() => document.title === "pixelparty", null, { timeout: LIVE_MS });

      // Unread messages from someone A then blocks: their conversation leaves the list, and
      // its count leaves the title with it (it stuck before: nothing could clear it).
      await openDm(a, nc);
      await sendDm(b, `one more, ${na}`);
      await a.waitForFunction(() => document.title === "(1) pixelparty", null, { timeout: LIVE_MS });
      await a.click(`#friends button[data-action="block"][data-username="${nb}"]`);
      await a.locator(`#blocks li[data-username="${nb}"]`).waitFor();
      await a.waitForFunction(() => document.title === "pixelparty", null, { timeout: LIVE_MS });
      assert.equal(await a.isHidden("#friends-unread"), true);
    });
  });

  test("6 rooms: a room one user creates appears in another user's room list", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    await withPages(browser, "6-room-created", ["A", "B"], async ([a, b]) => {
      await signUp(a, uniqueName("roomA"));
      await signUp(b, uniqueName("roomB"));
      const name = uniqueName("pushed");
      const id = await createRoom(a, name);
      const listed = b.locator(`#rooms button[data-room-id="${id}"]`);
      await listed.waitFor({ timeout: LIVE_MS });
      assert.equal(await listed.locator(".room-name").textContent(), name);
      await listed.click();
      await b.locator(`#rooms button[data-room-id="${id}"][data-joined="true"]`).waitFor();
    });
  });

  test("7 notifications: a direct message and a mention while the page is hidden notify; a click opens the conversation", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    // A's page: notifications allowed, the Notification class recorded, and a visibility the test sets.
    const notifying = async (context) => {
      await context.grantPermissions(["notifications"], { origin: server.base });
      await context.addInitScript(() => {
        window.__notifications = [];
        window.__asked = 0;
        window.__hidden = false;
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (window.__hidden ? "hidden" : "visible") });
        Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
        const Real = window.Notification;
        window.Notification = class {
          constructor(title, options = {}) {
            this.title = title;
            this.body = options.body;
            this.tag = options.tag;
            this.onclick = null;
            window.__notifications.push(this);
          }
          close() {}
          static get permission() {
            return Real.permission;
          }
          static requestPermission() {
            window.__asked++;
            return Real.requestPermission();
          }
        };
      });
    };
    const setHidden = (page, hidden) => page.evaluate((h) => {
      window.__hidden = h;
      document.dispatchEvent(new Event("visibilitychange"));
    }, hidden);
    const recorded = (page) => page.evaluate(() => window.__notifications.map((n) => ({ title: n.title, body: n.body, tag: n.tag })));

    await withPages(browser, "7-notifications", [{ label: "A", setup: notifying }, "B"], async ([a, b]) => {
      const [na, nb] = [uniqueName("ntA"), uniqueName("ntB")];
      await signUp(a, na);
      await signUp(b, nb);
      await befriend(a, na, b, nb);
      assert.equal(await a.isChecked("#notify-toggle"), false, "off until switched on");
      await a.check("#notify-toggle");
      await a.waitForFunction(() => localStorage.getItem("pixelparty.notify") === "on");
      assert.equal(await a.evaluate(() => window.__asked), 1, "switching on asks the browser");
      const roomId = await createRoom(a, uniqueName("ntroom"));
      await b.locator(`#rooms button[data-room-id="${roomId}"]`).click({ timeout: LIVE_MS });
      await b.locator(`#rooms button[data-room-id="${roomId}"][data-joined="true"]`).waitFor();
      await openDm(b, na);

      // In view: a direct message notifies nobody (the page shows it).
      await sendDm(b, "while you look");
      await a.locator("#conversations button[data-username] .badge.unread").waitFor();
      assert.deepEqual(await recorded(a), []);

      await setHidden(a, true);
      await sendDm(b, "while you are away");
      await a.waitForFunction(() => window.__notifications.length === 1, null, { timeout: LIVE_MS });
      assert.deepEqual(await recorded(a), [{ title: `${nb} (direct message)`, body: "while you are away", tag: `pixelparty-direct:${await b.evaluate(() => window.pixelparty.state.user.id)}` }]);

      // A room message that mentions A (any case) notifies; one that does not, does not.
      await sendRoomMessage(b, `look here @${na.toUpperCase()}!`);
      await a.waitForFunction(() => window.__notifications.length === 2, null, { timeout: LIVE_MS });
      assert.match((await recorded(a))[1].title, new RegExp(`^${nb} mentioned you in # `));
      await sendRoomMessage(b, `no mention of @${na}x here`);
      await a.locator("#messages li[data-seq]").filter({ hasText: "no mention of" }).waitFor();
      assert.equal((await recorded(a)).length, 2);
      // Unread: two direct messages and the two room messages (its room is open, but hidden).
      assert.equal(await a.title(), "(4) pixelparty");

      // A click on the notification opens the conversation.
      await a.evaluate(() => window.__notifications[0].onclick({ preventDefault() {} }));
      await a.waitForFunction((n) => document.getElementById("dm-title").textContent === `Messages with ${n}`, nb);
      await a.waitForFunction(() => document.title === "(2) pixelparty");
      // Back in view: the open room's messages are read too.
      await setHidden(a, false);
      await a.waitForFunction(() => document.title === "pixelparty");

      // Remembered across a reload.
      await a.reload();
      await loggedInAs(a, na);
      assert.equal(await a.isChecked("#notify-toggle"), true);
    });
  });

  test("8 no console errors or page errors on any page", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (gate(t)) return;
    assert.ok(browser.pages.length >= 10, `pages were watched: ${browser.pages.length}`);
    for (const e of browser.errors) console.log(`ERROR [${e.page}] ${e.kind}: ${e.text} ${e.location}`);
    assert.deepEqual(browser.errors, [], "console errors / page errors");
  });
});
