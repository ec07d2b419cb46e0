"""The admin page's Mail section: the mail domain, the aliases, held messages (released to be
routed again) and the latest messages in, with the record each went to."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from connector.audit.models import AuditEvent
from connector.db import session_scope
from connector.jobs import get_jobs
from connector.mail.models import Alias, InboundMessage, InboundStatus
from connector.orgs.models import Organization, Role
from tests.fakes.servers import serve
from tests.helpers import create_contact, create_lead, sign_in
from tests.test_admin_page import text

XSS = '<img src=x onerror=alert(1)>"&'


def set_domain(app: Any, org_id: int, domain: str = "acme.test") -> None:
    with session_scope(app) as session:
        org = session.get(Organization, org_id)
        assert org is not None
        org.mail_domain = domain


def inbound(app: Any, org_id: int, **fields: Any) -> int:
    """An InboundMessage as routing leaves it (done, created...), written directly."""
    values: dict[str, Any] = {
        "organization_id": org_id,
        "source": "smtp",
        "raw": b"Subject: x\r\n\r\nbody",
        "status": InboundStatus.DONE,
        "sender": "hank@globex.test",
        "subject": "Quote for 50 seats",
        "outcome": "created",
        **fields,
    }
    with session_scope(app) as session:
        message = InboundMessage(**values)
        session.add(message)
        session.flush()
        return message.id


def audited(app: Any) -> list[str]:
    with session_scope(app) as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_the_mail_domain_and_aliases_from_the_page(app, client, caller, make_caller) -> None:
    make_caller(email="bob@acme.test", role=Role.MEMBER)
    csrf = sign_in(client, caller.user_id)
    page = text(client.get("/admin"))
    assert "Mail" in page and "Set the mail domain first." in page

    refused = client.post("/admin/mail/domain", data={"csrf": csrf, "domain": "gmail.com"})
    assert refused.status_code == 400 and "free-mail" in text(refused)
    forged = client.post("/admin/mail/domain", data={"csrf": "forged", "domain": "acme.test"})
    assert forged.status_code == 403
    done = client.post("/admin/mail/domain", data={"csrf": csrf, "domain": "Acme.test"})
    assert done.status_code == 303
    assert "The mail domain is acme.test." in text(client.get(done.headers["Location"]))

    template = caller.post(
        "/api/v1/templates",
        json={"name": "Got it", "subject": "We got it", "body_html": "<p>Thanks</p>"},
    ).json
    form = {"csrf": csrf, "creates": "ticket", "accept": "contacts", "owner": "bob@acme.test"}
    made = client.post(
        "/admin/mail/aliases",
        data={**form, "address": "support@acme.test", "auto_reply": str(template["id"])},
    )
    assert made.status_code == 303
    plain = {"csrf": csrf, "address": "sales@acme.test", "creates": "lead", "auto_reply": "builtin"}
    assert client.post("/admin/mail/aliases", data=plain).status_code == 303
    with session_scope(app) as session:
        found = {a.address: a for a in session.scalars(select(Alias))}
        support, sales = found["support@acme.test"], found["sales@acme.test"]
        assert support.auto_reply_template_id == template["id"]
        assert support.owner is not None and support.owner.email == "bob@acme.test"
        assert support.accept == "contacts" and support.creates == "ticket"
        assert sales.auto_reply and sales.auto_reply_template_id is None
        support_id = support.id

    page = text(client.get("/admin"))
    assert "support@acme.test" in page and "Got it" in page and "built-in" in page

    # What the service refuses is the page again with the reason, and nothing is made.
    for data, reason in [
        ({"address": "sales@acme.test", "creates": "lead"}, "is an alias already"),
        ({"address": "x@elsewhere.test", "creates": "lead"}, "not at acme.test"),
        ({"address": "x@acme.test", "creates": "opportunity"}, "opportunity"),
        ({"address": "x@acme.test", "creates": "lead", "owner": "wes@x.test"}, "is no one"),
        ({"address": "x@acme.test", "creates": "lead", "auto_reply": "99999"}, "no template"),
        ({"address": "x@acme.test", "creates": "lead", "auto_reply": "x" * 20}, "template"),
    ]:
        answer = client.post("/admin/mail/aliases", data={"csrf": csrf, **data})
        expected = 409 if "already" in reason else 400
        assert answer.status_code == expected, (data, answer.status_code)
        assert reason in text(answer), (data, text(answer)[:300])

    # A member cannot; another organization's alias is not found.
    other = make_caller(org="Umbrella", email="wes@umbrella.test")
    set_domain(app, other.org_id, "umbrella.test")
    with session_scope(app) as session:
        theirs = Alias(organization_id=other.org_id, address="sales@umbrella.test", creates="lead")
        session.add(theirs)
        session.flush()
        theirs_id = theirs.id
    gone = client.post(f"/admin/mail/aliases/{theirs_id}/delete", data={"csrf": csrf})
    assert gone.status_code == 404

    deleted = client.post(f"/admin/mail/aliases/{support_id}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303
    assert "support@acme.test deleted" in text(client.get(deleted.headers["Location"]))
    with session_scope(app) as session:
        left = session.scalars(select(Alias.address).order_by(Alias.address)).all()
    assert left == ["sales@acme.test", "sales@umbrella.test"]

    assert [a for a in audited(app) if a.startswith(("alias.", "mail_domain."))] == [
        "mail_domain.set",
        "alias.created",
        "alias.created",
        "alias.deleted",
    ]
    page = text(client.get("/admin"))
    assert "alias.deleted" in page  # the audit log on the page


def test_members_do_not_get_the_mail_section(client, caller, make_caller) -> None:
    member = make_caller(email="bob@acme.test", role=Role.MEMBER)
    sign_in(client, member.user_id)
    for path in ("/admin/mail/domain", "/admin/mail/aliases", "/admin/mail/held/1/release"):
        assert client.post(path, data={"csrf": "test-csrf"}).status_code == 403


def test_held_messages_are_listed_and_released(queue_app, client, caller, make_caller) -> None:
    app = queue_app
    set_domain(app, caller.org_id)
    received = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    held = inbound(
        app,
        caller.org_id,
        status=InboundStatus.HELD,
        outcome="held",
        sender="flood@spam.test",
        subject=f"Buy now {XSS}",
        received_at=received,
    )
    csrf = sign_in(client, caller.user_id)
    answer = client.get("/admin")
    page = text(answer)
    assert "Held messages" in page and "flood@spam.test" in page
    assert f"Buy now {XSS}" in page and "2026-11-20 10:00" in page
    # Escaped: the subject's markup is text on the page.
    assert "<img src=x" not in answer.get_data(as_text=True)

    other = make_caller(org="Umbrella", email="wes@umbrella.test")
    theirs = inbound(app, other.org_id, status=InboundStatus.HELD, outcome="held")
    assert client.post(f"/admin/mail/held/{theirs}/release", data={"csrf": csrf}).status_code == 404
    assert client.post(f"/admin/mail/held/{held}/release", data={"csrf": "x"}).status_code == 403

    jobs = get_jobs(app)
    before = jobs.pending()
    released = client.post(f"/admin/mail/held/{held}/release", data={"csrf": csrf})
    assert released.status_code == 303
    assert "Released the message from flood@spam.test" in text(
        client.get(released.headers["Location"])
    )
    with session_scope(app) as session:
        message = session.get(InboundMessage, held)
        assert message is not None and message.status == InboundStatus.RECEIVED
        # A person looked at it: the sender cap does not hold it back again.
        assert message.cap_exempt
    # Queued for routing, once: a second press finds it no longer held.
    assert jobs.pending() == before + 1
    [task] = [t for t in jobs.huey.pending() if t.name == "route_inbound"]
    assert task.kwargs == {"inbound_id": held}
    again = client.post(f"/admin/mail/held/{held}/release", data={"csrf": csrf})
    assert "not held any more" in text(client.get(again.headers["Location"]))
    assert jobs.pending() == before + 1
    assert "inbound.released" in audited(app)
    assert "Held messages None." in text(client.get("/admin"))


def test_the_latest_messages_in_with_their_records(app, client, caller) -> None:
    set_domain(app, caller.org_id)
    with session_scope(app) as session:
        alias = Alias(organization_id=caller.org_id, address="sales@acme.test", creates="lead")
        session.add(alias)
        session.flush()
        alias_id = alias.id
    contact = create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    lead = create_lead(caller, contact_id=contact["id"], title="50 seats")
    inbound(
        app,
        caller.org_id,
        alias_id=alias_id,
        record_type="lead",
        record_id=lead["id"],
        received_at=dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC),
    )
    inbound(
        app,
        caller.org_id,
        sender="mailer-daemon@globex.test",
        subject="Undeliverable: hello",
        outcome="bounce",
        received_at=dt.datetime(2026, 11, 20, 11, 0, tzinfo=dt.UTC),
    )
    sign_in(client, caller.user_id)
    answer = client.get("/admin")
    page = text(answer)
    latest = page[page.index("Latest messages in") :]
    # Newest first: the bounce, then the mail that opened the lead.
    assert latest.index("Undeliverable: hello") < latest.index("Quote for 50 seats")
    assert "sales@acme.test" in latest and "created" in latest and "bounce" in latest
    assert f"L-{lead['id']}" in latest
    link = re.search(r'href="([^"]+/records/lead/\d+\?t=[^"]+)"', answer.get_data(as_text=True))
    assert link is not None
    url = urlsplit(html.unescape(link.group(1)))
    record_page = client.get(f"{url.path}?{url.query}")
    assert record_page.status_code == 200 and "50 seats" in text(record_page)


def test_an_alias_made_in_a_browser(app, caller, browser, runner) -> None:
    set_domain(app, caller.org_id)
    with serve(app) as base:
        app.config["PUBLIC_URL"] = base
        link = re.search(
            r"\S+/admin/sign-in\?t=\S+",
            runner.invoke(args=["admin-link", "--email", "ann@acme.test"]).output,
        ).group(0)
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(link)
            page.get_by_role("heading", name="Mail").wait_for()
            page.get_by_label("Address").fill("support@acme.test")
            page.get_by_label("opens a").select_option("ticket")
            page.get_by_label("acknowledge").select_option("builtin")
            page.get_by_role("button", name="Add alias").click()
            page.get_by_role("status").get_by_text(
                "support@acme.test now opens a ticket"
            ).wait_for()
            page.get_by_role("button", name="Delete support@acme.test").click()
            page.get_by_role("status").get_by_text("support@acme.test deleted").wait_for()
        finally:
            context.close()
