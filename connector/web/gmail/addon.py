"""The Gmail add-on's behaviour: each trigger and callback, from a verified request to a card.

Views hand in an `AddonRequest` whose user and action state are already
verified; handlers call the records services and return response JSON built by
`cards`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError

from connector.activities import intake
from connector.activities import service as activities
from connector.activities.mime import normalize_message_id, parse_raw_message
from connector.addresses import name_from_address, normalize_email
from connector.audit import service as audit
from connector.db import roll_back
from connector.email_templates import service as templates
from connector.errors import InvalidInput, NotFound, PreconditionFailed, SentNotLogged
from connector.lifecycle.merge import merge_contacts
from connector.lookup import service as lookup
from connector.lookup import view_models as vm
from connector.mail import following, messages
from connector.mail.numbers import with_tag
from connector.mailbox import ConsentRequired, Mailbox, Reply
from connector.orgs.context import Ctx
from connector.providers.google.gmail_api import GmailClient
from connector.providers.google.sending import build_reply
from connector.records import editing
from connector.records import service as records
from connector.records.models import Lead
from connector.records.refs import RecordRef
from connector.records.service import get_record
from connector.replies import service as replies
from connector.schemas.activities import LogEmailArgs, NoteIn
from connector.schemas.messages import MessageIn
from connector.schemas.records import (
    ContactIn,
    ContactPatch,
    LeadIn,
    LeadPatch,
    TaskIn,
    TicketIn,
    TicketPatch,
)
from connector.store import StoreUnavailable
from connector.web.gmail import cards
from connector.web.json_input import invalid_request_message

log = logging.getLogger(__name__)

Response = dict[str, Any]


def _common(event: dict[str, Any]) -> dict[str, Any]:
    return event.get("commonEventObject") or {}


def _form_input(event: dict[str, Any], name: str) -> dict[str, Any]:
    return (_common(event).get("formInputs") or {}).get(name) or {}


# The most a zone is off UTC (UTC+14, Kiribati); Google's offset beyond is not a zone.
MAX_ZONE_OFFSET = dt.timedelta(hours=14)


def event_zone(event: dict[str, Any]) -> dt.tzinfo:
    """The user's time zone, as Google's event gives it: its IANA name, else its offset
    from UTC in milliseconds (which misses daylight saving changes), else UTC."""
    zone = _common(event).get("timeZone") or {}
    name = zone.get("id")
    if name:
        try:
            return ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # not a zone this machine knows: the offset is the next best
    offset = zone.get("offset")
    if offset is not None:
        try:
            delta = dt.timedelta(milliseconds=int(offset))
        except (TypeError, ValueError, OverflowError):
            return dt.UTC
        if abs(delta) <= MAX_ZONE_OFFSET:
            return dt.timezone(delta)
    return dt.UTC


@dataclass
class OpenMessage:
    message_id: str
    thread_id: str
    access_token: str
    oauth_token: str


@dataclass
class AddonRequest:
    ctx: Ctx
    event: dict[str, Any]
    act: cards.Act
    state: dict[str, Any]
    message: OpenMessage | None
    gmail_client: Callable[[OpenMessage], GmailClient]
    record_url: Callable[[str, int], str]
    # The user's Gmail, to reply to the open message from (sending needs their consent).
    mailbox: Callable[[OpenMessage], Mailbox] | None = None
    consent_url: str = ""
    today: dt.date = field(default_factory=dt.date.today)
    # Signs the record's reply address in a message written on it.
    secret_key: str = ""
    # Hands a committed OutboundMail row to the worker that sends it.
    send_outbound: Callable[[int], None] | None = None

    @property
    def zone(self) -> dt.tzinfo:
        return event_zone(self.event)

    def form(self, name: str) -> str:
        values = self.form_list(name)
        return values[0].strip() if values else ""

    def form_list(self, name: str) -> list[str]:
        string_inputs = _form_input(self.event, name).get("stringInputs") or {}
        return [str(v) for v in string_inputs.get("value") or []]

    def form_date(self, name: str) -> dt.date | None:
        millis = (_form_input(self.event, name).get("dateInput") or {}).get("msSinceEpoch")
        if millis is None:
            return None
        try:
            return dt.datetime.fromtimestamp(int(millis) / 1000, dt.UTC).date()
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            # Not a number, or a moment no calendar date has (past year 9999).
            raise InvalidInput("That date is not valid.") from exc

    def client(self) -> GmailClient:
        if self.message is None:
            raise InvalidInput("Open an email first.")
        return self.gmail_client(self.message)


def open_message(event: dict[str, Any], state: dict[str, Any]) -> OpenMessage | None:
    """The message the user has open, from the event (state carries its ids across cards)."""
    gmail = event.get("gmail") or {}
    message_id = gmail.get("messageId") or state.get("message_id")
    access_token = gmail.get("accessToken")
    oauth_token = (event.get("authorizationEventObject") or {}).get("userOAuthToken")
    if not message_id or not access_token or not oauth_token:
        return None
    return OpenMessage(
        str(message_id),
        str(gmail.get("threadId") or state.get("thread_id") or ""),
        str(access_token),
        str(oauth_token),
    )


# Triggers ------------------------------------------------------------------------


def homepage_card(request: AddonRequest, banner: list[cards.Widget] | None = None) -> cards.Card:
    ctx = request.ctx
    soon = records.list_tasks(
        ctx, assignee_id=ctx.user.id, due_before=request.today + dt.timedelta(days=7), limit=8
    )
    recent = lookup.recent_leads(ctx, owner_id=ctx.user.id, limit=8)
    return cards.homepage_card(
        ctx.user.name,
        [vm.task_summary(t) for t in soon],
        [vm.lead_summary(lead) for lead in recent],
        request.act,
        request.today,
        banner=banner or [],
    )


def homepage(request: AddonRequest) -> Response:
    return cards.push(homepage_card(request))


class Participant(NamedTuple):
    """Someone on the message: the address, and the name the message gives ("" if none)."""

    address: str
    name: str

    def for_lookup(self) -> str:
        """ "Bob Smith" <bob@x>: lookup proposes the name for a new contact (quoted, so that
        a comma or a quote in it stays part of the name)."""
        if not self.name:
            return self.address
        return f'"{email.utils.quote(self.name)}" <{self.address}>'


def participants(headers: dict[str, str], user_email: str) -> list[Participant]:
    """Everyone on the message but the user: From (and Reply-To), then To and Cc, each once,
    with the first name the message gives them.

    The one answer to "who on this message do we look up" for every Gmail path (the open
    message, a draft's recipients); the Outlook pane has its twin in static/outlook/item.js.
    """
    found: dict[str, str] = {}
    for header in ("From", "Reply-To", "To", "Cc"):
        for display, raw in email.utils.getaddresses([headers.get(header, "")]):
            address = normalize_email(raw) if raw else None
            if not address or address == user_email:
                continue
            found[address] = found.get(address) or " ".join(display.split())
    return [Participant(address, name) for address, name in found.items()]


def _logged_on(ctx: Ctx, message_id: str | None) -> list[str]:
    if not message_id:
        return []
    activity = activities.find_logged_email(ctx, message_id)
    if activity is None:
        return []
    return sorted({f"{link.record_type}" for link in activity.links})


def message(request: AddonRequest) -> Response:
    if request.message is None:
        return homepage(request)
    metadata = request.client().metadata(request.message.message_id)
    people = participants(metadata.headers, request.ctx.user.email)
    if not people:
        return homepage(request)
    # One lookup for everyone; with their names, for "Create contact" to propose.
    results = lookup.lookup(request.ctx, [person.for_lookup() for person in people])
    if len(results) > 1:
        return cards.push(cards.picker_card(results, request.act))
    return cards.push(_person(request, results[0], metadata.headers.get("Message-ID")))


def _person(
    request: AddonRequest,
    result: dict[str, Any],
    message_id: str | None,
    banner: list[cards.Widget] | None = None,
) -> cards.Card:
    return cards.person_card(
        result,
        request.act,
        logged_on=_logged_on(request.ctx, normalize_message_id(message_id)),
        record_url=request.record_url,
        today=request.today,
        zone=request.zone,
        banner=banner or [],
    )


def compose(request: AddonRequest) -> Response:
    recipients = (request.event.get("gmail") or {}).get("toRecipients") or []
    people = participants({"To": ", ".join(recipients)}, request.ctx.user.email)
    address = people[0].address if people else ""
    return cards.push(
        cards.template_picker_card(
            _templates_for(request, address),
            request.act,
            name="compose",
            compose=True,
            email=address,
        )
    )


def _templates_for(request: AddonRequest, address: str) -> list[dict[str, Any]]:
    """The templates as a picker lists them: each subject as it reads for the contact of
    `address` (rendered only here, when a picker opens, never for the person card)."""
    ctx = request.ctx
    found = templates.list_templates(ctx)
    if not found:
        return []
    previews = templates.subject_previews(ctx, found, replies.contact_record(ctx, address))
    return [{"id": t.id, "name": t.name, "subject": previews[t.id]} for t in found]


# Callbacks --------------------------------------------------------------------------


def _one(request: AddonRequest) -> dict[str, Any]:
    """The person of the state's address (with the name the message gave them, if any)."""
    address = normalize_email(str(request.state.get("email", "")))
    if address is None:
        raise InvalidInput("That address is not valid.")
    person = Participant(address, str(request.state.get("name") or ""))
    return lookup.lookup(request.ctx, [person.for_lookup()])[0]


def _message_id(request: AddonRequest) -> str | None:
    if request.message is None:
        return None
    return request.client().metadata(request.message.message_id).headers.get("Message-ID")


def open_person(request: AddonRequest) -> Response:
    return cards.render(push_card=_person(request, _one(request), _message_id(request)))


def _record_card(
    request: AddonRequest,
    ref: RecordRef,
    email: str | None = None,
    banner: list[cards.Widget] | None = None,
    name: str = "",
) -> cards.Card:
    """The card of a record: a lead's or a ticket's own, or the person card of a contact
    or company. `email`: the address the person card was opened for, while it is theirs;
    on a company's card, the sender "Create contact" is for (`name`: the name to propose)."""
    card_data = lookup.record_card(request.ctx, ref)
    if ref.type.value in ("lead", "ticket"):
        build = cards.lead_card if ref.type.value == "lead" else cards.ticket_card
        return build(
            card_data,
            request.act,
            record_url=request.record_url,
            today=request.today,
            zone=request.zone,
            banner=banner or [],
        )
    contact, company = card_data.get("contact"), card_data.get("company")
    addresses = list((contact or {}).get("emails") or [])
    if email and (not contact or email in addresses):
        address = email
    else:
        address = addresses[0] if addresses else ", ".join((company or {}).get("domains", []))
    proposal = None
    sender = normalize_email(address) if company and not contact else None
    if company and sender:
        # The company's card, shown again for its sender: "Create contact" stays, from what
        # the card already holds (no query).
        proposal = {
            "name": name or name_from_address(sender),
            "email": sender,
            "company": {"id": company["id"], "name": company["name"]},
            "new_company": None,
        }
    result = {**card_data, "email": address, "free_mail": False, "proposal": proposal}
    return _person(request, result, _message_id(request), banner)


def open_record(request: AddonRequest) -> Response:
    ref = RecordRef.of(request.state["type"], request.state["id"])
    return cards.render(push_card=_record_card(request, ref, request.state.get("email")))


def search(request: AddonRequest) -> Response:
    query = request.form("query")
    if len(query) < 2:
        return cards.render(notification="Type at least two characters to search.")
    found = lookup.search(request.ctx, query, per_page=30)
    # Nothing found: "Create contact" prefills the address searched for, else the name.
    address = normalize_email(query)
    new_contact = {"email": address} if address else {"name": " ".join(query.split())}
    return cards.render(
        push_card=cards.search_results_card(
            query, found["results"], found["total"], request.act, new_contact
        )
    )


def new_contact_form(request: AddonRequest) -> Response:
    """ "Create contact" from a search that found no one: the form, prefilled as lookup
    proposes for the address (its company), or with the name searched for."""
    address = normalize_email(str(request.state.get("email") or ""))
    if address is None:
        name = str(request.state.get("name") or "")
        proposal = {"name": name, "email": "", "company": None, "new_company": None}
        return cards.render(push_card=cards.contact_create_card(proposal, request.act))
    result = lookup.lookup(request.ctx, [address])[0]
    if result.get("contact") or result.get("archived_contact"):
        # Theirs already (or an archived contact's, which a new contact cannot take).
        return cards.render(push_card=_person(request, result, _message_id(request)))
    proposal = {**(result.get("proposal") or {}), "email": address}
    return cards.render(push_card=cards.contact_create_card(proposal, request.act))


def cancel(request: AddonRequest) -> Response:
    """A form's Cancel: back to the card below, nothing written."""
    return cards.render(pop=True)


def _card_here(request: AddonRequest, banner: list[cards.Widget] | None = None) -> cards.Card:
    """The card the pressed button was on (its state's `on`), read afresh: the homepage
    when none is named."""
    here = request.state.get("on")
    if not here:
        return homepage_card(request, banner)
    ref = RecordRef.of(here["type"], here["id"])
    return _record_card(request, ref, here.get("email"), banner, str(here.get("name") or ""))


def _changed_meanwhile(request: AddonRequest) -> Response:
    """A stale version: nothing was written; the card shows the record as it is now."""
    roll_back(request.ctx.session)
    text = (
        "Someone changed this meanwhile: nothing was saved. The card shows it as it is now; "
        "try again if it still needs it."
    )
    return cards.render(notification=text, update_card=_card_here(request, cards.banner(text)))


def _version(request: AddonRequest) -> int:
    """The version the card showed (signed with the button), to change nothing else."""
    return int(request.state["version"])


def complete_task(request: AddonRequest) -> Response:
    task_id = int(request.state["task_id"])
    task = records.update_task(request.ctx, task_id, {"done": True})
    request.ctx.session.commit()
    # A notification cannot carry a button: the Undo goes on the card shown again.
    undo = cards.action(request.act, "undo_task", task_id=task_id, on=request.state.get("on"))
    done = cards.banner(f"Done: {task.title}", "Undo", undo)
    return cards.render(notification=f"Done: {task.title}", update_card=_card_here(request, done))


def undo_task(request: AddonRequest) -> Response:
    task = records.update_task(request.ctx, int(request.state["task_id"]), {"done": False})
    request.ctx.session.commit()
    text = f"Not done: {task.title}"
    return cards.render(notification=text, update_card=_card_here(request, cards.banner(text)))


def contact_form(request: AddonRequest) -> Response:
    ref = RecordRef.of("contact", request.state["id"])
    contact = lookup.record_card(request.ctx, ref)["contact"]
    return cards.render(
        push_card=cards.contact_form_card(contact, request.act, request.state.get("on") or {})
    )


def _addresses(typed: str) -> list[str]:
    """Addresses as a person types them in one field: separated by commas (or semicolons)."""
    return [part.strip() for part in typed.replace(";", ",").split(",") if part.strip()]


def edit_contact(request: AddonRequest) -> Response:
    contact_id = int(request.state["id"])
    typed = {
        "name": request.form("name"),
        "emails": request.form("emails"),
        "phone": request.form("phone"),
        "job_title": request.form("job_title"),
    }
    form: dict[str, Any] = {
        **typed,
        "emails": _addresses(typed["emails"]),
        # Emptied, a phone or job title is removed.
        "phone": typed["phone"] or None,
        "job_title": typed["job_title"] or None,
    }
    # Every field is given, an empty one too: a name or the addresses cannot be emptied.
    fields = _load(ContactPatch(), form, keep=tuple(form))
    try:
        contact = editing.update_contact(request.ctx, contact_id, fields, _version(request))
    except PreconditionFailed:
        roll_back(request.ctx.session)
        fresh = lookup.record_card(request.ctx, RecordRef.of("contact", contact_id))["contact"]
        labels = {
            "name": "Name",
            "emails": "Email addresses",
            "phone": "Phone",
            "job_title": "Job title",
        }
        unsaved = {labels[name]: value for name, value in typed.items()}
        form_card = cards.contact_form_card(
            fresh, request.act, request.state.get("on") or {}, unsaved=unsaved
        )
        return cards.render(
            notification="Someone changed this contact meanwhile: nothing was saved.",
            update_card=form_card,
        )
    request.ctx.session.commit()
    return cards.render(
        notification=f"Contact saved: {contact.name}", pop=True, update_card=_card_here(request)
    )


def change_stage(request: AddonRequest) -> Response:
    """A lead to another stage: the stage of the button, or the one chosen on its card."""
    stage = str(request.state.get("stage") or request.form("stage"))
    lost_reason = request.form("lost_reason")
    if stage == "lost" and not lost_reason:
        raise InvalidInput(
            "Say why the lead is lost: fill in “Lost reason”, then Save stage. Nothing was saved."
        )
    form = {"stage": stage, "lost_reason": lost_reason if stage == "lost" else None}
    fields = _load(LeadPatch(), form)
    try:
        lead = editing.update_lead(request.ctx, int(request.state["id"]), fields, _version(request))
    except PreconditionFailed:
        return _changed_meanwhile(request)
    request.ctx.session.commit()
    text = f"{lead.title}: {str(lead.stage).capitalize()}"
    return cards.render(notification=text, update_card=_card_here(request, cards.banner(text)))


def set_ticket_status(request: AddonRequest) -> Response:
    """Close a ticket, or reopen it; the card offers to take a close back."""
    fields = _load(TicketPatch(), {"status": request.state.get("status")})
    ticket_id = int(request.state["id"])
    try:
        ticket = editing.update_ticket(request.ctx, ticket_id, fields, _version(request))
    except PreconditionFailed:
        return _changed_meanwhile(request)
    request.ctx.session.commit()
    if str(ticket.status) in cards.CLOSED_STATUSES:
        text = f"Closed: {ticket.subject}"
        reopen = cards.action(
            request.act,
            "set_ticket_status",
            id=ticket.id,
            version=ticket.version,
            status="open",
            on=request.state.get("on"),
        )
        shown = cards.banner(text, "Reopen", reopen)
    else:
        text = f"Reopened: {ticket.subject}"
        shown = cards.banner(text)
    return cards.render(notification=text, update_card=_card_here(request, shown))


def merge_contact(request: AddonRequest) -> Response:
    """The possible duplicate into this contact: its addresses, emails, leads and tickets."""
    try:
        contact = merge_contacts(
            request.ctx, int(request.state["id"]), int(request.state["other"]), _version(request)
        )
    except PreconditionFailed:
        return _changed_meanwhile(request)
    audit.record(
        request.ctx.session,
        org_id=request.ctx.org_id,
        actor=request.ctx.user,
        action="record.merged",
        target=f"contact:{contact.id}",
        detail={"from": f"contact:{request.state['other']}", "via": "gmail"},
    )
    request.ctx.session.commit()
    text = f"Merged into {contact.name}."
    return cards.render(notification=text, update_card=_card_here(request, cards.banner(text)))


def log_form(request: AddonRequest) -> Response:
    return cards.render(push_card=cards.log_form_card(_one(request), request.act))


def _load(
    schema: Schema, form: Mapping[str, Any], keep: tuple[str, ...] = (), **options: Any
) -> dict[str, Any]:
    """A form's fields through the JSON API's own input schema: what the API refuses is
    refused here too, with the message of the API's 400. A field left empty is not given,
    unless it is one to `keep` (an edit form, where emptying a field is the change)."""
    given = {
        name: value for name, value in form.items() if name in keep or value not in ("", None, [])
    }
    try:
        # marshmallow's load is typed Any; these schemas load objects (no many=True).
        loaded: dict[str, Any] = schema.load(given, **options)
    except ValidationError as error:
        # Keyed as webargs keys a JSON body's errors: the API's message, word for word.
        errors = {"json": error.messages}
        raise InvalidInput(invalid_request_message(errors), errors) from error
    return loaded


def _open_email(request: AddonRequest) -> Any:
    assert request.message is not None
    return parse_raw_message(request.client().raw(request.message.message_id))


def log_email(request: AddonRequest) -> Response:
    # The records as the API takes them with a raw message: type:id, repeated.
    chosen = _load(LogEmailArgs(), {"record": request.form_list("records")})
    refs = [RecordRef.parse(item) for item in chosen["record"]]
    email_data = _open_email(request)
    result = activities.log_email(request.ctx, email_data, refs)
    request.ctx.session.commit()
    text = "Already logged there." if result.already_logged else "Email logged."
    person = _person(request, _one(request), email_data.message_id)
    return cards.render(notification=text, pop=True, update_card=person)


def lead_form(request: AddonRequest) -> Response:
    subject = _subject(request)
    return cards.render(
        push_card=cards.lead_form_card(subject, request.state["email"], request.act)
    )


def ticket_form(request: AddonRequest) -> Response:
    subject = _subject(request)
    return cards.render(
        push_card=cards.lead_form_card(subject, request.state["email"], request.act, ticket=True)
    )


def _subject(request: AddonRequest) -> str:
    if request.message is None:
        return ""
    return request.client().metadata(request.message.message_id).headers.get("Subject", "")


def _amount(value: str) -> str:
    """An amount as a person types it ("12,500"), as the API takes it ("12500")."""
    return value.replace(",", "").replace(" ", "")


def create_lead(request: AddonRequest) -> Response:
    form = {
        "title": request.form("title"),
        "expected_revenue": _amount(request.form("expected_revenue")),
    }
    # The email is the open message, given apart from the form (the API's `email`).
    fields = _load(LeadIn(), form, partial=("email",))
    email_data = _open_email(request)
    lead: Lead = intake.create_lead(request.ctx, {**fields, "email_data": email_data})
    request.ctx.session.commit()
    person = _person(request, _one(request), email_data.message_id)
    return cards.render(notification=f"Lead created: {lead.title}", pop=True, update_card=person)


def create_ticket(request: AddonRequest) -> Response:
    form = {"subject": request.form("title"), "priority": request.form("priority")}
    fields = _load(TicketIn(), form, partial=("email",))
    email_data = _open_email(request)
    ticket = intake.create_ticket(request.ctx, {**fields, "email_data": email_data})
    request.ctx.session.commit()
    person = _person(request, _one(request), email_data.message_id)
    return cards.render(
        notification=f"Ticket created: {ticket.subject}", pop=True, update_card=person
    )


def _here_or_record(request: AddonRequest) -> dict[str, Any]:
    """The card a form was opened from, or the record's own card."""
    return request.state.get("on") or {"type": request.state["type"], "id": request.state["id"]}


def task_form(request: AddonRequest) -> Response:
    return cards.render(
        push_card=cards.task_form_card(
            request.state["type"],
            int(request.state["id"]),
            request.act,
            request.today,
            _here_or_record(request),
        )
    )


def create_task(request: AddonRequest) -> Response:
    due_date = request.form_date("due_date")
    form = {
        "title": request.form("title"),
        "due_date": due_date.isoformat() if due_date else None,
        "record": {"type": request.state["type"], "id": int(request.state["id"])},
    }
    fields = _load(TaskIn(), form)
    record = fields.pop("record")
    ref = RecordRef.from_json(record)
    task = records.create_task(request.ctx, record=ref, **fields)
    request.ctx.session.commit()
    return _shown_again(request, f"Task created: {task.title}")


def _shown_again(request: AddonRequest, text: str) -> Response:
    """The form closed, and the card it was opened from shown afresh with what was just
    added on it (the task in Open tasks, the note in Recent activity)."""
    request.state["on"] = _here_or_record(request)
    return cards.render(
        notification=text, pop=True, update_card=_card_here(request, cards.banner(text))
    )


def note_form(request: AddonRequest) -> Response:
    return cards.render(
        push_card=cards.note_form_card(
            request.state["type"], int(request.state["id"]), request.act, _here_or_record(request)
        )
    )


def add_note(request: AddonRequest) -> Response:
    form = {
        "body": request.form("body"),
        "records": [{"type": request.state["type"], "id": int(request.state["id"])}],
    }
    fields = _load(NoteIn(), form)
    refs = [RecordRef.from_json(r) for r in fields["records"]]
    activities.add_note(request.ctx, fields["body"], refs, fields["subject"])
    request.ctx.session.commit()
    return _shown_again(request, "Note added.")


def create_contact(request: AddonRequest) -> Response:
    typed = request.form("email")
    company_id = request.state.get("company_id")
    new_company = None
    if company_id is None and request.state.get("domain") and request.form("company_name"):
        new_company = {"name": request.form("company_name"), "domains": [request.state["domain"]]}
    form = {
        # No name: the address is the name.
        "name": request.form("name") or normalize_email(typed),
        "emails": [typed] if typed else None,
        "company_id": company_id,
        "new_company": new_company,
    }
    fields = _load(ContactIn(), form)
    contact = records.create_contact(request.ctx, **fields)
    request.ctx.session.commit()
    address = normalize_email(fields["emails"][0]) or ""
    result = lookup.lookup(request.ctx, [address])[0]
    return cards.render(
        notification=f"Contact created: {contact.name}",
        update_card=_person(request, result, _message_id(request)),
    )


def template_picker(request: AddonRequest) -> Response:
    address = normalize_email(str(request.state.get("email", ""))) or ""
    return cards.render(
        push_card=cards.template_picker_card(
            _templates_for(request, address),
            request.act,
            name="templates",
            email=request.state.get("email", ""),
        )
    )


def _render_for(request: AddonRequest, address: str) -> dict[str, str]:
    ref = replies.contact_record(request.ctx, address)
    return templates.render_template(request.ctx, int(request.state["template_id"]), ref)


def reply_with_template(request: AddonRequest) -> Response:
    if request.message is None:
        raise InvalidInput("Open an email to reply to.")
    client = request.client()
    metadata = client.metadata(request.message.message_id)
    rendered = _render_for(request, str(request.state.get("email", "")))
    reply = Reply(rendered["body_html"], rendered["body_text"])
    raw = build_reply(metadata.headers, request.ctx.user.email, reply)
    draft = client.create_draft(metadata.thread_id or request.message.thread_id, raw)
    return cards.open_draft(draft)


def preview_reply(request: AddonRequest) -> Response:
    """The reply "Send" would send, shown first: to whom, its subject, its text, rendered
    for the contact; nothing goes out until the preview's own Send."""
    if request.message is None:
        raise InvalidInput("Open an email to reply to.")
    metadata = request.client().metadata(request.message.message_id)
    address = str(request.state.get("email", ""))
    rendered = _render_for(request, address)
    # The reply as sending builds it (sending.build_reply): its To and Subject are the
    # ones that will go out, not a second guess at them.
    raw = build_reply(
        metadata.headers,
        request.ctx.user.email,
        Reply(rendered["body_html"], rendered["body_text"]),
    )
    reply = email.message_from_bytes(raw, policy=policy.default)
    return cards.render(
        push_card=cards.reply_preview_card(
            str(reply["To"] or ""),
            str(reply["Subject"] or ""),
            rendered["body_text"],
            int(request.state["template_id"]),
            address,
            request.act,
        )
    )


def send_with_template(request: AddonRequest) -> Response:
    """Send the rendered reply now, from the user's Gmail, and log it on the contact: the
    preview's Send. Back past the preview and the picker to the card they came from."""
    if request.message is None or request.mailbox is None:
        raise InvalidInput("Open an email to reply to.")
    ctx = request.ctx
    try:
        result = replies.send_reply(
            ctx,
            request.mailbox(request.message),
            message_id=request.message.message_id,
            template_id=int(request.state["template_id"]),
            record=replies.contact_record(ctx, str(request.state.get("email", ""))),
        )
        replies.commit_sent(ctx, result)
    except ConsentRequired:
        return cards.render(push_card=cards.consent_card(request.consent_url))
    except SentNotLogged as exc:
        # Sent: the one thing the user must not do now is send it again.
        roll_back(ctx.session)
        return cards.render(notification=exc.message, pop=2)
    logged = result["activity_id"] is not None
    return cards.render(notification="Reply sent" + (" and logged." if logged else "."), pop=2)


def insert_template(request: AddonRequest) -> Response:
    address = normalize_email(str(request.state.get("email", ""))) or ""
    rendered = _render_for(request, address)
    return cards.insert_into_draft(rendered["body_html"], rendered["subject"])


# Followers and messages from the record ------------------------------------------------
# The record cards (lookup) hold its followers and latest messages; these change them.


def _record(request: AddonRequest) -> RecordRef:
    return RecordRef.of(request.state["type"], request.state["id"])


def follow(request: AddonRequest) -> Response:
    """The reader follows the record: each message that comes onto it is relayed to them."""
    following.add_follower(request.ctx, _record(request), user_id=request.ctx.user.id)
    request.ctx.session.commit()
    text = "You follow this now."
    return cards.render(notification=text, update_card=_card_here(request, cards.banner(text)))


def unfollow(request: AddonRequest) -> Response:
    """The reader, or another follower, no longer follows the record. The owner may have no
    row yet (a card shows them following without writing one): it is made, then left."""
    ctx, ref = request.ctx, _record(request)
    follower_id = request.state.get("follower_id")
    user_id = request.state.get("user_id")
    if follower_id is None:
        current = following.record_followers(ctx, ref)
        follower_id = next((f["id"] for f in current if f["user_id"] == user_id), None)
        if follower_id is None:
            raise NotFound("They no longer follow this.")
    following.remove_follower(ctx, ref, int(follower_id))
    ctx.session.commit()
    name = str(request.state.get("name") or "")
    text = (
        "You no longer follow this."
        if user_id == ctx.user.id
        else f"{name} no longer follows this."
    )
    return cards.render(notification=text, update_card=_card_here(request, cards.banner(text)))


def write_form(request: AddonRequest) -> Response:
    """ "Write to the customer": the form, its subject the record's title and number (what
    the message gets when the subject is left empty)."""
    ctx, ref = request.ctx, _record(request)
    record = get_record(ctx.session, ctx.org_id, ref)
    title = messages.record_title(record, ref)
    choices = [{"id": t.id, "name": t.name} for t in templates.list_templates(ctx)]
    return cards.render(
        push_card=cards.write_card(
            ref.type.value,
            ref.id,
            title,
            with_tag(title, ref),
            choices,
            request.act,
            _here_or_record(request),
        )
    )


def _draft_fields(request: AddonRequest) -> dict[str, Any]:
    """What the form gave, through the API's own schema: refused in the API's words."""
    template = request.form("template_id")
    form = {
        "subject": request.form("subject"),
        "body_text": request.form("body_text"),
        "template_id": None if template in ("", cards.NO_TEMPLATE) else template,
    }
    fields: dict[str, Any] = _load(MessageIn(), form)
    return fields


def _draft(fields: Mapping[str, Any]) -> messages.Draft:
    return messages.Draft(
        subject=fields.get("subject"),
        body_text=fields.get("body_text"),
        template_id=fields.get("template_id"),
    )


def preview_message(request: AddonRequest) -> Response:
    """The message as it will go (From, To, Reply-To, Subject, text); nothing is written."""
    ref = _record(request)
    fields = _draft_fields(request)
    preview = messages.preview(request.ctx, ref, _draft(fields), secret_key=request.secret_key)
    # The preview has no inputs: Send carries what was written, signed as all state is,
    # and a key of this preview's own, so that pressing it twice sends once.
    send = cards.action(
        request.act,
        "send_message",
        type=ref.type.value,
        id=ref.id,
        on=_here_or_record(request),
        fields=fields,
        once=secrets.token_urlsafe(16),
    )
    return cards.render(push_card=cards.message_preview_card(preview, send, request.act))


# As long as a preview's Send can be pressed (its signed state's lifetime, views.py).
SEND_KEY_SECONDS = 24 * 3600


def _first_press(ctx: Ctx, once: str) -> bool:
    """Is this the first press of that preview's Send? A second (a double click, a request
    Google sends again) must not write to the customer twice. Without the shared store
    the message goes: not sending what the user asked for would be the worse failure."""
    key = f"gmail-send:{ctx.org_id}:{once}"
    try:
        if ctx.store.incr(key) != 1:
            return False
        # Kept only while the preview can be pressed (incr made it with no expiry).
        ctx.store.set(key, b"1", SEND_KEY_SECONDS)
    except StoreUnavailable as exc:
        log.warning("Sending without the double-press check: %s", exc)
    return True


def send_message(request: AddonRequest) -> Response:
    """Send it (queued for the worker, as the API's 202), then back past the preview and
    the form to the card it was written from, which lists it with its status."""
    ctx, ref = request.ctx, _record(request)
    request.state["on"] = _here_or_record(request)
    if not _first_press(ctx, str(request.state.get("once") or "")):
        text = "Already sent: it was queued the first time you pressed Send."
        return cards.render(notification=text, pop=2, update_card=_card_here(request))
    fields = dict(request.state.get("fields") or {})
    row = messages.write_message(ctx, ref, _draft(fields), secret_key=request.secret_key)
    to = ", ".join(row.to_addresses)
    outbound_id = row.id
    ctx.session.commit()
    if request.send_outbound is not None:
        request.send_outbound(outbound_id)
    text = f"Queued for {to}"
    return cards.render(
        notification=text, pop=2, update_card=_card_here(request, cards.banner(text))
    )


def universal_search(request: AddonRequest) -> Response:
    """The "Search" universal action: an empty search card, from anywhere in Gmail."""
    return cards.render(push_card=cards.search_results_card("", [], 0, request.act))


def universal_settings(request: AddonRequest) -> Response:
    """The "Settings" universal action: who the add-on knows you as."""
    user = request.ctx.user
    return cards.render(
        push_card=cards.settings_card(user.name, user.email, user.organization.name)
    )


# Universal actions are configured in the manifest, so they carry no signed state.
UNSIGNED_ACTIONS = frozenset({"universal_search", "universal_settings"})

ACTIONS: dict[str, Callable[[AddonRequest], Response]] = {
    handler.__name__: handler
    for handler in (
        open_person,
        open_record,
        search,
        new_contact_form,
        cancel,
        complete_task,
        undo_task,
        contact_form,
        edit_contact,
        change_stage,
        set_ticket_status,
        merge_contact,
        log_form,
        log_email,
        lead_form,
        create_lead,
        ticket_form,
        create_ticket,
        task_form,
        create_task,
        note_form,
        add_note,
        create_contact,
        template_picker,
        reply_with_template,
        preview_reply,
        insert_template,
        send_with_template,
        follow,
        unfollow,
        write_form,
        preview_message,
        send_message,
        universal_search,
        universal_settings,
    )
}
