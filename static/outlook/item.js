/* Reading the open Outlook item with Office.js: who is on it, its body, and the whole
 * message as EML where the client can give it (Mailbox 1.14).
 * Plain functions of a `mailbox` (Office.context.mailbox), so that Node tests can drive
 * them with office-addin-mock; loaded in the pane as window.ConnectorItem. */
(function (root, factory) {
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.ConnectorItem = factory();
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  function address(entry) {
    if (!entry || !entry.emailAddress) return null;
    return { name: entry.displayName || "", email: String(entry.emailAddress).toLowerCase() };
  }

  function addresses(list) {
    return (list || []).map(address).filter(Boolean);
  }

  function callAsync(fn, thisArg, args) {
    return new Promise(function (resolve) {
      try {
        fn.apply(thisArg, args.concat([function (result) { resolve(result); }]));
      } catch (error) {
        resolve({ status: "failed", error: { message: String(error && error.message || error) } });
      }
    });
  }

  function succeeded(result) {
    return result && (result.status === "succeeded" || result.status === 0);
  }

  async function readBody(item, coercion) {
    if (!item.body || typeof item.body.getAsync !== "function") {
      return { html: "", error: "This Outlook cannot read the message body." };
    }
    const result = await callAsync(item.body.getAsync, item.body, [coercion]);
    if (succeeded(result)) return { html: String(result.value || ""), error: null };
    return { html: "", error: (result && result.error && result.error.message) || "The body could not be read." };
  }

  async function readEml(item) {
    if (typeof item.getAsFileAsync !== "function") return { eml: null, error: null };
    const result = await callAsync(item.getAsFileAsync, item, [{}]);
    if (succeeded(result) && result.value) return { eml: String(result.value), error: null };
    return { eml: null, error: (result && result.error && result.error.message) || "The message file could not be read." };
  }

  function isoDate(value) {
    const date = value ? new Date(value) : null;
    return date && !isNaN(date.getTime()) ? date.toISOString() : null;
  }

  /* The item's id for Microsoft Graph (REST v2.0), which Office.js gives in EWS form.
   * Null where the client cannot convert it (then the pane offers no "Send"). */
  function restId(mailbox, item) {
    if (!item.itemId || typeof mailbox.convertToRestId !== "function") return null;
    const enums = typeof Office !== "undefined" && Office.MailboxEnums;
    const version = (enums && enums.RestVersion && enums.RestVersion.v2_0) || "v2.0";
    try {
      return mailbox.convertToRestId(item.itemId, version) || null;
    } catch (error) {
      return null;
    }
  }

  /* The item as plain data, or null when no message is selected. */
  async function readItem(mailbox, options) {
    const item = mailbox && mailbox.item;
    if (!item) return null;
    const coercion = (options && options.htmlCoercion) || "html";
    const body = await readBody(item, coercion);
    const file = await readEml(item);
    return {
      itemId: item.itemId || null,
      restId: restId(mailbox, item),
      subject: item.subject || "",
      from: address(item.from),
      sender: address(item.sender),
      to: addresses(item.to),
      cc: addresses(item.cc),
      internetMessageId: item.internetMessageId || null,
      conversationId: item.conversationId || null,
      date: isoDate(item.dateTimeCreated),
      bodyHtml: body.html,
      bodyError: body.error,
      attachments: (item.attachments || []).map(function (a) {
        return { id: a.id, name: a.name, contentType: a.contentType, size: a.size, isInline: !!a.isInline };
      }),
      eml: file.eml,
      emlError: file.error,
    };
  }

  /* Everyone on the message but the user: From, Sender, To, Cc, each once. */
  function participants(data, userEmail) {
    const me = String(userEmail || "").toLowerCase();
    const seen = [];
    [data.from, data.sender].concat(data.to, data.cc).forEach(function (entry) {
      if (entry && entry.email && entry.email !== me && seen.indexOf(entry.email) === -1) {
        seen.push(entry.email);
      }
    });
    return seen;
  }

  function formatAddress(entry) {
    return entry.name ? entry.name + " <" + entry.email + ">" : entry.email;
  }

  /* An address as the lookup takes it: '"Bob Smith" <bob@x>', the name quoted so that one
   * with a comma ("Smith, Bob") or a quote stays one name; the address alone without one. */
  function lookupValue(entry) {
    const name = String(entry.name || "").trim();
    if (!name || name.toLowerCase() === entry.email) return entry.email;
    return '"' + name.replace(/[\\"]/g, "\\$&") + '" <' + entry.email + ">";
  }

  /* Everyone on the message but the user, as the lookup takes them: with the name Outlook
   * shows, which becomes a new contact's proposed name (and not a guess from the address). */
  function lookupValues(data, userEmail) {
    const me = String(userEmail || "").toLowerCase();
    const seen = {};
    const values = [];
    [data.from, data.sender].concat(data.to, data.cc).forEach(function (entry) {
      if (!entry || !entry.email || entry.email === me) return;
      if (seen[entry.email] === undefined) {
        seen[entry.email] = values.length;
        values.push(lookupValue(entry));
      } else if (entry.name && values[seen[entry.email]] === entry.email) {
        values[seen[entry.email]] = lookupValue(entry); // a later entry that names them
      }
    });
    return values;
  }

  return {
    readItem: readItem, participants: participants, formatAddress: formatAddress,
    lookupValue: lookupValue, lookupValues: lookupValues,
  };
});
