// Followers and messages from a record, as the pane words them (static/outlook/display.js).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { recordNumber, messageSubject, messageLine, followerLine } = require("../../static/outlook/display.js");

test("a lead's and a ticket's number; none for a contact", () => {
  assert.equal(recordNumber("lead", 12), "L-12");
  assert.equal(recordNumber("ticket", 7), "T-7");
  assert.equal(recordNumber("contact", 3), "");
});

test("the proposed subject: the title with the record's tag", () => {
  assert.equal(messageSubject("lead", 12, " 50 seats "), "50 seats [#L-12]");
  assert.equal(messageSubject("contact", 3, "Hank Scorpio"), "Hank Scorpio");
});

test("a failed message says so, with its error", () => {
  const line = messageLine({
    subject: "Quote", to: ["hank@globex.test"], status: "failed", error: "550 no such user",
    created_at: "2026-11-30T10:00:00Z", author: { id: 1, name: "Ana" },
  });
  assert.deepEqual(line, {
    subject: "Quote", failed: true, error: "550 no such user",
    sub: "failed · to hank@globex.test · 2026-11-30 · Ana",
  });
  assert.equal(messageLine({ subject: "", to: [], status: "queued", created_at: "2026-11-30" }).sub,
    "queued · 2026-11-30");
});

test("a follower's line: the owner and you are marked", () => {
  assert.deepEqual(followerLine({ name: "Ana", email: "ana@acme.test", is_owner: true, is_me: true }),
    { name: "Ana", sub: "ana@acme.test · owner · you" });
  assert.deepEqual(followerLine({ name: "", email: "bob@x.test", is_owner: false, is_me: false }),
    { name: "bob@x.test", sub: "bob@x.test" });
});
