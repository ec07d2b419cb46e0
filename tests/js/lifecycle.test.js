// The task pane's history lines and edit changes (static/outlook/lifecycle.js): the wording
// of history_line and local_time in connector/lookup/view_models.py.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {
  historyLine, localTime, parseEmails, contactChanges, isOpenTicket, LEAD_STAGES,
} = require("../../static/outlook/lifecycle.js");

function entry(fields) {
  return {
    at: "2026-11-12T13:02:00+00:00", by: { id: 1, name: "Ana" },
    from: null, to: null, from_label: null, to_label: null, ...fields,
  };
}

test("a change reads field: before → after, by whom, when", () => {
  assert.equal(historyLine(entry({ field: "stage", from: "qualified", to: "won" }), "12 Nov 14:02"),
    "stage: qualified → won, by Ana, 12 Nov 14:02");
});

test("field names as people say them; other underscores become spaces", () => {
  const names = {
    owner_id: "owner", company_id: "company", contact_id: "contact",
    expected_revenue: "expected revenue", close_date: "close date",
    lost_reason: "lost reason", job_title: "job title", some_new_field: "some new field",
  };
  for (const [field, name] of Object.entries(names)) {
    assert.equal(historyLine(entry({ field, from: "a", to: "b" }), "T"), `${name}: a → b, by Ana, T`);
  }
});

test("labels win over raw values, and nothing reads none", () => {
  const owner = entry({ field: "owner_id", from: 1, to: 2, from_label: "ann", to_label: "bob" });
  assert.equal(historyLine(owner, "T"), "owner: ann → bob, by Ana, T");
  assert.equal(historyLine(entry({ field: "phone", from: null, to: "+1 555" }), "T"),
    "phone: none → +1 555, by Ana, T");
  assert.equal(historyLine(entry({ field: "job_title", from: "CEO", to: "" }), "T"),
    "job title: CEO → none, by Ana, T");
  assert.equal(historyLine(entry({ field: "emails", from: ["a@x.test"], to: ["a@x.test", "b@x.test"] }), "T"),
    "emails: a@x.test → a@x.test, b@x.test, by Ana, T");
  assert.equal(historyLine(entry({ field: "emails", from: [], to: ["a@x.test"] }), "T"),
    "emails: none → a@x.test, by Ana, T");
  assert.equal(historyLine(entry({ field: "done", from: false, to: true }), "T"), "done: no → yes, by Ana, T");
  assert.equal(historyLine(entry({ field: "probability", from: 10, to: 100 }), "T"),
    "probability: 10 → 100, by Ana, T");
});

test("archived, restored and merged have words of their own; nobody named is someone", () => {
  assert.equal(historyLine(entry({ field: "archived", from: false, to: true }), "T"), "archived, by Ana, T");
  assert.equal(historyLine(entry({ field: "archived", from: true, to: false }), "T"), "restored, by Ana, T");
  assert.equal(historyLine(entry({ field: "merged", from: 7, from_label: "ana lima (ana@x.test)" }), "T"),
    "merged ana lima (ana@x.test) into this, by Ana, T");
  assert.equal(historyLine(entry({ field: "merged", from: 7 }), "T"), "merged 7 into this, by Ana, T");
  assert.equal(historyLine(entry({ field: "stage", from: "new", to: "won", by: { id: null, name: null } }), "T"),
    "stage: new → won, by someone, T");
});

test("times in the reader's zone; the year only when it is not this one", () => {
  const now = new Date("2026-12-01T00:00:00Z");
  assert.equal(localTime("2026-11-12T13:02:00+00:00", "Europe/Lisbon", now), "12 Nov 13:02");
  assert.equal(localTime("2026-11-12T13:02:00+00:00", "Asia/Kolkata", now), "12 Nov 18:32");
  assert.equal(localTime("2026-11-12T13:02:00+00:00", "America/Sao_Paulo", now), "12 Nov 10:02");
  assert.equal(localTime("2025-09-03T00:05:00+00:00", "UTC", now), "3 Sep 2025 00:05");
  // The day (and the year) where the reader is: 23:30 UTC on New Year's Eve is already 2027 in Tokyo.
  assert.equal(localTime("2026-12-31T23:30:00+00:00", "Asia/Tokyo", now), "1 Jan 2027 08:30");
  assert.equal(localTime("2026-11-12T00:00:00+00:00", "UTC", now), "12 Nov 00:00");
});

test("what the contact form changes, and nothing else", () => {
  const contact = { name: "Hank Scorpio", phone: null, job_title: "CEO", emails: ["hank@globex.test"] };
  const same = { name: " Hank Scorpio ", phone: "", job_title: "CEO", emails: "hank@globex.test\n" };
  assert.deepEqual(contactChanges(contact, same), {});
  const edited = { name: "Hank", phone: "+1 555 0100", job_title: " ", emails: "hank@globex.test, h@globex.test" };
  assert.deepEqual(contactChanges(contact, edited), {
    name: "Hank", phone: "+1 555 0100", job_title: null, emails: ["hank@globex.test", "h@globex.test"],
  });
  assert.deepEqual(parseEmails(" a@x.test;b@x.test \n\n c@x.test "), ["a@x.test", "b@x.test", "c@x.test"]);
});

test("stages in their order, and which tickets are open", () => {
  assert.deepEqual(LEAD_STAGES, ["new", "qualified", "proposition", "won", "lost"]);
  assert.equal(isOpenTicket({ status: "pending" }), true);
  assert.equal(isOpenTicket({ status: "closed" }), false);
  assert.equal(isOpenTicket({ status: "resolved" }), false);
});
