"""The record page's followers and "Write to the customer" (connector.web.record_links).

Server-side forms posting to the page, each with an `action`: follow and unfollow (the
signed-in user themself), preview (what would go: From, To, Reply-To, subject, text; nothing
is written) and send (queued as the API's POST .../messages queues it, then sent by the
worker). They call the domain services in-process, never the HTTP API. record_links checks,
before any of these runs, that the browser is signed in as a user of the record's
organization and that the form carries that session's CSRF token: the link alone never
writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

import connector.mail.following as following
import connector.mail.messages as messages
from connector.email_templates.service import list_templates
from connector.errors import InvalidInput
from connector.jobs import get_jobs
from connector.mail.numbers import with_tag
from connector.orgs.context import Ctx
from connector.records.refs import RecordRef

ACTIONS = frozenset({"follow", "unfollow", "preview", "send"})
SUBJECT_MAX = 998  # a header line's limit (RFC 5322), as the API takes it
BODY_MAX = 100_000


@dataclass(frozen=True)
class Written:
    """What the write form shows: the person's own text, kept when the page comes back."""

    subject: str
    body_text: str
    template_id: int | None


@dataclass(frozen=True)
class Writing:
    """The write form of a signed-in user: the draft, the templates to pick, and the
    preview of the draft where they asked for one."""

    draft: Written
    templates: list[tuple[int, str]]
    preview: Mapping[str, Any] | None = None


def default_subject(ref: RecordRef, title: str) -> str:
    """The record's title with its number ("50 seats [#L-12]"), as the API defaults it."""
    return with_tag(title, ref)


def writing(ctx: Ctx, ref: RecordRef, title: str, draft: Written | None = None) -> Writing:
    templates = [(t.id, t.name) for t in list_templates(ctx)]
    return Writing(draft or Written(default_subject(ref, title), "", None), templates)


def written(form: Mapping[str, str]) -> Written:
    """The draft as the form sent it; a template id that is no number is refused."""
    template = form.get("template_id", "").strip()
    if template and not (template.isdigit() and len(template) <= 9):
        raise InvalidInput("Choose a template from the list.", {"template_id": ["not an id"]})
    return Written(
        subject=form.get("subject", "").strip()[:SUBJECT_MAX],
        body_text=form.get("body_text", "")[:BODY_MAX],
        template_id=int(template) if template else None,
    )


def _draft(written: Written) -> messages.Draft:
    """What was written as the messages service takes it (the API's JSON body): a template,
    else the text; an empty subject leaves the service's default (title and number)."""
    if written.template_id is None and not written.body_text.strip():
        raise InvalidInput(
            "Write a message, or choose a template.",
            {"body_text": ["required without a template"]},
        )
    return messages.Draft(
        subject=written.subject or None,
        body_text=None if written.template_id is not None else written.body_text,
        template_id=written.template_id,
    )


def preview(ctx: Ctx, ref: RecordRef, written: Written) -> dict[str, Any]:
    """What sending it would send; nothing is written."""
    secret_key = current_app.config["SECRET_KEY"]
    return messages.preview(ctx, ref, _draft(written), secret_key=secret_key)


def send(ctx: Ctx, ref: RecordRef, written: Written) -> int:
    """Queue it, commit, then hand it to the worker (as the API does): its id. The writer
    follows the record from now on (the service makes them)."""
    secret_key = current_app.config["SECRET_KEY"]
    row = messages.write_message(ctx, ref, _draft(written), secret_key=secret_key)
    ctx.session.commit()
    get_jobs(current_app).enqueue("send_outbound", outbound_id=row.id)
    return row.id


def follow(ctx: Ctx, ref: RecordRef) -> None:
    following.add_follower(ctx, ref, user_id=ctx.user.id)
    ctx.session.commit()


def unfollow(ctx: Ctx, ref: RecordRef) -> bool:
    """The signed-in user stops following; False when they did not follow it."""
    # record_followers gives the owner their row (and so an id) where they had none yet.
    mine = [f["id"] for f in following.record_followers(ctx, ref) if f["is_me"]]
    for follower_id in mine:
        following.remove_follower(ctx, ref, follower_id)
    ctx.session.commit()
    return bool(mine)
