"""Followers and "Write to the customer" in the Gmail add-on: the Followers and Messages
sections of the person's card and of a lead's and a ticket's own card, follow and unfollow,
and write → preview → send, which queues the message for the worker. Through the add-on's
HTTP endpoints as Google calls them; every answered card is parsed with Google's Card proto
(test_gmail's Addon.post)."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from typing import Any

import pytest
import sqlalchemy as sa
from markupsafe import escape

from connector.db import session_scope
from connector.mail.models import OutboundMail, OutboundStatus
from connector.orgs import service as orgs
from connector.orgs.models import Organization, Role
from connector.web.gmail import cards
from tests import test_gmail
from tests.gateway_fixtures import wait_for
from tests.helpers import create_company, create_contact, create_lead
from tests.smtp_fixtures import smtp_server
from tests.test_gmail import (
    PUBLIC_URL,
    XSS,
    Addon,
    assert_escaped,
    find_action,
    mime,
    pushed,
    strings,
    validate_cards,
)

# The add-on played as Google plays it, with test_gmail's fixtures.
google = test_gmail.google
gmail = test_gmail.gmail
addon = test_gmail.addon

DOMAIN = "acme.test"
SALES = f"sales@{DOMAIN}"
# A bound, not a measure: the worker polls SQLite every 2 s at most.
WITHIN = 60


def answer(body: dict[str, Any]) -> dict[str, Any]:
    return body["renderActions"]["action"]


def notification(body: dict[str, Any]) -> str:
    return str(answer(body)["notification"]["text"])


def updated(body: dict[str, Any]) -> dict[str, Any]:
    """The card an action answered with, shown again in place."""
    return next(n["updateCard"] for n in answer(body)["navigations"] if "updateCard" in n)


def section(card: dict[str, Any], header: str) -> list[dict[str, Any]]:
    found = [s["widgets"] for s in card["sections"] if s.get("header") == header]
    return found[0] if found else []


def rows(card: dict[str, Any], header: str) -> list[dict[str, Any]]:
    """The decorated rows of a section: text, top and bottom labels."""
    return [
        {
            "text": w["decoratedText"]["text"],
            "top": w["decoratedText"].get("topLabel", ""),
            "bottom": w["decoratedText"].get("bottomLabel", ""),
            "button": w["decoratedText"].get("button", {}).get("text"),
        }
        for w in section(card, header)
        if "decoratedText" in w
    ]


def own_buttons(card: dict[str, Any], header: str) -> list[str]:
    return [
        b["text"] for w in section(card, header) for b in w.get("buttonList", {}).get("buttons", [])
    ]


def person(addon: Addon) -> dict[str, Any]:
    card = pushed(addon.trigger("message", "m1"))
    assert card["name"] == "person"
    return card


def followers_api(addon: Addon, plural: str, record_id: int) -> list[dict[str, Any]]:
    response = addon.caller.get(f"/api/v1/{plural}/{record_id}/followers")
    assert response.status_code == 200, response.json
    results: list[dict[str, Any]] = response.json["results"]
    return results


@pytest.fixture
def hank(addon: Addon) -> dict[str, Any]:
    """Hank of Globex, the sender of the open message m1 (the caller, ann, owns him)."""
    create_company(addon.caller)
    addon.gmail.add("m1", mime())
    return create_contact(addon.caller, "Hank Scorpio", ["hank@globex.test"])


@pytest.fixture
def sales(app: Any, runner: Any, addon: Addon) -> str:
    """Acme's mail domain and its sales@ team address, as an admin sets them up."""
    result = runner.invoke(args=["orgs", "mail-domain", "--org", "Acme", "--domain", DOMAIN])
    assert result.exit_code == 0, result.output
    response = addon.caller.post("/api/v1/aliases", json={"address": SALES, "creates": "lead"})
    assert response.status_code == 201, response.json
    return SALES


def add_user(app: Any, email: str, name: str) -> int:
    with session_scope(app) as session:
        org = session.scalar(sa.select(Organization).where(Organization.name == "Acme"))
        assert org is not None
        return orgs.create_user(session, org, email, name, Role.MEMBER).id


def outbound(app: Any) -> list[OutboundMail]:
    with session_scope(app) as session:
        found = list(session.scalars(sa.select(OutboundMail).order_by(OutboundMail.id)))
        for row in found:
            _ = row.raw  # deferred: read while the session is open
        session.expunge_all()
        return found


# Followers ---------------------------------------------------------------------------------


def test_the_person_card_lists_followers_and_the_reader_unfollows_and_follows_again(
    addon: Addon, hank: dict[str, Any]
) -> None:
    card = person(addon)
    # The owner follows without being added: the reader, here.
    assert rows(card, "Followers") == [
        {"text": "ann", "top": addon.caller.email, "bottom": "owner · you", "button": None}
    ]
    assert own_buttons(card, "Followers") == ["Unfollow"]

    body = addon.call(find_action(card, "Unfollow"))
    assert notification(body) == "You no longer follow this."
    card = updated(body)
    assert rows(card, "Followers") == []
    assert "No one follows this yet." in str(section(card, "Followers"))
    assert own_buttons(card, "Followers") == ["Follow"]
    assert followers_api(addon, "contacts", hank["id"]) == []
    # Unfollowing stuck: reading the card again does not make the owner follow again.
    assert own_buttons(person(addon), "Followers") == ["Follow"]

    body = addon.call(find_action(card, "Follow"))
    assert notification(body) == "You follow this now."
    assert own_buttons(updated(body), "Followers") == ["Unfollow"]
    [me] = followers_api(addon, "contacts", hank["id"])
    assert me["is_me"] and me["is_owner"] and me["user_id"] == addon.caller.user_id


def test_unfollow_beside_another_follower_removes_them(
    app: Any, addon: Addon, hank: dict[str, Any]
) -> None:
    bob = add_user(app, "bob@acme.test", "Bob Builder")
    url = f"/api/v1/contacts/{hank['id']}/followers"
    assert addon.caller.post(url, json={"user_id": bob}).status_code == 201
    card = person(addon)
    listed = rows(card, "Followers")
    assert [(r["text"], r["bottom"], r["button"]) for r in listed] == [
        ("ann", "owner · you", None),
        ("Bob Builder", "", "Unfollow"),
    ]
    body = addon.call(find_action(card, "Bob Builder/Unfollow"))
    assert notification(body) == "Bob Builder no longer follows this."
    assert [r["text"] for r in rows(updated(body), "Followers")] == ["ann"]
    assert [f["user_id"] for f in followers_api(addon, "contacts", hank["id"])] == [
        addon.caller.user_id
    ]


def test_a_leads_own_card_has_its_followers_and_follow(
    app: Any, addon: Addon, hank: dict[str, Any]
) -> None:
    bob_id = add_user(app, "bob@acme.test", "Bob Builder")
    # Bob owns the lead; the reader does not follow it.
    lead = create_lead(addon.caller, contact_id=hank["id"], title="Deal", owner_id=bob_id)
    lead_card = pushed(addon.call(find_action(person(addon), "Deal")))
    assert lead_card["name"] == "lead"
    assert [(r["text"], r["bottom"]) for r in rows(lead_card, "Followers")] == [
        ("Bob Builder", "owner")
    ]
    assert own_buttons(lead_card, "Followers") == ["Follow"]
    card = updated(addon.call(find_action(lead_card, "Follow")))
    assert card["name"] == "lead"
    assert [(r["text"], r["bottom"]) for r in rows(card, "Followers")] == [
        ("Bob Builder", "owner"),
        ("ann", "you"),
    ]
    assert [f["is_me"] for f in followers_api(addon, "leads", lead["id"])] == [False, True]


def test_a_contact_following_shows_as_a_contact(addon: Addon, hank: dict[str, Any]) -> None:
    lead = create_lead(addon.caller, contact_id=hank["id"], title="Deal")
    other = create_contact(addon.caller, "Smithers", ["smithers@globex.test"])
    url = f"/api/v1/leads/{lead['id']}/followers"
    assert addon.caller.post(url, json={"contact_id": other["id"]}).status_code == 201
    lead_card = pushed(addon.call(find_action(person(addon), "Deal")))
    assert rows(lead_card, "Followers")[1] == {
        "text": "Smithers",
        "top": "smithers@globex.test",
        "bottom": "contact",
        "button": "Unfollow",
    }


# Write to the customer ---------------------------------------------------------------------


def write_form(addon: Addon, card: dict[str, Any]) -> dict[str, Any]:
    form = pushed(addon.call(find_action(card, cards.WRITE)))
    assert form["name"] == "write"
    return form


def inputs(card: dict[str, Any]) -> dict[str, str]:
    return {
        w["textInput"]["name"]: w["textInput"].get("value", "")
        for s in card["sections"]
        for w in s["widgets"]
        if "textInput" in w
    }


def details(card: dict[str, Any]) -> dict[str, str]:
    return {
        w["decoratedText"]["topLabel"]: w["decoratedText"]["text"]
        for s in card["sections"]
        for w in s["widgets"]
        if "topLabel" in w.get("decoratedText", {})
    }


def test_write_preview_send_queues_one_message_and_the_card_lists_it(
    app: Any, addon: Addon, hank: dict[str, Any], sales: str
) -> None:
    lead = create_lead(addon.caller, contact_id=hank["id"], title="Quote for 50 seats")
    lead_card = pushed(addon.call(find_action(person(addon), "Quote for 50 seats")))
    form = write_form(addon, lead_card)
    subject = f"Quote for 50 seats [#L-{lead['id']}]"
    assert inputs(form) == {"subject": subject, "body_text": ""}
    assert form["header"]["subtitle"] == "Lead · Quote for 50 seats"

    text = "Hello Hank,\nthe quote is attached.\nAnn"
    typed = {"subject": strings(subject), "body_text": strings(text)}
    preview = pushed(addon.call(find_action(form, "Preview"), form=typed))
    assert preview["name"] == "message-preview"
    shown = details(preview)
    assert shown["From"] == escape(f"ann <{SALES}>")
    assert shown["To"] == escape("Hank Scorpio <hank@globex.test>")
    assert shown["Reply-To"].endswith(f"@{DOMAIN}")
    assert shown["Subject"] == subject
    assert "the quote is attached.<br>Ann" in str(section(preview, "Message"))
    assert outbound(app) == []  # a preview writes nothing

    body = addon.call(find_action(preview, "Send"))
    assert notification(body) == "Queued for hank@globex.test"
    navigations = answer(body)["navigations"]
    assert navigations[:2] == [{"popCard": True}, {"popCard": True}]
    card = navigations[2]["updateCard"]
    assert card["name"] == "lead"
    [listed] = rows(card, "Messages")
    assert listed["text"] == subject
    assert "to hank@globex.test" in listed["top"] and "by ann" in listed["top"]
    assert listed["bottom"] == "Queued"

    # Send pressed again (a double click, a request sent again): nothing more goes.
    again = addon.call(find_action(preview, "Send"))
    assert notification(again).startswith("Already sent")
    assert updated(again)["name"] == "lead"

    [row] = outbound(app)
    assert row.kind == "message" and row.status == OutboundStatus.QUEUED
    assert row.to_addresses == ["hank@globex.test"]
    assert row.author_id == addon.caller.user_id
    sent = message_from_bytes(row.raw, policy=policy.default)
    assert sent["Subject"] == subject
    assert sent["Reply-To"] == shown["Reply-To"]
    assert "the quote is attached." in sent.get_body(("plain",)).get_content()
    # The API lists the same message.
    listed_api = addon.caller.get(f"/api/v1/leads/{lead['id']}/messages").json["results"]
    assert [m["id"] for m in listed_api] == [row.id]


def test_write_from_the_person_card_goes_to_the_contact(
    app: Any, addon: Addon, hank: dict[str, Any], sales: str
) -> None:
    form = write_form(addon, person(addon))
    typed = {"subject": strings("Hello"), "body_text": strings("A word about the quote.")}
    preview = pushed(addon.call(find_action(form, "Preview"), form=typed))
    assert details(preview)["To"] == escape("Hank Scorpio <hank@globex.test>")
    card = updated(addon.call(find_action(preview, "Send")))
    assert card["name"] == "person"
    assert [r["text"] for r in rows(card, "Messages")] == ["Hello"]
    [row] = outbound(app)
    assert row.record_type == "contact" and row.record_id == hank["id"]


def test_a_template_writes_the_message(
    app: Any, addon: Addon, hank: dict[str, Any], sales: str
) -> None:
    response = addon.caller.post(
        "/api/v1/templates",
        json={
            "name": "Follow-up",
            "subject": "Following up",
            "body_html": "<p>Dear {{ contact.first_name }}, any news?</p>",
        },
    )
    assert response.status_code == 201, response.json
    template_id = response.json["id"]
    form = write_form(addon, person(addon))
    picker = next(
        w["selectionInput"] for s in form["sections"] for w in s["widgets"] if "selectionInput" in w
    )
    assert [i["text"] for i in picker["items"]][1:] == ["Follow-up"]
    typed = {"subject": strings("Any news?"), "template_id": strings(str(template_id))}
    preview = pushed(addon.call(find_action(form, "Preview"), form=typed))
    assert "Dear Hank, any news?" in str(section(preview, "Message"))
    addon.call(find_action(preview, "Send"))
    [row] = outbound(app)
    sent = message_from_bytes(row.raw, policy=policy.default)
    assert "Dear Hank, any news?" in sent.get_body(("plain",)).get_content()


def test_cancel_goes_back_and_sends_nothing(
    app: Any, addon: Addon, hank: dict[str, Any], sales: str
) -> None:
    form = write_form(addon, person(addon))
    assert answer(addon.call(find_action(form, "Cancel")))["navigations"] == [{"popCard": True}]
    typed = {"body_text": strings("Hello")}
    preview = pushed(addon.call(find_action(form, "Preview"), form=typed))
    assert answer(addon.call(find_action(preview, "Cancel")))["navigations"] == [{"popCard": True}]
    assert outbound(app) == []


def test_a_real_worker_sends_it_and_the_card_says_sent(
    queue_app: Any, addon: Addon, hank: dict[str, Any], sales: str, worker: Any, tmp_path: Any
) -> None:
    with smtp_server(tmp_path) as server:
        queue_app.config.update(SMTP_URL=server.url())
        worker()
        form = write_form(addon, person(addon))
        typed = {"subject": strings("Hello"), "body_text": strings("A word about the quote.")}
        preview = pushed(addon.call(find_action(form, "Preview"), form=typed))
        addon.call(find_action(preview, "Send"))
        wait_for(lambda: server.handler.messages, "the message to be sent", WITHIN)
        wait_for(
            lambda: outbound(queue_app)[0].status == OutboundStatus.SENT, "it marked sent", WITHIN
        )
    [received] = server.handler.messages
    assert received.rcpt_tos == ["hank@globex.test"]
    assert b"A word about the quote." in received.content
    [listed] = rows(person(addon), "Messages")
    assert listed["bottom"].startswith("✓ Sent 20")


def test_a_message_that_failed_is_marked_failed_on_the_card(
    app: Any, addon: Addon, hank: dict[str, Any], sales: str
) -> None:
    form = write_form(addon, person(addon))
    preview = pushed(addon.call(find_action(form, "Preview"), form={"body_text": strings("Hi")}))
    addon.call(find_action(preview, "Send"))
    with session_scope(app) as session:
        row = session.scalars(sa.select(OutboundMail)).one()
        row.status = OutboundStatus.FAILED
        row.error = "550 5.1.1 <hank@globex.test>: no such user"
    [listed] = rows(person(addon), "Messages")
    assert listed["bottom"].startswith(f'<font color="{cards.OVERDUE_COLOR}">✕ Failed</font>')
    assert "no such user" in listed["bottom"]


# Errors: the add-on's notification, nothing written -----------------------------------------


def refused(body: dict[str, Any]) -> str:
    """The add-on's error answer to an action: a notification, no card pushed."""
    assert "navigations" not in answer(body), body
    return notification(body)


def test_no_alias_no_contact_no_text_are_notifications_and_nothing_is_queued(
    app: Any, runner: Any, addon: Addon, hank: dict[str, Any]
) -> None:
    # No team address yet: nothing can go, and the add-on says so.
    form = write_form(addon, person(addon))
    assert refused(addon.call(find_action(form, "Preview"), form={"body_text": strings("Hi")}))
    result = runner.invoke(args=["orgs", "mail-domain", "--org", "Acme", "--domain", DOMAIN])
    assert result.exit_code == 0, result.output
    alias = {"address": SALES, "creates": "lead"}
    assert addon.caller.post("/api/v1/aliases", json=alias).status_code == 201
    # No text, no template: refused in the API's words.
    assert refused(addon.call(find_action(form, "Preview"), form={"subject": strings("Hi")}))
    # A lead with no contact: no one to write to, from its own card (the homepage's list).
    create_lead(addon.caller, title="Orphan deal")
    home = pushed(addon.trigger("homepage"))
    lead_card = pushed(addon.call(find_action(home, "Orphan deal"), message_id=None))
    orphan_form = write_form(addon, lead_card)
    typed = {"body_text": strings("Hi")}
    assert refused(addon.call(find_action(orphan_form, "Preview"), form=typed))
    assert outbound(app) == []


def test_the_fullest_cards_with_followers_and_messages_stay_within_googles_limits() -> None:
    def act(name: str, /, **state: Any) -> dict[str, Any]:
        return {"function": f"{PUBLIC_URL}/gmail/actions/{name}", "parameters": []}

    follower = {
        "id": 1,
        "kind": "user",
        "name": "Bob",
        "email": "bob@acme.test",
        "user_id": 2,
        "contact_id": None,
        "is_owner": False,
        "is_me": False,
    }
    message = {
        "id": 1,
        "subject": "Hi",
        "to": ["hank@globex.test"],
        "status": "failed",
        "error": "550",
        "created_at": "2026-11-30T10:00:00+00:00",
        "sent_at": None,
        "author": {"id": 1, "name": "Ann"},
    }
    stamp = "2026-01-15T17:05:00+00:00"
    entry = {
        "at": stamp,
        "by": {"id": 1, "name": "Ann"},
        "field": "stage",
        "from": "new",
        "to": "qualified",
        "from_label": None,
        "to_label": None,
    }
    lead = {"id": 1, "title": "Deal", "stage": "new", "expected_revenue": 5.0, "version": 1}
    ticket = {"id": 1, "subject": "Broken", "status": "new", "priority": "high", "version": 1}
    task = {"id": 1, "title": "Call", "due_date": None}
    activity = {"subject": "Hi", "snippet": "", "kind": "email", "occurred_at": stamp, "from": "a"}
    contact = {"id": 1, "name": "Hank", "phone": "1", "job_title": "CEO", "version": 3}
    inbound = {"subject": "Hi", "at": stamp, "alias": SALES, "outcome": "opened", "record": None}
    result = {
        "email": "hank@globex.test",
        "contact": {**contact, "emails": ["hank@globex.test"]},
        "company": {"id": 2, "name": "Globex", "domains": ["globex.test"]},
        "leads": [lead] * 20,
        "tickets": [ticket] * 20,
        "tasks": [task] * 20,
        "activities": [activity] * 20,
        "history": [entry] * 20,
        "inbound": [inbound] * 20,
        "bouncing": [],
        "duplicates": [{"id": 5, "name": "Hank", "emails": ["h@globex.test"]}] * 5,
        "followers": [follower] * 40,
        "messages": [message] * 5,
    }
    common: dict[str, Any] = {
        "record_url": lambda kind, record_id: f"{PUBLIC_URL}/records/{kind}/{record_id}",
        "today": dt.date(2026, 1, 15),
        "zone": dt.UTC,
        "banner": cards.banner("Done: Call", "Undo", cards.action(act, "undo_task")),
    }
    built = [
        cards.person_card(result, act, logged_on=["contact"], **common),
        cards.lead_card({**result, "lead": lead}, act, **common),
        cards.ticket_card({**result, "ticket": ticket}, act, **common),
        cards.write_card(
            "lead", 1, "Deal [#L-1]", "Deal [#L-1]", [{"id": 1, "name": "T"}] * 200, act, {}
        ),
        cards.message_preview_card(
            {
                "from": "Ann <sales@acme.test>",
                "to": ["Hank <hank@globex.test>"],
                "reply_to": "r@acme.test",
                "subject": "Hi",
                "body_text": "x\n" * 10_000,
            },
            cards.action(act, "send_message"),
            act,
        ),
    ]
    for card in built:
        assert cards.widget_count(card) <= cards.MAX_WIDGETS
        assert validate_cards(cards.render(push_card=card)) == 1
    followers = next(s for s in built[0]["sections"] if s.get("header") == "Followers")
    assert "and 32 more" in str(followers)


def test_record_data_is_escaped_on_the_followers_and_message_cards(
    app: Any, addon: Addon, sales: str
) -> None:
    create_company(addon.caller, f"Globex {XSS}")
    addon.gmail.add("m1", mime())
    hank = create_contact(addon.caller, f"Hank {XSS}", ["hank@globex.test"])
    add_user(app, "bob@acme.test", f"Bob {XSS}")
    lead = create_lead(addon.caller, contact_id=hank["id"], title=f"Deal {XSS}")
    url = f"/api/v1/leads/{lead['id']}/followers"
    assert addon.caller.post(url, json={"email": "bob@acme.test"}).status_code == 201
    card = person(addon)
    lead_card = pushed(addon.call(find_action(card, f"Deal {escape(XSS)}")))
    form = write_form(addon, lead_card)
    typed = {"subject": strings(f"Re {XSS}"), "body_text": strings(f"Text {XSS}")}
    preview = pushed(addon.call(find_action(form, "Preview"), form=typed))
    after = updated(addon.call(find_action(preview, "Send")))
    assert_escaped([card, lead_card, form, preview, after])
    assert f"Text {escape(XSS)}" in str(section(preview, "Message"))
    assert rows(after, "Messages")[0]["text"] == f"Re {escape(XSS)} [#L-{lead['id']}]"
