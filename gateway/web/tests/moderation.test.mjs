// Tests of the moderation tools' pure parts: the rectangle a drag selects (viewport.js),
// Restore an area's moment (datetime-local ↔ ms), wording of the area, of a rewind's answer
// and of its refusals (restore.js), and the audit log's cells and paging (admin.js).
// Run: cd gateway/web && node --test tests/

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { Viewport, rectBetween } from "../viewport.js";
import { toLocalInput, fromLocalInput, describeArea, rewindOutcome, rewindRefusal, RESTORE_DEFAULT_AGO_MS } from "../restore.js";
import { auditCells, auditActionLabel, auditOlderCursor, AUDIT_PAGE } from "../admin.js";
import { ApiError } from "../api.js";
import { formatDateTime } from "../ui.js";

describe("area selection", () => {
  test("rectBetween: corners in any order, both inside", () => {
    assert.deepEqual(rectBetween({ x: 3, y: 4 }, { x: 3, y: 4 }), { x: 3, y: 4, width: 1, height: 1 });
    assert.deepEqual(rectBetween({ x: 10, y: 2 }, { x: 4, y: 7 }), { x: 4, y: 2, width: 7, height: 6 });
    assert.deepEqual(rectBetween({ x: 4, y: 7 }, { x: 10, y: 2 }), { x: 4, y: 2, width: 7, height: 6 });
  });

  test("a drag past the canvas's edge keeps to the edge", () => {
    const vp = new Viewport(800, 600, 256, 256);
    vp.centreOn(128, 128, 4);
    assert.deepEqual(vp.clampedPixelAt(400, 300), { x: 128, y: 128 });
    assert.deepEqual(vp.clampedPixelAt(403.9, 300), { x: 128, y: 128 });
    assert.deepEqual(vp.clampedPixelAt(404, 296), { x: 129, y: 127 });
    assert.deepEqual(vp.clampedPixelAt(-5000, 99_999), { x: 0, y: 255 });
    assert.equal(vp.pixelAt(-5000, 99_999), null, "where pixelAt finds no pixel");
  });
});

describe("Restore an area", () => {
  test("datetime-local values round-trip to the second in the browser's time zone", () => {
    const ms = Date.UTC(2025, 2, 1, 13, 5, 9, 750);
    const v = toLocalInput(ms);
    assert.match(v, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
    assert.equal(fromLocalInput(v), ms - 750, "whole seconds");
    const d = new Date(2024, 11, 31, 23, 59, 0);
    assert.equal(toLocalInput(d.getTime()), "2024-12-31T23:59:00");
    assert.equal(fromLocalInput("2024-12-31T23:59"), d.getTime(), "seconds are optional");
    assert.equal(fromLocalInput("2024-12-31T23:59:00.5"), d.getTime() + 500);
  });

  test("what is not a moment is refused", () => {
    for (const bad of ["", "yesterday", "2025-02-30T10:00", "2025-13-01T10:00", "2025-01-01 10:00", "2025-01-01T25:00", null, undefined]) {
      assert.equal(fromLocalInput(bad), null, String(bad));
    }
  });

  test("the default is ten minutes before now", () => {
    assert.equal(RESTORE_DEFAULT_AGO_MS, 600_000);
  });

  test("the area says how big it is and where", () => {
    assert.equal(describeArea({ x: 30, y: 40, width: 12, height: 8 }), "12 × 8 pixels (96 in all) from (30, 40) to (41, 47)");
    assert.equal(describeArea({ x: 0, y: 0, width: 256, height: 256 }), "256 × 256 pixels (65,536 in all) from (0, 0) to (255, 255)");
    assert.equal(describeArea({ x: 3, y: 4, width: 1, height: 1 }), "the pixel at (3, 4)");
  });

  test("a rewind's answer in words: restored, left alone, failed, unknown", () => {
    const when = "1 Mar 2025, 14:05:09";
    assert.equal(rewindOutcome({ planned: 5, restored: 5, painted_over: 0, not_restored: 0, outcome_unknown: 0 }, when),
      "Restored 5 pixels to how they were at 1 Mar 2025, 14:05:09.");
    assert.equal(rewindOutcome({ planned: 4, restored: 1, painted_over: 1, not_restored: 2, outcome_unknown: 0 }, when),
      "Restored 1 pixel to how they were at 1 Mar 2025, 14:05:09. 1 pixel painted again meanwhile was left alone. 2 pixels could not be restored.");
    assert.match(rewindOutcome({ planned: 3, restored: 0, painted_over: 0, not_restored: 0, outcome_unknown: 3 }, when), /For 3 pixels the server could not tell/);
    assert.equal(rewindOutcome({ planned: 0, restored: 0, painted_over: 0, not_restored: 0, outcome_unknown: 0 }, when),
      "Nothing to restore: the area already looks as it did at 1 Mar 2025, 14:05:09.");
  });

  test("refusals: another restore running, a moment in the future, anything else", () => {
    assert.equal(rewindRefusal(new ApiError(409, "conflict", "a rewind is already running")), "Another restore is running: try again when it has finished.");
    assert.equal(rewindRefusal(new ApiError(400, "invalid_argument", "at_ms is in the future")), "That moment cannot be restored to: invalid input: at_ms is in the future.");
    assert.equal(rewindRefusal(new ApiError(403, "forbidden", "")), "Restore failed: not allowed");
  });
});

describe("audit log", () => {
  test("cells: time, who (by name; the operator's endpoint is not a user), action in words, target, detail", () => {
    const t = 1_760_000_000_000;
    assert.deepEqual(auditCells({ seq: 7, time_ms: t, actor: 12, actor_name: "mod", action: "ban_user", target: "31", detail: "spam" }),
      { time: formatDateTime(t), who: "mod", action: "ban", target: "user #31", detail: "spam" });
    assert.equal(auditCells({ seq: 1, time_ms: t, actor: 0, action: "kick", target: "5", detail: "" }).who, "operator (admin endpoint)");
    assert.equal(auditCells({ seq: 1, time_ms: t, actor: 0, actor_name: "admin endpoint", action: "kick", target: "5", detail: "" }).target, "user #5", "a user is named by id");
    assert.equal(auditCells({ seq: 1, time_ms: t, actor: 3, action: "ban_net", target: "203.0.113.0/24", detail: "" }).target, "203.0.113.0/24");
    assert.equal(auditCells({ seq: 1, time_ms: t, actor: 3, action: "rewind", target: "canvas", detail: "" }).target, "canvas");
    assert.equal(auditCells({ seq: 1, time_ms: t, actor: 3, action: "ban_user", target: "31", target_name: "raider", detail: "" }).target, "raider", "a named user target");
    assert.equal(auditActionLabel("rewind"), "area restored");
    assert.equal(auditCells({ seq: 1, time_ms: t, actor: 9, action: "kick", target: "5", detail: "" }).who, "user #9");
  });

  test("action names in words; an unknown one as it is", () => {
    assert.equal(auditActionLabel("rollback"), "rollback");
    assert.equal(auditActionLabel("ban_user"), "ban");
    assert.equal(auditActionLabel("unban_net"), "address unban");
    assert.equal(auditActionLabel("new_thing"), "new thing");
  });

  test("paging: a full page has an older one before its oldest seq; a short page is the end", () => {
    const page = Array.from({ length: AUDIT_PAGE }, (_, i) => ({ seq: 200 - i }));
    assert.equal(auditOlderCursor(page), "151");
    assert.equal(auditOlderCursor(page.slice(0, 10)), null);
    assert.equal(auditOlderCursor([]), null);
    assert.equal(auditOlderCursor(undefined), null);
  });
});
