// How the task pane reads the open Outlook item (static/outlook/item.js), driven by
// office-addin-mock's OfficeMockObject in place of Office.context.mailbox.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { OfficeMockObject } = require("office-addin-mock");
const { readItem, participants, formatAddress, lookupValue, lookupValues } = require("../../static/outlook/item.js");

function mailbox(itemOverrides, { withFile = true, bodyFails = false } = {}) {
  const item = {
    itemId: "AAMk-1",
    subject: "Quote for 50 seats",
    from: { displayName: "Hank Scorpio", emailAddress: "Hank@Globex.test" },
    sender: { displayName: "Hank Scorpio", emailAddress: "hank@globex.test" },
    to: [
      { displayName: "Ann", emailAddress: "ann@acme.test" },
      { displayName: "Bob", emailAddress: "bob@acme.test" },
    ],
    cc: [{ displayName: "Carl", emailAddress: "carl@initech.test" }],
    internetMessageId: "<m1@globex.test>",
    conversationId: "conv-1",
    dateTimeCreated: "2026-11-20T10:00:00Z",
    attachments: [{ id: "a1", name: "rfq.pdf", contentType: "application/pdf", size: 8, isInline: false }],
    body: {
      getAsync(coercion, callback) {
        this.coercion = coercion;
        if (bodyFails) callback({ status: "failed", error: { message: "Body unavailable" } });
        else callback({ status: "succeeded", value: "<p>Hello</p>" });
      },
    },
    ...itemOverrides,
  };
  if (withFile) {
    item.getAsFileAsync = function (options, callback) {
      callback({ status: "succeeded", value: "RnJvbTogaGFua0BnbG9iZXgudGVzdA0KDQpIZWxsbw==" });
    };
  }
  // host "outlook": properties read directly, with no load()/sync() as in Excel or Word.
  return new OfficeMockObject({ host: "outlook", context: { mailbox: { item } } }).context.mailbox;
}

test("reads everything a card needs, and the EML where getAsFileAsync exists", async () => {
  const data = await readItem(mailbox(), { htmlCoercion: "html" });
  assert.equal(data.subject, "Quote for 50 seats");
  assert.deepEqual(data.from, { name: "Hank Scorpio", email: "hank@globex.test" });
  assert.equal(data.internetMessageId, "<m1@globex.test>");
  assert.equal(data.conversationId, "conv-1");
  assert.equal(data.bodyHtml, "<p>Hello</p>");
  assert.equal(data.bodyError, null);
  assert.equal(data.eml, "RnJvbTogaGFua0BnbG9iZXgudGVzdA0KDQpIZWxsbw==");
  assert.deepEqual(data.attachments.map((a) => a.name), ["rfq.pdf"]);
  assert.equal(data.date, "2026-11-20T10:00:00.000Z");
});

test("without getAsFileAsync (before Mailbox 1.14) there is no EML and no error", async () => {
  const data = await readItem(mailbox({}, { withFile: false }));
  assert.equal(data.eml, null);
  assert.equal(data.emlError, null);
  assert.equal(data.bodyHtml, "<p>Hello</p>");
});

test("several recipients: everyone but the user, each once, From first", async () => {
  const data = await readItem(mailbox());
  assert.deepEqual(participants(data, "ANN@acme.test"), [
    "hank@globex.test", "bob@acme.test", "carl@initech.test",
  ]);
  assert.equal(formatAddress(data.to[1]), "Bob <bob@acme.test>");
  assert.equal(formatAddress({ name: "", email: "x@y.test" }), "x@y.test");
});

test("no item selected gives null", async () => {
  const empty = new OfficeMockObject({ host: "outlook", context: { mailbox: {} } }).context
    .mailbox;
  assert.equal(await readItem(empty), null);
  assert.equal(await readItem(undefined), null);
});

test("a body fetch that fails is reported, and the rest still reads", async () => {
  const data = await readItem(mailbox({}, { bodyFails: true }));
  assert.equal(data.bodyHtml, "");
  assert.equal(data.bodyError, "Body unavailable");
  assert.equal(data.subject, "Quote for 50 seats");
});

test("a body API that throws is reported too", async () => {
  const data = await readItem(mailbox({ body: { getAsync() { throw new Error("boom"); } } }));
  assert.equal(data.bodyError, "boom");
});

test("gives Graph's REST id where the client converts it, and none otherwise", async () => {
  const box = mailbox();
  assert.equal((await readItem(box)).restId, null);
  box.convertToRestId = (id, version) => `rest(${id},${version})`;
  assert.equal((await readItem(box)).restId, "rest(AAMk-1,v2.0)");
  box.convertToRestId = () => { throw new Error("not in compose"); };
  assert.equal((await readItem(box)).restId, null);
});

test("the lookup gets each participant with the name Outlook shows, quoted", async () => {
  const data = await readItem(mailbox({
    from: { displayName: "Bob Smith", emailAddress: "BobSmith1987@gmail.test" },
    sender: { displayName: "", emailAddress: "bobsmith1987@gmail.test" },
    to: [{ displayName: "Ann", emailAddress: "ann@acme.test" }],
    cc: [
      { displayName: "Smith, Carl \"C\"", emailAddress: "carl@initech.test" },
      { displayName: "", emailAddress: "dee@initech.test" },
      { displayName: "dee@initech.test", emailAddress: "dee@initech.test" },
    ],
  }));
  assert.deepEqual(lookupValues(data, "ann@acme.test"), [
    '"Bob Smith" <bobsmith1987@gmail.test>',
    '"Smith, Carl \\"C\\"" <carl@initech.test>',
    "dee@initech.test",
  ]);
  assert.deepEqual(participants(data, "ann@acme.test"),
    ["bobsmith1987@gmail.test", "carl@initech.test", "dee@initech.test"]);
  assert.equal(lookupValue({ name: "", email: "x@y.test" }), "x@y.test");
});
