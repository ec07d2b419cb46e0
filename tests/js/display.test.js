// What the pane says and how it looks (static/outlook/display.js): overdue tasks, errors in
// words, Office's theme, what an empty search offers, short previews.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {
  localDay, isOverdue, errorMessage, isDarkTheme, themeColours, searchProposal, shortText,
  UNAVAILABLE, UNREACHABLE,
} = require("../../static/outlook/display.js");

test("the user's day, as a due date reads", () => {
  assert.equal(localDay(new Date(2026, 0, 5, 23, 59)), "2026-01-05");
});

test("overdue: due before today and not done; due today is not late yet", () => {
  assert.equal(isOverdue({ due_date: "2026-11-19" }, "2026-11-20"), true);
  assert.equal(isOverdue({ due_date: "2026-11-20" }, "2026-11-20"), false);
  assert.equal(isOverdue({ due_date: "2026-11-21" }, "2026-11-20"), false);
  assert.equal(isOverdue({ due_date: null }, "2026-11-20"), false);
  assert.equal(isOverdue({ due_date: "2026-11-19", done: true }, "2026-11-20"), false);
});

test("errors in words: the connector's message, else what the status means", () => {
  assert.equal(errorMessage(503, { message: "The database is unavailable right now." }),
    "The database is unavailable right now.");
  assert.equal(errorMessage(503, {}), UNAVAILABLE);
  assert.equal(errorMessage(502, null), UNAVAILABLE);
  for (const status of [400, 403, 404, 413, 429, 500, 503]) {
    assert.doesNotMatch(errorMessage(status, {}), /answered|\d{3}/);
  }
  assert.match(UNREACHABLE, /cannot be reached/);
});

test("Office's theme: isDarkTheme where given, else the body's background", () => {
  assert.equal(isDarkTheme(undefined), null);
  assert.equal(isDarkTheme({ isDarkTheme: true, bodyBackgroundColor: "#ffffff" }), true);
  assert.equal(isDarkTheme({ bodyBackgroundColor: "#1f1f1f" }), true);
  assert.equal(isDarkTheme({ bodyBackgroundColor: "#FFFFFF" }), false);
  assert.equal(isDarkTheme({ bodyBackgroundColor: "#333" }), true);
  assert.equal(isDarkTheme({ bodyBackgroundColor: "red" }), null);
  assert.deepEqual(themeColours({ bodyBackgroundColor: "#1f1f1f", bodyForegroundColor: "#fff" }),
    { "--bg": "#1f1f1f", "--text": "#fff" });
  assert.deepEqual(themeColours({ bodyBackgroundColor: "url(x)" }), {});
});

test("an empty search offers the address typed, or the name", () => {
  assert.deepEqual(searchProposal(" Ana@Globex.test "), { name: "", email: "ana@globex.test" });
  assert.deepEqual(searchProposal("Ana Lima"), { name: "Ana Lima", email: "" });
});

test("a short preview cuts at a word, with an ellipsis", () => {
  assert.equal(shortText("Dear Hank,\n\nthanks", 100), "Dear Hank, thanks");
  assert.equal(shortText("one two three four", 12), "one two…");
});
