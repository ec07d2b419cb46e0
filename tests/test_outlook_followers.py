"""Followers and "Write to the customer" in the Outlook task pane, in a real browser (Debian's
chromium, driven by Playwright) against the running service: the lead's followers with
Follow/Unfollow, then a message written, previewed as it will go, and sent, which queues one
OutboundMail that the lead's "Messages" shows with its status; a message that failed for
good is marked failed with the server's answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from connector.db import session_scope
from connector.jobs.outbound import send_outbound
from connector.mail import aliases
from connector.mail.models import OutboundMail, OutboundStatus
from connector.orgs.models import Organization
from tests.fakes.servers import serve
from tests.helpers import create_contact, create_lead
from tests.smtp_fixtures import smtp_server
from tests.test_outlook_taskpane import ARTIFACTS, OFFICE_MOCK, item

DOMAIN = "acme-mail.test"
Page = Any


@pytest.fixture
def open_pane(app: Flask, caller: Any, browser: Any) -> Iterator[Callable[[], Page]]:
    """The pane on Hank's message, with the caller's (Ann's) key."""
    with serve(app) as base:
        context = browser.new_context(viewport={"width": 320, "height": 1200})
        page = context.new_page()
        page.route(
            "https://appsforoffice.microsoft.com/**",
            lambda route: route.fulfill(
                status=200, content_type="application/javascript", body="/* mocked */"
            ),
        )

        def open_on() -> Page:
            config = {"apiKey": caller.key, "item": item(), "oldClient": False, "naa": False}
            page.add_init_script(f"window.__officeConfig = {json.dumps(config)};")
            page.add_init_script(OFFICE_MOCK)
            page.goto(base + "/static/outlook/taskpane.html")
            return page

        yield open_on
        context.close()


def with_mail_domain(app: Flask, org_id: int) -> None:
    """The organization's mail domain and its sales address, which messages go from."""
    with session_scope(app) as session:
        org = session.get(Organization, org_id)
        assert org is not None
        aliases.set_mail_domain(
            session, org, DOMAIN, app.extensions["connector.settings"].free_mail
        )
        aliases.create_alias(session, org, address=f"sales@{DOMAIN}", creates="lead")


def outbound_rows(app: Flask) -> list[OutboundMail]:
    with session_scope(app) as session:
        rows = list(session.scalars(select(OutboundMail).order_by(OutboundMail.id)))
        session.expunge_all()
        return rows


def open_lead(page: Page, title: str) -> None:
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    page.get_by_role("button", name=title, exact=True).click()
    page.get_by_role("heading", name=title).wait_for()


def followers_shown(page: Page) -> list[str]:
    section = page.get_by_role("region", name="Followers")
    return [" ".join(line.split()) for line in section.locator("li").all_inner_texts()]


def test_followers_of_a_lead_follow_and_unfollow(open_pane, caller, make_caller) -> None:
    bob = make_caller(email="bob@acme.test")
    contact = create_contact(caller)
    lead = create_lead(caller, title="50 seats", contact_id=contact["id"], owner_id=bob.user_id)
    page = open_pane()
    # The person's card: Hank's contact, which Ann owns (and so follows).
    page.get_by_role("region", name="Followers").get_by_text(
        "ann@acme.test · owner · you"
    ).wait_for()
    open_lead(page, "50 seats")
    followers = page.get_by_role("region", name="Followers")
    followers.get_by_text("bob@acme.test · owner").wait_for()
    assert len(followers_shown(page)) == 1

    followers.get_by_role("button", name="Follow this record", exact=True).click()
    followers.get_by_text("ann@acme.test · you").wait_for()
    assert "null" not in followers.inner_text()
    api = caller.get(f"/api/v1/leads/{lead['id']}/followers").json["results"]
    assert [(f["email"], f["is_owner"], f["is_me"]) for f in api] == [
        ("bob@acme.test", True, False),
        ("ann@acme.test", False, True),
    ]
    assert followers.get_by_role("button", name="Follow this record", exact=True).count() == 0

    followers.get_by_role("button", name="Unfollow this record").click()
    followers.get_by_role("button", name="Follow this record", exact=True).wait_for()
    assert followers.get_by_text("ann@acme.test · you").count() == 0

    # Beside someone else: Unfollow takes them off (the owner too; they stay off).
    followers.get_by_role("button", name="Unfollow bob from this record").click()
    followers.get_by_text("Nobody follows this record.").wait_for()
    assert caller.get(f"/api/v1/leads/{lead['id']}/followers").json["results"] == []


def test_write_preview_send_then_the_message_and_its_failure(
    open_pane, caller, app: Flask, tmp_path: Path
) -> None:
    with_mail_domain(app, caller.org_id)
    contact = create_contact(caller)
    lead = create_lead(caller, title="50 seats", contact_id=contact["id"])
    page = open_pane()
    open_lead(page, "50 seats")

    page.get_by_role("button", name="Write to the customer").click()
    form = page.get_by_role("form", name="Write to the customer")
    assert form.get_by_label("Subject").input_value() == f"50 seats [#L-{lead['id']}]"
    # Nothing written yet: Preview asks for a text first, in the form.
    form.get_by_role("button", name="Preview").click()
    form.get_by_role("alert").get_by_text("Write a message, or choose a template.").wait_for()
    form.get_by_label("Message").fill("Hello Hank,\n\nthe quote is attached to this lead.")
    form.get_by_role("button", name="Preview").click()

    preview = page.get_by_role("region", name="Message preview")
    preview.get_by_text("Send this message?").wait_for()
    shown = " ".join(preview.inner_text().split())
    assert f"@{DOMAIN}" in shown  # From and Reply-To at the organization's domain
    assert "hank@globex.test" in shown
    assert f"50 seats [#L-{lead['id']}]" in shown
    assert "the quote is attached to this lead." in shown
    assert outbound_rows(app) == []  # a preview writes nothing
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "outlook-message-preview.png"), full_page=True)

    preview.get_by_role("button", name="Send").click()
    messages = page.get_by_role("region", name="Messages")
    messages.get_by_text(f"50 seats [#L-{lead['id']}]").wait_for()
    [row] = outbound_rows(app)
    assert row.kind == "message" and row.to_addresses == ["hank@globex.test"]
    assert row.author_id == caller.user_id and row.status == OutboundStatus.QUEUED
    assert messages.get_by_text("queued · to hank@globex.test", exact=False).is_visible()
    # Whoever writes on the record follows it.
    page.get_by_role("region", name="Followers").get_by_text(
        "ann@acme.test", exact=False
    ).wait_for()

    # The SMTP server refuses it for good: the card says failed, with the server's answer.
    with smtp_server(tmp_path) as server:
        server.handler.data_answer = "554 5.7.1 Message rejected as spam"
        app.config["SMTP_URL"] = server.url()
        send_outbound(app, outbound_id=row.id)
    assert outbound_rows(app)[0].status == OutboundStatus.FAILED
    page.get_by_role("button", name="‹ Hank Scorpio").click()
    open_lead(page, "50 seats")
    failed = page.get_by_role("region", name="Messages").locator("li.failed")
    failed.get_by_text("Failed", exact=True).wait_for()
    assert "554 5.7.1 Message rejected as spam" in failed.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "outlook-lead-messages.png"), full_page=True)
