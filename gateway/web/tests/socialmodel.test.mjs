// Tests of socialmodel.js: what each pushed Social frame changes, pushes kept across a slow
// list read, the friends list's order, and why a direct conversation is closed (pure logic).
// Run: cd gateway/web && node --test tests/

import { test } from "node:test";
import assert from "node:assert/strict";

import { socialEffect, PushLog, sortFriends, dmClosedReason } from "../socialmodel.js";
import { SocialKind } from "../codec.js";

test("every Social kind of the protocol has an effect; unknown kinds none", () => {
  for (const kind of Object.keys(SocialKind)) assert.ok(socialEffect(kind), kind);
  assert.equal(socialEffect("poked"), null);
  assert.equal(socialEffect("toString"), null, "no inherited names");
});

test("friend changes re-read GET /friends; block changes GET /blocks too; presence and rooms read nothing", () => {
  const reads = (kind) => [socialEffect(kind).friends ? "friends" : null, socialEffect(kind).blocks ? "blocks" : null].filter(Boolean);
  assert.deepEqual(reads("friend_request"), ["friends"]);
  assert.deepEqual(reads("request_sent"), ["friends"]);
  assert.deepEqual(reads("friend_added"), ["friends"]);
  assert.deepEqual(reads("friend_removed"), ["friends"]);
  assert.deepEqual(reads("blocked"), ["friends", "blocks"]);
  assert.deepEqual(reads("unblocked"), ["friends", "blocks"]);
  assert.deepEqual(reads("online"), []);
  assert.deepEqual(reads("offline"), []);
  assert.deepEqual(reads("room_created"), []);
  assert.equal(socialEffect("online").online, true);
  assert.equal(socialEffect("offline").online, false);
  assert.equal(socialEffect("room_created").room, true);
  // A removal or a block ends the friendship at once (the Message button goes before the read).
  assert.equal(socialEffect("friend_removed").ends, true);
  assert.equal(socialEffect("blocked").ends, true);
  assert.equal(socialEffect("blocked").blocked, true);
  assert.equal(socialEffect("unblocked").blocked, false);
  assert.equal(socialEffect("friend_added").ends, undefined);
});

test("only a request and a new friend are worth a toast", () => {
  const toasts = Object.keys(SocialKind).filter((k) => socialEffect(k).toast).sort();
  assert.deepEqual(toasts, ["friend_added", "friend_request"]);
  assert.equal(socialEffect("friend_request").toast("bob"), "bob asks to be your friend.");
  assert.equal(socialEffect("friend_added").toast("bob"), "You and bob are now friends.");
});

test("PushLog: what was pushed after a read started is applied on top of its answer; bounded", () => {
  const log = new PushLog(3);
  log.push("a");
  const mark = log.mark();
  assert.deepEqual(log.since(mark), []);
  log.push("b");
  log.push("c");
  assert.deepEqual(log.since(mark), ["b", "c"]);
  assert.deepEqual(log.since(0), ["a", "b", "c"]);
  log.push("d");
  assert.deepEqual(log.since(0), ["b", "c", "d"], "the oldest is forgotten past max");
  log.clear();
  assert.deepEqual(log.since(0), []);
  log.push("e");
  assert.deepEqual(log.since(mark), ["e"], "marks stay comparable after a clear");
});

test("friends: online first, then by name; the input is not reordered", () => {
  const list = [
    { id: 1, username: "cy", online: false },
    { id: 2, username: "al" },
    { id: 3, username: "bo", online: true },
    { id: 4, username: "ab", online: true },
  ];
  assert.deepEqual(sortFriends(list).map((u) => u.username), ["ab", "bo", "al", "cy"]);
  assert.deepEqual(list.map((u) => u.id), [1, 2, 3, 4]);
});

test("a direct conversation is closed, with a reason, when not friends or blocked; never before the lists are read", () => {
  assert.equal(dmClosedReason({ name: "bo", known: true, friend: true, blocked: false }), null);
  assert.equal(dmClosedReason({ name: "bo", known: false, friend: false, blocked: false }), null);
  assert.match(dmClosedReason({ name: "bo", known: true, friend: false, blocked: false }), /^You and bo are not friends any more/);
  assert.match(dmClosedReason({ name: "bo", known: true, friend: false, blocked: true }), /^You blocked bo: unblock them/);
});
