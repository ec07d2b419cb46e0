/* The Outlook task pane: who the sender is in the records, and acting on the email.
 * Every piece of user data goes into the page through textContent, never as HTML. */
(function () {
  "use strict";

  const API = "/api/v1";
  const KEY_STORAGE = "connector.apiKey";
  const REPLY_HTML_LIMIT = 32000; // displayReplyForm's htmlBody limit (32 KB)
  const state = { item: null, people: [], current: null, me: null, token: null };

  // DOM ---------------------------------------------------------------------------------

  function h(tag, attributes) {
    const element = document.createElement(tag);
    Object.entries(attributes || {}).forEach(function ([name, value]) {
      if (value === null || value === undefined || value === false) return;
      if (name === "text") element.textContent = value;
      else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
      else element.setAttribute(name, value === true ? "" : value);
    });
    for (let i = 2; i < arguments.length; i++) {
      const child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }

  function show() {
    const main = document.getElementById("main");
    main.replaceChildren.apply(main, Array.from(arguments).filter(Boolean));
  }

  function toast(message, isError) {
    const box = document.getElementById("toast");
    box.textContent = message;
    box.className = "toast" + (isError ? " error-toast" : "");
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.hidden = true; }, 4000);
  }

  function busy(button, promise) {
    button.disabled = true;
    return promise.finally(function () { button.disabled = false; });
  }

  // API ---------------------------------------------------------------------------------

  function storedKey() {
    try { return window.localStorage.getItem(KEY_STORAGE); } catch (e) { return null; }
  }

  async function token() {
    if (state.token) return state.token;
    if (window.ConnectorAuth && typeof window.ConnectorAuth.getToken === "function") {
      try { state.token = await window.ConnectorAuth.getToken(); } catch (e) { state.token = null; }
    }
    return state.token || storedKey();
  }

  async function api(method, path, body, contentType) {
    const headers = { Accept: "application/json" };
    const bearer = await token();
    if (bearer) headers.Authorization = "Bearer " + bearer;
    let payload;
    if (body !== undefined) {
      headers["Content-Type"] = contentType || "application/json";
      payload = contentType ? body : JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, { method: method, headers: headers, body: payload });
    } catch (e) {
      throw new Error("The connector cannot be reached. Check your connection.");
    }
    const data = await response.json().catch(function () { return {}; });
    if (response.status === 401) {
      state.token = null;
      const error = new Error("Your connector key is missing or no longer valid.");
      error.unauthorized = true;
      throw error;
    }
    if (!response.ok) {
      const error = new Error(data.message || "The connector answered " + response.status + ".");
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  // Screens -----------------------------------------------------------------------------

  function statusScreen(message, isError) {
    show(h("p", { class: isError ? "error" : "muted", text: message }));
  }

  // What went wrong, in the connector's words, and a way to try again (an outage is
  // a 503 that says "try again in a few seconds"; so is an unreachable connector).
  function errorScreen(message, retry) {
    show(h("div", { class: "panel" },
      h("p", { class: "error", role: "alert", text: message }),
      h("div", { class: "actions" }, h("button", { class: "primary", type: "button", text: "Try again", onclick: retry }))));
  }

  function connectScreen(message) {
    const input = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true });
    const form = h("form", { class: "panel", onsubmit: function (event) {
      event.preventDefault();
      try { window.localStorage.setItem(KEY_STORAGE, input.value.trim()); } catch (e) { /* private mode */ }
      state.token = null;
      load();
    } },
      h("label", { for: "api-key", text: "Your connector API key" }), input,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Connect" })));
    const signIn = canOpenDialog()
      ? h("div", { class: "actions" }, h("button", { class: "primary", type: "button", text: "Sign in", onclick: signInDialog }))
      : null;
    show(h("h1", { text: "Connect to your records" }),
      h("p", { class: "muted", text: message || "Sign in with your mail account, or paste an API key from your connector admin." }),
      signIn, form);
    (signIn ? signIn.querySelector("button") : input).focus();
  }

  function canOpenDialog() {
    return !!(window.Office && Office.context && Office.context.ui &&
      typeof Office.context.ui.displayDialogAsync === "function");
  }

  function keepKey(apiKey) {
    try { window.localStorage.setItem(KEY_STORAGE, apiKey); } catch (e) { /* private mode */ }
    state.token = null;
  }

  function signInDialog() {
    openSignIn(window.location.origin + "/connect?client=outlook", load);
  }

  /* Sign-in in Office's dialog; its last page hands over a new API key (messageParent),
   * which the pane keeps before calling `then`. */
  function openSignIn(url, then) {
    Office.context.ui.displayDialogAsync(url, { height: 60, width: 30 }, function (result) {
      if (result.status !== "succeeded" && result.status !== 0) {
        return toast("The sign-in window could not open. Allow pop-ups and try again.", true);
      }
      const dialog = result.value;
      dialog.addEventHandler(Office.EventType.DialogMessageReceived, function (arg) {
        dialog.close();
        let message = {};
        try { message = JSON.parse(arg.message); } catch (e) { /* not ours */ }
        if (!message.apiKey) return toast("Sign-in did not complete.", true);
        keepKey(message.apiKey);
        then();
      });
    });
  }

  function itemLine(title, sub) {
    return h("li", {}, title, sub ? h("span", { class: "sub", text: sub }) : null);
  }

  function listSection(title, items, render) {
    if (!items || !items.length) return null;
    return h("section", {}, h("h2", { text: title }),
      h("ul", { class: "items" }, ...items.map(render)));
  }

  function pickerScreen(results) {
    show(h("h1", { text: "In this conversation" }),
      h("ul", { class: "items" }, ...results.map(function (result) {
        const name = result.contact ? result.contact.name : result.email;
        const sub = result.company ? result.company.name : result.contact ? "" : "Not in your records";
        return h("li", {}, h("button", { class: "link", type: "button", text: name,
          onclick: function () { personScreen(result); } }),
        h("span", { class: "sub", text: result.contact ? result.email + (sub ? " · " + sub : "") : sub }));
      })));
  }

  function recordOf(result) {
    if (result.contact) return { type: "contact", id: result.contact.id };
    if (result.company) return { type: "company", id: result.company.id };
    return null;
  }

  async function personScreen(result) {
    state.current = result;
    if (!result.contact && !result.company) return unknownScreen(result);
    const contact = result.contact;
    const company = result.company;
    const logged = await loggedStatus();
    const back = state.people.length > 1
      ? h("button", { class: "link", type: "button", text: "‹ Everyone on this email", onclick: function () { pickerScreen(state.people); } })
      : null;
    const title = contact ? contact.name : company.name;
    const subtitle = contact
      ? [contact.job_title, company && company.name].filter(Boolean).join(" · ")
      : "Company of " + result.email;
    const actions = h("div", { class: "actions" },
      h("button", { class: "primary", type: "button", text: "Log email", onclick: function () { logForm(result); } }),
      h("button", { type: "button", text: "Create lead", onclick: function () { leadForm(result, "lead"); } }),
      h("button", { type: "button", text: "Create ticket", onclick: function () { leadForm(result, "ticket"); } }),
      h("button", { type: "button", text: "Create task", onclick: function () { taskForm(result); } }),
      h("button", { type: "button", text: "Add note", onclick: function () { noteForm(result); } }),
      h("button", { type: "button", text: "Reply with template", onclick: function () { templateScreen(result); } }),
      h("button", { type: "button", text: "Open in the connector", onclick: function (event) { openRecord(event.currentTarget, recordOf(result)); } }));
    show(back, h("h1", { text: title }), subtitle ? h("p", { class: "muted", text: subtitle }) : null,
      logged ? h("p", { class: "badge", text: "✓ Logged on " + logged }) : null,
      h("ul", { class: "items" },
        contact ? itemLine(result.email, "Email") : null,
        contact && contact.phone ? itemLine(contact.phone, "Phone") : null,
        company ? itemLine(company.name, (company.domains || []).join(", ")) : null),
      actions,
      h("div", { id: "form-slot" }),
      listSection("Open leads", result.leads, function (lead) {
        return itemLine(lead.title, lead.stage + (lead.expected_revenue != null ? " · " + lead.expected_revenue.toLocaleString() : ""));
      }),
      listSection("Open tickets", result.tickets, function (t) { return itemLine(t.subject, t.status + " · " + t.priority); }),
      listSection("Open tasks", result.tasks, function (t) { return itemLine(t.title, t.due_date ? "Due " + t.due_date : "No due date"); }),
      listSection("Recent activity", result.activities, function (a) {
        return itemLine(a.subject || a.snippet || a.kind, a.occurred_at.slice(0, 10) + " · " + (a.kind === "email" ? a.from : "Note"));
      }));
  }

  function unknownScreen(result) {
    const proposal = result.proposal || {};
    const name = h("input", { id: "new-name", value: proposal.name || "" });
    const email = h("input", { id: "new-email", type: "email", value: result.email });
    const companyName = proposal.new_company ? h("input", { id: "new-company", value: proposal.new_company.name }) : null;
    const form = h("form", { class: "panel", onsubmit: function (event) {
      event.preventDefault();
      const body = { name: name.value.trim(), emails: [email.value.trim()] };
      if (proposal.company) body.company_id = proposal.company.id;
      else if (companyName && companyName.value.trim()) body.new_company = { name: companyName.value.trim(), domains: [proposal.new_company.domain] };
      busy(event.submitter || form.querySelector("button"), api("POST", "/contacts", body).then(function () {
        toast("Contact created.");
        return load();
      }).catch(function (e) { toast(e.message, true); }));
    } },
      h("label", { for: "new-name", text: "Name" }), name,
      h("label", { for: "new-email", text: "Email" }), email,
      proposal.company ? h("p", { class: "muted", text: "Company: " + proposal.company.name }) : null,
      companyName ? h("label", { for: "new-company", text: "New company" }) : null, companyName,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Create contact" })));
    const back = state.people.length > 1
      ? h("button", { class: "link", type: "button", text: "‹ Everyone on this email", onclick: function () { pickerScreen(state.people); } })
      : null;
    show(back, h("h1", { text: "Not in your records" }), h("p", { class: "muted", text: result.email }), form);
  }

  function slot(form) {
    const place = document.getElementById("form-slot");
    place.replaceChildren(form);
    const first = form.querySelector("input, select, textarea, button");
    if (first) first.focus();
  }

  function submitForm(form, work) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      busy(button, work().catch(function (e) { toast(e.message, true); }));
    });
    return form;
  }

  function emlBytes(base64) {
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function emailFields() {
    const item = state.item;
    return {
      message_id: item.internetMessageId,
      subject: item.subject,
      from: item.from ? ConnectorItem.formatAddress(item.from) : "",
      to: item.to.map(ConnectorItem.formatAddress),
      cc: item.cc.map(ConnectorItem.formatAddress),
      date: item.date,
      body_html: item.bodyHtml,
    };
  }

  async function logEmail(records) {
    const item = state.item;
    if (item.eml) {
      // The whole message, as Outlook has it: attachments and all.
      const query = records.map(function (r) { return "record=" + encodeURIComponent(r.type + ":" + r.id); }).join("&");
      return api("POST", "/emails?" + query, emlBytes(item.eml), "message/rfc822");
    }
    return api("POST", "/emails", Object.assign(emailFields(), { records: records }));
  }

  function logForm(result) {
    const choices = [];
    if (result.contact) choices.push({ type: "contact", id: result.contact.id, label: "Contact: " + result.contact.name, checked: true });
    if (result.company) choices.push({ type: "company", id: result.company.id, label: "Company: " + result.company.name, checked: !result.contact });
    (result.leads || []).forEach(function (l) { choices.push({ type: "lead", id: l.id, label: "Lead: " + l.title }); });
    (result.tickets || []).forEach(function (t) { choices.push({ type: "ticket", id: t.id, label: "Ticket: " + t.subject }); });
    const boxes = choices.map(function (choice, n) {
      const box = h("input", { type: "checkbox", id: "log-" + n, checked: !!choice.checked });
      box.record = { type: choice.type, id: choice.id };
      return h("label", { class: "check", for: "log-" + n }, box, choice.label);
    });
    slot(submitForm(h("form", { class: "panel", "aria-label": "Log email" }, ...boxes,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Log email" }))),
    async function () {
      const records = boxes.map(function (l) { return l.querySelector("input"); }).filter(function (b) { return b.checked; }).map(function (b) { return b.record; });
      if (!records.length) return toast("Choose at least one record.", true);
      const answer = await logEmail(records);
      toast(answer.already_logged ? "Already logged there." : "Email logged.");
      await refresh();
    }));
  }

  function leadForm(result, kind) {
    const title = h("input", { id: "lead-title", value: state.item.subject || "", required: true });
    const extra = kind === "lead"
      ? [h("label", { for: "lead-revenue", text: "Expected revenue" }), h("input", { id: "lead-revenue", inputmode: "decimal" })]
      : [h("label", { for: "ticket-priority", text: "Priority" }), h("select", { id: "ticket-priority" },
        ...["normal", "high", "urgent", "low"].map(function (p) { return h("option", { value: p, text: p }); }))];
    slot(submitForm(h("form", { class: "panel", "aria-label": "Create " + kind },
      h("label", { for: "lead-title", text: kind === "lead" ? "Title" : "Subject" }), title, ...extra,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Create " + kind }))),
    async function () {
      const body = { email: emailFields() };
      body[kind === "lead" ? "title" : "subject"] = title.value.trim();
      if (result.contact) body.contact_id = result.contact.id;
      if (result.company) body.company_id = result.company.id;
      if (kind === "lead") {
        const revenue = document.getElementById("lead-revenue").value.replace(/[ ,]/g, "");
        if (revenue) body.expected_revenue = revenue;
      } else {
        body.priority = document.getElementById("ticket-priority").value;
      }
      await api("POST", "/" + kind + "s", body);
      toast((kind === "lead" ? "Lead" : "Ticket") + " created.");
      await refresh();
    }));
  }

  function taskForm(result) {
    const title = h("input", { id: "task-title", required: true });
    const due = h("input", { id: "task-due", type: "date" });
    slot(submitForm(h("form", { class: "panel", "aria-label": "Create task" },
      h("label", { for: "task-title", text: "Title" }), title,
      h("label", { for: "task-due", text: "Due" }), due,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Create task" }))),
    async function () {
      await api("POST", "/tasks", { title: title.value.trim(), due_date: due.value || null, record: recordOf(result) });
      toast("Task created.");
      await refresh();
    }));
  }

  function noteForm(result) {
    const body = h("textarea", { id: "note-body", required: true });
    slot(submitForm(h("form", { class: "panel", "aria-label": "Add note" },
      h("label", { for: "note-body", text: "Note" }), body,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Add note" }))),
    async function () {
      await api("POST", "/notes", { body: body.value, records: [recordOf(result)] });
      toast("Note added.");
      await refresh();
    }));
  }

  async function templateScreen(result) {
    const templates = await api("GET", "/templates").catch(function (e) { toast(e.message, true); return null; });
    if (!templates) return;
    const canSend = !!state.item.restId;
    const buttons = templates.map(function (t) {
      return h("li", { class: "template" }, h("button", { class: "link", type: "button", text: t.name, onclick: function (event) {
        busy(event.currentTarget, reply(t, result).catch(function (e) { toast(e.message, true); }));
      } }), h("span", { class: "sub", text: t.subject }),
      canSend ? h("button", { type: "button", class: "small", text: "Send…", "aria-label": "Send " + t.name + " now",
        onclick: function (event) {
          busy(event.currentTarget, sendPreview(t, result).catch(function (e) { toast(e.message, true); }));
        } }) : null);
    });
    slot(h("div", { class: "panel" }, h("h2", { text: "Reply with a template" }),
      buttons.length ? h("ul", { class: "items" }, ...buttons) : h("p", { class: "muted", text: "No templates yet." })));
  }

  async function reply(template, result) {
    const rendered = await api("POST", "/templates/" + template.id + "/render", { record: recordOf(result) });
    let html = rendered.body_html;
    if (html.length > REPLY_HTML_LIMIT) html = html.slice(0, REPLY_HTML_LIMIT);
    const item = Office.context.mailbox.item;
    if (typeof item.displayReplyFormAsync === "function") {
      await new Promise(function (resolve) { item.displayReplyFormAsync({ htmlBody: html }, resolve); });
    } else {
      item.displayReplyForm({ htmlBody: html });
    }
  }

  /* What "Send" will send, as text, before it goes: a sent email cannot be taken back. */
  async function sendPreview(template, result) {
    const rendered = await api("POST", "/templates/" + template.id + "/render", { record: recordOf(result) });
    const send = h("button", { class: "primary", type: "button", text: "Send now" });
    const panel = h("div", { class: "panel", role: "region", "aria-label": "Send reply" },
      h("h2", { text: "Send this reply now?" }),
      // createReply answers the message's sender, whoever the card is about.
      h("p", { class: "muted", text: "To " + replyTo() + ", in this conversation, from your mailbox." }),
      h("div", { class: "preview", text: rendered.body_text }),
      h("div", { class: "actions" }, send,
        h("button", { type: "button", text: "Cancel", onclick: function () { templateScreen(result); } })));
    send.addEventListener("click", function () {
      busy(send, sendReply(template, result).catch(function (e) { toast(e.message, true); }));
    });
    slot(panel);
  }

  function replyTo() {
    const sender = state.item.from || state.item.sender;
    return sender ? sender.email : "the sender";
  }

  async function sendReply(template, result) {
    const record = recordOf(result);
    let sent;
    try {
      sent = await api("POST", "/outlook/replies", { message_id: state.item.restId, template_id: template.id, record: record });
    } catch (e) {
      if (e.data && e.data.reason === "consent_required") return consentPanel(e.data.sign_in_url, template, result);
      if (e.data && e.data.reason === "send_unconfirmed") {
        // It may have gone: no "Send now" to press twice, only the way to check.
        return slot(h("div", { class: "panel", role: "region", "aria-label": "Send not confirmed" },
          h("h2", { text: "Not confirmed" }), h("p", { text: e.message })));
      }
      if (e.data && e.data.reason === "sent_not_logged") {
        // It went; only the log is missing. Again: no second Send.
        return slot(h("div", { class: "panel", role: "region", "aria-label": "Sent, not logged" },
          h("h2", { text: "Sent, not logged" }), h("p", { text: e.message })));
      }
      throw e;
    }
    toast(sent.activity_id ? "Reply sent and logged." : "Reply sent.");
    await refresh();
  }

  /* Sending needs the user's consent (Mail.Send): sign in, then the reply goes. */
  function consentPanel(url, template, result) {
    const retry = function () {
      sendReply(template, result).catch(function (e) { toast(e.message, true); });
    };
    const button = h("button", { class: "primary", type: "button", text: "Sign in to send", onclick: function () {
      if (canOpenDialog()) return openSignIn(url, retry);
      window.open(url, "_blank", "noopener");
      toast("After signing in, send the reply again.");
    } });
    slot(h("div", { class: "panel", role: "region", "aria-label": "Allow sending" },
      h("h2", { text: "Allow sending" }),
      h("p", { text: "To send replies for you, the connector needs your permission to send mail. Sign in and allow it; the reply goes as soon as you have." }),
      h("div", { class: "actions" }, button)));
  }

  async function openRecord(button, record) {
    if (!record) return;
    const link = await busy(button, api("POST", "/record-links", record)).catch(function (e) { toast(e.message, true); });
    if (link && link.url) window.open(link.url, "_blank", "noopener");
  }

  async function loggedStatus() {
    if (!state.item || !state.item.internetMessageId) return null;
    try {
      const status = await api("GET", "/emails/logged?message_id=" + encodeURIComponent(state.item.internetMessageId));
      if (!status.logged) return null;
      return Array.from(new Set(status.activity.records.map(function (r) { return r.type; }))).join(", ");
    } catch (e) { return null; }
  }

  async function search(query) {
    const found = await api("GET", "/search?q=" + encodeURIComponent(query) + "&per_page=30");
    const groups = {};
    found.results.forEach(function (hit) { (groups[hit.type] = groups[hit.type] || []).push(hit); });
    const titles = { contact: "Contacts", company: "Companies", lead: "Leads", ticket: "Tickets" };
    show(h("h1", { text: "Search" }), h("p", { class: "muted", text: found.total + " found for “" + query + "”" }),
      ...Object.keys(groups).map(function (type) {
        return listSection(titles[type], groups[type], function (hit) {
          return h("li", {}, h("button", { class: "link", type: "button", text: hit.title, onclick: async function () {
            const card = await api("GET", "/" + (type === "company" ? "companies" : type + "s") + "/" + hit.id);
            const address = card.contact ? card.contact.emails[0] : "";
            personScreen(Object.assign({ email: address, proposal: null }, card));
          } }), h("span", { class: "sub", text: hit.subtitle }));
        });
      }));
  }

  // Loading -----------------------------------------------------------------------------

  async function refresh() {
    if (!state.current) return load();
    const [fresh] = (await api("GET", "/lookup?email=" + encodeURIComponent(state.current.email))).results;
    state.people = state.people.map(function (p) { return p.email === fresh.email ? fresh : p; });
    return personScreen(fresh);
  }

  async function load() {
    state.current = null;
    statusScreen("Loading…");
    try {
      state.item = await ConnectorItem.readItem(Office.context.mailbox, { htmlCoercion: Office.CoercionType.Html });
      if (!state.item) return statusScreen("Select a message to see who it is from.");
      if (!(await token())) return connectScreen();
      state.me = state.me || await api("GET", "/me");
      const addresses = ConnectorItem.participants(state.item, state.me.email);
      if (!addresses.length) return statusScreen("Only you are on this message.");
      const query = addresses.slice(0, 50).map(function (a) { return "email=" + encodeURIComponent(a); }).join("&");
      state.people = (await api("GET", "/lookup?" + query)).results;
      if (state.people.length === 1) return personScreen(state.people[0]);
      return pickerScreen(state.people);
    } catch (error) {
      if (error.unauthorized) return connectScreen(error.message);
      errorScreen(error.message || "Something went wrong.", load);
    }
  }

  Office.onReady(function () {
    document.getElementById("search").addEventListener("submit", function (event) {
      event.preventDefault();
      const query = document.getElementById("search-input").value.trim();
      if (query.length >= 2) search(query).catch(function (e) { toast(e.message, true); });
    });
    // A pinned pane follows the selected message (and its absence).
    const mailbox = Office.context.mailbox;
    if (mailbox && typeof mailbox.addHandlerAsync === "function" && Office.EventType && Office.EventType.ItemChanged) {
      mailbox.addHandlerAsync(Office.EventType.ItemChanged, function () { load(); });
    }
    load();
  });

  window.ConnectorPane = { load: load, state: state };
})();
