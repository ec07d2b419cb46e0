"""Keeping records current from Gmail: edit a contact, move a lead, close and reopen a
ticket, undo a task, merge a duplicate, with versions and a history in the reader's time
zone. Through the add-on's HTTP endpoints as Google calls them; every answered card is
parsed with Google's Card proto (test_gmail's Addon.post)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from connector.db import session_scope
from connector.records.models import RecordChange
from connector.web.gmail import cards
from tests import test_gmail
from tests.helpers import create_company, create_contact, create_lead
from tests.test_gmail import PUBLIC_URL, Addon, find_action, mime, pushed, strings, validate_cards

# The add-on played as Google plays it, with test_gmail's fixtures.
google = test_gmail.google
gmail = test_gmail.gmail
addon = test_gmail.addon

CALLER_NAME = "ann"  # the caller fixture's user, who makes the changes


def answer(body: dict[str, Any]) -> dict[str, Any]:
    return body["renderActions"]["action"]


def notification(body: dict[str, Any]) -> str:
    return str(answer(body)["notification"]["text"])


def section(card: dict[str, Any], header: str) -> list[dict[str, Any]]:
    """The widgets of the card's section of that header ([] when it has none)."""
    found = [s["widgets"] for s in card["sections"] if s.get("header") == header]
    return found[0] if found else []


def lines(widgets: list[dict[str, Any]]) -> list[str]:
    return [
        (w.get("decoratedText") or w.get("textParagraph") or {}).get("text", "") for w in widgets
    ]


def history(card: dict[str, Any]) -> list[str]:
    return lines(section(card, "History"))


def api(addon: Addon, path: str) -> dict[str, Any]:
    response = addon.caller.get(path)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json
    return body


def person(addon: Addon) -> dict[str, Any]:
    """The card of the open message's sender, as the message trigger shows it."""
    card = pushed(addon.trigger("message", "m1"))
    assert card["name"] == "person"
    return card


@pytest.fixture
def hank(addon: Addon) -> dict[str, Any]:
    """Hank of Globex, the sender of the open message m1."""
    create_company(addon.caller)
    addon.gmail.add("m1", mime())
    return create_contact(addon.caller, "Hank Scorpio", ["hank@globex.test"], job_title="CEO")


def _ticket(addon: Addon, contact_id: int, subject: str = "Printer on fire") -> dict[str, Any]:
    response = addon.caller.post(
        "/api/v1/tickets", json={"subject": subject, "contact_id": contact_id}
    )
    assert response.status_code == 201, response.json
    ticket: dict[str, Any] = response.json["ticket"]
    return ticket


# Edit a contact ---------------------------------------------------------------------


def test_edit_contact_saves_through_the_api_schema_and_answers_the_new_card(
    addon: Addon, hank: dict[str, Any]
) -> None:
    form_card = pushed(addon.call(find_action(person(addon), "Edit contact")))
    assert form_card["name"] == "contact-form"
    values = {
        w["textInput"]["name"]: w["textInput"].get("value", "")
        for w in form_card["sections"][0]["widgets"]
        if "textInput" in w
    }
    assert values == {
        "name": "Hank Scorpio",
        "emails": "hank@globex.test",
        "phone": "",
        "job_title": "CEO",
    }
    form = {
        "name": strings("Hank J. Scorpio"),
        "emails": strings("hank@globex.test, hj@globex.test"),
        "phone": strings("+1 555 0100"),
        "job_title": strings(""),  # emptied: removed
    }
    body = addon.call(find_action(form_card, "Save contact"), form=form)
    assert notification(body) == "Contact saved: Hank J. Scorpio"
    navigations = answer(body)["navigations"]
    assert navigations[0] == {"popCard": True}
    updated = navigations[1]["updateCard"]
    assert updated["header"]["title"] == "Hank J. Scorpio"
    assert "+1 555 0100" in lines(updated["sections"][0]["widgets"])
    assert any("name: Hank Scorpio → Hank J. Scorpio" in line for line in history(updated))

    stored = api(addon, f"/api/v1/contacts/{hank['id']}")["contact"]
    assert stored["name"] == "Hank J. Scorpio"
    assert stored["emails"] == ["hank@globex.test", "hj@globex.test"]
    assert stored["phone"] == "+1 555 0100" and stored["job_title"] is None
    assert stored["version"] == hank["version"] + 1
    # The new address finds him.
    found = api(addon, "/api/v1/lookup?email=hj@globex.test")["results"][0]
    assert found["contact"]["id"] == hank["id"]


@pytest.mark.parametrize(
    ("form", "body"),
    [
        ({"name": ""}, {"name": ""}),
        (
            {"emails": "hank@globex.test, not an address"},
            {"emails": ["hank@globex.test", "not an address"]},
        ),
        ({"emails": " , "}, {"emails": []}),
        ({"phone": "1" * 51}, {"phone": "1" * 51}),
    ],
)
def test_edit_contact_refuses_what_the_api_refuses_in_its_words_and_writes_nothing(
    addon: Addon, hank: dict[str, Any], form: dict[str, str], body: dict[str, Any]
) -> None:
    """Each case: what the form holds, and the PATCH body it stands for."""
    url = f"/api/v1/contacts/{hank['id']}"
    refused = addon.caller.patch(url, json=body)
    assert refused.status_code == 400
    form_card = pushed(addon.call(find_action(person(addon), "Edit contact")))
    given = {"name": "Hank Scorpio", "emails": "hank@globex.test", **form}
    answered = addon.call(
        find_action(form_card, "Save contact"),
        form={name: strings(value) for name, value in given.items()},
    )
    # As every text of a card, escaped: Gmail shows the API's message as it is.
    assert notification(answered) == cards.as_text(refused.json["message"])
    # No navigation: the form stays, with what the user typed.
    assert "navigations" not in answer(answered)
    assert api(addon, url)["contact"]["version"] == hank["version"]


def test_edit_contact_on_a_stale_version_saves_nothing_and_keeps_what_was_typed(
    addon: Addon, hank: dict[str, Any]
) -> None:
    form_card = pushed(addon.call(find_action(person(addon), "Edit contact")))
    # Someone else renames him while the form is open.
    url = f"/api/v1/contacts/{hank['id']}"
    assert addon.caller.patch(url, json={"name": "Homer Simpson"}).status_code == 200
    form = {"name": strings("Hank J. Scorpio"), "emails": strings("hank@globex.test")}
    body = addon.call(find_action(form_card, "Save contact"), form=form)
    assert "changed this contact meanwhile" in notification(body)
    assert "nothing was saved" in notification(body)
    fresh = answer(body)["navigations"][0]["updateCard"]
    assert fresh["name"] == "contact-form"
    assert "Hank J. Scorpio" in lines(section(fresh, "Not saved"))  # what was typed
    name_input = next(
        w["textInput"] for s in fresh["sections"] for w in s["widgets"] if "textInput" in w
    )
    assert name_input["value"] == "Homer Simpson"  # the fields: as it is now
    stored = api(addon, url)
    assert stored["contact"]["name"] == "Homer Simpson"
    assert [h["field"] for h in stored["history"]] == ["name"]
    # The fresh form carries the new version: saving it now works.
    body = addon.call(find_action(fresh, "Save contact"), form=form)
    assert notification(body) == "Contact saved: Hank J. Scorpio"
    assert api(addon, url)["contact"]["name"] == "Hank J. Scorpio"


# A lead's stage ---------------------------------------------------------------------


def test_lead_moves_new_qualified_won_and_its_card_shows_both_changes(
    addon: Addon, hank: dict[str, Any]
) -> None:
    lead = create_lead(addon.caller, contact_id=hank["id"], title="Big deal")
    card = person(addon)
    assert lines(section(card, "Open leads")) == ["Big deal"]
    body = addon.call(find_action(card, "Big deal/→ Qualified"))
    assert notification(body) == "Big deal: Qualified"
    updated = answer(body)["navigations"][0]["updateCard"]
    assert updated["name"] == "person"
    # The card shown again offers the next stage.
    find_action(updated, "Big deal/→ Proposition")

    lead_card = pushed(addon.call(find_action(updated, "Big deal")))
    assert lead_card["name"] == "lead"
    assert lead_card["header"]["subtitle"] == "Lead · Qualified"
    stage_input = section(lead_card, "Move the lead")[0]["selectionInput"]
    assert [i["value"] for i in stage_input["items"] if i["selected"]] == ["qualified"]
    body = addon.call(find_action(lead_card, "Save stage"), form={"stage": strings("won")})
    assert notification(body) == "Big deal: Won"
    won_card = answer(body)["navigations"][0]["updateCard"]
    assert won_card["header"]["subtitle"] == "Lead · Won"
    changes = [line for line in history(won_card) if line.startswith("stage:")]
    assert [c.split(", by")[0] for c in changes] == [
        "stage: qualified → won",
        "stage: new → qualified",
    ]
    stored = api(addon, f"/api/v1/leads/{lead['id']}")["lead"]
    assert stored["stage"] == "won" and stored["probability"] == 100
    assert stored["version"] == lead["version"] + 2
    # Won is not open: off the sender's card.
    assert "Big deal" not in str(section(person(addon), "Open leads"))


def test_lost_needs_a_reason_a_clear_notification_and_nothing_written(
    addon: Addon, hank: dict[str, Any]
) -> None:
    lead = create_lead(addon.caller, contact_id=hank["id"], title="Big deal")
    lead_card = pushed(addon.call(find_action(person(addon), "Big deal")))
    save = find_action(lead_card, "Save stage")
    for reason in ("", "   "):
        body = addon.call(save, form={"stage": strings("lost"), "lost_reason": strings(reason)})
        assert "Say why the lead is lost" in notification(body)
        assert "Nothing was saved" in notification(body)
        assert "navigations" not in answer(body)  # the form stays as typed
    stored = api(addon, f"/api/v1/leads/{lead['id']}")
    assert stored["lead"]["stage"] == "new" and stored["lead"]["version"] == lead["version"]
    assert stored["history"] == []
    # With a reason it is lost, with that reason.
    form = {"stage": strings("lost"), "lost_reason": strings("Went with Initech")}
    lost = answer(addon.call(save, form=form))["navigations"][0]["updateCard"]
    assert "Went with Initech" in lines(lost["sections"][1]["widgets"])
    stored = api(addon, f"/api/v1/leads/{lead['id']}")["lead"]
    assert stored["stage"] == "lost" and stored["lost_reason"] == "Went with Initech"


def test_an_unknown_stage_is_refused_in_the_apis_words(addon: Addon, hank: dict[str, Any]) -> None:
    lead = create_lead(addon.caller, contact_id=hank["id"], title="Big deal")
    lead_card = pushed(addon.call(find_action(person(addon), "Big deal")))
    body = addon.call(find_action(lead_card, "Save stage"), form={"stage": strings("sold")})
    assert notification(body).startswith("The request is not valid: stage: Must be one of")
    assert api(addon, f"/api/v1/leads/{lead['id']}")["lead"]["stage"] == "new"


def test_a_stale_stage_change_saves_nothing_and_shows_the_lead_as_it_is(
    addon: Addon, hank: dict[str, Any]
) -> None:
    lead = create_lead(addon.caller, contact_id=hank["id"], title="Big deal")
    card = person(addon)
    url = f"/api/v1/leads/{lead['id']}"
    assert addon.caller.patch(url, json={"title": "Bigger deal"}).status_code == 200
    body = addon.call(find_action(card, "Big deal/→ Qualified"))
    assert "changed this meanwhile: nothing was saved" in notification(body)
    fresh = answer(body)["navigations"][0]["updateCard"]
    assert "changed this meanwhile" in str(fresh["sections"][0])
    assert "Bigger deal" in str(section(fresh, "Open leads"))
    stored = api(addon, url)
    assert stored["lead"]["stage"] == "new"
    assert [h["field"] for h in stored["history"]] == ["title"]


# Tickets ----------------------------------------------------------------------------


def test_close_then_reopen_a_ticket(addon: Addon, hank: dict[str, Any]) -> None:
    ticket = _ticket(addon, hank["id"])
    body = addon.call(find_action(person(addon), "Printer on fire/Close"))
    assert notification(body) == "Closed: Printer on fire"
    updated = answer(body)["navigations"][0]["updateCard"]
    assert "Printer on fire" not in str(section(updated, "Open tickets"))
    # Closed: no longer open on the sender's card, from a fresh lookup too.
    assert "Printer on fire" not in str(section(person(addon), "Open tickets"))
    assert api(addon, f"/api/v1/tickets/{ticket['id']}")["ticket"]["status"] == "closed"

    body = addon.call(find_action(updated, "Closed: Printer on fire/Reopen"))
    assert notification(body) == "Reopened: Printer on fire"
    assert "Printer on fire" in str(section(person(addon), "Open tickets"))
    stored = api(addon, f"/api/v1/tickets/{ticket['id']}")
    assert stored["ticket"]["status"] == "open"
    assert [(h["from"], h["to"]) for h in stored["history"]] == [
        ("closed", "open"),
        ("new", "closed"),
    ]


def test_the_tickets_own_card_closes_and_reopens_it(addon: Addon, hank: dict[str, Any]) -> None:
    ticket = _ticket(addon, hank["id"])
    ticket_card = pushed(addon.call(find_action(person(addon), "Printer on fire")))
    assert ticket_card["name"] == "ticket"
    body = addon.call(find_action(ticket_card, "Close"))
    closed = answer(body)["navigations"][0]["updateCard"]
    assert closed["header"]["subtitle"] == "Ticket · Closed"
    body = addon.call(find_action(closed, "Reopen"))
    reopened = answer(body)["navigations"][0]["updateCard"]
    assert reopened["header"]["subtitle"] == "Ticket · Open"
    assert [line.split(", by")[0] for line in history(reopened)] == [
        "status: closed → open",
        "status: new → closed",
    ]
    # The first card's Close carried version 1: pressed again now, it is stale.
    body = addon.call(find_action(ticket_card, "Close"))
    assert "changed this meanwhile" in notification(body)
    assert api(addon, f"/api/v1/tickets/{ticket['id']}")["ticket"]["status"] == "open"


# Tasks ------------------------------------------------------------------------------


def test_undo_a_completed_task(addon: Addon, hank: dict[str, Any]) -> None:
    task = {"title": "Call Hank", "record": {"type": "contact", "id": hank["id"]}}
    created = addon.caller.post("/api/v1/tasks", json=task)
    assert created.status_code == 201, created.json
    body = addon.call(find_action(person(addon), "Call Hank/Done"))
    assert notification(body) == "Done: Call Hank"
    updated = answer(body)["navigations"][0]["updateCard"]
    assert updated["name"] == "person"
    assert "Call Hank" not in str(section(updated, "Open tasks"))
    assert addon.caller.get("/api/v1/tasks").json == []

    body = addon.call(find_action(updated, "Done: Call Hank/Undo"))
    assert notification(body) == "Not done: Call Hank"
    again = answer(body)["navigations"][0]["updateCard"]
    assert "Call Hank" in lines(section(again, "Open tasks"))
    assert [(t["title"], t["done"]) for t in addon.caller.get("/api/v1/tasks").json] == [
        ("Call Hank", False)
    ]


def test_undo_from_the_homepage(addon: Addon) -> None:
    addon.caller.post("/api/v1/tasks", json={"title": "Call Hank", "due_date": "2020-01-01"})
    home = pushed(addon.trigger("homepage"))
    body = addon.call(find_action(home, "Call Hank/Done"), message_id=None)
    updated = answer(body)["navigations"][0]["updateCard"]
    assert updated["name"] == "homepage"
    body = addon.call(find_action(updated, "Done: Call Hank/Undo"), message_id=None)
    assert "Call Hank" in str(answer(body)["navigations"][0]["updateCard"])
    assert [t["title"] for t in addon.caller.get("/api/v1/tasks").json] == ["Call Hank"]


# Duplicates -------------------------------------------------------------------------


def test_merge_a_possible_duplicate(addon: Addon, hank: dict[str, Any]) -> None:
    dup = create_contact(addon.caller, "hank scorpio", ["h.scorpio@globex.test"], phone="+1 555")
    lead = create_lead(addon.caller, contact_id=dup["id"], title="Side deal")
    card = person(addon)
    assert any(
        "Possible duplicate:</b> hank scorpio (h.scorpio@globex.test)" in line
        for line in lines(card["sections"][1]["widgets"])
    )
    body = addon.call(find_action(card, "Merge into this contact"))
    assert notification(body) == "Merged into Hank Scorpio."
    merged = answer(body)["navigations"][0]["updateCard"]
    assert "Possible duplicate" not in str(merged)
    assert "Side deal" in str(section(merged, "Open leads"))
    assert any(line.startswith("merged hank scorpio") for line in history(merged))

    assert addon.caller.get(f"/api/v1/contacts/{dup['id']}").status_code == 404
    found = api(addon, "/api/v1/lookup?email=h.scorpio@globex.test")["results"][0]
    assert found["contact"]["id"] == hank["id"]
    assert api(addon, f"/api/v1/leads/{lead['id']}")["lead"]["contact_id"] == hank["id"]
    # In the audit log, as a merge through the API is.
    from connector.audit.models import AuditEvent

    with session_scope(addon.client.application) as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "record.merged"))
        assert (event.target, event.detail["from"]) == (
            f"contact:{hank['id']}",
            f"contact:{dup['id']}",
        )


def test_merge_on_a_stale_version_merges_nothing(addon: Addon, hank: dict[str, Any]) -> None:
    dup = create_contact(addon.caller, "Hank Scorpio", ["h.scorpio@globex.test"])
    card = person(addon)
    url = f"/api/v1/contacts/{hank['id']}"
    assert addon.caller.patch(url, json={"phone": "+1 555 0100"}).status_code == 200
    body = addon.call(find_action(card, "Merge into this contact"))
    assert "changed this meanwhile: nothing was saved" in notification(body)
    assert addon.caller.get(f"/api/v1/contacts/{dup['id']}").status_code == 200
    # The fresh card offers the merge again, at the new version.
    fresh = answer(body)["navigations"][0]["updateCard"]
    body = addon.call(find_action(fresh, "Merge into this contact"))
    assert notification(body) == "Merged into Hank Scorpio."
    assert addon.caller.get(f"/api/v1/contacts/{dup['id']}").status_code == 404


# History in the reader's time zone ---------------------------------------------------


def _rename_at(app: Any, addon: Addon, contact_id: int, at: dt.datetime) -> None:
    url = f"/api/v1/contacts/{contact_id}"
    assert addon.caller.patch(url, json={"name": "Hank J. Scorpio"}).status_code == 200
    with session_scope(app) as session:
        [change] = session.scalars(
            select(RecordChange).where(RecordChange.record_id == contact_id)
        ).all()
        change.at = at


@pytest.mark.parametrize(
    ("time_zone", "shown"),
    [
        ({"id": "America/New_York", "offset": -18000000}, "12:05"),  # EST, UTC-5 in January
        ({"id": "Asia/Kolkata"}, "22:35"),
        ({"offset": 19800000}, "22:35"),  # no name: the offset, UTC+5:30
        ({"offset": "-18000000"}, "12:05"),  # Google's int64 as a string
        ({"id": "Mars/Olympus_Mons", "offset": 3600000}, "18:05"),  # unknown name: the offset
        ({"id": "Mars/Olympus_Mons"}, "17:05"),  # nothing usable: UTC
        ({"offset": 10**12}, "17:05"),  # no zone is that far off
        (None, "17:05"),
    ],
)
def test_history_shows_the_time_in_the_events_zone(
    app: Any, addon: Addon, hank: dict[str, Any], time_zone: dict[str, Any] | None, shown: str
) -> None:
    at = dt.datetime(dt.datetime.now(dt.UTC).year, 1, 15, 17, 5, tzinfo=dt.UTC)
    _rename_at(app, addon, hank["id"], at)
    addon.time_zone = time_zone
    [line] = history(person(addon))
    assert line == f"name: Hank Scorpio → Hank J. Scorpio, by {CALLER_NAME}, 15 Jan {shown}"


def test_history_in_new_york_summer_time(app: Any, addon: Addon, hank: dict[str, Any]) -> None:
    at = dt.datetime(dt.datetime.now(dt.UTC).year, 7, 1, 2, 30, tzinfo=dt.UTC)
    _rename_at(app, addon, hank["id"], at)
    addon.time_zone = {"id": "America/New_York", "offset": -14400000}
    [line] = history(person(addon))
    assert line.endswith(", 30 Jun 22:30")  # EDT, UTC-4: the evening before


def test_a_time_zone_of_the_wrong_shape_is_not_an_event(addon: Addon) -> None:
    event = addon.event()
    event["commonEventObject"]["timeZone"] = "America/New_York"
    assert addon.post("/gmail/homepage", event).status_code == 400
    event["commonEventObject"]["timeZone"] = {"id": ["America/New_York"]}
    assert addon.post("/gmail/homepage", event).status_code == 400


# The actions themselves ---------------------------------------------------------------

LIFECYCLE_ACTIONS = (
    "contact_form",
    "edit_contact",
    "change_stage",
    "set_ticket_status",
    "undo_task",
    "merge_contact",
)


def test_every_lifecycle_action_is_registered_and_signed(addon: Addon) -> None:
    from connector.web.gmail.addon import ACTIONS, UNSIGNED_ACTIONS

    for name in LIFECYCLE_ACTIONS:
        assert name in ACTIONS and name not in UNSIGNED_ACTIONS
        response = addon.post(f"/gmail/actions/{name}", addon.event())
        assert response.status_code == 200
        assert "out of date" in notification(response.json), name


def test_a_state_signed_for_one_action_does_not_work_for_another(
    addon: Addon, hank: dict[str, Any]
) -> None:
    ticket = _ticket(addon, hank["id"])
    close = find_action(person(addon), "Printer on fire/Close")
    # The signed state of Close, sent to merge_contact: refused, nothing written.
    forged = {**close, "function": f"{PUBLIC_URL}/gmail/actions/merge_contact"}
    assert "out of date" in notification(addon.call(forged))
    assert api(addon, f"/api/v1/tickets/{ticket['id']}")["ticket"]["status"] == "new"


# The cards' limits ----------------------------------------------------------------------


def test_the_fullest_cards_stay_within_googles_limits() -> None:
    """A contact with every list at its longest: within the widget limit, and Google's
    Card proto parses it; so do the lead's and the ticket's cards."""

    def act(name: str, /, **state: Any) -> dict[str, Any]:
        return {"function": f"{PUBLIC_URL}/gmail/actions/{name}", "parameters": []}

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
    activity = {
        "subject": "Hi",
        "snippet": "",
        "kind": "email",
        "occurred_at": stamp,
        "from": "a@b.test",
    }
    contact = {"id": 1, "name": "Hank", "phone": "1", "job_title": "CEO", "version": 3}
    company = {"id": 2, "name": "Globex", "domains": ["globex.test"]}
    result = {
        "email": "hank@globex.test",
        "contact": {**contact, "emails": ["hank@globex.test"]},
        "company": company,
        "leads": [lead] * 20,
        "tickets": [ticket] * 20,
        "tasks": [task] * 20,
        "activities": [activity] * 20,
        "history": [entry] * 20,
        "duplicates": [{"id": 5, "name": "Hank", "emails": ["h@globex.test"]}] * 5,
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
        cards.contact_form_card(
            {**contact, "emails": ["hank@globex.test"]}, act, {}, unsaved={"Name": "Hank J."}
        ),
    ]
    for card in built:
        assert cards.widget_count(card) <= cards.MAX_WIDGETS
        assert validate_cards(cards.render(push_card=card)) == 1
    history_section = next(s for s in built[0]["sections"] if s.get("header") == "History")
    assert history_section["collapsible"] and history_section["uncollapsibleWidgetsCount"] == 1


def test_record_data_is_escaped_on_the_new_cards(addon: Addon) -> None:
    """The lead, ticket and edit cards, duplicates and history lines: record data escaped
    wherever it is shown, as written in the inputs a person edits."""
    from markupsafe import escape

    from tests.test_gmail import XSS, assert_escaped, card_texts

    create_company(addon.caller, f"Globex {XSS}")
    addon.gmail.add("m1", mime())
    hank = create_contact(addon.caller, f"Hank {XSS}", ["hank@globex.test"], job_title=XSS)
    create_contact(addon.caller, f"hank {XSS}", ["h2@globex.test"])
    url = f"/api/v1/contacts/{hank['id']}"
    assert addon.caller.patch(url, json={"phone": XSS[:50]}).status_code == 200
    create_lead(addon.caller, contact_id=hank["id"], title=f"Deal {XSS}")
    _ticket(addon, hank["id"], f"Broken {XSS}")
    card = person(addon)
    lead_card = pushed(addon.call(find_action(card, f"Deal {escape(XSS)}")))
    form = {"stage": strings("lost"), "lost_reason": strings(f"Lost {XSS}")}
    lost = answer(addon.call(find_action(lead_card, "Save stage"), form=form))
    lost_card = lost["navigations"][0]["updateCard"]
    ticket_card = pushed(addon.call(find_action(card, f"Broken {escape(XSS)}")))
    closed = answer(addon.call(find_action(card, f"Broken {escape(XSS)}/Close")))
    form_card = pushed(addon.call(find_action(card, "Edit contact")))
    seen = [card, lead_card, lost_card, ticket_card, closed["navigations"][0]["updateCard"]]
    assert_escaped([*seen, form_card])
    shown = [text for c in seen for texts in card_texts(c) for text in texts]
    assert any(f"phone: none → {escape(XSS[:50])}" in text for text in shown)
    assert any(f"lost reason: none → Lost {escape(XSS)}" in text for text in shown)
    assert any(f"hank {escape(XSS)} (h2@globex.test)" in text for text in shown)
    _shown, values = card_texts(form_card)
    assert f"Hank {XSS}" in values and XSS in values  # inputs: as written


def test_an_archived_contacts_address_offers_no_new_contact(addon: Addon) -> None:
    addon.gmail.add("m1", mime())
    hank = create_contact(addon.caller, "Hank Scorpio", ["hank@globex.test"])
    assert addon.caller.delete(f"/api/v1/contacts/{hank['id']}").status_code == 204
    card = pushed(addon.trigger("message", "m1"))
    assert card["name"] == "archived"
    assert "Hank Scorpio, an archived contact" in str(card)
    assert "Create contact" not in str(card)
