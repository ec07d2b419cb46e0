/* What the pane says and how it looks, the pure part: a task's "Overdue", an error in words,
 * Office's theme as light or dark, what an empty search offers to create, a short preview.
 * Plain functions, so that Node tests drive them; loaded in the pane as window.ConnectorDisplay. */
(function (root, factory) {
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.ConnectorDisplay = factory();
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const UNREACHABLE = "The connector cannot be reached. Check your connection, then try again.";
  const UNAVAILABLE = "The records are unavailable right now; nothing was saved. Try again in a few seconds.";

  /* The day it is where the user is, as "YYYY-MM-DD" (what a task's due_date is). */
  function localDay(now) {
    const date = now || new Date();
    const pad = function (n) { return String(n).padStart(2, "0"); };
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
  }

  /* Due before today, and not done: due today is not late yet. */
  function isOverdue(task, today) {
    return !!(task && task.due_date && !task.done && String(task.due_date).slice(0, 10) < today);
  }

  /* What went wrong, in words, for an answer that is no success: the connector's own JSON
   * `message` where it gave one (it says what happened and whether anything was saved),
   * else what the status means to the user. Never "the connector answered 503". */
  function errorMessage(status, data) {
    const message = data && typeof data.message === "string" ? data.message.trim() : "";
    if (message) return message;
    if (status === 503 || status === 502 || status === 504) return UNAVAILABLE;
    if (status === 429) return "Too many requests at once; nothing was saved. Wait a minute, then try again.";
    if (status === 404) return "This record is no longer there; someone may have removed it.";
    if (status === 403) return "You are not allowed to do this; ask your connector admin.";
    if (status === 413) return "This is too large for the connector to take.";
    if (status >= 500) return "The connector could not do this just now. Try again; if it keeps happening, tell your connector admin.";
    return "The connector did not accept this. Check what you entered, then try again.";
  }

  function channel(hex, at) {
    const value = parseInt(hex.slice(at, at + 2), 16) / 255;
    return value <= 0.03928 ? value / 12.92 : Math.pow((value + 0.055) / 1.055, 2.4);
  }

  /* True, false, or null when Office gives no theme. Office says isDarkTheme where the
   * client knows it; else the body's background decides (a dark one: dark theme). */
  function isDarkTheme(officeTheme) {
    if (!officeTheme) return null;
    if (typeof officeTheme.isDarkTheme === "boolean") return officeTheme.isDarkTheme;
    const background = String(officeTheme.bodyBackgroundColor || "").trim();
    let hex = background.replace(/^#/, "");
    if (/^[0-9a-f]{3}$/i.test(hex)) hex = hex.replace(/./g, "$&$&");
    if (!/^[0-9a-f]{6}$/i.test(hex)) return null;
    const luminance = 0.2126 * channel(hex, 0) + 0.7152 * channel(hex, 2) + 0.0722 * channel(hex, 4);
    return luminance < 0.2;
  }

  /* Office's colours that the pane takes over as its own (CSS variables), where given. */
  function themeColours(officeTheme) {
    const colours = {};
    const valid = function (value) { return typeof value === "string" && /^#[0-9a-f]{3,8}$/i.test(value.trim()); };
    if (officeTheme && valid(officeTheme.bodyBackgroundColor)) colours["--bg"] = officeTheme.bodyBackgroundColor.trim();
    if (officeTheme && valid(officeTheme.bodyForegroundColor)) colours["--text"] = officeTheme.bodyForegroundColor.trim();
    return colours;
  }

  /* "Create contact" after a search that found nobody: the address typed, or the name. */
  function searchProposal(query) {
    const text = String(query || "").trim();
    if (/^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(text)) return { name: "", email: text.toLowerCase() };
    return { name: text, email: "" };
  }

  /* The first words of a text, whole words, with "…" where it was cut. */
  function shortText(text, limit) {
    const flat = String(text || "").replace(/\s+/g, " ").trim();
    if (flat.length <= limit) return flat;
    const cut = flat.slice(0, limit);
    const space = cut.lastIndexOf(" ");
    return (space > limit / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:.]+$/, "") + "…";
  }

  /* "L-12" for a lead, "T-7" for a ticket (connector.mail.numbers.record_number); "" else. */
  function recordNumber(type, id) {
    const letter = { lead: "L", ticket: "T" }[type];
    return letter && id ? letter + "-" + id : "";
  }

  /* What "Write to the customer" proposes as the subject: the record's title with its tag,
   * as the connector itself would default it ("50 seats [#L-12]"). */
  function messageSubject(type, id, title) {
    const number = recordNumber(type, id);
    return [String(title || "").trim(), number ? "[#" + number + "]" : ""].filter(Boolean).join(" ");
  }

  /* One message sent from a record, as its line says it: subject, then
   * "failed · to bob@x · 2026-11-30 · Ana", and a failure's error (it says why, it is never
   * hidden). */
  function messageLine(message) {
    const to = (message.to || []).join(", ");
    const parts = [message.status, to ? "to " + to : "", String(message.created_at || "").slice(0, 10)];
    if (message.author && message.author.name) parts.push(message.author.name);
    const failed = message.status === "failed";
    return {
      subject: message.subject || "(no subject)", sub: parts.filter(Boolean).join(" · "),
      error: failed ? message.error || "" : "", failed: failed,
    };
  }

  /* A follower's line: "Ana Lima" and "ana@acme.test · owner · you". */
  function followerLine(follower) {
    const sub = [follower.email, follower.is_owner ? "owner" : "", follower.is_me ? "you" : ""];
    return { name: follower.name || follower.email || "", sub: sub.filter(Boolean).join(" · ") };
  }

  return {
    recordNumber: recordNumber,
    messageSubject: messageSubject,
    messageLine: messageLine,
    followerLine: followerLine,
    UNREACHABLE: UNREACHABLE,
    UNAVAILABLE: UNAVAILABLE,
    localDay: localDay,
    isOverdue: isOverdue,
    errorMessage: errorMessage,
    isDarkTheme: isDarkTheme,
    themeColours: themeColours,
    searchProposal: searchProposal,
    shortText: shortText,
  };
});
