// Tests of attention.js: unread counts and when they clear, the tab title, mentions, and the
// decision to show a browser notification (pure logic, no DOM).
// Run: cd gateway/web && node --test tests/

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import {
  Unread, convKey, unreadLabel, unreadTitle, isMention, shouldNotify, notificationText, UNREAD_SHOWN_MAX, NOTIFICATION_BODY_MAX,
} from "../attention.js";

describe("unread counts", () => {
  test("a message counts when its conversation is not open or the page is hidden, never when it is the user's own", () => {
    const u = new Unread();
    const dm = convKey("direct", 7);
    const room = convKey("room", 7);
    assert.notEqual(dm, room, "a room and a user with the same id are different conversations");
    assert.equal(u.arrived(dm, { open: true, hidden: false }), false, "open and looked at");
    assert.equal(u.arrived(dm, { open: false, hidden: false }), true, "another conversation is open");
    assert.equal(u.arrived(dm, { open: true, hidden: true }), true, "open, but the page is hidden");
    assert.equal(u.arrived(dm, { open: false, hidden: true, mine: true }), false, "own messages (another tab) never count");
    assert.equal(u.arrived(room, { open: false, hidden: false }), true);
    assert.equal(u.count(dm), 2);
    assert.equal(u.count(room), 1);
    assert.equal(u.total(), 3);
    assert.equal(u.total("direct"), 2);
    assert.equal(u.total("room"), 1);
    assert.equal(u.seen(dm), true, "looking clears");
    assert.equal(u.seen(dm), false, "nothing left to clear");
    assert.equal(u.count(dm), 0);
    assert.equal(u.total(), 1);
    u.clear();
    assert.equal(u.total(), 0);
  });

  test("the tab title carries the total; badges cap at 99+", () => {
    assert.equal(unreadTitle("pixelparty", 0), "pixelparty");
    assert.equal(unreadTitle("pixelparty", 3), "(3) pixelparty");
    assert.equal(unreadTitle("pixelparty", UNREAD_SHOWN_MAX), "(99) pixelparty");
    assert.equal(unreadTitle("pixelparty", UNREAD_SHOWN_MAX + 1), "(99+) pixelparty");
    assert.equal(unreadLabel(0), "");
    assert.equal(unreadLabel(1), "1");
    assert.equal(unreadLabel(1000), "99+");
  });
});

describe("mentions", () => {
  test("@name in any case, at the start, after a space or punctuation, before punctuation", () => {
    for (const text of ["@ann hi", "hi @ann", "hi @Ann!", "(@ANN)", "thanks @ann.", "@ann, look", "hey\n@ann", "@ann"]) {
      assert.equal(isMention(text, "ann"), true, text);
    }
  });

  test("not inside a longer name, an address, or without the @", () => {
    for (const text of ["hi ann", "@anna", "@ann_b", "@ann-b", "@ann.b", "mail x@ann", "@@ann", "@an n", ""]) {
      assert.equal(isMention(text, "ann"), false, text);
    }
  });

  test("names with dots and dashes match only themselves", () => {
    assert.equal(isMention("hi @a.b-c", "a.b-c"), true);
    assert.equal(isMention("hi @aXb-c", "a.b-c"), false, "a dot in the name is not a wildcard");
    assert.equal(isMention("hi @a.b-c.", "a.b-c"), true);
    assert.equal(isMention("anything", ""), false);
    assert.equal(isMention(null, "ann"), false);
  });
});

describe("notifications", () => {
  const base = { enabled: true, permission: "granted", hidden: true, mine: false, direct: true, mention: false };

  test("a direct message or a mention, from someone else, while hidden, switched on and allowed", () => {
    assert.equal(shouldNotify(base), true);
    assert.equal(shouldNotify({ ...base, direct: false, mention: true }), true, "a mention in a room");
    assert.equal(shouldNotify({ ...base, direct: false, mention: false }), false, "an ordinary room message");
    assert.equal(shouldNotify({ ...base, hidden: false }), false, "the page is in view: it shows the message itself");
    assert.equal(shouldNotify({ ...base, mine: true }), false, "own messages");
    assert.equal(shouldNotify({ ...base, enabled: false }), false, "switched off");
    for (const permission of ["default", "denied", "unsupported"]) assert.equal(shouldNotify({ ...base, permission }), false, permission);
  });

  test("title and body say who and where; one tag per conversation; long texts are cut", () => {
    assert.deepEqual(notificationText({ direct: true, conv: 4, authorName: "bob", text: "hi\n  there" }), { title: "bob (direct message)", body: "hi there", tag: "pixelparty-direct:4" });
    const room = notificationText({ direct: false, conv: 9, authorName: "bob", roomName: "lobby", text: "x".repeat(500) });
    assert.equal(room.title, "bob mentioned you in # lobby");
    assert.equal(room.tag, "pixelparty-room:9");
    assert.equal(room.body.length, NOTIFICATION_BODY_MAX);
    assert.ok(room.body.endsWith("…"));
  });
});
