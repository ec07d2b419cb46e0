"""Record pages behind signed links: "Open in the connector" from a mail client.

A link names the user it was made for and the record, is signed with the secret key and
expires; the page shows the same card the API returns, with the record's history.

Reading needs the link only. Changing the record needs more: the browser must be signed
in to the connector (the session of connector.web.signin) as a user of the record's
organization, and the form must carry that session's CSRF token. The link alone never
writes: it travels in mail, and whoever it was forwarded to holds it too.

Forms post back to the page's own URL with the version they were filled in from, and
with the values they showed, so that only what the person changed is sent: a change
someone else made meanwhile is refused (the version moved on) and not overwritten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import (
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, URLSafeTimedSerializer
from marshmallow import Schema, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector.db import get_session
from connector.errors import NotFound, PreconditionFailed, ServiceError
from connector.lookup.service import record_card
from connector.lookup.view_models import history_line, local_time
from connector.orgs.context import Ctx
from connector.orgs.models import User
from connector.records.editing import update_record
from connector.records.models import LeadStage, RecordType, TicketPriority, TicketStatus
from connector.records.refs import RecordRef
from connector.records.service import get_record
from connector.schemas.records import CompanyPatch, ContactPatch, LeadPatch, TicketPatch
from connector.store import get_store
from connector.web import record_messages
from connector.web.record_messages import Writing, Written
from connector.web.security import PAGE_POLICY

# The session and its CSRF token are the /account page's (connector.web.signin): one
# sign-in, one token, for every page that changes something.
from connector.web.signin import check_csrf, csrf_token, signed_in_user

LINK_MAX_AGE_SECONDS = 7 * 24 * 3600

# The page's one script (static/record.js) shows times in the reader's zone.
RECORD_PAGE_POLICY = f"{PAGE_POLICY}; script-src 'self'"

STALE_MESSAGE = (
    "Someone changed this record since you opened it; nothing was saved. What it is now "
    "is shown above; your changes are still in the form: check them and save again."
)

# What the page's form changes, per record type, in the order it shows them; each is
# loaded by the API's own schema for a PATCH, so the page accepts exactly what the API does.
FORM_FIELDS: dict[RecordType, tuple[str, ...]] = {
    RecordType.CONTACT: ("name", "emails", "phone", "job_title", "owner_id"),
    RecordType.COMPANY: ("name", "domains", "website", "phone", "owner_id"),
    RecordType.LEAD: (
        "title",
        "stage",
        "lost_reason",
        "expected_revenue",
        "probability",
        "close_date",
        "owner_id",
    ),
    RecordType.TICKET: ("subject", "status", "priority", "owner_id"),
}
PATCH_SCHEMAS: dict[RecordType, type[Schema]] = {
    RecordType.CONTACT: ContactPatch,
    RecordType.COMPANY: CompanyPatch,
    RecordType.LEAD: LeadPatch,
    RecordType.TICKET: TicketPatch,
}
# Typed as one line, comma-separated.
LIST_FIELDS = ("emails", "domains")
LABELS = {
    "name": "Name",
    "emails": "Email addresses",
    "phone": "Phone",
    "job_title": "Job title",
    "domains": "Domains",
    "website": "Website",
    "title": "Title",
    "stage": "Stage",
    "lost_reason": "Lost reason",
    "expected_revenue": "Expected revenue",
    "probability": "Probability (%)",
    "close_date": "Close date",
    "subject": "Subject",
    "status": "Status",
    "priority": "Priority",
    "owner_id": "Owner",
    "version": "Version",
}
CHOICES = {
    "stage": [s.value for s in LeadStage],
    "status": [s.value for s in TicketStatus],
    "priority": [p.value for p in TicketPriority],
}
RECORD_TYPES = frozenset(t.value for t in RecordType)
# The mark that history_line's time is put in place of, to put a <time> element there.
_WHEN = "\x00"


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="record-link")


def record_link(public_url: str, secret_key: str, user_id: int, ref: RecordRef) -> str:
    token = _serializer(secret_key).dumps([user_id, ref.type.value, ref.id])
    return f"{public_url}/records/{ref.type.value}/{ref.id}?t={token}"


# What the page shows ----------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """A time as the page shows it: UTC on the server, the reader's zone once the script ran."""

    iso: str
    utc: str


def moment(iso: str) -> Moment:
    return Moment(iso, local_time(iso, dt.UTC) + " UTC")


@dataclass(frozen=True)
class HistoryLine:
    """ "stage: qualified → won, by Ana, " then the time, then what follows it (if anything)."""

    before: str
    when: Moment
    after: str


def history_lines(history: list[dict[str, Any]]) -> list[HistoryLine]:
    lines = []
    for entry in history:
        before, _, after = history_line(entry, _WHEN).partition(_WHEN)
        lines.append(HistoryLine(before, moment(entry["at"]), after))
    return lines


def form_values(record_type: RecordType, summary: Mapping[str, Any]) -> dict[str, str]:
    """The record's fields as its form shows them."""
    values = {}
    for name in FORM_FIELDS[record_type]:
        value = summary.get(name)
        if name in LIST_FIELDS:
            values[name] = ", ".join(value or [])
        else:
            values[name] = "" if value is None else str(value)
    return values


@dataclass
class Editing:
    """The form of a signed-in reader who may change the record."""

    fields: tuple[str, ...]
    values: dict[str, str]
    shown: dict[str, str]
    version: int
    csrf: str
    message: str = ""
    users: list[User] = field(default_factory=list)


# Reading a form -------------------------------------------------------------------------


class FormProblem(Exception):
    """What the person sent cannot be saved: the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def submitted_version(form: Mapping[str, str]) -> int | None:
    """The version the form was filled in from (a hidden field)."""
    text = form.get("version", "").strip()
    return int(text) if text.isdigit() and len(text) <= 9 else None


def own_changes(record_type: RecordType, form: Mapping[str, str]) -> dict[str, str]:
    """The fields the person changed, as typed.

    Each field's shown value comes back in a hidden `was_<field>`; a field without it
    counts as changed. Only these are sent, so that saving does not write back, over
    someone else's change, a value the person never touched.
    """
    typed = {}
    for name in FORM_FIELDS[record_type]:
        if name not in form:
            continue
        shown = form.get(f"was_{name}")
        if shown is None or form[name].strip() != shown.strip():
            typed[name] = form[name]
    return typed


def load_changes(record_type: RecordType, typed: Mapping[str, str]) -> dict[str, Any]:
    """The changes as the API's PATCH schema loads them: the page accepts what the API does.

    A list is typed comma-separated. A field emptied is cleared where the field may be
    empty (null), else sent empty for the schema to refuse: nothing typed is dropped.
    """
    schema = PATCH_SCHEMAS[record_type]()
    raw: dict[str, Any] = {}
    for name, value in typed.items():
        text = value.strip()
        if name in LIST_FIELDS:
            raw[name] = [part.strip() for part in text.split(",") if part.strip()]
        elif text == "" and schema.fields[name].allow_none:
            raw[name] = None
        else:
            raw[name] = text
    try:
        data: dict[str, Any] = schema.load(raw)
    except ValidationError as error:
        raise FormProblem(_validation_message(error.messages)) from None
    return data


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        return [text for value in messages.values() for text in _flatten(value)]
    return [text for value in messages for text in _flatten(value)]


def _validation_message(messages: Any) -> str:
    """ "Nothing was saved. Probability: Must be greater than or equal to 0 and ..." """
    if not isinstance(messages, Mapping):
        return "Nothing was saved. " + " ".join(_flatten(messages))
    parts = [
        f"{LABELS.get(name, name)}: {' '.join(dict.fromkeys(_flatten(problem)))}"
        for name, problem in messages.items()
    ]
    return "Nothing was saved. " + " ".join(parts)


# The routes -----------------------------------------------------------------------------


def _link_reader(record_type: str, record_id: int) -> User:
    """The user the link was made for; 403 when the link is not one of ours for this record."""
    try:
        user_id, kind, number = _serializer(current_app.config["SECRET_KEY"]).loads(
            request.args.get("t", ""), max_age=LINK_MAX_AGE_SECONDS
        )
    except (BadSignature, ValueError, TypeError):
        abort(403, "This link is not valid any more: open the record again from your mail.")
    if kind != record_type or number != record_id or record_type not in RECORD_TYPES:
        abort(403, "This link is not valid.")
    user = get_session().get(User, user_id)
    if user is None:
        abort(403, "This link is not valid.")
    if not user.active:
        # The link travels with the person who left: it stops with their access (401, as
        # their keys and tokens do).
        abort(401, "This link is not valid any more: its user no longer has access.")
    return user


def _ctx(user: User) -> Ctx:
    return Ctx(
        get_session(), user, get_store(current_app), current_app.extensions["connector.settings"]
    )


def _org_users(org_id: int) -> list[User]:
    return list(
        get_session().scalars(
            select(User).where(User.organization_id == org_id).order_by(User.name, User.id)
        )
    )


def _render(
    ctx: Ctx,
    ref: RecordRef,
    *,
    editor: User | None,
    signed_in_elsewhere: bool = False,
    typed: Mapping[str, str] | None = None,
    message: str = "",
    version: int | None = None,
    status: int = 200,
    draft: Written | None = None,
    preview: Mapping[str, Any] | None = None,
    write_message: str = "",
) -> ResponseReturnValue:
    """The page, read-only or with the forms of `editor`; `typed` keeps what they sent
    to change the record, `draft` what they wrote to the customer (`preview`: what it
    would send; `write_message`: why it was not previewed or sent)."""
    try:
        card = record_card(ctx, ref)
    except NotFound:
        abort(404, "This record does not exist any more.")
    main = card.get(ref.type.value) or {}
    title = main.get("name") or main.get("title") or main.get("subject") or ref.type.value
    users = _org_users(ctx.org_id)
    editing = None
    writing: Writing | None = None
    if editor is not None:
        writing = record_messages.writing(ctx, ref, title, draft)
        if preview is not None:
            writing = Writing(writing.draft, writing.templates, preview)
        shown = form_values(ref.type, main)
        editing = Editing(
            fields=FORM_FIELDS[ref.type],
            values={**shown, **(typed or {})},
            shown=shown,
            version=main["version"] if version is None else version,
            csrf=csrf_token(),
            message=message,
            users=users,
        )
    # "you" is the signed-in reader; whoever holds the link alone is nobody in particular
    # (it may have been forwarded), so the link's user is not marked.
    followers = [
        {**f, "is_me": bool(f.get("is_me")) and editor is not None}
        for f in card.get("followers") or []
    ]
    g.connector_page_policy = RECORD_PAGE_POLICY
    page = render_template(
        "record.html",
        card=card,
        record_type=ref.type.value,
        main=main,
        title=title,
        subtitle=ref.type.value.capitalize(),
        owner_names={user.id: user.name or user.email for user in users},
        updated=moment(main["updated_at"]) if main.get("updated_at") else None,
        history=history_lines(card.get("history") or []),
        editing=editing,
        writing=writing,
        write_message=write_message,
        followers=followers,
        following=any(f["is_me"] for f in followers),
        messages=[{**m, "when": moment(m["created_at"])} for m in card.get("messages") or []],
        labels=LABELS,
        choices=CHOICES,
        # Back to this very page (its link) once signed in.
        sign_in_url=url_for("accounts.connect", next=request.full_path),
        signed_in_elsewhere=signed_in_elsewhere,
    )
    # Customer data behind a bearer link: kept out of shared caches and history caches.
    return page, status, {"Cache-Control": "no-store"}


def init_app(app: Flask) -> None:
    @app.get("/records/<record_type>/<int:record_id>")
    def record_page(record_type: str, record_id: int) -> ResponseReturnValue:
        link_user = _link_reader(record_type, record_id)
        ref = RecordRef.of(record_type, record_id)
        reader = signed_in_user()
        if reader is not None and reader.organization_id == link_user.organization_id:
            return _render(_ctx(reader), ref, editor=reader)
        return _render(_ctx(link_user), ref, editor=None, signed_in_elsewhere=reader is not None)

    @app.post("/records/<record_type>/<int:record_id>")
    def change_record(record_type: str, record_id: int) -> ResponseReturnValue:
        if record_type not in RECORD_TYPES:
            abort(404)
        # The session and its token, never the link: a link in a forwarded mail reads only.
        editor = signed_in_user()
        if editor is None or not check_csrf():
            abort(
                403,
                "Your changes were not saved: sign in to the connector in this browser, "
                "then open the record again.",
            )
        ref = RecordRef.of(record_type, record_id)
        ctx = _ctx(editor)
        db = ctx.session
        try:
            # Another organization's record is no record at all.
            get_record(db, editor.organization_id, ref)
        except NotFound:
            abort(404, "There is no such record.")
        action = request.form.get("action", "")
        if action in record_messages.ACTIONS:
            return _conversation(ctx, ref, action)
        typed = own_changes(ref.type, request.form)
        version = submitted_version(request.form)

        def again(message: str, status: int, version: int | None = version) -> ResponseReturnValue:
            """The page once more, with the person's changes in the form and the message."""
            db.rollback()
            return _render(
                ctx,
                ref,
                editor=editor,
                typed=typed,
                message=message,
                version=version,
                status=status,
            )

        if version is None:
            return again("This form is not complete: nothing was saved. Reload the page.", 400)
        try:
            data = load_changes(ref.type, typed)
            update_record(ctx, ref, data, version)
            db.commit()
        except FormProblem as problem:
            return again(problem.message, 400)
        except PreconditionFailed:
            # The form now stands on the current version: saving again applies the
            # person's own changes (only those are sent) on top of the other ones.
            return again(STALE_MESSAGE, 409, version=None)
        except ServiceError as error:
            # A 404 here is about a value (an owner who is not in the organization).
            status = 400 if error.status_code == 404 else error.status_code
            return again(f"Nothing was saved. {error.message}", status)
        except IntegrityError:
            # Someone took the same address or domain a moment ago.
            return again(
                "That clashes with a change saved a moment ago; nothing was saved. "
                "Check the addresses and domains and save again.",
                409,
            )
        flash("Your changes were saved." if data else "Nothing to save: no field was changed.")
        link = record_link("", current_app.config["SECRET_KEY"], editor.id, ref)
        return redirect(link, 303)


def _conversation(ctx: Ctx, ref: RecordRef, action: str) -> ResponseReturnValue:
    """Follow, unfollow, preview or send, for the signed-in `ctx.user` (checked by the caller)."""
    link = record_link("", current_app.config["SECRET_KEY"], ctx.user.id, ref)
    if action == "follow":
        record_messages.follow(ctx, ref)
        flash("You follow this record: its new messages come to you by mail.")
        return redirect(link, 303)
    if action == "unfollow":
        done = record_messages.unfollow(ctx, ref)
        flash("You no longer follow this record." if done else "You did not follow this record.")
        return redirect(link, 303)
    draft: Written | None = None
    try:
        draft = record_messages.written(request.form)
        if action == "preview":
            shown = record_messages.preview(ctx, ref, draft)
            ctx.session.rollback()  # a preview writes nothing
            return _render(ctx, ref, editor=ctx.user, draft=draft, preview=shown)
        record_messages.send(ctx, ref, draft)
    except ServiceError as error:
        # Refused (no text, an unknown template, nobody to write to): said above the form,
        # which keeps what the person wrote.
        ctx.session.rollback()
        status = 400 if error.status_code == 404 else error.status_code
        return _render(
            ctx,
            ref,
            editor=ctx.user,
            draft=draft,
            write_message=f"Nothing was sent. {error.message}",
            status=status,
        )
    flash("Your message is queued: it goes out in a moment, and shows below with its status.")
    return redirect(link, 303)
