/* Keeping records current, the pane's pure part: a record's history as a person reads it
 * (the wording of history_line and local_time in connector/lookup/view_models.py, which
 * the Gmail add-on shows), and what an edit form changes.
 * Plain functions, so that Node tests drive them; loaded in the pane as window.ConnectorLifecycle. */
(function (root, factory) {
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.ConnectorLifecycle = factory();
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const LEAD_STAGES = ["new", "qualified", "proposition", "won", "lost"];
  const CLOSED_TICKET_STATUSES = ["resolved", "closed"];

  const FIELD_NAMES = {
    owner_id: "owner",
    company_id: "company",
    contact_id: "contact",
    expected_revenue: "expected revenue",
    close_date: "close date",
    lost_reason: "lost reason",
    job_title: "job title",
  };

  function shown(value, label) {
    if (label !== null && label !== undefined) return String(label);
    if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) {
      return "none";
    }
    if (Array.isArray(value)) return value.map(String).join(", ");
    if (typeof value === "boolean") return value ? "yes" : "no";
    return String(value);
  }

  /* "stage: qualified → won, by Ana, 12 Nov 14:02", given `when` already formatted. */
  function historyLine(entry, when) {
    const field = entry.field;
    const by = (entry.by && entry.by.name) || "someone";
    if (field === "archived") return (entry.to ? "archived" : "restored") + ", by " + by + ", " + when;
    if (field === "merged") {
      return "merged " + (entry.from_label || entry.from) + " into this, by " + by + ", " + when;
    }
    const name = FIELD_NAMES[field] || String(field).replace(/_/g, " ");
    return name + ": " + shown(entry.from, entry.from_label) + " → " + shown(entry.to, entry.to_label) +
      ", by " + by + ", " + when;
  }

  function partsIn(date, timeZone) {
    const format = new Intl.DateTimeFormat("en-US", {
      timeZone: timeZone, year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    });
    const parts = {};
    format.formatToParts(date).forEach(function (part) { parts[part.type] = part.value; });
    return parts;
  }

  /* "12 Nov 14:02" in `timeZone` (the browser's when undefined), "12 Nov 2025 14:02" when
   * not in the year of `now`. */
  function localTime(iso, timeZone, now) {
    const moment = partsIn(new Date(iso), timeZone);
    const thisYear = partsIn(now || new Date(), timeZone).year;
    const day = moment.day + " " + moment.month + (moment.year === thisYear ? "" : " " + moment.year);
    return day + " " + moment.hour + ":" + moment.minute;
  }

  /* The addresses typed in one field: separated by commas, semicolons, spaces or lines. */
  function parseEmails(text) {
    return String(text || "").split(/[\s,;]+/).map(function (a) { return a.trim(); }).filter(Boolean);
  }

  /* What the contact form changes, as a PATCH body: only the fields that differ from the
   * contact as it was read (a blank phone or job title clears it). */
  function contactChanges(contact, values) {
    const changes = {};
    const name = values.name.trim();
    if (name !== contact.name) changes.name = name;
    ["phone", "job_title"].forEach(function (field) {
      const value = values[field].trim() || null;
      if (value !== (contact[field] || null)) changes[field] = value;
    });
    const emails = parseEmails(values.emails);
    const before = contact.emails || [];
    if (emails.length !== before.length || emails.some(function (e, n) { return e !== before[n]; })) {
      changes.emails = emails;
    }
    return changes;
  }

  function isOpenTicket(ticket) {
    return CLOSED_TICKET_STATUSES.indexOf(ticket.status) === -1;
  }

  return {
    LEAD_STAGES: LEAD_STAGES,
    historyLine: historyLine,
    localTime: localTime,
    parseEmails: parseEmails,
    contactChanges: contactChanges,
    isOpenTicket: isOpenTicket,
  };
});
