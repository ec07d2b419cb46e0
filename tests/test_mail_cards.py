"""The person card in both add-ins: the latest messages that came in through the team's
addresses, with the record each went to, and the contact's bouncing addresses marked."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event, select

from connector.db import session_scope
from connector.lookup.service import inbound_of
from connector.mail.models import Alias, InboundMessage, InboundStatus
from connector.orgs.context import Ctx
from connector.orgs.models import Organization, User
from connector.records.models import ContactEmail
from connector.store import get_store
from tests.helpers import create_contact, create_lead

# The Gmail add-on's and the Outlook pane's fixtures, Google and Office played locally.
from tests.test_gmail import XSS, addon, assert_escaped, gmail, google, mime, pushed  # noqa: F401
from tests.test_outlook_taskpane import item, pane  # noqa: F401

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def setup_mail(app: Any, org_id: int) -> int:
    """The organization's mail domain and its sales@ alias; the alias's id."""
    with session_scope(app) as session:
        org = session.get(Organization, org_id)
        assert org is not None
        org.mail_domain = "acme.test"
        alias = Alias(organization_id=org_id, address="sales@acme.test", creates="lead")
        session.add(alias)
        session.flush()
        return alias.id


def inbound(app: Any, org_id: int, minutes: int, **fields: Any) -> int:
    values: dict[str, Any] = {
        "organization_id": org_id,
        "source": "smtp",
        "raw": b"Subject: x\r\n\r\nbody",
        "status": InboundStatus.DONE,
        "sender": "hank@globex.test",
        "subject": f"Message {minutes}",
        "outcome": "appended",
        "received_at": T0 + dt.timedelta(minutes=minutes),
        **fields,
    }
    with session_scope(app) as session:
        message = InboundMessage(**values)
        session.add(message)
        session.flush()
        return message.id


def bounce(app: Any, address: str, reason: str = "550 5.1.1 mailbox unavailable") -> None:
    with session_scope(app) as session:
        row = session.scalar(select(ContactEmail).where(ContactEmail.email == address))
        assert row is not None
        row.bounced_at = T0
        row.bounce_reason = reason


def hank_with_mail(app: Any, caller: Any, subject: str = "Quote for 50 seats") -> dict[str, Any]:
    """Hank, his lead opened by mail to sales@, a follow-up, and a second address that bounces."""
    alias_id = setup_mail(app, caller.org_id)
    contact = create_contact(caller, "Hank Scorpio", ["hank@globex.test", "h.s@globex.test"])
    lead = create_lead(caller, contact_id=contact["id"], title=f"Lead: {subject}")
    inbound(
        app,
        caller.org_id,
        0,
        alias_id=alias_id,
        subject=subject,
        outcome="created",
        record_type="lead",
        record_id=lead["id"],
    )
    inbound(app, caller.org_id, 5, sender="h.s@globex.test", subject="Re: quote", outcome="loop")
    bounce(app, "h.s@globex.test")
    return {"contact": contact, "lead": lead, "alias_id": alias_id}


def test_the_lookup_card_has_inbound_and_bouncing(app, caller, make_caller) -> None:
    alias_id = setup_mail(app, caller.org_id)
    contact = create_contact(caller, "Hank Scorpio", ["hank@globex.test", "h.s@globex.test"])
    lead = create_lead(caller, contact_id=contact["id"], title="50 seats")
    gone = create_lead(caller, contact_id=contact["id"], title="Old deal")
    ticket = caller.post(
        "/api/v1/tickets", json={"subject": "Printer on fire", "contact_id": contact["id"]}
    ).json["ticket"]
    task = caller.post(
        "/api/v1/tasks",
        json={"title": "Call back", "record": {"type": "contact", "id": contact["id"]}},
    ).json
    first = caller.get("/api/v1/lookup?email=hank@globex.test").json["results"][0]
    assert first["inbound"] == [] and first["bouncing"] == []

    kept = dict(alias_id=alias_id, outcome="created")
    inbound(app, caller.org_id, 0, **kept, record_type="lead", record_id=lead["id"])
    inbound(app, caller.org_id, 1, **kept, record_type="lead", record_id=gone["id"])
    inbound(app, caller.org_id, 2, **kept, record_type="ticket", record_id=ticket["id"])
    inbound(app, caller.org_id, 3, **kept, record_type="task", record_id=task["id"])
    inbound(app, caller.org_id, 4, sender="h.s@globex.test", outcome="bounce")
    inbound(app, caller.org_id, 5, outcome="appended", record_type="lead", record_id=lead["id"])
    # Neither someone else's mail nor another organization's shows on Hank's card.
    inbound(app, caller.org_id, 9, sender="mia@initech.test")
    other = make_caller(org="Umbrella", email="wes@umbrella.test")
    inbound(app, other.org_id, 9, record_type="lead", record_id=lead["id"])
    assert caller.delete(f"/api/v1/leads/{gone['id']}").status_code == 204  # archived
    bounce(app, "h.s@globex.test", "550 5.1.1 <h.s@globex.test>: user unknown")

    # The cache is no obstacle: the writes above made it read afresh.
    [result] = caller.get("/api/v1/lookup?email=hank@globex.test").json["results"]
    messages = result["inbound"]
    assert [m["subject"] for m in messages] == [f"Message {n}" for n in (5, 4, 3, 2, 1)]
    appended, bounced, to_task, to_ticket, to_archived = messages
    assert appended == {
        "at": (T0 + dt.timedelta(minutes=5)).isoformat(),
        "subject": "Message 5",
        "alias": None,  # a reply address, no alias
        "outcome": "appended",
        "record": {
            "type": "lead",
            "id": lead["id"],
            "title": "50 seats",
            "number": f"L-{lead['id']}",
        },
    }
    assert bounced["record"] is None and bounced["outcome"] == "bounce"
    assert to_task["record"] == {
        "type": "task",
        "id": task["id"],
        "title": "Call back",
        "number": None,
    }
    assert to_ticket["alias"] == "sales@acme.test"
    assert to_ticket["record"]["number"] == f"T-{ticket['id']}"
    assert to_ticket["record"]["title"] == "Printer on fire"
    assert to_archived["record"] is None  # archived: no link to follow
    assert result["bouncing"] == [
        {
            "email": "h.s@globex.test",
            "since": T0.isoformat(),
            "reason": "550 5.1.1 <h.s@globex.test>: user unknown",
        }
    ]
    # The contact's own card says the same.
    card = caller.get(f"/api/v1/contacts/{contact['id']}").json
    assert card["inbound"] == messages and card["bouncing"] == result["bouncing"]
    # A sender with no contact: no such lists.
    [unknown] = caller.get("/api/v1/lookup?email=mia@initech.test").json["results"]
    assert unknown["contact"] is None and "inbound" not in unknown


def test_the_inbound_list_is_one_query(app, caller) -> None:
    alias_id = setup_mail(app, caller.org_id)
    contact = create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    lead = create_lead(caller, contact_id=contact["id"], title="50 seats")
    for n in range(12):
        inbound(app, caller.org_id, n, alias_id=alias_id, record_type="lead", record_id=lead["id"])
    statements: list[str] = []
    engine = app.extensions["connector.engine"]

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with session_scope(app) as session:
            user = session.get(User, caller.user_id)
            assert user is not None
            settings = app.extensions["connector.settings"]
            found = inbound_of(Ctx(session, user, get_store(app), settings), ["hank@globex.test"])
            statements.clear()
            found = inbound_of(Ctx(session, user, get_store(app), settings), ["hank@globex.test"])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(found) == 5 and len(statements) == 1
    assert "inbound_messages" in statements[0]


def test_the_gmail_card_shows_them_escaped(app, addon) -> None:  # noqa: F811 (fixture)
    made = hank_with_mail(app, addon.caller, subject=f"Quote {XSS}")
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))  # parsed with Google's Card proto
    [section] = [s for s in card["sections"] if s.get("header") == "Came in through team addresses"]
    rows = [w["decoratedText"] for w in section["widgets"]]
    assert [r["text"] for r in rows] == [
        "Re: quote",
        "Quote &lt;img src=x onerror=alert(1)&gt;&#34;&amp;",
    ]
    assert rows[0]["bottomLabel"] == "loop" and "to " not in rows[0]["topLabel"]
    lead_id = made["lead"]["id"]
    assert rows[1]["topLabel"] == "2026-11-20 · to sales@acme.test"
    assert rows[1]["bottomLabel"].startswith(f"created: L-{lead_id} Lead: Quote &lt;img")
    # A click opens the lead's card.
    parameters = {p["key"]: p["value"] for p in rows[1]["onClick"]["action"]["parameters"]}
    assert "open_record" in rows[1]["onClick"]["action"]["function"] and parameters
    assert "onClick" not in rows[0]
    # The address the card is for is fine; the other one bounces, and says so.
    details = [
        w["decoratedText"] for s in card["sections"] for w in s["widgets"] if "decoratedText" in w
    ]
    [shown] = [d for d in details if d["text"] == "hank@globex.test"]
    assert "bottomLabel" not in shown
    [other] = [d for d in details if d["text"] == "h.s@globex.test"]
    assert "Bouncing</font> since 2026-11-20: 550 5.1.1 mailbox unavailable" in other["bottomLabel"]
    assert_escaped([card])


def test_the_gmail_card_marks_the_senders_own_address(app, addon) -> None:  # noqa: F811
    hank_with_mail(app, addon.caller)
    bounce(app, "hank@globex.test", "mailbox full")
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    details = [
        w["decoratedText"] for s in card["sections"] for w in s["widgets"] if "decoratedText" in w
    ]
    [shown] = [d for d in details if d["text"] == "hank@globex.test"]
    assert "Bouncing</font> since 2026-11-20: mailbox full" in shown["bottomLabel"]


def test_the_outlook_pane_shows_them_escaped(app, pane, caller) -> None:  # noqa: F811
    made = hank_with_mail(app, caller, subject=f"Quote {XSS}")
    page = pane(item())
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    section = page.locator(
        "section", has=page.get_by_role("heading", name="Came in through team addresses")
    )
    section.wait_for()
    assert section.get_by_text(f"Quote {XSS}", exact=True).is_visible()
    assert section.get_by_text("2026-11-20 · to sales@acme.test").is_visible()
    assert section.get_by_text("loop").is_visible()
    bouncing = page.locator("li.bouncing")
    assert bouncing.count() == 1
    assert "h.s@globex.test" in bouncing.inner_text() and "Bouncing" in bouncing.inner_text()
    assert "550 5.1.1 mailbox unavailable" in bouncing.inner_text()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img").count() == 0
    # The lead it opened opens on a click.
    lead = made["lead"]
    section.get_by_role("button", name=f"L-{lead['id']} Lead: Quote {XSS}").click()
    page.get_by_role("heading", name=f"Lead: Quote {XSS}").wait_for()
