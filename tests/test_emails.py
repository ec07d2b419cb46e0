"""Logging emails (JSON fields or raw MIME), idempotence, attachments, notes, and bad input."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from connector.activities.models import Activity, ActivityLink, Attachment
from connector.db import session_scope
from tests.helpers import create_company, create_contact, create_lead, email_json


def raw_message(message_id: str = "<raw-1@globex.test>", attachment: bytes = b"%PDF-1.4 quote"):
    message = EmailMessage()
    message["From"] = "Hank Scorpio <hank@globex.test>"
    message["To"] = "Ann <ann@acme.test>, bob@acme.test"
    message["Cc"] = "Carl <carl@globex.test>"
    message["Subject"] = "Devis signé ✓"
    message["Date"] = "Fri, 20 Nov 2026 10:00:00 +0100"
    message["Message-ID"] = message_id
    message.set_content("Bonjour,\nle devis est signé.")
    message.add_alternative(
        "<p>Bonjour,</p><p>le devis est <b>signé</b>.</p><script>alert(1)</script>"
        '<img src="cid:logo@globex">',
        subtype="html",
    )
    message.get_payload()[1].add_related(
        b"\x89PNG fake", maintype="image", subtype="png", cid="<logo@globex>"
    )
    message.add_attachment(
        attachment, maintype="application", subtype="pdf", filename="devis signé.pdf"
    )
    return message.as_bytes()


def counts(app) -> tuple[int, int, int]:
    with session_scope(app) as session:
        return tuple(
            session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Activity, ActivityLink, Attachment)
        )


def test_log_json_email_on_a_contact(caller) -> None:
    contact = create_contact(caller)
    response = caller.post(
        "/api/v1/emails",
        json=email_json(
            [{"type": "contact", "id": contact["id"]}],
            body_html='<p onclick="x()">Hello <a href="javascript:evil()">there</a></p>',
            attachments=[
                {
                    "filename": "a.txt",
                    "content_type": "text/plain",
                    "content_base64": base64.b64encode(b"hello").decode(),
                }
            ],
        ),
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["already_logged"] is False
    assert body["newly_linked"] == [{"type": "contact", "id": contact["id"]}]
    activity = body["activity"]
    assert activity["subject"] == "Quote for 50 seats"
    assert activity["from"] == "Hank Scorpio <hank@globex.test>"
    assert activity["attachments"][0]["filename"] == "a.txt"
    assert activity["attachments"][0]["size"] == 5
    detail = caller.get(f"/api/v1/activities/{activity['id']}").json
    assert "onclick" not in detail["body_html"] and "javascript" not in detail["body_html"]
    assert "Hello" in detail["body_text"]
    download = caller.get(f"/api/v1/attachments/{activity['attachments'][0]['id']}")
    assert download.status_code == 200 and download.data == b"hello"
    assert "a.txt" in download.headers["Content-Disposition"]


def test_log_raw_mime_on_several_records(caller) -> None:
    company = create_company(caller)
    contact = create_contact(caller)
    lead = create_lead(caller, contact_id=contact["id"])
    response = caller.post(
        f"/api/v1/emails?record=contact:{contact['id']}&record=company:{company['id']}"
        f"&record=lead:{lead['id']}",
        data=raw_message(),
        content_type="message/rfc822",
    )
    assert response.status_code == 201, response.json
    activity = response.json["activity"]
    assert activity["subject"] == "Devis signé ✓"
    assert activity["message_id"] == "<raw-1@globex.test>"
    assert activity["to"] == ["Ann <ann@acme.test>", "bob@acme.test"]
    assert activity["cc"] == ["Carl <carl@globex.test>"]
    assert activity["occurred_at"] == "2026-11-20T09:00:00+00:00"
    names = {a["filename"]: a for a in activity["attachments"]}
    assert names["devis signé.pdf"]["content_type"] == "application/pdf"
    assert any(a["content_type"] == "image/png" for a in activity["attachments"])
    assert len(activity["records"]) == 3
    detail = caller.get(f"/api/v1/activities/{activity['id']}").json
    assert "<script" not in detail["body_html"] and "signé" in detail["body_html"]
    assert "le devis est signé" in detail["body_text"]
    for url in (f"/api/v1/companies/{company['id']}", f"/api/v1/leads/{lead['id']}"):
        assert caller.get(url).json["activities"][0]["id"] == activity["id"]


def test_same_message_id_twice_is_one_activity(app, caller) -> None:
    contact = create_contact(caller)
    records = [{"type": "contact", "id": contact["id"]}]
    first = caller.post("/api/v1/emails", json=email_json(records))
    assert first.status_code == 201
    again = caller.post("/api/v1/emails", json=email_json(records))
    assert again.status_code == 200
    assert again.json["already_logged"] is True
    assert again.json["activity"]["id"] == first.json["activity"]["id"]
    assert counts(app)[:2] == (1, 1)
    # The same email as raw MIME, now also on a lead: still one activity, one new link.
    lead = create_lead(caller, contact_id=contact["id"])
    raw = raw_message(message_id="<m1@globex.test>")
    third = caller.post(
        f"/api/v1/emails?record=contact:{contact['id']}&record=lead:{lead['id']}",
        data=raw,
        content_type="message/rfc822",
    )
    assert third.status_code == 201
    assert third.json["already_logged"] is False
    assert third.json["newly_linked"] == [{"type": "lead", "id": lead["id"]}]
    assert third.json["already_linked"] == [{"type": "contact", "id": contact["id"]}]
    assert counts(app)[:2] == (1, 2)


def test_email_without_message_id_is_still_idempotent(app, caller) -> None:
    contact = create_contact(caller)
    records = [{"type": "contact", "id": contact["id"]}]
    body = email_json(records)
    del body["message_id"]
    assert caller.post("/api/v1/emails", json=body).status_code == 201
    assert caller.post("/api/v1/emails", json=body).json["already_logged"] is True
    assert counts(app)[0] == 1


def test_emails_without_message_id_that_differ_in_attachments_are_two(app, caller) -> None:
    # The March and the April invoice: same sender, subject, date and text.
    contact = create_contact(caller)
    records = [{"type": "contact", "id": contact["id"]}]
    logged = []
    for month in ("march", "april", "march"):
        content = base64.b64encode(f"%PDF-1.4 {month}".encode()).decode()
        attachment = {"filename": f"{month}.pdf", "content_base64": content}
        body = email_json(records, attachments=[attachment])
        del body["message_id"]
        response = caller.post("/api/v1/emails", json=body)
        assert response.status_code in (200, 201), response.json
        logged.append((response.json["already_logged"], response.json["activity"]["id"]))
    assert [already for already, _ in logged] == [False, False, True]
    assert logged[0][1] != logged[1][1] and logged[2][1] == logged[0][1]
    assert counts(app)[0] == 2


def test_logged_status_by_message_id(caller) -> None:
    contact = create_contact(caller)
    assert caller.get("/api/v1/emails/logged?message_id=<m1@globex.test>").json == {
        "logged": False,
        "activity": None,
    }
    caller.post("/api/v1/emails", json=email_json([{"type": "contact", "id": contact["id"]}]))
    for message_id in ("<m1@globex.test>", "m1@globex.test"):
        status = caller.get("/api/v1/emails/logged", query_string={"message_id": message_id}).json
        assert status["logged"] is True
        assert status["activity"]["records"] == [{"type": "contact", "id": contact["id"]}]
    assert caller.get("/api/v1/emails/logged").status_code == 400


def test_attachments_over_the_cap_are_left_out_and_said(app, caller) -> None:
    app.extensions["connector.settings"] = app.extensions["connector.settings"].__class__(
        **{**app.extensions["connector.settings"].__dict__, "attachment_cap_bytes": 1000}
    )
    contact = create_contact(caller)
    response = caller.post(
        f"/api/v1/emails?record=contact:{contact['id']}",
        data=raw_message(attachment=b"x" * 5000),
        content_type="message/rfc822",
    )
    assert response.status_code == 201
    activity = response.json["activity"]
    assert activity["attachments"] == []
    omitted = {a["filename"]: a["size"] for a in activity["omitted_attachments"]}
    assert omitted["devis signé.pdf"] == 5000
    assert counts(app)[2] == 0


def test_malformed_mime_is_400_and_writes_nothing(app, caller) -> None:
    contact = create_contact(caller)
    # A message without a From: is logged (see test_mail_corpus); one without headers is not.
    for raw in (b"", b"just some words, no headers", b"\x00\xff\xfe" * 50):
        response = caller.post(
            f"/api/v1/emails?record=contact:{contact['id']}",
            data=raw,
            content_type="message/rfc822",
        )
        assert response.status_code == 400, raw
        assert response.json["message"]
    assert counts(app) == (0, 0, 0)


def test_bad_log_requests(app, caller, make_caller) -> None:
    contact = create_contact(caller)
    records = [{"type": "contact", "id": contact["id"]}]
    other = make_caller("Other org", "olga@other.test")
    foreign = create_contact(other, "Fred", ["fred@foreign.test"])
    cases = [
        (email_json([]), 400),
        (email_json(), 400),  # no records (a "from" with no address is logged as written)
        (email_json(records, date="yesterday"), 400),
        (email_json(records, attachments=[{"filename": "a", "content_base64": "%%%"}]), 400),
        (email_json([{"type": "contact", "id": foreign["id"]}]), 404),
        (email_json(records + [{"type": "contact", "id": foreign["id"]}]), 404),
        (email_json([{"type": "lead", "id": 424242}]), 404),
    ]
    for body, status in cases:
        response = caller.post("/api/v1/emails", json=body)
        assert response.status_code == status, (body, response.json)
        assert response.json["code"] == status
    assert (
        caller.post(
            f"/api/v1/emails?record=contact:{contact['id']}", data=b"x", content_type="text/plain"
        ).status_code
        == 415
    )
    response = caller.post(
        "/api/v1/emails?record=contact", data=raw_message(), content_type="message/rfc822"
    )
    assert response.status_code == 400
    assert counts(app) == (0, 0, 0)


def test_over_the_size_limit_is_413(app, caller) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    contact = create_contact(caller)
    response = caller.post(
        f"/api/v1/emails?record=contact:{contact['id']}",
        data=raw_message(attachment=b"x" * 20_000),
        content_type="message/rfc822",
    )
    assert response.status_code == 413
    assert response.json["code"] == 413
    big = email_json([{"type": "contact", "id": contact["id"]}], body_text="y" * 20_000)
    assert caller.post("/api/v1/emails", json=big).status_code == 413


def test_notes(caller) -> None:
    contact = create_contact(caller)
    response = caller.post(
        "/api/v1/notes",
        json={
            "body": "Prefers <calls> in the morning",
            "records": [{"type": "contact", "id": contact["id"]}],
        },
    )
    assert response.status_code == 201
    assert response.json["kind"] == "note"
    detail = caller.get(f"/api/v1/activities/{response.json['id']}").json
    assert "&lt;calls&gt;" in detail["body_html"]
    card = caller.get(f"/api/v1/contacts/{contact['id']}").json
    assert card["activities"][0]["kind"] == "note"
    assert (
        caller.post(
            "/api/v1/notes",
            json={"body": " ", "records": [{"type": "contact", "id": contact["id"]}]},
        ).status_code
        == 400
    )
    assert caller.post("/api/v1/notes", json={"body": "x", "records": []}).status_code == 400


def test_activities_and_attachments_of_another_org_are_404(caller, make_caller) -> None:
    other = make_caller("Other org", "olga@other.test")
    contact = create_contact(other, "Fred", ["fred@foreign.test"])
    logged = other.post(
        f"/api/v1/emails?record=contact:{contact['id']}",
        data=raw_message(),
        content_type="message/rfc822",
    ).json["activity"]
    assert caller.get(f"/api/v1/activities/{logged['id']}").status_code == 404
    attachment_id = logged["attachments"][0]["id"]
    assert caller.get(f"/api/v1/attachments/{attachment_id}").status_code == 404
    status = caller.get("/api/v1/emails/logged?message_id=<raw-1@globex.test>").json
    assert status["logged"] is False


def test_raw_mime_for_an_id_past_any_row_is_400(app, caller) -> None:
    response = caller.post(
        f"/api/v1/emails?record=contact:{2**70}", data=raw_message(), content_type="message/rfc822"
    )
    assert response.status_code == 400 and "record" in str(response.json["errors"])
    assert counts(app) == (0, 0, 0)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_clients_adding_one_record_to_a_logged_email_at_once_make_one_link(
    app, backend, caller
) -> None:
    """20 clients add the same new record to an already-logged email at the same moment."""
    contact = create_contact(caller)
    lead = create_lead(caller, contact_id=contact["id"])
    first = caller.post(
        "/api/v1/emails", json=email_json([{"type": "contact", "id": contact["id"]}])
    )
    assert first.status_code == 201
    body = email_json([{"type": "lead", "id": lead["id"]}])
    start = threading.Barrier(20)

    def add() -> tuple[int, bool]:
        client = app.test_client()
        start.wait(timeout=30)
        response = client.post("/api/v1/emails", json=body, headers=caller.headers)
        return response.status_code, response.json.get("already_logged", False)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: add(), range(20)))
    assert all(status in (200, 201) for status, _ in answers), answers
    # Exactly one request wrote the link; every other one found it there.
    assert sorted(already for _, already in answers) == [False] + [True] * 19
    with session_scope(app) as session:
        links = session.scalars(
            sa.select(ActivityLink).where(
                ActivityLink.record_type == "lead", ActivityLink.record_id == lead["id"]
            )
        ).all()
    assert len(links) == 1
    assert counts(app)[0] == 1
