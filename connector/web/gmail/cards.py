"""Gmail add-on cards: pure functions from view-model dictionaries to card JSON.

The JSON follows google.apps.card.v1.Card (the tests parse every card with
Google's protos). Buttons call back through `act(name, **state)`, which the
caller supplies: it returns the Action (endpoint URL and signed parameters), so
nothing here knows about Flask, URLs or secrets.

Text reaches a card only through the widget functions below, and they escape it there,
so that no card can forget to. Google renders some fields as formatted text, a small HTML
subset (card.proto: `textParagraph.text`, `decoratedText`'s `text` and labels, a section's
`header`): there user data is HTML-escaped, and markup of ours is written as `Markup`,
whose arguments are escaped as they are filled in. The other fields a person reads (the
card header's title and subtitle, selection items, buttons, input labels, notifications)
are documented as plain text, but record data is escaped there too (`as_text`): a client
that renders one of them as HTML must not run a record's name, and the cost, an entity
shown for a `&` where a client shows text as written, is the safe side. Only the value
of an input, text the user edits and sends back, is left as it is (`input_value`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from markupsafe import Markup
from markupsafe import escape as escape_html

from connector.lookup.view_models import history_line, local_time
from connector.records.models import LeadStage

Card = dict[str, Any]
Widget = dict[str, Any]

MAX_WIDGETS = 100
MAX_LISTED = 8


class Act(Protocol):
    def __call__(self, name: str, /, **state: Any) -> dict[str, Any]: ...


# Text ------------------------------------------------------------------------------


def formatted(value: str) -> str:
    """For a field Google renders as HTML: user data escaped, our `Markup` kept."""
    return str(escape_html(value))


def as_text(value: str) -> str:
    """For a field Google shows as text: our `Markup` as its plain text, user data escaped."""
    return str(escape_html(value.striptags() if isinstance(value, Markup) else value))


def input_value(value: str) -> str:
    """The value of an input: the user edits it and sends it back, so it stays as written."""
    return value.striptags() if isinstance(value, Markup) else str(value)


# Widgets ---------------------------------------------------------------------------


def text(value: str) -> Widget:
    return {"textParagraph": {"text": formatted(value)}}


def decorated(
    value: str,
    *,
    top: str = "",
    bottom: str = "",
    icon: str | None = None,
    on_click: dict[str, Any] | None = None,
    end_button: dict[str, Any] | None = None,
) -> Widget:
    body: dict[str, Any] = {"text": formatted(value or "—"), "wrapText": True}
    if end_button:
        body["button"] = end_button
    if top:
        body["topLabel"] = formatted(top)
    if bottom:
        body["bottomLabel"] = formatted(bottom)
    if icon:
        body["startIcon"] = {"knownIcon": icon}
    if on_click:
        body["onClick"] = on_click
    return {"decoratedText": body}


def button(label: str, on_click: dict[str, Any]) -> dict[str, Any]:
    return {"text": as_text(label), "onClick": on_click}


def buttons(*items: dict[str, Any]) -> Widget:
    return {"buttonList": {"buttons": list(items)}}


def action(act: Act, name: str, /, **state: Any) -> dict[str, Any]:
    return {"action": act(name, **state)}


def open_link(url: str) -> dict[str, Any]:
    return {"openLink": {"url": url}}


def overlay_link(url: str) -> dict[str, Any]:
    """A page over the sidebar (sign-in); the card reloads when it closes."""
    return {"openLink": {"url": url, "openAs": "OVERLAY", "onClose": "RELOAD"}}


def text_input(name: str, label: str, value: str = "", *, multiline: bool = False) -> Widget:
    body: dict[str, Any] = {
        "name": name,
        "label": as_text(label),
        "type": "MULTIPLE_LINE" if multiline else "SINGLE_LINE",
    }
    if value:
        body["value"] = input_value(value)
    return {"textInput": body}


def checkboxes(name: str, label: str, items: Sequence[tuple[str, str, bool]]) -> Widget:
    return {
        "selectionInput": {
            "name": name,
            "label": as_text(label),
            "type": "CHECK_BOX",
            "items": [{"text": as_text(t), "value": v, "selected": s} for t, v, s in items],
        }
    }


def dropdown(
    name: str, label: str, items: Sequence[tuple[str, str]], selected: str | None = None
) -> Widget:
    """A choice of items (text, value): the one of value `selected`, else the first, chosen."""
    chosen = selected if any(value == selected for _text, value in items) else None
    return {
        "selectionInput": {
            "name": name,
            "label": as_text(label),
            "type": "DROPDOWN",
            "items": [
                {
                    "text": as_text(text),
                    "value": value,
                    "selected": value == chosen if chosen is not None else n == 0,
                }
                for n, (text, value) in enumerate(items)
            ],
        }
    }


def date_picker(name: str, label: str, value: dt.date | None) -> Widget:
    body: dict[str, Any] = {"name": name, "label": as_text(label), "type": "DATE_ONLY"}
    if value is not None:
        midnight = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
        body["valueMsEpoch"] = str(int(midnight.timestamp() * 1000))
    return {"dateTimePicker": body}


def section(
    widgets: Sequence[Widget], header: str = "", *, collapsible: bool = False, shown: int = 3
) -> dict[str, Any]:
    """Widgets under a header; a collapsible one shows its first `shown` until opened."""
    body: dict[str, Any] = {"widgets": list(widgets)}
    if header:
        body["header"] = formatted(header)
    if collapsible and len(widgets) > shown:
        body["collapsible"] = True
        body["uncollapsibleWidgetsCount"] = shown
    return body


def card(
    title: str, sections: Sequence[dict[str, Any]], subtitle: str = "", name: str = ""
) -> Card:
    header: dict[str, Any] = {"title": as_text(title)}
    if subtitle:
        header["subtitle"] = as_text(subtitle)
    kept = [s for s in sections if s["widgets"]]
    result: Card = {"header": header, "sections": kept}
    if name:
        result["name"] = name
    return result


def widget_count(value: Card) -> int:
    return sum(len(s["widgets"]) for s in value.get("sections", []))


# Formatting -------------------------------------------------------------------------


def money(amount: float | None) -> str:
    return "" if amount is None else f"{amount:,.0f}"


def _lead_line(lead: dict[str, Any]) -> str:
    revenue = money(lead.get("expected_revenue"))
    return f"{lead['stage'].capitalize()}" + (f" · {revenue}" if revenue else "")


# Google's red for errors: an overdue task stands out from the others in the list.
OVERDUE_COLOR = "#d93025"


def _day(date: dt.date) -> str:
    return f"{date.day} {date:%b}"


def _due(task: dict[str, Any], today: dt.date) -> str:
    """When a task is due, from its due_date and the reader's today (no query): an overdue
    one in red, "Overdue · due 3 Nov"."""
    if not task.get("due_date"):
        return "No due date"
    due = dt.date.fromisoformat(task["due_date"])
    if due < today:
        return Markup('<font color="{}">Overdue · due {}</font>').format(OVERDUE_COLOR, _day(due))
    return "Due today" if due == today else f"Due {_day(due)}"


def cancel(act: Act) -> dict[str, Any]:
    """A form's way back: the card below again, nothing written."""
    return button("Cancel", action(act, "cancel"))


# Cards ------------------------------------------------------------------------------


def notice_card(title: str, message: str) -> Card:
    return card(title, [section([text(message)])])


def no_access_card(email: str, sign_in_url: str) -> Card:
    sign_in = overlay_link(sign_in_url)
    return card(
        "No access yet",
        [
            section(
                [
                    text(
                        Markup(
                            "<b>{}</b> is not a user of the connector yet. Sign in "
                            "with your work account: where your organization lets your domain "
                            "join, that is all it takes. Otherwise ask your connector admin to "
                            "add you first."
                        ).format(email)
                    ),
                    buttons(button("Sign in", sign_in)),
                ]
            )
        ],
    )


def homepage_card(
    user_name: str,
    tasks: Sequence[dict[str, Any]],
    leads: Sequence[dict[str, Any]],
    act: Act,
    today: dt.date,
    banner: Sequence[Widget] = (),
) -> Card:
    task_widgets = task_rows(tasks, act, None, today) or [text("Nothing due in the next 7 days.")]
    lead_widgets = [
        decorated(
            lead["title"],
            bottom=_lead_line(lead),
            icon="DOLLAR",
            on_click=action(act, "open_record", type="lead", id=lead["id"]),
        )
        for lead in leads[:MAX_LISTED]
    ] or [text("No open leads.")]
    return card(
        "The connector",
        [
            section(banner),
            search_section(act),
            section(task_widgets, "Your tasks due soon"),
            section(lead_widgets, "Your recent leads"),
        ],
        subtitle=f"Hello, {user_name}",
        name="homepage",
    )


def search_section(act: Act, query: str = "") -> dict[str, Any]:
    return section(
        [
            text_input("query", "Search contacts, companies, leads, tickets", query),
            buttons(button("Search", action(act, "search"))),
        ]
    )


def picker_card(results: Sequence[dict[str, Any]], act: Act) -> Card:
    widgets = []
    for result in results[: MAX_WIDGETS - 1]:
        contact, company = result.get("contact"), result.get("company")
        name = contact["name"] if contact else result["email"]
        bottom = (
            company["name"] if company else "Not in your records" if not contact else "No company"
        )
        widgets.append(
            decorated(
                name,
                top=result["email"] if contact else "",
                bottom=bottom,
                icon="PERSON",
                # The name the message gives, for "Create contact" on the person's card.
                on_click=action(
                    act,
                    "open_person",
                    email=result["email"],
                    name=(result.get("proposal") or {}).get("name", ""),
                ),
            )
        )
    return card("In this conversation", [section(widgets)], name="picker")


def person_card(
    result: dict[str, Any],
    act: Act,
    *,
    logged_on: Sequence[str] = (),
    record_url: Callable[[str, int], str],
    today: dt.date,
    zone: dt.tzinfo,
    banner: Sequence[Widget] = (),
) -> Card:
    """A known contact (or a company found by the sender's domain) and what to do.

    `zone` is the reader's time zone (the history's times); `banner` what the last action
    did, first on the card (e.g. "Done: Call Hank" with its Undo).
    """
    contact, company = result.get("contact"), result.get("company")
    if contact is None and company is None:
        return unknown_sender_card(result, act)
    if contact:
        record, title = ("contact", contact["id"]), contact["name"]
    else:
        assert company is not None  # one of the two is there (the return above)
        record, title = ("company", company["id"]), company["name"]
    proposal = None if contact else result.get("proposal")
    # The card the buttons below are on, to show again after they changed something (with
    # the name to propose for a new contact, on a company's card).
    here = {"type": record[0], "id": record[1], "email": result["email"]}
    if proposal:
        here["name"] = proposal.get("name", "")
    details: list[Widget] = []
    if contact:
        bouncing = {b["email"]: b for b in result.get("bouncing", [])}
        shown = bouncing.pop(result["email"], None)
        details.append(
            decorated(
                result["email"],
                top="Email",
                bottom=bounce_line(shown) if shown else "",
                icon="EMAIL",
            )
        )
        # The contact's other addresses that bounce: whoever writes to them should know.
        details += [
            decorated(b["email"], top="Other address", bottom=bounce_line(b), icon="EMAIL")
            for b in list(bouncing.values())[:MAX_LISTED]
        ]
        if contact.get("phone"):
            details.append(decorated(contact["phone"], top="Phone", icon="PHONE"))
    if company:
        details.append(
            decorated(
                company["name"],
                top="Company",
                bottom=", ".join(company.get("domains", [])),
                icon="STORE",
            )
        )
    if logged_on:
        details.append(
            text(Markup("<b>✓ This email is logged</b> on {}").format(", ".join(logged_on)))
        )
    duplicates: list[Widget] = []
    if contact:
        for other in result.get("duplicates", [])[:MAX_LISTED]:
            duplicates += duplicate_widgets(contact, other, act, here)
    actions = [
        buttons(
            button("Log email", action(act, "log_form", email=result["email"])),
            button("Create lead", action(act, "lead_form", email=result["email"])),
            button("Create ticket", action(act, "ticket_form", email=result["email"])),
        ),
        buttons(
            button("Create task", action(act, "task_form", type=record[0], id=record[1], on=here)),
            button("Add note", action(act, "note_form", type=record[0], id=record[1], on=here)),
            button("Reply with template", action(act, "template_picker", email=result["email"])),
        ),
        buttons(
            *(
                [
                    button("Edit contact", action(act, "contact_form", id=record[1], on=here)),
                    # To the contact only: a company has no one to write to.
                    button(
                        WRITE,
                        action(act, "write_form", type=record[0], id=record[1], on=here),
                    ),
                ]
                if contact
                else []
            ),
            button("Open in the connector", open_link(record_url(*record))),
        ),
    ]
    subtitle = (
        " · ".join(p for p in (contact.get("job_title"), (company or {}).get("name")) if p)
        if contact
        else f"Company of {result['email']}"
    )
    return card(
        title,
        [
            section(banner),
            section(details),
            section(new_contact_widgets(proposal, result["email"], act) if proposal else []),
            section(duplicates),
            section(actions),
            followers_section(result.get("followers", []), act, record[0], record[1], here),
            messages_section(result.get("messages", [])),
            section(lead_rows(result.get("leads", []), act, here), "Open leads", collapsible=True),
            section(
                ticket_rows(result.get("tickets", []), act, here), "Open tickets", collapsible=True
            ),
            section(
                task_rows(result.get("tasks", []), act, here, today), "Open tasks", collapsible=True
            ),
            section(
                inbound_rows(result.get("inbound", []), act),
                "Came in through team addresses",
                collapsible=True,
            ),
            section(
                activity_rows(result.get("activities", [])), "Recent activity", collapsible=True
            ),
            history_section(result.get("history", []), zone),
        ],
        subtitle=subtitle,
        name="person",
    )


# A lead moves on one stage at a time from the cards that list it; won and lost are the ends
# (lost, which needs a reason, is chosen on the lead's own card).
NEXT_STAGE = {
    LeadStage.NEW.value: LeadStage.QUALIFIED.value,
    LeadStage.QUALIFIED.value: LeadStage.PROPOSITION.value,
    LeadStage.PROPOSITION.value: LeadStage.WON.value,
}
CLOSED_STATUSES = ("resolved", "closed")


def lead_rows(leads: Sequence[dict[str, Any]], act: Act, here: dict[str, Any]) -> list[Widget]:
    """Open leads: a click opens the lead's card; the button moves it to the next stage."""
    rows = []
    for lead in leads[:MAX_LISTED]:
        following = NEXT_STAGE.get(lead["stage"])
        move = (
            button(
                f"→ {following.capitalize()}",
                action(
                    act,
                    "change_stage",
                    id=lead["id"],
                    version=lead["version"],
                    stage=following,
                    on=here,
                ),
            )
            if following
            else None
        )
        rows.append(
            decorated(
                lead["title"],
                bottom=_lead_line(lead),
                icon="DOLLAR",
                on_click=action(act, "open_record", type="lead", id=lead["id"]),
                end_button=move,
            )
        )
    return rows


def _ticket_move(ticket: dict[str, Any], act: Act, here: dict[str, Any]) -> dict[str, Any]:
    """Close an open ticket; reopen a closed or resolved one."""
    closed = ticket["status"] in CLOSED_STATUSES
    return button(
        "Reopen" if closed else "Close",
        action(
            act,
            "set_ticket_status",
            id=ticket["id"],
            version=ticket["version"],
            status="open" if closed else "closed",
            on=here,
        ),
    )


def ticket_rows(tickets: Sequence[dict[str, Any]], act: Act, here: dict[str, Any]) -> list[Widget]:
    return [
        decorated(
            t["subject"],
            bottom=f"{t['status'].capitalize()} · {t['priority']}",
            icon="TICKET",
            on_click=action(act, "open_record", type="ticket", id=t["id"]),
            end_button=_ticket_move(t, act, here),
        )
        for t in tickets[:MAX_LISTED]
    ]


def task_rows(
    tasks: Sequence[dict[str, Any]], act: Act, here: dict[str, Any] | None, today: dt.date
) -> list[Widget]:
    """Open tasks; "Done" marks one done, and the card it answers offers Undo (`here`: the
    card to show again, None: home). The title is no button: reading is not completing."""
    return [
        decorated(
            t["title"],
            bottom=_due(t, today),
            icon="CLOCK",
            end_button=button("Done", action(act, "complete_task", task_id=t["id"], on=here)),
        )
        for t in tasks[:MAX_LISTED]
    ]


def activity_rows(activities: Sequence[dict[str, Any]]) -> list[Widget]:
    return [
        decorated(
            a["subject"] or a["snippet"][:60] or a["kind"],
            top=a["occurred_at"][:10],
            bottom=a["from"] if a["kind"] == "email" else "Note",
            icon="EMAIL" if a["kind"] == "email" else "DESCRIPTION",
        )
        for a in activities[:5]
    ]


def bounce_line(bouncing: Mapping[str, Any]) -> str:
    """The mark of an address that mail bounced from: since when, and why."""
    reason = " ".join(str(bouncing.get("reason") or "").split())[:120]
    return Markup('<font color="{}">⚠ Bouncing</font> since {}{}').format(
        OVERDUE_COLOR, str(bouncing["since"])[:10], f": {reason}" if reason else ""
    )


# The records a card can open (a task has no card of its own).
OPENS = ("contact", "lead", "ticket")


def inbound_rows(messages: Sequence[Mapping[str, Any]], act: Act) -> list[Widget]:
    """Mail from this person that came to a team address: when, to which, and the record it
    opened or went to (a click opens that record's card)."""
    rows = []
    for message in messages[:MAX_LISTED]:
        record = message.get("record")
        if record:
            label = f"{record['number']} " if record.get("number") else ""
            went = f"{message.get('outcome') or 'to'}: {label}{record['title']}"
        else:
            went = message.get("outcome") or "received"
        to = f" · to {message['alias']}" if message.get("alias") else ""
        opens = record is not None and record["type"] in OPENS
        rows.append(
            decorated(
                message.get("subject") or "(no subject)",
                top=f"{str(message['at'])[:10]}{to}",
                bottom=went,
                icon="EMAIL",
                on_click=(
                    action(act, "open_record", type=record["type"], id=record["id"])
                    if opens and record is not None
                    else None
                ),
            )
        )
    return rows


def history_section(history: Sequence[dict[str, Any]], zone: dt.tzinfo) -> dict[str, Any]:
    """Who changed what and when, newest first, in the reader's time zone; the latest
    change shows, the rest open on a click."""
    lines = [text(history_line(entry, local_time(entry["at"], zone))) for entry in history]
    return section(lines, "History", collapsible=True, shown=1)


def duplicate_widgets(
    contact: dict[str, Any], other: dict[str, Any], act: Act, here: dict[str, Any]
) -> list[Widget]:
    """A contact that may be this one again, and the button that makes them one."""
    address = ", ".join(other.get("emails", [])[:2])
    return [
        text(
            Markup("<b>Possible duplicate:</b> {}").format(
                f"{other['name']} ({address})" if address else other["name"]
            )
        ),
        buttons(
            button(
                "Merge into this contact",
                action(
                    act,
                    "merge_contact",
                    id=contact["id"],
                    other=other["id"],
                    version=contact["version"],
                    on=here,
                ),
            )
        ),
    ]


def banner(message: str, label: str = "", on_click: dict[str, Any] | None = None) -> list[Widget]:
    """What the last action did, shown first on the card it answers with; with a button
    (Undo, Reopen) when it can be taken back. A notification cannot carry one."""
    if label and on_click:
        return [decorated(message, icon="BOOKMARK", end_button=button(label, on_click))]
    return [text(message)]


# Followers and messages from the record ------------------------------------------------

WRITE = "Write to the customer"
# The latest messages a card lists (the API's record cards hold as many).
MESSAGES_SHOWN = 5


def _follower_line(follower: Mapping[str, Any]) -> str:
    marks = []
    if follower["is_owner"]:
        marks.append("owner")
    if follower["is_me"]:
        marks.append("you")
    if follower["kind"] == "contact":
        marks.append("contact")
    return " · ".join(marks)


def followers_section(
    followers: Sequence[Mapping[str, Any]],
    act: Act,
    record_type: str,
    record_id: int,
    here: Mapping[str, Any],
) -> dict[str, Any]:
    """Who follows the record (each relayed the mail that comes onto it), with "Unfollow"
    beside each other follower, and "Follow" or "Unfollow" for the reader, first so that a
    long list does not push it out of reach."""
    record = {"type": record_type, "id": record_id, "on": here}

    def leave(follower: Mapping[str, Any]) -> dict[str, Any]:
        # The owner may have no row yet (id null): their user id names them then.
        who = {
            "follower_id": follower["id"],
            "user_id": follower.get("user_id"),
            "name": follower["name"],
        }
        return button("Unfollow", action(act, "unfollow", **who, **record))

    mine = next((f for f in followers if f["is_me"]), None)
    own = button("Follow", action(act, "follow", **record)) if mine is None else leave(mine)
    rows: list[Widget] = [buttons(own)]
    for follower in followers[:MAX_LISTED]:
        rows.append(
            decorated(
                follower["name"],
                top=follower.get("email") or "",
                bottom=_follower_line(follower),
                icon="PERSON",
                end_button=None if follower["is_me"] else leave(follower),
            )
        )
    if len(followers) > MAX_LISTED:
        rows.append(text(f"and {len(followers) - MAX_LISTED} more"))
    if not followers:
        rows.append(text("No one follows this yet."))
    return section(rows, "Followers")


def message_status(message: Mapping[str, Any]) -> str:
    """Where a message written on the record stands: queued, sent (when), or failed in red
    with why, so that one that did not go is seen, never taken for sent."""
    status = str(message["status"])
    if status == "failed":
        error = " ".join(str(message.get("error") or "").split())[:120]
        return Markup('<font color="{}">✕ Failed</font>{}').format(
            OVERDUE_COLOR, f": {error}" if error else ""
        )
    if status == "sent":
        return f"✓ Sent {str(message.get('sent_at') or '')[:10]}".strip()
    return status.capitalize()


def messages_section(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The latest messages written on the record, newest first, each with its status."""
    rows = []
    for message in messages[:MESSAGES_SHOWN]:
        author = message.get("author")
        by = f" · by {author['name']}" if author else ""
        rows.append(
            decorated(
                message.get("subject") or "(no subject)",
                top=f"{str(message['created_at'])[:10]} · to {', '.join(message['to'])}{by}",
                bottom=message_status(message),
                icon="EMAIL",
            )
        )
    return section(rows, "Messages", collapsible=True)


def write_card(
    record_type: str,
    record_id: int,
    title: str,
    subject: str,
    templates: Sequence[Mapping[str, Any]],
    act: Act,
    here: Mapping[str, Any],
) -> Card:
    """A message to the record's customer: its subject (prefilled with the record's title
    and number), its text, or one of the organization's templates. Preview first."""
    widgets: list[Widget] = [
        text_input("subject", "Subject", subject),
        text_input("body_text", "Message", multiline=True),
    ]
    if templates:
        choices = [("No template: the message above", NO_TEMPLATE)]
        choices += [(t["name"], str(t["id"])) for t in templates[: MAX_WIDGETS - 1]]
        widgets.append(dropdown("template_id", "Or a template (instead of the text)", choices))
    widgets.append(
        buttons(
            button(
                "Preview",
                action(act, "preview_message", type=record_type, id=record_id, on=here),
            ),
            cancel(act),
        )
    )
    return card(
        WRITE, [section(widgets)], subtitle=f"{record_type.capitalize()} · {title}", name="write"
    )


# The template dropdown's "none" (an item's value cannot be empty).
NO_TEMPLATE = "none"


def message_preview_card(preview: Mapping[str, Any], send: dict[str, Any], act: Act) -> Card:
    """The message as it will go (`preview`: the preview service's answer), before anything
    is sent; `send`: the Send button's action, carrying what was written."""
    body = str(preview["body_text"]).strip()
    if len(body) > PREVIEW_CHARACTERS:
        body = body[:PREVIEW_CHARACTERS].rstrip() + " …"
    return card(
        "Send this message?",
        [
            section(
                [
                    decorated(preview["from"], top="From", icon="PERSON"),
                    decorated(", ".join(preview["to"]), top="To", icon="EMAIL"),
                    decorated(preview["reply_to"], top="Reply-To"),
                    decorated(preview["subject"], top="Subject"),
                ]
            ),
            section([text(Markup("<br>").join(body.splitlines()) or "(No text)")], "Message"),
            section([buttons(button("Send", send), cancel(act))]),
        ],
        subtitle="Nothing is sent until you press Send",
        name="message-preview",
    )


def _record_buttons(
    kind: str,
    record_id: int,
    data: dict[str, Any],
    act: Act,
    record_url: Callable[[str, int], str],
) -> Widget:
    contact = data.get("contact")
    here = {"type": kind, "id": record_id}
    links = [
        button("Create task", action(act, "task_form", type=kind, id=record_id, on=here)),
        button("Add note", action(act, "note_form", type=kind, id=record_id, on=here)),
    ]
    if contact:
        links.append(
            button("Open contact", action(act, "open_record", type="contact", id=contact["id"]))
        )
    # Offered with no contact too: the answer then says why nothing can go.
    links.append(button(WRITE, action(act, "write_form", type=kind, id=record_id, on=here)))
    links.append(button("Open in the connector", open_link(record_url(kind, record_id))))
    return buttons(*links)


def _work_card(
    data: dict[str, Any],
    kind: str,
    title: str,
    subtitle: str,
    details: list[Widget],
    moves: dict[str, Any],
    act: Act,
    *,
    record_url: Callable[[str, int], str],
    today: dt.date,
    zone: dt.tzinfo,
    banner: Sequence[Widget],
) -> Card:
    """A lead's or a ticket's card: its own details and the section that moves it on, then
    whom it is for, its buttons, open tasks, recent activity and history."""
    record_id = data[kind]["id"]
    here = {"type": kind, "id": record_id}
    contact, company = data.get("contact"), data.get("company")
    if contact:
        details = [*details, decorated(contact["name"], top="Contact", icon="PERSON")]
    if company:
        details = [*details, decorated(company["name"], top="Company", icon="STORE")]
    return card(
        title,
        [
            section(banner),
            section(details),
            moves,
            section([_record_buttons(kind, record_id, data, act, record_url)]),
            followers_section(data.get("followers", []), act, kind, record_id, here),
            messages_section(data.get("messages", [])),
            section(
                task_rows(data.get("tasks", []), act, here, today), "Open tasks", collapsible=True
            ),
            section(activity_rows(data.get("activities", [])), "Recent activity", collapsible=True),
            history_section(data.get("history", []), zone),
        ],
        subtitle=subtitle,
        name=kind,
    )


def lead_card(
    data: dict[str, Any],
    act: Act,
    *,
    record_url: Callable[[str, int], str],
    today: dt.date,
    zone: dt.tzinfo,
    banner: Sequence[Widget] = (),
) -> Card:
    """A lead (record_card's answer): its stage to change, its tasks and history."""
    lead = data["lead"]
    here = {"type": "lead", "id": lead["id"]}
    details = [
        decorated(lead["stage"].capitalize(), top="Stage", icon="DOLLAR"),
        decorated(money(lead.get("expected_revenue")), top="Expected revenue"),
    ]
    if lead.get("lost_reason"):
        details.append(decorated(lead["lost_reason"], top="Lost reason"))
    stages = [(stage.value.capitalize(), stage.value) for stage in LeadStage]
    change = [
        dropdown("stage", "Stage", stages, selected=lead["stage"]),
        text_input("lost_reason", "Lost reason (needed for Lost)", lead.get("lost_reason") or ""),
        buttons(
            button(
                "Save stage",
                action(act, "change_stage", id=lead["id"], version=lead["version"], on=here),
            ),
            cancel(act),
        ),
    ]
    return _work_card(
        data,
        "lead",
        lead["title"],
        f"Lead · {lead['stage'].capitalize()}",
        details,
        section(change, "Move the lead"),
        act,
        record_url=record_url,
        today=today,
        zone=zone,
        banner=banner,
    )


def ticket_card(
    data: dict[str, Any],
    act: Act,
    *,
    record_url: Callable[[str, int], str],
    today: dt.date,
    zone: dt.tzinfo,
    banner: Sequence[Widget] = (),
) -> Card:
    """A ticket (record_card's answer): close or reopen it, its tasks and history."""
    ticket = data["ticket"]
    here = {"type": "ticket", "id": ticket["id"]}
    details = [
        decorated(ticket["status"].capitalize(), top="Status", icon="TICKET"),
        decorated(ticket["priority"].capitalize(), top="Priority"),
    ]
    return _work_card(
        data,
        "ticket",
        ticket["subject"],
        f"Ticket · {ticket['status'].capitalize()}",
        details,
        section([buttons(_ticket_move(ticket, act, here))]),
        act,
        record_url=record_url,
        today=today,
        zone=zone,
        banner=banner,
    )


def contact_form_card(
    contact: dict[str, Any],
    act: Act,
    here: dict[str, Any],
    *,
    unsaved: Mapping[str, str] | None = None,
) -> Card:
    """A contact's fields to edit, as they are at `contact["version"]`. `unsaved`: what the
    user typed before someone else changed the contact, shown so that it is not lost."""
    sections = []
    if unsaved:
        kept = [decorated(value, top=label) for label, value in unsaved.items() if value]
        sections.append(
            section(
                [
                    text(
                        "Someone changed this contact meanwhile: nothing was saved. "
                        "Above the fields is what you typed; the fields show it as it is now."
                    ),
                    *kept,
                ],
                "Not saved",
            )
        )
    sections.append(
        section(
            [
                text_input("name", "Name", contact["name"]),
                text_input(
                    "emails", "Email addresses (comma-separated)", ", ".join(contact["emails"])
                ),
                text_input("phone", "Phone", contact.get("phone") or ""),
                text_input("job_title", "Job title", contact.get("job_title") or ""),
                buttons(
                    button(
                        "Save contact",
                        action(
                            act,
                            "edit_contact",
                            id=contact["id"],
                            version=contact["version"],
                            on=here,
                        ),
                    ),
                    cancel(act),
                ),
            ]
        )
    )
    return card("Edit contact", sections, subtitle=contact["name"], name="contact-form")


def unknown_sender_card(result: dict[str, Any], act: Act) -> Card:
    archived = result.get("archived_contact")
    if archived:
        # The address is an archived contact's: a new contact would be refused (409).
        message = Markup(
            "<b>{}</b> belongs to {}, an archived contact. An admin can restore it; a new "
            "contact cannot take this address."
        ).format(result["email"], archived["name"])
        return card(
            "Archived contact",
            [section([text(message)]), search_section(act)],
            subtitle=result["email"],
            name="archived",
        )
    widgets = [
        text(Markup("<b>{}</b> is not in your records.").format(result["email"])),
        *new_contact_widgets(result.get("proposal") or {}, result["email"], act),
    ]
    return card(
        "Not in your records",
        [section(widgets), search_section(act)],
        subtitle=result["email"],
        name="unknown",
    )


def new_contact_widgets(
    proposal: Mapping[str, Any], email: str, act: Act, *, extra: Sequence[dict[str, Any]] = ()
) -> list[Widget]:
    """ "Create contact", prefilled from lookup's `proposal`: the name (the sender's display
    name, else a guess from the address), the address, and the company it joins (a known
    one, or a new one of the domain). `extra`: more buttons beside it (a form's Cancel)."""
    company = proposal.get("company")
    new_company = proposal.get("new_company")
    widgets: list[Widget] = [
        text_input("name", "Name", proposal.get("name", "")),
        text_input("email", "Email", email),
    ]
    if company:
        widgets.append(decorated(company["name"], top="Company", icon="STORE"))
    elif new_company:
        widgets.append(text_input("company_name", "New company", new_company["name"]))
    widgets.append(
        buttons(
            button(
                "Create contact",
                action(
                    act,
                    "create_contact",
                    company_id=company["id"] if company else None,
                    domain=new_company["domain"] if new_company else None,
                ),
            ),
            *extra,
        )
    )
    return widgets


def contact_create_card(proposal: Mapping[str, Any], act: Act) -> Card:
    """A new contact from scratch (a search that found no one): the form, with Cancel."""
    return card(
        "Create contact",
        [
            section(
                new_contact_widgets(proposal, proposal.get("email", ""), act, extra=[cancel(act)])
            )
        ],
        name="contact-create",
    )


def search_results_card(
    query: str,
    results: Sequence[dict[str, Any]],
    total: int,
    act: Act,
    new_contact: Mapping[str, str] | None = None,
) -> Card:
    """Search results, each saying who or what it is (search's `subtitle`); a click opens
    its card (a contact's, the person card). `new_contact`: what "Create contact" prefills
    when nothing matched ({"name": ...} or {"email": ...})."""
    groups: dict[str, list[Widget]] = {}
    for hit in results:
        # Every kind has its card here; each card links to the record's page. A contact's
        # card shows the address it was found by.
        where = {"email": hit["email"]} if hit["type"] == "contact" and hit.get("email") else {}
        on_click = action(act, "open_record", type=hit["type"], id=hit["id"], **where)
        groups.setdefault(hit["type"], []).append(
            decorated(hit["title"], bottom=hit["subtitle"], on_click=on_click)
        )
    titles = {"contact": "Contacts", "company": "Companies", "lead": "Leads", "ticket": "Tickets"}
    sections = [search_section(act, query)]
    sections += [section(widgets, titles[kind]) for kind, widgets in groups.items()]
    if query and not results:
        create = action(act, "new_contact_form", **(new_contact or {}))
        sections.append(
            section(
                [
                    text(f"Nothing matches “{query}”."),
                    buttons(button("Create contact", create)),
                ]
            )
        )
    return card("Search", sections, subtitle=f"{total} found", name="search")


def log_form_card(result: dict[str, Any], act: Act) -> Card:
    items: list[tuple[str, str, bool]] = []
    if result.get("contact"):
        items.append(
            (f"Contact: {result['contact']['name']}", f"contact:{result['contact']['id']}", True)
        )
    if result.get("company"):
        items.append(
            (
                f"Company: {result['company']['name']}",
                f"company:{result['company']['id']}",
                not result.get("contact"),
            )
        )
    items += [
        (f"Lead: {lead['title']}", f"lead:{lead['id']}", False) for lead in result.get("leads", [])
    ]
    items += [
        (f"Ticket: {t['subject']}", f"ticket:{t['id']}", False) for t in result.get("tickets", [])
    ]
    return card(
        "Log email",
        [
            section(
                [
                    checkboxes("records", "Log this email on", items[: MAX_LISTED * 3]),
                    buttons(
                        button("Log email", action(act, "log_email", email=result["email"])),
                        cancel(act),
                    ),
                ]
            )
        ],
        name="log",
    )


def lead_form_card(subject: str, email: str, act: Act, *, ticket: bool = False) -> Card:
    kind = "ticket" if ticket else "lead"
    widgets = [text_input("title", "Subject" if ticket else "Title", subject)]
    if not ticket:
        widgets.append(text_input("expected_revenue", "Expected revenue"))
    else:
        widgets.append(
            dropdown(
                "priority",
                "Priority",
                [("Normal", "normal"), ("High", "high"), ("Urgent", "urgent"), ("Low", "low")],
            )
        )
    widgets.append(
        buttons(button(f"Create {kind}", action(act, f"create_{kind}", email=email)), cancel(act))
    )
    return card(
        f"Create {kind}",
        [section(widgets)],
        subtitle="The email is logged on it",
        name=f"{kind}-form",
    )


def task_form_card(
    record_type: str, record_id: int, act: Act, today: dt.date, here: Mapping[str, Any]
) -> Card:
    """`here`: the card the task is created from, shown again with the task on it."""
    return card(
        "Create task",
        [
            section(
                [
                    text_input("title", "Title"),
                    date_picker("due_date", "Due", today + dt.timedelta(days=1)),
                    buttons(
                        button(
                            "Create task",
                            action(act, "create_task", type=record_type, id=record_id, on=here),
                        ),
                        cancel(act),
                    ),
                ]
            )
        ],
        name="task-form",
    )


def note_form_card(record_type: str, record_id: int, act: Act, here: Mapping[str, Any]) -> Card:
    """`here`: the card the note is added from, shown again with the note on it."""
    return card(
        "Add note",
        [
            section(
                [
                    text_input("body", "Note", multiline=True),
                    buttons(
                        button(
                            "Add note",
                            action(act, "add_note", type=record_type, id=record_id, on=here),
                        ),
                        cancel(act),
                    ),
                ]
            )
        ],
        name="note-form",
    )


def template_picker_card(
    templates: Sequence[dict[str, Any]],
    act: Act,
    *,
    name: str,
    compose: bool = False,
    email: str = "",
) -> Card:
    """Templates to reply with (a click: a draft; Send: a preview first) or, in a draft, to
    insert. Each `subject` as it reads for the record (subject_previews), not `{{ }}`."""
    action_name = "insert_template" if compose else "reply_with_template"
    widgets: list[Widget] = [
        decorated(
            t["name"],
            bottom=t["subject"] + ("" if compose else " · click for a draft"),
            icon="DESCRIPTION",
            on_click=action(act, action_name, template_id=t["id"], email=email),
            end_button=None
            if compose
            else button("Send", action(act, "preview_reply", template_id=t["id"], email=email)),
        )
        for t in templates[: MAX_WIDGETS - 2]
    ] or [text("No templates yet: an admin can add them.")]
    if not compose:
        # A draft's picker is the compose window's first card: nothing to go back to.
        widgets.append(buttons(cancel(act)))
    return card(
        "Reply with a template" if not compose else "Insert a template",
        [section(widgets)],
        name=name,
    )


# The most of a reply's text a preview shows: enough to read it, within what a card holds.
PREVIEW_CHARACTERS = 4000


def reply_preview_card(
    to: str, subject: str, body_text: str, template_id: int, email: str, act: Act
) -> Card:
    """The reply as it will go out (rendered for the record), before anything is sent:
    only its Send sends."""
    body = body_text.strip()
    if len(body) > PREVIEW_CHARACTERS:
        body = body[:PREVIEW_CHARACTERS].rstrip() + " …"
    return card(
        "Send this reply?",
        [
            section(
                [
                    decorated(to, top="To", icon="EMAIL"),
                    decorated(subject, top="Subject"),
                ]
            ),
            # Its lines as lines: each escaped, joined by our own <br>.
            section([text(Markup("<br>").join(body.splitlines()) or "(No text)")], "Message"),
            section(
                [
                    buttons(
                        button(
                            "Send",
                            action(act, "send_with_template", template_id=template_id, email=email),
                        ),
                        cancel(act),
                    )
                ]
            ),
        ],
        subtitle="Nothing is sent until you press Send",
        name="reply-preview",
    )


def consent_card(sign_in_url: str) -> Card:
    sign_in = overlay_link(sign_in_url)
    return card(
        "Allow sending",
        [
            section(
                [
                    text(
                        "To send replies for you, the connector needs your permission to send "
                        "mail. Sign in, allow sending, then try again."
                    ),
                    buttons(button("Sign in", sign_in)),
                ]
            )
        ],
        name="consent",
    )


def settings_card(name: str, email: str, organization: str) -> Card:
    return card(
        "Settings",
        [
            section(
                [
                    decorated(name, top="Signed in as", bottom=email, icon="PERSON"),
                    decorated(organization, top="Organization", icon="STORE"),
                    text("Your records, templates and users are managed by your connector admin."),
                ]
            )
        ],
        name="settings",
    )


# Responses --------------------------------------------------------------------------


def push(value: Card) -> dict[str, Any]:
    """A trigger's answer."""
    return {"action": {"navigations": [{"pushCard": value}]}}


def render(
    *,
    push_card: Card | None = None,
    update_card: Card | None = None,
    notification: str = "",
    pop: int = 0,
) -> dict[str, Any]:
    """A callback's answer: Google rejects a bare `action` there. `pop`: how many cards to
    go back first (True: one), each a navigation of its own, as Google runs them in order."""
    navigations: list[dict[str, Any]] = [{"popCard": True} for _ in range(int(pop))]
    if push_card is not None:
        navigations.append({"pushCard": push_card})
    if update_card is not None:
        navigations.append({"updateCard": update_card})
    body: dict[str, Any] = {}
    if navigations:
        body["navigations"] = navigations
    if notification:
        body["notification"] = {"text": as_text(notification)}
    return {"renderActions": {"action": body}}


def open_draft(draft: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "renderActions": {
            "hostAppAction": {
                "gmailAction": {
                    "openCreatedDraftActionMarkup": {
                        "draftId": draft["id"],
                        "draftStorageId": draft["message"]["id"],
                        "draftThreadId": draft["message"].get("threadId", ""),
                    }
                }
            }
        }
    }


def insert_into_draft(html: str, subject: str) -> dict[str, Any]:
    return {
        "renderActions": {
            "hostAppAction": {
                "gmailAction": {
                    "updateDraftActionMarkup": {
                        "updateBody": {
                            "insertContents": [{"content": html, "contentType": "MUTABLE_HTML"}],
                            "type": "IN_PLACE_INSERT",
                        },
                        "updateSubject": {"subject": subject},
                    }
                }
            }
        }
    }
