/* The Outlook task pane: who the sender is in the records, and acting on the email.
 * Every piece of user data goes into the page through textContent, never as HTML. */
(function () {
  "use strict";

  const API = "/api/v1";
  const KEY_STORAGE = "connector.apiKey";
  const REPLY_HTML_LIMIT = 32000; // displayReplyForm's htmlBody limit (32 KB)
  const UNDO_MS = 10000; // how long "Undo" stays offered after a task is done
  const Lifecycle = window.ConnectorLifecycle;
  const Display = window.ConnectorDisplay;
  // current: the sender's lookup answer on screen (or last shown); reload: redraws the screen
  // shown from the API; notice: said once on the next screen drawn (after a reload);
  // lookupValues: each participant's address as the lookup takes it ('"Bob Smith" <bob@x>');
  // search: the query of the search screen shown, and what "‹ Back" returns to from it.
  const state = {
    item: null, people: [], current: null, me: null, token: null, reload: null, notice: null,
    lookupValues: {}, search: null,
  };

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
    box.removeAttribute("role");
    box.setAttribute("role", isError ? "alert" : "status");
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.hidden = true; }, 4000);
  }

  /* Worth trying again as it was: the connector could not be reached, or could not answer
   * just now (an outage, a busy moment). A refused input would be refused again. */
  function retryable(error) {
    return !!(error && (error.unreachable || error.status === 429 || error.status >= 500));
  }

  /* A one-click action failed: what happened in words, and "Try again" where that can help
   * (kept on screen until used, dismissed or the user does something else). */
  function reportError(error, retry) {
    if (error && error.unauthorized) return connectScreen(error.message);
    const message = (error && error.message) || "Something went wrong.";
    if (!retry || !retryable(error)) return toast(message, true);
    const box = document.getElementById("toast");
    clearTimeout(toast.timer);
    const again = h("button", { type: "button", text: "Try again", onclick: function () {
      box.hidden = true;
      Promise.resolve().then(retry).catch(function (e) { reportError(e, retry); });
    } });
    const dismiss = h("button", { type: "button", text: "Dismiss", onclick: function () { box.hidden = true; } });
    box.className = "toast error-toast with-actions";
    box.setAttribute("role", "alert");
    box.replaceChildren(h("span", { text: message }), h("span", { class: "toast-actions" }, again, dismiss));
    document.getElementById("undo").hidden = true; // the same place on screen
    box.hidden = false;
  }

  /* "Cancel" of a form or panel: it goes, nothing is sent. */
  function cancelButton(onCancel) {
    return h("button", { type: "button", class: "cancel", text: "Cancel", onclick: function (event) {
      const panel = event.currentTarget.closest(".panel");
      if (onCancel) onCancel();
      if (panel) panel.remove();
    } });
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

  async function api(method, path, body, contentType, extraHeaders) {
    const headers = Object.assign({ Accept: "application/json" }, extraHeaders || {});
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
      const unreachable = new Error(Display.UNREACHABLE);
      unreachable.unreachable = true;
      throw unreachable;
    }
    const data = await response.json().catch(function () { return {}; });
    if (response.status === 401) {
      state.token = null;
      const error = new Error("Your connector key is missing or no longer valid.");
      error.unauthorized = true;
      throw error;
    }
    if (!response.ok) {
      // In words: the connector's own message where it gave one (a proxy's 502 page has none).
      const error = new Error(Display.errorMessage(response.status, data));
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

  /* `reload`: how the card is drawn afresh (the lookup for a participant; the record for
   * one opened from search); `fromSearch`: the query it was found by. */
  async function personScreen(result, reload, fromSearch) {
    state.current = result;
    state.reload = reload || refresh;
    state.cardReload = state.reload;
    state.search = null;
    if (!result.contact && !result.company) return unknownScreen(result);
    const contact = result.contact;
    const company = result.company;
    const notice = takeNotice();
    const logged = await loggedStatus();
    const back = fromSearch
      ? h("button", { class: "link", type: "button", text: "‹ Search results", onclick: function (event) {
        const button = event.currentTarget;
        busy(button, search(fromSearch.query, fromSearch.back).catch(function (e) {
          reportError(e, function () { return search(fromSearch.query, fromSearch.back); });
        }));
      } })
      : state.people.length > 1
        ? h("button", { class: "link", type: "button", text: "‹ Everyone on this email", onclick: function () { pickerScreen(state.people); } })
        : null;
    // A new person at a known company: the company's card, and the contact to create.
    const newPerson = !contact && result.proposal && !result.archived_contact
      ? h("button", { class: "primary", type: "button", text: "Create contact", onclick: function () {
        slot(contactCreateForm(result));
      } })
      : null;
    const title = contact ? contact.name : company.name;
    const talk = conversation(recordOf(result), result, title);
    const subtitle = contact
      ? [contact.job_title, company && company.name].filter(Boolean).join(" · ")
      : "Company of " + result.email;
    const actions = h("div", { class: "actions" }, newPerson,
      h("button", { class: newPerson ? null : "primary", type: "button", text: "Log email", onclick: function () { logForm(result); } }),
      h("button", { type: "button", text: "Create lead", onclick: function () { leadForm(result, "lead"); } }),
      h("button", { type: "button", text: "Create ticket", onclick: function () { leadForm(result, "ticket"); } }),
      h("button", { type: "button", text: "Create task", onclick: function () { taskForm(result); } }),
      h("button", { type: "button", text: "Add note", onclick: function () { noteForm(result); } }),
      h("button", { type: "button", text: "Reply with template", onclick: function () { templateScreen(result); } }),
      talk.button,
      h("button", { type: "button", text: "Open in the connector", onclick: function (event) { openRecord(event.currentTarget, recordOf(result)); } }));
    show(back, notice, h("h1", { text: title }), subtitle ? h("p", { class: "muted", text: subtitle }) : null,
      logged ? h("p", { class: "badge", text: "✓ Logged on " + logged }) : null,
      h("ul", { class: "items" },
        contact ? itemLine(addressesOf(contact, result.email), contact.emails.length > 1 ? "Emails" : "Email") : null,
        ...(contact ? bouncingLines(result.bouncing) : []),
        contact && contact.phone ? itemLine(contact.phone, "Phone") : null,
        company ? itemLine(company.name, (company.domains || []).join(", ")) : null),
      contact ? h("div", { class: "actions" }, h("button", { type: "button", class: "small", text: "Edit", "aria-label": "Edit contact",
        onclick: function () { contactForm(result); } })) : null,
      duplicatesSection(result),
      actions,
      h("div", { id: "form-slot" }),
      listSection("Open leads", result.leads, function (lead) { return leadLine(lead, true); }),
      listSection("Open tickets", result.tickets, function (t) { return ticketLine(t, true); }),
      listSection("Open tasks", result.tasks, taskLine),
      talk.followers,
      talk.messages,
      listSection("Came in through team addresses", result.inbound, inboundLine),
      listSection("Recent activity", result.activities, function (a) {
        return itemLine(a.subject || a.snippet || a.kind, a.occurred_at.slice(0, 10) + " · " + (a.kind === "email" ? a.from : "Note"));
      }),
      historySection(result.history));
  }

  function unknownScreen(result) {
    const back = state.people.length > 1
      ? h("button", { class: "link", type: "button", text: "‹ Everyone on this email", onclick: function () { pickerScreen(state.people); } })
      : null;
    if (result.archived_contact) {
      // The address is an archived contact's: a new contact would be refused (409).
      show(back, h("h1", { text: "Archived contact" }), h("p", { class: "muted", text: result.email }),
        h("p", { id: "archived-contact", text: result.email + " belongs to " + result.archived_contact.name +
          ", an archived contact. An admin can restore it; a new contact cannot take this address." }));
      return;
    }
    const heading = [h("h1", { text: "Not in your records" }), h("p", { class: "muted", text: result.email })];
    const reopen = h("div", { class: "actions", hidden: true }, h("button", { class: "primary", type: "button",
      text: "Create contact", onclick: function () {
        reopen.hidden = true;
        reopen.after(contactCreateForm(result, function () { reopen.hidden = false; }));
      } }));
    show(back, ...heading, reopen, contactCreateForm(result, function () { reopen.hidden = false; }));
  }

  /* "Create contact", filled in from the lookup's proposal (the name the sender gives, the
   * company of their domain or a new one) or from a search (the address or name typed).
   * `onCancel` runs when the user cancels it; nothing is written then. */
  function contactCreateForm(result, onCancel) {
    const proposal = result.proposal || {};
    const name = h("input", { id: "new-name", required: true, value: proposal.name || "" });
    const email = h("input", { id: "new-email", type: "email", required: true, value: result.email || proposal.email || "" });
    const companyName = proposal.new_company ? h("input", { id: "new-company", value: proposal.new_company.name }) : null;
    const form = h("form", { class: "panel", "aria-label": "Create contact" },
      h("label", { for: "new-name", text: "Name" }), name,
      h("label", { for: "new-email", text: "Email" }), email,
      proposal.company ? h("p", { class: "muted", text: "Company: " + proposal.company.name }) : null,
      companyName ? h("label", { for: "new-company", text: "New company" }) : null, companyName,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Create contact" }),
        cancelButton(onCancel)));
    return submitForm(form, async function () {
      const body = { name: name.value.trim(), emails: [email.value.trim()] };
      if (proposal.company) body.company_id = proposal.company.id;
      else if (companyName && companyName.value.trim()) body.new_company = { name: companyName.value.trim(), domains: [proposal.new_company.domain] };
      const card = await api("POST", "/contacts", body);
      toast("Contact created.");
      if (!state.item || state.people.every(function (p) { return p.email !== body.emails[0].toLowerCase(); })) {
        // Not someone on this message (created from a search): their new card.
        return openFromSearch("contact", card.contact ? card.contact.id : card.id);
      }
      return load();
    });
  }

  function slot(form) {
    const place = document.getElementById("form-slot");
    place.replaceChildren(form);
    const first = form.querySelector("input, select, textarea, button");
    if (first) first.focus();
  }

  /* A form's work on submit; what failed is said in the form, which keeps what the user
   * typed, with "Try again" (submitting it again) where trying again can help. */
  function submitForm(form, work) {
    const failure = h("div", { class: "failure", role: "alert", hidden: true });
    const actions = form.querySelector(".actions");
    form.insertBefore(failure, actions);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      failure.hidden = true;
      const button = form.querySelector("button[type=submit]");
      busy(button, work().catch(function (e) {
        if (e.unauthorized) return connectScreen(e.message);
        failure.replaceChildren(h("p", { text: e.message || "Something went wrong." }),
          retryable(e) ? h("div", { class: "actions" }, h("button", { type: "button", text: "Try again",
            onclick: function () { form.requestSubmit(); } })) : null);
        failure.hidden = false;
      }));
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
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Log email" }), cancelButton())),
    async function () {
      const records = boxes.map(function (l) { return l.querySelector("input"); }).filter(function (b) { return b.checked; }).map(function (b) { return b.record; });
      if (!records.length) throw new Error("Choose at least one record.");
      const answer = await logEmail(records);
      toast(answer.already_logged ? "Already logged there." : "Email logged.");
      await (state.reload || refresh)();
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
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Create " + kind }), cancelButton())),
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
      await (state.reload || refresh)();
    }));
  }

  function taskForm(result) {
    const title = h("input", { id: "task-title", required: true });
    const due = h("input", { id: "task-due", type: "date" });
    slot(submitForm(h("form", { class: "panel", "aria-label": "Create task" },
      h("label", { for: "task-title", text: "Title" }), title,
      h("label", { for: "task-due", text: "Due" }), due,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Create task" }), cancelButton())),
    async function () {
      await api("POST", "/tasks", { title: title.value.trim(), due_date: due.value || null, record: recordOf(result) });
      toast("Task created.");
      await (state.reload || refresh)(); // the card, with the new task in "Open tasks"
    }));
  }

  function noteForm(result) {
    const body = h("textarea", { id: "note-body", required: true });
    slot(submitForm(h("form", { class: "panel", "aria-label": "Add note" },
      h("label", { for: "note-body", text: "Note" }), body,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Add note" }), cancelButton())),
    async function () {
      await api("POST", "/notes", { body: body.value, records: [recordOf(result)] });
      toast("Note added.");
      await (state.reload || refresh)(); // the card, with the note in "Recent activity"
    }));
  }

  /* The picker: each template's subject as it reads for this record (asked for only now,
   * when the picker opens: the card itself costs nothing more). Choosing one shows its
   * subject and the first lines of its text before anything opens or goes. */
  async function templateScreen(result) {
    const record = recordOf(result);
    const path = "/templates" + (record ? "?record=" + encodeURIComponent(record.type + ":" + record.id) : "");
    let templates;
    try {
      templates = await api("GET", path);
    } catch (e) {
      return reportError(e, function () { return templateScreen(result); });
    }
    const canSend = !!(state.item && state.item.restId);
    const items = templates.map(function (t) {
      return h("li", { class: "template" }, h("button", { class: "link", type: "button", text: t.name,
        "aria-label": "Preview " + t.name, onclick: function (event) {
          const choose = function () { return templatePreview(t, result, canSend); };
          busy(event.currentTarget, choose().catch(function (e) { reportError(e, choose); }));
        } }), h("span", { class: "sub", text: t.subject_preview || t.name }),
      canSend ? h("button", { type: "button", class: "small", text: "Send…", "aria-label": "Send " + t.name + " now",
        onclick: function (event) {
          const work = function () { return sendPreview(t, result); };
          busy(event.currentTarget, work().catch(function (e) { reportError(e, work); }));
        } }) : null);
    });
    slot(h("div", { class: "panel", role: "region", "aria-label": "Reply with a template" },
      h("h2", { text: "Reply with a template" }),
      items.length ? h("ul", { class: "items" }, ...items) : h("p", { class: "muted", text: "No templates yet." }),
      h("div", { class: "actions" }, cancelButton())));
  }

  /* One template, rendered for the record: its subject and a short text, then "Open reply"
   * (Outlook's reply form with it, which the user reads in full and sends), or "Send…". */
  async function templatePreview(template, result, canSend) {
    const rendered = await api("POST", "/templates/" + template.id + "/render", { record: recordOf(result) });
    const open = h("button", { class: "primary", type: "button", text: "Open reply" });
    open.addEventListener("click", function () {
      const work = function () { return openReply(rendered.body_html); };
      busy(open, work().catch(function (e) { reportError(e, work); }));
    });
    const send = canSend ? h("button", { type: "button", text: "Send…", "aria-label": "Send " + template.name + " now",
      onclick: function (event) {
        const work = function () { return sendPreview(template, result); };
        busy(event.currentTarget, work().catch(function (e) { reportError(e, work); }));
      } }) : null;
    slot(h("div", { class: "panel", role: "region", "aria-label": "Template preview" },
      h("button", { class: "link", type: "button", text: "‹ Templates", onclick: function () { templateScreen(result); } }),
      h("h2", { text: template.name }),
      h("p", { class: "preview-subject", text: "Subject: " + rendered.subject }),
      h("p", { class: "preview-text", text: Display.shortText(rendered.body_text, 280) }),
      h("p", { class: "muted", text: "Opens as your reply to this message in Outlook, where you read it in full and send it." }),
      h("div", { class: "actions" }, open, send, cancelButton())));
  }

  async function openReply(bodyHtml) {
    let html = bodyHtml;
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
      const work = function () { return sendReply(template, result); };
      busy(send, work().catch(function (e) { reportError(e, work); }));
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
      sendReply(template, result).catch(function (e) { reportError(e, retry); });
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
    const link = await busy(button, api("POST", "/record-links", record)).catch(function (e) {
      reportError(e, function () { return openRecord(button, record); });
    });
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

  /* Search results, grouped, each saying who or what it is (the API's subtitle); a contact
   * or a company opens its card, a lead or a ticket its own. Nobody found: "Create contact"
   * with the address or the name typed. `back`: what "‹ Back" returns to (the screen the
   * search was made from). */
  async function search(query, back) {
    const found = await api("GET", "/search?q=" + encodeURIComponent(query) + "&per_page=30");
    state.search = { query: query, back: back || load };
    state.reload = function () { return search(query, state.search.back); };
    dismissUndo();
    const groups = {};
    found.results.forEach(function (hit) { (groups[hit.type] = groups[hit.type] || []).push(hit); });
    const titles = { contact: "Contacts", company: "Companies", lead: "Leads", ticket: "Tickets" };
    const goBack = h("button", { class: "link", type: "button", text: "‹ Back", onclick: function (event) {
      const work = state.search.back;
      busy(event.currentTarget, Promise.resolve().then(work).catch(function (e) { reportError(e, work); }));
    } });
    const fromSearch = { query: query, back: state.search.back };
    const sections = Object.keys(groups).map(function (type) {
      return listSection(titles[type], groups[type], function (hit) {
        return h("li", {}, h("button", { class: "link", type: "button", text: hit.title, onclick: function (event) {
          const open = function () {
            if (type === "lead" || type === "ticket") return openCard(type, hit.id);
            return openFromSearch(type, hit.id, fromSearch);
          };
          busy(event.currentTarget, open().catch(function (e) { reportError(e, open); }));
        } }), hit.subtitle ? h("span", { class: "sub", text: hit.subtitle }) : null);
      });
    });
    let create = null;
    if (!found.results.length) {
      const typed = Display.searchProposal(query);
      const offer = h("div", { class: "actions" }, h("button", { class: "primary", type: "button", text: "Create contact",
        onclick: function () {
          offer.hidden = true;
          offer.after(contactCreateForm({ email: typed.email, proposal: { name: typed.name } },
            function () { offer.hidden = false; }));
          const first = document.getElementById(typed.name ? "new-email" : "new-name");
          if (first) first.focus();
        } }));
      create = h("section", { "aria-label": "Nobody found" },
        h("p", { text: "Nobody in your records matches “" + query + "”." }), offer);
    }
    show(goBack, h("h1", { text: "Search" }),
      h("p", { class: "muted", text: found.total + " found for “" + query + "”" }), ...sections, create);
  }

  /* The screen on show, drawn afresh later: the card of `current` by `reload` (refresh
   * reads state.current, which a search's cards change meanwhile). */
  function returnTo(current, reload) {
    return function () {
      state.current = current;
      return (reload || load)();
    };
  }

  /* A contact's or a company's card, as the API gives it, opened from a search (or just
   * created from one): drawn afresh from the record, not from a lookup by address. */
  async function openFromSearch(type, id, fromSearch) {
    const reload = function () { return openFromSearch(type, id, fromSearch); };
    const card = await api("GET", "/" + plural(type) + "/" + id);
    const address = card.contact ? card.contact.emails[0] || "" : "";
    return personScreen(Object.assign({ email: address, proposal: null }, card), reload, fromSearch);
  }

  // Keeping records current ---------------------------------------------------------------
  // Every change names the version it was read at (If-Match): a record someone changed since
  // is refused (412) and nothing is written, which the pane says before showing it afresh.

  function plural(type) {
    return type === "company" ? "companies" : type + "s";
  }

  function ifMatch(record) {
    return { "If-Match": '"' + record.version + '"' };
  }

  function staleMessage(type) {
    return "Someone changed this " + type + " since you opened it; nothing was saved.";
  }

  /* Said on the next screen drawn, once: `text`, and a button where there is a way on. */
  function takeNotice() {
    const notice = state.notice;
    state.notice = null;
    if (!notice) return null;
    return h("div", { class: "notice", role: "alert" }, h("p", { text: notice.text }),
      notice.action ? h("div", { class: "actions" },
        h("button", { type: "button", text: notice.action.label, onclick: notice.action.run })) : null);
  }

  /* The sender's address first: it is the one this message is about. */
  function addressesOf(contact, address) {
    const emails = contact.emails || [];
    const first = emails.indexOf(address) === -1 ? [] : [address];
    return first.concat(emails.filter(function (e) { return e !== address; })).join(", ") || address;
  }

  /* The contact's addresses that mail bounced from, each marked, with since when and why. */
  function bouncingLines(bouncing) {
    return (bouncing || []).map(function (b) {
      const why = b.reason ? ": " + b.reason : "";
      return h("li", { class: "bouncing" }, h("span", { class: "bounce-label", text: "Bouncing" }), b.email,
        h("span", { class: "sub", text: "Since " + String(b.since).slice(0, 10) + why }));
    });
  }

  /* A message that came to a team address: its subject, when and to which, and the record
   * it opened or went to (a lead's or a ticket's opens on a click). */
  function inboundLine(message) {
    const record = message.record;
    const to = message.alias ? " · to " + message.alias : "";
    const when = String(message.at).slice(0, 10) + to;
    let went = h("span", { class: "sub", text: message.outcome || "received" });
    if (record) {
      const label = (record.number ? record.number + " " : "") + record.title;
      const target = record.type === "lead" || record.type === "ticket"
        ? h("button", { class: "link", type: "button", text: label, onclick: function (event) {
          busy(event.currentTarget, openCard(record.type, record.id));
        } })
        : label;
      went = h("span", { class: "sub" }, (message.outcome || "to") + ": ", target);
    }
    return h("li", { class: "inbound" }, h("span", { text: message.subject || "(no subject)" }),
      h("span", { class: "sub", text: when }), went);
  }

  function historySection(history) {
    if (!history || !history.length) return null;
    return h("section", { "aria-label": "History" }, h("h2", { text: "History" }),
      h("ul", { class: "items history" }, ...history.map(function (entry) {
        return h("li", { text: Lifecycle.historyLine(entry, Lifecycle.localTime(entry.at)) });
      })));
  }

  /* Shows the answer of a change to the sender's contact (its card), kept as the sender's. */
  function showContactCard(card) {
    const fresh = Object.assign({}, state.current, card);
    state.people = state.people.map(function (p) { return p === state.current ? fresh : p; });
    return personScreen(fresh);
  }

  /* A change was refused because the record changed meanwhile: say so over its fresh state. */
  function reloadStale(type, action) {
    state.notice = { text: staleMessage(type), action: action || null };
    return (state.reload || load)();
  }

  // Edit a contact

  /* `mine`: changes of the user's that were refused, filled in over the contact as it is now
   * (and only those: what someone else changed meanwhile stays as they left it). */
  function contactForm(result, mine) {
    const contact = result.contact;
    const values = Object.assign({
      name: contact.name, phone: contact.phone || "", job_title: contact.job_title || "",
      emails: (contact.emails || []).join("\n"),
    }, formValues(mine || {}));
    const name = h("input", { id: "edit-name", required: true, value: values.name });
    const phone = h("input", { id: "edit-phone", type: "tel", value: values.phone });
    const jobTitle = h("input", { id: "edit-job-title", value: values.job_title });
    const emails = h("textarea", { id: "edit-emails", required: true, rows: 2 });
    emails.value = values.emails;
    const problem = h("p", { class: "error", role: "alert", hidden: true });
    const form = h("form", { class: "panel", "aria-label": "Edit contact" },
      h("label", { for: "edit-name", text: "Name" }), name,
      h("label", { for: "edit-phone", text: "Phone" }), phone,
      h("label", { for: "edit-job-title", text: "Job title" }), jobTitle,
      h("label", { for: "edit-emails", text: "Emails (one a line; the first is the main one)" }), emails,
      problem,
      h("div", { class: "actions" },
        h("button", { class: "primary", type: "submit", text: "Save" }),
        h("button", { type: "button", text: "Cancel", onclick: function () { form.remove(); } })));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const entered = { name: name.value, phone: phone.value, job_title: jobTitle.value, emails: emails.value };
      const changes = Lifecycle.contactChanges(contact, entered);
      if (!Object.keys(changes).length) { form.remove(); return toast("Nothing changed."); }
      problem.hidden = true;
      busy(form.querySelector("button[type=submit]"),
        api("PATCH", "/contacts/" + contact.id, changes, undefined, ifMatch(contact)).then(function (card) {
          toast("Contact saved.");
          return showContactCard(card);
        }).catch(function (e) {
          if (e.status === 412) {
            // What the user changed is offered again over the fresh contact, not sent blindly.
            return reloadStale("contact", { label: "Edit again with your changes", run: function () {
              contactForm(state.current, changes);
            } });
          }
          if (e.status === 400 || e.status === 409) {
            problem.textContent = e.message;
            problem.hidden = false;
            return;
          }
          reportError(e, function () { form.requestSubmit(); });
        }));
    });
    slot(form);
  }

  function formValues(changes) {
    const values = {};
    Object.keys(changes).forEach(function (field) {
      const value = changes[field];
      values[field] = Array.isArray(value) ? value.join("\n") : value === null ? "" : value;
    });
    return values;
  }

  // Possible duplicates

  function duplicatesSection(result) {
    const duplicates = result.contact && result.duplicates;
    if (!duplicates || !duplicates.length) return null;
    return h("section", { "aria-label": "Possible duplicates" },
      h("ul", { class: "items" }, ...duplicates.map(function (other) {
        const label = "Possible duplicate: " + other.name + (other.emails.length ? " (" + other.emails.join(", ") + ")" : "");
        return h("li", { class: "duplicate" }, h("span", { text: label }),
          h("button", { type: "button", class: "small", text: "Merge into this contact",
            "aria-label": "Merge " + other.name + " into this contact",
            onclick: function () { mergeConfirm(result, other); } }));
      })));
  }

  /* A merge removes the other contact: said in full before it is done. */
  function mergeConfirm(result, other) {
    const contact = result.contact;
    const merge = h("button", { class: "primary", type: "button", text: "Merge" });
    const panel = h("div", { class: "panel", role: "region", "aria-label": "Merge contacts" },
      h("p", { text: "Merge " + other.name + " into " + contact.name + "? Its addresses, emails, notes, leads, tickets and tasks move here, and it is removed." }),
      h("div", { class: "actions" }, merge,
        h("button", { type: "button", text: "Cancel", onclick: function () { panel.remove(); } })));
    merge.addEventListener("click", function () {
      busy(merge, api("POST", "/contacts/" + contact.id + "/merge", { from: other.id }, undefined, ifMatch(contact))
        .then(function (card) {
          toast(other.name + " merged into this contact.");
          return showContactCard(card);
        }).catch(function (e) {
          if (e.status === 412) return reloadStale("contact");
          reportError(e, function () { merge.click(); });
          if (e.status === 404) return refresh();
        }));
    });
    slot(panel);
  }

  // Leads and tickets

  function recordTitle(type, record) {
    return type === "lead" ? record.title : record.subject;
  }

  function openLink(type, record) {
    return h("button", { class: "link", type: "button", text: recordTitle(type, record), onclick: function (event) {
      busy(event.currentTarget, openCard(type, record.id));
    } });
  }

  async function openCard(type, id) {
    try {
      return recordScreen(type, await api("GET", "/" + plural(type) + "/" + id));
    } catch (e) {
      reportError(e, function () { return openCard(type, id); });
      if (e.status === 404) return (state.reload || load)();
    }
  }

  /* PATCH a lead or a ticket at the version shown, then show its card as answered;
   * true when the change was made. */
  async function changeRecord(type, record, changes, problem) {
    try {
      const card = await api("PATCH", "/" + plural(type) + "/" + record.id, changes, undefined, ifMatch(record));
      recordScreen(type, card);
      return true;
    } catch (e) {
      if (e.status === 412) {
        state.notice = { text: staleMessage(type) };
        await openCard(type, record.id);
        return false;
      }
      if (problem && (e.status === 400 || e.status === 409)) {
        problem.textContent = e.message;
        problem.hidden = false;
        return false;
      }
      reportError(e, function () { return changeRecord(type, record, changes, problem); });
      return false;
    }
  }

  function stageControl(lead) {
    const id = "stage-" + lead.id;
    const select = h("select", { id: id, class: "stage", "aria-label": "Stage of " + lead.title },
      ...Lifecycle.LEAD_STAGES.map(function (stage) {
        return h("option", { value: stage, text: stage, selected: stage === lead.stage });
      }));
    const reasonSlot = h("div", {});
    select.addEventListener("change", function () {
      if (select.value === "lost") return reasonSlot.replaceChildren(lostForm(lead, select));
      reasonSlot.replaceChildren();
      busy(select, changeRecord("lead", lead, { stage: select.value }).then(function (changed) {
        if (!changed) select.value = lead.stage;
      }));
    });
    return h("div", { class: "stage-control" }, h("label", { for: id, text: "Stage" }), select, reasonSlot);
  }

  /* Lost needs its reason before anything is sent. */
  function lostForm(lead, select) {
    const id = "lost-reason-" + lead.id;
    const reason = h("input", { id: id, required: true, maxlength: 500 });
    const problem = h("p", { class: "error", role: "alert", hidden: true });
    const form = h("form", { class: "panel", "aria-label": "Why " + lead.title + " was lost" },
      h("label", { for: id, text: "Lost reason" }), reason, problem,
      h("div", { class: "actions" },
        h("button", { class: "primary", type: "submit", text: "Mark lost" }),
        h("button", { type: "button", text: "Cancel", onclick: function () { select.value = lead.stage; form.remove(); } })));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      busy(form.querySelector("button[type=submit]"),
        changeRecord("lead", lead, { stage: "lost", lost_reason: reason.value.trim() }, problem));
    });
    setTimeout(function () { reason.focus(); }, 0);
    return form;
  }

  function leadLine(lead, onSendersCard) {
    const revenue = lead.expected_revenue != null ? " · " + lead.expected_revenue.toLocaleString() : "";
    return h("li", {}, onSendersCard ? openLink("lead", lead) : lead.title,
      h("span", { class: "sub", text: lead.stage + revenue }), stageControl(lead));
  }

  function ticketButton(ticket) {
    const open = Lifecycle.isOpenTicket(ticket);
    const label = open ? "Close" : "Reopen";
    return h("button", { type: "button", class: "small", text: label, "aria-label": label + " " + ticket.subject,
      onclick: function (event) {
        busy(event.currentTarget, changeRecord("ticket", ticket, { status: open ? "closed" : "open" }).then(function (changed) {
          if (changed) toast(open ? "Ticket closed." : "Ticket reopened.");
        }));
      } });
  }

  function ticketLine(ticket, onSendersCard) {
    return h("li", {}, onSendersCard ? openLink("ticket", ticket) : ticket.subject,
      h("span", { class: "sub", text: ticket.status + " · " + ticket.priority }), ticketButton(ticket));
  }

  /* A lead's or a ticket's card: its stage or status to change, its tasks and its history. */
  function recordScreen(type, card) {
    const record = card[type];
    state.reload = function () { return openCard(type, record.id); };
    state.search = null;
    const notice = takeNotice();
    const senderName = state.current && (state.current.contact || state.current.company || {}).name;
    const back = h("button", { class: "link", type: "button", text: "‹ " + (senderName || "Back"), onclick: function (event) {
      const work = state.current ? state.cardReload || refresh : load;
      busy(event.currentTarget, work().catch(function (e) { reportError(e, work); }));
    } });
    const about = [card.contact && card.contact.name, card.company && card.company.name].filter(Boolean).join(" · ");
    const facts = type === "lead"
      ? [record.expected_revenue != null ? itemLine(record.expected_revenue.toLocaleString(), "Expected revenue") : null,
        record.close_date ? itemLine(record.close_date, "Close date") : null,
        record.lost_reason ? itemLine(record.lost_reason, "Lost reason") : null]
      : [itemLine(record.status, "Status"), itemLine(record.priority, "Priority")];
    const talk = conversation({ type: type, id: record.id }, card, recordTitle(type, record));
    show(back, notice, h("h1", { text: recordTitle(type, record) }),
      h("p", { class: "muted", text: (type === "lead" ? "Lead" : "Ticket") + (about ? " · " + about : "") }),
      h("ul", { class: "items" }, ...facts.filter(Boolean)),
      type === "lead" ? stageControl(record) : h("div", { class: "actions" }, ticketButton(record)),
      h("div", { class: "actions" }, talk.button),
      h("div", { id: "form-slot" }),
      talk.followers,
      talk.messages,
      listSection("Open tasks", card.tasks, taskLine),
      historySection(card.history));
  }

  // Followers and messages from the record ------------------------------------------------
  // Who follows the record (and gets each new message on it by mail), and "Write to the
  // customer": written here, previewed as it will go (From, To, Reply-To), then queued by the
  // connector, which sends it from the team address; its status shows in "Messages".

  function recordPath(ref) {
    return "/" + plural(ref.type) + "/" + ref.id;
  }

  /* A section that draws itself from the card's list where the card has it, else asks the
   * API; `redraw()` asks again (after a change) and draws it in place. */
  function liveSection(label, initial, path, render) {
    const section = h("section", { "aria-label": label });
    const draw = function (items) { section.replaceChildren(...render(items, redraw).filter(Boolean)); };
    const redraw = async function () {
      const answer = await api("GET", path);
      draw(answer.results || []);
    };
    section.redraw = redraw;
    if (Array.isArray(initial)) {
      draw(initial);
    } else {
      section.replaceChildren(h("h2", { text: label }), h("p", { class: "muted", text: "Loading…" }));
      redraw().catch(function (e) {
        if (e.unauthorized) return connectScreen(e.message);
        section.replaceChildren(h("h2", { text: label }), h("p", { class: "error", role: "alert", text: e.message }));
      });
    }
    return section;
  }

  function followersSection(ref, initial) {
    const path = recordPath(ref) + "/followers";
    // A card shows an owner who has no row yet with a null id (cards never write); the
    // followers' own list gives them one, which Unfollow needs.
    const complete = Array.isArray(initial) && initial.every(function (f) { return f.id != null; });
    return liveSection("Followers", complete ? initial : null, path, function (followers, redraw) {
      const change = function (button, work) {
        const run = function () { return work().then(redraw); };
        busy(button, run().catch(function (e) { reportError(e, run); }));
      };
      const following = followers.some(function (f) { return f.is_me; });
      const lines = followers.map(function (follower) {
        const line = Display.followerLine(follower);
        const remove = function () { return api("DELETE", path + "/" + follower.id); };
        return h("li", { class: "follower" }, line.name, h("span", { class: "sub", text: line.sub }),
          h("button", { type: "button", class: "small",
            text: "Unfollow",
            "aria-label": follower.is_me ? "Unfollow this record" : "Unfollow " + line.name + " from this record",
            onclick: function (event) {
              const button = event.currentTarget;
              change(button, function () {
                return remove().then(function () { toast(follower.is_me ? "You no longer follow this record." : line.name + " no longer follows this record."); });
              });
            } }));
      });
      const follow = following || !state.me ? null
        : h("div", { class: "actions" }, h("button", { type: "button", class: "small", text: "Follow",
          "aria-label": "Follow this record", onclick: function (event) {
            const button = event.currentTarget;
            change(button, function () {
              return api("POST", path, { user_id: state.me.id }).then(function () { toast("You follow this record."); });
            });
          } }));
      return [h("h2", { text: "Followers" }),
        lines.length ? h("ul", { class: "items followers" }, ...lines) : h("p", { class: "muted", text: "Nobody follows this record." }),
        follow];
    });
  }

  function messagesSection(ref, initial) {
    return liveSection("Messages", initial, recordPath(ref) + "/messages", function (messages) {
      if (!messages.length) return [];
      return [h("h2", { text: "Messages" }), h("ul", { class: "items messages" }, ...messages.map(function (message) {
        const line = Display.messageLine(message);
        return h("li", { class: line.failed ? "message failed" : "message " + message.status },
          line.failed ? h("span", { class: "bounce-label", text: "Failed" }) : null, line.subject,
          h("span", { class: "sub" + (line.failed ? " late" : ""), text: line.sub }),
          line.error ? h("span", { class: "sub late message-error", text: line.error }) : null);
      }))];
    });
  }

  /* The followers and the messages of `ref`, and the form that writes to its customer;
   * `sections` gets redrawn once a message is queued (the writer now follows it too). */
  function conversation(ref, card, title) {
    const followers = followersSection(ref, card.followers);
    const messages = messagesSection(ref, card.messages);
    const write = h("button", { type: "button", text: "Write to the customer", onclick: function () {
      slot(writeForm(ref, title, {}, function () {
        return Promise.all([messages.redraw(), followers.redraw()]);
      }));
    } });
    return { button: write, followers: followers, messages: messages };
  }

  /* What the user wrote; `typed` fills it again (back from the preview). */
  function writeForm(ref, title, typed, sent) {
    const subject = h("input", { id: "write-subject", maxlength: 998,
      value: typed.subject !== undefined ? typed.subject : Display.messageSubject(ref.type, ref.id, title) });
    const template = h("select", { id: "write-template" }, h("option", { value: "", text: "No template" }));
    const body = h("textarea", { id: "write-body", rows: 6 });
    body.value = typed.body_text || "";
    const bodyLabel = h("label", { for: "write-body", text: "Message" });
    const useTemplate = function () {
      // A template is the message's body, rendered for the record: the text box goes.
      const chosen = !!template.value;
      body.hidden = chosen;
      bodyLabel.hidden = chosen;
    };
    template.addEventListener("change", useTemplate);
    api("GET", "/templates?record=" + encodeURIComponent(ref.type + ":" + ref.id)).then(function (templates) {
      templates.forEach(function (t) {
        template.append(h("option", { value: String(t.id), text: t.name, selected: String(t.id) === String(typed.template_id || "") }));
      });
      useTemplate();
    }).catch(function () {
      // Writing without a template still works: the picker only says it has none.
      template.replaceChildren(h("option", { value: "", text: "Templates unavailable" }));
    });
    const form = h("form", { class: "panel", "aria-label": "Write to the customer" },
      h("label", { for: "write-subject", text: "Subject" }), subject,
      h("label", { for: "write-template", text: "Template" }), template,
      bodyLabel, body,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", text: "Preview" }), cancelButton()));
    return submitForm(form, async function () {
      const message = { subject: subject.value.trim() };
      if (template.value) message.template_id = Number(template.value);
      else if (body.value.trim()) message.body_text = body.value;
      else throw new Error("Write a message, or choose a template.");
      if (!message.subject) delete message.subject; // the connector's own: title and number
      const preview = await api("POST", recordPath(ref) + "/messages/preview", message);
      slot(previewPanel(ref, title, message, preview, sent));
    });
  }

  /* Exactly what will go, before it goes: a sent message cannot be taken back. */
  function previewPanel(ref, title, message, preview, sent) {
    const send = h("button", { class: "primary", type: "button", text: "Send" });
    const failure = h("div", { class: "failure", role: "alert", hidden: true });
    const facts = [["From", preview.from], ["To", (preview.to || []).join(", ")],
      ["Reply-To", preview.reply_to], ["Subject", preview.subject]];
    const edit = h("button", { type: "button", text: "Edit", onclick: function () {
      slot(writeForm(ref, title, message, sent));
    } });
    const panel = h("div", { class: "panel", role: "region", "aria-label": "Message preview" },
      h("h2", { text: "Send this message?" }),
      h("ul", { class: "items" }, ...facts.map(function (fact) { return itemLine(fact[1] || "—", fact[0]); })),
      h("div", { class: "preview", "aria-label": "Message text", text: preview.body_text }),
      failure,
      h("div", { class: "actions" }, send, edit, cancelButton()));
    send.addEventListener("click", function () {
      failure.hidden = true;
      busy(send, api("POST", recordPath(ref) + "/messages", message).then(function (queued) {
        panel.remove();
        toast(queued.status === "failed" ? "The message could not be sent; see Messages." : "Message " + queued.status + ".", queued.status === "failed");
        // It is queued: redrawing the lists may fail and be tried again, never the Send.
        sent().catch(function (e) { reportError(e, sent); });
      }).catch(function (e) {
        if (e.unauthorized) return connectScreen(e.message);
        // Not queued (refused, or the connector unreachable): nothing went, so Send again.
        failure.replaceChildren(h("p", { text: e.message || "Something went wrong." }));
        failure.hidden = false;
      }));
    });
    return panel;
  }

  // Tasks: done, and undone for a while

  function taskLine(task) {
    // Overdue as of the user's today, computed here from due_date: no request for it.
    const late = Display.isOverdue(task, Display.localDay());
    return h("li", { class: late ? "task overdue" : "task" }, task.title,
      h("span", { class: "sub" + (late ? " late" : "") },
        late ? h("span", { class: "overdue-label", text: "Overdue" }) : null,
        task.due_date ? "Due " + task.due_date : "No due date"),
      h("button", { type: "button", class: "small", text: "Done", "aria-label": "Done: " + task.title, onclick: function (event) {
        const work = function () { return completeTask(task); };
        busy(event.currentTarget, work().catch(function (e) { reportError(e, work); }));
      } }));
  }

  async function completeTask(task) {
    await api("PATCH", "/tasks/" + task.id, { done: true });
    await (state.reload || refresh)();
    offerUndo(task);
  }

  /* "Undo" stays until UNDO_MS pass or the user does something else, whichever is first. */
  function offerUndo(task) {
    const bar = document.getElementById("undo");
    const reopen = function () {
      return api("PATCH", "/tasks/" + task.id, { done: false })
        .then(function () { toast("“" + task.title + "” is open again."); return (state.reload || refresh)(); });
    };
    const undo = h("button", { type: "button", text: "Undo", onclick: function () {
      dismissUndo();
      reopen().catch(function (e) { reportError(e, reopen); });
    } });
    bar.replaceChildren(h("span", { text: "“" + task.title + "” done." }), undo);
    document.getElementById("toast").hidden = true; // the same place on screen
    bar.hidden = false;
    clearTimeout(offerUndo.timer);
    offerUndo.timer = setTimeout(dismissUndo, UNDO_MS);
  }

  function dismissUndo() {
    clearTimeout(offerUndo.timer);
    const bar = document.getElementById("undo");
    bar.hidden = true;
    bar.replaceChildren();
  }

  function dismissUndoOnOtherAction(event) {
    const bar = document.getElementById("undo");
    if (!bar.hidden && !bar.contains(event.target)) dismissUndo();
  }

  // Loading -----------------------------------------------------------------------------

  async function refresh() {
    if (!state.current) return load();
    const email = state.current.email;
    const asked = state.lookupValues[email] || email; // with the name, for the proposal
    const [fresh] = (await api("GET", "/lookup?email=" + encodeURIComponent(asked))).results;
    state.people = state.people.map(function (p) { return p.email === fresh.email ? fresh : p; });
    return personScreen(fresh);
  }

  async function load() {
    state.current = null;
    state.search = null;
    statusScreen("Loading…");
    try {
      state.item = await ConnectorItem.readItem(Office.context.mailbox, { htmlCoercion: Office.CoercionType.Html });
      if (!state.item) return statusScreen("Select a message to see who it is from.");
      if (!(await token())) return connectScreen();
      state.me = state.me || await api("GET", "/me");
      // "Bob Smith <bobsmith1987@...>": the lookup proposes the name Outlook shows.
      const values = ConnectorItem.lookupValues(state.item, state.me.email);
      if (!values.length) return statusScreen("Only you are on this message.");
      const addresses = ConnectorItem.participants(state.item, state.me.email);
      state.lookupValues = {};
      addresses.forEach(function (address, n) { state.lookupValues[address] = values[n]; });
      const query = values.slice(0, 50).map(function (a) { return "email=" + encodeURIComponent(a); }).join("&");
      state.people = (await api("GET", "/lookup?" + query)).results;
      if (state.people.length === 1) return personScreen(state.people[0]);
      return pickerScreen(state.people);
    } catch (error) {
      if (error.unauthorized) return connectScreen(error.message);
      errorScreen(error.message || "Something went wrong.", load);
    }
  }

  // Theme -------------------------------------------------------------------------------
  // Office's theme where the client gives one (dark or light, and its body colours);
  // else the stylesheet follows the system's (prefers-color-scheme).

  function applyTheme(officeTheme) {
    const root = document.documentElement;
    const dark = Display.isDarkTheme(officeTheme);
    if (dark === null) {
      root.removeAttribute("data-theme");
    } else {
      root.setAttribute("data-theme", dark ? "dark" : "light");
    }
    ["--bg", "--text"].forEach(function (name) { root.style.removeProperty(name); });
    const colours = Display.themeColours(officeTheme);
    Object.keys(colours).forEach(function (name) { root.style.setProperty(name, colours[name]); });
  }

  function followOfficeTheme() {
    const context = window.Office && Office.context;
    applyTheme(context && context.officeTheme);
    const mailbox = context && context.mailbox;
    const changed = Office.EventType && Office.EventType.OfficeThemeChanged;
    if (changed && mailbox && typeof mailbox.addHandlerAsync === "function") {
      mailbox.addHandlerAsync(changed, function (event) {
        applyTheme((event && event.officeTheme) || Office.context.officeTheme);
      });
    }
  }

  Office.onReady(function () {
    followOfficeTheme();
    ["click", "change", "submit"].forEach(function (kind) {
      document.addEventListener(kind, dismissUndoOnOtherAction, true);
    });
    document.getElementById("search").addEventListener("submit", function (event) {
      event.preventDefault();
      const query = document.getElementById("search-input").value.trim();
      if (query.length < 2) return;
      const back = state.search ? state.search.back : returnTo(state.current, state.reload);
      const work = function () { return search(query, back); };
      work().catch(function (e) { reportError(e, work); });
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
