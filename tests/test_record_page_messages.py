"""The record page's followers and "Write to the customer": a signed-in user of the record's
organization follows and unfollows it, previews a message (nothing written) and sends it
(one OutboundMail queued, shown under "Messages"); the link alone never writes."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select

from connector.db import session_scope
from connector.jobs.outbound import send_outbound
from connector.mail import aliases
from connector.mail.models import OutboundMail, OutboundStatus
from connector.orgs.models import Organization
from tests.helpers import create_contact, create_lead, sign_in
from tests.smtp_fixtures import smtp_server

DOMAIN = "acme-mail.test"


def link_to(caller: Any, record_type: str, record_id: int) -> str:
    response = caller.post("/api/v1/record-links", json={"type": record_type, "id": record_id})
    assert response.status_code == 201
    parts = urlsplit(response.json["url"])
    return f"{parts.path}?{parts.query}"


def text(response: Any) -> str:
    """The page's text, tags out, spaces collapsed."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(response: Any, heading: str) -> str:
    """The text of the page's section under `heading`."""
    html = response.get_data(as_text=True)
    match = re.search(rf"<section[^>]*>\s*<h2[^>]*>{heading}</h2>(.*?)</section>", html, re.S)
    assert match, f"no {heading} section"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def outbound_rows(app: Flask) -> list[OutboundMail]:
    with session_scope(app) as session:
        rows = list(session.scalars(select(OutboundMail).order_by(OutboundMail.id)))
        session.expunge_all()
        return rows


@pytest.fixture
def lead(app: Flask, caller: Any, make_caller: Any) -> dict[str, Any]:
    """Hank's lead, owned by Bob, in an organization with its mail domain."""
    with session_scope(app) as session:
        org = session.get(Organization, caller.org_id)
        assert org is not None
        aliases.set_mail_domain(
            session, org, DOMAIN, app.extensions["connector.settings"].free_mail
        )
        aliases.create_alias(session, org, address=f"sales@{DOMAIN}", creates="lead")
    bob = make_caller(email="bob@acme.test")
    contact = create_contact(caller)
    return create_lead(caller, title="50 seats", contact_id=contact["id"], owner_id=bob.user_id)


def test_followers_shown_follow_and_unfollow(client, caller, lead) -> None:
    link = link_to(caller, "lead", lead["id"])
    csrf = sign_in(client, caller.user_id)
    page = client.get(link)
    assert section(page, "Followers").startswith("bob bob@acme.test · owner")
    assert 'value="follow"' in page.get_data(as_text=True)

    answer = client.post(link, data={"csrf": csrf, "action": "follow"})
    assert answer.status_code == 303
    page = client.get(answer.headers["Location"])
    assert "You follow this record" in text(page)
    assert "ann ann@acme.test · you" in section(page, "Followers")
    assert 'value="unfollow"' in page.get_data(as_text=True)
    followers = caller.get(f"/api/v1/leads/{lead['id']}/followers").json["results"]
    assert [f["email"] for f in followers] == ["bob@acme.test", "ann@acme.test"]

    answer = client.post(link, data={"csrf": csrf, "action": "unfollow"})
    assert answer.status_code == 303
    page = client.get(answer.headers["Location"])
    assert "You no longer follow this record." in text(page)
    assert "ann@acme.test" not in section(page, "Followers")
    followers = caller.get(f"/api/v1/leads/{lead['id']}/followers").json["results"]
    assert [f["email"] for f in followers] == ["bob@acme.test"]


def test_preview_then_send(app, client, caller, lead) -> None:
    link = link_to(caller, "lead", lead["id"])
    csrf = sign_in(client, caller.user_id)
    page = client.get(link)
    subject = f"50 seats [#L-{lead['id']}]"
    assert f'value="{subject}"' in page.get_data(as_text=True)  # the title and number

    empty = client.post(link, data={"csrf": csrf, "action": "preview", "subject": subject})
    assert empty.status_code == 400
    assert "Nothing was sent. Write a message, or choose a template." in text(empty)

    written = {"csrf": csrf, "subject": subject, "body_text": "Hello Hank,\nthe quote is ready."}
    preview = client.post(link, data={**written, "action": "preview"})
    assert preview.status_code == 200
    shown = section(preview, "Write to the customer")
    assert re.search(rf"From .*@{re.escape(DOMAIN)}", shown)
    assert "To Hank Scorpio <hank@globex.test>" in shown or "To hank@globex.test" in shown
    assert re.search(rf"Reply-To \S+@{re.escape(DOMAIN)}", shown)
    assert f"Subject {subject}" in shown and "the quote is ready." in shown
    assert outbound_rows(app) == []  # a preview writes nothing

    # The preview's Send button carries what was written.
    html = preview.get_data(as_text=True)
    send_form = html[html.index('value="send"') : html.index("</form>", html.index('value="send"'))]
    fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', send_form))
    assert unescape(fields["body_text"]) == "Hello Hank,\nthe quote is ready."
    sent = client.post(link, data={**fields, "csrf": csrf, "action": "send"})
    assert sent.status_code == 303
    [row] = outbound_rows(app)
    assert row.kind == "message" and row.author_id == caller.user_id
    assert row.to_addresses == ["hank@globex.test"] and row.subject == subject
    assert row.status == OutboundStatus.QUEUED
    page = client.get(sent.headers["Location"])
    assert "Your message is queued" in text(page)
    messages = section(page, "Messages")
    assert subject in messages and "queued · to hank@globex.test" in messages
    # Whoever writes on the record follows it.
    assert "ann ann@acme.test · you" in section(page, "Followers")


def test_a_failed_message_is_marked_with_its_error(app, client, caller, lead, tmp_path) -> None:
    link = link_to(caller, "lead", lead["id"])
    csrf = sign_in(client, caller.user_id)
    body = {"csrf": csrf, "action": "send", "subject": "Quote", "body_text": "Hello"}
    assert client.post(link, data=body).status_code == 303
    [row] = outbound_rows(app)
    # The SMTP server refuses it for good: the worker's job marks it failed.
    with smtp_server(tmp_path) as server:
        server.handler.data_answer = "554 5.7.1 Message rejected as spam"
        app.config["SMTP_URL"] = server.url()
        send_outbound(app, outbound_id=row.id)
    messages = section(client.get(link), "Messages")
    assert f"Failed Quote [#L-{lead['id']}] failed · to hank@globex.test" in messages
    assert "554 5.7.1 Message rejected as spam" in messages


def test_the_link_alone_cannot_follow_or_write(app, client, caller, lead, make_caller) -> None:
    link = link_to(caller, "lead", lead["id"])
    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "bob@acme.test · owner" in section(page, "Followers")  # read, not changed
    assert 'value="follow"' not in html and 'value="preview"' not in html
    writes = [
        {"action": "follow"},
        {"action": "send", "subject": "Quote", "body_text": "Hello"},
        {"action": "preview", "subject": "Quote", "body_text": "Hello"},
    ]
    for data in writes:
        assert client.post(link, data=data).status_code == 403
    # Signed in, but without the session's token: refused too.
    sign_in(client, caller.user_id)
    for data in writes:
        assert client.post(link, data={**data, "csrf": "forged"}).status_code == 403
    # A user of another organization, with the session and its token: no such record.
    stranger = make_caller(org="Initech", email="ivy@initech.test")
    csrf = sign_in(client, stranger.user_id)
    for data in writes:
        assert client.post(link, data={**data, "csrf": csrf}).status_code == 404
    assert outbound_rows(app) == []
    followers = caller.get(f"/api/v1/leads/{lead['id']}/followers").json["results"]
    assert [f["email"] for f in followers] == ["bob@acme.test"]
